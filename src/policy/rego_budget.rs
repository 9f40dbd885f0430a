//! The time budget of one Rego rule: how long `deny` or `warn` of one package may run at one hook
//! before the evaluation is stopped and denies. It grows with the number of files the document
//! lists, so a large image is not refused because the interpreter is slow, and is capped, so a
//! runaway policy ends within seconds whatever the document. It owns these figures only; the
//! evaluation that applies them is [`crate::policy::rego`]'s.

use regorus::utils::limits::ExecutionTimerConfig;
use std::num::NonZeroU32;
use std::time::Duration;

/// Wall-clock budget for evaluating one rule (`deny` or `warn`) of one package at one hook of a
/// document without files. Real policies take well under a millisecond there; this only stops
/// runaway comprehensions.
pub const EVAL_TIME_BASE: Duration = Duration::from_millis(250);

/// Added to [`EVAL_TIME_BASE`] for every entry of `input.files`: a policy that looks at each file
/// takes time in proportion, and a legitimate large image must not be denied because the
/// interpreter is slow. Measured in a release build on a 2-core machine: the per-file rules of
/// `policies/files.rego` (which it still runs whenever its whole-list proof fails, e.g. on an
/// image with one setuid file) cost ~10 µs per file idle and 14 µs loaded (190-285 ms over 20k
/// files); its whole-list proof about 1 µs. 50 µs leaves room for a policy doing a few times that
/// per-file work on a loaded machine.
pub const EVAL_TIME_PER_FILE: Duration = Duration::from_micros(50);

/// The most any one rule may take, whatever the document's size: a runaway policy over a huge
/// image still ends (and denies) within seconds. Reached at 95k files.
pub const EVAL_TIME_CAP: Duration = Duration::from_secs(5);

/// How many work units the interpreter counts between two looks at the clock.
const TIMER_CHECK_INTERVAL: u32 = 32;

/// The budget of one rule over a document listing `files` files:
/// [`EVAL_TIME_BASE`] + `files` × [`EVAL_TIME_PER_FILE`], at most [`EVAL_TIME_CAP`].
pub fn eval_time_limit(files: usize) -> Duration {
    let files = u32::try_from(files).unwrap_or(u32::MAX);
    EVAL_TIME_BASE
        .saturating_add(EVAL_TIME_PER_FILE.saturating_mul(files))
        .min(EVAL_TIME_CAP)
}

/// The budget of one rule over `input`: grows with the length of `input.files`.
pub fn eval_time_limit_for(input: &regorus::Value) -> Duration {
    match &input["files"] {
        regorus::Value::Array(files) => eval_time_limit(files.len()),
        _ => eval_time_limit(0),
    }
}

