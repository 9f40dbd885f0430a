//! cosign-compatible key files: writing a new encrypted key pair (`cosign.key` labelled
//! `ENCRYPTED SIGSTORE PRIVATE KEY`, `cosign.pub`) and loading private keys of either cosign
//! label. It never prompts (the command layer gets the password) and never overwrites an
//! existing key file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::sign::{SignError, SigningKey};

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("{path}: already exists; remove it or choose another --output-key-prefix")]
    Exists { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    // The key error is shown after the path, once: it is not a `#[source]`, so an error chain
    // does not print it a second time.
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: SignError },
    #[error("wrong password for {path} (or not an encrypted cosign key)")]
    WrongPassword { path: PathBuf },
    #[error("key generation failed: {0}")]
    Generate(#[source] SignError),
}

/// The files a new key pair was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenKeyPair {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
    /// `sha256:HEX` of the public key's SPKI.
    pub fingerprint: String,
}

/// Generates an ECDSA P-256 key pair and writes `PREFIX.key` (mode 0600, encrypted under
/// `password`) and `PREFIX.pub`. Refuses to replace either file.
pub fn write_key_pair(prefix: &Path, password: &[u8]) -> Result<WrittenKeyPair, KeygenError> {
    let private_key = with_suffix(prefix, "key");
    let public_key = with_suffix(prefix, "pub");
    for path in [&private_key, &public_key] {
        if path.symlink_metadata().is_ok() {
            return Err(KeygenError::Exists { path: path.clone() });
        }
    }
    let key = SigningKey::generate().map_err(KeygenError::Generate)?;
    let private_pem = key
        .to_encrypted_pem(password)
        .map_err(KeygenError::Generate)?;
    let public_pem = key.public_key_pem().map_err(KeygenError::Generate)?;
    write_new(&private_key, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_key, public_pem.as_bytes(), 0o644) {
        // Half a key pair is worse than none.
        let _ = std::fs::remove_file(&private_key);
        return Err(e);
    }
    Ok(WrittenKeyPair {
        private_key,
        public_key,
        fingerprint: key.public_key().fingerprint(),
    })
}

/// Loads an encrypted cosign private key file (either cosign label).
pub fn load_private_key(path: &Path, password: &[u8]) -> Result<SigningKey, KeygenError> {
    let pem = Zeroizing::new(std::fs::read(path).map_err(|source| KeygenError::Io {
        path: path.into(),
        source,
    })?);
    SigningKey::from_encrypted_pem(&pem, password).map_err(|e| match e {
        SignError::WrongPassword => KeygenError::WrongPassword { path: path.into() },
        reason => KeygenError::Key {
            path: path.into(),
            reason,
        },
    })
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), KeygenError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| KeygenError::Io {
        path: path.into(),
        source,
    };
    // create_new: an existing file (or a symlink planted in between) is never followed or replaced.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_pair_round_trips_with_cosign_labels() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("cosign");
        let w = write_key_pair(&prefix, b"s3cret").unwrap();
        let text = std::fs::read_to_string(&w.private_key).unwrap();
        assert!(
            text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&w.private_key)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let public = std::fs::read(&w.public_key).unwrap();
        assert!(String::from_utf8_lossy(&public).contains("BEGIN PUBLIC KEY"));
        let k = load_private_key(&w.private_key, b"s3cret").unwrap();
        let pk = crate::trust::PublicKey::from_pem(&public).unwrap();
        assert_eq!(k.public_key().fingerprint(), pk.fingerprint());
        assert_eq!(w.fingerprint, pk.fingerprint());
        let sig = k.sign(b"msg").unwrap();
        pk.verify(b"msg", &sig).unwrap();
        let e = load_private_key(&w.private_key, b"wrong").unwrap_err();
        assert!(matches!(e, KeygenError::WrongPassword { .. }), "{e:?}");
        // Said once, whole, and without the decoder's "Unsupported key type".
        let shown = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(
            shown,
            format!(
                "wrong password for {} (or not an encrypted cosign key)",
                w.private_key.display()
            )
        );
    }

    #[test]
    fn never_overwrites_an_existing_key() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("k");
        std::fs::write(dir.path().join("k.pub"), b"keep me").unwrap();
        assert!(matches!(
            write_key_pair(&prefix, b""),
            Err(KeygenError::Exists { .. })
        ));
        assert_eq!(std::fs::read(dir.path().join("k.pub")).unwrap(), b"keep me");
        assert!(!dir.path().join("k.key").exists());
        // A dangling symlink where the key would go is refused too.
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("m.key")).unwrap();
        assert!(matches!(
            write_key_pair(&dir.path().join("m"), b""),
            Err(KeygenError::Exists { .. })
        ));
        assert!(!dir.path().join("elsewhere").exists());
    }
}
