//! `gantry purge [--yes]`: removes the whole home after a confirmation typed on a terminal (or
//! `--yes`), under the store lock so no install is cut in half. Without a terminal and without
//! `--yes` it refuses (usage error). What may be removed is decided by `crate::purge::check`.

use crate::exit::{Classify, ExitKind, Failure};
use crate::purge::{PurgeError, Purgeable};
use crate::report::Verbosity;
use crate::store::{Home, Store};
use std::io::IsTerminal;

/// Arguments of `gantry purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Do not ask: remove the home (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// Runs `gantry purge`.
pub fn run(a: PurgeArgs, home: &Home, verbosity: Verbosity) -> Result<(), Failure> {
    let user_home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let target = crate::purge::check(home, user_home.as_deref().map(std::path::Path::new))
        .map_err(classify)?;
    let Some(target) = target else {
        if !verbosity.quiet() {
            crate::outln!("nothing to purge: {} does not exist", home.root().display());
        }
        return Ok(());
    };
    let store = Store::open(home).kind(ExitKind::Io)?;
    let packages = store.package_names().map(|n| n.len()).unwrap_or(0);
    if !a.yes && !confirmed(&target, packages)? {
        crate::outln!("nothing was removed");
        return Ok(());
    }
    {
        let _lock = store.lock().kind(ExitKind::Io)?;
        // Checked again under the lock: another process may have changed the home meanwhile.
        let target = crate::purge::check(home, user_home.as_deref().map(std::path::Path::new))
            .map_err(classify)?;
        if let Some(t) = target {
            crate::purge::purge(t).map_err(classify)?;
        }
    }
    if !verbosity.quiet() {
        crate::outln!(
            "removed {} ({packages} package(s)); `gantry path unset` takes its bin directory off PATH",
            home.root().display()
        );
    }
    Ok(())
}

/// Asks on the terminal; refuses when stdin is not one.
fn confirmed(target: &Purgeable, packages: usize) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!(
                "refusing to remove {} without confirmation: stdin is not a terminal; pass --yes",
                target.path().display()
            ),
        ));
    }
    eprint_prompt(&format!(
        "remove {} and everything in it ({packages} installed package(s))? [y/N] ",
        target.path().display()
    ));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).kind(ExitKind::Io)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn eprint_prompt(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

fn classify(e: PurgeError) -> Failure {
    let kind = match e {
        PurgeError::LooksWrong { .. } | PurgeError::Foreign { .. } => ExitKind::Usage,
        PurgeError::Io { .. } | PurgeError::Store(_) => ExitKind::Io,
    };
    Failure::new(kind, e)
}
