//! Making cosign-format signatures and attestations for what `gantry publish` pushes: the simple
//! signing payload and its `.sig` layer, the in-toto Statement in a DSSE envelope as an `.att`
//! layer, and the attachment manifest that carries them (appending to an existing one, as cosign
//! does, instead of replacing it). This module builds bytes; it never talks to a registry and
//! never reads key files (see `keygen` for that).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use sigstore::crypto::signing_key::ecdsa::ECDSAKeys;
use sigstore::crypto::signing_key::{SigStoreKeyPair, SigStoreSigner};
use sigstore::crypto::SigningScheme;
use zeroize::Zeroizing;

use super::dsse::{self, Envelope, EnvelopeSignature, Statement, Subject};
use super::PublicKey;

/// Layer media type of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature (empty on `.att` layers).
pub const ANN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// Layer annotation holding the PEM signing certificate (keyless).
pub const ANN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// Layer annotation holding the PEM chain (keyless).
pub const ANN_CHAIN: &str = "dev.sigstore.cosign/chain";
/// Layer annotation holding the Rekor bundle (SET) JSON.
pub const ANN_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// Layer annotation naming an attestation's predicate type.
pub const ANN_PREDICATE_TYPE: &str = "predicateType";
/// The `critical.type` of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("private key: {0}")]
    Key(String),
    #[error("wrong password (or not an encrypted cosign key)")]
    WrongPassword,
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("digest {0:?} is not sha256:<64 hex>")]
    Digest(String),
    #[error("existing attachment manifest cannot be extended: {0}")]
    ExistingManifest(String),
}

/// A private key that signs as cosign does (ECDSA P-256/P-384 or Ed25519).
pub struct SigningKey {
    signer: SigStoreSigner,
    pair: SigStoreKeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public.fingerprint())
    }
}

impl SigningKey {
    /// Reads an encrypted cosign private key: `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 2) or
    /// `ENCRYPTED COSIGN PRIVATE KEY` (older cosign); both are scrypt + nacl secretbox.
    pub fn from_encrypted_pem(pem: &[u8], password: &[u8]) -> Result<Self, SignError> {
        // The sigstore crate reports a failed decryption as whatever the garbage it decrypted to
        // fails to parse as ("Unsupported key type"), which tells the user nothing; a wrong
        // password is by far the likeliest cause, and the only one the user can act on.
        let pair = SigStoreKeyPair::from_encrypted_pem(pem, password)
            .map_err(|_| SignError::WrongPassword)?;
        Self::from_pair(pair)
    }

    /// A fresh ECDSA P-256 key, the kind `cosign generate-key-pair` makes.
    pub fn generate() -> Result<Self, SignError> {
        let keys = ECDSAKeys::new(sigstore::crypto::signing_key::ecdsa::EllipticCurve::P256)
            .map_err(|e| SignError::Key(e.to_string()))?;
        Self::from_pair(SigStoreKeyPair::ECDSA(keys))
    }

    fn from_pair(pair: SigStoreKeyPair) -> Result<Self, SignError> {
        let scheme = match &pair {
            SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => SigningScheme::ECDSA_P256_SHA256_ASN1,
            SigStoreKeyPair::ECDSA(ECDSAKeys::P384(_)) => SigningScheme::ECDSA_P384_SHA384_ASN1,
            SigStoreKeyPair::ED25519(_) => SigningScheme::ED25519,
            other => {
                return Err(SignError::Key(format!(
                    "{other} keys are not supported for signing"
                )))
            }
        };
        let signer = pair
            .to_sigstore_signer(&scheme)
            .map_err(|e| SignError::Key(e.to_string()))?;
        let der = pair
            .public_key_to_der()
            .map_err(|e| SignError::Key(e.to_string()))?;
        let public = PublicKey::from_spki_der(&der).map_err(|e| SignError::Key(e.to_string()))?;
        Ok(SigningKey {
            signer,
            pair,
            public,
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public key as a `PUBLIC KEY` PEM, as in `cosign.pub`.
    pub fn public_key_pem(&self) -> Result<String, SignError> {
        self.pair
            .public_key_to_pem()
            .map_err(|e| SignError::Key(e.to_string()))
    }

    /// The private key encrypted under `password` with the `ENCRYPTED SIGSTORE PRIVATE KEY` label.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<Zeroizing<String>, SignError> {
        self.pair
            .private_key_to_encrypted_pem(password)
            .map_err(|e| SignError::Key(e.to_string()))
    }

    /// Signs `msg` (hashing it as the key's scheme says); DER for ECDSA.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        self.signer
            .sign(msg)
            .map_err(|e| SignError::Sign(e.to_string()))
    }
}

/// One layer to attach under a `.sig` or `.att` tag: the blob and how to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentLayer {
    pub payload: Vec<u8>,
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
}

