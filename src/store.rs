//! The on-disk store under `$GANTRY_HOME`: package versions, the `current` pointer, wrappers,
//! the unpacked-layer cache, the tag ledger, the lock, and staging. Every change becomes visible by
//! a rename or a symlink flip, so a crash at any moment leaves either the old or the new version,
//! never a mix. It does not fetch, verify or judge anything.

use crate::shim;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

mod inspect;
pub use inspect::{bytes_freed_by_removing, CachedLayer, CurrentLink, Leftover, VersionDir};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid package name '{0}': use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error("refusing to overwrite {0}: it is not a gantry wrapper (remove it or choose another --name)")]
    NotOurs(PathBuf),
    #[error("package '{0}' is not installed")]
    NotInstalled(String),
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Checks a package name before it becomes a path component.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadName(name.to_string()))
    }
}

/// What `metadata.json` records about an installed version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageMetadata {
    pub name: String,
    /// The reference as normalised at install time.
    pub reference: String,
    pub registry: String,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    pub platform: crate::facts::Platform,
    /// RFC 3339.
    pub installed_at: String,
    pub entrypoint: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub signatures: Vec<crate::facts::SignatureFact>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub attestations: serde_json::Value,
    #[serde(default)]
    pub verdicts: serde_json::Value,
    /// Installed with `--allow-unsigned` (so a later audit or rollback judges it the same way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unsigned: bool,
    /// The digests of the image's layers, in order (what `gc` keeps in the layer cache). Empty in
    /// metadata written before gantry recorded them: an installable image has at least one layer,
    /// so empty means "not recorded", never "uses no layer".
    #[serde(default)]
    pub layers: Vec<String>,
}

/// An exclusive lock on the home; released on drop.
pub struct Lock {
    _file: File,
}

/// `$GANTRY_HOME` (default `~/.gantry`) and every path under it: nothing else in gantry joins a
/// path onto the home, so the layout is written down once, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// `GANTRY_HOME` when set and not empty, else `$HOME/.gantry`; `None` when neither is set.
    pub fn locate() -> Option<Home> {
        if let Some(h) = std::env::var_os("GANTRY_HOME").filter(|h| !h.is_empty()) {
            return Some(Home::new(h));
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        Some(Home::new(PathBuf::from(home).join(".gantry")))
    }

    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The user layer of the configuration.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// Registry credentials gantry keeps itself (mode 0600).
    pub fn auth(&self) -> PathBuf {
        self.root.join("auth.json")
    }

    /// The command wrappers (put this directory on `PATH`).
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// Installed packages, one directory each.
    pub fn packages(&self) -> PathBuf {
        self.root.join("packages")
    }

    /// Unpacked layers, by digest, shared by every package.
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Caches that can be rebuilt (compiled plugins, tag lists).
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Tag lists of repositories, kept briefly (`update`).
    pub fn tag_cache(&self) -> PathBuf {
        self.cache().join("tags")
    }

    /// Small registry blobs (image configs, signature payloads) by digest.
    pub fn blob_cache(&self) -> PathBuf {
        self.cache().join("blobs")
    }

    /// Compiled user-layer plugins (system plugins are cached only where the system layer says).
    pub fn plugin_cache(&self) -> PathBuf {
        self.cache().join("plugins")
    }

    /// The cached Sigstore public-good trusted root.
    pub fn trust_cache(&self) -> PathBuf {
        self.root.join("trust")
    }

    /// Staging directories of runs in progress (and leftovers of killed ones).
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The lock file that serialises gantry processes on this home.
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The tag ledger: every digest each tag was seen to name.
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger.jsonl")
    }

    /// Decision records waiting for the syslog collector.
    pub fn decision_outbox(&self) -> PathBuf {
        self.root.join("decision-outbox.jsonl")
    }

    /// The hash-chained log of install decisions.
    pub fn decisions(&self) -> PathBuf {
        self.root.join("decisions.jsonl")
    }

    /// Present while the store was last found whole and nothing changed since: runs then skip
    /// looking over every package for what a killed run left (see [`Store::clean_leftovers`]).
    pub fn checked(&self) -> PathBuf {
        self.root.join("checked")
    }
}

