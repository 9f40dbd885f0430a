//! `gantry explain NAME`: tells, in plain words, the story of one package from the decision log:
//! each install attempt (when, which reference and digest, how it ended) and, per hook, whether it
//! was allowed, denied or warned and by which policy or plugin. It says so when the log's hash
//! chain is broken. It only reads the log; it never repairs or rewrites it.

use crate::exit::{ExitKind, Failure};
use crate::policy::decisions::{self, BrokenLink, DecisionOutcome, DecisionRecord};
use crate::store::Home;

/// `gantry explain`: why a package is (or is not) installed.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The package name (as in `gantry list`).
    pub name: String,
    /// Print the package's records as JSON lines instead of prose.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry explain` against the decision log of the gantry home `home`. Exit 4
/// (verification) when the chain is broken, after showing what could be read.
pub fn run(args: ExplainArgs, home: &Home) -> Result<(), Failure> {
    let path = home.decisions();
    let (records, broken) =
        decisions::read_lenient(&path).map_err(|e| Failure::new(ExitKind::Io, e))?;
    let mine: Vec<&DecisionRecord> = records.iter().filter(|r| r.package == args.name).collect();
    if mine.is_empty() && broken.is_none() {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("no decisions recorded for '{}' (install it first, or check the name with `gantry list`)", args.name),
        ));
    }
    if args.json {
        for r in &mine {
            crate::outln!(
                "{}",
                serde_json::to_string(r).map_err(|e| Failure::new(ExitKind::Internal, e))?
            );
        }
    } else {
        crate::out!(
            "{}",
            render(&args.name, &mine, records.len(), broken.as_ref())
        );
    }
    match broken {
        Some(link) => Err(Failure::msg(
            ExitKind::Verification,
            format!(
                "the decision log is broken at line {}: {}",
                link.line, link.reason
            ),
        )),
        None => Ok(()),
    }
}

/// The prose form of a package's decisions.
pub fn render(
    name: &str,
    mine: &[&DecisionRecord],
    total: usize,
    broken: Option<&BrokenLink>,
) -> String {
    let mut out = String::new();
    let plural = if mine.len() == 1 { "" } else { "s" };
    out.push_str(&format!(
        "{name}: {} decision{plural} in the log\n",
        mine.len()
    ));
    for r in mine {
        let digest = r.digest.as_deref().unwrap_or("no digest resolved");
        let how = match (r.outcome, r.action.as_deref()) {
            (DecisionOutcome::Installed, Some("update")) => "updated to",
            (DecisionOutcome::Installed, Some("rollback")) => "rolled back to",
            (DecisionOutcome::Installed, _) => "installed",
            (DecisionOutcome::Denied, Some("update")) => "update was denied",
            (DecisionOutcome::Denied, Some("rollback")) => "rollback was denied",
            (DecisionOutcome::Denied, _) => "was denied",
            (DecisionOutcome::Failed, Some("update")) => "update failed",
            (DecisionOutcome::Failed, _) => "failed",
        };
        out.push_str(&format!("\n{}: {} {how} ({digest})", r.time, r.reference));
        if let Some(mode) = &r.mode {
            out.push_str(&format!(", registry mode {mode}"));
        }
        out.push('\n');
        if let Some(error) = &r.error {
            out.push_str(&format!("  because: {error}\n"));
        }
        for h in &r.hooks {
            let v = &h.verdict;
            let state = match (v.deny.is_empty(), v.warn.is_empty()) {
                (true, true) => "allowed".to_string(),
                (true, false) => format!("allowed with {} warning(s)", v.warn.len()),
                (false, _) => format!("denied by {} message(s)", v.deny.len()),
            };
            out.push_str(&format!("  {:<13} {state}\n", h.hook.as_str()));
            for m in &v.deny {
                out.push_str(&format!("    denied: {}\n      by {}\n", m.text, m.source));
            }
            for m in &v.warn {
                out.push_str(&format!("    warned: {}\n      by {}\n", m.text, m.source));
            }
        }
    }
    match broken {
        Some(link) => out.push_str(&format!(
            "\nThe decision log's hash chain is BROKEN at line {} ({}): that record or an earlier one was \
             changed or removed, so the history above from that point on cannot be trusted.\n",
            link.line, link.reason
        )),
        None => out.push_str(&format!("\nThe decision log's hash chain is intact ({total} records checked).\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decisions::{append, HookDecision};
    use crate::policy::hook::{HookPoint, Verdict};

    #[test]
    fn explains_each_hook_and_flags_a_broken_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("decisions.jsonl");
        let mut denied = DecisionRecord::new(
            "jq",
            "localhost/jq:latest",
            Some("sha256:aa"),
            DecisionOutcome::Denied,
        );
        let mut v = Verdict::default();
        v.deny(
            "policy tags.rego (package gantry.tags) deny",
            "tag 'latest' is mutable",
        );
        denied.hooks.push(HookDecision {
            hook: HookPoint::Resolve,
            verdict: v,
        });
        append(&log, denied).unwrap();
        let mut ok = DecisionRecord::new(
            "jq",
            "localhost/jq:1.7",
            Some("sha256:bb"),
            DecisionOutcome::Installed,
        );
        ok.hooks.push(HookDecision {
            hook: HookPoint::Resolve,
            verdict: Verdict::default(),
        });
        append(&log, ok).unwrap();

        let (records, broken) = decisions::read_lenient(&log).unwrap();
        let mine: Vec<&DecisionRecord> = records.iter().collect();
        let text = render("jq", &mine, records.len(), broken.as_ref());
        assert!(text.contains("localhost/jq:latest was denied"), "{text}");
        assert!(
            text.contains("by policy tags.rego (package gantry.tags) deny"),
            "{text}"
        );
        assert!(text.contains("localhost/jq:1.7 installed"), "{text}");
        assert!(text.contains("intact (2 records checked)"), "{text}");

        let tampered = std::fs::read_to_string(&log)
            .unwrap()
            .replacen("latest", "1.6", 1);
        std::fs::write(&log, tampered).unwrap();
        let (records, broken) = decisions::read_lenient(&log).unwrap();
        let mine: Vec<&DecisionRecord> = records.iter().collect();
        let text = render("jq", &mine, records.len(), broken.as_ref());
        assert!(text.contains("BROKEN at line 2"), "{text}");
        let err = run(
            ExplainArgs {
                name: "jq".into(),
                json: true,
            },
            &Home::new(dir.path()),
        )
        .unwrap_err();
        assert_eq!(err.kind, ExitKind::Verification);
        let err = run(
            ExplainArgs {
                name: "nope".into(),
                json: false,
            },
            &Home::new(dir.path().join("empty")),
        )
        .unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
    }
}
