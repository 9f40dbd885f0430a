//! One layer blob → one unpacked layer dir: `files/` (bodies under generated names) and `layer.json`
//! (the cleaned entries, in tar order). It owns the streaming pipeline (verify → decompress → count
//! → tar) and the per-entry decisions (clean names, classify whiteouts, skip devices/FIFOs, strip
//! setuid/setgid/sticky, enforce caps). It must never create a host path from a tar name, and it
//! removes `dest` on any error. `layer.json` is written last, only once the digest matched.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use super::bodies::{self, Job};
use super::decode::{take_unpack_error, Charged, GzMembers};
use super::paths::{self, Named};
use super::record::{LayerEntry, UnpackedLayer};
use super::record::{Meta, META_FILE, META_FORMAT};
use super::tarstream::{Kind, TarError, TarStream};
use super::verify::{parse_digest, VerifyingReader};
use super::{Budget, Compression, Limits, UnpackError};

/// Longest entry name or link target accepted (Linux PATH_MAX).
const MAX_NAME: usize = 4096;
/// The buffer bodies larger than [`bodies::SMALL`] are streamed through.
const INLINE_BUF: usize = 256 * 1024;
/// Total name bytes one layer may hold in memory before its metadata is written.
const MAX_NAME_BYTES: u64 = 256 << 20;

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
    let result = unpack_into(
        blob,
        expected_digest,
        &expected,
        expected_size,
        compression,
        dest,
        limits,
        budget,
    );
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
                zstd::stream::read::Decoder::with_buffer(buffered).map_err(|source| {
                    UnpackError::Decompress {
                        digest: digest.into(),
                        source,
                    }
                })?,
            ),
        };
        let charged = Charged {
            inner: decoder,
            budget,
            pending: 0,
            total: 0,
        };
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
            out.map(|(entries, skipped)| (entries, skipped, rest.total))
        } else {
            out.map(|(entries, skipped)| (entries, skipped, 0))
        }
    };
    let (entries, skipped, decompressed) = match streamed {
        Ok(v) => v,
        Err(e) => {
            if let Some(size) = verifier.size_error(digest) {
                return Err(size);
            }
            // Corrupt content is most often a corrupt or substituted blob: read the rest (bounded
            // by the descriptor's size) so the user is told the real cause, a digest mismatch,
            // rather than the decompressor's or tar reader's symptom.
            return Err(match verifier.finish(digest, expected) {
                Err(
                    mismatch @ (UnpackError::DigestMismatch { .. }
                    | UnpackError::SizeMismatch { .. }
                    | UnpackError::Truncated { .. }),
                ) => mismatch,
                _ => e,
            });
        }
    };
    verifier.finish(digest, expected)?;
    let meta = Meta {
        format: META_FORMAT,
        digest: digest.to_string(),
        size: expected_size,
        skipped,
        decompressed: Some(decompressed),
        entries,
    };
    let path = dest.join(META_FILE);
    let json = serde_json::to_vec(&meta)
        .map_err(|e| UnpackError::io("write", &path, std::io::Error::other(e)))?;
    std::fs::write(&path, json).map_err(|e| UnpackError::io("write", &path, e))?;
    Ok(UnpackedLayer {
        dir: dest.to_path_buf(),
        digest: meta.digest,
        size: expected_size,
        skipped,
        decompressed: meta.decompressed,
        entries: meta.entries,
    })
}

fn tar_error(digest: &str, e: TarError) -> UnpackError {
    match e {
        TarError::Format { entry, reason } => UnpackError::Tar {
            digest: digest.into(),
            entry,
            reason,
        },
        TarError::Io(e) => match take_unpack_error(e) {
            Ok(inner) => inner,
            Err(source) => UnpackError::Decompress {
                digest: digest.into(),
                source,
            },
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
    let mut name_bytes = 0u64;
    // One buffer for every body streamed inline, reused from file to file.
    let mut scratch = vec![0u8; INLINE_BUF];
    let unsafe_path = |path: &[u8], reason: String| UnpackError::UnsafePath {
        digest: digest.into(),
        path: String::from_utf8_lossy(path).into_owned(),
        reason,
    };
    while let Some(e) = tar.next_entry().map_err(|e| tar_error(digest, e))? {
        budget.charge_entry()?;
        // Names stay in memory until layer.json is written: cap them, whatever the layer holds.
        if e.path.len() > MAX_NAME || e.link.len() > MAX_NAME {
            return Err(unsafe_path(
                &e.path[..e.path.len().min(200)],
                format!("name or link target longer than {MAX_NAME} bytes"),
            ));
        }
        name_bytes += (e.path.len() + e.link.len()) as u64;
        if name_bytes > MAX_NAME_BYTES {
            return Err(UnpackError::Limit(format!(
                "layer {digest}: entry names exceed {MAX_NAME_BYTES} bytes"
            )));
        }
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
            Kind::Dir => entries.push(LayerEntry::Dir {
                path,
                mode,
                original_mode,
                mtime: e.mtime,
            }),
            Kind::Symlink => {
                if e.link.is_empty() {
                    return Err(unsafe_path(&e.path, "symlink with an empty target".into()));
                }
                let target = String::from_utf8_lossy(&e.link).into_owned();
                entries.push(LayerEntry::Symlink {
                    path,
                    target,
                    original_mode,
                });
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
                write_body(tar, digest, dest, body, &e, mode, budget, tx, &mut scratch)?;
                entries.push(LayerEntry::File {
                    path,
                    body,
                    mode,
                    original_mode,
                    size: e.size,
                    mtime: e.mtime,
                });
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
    buf: &mut [u8],
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
                0 => {
                    return Err(tar_error(
                        digest,
                        TarError::Io(std::io::ErrorKind::UnexpectedEof.into()),
                    ))
                }
                n => filled += n,
            }
        }
        return bodies::submit(
            tx,
            Job {
                path,
                data,
                mode,
                mtime: e.mtime,
            },
        );
    }
    let mut f = bodies::create(&path)?;
    loop {
        let n = read(buf)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut f, &buf[..n])
            .map_err(|err| UnpackError::io("write file", &path, err))?;
    }
    bodies::finish(&f, &path, mode, e.mtime)
}
