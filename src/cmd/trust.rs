//! `gantry trust refresh`: update the cached Sigstore public-good trusted root through TUF, so
//! later keyless verification works offline. It reports what it cached; on failure the cache is
//! left as it was.

use crate::exit::{ExitKind, Failure};
use crate::store::Home;
use crate::trust::TrustRoot;

/// `gantry trust …` subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    pub command: TrustCommand,
}

/// What to do with the trust root.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TrustCommand {
    /// Fetch the public-good trusted root through TUF and cache it under $GANTRY_HOME.
    Refresh,
}

/// Runs the command.
pub fn run(cmd: TrustArgs, home: &Home) -> Result<(), Failure> {
    match cmd.command {
        TrustCommand::Refresh => {
            let root = TrustRoot::public_good(&home.trust_cache(), true)
                .map_err(|e| Failure::new(ExitKind::Registry, e))?;
            crate::outln!(
                "cached the Sigstore public-good trusted root ({} Fulcio CAs, {} Rekor logs, {} CT logs, {} TSAs) at {}",
                root.fulcio.len(),
                root.rekor.len(),
                root.ct.len(),
                root.tsas.len(),
                TrustRoot::public_good_path(&home.trust_cache()).display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_without_network_fails_and_caches_nothing() {
        let home = tempfile::tempdir().unwrap();
        let f = run(
            TrustArgs {
                command: TrustCommand::Refresh,
            },
            &Home::new(home.path()),
        )
        .unwrap_err();
        assert_eq!(f.kind, ExitKind::Registry);
        assert!(f.to_string().contains("trusted_root"), "{f}");
        assert!(!TrustRoot::public_good_path(&Home::new(home.path()).trust_cache()).exists());
    }
}
