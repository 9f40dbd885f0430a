//! Verifying everything attached to an image, cosign style: every simple-signing signature and
//! every DSSE attestation found by `discover` is checked (key-based against the configured keys;
//! keyless against the trusted root: Fulcio chain at the Rekor integrated time, the SET, and the
//! Rekor entry bound to this very signature) and reported as a fact, verified or not, with the
//! reason. A signature counts only for the exact manifest digest its payload names; an
//! attestation only when its signature verifies and an in-toto subject is that digest. Errors
//! are returned only when the source fails; a bad signature is a fact, never an error.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::facts::{
    AttestationFact, Identity, SignatureFact, SignatureKind, SignatureSource, SignerFacts,
    TlogEntry,
};
use crate::source::ImageSource;

use super::discover::{self, AttachmentKind, DiscoverError, FoundLayer};
use super::dsse::{Envelope, Statement};
use super::entry::Verifier;
use super::keyless::{verify_keyless, verify_tlog};
use super::sign::{ANN_BUNDLE, ANN_CERTIFICATE, ANN_CHAIN, ANN_SIGNATURE, SIMPLE_SIGNING_TYPE};
use super::{PublicKey, TrustRoot};

/// What was signed.
#[derive(Clone, Copy)]
pub(crate) enum Signed<'a> {
    /// A blob signed directly (a simple-signing payload).
    Blob(&'a [u8]),
    /// A DSSE envelope and its decoded payload.
    Dsse {
        envelope: &'a Envelope,
        payload: &'a [u8],
    },
}

/// What signatures are checked against.
#[derive(Debug, Clone, Default)]
pub struct TrustConfig {
    /// Public keys for key-based signatures.
    pub keys: Vec<PublicKey>,
    /// Fulcio CAs, Rekor and CT keys for keyless signatures (and Rekor entries of key-based ones).
    pub trust_root: Option<TrustRoot>,
    /// Key-based signatures must also have a verified Rekor entry. Keyless signatures always
    /// need one (it is what dates the short-lived certificate).
    pub require_tlog: bool,
    /// Bring-your-own PKI: certificates that chain to these roots verify without Fulcio, SCT or
    /// Rekor (checked at the Rekor time if there is an entry, else now).
    pub pki: Option<Pki>,
}

/// A private certificate hierarchy for signing certificates (PEM bundles).
#[derive(Debug, Clone, Default)]
pub struct Pki {
    pub roots_pem: Vec<u8>,
    pub intermediates_pem: Vec<u8>,
}

/// Everything found on an image, after checking.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageTrust {
    /// Every signature found, verified or not.
    pub signatures: Vec<SignatureFact>,
    /// Attestations whose signature verified and whose subject is the image.
    pub attestations: Vec<AttestationFact>,
    /// Why each other attestation was dropped.
    pub rejected_attestations: Vec<String>,
}

impl ImageTrust {
    /// True when at least one signature verified.
    pub fn any_verified(&self) -> bool {
        self.signatures.iter().any(|s| s.verified)
    }
}

/// Discovers and verifies all signatures and attestations of `digest` in `repository`.
pub async fn verify_image<S: ImageSource>(
    src: &S,
    repository: &str,
    digest: &str,
    cfg: &TrustConfig,
) -> Result<ImageTrust, DiscoverError> {
    let found = discover::discover(src, digest).await?;
    let mut out = ImageTrust::default();
    for layer in &found.signatures {
        out.signatures
            .push(verify_signature_layer(layer, digest, cfg));
    }
    for layer in &found.attestations {
        match verify_attestation_layer(layer, digest, cfg) {
            Ok(fact) => out.attestations.push(fact),
            Err(why) => out
                .rejected_attestations
                .push(format!("{}: {why}", layer.origin)),
        }
    }
    for layer in &found.bundles {
        super::cosign_bundle::verify_bundle_layer(layer, repository, digest, cfg, &mut out);
    }
    for u in found.unusable {
        match u.kind {
            AttachmentKind::Attestation => out.rejected_attestations.push(u.reason),
            AttachmentKind::Signature | AttachmentKind::Bundle => {
                out.signatures
                    .push(unverified(u.source, SignatureKind::Key, u.reason))
            }
        }
    }
    for s in &mut out.signatures {
        s.signed_digest = Some(digest.to_string());
    }
    Ok(out)
}

