//! The shipped Rust plugins (plugins/github-identity, plugins/attestation-gate), as built by
//! plugins/build.sh, judged through the real host; and the timing figures of the host.

use super::*;

const GITHUB: &str = "https://token.actions.githubusercontent.com";

fn keyless(subject: &str, issuer: &str, verified: bool) -> Value {
    json!({
        "verified": verified, "kind": "keyless", "source": "bundle",
        "error": if verified { Value::Null } else { json!("signature does not match") },
        "identity": {"issuer": issuer, "subject": subject},
        "tlog": {"log_index": 1, "integrated_time": 1_700_000_000}
    })
}

fn identity_verdict(config: Value, image: &str, signatures: Value) -> Verdict {
    let rt = runtime();
    let plugin = rt
        .load(
            &built_plugin("github-identity"),
            "github-identity",
            &config,
            &[],
        )
        .unwrap();
    assert_eq!(plugin.exports(), &[HookPoint::Signatures]);
    let mut input = doc(json!({"hook": "signatures", "signatures": signatures}));
    // The repository is the path within the registry; the plugin derives the host from the
    // reference, as the core fills them.
    input["image"]["repository"] = json!(image.split_once('/').map_or(image, |(_, path)| path));
    input["image"]["reference"] = json!(format!("{image}:1.0"));
    plugin.call(HookPoint::Signatures, &input)
}

const RELEASE: &str = "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.0";

#[test]
fn github_identity_accepts_a_workflow_of_the_image_repository() {
    let v = identity_verdict(
        json!({}),
        "ghcr.io/acme/tool",
        json!([keyless(RELEASE, GITHUB, true)]),
    );
    assert!(v.allowed(), "{v:?}");
    // GitHub names are case-insensitive; the certificate keeps the owner's spelling.
    let mixed = "https://github.com/Acme/Tool/.github/workflows/release.yml@refs/heads/main";
    assert!(identity_verdict(
        json!({}),
        "ghcr.io/acme/tool",
        json!([keyless(mixed, GITHUB, true)])
    )
    .allowed());
}

#[test]
fn github_identity_denies_other_signers_and_look_alikes() {
    let hostile = [
        // Another repository, and one whose name only starts with ours.
        keyless(
            "https://github.com/evil/tool/.github/workflows/release.yml@refs/tags/v1",
            GITHUB,
            true,
        ),
        keyless(
            "https://github.com/acme/tool-evil/.github/workflows/release.yml@refs/tags/v1",
            GITHUB,
            true,
        ),
        // The expected prefix, but not at the start.
        keyless(
            "https://evil.example/https://github.com/acme/tool/x",
            GITHUB,
            true,
        ),
        // The right subject from another issuer, and an unverified one.
        keyless(RELEASE, "https://accounts.google.com", true),
        keyless(RELEASE, GITHUB, false),
        // The repository itself without the trailing slash.
        keyless("https://github.com/acme/tool", GITHUB, true),
    ];
    for sig in hostile {
        let v = identity_verdict(json!({}), "ghcr.io/acme/tool", json!([sig.clone()]));
        assert_eq!(v.deny.len(), 1, "{sig} must be denied: {v:?}");
        let text = &v.deny[0].text;
        assert!(
            text.contains("^https://github.com/acme/tool/") && text.contains(GITHUB),
            "{text}"
        );
        assert_eq!(v.deny[0].source, "plugin github-identity export signatures");
    }
    let none = identity_verdict(json!({}), "ghcr.io/acme/tool", json!([]));
    assert!(
        none.deny[0].text.contains("found: no signatures"),
        "{none:?}"
    );
}

#[test]
fn github_identity_config_narrows_workflows_and_refs_and_names_other_repositories() {
    let tags_only = json!({"workflows": ["release.yml"], "refs": ["refs/tags/"]});
    let sig = |s: &str| json!([keyless(s, GITHUB, true)]);
    assert!(identity_verdict(tags_only.clone(), "ghcr.io/acme/tool", sig(RELEASE)).allowed());
    let branch = "https://github.com/acme/tool/.github/workflows/release.yml@refs/heads/main";
    assert!(!identity_verdict(tags_only.clone(), "ghcr.io/acme/tool", sig(branch)).allowed());
    let other = "https://github.com/acme/tool/.github/workflows/ci.yml@refs/tags/v1";
    assert!(!identity_verdict(tags_only, "ghcr.io/acme/tool", sig(other)).allowed());

    // Off GitHub's registry the repository cannot be derived: deny unless configured.
    let v = identity_verdict(json!({}), "registry.example/acme/tool", sig(RELEASE));
    assert!(v.deny[0].text.contains("cannot derive"), "{v:?}");
    let named = json!({"repository": "acme/tool"});
    assert!(identity_verdict(named, "registry.example/acme/tool", sig(RELEASE)).allowed());
    let v = identity_verdict(json!({"unknown": 1}), "ghcr.io/acme/tool", sig(RELEASE));
    assert!(v.deny[0].text.contains("invalid plugin config"), "{v:?}");
}

const BUILDER: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0";

