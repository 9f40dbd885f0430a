//! Signed policy bundles from a registry: a security team publishes Rego policies as a signed
//! artifact, the system layer names it, and every install is judged by it; a bundle signed by
//! another key is refused and the verified one stays in force; offline, the verified copy is
//! used and said so; a copy tampered with in the cache is refused, never read as no policy.

use crate::harness::*;

/// A policy directory holding one Rego policy that denies images labelled `bad=yes`.
fn deny_bad_policy(env: &Env) -> std::path::PathBuf {
    let dir = env.path("fleet-policy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("nobad.rego"),
        "package fleet.nobad\nimport rego.v1\n\
         deny contains msg if {\n  input.hook == \"manifest\"\n  input.image.config.labels.bad == \"yes\"\n  msg := sprintf(\"fleet policy: %s is labelled bad\", [input.image.reference])\n}\n",
    )
    .unwrap();
    dir
}

/// `gantry policy publish DIR --to BUNDLE --key KEY`; returns the bundle's digest.
fn publish_bundle(env: &Env, dir: &std::path::Path, bundle: &str, key: &std::path::Path) -> String {
    env.run_keyed(&[
        "policy",
        "publish",
        dir.to_str().unwrap(),
        "--to",
        bundle,
        "--key",
        key.to_str().unwrap(),
    ])
    .succeeds()
    .stdout
    .split_whitespace()
    .last()
    .unwrap()
    .to_string()
}

fn cache_layout(env: &Env) -> std::path::PathBuf {
    let dir = env.home().join("cache/bundles");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("index.json").is_file())
        .expect("a cached bundle")
}

#[test]
fn a_signed_bundle_judges_every_install_and_a_bad_one_never_replaces_it() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "security");
    let (other_key, _) = keygen(&env, "other");
    let policy_dir = deny_bad_policy(&env);
    let bundle = format!("{}/policy/base:1", reg.host());
    publish_bundle(&env, &policy_dir, &bundle, &key);
    env.write_system_config(&format!(
        "[[bundles]]\nref = \"{bundle}\"\nkey = \"{}\"\n",
        pubkey.display()
    ));
    let catalog = |tag: &str| format!("oci:{}:{tag}", env.path("catalog").display());
    for (tag, label) in [("good", "bad=no"), ("bad", "bad=yes")] {
        let bin = hello_binary(env.dir.path(), tag);
        env.run(&[
            "publish",
            bin.to_str().unwrap(),
            "--label",
            label,
            "--to",
            &catalog(tag),
        ])
        .succeeds();
    }
    let denied = env
        .run(&[
            "install",
            "--allow-unsigned",
            "--name",
            "bad",
            &catalog("bad"),
        ])
        .fails_with(ExitKind::Denied);
    assert!(denied.stderr.contains("fleet policy:"), "{}", denied.stderr);
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "good",
        &catalog("good"),
    ])
    .succeeds();
    let pull = env.run(&["policy", "pull"]).succeeds();
    assert!(
        pull.stdout.contains("verified, 1 policy file(s)"),
        "{}",
        pull.stdout
    );

    // Another bundle (one that would let everything through), signed by a key the system does
    // not name: refused, and the verified bundle stays in force.
    std::fs::write(
        policy_dir.join("nobad.rego"),
        "package fleet.nobad\nimport rego.v1\n",
    )
    .unwrap();
    publish_bundle(&env, &policy_dir, &bundle, &other_key);
    let refused = env
        .run(&["policy", "pull"])
        .fails_with(ExitKind::Verification);
    assert!(
        refused.stderr.contains("not signed by"),
        "{}",
        refused.stderr
    );
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "bad",
        &catalog("bad"),
    ])
    .fails_with(ExitKind::Denied);

    // Offline with a stale copy: the verified copy is used, and said so.
    drop(reg);
    let index = cache_layout(&env).join("index.json");
    let stale = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&index)
        .status()
        .unwrap();
    assert!(stale.success());
    let offline = env
        .run(&[
            "install",
            "--allow-unsigned",
            "--name",
            "bad",
            &catalog("bad"),
        ])
        .fails_with(ExitKind::Denied);
    assert!(
        offline.stderr.contains("note:") && offline.stderr.contains("stays in force"),
        "{}",
        offline.stderr
    );
    assert!(
        offline.stderr.contains("fleet policy:"),
        "{}",
        offline.stderr
    );

    // The cached copy tampered with: refused, never an empty policy.
    let layout = cache_layout(&env);
    for e in std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let bytes = std::fs::read(e.path()).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut b = bytes.clone();
            let n = b.len();
            b[n / 2] ^= 0xff;
            std::fs::write(e.path(), b).unwrap();
        }
    }
    let tampered = env
        .run(&[
            "install",
            "--allow-unsigned",
            "--name",
            "good2",
            &catalog("good"),
        ])
        .fails_with(ExitKind::Verification);
    assert!(
        tampered.stderr.contains("policy bundle"),
        "{}",
        tampered.stderr
    );
    assert!(!env.home().join("bin/good2").exists());
}

#[test]
fn a_bundle_can_be_signed_by_a_keyless_identity() {
    use gantry::trust::sign::attachment_tag;
    use gantry::trust::testca::{LeafIdentity, TestCa};
    let env = Env::new();
    let reg = TestRegistry::start();
    let ca = TestCa::new();
    let root = env.path("trusted_root.json");
    std::fs::write(&root, ca.trusted_root_json()).unwrap();
    let (key, _) = keygen(&env, "any");
    let bundle = format!("{}/policy/base:1", reg.host());
    let digest = publish_bundle(&env, &deny_bad_policy(&env), &bundle, &key);
    let release = LeafIdentity {
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: "https://github.com/corp/policy/.github/workflows/release.yml@refs/heads/main"
            .into(),
        github: Default::default(),
    };
    let repo = format!("{}/policy/base", reg.host());
    let now = chrono::Utc::now().timestamp() - 3600;
    push_attachment(
        &reg,
        "policy/base",
        &attachment_tag(&digest, "sig").unwrap(),
        &ca.sign_image_keyless(&release, &repo, &digest, now),
    );
    let system = |identity: &str| {
        format!(
            "[[bundles]]\nref = \"{bundle}\"\nissuer = \"https://token.actions.githubusercontent.com\"\nidentity = \"{identity}\"\ntrusted_root = \"{}\"\n",
            root.display()
        )
    };
    env.write_system_config(&system(&release.subject));
    let bin = hello_binary(env.dir.path(), "bad");
    let t = format!("oci:{}:bad", env.path("catalog").display());
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--label",
        "bad=yes",
        "--to",
        &t,
    ])
    .succeeds();
    let denied = env
        .run(&["install", "--allow-unsigned", "--name", "bad", &t])
        .fails_with(ExitKind::Denied);
    assert!(denied.stderr.contains("fleet policy:"), "{}", denied.stderr);
    // Another identity, even from the same issuer and root, is not the bundle's signer.
    env.write_system_config(&system(
        "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
    ));
    let r = env
        .run(&["policy", "pull"])
        .fails_with(ExitKind::Verification);
    assert!(r.stderr.contains("not signed by"), "{}", r.stderr);
    // Half-filled: an issuer alone names nobody.
    env.write_system_config(&format!(
        "[[bundles]]\nref = \"{bundle}\"\nissuer = \"https://token.actions.githubusercontent.com\"\n"
    ));
    env.run(&["policy", "pull"]).fails_with(ExitKind::Usage);
}
