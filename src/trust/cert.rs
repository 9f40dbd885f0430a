//! X.509 certificates for keyless signing: chain a Fulcio leaf to a trusted CA *at the signed
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! time* (never at "now": Fulcio leaves live ten minutes), verify its embedded SCT against the
//! root's CT logs (required whenever the root lists any CT log), and read the signer identity (issuer, SAN, GitHub workflow extensions). Also
//! a bring-your-own-PKI variant for custom CA roots. It never trusts a certificate that came
//! with the signature unless it chains to a root from the trusted root or the caller.

use super::der_util::{encode, pem_blocks, tlv, tlvs, x509_time};
use super::keys::PublicKey;
use super::root::{TransparencyLog, TrustRoot};
use super::TrustError;
use crate::facts::{GithubWorkflow, Identity};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
const OID_SAN: &str = "2.5.29.17";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_EKU: &str = "2.5.29.37";
const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
const FULCIO: &str = "1.3.6.1.4.1.57264.1";

/// What a verified leaf certificate establishes.
#[derive(Debug, Clone)]
pub struct CertFacts {
    /// Issuer, SAN and GitHub workflow facts.
    pub identity: Identity,
    /// The leaf's key, which verifies the signature.
    pub public_key: PublicKey,
    /// Leaf validity start, Unix seconds.
    pub not_before: i64,
    /// Leaf validity end, Unix seconds.
    pub not_after: i64,
}

/// A parsed certificate with its original encoding (signatures cover the original TBS bytes).
struct Parsed {
    der: Vec<u8>,
    cert: Certificate,
}

impl Parsed {
    fn new(der: &[u8], what: &str) -> Result<Self, TrustError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| TrustError::Certificate(format!("{what}: not a DER certificate: {e}")))?;
        Ok(Parsed {
            der: der.to_vec(),
            cert,
        })
    }
    fn tbs_raw(&self) -> Result<&[u8], TrustError> {
        let (outer, _) = tlv(&self.der).map_err(TrustError::Certificate)?;
        let (tbs, _) = tlv(outer.content).map_err(TrustError::Certificate)?;
        Ok(tbs.whole)
    }
    fn subject(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
    }
    fn issuer(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .issuer()
            .to_der()
            .unwrap_or_default()
    }
    fn key(&self) -> Result<PublicKey, TrustError> {
        PublicKey::from_spki(self.cert.tbs_certificate().subject_public_key_info())
    }
    fn spki_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap_or_default()
    }
    fn window(&self) -> (i64, i64) {
        let v = self.cert.tbs_certificate().validity();
        (x509_time(&v.not_before), x509_time(&v.not_after))
    }
    fn valid_at(&self, t: i64) -> bool {
        let (nb, na) = self.window();
        nb <= t && t <= na
    }
    fn is_ca(&self) -> bool {
        self.ext(OID_BASIC_CONSTRAINTS)
            .and_then(|v| x509_cert::ext::pkix::BasicConstraints::from_der(v).ok())
            .is_some_and(|bc| bc.ca)
    }
    fn has_code_signing_eku(&self) -> bool {
        self.ext(OID_EKU)
            .and_then(|v| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(v).ok())
            .is_some_and(|eku| eku.0.iter().any(|o| o.to_string() == OID_CODE_SIGNING))
    }
    fn self_signed(&self) -> bool {
        self.subject() == self.issuer() && self.is_signed_by(self).is_ok()
    }
    fn ext(&self, oid: &str) -> Option<&[u8]> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    }
    /// Checks that `issuer` signed this certificate (names and signature).
    fn is_signed_by(&self, issuer: &Parsed) -> Result<(), TrustError> {
        if self.issuer() != issuer.subject() {
            return Err(TrustError::Certificate("issuer name does not match".into()));
        }
        let alg = self.cert.signature_algorithm().oid.to_string();
        let sig = self.cert.signature().raw_bytes();
        issuer.key()?.verify_with_oid(&alg, self.tbs_raw()?, sig)
    }
}

