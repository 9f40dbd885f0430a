//! Which entry governs a reference: the happy cases next to the ways a user layer would try to
//! shadow or relax the system layer.

use super::*;
use crate::config::{Config, ConfigPaths, Layered};
use crate::facts::{Identity, SignerFacts};
use crate::reference;
use crate::trust::testdata::ci;

const KEY: &str = ci!("cosign.pub");
const KEY2: &str = ci!("cosign2.pub");
const GH: &str = "https://token.actions.githubusercontent.com";

fn layered(system: &str, user: &str) -> Layered {
    let paths = ConfigPaths {
        user: "/u/config.toml".into(),
        system: "/s/config.toml".into(),
    };
    let system = Config::parse(&paths.system, system).expect("system config parses");
    let user = Config::parse(&paths.user, user).expect("user config parses");
    Layered {
        paths,
        user,
        system,
    }
}

fn resolve(l: &Layered, reference: &str) -> RegistryPolicy {
    let (mut loc, named) =
        reference::parse_named(reference, &l.effective()).expect("reference parses");
    RegistryPolicy::resolve(l, &mut loc, named.as_deref(), false).expect("policy resolves")
}

fn sys_corp() -> String {
    format!("[registries.corp]\nurl = \"corp.example/team\"\nkeys = [\"{KEY}\"]\n")
}

#[test]
fn a_user_entry_governs_what_no_system_entry_covers() {
    let l = layered("", &format!("[registries.mine]\nurl = \"mine.example\"\nissuer = \"{GH}\"\nidentity_regex = \"https://github.com/me/.*\"\n"));
    let p = resolve(&l, "mine.example/tool:1");
    assert_eq!((p.name.as_str(), p.layer), ("mine", Some(Layer::User)));
    assert_eq!(p.signers.len(), 1);
    assert_eq!(p.trust_root, RootSource::PublicGood);
    // No entry covers another host: ad hoc, no signer policy.
    let p = resolve(&l, "other.example/tool:1");
    assert_eq!(
        (p.name.as_str(), p.layer, p.signers.len()),
        ("other.example", None, 0)
    );
}

#[test]
fn the_system_entry_governs_however_the_user_spells_or_names_the_registry() {
    let sys = sys_corp();
    for user in [
        // Same URL under another name, a longer prefix, other spellings of the host.
        "[registries.corp2]\nurl = \"corp.example/team\"\nalways_allow_unsigned = true\n",
        "[registries.deep]\nurl = \"corp.example/team/tools\"\nalways_allow_unsigned = true\n",
        "[registries.caps]\nurl = \"CORP.Example.:443/team\"\nalways_allow_unsigned = true\nmode = \"warn\"\n",
        "[registries.scheme]\nurl = \"https://corp.example:0443/team/\"\nalways_allow_unsigned = true\ninsecure = true\n",
    ] {
        let l = layered(&sys, user);
        for reference in ["corp.example/team/tools/jq:1", "Corp.Example.:443/team/tools/jq:1", "corp.example:00443/team/tools/jq"] {
            let p = resolve(&l, reference);
            assert_eq!((p.name.as_str(), p.layer), ("corp", Some(Layer::System)), "{user} / {reference}");
            assert_eq!(p.signers.first().map(|r| r.registry.as_str()), Some("corp"));
            assert!(!p.always_allow_unsigned, "{user}");
            assert_eq!(p.mode, Mode::Enforce, "{user}");
            assert_eq!(p.transport, Transport::Https, "{user}: the user layer cannot downgrade the transport");
            assert_eq!(p.signature_configs()[0].registry, "corp");
        }
    }
}

#[test]
fn a_named_prefix_that_expands_into_a_system_registry_gets_the_system_policy() {
    let l = layered(
        &sys_corp(),
        "[registries.alias]\nurl = \"corp.example/team\"\nalways_allow_unsigned = true\n",
    );
    let p = resolve(&l, "alias/tools/jq:1");
    assert_eq!(p.name, "corp");
    // A system entry of the same name as a user one: the user one is not used at all.
    let l = layered(
        &sys_corp(),
        "[registries.corp]\nurl = \"evil.example\"\nalways_allow_unsigned = true\n",
    );
    let p = resolve(&l, "corp/tools/jq:1");
    assert_eq!(
        (p.name.as_str(), p.url.as_str()),
        ("corp", "corp.example/team")
    );
}

