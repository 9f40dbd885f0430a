//! Sigstore trust primitives: public keys, the trusted root, Fulcio certificate chains with SCTs,
//! Rekor entries (SET, inclusion proof, checkpoint, body binding), RFC 3161 timestamps and whole
//! bundles. Every check the sigstore crate leaves open (it was shown to accept garbage SETs,
//! inclusion proofs, shifted times and unknown logs) is done here, and each one has a test that
//! sees it reject tampered input. This module verifies; it never prints, never touches the
//! network except through `TrustRoot::public_good`, and never reports success for anything it
//! could not check.

pub mod bundle;
pub mod cert;
mod der_util;
pub mod entry;
pub mod keys;
pub mod rekor;
pub mod root;
pub mod tsa;

// Cosign image signatures, attestations, signing and key generation, built on the above.
pub mod cosign;
pub mod cosign_bundle;
pub mod discover;
pub mod dsse;
pub mod keygen;
pub mod keyless;
pub mod sign;
pub mod summary;
/// A private offline Sigstore for tests (compiled always so integration tests can use it).
pub mod testca;
#[cfg(test)]
pub(crate) mod testdata;

pub use keys::PublicKey;
pub use root::TrustRoot;

/// Why a trust check failed. Each variant carries the context needed to act on it (which file,
/// which log, which certificate field).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A public key could not be parsed or uses an algorithm we do not accept.
    #[error("public key: {0}")]
    Key(String),
    /// A signature did not verify under the key that should have made it.
    #[error("signature did not verify: {0}")]
    BadSignature(String),
    /// The trusted root is malformed or lacks what verification needs.
    #[error("trusted root: {0}")]
    Root(String),
    /// The public-good trusted root could not be obtained (no cache, no network).
    #[error("no Sigstore trusted root available: {0}; run `gantry trust refresh` with network access, or set `trusted_root` in the registry config")]
    RootUnavailable(String),
    /// A certificate is malformed, does not chain, is outside its validity, or lacks an SCT.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A transparency-log entry failed (SET, inclusion proof, checkpoint, body binding).
    #[error("transparency log: {0}")]
    Tlog(String),
    /// An RFC 3161 timestamp failed.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// The bundle is malformed or inconsistent.
    #[error("bundle: {0}")]
    Bundle(String),
    /// The artifact does not match what was signed.
    #[error("artifact: {0}")]
    Artifact(String),
    /// Verification succeeded cryptographically but the signer is not the one the policy wants.
    #[error("identity: {0}")]
    Identity(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl TrustError {
    /// An I/O error with the path or action that failed.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TrustError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Lower-case hex SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
