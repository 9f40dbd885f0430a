//! `gantry list [--json]`: prints the installed packages, one line each (name, reference, short
//! digest, whether a signature verified), or their metadata as JSON. It only reads the store.

use super::home;
use crate::exit::{Classify, ExitKind, Failure};
use crate::store::Store;

/// Arguments of `gantry list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry list`.
pub fn run(a: ListArgs) -> Result<(), Failure> {
    let home = home()?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let pkgs = store.list().kind(ExitKind::Io)?;
    if a.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&pkgs).expect("metadata serialises")
        );
        return Ok(());
    }
    if pkgs.is_empty() {
        crate::outln!("nothing installed");
    }
    for p in pkgs {
        let signed = if p.signatures.iter().any(|s| s.verified) {
            "signed"
        } else {
            "unsigned"
        };
        crate::outln!(
            "{:<20} {:<60} {} {}",
            p.name,
            p.reference,
            &p.digest[..p.digest.len().min(19)],
            signed
        );
    }
    Ok(())
}
