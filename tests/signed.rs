//! Signed installs end to end: cosign key pairs from `gantry keygen`, signatures and attestations
//! from `gantry publish --key`, keyless signatures from a test Sigstore made at test time, all
//! verified by the same code as real images, against a real docker-registry.

mod common;
use common::*;
use gantry::trust::sign::{attachment_tag, OCI_MANIFEST_MEDIA_TYPE};
use gantry::trust::testca::{LeafIdentity, TestCa};

const PASSWORD: &str = "correct horse";

fn keygen(env: &Env, prefix: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let p = env.path(prefix);
    env.cmd(&["keygen", "--output-key-prefix", p.to_str().unwrap()])
        .env("GANTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let (k, pubk) = (p.with_extension("key"), p.with_extension("pub"));
    assert!(
        k.is_file() && pubk.is_file(),
        "keygen wrote {} and {}",
        k.display(),
        pubk.display()
    );
    (k, pubk)
}

fn publish_signed(
    env: &Env,
    reg: &TestRegistry,
    key: &std::path::Path,
    repo_tag: &str,
    greeting: &str,
    extra: &[&str],
) -> String {
    let bin = hello_binary(env.dir.path(), greeting);
    let to = format!("{}/{repo_tag}", reg.host());
    let mut args = vec![
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &to,
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = env
        .cmd(&args)
        .env("GANTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn key_signed_image_installs_under_the_registry_key_policy() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "signer");
    let (_, other_pub) = keygen(&env, "other");
    let digest = publish_signed(&env, &reg, &key, "tools/hello:1", "signed hello", &[]);
    env.run(&[
        "registry",
        "add",
        "corp",
        &format!("{}/tools", reg.host()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .expect(0);

    let ok = env.run(&["install", "corp/hello:1"]).expect(0);
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
    .expect(0);
    let denied = env
        .run(&[
            "install",
            "--allow-unsigned",
            "--name",
            "h2",
            "corp2/hello:1",
        ])
        .expect(3);
    assert!(
        denied.stderr.contains("did not verify") || denied.stderr.contains("does not match"),
        "{}",
        denied.stderr
    );
    assert!(!env.home().join("bin/h2").exists());

    // gantry verify reports without installing.
    let v = env.run(&["verify", "--json", "corp/hello:1"]).expect(0);
    let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["allowed"], true);
    env.run(&["verify", "corp2/hello:1"]).expect(3);

    // Every install attempt is in the hash-chained decision log, and explain reads it.
    let explain = env.run(&["explain", "hello"]).expect(0);
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
    .expect(0);
    env.run(&[
        "registry",
        "add",
        "corp",
        &format!("{}/tools", reg.host()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .expect(0);

    // Policy, no signature: denied, and --allow-unsigned does not help.
    let r = env
        .run(&["install", "--allow-unsigned", "corp/plain:1"])
        .expect(3);
    assert!(r.stderr.contains("has no signature"), "{}", r.stderr);

    // A signature copied from another image names the other digest: it does not verify.
    let signed_digest = publish_signed(&env, &reg, &key, "tools/signed:1", "s", &[]);
    let home = tempfile::tempdir().unwrap();
    let plain_digest = {
        let idx = env.run(&["verify", "--json", "--allow-unsigned", "corp/plain:1"]);
        let v: serde_json::Value = serde_json::from_str(&idx.stdout).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    let src =
        gantry::registry::Registry::new(&reg.host(), "tools/signed", false, home.path()).unwrap();
    let dst =
        gantry::registry::Registry::new(&reg.host(), "tools/plain", false, home.path()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use gantry::source::{ImageSource, ManifestRef};
        let sig_tag = attachment_tag(&signed_digest, "sig").unwrap();
        let m = src
            .fetch_manifest(&ManifestRef::Tag(sig_tag))
            .await
            .unwrap()
            .unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        for d in [
            &manifest["config"]["digest"],
            &manifest["layers"][0]["digest"],
        ] {
            let blob = src.fetch_blob(d.as_str().unwrap(), 1 << 20).await.unwrap();
            dst.push_blob(blob).await.unwrap();
        }
        dst.push_manifest(
            &ManifestRef::Tag(attachment_tag(&plain_digest, "sig").unwrap()),
            m.bytes,
            OCI_MANIFEST_MEDIA_TYPE,
        )
        .await
        .unwrap();
    });
    let r = env.run(&["install", "corp/plain:1"]).expect(3);
    assert!(
        r.stderr.contains(&signed_digest[..19]) || r.stderr.contains("not the image"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/plain").exists());

    // A full reference under a configured registry's URL gets that registry's policy.
    env.run(&["install", &format!("{}/tools/signed:1", reg.host())])
        .expect(0);
    // No policy (ad-hoc registry: a path no entry covers), signed image: still needs
    // --allow-unsigned, since there is nobody to trust.
    publish_signed(&env, &reg, &key, "misc/adhoc:1", "a", &[]);
    let adhoc = format!("{}/misc/adhoc:1", reg.host());
    env.run(&["install", &adhoc]).expect(3);
    env.run(&["install", "--allow-unsigned", &adhoc]).expect(0);
}

#[test]
fn a_signature_copied_to_another_repository_fails_match_reference() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "signer");
    // The same bytes published to two repositories have one digest; only `tools/a` is signed.
    let bin = hello_binary(env.dir.path(), "same");
    let digest = publish_signed_bin(&env, &reg, &key, &bin, "tools/a:1");
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &format!("{}/other/b:1", reg.host()),
    ])
    .expect(0);
    // Copy the .sig manifest and its blobs from tools/a to other/b.
    let home = tempfile::tempdir().unwrap();
    let src = gantry::registry::Registry::new(&reg.host(), "tools/a", false, home.path()).unwrap();
    let dst = gantry::registry::Registry::new(&reg.host(), "other/b", false, home.path()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use gantry::source::{ImageSource, ManifestRef};
        let tag = ManifestRef::Tag(attachment_tag(&digest, "sig").unwrap());
        let m = src.fetch_manifest(&tag).await.unwrap().unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        for d in [
            &manifest["config"]["digest"],
            &manifest["layers"][0]["digest"],
        ] {
            dst.push_blob(src.fetch_blob(d.as_str().unwrap(), 1 << 20).await.unwrap())
                .await
                .unwrap();
        }
        dst.push_manifest(&tag, m.bytes, OCI_MANIFEST_MEDIA_TYPE)
            .await
            .unwrap();
    });
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
    .expect(0);
    env.run(&["install", "--name", "b1", "loose/b:1"]).expect(0);
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
    .expect(0);
    let r = env
        .run(&["install", "--name", "b2", "strict/b:1"])
        .expect(3);
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
    .expect(0);
    env.run(&["install", "--name", "a", "strict-a/a:1"])
        .expect(0);
}

fn publish_signed_bin(
    env: &Env,
    reg: &TestRegistry,
    key: &std::path::Path,
    bin: &std::path::Path,
    repo_tag: &str,
) -> String {
    let to = format!("{}/{repo_tag}", reg.host());
    let out = env
        .cmd(&[
            "publish",
            bin.to_str().unwrap(),
            "--to",
            &to,
            "--key",
            key.to_str().unwrap(),
        ])
        .env("GANTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
        .expect(0);
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
        .expect(0);
    };
    add("acme", "https://github.com/acme/.*");
    let ok = env.run(&["install", "acme/tool:1"]).expect(0);
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
        .expect(3);
    // Another organisation's identity: denied with the signer named.
    add("acme3", "https://github.com/other/.*");
    let r = env
        .run(&["install", "--name", "t3", "acme3/tool:1"])
        .expect(3);
    assert!(
        r.stderr.contains("https://github.com/acme/tool/"),
        "{}",
        r.stderr
    );
}
