//! The facts the core establishes and hands to hooks: signer identities, transparency-log entries,
//! attestations and staged files. These types *are* the policy input contract of DESIGN.md (field
//! names are public interface: add freely, never rename), serialised into each hook's `input`
//! document and converted into typed WIT records for plugins. They carry no behaviour.

use serde::{Deserialize, Serialize};

/// The platform an image manifest is built for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// The parts of an image config that policies judge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfigFacts {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One earlier sighting of a tag in the local ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSighting {
    pub digest: String,
    /// RFC 3339.
    pub first_seen: String,
    /// RFC 3339.
    pub last_seen: String,
}

/// GitHub Actions workflow facts carried in Fulcio certificate extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubWorkflow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
}

/// Who signed: a keyless (certificate) identity. Empty for key-based signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// OIDC issuer from the Fulcio issuer extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The certificate SAN (email, URI or otherName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubWorkflow>,
}

/// A transparency-log entry that vouches for a signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlogEntry {
    pub log_index: i64,
    /// Unix seconds.
    pub integrated_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
}

/// How a signature was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    Key,
    Keyless,
}

/// Where a signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureSource {
    /// cosign `sha256-HEX.sig` tag.
    CosignTag,
    /// OCI 1.1 referrers API (or its tag fallback).
    Referrers,
    /// A sigstore bundle.
    Bundle,
}

/// One signature found on an image, after cryptographic checking. `verified == false` always
/// comes with an `error` that says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureFact {
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub kind: SignatureKind,
    pub source: SignatureSource,
    /// `sha256:HEX` of the DER SubjectPublicKeyInfo of the verifying key (key-based only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlog: Option<TlogEntry>,
    /// The `critical.identity.docker-reference` the signer wrote into a simple-signing payload
    /// (cosign writes the repository, `host/repo`; some signers add a tag). Informative unless
    /// the registry sets `match_reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_reference: Option<String>,
    /// The manifest digest this signature was found on (and, when verified, signs): the platform
    /// manifest's, or the image index's when `on_index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_digest: Option<String>,
    /// The signature is on the image index the platform manifest was selected from (the index
    /// binds the platform digest), as `cosign sign` makes for a multi-arch tag.
    #[serde(default, skip_serializing_if = "is_false")]
    pub on_index: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An in-toto statement whose DSSE signature verified and whose subject names the image digest.
/// Unverified or unbound attestations are never turned into this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttestationFact {
    pub predicate_type: String,
    pub predicate: serde_json::Value,
    pub signer: SignerFacts,
}

/// The signer of an attestation, in the same shape as a signature's signer fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerFacts {
    pub kind: Option<SignatureKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlog: Option<TlogEntry>,
}

/// The type of a staged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    Symlink,
    Hardlink,
}

/// One entry of the staged rootfs, as the `contents` hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the rootfs, `/`-separated, no leading `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub file_type: FileType,
    /// Permission bits as written (after setuid/setgid/sticky stripping); the *original* mode
    /// from the layer is in `original_mode` so policies can still deny setuid images.
    pub mode: u32,
    #[serde(default)]
    pub original_mode: u32,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}
