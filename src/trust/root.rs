//! The Sigstore trusted root (`trusted_root.json`, media types v0.1 and v0.2): Fulcio CAs, Rekor
//! logs, CT logs and timestamp authorities, each with its validity window (a closed interval; a
//! missing start makes the root malformed). Also obtains the public-good root through TUF and
//! caches it for offline use. This module only parses and looks up; it never decides that a
//! signature is valid, and never falls back to an unverified or built-in root.

use super::der_util::{b64, rfc3339};
use super::keys::PublicKey;
use super::TrustError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A closed validity interval in Unix seconds; no end means still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First trusted second (inclusive).
    pub start: i64,
    /// Last trusted second (inclusive); `None` while still current.
    pub end: Option<i64>,
}

impl TimeRange {
    /// Whether `t` lies inside the interval, both ends included.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && self.end.is_none_or(|e| t <= e)
    }
}

/// A certificate authority (Fulcio) or timestamp authority: its chain, leaf-most first and the
/// root last, and when the root trusts it.
#[derive(Debug, Clone)]
pub struct CertAuthority {
    /// Where the authority lives (for messages).
    pub uri: String,
    /// DER certificates as listed in the root (leaf-most first, self-signed root last).
    pub chain: Vec<Vec<u8>>,
    /// When the trusted root trusts this authority.
    pub valid: TimeRange,
}

/// A transparency log (Rekor or CT): its key, log id and validity.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    /// The log's URL (for messages and the Rekor v2 origin).
    pub base_url: String,
    /// The key the log signs SETs, checkpoints or SCTs with.
    pub key: PublicKey,
    /// The log id (SHA-256 of the key for Rekor v1 and CT; as published for Rekor v2).
    pub log_id: Vec<u8>,
    /// When the trusted root trusts this key.
    pub valid: TimeRange,
}

impl TransparencyLog {
    /// The log's host name, which Rekor v2 uses as its checkpoint origin.
    pub fn host(&self) -> &str {
        let s = self.base_url.split("://").nth(1).unwrap_or(&self.base_url);
        s.split('/').next().unwrap_or(s)
    }
}

