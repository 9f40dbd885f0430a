//! `gantry gc [--dry-run]`: plans a collection under the store lock (`crate::gc`), shows it, and
//! removes it unless `--dry-run`, saying how much was (or would be) freed.

use crate::exit::{Classify, ExitKind, Failure};
use crate::report::Verbosity;
use crate::store::{Home, Store};
use indicatif::HumanBytes;

/// Arguments of `gantry gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Show what would be removed and how much it would free; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `gantry gc`; `-v` lists every removal, `--quiet` shows nothing.
pub fn run(a: GcArgs, home: &Home, verbosity: Verbosity) -> Result<(), Failure> {
    let store = Store::open(home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    let plan = crate::gc::plan(&store).kind(ExitKind::Io)?;
    let say = !verbosity.quiet();
    if say && !plan.unrecorded.is_empty() {
        crate::errln!(
            "note: keeping all {} cached layer(s): {} installed version(s) do not record the layers they use ({}); install them again to let gc free layers",
            plan.kept_layers,
            plan.unrecorded.len(),
            plan.unrecorded.join(", ")
        );
    }
    let (verb, freed) = if a.dry_run {
        ("would remove", "would free")
    } else {
        ("removed", "freed")
    };
    if !a.dry_run {
        crate::gc::execute(&store, &plan).kind(ExitKind::Io)?;
    }
    if !say {
        return Ok(());
    }
    if verbosity.verbose() || a.dry_run {
        for l in &plan.layers {
            crate::outln!("{verb} layer {}", l.digest());
        }
        for l in &plan.leftovers {
            crate::outln!("{verb} leftover {}", l.path().display());
        }
    }
    if plan.is_empty() {
        crate::outln!(
            "nothing to remove ({} cached layer(s) in use)",
            plan.kept_layers
        );
        return Ok(());
    }
    crate::outln!(
        "{verb} {} unused layer(s) and {} leftover(s), {freed} {} ({} bytes); kept {} layer(s) in use",
        plan.layers.len(),
        plan.leftovers.len(),
        HumanBytes(plan.bytes),
        plan.bytes,
        plan.kept_layers
    );
    Ok(())
}
