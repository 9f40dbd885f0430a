//! The layer half of the `stage` stage: every layer unpacked on a worker thread (in parallel;
//! layers already in the cache are reused and charged against the limits like fresh ones), each
//! reporting its bytes as they arrive, then composed into the staged root filesystem.

use super::{Hooks, InstallError, Pipeline};
use crate::facts::FileEntry;
use crate::image;
use crate::report::{Event, Reporter};
use crate::source::BlobSource;
use crate::store;
use crate::unpack;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// Progress is reported after at least this many more bytes.
const PROGRESS_STEP: u64 = 256 * 1024;

/// How many layers download and unpack at once: one per core (at least 2, so a small layer
/// does not wait behind a large one; at most 8). Each costs a bounded amount of memory, so
/// peak memory depends on this, not on how many layers the image has.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Unpacks every layer of `image` and composes them into `rootfs`; returns the staged files.
pub(super) async fn unpack<H: Hooks + ?Sized, S: BlobSource>(
    p: &Pipeline<'_, H>,
    source: &S,
    image: &image::Resolved,
    rootfs: &Path,
) -> Result<Vec<FileEntry>, InstallError> {
    let limits = limits(&p.config.limits);
    let budget = Arc::new(unpack::Budget::new(&limits));
    let slots = Arc::new(tokio::sync::Semaphore::new(workers()));
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for desc in &image.layers {
        let size = u64::try_from(desc.size).unwrap_or(0);
        let cached = p.store.layer_dir(&desc.digest);
        if let Ok(layer) = unpack::UnpackedLayer::open(&cached) {
            p.reporter.report(&Event::LayerStarted {
                digest: &desc.digest,
                size,
                cached: true,
            });
            // A cached layer counts against the limits exactly as a fresh one.
            layer.charge(&limits, &budget)?;
            tasks.push(tokio::task::spawn_blocking(move || {
                Ok::<_, InstallError>(layer)
            }));
            continue;
        }
        let compression = unpack::Compression::from_media_type(&desc.media_type)?;
        // Wait for a free worker; once a layer failed, start no more (its error is reported).
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            // Never closed; should it be, the install fails rather than skip a layer.
            .map_err(|_| InstallError::Usage("the layer workers stopped".into()))?;
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        p.reporter.report(&Event::LayerStarted {
            digest: &desc.digest,
            size,
            cached: false,
        });
        let reader = Progress {
            inner: source.blob_reader(desc).await?,
            digest: desc.digest.clone(),
            reporter: p.reporter.clone(),
            cancel: p.cancel.clone(),
            received: 0,
            reported: 0,
        };
        let tmp = p.store.layer_tmp_dir(&desc.digest);
        let (digest, limits, budget) = (desc.digest.clone(), limits.clone(), budget.clone());
        let failed = failed.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _ = store::remove_any(&tmp);
            let mut reader = reader;
            let mut layer = match unpack::unpack_layer(
                &mut reader,
                &digest,
                size,
                compression,
                &tmp,
                &limits,
                &budget,
            ) {
                Ok(layer) => layer,
                Err(e) => {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e.into());
                }
            };
            reader.reporter.report(&Event::LayerDone {
                digest: &digest,
                bytes: reader.received,
            });
            match std::fs::rename(&tmp, &cached) {
                Ok(()) => layer.moved_to(&cached),
                // Another process cached the same layer meanwhile: use theirs.
                Err(_) if cached.exists() => {
                    let _ = store::remove_any(&tmp);
                    layer = unpack::UnpackedLayer::open(&cached)?;
                }
                Err(source) => {
                    return Err(InstallError::Io {
                        path: cached,
                        source,
                    })
                }
            }
            // Start this layer's writeback now, while other layers still unpack: the commit
            // must sync everything anyway, and overlapping the I/O with their CPU work hides
            // most of it. (Detached: the commit's own sync is the one that counts.)
            let dir = cached.clone();
            std::thread::spawn(move || store::sync_fs(&dir));
            Ok(layer)
        }));
    }
    let mut layers = Vec::new();
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => layers.push(l),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(source) => {
                first_err.get_or_insert(InstallError::Worker {
                    what: "layer",
                    source,
                });
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    p.reporter.report(&Event::Composing {
        layers: layers.len(),
    });
    let rootfs = rootfs.to_path_buf();
    tokio::task::spawn_blocking(move || unpack::compose_layers(layers, &rootfs))
        .await
        .map_err(|source| InstallError::Worker {
            what: "compose",
            source,
        })?
        .map_err(Into::into)
}

/// A layer blob that reports how much of it has arrived, and stops when the run is cancelled.
struct Progress {
    inner: Box<dyn Read + Send>,
    digest: String,
    reporter: Arc<dyn Reporter>,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    received: u64,
    reported: u64,
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf)?;
        self.received = self.received.saturating_add(n as u64);
        if self.received.saturating_sub(self.reported) >= PROGRESS_STEP {
            self.reported = self.received;
            self.reporter.report(&Event::LayerProgress {
                digest: &self.digest,
                bytes: self.received,
            });
        }
        Ok(n)
    }
}

/// The unpack caps in force: configured values, built-in defaults for the rest.
fn limits(cfg: &crate::config::LimitsConfig) -> unpack::Limits {
    let d = unpack::Limits::default();
    unpack::Limits {
        max_total_bytes: cfg.max_total_bytes.unwrap_or(d.max_total_bytes),
        max_entries: cfg.max_entries.unwrap_or(d.max_entries),
        max_file_bytes: cfg.max_file_bytes.unwrap_or(d.max_file_bytes),
    }
}
