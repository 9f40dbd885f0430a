//! Binding a Rekor entry body to what is being verified. A valid SET or inclusion proof only
//! says "this body is in the log"; this module checks that the body is about *this* signature,
//! *this* certificate or key, and *this* artifact or DSSE envelope, for the entry kinds Sigstore
//! clients write: hashedrekord 0.0.1/0.0.2, dsse 0.0.1, intoto 0.0.2 and rekord 0.0.1. Unknown
//! kinds are rejected rather than waved through.

use super::der_util::{b64, pem_blocks};
use super::TrustError;
use serde_json::Value;

/// Who made the signature, as the entry must name it.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// DER of the signing certificate.
    Certificate(Vec<u8>),
    /// DER SubjectPublicKeyInfo of the signing key.
    PublicKey(Vec<u8>),
}

/// What a log entry must be about.
#[derive(Debug, Clone)]
pub struct EntryExpectation {
    /// The signature bytes the entry must carry.
    pub signature: Vec<u8>,
    /// The certificate or key the entry must name.
    pub verifier: Verifier,
    /// For message signatures: SHA-256 of the signed artifact.
    pub artifact_sha256: Option<[u8; 32]>,
    /// For DSSE: the envelope's payload type and payload.
    pub dsse: Option<(String, Vec<u8>)>,
}

fn err(m: impl std::fmt::Display) -> TrustError {
    TrustError::Tlog(format!("log entry does not match: {m}"))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, TrustError> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .ok_or_else(|| err(format!("missing {}", path.join("."))))?;
    }
    cur.as_str()
        .ok_or_else(|| err(format!("{} is not a string", path.join("."))))
}

fn decode(v: &str, what: &str) -> Result<Vec<u8>, TrustError> {
    b64(v).map_err(|e| err(format!("{what}: {e}")))
}

/// Whether a verifier given as PEM (certificate or public key) names the expected one.
fn pem_matches(pem: &[u8], want: &Verifier) -> bool {
    let Ok(blocks) = pem_blocks(pem) else {
        return false;
    };
    let Some(b) = blocks.first() else {
        return false;
    };
    match want {
        Verifier::Certificate(der) => b.label == "CERTIFICATE" && &b.der == der,
        Verifier::PublicKey(spki) => b.label == "PUBLIC KEY" && &b.der == spki,
    }
}