/// A simple-signing layer for a `.sig` manifest.
pub type SignatureArtifact = AttachmentLayer;
/// A DSSE layer for an `.att` manifest.
pub type AttestationArtifact = AttachmentLayer;

// Field order is the JSON key order; cosign writes these keys sorted.
#[derive(Serialize)]
struct SimpleSigning<'a> {
    critical: Critical<'a>,
    optional: Option<()>,
}
#[derive(Serialize)]
struct Critical<'a> {
    identity: IdentityRef<'a>,
    image: ImageRef<'a>,
    #[serde(rename = "type")]
    kind: &'a str,
}
#[derive(Serialize)]
struct IdentityRef<'a> {
    #[serde(rename = "docker-reference")]
    docker_reference: &'a str,
}
#[derive(Serialize)]
struct ImageRef<'a> {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: &'a str,
}

/// Checks `sha256:` + 64 lower-case hex and returns the hex.
pub fn digest_hex(digest: &str) -> Result<&str, SignError> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(h)
        }
        _ => Err(SignError::Digest(digest.to_string())),
    }
}

/// The cosign simple-signing payload for `repository` (no tag, as cosign writes it) at `digest`.
pub fn simple_signing_payload(repository: &str, digest: &str) -> Result<Vec<u8>, SignError> {
    digest_hex(digest)?;
    let p = SimpleSigning {
        critical: Critical {
            identity: IdentityRef {
                docker_reference: repository,
            },
            image: ImageRef {
                docker_manifest_digest: digest,
            },
            kind: SIMPLE_SIGNING_TYPE,
        },
        optional: None,
    };
    Ok(serde_json::to_vec(&p).expect("payload serialises"))
}

/// Signs image `digest` of `repository` in cosign's `.sig` format.
pub fn sign_image(
    key: &SigningKey,
    repository: &str,
    digest: &str,
) -> Result<SignatureArtifact, SignError> {
    let payload = simple_signing_payload(repository, digest)?;
    let sig = key.sign(&payload)?;
    let annotations = BTreeMap::from([(ANN_SIGNATURE.to_string(), STANDARD.encode(sig))]);
    Ok(AttachmentLayer {
        payload,
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        annotations,
    })
}

/// Expands cosign's `--type` shortcuts; anything else must already be a URI.
pub fn predicate_type_uri(name: &str) -> Result<String, SignError> {
    Ok(match name {
        "slsaprovenance1" => "https://slsa.dev/provenance/v1",
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "custom" => "https://cosign.sigstore.dev/attestation/v1",
        uri if uri.contains("://") => uri,
        other => {
            return Err(SignError::Sign(format!(
                "predicate type {other:?} is neither a known name (slsaprovenance1, slsaprovenance, spdx, \
                 spdxjson, cyclonedx, vuln, custom) nor a URI"
            )))
        }
    }
    .to_string())
}

/// Attests `predicate` about image `digest` of `repository`: an in-toto Statement v1 in a DSSE
/// envelope, as an `.att` layer with cosign's annotations.
pub fn attest(
    key: &SigningKey,
    digest: &str,
    repository: &str,
    predicate_type_uri: &str,
    predicate: serde_json::Value,
) -> Result<AttestationArtifact, SignError> {
    let hex = digest_hex(digest)?;
    let statement = Statement {
        statement_type: dsse::STATEMENT_V1.into(),
        subject: vec![Subject {
            name: repository.into(),
            digest: BTreeMap::from([("sha256".to_string(), hex.to_string())]),
        }],
        predicate_type: predicate_type_uri.into(),
        predicate,
    };
    let body = serde_json::to_vec(&statement).expect("statement serialises");
    let sig = key.sign(&dsse::pae(dsse::IN_TOTO_PAYLOAD_TYPE, &body))?;
    let envelope = Envelope {
        payload_type: dsse::IN_TOTO_PAYLOAD_TYPE.into(),
        payload: STANDARD.encode(&body),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: STANDARD.encode(sig),
        }],
    };
    let annotations = BTreeMap::from([
        (ANN_SIGNATURE.to_string(), String::new()),
        (
            ANN_PREDICATE_TYPE.to_string(),
            predicate_type_uri.to_string(),
        ),
    ]);
    Ok(AttachmentLayer {
        payload: envelope.to_json(),
        media_type: dsse::DSSE_LAYER_MEDIA_TYPE.into(),
        annotations,
    })
}

/// OCI image manifest media type used for attachment manifests.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Config media type of attachment manifests.
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The tag cosign stores attachments of `digest` under: `sha256-HEX.sig` / `.att`.
pub fn attachment_tag(digest: &str, suffix: &str) -> Result<String, SignError> {
    Ok(format!("sha256-{}.{suffix}", digest_hex(digest)?))
}

