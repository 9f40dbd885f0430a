//! One layer blob → one unpacked layer dir: `files/` (bodies under generated names) and `layer.json`
//! (the cleaned entries, in tar order). It owns the streaming pipeline (verify → decompress → count
//! → tar) and the per-entry decisions (clean names, classify whiteouts, skip devices/FIFOs, strip
//! setuid/setgid/sticky, enforce caps). It must never create a host path from a tar name, and it
//! removes `dest` on any error. `layer.json` is written last, only once the digest matched.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::bodies::{self, Job};
use super::paths::{self, Named};
use super::tarstream::{Kind, TarError, TarStream};
use super::verify::{parse_digest, VerifyingReader};
use super::{Budget, Compression, Limits, UnpackError};

const META_FILE: &str = "layer.json";
const META_FORMAT: u32 = 1;

/// One cleaned entry of a layer, as replayed by compose. Paths are root-relative, `/`-separated,
/// without `.`/`..`; modes are permission bits (`mode` stripped of setuid/setgid/sticky).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LayerEntry {
    /// A directory.
    Dir { path: String, mode: u32, original_mode: u32, mtime: i64 },
    /// A regular file whose body is `files/<shard>/<body>` in the layer dir.
    File { path: String, body: u64, mode: u32, original_mode: u32, size: u64, mtime: i64 },
    /// A symlink; the target is kept verbatim (it is resolved inside the root when followed).
    Symlink { path: String, target: String, original_mode: u32 },
    /// A hardlink to another path of the rootfs (this layer's or a lower one's).
    Hardlink { path: String, target: String },
    /// `.wh.NAME`: removes `path` from lower layers.
    Whiteout { path: String },
    /// `.wh..wh..opq`: hides lower layers' contents of `dir` ("" is the root).
    Opaque { dir: String },
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: u32,
    digest: String,
    size: u64,
    /// Device nodes, FIFOs and unknown entry types left out.
    skipped: u64,
    entries: Vec<LayerEntry>,
}

/// A verified, unpacked layer dir, re-openable with [`UnpackedLayer::open`].
#[derive(Debug, Clone)]
pub struct UnpackedLayer {
    dir: PathBuf,
    digest: String,
    size: u64,
    skipped: u64,
    entries: Vec<LayerEntry>,
}

impl UnpackedLayer {
    /// Re-opens a layer dir written by [`unpack_layer`], re-checking every path in its metadata.
    pub fn open(dir: &Path) -> Result<UnpackedLayer, UnpackError> {
        let bad = |reason: String| UnpackError::BadLayerDir { path: dir.to_path_buf(), reason };
        let text = std::fs::read(dir.join(META_FILE)).map_err(|e| bad(format!("cannot read {META_FILE}: {e}")))?;
        let meta: Meta = serde_json::from_slice(&text).map_err(|e| bad(format!("{META_FILE} is malformed: {e}")))?;
        if meta.format != META_FORMAT {
            return Err(bad(format!("{META_FILE} has format {}, expected {META_FORMAT}", meta.format)));
        }
        for e in &meta.entries {
            let (p, extra) = match e {
                LayerEntry::Dir { path, .. } | LayerEntry::File { path, .. } | LayerEntry::Symlink { path, .. } => (path, None),
                LayerEntry::Hardlink { path, target } => (path, Some(target)),
                LayerEntry::Whiteout { path } => (path, None),
                LayerEntry::Opaque { dir } if dir.is_empty() => continue,
                LayerEntry::Opaque { dir } => (dir, None),
            };
            if !paths::is_clean(p) || extra.is_some_and(|t| !paths::is_clean(t)) {
                return Err(bad(format!("{META_FILE} holds an unclean path '{p}'")));
            }
        }
        Ok(UnpackedLayer { dir: dir.to_path_buf(), digest: meta.digest, size: meta.size, skipped: meta.skipped, entries: meta.entries })
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

    /// The cleaned entries, in tar order.
    pub fn entries(&self) -> &[LayerEntry] {
        &self.entries
    }

    /// Where the body of a `File` entry lives.
    pub fn body_path(&self, body: u64) -> PathBuf {
        bodies::body_path(&self.dir, body)
    }
}

/// Stream one layer blob: sha256 + size check of the raw (compressed) bytes, decompress, read tar,
/// write into `dest` (a fresh dir, created here, on the same filesystem as the final store).
/// Reads the stream to EOF (the digest covers all bytes; a longer blob is an error). On any error
/// the partial `dest` is removed. Safe to call from several threads at once with one [`Budget`].
pub fn unpack_layer<R: Read>(
    blob: R,
    expected_digest: &str,
    expected_size: u64,
    compression: Compression,
    dest: &Path,
    limits: &Limits,
    budget: &Budget,
) -> Result<UnpackedLayer, UnpackError> {
    let expected = parse_digest(expected_digest)?;
    std::fs::create_dir(dest).map_err(|e| UnpackError::io("create layer dir", dest, e))?;
    let result = unpack_into(blob, expected_digest, &expected, expected_size, compression, dest, limits, budget);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dest);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn unpack_into<R: Read>(
    blob: R,
    digest: &str,
    expected: &[u8; 32],
    expected_size: u64,
    compression: Compression,
    dest: &Path,
    limits: &Limits,
    budget: &Budget,
) -> Result<UnpackedLayer, UnpackError> {
    bodies::make_shards(dest)?;
    let mut verifier = VerifyingReader::new(blob, expected_size);
    let streamed = {
        let buffered = BufReader::with_capacity(256 * 1024, &mut verifier);
        let decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|source| UnpackError::Decompress { digest: digest.into(), source })?,
            ),
        };
        let charged = Charged { inner: decoder, budget, pending: 0 };
        let mut tar = TarStream::new(charged);
        let out = read_entries(&mut tar, digest, dest, limits, budget);
        if out.is_ok() {
            // Past the end-of-archive marker: decompress what is left (it is charged to the
            // budget) so the whole blob is read. Trailing garbage after the compressed stream is
            // not an error: the digest below covers every byte anyway.
            let mut rest = tar.into_inner();
            let mut sink = vec![0u8; 64 * 1024];
            loop {
                match rest.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => match take_unpack_error(e) {
                        Ok(limit) => return Err(limit),
                        Err(_) => break,
                    },
                }
            }
        }
        out
    };
    let (entries, skipped) = match streamed {
        Ok(v) => v,
        Err(e) => return Err(verifier.size_error(digest).unwrap_or(e)),
    };
    verifier.finish(digest, expected)?;
    let meta = Meta { format: META_FORMAT, digest: digest.to_string(), size: expected_size, skipped, entries };
    let path = dest.join(META_FILE);
    let json = serde_json::to_vec(&meta).map_err(|e| UnpackError::io("write", &path, std::io::Error::other(e)))?;
    std::fs::write(&path, json).map_err(|e| UnpackError::io("write", &path, e))?;
    Ok(UnpackedLayer { dir: dest.to_path_buf(), digest: meta.digest, size: expected_size, skipped, entries: meta.entries })
}

