//! Rekor transparency-log evidence: the signed entry timestamp (SET), the RFC 6962 inclusion
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
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
    log.key.verify(canonical.as_bytes(), set_sig).map_err(|_| {
        TrustError::Tlog(format!(
            "signed entry timestamp does not verify under the key of log {}",
            log.base_url
        ))
    })?;
    Ok(TlogEntry {
        log_index,
        integrated_time,
        log_id: Some(log_id_hex.to_string()),
    })
}

/// The Rekor log with this hex id, valid at `at` (`None` skips the time check, for Rekor v2
/// entries, whose time comes from a timestamp authority instead).
pub fn find_log<'a>(
    root: &'a TrustRoot,
    log_id_hex: &str,
    at: impl Into<Option<i64>>,
) -> Result<&'a TransparencyLog, TrustError> {
    let id = hex::decode(log_id_hex)
        .map_err(|_| TrustError::Tlog(format!("log id {log_id_hex:?} is not hex")))?;
    let log = root.rekor_log(&id).ok_or_else(|| {
        TrustError::Tlog(format!("log id {log_id_hex} is not in the trusted root"))
    })?;
    if let Some(t) = at.into() {
        if !log.valid.contains(t) {
            return Err(TrustError::Tlog(format!(
                "log {} was not trusted at time {t}",
                log.base_url
            )));
        }
    }
    Ok(log)
}

/// An RFC 6962 inclusion proof as carried in a bundle.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// Index of the entry in the tree (not the global log index for sharded logs).
    pub log_index: i64,
    /// Size of the tree the proof is for.
    pub tree_size: i64,
    /// Root hash the proof leads to.
    pub root_hash: Vec<u8>,
    /// Sibling hashes, leaf to root.
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
pub fn root_from_proof(
    body: &[u8],
    index: i64,
    size: i64,
    proof: &[Vec<u8>],
) -> Result<[u8; 32], TrustError> {
    if index < 0 || size <= 0 || index >= size {
        return Err(TrustError::Tlog(format!(
            "inclusion proof index {index} is not inside tree size {size}"
        )));
    }
    let mut leaf = sha2::Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    let mut r: [u8; 32] = leaf.finalize().into();
    // index < size and size > 0 were checked above.
    let (mut f, mut s) = (index as u64, size.saturating_sub(1) as u64);
    for p in proof {
        if p.len() != 32 || s == 0 {
            return Err(TrustError::Tlog(
                "inclusion proof has a malformed or surplus hash".into(),
            ));
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
pub fn verify_inclusion(
    log: &TransparencyLog,
    body: &[u8],
    proof: &InclusionProof,
) -> Result<(), TrustError> {
    let computed = root_from_proof(body, proof.log_index, proof.tree_size, &proof.hashes)?;
    if computed.as_slice() != proof.root_hash.as_slice() {
        return Err(TrustError::Tlog(
            "inclusion proof does not lead to the stated root hash".into(),
        ));
    }
    let note = proof
        .checkpoint
        .as_deref()
        .ok_or_else(|| TrustError::Tlog("inclusion proof has no checkpoint".into()))?;
    let cp = verify_checkpoint(log, note)?;
    if cp.size != proof.tree_size as u64 || cp.root_hash != proof.root_hash {
        return Err(TrustError::Tlog(
            "checkpoint does not match the inclusion proof's tree size and root hash".into(),
        ));
    }
    Ok(())
}

/// A verified checkpoint's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Tree root hash.
    pub root_hash: Vec<u8>,
}

/// Verifies a signed note: its body parses (origin, size, root hash), and one signature line
/// whose key hint is the log's (first four bytes of its id) verifies under the log's key.
/// Cosignatures from witnesses and other lines are allowed and ignored.
pub fn verify_checkpoint(log: &TransparencyLog, note: &str) -> Result<Checkpoint, TrustError> {
    let bad = |m: &str| TrustError::Tlog(format!("checkpoint: {m}"));
    let (body, sigs) = note
        .split_once("\n\n")
        .ok_or_else(|| bad("no signature block"))?;
    let signed = format!("{body}\n");
    let mut lines = body.split('\n');
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad("missing origin"))?;
    let size = lines
        .next()
        .and_then(|s| {
            s.parse::<u64>()
                .ok()
                .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
        })
        .ok_or_else(|| bad("missing or malformed tree size"))?;
    let root_hash = lines
        .next()
        .and_then(|h| b64(h).ok())
        .filter(|h| h.len() == 32)
        .ok_or_else(|| bad("missing or malformed root hash"))?;
    let hint = log.log_id.get(..4).ok_or_else(|| bad("log id too short"))?;
    let mut found = false;
    for line in sigs.lines().filter(|l| !l.is_empty()) {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| bad("malformed signature line"))?;
        let (name, sig) = rest
            .rsplit_once(' ')
            .ok_or_else(|| bad("malformed signature line"))?;
        let Ok(sig) = b64(sig) else { continue };
        let Some((key_hint, sig)) = sig.split_at_checked(4).filter(|(_, s)| !s.is_empty()) else {
            continue;
        };
        if key_hint != hint {
            continue;
        }
        // The log signs under its own name: the origin itself (Rekor v2) or its prefix before
        // the tree id (Rekor v1: "rekor.sigstore.dev - 2605736670972794746").
        if name != origin && !origin.starts_with(&format!("{name} - ")) {
            continue;
        }
        if log.key.verify(signed.as_bytes(), sig).is_ok() {
            found = true;
            break;
        }
    }
    if !found {
        return Err(bad(&format!("no valid signature by log {}", log.base_url)));
    }
    Ok(Checkpoint {
        origin: origin.to_string(),
        size,
        root_hash,
    })
}

