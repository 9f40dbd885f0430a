//! A private, offline Sigstore for tests: a Fulcio-like root and intermediate CA, a CT log key
//! and a Rekor key, all generated at run time, with a `trusted_root.json` that names them. It
//! issues 10-minute leaf certificates (SAN, issuer and GitHub workflow extensions, an embedded
//! SCT), and produces keyless cosign signatures and DSSE attestations carrying a real SET over a
//! real Rekor body, so the whole keyless path runs without a network. It is compiled always but
//! used only by tests; nothing user-facing reaches it, and it must never be used to sign anything
//! that leaves a test.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::{DerSignature, SigningKey as EcKey};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::json;
use x509_cert::builder::{profile::BuilderProfile, Builder as _, CertificateBuilder};
use x509_cert::der::asn1::{Ia5String, OctetString, UtcTime, Utf8StringRef};
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

use crate::facts::GithubWorkflow;

use super::dsse::{self, Envelope, EnvelopeSignature};
use super::sign::{
    AttachmentLayer, ANN_BUNDLE, ANN_CERTIFICATE, ANN_CHAIN, ANN_PREDICATE_TYPE, ANN_SIGNATURE,
    SIMPLE_SIGNING_MEDIA_TYPE,
};

const OID_FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_GH_TRIGGER: &str = "1.3.6.1.4.1.57264.1.2";
const OID_GH_SHA: &str = "1.3.6.1.4.1.57264.1.3";
const OID_GH_NAME: &str = "1.3.6.1.4.1.57264.1.4";
const OID_GH_REPOSITORY: &str = "1.3.6.1.4.1.57264.1.5";
const OID_GH_REF: &str = "1.3.6.1.4.1.57264.1.6";
const OID_FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

/// Who a test leaf certificate is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafIdentity {
    /// OIDC issuer (Fulcio issuer extensions).
    pub issuer: String,
    /// SAN URI (workflow identities) or, when it has no `:`, an email SAN.
    pub subject: String,
    pub github: GithubWorkflow,
}

/// A generated test Sigstore instance.
pub struct TestCa {
    root_der: Vec<u8>,
    intermediate_key: EcKey,
    intermediate_der: Vec<u8>,
    ct_key: EcKey,
    rekor_key: EcKey,
    /// Unix time the CAs and keys became valid.
    pub valid_from: i64,
}

fn random_key() -> EcKey {
    loop {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
        if let Ok(k) = EcKey::from_slice(&bytes) {
            return k;
        }
    }
}

fn spki_der(key: &EcKey) -> Vec<u8> {
    key.verifying_key()
        .to_public_key_der()
        .expect("p256 SPKI")
        .as_bytes()
        .to_vec()
}

fn utc(unix: i64) -> Time {
    Time::UtcTime(
        UtcTime::from_unix_duration(Duration::from_secs(unix as u64))
            .expect("time in UTCTime range"),
    )
}

fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

fn ext(id: &str, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid(id),
        critical,
        extn_value: OctetString::new(value).expect("extension fits"),
    }
}

fn der<T: x509_cert::der::Encode>(v: &T) -> Vec<u8> {
    v.to_der().expect("DER encodes")
}

/// PEM text of one DER block.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    super::sha256(data)
}

fn sign(key: &EcKey, msg: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer as _;
    let sig: DerSignature = key.sign(msg);
    sig.as_bytes().to_vec()
}

/// A certificate profile that sets exactly the given names and extensions.
struct Profile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn build_cert(
    profile: Profile,
    serial: u32,
    from: i64,
    to: i64,
    subject_key: &[u8],
    signer: &EcKey,
) -> Vec<u8> {
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_key).expect("SPKI parses");
    let builder = CertificateBuilder::new(
        profile,
        SerialNumber::from(serial),
        Validity::new(utc(from), utc(to)),
        spki,
    )
    .expect("certificate builder");
    der(&builder
        .build::<_, DerSignature>(signer)
        .expect("certificate signs"))
}