/// Charges every decompressed byte to the image budget (in 1 MiB steps), so a bomb stops early.
struct Charged<'a, R> {
    inner: R,
    budget: &'a Budget,
    pending: u64,
}

impl<R: Read> Read for Charged<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 || n == 0 {
            let p = std::mem::take(&mut self.pending);
            self.budget.charge_bytes(p).map_err(std::io::Error::other)?;
        }
        Ok(n)
    }
}

/// Gets back an [`UnpackError`] (a budget overrun) that travelled through an `io::Error`.
fn take_unpack_error(e: std::io::Error) -> Result<UnpackError, std::io::Error> {
    if !e.get_ref().is_some_and(|i| i.is::<UnpackError>()) {
        return Err(e);
    }
    match e.into_inner().map(|b| b.downcast::<UnpackError>()) {
        Some(Ok(inner)) => Ok(*inner),
        _ => Err(std::io::Error::other("error lost in transit")),
    }
}

fn tar_error(digest: &str, e: TarError) -> UnpackError {
    match e {
        TarError::Format { entry, reason } => UnpackError::Tar { digest: digest.into(), entry, reason },
        TarError::Io(e) => match take_unpack_error(e) {
            Ok(inner) => inner,
            Err(source) => UnpackError::Decompress { digest: digest.into(), source },
        },
    }
}

/// Reads every entry; small bodies go to the writer pool, the rest is recorded in order.
fn read_entries<R: Read>(
    tar: &mut TarStream<R>,
    digest: &str,
    dest: &Path,
    limits: &Limits,
    budget: &Budget,
) -> Result<(Vec<LayerEntry>, u64), UnpackError> {
    let (tx, rx) = sync_channel::<Job>(bodies::QUEUE);
    let rx = Mutex::new(rx);
    let first_error: Mutex<Option<UnpackError>> = Mutex::new(None);
    let result = std::thread::scope(|s| {
        for _ in 0..bodies::WRITERS {
            s.spawn(|| bodies::writer_loop(&rx, &first_error));
        }
        let r = entry_loop(tar, digest, dest, limits, budget, &tx, &first_error);
        drop(tx);
        r
    });
    let pool_error = first_error.into_inner().ok().flatten();
    match (result, pool_error) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(v), None) => Ok(v),
    }
}

