//! Keyless and certificate-based cosign signatures: the Fulcio leaf checked at the Rekor
//! integrated time against the trusted root (or a bring-your-own PKI), the signature checked
//! with the certificate's key, the SET checked, and the Rekor entry bound to this very
//! signature, certificate and content so a SET copied from another signature cannot vouch for
//! it. A keyless signature without a log entry has no trusted time and never verifies. This
//! module checks one signature; it never looks for signatures or applies identity policy.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::facts::{SignatureKind, TlogEntry};

use super::cosign::{Pki, Signed, Signer, TrustConfig};
use super::der_util::pem_blocks;
use super::entry::{verify_entry_matches, EntryExpectation, Verifier};
use super::TrustRoot;

/// The cosign bundle annotation (`dev.sigstore.cosign/bundle`): a SET and the entry it signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RekorBundle {
    /// Base64 signature of Rekor over the canonical entry.
    #[serde(rename = "SignedEntryTimestamp")]
    pub set: String,
    #[serde(rename = "Payload")]
    pub payload: RekorPayload,
}

/// The logged entry as cosign stores it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RekorPayload {
    /// Base64 canonical JSON entry body.
    pub body: String,
    #[serde(rename = "integratedTime")]
    pub integrated_time: i64,
    #[serde(rename = "logIndex")]
    pub log_index: i64,
    /// Hex SHA-256 of the log's public key.
    #[serde(rename = "logID")]
    pub log_id: String,
}

impl RekorBundle {
    /// Parses the annotation text.
    pub fn parse(annotation: &str) -> Result<Self, String> {
        serde_json::from_str(annotation)
            .map_err(|e| format!("Rekor bundle annotation is malformed: {e}"))
    }
}

/// Verifies a signature that carries a certificate: bring-your-own PKI first when configured,
/// else the Fulcio chain at the Rekor integrated time, the signature, the SET and its binding.
pub(crate) fn verify_keyless(
    signed: Signed<'_>,
    msg: &[u8],
    sigs: &[Vec<u8>],
    cert_pem: &str,
    chain_pem: Option<&String>,
    bundle: Option<&String>,
    cfg: &TrustConfig,
) -> Result<Signer, String> {
    let leaf = pem_blocks(cert_pem.as_bytes())
        .map_err(|e| format!("certificate annotation: {e}"))?
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .ok_or("certificate annotation holds no certificate")?
        .der;
    // cosign's chain annotation ends with the root; trust anchors come only from the trusted
    // root (which refuses a shipped self-signed certificate), so pass the intermediates alone.
    let chain: Vec<Vec<u8>> = match chain_pem {
        Some(p) => pem_blocks(p.as_bytes())
            .map_err(|e| format!("chain annotation: {e}"))?
            .into_iter()
            .filter(|b| b.label == "CERTIFICATE" && !is_self_signed(&b.der))
            .map(|b| b.der)
            .collect(),
        None => Vec::new(),
    };
    if let Some(pki) = &cfg.pki {
        let byo = verify_byo_pki(pki, signed, msg, sigs, &leaf, &chain, bundle, cfg);
        if byo.is_ok() || cfg.trust_root.is_none() {
            return byo;
        }
    }
    let root = cfg
        .trust_root
        .as_ref()
        .ok_or("signed keylessly, but no Sigstore trusted root is configured")?;
    // Without a log entry there is no trusted time to check a 10-minute certificate at.
    let bundle =
        bundle.ok_or("keyless signature has no Rekor entry (dev.sigstore.cosign/bundle)")?;
    let rb = RekorBundle::parse(bundle)?;
    let facts = super::cert::verify_leaf_at(root, &leaf, &chain, rb.payload.integrated_time)
        .map_err(|e| e.to_string())?;
    let sig = sigs
        .iter()
        .find(|s| facts.public_key.verify(msg, s).is_ok())
        .ok_or("signature does not verify under the certificate's key")?;
    let tlog = verify_tlog(root, bundle, signed, sig, Verifier::Certificate(leaf))?;
    Ok(Signer {
        kind: SignatureKind::Keyless,
        key_fingerprint: None,
        identity: facts.identity,
        tlog: Some(tlog),
    })
}

