//! Sigstore bundles attached as OCI referrers (cosign v3 `--new-bundle-format`): each is verified
//! by trustcore's bundle verifier with the image manifest digest as the artifact, then turned into
//! a signature fact (`https://sigstore.dev/cosign/sign/v1` statements and message signatures over
//! the manifest) or an attestation fact. Nothing here re-implements bundle cryptography; it only
//! decides what a verified bundle means for the image.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::facts::{AttestationFact, SignatureFact, SignatureKind, SignatureSource};

use super::bundle::{verify_bundle, Artifact, BundlePolicy};
use super::cert::verify_leaf_at;
use super::cosign::{unverified, ImageTrust, Signer, TrustConfig};
use super::discover::FoundLayer;
use super::dsse::Statement;

/// The predicate type cosign v3 uses for a plain image signature inside a DSSE bundle.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// What a bundle carries once its cryptography is checked.
enum Content {
    /// A message signature over the artifact digest.
    MessageSignature,
    /// A DSSE envelope holding an in-toto Statement.
    Statement(Statement),
}

/// Verifies one bundle layer and records what it proves in `out`.
pub fn verify_bundle_layer(
    layer: &FoundLayer,
    _repository: &str,
    digest: &str,
    cfg: &TrustConfig,
    out: &mut ImageTrust,
) {
    let kind = if bundle_uses_key(&layer.blob) {
        SignatureKind::Key
    } else {
        SignatureKind::Keyless
    };
    let content = match read_content(&layer.blob) {
        Ok(c) => c,
        Err(e) => {
            out.signatures.push(unverified(
                SignatureSource::Bundle,
                kind,
                format!("{}: {e}", layer.origin),
            ));
            return;
        }
    };
    // Classify by what the bundle says, but take the Statement only from the verified payload.
    let checked =
        verify_with_trustcore(&layer.blob, digest, cfg).and_then(
            |(signer, payload)| match payload {
                Some((ptype, bytes)) => {
                    let st = Statement::parse(&ptype, &bytes).map_err(|e| e.to_string())?;
                    st.check_subject(digest).map_err(|e| e.to_string())?;
                    Ok((signer, Some(st)))
                }
                None => Ok((signer, None)),
            },
        );
    match (content, checked) {
        (Content::Statement(claimed), Ok((signer, Some(st))))
            if claimed.predicate_type != COSIGN_SIGN_PREDICATE =>
        {
            out.attestations.push(AttestationFact {
                predicate_type: st.predicate_type,
                predicate: st.predicate,
                signer: signer.facts(),
            })
        }
        (Content::Statement(claimed), Err(e))
            if claimed.predicate_type != COSIGN_SIGN_PREDICATE =>
        {
            out.rejected_attestations
                .push(format!("{}: {e}", layer.origin))
        }
        (_, Ok((s, _))) => out.signatures.push(SignatureFact {
            verified: true,
            error: None,
            kind: s.kind,
            source: SignatureSource::Bundle,
            key_fingerprint: s.key_fingerprint,
            identity: s.identity,
            tlog: s.tlog,
            docker_reference: None,
            signed_digest: None,
            on_index: false,
        }),
        (_, Err(e)) => out.signatures.push(unverified(
            SignatureSource::Bundle,
            kind,
            format!("{}: {e}", layer.origin),
        )),
    }
}

/// A bundle signed by a key names a public-key hint instead of a certificate.
fn bundle_uses_key(bundle: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bundle)
        .is_ok_and(|v| v.pointer("/verificationMaterial/publicKey").is_some())
}

