//! `gantry policy …`: tooling for policy authors. `test` runs the `test_*` rules of a policy
//! directory like `opa test`; `eval` runs policies and plugins on one hook document and shows
//! every message with its source. This module parses arguments and prints; evaluation belongs to
//! `crate::policy`.

use crate::exit::{ExitKind, Failure};
use crate::policy::engine::{Engine, Layer, PluginSpec, PolicyError, PolicySpec};
use crate::policy::hook::{HookPoint, Verdict};
use crate::policy::plugin::KNOWN_GRANTS;
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
    /// Push DIR's Rego policies, their JSON data and Wasm plugins as a signed bundle (an OCI
    /// artifact) that a system layer can name with [[bundles]].
    Publish {
        /// The directory of .rego, .json and .wasm files.
        dir: PathBuf,
        /// Where to push it: HOST/REPOSITORY:TAG.
        #[arg(long)]
        to: String,
        /// The cosign private key to sign it with (password from GANTRY_PASSWORD or a prompt).
        #[arg(long)]
        key: PathBuf,
    },
    /// Refresh every bundle the system layer names now, and verify it.
    Pull,
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
        /// Also evaluate the built-in signature policy, with this JSON as its data.config (see
        /// policies/signatures.rego); without it only the named policies and plugins run.
        #[arg(long)]
        signature_policy: Option<String>,
        /// Grant every --plugin a WASI capability by name (repeatable), as a registry entry's
        /// `grants` would.
        #[arg(long = "grant", value_parser = grant_parser())]
        grants: Vec<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_hook(s: &str) -> Result<HookPoint, String> {
    s.parse()
}

/// The grant names gantry knows, each with what it provides.
fn grant_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        KNOWN_GRANTS
            .iter()
            .map(|(name, what)| clap::builder::PossibleValue::new(name).help(what)),
    )
}

/// Runs a `gantry policy` subcommand.
pub fn run(cmd: PolicyCommand) -> Result<(), Failure> {
    match cmd.command {
        PolicySubcommand::Publish { dir, to, key } => publish_bundle(&dir, &to, &key),
        PolicySubcommand::Pull => {
            let home = super::home()?;
            let layered = super::load_config(&home)?;
            let net = layered.effective().network.net();
            let got = crate::bundles::ensure_all(&layered.system.bundles, &home, &net, true)
                .map_err(|e| Failure::new(e.exit_kind(), e))?;
            for (b, u) in layered.system.bundles.iter().zip(&got) {
                crate::outln!(
                    "{} {}: verified, {} policy file(s), {} plugin(s)",
                    b.reference,
                    u.digest,
                    u.policies.len(),
                    u.plugins.len()
                );
            }
            if got.is_empty() {
                crate::outln!("the system layer names no policy bundle");
            }
            Ok(())
        }
        PolicySubcommand::Test { dir, verbose } => {
            let report = testing::run_dir(&dir).map_err(|e| match e {
                TestError::Dir { .. } => Failure::new(ExitKind::Io, e),
                TestError::Rego(_) => Failure::new(ExitKind::Usage, e),
            })?;
            crate::out!("{}", render_tests(&report, verbose));
            match report.failed() {
                0 => Ok(()),
                n => Err(Failure::msg(
                    ExitKind::Internal,
                    format!("{n} policy test(s) failed"),
                )),
            }
        }
        PolicySubcommand::Eval {
            hook,
            input,
            policies,
            plugins,
            config,
            signature_policy,
            grants,
            json,
        } => {
            let input_doc = read_json_file(&input)?;
            let config = parse_json("--config", &config)?;
            let signature_policy = signature_policy
                .map(|p| parse_json("--signature-policy", &p))
                .transpose()?;
            let policy_specs: Vec<PolicySpec> = policies
                .into_iter()
                .map(|path| PolicySpec {
                    layer: Layer::User,
                    path,
                    config: config.clone(),
                })
                .collect();
            let plugin_specs: Vec<PluginSpec> = plugins
                .into_iter()
                .map(|path| PluginSpec {
                    layer: Layer::User,
                    name: path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    path,
                    config: config.clone(),
                    grants: grants.clone(),
                })
                .collect();
            let engine = Engine::load(&policy_specs, &plugin_specs, None).map_err(classify)?;
            let verdict = engine.evaluate_json(hook, &input_doc, signature_policy.as_ref());
            if json {
                let doc = serde_json::json!({ "hook": hook, "allowed": verdict.allowed(), "deny": verdict.deny, "warn": verdict.warn });
                crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&doc)
                        .map_err(|e| Failure::new(ExitKind::Internal, e))?
                );
            } else {
                crate::out!("{}", render_verdict(hook, &verdict));
            }
            if verdict.allowed() {
                Ok(())
            } else {
                Err(Failure::msg(
                    ExitKind::Denied,
                    format!(
                        "denied at the {hook} hook ({} message(s))",
                        verdict.deny.len()
                    ),
                ))
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
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::msg(
            ExitKind::Io,
            format!("cannot read input {}: {e}", path.display()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::msg(
            ExitKind::Usage,
            format!("input {} is not JSON: {e}", path.display()),
        )
    })
}

fn parse_json(flag: &str, text: &str) -> Result<serde_json::Value, Failure> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Failure::msg(ExitKind::Usage, format!("{flag} is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("{flag} must be a JSON object"),
        ));
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
    out.push_str(&format!(
        "{} passed, {} failed\n",
        report.passed(),
        report.failed()
    ));
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
    let outcome = if verdict.allowed() {
        "allowed"
    } else {
        "denied"
    };
    out.push_str(&format!(
        "{hook}: {outcome} ({} deny, {} warn)\n",
        verdict.deny.len(),
        verdict.warn.len()
    ));
    out
}