fn entry_loop<R: Read>(
    tar: &mut TarStream<R>,
    digest: &str,
    dest: &Path,
    limits: &Limits,
    budget: &Budget,
    tx: &std::sync::mpsc::SyncSender<Job>,
    pool_error: &Mutex<Option<UnpackError>>,
) -> Result<(Vec<LayerEntry>, u64), UnpackError> {
    let mut entries = Vec::new();
    let mut skipped = 0u64;
    let mut next_body = 0u64;
    let unsafe_path = |path: &[u8], reason: String| UnpackError::UnsafePath {
        digest: digest.into(),
        path: String::from_utf8_lossy(path).into_owned(),
        reason,
    };
    while let Some(e) = tar.next_entry().map_err(|e| tar_error(digest, e))? {
        budget.charge_entry()?;
        if pool_error.lock().map(|g| g.is_some()).unwrap_or(true) {
            break; // the pool's error is reported by the caller
        }
        if let Kind::Skip(_) = e.kind {
            skipped += 1;
            continue;
        }
        let Some(path) = paths::clean(&e.path).map_err(|r| unsafe_path(&e.path, r))? else {
            continue; // the root itself: never replaced, never chmod-ed from a layer
        };
        let path = match paths::classify(path).map_err(|r| unsafe_path(&e.path, r))? {
            Named::Plain(p) => p,
            Named::Whiteout(p) => {
                entries.push(LayerEntry::Whiteout { path: p });
                continue;
            }
            Named::Opaque(dir) => {
                entries.push(LayerEntry::Opaque { dir });
                continue;
            }
            Named::Meta => continue,
        };
        let original_mode = e.mode;
        let mode = e.mode & 0o777;
        match e.kind {
            Kind::Dir => entries.push(LayerEntry::Dir { path, mode, original_mode, mtime: e.mtime }),
            Kind::Symlink => {
                if e.link.is_empty() {
                    return Err(unsafe_path(&e.path, "symlink with an empty target".into()));
                }
                let target = String::from_utf8_lossy(&e.link).into_owned();
                entries.push(LayerEntry::Symlink { path, target, original_mode });
            }
            Kind::Hardlink => {
                let target = paths::clean(&e.link)
                    .map_err(|r| unsafe_path(&e.link, format!("hardlink target: {r}")))?
                    .ok_or_else(|| unsafe_path(&e.path, "hardlink to the root".into()))?;
                if target != path {
                    entries.push(LayerEntry::Hardlink { path, target });
                }
            }
            Kind::File => {
                if e.size > limits.max_file_bytes {
                    return Err(UnpackError::Limit(format!(
                        "layer {digest}: file '{path}' is {} bytes (max_file_bytes {})",
                        e.size, limits.max_file_bytes
                    )));
                }
                let body = next_body;
                next_body += 1;
                write_body(tar, digest, dest, body, &e, mode, budget, tx)?;
                entries.push(LayerEntry::File { path, body, mode, original_mode, size: e.size, mtime: e.mtime });
            }
            Kind::Skip(_) => {} // counted and left out above
        }
    }
    Ok((entries, skipped))
}

#[allow(clippy::too_many_arguments)]
fn write_body<R: Read>(
    tar: &mut TarStream<R>,
    digest: &str,
    dest: &Path,
    body: u64,
    e: &super::tarstream::Entry,
    mode: u32,
    budget: &Budget,
    tx: &std::sync::mpsc::SyncSender<Job>,
) -> Result<(), UnpackError> {
    let path = bodies::body_path(dest, body);
    let mut read = |buf: &mut [u8]| tar.read_data(buf).map_err(|err| tar_error(digest, err));
    if let Some(map) = &e.sparse {
        let stored: u64 = map.iter().map(|c| c.1).sum();
        // Holes cost no stream bytes but are real bytes to anyone who copies the file.
        budget.charge_bytes(e.size - stored)?;
        let mut f = bodies::create(&path)?;
        bodies::write_sparse(&mut f, &path, map, e.size, read)?;
        return bodies::finish(&f, &path, mode, e.mtime);
    }
    if e.size <= bodies::SMALL {
        let mut data = vec![0u8; e.size as usize];
        let mut filled = 0;
        while filled < data.len() {
            match read(&mut data[filled..])? {
                0 => return Err(tar_error(digest, TarError::Io(std::io::ErrorKind::UnexpectedEof.into()))),
                n => filled += n,
            }
        }
        return bodies::submit(tx, Job { path, data, mode, mtime: e.mtime });
    }
    let mut f = bodies::create(&path)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = read(&mut buf)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut f, &buf[..n]).map_err(|err| UnpackError::io("write file", &path, err))?;
    }
    bodies::finish(&f, &path, mode, e.mtime)
}
