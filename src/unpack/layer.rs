//! One layer blob → one unpacked layer dir: `files/` (bodies under generated names) and `layer.json`
//! (the cleaned entries, in tar order). It owns the streaming pipeline (verify → decompress → count
//! → tar) and the per-entry decisions (clean names, classify whiteouts, skip devices/FIFOs, strip
//! setuid/setgid/sticky, enforce caps). It must never create a host path from a tar name, and it
//! removes `dest` on any error. `layer.json` is written last, only once the digest matched.

use std::io::{BufRead, BufReader, Read};
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
            Compression::Gzip => Box::new(GzMembers::new(Box::new(buffered))),
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
            // budget), so checksums at the end of the compressed stream are checked too.
            let mut rest = tar.into_inner();
            let mut sink = vec![0u8; 64 * 1024];
            loop {
                match rest.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(tar_error(digest, TarError::Io(e))),
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

/// gzip members one after another (as `gzip -d` does); bytes after the last member that do not
/// start another member are left undecoded (the verifier still hashes them), as gzip's "trailing
/// garbage ignored". Corrupt members and CRC mismatches are errors.
struct GzMembers<'a> {
    cur: Option<flate2::bufread::GzDecoder<Box<dyn BufRead + 'a>>>,
}

impl<'a> GzMembers<'a> {
    fn new(r: Box<dyn BufRead + 'a>) -> Self {
        GzMembers { cur: Some(flate2::bufread::GzDecoder::new(r)) }
    }
}

