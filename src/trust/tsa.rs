//! RFC 3161 signed timestamps: parse the time-stamp response or token (CMS SignedData over a
//! TSTInfo), check that its message imprint is the hash of the signature being timestamped,
//! that it is signed by a timestamp authority of the trusted root, and that the time lies in
//! that authority's validity and its certificates' validity. Certificates embedded in the token
//! are never trusted; only the root's chains are.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]

use super::der_util::{encode, tlv, tlvs, Tlv};
use super::keys::PublicKey;
use super::root::TrustRoot;
use super::TrustError;
use sha2::Digest;
use x509_cert::der::Decode;

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

fn err(m: impl std::fmt::Display) -> TrustError {
    TrustError::Timestamp(m.to_string())
}

fn oid(t: &Tlv<'_>) -> Result<String, TrustError> {
    if t.tag != 0x06 {
        return Err(err("expected an OID"));
    }
    super::der_util::oid_string(t.whole).map_err(err)
}

fn seq<'a>(bytes: &'a [u8], what: &str) -> Result<Vec<Tlv<'a>>, TrustError> {
    let (t, _) = tlv(bytes).map_err(|e| err(format!("{what}: {e}")))?;
    tlvs(t.content).map_err(|e| err(format!("{what}: {e}")))
}

fn hash(alg_oid: &str, data: &[u8]) -> Result<Vec<u8>, TrustError> {
    Ok(match alg_oid {
        "2.16.840.1.101.3.4.2.1" => sha2::Sha256::digest(data).to_vec(),
        "2.16.840.1.101.3.4.2.2" => sha2::Sha384::digest(data).to_vec(),
        "2.16.840.1.101.3.4.2.3" => sha2::Sha512::digest(data).to_vec(),
        other => return Err(err(format!("unsupported hash algorithm {other}"))),
    })
}

/// The signature algorithm to verify with, from the SignerInfo's algorithms (some TSAs put the
/// bare key algorithm there and leave the hash to the digest algorithm).
fn sig_alg(sig_oid: &str, digest_oid: &str) -> String {
    match (sig_oid, digest_oid) {
        ("1.2.840.10045.2.1", "2.16.840.1.101.3.4.2.1") => "1.2.840.10045.4.3.2".into(),
        ("1.2.840.10045.2.1", "2.16.840.1.101.3.4.2.2") => "1.2.840.10045.4.3.3".into(),
        ("1.2.840.113549.1.1.1", "2.16.840.1.101.3.4.2.1") => "1.2.840.113549.1.1.11".into(),
        ("1.2.840.113549.1.1.1", "2.16.840.1.101.3.4.2.2") => "1.2.840.113549.1.1.12".into(),
        (s, _) => s.into(),
    }
}

/// GeneralizedTime `YYYYMMDDHHMMSS[.f*]Z` to Unix seconds (fractions truncated).
fn gen_time(t: &Tlv<'_>) -> Result<i64, TrustError> {
    let s = std::str::from_utf8(t.content).map_err(|_| err("genTime is not ASCII"))?;
    if t.tag != 0x18 || s.len() < 15 || !s.ends_with('Z') {
        return Err(err(format!("malformed genTime {s:?}")));
    }
    let digits = s
        .get(..14)
        .ok_or_else(|| err(format!("malformed genTime {s:?}")))?;
    chrono::NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S")
        .map(|d| d.and_utc().timestamp())
        .map_err(|e| err(format!("malformed genTime {s:?}: {e}")))
}

/// The OID that starts an AlgorithmIdentifier element (an empty one is an error, not a panic).
fn first_oid(alg: &Tlv<'_>, what: &str) -> Result<String, TrustError> {
    let parts = tlvs(alg.content).map_err(err)?;
    oid(parts.first().ok_or_else(|| err(format!("empty {what}")))?)
}

/// What a well-formed timestamp over the right signature attests under a trusted root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attested {
    /// A listed timestamp authority signed it, within its validity: the time in Unix seconds.
    Time(i64),
    /// No timestamp authority listed in the root signed it (say, one newer than the root copy,
    /// or a forged signature). It attests nothing; the caller decides whether that is fatal.
    UnknownAuthority,
}

const UNKNOWN_AUTHORITY: &str = "no timestamp authority in the trusted root signed this timestamp";

/// Verifies an RFC 3161 timestamp (a DER TimeStampResp or a bare token) over `signature` against
/// the root's timestamp authorities; returns the attested time in Unix seconds. A timestamp no
/// listed authority signed is an error here.
pub fn verify_timestamp(
    root: &TrustRoot,
    token: &[u8],
    signature: &[u8],
) -> Result<i64, TrustError> {
    match attest_timestamp(root, token, signature)? {
        Attested::Time(t) => Ok(t),
        Attested::UnknownAuthority => Err(err(UNKNOWN_AUTHORITY)),
    }
}

