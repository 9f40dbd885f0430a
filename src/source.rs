//! Where image content comes from: a registry or an OCI image layout directory. [`ImageSource`]
//! is the narrow read interface the trust module uses to discover signatures and attestations
//! (cosign tags, referrers) without knowing which kind of source it talks to. Every blob it
//! returns has been checked against its digest and a size cap; nothing here judges content.

use std::future::Future;

pub use oci_client::manifest::OciDescriptor as Descriptor;

/// A manifest to look up: by tag (e.g. `sha256-HEX.sig`) or by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    Tag(String),
    Digest(String),
}

/// A manifest as fetched: raw bytes (digest-checked), its media type and digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// `sha256:HEX` of `bytes`.
    pub digest: String,
}

/// Failure to read from a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{what}: {message}")]
    Registry { what: String, message: String },
    #[error("{what}: digest mismatch (expected {expected}, got {actual})")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: larger than the {limit}-byte limit")]
    TooLarge { what: String, limit: u64 },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Read access to the repository an image lives in.
pub trait ImageSource: Sync {
    /// Fetches a manifest of this repository; `Ok(None)` when the tag or digest does not exist.
    fn fetch_manifest(
        &self,
        r: &ManifestRef,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, SourceError>> + Send;

    /// Fetches a whole blob of at most `max_size` bytes and checks it against `digest`.
    fn fetch_blob(
        &self,
        digest: &str,
        max_size: u64,
    ) -> impl Future<Output = Result<Vec<u8>, SourceError>> + Send;

    /// OCI 1.1 referrers of `digest` (with the `sha256-HEX` tag-schema fallback); empty when none.
    fn referrers(
        &self,
        digest: &str,
    ) -> impl Future<Output = Result<Vec<Descriptor>, SourceError>> + Send;
}
