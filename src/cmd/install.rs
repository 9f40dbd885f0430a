//! `gantry install REF`: lowers its arguments into an `InstallRequest`, runs the pipeline under the
//! store lock, and reports the outcome. Ctrl-C stops the install cleanly; the pipeline itself
//! lives in `crate::install` and never prints.

use super::{prepare, Wanted};
use crate::exit::{Classify, ExitKind, Failure};
use crate::install::Outcome;
use crate::path_setup::on_path;
use crate::report::Verbosity;
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
    /// Judge an OCI layout by the signer policy of this configured registry (the one its images
    /// came from); refused where a system entry governs the layout.
    #[arg(long, value_name = "REGISTRY")]
    pub policy_from: Option<String>,
    /// Print the outcome as one JSON document (and progress as JSON lines on stderr).
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry install`; `-v` shows every hook verdict, `--quiet` nothing but errors.
pub fn run(a: InstallArgs, verbosity: Verbosity) -> Result<(), Failure> {
    let p = prepare(Wanted {
        reference: &a.reference,
        name: a.name,
        platform: a.platform.as_deref(),
        allow_unsigned: a.allow_unsigned,
        replace: a.replace,
        policy_from: a.policy_from.as_deref(),
    })?;
    let store = Store::open(&p.home).kind(ExitKind::Io)?;
    let first_package = store.package_names().is_ok_and(|n| n.is_empty());
    let outcome = super::install_prepared(&p, &super::load_hooks(&p)?, &store, verbosity, a.json)?;
    if a.json {
        let doc = match &outcome {
            Outcome::Installed {
                name,
                digest,
                previous,
            } => serde_json::json!({"schema": "gantry.install/v1", "outcome": "installed",
                "name": name, "digest": digest, "previous": previous,
                "wrapper": store.wrapper_path(name)}),
            Outcome::AlreadyInstalled { name, digest } => serde_json::json!({
                "schema": "gantry.install/v1", "outcome": "already-installed",
                "name": name, "digest": digest, "wrapper": store.wrapper_path(name)}),
        };
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    if verbosity.quiet() {
        return Ok(());
    }
    let installed = matches!(outcome, Outcome::Installed { .. });
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
    let bin = p.home.bin();
    if installed && first_package && !on_path(&bin, std::env::var_os("PATH").as_deref()) {
        crate::errln!(
            "hint: add {} to PATH: run `gantry path setup`",
            bin.display()
        );
    }
    Ok(())
}