/// The store rooted at a gantry home.
#[derive(Debug, Clone)]
pub struct Store {
    home: Home,
}

pub use crate::ledger::Sighting;

const DIGEST_DIR_PREFIX: &str = "sha256-";
/// The hook document a version was installed under, in its version directory.
pub const DOCUMENT_FILE: &str = "document.json";
/// Marks a pinned package, in its package directory.
const PIN_FILE: &str = "pinned";

/// One installed version of a package.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub digest: String,
    pub metadata: PackageMetadata,
    /// `current` points at it.
    pub current: bool,
}

fn read_metadata(p: &Path) -> Result<PackageMetadata, StoreError> {
    let bytes = fs::read(p).map_err(io(p))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: p.to_path_buf(),
        message: e.to_string(),
    })
}

impl Store {
    /// Opens (creating the layout of) the store at `home`.
    pub fn open(home: &Home) -> Result<Store, StoreError> {
        for p in [
            home.bin(),
            home.packages(),
            home.layers(),
            home.cache(),
            home.tmp(),
        ] {
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(Store { home: home.clone() })
    }

    /// The home this store lives in.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Takes the exclusive lock that serialises gantry processes on this home (waits for it).
    pub fn lock(&self) -> Result<Lock, StoreError> {
        let (p, f) = self.lock_file()?;
        f.lock().map_err(io(&p))?;
        Ok(Lock { _file: f })
    }

    fn lock_file(&self) -> Result<(PathBuf, File), StoreError> {
        let p = self.home.lock();
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io(&p))?;
        Ok((p, f))
    }