#[test]
fn among_user_entries_the_named_one_governs() {
    let user = format!("[registries.a]\nurl = \"r.example/tools\"\nkeys = [\"{KEY}\"]\n[registries.b]\nurl = \"r.example/tools\"\nkeys = [\"{KEY2}\"]\n");
    let l = layered("", &user);
    assert_eq!(resolve(&l, "b/x:1").name, "b");
    assert_eq!(resolve(&l, "a/x:1").name, "a");
    // But never over a system entry.
    let l = layered(
        &format!("[registries.corp]\nurl = \"r.example\"\nkeys = [\"{KEY}\"]\n"),
        &user,
    );
    assert_eq!(resolve(&l, "b/x:1").name, "corp");
}

#[test]
fn the_most_specific_system_entry_governs() {
    let sys = format!(
        "{}[registries.wide]\nurl = \"corp.example\"\nalways_allow_unsigned = true\n",
        sys_corp()
    );
    let l = layered(&sys, "");
    assert_eq!(resolve(&l, "corp.example/team/x:1").name, "corp");
    assert_eq!(resolve(&l, "corp.example/teamx/x:1").name, "wide");
    assert_eq!(resolve(&l, "corp.example/other/x:1").name, "wide");
}

#[test]
fn loopback_names_are_one_host_per_port() {
    let l = layered(
        &format!("[registries.local]\nurl = \"127.0.0.1:5000\"\nkeys = [\"{KEY}\"]\n"),
        "",
    );
    for r in [
        "localhost:5000/x",
        "LOCALHOST.:5000/x",
        "[::1]:5000/x",
        "127.0.0.2:05000/x",
        "127.1:5000/x",
        "2130706433:5000/x",
    ] {
        let p = resolve(&l, r);
        assert_eq!(p.name, "local", "{r}");
        assert_eq!(p.transport, Transport::Http, "{r}");
    }
    assert_eq!(resolve(&l, "localhost:5001/x").layer, None);
}

#[test]
fn a_user_entry_under_a_system_one_only_adds_requirements() {
    let user = format!(
        "[registries.mine]\nurl = \"corp.example/team/tools\"\nissuer = \"{GH}\"\nidentity = \"https://github.com/me/a\"\n[[registries.mine.policies]]\npath = \"/p/extra.rego\"\n"
    );
    let l = layered(&sys_corp(), &user);
    let p = resolve(&l, "corp.example/team/tools/jq:1");
    assert_eq!(p.name, "corp");
    assert_eq!(p.additional, vec!["mine".to_string()]);
    assert_eq!(
        p.signers
            .iter()
            .map(|r| r.registry.as_str())
            .collect::<Vec<_>>(),
        ["corp", "mine"]
    );
    let configs = p.signature_configs();
    assert_eq!(configs.len(), 2);
    assert!(configs.iter().all(|c| c.has_signature_policy));
    assert_eq!(p.policies.len(), 1);
    assert_eq!(p.policies[0].0, Layer::User);
    // The system rule is key-only: the adding entry's keyless rule brings the public-good root.
    assert_eq!(p.trust_root, RootSource::PublicGood);
}

#[test]
fn a_system_entry_without_signers_keeps_its_unsigned_denial() {
    // The system entry names no signer; a user entry adding one cannot lift the system's
    // "no signature policy" denial: its config is evaluated first and always.
    let l = layered(
        "[registries.corp]\nurl = \"corp.example\"\n",
        &format!("[registries.mine]\nurl = \"corp.example\"\nkeys = [\"{KEY}\"]\n"),
    );
    let p = resolve(&l, "corp.example/x:1");
    let configs = p.signature_configs();
    assert_eq!(configs.len(), 2);
    assert!(
        !configs[0].has_signature_policy
            && !configs[0].allow_unsigned
            && !configs[0].always_allow_unsigned
    );
    assert_eq!(configs[1].registry, "mine");
}

