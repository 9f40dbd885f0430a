//! The tag ledger: an append-only, synced log (`ledger.jsonl` under the home) of every digest each
//! tag was seen to name, and of every move of a tag a user accepted with `gantry update` (who,
//! when, from, to). It decides which digest this home holds a tag to name: the first one seen,
//! then each accepted move. `install` refuses a tag that names anything else. A torn or corrupt
//! line is reported with its line number and never dropped or rewritten.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line: a tag seen naming a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// RFC 3339.
    pub seen: String,
}

/// One line: a move of a tag a user accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    /// Always `accepted`.
    pub event: String,
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub from: String,
    pub to: String,
    /// The user who accepted it (`$USER`).
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// One line: what the registry and its mirrors said a tag names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Always `agreement`.
    pub event: String,
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub required: usize,
    /// `[{source, digest}]`.
    pub sources: Vec<crate::mirrors::SourceAnswer>,
    pub agreed: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// A ledger line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Entry {
    Sighting(Sighting),
    Accepted(Acceptance),
    Agreement(Agreement),
}

impl Entry {
    fn key(&self) -> (&str, &str, &str) {
        match self {
            Entry::Sighting(s) => (&s.registry, &s.repository, &s.tag),
            Entry::Accepted(a) => (&a.registry, &a.repository, &a.tag),
            Entry::Agreement(a) => (&a.registry, &a.repository, &a.tag),
        }
    }
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// The digest this home holds a tag to name, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub digest: String,
    /// When this digest was first seen under the tag.
    pub first_seen: String,
    /// It was accepted as a move (not only the first sighting).
    pub accepted: bool,
}

/// Errors reading or appending the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The ledger file of a home.
pub struct Ledger {
    path: PathBuf,
}

/// Everything the ledger holds, with the lines it could not read.
#[derive(Debug, Default)]
pub struct Contents {
    pub entries: Vec<(usize, Entry)>,
    pub bad: Vec<BadLine>,
}

impl Contents {
    /// The entries about one tag, in order.
    pub fn of<'a>(
        &'a self,
        registry: &'a str,
        repository: &'a str,
        tag: &'a str,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .map(|(_, e)| e)
            .filter(move |e| e.key() == (registry, repository, tag))
    }

    /// The digest the tag is held to name: the first sighting's, then each accepted move's.
    pub fn expected(&self, registry: &str, repository: &str, tag: &str) -> Option<Expected> {
        let mut out: Option<Expected> = None;
        for e in self.of(registry, repository, tag) {
            match e {
                Entry::Sighting(s) if out.is_none() => {
                    out = Some(Expected {
                        digest: s.digest.clone(),
                        first_seen: s.seen.clone(),
                        accepted: false,
                    })
                }
                Entry::Sighting(_) | Entry::Agreement(_) => {}
                Entry::Accepted(a) => {
                    out = Some(Expected {
                        digest: a.to.clone(),
                        first_seen: self
                            .first_seen(registry, repository, tag, &a.to)
                            .unwrap_or_else(|| a.at.clone()),
                        accepted: true,
                    })
                }
            }
        }
        out
    }

    /// When `digest` was first seen under the tag.
    pub fn first_seen(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
        digest: &str,
    ) -> Option<String> {
        self.of(registry, repository, tag).find_map(|e| match e {
            Entry::Sighting(s) if s.digest == digest => Some(s.seen.clone()),
            _ => None,
        })
    }

    /// Sightings of a tag aggregated per digest (`{digest, first_seen, last_seen}`), as the
    /// hook document's `ledger` shows them.
    pub fn sightings(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Vec<crate::facts::LedgerSighting> {
        let mut out: Vec<crate::facts::LedgerSighting> = Vec::new();
        for e in self.of(registry, repository, tag) {
            let Entry::Sighting(s) = e else { continue };
            match out.iter_mut().find(|x| x.digest == s.digest) {
                Some(x) => x.last_seen = s.seen.clone(),
                None => out.push(crate::facts::LedgerSighting {
                    digest: s.digest.clone(),
                    first_seen: s.seen.clone(),
                    last_seen: s.seen.clone(),
                }),
            }
        }
        out
    }
}

impl Ledger {
    /// The ledger at `path` (which need not exist yet).
    pub fn at(path: &Path) -> Ledger {
        Ledger {
            path: path.to_path_buf(),
        }
    }