/// Verifies a Fulcio leaf at `at_unix` (the Rekor integrated time or RFC 3161 time): the leaf
/// is valid then, chains through a trusted CA whose root validity covers that time, and carries
/// an SCT from a trusted CT log whenever the root lists CT logs (a root with no CT log keys,
/// such as one built for 2021 Fulcio certificates that predate embedded SCTs, cannot demand
/// one; the public-good root always lists them). `chain_der` is what the bundle shipped after the leaf: only
/// trust-root certificates are used to build the path, and a shipped self-signed root is
/// rejected (a bundle must not carry its own trust anchor).
pub fn verify_leaf_at(
    root: &TrustRoot,
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    at_unix: i64,
) -> Result<CertFacts, TrustError> {
    let leaf = Parsed::new(leaf_der, "leaf certificate")?;
    for (i, c) in chain_der.iter().enumerate() {
        let p = Parsed::new(c, &format!("bundle chain certificate {i}"))?;
        if p.self_signed() {
            return Err(TrustError::Certificate(
                "the bundle's certificate chain includes a root certificate".into(),
            ));
        }
    }
    if leaf.is_ca() {
        return Err(TrustError::Certificate(
            "the signing certificate is a CA certificate".into(),
        ));
    }
    if !leaf.has_code_signing_eku() {
        return Err(TrustError::Certificate(
            "the signing certificate has no codeSigning extended key usage".into(),
        ));
    }
    let (nb, na) = leaf.window();
    if !leaf.valid_at(at_unix) {
        return Err(TrustError::Certificate(format!(
            "signing time {at_unix} is outside the leaf certificate's validity ({nb}..{na})"
        )));
    }
    let mut last_err = TrustError::Certificate(
        "no certificate authority in the trusted root issued this certificate".into(),
    );
    for ca in &root.fulcio {
        if !ca.valid.contains(at_unix) {
            continue;
        }
        let chain = match ca
            .chain
            .iter()
            .enumerate()
            .map(|(i, d)| Parsed::new(d, &format!("{} certificate {i}", ca.uri)))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(c) => c,
            Err(e) => {
                last_err = e;
                continue;
            }
        };
        match check_path(&leaf, &chain, at_unix) {
            Ok(()) => {
                // An SCT is demanded exactly when the root names CT logs (even ones whose keys
                // are unusable); then a missing or unverifiable SCT is fatal.
                if root.lists_ct_logs || !root.ct.is_empty() {
                    let issuer = chain.first().ok_or_else(|| {
                        TrustError::Certificate("no issuer certificate for the SCT".into())
                    })?;
                    verify_sct(root, &leaf, issuer)?;
                }
                return facts(&leaf);
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// Checks leaf → chain[0] → … → chain[last], every certificate valid at `t`, issuers CAs.
fn check_path(leaf: &Parsed, chain: &[Parsed], t: i64) -> Result<(), TrustError> {
    let mut child = leaf;
    for (i, issuer) in chain.iter().enumerate() {
        if !issuer.is_ca() {
            return Err(TrustError::Certificate(format!(
                "chain certificate {i} is not a CA"
            )));
        }
        if !issuer.valid_at(t) {
            return Err(TrustError::Certificate(format!(
                "chain certificate {i} is not valid at {t}"
            )));
        }
        child.is_signed_by(issuer)?;
        child = issuer;
    }
    Ok(())
}

/// Bring-your-own PKI: chain `leaf` through `chain_der` and `intermediates_pem` to one of
/// `roots_pem`, at `at_unix`. No SCT and no Fulcio CA involved.
pub fn verify_leaf_with_roots(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    roots_pem: &[u8],
    intermediates_pem: &[u8],
    at_unix: i64,
) -> Result<CertFacts, TrustError> {
    let leaf = Parsed::new(leaf_der, "leaf certificate")?;
    let certs = |pem: &[u8], what: &str| -> Result<Vec<Parsed>, TrustError> {
        pem_blocks(pem)?
            .into_iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| Parsed::new(&b.der, what))
            .collect()
    };
    let roots = certs(roots_pem, "root certificate")?;
    if roots.is_empty() {
        return Err(TrustError::Certificate("no root certificates given".into()));
    }
    let mut inter = certs(intermediates_pem, "intermediate certificate")?;
    for c in chain_der {
        inter.push(Parsed::new(c, "chain certificate")?);
    }
    if !leaf.valid_at(at_unix) {
        return Err(TrustError::Certificate(format!(
            "leaf certificate is not valid at {at_unix}"
        )));
    }
    let mut cur = &leaf;
    for _ in 0..8 {
        for r in &roots {
            if r.valid_at(at_unix) && cur.is_signed_by(r).is_ok() {
                return facts(&leaf);
            }
        }
        let next = inter.iter().find(|i| {
            i.is_ca()
                && i.valid_at(at_unix)
                && !std::ptr::eq(*i, cur)
                && cur.is_signed_by(i).is_ok()
        });
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    Err(TrustError::Certificate(
        "certificate does not chain to a given root".into(),
    ))
}

/// Verifies that at least one embedded SCT is signed by a trusted CT log valid at its time.
fn verify_sct(root: &TrustRoot, leaf: &Parsed, issuer: &Parsed) -> Result<(), TrustError> {
    let ext = leaf
        .ext(OID_SCT_LIST)
        .ok_or_else(|| TrustError::Certificate("leaf certificate has no embedded SCT".into()))?;
    let (inner, _) = tlv(ext).map_err(|e| TrustError::Certificate(format!("SCT list: {e}")))?;
    let list = inner.content;
    let bad = || TrustError::Certificate("malformed SCT list".into());
    let mut list = list;
    let total = take_u16(&mut list).ok_or_else(bad)?;
    let mut rest = take(&mut list, total).ok_or_else(bad)?;
    let tbs = precert_tbs(leaf)?;
    let issuer_key_hash = super::sha256(&issuer.spki_der());
    let mut last = TrustError::Certificate("no SCT from a trusted CT log".into());
    while !rest.is_empty() {
        let n = take_u16(&mut rest).ok_or_else(bad)?;
        let sct = take(&mut rest, n).ok_or_else(bad)?;
        match check_one_sct(&root.ct, sct, &tbs, &issuer_key_hash) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The next `n` bytes of `b`, advancing it.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = b.split_at_checked(n)?;
    *b = tail;
    Some(head)
}

/// A big-endian u16 length from the front of `b`, advancing it.
fn take_u16(b: &mut &[u8]) -> Option<usize> {
    take(b, 2).map(|x| {
        x.iter()
            .fold(0usize, |acc, &byte| acc << 8 | usize::from(byte))
    })
}

fn check_one_sct(
    logs: &[TransparencyLog],
    sct: &[u8],
    tbs: &[u8],
    issuer_key_hash: &[u8; 32],
) -> Result<(), TrustError> {
    let bad = || TrustError::Certificate("malformed SCT".into());
    let mut rest = sct;
    if take(&mut rest, 1) != Some(&[0u8][..]) {
        return Err(bad());
    }
    let log_id = take(&mut rest, 32).ok_or_else(bad)?;
    let ts = u64::from_be_bytes(
        take(&mut rest, 8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?,
    );
    let ext_len = take_u16(&mut rest).ok_or_else(bad)?;
    let exts = take(&mut rest, ext_len).ok_or_else(bad)?;
    // hash and signature algorithms (2 bytes), then the signature.
    take(&mut rest, 2).ok_or_else(bad)?;
    let sig_len = take_u16(&mut rest).ok_or_else(bad)?;
    let sig = take(&mut rest, sig_len).ok_or_else(bad)?;
    let log = logs.iter().find(|l| l.log_id == log_id).ok_or_else(|| {
        TrustError::Certificate(format!("SCT from unknown CT log {}", hex::encode(log_id)))
    })?;
    if !log.valid.contains((ts / 1000) as i64) {
        return Err(TrustError::Certificate(format!(
            "SCT time is outside CT log {} validity",
            log.base_url
        )));
    }
    // RFC 6962 §3.2 digitally-signed struct for a precertificate entry.
    let mut msg = vec![0u8, 0u8];
    msg.extend_from_slice(&ts.to_be_bytes());
    msg.extend_from_slice(&[0, 1]);
    msg.extend_from_slice(issuer_key_hash);
    let tl = tbs.len();
    msg.extend_from_slice(&[(tl >> 16) as u8, (tl >> 8) as u8, tl as u8]);
    msg.extend_from_slice(tbs);
    msg.extend_from_slice(&(ext_len as u16).to_be_bytes());
    msg.extend_from_slice(exts);
    log.key.verify(&msg, sig).map_err(|_| {
        TrustError::Certificate(format!(
            "SCT signature from CT log {} does not verify",
            log.base_url
        ))
    })
}

/// The leaf's TBS certificate with the SCT-list extension removed, as the CT log signed it.
fn precert_tbs(leaf: &Parsed) -> Result<Vec<u8>, TrustError> {
    let e = |m: String| TrustError::Certificate(format!("rebuilding precertificate: {m}"));
    let (tbs, _) = tlv(leaf.tbs_raw()?).map_err(e)?;
    let mut out = Vec::new();
    for field in tlvs(tbs.content).map_err(e)? {
        if field.tag != 0xa3 {
            out.extend_from_slice(field.whole);
            continue;
        }
        let (seq, _) = tlv(field.content).map_err(e)?;
        let mut kept = Vec::new();
        for ext in tlvs(seq.content).map_err(e)? {
            let (oid, _) = tlv(ext.content).map_err(e)?;
            let is_sct = super::der_util::oid_string(oid.whole).is_ok_and(|o| o == OID_SCT_LIST);
            if !is_sct {
                kept.extend_from_slice(ext.whole);
            }
        }
        out.extend(encode(0xa3, &encode(0x30, &kept)));
    }
    Ok(encode(0x30, &out))
}

/// Reads a Fulcio extension value: `.1.1`–`.1.6` hold raw UTF-8, `.1.8` and later a DER
/// UTF8String.
fn fulcio_ext(p: &Parsed, arc: u32) -> Option<String> {
    let raw = p.ext(&format!("{FULCIO}.{arc}"))?;
    if arc <= 7 {
        return String::from_utf8(raw.to_vec()).ok();
    }
    x509_cert::der::asn1::Utf8StringRef::from_der(raw)
        .ok()
        .map(|s| s.as_str().to_string())
}

fn facts(leaf: &Parsed) -> Result<CertFacts, TrustError> {
    let (not_before, not_after) = leaf.window();
    Ok(CertFacts {
        identity: identity_of(leaf),
        public_key: leaf.key()?,
        not_before,
        not_after,
    })
}

fn identity_of(leaf: &Parsed) -> Identity {
    let issuer = fulcio_ext(leaf, 8).or_else(|| fulcio_ext(leaf, 1));
    let subject = leaf.ext(OID_SAN).and_then(san);
    let gh = GithubWorkflow {
        workflow_trigger: fulcio_ext(leaf, 2).or_else(|| fulcio_ext(leaf, 20)),
        workflow_sha: fulcio_ext(leaf, 3).or_else(|| fulcio_ext(leaf, 13)),
        workflow_name: fulcio_ext(leaf, 4),
        workflow_repository: fulcio_ext(leaf, 5).or_else(|| {
            fulcio_ext(leaf, 12).map(|u| u.trim_start_matches("https://github.com/").to_string())
        }),
        workflow_ref: fulcio_ext(leaf, 6).or_else(|| fulcio_ext(leaf, 14)),
    };
    let github = (gh != GithubWorkflow::default()).then_some(gh);
    Identity {
        issuer,
        subject,
        github,
    }
}

/// The first email, URI or otherName SAN.
fn san(value: &[u8]) -> Option<String> {
    use x509_cert::ext::pkix::name::GeneralName;
    let names = x509_cert::ext::pkix::SubjectAltName::from_der(value).ok()?;
    names.0.iter().find_map(|n| match n {
        GeneralName::Rfc822Name(s) | GeneralName::UniformResourceIdentifier(s) => {
            Some(s.to_string())
        }
        GeneralName::OtherName(o) => o
            .value
            .decode_as::<x509_cert::der::asn1::Utf8StringRef>()
            .ok()
            .map(|s| s.as_str().to_string()),
        _ => None,
    })
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
    use crate::trust::testdata::{public_good, CASES};

    const CI: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/containers-image"
    );

    /// The leaf and integrated time of the happy-path v0.3 bundle.
    fn happy_leaf() -> (Vec<u8>, i64) {
        let b: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!("{CASES}/happy-path-v0.3/bundle.sigstore.json")).unwrap(),
        )
        .unwrap();
        let leaf = b64(b
            .pointer("/verificationMaterial/certificate/rawBytes")
            .unwrap()
            .as_str()
            .unwrap())
        .unwrap();
        let t = b
            .pointer("/verificationMaterial/tlogEntries/0/integratedTime")
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (leaf, t)
    }

    #[test]
    fn fulcio_leaf_verifies_at_signed_time_with_identity() {
        let (leaf, t) = happy_leaf();
        let f = verify_leaf_at(&public_good(), &leaf, &[], t).unwrap();
        assert_eq!(
            f.identity.issuer.as_deref(),
            Some("https://token.actions.githubusercontent.com")
        );
        assert!(f
            .identity
            .subject
            .as_deref()
            .unwrap()
            .ends_with("extremely-dangerous-oidc-beacon.yml@refs/heads/main"));
        let gh = f.identity.github.unwrap();
        assert_eq!(
            gh.workflow_repository.as_deref(),
            Some("sigstore-conformance/extremely-dangerous-public-oidc-beacon")
        );
        assert_eq!(gh.workflow_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(gh.workflow_trigger.as_deref(), Some("workflow_dispatch"));
        assert!(f.not_before <= t && t <= f.not_after);
    }

    #[test]
    fn fulcio_leaf_is_rejected_at_the_wrong_time_or_root() {
        let (leaf, t) = happy_leaf();
        let root = public_good();
        // "now" is long after the ten-minute window.
        assert!(verify_leaf_at(&root, &leaf, &[], chrono::Utc::now().timestamp()).is_err());
        // A root without CT logs demands no SCT, so the chain alone decides.
        let mut no_ct = root.clone();
        no_ct.ct.clear();
        no_ct.lists_ct_logs = false;
        assert!(verify_leaf_at(&no_ct, &leaf, &[], t).is_ok());
        // A root that lists CT logs none of whose keys are usable still demands an SCT.
        no_ct.lists_ct_logs = true;
        let err = verify_leaf_at(&no_ct, &leaf, &[], t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SCT"), "{err}");
        // A root whose only CT log is not the one that signed the SCT still demands one.
        let mut wrong_ct = root.clone();
        for log in &mut wrong_ct.ct {
            log.key = wrong_ct.rekor[0].key.clone();
            log.log_id = wrong_ct.rekor[0].log_id.clone();
        }
        let err = verify_leaf_at(&wrong_ct, &leaf, &[], t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SCT"), "{err}");
        // Without the Fulcio CAs nothing chains.
        let mut no_ca = root.clone();
        no_ca.fulcio.clear();
        assert!(verify_leaf_at(&no_ca, &leaf, &[], t).is_err());
        // A chain that ships its own root is refused.
        let root_der = root.fulcio[1].chain.last().unwrap().clone();
        let err = verify_leaf_at(&root, &leaf, &[root_der], t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("root certificate"), "{err}");
        // A flipped bit in the leaf breaks its signature.
        let mut bad = leaf.clone();
        let n = bad.len() - 10;
        bad[n] ^= 1;
        assert!(verify_leaf_at(&root, &bad, &[], t).is_err());
    }

    fn pem_der(path: &str) -> Vec<Vec<u8>> {
        pem_blocks(&std::fs::read(path).unwrap())
            .unwrap()
            .into_iter()
            .map(|b| b.der)
            .collect()
    }

    #[test]
    fn bring_your_own_pki_rsa_leaf() {
        let leaf = pem_der(&format!("{CI}/pki-cert")).remove(0);
        let roots = std::fs::read(format!("{CI}/pki_root_crts.pem")).unwrap();
        let inter = std::fs::read(format!("{CI}/pki_intermediate_crts.pem")).unwrap();
        let t = 1_800_000_000;
        let f = verify_leaf_with_roots(&leaf, &[], &roots, &inter, t).unwrap();
        assert_eq!(f.identity.subject.as_deref(), Some("qiwan@redhat.com"));
        assert_eq!(
            f.public_key.algorithm(),
            crate::trust::keys::KeyAlgorithm::Rsa
        );
        // Without the intermediate, or with the wrong root, it does not chain.
        assert!(verify_leaf_with_roots(&leaf, &[], &roots, b"", t).is_err());
        let fulcio = std::fs::read(format!("{CI}/fulcio_v1.crt.pem")).unwrap();
        assert!(verify_leaf_with_roots(&leaf, &[], &fulcio, &inter, t).is_err());
        // Before the leaf was issued it is not valid.
        assert!(verify_leaf_with_roots(&leaf, &[], &roots, &inter, 1_000_000_000).is_err());
    }
}
