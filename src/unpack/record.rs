//! The on-disk record of an unpacked layer: `layer.json` (the cleaned entries in tar order, plus
//! the blob digest and size) next to the bodies in `files/`. It owns the format and its re-checks
//! on open; it must never hand compose a path that is not clean, whoever wrote the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bodies;
use super::paths;
use super::UnpackError;

pub(crate) const META_FILE: &str = "layer.json";
pub(crate) const META_FORMAT: u32 = 1;

/// One cleaned entry of a layer, as replayed by compose. Paths are root-relative, `/`-separated,
/// without `.`/`..`; modes are permission bits (`mode` stripped of setuid/setgid/sticky).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LayerEntry {
    /// A directory.
    Dir {
        path: String,
        mode: u32,
        original_mode: u32,
        mtime: i64,
    },
    /// A regular file whose body is `files/<shard>/<body>` in the layer dir.
    File {
        path: String,
        body: u64,
        mode: u32,
        original_mode: u32,
        size: u64,
        mtime: i64,
    },
    /// A symlink; the target is kept verbatim (it is resolved inside the root when followed).
    Symlink {
        path: String,
        target: String,
        original_mode: u32,
    },
    /// A hardlink to another path of the rootfs (this layer's or a lower one's).
    Hardlink { path: String, target: String },
    /// `.wh.NAME`: removes `path` from lower layers.
    Whiteout { path: String },
    /// `.wh..wh..opq`: hides lower layers' contents of `dir` ("" is the root).
    Opaque { dir: String },
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Meta {
    pub format: u32,
    pub digest: String,
    pub size: u64,
    /// Device nodes, FIFOs and unknown entry types left out.
    pub skipped: u64,
    /// Decompressed bytes charged to the image budget when it was unpacked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decompressed: Option<u64>,
    pub entries: Vec<LayerEntry>,
}

/// A verified, unpacked layer dir, re-openable with [`UnpackedLayer::open`].
#[derive(Debug, Clone)]
pub struct UnpackedLayer {
    pub(crate) dir: PathBuf,
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) skipped: u64,
    pub(crate) decompressed: Option<u64>,
    pub(crate) entries: Vec<LayerEntry>,
}

impl UnpackedLayer {
    /// Re-opens a layer dir written by [`unpack_layer`], re-checking every path in its metadata.
    pub fn open(dir: &Path) -> Result<UnpackedLayer, UnpackError> {
        let bad = |reason: String| UnpackError::BadLayerDir {
            path: dir.to_path_buf(),
            reason,
        };
        let text = std::fs::read(dir.join(META_FILE))
            .map_err(|e| bad(format!("cannot read {META_FILE}: {e}")))?;
        let meta: Meta = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("{META_FILE} is malformed: {e}")))?;
        if meta.format != META_FORMAT {
            return Err(bad(format!(
                "{META_FILE} has format {}, expected {META_FORMAT}",
                meta.format
            )));
        }
        for e in &meta.entries {
            let (p, extra) = match e {
                LayerEntry::Dir { path, .. }
                | LayerEntry::File { path, .. }
                | LayerEntry::Symlink { path, .. } => (path, None),
                LayerEntry::Hardlink { path, target } => (path, Some(target)),
                LayerEntry::Whiteout { path } => (path, None),
                LayerEntry::Opaque { dir } if dir.is_empty() => continue,
                LayerEntry::Opaque { dir } => (dir, None),
            };
            if !paths::is_clean(p) || extra.is_some_and(|t| !paths::is_clean(t)) {
                return Err(bad(format!("{META_FILE} holds an unclean path '{p}'")));
            }
        }
        Ok(UnpackedLayer {
            dir: dir.to_path_buf(),
            digest: meta.digest,
            size: meta.size,
            skipped: meta.skipped,
            decompressed: meta.decompressed,
            entries: meta.entries,
        })
    }

    /// The layer dir was renamed to `dir` (from the temp dir it was unpacked into).
    pub fn moved_to(&mut self, dir: &Path) {
        self.dir = dir.to_path_buf();
    }

    /// The layer dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The digest of the compressed blob (`sha256:…`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The size of the compressed blob.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many device nodes, FIFOs or unknown-type entries were left out.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Charges a layer reused from the cache to an image's budget exactly as unpacking it did:
    /// its entries, its decompressed bytes, and the per-file cap. Limits apply to what is
    /// installed, not only to what was downloaded.
    pub fn charge(
        &self,
        limits: &super::Limits,
        budget: &super::Budget,
    ) -> Result<(), UnpackError> {
        for e in &self.entries {
            budget.charge_entry()?;
            if let LayerEntry::File { path, size, .. } = e {
                if *size > limits.max_file_bytes {
                    return Err(UnpackError::Limit(format!(
                        "layer {}: file '{path}' is {size} bytes (max_file_bytes {})",
                        self.digest, limits.max_file_bytes
                    )));
                }
            }
        }
        for _ in 0..self.skipped {
            budget.charge_entry()?;
        }
        // Entries cached before the decompressed size was recorded: their file bytes at least.
        let bytes = self.decompressed.unwrap_or_else(|| {
            self.entries
                .iter()
                .map(|e| {
                    if let LayerEntry::File { size, .. } = e {
                        *size
                    } else {
                        0
                    }
                })
                .sum()
        });
        budget.charge_bytes(bytes)
    }

    /// The cleaned entries, in tar order.
    pub fn entries(&self) -> &[LayerEntry] {
        &self.entries
    }

    /// Where the body of a `File` entry lives.
    pub fn body_path(&self, body: u64) -> PathBuf {
        bodies::body_path(&self.dir, body)
    }
}
