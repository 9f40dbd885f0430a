//! `gantry audit [NAME…] [--json]`: judges what is installed again, by the policy in force now,
//! over the facts recorded when each package was installed (no network), and lists the packages
//! the current policy would no longer allow, with the reasons. Exit 3 when any is listed, so an
//! enterprise that tightens its policy can find what no longer passes.

use super::{home, load_config};
use crate::exit::{Classify, ExitKind, Failure};
use crate::lifecycle;
use crate::store::Store;
use serde::Serialize;

/// Arguments of `gantry audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Packages to audit (default: every installed one).
    pub names: Vec<String>,
    /// Print the findings as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// One package's finding.
#[derive(Debug, Serialize)]
struct Finding {
    name: String,
    digest: String,
    reference: String,
    allowed: bool,
    /// Denied, but the registry is in warn mode.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    warn_mode: bool,
    deny: Vec<String>,
    warn: Vec<String>,
}

/// Runs `gantry audit`.
pub fn run(a: AuditArgs) -> Result<(), Failure> {
    let home = home()?;
    let layered = load_config(&home)?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let mut packages = store.list().kind(ExitKind::Io)?;
    if !a.names.is_empty() {
        if let Some(missing) = a
            .names
            .iter()
            .find(|n| !packages.iter().any(|p| &p.name == *n))
        {
            return Err(Failure::msg(
                ExitKind::Usage,
                format!("package '{missing}' is not installed"),
            ));
        }
        packages.retain(|p| a.names.contains(&p.name));
    }
    let mut findings = Vec::new();
    for meta in &packages {
        let mut f = Finding {
            name: meta.name.clone(),
            digest: meta.digest.clone(),
            reference: meta.reference.clone(),
            allowed: false,
            warn_mode: false,
            deny: Vec::new(),
            warn: Vec::new(),
        };
        match store
            .recorded_document(&meta.name, &meta.digest)
            .kind(ExitKind::Io)?
        {
            None => f.deny.push(
                "installed before gantry recorded the facts it was judged on; it cannot be judged offline (install it again)".into(),
            ),
            Some(doc) => match lifecycle::policy_for(&layered, &home, meta) {
                Err(e) => f.deny.push(e.to_string()),
                Ok((policy, hooks)) => {
                    let j = lifecycle::judge(&hooks, &policy, &doc);
                    f.deny = j.reasons();
                    f.warn = j
                        .hooks
                        .iter()
                        .flat_map(|h| {
                            h.verdict
                                .warn
                                .iter()
                                .map(move |m| format!("[{}] {} ({})", h.hook, m.text, m.source))
                        })
                        .collect();
                    f.warn_mode = j.warn_mode && !f.deny.is_empty();
                    f.allowed = j.allowed();
                }
            },
        }
        findings.push(f);
    }
    let refused = findings.iter().filter(|f| !f.allowed).count();
    if a.json {
        let doc = serde_json::json!({
            "schema": "gantry.audit/v1",
            "packages": findings,
            "refused": refused,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for f in &findings {
            let verdict = match (f.allowed, f.warn_mode) {
                (true, false) => "allowed",
                (true, true) => "denied (warn mode)",
                (false, _) => "DENIED",
            };
            crate::outln!(
                "{:<20} {:<19} {verdict}",
                f.name,
                &f.digest[..f.digest.len().min(19)]
            );
            for d in &f.deny {
                crate::outln!("    - {d}");
            }
            for w in &f.warn {
                crate::outln!("    warning: {w}");
            }
        }
        if findings.is_empty() {
            crate::outln!("nothing installed");
        }
    }
    if refused > 0 {
        return Err(Failure::msg(
            ExitKind::Denied,
            format!(
                "{refused} of {} installed packages would not be allowed by the current policy",
                findings.len()
            ),
        ));
    }
    Ok(())
}