    /// Takes the lock only if no other gantry process holds it (`None` when one does).
    pub fn try_lock(&self) -> Result<Option<Lock>, StoreError> {
        let (p, f) = self.lock_file()?;
        match f.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(&p)(e)),
        }
    }

    /// For commands that only read the store (`list`): finishes or undoes what a killed run left,
    /// when no other gantry process is at work (one that is may be in the middle of a change,
    /// which it finishes itself).
    pub fn recover_if_idle(&self) -> Result<(), StoreError> {
        match self.try_lock()? {
            Some(_lock) => self.clean_leftovers(),
            None => Ok(()),
        }
    }

    /// Finishes or undoes what killed runs left, so the store shows the old state or the new
    /// one: removes staging, layer temp dirs and wrapper temp files; removes a package that
    /// never got a `current` (a first install killed before its flip); writes back the wrapper
    /// of a package whose `current` is whole (an install killed between the flip and the
    /// wrapper); removes our wrappers whose package is gone (a remove killed between its rename
    /// and the wrapper). The look over every package is skipped while the `checked` mark says
    /// nothing changed since the last one. Call with the lock held.
    pub fn clean_leftovers(&self) -> Result<(), StoreError> {
        let tmp = self.home.tmp();
        for e in fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            remove_any(&e.path())?;
        }
        let layers = self.home.layers();
        for e in fs::read_dir(&layers).map_err(io(&layers))?.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp") {
                remove_any(&e.path())?;
            }
        }
        // Every change to packages and wrappers first removes the `checked` mark (see
        // `changing`), so while it is there nothing below can have been left half done.
        let checked = self.home.checked();
        if checked.is_file() {
            return Ok(());
        }
        let mut fixed = false;
        let pkgs = self.home.packages();
        for e in fs::read_dir(&pkgs).map_err(io(&pkgs))?.flatten() {
            let current = fs::read_link(e.path().join("current")).ok();
            let name = e.file_name().to_string_lossy().into_owned();
            if validate_name(&name).is_ok() && e.path().is_dir() {
                let whole =
                    |d: &Path| d.join("metadata.json").is_file() && d.join("launch").is_file();
                match &current {
                    // A first install killed before `current` existed: undo it, in one step.
                    None => {
                        let trash = self
                            .home
                            .tmp()
                            .join(format!("undo-{name}-{}", std::process::id()));
                        if fs::rename(e.path(), &trash).is_ok() {
                            let _ = remove_any(&trash);
                        }
                        fixed = true;
                        continue;
                    }
                    // Installed and whole: the wrapper must be there too.
                    Some(c) if whole(&e.path().join(c)) => {
                        let w = self.wrapper_path(&name);
                        if fs::symlink_metadata(&w).is_err() {
                            self.write_wrapper(&name)?;
                            fixed = true;
                        }
                    }
                    Some(_) => {}
                }
            }
            if let Ok(rd) = fs::read_dir(e.path()) {
                for f in rd.flatten() {
                    let n = f.file_name();
                    let n = n.to_string_lossy();
                    if n.starts_with(".current.") {
                        let _ = fs::remove_file(f.path());
                        fixed = true;
                    }
                    // A version that is not whole (left half-deleted by an older gantry), never the
                    // current one. Whole earlier versions are kept for rollback.
                    let whole = f.path().join("metadata.json").is_file()
                        && f.path().join("launch").is_file();
                    if n.starts_with(DIGEST_DIR_PREFIX)
                        && !whole
                        && current
                            .as_deref()
                            .is_some_and(|c| c.as_os_str() != f.file_name())
                    {
                        let _ = remove_any(&f.path());
                        fixed = true;
                    }
                }
            }
        }
        // Wrapper temp files, and our wrappers whose package is gone (a remove killed midway).
        let bin = self.home.bin();
        for e in fs::read_dir(&bin).map_err(io(&bin))?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let temp = n.starts_with('.') && n.ends_with(".tmp");
            let orphan = validate_name(&n).is_ok()
                && shim::is_our_wrapper(&e.path())
                && self.current_digest(&n).is_none();
            if temp || orphan {
                let _ = fs::remove_file(e.path());
                fixed = true;
            }
        }
        // What was put right above is on disk before the mark that says so.
        if fixed {
            sync_fs(self.home.root())?;
        }
        File::create(&checked).map_err(io(&checked))?;
        Ok(())
    }

    /// Called before any change to packages or wrappers: removes the `checked` mark (synced),
    /// so that should this run be killed midway, the next one looks the whole store over.
    fn changing(&self) -> Result<(), StoreError> {
        let checked = self.home.checked();
        match fs::remove_file(&checked) {
            Ok(()) => File::open(self.home.root())
                .and_then(|d| d.sync_all())
                .map_err(io(self.home.root())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&checked)(e)),
        }
    }

    /// A fresh staging directory on the store's filesystem (removed on drop unless committed).
    pub fn staging(&self) -> Result<tempfile::TempDir, StoreError> {
        let tmp = self.home.tmp();
        tempfile::Builder::new()
            .prefix("stage-")
            .tempdir_in(&tmp)
            .map_err(io(&tmp))
    }

    /// Where an unpacked layer is cached.
    pub fn layer_dir(&self, digest: &str) -> PathBuf {
        self.home.layers().join(crate::registry::digest_hex(digest))
    }

    /// A temp dir name for a layer being unpacked (cleaned up if left over).
    pub fn layer_tmp_dir(&self, digest: &str) -> PathBuf {
        self.home.layers().join(format!(
            ".tmp-{}-{}",
            crate::registry::digest_hex(digest),
            std::process::id()
        ))
    }

    /// The directory of a package.
    pub fn package_dir(&self, name: &str) -> PathBuf {
        self.home.packages().join(name)
    }

    /// The final directory of one version of a package.
    pub fn version_dir(&self, name: &str, digest: &str) -> PathBuf {
        self.package_dir(name).join(format!(
            "{DIGEST_DIR_PREFIX}{}",
            crate::registry::digest_hex(digest)
        ))
    }

    /// The wrapper path of a package.
    pub fn wrapper_path(&self, name: &str) -> PathBuf {
        self.home.bin().join(name)
    }

    /// The digest `current` points at, if the package is installed.
    pub fn current_digest(&self, name: &str) -> Option<String> {
        let target = fs::read_link(self.package_dir(name).join("current")).ok()?;
        let n = target.file_name()?.to_string_lossy().into_owned();
        n.strip_prefix(DIGEST_DIR_PREFIX)
            .map(|h| format!("sha256:{h}"))
    }

    /// Metadata of the current version.
    pub fn current_metadata(&self, name: &str) -> Result<PackageMetadata, StoreError> {
        let p = self.package_dir(name).join("current").join("metadata.json");
        let bytes = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotInstalled(name.into())
            } else {
                StoreError::Io {
                    path: p.clone(),
                    source: e,
                }
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: p,
            message: e.to_string(),
        })
    }

    /// Fails if `bin/NAME` exists and is not ours.
    pub fn check_wrapper_free(&self, name: &str) -> Result<(), StoreError> {
        let w = self.wrapper_path(name);
        if fs::symlink_metadata(&w).is_ok() && !shim::is_our_wrapper(&w) {
            return Err(StoreError::NotOurs(w));
        }
        Ok(())
    }

    /// Makes a staged version visible: fsync, rename into `packages/NAME/sha256-HEX`, flip
    /// `current`, write the wrapper, and drop versions beyond the `keep` newest. Each step is atomic on its own and
    /// the order makes every intermediate state a working one.
    pub fn commit(
        &self,
        name: &str,
        digest: &str,
        staged: tempfile::TempDir,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.check_wrapper_free(name)?;
        self.changing()?;
        let pkg = self.package_dir(name);
        fs::create_dir_all(&pkg).map_err(io(&pkg))?;
        let dest = self.version_dir(name, digest);
        sync_fs(staged.path())?;
        if dest.exists() {
            // A leftover of an interrupted run for the same digest, not pointed at by current
            // (the caller checked): replace it.
            remove_any(&dest)?;
        }
        let staged_path = staged.keep();
        fs::rename(&staged_path, &dest).map_err(io(&dest))?;
        fsync_dir(&pkg)?;
        // Flip `current` atomically: make a new symlink, rename it over the old one.
        let tmp_link = pkg.join(format!(".current.{}", std::process::id()));
        let _ = fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink(dest.file_name().unwrap(), &tmp_link).map_err(io(&tmp_link))?;
        fs::rename(&tmp_link, pkg.join("current")).map_err(io(&pkg))?;
        fsync_dir(&pkg)?;
        self.write_wrapper(name)?;
        self.prune(name, keep)
    }

    /// Drops the versions of `name` beyond the `keep` newest (the current one always stays).
    /// Each goes in one atomic step (renamed into the staging area, deleted there), so a version
    /// directory under the package is always whole.
    pub fn prune(&self, name: &str, keep: usize) -> Result<(), StoreError> {
        self.changing()?;
        let current = self.current_digest(name);
        let others: Vec<VersionInfo> = self
            .versions(name)?
            .into_iter()
            .filter(|v| Some(&v.digest) != current.as_ref())
            .collect();
        for old in others.into_iter().skip(keep.saturating_sub(1)) {
            let dir = self.version_dir(name, &old.digest);
            let trash = self.home.tmp().join(format!(
                "prune-{name}-{}-{}",
                crate::registry::digest_hex(&old.digest),
                std::process::id()
            ));
            fs::rename(&dir, &trash).map_err(io(&dir))?;
            let _ = remove_any(&trash);
        }
        fsync_dir(&self.package_dir(name))
    }

    /// Every whole version of `name` on disk (current included), newest install first.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let pkg = self.package_dir(name);
        let rd = match fs::read_dir(&pkg) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&pkg)(e)),
        };
        let current = self.current_digest(name);
        let mut out = Vec::new();
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = n.strip_prefix(DIGEST_DIR_PREFIX) else {
                continue;
            };
            let digest = format!("sha256:{hex}");
            let Ok(meta) = read_metadata(&e.path().join("metadata.json")) else {
                continue; // not whole: leftovers are for clean_leftovers
            };
            out.push(VersionInfo {
                current: current.as_deref() == Some(digest.as_str()),
                digest,
                metadata: meta,
            });
        }
        out.sort_by(|a, b| b.metadata.installed_at.cmp(&a.metadata.installed_at));
        Ok(out)
    }

    /// Makes an installed version of `name` current again (atomic flip, then the wrapper).
    pub fn set_current(&self, name: &str, digest: &str) -> Result<(), StoreError> {
        self.changing()?;
        let dest = self.version_dir(name, digest);
        if !dest.join("metadata.json").is_file() {
            return Err(StoreError::Corrupt {
                path: dest,
                message: "no such installed version".into(),
            });
        }
        self.check_wrapper_free(name)?;
        let pkg = self.package_dir(name);
        let tmp_link = pkg.join(format!(".current.{}", std::process::id()));
        let _ = fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink(dest.file_name().unwrap_or_default(), &tmp_link)
            .map_err(io(&tmp_link))?;
        fs::rename(&tmp_link, pkg.join("current")).map_err(io(&pkg))?;
        fsync_dir(&pkg)?;
        self.write_wrapper(name)
    }

    /// The hook document recorded when a version was installed (`None` for versions installed
    /// before gantry recorded it).
    pub fn recorded_document(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Option<crate::document::HookDocument>, StoreError> {
        let p = self.version_dir(name, digest).join(DOCUMENT_FILE);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&p)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: p,
                message: e.to_string(),
            })
    }

    /// Pins or unpins a package (`update` leaves pinned packages alone).
    pub fn set_pinned(&self, name: &str, pinned: bool) -> Result<(), StoreError> {
        validate_name(name)?;
        if self.current_digest(name).is_none() {
            return Err(StoreError::NotInstalled(name.into()));
        }
        let p = self.package_dir(name).join(PIN_FILE);
        if pinned {
            fs::write(&p, b"pinned\n").map_err(io(&p))
        } else {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&p)(e)),
                _ => Ok(()),
            }
        }
    }

    /// Whether `update` must leave the package alone.
    pub fn is_pinned(&self, name: &str) -> bool {
        self.package_dir(name).join(PIN_FILE).exists()
    }

    fn write_wrapper(&self, name: &str) -> Result<(), StoreError> {
        let w = self.wrapper_path(name);
        let launch = self.package_dir(name).join("current").join("launch");
        let body = shim::wrapper_script(name, &launch);
        if fs::read_to_string(&w).is_ok_and(|b| b == body) {
            return Ok(());
        }
        self.changing()?;
        let tmp = self.home.bin().join(format!(".{name}.tmp"));
        write_executable(&tmp, body.as_bytes())?;
        fs::rename(&tmp, &w).map_err(io(&w))
    }

    /// Removes a package. The one atomic step comes first (the package dir renamed away: from
    /// then on it is not installed), then the wrapper, then the files; a kill at any point leaves
    /// either the package whole or gone, and [`Store::clean_leftovers`] finishes the rest.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let pkg = self.package_dir(name);
        if !pkg.exists() {
            return Err(StoreError::NotInstalled(name.into()));
        }
        self.changing()?;
        let trash = self
            .home
            .tmp()
            .join(format!("remove-{name}-{}", std::process::id()));
        fs::rename(&pkg, &trash).map_err(io(&pkg))?;
        fsync_dir(&self.home.packages())?;
        let w = self.wrapper_path(name);
        if shim::is_our_wrapper(&w) {
            fs::remove_file(&w).map_err(io(&w))?;
        }
        remove_any(&trash)
    }

    /// Writes the wrapper of an installed package back if it is missing (a run killed between
    /// the flip of `current` and the wrapper).
    pub fn ensure_wrapper(&self, name: &str) -> Result<(), StoreError> {
        self.check_wrapper_free(name)?;
        self.write_wrapper(name)
    }

    /// Installed package names with their current metadata.
    pub fn list(&self) -> Result<Vec<PackageMetadata>, StoreError> {
        let dir = self.home.packages();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(io(&dir))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .filter_map(|n| self.current_metadata(&n).ok())
            .collect())
    }

    /// The tag ledger of this home.
    pub fn ledger(&self) -> crate::ledger::Ledger {
        crate::ledger::Ledger::at(&self.home.ledger())
    }
}

