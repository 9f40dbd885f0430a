//! `gantry doctor`: finds where a home has drifted from what the store writes (wrappers without
//! packages and packages without wrappers, broken `current` links, unfinished version
//! directories, leftovers of killed runs, the wrapper directory missing from `PATH`, a ledger or
//! decision log that does not read) and applies the repairs that cannot lose anything. It works
//! through the store's public API only, and it never changes the ledger, the decision log,
//! `current` or a current version: what it cannot repair safely it names, with what to do.

use crate::policy::decisions;
use crate::store::{CurrentLink, Leftover, Sighting, Store, StoreError};
use std::ffi::OsStr;
use std::path::PathBuf;

/// One way the home differs from what gantry writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// What a killed run left in `tmp/`, the layer cache, a package or `bin/`.
    Leftover(Leftover),
    /// A wrapper of ours in `bin/` whose package has no current version.
    OrphanWrapper { name: String, path: PathBuf },
    /// A package whose complete current version has no wrapper.
    MissingWrapper { name: String, path: PathBuf },
    /// A wrapper of ours that is not the one gantry writes for the package now.
    StaleWrapper { name: String, path: PathBuf },
    /// The wrapper path of a package holds a file gantry did not write.
    ForeignWrapper { name: String, path: PathBuf },
    /// `current` is missing, not a symlink, or points at no version of the package.
    BrokenCurrent { name: String, link: CurrentLink },
    /// A version directory without `metadata.json` or `launch`.
    IncompleteVersion {
        name: String,
        digest: String,
        path: PathBuf,
        current: bool,
        missing: Vec<&'static str>,
    },
    /// The current version's `metadata.json` does not parse.
    UnreadableMetadata { name: String, message: String },
    /// The wrapper directory is not on `PATH`.
    NotOnPath { bin: PathBuf },
    /// A line of `ledger.jsonl` that is not a tag sighting.
    Ledger {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// `decisions.jsonl` does not parse or its hash chain breaks.
    DecisionLog {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl Finding {
    /// A short stable name for tools (`--json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Leftover(_) => "leftover",
            Finding::OrphanWrapper { .. } => "orphan_wrapper",
            Finding::MissingWrapper { .. } => "missing_wrapper",
            Finding::StaleWrapper { .. } => "stale_wrapper",
            Finding::ForeignWrapper { .. } => "foreign_wrapper",
            Finding::BrokenCurrent { .. } => "broken_current",
            Finding::IncompleteVersion { .. } => "incomplete_version",
            Finding::UnreadableMetadata { .. } => "unreadable_metadata",
            Finding::NotOnPath { .. } => "not_on_path",
            Finding::Ledger { .. } => "ledger",
            Finding::DecisionLog { .. } => "decision_log",
        }
    }

    /// Whether `--fix` repairs it.
    pub fn fixable(&self) -> bool {
        match self {
            Finding::Leftover(_)
            | Finding::OrphanWrapper { .. }
            | Finding::MissingWrapper { .. }
            | Finding::StaleWrapper { .. } => true,
            Finding::IncompleteVersion { current, .. } => !current,
            _ => false,
        }
    }

    /// What is wrong, in words.
    pub fn problem(&self) -> String {
        match self {
            Finding::Leftover(l) => format!(
                "{} is left over from an interrupted run",
                l.path().display()
            ),
            Finding::OrphanWrapper { name, path } => format!(
                "{} is a gantry wrapper, but package {name} is not installed",
                path.display()
            ),
            Finding::MissingWrapper { name, path } => {
                format!("package {name} has no wrapper at {}", path.display())
            }
            Finding::StaleWrapper { name, path } => format!(
                "{} is not the wrapper gantry writes for package {name}",
                path.display()
            ),
            Finding::ForeignWrapper { name, path } => format!(
                "{} was not written by gantry, so package {name} has no command",
                path.display()
            ),
            Finding::BrokenCurrent { name, link } => match link {
                CurrentLink::Missing => {
                    format!("package {name} has no `current` link: no version of it is active")
                }
                CurrentLink::NotALink => {
                    format!("the `current` of package {name} is not a symlink")
                }
                CurrentLink::Broken { target } => format!(
                    "the `current` of package {name} points at {}, which is not a version of it",
                    target.display()
                ),
                CurrentLink::Version { digest } => {
                    format!("package {name} is at {digest}")
                }
            },
            Finding::IncompleteVersion {
                name,
                digest,
                path,
                current,
                missing,
            } => {
                let which = if *current {
                    format!("the current version {digest} of package {name}")
                } else {
                    format!("version {digest} of package {name}")
                };
                format!(
                    "{which} ({}) lacks {}",
                    path.display(),
                    missing.join(" and ")
                )
            }
            Finding::UnreadableMetadata { name, message } => {
                format!("the metadata of package {name} does not read: {message}")
            }
            Finding::NotOnPath { bin } => format!(
                "{} is not on PATH, so installed commands do not run by name",
                bin.display()
            ),
            Finding::Ledger { path, line, reason } => format!(
                "{} line {line} is not a tag sighting: {reason}",
                path.display()
            ),
            Finding::DecisionLog { path, line, reason } => {
                format!("{} is broken at line {line}: {reason}", path.display())
            }
        }
    }

    /// What to do about it when `--fix` does not (or was not asked to).
    pub fn advice(&self) -> String {
        match self {
            f if f.fixable() => "run `gantry doctor --fix`".into(),
            Finding::ForeignWrapper { path, .. } => format!(
                "move {} away, then run `gantry doctor --fix` to write the wrapper",
                path.display()
            ),
            Finding::BrokenCurrent { name, .. }
            | Finding::IncompleteVersion { name, .. }
            | Finding::UnreadableMetadata { name, .. } => {
                format!("run `gantry remove {name}`, then install it again")
            }
            Finding::NotOnPath { .. } => {
                "run `gantry path setup`, then start a new shell".into()
            }
            Finding::Ledger { .. } => {
                "gantry does not rewrite the ledger: remove or repair that line by hand".into()
            }
            Finding::DecisionLog { .. } => {
                "the decision log is evidence and gantry never rewrites it: keep a copy and find out what changed it".into()
            }
            _ => String::new(),
        }
    }
}