/// Reads what the bundle signs (before verification; only used to classify).
fn read_content(bundle: &[u8]) -> Result<Content, String> {
    let v: Value =
        serde_json::from_slice(bundle).map_err(|e| format!("bundle is not JSON: {e}"))?;
    if v.get("messageSignature").is_some() {
        return Ok(Content::MessageSignature);
    }
    let env = v
        .get("dsseEnvelope")
        .ok_or("bundle has neither a message signature nor a DSSE envelope")?;
    let payload_type = env.get("payloadType").and_then(Value::as_str).unwrap_or("");
    let payload = env
        .get("payload")
        .and_then(Value::as_str)
        .ok_or("bundle DSSE envelope has no payload")
        .and_then(|p| {
            STANDARD
                .decode(p)
                .map_err(|_| "bundle DSSE payload is not base64")
        })?;
    Statement::parse(payload_type, &payload)
        .map(Content::Statement)
        .map_err(|e| e.to_string())
}

/// A verified DSSE payload: its type and bytes.
type DssePayload = (String, Vec<u8>);

/// Checks the bundle's cryptography (signature, certificate at the signed time, SET or
/// inclusion proof, timestamps, entry binding) with the image digest as the artifact, through
/// trustcore's verifier. That verifier wants the signer up front; gantry decides identities in
/// policy afterwards, so a keyless bundle is checked against the identity its own certificate
/// states, and a key-signed one against each configured key.
fn verify_with_trustcore(
    bundle: &[u8],
    digest: &str,
    cfg: &TrustConfig,
) -> Result<(Signer, Option<DssePayload>), String> {
    let root = cfg
        .trust_root
        .as_ref()
        .ok_or("sigstore bundle, but no Sigstore trusted root is configured")?;
    let hex = super::sign::digest_hex(digest).map_err(|e| e.to_string())?;
    let mut sha = [0u8; 32];
    hex::decode_to_slice(hex, &mut sha).map_err(|e| e.to_string())?;
    let v: Value =
        serde_json::from_slice(bundle).map_err(|e| format!("bundle is not JSON: {e}"))?;
    let policies: Vec<BundlePolicy> = if v.pointer("/verificationMaterial/publicKey").is_some() {
        if cfg.keys.is_empty() {
            return Err("key-signed bundle, but no public key is configured".into());
        }
        cfg.keys.iter().cloned().map(BundlePolicy::Key).collect()
    } else {
        vec![stated_identity(&v, root)?]
    };
    let mut last = String::new();
    for policy in &policies {
        match verify_bundle(bundle, Artifact::Sha256(sha), policy, root) {
            Ok(vb) => {
                let kind = if vb.key_fingerprint.is_some() {
                    SignatureKind::Key
                } else {
                    SignatureKind::Keyless
                };
                let signer = Signer {
                    kind,
                    key_fingerprint: vb.key_fingerprint,
                    identity: vb.identity,
                    tlog: vb.tlog,
                };
                return Ok((signer, vb.dsse_payload));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The issuer and SAN the bundle's leaf certificate states (read through trustcore's chain
/// check at the leaf's own start time; the real check at the signed time follows).
fn stated_identity(v: &Value, root: &super::TrustRoot) -> Result<BundlePolicy, String> {
    use x509_cert::der::Decode as _;
    let raw = v
        .pointer("/verificationMaterial/certificate/rawBytes")
        .or_else(|| v.pointer("/verificationMaterial/x509CertificateChain/certificates/0/rawBytes"))
        .and_then(Value::as_str)
        .ok_or("bundle has neither a certificate nor a public key")?;
    let leaf = STANDARD
        .decode(raw)
        .map_err(|_| "bundle certificate is not base64")?;
    let cert =
        x509_cert::Certificate::from_der(&leaf).map_err(|e| format!("bundle certificate: {e}"))?;
    let start = cert
        .tbs_certificate()
        .validity()
        .not_before
        .to_unix_duration()
        .as_secs() as i64;
    let facts = verify_leaf_at(root, &leaf, &[], start).map_err(|e| e.to_string())?;
    match (facts.identity.issuer, facts.identity.subject) {
        (Some(issuer), Some(san)) => Ok(BundlePolicy::Identity { issuer, san }),
        _ => Err("bundle certificate names no issuer or SAN".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::trust::cosign::tests::run;
    use crate::trust::cosign::verify_image;
    use crate::trust::discover::memsource::MemSource;
    use crate::trust::keyless::tests::{public_good, rooted};
    use crate::trust::sign;
    use crate::trust::TrustRoot;

    use crate::trust::testdata::shared;

    fn bundle_source(path: &str) -> MemSource {
        let bundle = std::fs::read(path).unwrap();
        let mut src = MemSource::default();
        let bd = src.add_blob(bundle.clone());
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sign::sha256_digest(b"{}"), "size": 2},
            "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": bd, "size": bundle.len()}]});
        src.add_referrer(serde_json::to_vec(&m).unwrap());
        src
    }

    #[test]
    fn referrer_bundles_cosign_attestation_and_v3_signature() {
        let att = shared!("cosign/pkg/cosign/testdata/oci-attestation.sigstore.json");
        let d = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
        let other = "sha256:832112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
        let root = TrustRoot::from_json(
            &std::fs::read(shared!("cosign/pkg/cosign/testdata/trusted_root_pgi.json")).unwrap(),
        )
        .unwrap();
        let cfg = rooted(root);
        let t = run(verify_image(&bundle_source(att), "r", d, &cfg)).unwrap();
        assert_eq!(t.attestations.len(), 1, "{t:?}");
        assert_eq!(
            t.attestations[0].predicate_type,
            "https://cosign.sigstore.dev/attestation/v1"
        );
        assert_eq!(
            t.attestations[0].signer.identity.subject.as_deref(),
            Some("cody@soyland.com")
        );
        let t = run(verify_image(&bundle_source(att), "r", other, &cfg)).unwrap();
        assert!(
            t.attestations.is_empty() && t.rejected_attestations.len() == 1,
            "{t:?}"
        );
        // A tampered twin: one byte of the signature changed.
        let mut v: Value = serde_json::from_slice(&std::fs::read(att).unwrap()).unwrap();
        let sig = v["dsseEnvelope"]["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .to_string();
        let mut raw = STANDARD.decode(sig).unwrap();
        raw[10] ^= 1;
        v["dsseEnvelope"]["signatures"][0]["sig"] = serde_json::json!(STANDARD.encode(raw));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.json");
        std::fs::write(&p, v.to_string()).unwrap();
        let t = run(verify_image(
            &bundle_source(p.to_str().unwrap()),
            "r",
            d,
            &cfg,
        ))
        .unwrap();
        assert!(
            t.attestations.is_empty() && t.rejected_attestations.len() == 1,
            "{t:?}"
        );

        // cosign v3 signature bundle (sign/v1 statement) of kubewarden-controller.
        let v3 = shared!("sigstore-rs/tests-data/bundle_v03.json");
        let kd = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
        let pg = rooted(public_good());
        let t = run(verify_image(&bundle_source(v3), "r", kd, &pg)).unwrap();
        assert!(t.any_verified(), "{t:?}");
        assert_eq!(t.signatures[0].source, SignatureSource::Bundle);
        assert_eq!(t.signatures[0].identity.subject.as_deref(),
            Some("https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"));
        let t = run(verify_image(&bundle_source(v3), "r", other, &pg)).unwrap();
        assert!(!t.any_verified() && t.signatures.len() == 1);
        let mut v: Value = serde_json::from_slice(&std::fs::read(v3).unwrap()).unwrap();
        let sig = v["dsseEnvelope"]["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .to_string();
        let mut raw = STANDARD.decode(sig).unwrap();
        raw[12] ^= 1;
        v["dsseEnvelope"]["signatures"][0]["sig"] = serde_json::json!(STANDARD.encode(raw));
        let p = dir.path().join("v3.json");
        std::fs::write(&p, v.to_string()).unwrap();
        let t = run(verify_image(
            &bundle_source(p.to_str().unwrap()),
            "r",
            kd,
            &pg,
        ))
        .unwrap();
        assert!(!t.any_verified() && t.signatures.len() == 1, "{t:?}");
    }
}