/// A certificate from a private PKI: chain at the Rekor time when an entry is present and a
/// trusted root can check it, else at now; the Rekor entry, if any, must verify and bind.
#[allow(clippy::too_many_arguments)]
fn verify_byo_pki(
    pki: &Pki,
    signed: Signed<'_>,
    msg: &[u8],
    sigs: &[Vec<u8>],
    leaf: &[u8],
    chain: &[Vec<u8>],
    bundle: Option<&String>,
    cfg: &TrustConfig,
) -> Result<Signer, String> {
    let at = match bundle {
        Some(b) => RekorBundle::parse(b)?.payload.integrated_time,
        None => chrono::Utc::now().timestamp(),
    };
    let facts = super::cert::verify_leaf_with_roots(
        leaf,
        chain,
        &pki.roots_pem,
        &pki.intermediates_pem,
        at,
    )
    .map_err(|e| e.to_string())?;
    let sig = sigs
        .iter()
        .find(|s| facts.public_key.verify(msg, s).is_ok())
        .ok_or("signature does not verify under the certificate's key")?;
    let tlog = match (bundle, &cfg.trust_root) {
        (Some(b), Some(root)) => Some(verify_tlog(
            root,
            b,
            signed,
            sig,
            Verifier::Certificate(leaf.to_vec()),
        )?),
        (_, _) if cfg.require_tlog => {
            return Err("no verifiable Rekor entry, and one is required".into())
        }
        _ => None,
    };
    Ok(Signer {
        kind: SignatureKind::Keyless,
        key_fingerprint: None,
        identity: facts.identity,
        tlog,
    })
}

/// A certificate whose subject is its issuer (a root), which a signature must not bring along.
fn is_self_signed(der: &[u8]) -> bool {
    use x509_cert::der::Decode as _;
    x509_cert::Certificate::from_der(der)
        .is_ok_and(|c| c.tbs_certificate().subject() == c.tbs_certificate().issuer())
}