    /// Reads every line; lines that do not parse are returned with their numbers.
    pub fn read(&self) -> Result<Contents, LedgerError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(source) => {
                return Err(LedgerError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut out = Contents::default();
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        for (i, raw) in lines.iter().enumerate() {
            let line = i.saturating_add(1);
            if raw.is_empty() {
                continue;
            }
            match parse_line(raw) {
                Ok(e) => out.entries.push((line, e)),
                Err(reason) => {
                    let torn = i == last; // no newline after it: a write cut short
                    out.bad.push(BadLine {
                        line,
                        reason: if torn {
                            format!("torn (an interrupted write): {reason}")
                        } else {
                            reason
                        },
                    })
                }
            }
        }
        Ok(out)
    }

    /// Appends one entry and syncs it. A torn last line stays as it is; the new entry starts on a
    /// line of its own.
    pub fn append(&self, entry: &Entry) -> Result<(), LedgerError> {
        self.append_with(entry, true)
    }

    /// [`Ledger::append`] without the sync, for a line that only repeats what the ledger holds
    /// already (a tag seen again naming a digest it was seen naming): lost to a power cut, it
    /// changes no decision.
    pub fn append_repeat(&self, entry: &Entry) -> Result<(), LedgerError> {
        self.append_with(entry, false)
    }

    fn append_with(&self, entry: &Entry, sync: bool) -> Result<(), LedgerError> {
        let io = |source| LedgerError::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let mut line = Vec::new();
        if len > 0 && !ends_with_newline(&self.path, len) {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(entry).unwrap_or_default());
        line.push(b'\n');
        f.write_all(&line).map_err(io)?;
        if sync {
            f.sync_data().map_err(io)?;
        }
        Ok(())
    }
}

fn ends_with_newline(path: &Path, len: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len.saturating_sub(1))).is_ok()
        && f.read_exact(&mut last).is_ok()
        && last[0] == b'\n'
}

fn parse_line(raw: &[u8]) -> Result<Entry, String> {
    let v: serde_json::Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    match v.get("event").and_then(|e| e.as_str()) {
        Some("accepted") => {
            return serde_json::from_value(v)
                .map(Entry::Accepted)
                .map_err(|e| e.to_string())
        }
        Some("agreement") => {
            return serde_json::from_value(v)
                .map(Entry::Agreement)
                .map_err(|e| e.to_string())
        }
        _ => {}
    }
    serde_json::from_value(v)
        .map(Entry::Sighting)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(d: &str, t: &str) -> Entry {
        Entry::Sighting(Sighting {
            registry: "r".into(),
            repository: "x".into(),
            tag: "1".into(),
            digest: d.into(),
            seen: t.into(),
        })
    }

    #[test]
    fn the_first_sighting_then_accepted_moves_decide() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::at(&dir.path().join("ledger.jsonl"));
        assert_eq!(l.read().unwrap().expected("r", "x", "1"), None);
        l.append(&seen("a", "t1")).unwrap();
        l.append(&seen("b", "t2")).unwrap(); // seen, refused: still `a`
        l.append(&seen("a", "t3")).unwrap();
        let c = l.read().unwrap();
        let e = c.expected("r", "x", "1").unwrap();
        assert_eq!((e.digest.as_str(), e.first_seen.as_str()), ("a", "t1"));
        assert_eq!(c.sightings("r", "x", "1").len(), 2);
        assert_eq!(c.sightings("r", "x", "1")[0].last_seen, "t3");
        l.append(&Entry::Accepted(Acceptance {
            event: "accepted".into(),
            registry: "r".into(),
            repository: "x".into(),
            tag: "1".into(),
            from: "a".into(),
            to: "b".into(),
            by: "me".into(),
            at: "t4".into(),
        }))
        .unwrap();
        let e = l.read().unwrap().expected("r", "x", "1").unwrap();
        assert_eq!(
            (e.digest.as_str(), e.first_seen.as_str(), e.accepted),
            ("b", "t2", true)
        );
        assert_eq!(l.read().unwrap().expected("r", "x", "2"), None);
    }

    #[test]
    fn torn_and_corrupt_lines_are_reported_with_their_numbers_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let l = Ledger::at(&path);
        l.append(&seen("a", "t1")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"not json\n{\"torn")
            .unwrap();
        let c = l.read().unwrap();
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.bad.len(), 2);
        assert_eq!(c.bad[0].line, 2);
        assert_eq!(c.bad[1].line, 3);
        assert!(c.bad[1].reason.starts_with("torn"), "{:?}", c.bad);
        // The next append starts a line of its own; the torn one stays for the record.
        l.append(&seen("a", "t2")).unwrap();
        let c = l.read().unwrap();
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.bad.len(), 2);
        assert!(
            !c.bad[1].reason.starts_with("torn"),
            "no longer last: {:?}",
            c.bad
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("{\"torn\n"), "{text}");
    }
}