pub use super::entry::{pae, verify_entry_matches, EntryExpectation, Verifier};

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::trust::testdata::{public_good, CASES};
    use serde_json::Value;

    fn entry(case: &str) -> Value {
        let b: Value = serde_json::from_slice(
            &std::fs::read(format!("{CASES}/{case}/bundle.sigstore.json")).unwrap(),
        )
        .unwrap();
        b.pointer("/verificationMaterial/tlogEntries/0")
            .unwrap()
            .clone()
    }

    fn field(e: &Value, p: &str) -> String {
        e.pointer(p).unwrap().as_str().unwrap().to_string()
    }

    fn set_args(e: &Value) -> (String, i64, i64, String, Vec<u8>) {
        (
            field(e, "/canonicalizedBody"),
            field(e, "/integratedTime").parse().unwrap(),
            field(e, "/logIndex").parse().unwrap(),
            hex::encode(b64(&field(e, "/logId/keyId")).unwrap()),
            b64(&field(e, "/inclusionPromise/signedEntryTimestamp")).unwrap(),
        )
    }

    fn proof(e: &Value) -> InclusionProof {
        InclusionProof {
            log_index: field(e, "/inclusionProof/logIndex").parse().unwrap(),
            tree_size: field(e, "/inclusionProof/treeSize").parse().unwrap(),
            root_hash: b64(&field(e, "/inclusionProof/rootHash")).unwrap(),
            hashes: e
                .pointer("/inclusionProof/hashes")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|h| b64(h.as_str().unwrap()).unwrap())
                .collect(),
            checkpoint: Some(field(e, "/inclusionProof/checkpoint/envelope")),
        }
    }

    #[test]
    fn set_verifies_and_rejects_tampering() {
        let root = public_good();
        let (body, t, idx, id, set) = set_args(&entry("happy-path-v0.3"));
        let got = verify_set(&root, &body, t, idx, &id, &set).unwrap();
        assert_eq!((got.integrated_time, got.log_index), (t, idx));
        // Shifted integrated time, other index, unknown log, garbage SET: all rejected.
        assert!(verify_set(&root, &body, t + 1, idx, &id, &set).is_err());
        assert!(verify_set(&root, &body, t, idx + 1, &id, &set).is_err());
        assert!(verify_set(&root, &body, t, -1, &id, &set).is_err());
        assert!(verify_set(&root, &body, t, idx, &"00".repeat(32), &set).is_err());
        assert!(verify_set(&root, &body, t, idx, &id, b"garbage").is_err());
        // Before the log's validity start.
        assert!(verify_set(&root, &body, 1_000_000_000, idx, &id, &set).is_err());
    }

    #[test]
    fn inclusion_proof_and_checkpoint_verify_and_reject_tampering() {
        let root = public_good();
        let e = entry("happy-path-v0.3");
        let body = b64(&field(&e, "/canonicalizedBody")).unwrap();
        let log = find_log(
            &root,
            &hex::encode(b64(&field(&e, "/logId/keyId")).unwrap()),
            None,
        )
        .unwrap();
        let p = proof(&e);
        verify_inclusion(log, &body, &p).unwrap();
        let mut bad = p.clone();
        bad.hashes[0][0] ^= 1;
        assert!(verify_inclusion(log, &body, &bad).is_err());
        let mut bad = p.clone();
        bad.root_hash[0] ^= 1;
        assert!(verify_inclusion(log, &body, &bad).is_err());
        let mut bad = p.clone();
        bad.checkpoint = None;
        assert!(verify_inclusion(log, &body, &bad).is_err());
        let mut other_body = body.clone();
        other_body[5] ^= 1;
        assert!(verify_inclusion(log, &other_body, &p).is_err());
        // A checkpoint whose key hint is not the log's, or whose text was altered.
        let e2 = entry("checkpoint-bad-keyhint_fail");
        assert!(
            verify_checkpoint(log, &field(&e2, "/inclusionProof/checkpoint/envelope")).is_err()
        );
        let note = p.checkpoint.clone().unwrap().replacen('\n', "\n1", 1);
        assert!(verify_checkpoint(log, &note).is_err());
    }

    #[test]
    fn rekor_v2_checkpoints_with_cosignatures() {
        let root = TrustRoot::from_file(std::path::Path::new(&format!(
            "{CASES}/rekor2-checkpoint-multiple-cosigs/trusted_root.json"
        )))
        .unwrap();
        let e = entry("rekor2-checkpoint-multiple-cosigs");
        let log = find_log(
            &root,
            &hex::encode(b64(&field(&e, "/logId/keyId")).unwrap()),
            None,
        )
        .unwrap();
        let cp = verify_checkpoint(log, &field(&e, "/inclusionProof/checkpoint/envelope")).unwrap();
        assert_eq!(cp.origin, "log2025-alpha1.rekor.sigstage.dev");
        for bad in [
            "rekor2-checkpoint-missing-origin_fail",
            "rekor2-checkpoint-missing-log-signature_fail",
            "rekor2-checkpoint-no-matching-signature_fail",
        ] {
            assert!(
                verify_checkpoint(
                    log,
                    &field(&entry(bad), "/inclusionProof/checkpoint/envelope")
                )
                .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn merkle_root_of_a_small_tree() {
        // Tree of three leaves: root = H(1 || H(1 || l0 || l1) || l2).
        let leaf = |d: &[u8]| -> [u8; 32] {
            let mut h = sha2::Sha256::new();
            h.update([0u8]);
            h.update(d);
            h.finalize().into()
        };
        let (l0, l1, l2) = (leaf(b"a"), leaf(b"b"), leaf(b"c"));
        let root = node(&node(&l0, &l1), &l2);
        assert_eq!(
            root_from_proof(b"c", 2, 3, &[node(&l0, &l1).to_vec()]).unwrap(),
            root
        );
        assert_eq!(
            root_from_proof(b"a", 0, 3, &[l1.to_vec(), l2.to_vec()]).unwrap(),
            root
        );
        assert!(root_from_proof(b"a", 3, 3, &[]).is_err());
        assert!(root_from_proof(b"a", 0, 3, &[l1.to_vec()]).is_err());
        assert!(root_from_proof(b"a", 0, 3, &[l1.to_vec(), l2.to_vec(), l2.to_vec()]).is_err());
    }
}
