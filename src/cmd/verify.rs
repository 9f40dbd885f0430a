//! `gantry verify REF`: judges an image's signatures and attestations against its registry's
//! policy exactly as install would, without unpacking or changing the store, and prints the
//! report (text or `--json`). A denial is exit code "denied" after the report is shown.

use super::{prepare, reporter, runtime, Wanted};
use crate::exit::{Classify, ExitKind, Failure};
use crate::install::Pipeline;
use crate::report::{Reporter, Verbosity};
use crate::store::Store;
use std::sync::Arc;

/// Arguments of `gantry verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Image reference.
    pub reference: String,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Judge as if --allow-unsigned were given to install.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Platform, OS/ARCH[/VARIANT] (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
    /// Judge an OCI layout by the signer policy of this configured registry (the one its images
    /// came from); refused where a system entry governs the layout.
    #[arg(long, value_name = "REGISTRY")]
    pub policy_from: Option<String>,
}

/// Runs `gantry verify`; `-v` shows every hook verdict (unless `--json`), `--quiet` no progress.
pub fn run(a: VerifyArgs, verbosity: Verbosity) -> Result<(), Failure> {
    let p = prepare(Wanted {
        reference: &a.reference,
        name: None,
        platform: a.platform.as_deref(),
        allow_unsigned: a.allow_unsigned,
        replace: false,
        policy_from: a.policy_from.as_deref(),
    })?;
    let hooks = super::load_hooks(&p)?;
    let store = Store::open(&p.home).kind(ExitKind::Io)?;
    let reporter: Arc<dyn Reporter> = if a.json {
        Arc::new(crate::report::Quiet)
    } else {
        reporter(false, verbosity)
    };
    let pipeline = Pipeline {
        store: &store,
        config: &p.config,
        policy: &p.policy,
        hooks: &hooks,
        reporter: reporter.clone(),
        cancel: Default::default(),
    };
    let rt = runtime()?;
    let (repo, version, req) = super::open_sources(&p, reporter, &rt)?;
    let report = rt
        .block_on(pipeline.verify(&repo, &version, &req))
        .map_err(|e| Failure::new(e.kind(), e))?;
    if a.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        let verified = report.signatures.iter().filter(|s| s.verified).count();
        crate::outln!(
            "{} {}: {verified}/{} signatures verified, {} attestations; {}",
            report.reference,
            report.digest,
            report.signatures.len(),
            report.attestations.len(),
            if report.allowed {
                "allowed by policy"
            } else {
                "DENIED by policy"
            }
        );
    }
    if report.allowed {
        Ok(())
    } else {
        Err(Failure::msg(
            ExitKind::Denied,
            format!(
                "{} does not satisfy the policy of registry '{}'",
                report.reference, report.registry
            ),
        ))
    }
}
