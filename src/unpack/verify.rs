//! The raw-blob side of a layer: parses the expected digest, hashes and counts every compressed byte
//! as it streams past, and refuses a blob longer than its descriptor as soon as it sees one. It never
//! decides that a blob is good before EOF: [`VerifyingReader::finish`] is the only verdict.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::UnpackError;

/// Parses `sha256:<64 lowercase hex>` into raw bytes.
pub(crate) fn parse_digest(d: &str) -> Result<[u8; 32], UnpackError> {
    let bad = || UnpackError::BadDigest(d.to_string());
    let hex_part = d.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// Wraps the blob: hashes and counts bytes, fails a read that goes past `expected_size`.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    expected_size: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R, expected_size: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            expected_size,
        }
    }

    /// Reads the rest of the blob (the digest covers all of it), then checks size and digest.
    pub(crate) fn finish(mut self, digest: &str, expected: &[u8; 32]) -> Result<(), UnpackError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(self.size_error(digest).unwrap_or(UnpackError::Truncated {
                        digest: digest.to_string(),
                        expected: self.expected_size,
                        received: self.count,
                        cause: Some(e.to_string()),
                    }))
                }
            }
        }
        if self.count < self.expected_size {
            return Err(UnpackError::Truncated {
                digest: digest.to_string(),
                expected: self.expected_size,
                received: self.count,
                cause: None,
            });
        }
        if self.count != self.expected_size {
            return Err(UnpackError::SizeMismatch {
                digest: digest.to_string(),
                expected: self.expected_size,
                actual: self.count.to_string(),
            });
        }
        let actual: [u8; 32] = self.hasher.finalize().into();
        if &actual != expected {
            return Err(UnpackError::DigestMismatch {
                expected: digest.to_string(),
                actual: format!("sha256:{}", hex::encode(actual)),
            });
        }
        Ok(())
    }

    /// The error to report when a read failed because the blob was too long.
    pub(crate) fn size_error(&self, digest: &str) -> Option<UnpackError> {
        (self.count > self.expected_size).then(|| UnpackError::SizeMismatch {
            digest: digest.to_string(),
            expected: self.expected_size,
            actual: format!("more than {}", self.expected_size),
        })
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count > self.expected_size {
            return Err(io::Error::other("blob is longer than its descriptor size"));
        }
        // Ask for at most one byte past the expected size: enough to detect an over-long blob
        // without hashing an attacker's endless stream.
        let room = (self.expected_size - self.count).saturating_add(1);
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.count += n as u64;
        if self.count > self.expected_size {
            return Err(io::Error::other("blob is longer than its descriptor size"));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    #[test]
    fn digest_parsing_is_strict() {
        let good = digest_of(b"x");
        assert!(parse_digest(&good).is_ok());
        for bad in [
            "sha512:00",
            "sha256:abc",
            &good.to_uppercase(),
            &good.replace("sha256:", "sha256:zz")[..73],
        ] {
            assert!(parse_digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_blob_passes_and_tampered_or_resized_fail() {
        let data = b"hello layer".to_vec();
        let d = digest_of(&data);
        let exp = parse_digest(&d).unwrap();
        VerifyingReader::new(&data[..], data.len() as u64)
            .finish(&d, &exp)
            .unwrap();

        let mut tampered = data.clone();
        tampered[0] ^= 1;
        let e = VerifyingReader::new(&tampered[..], data.len() as u64)
            .finish(&d, &exp)
            .unwrap_err();
        assert!(matches!(e, UnpackError::DigestMismatch { .. }), "{e}");

        // Cut short: a transfer failure (retried, exit 5), not tampering.
        let e = VerifyingReader::new(&data[..5], data.len() as u64)
            .finish(&d, &exp)
            .unwrap_err();
        assert!(
            matches!(e, UnpackError::Truncated { received: 5, .. }),
            "{e}"
        );

        let mut longer = data.clone();
        longer.push(0);
        let e = VerifyingReader::new(&longer[..], data.len() as u64)
            .finish(&d, &exp)
            .unwrap_err();
        assert!(matches!(e, UnpackError::SizeMismatch { .. }), "{e}");
    }

    #[test]
    fn endless_blob_stops_one_byte_past_size() {
        let mut r = VerifyingReader::new(io::repeat(7), 10);
        let mut buf = [0u8; 100];
        // The first read may take one byte too many and must then fail, never pass it on.
        assert!(r.read(&mut buf).is_err());
        assert!(r.read(&mut buf).is_err());
        assert_eq!(r.count, 11);
    }
}
