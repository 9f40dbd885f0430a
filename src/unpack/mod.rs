//! The layer unpacker: turns OCI layer blobs into a staged rootfs, safely and fast.
//!
//! It owns three steps. [`unpack_layer`] streams one blob through a sha256/size check, a decompressor
//! and our own bounded tar reader, and stores the layer as a *replayable* record: every regular file
//! body goes to a generated name under the layer dir (`files/<shard>/<n>`), and every entry (dirs,
//! symlinks, hardlinks, whiteouts, opaque markers) is kept, cleaned, in `layer.json`. No name taken
//! from the tar is ever used as a host path at that stage. [`compose_layers`] then replays the layers in order
//! into a fresh rootfs, resolving every path chroot-style inside it (symlinks from any layer are
//! followed but clamped to the root) and hardlinking bodies from the layer dirs.
//!
//! It must never create, write, chmod or link anything outside the directories it was given, never
//! trust a declared size for an allocation, never emit whiteout files, device nodes or FIFOs, and never
//! leave a partial layer dir behind on error. Ownership (chown) is not applied: we run unprivileged.

mod bodies;
mod compose;
mod decode;
mod layer;
mod paths;
mod pax;
mod record;
mod tarstream;
mod verify;

#[cfg(test)]
mod breakout_tests;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(test)]
pub use compose::compose;
pub use compose::compose_layers;
pub use layer::unpack_layer;
pub use record::{LayerEntry, UnpackedLayer};

/// Caps against decompression bombs; defaults are sane, overridable from config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Limits {
    /// Decompressed tar bytes (headers included) across all layers of one image.
    pub max_total_bytes: u64,
    /// Tar entries across all layers of one image.
    pub max_entries: u64,
    /// Logical size of any one file (sparse files count their full size).
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 8 << 30,
            max_entries: 1_000_000,
            max_file_bytes: 4 << 30,
        }
    }
}

