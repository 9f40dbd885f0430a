//! Sigstore bundle verification (v0.1, v0.2, v0.3, both media-type spellings): message
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! signatures and DSSE envelopes, keyless (Fulcio) and key-signed, with Rekor v1/v2 entries and
//! RFC 3161 timestamps. Every check is done here with this module's siblings, because the
//! sigstore crate's verifier was shown to accept tampered SETs, proofs, times and log ids. A
//! bundle is valid only if every piece of evidence it carries verifies, at least one trusted
//! time exists, and the signer is the one the policy names; anything else is an error.

use super::cert::verify_leaf_at;
use super::der_util::b64;
use super::entry::{pae, verify_entry_matches, EntryExpectation, Verifier};
use super::keys::{KeyAlgorithm, PublicKey};
use super::rekor::{find_log, root_from_proof, verify_inclusion, verify_set, InclusionProof};
use super::root::TrustRoot;
use super::tsa::{attest_timestamp, Attested};
use super::TrustError;
use crate::facts::{Identity, TlogEntry};
use serde_json::Value;
use sha2::Digest;
use x509_cert::der::Decode;

/// What was signed: the artifact's bytes, or only its SHA-256 digest.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// The artifact itself (DSSE subjects may then match by SHA-256 or SHA-512).
    Bytes(Vec<u8>),
    /// Only the artifact's SHA-256 (the artifact is never read).
    Sha256([u8; 32]),
}

/// Who must have signed.
#[derive(Debug, Clone)]
pub enum BundlePolicy {
    /// A keyless signer: exact OIDC issuer and exact certificate SAN.
    Identity {
        /// Expected OIDC issuer.
        issuer: String,
        /// Expected certificate SAN.
        san: String,
    },
    /// A key-signed bundle, verified with this key.
    Key(PublicKey),
}

/// The facts a verified bundle establishes.
// Sealed with a private field rather than `#[non_exhaustive]`, which would still let the rest of
// this crate construct an unverified value.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The keyless signer (empty for key-signed bundles).
    pub identity: Identity,
    /// Fingerprint of the verifying key (`sha256:` of its SPKI), for key-signed bundles.
    pub key_fingerprint: Option<String>,
    /// The first verified transparency-log entry.
    pub tlog: Option<TlogEntry>,
    /// For DSSE bundles: payload type and payload bytes (already bound to the artifact).
    pub dsse_payload: Option<(String, Vec<u8>)>,
    /// Only `verify_bundle` can make one of these.
    _sealed: (),
}

fn bad(m: impl std::fmt::Display) -> TrustError {
    TrustError::Bundle(m.to_string())
}

fn get_str<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn dec(v: &Value, ptr: &str) -> Result<Vec<u8>, TrustError> {
    let s = get_str(v, ptr).ok_or_else(|| bad(format!("missing {ptr}")))?;
    b64(s).map_err(|e| bad(format!("{ptr}: {e}")))
}

/// A certificate value for a message: quoted (control characters escaped), or `none` when the
/// certificate does not carry it.
fn quoted_or_none(v: Option<&str>) -> String {
    v.map_or_else(|| "none".into(), |s| format!("{s:?}"))
}

/// Bundle version from its media type; unknown versions are refused.
fn version(media_type: &str) -> Result<u8, TrustError> {
    match media_type {
        "application/vnd.dev.sigstore.bundle+json;version=0.1"
        | "application/vnd.dev.sigstore.bundle.v0.1+json" => Ok(1),
        "application/vnd.dev.sigstore.bundle+json;version=0.2"
        | "application/vnd.dev.sigstore.bundle.v0.2+json" => Ok(2),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Ok(3),
        other => Err(bad(format!("unsupported bundle media type {other:?}"))),
    }
}

fn int(v: &Value, ptr: &str) -> Result<Option<i64>, TrustError> {
    match v.pointer(ptr) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{ptr} is not an integer"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("{ptr} is not an integer"))),
        Some(_) => Err(bad(format!("{ptr} is not an integer"))),
    }
}

