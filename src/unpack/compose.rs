//! Replays unpacked layers, in order, into a fresh rootfs. It owns placement: chroot-style path
//! resolution (symlinks from any layer are followed but `..` and absolute targets are clamped to the
//! root), whiteouts and opaque dirs (applied to lower layers only, before the layer's own entries),
//! replacement (later entries win; a dir replaced by a file and vice versa) and the final file list.
//! It never follows a symlink at the last component of an entry, never chmods through a symlink,
//! and never creates, removes or links anything outside `rootfs`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::bodies::{self, mtime_of};
use super::record::{LayerEntry, UnpackedLayer};
use super::UnpackError;
use crate::facts::{FileEntry, FileType};

/// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS.
const MAX_HOPS: u32 = 40;

/// Compose unpacked layers, in order, into `rootfs` (a fresh dir, created here, or an existing
/// empty one). Returns the final file list, sorted by path, for the `contents` hook. On error the
/// partial rootfs is removed. Each layer's entries are dropped once applied, so the entries of
/// all layers and the file list are never all in memory at once.
pub fn compose_layers(
    layers: Vec<UnpackedLayer>,
    rootfs: &Path,
) -> Result<Vec<FileEntry>, UnpackError> {
    match fs::create_dir(rootfs) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mut rd =
                fs::read_dir(rootfs).map_err(|e| UnpackError::io("read dir", rootfs, e))?;
            if rd.next().is_some() {
                return Err(UnpackError::io(
                    "compose into",
                    rootfs,
                    std::io::Error::other("directory is not empty"),
                ));
            }
        }
        Err(e) => return Err(UnpackError::io("create rootfs", rootfs, e)),
    }
    let mut c = Composer {
        root: rootfs.to_path_buf(),
        files: BTreeMap::new(),
        dirs: BTreeMap::new(),
        cache: HashMap::new(),
    };
    let result = layers
        .into_iter()
        .try_for_each(|l| c.apply(l))
        .and_then(|()| c.finish_dirs());
    match result {
        Ok(()) => Ok(c
            .files
            .into_iter()
            .map(|(path, n)| FileEntry {
                path,
                file_type: n.file_type,
                mode: n.mode,
                original_mode: n.original_mode,
                size: n.size,
                link_target: n.link_target.map(String::from),
            })
            .collect()),
        Err(e) => {
            let _ = fs::remove_dir_all(rootfs);
            Err(e)
        }
    }
}

/// [`compose_layers`] over borrowed layers (the same layer may appear twice).
#[cfg(test)]
pub fn compose(layers: &[&UnpackedLayer], rootfs: &Path) -> Result<Vec<FileEntry>, UnpackError> {
    compose_layers(layers.iter().map(|l| (*l).clone()).collect(), rootfs)
}

struct Composer {
    root: PathBuf,
    /// The rootfs as the contents hook will see it, keyed by resolved path. Everything this
    /// composer creates is recorded here and everything it removes is forgotten, so (the rootfs
    /// starting empty) a path that is not here does not exist.
    files: BTreeMap<String, Node>,
    /// Dir modes and mtimes, applied at the end so read-only dirs do not block later entries.
    dirs: BTreeMap<String, (u32, Option<i64>)>,
    /// Resolved parent dirs; cleared whenever a dir or symlink is removed or replaced.
    cache: HashMap<String, String>,
}