#[test]
fn forbid_flags_hold() {
    let l = layered("forbid_allow_unsigned = true\nforbid_warn_mode = true\n", "[registries.mine]\nurl = \"mine.example\"\nalways_allow_unsigned = true\nmode = \"warn\"\n");
    let p = resolve(&l, "mine.example/x:1");
    assert!(!p.always_allow_unsigned);
    assert_eq!(p.mode, Mode::Enforce);
    let mut loc = reference::parse("mine.example/x:1", &l.effective()).unwrap();
    assert!(matches!(
        RegistryPolicy::resolve(&l, &mut loc, None, true),
        Err(RegistryPolicyError::UnsignedForbidden)
    ));
}

#[test]
fn layout_paths_are_matched_after_canonicalisation() {
    let d = tempfile::tempdir().unwrap();
    let catalog = d.path().join("catalog");
    std::fs::create_dir_all(catalog.join("tools")).unwrap();
    std::fs::create_dir_all(d.path().join("catalogue")).unwrap();
    std::os::unix::fs::symlink(&catalog, d.path().join("alias")).unwrap();
    let l = layered(
        &format!(
            "[registries.airgap]\nurl = \"oci:{}\"\nkeys = [\"{KEY}\"]\n",
            catalog.display()
        ),
        &format!(
            "[registries.mine]\nurl = \"oci:{}\"\nalways_allow_unsigned = true\n",
            d.path().join("alias/tools").display()
        ),
    );
    for r in [
        format!("oci:{}/tools:1", catalog.display()),
        format!("oci:{}/tools:1", d.path().join("alias").display()),
        format!("oci:{}/tools/../tools:1", catalog.display()),
    ] {
        let mut loc = reference::parse(&r, &l.effective()).unwrap();
        let p = RegistryPolicy::resolve(&l, &mut loc, None, false).unwrap();
        assert_eq!(p.name, "airgap", "{r}");
        assert_eq!(p.additional, ["mine"], "{r}");
        let ImageLocation::Layout(img) = loc else {
            panic!("layout")
        };
        assert_eq!(
            img.dir,
            std::fs::canonicalize(catalog.join("tools")).unwrap(),
            "the directory opened is the one matched"
        );
    }
    // A sibling sharing the prefix string is not covered.
    let mut loc = reference::parse(
        &format!("oci:{}:1", d.path().join("catalogue").display()),
        &l.effective(),
    )
    .unwrap();
    assert_eq!(
        RegistryPolicy::resolve(&l, &mut loc, None, false)
            .unwrap()
            .layer,
        None
    );
}

fn keyless(issuer: &str, subject: &str) -> SignerFacts {
    SignerFacts {
        kind: Some(SignatureKind::Keyless),
        identity: Identity {
            issuer: Some(issuer.into()),
            subject: Some(subject.into()),
            github: None,
        },
        ..Default::default()
    }
}

fn keyed(path: &str) -> SignerFacts {
    let pem = std::fs::read(path).unwrap();
    let fp = crate::trust::PublicKey::from_pem(&pem)
        .unwrap()
        .fingerprint();
    SignerFacts {
        kind: Some(SignatureKind::Key),
        key_fingerprint: Some(fp),
        ..Default::default()
    }
}

#[test]
fn attestations_count_only_from_the_signer_policy_or_its_attestors() {
    let user = format!(
        "[registries.r]\nurl = \"r.example\"\nissuer = \"{GH}\"\nidentity_regex = \"https://github.com/corp/.*\"\n[[registries.r.attestors]]\nkeys = [\"{KEY2}\"]\n[[registries.r.attestors]]\nissuer = \"https://scanner.example\"\nidentity = \"scanner@corp.example\"\n"
    );
    let p = resolve(&layered("", &user), "r.example/x:1");
    assert_eq!(
        p.attestation_rejected(&keyless(
            GH,
            "https://github.com/corp/tool/.github/workflows/r.yml@refs/heads/main"
        )),
        None
    );
    assert_eq!(p.attestation_rejected(&keyed(KEY2)), None);
    assert_eq!(
        p.attestation_rejected(&keyless("https://scanner.example", "scanner@corp.example")),
        None
    );
    for hostile in [
        keyless(
            GH,
            "https://github.com/attacker/x/.github/workflows/r.yml@refs/heads/main",
        ),
        keyless(GH, "https://github.com/attacker/?https://github.com/corp/x"),
        keyless("https://evil.example", "https://github.com/corp/tool"),
        keyless(GH, "scanner@corp.example"),
        keyed(KEY),
        SignerFacts::default(),
    ] {
        let why = p.attestation_rejected(&hostile).expect("rejected");
        assert!(
            why.contains("does not satisfy the signer policy of registry 'r'"),
            "{why}"
        );
    }
    // No signer policy: nobody to bind an attestation to.
    let p = resolve(&layered("", ""), "adhoc.example/x:1");
    assert!(p
        .attestation_rejected(&keyed(KEY))
        .unwrap()
        .contains("no signer policy"));
}

