//! The trust boundary through the real binary and a real docker-registry: the system layer
//! cannot be shadowed or relaxed from the user layer, however the registry is spelled or named;
//! half-filled and unknown configuration is refused before anything is pulled; attestations
//! count only from the signer policy; signatures on an image index count for the platform image.

use crate::harness::*;
use gantry::trust::sign::attachment_tag;
use gantry::trust::testca::{LeafIdentity, TestCa};

#[test]
fn the_system_registry_governs_however_the_user_spells_or_names_it() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key_a, pub_a) = keygen(&env, "a");
    let (key_b, pub_b) = keygen(&env, "b");
    publish_hello(&env, &reg, Some(&key_a), "tools/a:1", "by a");
    publish_hello(&env, &reg, Some(&key_b), "tools/bee/b:1", "by b");
    publish_hello(&env, &reg, None, "tools/u:1", "unsigned");
    env.write_system_config(&format!(
        "[registries.corp]\nurl = \"{}/tools\"\nkeys = [\"{}\"]\n",
        reg.host(),
        pub_a.display()
    ));
    let port = reg.port;

    // A user entry for the same registry under another spelling and a longer prefix, trusting
    // key B: registry add says it overlaps the system entry.
    let add = env
        .run(&[
            "registry",
            "add",
            "mine",
            &format!("LOCALHOST:{port}/tools/bee"),
            "--key",
            pub_b.to_str().unwrap(),
        ])
        .succeeds();
    assert!(
        add.stderr.contains("system registry 'corp'"),
        "{}",
        add.stderr
    );
    for (i, r) in [
        format!("localhost:{port}/tools/bee/b:1"),
        "mine/b:1".to_string(),
        format!("127.0.0.1:0{port}/tools/bee/b:1"),
        format!("127.0.0.1:{port}/tools//bee/b:1"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("b{i}");
        let out = env.run(&["install", "--name", &name, r]);
        assert!(
            out.code == code(ExitKind::Denied)
                || (out.code == code(ExitKind::Usage) && r.contains("//")),
            "{r}: {} {}",
            out.code,
            out.stderr
        );
        if out.code == code(ExitKind::Denied) {
            assert!(
                out.stderr.contains("registry 'corp'"),
                "{r}: {}",
                out.stderr
            );
        }
        assert!(!env.home().join("bin").join(&name).exists(), "{r}");
    }
    // What the system trusts installs (the user entry does not cover tools/a).
    env.run(&["install", &format!("127.0.0.1:{port}/tools/a:1")])
        .succeeds();
    assert_eq!(env.run_tool("a", &[]).stdout, "by a\n");

    // A user entry covering tools/a adds a requirement (key B) that A's image does not meet.
    env.run(&[
        "registry",
        "add",
        "extra",
        &format!("127.0.0.1:{port}/tools"),
        "--key",
        pub_b.to_str().unwrap(),
    ])
    .succeeds();
    let r = env
        .run(&[
            "install",
            "--name",
            "a2",
            &format!("127.0.0.1:{port}/tools/a:1"),
        ])
        .fails_with(ExitKind::Denied);
    assert!(r.stderr.contains("registry 'extra'"), "{}", r.stderr);
    env.run(&["registry", "remove", "extra"]).succeeds();

    // A user entry relaxing the unsigned rule and the mode cannot lift the system's denial.
    let mut cfg = env.user_config();
    cfg.push_str(&format!("\n[registries.loose]\nurl = \"127.0.0.1:{port}/tools\"\nalways_allow_unsigned = true\nmode = \"warn\"\ninsecure = true\n"));
    env.write_user_config(cfg);
    let r = env
        .run(&["install", "loose/u:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr
            .contains("has no signature, but registry 'corp' requires one"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/u").exists());
}

#[test]
fn half_filled_and_unknown_configuration_is_refused_before_any_pull() {
    let env = Env::new();
    env.run(&["registry", "list"]).succeeds(); // seeds the user layer
    let seeded = env.user_config();
    // registry add never writes a half-filled policy.
    for args in [
        &[
            "registry",
            "add",
            "r",
            "r.example",
            "--issuer",
            "https://token.actions.githubusercontent.com",
        ][..],
        &[
            "registry",
            "add",
            "r",
            "r.example",
            "--match-reference",
            "exact",
        ][..],
        &["registry", "add", "r", "r.example:"][..],
        &["registry", "add", "r", "r.example/Team"][..],
        &["registry", "add", "r", "http://r.example:99999"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, code(ExitKind::Usage), "{args:?}: {}", out.stderr);
        assert_eq!(env.user_config(), seeded, "{args:?} changed the config");
    }
    // A hand-written half-filled entry, an unknown key in a policy entry, and a file that is not
    // UTF-8: exit 2, naming the file (and line), before any request (the host does not exist).
    let cases: [(&[u8], &str); 4] = [
        (b"[registries.r]\nurl = \"nowhere.invalid\"\nissuer = \"https://accounts.google.com\"\n", "line 3"),
        (b"[registries.r]\nurl = \"nowhere.invalid\"\ntrusted_root = \"/x.json\"\n", "line 3"),
        (b"[[policies]]\npath = \"/p.rego\"\nconfg = {}\n", "unknown field"),
        (b"# \xff\xfe\n", "not UTF-8"),
    ];
    for (text, what) in cases {
        env.write_user_config(text);
        let out = env.run(&["install", "--allow-unsigned", "nowhere.invalid/x:1"]);
        assert_eq!(out.code, code(ExitKind::Usage), "{}", out.stderr);
        assert!(
            out.stderr.contains("config.toml") && out.stderr.contains(what),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(
            std::fs::read(env.home().join("config.toml")).unwrap(),
            text,
            "the broken file is left as it was"
        );
    }
    env.write_user_config(&seeded);
    // GANTRY_SYSTEM_CONFIG set but empty, or naming nothing.
    for value in [
        "".to_string(),
        env.path("missing.toml").display().to_string(),
    ] {
        let out = Run::from_output(
            env.cmd(&["registry", "list"])
                .env("GANTRY_SYSTEM_CONFIG", &value)
                .output()
                .unwrap(),
        );
        assert_eq!(out.code, code(ExitKind::Usage), "{value:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("GANTRY_SYSTEM_CONFIG"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn attestations_count_only_from_the_signer_policy_or_its_attestors() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let ca = TestCa::new();
    std::fs::write(env.path("trusted_root.json"), ca.trusted_root_json()).unwrap();
    let digest = publish_hello(&env, &reg, None, "acme/tool:1", "attested");
    let repo = format!("{}/acme/tool", reg.host());
    let now = chrono::Utc::now().timestamp() - 3600;
    let id = |subject: &str| LeafIdentity {
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: subject.into(),
        github: Default::default(),
    };
    let signer = id("https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1");
    // Anyone with a certificate from the same CA and push access to the .att tag.
    let attacker = id("https://github.com/attacker/x/.github/workflows/r.yml@refs/heads/main");
    let scanner = id("https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main");
    push_attachment(
        &reg,
        "acme/tool",
        &attachment_tag(&digest, "sig").unwrap(),
        &ca.sign_image_keyless(&signer, &repo, &digest, now),
    );
    let clean = serde_json::json!({"scanner": {"uri": "pkg:github/aquasecurity/trivy", "version": "0.50", "result": {"Results": []}}});
    for who in [&attacker, &scanner] {
        push_attachment(
            &reg,
            "acme/tool",
            &attachment_tag(&digest, "att").unwrap(),
            &ca.attest_keyless(
                who,
                &repo,
                &digest,
                "https://cosign.sigstore.dev/attestation/vuln/v1",
                clean.clone(),
                now,
            ),
        );
    }
    let root = env.path("trusted_root.json");
    env.run(&[
        "registry",
        "add",
        "acme",
        &format!("{}/acme", reg.host()),
        "--template",
        "github",
        "--identity-regex",
        "https://github.com/acme/tool/.*",
        "--trusted-root",
        root.to_str().unwrap(),
    ])
    .succeeds();
    let v = env.run(&["verify", "--json", "acme/tool:1"]).succeeds();
    let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(
        report["attestations"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
    let rejected = report["rejected_attestations"].to_string();
    assert!(
        rejected.contains("https://github.com/attacker/x/")
            && rejected.contains("does not satisfy the signer policy of registry 'acme'"),
        "{rejected}"
    );

    // The scanner named as an attestor: its attestation counts, the attacker's still does not.
    let mut cfg = env.user_config();
    cfg.push_str("\n[[registries.acme.attestors]]\nissuer = \"https://token.actions.githubusercontent.com\"\nidentity = \"https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main\"\n");
    env.write_user_config(cfg);
    let v = env.run(&["verify", "--json", "acme/tool:1"]).succeeds();
    let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    let atts = report["attestations"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{report:#}");
    assert_eq!(
        atts[0]["signer"]["identity"]["subject"],
        "https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main"
    );
    assert!(
        report["rejected_attestations"]
            .to_string()
            .contains("attacker"),
        "{report:#}"
    );
}

/// Pushes an image index over the platform manifest `digest` (and, optionally, a second entry
/// for another platform), returning the index digest.
fn push_index(
    reg: &TestRegistry,
    repo: &str,
    tag: &str,
    digest: &str,
    extra: Option<&str>,
) -> String {
    let r = reg.client(repo);
    let p = gantry::image::host_platform();
    block_on(async {
        use gantry::source::{ImageSource, ManifestRef};
        let m = r
            .fetch_manifest(&ManifestRef::Digest(digest.into()))
            .await
            .unwrap()
            .unwrap();
        let mut manifests = vec![
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": m.bytes.len(), "platform": {"os": p.os, "architecture": p.architecture}}),
        ];
        if let Some(e) = extra {
            manifests.push(serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": e, "size": m.bytes.len(), "platform": {"os": "plan9", "architecture": "mips"}}));
        }
        let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
        r.push_manifest(
            &ManifestRef::Tag(tag.into()),
            index,
            "application/vnd.oci.image.index.v1+json",
        )
        .await
        .unwrap()
    })
}

#[test]
fn a_signature_on_the_image_index_counts_for_the_platform_image() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "signer");
    let digest = publish_hello(&env, &reg, None, "tools/multi:plain", "multi");
    let index = push_index(&reg, "tools/multi", "1", &digest, None);
    let other_index = push_index(&reg, "tools/multi", "2", &digest, Some(&digest));
    let signing_key =
        gantry::trust::keygen::load_private_key(&key, KEY_PASSWORD.as_bytes()).unwrap();
    let repo = format!("{}/tools/multi", reg.host());
    push_attachment(
        &reg,
        "tools/multi",
        &attachment_tag(&index, "sig").unwrap(),
        &gantry::trust::sign::sign_image(&signing_key, &repo, &index).unwrap(),
    );
    env.run(&[
        "registry",
        "add",
        "corp",
        &format!("{}/tools", reg.host()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();

    let ok = env.run(&["install", "corp/multi:1"]).succeeds();
    assert!(
        ok.stderr.contains(&format!("on image index {index}")),
        "{}",
        ok.stderr
    );
    assert_eq!(env.run_tool("multi", &[]).stdout, "multi\n");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.home().join("packages/multi/current/metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["digest"], digest.as_str());
    assert_eq!(meta["signatures"][0]["on_index"], true);
    assert_eq!(meta["signatures"][0]["signed_digest"], index.as_str());

    // The platform manifest alone, and through another index nobody signed: no signature.
    let r = env
        .run(&["install", "--name", "m2", "corp/multi:plain"])
        .fails_with(ExitKind::Denied);
    assert!(r.stderr.contains("has no signature"), "{}", r.stderr);
    // The first index's signature copied onto the second's tag names the first index: refused,
    // saying which digest was signed.
    copy_attachment(
        &reg,
        ("tools/multi", &attachment_tag(&index, "sig").unwrap()),
        ("tools/multi", &attachment_tag(&other_index, "sig").unwrap()),
    );
    let r = env
        .run(&["install", "--name", "m3", "corp/multi:2"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains(&format!("on image index {other_index}"))
            && r.stderr.contains("did not verify"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/m3").exists());
}