/// A [`FileEntry`] without its path (the key it is stored under), kept small: a rootfs may
/// have hundreds of thousands of entries.
struct Node {
    file_type: FileType,
    mode: u32,
    original_mode: u32,
    size: u64,
    link_target: Option<Box<str>>,
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

impl Composer {
    fn apply(&mut self, layer: UnpackedLayer) -> Result<(), UnpackError> {
        let UnpackedLayer {
            dir,
            digest,
            entries,
            ..
        } = layer;
        let unsafe_path = |path: &str, reason: String| UnpackError::UnsafePath {
            digest: digest.clone(),
            path: path.to_string(),
            reason,
        };
        // Whiteouts and opaque markers only ever hide what lower layers made.
        for e in &entries {
            match e {
                LayerEntry::Whiteout { path } => {
                    self.whiteout(path).map_err(|r| unsafe_path(path, r))??
                }
                LayerEntry::Opaque { dir } => {
                    self.opaque(dir).map_err(|r| unsafe_path(dir, r))??
                }
                _ => {}
            }
        }
        for e in entries {
            match e {
                LayerEntry::Whiteout { .. } | LayerEntry::Opaque { .. } => {}
                LayerEntry::Dir {
                    path,
                    mode,
                    original_mode,
                    mtime,
                } => {
                    let (rel, host, exists) = self
                        .place(&path, true)
                        .map_err(|r| unsafe_path(&path, r))??;
                    if !exists {
                        fs::create_dir(&host)
                            .map_err(|e| UnpackError::io("create dir", &host, e))?;
                    }
                    self.dirs.insert(rel.clone(), (mode, Some(mtime)));
                    self.record(rel, FileType::Dir, mode, original_mode, 0, None);
                }
                LayerEntry::File {
                    path,
                    body,
                    mode,
                    original_mode,
                    size,
                    ..
                } => {
                    let (rel, host, _) = self
                        .place(&path, false)
                        .map_err(|r| unsafe_path(&path, r))??;
                    link_or_copy(&bodies::body_path(&dir, body), &host)?;
                    self.record(rel, FileType::File, mode, original_mode, size, None);
                }
                LayerEntry::Symlink {
                    path,
                    target,
                    original_mode,
                } => {
                    let (rel, host, _) = self
                        .place(&path, false)
                        .map_err(|r| unsafe_path(&path, r))??;
                    std::os::unix::fs::symlink(&target, &host)
                        .map_err(|e| UnpackError::io("create symlink", &host, e))?;
                    let size = target.len() as u64;
                    self.record(
                        rel,
                        FileType::Symlink,
                        0o777,
                        original_mode,
                        size,
                        Some(target),
                    );
                }
                LayerEntry::Hardlink { path, target } => {
                    self.hardlink(&path, &target)
                        .map_err(|r| unsafe_path(&path, r))??;
                }
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        rel: String,
        t: FileType,
        mode: u32,
        original_mode: u32,
        size: u64,
        link: Option<String>,
    ) {
        let n = Node {
            file_type: t,
            mode,
            original_mode,
            size,
            link_target: link.map(String::into_boxed_str),
        };
        self.files.insert(rel, n);
    }

    /// Forgets `rel` and everything under it.
    fn forget(&mut self, rel: &str, keep_self: bool) {
        let lo = format!("{rel}/");
        let hi = format!("{rel}0"); // '0' sorts right after '/'
        let under: Vec<String> = self
            .files
            .range(lo.clone()..hi.clone())
            .map(|(k, _)| k.clone())
            .collect();
        for k in under {
            self.files.remove(&k);
        }
        let under: Vec<String> = self.dirs.range(lo..hi).map(|(k, _)| k.clone()).collect();
        for k in under {
            self.dirs.remove(&k);
        }
        if !keep_self {
            self.files.remove(rel);
            self.dirs.remove(rel);
        }
    }

    /// Resolves `dir` to a real directory inside the root, following symlinks chroot-style.
    /// Missing components are created (as 0755 dirs) when `create`, else the result is `None`;
    /// a component that is not a dir is an error (or `None` when not creating).
    fn resolve_dir(&mut self, dir: &str, create: bool) -> Result<Option<String>, String> {
        if dir.is_empty() {
            return Ok(Some(String::new()));
        }
        if let Some(r) = self.cache.get(dir) {
            return Ok(Some(r.clone()));
        }
        let mut queue: VecDeque<String> = dir.split('/').map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    cur.pop(); // clamped: '..' at the root stays at the root
                    continue;
                }
                _ => {}
            }
            let rel = join(&cur.join("/"), &c);
            let host = self.root.join(&rel);
            match fs::symlink_metadata(&host) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    fs::create_dir(&host)
                        .map_err(|e| format!("cannot create parent dir '{rel}': {e}"))?;
                    self.dirs.insert(rel.clone(), (0o755, None));
                    self.record(rel, FileType::Dir, 0o755, 0o755, 0, None);
                    cur.push(c);
                }
                Err(e) => return Err(format!("cannot stat '{rel}': {e}")),
                Ok(m) if m.is_dir() => cur.push(c),
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err("too many levels of symbolic links".into());
                    }
                    let target = fs::read_link(&host)
                        .map_err(|e| format!("cannot read symlink '{rel}': {e}"))?;
                    let target = target.to_string_lossy();
                    if target.starts_with('/') {
                        cur.clear();
                    }
                    for (i, t) in target.split('/').enumerate() {
                        queue.insert(i, t.to_string());
                    }
                }
                Ok(_) if !create => return Ok(None),
                Ok(_) => return Err(format!("parent '{rel}' is not a directory")),
            }
        }
        let resolved = cur.join("/");
        self.cache.insert(dir.to_string(), resolved.clone());
        Ok(Some(resolved))
    }

    /// Makes room for a new entry at `path`: resolves its parent, removes whatever is there
    /// (an existing dir is kept when a dir is being placed). Returns (resolved path, host path,
    /// whether a dir was kept).
    #[allow(clippy::type_complexity)]
    fn place(
        &mut self,
        path: &str,
        is_dir: bool,
    ) -> Result<Result<(String, PathBuf, bool), UnpackError>, String> {
        let (parent, name) = split(path);
        let parent = self
            .resolve_dir(parent, true)?
            .ok_or("parent dir vanished")?;
        let rel = join(&parent, name);
        let host = self.root.join(&rel);
        Ok(self
            .clear(&rel, &host, is_dir)
            .map(|kept| (rel, host, kept)))
    }

    /// Removes what is at `host` (never following a symlink there); keeps a dir if `keep_dir`.
    fn clear(&mut self, rel: &str, host: &Path, keep_dir: bool) -> Result<bool, UnpackError> {
        // Nothing recorded there means nothing is there (see `files`): spare the stat. Were the
        // record ever wrong, the create that follows fails on the existing path (mkdir, link
        // and symlink never replace nor follow one), so this can only fail, never misplace.
        if !self.files.contains_key(rel) {
            return Ok(false);
        }
        match fs::symlink_metadata(host) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(UnpackError::io("stat", host, e)),
            Ok(m) if m.is_dir() && keep_dir => Ok(true),
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(host).map_err(|e| UnpackError::io("remove dir", host, e))?;
                self.forget(rel, false);
                self.cache.clear();
                Ok(false)
            }
            Ok(m) => {
                fs::remove_file(host).map_err(|e| UnpackError::io("remove", host, e))?;
                self.forget(rel, false);
                if m.file_type().is_symlink() {
                    self.cache.clear();
                }
                Ok(false)
            }
        }
    }

    fn whiteout(&mut self, path: &str) -> Result<Result<(), UnpackError>, String> {
        let (parent, name) = split(path);
        let Some(parent) = self.resolve_dir(parent, false)? else {
            return Ok(Ok(())); // nothing below to hide (e.g. a dead symlink parent)
        };
        let rel = join(&parent, name);
        let host = self.root.join(&rel);
        Ok(self.clear(&rel, &host, false).map(|_| ()))
    }

    fn opaque(&mut self, dir: &str) -> Result<Result<(), UnpackError>, String> {
        let Some(rel) = self.resolve_dir(dir, false)? else {
            return Ok(Ok(()));
        };
        let host = self.root.join(&rel);
        let rd = match fs::read_dir(&host) {
            Ok(rd) => rd,
            Err(e) => return Ok(Err(UnpackError::io("read dir", &host, e))),
        };
        for child in rd {
            let child = match child {
                Ok(c) => c,
                Err(e) => return Ok(Err(UnpackError::io("read dir", &host, e))),
            };
            let name = child.file_name().to_string_lossy().into_owned();
            if let Err(e) = self.clear(&join(&rel, &name), &child.path(), false) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    fn hardlink(&mut self, path: &str, target: &str) -> Result<Result<(), UnpackError>, String> {
        let (tparent, tname) = split(target);
        let tparent = self
            .resolve_dir(tparent, false)?
            .ok_or_else(|| format!("hardlink target '{target}' does not exist"))?;
        let trel = join(&tparent, tname);
        let thost = self.root.join(&trel);
        match fs::symlink_metadata(&thost) {
            Ok(m) if m.is_dir() => {
                return Err(format!("hardlink target '{target}' is a directory"))
            }
            Ok(_) => {}
            Err(_) => return Err(format!("hardlink target '{target}' does not exist")),
        }
        let (parent, name) = split(path);
        let parent = self
            .resolve_dir(parent, true)?
            .ok_or("parent dir vanished")?;
        let rel = join(&parent, name);
        if rel == trel {
            return Ok(Ok(())); // a link to itself: nothing to do
        }
        let host = self.root.join(&rel);
        if let Err(e) = self.clear(&rel, &host, false) {
            return Ok(Err(e));
        }
        // link(2) does not follow a symlink target: linking a symlink links the symlink itself.
        if let Err(e) = fs::hard_link(&thost, &host) {
            return Ok(Err(UnpackError::io("hardlink", &host, e)));
        }
        let (mode, original_mode, size) = self
            .files
            .get(&trel)
            .map_or((0o644, 0o644, 0), |f| (f.mode, f.original_mode, f.size));
        self.record(
            rel,
            FileType::Hardlink,
            mode,
            original_mode,
            size,
            Some(trel),
        );
        Ok(Ok(()))
    }

    /// Applies dir modes and mtimes, children before parents.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        for (rel, (mode, mtime)) in self.dirs.iter().rev() {
            let host = self.root.join(rel);
            // Never chmod through a symlink, whatever replaced the dir since.
            if !fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if let Some(t) = mtime {
                if let Ok(f) = fs::File::open(&host) {
                    let _ = f.set_times(fs::FileTimes::new().set_modified(mtime_of(*t)));
                }
            }
            fs::set_permissions(&host, fs::Permissions::from_mode(mode & 0o777))
                .map_err(|e| UnpackError::io("chmod", &host, e))?;
        }
        Ok(())
    }
}

