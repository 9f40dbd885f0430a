//! `gantry rollback NAME [--to DIGEST]`: makes an earlier kept version current again. The version
//! is judged first by the policy in force now, over the facts recorded when it was installed (no
//! network): a version the current policy would deny, or one with no recorded facts, is not
//! rolled back to. The decision is recorded either way.

use super::{home, load_config};
use crate::exit::{Classify, ExitKind, Failure};
use crate::lifecycle::{self, Judgement};
use crate::policy::decisions::{self, DecisionOutcome, DecisionRecord};
use crate::store::{Store, StoreError, VersionInfo};

/// Arguments of `gantry rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Package name.
    pub name: String,
    /// The kept version to go back to (a digest, or a unique prefix of one); default: the one
    /// installed before the current one.
    #[arg(long)]
    pub to: Option<String>,
    /// Print the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry rollback`.
pub fn run(a: RollbackArgs) -> Result<(), Failure> {
    let home = home()?;
    let layered = load_config(&home)?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    store.clean_leftovers().kind(ExitKind::Io)?;
    let current = store.current_metadata(&a.name).map_err(not_installed)?;
    let target = pick(
        &store.versions(&a.name).kind(ExitKind::Io)?,
        a.to.as_deref(),
        &a.name,
    )?;
    let record = |outcome, judgement: Option<&Judgement>, error: Option<String>| {
        let mut r = DecisionRecord::new(
            &a.name,
            &target.metadata.reference,
            Some(&target.digest),
            outcome,
        );
        r.action = Some("rollback".into());
        if let Some(j) = judgement {
            r.hooks = j.hooks.clone();
            r.mode = Some(if j.warn_mode { "warn" } else { "enforce" }.into());
        }
        r.error = error;
        let syslog = layered.effective().decision_log.syslog;
        decisions::append_and_forward(
            &home.decisions(),
            &home.decision_outbox(),
            syslog.as_deref(),
            r,
        )
        .map_err(|e| {
            Failure::msg(
                ExitKind::Io,
                format!(
                    "{}: cannot record the decision: {e}; nothing was changed",
                    home.decisions().display()
                ),
            )
        })
    };
    let Some(mut doc) = store
        .recorded_document(&a.name, &target.digest)
        .kind(ExitKind::Io)?
    else {
        let why = format!(
            "{} {} was installed before gantry recorded the facts it was judged on, so the current policy cannot judge it offline; not rolled back (install it again instead)",
            a.name, target.digest
        );
        record(DecisionOutcome::Denied, None, Some(why.clone()))?;
        return Err(Failure::msg(ExitKind::Denied, why));
    };
    if let Some(install) = doc.install.as_mut() {
        install.previous_digest = Some(current.digest.clone());
    }
    let (policy, hooks) = lifecycle::policy_for(&layered, &home, &target.metadata)
        .map_err(|e| Failure::new(ExitKind::Usage, e))?;
    let judgement = lifecycle::judge(&hooks, &policy, &doc);
    for h in &judgement.hooks {
        for m in &h.verdict.warn {
            crate::errln!("{:>12} [{}] {} ({})", "warning", h.hook, m.text, m.source);
        }
    }
    if !judgement.allowed() {
        let reasons = judgement.reasons();
        let why = format!(
            "rollback of {} to {} denied by the current policy:\n  - {}",
            a.name,
            target.digest,
            reasons.join("\n  - ")
        );
        record(DecisionOutcome::Denied, Some(&judgement), Some(why.clone()))?;
        return Err(Failure::msg(ExitKind::Denied, why));
    }
    // The decision is on disk before the version becomes current.
    record(DecisionOutcome::Installed, Some(&judgement), None)?;
    store
        .set_current(&a.name, &target.digest)
        .map_err(|e| Failure::new(ExitKind::Io, e))?;
    if a.json {
        let doc = serde_json::json!({
            "schema": "gantry.rollback/v1",
            "name": a.name,
            "digest": target.digest,
            "previous": current.digest,
            "reference": target.metadata.reference,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        crate::outln!(
            "rolled back {} to {} ({}; was {})",
            a.name,
            target.digest,
            target.metadata.reference,
            current.digest
        );
    }
    Ok(())
}

fn not_installed(e: StoreError) -> Failure {
    let kind = match e {
        StoreError::NotInstalled(_) | StoreError::BadName(_) => ExitKind::Usage,
        _ => ExitKind::Io,
    };
    Failure::new(kind, e)
}

/// The version to go back to: `to` (a digest or unique prefix) among the kept ones that are not
/// current, else the newest of those.
fn pick(versions: &[VersionInfo], to: Option<&str>, name: &str) -> Result<VersionInfo, Failure> {
    let others: Vec<&VersionInfo> = versions.iter().filter(|v| !v.current).collect();
    let kept = || {
        versions
            .iter()
            .map(|v| {
                let mark = if v.current { " (current)" } else { "" };
                format!("{} {}{mark}", v.digest, v.metadata.installed_at)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(to) = to else {
        return others.first().map(|v| (*v).clone()).ok_or_else(|| {
            Failure::msg(
                ExitKind::Usage,
                format!("{name} has no earlier version kept to roll back to (kept: {}; keep_versions sets how many are kept)", kept()),
            )
        });
    };
    let wanted = to.strip_prefix("sha256:").unwrap_or(to);
    let matching: Vec<&&VersionInfo> = others
        .iter()
        .filter(|v| v.digest.trim_start_matches("sha256:").starts_with(wanted))
        .collect();
    match matching.as_slice() {
        [one] => Ok((**one).clone()),
        [] if versions
            .iter()
            .any(|v| v.current && v.digest.contains(wanted)) =>
        {
            Err(Failure::msg(
                ExitKind::Usage,
                format!("{to} is the current version of {name}"),
            ))
        }
        [] => Err(Failure::msg(
            ExitKind::Usage,
            format!("{name} has no kept version {to} (kept: {})", kept()),
        )),
        _ => Err(Failure::msg(
            ExitKind::Usage,
            format!("{to} matches more than one kept version of {name}: give more of the digest"),
        )),
    }
}