impl Read for GzMembers<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(dec) = self.cur.as_mut() else { return Ok(0) };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(mut rest) = self.cur.take().map(|d| d.into_inner()) else { return Ok(0) };
            let head = rest.fill_buf()?;
            match head {
                [0x1f, 0x8b, ..] => self.cur = Some(flate2::bufread::GzDecoder::new(rest)),
                // The buffer boundary split the magic: take both bytes and put them back in front.
                [0x1f] => {
                    rest.consume(1);
                    let mut second = [0u8; 1];
                    if rest.read(&mut second)? != 1 || second[0] != 0x8b {
                        return Ok(0);
                    }
                    let joined = std::io::Cursor::new([0x1f, 0x8b]).chain(rest);
                    self.cur = Some(flate2::bufread::GzDecoder::new(Box::new(joined)));
                }
                _ => return Ok(0),
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::super::testutil::{gzip, sha256, unpack_blob, TarBuf};
    use super::*;

    fn simple() -> Vec<u8> {
        TarBuf::new().dir("d", 0o755).file("d/a", b"hello").symlink("l", "d/a").file("big", &vec![7u8; 600_000]).finish()
    }

    #[test]
    fn happy_layer_round_trips_through_open() {
        let tmp = tempfile::tempdir().unwrap();
        let blob = gzip(&simple());
        let l = unpack_blob(&blob, Compression::Gzip, &tmp.path().join("l"), &Limits::default()).unwrap();
        assert_eq!(l.digest(), sha256(&blob));
        assert_eq!(l.entries().len(), 4);
        let again = UnpackedLayer::open(&tmp.path().join("l")).unwrap();
        assert_eq!(again.entries(), l.entries());
        let LayerEntry::File { body, size, .. } = &l.entries()[3] else { panic!("{:?}", l.entries()) };
        assert_eq!(*size, 600_000);
        assert_eq!(std::fs::read(l.body_path(*body)).unwrap(), vec![7u8; 600_000]);
    }

    #[test]
    fn wrong_digest_or_size_is_rejected_and_dir_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let blob = gzip(&simple());
        let dest = tmp.path().join("l");
        let budget = Budget::new(&Limits::default());
        let wrong = sha256(b"something else");
        let e = unpack_layer(&blob[..], &wrong, blob.len() as u64, Compression::Gzip, &dest, &Limits::default(), &budget).unwrap_err();
        assert!(matches!(e, UnpackError::DigestMismatch { .. }), "{e}");
        assert!(!dest.exists());
        let right = sha256(&blob);
        for size in [blob.len() as u64 - 1, blob.len() as u64 + 1, 10] {
            let e = unpack_layer(&blob[..], &right, size, Compression::Gzip, &dest, &Limits::default(), &budget).unwrap_err();
            assert!(matches!(e, UnpackError::SizeMismatch { .. } | UnpackError::Decompress { .. }), "{size}: {e}");
            assert!(!dest.exists());
        }
        // Extra bytes after a complete gzip+tar still count: a longer blob is refused.
        let mut longer = blob.clone();
        longer.extend_from_slice(b"trailing");
        let e = unpack_layer(&longer[..], &sha256(&longer), blob.len() as u64, Compression::Gzip, &dest, &Limits::default(), &budget).unwrap_err();
        assert!(matches!(e, UnpackError::SizeMismatch { .. }), "{e}");
        let e = unpack_layer(&blob[..], "sha512:00", blob.len() as u64, Compression::Gzip, &dest, &Limits::default(), &budget).unwrap_err();
        assert!(matches!(e, UnpackError::BadDigest(_)));
        assert!(!dest.exists(), "nothing created for a bad digest");
    }

    #[test]
    fn existing_dest_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("keep"), b"").unwrap();
        assert!(unpack_blob(&simple(), Compression::None, tmp.path(), &Limits::default()).is_err());
        assert!(tmp.path().join("keep").exists());
    }

    #[test]
    fn caps_stop_bombs_early() {
        let tmp = tempfile::tempdir().unwrap();
        // 64 MiB of zeros in one file gzips to ~64 KiB; a 4 MiB total cap stops it after ~4 MiB.
        let mut h = tar::Header::new_gnu();
        h.set_path("bomb").unwrap();
        h.set_size(64 << 20);
        h.set_cksum();
        let mut t = TarBuf::new();
        t.raw(&h, &vec![0u8; 64 << 20]);
        let blob = gzip(&t.finish());
        assert!(blob.len() < 1 << 20);
        let limits = Limits { max_total_bytes: 4 << 20, ..Limits::default() };
        let e = unpack_blob(&blob, Compression::Gzip, &tmp.path().join("a"), &limits).unwrap_err();
        assert!(matches!(&e, UnpackError::Limit(m) if m.contains("max_total_bytes")), "{e}");
        let limits = Limits { max_file_bytes: 1 << 20, ..Limits::default() };
        let e = unpack_blob(&blob, Compression::Gzip, &tmp.path().join("b"), &limits).unwrap_err();
        assert!(matches!(&e, UnpackError::Limit(m) if m.contains("max_file_bytes")), "{e}");
        let mut many = TarBuf::new();
        for i in 0..50 {
            many.file(&format!("f{i}"), b"");
        }
        let limits = Limits { max_entries: 20, ..Limits::default() };
        let e = unpack_blob(&many.finish(), Compression::None, &tmp.path().join("c"), &limits).unwrap_err();
        assert!(matches!(&e, UnpackError::Limit(m) if m.contains("max_entries")), "{e}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "every partial dir removed");
    }

    #[test]
    fn budget_is_shared_by_parallel_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                let mut t = TarBuf::new();
                for j in 0..300 {
                    t.file(&format!("l{i}/f{j}"), format!("{i}-{j}").as_bytes());
                }
                gzip(&t.finish())
            })
            .collect();
        let limits = Limits::default();
        let budget = Budget::new(&limits);
        std::thread::scope(|s| {
            for (i, b) in blobs.iter().enumerate() {
                let (budget, limits, dest) = (&budget, &limits, tmp.path().join(format!("l{i}")));
                s.spawn(move || unpack_layer(&b[..], &sha256(b), b.len() as u64, Compression::Gzip, &dest, limits, budget).unwrap());
            }
        });
        assert_eq!(budget.entries_used(), 1200);
        let layers: Vec<UnpackedLayer> = (0..4).map(|i| UnpackedLayer::open(&tmp.path().join(format!("l{i}"))).unwrap()).collect();
        let refs: Vec<&UnpackedLayer> = layers.iter().collect();
        let files = super::super::compose(&refs, &tmp.path().join("root")).unwrap();
        assert_eq!(files.len(), 1204);
        assert_eq!(std::fs::read_to_string(tmp.path().join("root/l3/f299")).unwrap(), "3-299");
        // Same budget again: the image total is now over a tight cap.
        let tight = Budget::new(&Limits { max_entries: 1000, ..Limits::default() });
        let errs: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = blobs
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let (tight, limits, dest) = (&tight, &limits, tmp.path().join(format!("t{i}")));
                    s.spawn(move || unpack_layer(&b[..], &sha256(b), b.len() as u64, Compression::Gzip, &dest, limits, tight).is_err())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(errs.iter().any(|e| *e), "1200 entries cannot fit a 1000-entry budget");
    }

    #[test]
    fn tampered_metadata_is_refused_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("l");
        unpack_blob(&simple(), Compression::None, &dest, &Limits::default()).unwrap();
        let meta = std::fs::read_to_string(dest.join(META_FILE)).unwrap();
        std::fs::write(dest.join(META_FILE), meta.replace("\"d/a\"", "\"../../etc/a\"")).unwrap();
        assert!(matches!(UnpackedLayer::open(&dest), Err(UnpackError::BadLayerDir { .. })));
        std::fs::write(dest.join(META_FILE), b"{").unwrap();
        assert!(matches!(UnpackedLayer::open(&dest), Err(UnpackError::BadLayerDir { .. })));
        assert!(UnpackedLayer::open(tmp.path()).is_err());
    }

    #[test]
    fn pax_size_smuggled_symlink_is_never_seen() {
        // tar-rs pax_size_smuggled_symlink: PAX size=2048 against a header size of 8 hides a
        // symlink header inside the file data. Honouring PAX size, the symlink is file content.
        let mut t = TarBuf::new();
        t.pax(&[("size", b"2048")]);
        let mut h = tar::Header::new_ustar();
        h.set_path("file").unwrap();
        h.set_size(8);
        h.set_cksum();
        let mut data = vec![b'A'; 512];
        let mut sym = tar::Header::new_ustar();
        sym.set_path("smuggled").unwrap();
        sym.set_entry_type(tar::EntryType::Symlink);
        sym.set_link_name("/etc/shadow").unwrap();
        sym.set_size(0);
        sym.set_cksum();
        data.extend_from_slice(sym.as_bytes());
        data.resize(2048, b'B');
        t.raw(&h, &data);
        let tmp = tempfile::tempdir().unwrap();
        let l = unpack_blob(&t.finish(), Compression::None, &tmp.path().join("l"), &Limits::default()).unwrap();
        assert_eq!(l.entries().len(), 1);
        assert!(matches!(&l.entries()[0], LayerEntry::File { path, size: 2048, .. } if path == "file"));
    }

    #[test]
    fn incorrect_and_overflowing_sizes_fail_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        // handling_incorrect_file_size: the header claims more data than the archive holds.
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(4096);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[1u8; 1000]);
        let e = unpack_blob(&bytes, Compression::None, &tmp.path().join("a"), &Limits::default()).unwrap_err();
        assert!(matches!(e, UnpackError::Tar { .. }), "{e}");
        // header_size_overflow: a base-256 size beyond u64 / i64.
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.as_old_mut().size = [0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        h.set_cksum();
        let e = unpack_blob(h.as_bytes(), Compression::None, &tmp.path().join("b"), &Limits::default()).unwrap_err();
        assert!(matches!(e, UnpackError::Tar { .. }), "{e}");
        // A 16 GiB declared file with little data is capped by size, never allocated.
        h.set_size(16 << 30);
        h.set_cksum();
        let e = unpack_blob(h.as_bytes(), Compression::None, &tmp.path().join("c"), &Limits::default()).unwrap_err();
        assert!(matches!(e, UnpackError::Limit(_)), "{e}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn huge_pax_header_is_refused_without_reading_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("././@PaxHeader").unwrap();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(1 << 30);
        h.set_cksum();
        let e = unpack_blob(h.as_bytes(), Compression::None, &tmp.path().join("a"), &Limits::default()).unwrap_err();
        assert!(matches!(&e, UnpackError::Tar { reason, .. } if reason.contains("too long")), "{e}");
    }

    #[test]
    fn corrupt_streams_fail_without_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let tar = simple();
        let gz = gzip(&tar);
        let zs = zstd::encode_all(&tar[..], 1).unwrap();
        let mut cases: Vec<(Vec<u8>, Compression)> = vec![
            (tar[..700].to_vec(), Compression::None),
            (tar[..1024 + 300].to_vec(), Compression::None),
            (gz[..gz.len() / 2].to_vec(), Compression::Gzip),
            (zs[..zs.len() / 2].to_vec(), Compression::Zstd),
            (b"not gzip at all".to_vec(), Compression::Gzip),
            (b"not zstd at all".to_vec(), Compression::Zstd),
            (tar.clone(), Compression::Gzip),
        ];
        let mut flipped = gz.clone();
        flipped[gz.len() / 2] ^= 0xff;
        cases.push((flipped, Compression::Gzip));
        let mut bad_sum = tar.clone();
        bad_sum[0] ^= 1;
        cases.push((bad_sum, Compression::None));
        for (i, (blob, c)) in cases.into_iter().enumerate() {
            let r = unpack_blob(&blob, c, &tmp.path().join(format!("x{i}")), &Limits::default());
            assert!(r.is_err(), "case {i} should fail");
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn multi_member_gzip_and_multi_frame_zstd_decode_fully() {
        let tmp = tempfile::tempdir().unwrap();
        let tar = TarBuf::new().file("a", b"1").file("b", &vec![2u8; 100_000]).file("c", b"3").finish();
        let (p1, p2) = tar.split_at(700);
        let mut multi = gzip(p1);
        multi.extend(gzip(p2));
        let l = unpack_blob(&multi, Compression::Gzip, &tmp.path().join("g"), &Limits::default()).unwrap();
        assert_eq!(l.entries().len(), 3);
        let mut frames = zstd::encode_all(p1, 3).unwrap();
        // A skippable frame (magic 0x184D2A50, 4-byte length) between data frames.
        frames.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
        frames.extend(zstd::encode_all(p2, 3).unwrap());
        let l = unpack_blob(&frames, Compression::Zstd, &tmp.path().join("z"), &Limits::default()).unwrap();
        assert_eq!(l.entries().len(), 3);
        let LayerEntry::File { body, .. } = &l.entries()[2] else { panic!() };
        assert_eq!(std::fs::read(l.body_path(*body)).unwrap(), b"3");
    }
}