/// The interpreter's timer, set to `limit`.
pub(crate) fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).expect("nonzero"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Engine, HookPoint, Layer, PolicySpec, Verdict};
    use serde_json::json;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    /// A contents document of `n` plain files and directories under `usr/`, as an image lists
    /// them; `tweak` edits the JSON of file `i` (to plant a bad one).
    fn contents(n: usize, tweak: impl Fn(usize, &mut serde_json::Value)) -> serde_json::Value {
        let files: Vec<_> = (0..n)
            .map(|i| {
                let (path, kind, mode) = match i % 10 {
                    0 => (format!("usr/lib/tool/d{}", i / 10), "dir", 0o755),
                    _ => (format!("usr/lib/tool/d{}/f{i}.so", i / 10), "file", 0o644),
                };
                let mut f = json!({"path": path, "type": kind, "mode": mode, "original_mode": mode, "size": 4096 + i});
                tweak(i, &mut f);
                f
            })
            .collect();
        json!({"image": {"reference": "ghcr.io/acme/tool:1.2"}, "files": files})
    }

    fn engine(path: PathBuf, config: serde_json::Value) -> Engine {
        let spec = PolicySpec {
            layer: Layer::User,
            path,
            config,
        };
        Engine::load(&[spec], &[], None).unwrap()
    }

    fn files_rego() -> Engine {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/files.rego");
        engine(path, json!({"allowed_prefixes": ["usr/", "etc/"]}))
    }

    fn judge(engine: &Engine, doc: &serde_json::Value) -> Verdict {
        engine.evaluate_json(HookPoint::Contents, doc, None)
    }

    #[test]
    fn the_budget_grows_with_the_files_up_to_the_cap() {
        assert_eq!(eval_time_limit(0), EVAL_TIME_BASE);
        assert_eq!(eval_time_limit(20_000), Duration::from_millis(1250));
        assert_eq!(eval_time_limit(95_000), EVAL_TIME_CAP);
        assert_eq!(eval_time_limit(10_000_000), EVAL_TIME_CAP);
        assert_eq!(eval_time_limit(usize::MAX), EVAL_TIME_CAP);
        let doc = |n: usize| regorus::Value::from(contents(n, |_, _| {}));
        assert_eq!(eval_time_limit_for(&doc(3)), eval_time_limit(3));
        assert_eq!(
            eval_time_limit_for(&regorus::Value::from(json!({"files": "x"}))),
            EVAL_TIME_BASE
        );
    }

    #[test]
    fn files_rego_allows_a_legitimate_image_of_20k_files() {
        let engine = files_rego();
        let v = judge(&engine, &contents(20_000, |_, _| {}));
        assert!(v.allowed() && v.warn.is_empty(), "{:?}", v.deny.first());
    }

    #[test]
    fn files_rego_finds_one_setuid_file_among_20k() {
        let engine = files_rego();
        let doc = contents(20_000, |i, f| {
            if i == 12_345 {
                f["original_mode"] = json!(0o4755);
            }
        });
        let v = judge(&engine, &doc);
        let texts: Vec<&str> = v.deny.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            ["ghcr.io/acme/tool:1.2 contains usr/lib/tool/d1234/f12345.so with the setuid/setgid bit (mode 04755); images must not ask for elevated privileges"]
        );
        assert_eq!(
            v.deny[0].source,
            format!(
                "policy {}/policies/files.rego (package gantry.files) deny",
                env!("CARGO_MANIFEST_DIR")
            )
        );
    }

    #[test]
    fn files_rego_finds_a_path_outside_the_prefixes_or_climbing_out_among_20k() {
        let engine = files_rego();
        let doc = contents(20_000, |i, f| match i {
            777 => f["path"] = json!("opt/evil"),
            15_001 => f["path"] = json!("usr/lib/../../etc/shadow"),
            _ => {}
        });
        let texts: Vec<String> = judge(&engine, &doc)
            .deny
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(
            texts,
            [
                "ghcr.io/acme/tool:1.2 contains opt/evil, outside the allowed prefixes (usr/, etc/)",
                "ghcr.io/acme/tool:1.2 contains the path usr/lib/../../etc/shadow, which climbs out with '..'",
            ]
        );
    }

    #[test]
    fn files_rego_fails_closed_on_a_mode_that_is_not_an_integer_among_20k() {
        let engine = files_rego();
        let doc = contents(20_000, |i, f| {
            if i == 19_999 {
                f["original_mode"] = json!(420.5);
            }
        });
        let v = judge(&engine, &doc);
        assert_eq!(v.deny.len(), 1, "{v:?}");
        assert!(
            v.deny[0].text.starts_with("policy evaluation failed")
                && v.deny[0].text.contains("bits.or"),
            "{v:?}"
        );
    }

    /// Nested loops for every file (10^10 iterations each), so only the timer ends it.
    fn runaway(dir: &Path) -> Engine {
        let text = "package gantry.spin\nimport rego.v1\ndeny contains \"never\" if {\n\tinput.hook == \"contents\"\n\tsome f in object.get(input, \"files\", [])\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n\tf.size == i + j + 1000000000\n}\n";
        let path = dir.join("spin.rego");
        std::fs::write(&path, text).unwrap();
        engine(path, json!({}))
    }

    fn assert_stopped(v: &Verdict, budget_ms: u128) {
        assert_eq!(v.deny.len(), 1, "{v:?}");
        let m = &v.deny[0];
        assert!(
            m.text
                .starts_with("policy evaluation failed: execution exceeded time limit"),
            "{m:?}"
        );
        assert!(
            m.text.contains(&format!("a rule may run {budget_ms} ms")),
            "{m:?}"
        );
        assert!(
            m.source.ends_with("spin.rego (package gantry.spin) deny"),
            "{m:?}"
        );
    }

    #[test]
    fn a_runaway_policy_is_stopped_at_a_small_document() {
        let dir = tempfile::tempdir().unwrap();
        let engine = runaway(dir.path());
        let t = Instant::now();
        let v = judge(&engine, &contents(10, |_, _| {}));
        let took = t.elapsed();
        assert_stopped(&v, eval_time_limit(10).as_millis());
        assert!(took >= eval_time_limit(10), "{took:?}");
        assert!(
            took < eval_time_limit(10) + Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[test]
    fn a_runaway_policy_is_stopped_at_a_large_document() {
        let dir = tempfile::tempdir().unwrap();
        let engine = runaway(dir.path());
        let doc = contents(20_000, |_, _| {});
        let t = Instant::now();
        let v = judge(&engine, &doc);
        let took = t.elapsed();
        assert_stopped(&v, 1250);
        assert!(took >= Duration::from_millis(1250), "{took:?}");
        assert!(
            took < Duration::from_millis(1250) + Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn a_runaway_policy_is_stopped_at_the_cap_over_a_huge_document() {
        let dir = tempfile::tempdir().unwrap();
        let engine = runaway(dir.path());
        let doc = contents(200_000, |_, _| {});
        let t = Instant::now();
        let v = judge(&engine, &doc);
        let took = t.elapsed();
        assert_stopped(&v, EVAL_TIME_CAP.as_millis());
        assert!(took < EVAL_TIME_CAP + Duration::from_secs(5), "{took:?}");
    }
}