/// A repair `--fix` made, or tried.
#[derive(Debug)]
pub struct Repair {
    pub finding: Finding,
    /// What was done, or why it could not be.
    pub outcome: Result<String, StoreError>,
}

/// Everything that differs in the home of `store`. `path_var` is the `PATH` to check the wrapper
/// directory against. Reads only; call with the store lock held, so no run is half-way.
pub fn examine(store: &Store, path_var: Option<&OsStr>) -> Result<Vec<Finding>, StoreError> {
    let mut out: Vec<Finding> = store
        .leftovers()?
        .into_iter()
        .map(Finding::Leftover)
        .collect();
    for name in store.package_names()? {
        examine_package(store, &name, &mut out)?;
    }
    for name in store.wrapper_names()? {
        let path = store.wrapper_path(&name);
        if crate::shim::is_our_wrapper(&path) && store.current_digest(&name).is_none() {
            out.push(Finding::OrphanWrapper { name, path });
        }
    }
    let bin = store.home().bin();
    if !crate::path_setup::on_path(&bin, path_var) {
        out.push(Finding::NotOnPath { bin });
    }
    out.extend(examine_ledger(store)?);
    let log = store.home().decisions();
    let (_, broken) = decisions::read_lenient(&log).map_err(|e| StoreError::Corrupt {
        path: log.clone(),
        message: e.to_string(),
    })?;
    if let Some(b) = broken {
        out.push(Finding::DecisionLog {
            path: log,
            line: b.line,
            reason: b.reason,
        });
    }
    Ok(out)
}

fn examine_package(store: &Store, name: &str, out: &mut Vec<Finding>) -> Result<(), StoreError> {
    let link = store.current_link(name);
    let versions = store.version_dirs(name)?;
    for v in &versions {
        let missing: Vec<&'static str> = [
            (!v.has_metadata).then_some("metadata.json"),
            (!v.has_launch).then_some("launch"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !missing.is_empty() {
            out.push(Finding::IncompleteVersion {
                name: name.into(),
                digest: v.digest.clone(),
                path: v.path.clone(),
                current: v.current,
                missing,
            });
        }
    }
    if !matches!(link, CurrentLink::Version { .. }) {
        out.push(Finding::BrokenCurrent {
            name: name.into(),
            link,
        });
        return Ok(());
    }
    let Some(current) = versions.iter().find(|v| v.current) else {
        return Ok(());
    };
    if !current.complete() {
        return Ok(());
    }
    if let Err(e) = store.version_metadata(current) {
        out.push(Finding::UnreadableMetadata {
            name: name.into(),
            message: e.to_string(),
        });
    }
    let path = store.wrapper_path(name);
    if std::fs::symlink_metadata(&path).is_err() {
        out.push(Finding::MissingWrapper {
            name: name.into(),
            path,
        });
    } else if !crate::shim::is_our_wrapper(&path) {
        out.push(Finding::ForeignWrapper {
            name: name.into(),
            path,
        });
    } else if !store.wrapper_is_current(name) {
        out.push(Finding::StaleWrapper {
            name: name.into(),
            path,
        });
    }
    Ok(())
}

/// The first line of the ledger that is not a sighting. A torn last line is one too: the next
/// sighting would be appended to it and be lost with it.
fn examine_ledger(store: &Store) -> Result<Option<Finding>, StoreError> {
    let path = store.home().ledger();
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let body = text.strip_suffix(b"\n").unwrap_or(&text);
    if body.is_empty() {
        return Ok(None);
    }
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if let Err(e) = serde_json::from_slice::<Sighting>(line) {
            return Ok(Some(Finding::Ledger {
                path,
                line: i + 1,
                reason: e.to_string(),
            }));
        }
    }
    if !text.ends_with(b"\n") {
        return Ok(Some(Finding::Ledger {
            path,
            line: body.split(|b| *b == b'\n').count(),
            reason: "the last line is cut short (no newline)".into(),
        }));
    }
    Ok(None)
}