#[test]
fn an_attestation_must_satisfy_the_system_rule_and_the_adding_user_rule() {
    let user = format!("[registries.mine]\nurl = \"corp.example/team\"\nkeys = [\"{KEY2}\"]\n");
    let p = resolve(&layered(&sys_corp(), &user), "corp.example/team/x:1");
    assert!(p
        .attestation_rejected(&keyed(KEY))
        .unwrap()
        .contains("registry 'mine'"));
    assert!(p
        .attestation_rejected(&keyed(KEY2))
        .unwrap()
        .contains("registry 'corp'"));
}

/// A verified key signature by the key at `path` (fingerprint as the verifier records it).
fn key_sig(p: &RegistryPolicy, entry: usize, verified: bool) -> SignatureFact {
    SignatureFact {
        verified,
        error: (!verified).then(|| "signature does not verify".into()),
        kind: SignatureKind::Key,
        source: crate::facts::SignatureSource::CosignTag,
        key_fingerprint: Some(p.quorums[0].entries[entry].key_fingerprints[0].clone()),
        identity: Identity::default(),
        tlog: None,
        docker_reference: None,
        signed_digest: None,
        on_index: false,
    }
}

fn keyless_sig(subject: &str) -> SignatureFact {
    SignatureFact {
        verified: true,
        error: None,
        kind: SignatureKind::Keyless,
        source: crate::facts::SignatureSource::Bundle,
        key_fingerprint: None,
        identity: Identity {
            issuer: Some(GH.into()),
            subject: Some(subject.into()),
            github: None,
        },
        tlog: None,
        docker_reference: None,
        signed_digest: None,
        on_index: false,
    }
}

fn quorum_entry(signers: &str, threshold: usize) -> RegistryPolicy {
    let l = layered(
        "",
        &format!(
            "[registries.q]\nurl = \"q.example\"\nthreshold = {threshold}\nattestation_threshold = 1\n{signers}"
        ),
    );
    resolve(&l, "q.example/tool:1")
}

const THREE: &str = "signers = [{ key = \"KEY\" }, { key = \"KEY2\" }, { issuer = \"GH\", identity_regex = \"https://github.com/builder/.*\" }]\n";

fn three() -> String {
    THREE
        .replace("KEY2", KEY2)
        .replace("KEY", KEY)
        .replace("GH", GH)
}

