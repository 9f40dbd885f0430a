//! The decision log, `$GANTRY_HOME/decisions.jsonl`: one JSON record per install or update
//! attempt with every hook's verdict and the source of every message, each record chained to the
//! previous one by the sha256 of its line. It owns appending (O_APPEND, fsync, under an exclusive
//! lock) and reading with chain verification. It never rewrites or truncates the log: a broken
//! chain is reported, not repaired.

use crate::policy::hook::{HookPoint, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `prev` of the first record.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionOutcome {
    /// Installed (or updated) and made current.
    Installed,
    /// A hook denied in enforce mode; nothing changed.
    Denied,
    /// Stopped by an error (verification, registry, I/O) before or after the hooks.
    Failed,
}

/// One hook's verdict within a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDecision {
    pub hook: HookPoint,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// RFC 3339, UTC.
    pub time: String,
    /// The package name (the wrapper's name).
    pub package: String,
    /// The reference as the user gave it, normalised.
    pub reference: String,
    /// The manifest digest, when resolution got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub outcome: DecisionOutcome,
    /// What was attempted when it was not a plain install: `update`, `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The registry's mode when the verdicts were taken (`enforce` or `warn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Each hook that ran, in pipeline order.
    pub hooks: Vec<HookDecision>,
    /// Why the attempt failed, for `Failed` (and the denial summary for `Denied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `sha256:HEX` of the previous line's bytes; [`GENESIS`] for the first. Set by [`append`].
    #[serde(default)]
    pub prev: String,
}

impl DecisionRecord {
    /// A record stamped with the current time; `prev` is filled in by [`append`].
    pub fn new(
        package: &str,
        reference: &str,
        digest: Option<&str>,
        outcome: DecisionOutcome,
    ) -> Self {
        DecisionRecord {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            package: package.to_string(),
            reference: reference.to_string(),
            digest: digest.map(str::to_string),
            outcome,
            action: None,
            mode: None,
            hooks: Vec::new(),
            error: None,
            prev: String::new(),
        }
    }
}

/// A link of the chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// 1-based line number of the record whose `prev` (or JSON) is wrong.
    pub line: usize,
    pub reason: String,
}

/// Errors reading the log.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("cannot read decision log {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("decision log {} is broken at line {}: {}", path.display(), link.line, link.reason)]
    Broken { path: PathBuf, link: BrokenLink },
}

/// `sha256:HEX` of one line (without its newline).
pub fn line_hash(line: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(line)))
}

/// Appends `record` with `prev` set to the hash of the current last line. Holds an exclusive
/// lock on the file while it reads the last line and writes, so two processes cannot both chain
/// to the same predecessor; opens with O_APPEND and fsyncs before returning.
pub fn append(path: &Path, mut record: DecisionRecord) -> Result<String, io::Error> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let _lock = FileLock::exclusive(&file)?;
    record.prev = match last_line(&mut file)? {
        Some(line) => line_hash(&line),
        None => GENESIS.to_string(),
    };
    let line = serde_json::to_string(&record).map_err(io::Error::other)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()?;
    Ok(line)
}

/// [`append`], then the record is sent to the system's syslog collector when one is configured
/// (`[decision_log] syslog`); a collector that is down keeps it in `outbox` for the next time,
/// and never fails or blocks the caller beyond the send timeout.
pub fn append_and_forward(
    path: &Path,
    outbox: &Path,
    syslog: Option<&str>,
    record: DecisionRecord,
) -> Result<(), io::Error> {
    let outcome = serde_json::to_value(record.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let time = record.time.clone();
    let line = append(path, record)?;
    if let Some(collector) = syslog.and_then(|u| crate::syslog::Collector::parse(u).ok()) {
        let msg = crate::syslog::message(&line, &outcome, &time);
        let _ = crate::syslog::Forwarder::new(collector, outbox).send(&msg);
    }
    Ok(())
}

/// Reads every record and verifies the chain; a broken link is an error naming its line.
pub fn read_chain(path: &Path) -> Result<Vec<DecisionRecord>, DecisionError> {
    let (records, broken) = read_lenient(path)?;
    match broken {
        Some(link) => Err(DecisionError::Broken {
            path: path.to_path_buf(),
            link,
        }),
        None => Ok(records),
    }
}

/// Reads every record that parses and reports the first broken link, if any (for `explain`,
/// which shows what it can and says where the chain breaks). A missing file is an empty log.
pub fn read_lenient(
    path: &Path,
) -> Result<(Vec<DecisionRecord>, Option<BrokenLink>), DecisionError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(source) => {
            return Err(DecisionError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut records = Vec::new();
    let mut broken = None;
    let mut expected = GENESIS.to_string();
    let body = text.strip_suffix(b"\n").unwrap_or(&text);
    if body.is_empty() {
        return Ok((records, None));
    }
    if !text.ends_with(b"\n") {
        broken = Some(BrokenLink {
            line: body.split(|b| *b == b'\n').count(),
            reason: "last record is cut short (no newline)".into(),
        });
    }
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        match serde_json::from_slice::<DecisionRecord>(line) {
            Ok(record) => {
                if record.prev != expected && broken.is_none() {
                    broken = Some(BrokenLink {
                        line: n,
                        reason: format!(
                            "prev is {} but the previous line hashes to {expected}",
                            record.prev
                        ),
                    });
                }
                records.push(record);
            }
            Err(e) => {
                if broken.is_none() {
                    broken = Some(BrokenLink {
                        line: n,
                        reason: format!("not a decision record: {e}"),
                    });
                }
            }
        }
        expected = line_hash(line);
    }
    Ok((records, broken))
}

/// The last non-empty line of the file, read backwards from the end in blocks.
fn last_line(file: &mut File) -> io::Result<Option<Vec<u8>>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut end = len;
    let mut tail: Vec<u8> = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(4096);
        let mut block = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        end = start;
        let trimmed = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(pos) = trimmed.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(trimmed[pos + 1..].to_vec()));
        }
    }
    let trimmed = tail.strip_suffix(b"\n").unwrap_or(&tail);
    Ok((!trimmed.is_empty()).then(|| trimmed.to_vec()))
}