/// Shared across the layers of one image (layers unpack in parallel threads): counts total bytes
/// and entries against [`Limits`] atomically, so the sum over all layers is capped, not each one.
#[derive(Debug)]
pub struct Budget {
    max_bytes: u64,
    max_entries: u64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

impl Budget {
    /// A fresh budget for one image.
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            max_bytes: limits.max_total_bytes,
            max_entries: limits.max_entries,
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    /// Charges `n` decompressed bytes; fails once the image total passes the cap.
    pub fn charge_bytes(&self, n: u64) -> Result<(), UnpackError> {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if total > self.max_bytes {
            return Err(UnpackError::Limit(format!(
                "image decompresses to more than {} bytes (max_total_bytes)",
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Charges one tar entry; fails once the image total passes the cap.
    pub fn charge_entry(&self) -> Result<(), UnpackError> {
        let total = self
            .entries
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if total > self.max_entries {
            return Err(UnpackError::Limit(format!(
                "image has more than {} entries (max_entries)",
                self.max_entries
            )));
        }
        Ok(())
    }

    /// Bytes charged so far.
    pub fn bytes_used(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Entries charged so far.
    pub fn entries_used(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip, possibly multi-member.
    Gzip,
    /// zstd, possibly multi-frame with skippable frames.
    Zstd,
}

impl Compression {
    /// Maps an OCI or Docker layer media type; anything else (including foreign bzip2/xz
    /// layers) is an error, never a guess.
    pub fn from_media_type(mt: &str) -> Result<Compression, UnpackError> {
        match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Ok(Compression::Zstd)
            }
            other => Err(UnpackError::MediaType(other.to_string())),
        }
    }
}

/// Everything that can go wrong while unpacking or composing layers.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The media type is not a layer type we can read.
    #[error("unsupported layer media type '{0}' (expected an OCI or Docker tar, tar+gzip or tar+zstd layer)")]
    MediaType(String),
    /// The expected digest is not `sha256:<64 hex>`.
    #[error("unsupported or malformed layer digest '{0}' (expected sha256:<64 hex digits>)")]
    BadDigest(String),
    /// The blob's bytes do not hash to the expected digest.
    #[error(
        "layer {expected}: content hashes to {actual}; the blob is corrupt or was tampered with"
    )]
    DigestMismatch { expected: String, actual: String },
    /// The transfer of the blob broke off: it ended early, or the connection failed. A transfer
    /// failure (retry it), not tampering: the bytes that did arrive may well be right.
    #[error("layer {digest}: transfer ended after {received} of {expected} bytes{}", cause.as_deref().map(|c| format!(": {c}")).unwrap_or_default())]
    Truncated {
        digest: String,
        expected: u64,
        received: u64,
        cause: Option<String>,
    },
    /// The blob is longer than its descriptor says.
    #[error("layer {digest}: blob is {actual} bytes, descriptor says {expected}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: String,
    },
    /// The gzip or zstd stream is corrupt.
    #[error("layer {digest}: cannot decompress: {source}")]
    Decompress {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    /// The tar stream is malformed, truncated or hostile.
    #[error("layer {digest}: invalid tar at entry '{entry}': {reason}")]
    Tar {
        digest: String,
        entry: String,
        reason: String,
    },
    /// A cap in [`Limits`] was exceeded.
    #[error("layer over limits: {0}")]
    Limit(String),
    /// Writing the layer or the rootfs failed.
    #[error("{what} '{path}': {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A path in a layer cannot be placed safely inside the root.
    #[error("layer {digest}: unsafe path '{path}': {reason}")]
    UnsafePath {
        digest: String,
        path: String,
        reason: String,
    },
    /// A cached layer dir is missing or has a metadata file we did not write.
    #[error("unpacked layer at '{path}' is unusable: {reason}")]
    BadLayerDir { path: PathBuf, reason: String },
}

impl UnpackError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> UnpackError {
        UnpackError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// fsyncs every file and directory under `root` (bottom-up), for callers that commit a tree by
/// rename. Unpacking itself never fsyncs per file.
pub fn sync_tree(root: &Path) -> Result<(), UnpackError> {
    let meta = std::fs::symlink_metadata(root).map_err(|e| UnpackError::io("stat", root, e))?;
    if meta.is_dir() {
        let rd = std::fs::read_dir(root).map_err(|e| UnpackError::io("read dir", root, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| UnpackError::io("read dir", root, e))?;
            sync_tree(&ent.path())?;
        }
    } else if !meta.is_file() {
        return Ok(());
    }
    let f = std::fs::File::open(root).map_err(|e| UnpackError::io("open", root, e))?;
    f.sync_all().map_err(|e| UnpackError::io("fsync", root, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_map_and_unknown_is_error() {
        use Compression::*;
        let ok = [
            ("application/vnd.oci.image.layer.v1.tar", None),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Zstd),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
        ];
        for (mt, c) in ok {
            assert_eq!(Compression::from_media_type(mt).unwrap(), c, "{mt}");
        }
        for bad in [
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "",
            "application/json",
        ] {
            assert!(
                matches!(
                    Compression::from_media_type(bad),
                    Err(UnpackError::MediaType(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn budget_is_shared_and_caps_totals() {
        let b = Budget::new(&Limits {
            max_total_bytes: 100,
            max_entries: 2,
            max_file_bytes: 10,
        });
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| b.charge_bytes(50).unwrap());
            }
        });
        assert_eq!(b.bytes_used(), 100);
        assert!(b.charge_bytes(1).is_err());
        b.charge_entry().unwrap();
        b.charge_entry().unwrap();
        assert!(matches!(b.charge_entry(), Err(UnpackError::Limit(_))));
    }

    #[test]
    fn sync_tree_walks_files_dirs_and_skips_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/nonexistent", tmp.path().join("a/dangling")).unwrap();
        sync_tree(tmp.path()).unwrap();
        assert!(sync_tree(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn limits_default_and_partial_config() {
        let l: Limits = serde_json::from_str(r#"{"max_entries": 5}"#).unwrap();
        assert_eq!(l.max_entries, 5);
        assert_eq!(l.max_total_bytes, Limits::default().max_total_bytes);
    }
}