/// Applies the safe repair of every fixable finding: leftovers and non-current incomplete
/// versions removed, orphan wrappers of ours removed, missing or stale wrappers of complete
/// current versions written. Call with the store lock held.
pub fn repair(store: &Store, findings: &[Finding]) -> Vec<Repair> {
    findings
        .iter()
        .filter(|f| f.fixable())
        .map(|f| Repair {
            finding: f.clone(),
            outcome: repair_one(store, f),
        })
        .collect()
}

fn repair_one(store: &Store, f: &Finding) -> Result<String, StoreError> {
    match f {
        Finding::Leftover(l) => {
            store.remove_leftover(l)?;
            Ok(format!("removed {}", l.path().display()))
        }
        Finding::IncompleteVersion {
            name, digest, path, ..
        } => Ok(if store.remove_version_dir(name, digest)? {
            format!("removed {}", path.display())
        } else {
            format!("left {} (it is current now)", path.display())
        }),
        Finding::OrphanWrapper { name, path } => Ok(if store.remove_orphan_wrapper(name)? {
            format!("removed {}", path.display())
        } else {
            format!("left {} (its package is installed now)", path.display())
        }),
        Finding::MissingWrapper { name, path } | Finding::StaleWrapper { name, path } => {
            store.ensure_wrapper(name)?;
            Ok(format!("wrote {}", path.display()))
        }
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Home;

    fn installed(s: &Store, name: &str, digest: &str) {
        let st = s.staging().unwrap();
        std::fs::write(st.path().join("launch"), b"#!/bin/sh\n").unwrap();
        let meta = serde_json::json!({
            "name": name, "reference": "r", "registry": "r", "digest": digest,
            "platform": {"os": "linux", "architecture": "amd64"},
            "installed_at": "t", "entrypoint": "/x",
        });
        std::fs::write(st.path().join("metadata.json"), meta.to_string()).unwrap();
        s.commit(name, digest, st, 2).unwrap();
    }

    fn kinds(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(Finding::kind).collect()
    }

    #[test]
    fn a_fresh_store_on_path_is_healthy() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let path = s.home().bin().into_os_string();
        assert_eq!(examine(&s, Some(&path)).unwrap(), vec![]);
        assert_eq!(
            kinds(&examine(&s, Some(OsStr::new("/usr/bin"))).unwrap()),
            ["not_on_path"]
        );
    }

    #[test]
    fn each_drift_is_found_and_the_safe_ones_are_repaired() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let path = s.home().bin().into_os_string();
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        for n in ["a", "b", "c", "d"] {
            installed(&s, n, &d1);
        }
        std::fs::remove_file(s.wrapper_path("a")).unwrap(); // missing wrapper
        std::fs::create_dir_all(s.version_dir("a", &d2)).unwrap(); // incomplete, not current
        std::fs::rename(s.package_dir("b"), home.path().join("tmp/remove-b-1")).unwrap(); // killed remove
        std::fs::remove_file(s.version_dir("c", &d1).join("launch")).unwrap(); // incomplete current
        std::fs::write(s.wrapper_path("d"), "#!/bin/sh\necho mine\n").unwrap(); // foreign
        let found = examine(&s, Some(&path)).unwrap();
        assert_eq!(
            kinds(&found),
            [
                "leftover",
                "incomplete_version",
                "missing_wrapper",
                "incomplete_version",
                "foreign_wrapper",
                "orphan_wrapper"
            ],
            "{found:#?}"
        );
        let repairs = repair(&s, &found);
        assert_eq!(repairs.len(), 4);
        assert!(repairs.iter().all(|r| r.outcome.is_ok()), "{repairs:?}");
        assert_eq!(
            kinds(&examine(&s, Some(&path)).unwrap()),
            ["incomplete_version", "foreign_wrapper"]
        );
        assert!(crate::shim::is_our_wrapper(&s.wrapper_path("a")));
        assert!(!s.version_dir("a", &d2).exists());
        assert!(!s.wrapper_path("b").exists());
        assert_eq!(
            std::fs::read_to_string(s.wrapper_path("d")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
    }

    #[test]
    fn broken_logs_are_reported_by_line_and_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let path = s.home().bin().into_os_string();
        let sighting =
            r#"{"registry":"r","repository":"x","tag":"1","digest":"sha256:a","seen":"t"}"#;
        let ledger = format!("{sighting}\n{sighting}\nnot json\n");
        std::fs::write(s.home().ledger(), &ledger).unwrap();
        std::fs::write(s.home().decisions(), "{\"torn").unwrap();
        let found = examine(&s, Some(&path)).unwrap();
        assert!(
            matches!(
                &found[..],
                [
                    Finding::Ledger { line: 3, .. },
                    Finding::DecisionLog { line: 1, .. }
                ]
            ),
            "{found:#?}"
        );
        assert!(repair(&s, &found).is_empty());
        assert_eq!(std::fs::read_to_string(s.home().ledger()).unwrap(), ledger);
        assert_eq!(
            std::fs::read_to_string(s.home().decisions()).unwrap(),
            "{\"torn"
        );
    }
}
