//! Read-only views of the store for `gantry doctor` and `gantry gc`, and the few narrow removals
//! their repairs make: a wrapper of ours whose package is gone, a version directory that is not
//! current, a leftover of a killed run, a cached layer. Each removal re-checks on disk that it is
//! still what it was found to be; none of them touches `current`, a current version, the ledger
//! or the decision log.

use super::{
    io, remove_any, validate_name, Home, PackageMetadata, Store, StoreError, DIGEST_DIR_PREFIX,
};
use crate::shim;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Where `packages/NAME/current` points, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentLink {
    /// No `current` at all.
    Missing,
    /// `current` exists but is not a symlink.
    NotALink,
    /// A symlink whose target is not an existing `sha256-HEX` directory of the package.
    Broken { target: PathBuf },
    /// A symlink to an existing version directory.
    Version { digest: String },
}

/// One `sha256-HEX` directory under `packages/NAME/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDir {
    /// `sha256:HEX`.
    pub digest: String,
    pub path: PathBuf,
    /// `current` points at it.
    pub current: bool,
    pub has_metadata: bool,
    pub has_launch: bool,
}

impl VersionDir {
    /// It has everything a wrapper needs to run it and `list` needs to show it.
    pub fn complete(&self) -> bool {
        self.has_metadata && self.has_launch
    }
}

/// Something a killed run left behind: an entry of `tmp/`, a `.tmp-*` dir of the layer cache, a
/// `.current.*` link of a package, or a `.NAME.tmp` wrapper. Only [`Store::leftovers`] makes one,
/// so [`Store::remove_leftover`] can only ever remove such a thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    path: PathBuf,
}

impl Leftover {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One unpacked layer of the layer cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLayer {
    hex: String,
    path: PathBuf,
}

impl CachedLayer {
    /// `sha256:HEX`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.hex)
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Home {
    /// Every entry gantry makes directly in the home (what `purge` accepts to find there). A
    /// path added to [`Home`] belongs here too.
    pub fn own_paths(&self) -> Vec<PathBuf> {
        vec![
            self.config(),
            self.auth(),
            self.bin(),
            self.packages(),
            self.layers(),
            self.cache(),
            self.trust_cache(),
            self.tmp(),
            self.lock(),
            self.ledger(),
            self.decisions(),
            self.decision_outbox(),
            self.checked(),
        ]
    }
}

impl Store {
    /// The names of the package directories (valid names only, sorted), installed or not.
    pub fn package_names(&self) -> Result<Vec<String>, StoreError> {
        names_in(&self.home.packages(), |e| e.path().is_dir())
    }

    /// The names in `bin/` that could be wrappers (valid package names, sorted).
    pub fn wrapper_names(&self) -> Result<Vec<String>, StoreError> {
        names_in(&self.home.bin(), |_| true)
    }

    /// What `packages/NAME/current` is.
    pub fn current_link(&self, name: &str) -> CurrentLink {
        let link = self.package_dir(name).join("current");
        let Ok(meta) = fs::symlink_metadata(&link) else {
            return CurrentLink::Missing;
        };
        if !meta.file_type().is_symlink() {
            return CurrentLink::NotALink;
        }
        let target = fs::read_link(&link).unwrap_or_default();
        // gantry writes `current` as a bare `sha256-HEX` name next to it; anything else points
        // somewhere the store does not manage.
        let bare = target.components().count() == 1
            && matches!(
                target.components().next(),
                Some(std::path::Component::Normal(_))
            );
        match self.current_digest(name) {
            Some(digest) if bare && self.version_dir(name, &digest).is_dir() => {
                CurrentLink::Version { digest }
            }
            _ => CurrentLink::Broken { target },
        }
    }

    /// Every version directory of a package, sorted by digest.
    pub fn version_dirs(&self, name: &str) -> Result<Vec<VersionDir>, StoreError> {
        let pkg = self.package_dir(name);
        let current = match self.current_link(name) {
            CurrentLink::Version { digest } => Some(digest),
            _ => None,
        };
        let mut out = Vec::new();
        for e in fs::read_dir(&pkg).map_err(io(&pkg))?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = n.strip_prefix(DIGEST_DIR_PREFIX) else {
                continue;
            };
            if !e.path().is_dir() {
                continue;
            }
            let digest = format!("sha256:{hex}");
            let path = e.path();
            out.push(VersionDir {
                current: current.as_deref() == Some(digest.as_str()),
                has_metadata: path.join("metadata.json").is_file(),
                has_launch: path.join("launch").is_file(),
                digest,
                path,
            });
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// The metadata of one version directory.
    pub fn version_metadata(&self, v: &VersionDir) -> Result<PackageMetadata, StoreError> {
        let p = v.path.join("metadata.json");
        let bytes = fs::read(&p).map_err(io(&p))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: p,
            message: e.to_string(),
        })
    }

    /// Whether `bin/NAME` is byte for byte the wrapper gantry writes for the package.
    pub fn wrapper_is_current(&self, name: &str) -> bool {
        let launch = self.package_dir(name).join("current").join("launch");
        fs::read_to_string(self.wrapper_path(name))
            .is_ok_and(|b| b == shim::wrapper_script(name, &launch))
    }

