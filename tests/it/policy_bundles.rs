//! Signed policy bundles from a registry: a security team publishes Rego policies as a signed
//! artifact, the system layer names it, and every install is judged by it; a bundle signed by
//! another key is refused and the verified one stays in force; offline, the verified copy is
//! used and said so; a copy tampered with in the cache is refused, never read as no policy.

use crate::harness::*;

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
    let policy_dir = env.path("fleet-policy");
    std::fs::create_dir_all(&policy_dir).unwrap();
    std::fs::write(
        policy_dir.join("nobad.rego"),
        "package fleet.nobad\nimport rego.v1\n\
         deny contains msg if {\n  input.hook == \"manifest\"\n  input.image.config.labels.bad == \"yes\"\n  msg := sprintf(\"fleet policy: %s is labelled bad\", [input.image.reference])\n}\n",
    )
    .unwrap();
    let bundle = format!("{}/policy/base:1", reg.host());
    let publish = |k: &std::path::Path| {
        let out = env
            .cmd(&[
                "policy",
                "publish",
                policy_dir.to_str().unwrap(),
                "--to",
                &bundle,
                "--key",
                k.to_str().unwrap(),
            ])
            .env("GANTRY_PASSWORD", KEY_PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    publish(&key);
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
    publish(&other_key);
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
