//! `gantry remove NAME`: removes an installed package and its command under the store lock. An
//! unknown or malformed name is a usage error; anything else that goes wrong is local I/O.

use super::home;
use crate::exit::{Classify, ExitKind, Failure};
use crate::report::Verbosity;
use crate::store::{Store, StoreError};

/// Arguments of `gantry remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Package name.
    pub name: String,
    /// Print the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry remove`; `--quiet` leaves out the confirmation.
pub fn run(a: RemoveArgs, verbosity: Verbosity) -> Result<(), Failure> {
    let name = a.name.as_str();
    let home = home()?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    store.clean_leftovers().kind(ExitKind::Io)?;
    store.remove(name).map_err(|e| {
        let kind = match e {
            StoreError::NotInstalled(_) | StoreError::BadName(_) => ExitKind::Usage,
            _ => ExitKind::Io,
        };
        Failure::new(kind, e)
    })?;
    if a.json {
        let doc =
            serde_json::json!({"schema": "gantry.remove/v1", "name": name, "outcome": "removed"});
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if !verbosity.quiet() {
        crate::outln!("removed {name}");
    }
    Ok(())
}
