//! `gantry pin NAME` and `gantry unpin NAME`: `update` leaves a pinned package alone (and says
//! so).

use super::home;
use crate::exit::{Classify, ExitKind, Failure};
use crate::store::{Store, StoreError};

/// Arguments of `gantry pin` and `gantry unpin`.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// Package name.
    pub name: String,
}

/// Pins (`pinned`) or unpins a package.
pub fn run(a: PinArgs, pinned: bool) -> Result<(), Failure> {
    let home = home()?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    store.set_pinned(&a.name, pinned).map_err(|e| {
        let kind = match e {
            StoreError::NotInstalled(_) | StoreError::BadName(_) => ExitKind::Usage,
            _ => ExitKind::Io,
        };
        Failure::new(kind, e)
    })?;
    if pinned {
        crate::outln!("pinned {}: update leaves it alone", a.name);
    } else {
        crate::outln!("unpinned {}", a.name);
    }
    Ok(())
}