/// Writes a file with mode 0755.
pub fn write_executable(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)
        .map_err(io(path))?;
    f.write_all(body).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Removes a file, symlink or tree; absent is fine.
pub fn remove_any(p: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            make_writable(p);
            fs::remove_dir_all(p).map_err(io(p))
        }
        Ok(_) => fs::remove_file(p).map_err(io(p)),
    }
}

/// Images may ship read-only directories; removal needs write permission on them.
fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&d) else {
            continue;
        };
        if !m.is_dir() {
            continue;
        }
        if m.permissions().mode() & 0o700 != 0o700 {
            let _ = fs::set_permissions(
                &d,
                fs::Permissions::from_mode(m.permissions().mode() | 0o700),
            );
        }
        if let Ok(rd) = fs::read_dir(&d) {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
}

fn fsync_dir(p: &Path) -> Result<(), StoreError> {
    File::open(p).and_then(|f| f.sync_all()).map_err(io(p))
}

/// Flushes everything written under `p` to disk (one `syncfs` rather than an fsync per file).
pub fn sync_fs(p: &Path) -> Result<(), StoreError> {
    let f = File::open(p).map_err(io(p))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which stays open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(StoreError::Io {
                path: p.into(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: sync has no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    drop(f);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "", "..", ".hidden", "a/b", "../x", "a b", "x\0y", "-rf", "_x", "-", "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["jq", "gh-cli", "python3.12", "a_b", "7zip", "X"] {
            validate_name(good).unwrap();
        }
    }

    /// A staged version of `digest` installed at `at` (whole: launch and metadata).
    fn staged(s: &Store, digest: &str, at: &str) -> tempfile::TempDir {
        let st = s.staging().unwrap();
        std::fs::write(st.path().join("launch"), digest.as_bytes()).unwrap();
        let meta = PackageMetadata {
            name: "tool".into(),
            reference: "r.example/tool:1".into(),
            registry: "r".into(),
            digest: digest.into(),
            index_digest: None,
            platform: Default::default(),
            installed_at: at.into(),
            entrypoint: "/tool".into(),
            args: vec![],
            signatures: vec![],
            attestations: serde_json::Value::Null,
            verdicts: serde_json::Value::Null,
            allow_unsigned: false,
            layers: vec![],
        };
        std::fs::write(
            st.path().join("metadata.json"),
            serde_json::to_vec(&meta).unwrap(),
        )
        .unwrap();
        st
    }

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn commit_flips_current_keeps_the_versions_asked_for_and_foreign_files() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let (d1, d2, d3) = (digest('1'), digest('2'), digest('3'));
        for (d, at) in [(&d1, "2026-01-01T00:00:01Z"), (&d2, "2026-01-01T00:00:02Z")] {
            s.commit("tool", d, staged(&s, d, at), 2).unwrap();
            assert_eq!(s.current_digest("tool").as_deref(), Some(d.as_str()));
        }
        let kept: Vec<String> = s
            .versions("tool")
            .unwrap()
            .into_iter()
            .map(|v| v.digest)
            .collect();
        assert_eq!(
            kept,
            [d2.clone(), d1.clone()],
            "current and one before, newest first"
        );
        s.commit("tool", &d3, staged(&s, &d3, "2026-01-01T00:00:03Z"), 2)
            .unwrap();
        assert!(
            !s.version_dir("tool", &d1).exists(),
            "the oldest is dropped"
        );
        assert!(s.version_dir("tool", &d2).exists());
        // Back to the one before, then keep only the current one.
        s.set_current("tool", &d2).unwrap();
        assert_eq!(s.current_digest("tool").as_deref(), Some(d2.as_str()));
        s.prune("tool", 1).unwrap();
        assert!(!s.version_dir("tool", &d3).exists());
        assert!(
            s.set_current("tool", &d3).is_err(),
            "a version that is gone"
        );
        assert!(shim::is_our_wrapper(&s.wrapper_path("tool")));
        std::fs::write(s.wrapper_path("mine"), "#!/bin/sh\necho mine\n").unwrap();
        assert!(matches!(
            s.commit("mine", &d1, staged(&s, &d1, "t"), 2),
            Err(StoreError::NotOurs(_))
        ));
        assert_eq!(
            std::fs::read_to_string(s.wrapper_path("mine")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        // Pins.
        assert!(!s.is_pinned("tool"));
        s.set_pinned("tool", true).unwrap();
        assert!(s.is_pinned("tool"));
        s.set_pinned("tool", false).unwrap();
        assert!(!s.is_pinned("tool"));
        assert!(s.set_pinned("nope", true).is_err());
    }

    #[test]
    fn the_look_over_every_package_runs_after_any_change_began_and_only_then() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let d1 = format!("sha256:{}", "1".repeat(64));
        let checked = home.path().join("checked");
        assert!(
            !checked.exists(),
            "a fresh (or older) store is not known to be whole"
        );
        s.commit("a", &d1, staged(&s, &d1, "t"), 2).unwrap();
        assert!(!checked.exists());
        s.clean_leftovers().unwrap();
        assert!(checked.is_file(), "a full look found it whole");
        // Hostile: a change began and the run was killed before the wrapper (the mark went
        // first, so the next run looks everything over and puts the wrapper back).
        s.changing().unwrap();
        assert!(!checked.exists());
        std::fs::remove_file(s.wrapper_path("a")).unwrap();
        s.clean_leftovers().unwrap();
        assert!(shim::is_our_wrapper(&s.wrapper_path("a")));
        assert!(checked.is_file());
        // Every kind of change takes the mark away before it starts.
        let steps: [(&str, &dyn Fn()); 3] = [
            ("set_current", &|| s.set_current("a", &d1).unwrap()),
            ("prune", &|| s.prune("a", 1).unwrap()),
            ("remove", &|| s.remove("a").unwrap()),
        ];
        for (what, step) in steps {
            std::fs::write(&checked, "").unwrap();
            step();
            assert!(!checked.exists(), "{what} left the mark");
        }
        std::fs::write(&checked, "").unwrap();
        s.commit("a", &d1, staged(&s, &d1, "t"), 2).unwrap();
        assert!(!checked.exists(), "commit left the mark");
    }

    #[test]
    fn leftovers_of_killed_runs_are_finished() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        for (name, d) in [("a", &d1), ("b", &d2)] {
            s.commit(name, d, staged(&s, d, "2026-01-01T00:00:00Z"), 2)
                .unwrap();
        }
        // A remove killed after its rename: the wrapper of a package that is gone.
        std::fs::rename(s.package_dir("b"), home.path().join("tmp/remove-b-1")).unwrap();
        // An install killed while writing a wrapper, an update killed while deleting the old
        // version.
        std::fs::write(home.path().join("bin/.c.tmp"), "x").unwrap();
        std::fs::create_dir_all(s.version_dir("a", &d2).join("rootfs/half")).unwrap();
        s.clean_leftovers().unwrap();
        assert!(!s.wrapper_path("b").exists() && !home.path().join("bin/.c.tmp").exists());
        assert!(!s.version_dir("a", &d2).exists());
        assert_eq!(s.current_digest("a").as_deref(), Some(d1.as_str()));
        assert!(shim::is_our_wrapper(&s.wrapper_path("a")));
        // A commit killed before its wrapper: ensure_wrapper writes it back.
        std::fs::remove_file(s.wrapper_path("a")).unwrap();
        s.ensure_wrapper("a").unwrap();
        assert!(shim::is_our_wrapper(&s.wrapper_path("a")));
        assert_eq!(
            std::fs::read_dir(home.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