    /// What killed runs left behind (see [`Leftover`]), sorted.
    pub fn leftovers(&self) -> Result<Vec<Leftover>, StoreError> {
        let mut out = Vec::new();
        let tmp = self.home.tmp();
        if tmp.is_dir() {
            out.extend(entries(&tmp)?.into_iter().map(|(_, path)| path));
        }
        let layers = self.home.layers();
        if layers.is_dir() {
            out.extend(
                entries(&layers)?
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(".tmp"))
                    .map(|(_, p)| p),
            );
        }
        for name in self.package_names()? {
            out.extend(
                entries(&self.package_dir(&name))?
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(".current."))
                    .map(|(_, p)| p),
            );
        }
        let bin = self.home.bin();
        if bin.is_dir() {
            out.extend(
                entries(&bin)?
                    .into_iter()
                    .filter(|(n, _)| n.starts_with('.') && n.ends_with(".tmp"))
                    .map(|(_, p)| p),
            );
        }
        out.sort();
        Ok(out.into_iter().map(|path| Leftover { path }).collect())
    }

    /// The unpacked layers in the layer cache, sorted by digest.
    pub fn cached_layers(&self) -> Result<Vec<CachedLayer>, StoreError> {
        let dir = self.home.layers();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out: Vec<CachedLayer> = entries(&dir)?
            .into_iter()
            .filter(|(n, _)| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|(hex, path)| CachedLayer { hex, path })
            .collect();
        out.sort_by(|a, b| a.hex.cmp(&b.hex));
        Ok(out)
    }

    /// Removes `bin/NAME` if it is a wrapper of ours and its package has no current version;
    /// returns whether it removed it.
    pub fn remove_orphan_wrapper(&self, name: &str) -> Result<bool, StoreError> {
        validate_name(name)?;
        let w = self.wrapper_path(name);
        if !shim::is_our_wrapper(&w) || self.current_digest(name).is_some() {
            return Ok(false);
        }
        self.changing()?;
        fs::remove_file(&w).map_err(io(&w))?;
        Ok(true)
    }

    /// Removes a version directory that `current` does not point at; returns whether it did.
    pub fn remove_version_dir(&self, name: &str, digest: &str) -> Result<bool, StoreError> {
        validate_name(name)?;
        if self.current_digest(name).as_deref() == Some(digest) {
            return Ok(false);
        }
        let dir = self.version_dir(name, digest);
        if !dir.is_dir() {
            return Ok(false);
        }
        self.changing()?;
        remove_any(&dir)?;
        Ok(true)
    }

    /// Removes a leftover of a killed run.
    pub fn remove_leftover(&self, l: &Leftover) -> Result<(), StoreError> {
        remove_any(&l.path)
    }

    /// Removes an unpacked layer from the cache (installed rootfs files are hard links or copies
    /// of its files, so no installed version depends on it).
    pub fn remove_cached_layer(&self, l: &CachedLayer) -> Result<(), StoreError> {
        remove_any(&l.path)
    }
}

/// The bytes that removing every tree in `paths` frees: the sizes of the regular files all of
/// whose hard links are inside those trees (a layer file linked into an installed rootfs frees
/// nothing). Symlinks are not followed.
pub fn bytes_freed_by_removing(paths: &[&Path]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // (dev, inode) -> (size, links, links seen inside the trees)
    let mut inodes: HashMap<(u64, u64), (u64, u64, u64)> = HashMap::new();
    let mut stack: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if m.is_file() {
            let e = inodes
                .entry((m.dev(), m.ino()))
                .or_insert((m.len(), m.nlink(), 0));
            e.2 += 1;
        }
    }
    inodes
        .values()
        .filter(|(_, links, seen)| seen >= links)
        .map(|(size, _, _)| size)
        .sum()
}

/// The entries of `dir` as (name, path); a missing dir has none.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// The valid package names among the entries of `dir` that `keep` accepts, sorted.
fn names_in(dir: &Path, keep: impl Fn(&fs::DirEntry) -> bool) -> Result<Vec<String>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        }
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| keep(e))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| validate_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(s: &Store, name: &str, digest: &str) {
        let st = s.staging().unwrap();
        std::fs::write(st.path().join("launch"), b"#!/bin/sh\n").unwrap();
        std::fs::write(st.path().join("metadata.json"), b"{}").unwrap();
        s.commit(name, digest, st, 2).unwrap();
    }

    #[test]
    fn versions_current_and_narrow_removals() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        install(&s, "a", &d1);
        std::fs::create_dir_all(s.version_dir("a", &d2)).unwrap();
        let v = s.version_dirs("a").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].current && v[0].complete());
        assert!(!v[1].current && !v[1].complete());
        assert_eq!(
            s.current_link("a"),
            CurrentLink::Version { digest: d1.clone() }
        );
        // The current version is never removed, another one is.
        assert!(!s.remove_version_dir("a", &d1).unwrap());
        assert!(s.remove_version_dir("a", &d2).unwrap());
        // A wrapper whose package has a current version is not an orphan.
        assert!(!s.remove_orphan_wrapper("a").unwrap());
        std::fs::remove_file(s.package_dir("a").join("current")).unwrap();
        assert_eq!(s.current_link("a"), CurrentLink::Missing);
        assert!(s.remove_orphan_wrapper("a").unwrap());
        assert!(!s.wrapper_path("a").exists());
    }

    #[test]
    fn freed_bytes_count_only_files_whose_every_link_goes() {
        let d = tempfile::tempdir().unwrap();
        let (gone, kept) = (d.path().join("gone"), d.path().join("kept"));
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::create_dir_all(&kept).unwrap();
        std::fs::write(gone.join("only"), vec![0u8; 1000]).unwrap();
        std::fs::write(gone.join("shared"), vec![0u8; 500]).unwrap();
        std::fs::hard_link(gone.join("shared"), kept.join("shared")).unwrap();
        std::fs::hard_link(gone.join("only"), gone.join("only2")).unwrap();
        std::os::unix::fs::symlink(kept.join("shared"), gone.join("link")).unwrap();
        assert_eq!(bytes_freed_by_removing(&[&gone]), 1000);
        assert_eq!(bytes_freed_by_removing(&[&gone, &kept]), 1500);
    }
}
