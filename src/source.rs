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
    /// The registry answered with a status that is an answer, not a passing failure: a 401
    /// after a fresh token (or a refusal from the token endpoint), a 403, a 405, a 404 where
    /// absence is not itself an answer.
    #[error("{what}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    /// The credentials for the registry could not be read.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialError),
}

impl SourceError {
    /// True for a refusal of the credentials tried: a 401 or 403 (from the registry or its
    /// token endpoint).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            SourceError::Refused {
                status: 401 | 403,
                ..
            }
        )
    }
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

/// An [`ImageSource`] that can also stream layer blobs, which is what the unpacker consumes on
/// its worker threads.
pub trait BlobSource: ImageSource {
    /// Opens a blob as a blocking reader of its raw bytes (digest unchecked: the unpacker checks
    /// it while it streams), with memory bounded however large the blob.
    fn blob_reader(
        &self,
        desc: &Descriptor,
    ) -> impl Future<Output = Result<Box<dyn std::io::Read + Send>, SourceError>> + Send;
}

/// An image source held in memory, for unit tests of the stages that read images.
#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Manifests by tag and digest, blobs by digest; nothing is checked on the way in, so a test
    /// can plant a blob that does not match its digest.
    #[derive(Default)]
    pub(crate) struct MemorySource {
        manifests: Mutex<HashMap<String, FetchedManifest>>,
        blobs: Mutex<HashMap<String, Vec<u8>>>,
    }

    impl MemorySource {
        /// Adds a manifest under its digest and, when given, a tag.
        pub(crate) fn manifest(&self, tag: Option<&str>, bytes: &[u8]) -> String {
            let digest = crate::registry::sha256_digest(bytes);
            let m = FetchedManifest {
                bytes: bytes.to_vec(),
                media_type: crate::registry::media_type_of(bytes),
                digest: digest.clone(),
            };
            let mut all = self.manifests.lock().unwrap();
            if let Some(t) = tag {
                all.insert(format!("tag:{t}"), m.clone());
            }
            all.insert(digest.clone(), m);
            digest
        }

        /// Adds a blob under its digest.
        pub(crate) fn blob(&self, bytes: &[u8]) -> String {
            let digest = crate::registry::sha256_digest(bytes);
            self.blob_as(&digest, bytes);
            digest
        }

        /// Serves `bytes` as the blob `digest`, whatever they hash to.
        pub(crate) fn blob_as(&self, digest: &str, bytes: &[u8]) {
            self.blobs
                .lock()
                .unwrap()
                .insert(digest.to_string(), bytes.to_vec());
        }

        fn get_blob(&self, digest: &str) -> Result<Vec<u8>, SourceError> {
            self.blobs
                .lock()
                .unwrap()
                .get(digest)
                .cloned()
                .ok_or_else(|| SourceError::Registry {
                    what: format!("blob {digest}"),
                    message: "not found".into(),
                })
        }
    }

    impl ImageSource for MemorySource {
        async fn fetch_manifest(
            &self,
            r: &ManifestRef,
        ) -> Result<Option<FetchedManifest>, SourceError> {
            let key = match r {
                ManifestRef::Tag(t) => format!("tag:{t}"),
                ManifestRef::Digest(d) => d.clone(),
            };
            Ok(self.manifests.lock().unwrap().get(&key).cloned())
        }

        async fn fetch_blob(&self, digest: &str, max_size: u64) -> Result<Vec<u8>, SourceError> {
            let bytes = self.get_blob(digest)?;
            if bytes.len() as u64 > max_size {
                return Err(SourceError::TooLarge {
                    what: format!("blob {digest}"),
                    limit: max_size,
                });
            }
            let actual = crate::registry::sha256_digest(&bytes);
            if actual != digest {
                return Err(SourceError::DigestMismatch {
                    what: format!("blob {digest}"),
                    expected: digest.into(),
                    actual,
                });
            }
            Ok(bytes)
        }

        async fn referrers(&self, _digest: &str) -> Result<Vec<Descriptor>, SourceError> {
            Ok(Vec::new())
        }
    }

    impl BlobSource for MemorySource {
        async fn blob_reader(
            &self,
            desc: &Descriptor,
        ) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
            Ok(Box::new(std::io::Cursor::new(self.get_blob(&desc.digest)?)))
        }
    }
}
