//! Writes regular-file bodies of one layer to generated names (`files/<shard>/<n>`). File creation
//! latency dominates unpacking, so small bodies go to a small pool of writer threads through a
//! bounded queue (memory stays bounded: at most `QUEUE` bodies of at most `SMALL` bytes), while large
//! and sparse bodies are streamed by the reader thread itself. Names come from a counter, never from
//! the tar, so ordering between bodies does not matter. Bodies are never fsynced here.

use std::fs::{File, FileTimes, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::UnpackError;

/// Bodies up to this size are buffered and handed to the pool (so the queue holds at most
/// `QUEUE × SMALL` = 2 MiB per layer; larger bodies cost little per byte to write inline).
pub(crate) const SMALL: u64 = 64 * 1024;
/// Queue depth between the reader and the writers.
pub(crate) const QUEUE: usize = 32;
/// Writer threads per layer (layers themselves unpack in parallel too).
pub(crate) const WRITERS: usize = 2;
/// Shard directories under `files/`, so parallel creates do not all contend on one dir lock.
pub(crate) const SHARDS: u64 = 16;

/// Where body `n` of a layer lives.
pub(crate) fn body_path(layer_dir: &Path, n: u64) -> PathBuf {
    layer_dir
        .join("files")
        .join(format!("{:x}", n % SHARDS))
        .join(n.to_string())
}

/// Creates `files/` and its shards.
pub(crate) fn make_shards(layer_dir: &Path) -> Result<(), UnpackError> {
    for s in 0..SHARDS {
        let d = layer_dir.join("files").join(format!("{s:x}"));
        std::fs::create_dir_all(&d).map_err(|e| UnpackError::io("create layer dir", &d, e))?;
    }
    Ok(())
}

/// A small body ready to write.
pub(crate) struct Job {
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: i64,
}

pub(crate) fn mtime_of(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Opens a new body file (it must not exist: names are unique per layer).
pub(crate) fn create(path: &Path) -> Result<File, UnpackError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| UnpackError::io("create file", path, e))
}

/// Applies the final permission bits (already stripped of setuid/setgid/sticky) and mtime.
pub(crate) fn finish(f: &File, path: &Path, mode: u32, mtime: i64) -> Result<(), UnpackError> {
    // Best effort for times: a filesystem that refuses them should not fail the install.
    let _ = f.set_times(FileTimes::new().set_modified(mtime_of(mtime)));
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
        .map_err(|e| UnpackError::io("chmod", path, e))
}

fn write_job(job: Job) -> Result<(), UnpackError> {
    let mut f = create(&job.path)?;
    f.write_all(&job.data)
        .map_err(|e| UnpackError::io("write file", &job.path, e))?;
    finish(&f, &job.path, job.mode, job.mtime)
}

/// The writer side of the pool: runs until the queue closes, keeps the first error and drops the
/// rest of the queue once one happened.
pub(crate) fn writer_loop(rx: &Mutex<Receiver<Job>>, first_error: &Mutex<Option<UnpackError>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let failed = first_error.lock().map(|g| g.is_some()).unwrap_or(true);
        if failed {
            continue;
        }
        if let Err(e) = write_job(job) {
            if let Ok(mut g) = first_error.lock() {
                g.get_or_insert(e);
            }
        }
    }
}

/// Sends a job, or reports that the writers are gone (which only happens after an error).
pub(crate) fn submit(tx: &SyncSender<Job>, job: Job) -> Result<(), UnpackError> {
    let path = job.path.clone();
    tx.send(job).map_err(|_| {
        UnpackError::io(
            "write file",
            &path,
            std::io::Error::other("writer pool stopped"),
        )
    })
}

/// Streams a sparse body: data chunks at their offsets, holes left unallocated, then the full size.
pub(crate) fn write_sparse(
    f: &mut File,
    path: &Path,
    map: &[(u64, u64)],
    real_size: u64,
    mut read: impl FnMut(&mut [u8]) -> Result<usize, UnpackError>,
) -> Result<(), UnpackError> {
    let mut buf = vec![0u8; 64 * 1024];
    let werr = |e| UnpackError::io("write file", path, e);
    for &(off, len) in map {
        f.seek(SeekFrom::Start(off)).map_err(werr)?;
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = read(&mut buf[..want])?;
            if n == 0 {
                return Err(werr(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                )));
            }
            f.write_all(&buf[..n]).map_err(werr)?;
            left -= n as u64;
        }
    }
    f.set_len(real_size).map_err(werr)
}