fn provenance_v1(builder: &str) -> Value {
    json!({"predicate_type": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}, "runDetails": {"builder": {"id": builder}}},
        "signer": {"kind": "keyless", "identity": {"issuer": GITHUB, "subject": BUILDER}}})
}

fn scan(severities: &[&str]) -> Value {
    let vulns: Vec<Value> = severities
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"VulnerabilityID": format!("CVE-2026-{i}"), "Severity": s}))
        .collect();
    json!({"predicate_type": "https://cosign.sigstore.dev/attestation/vuln/v1",
        "predicate": {"scanner": {"uri": "pkg:github/aquasecurity/trivy", "result": {"Results": [{"Vulnerabilities": vulns}]}}},
        "signer": {"kind": "key", "key_fingerprint": "sha256:ab", "identity": {}}})
}

fn gate_verdict(config: Value, attestations: Value) -> Verdict {
    let rt = runtime();
    let plugin = rt
        .load(
            &built_plugin("attestation-gate"),
            "attestation-gate",
            &config,
            &[],
        )
        .unwrap();
    assert_eq!(plugin.exports(), &[HookPoint::Attestations]);
    plugin.call(
        HookPoint::Attestations,
        &doc(json!({"hook": "attestations", "attestations": attestations})),
    )
}

#[test]
fn attestation_gate_requires_an_allowed_builder() {
    let config = json!({"builders": [BUILDER]});
    assert!(gate_verdict(config.clone(), json!([provenance_v1(BUILDER)])).allowed());
    let v = gate_verdict(
        config.clone(),
        json!([provenance_v1("https://example.com/evil-builder")]),
    );
    assert!(v.deny[0].text.contains("not an allowed builder"), "{v:?}");
    // A builder id that merely starts with an allowed one is not allowed.
    let v = gate_verdict(
        config.clone(),
        json!([provenance_v1(&format!("{BUILDER}-evil"))]),
    );
    assert!(!v.allowed(), "{v:?}");
    let v = gate_verdict(config, json!([]));
    assert!(
        v.deny[0].text.contains("no verified SLSA provenance"),
        "{v:?}"
    );
    // `…@` allows any ref of that workflow, and only of that workflow.
    let any_ref = json!({"builders": [BUILDER.split('@').next().unwrap().to_string() + "@"]});
    assert!(gate_verdict(any_ref.clone(), json!([provenance_v1(BUILDER)])).allowed());
    let longer = BUILDER.replace(".yml@", ".yml.evil@");
    assert!(!gate_verdict(any_ref, json!([provenance_v1(&longer)])).allowed());
}

#[test]
fn attestation_gate_denies_findings_at_or_above_the_max_severity() {
    let config = json!({"builders": [BUILDER], "max_severity": "high", "require_vuln_scan": true});
    let v = gate_verdict(
        config.clone(),
        json!([provenance_v1(BUILDER), scan(&["LOW", "MEDIUM", "UNKNOWN"])]),
    );
    assert!(v.allowed(), "{v:?}");
    let v = gate_verdict(
        config.clone(),
        json!([provenance_v1(BUILDER), scan(&["LOW", "HIGH", "CRITICAL"])]),
    );
    assert_eq!(v.deny.len(), 1, "{v:?}");
    assert!(
        v.deny[0]
            .text
            .contains("2 finding(s) at or above High (worst: Critical)"),
        "{v:?}"
    );
    let v = gate_verdict(config.clone(), json!([provenance_v1(BUILDER)]));
    assert!(
        v.deny[0].text.contains("no verified vulnerability scan"),
        "{v:?}"
    );
    let v = gate_verdict(json!({"max_severity": "high"}), json!([]));
    assert!(v.deny[0].text.contains("invalid plugin config"), "{v:?}");
}

/// Figures for the report: cold compile (empty cache), warm load (checked cache hit), per call.
/// Only the sandbox bound is asserted elsewhere; this test checks that both runs agree.
#[test]
fn timing_of_compile_cache_and_calls() {
    let cache = tempfile::tempdir().unwrap();
    let path = built_plugin("github-identity");
    let input = doc(json!({"hook": "signatures", "signatures": [keyless(RELEASE, GITHUB, true)]}));

    let rt = PluginRuntime::new(Some(cache.path())).unwrap();
    let start = Instant::now();
    let cold = rt.load(&path, "github-identity", &json!({}), &[]).unwrap();
    let cold_load = start.elapsed();

    let rt = PluginRuntime::new(Some(cache.path())).unwrap();
    let start = Instant::now();
    let warm = rt.load(&path, "github-identity", &json!({}), &[]).unwrap();
    let warm_load = start.elapsed();

    let calls = 200u32;
    let start = Instant::now();
    for _ in 0..calls {
        assert!(warm.call(HookPoint::Signatures, &input).allowed());
    }
    let per_call = start.elapsed() / calls;
    assert!(cold.call(HookPoint::Signatures, &input).allowed());
    println!(
        "plugin timing: size {} bytes, cold load (compile) {cold_load:?}, warm load (cache) {warm_load:?}, per call {per_call:?}",
        std::fs::metadata(&path).unwrap().len()
    );
}
