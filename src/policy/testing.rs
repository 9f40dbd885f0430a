//! The policy test runner behind `gantry policy test`: loads every `.rego` file under a directory
//! into one regorus engine and evaluates each `test_*` rule of the `*_test.rego` files, as
//! `opa test` does (`with` overrides included). It returns results; it never prints.

use crate::policy::rego::{one_line, RegoError, RegoModule, RegoSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors before any test runs: the directory or a file cannot be read, or a module does not parse.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("cannot read policy directory {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Rego(#[from] RegoError),
}

/// The result of one test rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestResult {
    /// `package.test_name`.
    pub name: String,
    /// The file declaring it.
    pub file: String,
    pub passed: bool,
    /// Why it failed (`false`, `undefined`, or the evaluation error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(skip)]
    pub duration: Duration,
}

/// All test results of a run, in file then declaration order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
}

impl TestReport {
    /// Number of passing tests.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    /// Number of failing tests.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// Runs every `test_*` rule of every `*_test.rego` file under `dir` (recursively), with all
/// `.rego` files under `dir` loaded.
pub fn run_dir(dir: &Path) -> Result<TestReport, TestError> {
    let mut files = Vec::new();
    collect_rego(dir, &mut files)?;
    files.sort();
    let modules = files
        .iter()
        .map(|f| RegoModule::from_file(f))
        .collect::<Result<Vec<_>, _>>()?;
    run_modules(&modules)
}

/// Runs the tests of already-read modules (those whose label ends in `_test.rego`).
pub fn run_modules(modules: &[RegoModule]) -> Result<TestReport, TestError> {
    let set = RegoSet::new("policy", modules)?;
    let mut engine = set.base().clone();
    let mut report = TestReport::default();
    for module in modules.iter().filter(|m| m.label.ends_with("_test.rego")) {
        let package = match package_of(&module.text) {
            Some(p) => p,
            None => continue,
        };
        for name in test_names(&module.text) {
            // Confirm with the parser that this is a rule head, not text in a comment or string.
            if !engine
                .has_declared_rule_rooted_at(&module.label, &name)
                .unwrap_or(false)
            {
                continue;
            }
            let start = Instant::now();
            let outcome = engine.eval_rule(format!("data.{package}.{name}"));
            let failure = match outcome {
                Ok(regorus::Value::Bool(true)) => None,
                Ok(regorus::Value::Undefined) => {
                    Some("undefined (a condition in the test body failed)".to_string())
                }
                Ok(other) => Some(format!("evaluated to {other}, not true")),
                Err(e) => Some(format!("error: {}", one_line(&e))),
            };
            report.results.push(TestResult {
                name: format!("{package}.{name}"),
                file: module.label.clone(),
                passed: failure.is_none(),
                failure,
                duration: start.elapsed(),
            });
        }
    }
    Ok(report)
}

fn collect_rego(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TestError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TestError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| TestError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_rego(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            out.push(path);
        }
    }
    Ok(())
}

/// The package path of a module (`a.b.c`), from its `package` line.
fn package_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim().to_string())
}

/// Names of rules that start a line with `test_`, in order, without repeats (a test may have
/// several bodies; OPA runs the rule once).
fn test_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_pass_their_tests() {
        let report = run_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap();
        let failures: Vec<String> = report
            .results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| format!("{}: {:?}", r.name, r.failure))
            .collect();
        assert!(
            failures.is_empty(),
            "failing policy tests:\n{}",
            failures.join("\n")
        );
        assert!(report.passed() > 20, "only {} tests ran", report.passed());
        // Every shipped policy has tests.
        for policy in [
            "signatures",
            "registries",
            "tags",
            "slsa",
            "vulnerabilities",
            "licenses",
            "files",
            "age",
        ] {
            assert!(
                report
                    .results
                    .iter()
                    .any(|r| r.file.ends_with(&format!("{policy}_test.rego"))),
                "{policy}"
            );
        }
    }

    #[test]
    fn failing_tests_are_named_with_their_reason() {
        let policy = RegoModule {
            label: "p.rego".into(),
            text: "package p\nimport rego.v1\ndeny contains \"no\" if input.bad\n".into(),
        };
        let tests = RegoModule {
            label: "p_test.rego".into(),
            text: "package p_test\nimport rego.v1\nimport data.p\n\
                   test_denies_bad if { count(p.deny) == 1 with input as {\"bad\": true} }\n\
                   test_wrong if { count(p.deny) == 1 with input as {\"bad\": false} }\n\
                   test_errs if { x := 1 / 0; x > 0 }\n\
                   # test_in_comment if { false }\n"
                .into(),
        };
        let report = run_modules(&[policy, tests]).unwrap();
        let names: Vec<(&str, bool)> = report
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.passed))
            .collect();
        assert_eq!(
            names,
            vec![
                ("p_test.test_denies_bad", true),
                ("p_test.test_wrong", false),
                ("p_test.test_errs", false)
            ]
        );
        assert!(report.results[1]
            .failure
            .as_deref()
            .unwrap()
            .starts_with("undefined"));
        assert_eq!((report.passed(), report.failed()), (1, 2));
    }

    #[test]
    fn a_directory_that_does_not_parse_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x_test.rego"),
            "package x\nimport rego.v1\ntest_a if {\n",
        )
        .unwrap();
        let err = run_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("x_test.rego line"), "{err}");
        assert!(run_dir(&dir.path().join("missing")).is_err());
    }
}