/// Checks the in-toto statement's subjects name the artifact.
fn subject_matches(payload: &[u8], artifact: &Artifact) -> Result<(), TrustError> {
    let st: Value = serde_json::from_slice(payload)
        .map_err(|e| bad(format!("DSSE payload is not an in-toto statement: {e}")))?;
    let subjects = st
        .get("subject")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("in-toto statement has no subject"))?;
    let (sha256, sha512) = match artifact {
        Artifact::Bytes(b) => (
            hex::encode(sha2::Sha256::digest(b)),
            Some(hex::encode(sha2::Sha512::digest(b))),
        ),
        Artifact::Sha256(d) => (hex::encode(d), None),
    };
    let hit = subjects.iter().any(|s| {
        let d = s.get("digest");
        d.and_then(|d| d.get("sha256"))
            .and_then(Value::as_str)
            .is_some_and(|h| h.eq_ignore_ascii_case(&sha256))
            || sha512.as_ref().is_some_and(|w| {
                d.and_then(|d| d.get("sha512"))
                    .and_then(Value::as_str)
                    .is_some_and(|h| h.eq_ignore_ascii_case(w))
            })
    });
    if hit {
        Ok(())
    } else {
        Err(TrustError::Artifact(
            "the artifact digest is not a subject of the in-toto statement".into(),
        ))
    }
}