/// A fact for a signature that could not be checked at all.
pub(crate) fn unverified(
    source: SignatureSource,
    kind: SignatureKind,
    error: String,
) -> SignatureFact {
    SignatureFact {
        verified: false,
        error: Some(error),
        kind,
        source,
        key_fingerprint: None,
        identity: Identity::default(),
        tlog: None,
        docker_reference: None,
        signed_digest: None,
        on_index: false,
    }
}

/// Who made a signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signer {
    pub kind: SignatureKind,
    pub key_fingerprint: Option<String>,
    pub identity: Identity,
    pub tlog: Option<TlogEntry>,
}

impl Signer {
    pub(crate) fn facts(self) -> SignerFacts {
        SignerFacts {
            kind: Some(self.kind),
            key_fingerprint: self.key_fingerprint,
            identity: self.identity,
            tlog: self.tlog,
        }
    }
}

/// A failed check: the kind of signature it was, and why it failed.
pub(crate) type Failed = (SignatureKind, String);

/// Checks one `.sig` simple-signing layer against image `digest`.
pub fn verify_signature_layer(
    layer: &FoundLayer,
    digest: &str,
    cfg: &TrustConfig,
) -> SignatureFact {
    let kind = kind_of(&layer.annotations);
    let result = layer
        .annotations
        .get(ANN_SIGNATURE)
        .ok_or_else(|| (kind, "layer has no signature annotation".to_string()))
        // Go's decoder skips line breaks, and some signers wrap the base64 (MIME style).
        .and_then(|b64| {
            let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            STANDARD
                .decode(compact)
                .map_err(|_| (kind, "signature annotation is not base64".into()))
        })
        .and_then(|sig| verify_signed(Signed::Blob(&layer.blob), &[sig], &layer.annotations, cfg))
        .and_then(|signer| match check_payload_digest(&layer.blob, digest) {
            Ok(()) => Ok(signer),
            Err(e) => Err((signer.kind, e)),
        });
    let docker_reference = serde_json::from_slice::<Value>(&layer.blob)
        .ok()
        .and_then(|v| {
            v.pointer("/critical/identity/docker-reference")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    match result {
        Ok(s) => SignatureFact {
            verified: true,
            error: None,
            kind: s.kind,
            source: layer.source,
            key_fingerprint: s.key_fingerprint,
            identity: s.identity,
            tlog: s.tlog,
            docker_reference,
            signed_digest: None,
            on_index: false,
        },
        Err((kind, e)) => SignatureFact {
            docker_reference,
            ..unverified(layer.source, kind, format!("{}: {e}", layer.origin))
        },
    }
}

/// Checks one `.att` DSSE layer; `Err` says why it does not count.
pub fn verify_attestation_layer(
    layer: &FoundLayer,
    digest: &str,
    cfg: &TrustConfig,
) -> Result<AttestationFact, String> {
    let env = Envelope::parse(&layer.blob).map_err(|e| e.to_string())?;
    let payload = env.payload_bytes().map_err(|e| e.to_string())?;
    let sigs = env.raw_signatures().map_err(|e| e.to_string())?;
    let signer = verify_signed(
        Signed::Dsse {
            envelope: &env,
            payload: &payload,
        },
        &sigs,
        &layer.annotations,
        cfg,
    )
    .map_err(|(_, e)| e)?;
    let st = Statement::parse(&env.payload_type, &payload).map_err(|e| e.to_string())?;
    st.check_subject(digest).map_err(|e| e.to_string())?;
    Ok(AttestationFact {
        predicate_type: st.predicate_type,
        predicate: st.predicate,
        signer: signer.facts(),
    })
}

fn kind_of(annotations: &BTreeMap<String, String>) -> SignatureKind {
    if annotations
        .get(ANN_CERTIFICATE)
        .is_some_and(|c| !c.trim().is_empty())
    {
        SignatureKind::Keyless
    } else {
        SignatureKind::Key
    }
}

/// The simple-signing payload must be cosign's and name exactly `digest`.
pub(crate) fn check_payload_digest(payload: &[u8], digest: &str) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let kind = v.pointer("/critical/type").and_then(Value::as_str);
    if kind != Some(SIMPLE_SIGNING_TYPE) {
        return Err(format!(
            "payload type is {kind:?}, not {SIMPLE_SIGNING_TYPE:?}"
        ));
    }
    match v
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
    {
        Some(d) if d == digest => Ok(()),
        Some(d) => Err(format!("signature is for {d}, not the image {digest}")),
        None => Err("payload names no docker-manifest-digest".into()),
    }
}

/// Verifies `sigs` over `signed` with the material in the layer annotations.
pub(crate) fn verify_signed(
    signed: Signed<'_>,
    sigs: &[Vec<u8>],
    annotations: &BTreeMap<String, String>,
    cfg: &TrustConfig,
) -> Result<Signer, Failed> {
    let msg = match signed {
        Signed::Blob(b) => b.to_vec(),
        Signed::Dsse { envelope, .. } => envelope
            .signed_bytes()
            .map_err(|e| (SignatureKind::Key, e.to_string()))?,
    };
    let bundle = annotations.get(ANN_BUNDLE).filter(|b| !b.trim().is_empty());
    match annotations
        .get(ANN_CERTIFICATE)
        .filter(|c| !c.trim().is_empty())
    {
        Some(cert_pem) => verify_keyless(
            signed,
            &msg,
            sigs,
            cert_pem,
            annotations.get(ANN_CHAIN),
            bundle,
            cfg,
        )
        .map_err(|e| (SignatureKind::Keyless, e)),
        None => verify_keyed(signed, &msg, sigs, bundle, cfg).map_err(|e| (SignatureKind::Key, e)),
    }
}

fn verify_keyed(
    signed: Signed<'_>,
    msg: &[u8],
    sigs: &[Vec<u8>],
    bundle: Option<&String>,
    cfg: &TrustConfig,
) -> Result<Signer, String> {
    if cfg.keys.is_empty() {
        return Err("signed with a key, but no public key is configured".into());
    }
    let (key, sig) = cfg
        .keys
        .iter()
        .find_map(|k| {
            sigs.iter()
                .find(|s| k.verify(msg, s).is_ok())
                .map(|s| (k, s))
        })
        .ok_or_else(|| {
            format!(
                "signature does not verify under any of the {} configured key(s)",
                cfg.keys.len()
            )
        })?;
    let tlog = match (bundle, &cfg.trust_root) {
        (Some(b), Some(root)) => Some(verify_tlog(
            root,
            b,
            signed,
            sig,
            Verifier::PublicKey(key.spki_der().to_vec()),
        )?),
        (Some(_), None) if cfg.require_tlog => {
            return Err(
                "a Rekor entry is required, but no trusted root is configured to check it".into(),
            )
        }
        (None, _) if cfg.require_tlog => return Err("no Rekor entry, and one is required".into()),
        _ => None,
    };
    Ok(Signer {
        kind: SignatureKind::Key,
        key_fingerprint: Some(key.fingerprint()),
        identity: Identity::default(),
        tlog,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::trust::discover::memsource::MemSource;
    use crate::trust::sign::{self, AttachmentLayer};

    use crate::trust::testdata::{ci, shared};

    pub(crate) fn key(path: &str) -> PublicKey {
        PublicKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
    }

    pub(crate) fn keys(paths: &[&str]) -> TrustConfig {
        TrustConfig {
            keys: paths.iter().map(|p| key(p)).collect(),
            ..Default::default()
        }
    }

    /// Reads a containers/image `signature-N` file: `\0sigstore-json\n` + {mimeType, payload, annotations}.
    pub(crate) fn sigstore_json(path: &str) -> AttachmentLayer {
        let raw = std::fs::read(path).unwrap();
        let json = raw
            .strip_prefix(b"\x00sigstore-json\n")
            .expect("sigstore-json signature file");
        let v: Value = serde_json::from_slice(json).unwrap();
        AttachmentLayer {
            payload: STANDARD.decode(v["payload"].as_str().unwrap()).unwrap(),
            media_type: v["mimeType"].as_str().unwrap().into(),
            annotations: serde_json::from_value(v["annotations"].clone()).unwrap(),
        }
    }

    pub(crate) fn found(l: &AttachmentLayer) -> FoundLayer {
        FoundLayer {
            source: SignatureSource::CosignTag,
            origin: "test".into(),
            blob: l.payload.clone(),
            annotations: l.annotations.clone(),
        }
    }

    pub(crate) fn manifest_digest(dir: &str) -> String {
        sign::sha256_digest(&std::fs::read(format!("{dir}/manifest.json")).unwrap())
    }

    pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Pushes the `signature-N` files of a containers/image `dir-img-*` fixture into a fake
    /// registry under the image's cosign tag and verifies the image.
    pub(crate) fn verify_dir(dir: &str, sigs: &[&str], cfg: &TrustConfig) -> ImageTrust {
        let digest = manifest_digest(dir);
        let mut src = MemSource::default();
        let layers: Vec<_> = sigs
            .iter()
            .map(|s| sigstore_json(&format!("{dir}/{s}")))
            .collect();
        src.attach(&digest, "sig", &layers);
        run(verify_image(&src, "192.168.64.2:5000/x", &digest, cfg)).unwrap()
    }

    pub(crate) fn tampered(mut l: AttachmentLayer) -> AttachmentLayer {
        let pos = l.payload.len() - 20;
        l.payload[pos] ^= 1;
        l
    }

    #[test]
    fn cosign_valid_accepts_with_its_key_and_rejects_others() {
        let t = verify_dir(
            ci!("dir-img-cosign-valid"),
            &["signature-1"],
            &keys(&[ci!("cosign.pub")]),
        );
        assert!(t.any_verified(), "{t:?}");
        assert_eq!(
            t.signatures[0].key_fingerprint,
            Some(key(ci!("cosign.pub")).fingerprint())
        );
        assert_eq!(t.signatures[0].kind, SignatureKind::Key);
        let t = verify_dir(
            ci!("dir-img-cosign-valid"),
            &["signature-1"],
            &keys(&[ci!("cosign2.pub")]),
        );
        assert!(!t.any_verified());
        assert!(t.signatures[0]
            .error
            .as_deref()
            .unwrap()
            .contains("any of the 1 configured key"));
        // Tampered twin.
        let l = tampered(sigstore_json(ci!("dir-img-cosign-valid/signature-1")));
        let f = verify_signature_layer(
            &found(&l),
            &manifest_digest(ci!("dir-img-cosign-valid")),
            &keys(&[ci!("cosign.pub")]),
        );
        assert!(!f.verified);
        // No key configured at all.
        let t = verify_dir(
            ci!("dir-img-cosign-valid"),
            &["signature-1"],
            &TrustConfig::default(),
        );
        assert!(t.signatures[0]
            .error
            .as_deref()
            .unwrap()
            .contains("no public key is configured"));
    }

    #[test]
    fn decoded_splits_agree_with_the_signature_file() {
        let dir = ci!("dir-img-cosign-valid/signature-1.decoded");
        let l = sigstore_json(ci!("dir-img-cosign-valid/signature-1"));
        assert_eq!(
            l.payload,
            std::fs::read(format!("{dir}/payload.json")).unwrap()
        );
        let ann: BTreeMap<String, String> =
            serde_json::from_slice(&std::fs::read(format!("{dir}/annotations.json")).unwrap())
                .unwrap();
        assert_eq!(l.annotations, ann);
    }

    #[test]
    fn two_valid_signatures_are_both_reported() {
        let t = verify_dir(
            ci!("dir-img-cosign-valid-2"),
            &["signature-1", "signature-2"],
            &keys(&[ci!("cosign.pub")]),
        );
        assert_eq!(t.signatures.len(), 2);
        assert!(t.signatures.iter().all(|s| s.verified), "{t:?}");
        let digest = manifest_digest(ci!("dir-img-cosign-valid-2"));
        for n in ["signature-1", "signature-2"] {
            let l = tampered(sigstore_json(&format!(
                "{}/{n}",
                ci!("dir-img-cosign-valid-2")
            )));
            assert!(
                !verify_signature_layer(&found(&l), &digest, &keys(&[ci!("cosign.pub")])).verified
            );
        }
    }

    #[test]
    fn skopeo_payload_with_tagged_reference_verifies_for_its_digest() {
        let t = verify_dir(
            ci!("dir-img-cosign-valid-with-tag"),
            &["signature-1"],
            &keys(&[ci!("cosign.pub")]),
        );
        assert!(t.any_verified(), "{t:?}");
        let l = tampered(sigstore_json(ci!(
            "dir-img-cosign-valid-with-tag/signature-1"
        )));
        let f = verify_signature_layer(
            &found(&l),
            &manifest_digest(ci!("dir-img-cosign-valid-with-tag")),
            &keys(&[ci!("cosign.pub")]),
        );
        assert!(!f.verified);
    }

    #[test]
    fn mixed_reports_the_bad_one_and_accepts_the_good_one() {
        let cfg = keys(&[ci!("cosign.pub"), ci!("cosign2.pub")]);
        let t = verify_dir(
            ci!("dir-img-cosign-mixed"),
            &["signature-1", "signature-2"],
            &cfg,
        );
        assert_eq!(
            t.signatures.iter().map(|s| s.verified).collect::<Vec<_>>(),
            vec![false, true]
        );
        assert!(t.signatures[0].error.is_some());
        let alone = verify_dir(ci!("dir-img-cosign-mixed"), &["signature-1"], &cfg);
        assert!(!alone.any_verified());
        let good = tampered(sigstore_json(ci!("dir-img-cosign-mixed/signature-2")));
        assert!(
            !verify_signature_layer(
                &found(&good),
                &manifest_digest(ci!("dir-img-cosign-mixed")),
                &cfg
            )
            .verified
        );
    }

    #[test]
    fn signature_for_another_digest_is_rejected_with_both_digests() {
        for dir in [
            ci!("dir-img-cosign-modified-manifest"),
            ci!("dir-img-cosign-manifest-digest-error"),
        ] {
            let t = verify_dir(dir, &["signature-1"], &keys(&[ci!("cosign.pub")]));
            assert!(!t.any_verified());
            let e = t.signatures[0].error.as_deref().unwrap();
            assert!(
                e.contains("signature is for sha256:634a8f35") && e.contains(&manifest_digest(dir)),
                "{e}"
            );
        }
        // No manifest: nothing can be bound; the same signature against an empty manifest fails.
        let l = sigstore_json(ci!("dir-img-cosign-no-manifest/signature-1"));
        let f = verify_signature_layer(
            &found(&l),
            &sign::sha256_digest(b""),
            &keys(&[ci!("cosign.pub")]),
        );
        assert!(!f.verified);
    }

    #[test]
    fn other_attachment_types_and_unsigned_images_have_no_signatures() {
        let t = verify_dir(
            ci!("dir-img-cosign-other-attachment"),
            &["signature-1"],
            &keys(&[ci!("cosign.pub")]),
        );
        assert!(t.signatures.is_empty() && !t.any_verified(), "{t:?}");
        for dir in [ci!("dir-img-unsigned"), ci!("dir-img-valid")] {
            let digest = manifest_digest(dir);
            let t = run(verify_image(
                &MemSource::default(),
                "r",
                &digest,
                &keys(&[ci!("cosign.pub")]),
            ))
            .unwrap();
            assert!(t.signatures.is_empty());
        }
    }

    #[test]
    fn standalone_signatures() {
        let cfg = keys(&[ci!("cosign.pub"), ci!("cosign2.pub")]);
        let unknown = sigstore_json(ci!("unknown-cosign-key.signature"));
        let d = check_digest_of(&unknown.payload);
        assert!(!verify_signature_layer(&found(&unknown), &d, &cfg).verified);
        let valid = sigstore_json(ci!("internal-valid.signature"));
        let d = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
        assert!(verify_signature_layer(&found(&valid), d, &keys(&[ci!("cosign.pub")])).verified);
        assert!(
            !verify_signature_layer(&found(&tampered(valid)), d, &keys(&[ci!("cosign.pub")]))
                .verified
        );
    }

    pub(crate) fn check_digest_of(payload: &[u8]) -> String {
        let v: Value = serde_json::from_slice(payload).unwrap();
        v["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn key_signed_with_rekor_bundle_needs_the_bundle_when_tlog_is_required() {
        let dir = ci!("dir-img-cosign-key-rekor-valid");
        // Without a trusted root the bundle cannot be checked: fine unless a tlog is required.
        let t = verify_dir(dir, &["signature-1"], &keys(&[ci!("cosign2.pub")]));
        assert!(t.any_verified(), "{t:?}");
        assert!(!verify_dir(dir, &["signature-1"], &keys(&[ci!("cosign.pub")])).any_verified());
        let mut cfg = keys(&[ci!("cosign2.pub")]);
        cfg.require_tlog = true;
        let mut l = sigstore_json(&format!("{dir}/signature-1"));
        l.annotations.remove(ANN_BUNDLE);
        let f = verify_signature_layer(&found(&l), &manifest_digest(dir), &cfg);
        assert!(!f.verified);
        assert!(f.error.unwrap().contains("no Rekor entry"));
        assert!(
            !verify_dir(dir, &["signature-1"], &cfg).any_verified(),
            "no trusted root to check the entry"
        );
    }

    #[test]
    fn key_signed_rekor_entry_is_checked_against_the_rekor_key() {
        let dir = ci!("dir-img-cosign-key-rekor-valid");
        let digest = manifest_digest(dir);
        let l = sigstore_json(&format!("{dir}/signature-1"));
        let with_root = |rekor: &str| TrustConfig {
            keys: vec![key(ci!("cosign2.pub"))],
            trust_root: Some(crate::trust::keyless::tests::root_from_pems(
                ci!("fulcio_v1.crt.pem"),
                rekor,
                "2021-01-01T00:00:00Z",
            )),
            require_tlog: true,
            pki: None,
        };
        let f = verify_signature_layer(&found(&l), &digest, &with_root(ci!("rekor.pub")));
        assert!(f.verified, "{f:?}");
        assert_eq!(f.tlog.as_ref().unwrap().integrated_time, 1674251859);
        assert_eq!(
            f.key_fingerprint,
            Some(key(ci!("cosign2.pub")).fingerprint())
        );
        // cosign.pub posing as the Rekor key: the SET does not verify.
        assert!(
            !verify_signature_layer(&found(&l), &digest, &with_root(ci!("cosign.pub"))).verified
        );
        assert!(
            !verify_signature_layer(
                &found(&tampered(l.clone())),
                &digest,
                &with_root(ci!("rekor.pub"))
            )
            .verified
        );
        // The bundle of the keyless fixture is a valid SET for another entry: a replay.
        let mut replay = l.clone();
        let other = sigstore_json(ci!("dir-img-cosign-fulcio-rekor-valid/signature-1"));
        replay
            .annotations
            .insert(ANN_BUNDLE.into(), other.annotations[ANN_BUNDLE].clone());
        let r = verify_signature_layer(&found(&replay), &digest, &with_root(ci!("rekor.pub")));
        assert!(
            !r.verified && r.error.as_deref().unwrap().contains("does not match"),
            "{r:?}"
        );
    }

    #[test]
    fn sigstore_rs_busybox_and_suse_rsa() {
        let dir =
            shared!("sigstore-rs/extracted-from-src-cosign-signature_layers.rs/busybox-key-signed");
        let suse = shared!(
            "sigstore-rs/extracted-from-src-crypto-verification_key.rs/suse-sle-micro-toolbox-rsa"
        );
        for (d, pubkey) in [
            (dir.to_string(), format!("{dir}/cosign.pub")),
            (suse.to_string(), format!("{suse}/suse-obs.pub")),
        ] {
            let payload = std::fs::read(format!("{d}/payload.json")).unwrap();
            let sig = std::fs::read_to_string(format!("{d}/signature.b64")).unwrap();
            let l = AttachmentLayer {
                payload: payload.clone(),
                media_type: sign::SIMPLE_SIGNING_MEDIA_TYPE.into(),
                annotations: BTreeMap::from([(ANN_SIGNATURE.to_string(), sig.trim().to_string())]),
            };
            let digest = check_digest_of(&payload);
            let cfg = keys(&[pubkey.as_str()]);
            let f = verify_signature_layer(&found(&l), &digest, &cfg);
            assert!(f.verified, "{d}: {f:?}");
            assert!(!verify_signature_layer(&found(&tampered(l.clone())), &digest, &cfg).verified);
            assert!(
                !verify_signature_layer(&found(&l), &digest, &keys(&[ci!("cosign.pub")])).verified
            );
        }
    }

    #[test]
    fn interop_signature_valid_only_under_its_key() {
        let dump = shared!("interop/registry-dump");
        let m: Value = serde_json::from_slice(
            &std::fs::read(format!("{dump}/sig-manifest.sigstore-rs.json")).unwrap(),
        )
        .unwrap();
        let l = AttachmentLayer {
            payload: std::fs::read(format!("{dump}/sig-payload.json")).unwrap(),
            media_type: sign::SIMPLE_SIGNING_MEDIA_TYPE.into(),
            annotations: serde_json::from_value(m["layers"][0]["annotations"].clone()).unwrap(),
        };
        let image =
            sign::sha256_digest(&std::fs::read(format!("{dump}/image-manifest.json")).unwrap());
        assert_eq!(
            image,
            "sha256:a40c9528ff63cd767d3c50677457b85f4c2868ab41400fb7f9b71148553f0c06"
        );
        let mut src = MemSource::default();
        src.attach(&image, "sig", std::slice::from_ref(&l));
        let ok = run(verify_image(
            &src,
            "interop/hello",
            &image,
            &keys(&[shared!("interop/keys/cosign-123.pub")]),
        ))
        .unwrap();
        assert!(ok.any_verified(), "{ok:?}");
        for wrong in [
            shared!("interop/keys/wrong.pub"),
            shared!("interop/keys/cosign-empty.pub"),
        ] {
            let bad = run(verify_image(&src, "interop/hello", &image, &keys(&[wrong]))).unwrap();
            assert!(!bad.any_verified());
        }
        let f = verify_signature_layer(
            &found(&tampered(l)),
            &image,
            &keys(&[shared!("interop/keys/cosign-123.pub")]),
        );
        assert!(!f.verified);
    }

    #[test]
    fn own_signatures_and_attestations_round_trip_through_a_registry() {
        let key = crate::trust::sign::SigningKey::generate().unwrap();
        let d = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a";
        let other = "sha256:1489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a";
        let mut src = MemSource::default();
        src.attach(
            d,
            "sig",
            &[
                sign::sign_image(&key, "example.com/a", d).unwrap(),
                sign::sign_image(&key, "example.com/a", other).unwrap(),
            ],
        );
        let pred = serde_json::json!({"builder": {"id": "b"}});
        src.attach(
            d,
            "att",
            &[
                sign::attest(
                    &key,
                    d,
                    "example.com/a",
                    "https://slsa.dev/provenance/v0.2",
                    pred.clone(),
                )
                .unwrap(),
                sign::attest(
                    &key,
                    other,
                    "example.com/a",
                    "https://slsa.dev/provenance/v0.2",
                    pred.clone(),
                )
                .unwrap(),
            ],
        );
        let cfg = TrustConfig {
            keys: vec![key.public_key().clone()],
            ..Default::default()
        };
        let t = run(verify_image(&src, "example.com/a", d, &cfg)).unwrap();
        assert_eq!(
            t.signatures.iter().map(|s| s.verified).collect::<Vec<_>>(),
            vec![true, false]
        );
        assert!(t.signatures[1]
            .error
            .as_deref()
            .unwrap()
            .contains("signature is for sha256:1489"));
        assert_eq!(t.attestations.len(), 1);
        assert_eq!(t.attestations[0].predicate, pred);
        assert_eq!(
            t.attestations[0].signer.key_fingerprint,
            Some(key.public_key().fingerprint())
        );
        assert_eq!(t.rejected_attestations.len(), 1);
        assert!(
            t.rejected_attestations[0].contains("does not name the image"),
            "{:?}",
            t.rejected_attestations
        );
        // Under another key nothing counts.
        let stranger = crate::trust::sign::SigningKey::generate().unwrap();
        let cfg = TrustConfig {
            keys: vec![stranger.public_key().clone()],
            ..Default::default()
        };
        let t = run(verify_image(&src, "example.com/a", d, &cfg)).unwrap();
        assert!(
            !t.any_verified() && t.attestations.is_empty() && t.rejected_attestations.len() == 2
        );
    }

    #[test]
    fn cosign_policy_envelopes_without_their_key_are_rejected() {
        // The signing key of these envelopes is not published: they must not count under any
        // key we have, and their subject names only the knative demo digest.
        let d = "sha256:6c6fd6a4115c6e998ff357cd914680931bb9a6c1a7cd5f5cb2f5e1c0932ab6ed";
        for p in [
            shared!("cosign/pkg/policy/testdata/valid/custom"),
            shared!("cosign/pkg/policy/testdata/valid/vuln"),
        ] {
            let l = FoundLayer {
                source: SignatureSource::CosignTag,
                origin: "t".into(),
                blob: std::fs::read(p).unwrap(),
                annotations: BTreeMap::new(),
            };
            let e =
                verify_attestation_layer(&l, d, &keys(&[ci!("cosign.pub"), ci!("cosign2.pub")]))
                    .unwrap_err();
            assert!(e.contains("does not verify"), "{e}");
        }
    }
}
