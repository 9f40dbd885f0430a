//! `gantry install REF`: lowers its arguments into an `InstallRequest`, runs the pipeline under the
//! store lock, and reports the outcome. Ctrl-C stops the install cleanly; the pipeline itself
//! lives in `crate::install` and never prints.

use super::{prepare, Wanted};
use crate::exit::{Classify, ExitKind, Failure};
use crate::install::Outcome;
use crate::store::Store;

/// Arguments of `gantry install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Image reference.
    pub reference: String,
    /// Install even though the image is not signed (refused where a signature policy exists).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Package and command name (default: last component of the repository path).
    #[arg(long)]
    pub name: Option<String>,
    /// Platform to install, OS/ARCH[/VARIANT] (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
    /// Replace a package of this name installed from another registry or repository.
    #[arg(long)]
    pub replace: bool,
}

/// Runs `gantry install`; `verbose` shows every hook verdict.
pub fn run(a: InstallArgs, verbose: bool) -> Result<(), Failure> {
    let p = prepare(Wanted {
        reference: &a.reference,
        name: a.name,
        platform: a.platform.as_deref(),
        allow_unsigned: a.allow_unsigned,
        replace: a.replace,
    })?;
    let store = Store::open(&p.home).kind(ExitKind::Io)?;
    let outcome = super::install_prepared(&p, &store, verbose)?;
    match outcome {
        Outcome::Installed {
            name,
            digest,
            previous,
        } => {
            let from = previous.map(|p| format!(" (was {p})")).unwrap_or_default();
            crate::outln!(
                "installed {name} {digest}{from} -> {}",
                store.wrapper_path(&name).display()
            );
        }
        Outcome::AlreadyInstalled { name, digest } => {
            crate::outln!("{name} is already installed at {digest}")
        }
    }
    Ok(())
}
