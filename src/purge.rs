//! `gantry purge`: removes a gantry home and everything in it, and nothing else. Before anything
//! is removed the home must look like one: a real directory (not a symlink), not `/` or a
//! top-level directory, not the user's home directory or one above it, holding something gantry
//! makes and nothing it does not. Removal never follows a symlink out of the home. Asking the
//! user is the command's business; this module only checks and removes.

use crate::store::{remove_any, Home, StoreError};
use std::path::{Path, PathBuf};

/// Why a home is not removed.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("refusing to purge {path}: {why}; set GANTRY_HOME to the gantry home itself")]
    LooksWrong { path: PathBuf, why: String },
    #[error("refusing to purge {path}: it holds {entries}, which gantry did not make; move them out first")]
    Foreign { path: PathBuf, entries: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A home that passed [`check`]: only it can be removed.
#[derive(Debug)]
pub struct Purgeable {
    path: PathBuf,
}

impl Purgeable {
    /// The directory that will be removed.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks that `home` looks like a gantry home and nothing more; `user_home` is `$HOME`.
/// `Ok(None)`: there is no home to remove.
pub fn check(home: &Home, user_home: Option<&Path>) -> Result<Option<Purgeable>, PurgeError> {
    let root = home.root();
    let wrong = |why: &str| PurgeError::LooksWrong {
        path: root.to_path_buf(),
        why: why.into(),
    };
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PurgeError::Io {
                path: root.into(),
                source,
            })
        }
    };
    if meta.file_type().is_symlink() {
        return Err(wrong("it is a symlink (gantry removes no link target)"));
    }
    if !meta.is_dir() {
        return Err(wrong("it is not a directory"));
    }
    let path = std::fs::canonicalize(root).map_err(|source| PurgeError::Io {
        path: root.into(),
        source,
    })?;
    let depth = path
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count();
    if depth < 2 {
        return Err(wrong("it is the root or a top-level directory"));
    }
    if let Some(h) = user_home.and_then(|h| std::fs::canonicalize(h).ok()) {
        if h.starts_with(&path) {
            return Err(wrong("it is your home directory or contains it"));
        }
    }
    let own: Vec<PathBuf> = home
        .own_paths()
        .iter()
        .filter_map(|p| p.file_name().map(PathBuf::from))
        .collect();
    let mut known = 0;
    let mut foreign = Vec::new();
    let rd = std::fs::read_dir(&path).map_err(|source| PurgeError::Io {
        path: path.clone(),
        source,
    })?;
    for e in rd.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if own.iter().any(|o| o.as_os_str() == name) {
            known += 1;
        } else if !n.starts_with(".config.toml.") {
            // (`.config.toml.PID`: a config write that was interrupted.)
            foreign.push(n.into_owned());
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        return Err(PurgeError::Foreign {
            path,
            entries: foreign.join(", "),
        });
    }
    if known == 0 {
        return Err(wrong("nothing in it is something gantry makes"));
    }
    Ok(Some(Purgeable { path }))
}

/// Removes the home (symlinks inside it are removed, never followed).
pub fn purge(target: Purgeable) -> Result<(), PurgeError> {
    remove_any(&target.path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_home_that_looks_like_one_is_purged_and_nothing_outside_it() {
        let d = tempfile::tempdir().unwrap();
        let user_home = d.path().join("user");
        let gantry = user_home.join(".gantry");
        std::fs::create_dir_all(gantry.join("bin")).unwrap();
        std::fs::write(gantry.join("config.toml"), "").unwrap();
        let outside = d.path().join("precious");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, gantry.join("bin/link")).unwrap();

        for (root, why) in [
            (PathBuf::from("/"), "top-level"),
            (user_home.clone(), "home directory"),
            (d.path().to_path_buf(), "home directory"),
        ] {
            let e = check(&Home::new(&root), Some(&user_home)).unwrap_err();
            assert!(e.to_string().contains(why), "{root:?}: {e}");
        }
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = check(&Home::new(&empty), Some(&user_home)).unwrap_err();
        assert!(e.to_string().contains("nothing in it"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&gantry, &link).unwrap();
        assert!(check(&Home::new(&link), Some(&user_home))
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        std::fs::write(gantry.join("notes.txt"), "mine").unwrap();
        let e = check(&Home::new(&gantry), Some(&user_home)).unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
        std::fs::remove_file(gantry.join("notes.txt")).unwrap();

        let t = check(&Home::new(&gantry), Some(&user_home))
            .unwrap()
            .unwrap();
        purge(t).unwrap();
        assert!(!gantry.exists());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert!(check(&Home::new(&gantry), Some(&user_home))
            .unwrap()
            .is_none());
    }
}
