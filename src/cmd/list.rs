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
    store.recover_if_idle().kind(ExitKind::Io)?;
    let pkgs = store.list().kind(ExitKind::Io)?;
    if a.json {
        let packages: Vec<serde_json::Value> = pkgs
            .iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or_default();
                v["pinned"] = serde_json::Value::Bool(store.is_pinned(&p.name));
                v
            })
            .collect();
        let doc = serde_json::json!({"schema": "gantry.list/v1", "packages": packages});
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
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