/// Like [`verify_timestamp`], but tells a timestamp no listed authority signed apart from one
/// that is malformed, not over `signature`, or signed by a listed authority outside its
/// validity (those stay errors).
pub fn attest_timestamp(
    root: &TrustRoot,
    token: &[u8],
    signature: &[u8],
) -> Result<Attested, TrustError> {
    let top = seq(token, "timestamp")?;
    // TimeStampResp = SEQ { PKIStatusInfo SEQ, token }; a ContentInfo starts with an OID.
    let content_info = match top.first() {
        Some(t) if t.tag == 0x30 => {
            let status = tlvs(t.content).map_err(err)?;
            if status.first().map(|s| s.content) != Some(&[0u8][..])
                && status.first().map(|s| s.content) != Some(&[1u8][..])
            {
                return Err(err("timestamp response status is not granted"));
            }
            let ci = top
                .get(1)
                .ok_or_else(|| err("timestamp response has no token"))?;
            tlvs(ci.content).map_err(err)?
        }
        _ => top,
    };
    let [ci_type, ci_content] = content_info.as_slice() else {
        return Err(err("token is not CMS SignedData"));
    };
    if oid(ci_type)? != OID_SIGNED_DATA || ci_content.tag != 0xa0 {
        return Err(err("token is not CMS SignedData"));
    }
    let sd = seq(ci_content.content, "SignedData")?;
    // version, digestAlgorithms, encapContentInfo, [certificates], [crls], signerInfos
    let encap = sd.get(2).ok_or_else(|| err("SignedData has no content"))?;
    let encap = tlvs(encap.content).map_err(err)?;
    let [encap_type, encap_content] = encap.as_slice() else {
        return Err(err("SignedData does not hold a TSTInfo"));
    };
    if oid(encap_type)? != OID_TST_INFO || encap_content.tag != 0xa0 {
        return Err(err("SignedData does not hold a TSTInfo"));
    }
    let (octets, _) = tlv(encap_content.content).map_err(err)?;
    let tst_bytes = octets.content;
    let signer_infos = sd
        .last()
        .filter(|t| t.tag == 0x31)
        .ok_or_else(|| err("no signerInfos"))?;
    let signers = tlvs(signer_infos.content).map_err(err)?;
    let [signer] = signers.as_slice() else {
        return Err(err(format!("expected one signer, found {}", signers.len())));
    };
    let si = tlvs(signer.content).map_err(err)?;
    // version, sid, digestAlgorithm, [0] signedAttrs?, signatureAlgorithm, signature
    let digest_alg = first_oid(
        si.get(2).ok_or_else(|| err("no digestAlgorithm"))?,
        "digestAlgorithm",
    )?;
    let (signed_attrs, rest) = match si.get(3) {
        Some(t) if t.tag == 0xa0 => (Some(t), si.get(4..).unwrap_or(&[])),
        _ => (None, si.get(3..).unwrap_or(&[])),
    };
    let sig_alg_oid = first_oid(
        rest.first().ok_or_else(|| err("no signatureAlgorithm"))?,
        "signatureAlgorithm",
    )?;
    let sig = rest
        .get(1)
        .filter(|t| t.tag == 0x04)
        .ok_or_else(|| err("no signature"))?
        .content;
    let signed_bytes = match signed_attrs {
        Some(attrs) => {
            let want = hash(&digest_alg, tst_bytes)?;
            let mut ok = false;
            for a in tlvs(attrs.content).map_err(err)? {
                let parts = tlvs(a.content).map_err(err)?;
                if let [attr_type, values] = parts.as_slice() {
                    if oid(attr_type)? == OID_MESSAGE_DIGEST {
                        let vals = tlvs(values.content).map_err(err)?;
                        ok = matches!(vals.as_slice(), [v] if v.content == want.as_slice());
                    }
                }
            }
            if !ok {
                return Err(err("signed attributes do not carry the TSTInfo digest"));
            }
            // Signed attributes are signed as a SET, not with their [0] IMPLICIT tag.
            encode(0x31, attrs.content)
        }
        None => tst_bytes.to_vec(),
    };
    // TSTInfo: version, policy, messageImprint, serialNumber, genTime, ...
    let tst = seq(tst_bytes, "TSTInfo")?;
    let imprint = tlvs(tst.get(2).ok_or_else(|| err("no messageImprint"))?.content).map_err(err)?;
    let imprint_alg = first_oid(
        imprint.first().ok_or_else(|| err("bad imprint"))?,
        "messageImprint",
    )?;
    let hashed = imprint
        .get(1)
        .filter(|t| t.tag == 0x04)
        .ok_or_else(|| err("bad imprint"))?
        .content;
    if hash(&imprint_alg, signature)? != hashed {
        return Err(err(
            "timestamp is not over this signature (message imprint differs)",
        ));
    }
    let time = gen_time(tst.get(4).ok_or_else(|| err("no genTime"))?)?;
    let alg = sig_alg(&sig_alg_oid, &digest_alg);
    let mut last = None;
    for tsa in &root.tsas {
        let Some(Ok(leaf)) = tsa
            .chain
            .first()
            .map(|c| x509_cert::Certificate::from_der(c))
        else {
            continue;
        };
        let Ok(key) = PublicKey::from_spki(leaf.tbs_certificate().subject_public_key_info()) else {
            continue;
        };
        if key.verify_with_oid(&alg, &signed_bytes, sig).is_err() {
            continue;
        }
        if !tsa.valid.contains(time) {
            last = Some(err(format!(
                "timestamp {time} is outside the validity of timestamp authority {}",
                tsa.uri
            )));
            continue;
        }
        match chain_valid_at(&tsa.chain, time) {
            Ok(()) => return Ok(Attested::Time(time)),
            Err(e) => last = Some(e),
        }
    }
    // A listed authority that signed it but failed on time is an error, never "unknown".
    match last {
        Some(e) => Err(e),
        None => Ok(Attested::UnknownAuthority),
    }
}