#[test]
fn a_quorum_counts_distinct_signers_with_1_2_and_3_of_3() {
    let p = quorum_entry(&three(), 2);
    assert_eq!(p.quorums.len(), 1);
    assert!(p.has_signer_policy());
    assert_eq!(
        p.public_keys().len(),
        2,
        "both quorum keys verify signatures"
    );
    assert_eq!(
        p.trust_root,
        RootSource::PublicGood,
        "a keyless entry needs a root"
    );
    let one = p.signature_quorums(&[key_sig(&p, 0, true)]);
    assert_eq!((one[0].required, one[0].have), (2, 1));
    assert_eq!(one[0].missing.len(), 2);
    let two = p.signature_quorums(&[key_sig(&p, 0, true), key_sig(&p, 1, true)]);
    assert_eq!(two[0].have, 2);
    let builder = keyless_sig("https://github.com/builder/x/.github/workflows/b.yml@refs/tags/v1");
    let all = p.signature_quorums(&[key_sig(&p, 0, true), key_sig(&p, 1, true), builder.clone()]);
    assert_eq!(all[0].have, 3);
    assert_eq!(
        all[0].satisfied.iter().map(|m| m.entry).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(all[0].missing.is_empty());
    // Keyless: an identity the entry does not name counts zero.
    let other = p.signature_quorums(&[keyless_sig(
        "https://github.com/evil/x/.github/workflows/b.yml@refs/tags/v1",
    )]);
    assert_eq!(other[0].have, 0);
}

#[test]
fn one_key_twice_and_one_signature_matching_two_entries_count_once() {
    // The same key under two entries: one signer, however many signatures it made.
    let twice = format!(
        "signers = [{{ key = \"{KEY}\" }}, {{ key = \"{KEY}\" }}, {{ key = \"{KEY2}\" }}]\n"
    );
    let p = quorum_entry(&twice, 2);
    let q = p.signature_quorums(&[
        key_sig(&p, 0, true),
        key_sig(&p, 1, true),
        key_sig(&p, 0, true),
    ]);
    assert_eq!(q[0].have, 1, "{q:?}");
    // One keyless signature that matches two identity entries satisfies one of them.
    let overlapping = format!(
        "signers = [{{ issuer = \"{GH}\", identity_regex = \"https://github.com/corp/.*\" }}, {{ issuer = \"{GH}\", identity_regex = \"https://github.com/corp/tool/.*\" }}]\n"
    );
    let p = quorum_entry(&overlapping, 2);
    let sig = keyless_sig("https://github.com/corp/tool/.github/workflows/r.yml@refs/tags/v1");
    let q = p.signature_quorums(&[sig.clone(), sig]);
    assert_eq!(q[0].have, 1, "{q:?}");
    // Two distinct identities: the matching finds the assignment that satisfies both, whatever
    // order they come in (the first could greedily take the entry the second needs).
    let a = keyless_sig("https://github.com/corp/tool/.github/workflows/r.yml@refs/tags/v1");
    let b = keyless_sig("https://github.com/corp/other/.github/workflows/r.yml@refs/tags/v1");
    for sigs in [[a.clone(), b.clone()], [b, a]] {
        assert_eq!(p.signature_quorums(&sigs)[0].have, 2);
    }
}

#[test]
fn a_forged_signature_among_valid_ones_counts_zero() {
    let p = quorum_entry(&three(), 2);
    let q = p.signature_quorums(&[key_sig(&p, 0, true), key_sig(&p, 1, false)]);
    assert_eq!(q[0].have, 1);
    assert_eq!(q[0].satisfied[0].entry, 0);
    // Attestations: the same matching over their signers.
    let att = crate::facts::AttestationFact {
        predicate_type: "https://slsa.dev/provenance/v1".into(),
        predicate: serde_json::json!({}),
        signer: SignerFacts {
            kind: Some(SignatureKind::Key),
            key_fingerprint: Some(p.quorums[0].entries[1].key_fingerprints[0].clone()),
            identity: Identity::default(),
            tlog: None,
        },
    };
    assert_eq!(p.attestation_quorums(std::slice::from_ref(&att))[0].have, 1);
    assert!(p.attestation_rejected(&att.signer).is_none());
    let stranger = SignerFacts {
        kind: Some(SignatureKind::Key),
        key_fingerprint: Some("sha256:00".into()),
        ..Default::default()
    };
    assert!(p.attestation_rejected(&stranger).is_some());
}

#[test]
fn a_half_filled_quorum_is_refused_at_load() {
    let bad = [
        (format!("signers = [{{ key = \"{KEY}\" }}]\n"), "needs `threshold`"),
        (format!("threshold = 2\nsigners = [{{ key = \"{KEY}\" }}]\n"), "use 1 to 1"),
        (format!("threshold = 0\nsigners = [{{ key = \"{KEY}\" }}]\n"), "use 1 to 1"),
        ("threshold = 1\n".to_string(), "without `signers`"),
        (format!("threshold = 1\nsigners = [{{ issuer = \"{GH}\" }}]\n"), "names no signer"),
        (format!("threshold = 1\nsigners = [{{ key = \"{KEY}\", issuer = \"{GH}\", identity = \"x\" }}]\n"), "not both"),
        (format!("threshold = 1\nkeys = [\"{KEY}\"]\nsigners = [{{ key = \"{KEY2}\" }}]\n"), "beside it"),
        ("threshold = 1\nsigners = [{}]\n".to_string(), "names no signer"),
    ];
    for (entry, want) in bad {
        let text = format!("[registries.q]\nurl = \"q.example\"\n{entry}");
        let e = Config::parse(std::path::Path::new("/u/config.toml"), &text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {entry}"))
            .to_string();
        assert!(e.contains(want), "{entry}: {e}");
    }
}
