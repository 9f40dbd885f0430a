//! `gantry doctor [--fix] [--json]`: runs the checks of `crate::doctor` under the store lock,
//! applies the safe repairs when asked, checks again, and prints what it found, what it did and
//! what is left with what to do about it. Exit 0 when nothing is left, the I/O code when
//! something is.

use crate::doctor::{self, Finding, Repair};
use crate::exit::{Classify, ExitKind, Failure};
use crate::report::Verbosity;
use crate::store::{Home, Store};

/// Arguments of `gantry doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Apply the safe repairs (wrappers, leftovers, unfinished versions) and say what was done.
    #[arg(long)]
    pub fix: bool,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry doctor`; `--quiet` shows only the problems left.
pub fn run(a: DoctorArgs, home: &Home, verbosity: Verbosity) -> Result<(), Failure> {
    if !home.root().exists() {
        if !verbosity.quiet() {
            crate::outln!(
                "no gantry home at {}: nothing to check",
                home.root().display()
            );
        }
        return Ok(());
    }
    let store = Store::open(home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    let path = std::env::var_os("PATH");
    let found = doctor::examine(&store, path.as_deref()).kind(ExitKind::Io)?;
    let (repairs, left) = if a.fix {
        let repairs = doctor::repair(&store, &found);
        let left = doctor::examine(&store, path.as_deref()).kind(ExitKind::Io)?;
        (repairs, left)
    } else {
        (Vec::new(), found)
    };
    if a.json {
        print_json(home, &repairs, &left);
    } else {
        print_text(home, &repairs, &left, verbosity);
    }
    if left.is_empty() {
        return Ok(());
    }
    let fixable = left.iter().filter(|f| f.fixable()).count();
    let hint = if fixable > 0 && !a.fix {
        format!(" ({fixable} of them repaired by `gantry doctor --fix`)")
    } else {
        String::new()
    };
    Err(Failure::msg(
        ExitKind::Io,
        format!(
            "{} problem(s) in {}{hint}",
            left.len(),
            home.root().display()
        ),
    ))
}

fn print_text(home: &Home, repairs: &[Repair], left: &[Finding], verbosity: Verbosity) {
    if !verbosity.quiet() {
        for r in repairs {
            match &r.outcome {
                Ok(done) => crate::outln!("fixed: {}: {done}", r.finding.problem()),
                Err(e) => crate::outln!("not fixed: {}: {e}", r.finding.problem()),
            }
        }
    }
    for f in left {
        crate::outln!("problem: {}\n    -> {}", f.problem(), f.advice());
    }
    if left.is_empty() && !verbosity.quiet() {
        crate::outln!("{} is healthy", home.root().display());
    }
}

fn print_json(home: &Home, repairs: &[Repair], left: &[Finding]) {
    let finding = |f: &Finding| {
        serde_json::json!({
            "kind": f.kind(),
            "problem": f.problem(),
            "fixable": f.fixable(),
            "advice": f.advice(),
        })
    };
    let doc = serde_json::json!({
        "home": home.root(),
        "healthy": left.is_empty(),
        "fixed": repairs.iter().map(|r| {
            let mut v = finding(&r.finding);
            match &r.outcome {
                Ok(done) => v["done"] = done.as_str().into(),
                Err(e) => v["error"] = e.to_string().into(),
            }
            v
        }).collect::<Vec<_>>(),
        "problems": left.iter().map(finding).collect::<Vec<_>>(),
    });
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("report serialises")
    );
}