/// Verifies a Sigstore bundle for `artifact` under `policy` and `root`.
pub fn verify_bundle(
    bundle_json: &[u8],
    artifact: Artifact,
    policy: &BundlePolicy,
    root: &TrustRoot,
) -> Result<VerifiedBundle, TrustError> {
    let b: Value =
        serde_json::from_slice(bundle_json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let ver = version(get_str(&b, "/mediaType").ok_or_else(|| bad("no mediaType"))?)?;
    let vm = b
        .get("verificationMaterial")
        .ok_or_else(|| bad("no verificationMaterial"))?;

    // The signer: a leaf certificate (with any shipped chain) or a public key.
    let (leaf, chain) = if let Some(c) = vm.pointer("/certificate") {
        if ver < 3 {
            return Err(bad("a single certificate needs bundle v0.3"));
        }
        (Some(dec(c, "/rawBytes")?), vec![])
    } else if let Some(c) = vm.pointer("/x509CertificateChain/certificates") {
        let certs = c
            .as_array()
            .ok_or_else(|| bad("certificate chain is not a list"))?;
        let mut ders = certs
            .iter()
            .map(|c| dec(c, "/rawBytes"))
            .collect::<Result<Vec<_>, _>>()?;
        if ders.is_empty() {
            return Err(bad("empty certificate chain"));
        }
        let leaf = ders.remove(0);
        (Some(leaf), ders)
    } else if vm.get("publicKey").is_some() {
        (None, vec![])
    } else {
        return Err(bad("no certificate or public key in verificationMaterial"));
    };
    let key = match (&leaf, policy) {
        (Some(_), BundlePolicy::Key(_)) => {
            return Err(TrustError::Identity(
                "bundle is signed by a certificate, but a key was required".into(),
            ))
        }
        (None, BundlePolicy::Identity { .. }) => {
            return Err(TrustError::Identity(
                "bundle is signed by a key, but a certificate identity was required".into(),
            ))
        }
        (None, BundlePolicy::Key(k)) => k.clone(),
        (Some(l), BundlePolicy::Identity { .. }) => {
            let c = x509_cert::Certificate::from_der(l)
                .map_err(|e| TrustError::Certificate(format!("leaf: {e}")))?;
            PublicKey::from_spki(c.tbs_certificate().subject_public_key_info())?
        }
    };
    let verifier = match &leaf {
        Some(l) => Verifier::Certificate(l.clone()),
        None => Verifier::PublicKey(key.spki_der().to_vec()),
    };

    // The signature over the content, and what the log entries must be about.
    let (signature, expect_digest, dsse) = if let Some(ms) = b.get("messageSignature") {
        let sig = dec(ms, "/signature")?;
        let digest: [u8; 32] = match &artifact {
            Artifact::Bytes(bytes) => super::sha256(bytes),
            Artifact::Sha256(d) => *d,
        };
        if let Some(md) = ms.get("messageDigest") {
            let alg = get_str(md, "/algorithm").unwrap_or("");
            let d = dec(md, "/digest")?;
            if alg != "SHA2_256" || d != digest {
                return Err(TrustError::Artifact(
                    "the bundle's message digest is not the artifact's".into(),
                ));
            }
        }
        // The signed digest is SHA-256 (checked above), whatever the key size: a P-384 key
        // signs the SHA-256 digest here. Ed25519 signs the message itself.
        match (&artifact, key.algorithm()) {
            (Artifact::Bytes(bytes), KeyAlgorithm::Ed25519) => key.verify(bytes, &sig)?,
            _ => key.verify_prehashed_sha256(&digest, &sig)?,
        }
        (sig, Some(digest), None)
    } else if let Some(env) = b.get("dsseEnvelope") {
        let payload = dec(env, "/payload")?;
        let ptype = get_str(env, "/payloadType")
            .ok_or_else(|| bad("DSSE envelope has no payloadType"))?
            .to_string();
        let sigs = env
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("DSSE envelope has no signatures"))?;
        let [only] = sigs.as_slice() else {
            return Err(bad(format!(
                "DSSE envelope must have exactly one signature, has {}",
                sigs.len()
            )));
        };
        let sig = dec(only, "/sig")?;
        key.verify(&pae(&ptype, &payload), &sig)?;
        if ptype == "application/vnd.in-toto+json" {
            subject_matches(&payload, &artifact)?;
        } else {
            return Err(bad(format!("unsupported DSSE payload type {ptype:?}")));
        }
        (sig, None, Some((ptype, payload)))
    } else {
        return Err(bad("no messageSignature or dsseEnvelope"));
    };

    // Timestamps first: Rekor v2 entries have no integrated time of their own. A timestamp no
    // authority in this root signed (e.g. the 2025 TSA under an older root copy) attests
    // nothing and is set aside, as sigstore-go and sigstore-python do; it can never supply a
    // time, and if no other verified time remains its error is the one reported below. Any
    // other timestamp failure (malformed, not over this signature, a listed TSA out of its
    // validity) is fatal.
    let mut times: Vec<i64> = Vec::new();
    let mut unattributed = false;
    if let Some(ts) = vm
        .pointer("/timestampVerificationData/rfc3161Timestamps")
        .and_then(Value::as_array)
    {
        for t in ts {
            match attest_timestamp(root, &dec(t, "/signedTimestamp")?, &signature)? {
                Attested::Time(time) => times.push(time),
                Attested::UnknownAuthority => unattributed = true,
            }
        }
    }
    let tsa_time = times.first().copied();

    let entries = vm
        .get("tlogEntries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(TrustError::Tlog(
            "bundle has no transparency log entry".into(),
        ));
    }
    let want = EntryExpectation {
        signature: signature.clone(),
        verifier,
        artifact_sha256: expect_digest,
        dsse: dsse.clone(),
    };
    let mut first_tlog = None;
    for e in &entries {
        let body_b64 = get_str(e, "/canonicalizedBody")
            .ok_or_else(|| bad("tlog entry has no canonicalizedBody"))?;
        let body = b64(body_b64).map_err(|m| bad(format!("canonicalizedBody: {m}")))?;
        let log_id_hex = hex::encode(dec(e, "/logId/keyId")?);
        let log_index = int(e, "/logIndex")?.ok_or_else(|| bad("tlog entry has no logIndex"))?;
        if log_index < 0 {
            return Err(TrustError::Tlog(format!("negative log index {log_index}")));
        }
        let integrated = int(e, "/integratedTime")?.unwrap_or(0);
        let kind = (
            get_str(e, "/kindVersion/kind"),
            get_str(e, "/kindVersion/version"),
        );
        verify_entry_matches(&body, &want)?;
        let body_json: Value =
            serde_json::from_slice(&body).map_err(|m| bad(format!("entry body: {m}")))?;
        if (
            body_json.get("kind").and_then(Value::as_str),
            body_json.get("apiVersion").and_then(Value::as_str),
        ) != kind
        {
            return Err(TrustError::Tlog(
                "entry kindVersion does not match its body".into(),
            ));
        }
        let mut evidence = false;
        let mut entry = TlogEntry {
            log_index,
            integrated_time: integrated,
            log_id: Some(log_id_hex.clone()),
        };
        if e.pointer("/inclusionPromise/signedEntryTimestamp")
            .is_some()
        {
            let set = dec(e, "/inclusionPromise/signedEntryTimestamp")?;
            entry = verify_set(root, body_b64, integrated, log_index, &log_id_hex, &set)?;
            times.push(integrated);
            evidence = true;
        }
        let log_time = if evidence { Some(integrated) } else { tsa_time };
        let log = find_log(root, &log_id_hex, log_time)?;
        match e.get("inclusionProof") {
            Some(p) => {
                let proof = InclusionProof {
                    log_index: int(p, "/logIndex")?
                        .ok_or_else(|| bad("inclusion proof has no logIndex"))?,
                    tree_size: int(p, "/treeSize")?
                        .ok_or_else(|| bad("inclusion proof has no treeSize"))?,
                    root_hash: dec(p, "/rootHash")?,
                    hashes: p
                        .get("hashes")
                        .and_then(Value::as_array)
                        .ok_or_else(|| bad("inclusion proof has no hashes"))?
                        .iter()
                        .map(|h| {
                            h.as_str()
                                .ok_or_else(|| bad("proof hash is not a string"))
                                .and_then(|h| b64(h).map_err(bad))
                        })
                        .collect::<Result<_, _>>()?,
                    checkpoint: get_str(p, "/checkpoint/envelope").map(str::to_string),
                };
                if proof.checkpoint.is_none() && ver == 1 && evidence {
                    // v0.1 bundles predate checkpoints in bundles; the verified SET vouches for
                    // the entry, and the proof must still lead to its root hash.
                    let r =
                        root_from_proof(&body, proof.log_index, proof.tree_size, &proof.hashes)?;
                    if r.as_slice() != proof.root_hash.as_slice() {
                        return Err(TrustError::Tlog(
                            "inclusion proof does not lead to the stated root hash".into(),
                        ));
                    }
                } else {
                    verify_inclusion(log, &body, &proof)?;
                }
                evidence = true;
            }
            // Bundles from v0.2 on must prove inclusion; a promise alone is only v0.1.
            None if ver >= 2 => {
                return Err(TrustError::Tlog("tlog entry has no inclusion proof".into()))
            }
            None => {}
        }
        if !evidence {
            return Err(TrustError::Tlog(
                "tlog entry has neither a SET nor an inclusion proof".into(),
            ));
        }
        first_tlog.get_or_insert(entry);
    }
    if times.is_empty() {
        return Err(TrustError::Timestamp(if unattributed {
            "no timestamp authority in the trusted root signed this timestamp, and there is no other verified signing time".into()
        } else {
            "no verified signing time (no SET integrated time and no RFC 3161 timestamp)".into()
        }));
    }

    let (identity, key_fingerprint) = match (&leaf, policy) {
        (Some(l), BundlePolicy::Identity { issuer, san }) => {
            let mut facts = None;
            for t in &times {
                facts = Some(verify_leaf_at(root, l, &chain, *t)?);
            }
            let id = facts.map(|f| f.identity).unwrap_or_default();
            if id.issuer.as_deref() != Some(issuer.as_str()) {
                return Err(TrustError::Identity(format!(
                    "certificate issuer {} is not {issuer:?}",
                    quoted_or_none(id.issuer.as_deref())
                )));
            }
            if id.subject.as_deref() != Some(san.as_str()) {
                return Err(TrustError::Identity(format!(
                    "certificate identity {} is not {san:?}",
                    quoted_or_none(id.subject.as_deref())
                )));
            }
            (id, None)
        }
        _ => (Identity::default(), Some(key.fingerprint())),
    };
    Ok(VerifiedBundle {
        identity,
        key_fingerprint,
        tlog: first_tlog,
        dsse_payload: dsse,
        _sealed: (),
    })
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance");
    const BEACON: &str =
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    const GHA: &str = "https://token.actions.githubusercontent.com";

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(format!("{SHARED}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn root(rel: &str) -> TrustRoot {
        TrustRoot::from_json(&read(rel)).unwrap()
    }

    use crate::trust::testdata::public_good;

    fn id(issuer: &str, san: &str) -> BundlePolicy {
        BundlePolicy::Identity {
            issuer: issuer.into(),
            san: san.into(),
        }
    }

    fn digest(hex_str: &str) -> Artifact {
        Artifact::Sha256(hex::decode(hex_str).unwrap().try_into().unwrap())
    }

    #[test]
    fn message_signature_bundle_and_its_hostile_variants() {
        let b = read(
            "sigstore-conformance/test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json",
        );
        let a = read("sigstore-conformance/test/assets/bundle-verify/a.txt");
        let root = public_good();
        let v = verify_bundle(&b, Artifact::Bytes(a.clone()), &id(GHA, BEACON), &root).unwrap();
        assert_eq!(v.identity.subject.as_deref(), Some(BEACON));
        assert!(v.tlog.is_some() && v.key_fingerprint.is_none() && v.dsse_payload.is_none());
        verify_bundle(
            &b,
            Artifact::Sha256(crate::trust::sha256(&a)),
            &id(GHA, BEACON),
            &root,
        )
        .unwrap();
        // Wrong SAN, wrong issuer, a SAN that only matches as a prefix, another artifact.
        assert!(verify_bundle(
            &b,
            Artifact::Bytes(a.clone()),
            &id(GHA, "https://github.com/evil"),
            &root
        )
        .is_err());
        assert!(verify_bundle(
            &b,
            Artifact::Bytes(a.clone()),
            &id("https://accounts.google.com", BEACON),
            &root
        )
        .is_err());
        assert!(verify_bundle(
            &b,
            Artifact::Bytes(a.clone()),
            &id(GHA, &BEACON[..40]),
            &root
        )
        .is_err());
        assert!(verify_bundle(
            &b,
            Artifact::Bytes(b"other".to_vec()),
            &id(GHA, BEACON),
            &root
        )
        .is_err());
        // A key policy never accepts a certificate-signed bundle.
        let some_key = PublicKey::from_pem(&read("containers-image/cosign.pub")).unwrap();
        assert!(verify_bundle(
            &b,
            Artifact::Bytes(a.clone()),
            &BundlePolicy::Key(some_key),
            &root
        )
        .is_err());
        // Shifting the integrated time breaks the SET; an unknown-version media type is refused.
        let s = String::from_utf8(b.clone()).unwrap();
        let shifted = s.replacen("\"integratedTime\": \"", "\"integratedTime\": \"1", 1);
        assert_ne!(shifted, s);
        assert!(verify_bundle(
            shifted.as_bytes(),
            Artifact::Bytes(a.clone()),
            &id(GHA, BEACON),
            &root
        )
        .is_err());
        let v9 = s.replacen("version=0.3", "version=0.9", 1);
        assert!(verify_bundle(v9.as_bytes(), Artifact::Bytes(a), &id(GHA, BEACON), &root).is_err());
    }

    #[test]
    fn key_signed_bundle() {
        let dir = "sigstore-conformance/test/assets/bundle-verify";
        let b = read(&format!(
            "{dir}/managed-key-happy-path/bundle.sigstore.json"
        ));
        let a = read(&format!("{dir}/a.txt"));
        let key =
            PublicKey::from_pem(&read(&format!("{dir}/managed-key-happy-path/key.pub"))).unwrap();
        let v = verify_bundle(
            &b,
            Artifact::Bytes(a.clone()),
            &BundlePolicy::Key(key.clone()),
            &public_good(),
        )
        .unwrap();
        assert_eq!(v.key_fingerprint, Some(key.fingerprint()));
        let other = PublicKey::from_pem(&read("containers-image/cosign.pub")).unwrap();
        assert!(verify_bundle(
            &b,
            Artifact::Bytes(a.clone()),
            &BundlePolicy::Key(other),
            &public_good()
        )
        .is_err());
        assert!(verify_bundle(&b, Artifact::Bytes(a), &id(GHA, BEACON), &public_good()).is_err());
    }

    #[test]
    fn cosign_v3_dsse_bundle_binds_the_image_digest() {
        // Real cosign v3 keyless signature of ghcr.io/kubewarden/kubewarden-controller v1.34.0.
        let b = read("sigstore-rs/tests-data/bundle_v03.json");
        let san = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
        let good = "c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
        let v = verify_bundle(&b, digest(good), &id(GHA, san), &public_good()).unwrap();
        let (ptype, payload) = v.dsse_payload.unwrap();
        assert_eq!(ptype, "application/vnd.in-toto+json");
        assert!(String::from_utf8(payload).unwrap().contains(good));
        let gh = v.identity.github.unwrap();
        assert_eq!(
            gh.workflow_repository.as_deref(),
            Some("kubewarden/kubewarden-controller")
        );
        let other = "d811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
        assert!(verify_bundle(&b, digest(other), &id(GHA, san), &public_good()).is_err());
        assert!(verify_bundle(
            &b,
            digest(good),
            &id(GHA, "https://github.com/kubewarden/other"),
            &public_good()
        )
        .is_err());
    }

    #[test]
    fn a_timestamp_no_listed_authority_signed_attests_nothing() {
        // bundle_v03.json carries a 2025 TSA timestamp; sigstore-go's older public-good copy
        // does not list that TSA, so the verified Rekor SET time alone decides.
        let b = read("sigstore-rs/tests-data/bundle_v03.json");
        let san = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
        let good = "c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
        let go_root = root("sigstore-go/examples/trusted-root-public-good.json");
        verify_bundle(&b, digest(good), &id(GHA, san), &go_root).unwrap();
        // A listed TSA that signed it but was not trusted at that time stays fatal.
        let mut closed = public_good();
        for t in &mut closed.tsas {
            t.valid.end = Some(t.valid.start);
        }
        let e = verify_bundle(&b, digest(good), &id(GHA, san), &closed).unwrap_err();
        assert!(e.to_string().contains("outside the validity"), "{e}");
        // Rekor v2 has no SET time: with the TSA unlisted nothing attests the signing time.
        let dir = "sigstore-conformance/test/assets/bundle-verify/rekor2-happy-path";
        let b = read(&format!("{dir}/bundle.sigstore.json"));
        let a = read("sigstore-conformance/test/assets/bundle-verify/a.txt");
        let mut no_tsa = root(&format!("{dir}/trusted_root.json"));
        verify_bundle(&b, Artifact::Bytes(a.clone()), &id(GHA, BEACON), &no_tsa).unwrap();
        no_tsa.tsas.clear();
        let e = verify_bundle(&b, Artifact::Bytes(a), &id(GHA, BEACON), &no_tsa).unwrap_err();
        assert!(
            e.to_string().contains("no other verified signing time"),
            "{e}"
        );
    }

    #[test]
    fn third_party_attestation_bundles() {
        // cosign's public-good DSSE attestation for go-containerregistry's empty image.
        let b = read("cosign/pkg/cosign/testdata/oci-attestation.sigstore.json");
        let gh = "https://github.com/login/oauth";
        let img = "732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
        verify_bundle(
            &b,
            digest(img),
            &id(gh, "cody@soyland.com"),
            &root("cosign/pkg/cosign/testdata/trusted_root_pgi.json"),
        )
        .unwrap();
        verify_bundle(&b, digest(img), &id(gh, "cody@soyland.com"), &public_good()).unwrap();
        assert!(verify_bundle(
            &b,
            digest(&"0".repeat(64)),
            &id(gh, "cody@soyland.com"),
            &public_good()
        )
        .is_err());
        // GitHub artifact attestation with a sha512 subject, checked from the file's bytes.
        let b = read("gh-cli-attestation/sigstore-js-2.1.0-bundle.json");
        let tgz = read("gh-cli-attestation/sigstore-js-2.1.0.tgz");
        let san =
            "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
        verify_bundle(
            &b,
            Artifact::Bytes(tgz.clone()),
            &id(GHA, san),
            &public_good(),
        )
        .unwrap();
        let mut other = tgz;
        other[100] ^= 1;
        assert!(verify_bundle(&b, Artifact::Bytes(other), &id(GHA, san), &public_good()).is_err());
        let bad = read("gh-cli-attestation/sigstoreBundle-invalid-signature.json");
        assert!(verify_bundle(
            &bad,
            Artifact::Sha256([0; 32]),
            &id(GHA, san),
            &public_good()
        )
        .is_err());
        // A DSSE envelope with two signatures is refused.
        let two = read("sigstore-go/pkg/testing/data/bundles/dsse-2sigs.sigstore.json");
        let err = verify_bundle(
            &two,
            Artifact::Sha256([0; 32]),
            &id(gh, "brian@dehamer.com"),
            &public_good(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one signature"), "{err}");
    }
}
