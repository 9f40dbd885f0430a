//! Tests of the plugin host against real compiled components: the hostile WAT fixtures in
//! tests/data/plugins/ (endless loop, memory bomb, trap, garbage results, an ungranted import)
//! and the shipped Rust plugins as built by plugins/build.sh.

use super::*;
use serde_json::{json, Value};
use std::time::Instant;

/// The sandbox's promise: any hostile call is over, with a deny, within this time.
const SANDBOX_BOUND: Duration = Duration::from_millis(200);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/plugins")
        .join(format!("{name}.wat"))
}

/// The built Rust plugins: `GANTRY_PLUGIN_DIR`, else target/plugins (plugins/build.sh's default).
/// A missing plugin fails the test: CI builds them before `cargo test`.
fn built_plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("GANTRY_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run plugins/build.sh (or set GANTRY_PLUGIN_DIR)",
        path.display()
    );
    path
}

fn runtime() -> PluginRuntime {
    PluginRuntime::new(None).unwrap()
}

fn load(rt: &PluginRuntime, name: &str, config: Value) -> Plugin {
    rt.load(&fixture(name), name, &config, &[]).unwrap()
}

fn doc(extra: Value) -> Value {
    let mut d = json!({
        "hook": "manifest",
        "registry": {"name": "ghcr", "url": "https://ghcr.io"},
        "image": {
            "reference": "ghcr.io/acme/tool:1.0", "repository": "acme/tool", "tag": "1.0",
            "digest": "sha256:0123", "platform": {"os": "linux", "architecture": "amd64"},
            "config": {"labels": {}}
        },
        "ledger": [],
        "signatures": [], "attestations": []
    });
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

/// Calls `hook`, asserting it ends within the sandbox bound with exactly one deny from the plugin.
fn denied(plugin: &Plugin, hook: HookPoint) -> String {
    let start = Instant::now();
    let verdict = plugin.call(hook, &doc(json!({})));
    let took = start.elapsed();
    assert!(
        took < SANDBOX_BOUND,
        "{} at {hook} took {took:?}",
        plugin.name()
    );
    assert_eq!(verdict.deny.len(), 1, "{verdict:?}");
    assert_eq!(
        verdict.deny[0].source,
        format!("plugin {} export {hook}", plugin.name())
    );
    verdict.deny[0].text.clone()
}

#[test]
fn endless_loop_is_denied_for_its_budget_in_time() {
    let rt = runtime();
    let reason = denied(&load(&rt, "loop", json!({})), HookPoint::Manifest);
    assert!(
        reason.contains("CPU budget") || reason.contains("time limit"),
        "{reason}"
    );
}

#[test]
fn endless_loop_is_stopped_by_the_deadline_when_fuel_would_last() {
    let limits = PluginLimits {
        fuel: u64::MAX / 2,
        ..PluginLimits::default()
    };
    let rt = PluginRuntime::with_limits(None, limits).unwrap();
    let reason = denied(&load(&rt, "loop", json!({})), HookPoint::Manifest);
    assert!(reason.contains("time limit of 100 ms"), "{reason}");
}

#[test]
fn memory_bomb_is_denied_at_the_memory_cap() {
    let rt = runtime();
    let reason = denied(&load(&rt, "bomb", json!({})), HookPoint::Manifest);
    assert!(reason.contains("memory limit of 64 MiB"), "{reason}");
}

#[test]
fn trap_is_denied_with_the_trap() {
    let rt = runtime();
    let reason = denied(&load(&rt, "trap", json!({})), HookPoint::Manifest);
    assert!(
        reason.contains("trapped") && reason.contains("unreachable"),
        "{reason}"
    );
}

#[test]
fn garbage_results_are_denied_not_lifted() {
    let rt = runtime();
    let garbage = load(&rt, "garbage", json!({}));
    assert_eq!(
        garbage.exports(),
        &[
            HookPoint::Manifest,
            HookPoint::Signatures,
            HookPoint::Attestations
        ]
    );
    let utf8 = denied(&garbage, HookPoint::Manifest);
    assert!(
        utf8.contains("malformed") && utf8.to_lowercase().contains("utf-8"),
        "{utf8}"
    );
    let list = denied(&garbage, HookPoint::Signatures);
    assert!(
        list.contains("1000000") && list.contains("limit 256"),
        "{list}"
    );
    let alias = denied(&garbage, HookPoint::Attestations);
    assert!(
        alias.contains("1000000") && alias.contains("limit 4096"),
        "{alias}"
    );
}

#[test]
fn a_hostile_call_leaves_the_runtime_and_other_plugins_working() {
    let rt = runtime();
    let looping = load(&rt, "loop", json!({}));
    let echo = load(&rt, "echo", json!({"k": 1}));
    denied(&looping, HookPoint::Manifest);
    let verdict = echo.call(HookPoint::Manifest, &doc(json!({})));
    assert!(verdict.allowed());
    assert_eq!(verdict.warn[0].text, r#"{"k":1}"#);
    denied(&looping, HookPoint::Manifest);
}

#[test]
fn ungranted_import_fails_to_load_naming_the_import() {
    let rt = runtime();
    let err = rt
        .load(&fixture("ungranted"), "ungranted", &json!({}), &[])
        .err()
        .unwrap();
    assert!(
        matches!(&err, PluginError::UngrantedImport { import, .. } if import == "wasi:clocks/wall-clock@0.2.0"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("ungranted.wat") && text.contains("wasi:clocks/wall-clock@0.2.0"),
        "{text}"
    );
    assert!(text.contains(r#"grant "clocks""#), "{text}");
    // Granting another capability does not grant this one.
    let err = rt
        .load(
            &fixture("ungranted"),
            "ungranted",
            &json!({}),
            &grants(&["random"]),
        )
        .err()
        .unwrap();
    assert!(
        matches!(err, PluginError::UngrantedImport { .. }),
        "{err:?}"
    );
}

fn grants(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn granted_clocks_and_random_link_and_give_real_values() {
    let rt = runtime();
    let plugin = rt
        .load(
            &fixture("granted"),
            "granted",
            &json!({}),
            &grants(&["clocks", "random"]),
        )
        .unwrap();
    let verdict = plugin.call(HookPoint::Manifest, &doc(json!({})));
    let deny: Vec<&str> = verdict.deny.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(deny.len(), 3, "{verdict:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let seconds: u64 = deny[0].strip_prefix("now ").unwrap().parse().unwrap();
    assert!(seconds.abs_diff(now) <= 5, "{seconds} vs {now}");
    let hex = deny[1].strip_prefix("random ").unwrap();
    assert_eq!(hex.len(), 32, "{hex}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");
    deny[2]
        .strip_prefix("u64 ")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let mono: u64 = verdict.warn[0]
        .text
        .strip_prefix("monotonic ")
        .unwrap()
        .parse()
        .unwrap();
    // A second call draws fresh randomness and a clock that has not gone backwards.
    let again = plugin.call(HookPoint::Manifest, &doc(json!({})));
    assert_ne!(again.deny[1].text, verdict.deny[1].text);
    let mono2: u64 = again.warn[0]
        .text
        .strip_prefix("monotonic ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(mono2 >= mono, "{mono2} < {mono}");
}

#[test]
fn each_import_needs_its_own_grant() {
    let rt = runtime();
    let err = rt
        .load(&fixture("granted"), "granted", &json!({}), &[])
        .err()
        .unwrap();
    assert!(
        matches!(&err, PluginError::UngrantedImport { import, .. } if import.starts_with("wasi:clocks/")),
        "{err:?}"
    );
    let err = rt
        .load(
            &fixture("granted"),
            "granted",
            &json!({}),
            &grants(&["clocks"]),
        )
        .err()
        .unwrap();
    assert!(
        matches!(&err, PluginError::UngrantedImport { import, .. } if import == "wasi:random/random@0.2.3"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("granted.wat") && text.contains(r#"grant "random""#),
        "{text}"
    );
}

#[test]
fn unknown_grant_is_an_error_naming_it() {
    let rt = runtime();
    let err = rt
        .load(
            &fixture("echo"),
            "echo",
            &json!({}),
            &grants(&["clocks", "wasi:filesystem"]),
        )
        .err()
        .unwrap();
    assert!(
        matches!(&err, PluginError::UnknownGrant { grant, .. } if grant == "wasi:filesystem"),
        "{err:?}"
    );
    assert!(err.to_string().contains("'wasi:filesystem'"), "{err}");
}

#[test]
fn granted_interface_asking_for_a_function_gantry_lacks_fails_naming_it() {
    let rt = runtime();
    let err = rt
        .load(
            &fixture("pollable"),
            "pollable",
            &json!({}),
            &grants(&["clocks"]),
        )
        .err()
        .unwrap();
    assert!(
        matches!(&err, PluginError::UnsupportedGrant { import, function, .. }
            if import == "wasi:clocks/monotonic-clock@0.2.0" && function == "subscribe-duration"),
        "{err:?}"
    );
    assert!(err.to_string().contains("subscribe-duration"), "{err}");
    // Without the grant, the clock is refused as ungranted, and wasi:io is never grantable.
    let err = rt
        .load(&fixture("pollable"), "pollable", &json!({}), &[])
        .err()
        .unwrap();
    assert!(
        matches!(err, PluginError::UngrantedImport { .. }),
        "{err:?}"
    );
}

#[test]
fn granted_import_of_the_wrong_type_fails_to_link() {
    let rt = runtime();
    let err = rt
        .load(
            &fixture("mistyped"),
            "mistyped",
            &json!({}),
            &grants(&["clocks"]),
        )
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::Link { .. }), "{err:?}");
    assert!(err.to_string().contains("mistyped.wat"), "{err}");
}

#[test]
fn oversized_random_request_is_a_deny_not_an_allocation() {
    let rt = runtime();
    let greedy = rt
        .load(
            &fixture("greedy"),
            "greedy",
            &json!({}),
            &grants(&["random"]),
        )
        .unwrap();
    let reason = denied(&greedy, HookPoint::Manifest);
    assert!(
        reason.contains("get-random-bytes asked for 1048576 bytes (limit 65536)"),
        "{reason}"
    );
}

#[test]
fn host_gives_config_and_takes_logs_and_skips_hooks_not_exported() {
    let rt = runtime();
    let echo = load(&rt, "echo", json!({"threshold": "high"}));
    assert_eq!(echo.name(), "echo");
    assert_eq!(echo.exports(), &[HookPoint::Manifest]);
    let (verdict, logs) = echo.call_logged(HookPoint::Manifest, &doc(json!({})));
    assert_eq!(verdict.warn.len(), 1);
    assert_eq!(verdict.warn[0].source, "plugin echo export manifest");
    assert_eq!(
        logs,
        vec![LogLine {
            level: LogLevel::Info,
            message: r#"{"threshold":"high"}"#.into()
        }]
    );
    assert_eq!(
        echo.call(HookPoint::Install, &doc(json!({}))),
        Verdict::default()
    );
}

#[test]
fn malformed_input_document_is_a_deny_not_a_call() {
    let rt = runtime();
    let echo = load(&rt, "echo", json!({}));
    let mut input = doc(json!({}));
    input["image"]["digest"] = json!(42);
    let verdict = echo.call(HookPoint::Manifest, &input);
    assert_eq!(verdict.deny.len(), 1);
    assert!(
        verdict.deny[0]
            .text
            .contains("input document for hook manifest is malformed"),
        "{verdict:?}"
    );
}

#[test]
fn not_a_component_and_no_hooks_fail_to_load_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0").unwrap();
    let err = runtime()
        .load(&junk, "junk", &json!({}), &[])
        .err()
        .unwrap();
    assert!(
        matches!(err, PluginError::Compile { .. }) && err.to_string().contains("junk.wasm"),
        "{err}"
    );
    let empty = dir.path().join("empty.wat");
    std::fs::write(&empty, "(component)").unwrap();
    let err = runtime()
        .load(&empty, "empty", &json!({}), &[])
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::NoHooks { .. }), "{err}");
}

#[test]
fn loads_through_a_corrupted_cache() {
    let cache = tempfile::tempdir().unwrap();
    let rt = PluginRuntime::new(Some(cache.path())).unwrap();
    load(&rt, "echo", json!({}));
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache entry was written");
    std::fs::write(&entry, b"corrupted").unwrap();
    let echo = load(&rt, "echo", json!({"k": 2}));
    assert_eq!(
        echo.call(HookPoint::Manifest, &doc(json!({}))).warn[0].text,
        r#"{"k":2}"#
    );
    assert_ne!(
        std::fs::read(&entry).unwrap(),
        b"corrupted",
        "the corrupt entry is rewritten"
    );
}

#[test]
fn runtime_and_plugins_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<PluginRuntime>();
    shareable::<Plugin>();
    let rt = runtime();
    let echo = load(&rt, "echo", json!({"k": 3}));
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..4)
            .map(|_| s.spawn(|| echo.call(HookPoint::Manifest, &doc(json!({})))))
            .collect();
        for call in calls {
            assert_eq!(call.join().unwrap().warn[0].text, r#"{"k":3}"#);
        }
    });
}

mod shipped;
