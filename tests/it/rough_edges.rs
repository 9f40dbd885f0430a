//! The rough edges of the lifecycle issue, each as the user met it: a layout holding an image and
//! its signature, a wrong key password, a deny suggesting a flag the system forbids,
//! `verify-bundle` messages, and `policy eval` evaluating exactly what it is given (with WASI
//! grants for plugins).

use crate::harness::*;
use std::path::Path;

/// Publishes a hello binary printing `greeting` to the layout `catalog` at `tag`; returns the
/// `oci:` reference.
fn publish_layout(env: &Env, greeting: &str, tag: &str) -> String {
    let bin = hello_binary(env.dir.path(), greeting);
    let t = format!("oci:{}:{tag}", env.path("catalog").display());
    env.run(&["publish", bin.to_str().unwrap(), "--to", &t])
        .succeeds();
    t
}

#[test]
fn a_layout_holding_an_image_and_its_signature_installs_the_image() {
    let env = Env::new();
    let (key, _) = keygen(&env, "cosign");
    let bin = hello_binary(env.dir.path(), "signed");
    let dir = env.path("catalog");
    env.run_keyed(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &format!("oci:{}:1", dir.display()),
        "--key",
        key.to_str().unwrap(),
    ])
    .succeeds();
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(index.contains(".sig\""), "{index}");
    let r = env
        .run(&[
            "install",
            "--allow-unsigned",
            &format!("oci:{}", dir.display()),
        ])
        .succeeds();
    assert!(r.stdout.contains("installed hello"), "{}", r.stdout);
}

#[test]
fn a_wrong_key_password_is_said_once_and_plainly() {
    let env = Env::new();
    let (key, _) = keygen(&env, "cosign");
    let bin = hello_binary(env.dir.path(), "x");
    let out = env
        .cmd(&[
            "publish",
            bin.to_str().unwrap(),
            "--to",
            &format!("oci:{}:1", env.path("l").display()),
            "--key",
            key.to_str().unwrap(),
        ])
        .env("GANTRY_PASSWORD", "not the password")
        .output()
        .unwrap();
    let r = Run::from_output(out).fails_with(ExitKind::Usage);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "error: wrong password for {} (or not an encrypted cosign key)",
            key.display()
        )
    );
}

#[test]
fn no_allow_unsigned_suggestion_where_the_system_forbids_it() {
    let env = Env::new();
    let t = publish_layout(&env, "x", "1");
    let r = env.run(&["install", &t]).fails_with(ExitKind::Denied);
    assert!(r.stderr.contains("pass --allow-unsigned"), "{}", r.stderr);
    env.write_system_config("forbid_allow_unsigned = true\n");
    let r = env.run(&["install", &t]).fails_with(ExitKind::Denied);
    assert!(
        !r.stderr.contains("pass --allow-unsigned")
            && r.stderr
                .contains("the system configuration forbids --allow-unsigned"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_bundle_errors_name_values_not_rust_options() {
    let env = Env::new();
    let cases = Path::new(conformance_path!(
        "sigstore-conformance/test/assets/bundle-verify"
    ));
    let root = conformance_path!(
        "sigstore-conformance/public-good-trusted_root.from-sigstore-python-4.5.1.json"
    );
    let bundle = cases.join("happy-path-v0.3/bundle.sigstore.json");
    let artifact = cases.join("a.txt");
    let r = env
        .run(&[
            "verify-bundle",
            "--bundle",
            bundle.to_str().unwrap(),
            "--certificate-identity",
            "https://example.com/someone-else",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
            "--trusted-root",
            root,
            artifact.to_str().unwrap(),
        ])
        .fails_with(ExitKind::Verification);
    assert!(
        !r.stderr.contains("Some(")
            && r.stderr
                .contains("is not \"https://example.com/someone-else\""),
        "{}",
        r.stderr
    );
}

fn eval(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["policy", "eval"];
    all.extend_from_slice(args);
    env.run(&all)
}

#[test]
fn policy_eval_runs_exactly_what_is_named() {
    let env = Env::new();
    let doc = env.path("doc.json");
    std::fs::write(
        &doc,
        r#"{"image": {"reference": "r.example/a/b:1"}, "signatures": []}"#,
    )
    .unwrap();
    let mine = env.path("mine.rego");
    std::fs::write(
        &mine,
        "package mine\nimport rego.v1\nwarn contains \"looked at the signatures\" if input.hook == \"signatures\"\n",
    )
    .unwrap();
    let (doc, mine) = (doc.to_str().unwrap(), mine.to_str().unwrap());
    let alone = eval(
        &env,
        &["--hook", "signatures", "--input", doc, "--policy", mine],
    )
    .succeeds();
    assert!(
        alone.stdout.contains("warn: looked at the signatures")
            && alone
                .stdout
                .contains("signatures: allowed (0 deny, 1 warn)"),
        "{}",
        alone.stdout
    );
    let with_builtin = eval(
        &env,
        &[
            "--hook",
            "signatures",
            "--input",
            doc,
            "--policy",
            mine,
            "--signature-policy",
            "{}",
        ],
    )
    .fails_with(ExitKind::Denied);
    assert!(
        with_builtin
            .stdout
            .contains("builtin policies/signatures.rego"),
        "{}",
        with_builtin.stdout
    );
}

#[test]
fn policy_eval_can_grant_a_plugin_wasi() {
    let env = Env::new();
    let contract: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/tests/data/contract.json", repo_root())).unwrap(),
    )
    .unwrap();
    let doc = env.path("manifest.json");
    std::fs::write(&doc, contract["manifest"].to_string()).unwrap();
    let plugin = format!("{}/tests/data/plugins/granted.wat", repo_root());
    let base = [
        "--hook",
        "manifest",
        "--input",
        doc.to_str().unwrap(),
        "--plugin",
        &plugin,
    ];
    let r = eval(&env, &base).fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("grant \"clocks\""), "{}", r.stderr);
    let mut granted = base.to_vec();
    granted.extend(["--grant", "clocks", "--grant", "random"]);
    let r = eval(&env, &granted).fails_with(ExitKind::Denied);
    assert!(
        r.stdout.contains("deny: now ") && r.stdout.contains("deny: random "),
        "{}",
        r.stdout
    );
    let mut unknown = base.to_vec();
    unknown.extend(["--grant", "filesystem"]);
    eval(&env, &unknown).fails_with(ExitKind::Usage);
}
