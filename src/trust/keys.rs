//! Public keys for signature verification: ECDSA P-256/P-384, Ed25519 and RSA (PKCS#1 v1.5 and
//! PSS), read from PEM (SPKI or an X.509 certificate) or SPKI DER, verified with aws-lc. This
//! module decides only whether bytes were signed by a key; it never decides whether the key is
//! trusted (that is the root, certificate and policy's job).

use super::der_util::pem_blocks;
use super::TrustError;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";

/// The algorithm family of a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256; signatures use SHA-256.
    EcdsaP256,
    /// ECDSA on P-384; signatures use SHA-384 (SHA-256 accepted for prehashed input).
    EcdsaP384,
    /// Ed25519 (pure, over the message).
    Ed25519,
    /// RSA with PKCS#1 v1.5 or PSS padding, SHA-256.
    Rsa,
    /// RSA restricted to PSS by its SPKI (id-RSASSA-PSS).
    RsaPss,
}

/// A public key that can verify signatures. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    alg: KeyAlgorithm,
    /// The DER SubjectPublicKeyInfo, which is what the fingerprint covers.
    spki: Vec<u8>,
    /// The raw key bytes handed to aws-lc (EC point, Ed25519 key, or the SPKI for RSA).
    raw: Vec<u8>,
}

impl PublicKey {
    /// Reads the first `PUBLIC KEY` (SPKI) or `CERTIFICATE` block of a PEM file.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TrustError> {
        let blocks = pem_blocks(pem)?;
        let block = blocks
            .iter()
            .find(|b| b.label == "PUBLIC KEY" || b.label == "CERTIFICATE")
            .ok_or_else(|| TrustError::Key("no PUBLIC KEY or CERTIFICATE PEM block".into()))?;
        if block.label == "CERTIFICATE" {
            let cert = x509_cert::Certificate::from_der(&block.der)
                .map_err(|e| TrustError::Key(format!("certificate PEM: {e}")))?;
            Self::from_spki(&cert.tbs_certificate().subject_public_key_info().clone())
        } else {
            Self::from_spki_der(&block.der)
        }
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, TrustError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|e| TrustError::Key(format!("not a SubjectPublicKeyInfo: {e}")))?;
        Self::from_spki(&spki)
    }

    /// Reads a bare PKCS#1 `RSAPublicKey` (some trusted roots list CT keys this way).
    pub fn from_pkcs1_rsa_der(der: &[u8]) -> Result<Self, TrustError> {
        use x509_cert::der::asn1::{Any, BitString, ObjectIdentifier};
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap(OID_RSA),
                parameters: Some(Any::null()),
            },
            subject_public_key: BitString::from_bytes(der)
                .map_err(|e| TrustError::Key(format!("PKCS#1 key: {e}")))?,
        };
        Self::from_spki(&spki)
    }

    /// Builds a key from a parsed SPKI (as found in a certificate).
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, TrustError> {
        let der = spki
            .to_der()
            .map_err(|e| TrustError::Key(format!("re-encoding SPKI: {e}")))?;
        let raw = spki.subject_public_key.raw_bytes().to_vec();
        let alg_oid = spki.algorithm.oid.to_string();
        let alg = match alg_oid.as_str() {
            OID_EC => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok())
                    .ok_or_else(|| TrustError::Key("EC key without a named curve".into()))?
                    .to_string();
                match curve.as_str() {
                    OID_P256 => KeyAlgorithm::EcdsaP256,
                    OID_P384 => KeyAlgorithm::EcdsaP384,
                    other => return Err(TrustError::Key(format!("unsupported EC curve {other}"))),
                }
            }
            OID_ED25519 => KeyAlgorithm::Ed25519,
            OID_RSA => KeyAlgorithm::Rsa,
            OID_RSA_PSS => KeyAlgorithm::RsaPss,
            other => {
                return Err(TrustError::Key(format!(
                    "unsupported key algorithm {other}"
                )))
            }
        };
        // aws-lc takes the bit-string contents: the EC point, the Ed25519 key, or the PKCS#1
        // RSAPublicKey.
        Ok(PublicKey {
            alg,
            spki: der,
            raw,
        })
    }

    /// The key's algorithm family.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(super::sha256(&self.spki)))
    }

    /// Verifies `sig` over `msg` with the key's natural hash (SHA-256 for P-256 and RSA,
    /// SHA-384 for P-384, none for Ed25519). RSA keys accept PKCS#1 v1.5 or PSS padding.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), TrustError> {
        let algs: &[&'static dyn VerificationAlgorithm] = match self.alg {
            KeyAlgorithm::EcdsaP256 => &[&sig::ECDSA_P256_SHA256_ASN1],
            KeyAlgorithm::EcdsaP384 => &[&sig::ECDSA_P384_SHA384_ASN1],
            KeyAlgorithm::Ed25519 => &[&sig::ED25519],
            KeyAlgorithm::Rsa => &[
                &sig::RSA_PKCS1_2048_8192_SHA256,
                &sig::RSA_PSS_2048_8192_SHA256,
            ],
            KeyAlgorithm::RsaPss => &[&sig::RSA_PSS_2048_8192_SHA256],
        };
        self.try_algs(algs, msg, sig)
    }

    /// Verifies a signature made with an X.509 signature algorithm (the certificate's
    /// `signatureAlgorithm` OID), as used for certificate chains, CMS and SCTs.
    pub fn verify_with_oid(
        &self,
        sig_alg_oid: &str,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), TrustError> {
        let alg: &'static dyn VerificationAlgorithm = match (self.alg, sig_alg_oid) {
            (KeyAlgorithm::EcdsaP256, "1.2.840.10045.4.3.2") => &sig::ECDSA_P256_SHA256_ASN1,
            (KeyAlgorithm::EcdsaP256, "1.2.840.10045.4.3.3") => &sig::ECDSA_P256_SHA384_ASN1,
            (KeyAlgorithm::EcdsaP384, "1.2.840.10045.4.3.2") => &sig::ECDSA_P384_SHA256_ASN1,
            (KeyAlgorithm::EcdsaP384, "1.2.840.10045.4.3.3") => &sig::ECDSA_P384_SHA384_ASN1,
            (KeyAlgorithm::Ed25519, OID_ED25519) => &sig::ED25519,
            (KeyAlgorithm::Rsa, "1.2.840.113549.1.1.11") => &sig::RSA_PKCS1_2048_8192_SHA256,
            (KeyAlgorithm::Rsa, "1.2.840.113549.1.1.12") => &sig::RSA_PKCS1_2048_8192_SHA384,
            (KeyAlgorithm::Rsa, "1.2.840.113549.1.1.13") => &sig::RSA_PKCS1_2048_8192_SHA512,
            (KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss, OID_RSA_PSS) => {
                &sig::RSA_PSS_2048_8192_SHA256
            }
            (alg, oid) => {
                return Err(TrustError::Key(format!(
                    "signature algorithm {oid} not accepted for a {alg:?} key"
                )))
            }
        };
        self.try_algs(&[alg], msg, sig)
    }

    /// Verifies `sig` over an already computed SHA-256 digest. Ed25519 signs messages, not
    /// digests, so it is refused.
    pub fn verify_prehashed_sha256(&self, digest: &[u8; 32], sig: &[u8]) -> Result<(), TrustError> {
        let algs: &[&'static dyn VerificationAlgorithm] = match self.alg {
            KeyAlgorithm::EcdsaP256 => &[&sig::ECDSA_P256_SHA256_ASN1],
            KeyAlgorithm::EcdsaP384 => &[&sig::ECDSA_P384_SHA256_ASN1],
            KeyAlgorithm::Ed25519 => {
                return Err(TrustError::Key(
                    "Ed25519 cannot verify a prehashed digest".into(),
                ))
            }
            KeyAlgorithm::Rsa => &[
                &sig::RSA_PKCS1_2048_8192_SHA256,
                &sig::RSA_PSS_2048_8192_SHA256,
            ],
            KeyAlgorithm::RsaPss => &[&sig::RSA_PSS_2048_8192_SHA256],
        };
        let d = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
            .map_err(|_| TrustError::Key("bad SHA-256 digest".into()))?;
        for alg in algs {
            if UnparsedPublicKey::new(*alg, &self.raw)
                .verify_digest(&d, sig)
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(TrustError::BadSignature(format!(
            "prehashed signature does not verify under key {}",
            self.fingerprint()
        )))
    }

    fn try_algs(
        &self,
        algs: &[&'static dyn VerificationAlgorithm],
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), TrustError> {
        for alg in algs {
            if UnparsedPublicKey::new(*alg, &self.raw)
                .verify(msg, sig)
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(TrustError::BadSignature(format!(
            "signature does not verify under key {}",
            self.fingerprint()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    const SRS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/sigstore-rs"
    );

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(format!("{SRS}/{rel}")).expect("test material")
    }

    fn sig_b64(rel: &str) -> Vec<u8> {
        crate::trust::der_util::b64(std::str::from_utf8(&read(rel)).unwrap()).unwrap()
    }

    #[test]
    fn ecdsa_p256_cosign_signature_verifies_and_tampering_fails() {
        let dir = "extracted-from-src-cosign-signature_layers.rs/busybox-key-signed";
        let key = PublicKey::from_pem(&read(&format!("{dir}/cosign.pub"))).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
        let payload = read(&format!("{dir}/payload.json"));
        let sig = sig_b64(&format!("{dir}/signature.b64"));
        key.verify(&payload, &sig).unwrap();
        key.verify_prehashed_sha256(&crate::trust::sha256(&payload), &sig)
            .unwrap();
        let mut tampered = payload.clone();
        tampered[10] ^= 1;
        assert!(key.verify(&tampered, &sig).is_err());
        let mut bad_sig = sig.clone();
        let last = bad_sig.len() - 1;
        bad_sig[last] ^= 1;
        assert!(key.verify(&payload, &bad_sig).is_err());
    }

    #[test]
    fn rsa_pkcs1_signature_verifies_and_wrong_key_fails() {
        let dir = "extracted-from-src-crypto-verification_key.rs/suse-sle-micro-toolbox-rsa";
        let key = PublicKey::from_pem(&read(&format!("{dir}/suse-obs.pub"))).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        let payload = read(&format!("{dir}/payload.json"));
        let sig = sig_b64(&format!("{dir}/signature.b64"));
        key.verify(&payload, &sig).unwrap();
        let other = PublicKey::from_pem(&read(
            "extracted-from-src-cosign-signature_layers.rs/busybox-key-signed/cosign.pub",
        ))
        .unwrap();
        assert!(other.verify(&payload, &sig).is_err());
    }

    #[test]
    fn generated_p384_and_ed25519_keys_verify() {
        let rng = SystemRandom::new();
        let p384 =
            EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        let spki = p384.public_key().as_der().unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP384);
        let sig = p384.sign(&rng, b"hello").unwrap();
        key.verify(b"hello", sig.as_ref()).unwrap();
        assert!(key.verify(b"hellO", sig.as_ref()).is_err());

        let ed = Ed25519KeyPair::generate().unwrap();
        let mut spki = hex::decode("302a300506032b6570032100").unwrap();
        spki.extend_from_slice(ed.public_key().as_ref());
        let key = PublicKey::from_spki_der(&spki).unwrap();
        let sig = ed.sign(b"hello");
        key.verify(b"hello", sig.as_ref()).unwrap();
        assert!(key.verify(b"hellO", sig.as_ref()).is_err());
        assert!(key.verify_prehashed_sha256(&[0; 32], sig.as_ref()).is_err());
        assert_eq!(
            key.fingerprint(),
            format!("sha256:{}", hex::encode(crate::trust::sha256(&spki)))
        );
    }

    #[test]
    fn garbage_keys_are_rejected() {
        assert!(PublicKey::from_pem(b"not a pem").is_err());
        assert!(PublicKey::from_spki_der(b"\x30\x03\x02\x01\x01").is_err());
        assert!(PublicKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
    }
}
