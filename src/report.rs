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

/// Human-readable progress on stderr; verbose mode adds the time since start to each step.
pub struct TextReporter {
    pub verbose: bool,
    pub start: std::time::Instant,
}

impl TextReporter {
    /// A reporter whose clock starts now.
    pub fn new(verbose: bool) -> Self {
        TextReporter {
            verbose,
            start: std::time::Instant::now(),
        }
    }
}

impl Reporter for TextReporter {
    fn step(&self, what: &str, detail: &str) {
        if self.verbose {
            crate::errln!(
                "{what:>12} {detail} [+{:.3}s]",
                self.start.elapsed().as_secs_f64()
            );
        } else {
            crate::errln!("{what:>12} {detail}");
        }
    }

    fn verdict(&self, hook: HookPoint, verdict: &Verdict, enforced: bool) {
        for m in &verdict.deny {
            let tag = if enforced {
                "denied"
            } else {
                "denied (warn mode)"
            };
            crate::errln!("{tag:>12} [{hook}] {} ({})", m.text, m.source);
        }
        for m in &verdict.warn {
            crate::errln!("{:>12} [{hook}] {} ({})", "warning", m.text, m.source);
        }
        if self.verbose && verdict.deny.is_empty() && verdict.warn.is_empty() {
            crate::errln!("{:>12} [{hook}]", "allowed");
        }
    }
}

/// Reports nothing.
pub struct Quiet;

impl Reporter for Quiet {
    fn step(&self, _: &str, _: &str) {}
    fn verdict(&self, _: HookPoint, _: &Verdict, _: bool) {}
}