/// Every certificate of a TSA chain is valid at `t` and signed by the next one.
fn chain_valid_at(chain: &[Vec<u8>], t: i64) -> Result<(), TrustError> {
    let certs = chain
        .iter()
        .map(|d| {
            x509_cert::Certificate::from_der(d).map_err(|e| err(format!("TSA certificate: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, c) in certs.iter().enumerate() {
        let v = c.tbs_certificate().validity();
        let (nb, na) = (
            super::der_util::x509_time(&v.not_before),
            super::der_util::x509_time(&v.not_after),
        );
        if t < nb || t > na {
            return Err(err(format!(
                "timestamp {t} is outside TSA certificate {i}'s validity"
            )));
        }
        if let (Some(issuer), Some(der)) =
            (i.checked_add(1).and_then(|n| certs.get(n)), chain.get(i))
        {
            let key = PublicKey::from_spki(issuer.tbs_certificate().subject_public_key_info())?;
            let (outer, _) = tlv(der).map_err(err)?;
            let (tbs, _) = tlv(outer.content).map_err(err)?;
            key.verify_with_oid(
                &c.signature_algorithm().oid.to_string(),
                tbs.whole,
                c.signature().raw_bytes(),
            )
            .map_err(|_| err(format!("TSA certificate {i} is not signed by the next one")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::trust::der_util::b64;
    use crate::trust::testdata::CASES;
    use serde_json::Value;

    fn case(name: &str) -> (TrustRoot, Vec<u8>, Vec<u8>) {
        let b: Value = serde_json::from_slice(
            &std::fs::read(format!("{CASES}/{name}/bundle.sigstore.json")).unwrap(),
        )
        .unwrap();
        let root = TrustRoot::from_file(std::path::Path::new(&format!(
            "{CASES}/{name}/trusted_root.json"
        )))
        .unwrap();
        let ts = b64(b.pointer("/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp").unwrap().as_str().unwrap()).unwrap();
        let sig = b64(b
            .pointer("/messageSignature/signature")
            .unwrap()
            .as_str()
            .unwrap())
        .unwrap();
        (root, ts, sig)
    }

    #[test]
    fn timestamp_verifies_over_its_signature() {
        let (root, ts, sig) = case("rekor2-happy-path");
        let t = verify_timestamp(&root, &ts, &sig).unwrap();
        assert!(t > 1_700_000_000);
        // Another signature, a flipped token byte, or a root without this TSA: rejected.
        let mut other = sig.clone();
        other[8] ^= 1;
        assert!(verify_timestamp(&root, &ts, &other).is_err());
        let mut bad = ts.clone();
        let n = bad.len() - 20;
        bad[n] ^= 1;
        assert!(verify_timestamp(&root, &bad, &sig).is_err());
        let mut no_tsa = root.clone();
        no_tsa.tsas.clear();
        assert!(verify_timestamp(&no_tsa, &ts, &sig).is_err());
        assert!(verify_timestamp(&root, b"\x30\x00", &sig).is_err());
    }

    #[test]
    fn timestamp_outside_tsa_validity_is_rejected() {
        for name in [
            "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
            "rekor2-timestamp-outside-tsa-cert-validity_fail",
            "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        ] {
            let (root, ts, sig) = case(name);
            assert!(verify_timestamp(&root, &ts, &sig).is_err(), "{name}");
        }
        let (root, ts, sig) = case("trust-root-tsa-validity-end-inclusive");
        verify_timestamp(&root, &ts, &sig).unwrap();
    }

    #[test]
    fn hostile_timestamps_are_errors_not_panics() {
        // A multibyte character straddling byte 14 of genTime, and an empty AlgorithmIdentifier.
        let t = "2024010112000\u{e9}0Z";
        assert!(gen_time(&Tlv {
            tag: 0x18,
            whole: t.as_bytes(),
            content: t.as_bytes()
        })
        .is_err());
        assert!(first_oid(
            &Tlv {
                tag: 0x30,
                whole: b"\x30\x00",
                content: b""
            },
            "digestAlgorithm"
        )
        .is_err());
        // Every byte of a real token replaced by a few telling values, and every truncation.
        let (root, ts, sig) = case("rekor2-happy-path");
        for i in 0..ts.len() {
            for v in [0x00, 0x01, 0x30, 0x80, 0x84, 0xff] {
                let mut bad = ts.clone();
                bad[i] = v;
                let _ = attest_timestamp(&root, &bad, &sig);
            }
            let _ = attest_timestamp(&root, &ts[..i], &sig);
        }
    }
}
