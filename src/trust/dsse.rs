//! DSSE envelopes and the in-toto Statements they carry: parsing, the pre-authentication
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! encoding (PAE) that signatures cover, and the subject check that binds a Statement to an
//! image digest. This module only parses and encodes; it never decides that a signature is
//! good (that is `cosign`'s job, with a key or a certificate) and never trusts a payload whose
//! envelope has not been verified.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Layer media type of a DSSE envelope in a cosign `.att` manifest.
pub const DSSE_LAYER_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// DSSE payload type of an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The Statement `_type` gantry writes.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The older Statement `_type` cosign still writes.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";

/// Why an envelope or Statement could not be read or does not bind.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    #[error("DSSE envelope is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("DSSE envelope {field} is not valid base64")]
    Base64 { field: &'static str },
    #[error("DSSE envelope has no signatures")]
    NoSignatures,
    #[error("DSSE payload type is {0:?}, not {IN_TOTO_PAYLOAD_TYPE}")]
    PayloadType(String),
    #[error("payload is not an in-toto Statement: {0}")]
    NotStatement(String),
    #[error("attestation subject does not name the image {digest} (subjects: {subjects})")]
    SubjectMismatch { digest: String, subjects: String },
}

/// One signature of a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Key hint; cosign writes an empty string.
    #[serde(default)]
    pub keyid: String,
    /// Base64 signature over the PAE of the payload.
    pub sig: String,
}

/// A DSSE envelope as serialised by cosign (field order as cosign writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 payload.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// The DSSE v1 pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        payload
            .len()
            .saturating_add(payload_type.len())
            .saturating_add(32),
    );
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {} {} ",
            payload_type.len(),
            payload_type,
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// DSSE allows standard or URL-safe base64; accept both, nothing else.
pub(crate) fn decode_b64(field: &'static str, text: &str) -> Result<Vec<u8>, DsseError> {
    STANDARD
        .decode(text.trim())
        .or_else(|_| URL_SAFE.decode(text.trim()))
        .map_err(|_| DsseError::Base64 { field })
}

impl Envelope {
    /// Parses an envelope; it must carry at least one signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, DsseError> {
        let env: Envelope = serde_json::from_slice(bytes)?;
        if env.signatures.is_empty() {
            return Err(DsseError::NoSignatures);
        }
        Ok(env)
    }

    /// The decoded payload bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, DsseError> {
        decode_b64("payload", &self.payload)
    }

    /// The bytes every signature of this envelope must cover.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, DsseError> {
        Ok(pae(&self.payload_type, &self.payload_bytes()?))
    }

    /// Decoded signatures, in envelope order.
    pub fn raw_signatures(&self) -> Result<Vec<Vec<u8>>, DsseError> {
        self.signatures
            .iter()
            .map(|s| decode_b64("signature", &s.sig))
            .collect()
    }

    /// Serialises compactly, as cosign does.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelope serialises")
    }
}

/// One subject of a Statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

/// An in-toto Statement (v0.1 or v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

impl Statement {
    /// Parses a Statement out of a verified envelope payload.
    pub fn parse(payload_type: &str, payload: &[u8]) -> Result<Self, DsseError> {
        if payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(DsseError::PayloadType(payload_type.to_string()));
        }
        let st: Statement =
            serde_json::from_slice(payload).map_err(|e| DsseError::NotStatement(e.to_string()))?;
        if st.statement_type != STATEMENT_V1 && st.statement_type != STATEMENT_V01 {
            return Err(DsseError::NotStatement(format!(
                "unknown _type {:?}",
                st.statement_type
            )));
        }
        if st.predicate_type.is_empty() {
            return Err(DsseError::NotStatement("empty predicateType".into()));
        }
        Ok(st)
    }

    /// Succeeds only when some subject's `sha256` digest equals `digest` (`sha256:HEX`) exactly.
    pub fn check_subject(&self, digest: &str) -> Result<(), DsseError> {
        let want = digest.strip_prefix("sha256:").unwrap_or("");
        let hit = !want.is_empty()
            && self
                .subject
                .iter()
                .any(|s| s.digest.get("sha256").map(String::as_str) == Some(want));
        if hit {
            return Ok(());
        }
        let subjects = self
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(k, v)| format!("{k}:{v}")))
            .collect::<Vec<_>>()
            .join(", ");
        Err(DsseError::SubjectMismatch {
            digest: digest.to_string(),
            subjects,
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const CUSTOM: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/cosign/pkg/policy/testdata/valid/custom"
    );
    const MALFORMED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/cosign/pkg/policy/testdata/malformed/custom"
    );

    #[test]
    fn pae_matches_the_spec_example() {
        // The worked example of the DSSE v1 protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn cosign_envelope_parses_and_binds_only_its_digest() {
        let env = Envelope::parse(&std::fs::read(CUSTOM).unwrap()).unwrap();
        let st = Statement::parse(&env.payload_type, &env.payload_bytes().unwrap()).unwrap();
        assert_eq!(
            st.predicate_type,
            "https://cosign.sigstore.dev/attestation/v1"
        );
        st.check_subject("sha256:6c6fd6a4115c6e998ff357cd914680931bb9a6c1a7cd5f5cb2f5e1c0932ab6ed")
            .unwrap();
        let err = st
            .check_subject(
                "sha256:7c6fd6a4115c6e998ff357cd914680931bb9a6c1a7cd5f5cb2f5e1c0932ab6ed",
            )
            .unwrap_err();
        assert!(err.to_string().contains("does not name the image"), "{err}");
        // A prefix of the digest is not the digest.
        assert!(st.check_subject("sha256:6c6fd6a4").is_err());
        assert!(st.check_subject("").is_err());
        assert_eq!(env.raw_signatures().unwrap().len(), 1);
    }

    #[test]
    fn malformed_predicate_type_is_kept_verbatim() {
        let env = Envelope::parse(&std::fs::read(MALFORMED).unwrap()).unwrap();
        let st = Statement::parse(&env.payload_type, &env.payload_bytes().unwrap()).unwrap();
        assert_eq!(st.predicate_type, "cosign.sigstore.dev/attestation/v1");
    }

    #[test]
    fn hostile_envelopes_are_refused() {
        assert!(matches!(
            Envelope::parse(br#"{"payloadType":"x","payload":"","signatures":[]}"#),
            Err(DsseError::NoSignatures)
        ));
        assert!(Envelope::parse(b"not json").is_err());
        let wrong_type = Statement::parse("text/plain", br#"{}"#).unwrap_err();
        assert!(matches!(wrong_type, DsseError::PayloadType(_)));
        let not_statement = Statement::parse(
            IN_TOTO_PAYLOAD_TYPE,
            br#"{"_type":"https://example.com/x","subject":[],"predicateType":"p"}"#,
        )
        .unwrap_err();
        assert!(matches!(not_statement, DsseError::NotStatement(_)));
    }
}