/// Checks the SET of a cosign bundle annotation and that its entry is this very signature (a
/// SET copied from another signature verifies on its own; the binding is what stops a replay).
pub(crate) fn verify_tlog(
    root: &TrustRoot,
    bundle: &str,
    signed: Signed<'_>,
    sig: &[u8],
    verifier: Verifier,
) -> Result<TlogEntry, String> {
    let rb = RekorBundle::parse(bundle)?;
    let p = &rb.payload;
    let set = STANDARD
        .decode(rb.set.trim())
        .map_err(|_| "Rekor SET is not base64".to_string())?;
    let entry = super::rekor::verify_set(
        root,
        &p.body,
        p.integrated_time,
        p.log_index,
        &p.log_id,
        &set,
    )
    .map_err(|e| e.to_string())?;
    let body = STANDARD
        .decode(p.body.trim())
        .map_err(|_| "Rekor entry body is not base64".to_string())?;
    let want = match signed {
        Signed::Blob(b) => EntryExpectation {
            signature: sig.to_vec(),
            verifier,
            artifact_sha256: Some(super::sha256(b)),
            dsse: None,
        },
        Signed::Dsse { envelope, payload } => EntryExpectation {
            signature: sig.to_vec(),
            verifier,
            artifact_sha256: None,
            dsse: Some((envelope.payload_type.clone(), payload.to_vec())),
        },
    };
    verify_entry_matches(&body, &want).map_err(|e| e.to_string())?;
    Ok(entry)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::trust::cosign::tests::{
        check_digest_of, found, key, manifest_digest, sigstore_json, tampered,
    };
    use crate::trust::cosign::verify_signature_layer;
    use crate::trust::sign::{
        self, AttachmentLayer, ANN_BUNDLE, ANN_CERTIFICATE, ANN_CHAIN, ANN_SIGNATURE,
    };

    use crate::trust::testdata::{ci, shared};

    pub(crate) use crate::trust::testdata::public_good;

    pub(crate) fn rooted(root: TrustRoot) -> TrustConfig {
        TrustConfig {
            trust_root: Some(root),
            ..Default::default()
        }
    }

    /// A trusted root made of loose PEM files (as old cosign fixtures ship them).
    pub(crate) fn root_from_pems(ca_pem: &str, rekor_pem: &str, ca_start: &str) -> TrustRoot {
        let ca = crate::trust::der_util::pem_blocks(&std::fs::read(ca_pem).unwrap()).unwrap();
        let rekor = key(rekor_pem);
        let j = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "https://rekor.sigstore.dev", "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": STANDARD.encode(rekor.spki_der()), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2021-01-12T11:53:27Z"}},
                "logId": {"keyId": STANDARD.encode(crate::trust::sha256(rekor.spki_der()))}}],
            "certificateAuthorities": [{"subject": {}, "uri": "https://fulcio.sigstore.dev",
                "certChain": {"certificates": ca.iter().map(|b| serde_json::json!({"rawBytes": STANDARD.encode(&b.der)})).collect::<Vec<_>>()},
                "validFor": {"start": ca_start}}],
            "ctlogs": [], "timestampAuthorities": [],
        });
        TrustRoot::from_json(j.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn keyless_public_good_2023_signature() {
        let dir = ci!("dir-img-cosign-fulcio-rekor-valid");
        let digest = manifest_digest(dir);
        let l = sigstore_json(&format!("{dir}/signature-1"));
        let cfg = rooted(public_good());
        let f = verify_signature_layer(&found(&l), &digest, &cfg);
        assert!(f.verified, "{f:?}");
        assert_eq!(f.kind, SignatureKind::Keyless);
        assert_eq!(f.identity.subject.as_deref(), Some("mitr@redhat.com"));
        assert_eq!(
            f.identity.issuer.as_deref(),
            Some("https://github.com/login/oauth")
        );
        assert_eq!(f.tlog.as_ref().unwrap().integrated_time, 1674247893);
        assert!(!verify_signature_layer(&found(&tampered(l.clone())), &digest, &cfg).verified);
        // Without the certificate it is a key signature nobody configured a key for.
        let mut no_cert = l.clone();
        no_cert.annotations.remove(ANN_CERTIFICATE);
        assert!(!verify_signature_layer(&found(&no_cert), &digest, &cfg).verified);
        let mut no_bundle = l.clone();
        no_bundle.annotations.remove(ANN_BUNDLE);
        assert!(!verify_signature_layer(&found(&no_bundle), &digest, &cfg).verified);
        // An altered SET.
        let mut bad_set = l.clone();
        let mut b: Value = serde_json::from_str(&bad_set.annotations[ANN_BUNDLE]).unwrap();
        b["Payload"]["integratedTime"] = serde_json::json!(1674247894);
        bad_set.annotations.insert(ANN_BUNDLE.into(), b.to_string());
        assert!(!verify_signature_layer(&found(&bad_set), &digest, &cfg).verified);
        // The wrong Rekor key: cosign.pub in place of Rekor's.
        let mut j: Value = serde_json::from_slice(
            &std::fs::read(shared!(
                "sigstore-conformance/public-good-trusted_root.from-sigstore-python-4.5.1.json"
            ))
            .unwrap(),
        )
        .unwrap();
        for t in j["tlogs"].as_array_mut().unwrap() {
            t["publicKey"]["rawBytes"] =
                serde_json::json!(STANDARD.encode(key(ci!("cosign.pub")).spki_der()));
        }
        let wrong = rooted(TrustRoot::from_json(j.to_string().as_bytes()).unwrap());
        assert!(!verify_signature_layer(&found(&l), &digest, &wrong).verified);
        // A trusted root without the Fulcio CA.
        let no_ca = rooted(root_from_pems(
            ci!("pki_root_crts.pem"),
            ci!("rekor.pub"),
            "2021-01-01T00:00:00Z",
        ));
        assert!(!verify_signature_layer(&found(&l), &digest, &no_ca).verified);
        // Trusted intermediates in the root make the chain annotation unnecessary.
        let mut no_chain = l.clone();
        no_chain.annotations.remove(ANN_CHAIN);
        assert!(verify_signature_layer(&found(&no_chain), &digest, &cfg).verified);
    }

    #[test]
    fn keyless_standalone_triple() {
        let read = |p: &str| std::fs::read_to_string(p).unwrap();
        let payload = std::fs::read(ci!("rekor-payload")).unwrap();
        let l = AttachmentLayer {
            payload: payload.clone(),
            media_type: sign::SIMPLE_SIGNING_MEDIA_TYPE.into(),
            annotations: BTreeMap::from([
                (
                    ANN_SIGNATURE.to_string(),
                    read(ci!("rekor-sig")).trim().to_string(),
                ),
                (ANN_CERTIFICATE.to_string(), read(ci!("fulcio-cert"))),
                (ANN_CHAIN.to_string(), read(ci!("fulcio-chain"))),
                (ANN_BUNDLE.to_string(), read(ci!("rekor-set"))),
            ]),
        };
        let digest = check_digest_of(&payload);
        let cfg = rooted(public_good());
        let f = verify_signature_layer(&found(&l), &digest, &cfg);
        assert!(f.verified, "{f:?}");
        assert_eq!(f.identity.subject.as_deref(), Some("mitr@redhat.com"));
        assert!(!verify_signature_layer(&found(&tampered(l)), &digest, &cfg).verified);
    }

    #[test]
    fn keyless_2021_kubewarden_verifies_under_the_original_root_without_ct_logs() {
        let dir = shared!("sigstore-rs/extracted-from-src-cosign-signature_layers.rs");
        let k = format!("{dir}/kubewarden-keyless-2021");
        let read = |p: String| std::fs::read_to_string(p).unwrap();
        let payload = std::fs::read(format!("{k}/payload.json")).unwrap();
        let l = AttachmentLayer {
            payload: payload.clone(),
            media_type: sign::SIMPLE_SIGNING_MEDIA_TYPE.into(),
            annotations: BTreeMap::from([
                (
                    ANN_SIGNATURE.to_string(),
                    read(format!("{k}/signature.b64")).trim().to_string(),
                ),
                (
                    ANN_CERTIFICATE.to_string(),
                    read(format!("{k}/certificate.pem")),
                ),
                (
                    ANN_BUNDLE.to_string(),
                    read(format!("{k}/rekor-bundle.json")),
                ),
            ]),
        };
        let digest = check_digest_of(&payload);
        let crt1 = rooted(root_from_pems(
            &format!("{dir}/fulcio_crt_1.pem"),
            &format!("{dir}/rekor.pub"),
            "2021-03-01T00:00:00Z",
        ));
        // Fulcio only began embedding SCTs after October 2021, and this root (like upstream's
        // test) lists no CT log, so nothing demands one: the chain, SET and signature decide.
        let f = verify_signature_layer(&found(&l), &digest, &crt1);
        assert!(f.verified, "{f:?}");
        assert_eq!(f.identity.subject.as_deref(), Some("flavio@castelli.me"));
        // The same root with a CT log key demands an SCT, and this certificate has none.
        let mut with_ct = root_from_pems(
            &format!("{dir}/fulcio_crt_1.pem"),
            &format!("{dir}/rekor.pub"),
            "2021-03-01T00:00:00Z",
        );
        with_ct.ct.push(with_ct.rekor[0].clone());
        let h = verify_signature_layer(&found(&l), &digest, &rooted(with_ct));
        assert!(!h.verified);
        assert!(
            h.error
                .as_deref()
                .unwrap()
                .ends_with("leaf certificate has no embedded SCT"),
            "{h:?}"
        );
        // Another image digest does not verify.
        let other = format!("sha256:{}", "0".repeat(64));
        assert!(!verify_signature_layer(&found(&l), &other, &crt1).verified);
        // Under the later root the chain itself fails.
        let v1 = rooted(root_from_pems(
            ci!("fulcio_v1.crt.pem"),
            &format!("{dir}/rekor.pub"),
            "2021-03-01T00:00:00Z",
        ));
        let g = verify_signature_layer(&found(&l), &digest, &v1);
        assert!(
            !g.verified && !g.error.as_deref().unwrap().contains("SCT"),
            "{g:?}"
        );
    }

    #[test]
    fn bring_your_own_pki_rsa() {
        let dir = ci!("dir-img-cosign-pki-valid");
        let digest = manifest_digest(dir);
        let l = sigstore_json(&format!("{dir}/signature-1"));
        let pki = Pki {
            roots_pem: std::fs::read(ci!("pki_root_crts.pem")).unwrap(),
            intermediates_pem: std::fs::read(ci!("pki_intermediate_crts.pem")).unwrap(),
        };
        let cfg = TrustConfig {
            pki: Some(pki),
            ..Default::default()
        };
        let f = verify_signature_layer(&found(&l), &digest, &cfg);
        assert!(f.verified, "{f:?}");
        assert_eq!(f.identity.subject.as_deref(), Some("qiwan@redhat.com"));
        assert!(!verify_signature_layer(&found(&tampered(l.clone())), &digest, &cfg).verified);
        // Without those roots (public-good only) it does not verify.
        assert!(!verify_signature_layer(&found(&l), &digest, &rooted(public_good())).verified);
    }
}
