//! `gantry logout REGISTRY`: erases the registry's credentials from where `login` stores them
//! (the credential helper Docker's config names for it, else gantry's `auth.json`), and from
//! gantry's `auth.json` in any case. Docker's own `config.json` is never changed. Not being
//! logged in is said, and is not an error.

use super::{home, load_config, registry_host};
use crate::credentials::{self, Sources};
use crate::exit::{Classify, ExitKind, Failure};
use crate::store::Store;

/// Arguments of `gantry logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// host[:port], or the name of a configured registry.
    pub registry: String,
}

/// Runs `gantry logout`.
pub fn run(a: LogoutArgs) -> Result<(), Failure> {
    let home = home()?;
    let config = load_config(&home)?.effective();
    let host = registry_host(&a.registry, &config)?.host;
    let _lock = Store::open(&home)
        .and_then(|s| s.lock())
        .kind(ExitKind::Io)?;
    let erased = credentials::erase(&host, &Sources::locate(&home))
        .map_err(|e| Failure::new(e.kind(), e))?;
    if erased.is_empty() {
        crate::outln!("not logged in to {host}");
    } else {
        let places: Vec<String> = erased.iter().map(ToString::to_string).collect();
        crate::outln!(
            "logged out of {host} (removed from {})",
            places.join(" and ")
        );
    }
    Ok(())
}