fn ca_extensions(path_len: Option<u8>) -> Vec<Extension> {
    vec![
        ext(
            "2.5.29.19",
            true,
            der(&BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            }),
        ),
        ext(
            "2.5.29.15",
            true,
            der(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
        ),
        ext(
            "2.5.29.37",
            false,
            der(&ExtendedKeyUsage(vec![oid(OID_CODE_SIGNING)])),
        ),
    ]
}

impl TestCa {
    /// Generates a new instance whose CAs are valid from a year ago for ten years.
    pub fn new() -> Self {
        let now = chrono::Utc::now().timestamp();
        let valid_from = now - 365 * 86400;
        let (root_key, intermediate_key) = (random_key(), random_key());
        let root_name = Name::from_str("CN=gantry-test-root,O=gantry.test").expect("name");
        let inter_name = Name::from_str("CN=gantry-test-intermediate,O=gantry.test").expect("name");
        let root_der = build_cert(
            Profile {
                subject: root_name.clone(),
                issuer: root_name.clone(),
                extensions: ca_extensions(Some(1)),
            },
            1,
            valid_from,
            now + 10 * 365 * 86400,
            &spki_der(&root_key),
            &root_key,
        );
        let intermediate_der = build_cert(
            Profile {
                subject: inter_name,
                issuer: root_name,
                extensions: ca_extensions(Some(0)),
            },
            2,
            valid_from,
            now + 10 * 365 * 86400,
            &spki_der(&intermediate_key),
            &root_key,
        );
        TestCa {
            root_der,
            intermediate_key,
            intermediate_der,
            ct_key: random_key(),
            rekor_key: random_key(),
            valid_from,
        }
    }

    /// Root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Intermediate then root, PEM, as in cosign's chain annotation.
    pub fn chain_pem(&self) -> String {
        pem("CERTIFICATE", &self.intermediate_der) + &pem("CERTIFICATE", &self.root_der)
    }

    /// The Rekor public key, SPKI DER.
    pub fn rekor_spki(&self) -> Vec<u8> {
        spki_der(&self.rekor_key)
    }

    /// Hex log ID of the Rekor key (SHA-256 of its SPKI).
    pub fn rekor_log_id(&self) -> String {
        hex::encode(sha256(&self.rekor_spki()))
    }

