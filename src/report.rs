//! How stages tell the user what is happening without printing: the pipeline calls a
//! [`Reporter`]; the CLI picks the implementation (text on stderr, or nothing for `--json`).

use crate::policy::hook::{HookPoint, Verdict};

/// Receives progress and results from the pipeline.
pub trait Reporter: Send + Sync {
    /// A stage started or finished, with a one-line detail.
    fn step(&self, what: &str, detail: &str);
    /// A hook's verdict (called for every hook, allow included).
    fn verdict(&self, hook: HookPoint, verdict: &Verdict, enforced: bool);
}

/// Human-readable progress on stderr.
pub struct TextReporter {
    pub verbose: bool,
}

impl Reporter for TextReporter {
    fn step(&self, what: &str, detail: &str) {
        eprintln!("{what:>12} {detail}");
    }

    fn verdict(&self, hook: HookPoint, verdict: &Verdict, enforced: bool) {
        for m in &verdict.deny {
            let tag = if enforced { "denied" } else { "denied (warn mode)" };
            eprintln!("{tag:>12} [{hook}] {} ({})", m.text, m.source);
        }
        for m in &verdict.warn {
            eprintln!("{:>12} [{hook}] {} ({})", "warning", m.text, m.source);
        }
        if self.verbose && verdict.deny.is_empty() && verdict.warn.is_empty() {
            eprintln!("{:>12} [{hook}]", "allowed");
        }
    }
}

/// Reports nothing.
pub struct Quiet;

impl Reporter for Quiet {
    fn step(&self, _: &str, _: &str) {}
    fn verdict(&self, _: HookPoint, _: &Verdict, _: bool) {}
}