/// The DSSE pre-authentication encoding (what a DSSE signature covers).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks that the canonicalized `body` of a log entry is about `want`.
pub fn verify_entry_matches(body: &[u8], want: &EntryExpectation) -> Result<(), TrustError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| err(format!("body is not JSON: {e}")))?;
    let kind = s(&v, &["kind"])?;
    let version = s(&v, &["apiVersion"])?;
    let spec = v.get("spec").ok_or_else(|| err("no spec"))?;
    match (kind, version) {
        ("hashedrekord", "0.0.1") | ("rekord", "0.0.1") => {
            let sig = decode(s(spec, &["signature", "content"])?, "signature")?;
            let pem = decode(
                s(spec, &["signature", "publicKey", "content"])?,
                "public key",
            )?;
            if sig != want.signature {
                return Err(err("signature differs"));
            }
            if !pem_matches(&pem, &want.verifier) {
                return Err(err("certificate or key differs"));
            }
            let hash = s(spec, &["data", "hash", "value"])?;
            let alg = s(spec, &["data", "hash", "algorithm"])?;
            let want_hash = want
                .artifact_sha256
                .ok_or_else(|| err("a message-signature entry for a DSSE envelope"))?;
            if alg != "sha256" || !hash.eq_ignore_ascii_case(&hex::encode(want_hash)) {
                return Err(err("artifact digest differs"));
            }
        }
        ("hashedrekord", "0.0.2") => {
            let h = spec
                .get("hashedRekordV002")
                .ok_or_else(|| err("no hashedRekordV002"))?;
            let sig = decode(s(h, &["signature", "content"])?, "signature")?;
            if sig != want.signature {
                return Err(err("signature differs"));
            }
            let ver = h
                .pointer("/signature/verifier")
                .ok_or_else(|| err("no verifier"))?;
            let ok = match &want.verifier {
                Verifier::Certificate(der) => ver
                    .pointer("/x509Certificate/rawBytes")
                    .and_then(Value::as_str)
                    .is_some_and(|r| b64(r).ok().as_ref() == Some(der)),
                Verifier::PublicKey(spki) => ver
                    .pointer("/publicKey/rawBytes")
                    .and_then(Value::as_str)
                    .is_some_and(|r| b64(r).ok().as_ref() == Some(spki)),
            };
            if !ok {
                return Err(err("certificate or key differs"));
            }
            if s(h, &["data", "algorithm"])? != "SHA2_256" {
                return Err(err("unsupported digest algorithm"));
            }
            let digest = decode(s(h, &["data", "digest"])?, "digest")?;
            // Rekor v2 logs DSSE as a hashedrekord over the PAE bytes.
            let expected = match (&want.artifact_sha256, &want.dsse) {
                (_, Some((t, p))) => super::sha256(&pae(t, p)),
                (Some(d), None) => *d,
                (None, None) => return Err(err("nothing to compare the digest with")),
            };
            if digest != expected {
                return Err(err("artifact digest differs"));
            }
        }
        ("dsse", "0.0.1") => {
            let (_, payload) = want
                .dsse
                .as_ref()
                .ok_or_else(|| err("a DSSE entry for a message signature"))?;
            let ph = s(spec, &["payloadHash", "value"])?;
            if s(spec, &["payloadHash", "algorithm"])? != "sha256"
                || !ph.eq_ignore_ascii_case(&hex::encode(super::sha256(payload)))
            {
                return Err(err("payload hash differs"));
            }
            let sigs = spec
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or_else(|| err("no signatures"))?;
            let found = sigs.iter().any(|e| {
                let sig = e
                    .get("signature")
                    .and_then(Value::as_str)
                    .and_then(|x| b64(x).ok());
                let pem = e
                    .get("verifier")
                    .and_then(Value::as_str)
                    .and_then(|x| b64(x).ok());
                sig.as_ref() == Some(&want.signature)
                    && pem.is_some_and(|p| pem_matches(&p, &want.verifier))
            });
            if !found {
                return Err(err("signature or verifier differs"));
            }
        }
        ("intoto", "0.0.2") => {
            let (ptype, payload) = want
                .dsse
                .as_ref()
                .ok_or_else(|| err("an in-toto entry for a message signature"))?;
            let env = spec
                .pointer("/content/envelope")
                .ok_or_else(|| err("no envelope"))?;
            // intoto 0.0.2 stores payload and signatures base64-encoded twice.
            let twice = |x: &str| {
                b64(x)
                    .ok()
                    .and_then(|inner| String::from_utf8(inner).ok())
                    .and_then(|i| b64(&i).ok())
            };
            if env.get("payloadType").and_then(Value::as_str) != Some(ptype.as_str()) {
                return Err(err("payload type differs"));
            }
            match env.get("payload").and_then(Value::as_str).and_then(twice) {
                Some(p) if &p == payload => {}
                // Entries may omit the payload; then the payload hash must match.
                None if env.get("payload").is_none() => {
                    let ph = s(spec, &["content", "payloadHash", "value"])?;
                    if !ph.eq_ignore_ascii_case(&hex::encode(super::sha256(payload))) {
                        return Err(err("payload hash differs"));
                    }
                }
                _ => return Err(err("payload differs")),
            }
            let sigs = env
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or_else(|| err("no signatures"))?;
            let found = sigs.iter().any(|e| {
                let sig = e.get("sig").and_then(Value::as_str).and_then(twice);
                let pem = e
                    .get("publicKey")
                    .and_then(Value::as_str)
                    .and_then(|x| b64(x).ok());
                sig.as_ref() == Some(&want.signature)
                    && pem.is_some_and(|p| pem_matches(&p, &want.verifier))
            });
            if !found {
                return Err(err("signature or verifier differs"));
            }
        }
        (k, v) => return Err(err(format!("unsupported entry kind {k} {v}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testdata::CASES;

    /// (body, expectation) for a message-signature bundle.
    fn case(name: &str) -> (Vec<u8>, EntryExpectation) {
        let b: Value = serde_json::from_slice(
            &std::fs::read(format!("{CASES}/{name}/bundle.sigstore.json")).unwrap(),
        )
        .unwrap();
        let g = |p: &str| b64(b.pointer(p).unwrap().as_str().unwrap()).unwrap();
        let body = g("/verificationMaterial/tlogEntries/0/canonicalizedBody");
        let digest: [u8; 32] = g("/messageSignature/messageDigest/digest")
            .try_into()
            .unwrap();
        let cert = b
            .pointer("/verificationMaterial/certificate/rawBytes")
            .or_else(|| {
                b.pointer("/verificationMaterial/x509CertificateChain/certificates/0/rawBytes")
            })
            .map(|c| b64(c.as_str().unwrap()).unwrap())
            .unwrap();
        let want = EntryExpectation {
            signature: g("/messageSignature/signature"),
            verifier: Verifier::Certificate(cert),
            artifact_sha256: Some(digest),
            dsse: None,
        };
        (body, want)
    }

    #[test]
    fn hashedrekord_bodies_bind_signature_cert_and_digest() {
        for name in ["happy-path-v0.3", "rekor2-happy-path"] {
            let (body, want) = case(name);
            verify_entry_matches(&body, &want).unwrap();
            let mut w = want.clone();
            w.signature[5] ^= 1;
            assert!(
                verify_entry_matches(&body, &w).is_err(),
                "{name}: signature"
            );
            let mut w = want.clone();
            w.artifact_sha256 = Some([7; 32]);
            assert!(verify_entry_matches(&body, &w).is_err(), "{name}: digest");
            let mut w = want.clone();
            w.verifier = Verifier::PublicKey(vec![1, 2, 3]);
            assert!(verify_entry_matches(&body, &w).is_err(), "{name}: verifier");
        }
    }

    #[test]
    fn unknown_kinds_and_garbage_are_rejected() {
        let (_, want) = case("happy-path-v0.3");
        assert!(
            verify_entry_matches(br#"{"kind":"helm","apiVersion":"0.0.1","spec":{}}"#, &want)
                .is_err()
        );
        assert!(verify_entry_matches(b"not json", &want).is_err());
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
    }
}