/// An advisory `flock` held until dropped. It keeps the raw descriptor, not a borrow, so the
/// file stays usable; it must be dropped before the file (declare it after).
struct FileLock(std::os::fd::RawFd);

impl FileLock {
    fn exclusive(file: &File) -> io::Result<Self> {
        let fd = file.as_raw_fd();
        // SAFETY: flock on a valid, open descriptor; the guard is dropped before the file closes.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FileLock(fd))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking the descriptor we locked, still open.
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, outcome: DecisionOutcome) -> DecisionRecord {
        let mut r = DecisionRecord::new(
            name,
            &format!("localhost/{name}:1"),
            Some("sha256:ab"),
            outcome,
        );
        let mut v = Verdict::default();
        v.warn("policy p.rego (package p) warn", "careful");
        r.hooks.push(HookDecision {
            hook: HookPoint::Resolve,
            verdict: v,
        });
        r
    }

    #[test]
    fn chain_links_each_record_to_the_previous_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        append(&path, record("jq", DecisionOutcome::Installed)).unwrap();
        append(&path, record("yq", DecisionOutcome::Denied)).unwrap();
        append(&path, record("jq", DecisionOutcome::Installed)).unwrap();
        let records = read_chain(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].prev, GENESIS);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(records[1].prev, line_hash(lines[0].as_bytes()));
        assert_eq!(records[2].prev, line_hash(lines[1].as_bytes()));
        assert_eq!(
            records[0].hooks[0].verdict.warn[0].source,
            "policy p.rego (package p) warn"
        );
    }

    #[test]
    fn an_edited_record_breaks_the_chain_at_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        for name in ["a", "b", "c"] {
            append(&path, record(name, DecisionOutcome::Installed)).unwrap();
        }
        // Hostile: rewrite history so record 2 says "installed" for a different package.
        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("\"package\":\"b\"", "\"package\":\"evil\"", 1);
        std::fs::write(&path, tampered).unwrap();
        let err = read_chain(&path).unwrap_err();
        match err {
            DecisionError::Broken { link, .. } => assert_eq!(link.line, 3, "{link:?}"),
            other => panic!("expected a broken link, got {other}"),
        }
        let (records, broken) = read_lenient(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert!(broken.is_some());
    }

    #[test]
    fn a_deleted_first_record_and_garbage_lines_are_broken_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        for name in ["a", "b"] {
            append(&path, record(name, DecisionOutcome::Installed)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let second = text.lines().nth(1).unwrap();
        std::fs::write(&path, format!("{second}\n")).unwrap();
        assert!(matches!(
            read_chain(&path),
            Err(DecisionError::Broken {
                link: BrokenLink { line: 1, .. },
                ..
            })
        ));
        std::fs::write(&path, format!("{text}not json\n")).unwrap();
        assert!(matches!(
            read_chain(&path),
            Err(DecisionError::Broken {
                link: BrokenLink { line: 3, .. },
                ..
            })
        ));
    }

    #[test]
    fn appending_after_a_long_line_finds_the_true_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let mut big = record("big", DecisionOutcome::Failed);
        big.error = Some("x".repeat(10_000));
        append(&path, big).unwrap();
        append(&path, record("small", DecisionOutcome::Installed)).unwrap();
        assert_eq!(read_chain(&path).unwrap().len(), 2);
        assert!(read_chain(&dir.path().join("missing.jsonl"))
            .unwrap()
            .is_empty());
    }
}