    /// A `trusted_root.json` naming this CA, CT log and Rekor.
    pub fn trusted_root_json(&self) -> String {
        let start = chrono::DateTime::from_timestamp(self.valid_from, 0)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let log = |key: &EcKey, url: &str| {
            let spki = spki_der(key);
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": STANDARD.encode(&spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": start}},
                "logId": {"keyId": STANDARD.encode(sha256(&spki))},
            })
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor_key, "https://rekor.gantry.test")],
            "certificateAuthorities": [{
                "subject": {"organization": "gantry.test", "commonName": "gantry-test-root"},
                "uri": "https://fulcio.gantry.test",
                "certChain": {"certificates": [
                    {"rawBytes": STANDARD.encode(&self.intermediate_der)},
                    {"rawBytes": STANDARD.encode(&self.root_der)},
                ]},
                "validFor": {"start": start},
            }],
            "ctlogs": [log(&self.ct_key, "https://ctfe.gantry.test")],
            "timestampAuthorities": [],
        })
        .to_string()
    }

    /// Issues a leaf for `id` and `subject_key` (SPKI DER), valid 10 minutes from `not_before`,
    /// with an SCT from the test CT log embedded.
    pub fn issue_leaf(&self, id: &LeafIdentity, subject_key: &[u8], not_before: i64) -> Vec<u8> {
        let inter_name = Name::from_str("CN=gantry-test-intermediate,O=gantry.test").expect("name");
        let san = if id.subject.contains(':') {
            GeneralName::UniformResourceIdentifier(Ia5String::new(&id.subject).expect("ASCII URI"))
        } else {
            GeneralName::Rfc822Name(Ia5String::new(&id.subject).expect("ASCII email"))
        };
        let mut exts = vec![
            ext(
                "2.5.29.15",
                true,
                der(&KeyUsage(KeyUsages::DigitalSignature.into())),
            ),
            ext(
                "2.5.29.37",
                false,
                der(&ExtendedKeyUsage(vec![oid(OID_CODE_SIGNING)])),
            ),
            // The subject is empty, so the SAN is critical (RFC 5280 4.2.1.6), as Fulcio writes it.
            ext("2.5.29.17", true, der(&SubjectAltName(vec![san]))),
            ext(OID_FULCIO_ISSUER_V1, false, id.issuer.as_bytes().to_vec()),
            ext(
                OID_FULCIO_ISSUER_V2,
                false,
                der(&Utf8StringRef::new(&id.issuer).expect("UTF-8")),
            ),
        ];
        let gh = &id.github;
        for (o, v) in [
            (OID_GH_TRIGGER, &gh.workflow_trigger),
            (OID_GH_SHA, &gh.workflow_sha),
            (OID_GH_NAME, &gh.workflow_name),
            (OID_GH_REPOSITORY, &gh.workflow_repository),
            (OID_GH_REF, &gh.workflow_ref),
        ] {
            if let Some(v) = v {
                exts.push(ext(o, false, v.as_bytes().to_vec()));
            }
        }
        let serial = u32::from_be_bytes(sha256(subject_key)[..4].try_into().expect("4 bytes")) >> 1;
        let profile = |extensions| Profile {
            subject: Name::default(),
            issuer: inter_name.clone(),
            extensions,
        };
        // The SCT signs the certificate as it is without the SCT extension (the precertificate).
        let pre = build_cert(
            profile(exts.clone()),
            serial,
            not_before,
            not_before + 600,
            subject_key,
            &self.intermediate_key,
        );
        let pre_cert = x509_cert::Certificate::from_der(&pre).expect("own certificate parses");
        let tbs = der(pre_cert.tbs_certificate());
        exts.push(ext(
            OID_SCT_LIST,
            false,
            self.sct_list(&tbs, (not_before + 1) * 1000),
        ));
        build_cert(
            profile(exts),
            serial,
            not_before,
            not_before + 600,
            subject_key,
            &self.intermediate_key,
        )
    }

    /// An RFC 6962 SCT list (as the extension value) for a precertificate TBS.
    fn sct_list(&self, precert_tbs: &[u8], timestamp_ms: i64) -> Vec<u8> {
        let ts = (timestamp_ms as u64).to_be_bytes();
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(&ts);
        signed.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
        signed.extend_from_slice(&sha256(&spki_der(&self.intermediate_key)));
        signed.extend_from_slice(&(precert_tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(precert_tbs);
        signed.extend_from_slice(&0u16.to_be_bytes());
        let sig = sign(&self.ct_key, &signed);
        let mut sct = vec![0u8];
        sct.extend_from_slice(&sha256(&spki_der(&self.ct_key)));
        sct.extend_from_slice(&ts);
        sct.extend_from_slice(&0u16.to_be_bytes());
        sct.extend_from_slice(&[4, 3]); // sha256, ecdsa
        sct.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        sct.extend_from_slice(&sig);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
        list.extend_from_slice(&sct);
        der(&OctetString::new(list).expect("SCT list fits"))
    }

    /// The cosign bundle annotation for a Rekor `body` (JSON) logged at `integrated_time`.
    pub fn rekor_bundle(
        &self,
        body: &serde_json::Value,
        integrated_time: i64,
        log_index: i64,
    ) -> String {
        let body_b64 = STANDARD.encode(body.to_string());
        // Canonical JSON of the SET payload: keys sorted, no spaces.
        let canonical = format!(
            "{{\"body\":\"{body_b64}\",\"integratedTime\":{integrated_time},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
            self.rekor_log_id()
        );
        json!({
            "SignedEntryTimestamp": STANDARD.encode(sign(&self.rekor_key, canonical.as_bytes())),
            "Payload": {"body": body_b64, "integratedTime": integrated_time, "logIndex": log_index, "logID": self.rekor_log_id()},
        })
        .to_string()
    }

    /// A keyless cosign `.sig` layer for `digest`, signed at `signed_at` (the leaf is issued a
    /// second before and the Rekor entry integrated at `signed_at`).
    pub fn sign_image_keyless(
        &self,
        id: &LeafIdentity,
        repository: &str,
        digest: &str,
        signed_at: i64,
    ) -> AttachmentLayer {
        self.sign_image_keyless_with(id, repository, digest, signed_at - 1, signed_at)
    }

    /// Like [`TestCa::sign_image_keyless`], with the leaf's start time chosen separately from the
    /// Rekor integrated time (to put the entry outside the certificate's window).
    pub fn sign_image_keyless_with(
        &self,
        id: &LeafIdentity,
        repository: &str,
        digest: &str,
        leaf_not_before: i64,
        signed_at: i64,
    ) -> AttachmentLayer {
        let key = random_key();
        let leaf = self.issue_leaf(id, &spki_der(&key), leaf_not_before);
        let payload =
            super::sign::simple_signing_payload(repository, digest).expect("valid digest");
        let sig = sign(&key, &payload);
        let leaf_pem = pem("CERTIFICATE", &leaf);
        let body = json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha256(&payload))}},
            "signature": {"content": STANDARD.encode(&sig), "publicKey": {"content": STANDARD.encode(&leaf_pem)}},
        }});
        let annotations = BTreeMap::from([
            (ANN_SIGNATURE.to_string(), STANDARD.encode(&sig)),
            (ANN_CERTIFICATE.to_string(), leaf_pem),
            (ANN_CHAIN.to_string(), self.chain_pem()),
            (
                ANN_BUNDLE.to_string(),
                self.rekor_bundle(&body, signed_at, signed_at % 100_000),
            ),
        ]);
        AttachmentLayer {
            payload,
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
            annotations,
        }
    }

    /// A keyless cosign `.att` layer (in-toto Statement v1 in DSSE, Rekor `dsse` entry).
    pub fn attest_keyless(
        &self,
        id: &LeafIdentity,
        repository: &str,
        digest: &str,
        predicate_type: &str,
        predicate: serde_json::Value,
        signed_at: i64,
    ) -> AttachmentLayer {
        let key = random_key();
        let leaf = self.issue_leaf(id, &spki_der(&key), signed_at - 1);
        let hex_digest = digest.strip_prefix("sha256:").expect("sha256 digest");
        let statement = json!({"_type": dsse::STATEMENT_V1, "subject": [{"name": repository, "digest": {"sha256": hex_digest}}],
            "predicateType": predicate_type, "predicate": predicate});
        let body = statement.to_string().into_bytes();
        let sig = sign(&key, &dsse::pae(dsse::IN_TOTO_PAYLOAD_TYPE, &body));
        let envelope = Envelope {
            payload_type: dsse::IN_TOTO_PAYLOAD_TYPE.into(),
            payload: STANDARD.encode(&body),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: STANDARD.encode(&sig),
            }],
        };
        let env_json = envelope.to_json();
        let leaf_pem = pem("CERTIFICATE", &leaf);
        let entry = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha256(&env_json))},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(&body))},
            "signatures": [{"signature": STANDARD.encode(&sig), "verifier": STANDARD.encode(&leaf_pem)}],
        }});
        let annotations = BTreeMap::from([
            (ANN_SIGNATURE.to_string(), String::new()),
            (ANN_PREDICATE_TYPE.to_string(), predicate_type.to_string()),
            (ANN_CERTIFICATE.to_string(), leaf_pem),
            (ANN_CHAIN.to_string(), self.chain_pem()),
            (
                ANN_BUNDLE.to_string(),
                self.rekor_bundle(&entry, signed_at, signed_at % 100_000 + 1),
            ),
        ]);
        AttachmentLayer {
            payload: env_json,
            media_type: dsse::DSSE_LAYER_MEDIA_TYPE.into(),
            annotations,
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{SignatureKind, SignatureSource};
    use crate::trust::cosign::{verify_attestation_layer, verify_signature_layer, TrustConfig};
    use crate::trust::discover::FoundLayer;
    use crate::trust::TrustRoot;

    const D: &str = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a";
    const OTHER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn identity() -> LeafIdentity {
        LeafIdentity {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.0.0"
                .into(),
            github: GithubWorkflow {
                workflow_repository: Some("acme/tool".into()),
                workflow_ref: Some("refs/tags/v1.0.0".into()),
                workflow_trigger: Some("push".into()),
                workflow_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
                workflow_name: Some("release".into()),
            },
        }
    }

    fn cfg(ca: &TestCa) -> TrustConfig {
        let root = TrustRoot::from_json(ca.trusted_root_json().as_bytes()).unwrap();
        TrustConfig {
            trust_root: Some(root),
            ..Default::default()
        }
    }

    fn found(l: &AttachmentLayer) -> FoundLayer {
        FoundLayer {
            source: SignatureSource::CosignTag,
            origin: "t".into(),
            blob: l.payload.clone(),
            annotations: l.annotations.clone(),
        }
    }

    /// An hour ago: the 10-minute leaf has long expired, so success proves the chain was checked
    /// at the Rekor integrated time, not now.
    fn an_hour_ago() -> i64 {
        chrono::Utc::now().timestamp() - 3600
    }

    #[test]
    fn keyless_signature_verifies_at_its_integrated_time_with_identity_facts() {
        let ca = TestCa::new();
        let t = an_hour_ago();
        let l = ca.sign_image_keyless(&identity(), "example.com/acme/tool", D, t);
        let f = verify_signature_layer(&found(&l), D, &cfg(&ca));
        assert!(f.verified, "{f:?}");
        assert_eq!(f.kind, SignatureKind::Keyless);
        assert_eq!(
            f.identity.subject.as_deref(),
            Some(identity().subject.as_str())
        );
        assert_eq!(
            f.identity.issuer.as_deref(),
            Some("https://token.actions.githubusercontent.com")
        );
        let gh = f.identity.github.clone().unwrap();
        assert_eq!(gh.workflow_repository.as_deref(), Some("acme/tool"));
        assert_eq!(gh.workflow_ref.as_deref(), Some("refs/tags/v1.0.0"));
        assert_eq!(f.tlog.unwrap().integrated_time, t);
        // The same signature does not count for another image.
        let g = verify_signature_layer(&found(&l), OTHER, &cfg(&ca));
        assert!(!g.verified && g.error.unwrap().contains("signature is for"));
    }

    #[test]
    fn another_signer_verifies_but_shows_its_own_identity() {
        let ca = TestCa::new();
        let mut id = identity();
        id.subject =
            "https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/main".into();
        id.github.workflow_repository = Some("evil/fork".into());
        let f = verify_signature_layer(
            &found(&ca.sign_image_keyless(&id, "r", D, an_hour_ago())),
            D,
            &cfg(&ca),
        );
        assert!(f.verified);
        assert_eq!(f.identity.subject.as_deref(), Some(id.subject.as_str()));
        assert_eq!(
            f.identity.github.unwrap().workflow_repository.as_deref(),
            Some("evil/fork")
        );
    }

    #[test]
    fn replayed_set_from_another_signature_fails() {
        let ca = TestCa::new();
        let t = an_hour_ago();
        let a = ca.sign_image_keyless(&identity(), "r", D, t);
        let mut b = ca.sign_image_keyless(&identity(), "r", D, t);
        assert!(verify_signature_layer(&found(&b), D, &cfg(&ca)).verified);
        // b's own certificate and signature, with a's (validly signed) Rekor bundle.
        b.annotations
            .insert(ANN_BUNDLE.into(), a.annotations[ANN_BUNDLE].clone());
        let f = verify_signature_layer(&found(&b), D, &cfg(&ca));
        assert!(!f.verified, "{f:?}");
        let e = f.error.unwrap();
        assert!(e.contains("log entry does not match"), "{e}");
    }

    #[test]
    fn entry_outside_the_certificate_window_fails() {
        let ca = TestCa::new();
        let t = an_hour_ago();
        let l = ca.sign_image_keyless_with(&identity(), "r", D, t - 1200, t);
        let f = verify_signature_layer(&found(&l), D, &cfg(&ca));
        assert!(!f.verified, "{f:?}");
    }

    #[test]
    fn tampered_payload_missing_bundle_or_root_fail() {
        let ca = TestCa::new();
        let l = ca.sign_image_keyless(&identity(), "r", D, an_hour_ago());
        let mut bad = l.clone();
        let n = bad.payload.len() - 5;
        bad.payload[n] ^= 1;
        assert!(!verify_signature_layer(&found(&bad), D, &cfg(&ca)).verified);
        let mut no_bundle = l.clone();
        no_bundle.annotations.remove(ANN_BUNDLE);
        let f = verify_signature_layer(&found(&no_bundle), D, &cfg(&ca));
        assert!(!f.verified && f.error.unwrap().contains("no Rekor entry"));
        let f = verify_signature_layer(&found(&l), D, &TrustConfig::default());
        assert!(!f.verified && f.error.unwrap().contains("no Sigstore trusted root"));
        // A different instance's root does not vouch for this CA.
        assert!(!verify_signature_layer(&found(&l), D, &cfg(&TestCa::new())).verified);
        // A tampered SET.
        let mut set = l.clone();
        let mut v: serde_json::Value = serde_json::from_str(&set.annotations[ANN_BUNDLE]).unwrap();
        v["Payload"]["logIndex"] = json!(v["Payload"]["logIndex"].as_i64().unwrap() + 1);
        set.annotations.insert(ANN_BUNDLE.into(), v.to_string());
        assert!(!verify_signature_layer(&found(&set), D, &cfg(&ca)).verified);
    }

    #[test]
    fn keyless_attestation_verifies_and_binds() {
        let ca = TestCa::new();
        let t = an_hour_ago();
        let pred = json!({"runDetails": {"builder": {"id": "https://github.com/actions/runner"}}});
        let l = ca.attest_keyless(
            &identity(),
            "r",
            D,
            "https://slsa.dev/provenance/v1",
            pred.clone(),
            t,
        );
        let fact = verify_attestation_layer(&found(&l), D, &cfg(&ca)).unwrap();
        assert_eq!(fact.predicate, pred);
        assert_eq!(fact.signer.kind, Some(SignatureKind::Keyless));
        assert_eq!(
            fact.signer.identity.subject.as_deref(),
            Some(identity().subject.as_str())
        );
        assert!(verify_attestation_layer(&found(&l), OTHER, &cfg(&ca))
            .unwrap_err()
            .contains("does not name"));
        // A bundle from another attestation does not vouch for this one.
        let other = ca.attest_keyless(
            &identity(),
            "r",
            D,
            "https://slsa.dev/provenance/v1",
            json!({}),
            t,
        );
        let mut replay = l.clone();
        replay
            .annotations
            .insert(ANN_BUNDLE.into(), other.annotations[ANN_BUNDLE].clone());
        assert!(verify_attestation_layer(&found(&replay), D, &cfg(&ca)).is_err());
        // Tampered envelope payload.
        let mut env = Envelope::parse(&l.payload).unwrap();
        let mut body = env.payload_bytes().unwrap();
        let n = body.len() - 3;
        body[n] ^= 1;
        env.payload = STANDARD.encode(&body);
        let mut bad = l.clone();
        bad.payload = env.to_json();
        assert!(verify_attestation_layer(&found(&bad), D, &cfg(&ca)).is_err());
    }
}