/// Hardlinks a layer body into the rootfs (same filesystem, shared inode); copies when linking
/// is refused (another filesystem, link count limit).
fn link_or_copy(src: &Path, dst: &Path) -> Result<(), UnpackError> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(UnpackError::io("layer body missing", src, e))
        }
        Err(_) => {
            fs::copy(src, dst).map_err(|e| UnpackError::io("copy", dst, e))?;
            if let Ok(m) = fs::metadata(src).and_then(|m| m.modified()) {
                if let Ok(f) = fs::File::options().write(true).open(dst) {
                    let _ = f.set_times(fs::FileTimes::new().set_modified(m));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{build, tree, TarBuf};
    use super::*;

    fn entry<'a>(files: &'a [FileEntry], p: &str) -> &'a FileEntry {
        files
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| panic!("{p} not in {files:?}"))
    }

    #[test]
    fn layers_compose_with_modes_links_and_implicit_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let l0 = TarBuf::new()
            .dir("bin", 0o755)
            .file_mode("bin/tool", b"#!/bin/sh\n", 0o4755)
            .file("deep/no/parents/f", b"x")
            .symlink("bin/alias", "tool")
            .hardlink("bin/tool2", "bin/tool")
            .dir("ro", 0o555)
            .file("ro/inside", b"y")
            .finish();
        let files = build(tmp.path(), &[l0]).unwrap();
        let root = tmp.path().join("rootfs");
        let tool = entry(&files, "bin/tool");
        assert_eq!(
            (tool.file_type, tool.mode, tool.original_mode, tool.size),
            (FileType::File, 0o755, 0o4755, 10)
        );
        assert_eq!(
            fs::metadata(root.join("bin/tool"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755
        );
        assert_eq!(entry(&files, "deep/no").file_type, FileType::Dir);
        assert_eq!(
            fs::read_to_string(root.join("deep/no/parents/f")).unwrap(),
            "x"
        );
        assert_eq!(
            fs::read_link(root.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            entry(&files, "bin/alias").link_target.as_deref(),
            Some("tool")
        );
        let h = entry(&files, "bin/tool2");
        assert_eq!(
            (h.file_type, h.link_target.as_deref(), h.original_mode),
            (FileType::Hardlink, Some("bin/tool"), 0o4755)
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(root.join("bin/tool2")).unwrap().ino(),
            fs::metadata(root.join("bin/tool")).unwrap().ino()
        );
        // Read-only dirs get their mode only after their contents were written.
        assert_eq!(
            fs::metadata(root.join("ro")).unwrap().permissions().mode() & 0o777,
            0o555
        );
        assert_eq!(fs::read_to_string(root.join("ro/inside")).unwrap(), "y");
        assert_eq!(
            fs::metadata(root.join("bin/tool"))
                .unwrap()
                .modified()
                .unwrap(),
            mtime_of(1_600_000_000)
        );
        fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn later_entries_win_and_types_replace_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let l0 = TarBuf::new()
            .file("dup", b"first")
            .file("dup", b"second")
            .file("d/child", b"c")
            .file("f", b"file")
            .symlink("s", "d")
            .finish();
        let l1 = TarBuf::new()
            .file("d", b"now a file")
            .dir("f", 0o755)
            .file("f/inner", b"f is now a dir")
            .dir("s", 0o700)
            .finish();
        let files = build(tmp.path(), &[l0, l1]).unwrap();
        let root = tmp.path().join("rootfs");
        assert_eq!(fs::read_to_string(root.join("dup")).unwrap(), "second");
        assert_eq!(fs::read_to_string(root.join("d")).unwrap(), "now a file");
        assert!(files.iter().all(|f| f.path != "d/child"));
        assert_eq!(
            fs::read_to_string(root.join("f/inner")).unwrap(),
            "f is now a dir"
        );
        assert!(fs::symlink_metadata(root.join("s")).unwrap().is_dir());
        assert_eq!(entry(&files, "s").file_type, FileType::Dir);
        // A file met as a parent component (no dir entry replaced it) is an error, not a guess.
        let l_bad = TarBuf::new()
            .file("a", b"file")
            .file("a/b", b"under a file")
            .finish();
        let tmp2 = tempfile::tempdir().unwrap();
        assert!(build(tmp2.path(), &[l_bad]).is_err());
        assert!(
            !tmp2.path().join("rootfs").exists(),
            "partial rootfs removed"
        );
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_layers_only() {
        let tmp = tempfile::tempdir().unwrap();
        let l0 = TarBuf::new()
            .file("keep", b"k")
            .file("gone", b"g")
            .file("opq/lower1", b"1")
            .file("opq/sub/lower2", b"2")
            .file("dir/x", b"x")
            .finish();
        let l1 = TarBuf::new()
            .file("opq/mine", b"same layer")
            .file("opq/.wh..wh..opq", b"")
            .file(".wh.gone", b"")
            .file("dir/.wh.x", b"")
            .file(".wh.never-existed", b"")
            .finish();
        let files = build(tmp.path(), &[l0, l1]).unwrap();
        let root = tmp.path().join("rootfs");
        assert_eq!(tree(&root), ["dir", "keep", "opq", "opq/mine"]);
        assert!(files.iter().all(|f| !f.path.contains(".wh.")));
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["dir", "keep", "opq", "opq/mine"]
        );
    }

    #[test]
    fn compose_refuses_a_non_empty_rootfs() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("rootfs")).unwrap();
        fs::write(tmp.path().join("rootfs/old"), b"").unwrap();
        assert!(build(tmp.path(), &[TarBuf::new().file("a", b"").finish()]).is_err());
        assert!(
            tmp.path().join("rootfs/old").exists(),
            "an existing tree is never removed"
        );
    }
}
