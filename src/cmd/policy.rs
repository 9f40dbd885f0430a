//! `gantry policy …`: tooling for policy authors. `test` runs the `test_*` rules of a policy
//! directory like `opa test`; `eval` runs policies and plugins on one hook document and shows
//! every message with its source. This module parses arguments and prints; evaluation belongs to
//! `crate::policy`.

use crate::exit::{ExitKind, Failure};
use crate::policy::engine::{Engine, Layer, PluginSpec, PolicyError, PolicySpec};
use crate::policy::hook::{HookPoint, Verdict};
use crate::policy::testing::{self, TestError, TestReport};
use std::path::{Path, PathBuf};

/// `gantry policy`: write and check Rego policies and plugins.
#[derive(Debug, clap::Args)]
pub struct PolicyCommand {
    #[command(subcommand)]
    pub command: PolicySubcommand,
}

/// The subcommands of `gantry policy`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicySubcommand {
    /// Run the test_* rules of every *_test.rego file in DIR (all .rego files in DIR are loaded).
    Test {
        /// Directory of policies and tests, searched recursively.
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// Also list passing tests.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Evaluate policies and plugins at one hook and print every deny and warn message.
    Eval {
        /// The hook: resolve, manifest, signatures, attestations, contents or install.
        #[arg(long, value_parser = parse_hook)]
        hook: HookPoint,
        /// The hook document (the policy input), a JSON file.
        #[arg(long)]
        input: PathBuf,
        /// A Rego policy file (repeatable).
        #[arg(long = "policy")]
        policies: Vec<PathBuf>,
        /// A Wasm component plugin (repeatable); its name is the file stem.
        #[arg(long = "plugin")]
        plugins: Vec<PathBuf>,
        /// JSON for data.config of the policies and the config of the plugins.
        #[arg(long, default_value = "{}")]
        config: String,
        /// JSON for data.config of the built-in signature policy (see policies/signatures.rego).
        #[arg(long, default_value = "{}")]
        signature_policy: String,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_hook(s: &str) -> Result<HookPoint, String> {
    s.parse()
}

/// Runs a `gantry policy` subcommand.
pub fn run(cmd: PolicyCommand) -> Result<(), Failure> {
    match cmd.command {
        PolicySubcommand::Test { dir, verbose } => {
            let report = testing::run_dir(&dir).map_err(|e| match e {
                TestError::Dir { .. } => Failure::new(ExitKind::Io, e),
                TestError::Rego(_) => Failure::new(ExitKind::Usage, e),
            })?;
            print!("{}", render_tests(&report, verbose));
            match report.failed() {
                0 => Ok(()),
                n => Err(Failure::msg(ExitKind::Internal, format!("{n} policy test(s) failed"))),
            }
        }
        PolicySubcommand::Eval { hook, input, policies, plugins, config, signature_policy, json } => {
            let input_doc = read_json_file(&input)?;
            let config = parse_json("--config", &config)?;
            let signature_policy = parse_json("--signature-policy", &signature_policy)?;
            let policy_specs: Vec<PolicySpec> = policies
                .into_iter()
                .map(|path| PolicySpec { layer: Layer::User, path, config: config.clone() })
                .collect();
            let plugin_specs: Vec<PluginSpec> = plugins
                .into_iter()
                .map(|path| PluginSpec {
                    layer: Layer::User,
                    name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                    path,
                    config: config.clone(),
                    grants: Vec::new(),
                })
                .collect();
            let engine = Engine::load(&policy_specs, &plugin_specs, None).map_err(classify)?;
            let verdict = engine.evaluate(hook, &input_doc, &signature_policy);
            if json {
                let doc = serde_json::json!({ "hook": hook, "allowed": verdict.allowed(), "deny": verdict.deny, "warn": verdict.warn });
                println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Failure::new(ExitKind::Internal, e))?);
            } else {
                print!("{}", render_verdict(hook, &verdict));
            }
            if verdict.allowed() {
                Ok(())
            } else {
                Err(Failure::msg(ExitKind::Denied, format!("denied at the {hook} hook ({} message(s))", verdict.deny.len())))
            }
        }
    }
}

fn classify(e: PolicyError) -> Failure {
    let kind = match e {
        PolicyError::Builtin(_) | PolicyError::Runtime(_) => ExitKind::Internal,
        _ => ExitKind::Usage,
    };
    Failure::new(kind, e)
}

fn read_json_file(path: &Path) -> Result<serde_json::Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::msg(ExitKind::Io, format!("cannot read input {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::msg(ExitKind::Usage, format!("input {} is not JSON: {e}", path.display())))
}

fn parse_json(flag: &str, text: &str) -> Result<serde_json::Value, Failure> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Failure::msg(ExitKind::Usage, format!("{flag} is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Failure::msg(ExitKind::Usage, format!("{flag} must be a JSON object")));
    }
    Ok(value)
}

/// The text form of a test run; the last line is always `N passed, M failed`.
pub fn render_tests(report: &TestReport, verbose: bool) -> String {
    let mut out = String::new();
    for r in &report.results {
        match (&r.failure, verbose) {
            (Some(why), _) => out.push_str(&format!("FAIL {} ({}): {why}\n", r.name, r.file)),
            (None, true) => out.push_str(&format!("PASS {} ({:?})\n", r.name, r.duration)),
            (None, false) => {}
        }
    }
    out.push_str(&format!("{} passed, {} failed\n", report.passed(), report.failed()));
    out
}

/// The text form of a verdict: every message with its source, then the outcome.
pub fn render_verdict(hook: HookPoint, verdict: &Verdict) -> String {
    let mut out = String::new();
    for m in &verdict.deny {
        out.push_str(&format!("deny: {}\n      by {}\n", m.text, m.source));
    }
    for m in &verdict.warn {
        out.push_str(&format!("warn: {}\n      by {}\n", m.text, m.source));
    }
    let outcome = if verdict.allowed() { "allowed" } else { "denied" };
    out.push_str(&format!(
        "{hook}: {outcome} ({} deny, {} warn)\n",
        verdict.deny.len(),
        verdict.warn.len()
    ));
    out
}