/// A parsed Sigstore trusted root.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    /// Fulcio certificate authorities.
    pub fulcio: Vec<CertAuthority>,
    /// Rekor transparency logs (v1 and v2).
    pub rekor: Vec<TransparencyLog>,
    /// Certificate Transparency logs (for SCTs).
    pub ct: Vec<TransparencyLog>,
    /// Whether the root's JSON lists any CT log, usable key or not. Fulcio leaves must then
    /// carry a verifiable SCT; a listed log whose key cannot be used must not turn that off.
    pub lists_ct_logs: bool,
    /// RFC 3161 timestamp authorities.
    pub tsas: Vec<CertAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    timestamp_authorities: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawRange {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

fn range(r: Option<&RawRange>, what: &str) -> Result<TimeRange, TrustError> {
    // The spec makes `start` required: a missing start must not widen trust to "forever".
    let r = r.ok_or_else(|| TrustError::Root(format!("{what} has no validFor")))?;
    let start = r
        .start
        .as_deref()
        .ok_or_else(|| TrustError::Root(format!("{what} validFor has no start")))?;
    let start = rfc3339(start).map_err(|e| TrustError::Root(format!("{what}: {e}")))?;
    let end = match r.end.as_deref() {
        Some(e) => Some(rfc3339(e).map_err(|e| TrustError::Root(format!("{what}: {e}")))?),
        None => None,
    };
    Ok(TimeRange { start, end })
}

fn log(raw: &RawLog, kind: &str) -> Result<Option<TransparencyLog>, TrustError> {
    let what = format!("{kind} {}", raw.base_url);
    let valid = range(raw.public_key.valid_for.as_ref(), &what)?;
    let log_id =
        b64(&raw.log_id.key_id).map_err(|e| TrustError::Root(format!("{what} logId: {e}")))?;
    let Some(bytes) = raw.public_key.raw_bytes.as_deref() else {
        return Ok(None);
    };
    let der = b64(bytes).map_err(|e| TrustError::Root(format!("{what} key: {e}")))?;
    let key = if raw.public_key.key_details.as_deref() == Some("PKCS1_RSA_PKCS1V5") {
        PublicKey::from_pkcs1_rsa_der(&der)
    } else {
        PublicKey::from_spki_der(&der)
    };
    // A key we cannot use can never verify anything, so skipping it only narrows trust.
    Ok(key.ok().map(|key| TransparencyLog {
        base_url: raw.base_url.clone(),
        key,
        log_id,
        valid,
    }))
}

fn ca(raw: &RawCa, kind: &str) -> Result<CertAuthority, TrustError> {
    let what = format!("{kind} {}", raw.uri);
    let valid = range(raw.valid_for.as_ref(), &what)?;
    let chain = raw
        .cert_chain
        .certificates
        .iter()
        .map(|c| {
            b64(&c.raw_bytes).map_err(|e| TrustError::Root(format!("{what} certificate: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(TrustError::Root(format!(
            "{what} has an empty certificate chain"
        )));
    }
    Ok(CertAuthority {
        uri: raw.uri.clone(),
        chain,
        valid,
    })
}

impl TrustRoot {
    /// Parses a `trusted_root.json` document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustError> {
        let raw: RawRoot = serde_json::from_slice(bytes)
            .map_err(|e| TrustError::Root(format!("not a trusted root: {e}")))?;
        if !raw
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(TrustError::Root(format!(
                "unexpected media type {:?}",
                raw.media_type
            )));
        }
        let mut root = TrustRoot {
            fulcio: vec![],
            rekor: vec![],
            ct: vec![],
            lists_ct_logs: !raw.ctlogs.is_empty(),
            tsas: vec![],
        };
        for l in &raw.tlogs {
            root.rekor.extend(log(l, "tlog")?);
        }
        for l in &raw.ctlogs {
            root.ct.extend(log(l, "ctlog")?);
        }
        for c in &raw.certificate_authorities {
            root.fulcio.push(ca(c, "certificate authority")?);
        }
        for c in &raw.timestamp_authorities {
            root.tsas.push(ca(c, "timestamp authority")?);
        }
        Ok(root)
    }

    /// Reads and parses a trusted root file.
    pub fn from_file(path: &Path) -> Result<Self, TrustError> {
        let bytes = std::fs::read(path)
            .map_err(|e| TrustError::io(format!("reading trusted root {}", path.display()), e))?;
        Self::from_json(&bytes).map_err(|e| TrustError::Root(format!("{}: {e}", path.display())))
    }

    /// The Rekor log with this id, if the root knows it.
    pub fn rekor_log(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.rekor.iter().find(|l| l.log_id == log_id)
    }

    /// The cached public-good root file under `cache_dir`.
    pub fn public_good_path(cache_dir: &Path) -> PathBuf {
        cache_dir.join("trusted_root.json")
    }

    /// The Sigstore public-good root. Uses the cached copy under `cache_dir` unless `refresh`
    /// is set or there is none; otherwise fetches it through TUF (the sigstore crate verifies
    /// the TUF metadata from its embedded root) and caches it. No cache and no network is an
    /// error that says how to fix it.
    pub fn public_good(cache_dir: &Path, refresh: bool) -> Result<Self, TrustError> {
        let path = Self::public_good_path(cache_dir);
        if !refresh && path.exists() {
            return Self::from_file(&path);
        }
        std::fs::create_dir_all(cache_dir)
            .map_err(|e| TrustError::io(format!("creating {}", cache_dir.display()), e))?;
        let tuf_dir = cache_dir.join("tuf");
        std::fs::create_dir_all(&tuf_dir)
            .map_err(|e| TrustError::io(format!("creating {}", tuf_dir.display()), e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TrustError::io("starting the TUF client runtime", e))?;
        let fetched = rt.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(60),
                sigstore::trust::sigstore::SigstoreTrustRoot::new(Some(&tuf_dir)),
            )
            .await
        });
        match fetched {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(TrustError::RootUnavailable(format!(
                    "TUF update of the public-good root failed: {e}"
                )))
            }
            Err(_) => {
                return Err(TrustError::RootUnavailable(
                    "TUF update of the public-good root timed out".into(),
                ))
            }
        }
        // The TUF client wrote the verified target into tuf_dir; parse it before publishing it.
        let target = tuf_dir.join("trusted_root.json");
        let bytes = std::fs::read(&target)
            .map_err(|e| TrustError::io(format!("reading {}", target.display()), e))?;
        let root = Self::from_json(&bytes)?;
        let tmp = cache_dir.join("trusted_root.json.tmp");
        std::fs::write(&tmp, &bytes)
            .map_err(|e| TrustError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| TrustError::io(format!("writing {}", path.display()), e))?;
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testdata::CONF;

    fn public_good_copy() -> Vec<u8> {
        std::fs::read(format!(
            "{CONF}/public-good-trusted_root.from-sigstore-python-4.5.1.json"
        ))
        .unwrap()
    }

    #[test]
    fn parses_the_public_good_root() {
        let root = TrustRoot::from_json(&public_good_copy()).unwrap();
        assert_eq!(root.fulcio.len(), 2);
        assert_eq!(root.rekor.len(), 2);
        assert!(!root.ct.is_empty() && !root.tsas.is_empty() && root.lists_ct_logs);
        // A CT log whose key cannot be used is dropped, but the root still demands SCTs.
        let mut j: serde_json::Value = serde_json::from_slice(&public_good_copy()).unwrap();
        for l in j["ctlogs"].as_array_mut().unwrap() {
            l["publicKey"]["rawBytes"] = serde_json::json!("AAAA");
        }
        let broken = TrustRoot::from_json(j.to_string().as_bytes()).unwrap();
        assert!(broken.ct.is_empty() && broken.lists_ct_logs);
        let v1 = hex::decode("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
            .unwrap();
        let log = root.rekor_log(&v1).expect("rekor.sigstore.dev is listed");
        assert_eq!(log.host(), "rekor.sigstore.dev");
        assert!(root.rekor_log(&[0u8; 32]).is_none());
    }

    #[test]
    fn a_log_without_validity_start_makes_the_root_malformed() {
        let bytes = std::fs::read(format!(
            "{CONF}/test/assets/bundle-verify/trust-root-tlog-missing-validity-start_fail/trusted_root.json"
        ))
        .unwrap();
        let err = TrustRoot::from_json(&bytes).unwrap_err().to_string();
        assert!(err.contains("no start"), "{err}");
        assert!(TrustRoot::from_json(b"{\"mediaType\":\"something/else\"}").is_err());
        assert!(TrustRoot::from_json(b"not json").is_err());
    }

    #[test]
    fn validity_is_a_closed_interval() {
        let r = TimeRange {
            start: 10,
            end: Some(20),
        };
        assert!(r.contains(10) && r.contains(20) && r.contains(15));
        assert!(!r.contains(9) && !r.contains(21));
        assert!(TimeRange {
            start: 10,
            end: None
        }
        .contains(i64::MAX));
    }

    #[test]
    fn cached_public_good_root_is_used_offline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(TrustRoot::public_good_path(dir.path()), public_good_copy()).unwrap();
        let root = TrustRoot::public_good(dir.path(), false).unwrap();
        assert_eq!(root.rekor.len(), 2);
    }

    #[test]
    fn no_cache_and_no_network_fails_closed_with_a_fix() {
        // This machine has no route to the Sigstore TUF repository, so the fetch must fail and
        // must say how to fix it; nothing may be cached.
        let dir = tempfile::tempdir().unwrap();
        let err = TrustRoot::public_good(dir.path(), false).unwrap_err();
        assert!(matches!(err, TrustError::RootUnavailable(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("gantry trust refresh") && msg.contains("trusted_root"),
            "{msg}"
        );
        assert!(!TrustRoot::public_good_path(dir.path()).exists());
    }
}