/// `gantry policy publish`: builds the bundle, pushes it and signs it.
fn publish_bundle(dir: &Path, to: &str, key: &Path) -> Result<(), Failure> {
    let home = super::home()?;
    let img = crate::bundles::build(dir).map_err(|e| Failure::new(ExitKind::Usage, e))?;
    let (host, rest) = to.split_once('/').ok_or_else(|| {
        Failure::msg(
            ExitKind::Usage,
            format!("--to {to}: give HOST/REPOSITORY:TAG"),
        )
    })?;
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (rest, "latest"),
    };
    let password = super::keygen::password(false)?;
    let signing = crate::trust::keygen::load_private_key(key, &password)
        .map_err(|e| Failure::new(ExitKind::Usage, e))?;
    let registry = crate::registry::Registry::new(host, repository, false, &home)
        .map_err(|e| Failure::new(ExitKind::Registry, e))?;
    let target = crate::publish::Target::Registry {
        registry,
        tag: tag.to_string(),
    };
    let rt = super::runtime()?;
    let push_err = |e: crate::publish::PublishError| Failure::new(ExitKind::Registry, e);
    let digest = rt
        .block_on(crate::publish::push(&img, &target))
        .map_err(push_err)?;
    let attachments = crate::publish::Attachments {
        key: &signing,
        repository: format!("{host}/{repository}"),
        attestations: Vec::new(),
    };
    rt.block_on(crate::publish::attach(&target, &digest, &attachments))
        .map_err(push_err)?;
    crate::outln!("{to} {digest}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

    fn eval(dir: &Path, input: &str, policies: Vec<PathBuf>) -> Result<(), Failure> {
        let input_path = dir.join("input.json");
        std::fs::write(&input_path, input).unwrap();
        run(PolicyCommand {
            command: PolicySubcommand::Eval {
                hook: HookPoint::Resolve,
                input: input_path,
                policies,
                plugins: Vec::new(),
                config: "{}".into(),
                signature_policy: None,
                grants: Vec::new(),
                json: false,
            },
        })
    }

    #[test]
    fn test_subcommand_passes_the_shipped_policies_and_fails_a_broken_test() {
        run(PolicyCommand {
            command: PolicySubcommand::Test {
                dir: POLICIES.into(),
                verbose: false,
            },
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a_test.rego"),
            "package a_test\nimport rego.v1\ntest_fails if { 1 == 2 }\n",
        )
        .unwrap();
        let err = run(PolicyCommand {
            command: PolicySubcommand::Test {
                dir: dir.path().into(),
                verbose: true,
            },
        })
        .unwrap_err();
        assert_eq!(err.kind, ExitKind::Internal);
        let report = testing::run_dir(dir.path()).unwrap();
        let text = render_tests(&report, true);
        assert!(text.contains("FAIL a_test.test_fails"), "{text}");
        assert_eq!(text.lines().last(), Some("0 passed, 1 failed"));
    }

    #[test]
    fn eval_exits_denied_on_deny_and_usage_on_a_parse_error() {
        let dir = tempfile::tempdir().unwrap();
        let tags = PathBuf::from(POLICIES).join("tags.rego");
        let latest = r#"{"image": {"reference": "ghcr.io/corp/tool:latest", "tag": "latest"}}"#;
        assert_eq!(
            eval(dir.path(), latest, vec![tags.clone()])
                .unwrap_err()
                .kind,
            ExitKind::Denied
        );
        let fixed = r#"{"image": {"reference": "ghcr.io/corp/tool:1.0", "tag": "1.0"}}"#;
        eval(dir.path(), fixed, vec![tags]).unwrap();
        let bad = dir.path().join("bad.rego");
        std::fs::write(&bad, "package bad\nimport rego.v1\ndeny contains if {\n").unwrap();
        let err = eval(dir.path(), fixed, vec![bad]).unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
        assert!(err.to_string().contains("bad.rego line 3"), "{err}");
    }

    #[test]
    fn verdict_text_names_every_source() {
        let mut v = Verdict::default();
        v.deny("policy t.rego (package t) deny", "no");
        v.warn("plugin p export resolve", "hmm");
        let text = render_verdict(HookPoint::Resolve, &v);
        assert!(
            text.contains("deny: no\n      by policy t.rego (package t) deny"),
            "{text}"
        );
        assert!(
            text.contains("warn: hmm\n      by plugin p export resolve"),
            "{text}"
        );
        assert!(text.ends_with("resolve: denied (1 deny, 1 warn)\n"));
    }
}
