//! Signed installs end to end: cosign key pairs from `gantry keygen`, signatures and attestations
//! from `gantry publish --key`, keyless signatures from a test Sigstore made at test time, all
//! verified by the same code as real images, against a real docker-registry.

use crate::harness::*;
use gantry::trust::sign::attachment_tag;
use gantry::trust::testca::{LeafIdentity, TestCa};

#[test]
fn key_signed_image_installs_under_the_registry_key_policy() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "signer");
    let (_, other_pub) = keygen(&env, "other");
    let digest = publish_hello(&env, &reg, Some(&key), "tools/hello:1", "signed hello");
    env.run(&[
        "registry",
        "add",
        "corp",
        &format!("{}/tools", reg.host()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();

    let ok = env.run(&["install", "corp/hello:1"]).succeeds();
    assert!(ok.stderr.contains("verified: key sha256:"), "{}", ok.stderr);
    assert_eq!(env.run_tool("hello", &[]).stdout, "signed hello\n");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.home().join("packages/hello/current/metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["digest"], digest.as_str());
    assert_eq!(meta["signatures"][0]["verified"], true);

    // The same image under a registry that trusts another key: denied, even with --allow-unsigned.
    env.run(&[
        "registry",
        "add",
        "corp2",
        &format!("{}/tools", reg.host()),
        "--key",
        other_pub.to_str().unwrap(),
    ])
    .succeeds();
    let denied = env
        .run(&[
            "install",
            "--allow-unsigned",
            "--name",
            "h2",
            "corp2/hello:1",
        ])
        .fails_with(ExitKind::Denied);
    assert!(
        denied.stderr.contains("did not verify") || denied.stderr.contains("does not match"),
        "{}",
        denied.stderr
    );
    assert!(!env.home().join("bin/h2").exists());

    // gantry verify reports without installing.
    let v = env.run(&["verify", "--json", "corp/hello:1"]).succeeds();
    let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["allowed"], true);
    env.run(&["verify", "corp2/hello:1"])
        .fails_with(ExitKind::Denied);

    // Every install attempt is in the hash-chained decision log, and explain reads it.
    let explain = env.run(&["explain", "hello"]).succeeds();
    assert!(explain.stdout.contains(&digest), "{}", explain.stdout);
}

#[test]
fn unsigned_and_wrongly_signed_images_fail_closed() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "signer");
    let bin = hello_binary(env.dir.path(), "unsigned");
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &format!("{}/tools/plain:1", reg.host()),
    ])
    .succeeds();
    env.run(&[
        "registry",
        "add",
        "corp",
        &format!("{}/tools", reg.host()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();

    // Policy, no signature: denied, and --allow-unsigned does not help.
    let r = env
        .run(&["install", "--allow-unsigned", "corp/plain:1"])
        .fails_with(ExitKind::Denied);
    assert!(r.stderr.contains("has no signature"), "{}", r.stderr);

    // A signature copied from another image names the other digest: it does not verify.
    let signed_digest = publish_hello(&env, &reg, Some(&key), "tools/signed:1", "s");
    let plain_digest = {
        let idx = env.run(&["verify", "--json", "--allow-unsigned", "corp/plain:1"]);
        let v: serde_json::Value = serde_json::from_str(&idx.stdout).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    copy_attachment(
        &reg,
        (
            "tools/signed",
            &attachment_tag(&signed_digest, "sig").unwrap(),
        ),
        (
            "tools/plain",
            &attachment_tag(&plain_digest, "sig").unwrap(),
        ),
    );
    let r = env
        .run(&["install", "corp/plain:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains(&signed_digest[..19]) || r.stderr.contains("not the image"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/plain").exists());

    // A full reference under a configured registry's URL gets that registry's policy.
    env.run(&["install", &format!("{}/tools/signed:1", reg.host())])
        .succeeds();
    // No policy (ad-hoc registry: a path no entry covers), signed image: still needs
    // --allow-unsigned, since there is nobody to trust.
    publish_hello(&env, &reg, Some(&key), "misc/adhoc:1", "a");
    let adhoc = format!("{}/misc/adhoc:1", reg.host());
    env.run(&["install", &adhoc]).fails_with(ExitKind::Denied);
    env.run(&["install", "--allow-unsigned", &adhoc]).succeeds();
}

#[test]
fn a_signature_copied_to_another_repository_fails_match_reference() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "signer");
    // The same bytes published to two repositories have one digest; only `tools/a` is signed.
    let bin = hello_binary(env.dir.path(), "same");
    let digest = publish_bin(&env, &reg, Some(&key), &bin, "tools/a:1");
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &format!("{}/other/b:1", reg.host()),
    ])
    .succeeds();
    // Copy the .sig manifest and its blobs from tools/a to other/b.
    let sig_tag = attachment_tag(&digest, "sig").unwrap();
    copy_attachment(&reg, ("tools/a", &sig_tag), ("other/b", &sig_tag));
    let url = format!("{}/other", reg.host());
    // Digest binding alone (cosign's rule) accepts the copied signature...
    env.run(&[
        "registry",
        "add",
        "loose",
        &url,
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();
    env.run(&["install", "--name", "b1", "loose/b:1"])
        .succeeds();
    // ...requiring the signed repository to be this one refuses it, and says why.
    env.run(&[
        "registry",
        "add",
        "strict",
        &url,
        "--key",
        pubkey.to_str().unwrap(),
        "--match-reference",
        "repository",
    ])
    .succeeds();
    let r = env
        .run(&["install", "--name", "b2", "strict/b:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr
            .contains("does not match the policy of registry 'strict'"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/b2").exists());
    // The original repository passes the strict rule.
    env.run(&[
        "registry",
        "add",
        "strict-a",
        &format!("{}/tools", reg.host()),
        "--key",
        pubkey.to_str().unwrap(),
        "--match-reference",
        "repository",
    ])
    .succeeds();
    env.run(&["install", "--name", "a", "strict-a/a:1"])
        .succeeds();
}

#[test]
fn keyless_signature_and_attestation_under_an_identity_policy() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let ca = TestCa::new();
    std::fs::write(env.path("trusted_root.json"), ca.trusted_root_json()).unwrap();
    let bin = hello_binary(env.dir.path(), "keyless hello");
    let out = env
        .run(&[
            "publish",
            bin.to_str().unwrap(),
            "--to",
            &format!("{}/acme/tool:1", reg.host()),
        ])
        .succeeds();
    let digest = out.stdout.trim().to_string();
    let repo = format!("{}/acme/tool", reg.host());
    let now = chrono::Utc::now().timestamp() - 3600; // an hour ago: the leaf has long expired
    let good = LeafIdentity {
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1".into(),
        github: Default::default(),
    };
    push_attachment(
        &reg,
        "acme/tool",
        &attachment_tag(&digest, "sig").unwrap(),
        &ca.sign_image_keyless(&good, &repo, &digest, now),
    );
    let vuln = serde_json::json!({"scanner": {"uri": "pkg:github/aquasecurity/trivy", "version": "0.50",
        "result": {"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "Severity": "CRITICAL"}]}]}}});
    push_attachment(
        &reg,
        "acme/tool",
        &attachment_tag(&digest, "att").unwrap(),
        &ca.attest_keyless(
            &good,
            &repo,
            &digest,
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            vuln,
            now,
        ),
    );
    let root = env.path("trusted_root.json");
    let add = |name: &str, regex: &str| {
        env.run(&[
            "registry",
            "add",
            name,
            &format!("{}/acme", reg.host()),
            "--template",
            "github",
            "--identity-regex",
            regex,
            "--trusted-root",
            root.to_str().unwrap(),
        ])
        .succeeds();
    };
    add("acme", "https://github.com/acme/.*");
    let ok = env.run(&["install", "acme/tool:1"]).succeeds();
    assert!(
        ok.stderr.contains(
            "verified: https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1"
        ),
        "{}",
        ok.stderr
    );
    assert!(ok.stderr.contains("vulnerability scan"), "{}", ok.stderr);
    assert_eq!(env.run_tool("tool", &[]).stdout, "keyless hello\n");

    // A substring-style regex does not match: anchoring is the core's, not the user's, job.
    add("acme2", "github.com/acme");
    env.run(&["install", "--name", "t2", "acme2/tool:1"])
        .fails_with(ExitKind::Denied);
    // Another organisation's identity: denied with the signer named.
    add("acme3", "https://github.com/other/.*");
    let r = env
        .run(&["install", "--name", "t3", "acme3/tool:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("https://github.com/acme/tool/"),
        "{}",
        r.stderr
    );
}
