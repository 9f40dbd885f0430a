//! Rekor transparency-log evidence: the signed entry timestamp (SET), the RFC 6962 inclusion
//! proof and its signed checkpoint (Rekor v1 and v2 signed notes, with cosignatures), and the
//! binding of the log entry body to the signature, certificate or key, and artifact being
//! verified, so an entry logged for something else cannot be replayed. This module never
//! accepts an entry from a log the trusted root does not list, or outside the log's validity.

use super::der_util::b64;
use super::root::{TransparencyLog, TrustRoot};
use super::TrustError;
use crate::facts::TlogEntry;
use sha2::Digest;

/// Verifies a SET: the log's signature over the canonical JSON of
/// `{body, integratedTime, logID, logIndex}`, by a Rekor key the root lists under that log id
/// and that was valid at `integrated_time`.
pub fn verify_set(
    root: &TrustRoot,
    body_b64: &str,
    integrated_time: i64,
    log_index: i64,
    log_id_hex: &str,
    set_sig: &[u8],
) -> Result<TlogEntry, TrustError> {
    let log = find_log(root, log_id_hex, integrated_time)?;
    if log_index < 0 {
        return Err(TrustError::Tlog(format!("negative log index {log_index}")));
    }
    // serde_json's map is ordered and the values need no escaping beyond JSON's, so this is
    // the RFC 8785 canonical form Rekor signs.
    let canonical = serde_json::json!({
        "body": body_b64,
        "integratedTime": integrated_time,
        "logID": log_id_hex,
        "logIndex": log_index,
    })
    .to_string();
    log.key
        .verify(canonical.as_bytes(), set_sig)
        .map_err(|_| TrustError::Tlog(format!("signed entry timestamp does not verify under the key of log {}", log.base_url)))?;
    Ok(TlogEntry { log_index, integrated_time, log_id: Some(log_id_hex.to_string()) })
}

/// The Rekor log with this hex id, valid at `at` (`None` skips the time check, for Rekor v2
/// entries, whose time comes from a timestamp authority instead).
pub fn find_log<'a>(root: &'a TrustRoot, log_id_hex: &str, at: impl Into<Option<i64>>) -> Result<&'a TransparencyLog, TrustError> {
    let id = hex::decode(log_id_hex).map_err(|_| TrustError::Tlog(format!("log id {log_id_hex:?} is not hex")))?;
    let log = root
        .rekor_log(&id)
        .ok_or_else(|| TrustError::Tlog(format!("log id {log_id_hex} is not in the trusted root")))?;
    if let Some(t) = at.into() {
        if !log.valid.contains(t) {
            return Err(TrustError::Tlog(format!("log {} was not trusted at time {t}", log.base_url)));
        }
    }
    Ok(log)
}

/// An RFC 6962 inclusion proof as carried in a bundle.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub log_index: i64,
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub hashes: Vec<Vec<u8>>,
    /// The signed-note checkpoint text (required; optional here only so a proof that does not
    /// even lead to its root hash is reported as such).
    pub checkpoint: Option<String>,
}

fn node(l: &[u8], r: &[u8]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Recomputes the Merkle root from the leaf `body` and the proof (RFC 9162 §2.1.3.2).
pub fn root_from_proof(body: &[u8], index: i64, size: i64, proof: &[Vec<u8>]) -> Result<[u8; 32], TrustError> {
    if index < 0 || size <= 0 || index >= size {
        return Err(TrustError::Tlog(format!("inclusion proof index {index} is not inside tree size {size}")));
    }
    let mut leaf = sha2::Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    let mut r: [u8; 32] = leaf.finalize().into();
    let (mut f, mut s) = (index as u64, (size - 1) as u64);
    for p in proof {
        if p.len() != 32 || s == 0 {
            return Err(TrustError::Tlog("inclusion proof has a malformed or surplus hash".into()));
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TrustError::Tlog("inclusion proof is too short".into()));
    }
    Ok(r)
}

/// Verifies that `body` is in the log at the proof's root, and that the root is vouched for by a
/// checkpoint signed by `log`.
pub fn verify_inclusion(log: &TransparencyLog, body: &[u8], proof: &InclusionProof) -> Result<(), TrustError> {
    let computed = root_from_proof(body, proof.log_index, proof.tree_size, &proof.hashes)?;
    if computed.as_slice() != proof.root_hash.as_slice() {
        return Err(TrustError::Tlog("inclusion proof does not lead to the stated root hash".into()));
    }
    let note = proof.checkpoint.as_deref().ok_or_else(|| TrustError::Tlog("inclusion proof has no checkpoint".into()))?;
    let cp = verify_checkpoint(log, note)?;
    if cp.size != proof.tree_size as u64 || cp.root_hash != proof.root_hash {
        return Err(TrustError::Tlog("checkpoint does not match the inclusion proof's tree size and root hash".into()));
    }
    Ok(())
}

/// A verified checkpoint's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root_hash: Vec<u8>,
}

/// Verifies a signed note: its body parses (origin, size, root hash), and one signature line
/// whose key hint is the log's (first four bytes of its id) verifies under the log's key.
/// Cosignatures from witnesses and other lines are allowed and ignored.
pub fn verify_checkpoint(log: &TransparencyLog, note: &str) -> Result<Checkpoint, TrustError> {
    let bad = |m: &str| TrustError::Tlog(format!("checkpoint: {m}"));
    let (body, sigs) = note.split_once("\n\n").ok_or_else(|| bad("no signature block"))?;
    let signed = format!("{body}\n");
    let mut lines = body.split('\n');
    let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("missing origin"))?;
    let size = lines
        .next()
        .and_then(|s| s.parse::<u64>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit())))
        .ok_or_else(|| bad("missing or malformed tree size"))?;
    let root_hash = lines
        .next()
        .and_then(|h| b64(h).ok())
        .filter(|h| h.len() == 32)
        .ok_or_else(|| bad("missing or malformed root hash"))?;
    let hint = log.log_id.get(..4).ok_or_else(|| bad("log id too short"))?;
    let mut found = false;
    for line in sigs.lines().filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| bad("malformed signature line"))?;
        let (name, sig) = rest.rsplit_once(' ').ok_or_else(|| bad("malformed signature line"))?;
        let Ok(sig) = b64(sig) else { continue };
        if sig.len() <= 4 || &sig[..4] != hint {
            continue;
        }
        // The log signs under its own name: the origin itself (Rekor v2) or its prefix before
        // the tree id (Rekor v1: "rekor.sigstore.dev - 2605736670972794746").
        if name != origin && !origin.starts_with(&format!("{name} - ")) {
            continue;
        }
        if log.key.verify(signed.as_bytes(), &sig[4..]).is_ok() {
            found = true;
            break;
        }
    }
    if !found {
        return Err(bad(&format!("no valid signature by log {}", log.base_url)));
    }
    Ok(Checkpoint { origin: origin.to_string(), size, root_hash })
}

pub use super::entry::{pae, verify_entry_matches, EntryExpectation, Verifier};