/// An attachment manifest ready to push: push the new layer blob and `config`, then `manifest`
/// under the attachment tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentManifest {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    /// `sha256:HEX` of `config`.
    pub config_digest: String,
    /// `sha256:HEX` of the new layer's payload.
    pub layer_digest: String,
    /// False when the existing manifest already had an identical layer (nothing new to push).
    pub appended: bool,
}

/// `sha256:HEX` of `data`.
pub(crate) fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(super::sha256(data)))
}

// Field order is the key order cosign (go-containerregistry) writes.
#[derive(Serialize)]
struct AttachmentConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    config: serde_json::Map<String, serde_json::Value>,
    rootfs: RootFs,
}
#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

/// Builds the `.sig`/`.att` manifest holding `layer`, keeping every layer of `existing` (cosign
/// appends; replacing would drop other signers' signatures). An existing manifest that is not an
/// OCI/Docker image manifest is an error rather than something to overwrite.
pub fn build_attachment_manifest(
    existing: Option<&[u8]>,
    layer: &AttachmentLayer,
) -> Result<AttachmentManifest, SignError> {
    use serde_json::{json, Value};
    let layer_digest = sha256_digest(&layer.payload);
    let new_layer = json!({
        "mediaType": layer.media_type,
        "size": layer.payload.len(),
        "digest": layer_digest,
        "annotations": layer.annotations,
    });
    let mut layers: Vec<Value> = match existing {
        None => Vec::new(),
        Some(bytes) => {
            let m: Value = serde_json::from_slice(bytes)
                .map_err(|e| SignError::ExistingManifest(format!("not JSON: {e}")))?;
            if m.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
                return Err(SignError::ExistingManifest("schemaVersion is not 2".into()));
            }
            m.get("layers")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| SignError::ExistingManifest("no layers array (an index?)".into()))?
        }
    };
    let duplicate = layers.iter().any(|l| {
        l.get("digest") == new_layer.get("digest")
            && l.get("annotations") == new_layer.get("annotations")
    });
    if !duplicate {
        layers.push(new_layer);
    }
    let diff_ids = layers
        .iter()
        .map(|l| l.get("digest").and_then(Value::as_str).map(String::from))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| SignError::ExistingManifest("a layer has no digest".into()))?;
    let config = serde_json::to_vec(&AttachmentConfig {
        architecture: "",
        os: "",
        config: serde_json::Map::new(),
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
    })
    .expect("config serialises");
    let config_digest = sha256_digest(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": OCI_CONFIG_MEDIA_TYPE, "size": config.len(), "digest": config_digest},
        "layers": layers,
    });
    Ok(AttachmentManifest {
        manifest: serde_json::to_vec(&manifest).expect("manifest serialises"),
        config,
        config_digest,
        layer_digest,
        appended: !duplicate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::trust::testdata::shared;
    const D: &str = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a";

    fn key123() -> SigningKey {
        SigningKey::from_encrypted_pem(
            &std::fs::read(shared!("interop/keys/cosign-123.key")).unwrap(),
            b"123",
        )
        .unwrap()
    }

    #[test]
    fn reads_both_cosign_key_labels_and_refuses_wrong_passwords() {
        let k = key123();
        let pub123 =
            PublicKey::from_pem(&std::fs::read(shared!("interop/keys/cosign-123.pub")).unwrap())
                .unwrap();
        assert_eq!(k.public_key().fingerprint(), pub123.fingerprint());
        let empty_pem = std::fs::read(shared!("interop/keys/cosign-empty.key")).unwrap();
        assert!(String::from_utf8_lossy(&empty_pem).contains("ENCRYPTED SIGSTORE PRIVATE KEY"));
        let e = SigningKey::from_encrypted_pem(&empty_pem, b"").unwrap();
        let pube =
            PublicKey::from_pem(&std::fs::read(shared!("interop/keys/cosign-empty.pub")).unwrap())
                .unwrap();
        assert_eq!(e.public_key().fingerprint(), pube.fingerprint());
        let wrong = std::fs::read(shared!("interop/keys/cosign-123.key")).unwrap();
        assert!(matches!(
            SigningKey::from_encrypted_pem(&wrong, b"124"),
            Err(SignError::WrongPassword)
        ));
        assert!(matches!(
            SigningKey::from_encrypted_pem(&empty_pem, b"x"),
            Err(SignError::WrongPassword)
        ));
    }

    #[test]
    fn payload_is_byte_identical_to_cosign() {
        // containers/image fixture written by the cosign CLI.
        let cosign = std::fs::read(shared!(
            "containers-image/dir-img-cosign-fulcio-rekor-valid/signature-1.decoded/payload.json"
        ))
        .unwrap();
        let ours =
            simple_signing_payload("192.168.64.2:5000/cosign-signed/fulcio-rekor-1", D).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(cosign).unwrap()
        );
        assert!(simple_signing_payload("r", "sha256:ABC").is_err());
        assert!(simple_signing_payload("r", &D.replace("sha256:", "sha512:")).is_err());
    }

    #[test]
    fn signature_verifies_and_binds() {
        let k = key123();
        let art = sign_image(&k, "example.com/a/b", D).unwrap();
        let sig = STANDARD.decode(&art.annotations[ANN_SIGNATURE]).unwrap();
        k.public_key().verify(&art.payload, &sig).unwrap();
        let mut tampered = art.payload.clone();
        tampered[10] ^= 1;
        assert!(k.public_key().verify(&tampered, &sig).is_err());
        assert_eq!(art.media_type, SIMPLE_SIGNING_MEDIA_TYPE);
    }

    #[test]
    fn attestation_envelope_verifies_and_names_the_digest() {
        let k = SigningKey::generate().unwrap();
        let pt = predicate_type_uri("slsaprovenance1").unwrap();
        let art = attest(&k, D, "example.com/a/b", &pt, serde_json::json!({"x": 1})).unwrap();
        assert_eq!(
            art.annotations[ANN_PREDICATE_TYPE],
            "https://slsa.dev/provenance/v1"
        );
        assert_eq!(art.annotations[ANN_SIGNATURE], "");
        let env = Envelope::parse(&art.payload).unwrap();
        let sig = &env.raw_signatures().unwrap()[0];
        k.public_key()
            .verify(&env.signed_bytes().unwrap(), sig)
            .unwrap();
        // The signature covers the PAE, not the bare payload.
        assert!(k
            .public_key()
            .verify(&env.payload_bytes().unwrap(), sig)
            .is_err());
        let st = Statement::parse(&env.payload_type, &env.payload_bytes().unwrap()).unwrap();
        st.check_subject(D).unwrap();
        assert_eq!(st.statement_type, dsse::STATEMENT_V1);
    }

    #[test]
    fn predicate_shortcuts() {
        assert_eq!(
            predicate_type_uri("spdxjson").unwrap(),
            "https://spdx.dev/Document"
        );
        assert_eq!(
            predicate_type_uri("slsaprovenance").unwrap(),
            "https://slsa.dev/provenance/v0.2"
        );
        assert_eq!(
            predicate_type_uri("vuln").unwrap(),
            "https://cosign.sigstore.dev/attestation/vuln/v1"
        );
        assert_eq!(
            predicate_type_uri("https://example.com/p").unwrap(),
            "https://example.com/p"
        );
        assert!(predicate_type_uri("sbom").is_err());
    }

    #[test]
    fn attachment_manifest_appends_and_matches_skopeo_config() {
        let k = key123();
        let one = sign_image(&k, "example.com/a", D).unwrap();
        let first = build_attachment_manifest(None, &one).unwrap();
        // The config containers/image wrote for the interop run's signature layer, byte for byte.
        let skopeo =
            std::fs::read(shared!("interop/registry-dump/sig-config.skopeo-copy.json")).unwrap();
        let interop = AttachmentLayer {
            payload: std::fs::read(shared!("interop/registry-dump/sig-payload.json")).unwrap(),
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
            annotations: BTreeMap::new(),
        };
        assert_eq!(
            build_attachment_manifest(None, &interop).unwrap().config,
            skopeo
        );
        let two = sign_image(&k, "example.com/a", D).unwrap();
        let second = build_attachment_manifest(Some(&first.manifest), &two).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&second.manifest).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        assert_eq!(m["config"]["digest"], second.config_digest.as_str());
        assert_eq!(
            m["layers"][1]["annotations"][ANN_SIGNATURE],
            two.annotations[ANN_SIGNATURE].as_str()
        );
        // Re-pushing the same layer adds nothing.
        let again = build_attachment_manifest(Some(&second.manifest), &two).unwrap();
        assert!(!again.appended);
        assert_eq!(again.manifest, second.manifest);
        // A foreign manifest (the sigstore-rs written one) keeps its layer.
        let foreign = std::fs::read(shared!(
            "interop/registry-dump/sig-manifest.sigstore-rs.json"
        ))
        .unwrap();
        let merged = build_attachment_manifest(Some(&foreign), &one).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&merged.manifest).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        assert!(
            build_attachment_manifest(Some(br#"{"schemaVersion":2,"manifests":[]}"#), &one)
                .is_err()
        );
        assert!(build_attachment_manifest(Some(b"garbage"), &one).is_err());
        assert_eq!(
            attachment_tag(D, "att").unwrap(),
            format!("sha256-{}.att", &D[7..])
        );
    }
}
