//! Test helpers: build tar layers entry by entry with `tar::Header` (raw names, so hostile ones
//! too), and unpack/compose them with the real pipeline.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{compose, unpack_layer, Budget, Compression, Limits, UnpackError, UnpackedLayer};
use crate::facts::FileEntry;

/// A tar under construction.
#[derive(Default)]
pub(crate) struct TarBuf(pub Vec<u8>);

impl TarBuf {
    pub fn new() -> Self {
        TarBuf(Vec::new())
    }

    fn header(name: &[u8], kind: tar::EntryType, mode: u32, size: u64, link: &[u8]) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // Raw bytes: set_path would refuse '..' and absolute names, which is what we test.
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        h
    }

    pub fn raw(&mut self, h: &tar::Header, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_mode(name, data, 0o644)
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = Self::header(
            name.as_bytes(),
            tar::EntryType::Regular,
            mode,
            data.len() as u64,
            b"",
        );
        self.raw(&h, data)
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Directory, mode, 0, b"");
        self.raw(&h, b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(
            name.as_bytes(),
            tar::EntryType::Symlink,
            0o777,
            0,
            target.as_bytes(),
        );
        self.raw(&h, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(
            name.as_bytes(),
            tar::EntryType::Link,
            0o644,
            0,
            target.as_bytes(),
        );
        self.raw(&h, b"")
    }

    pub fn special(&mut self, name: &str, kind: tar::EntryType) -> &mut Self {
        let h = Self::header(name.as_bytes(), kind, 0o644, 0, b"");
        self.raw(&h, b"")
    }

    /// A PAX extended header for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1;
            let mut n = body_len + 1;
            while n.to_string().len() + body_len != n {
                n += 1;
            }
            data.extend_from_slice(format!("{n} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = Self::header(
            b"././@PaxHeader",
            tar::EntryType::XHeader,
            0o644,
            data.len() as u64,
            b"",
        );
        self.raw(&h, &data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

pub(crate) fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

pub(crate) fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Unpacks a blob whose digest and size are right.
pub(crate) fn unpack_blob(
    blob: &[u8],
    c: Compression,
    dest: &Path,
    limits: &Limits,
) -> Result<UnpackedLayer, UnpackError> {
    unpack_layer(
        blob,
        &sha256(blob),
        blob.len() as u64,
        c,
        dest,
        limits,
        &Budget::new(limits),
    )
}

/// Unpacks plain tars as layers 0..n under `tmp` and composes them into `tmp/rootfs`.
pub(crate) fn build(tmp: &Path, tars: &[Vec<u8>]) -> Result<Vec<FileEntry>, UnpackError> {
    let mut layers = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        layers.push(unpack_blob(
            t,
            Compression::None,
            &tmp.join(format!("layer{i}")),
            &Limits::default(),
        )?);
    }
    let refs: Vec<&UnpackedLayer> = layers.iter().collect();
    compose(&refs, &tmp.join("rootfs"))
}

/// Every path under `dir`, relative, sorted (symlinks not followed).
pub(crate) fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
