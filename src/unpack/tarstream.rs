//! A streaming, bounded tar reader (ustar, GNU, PAX, v7, star; GNU and PAX sparse). It owns header
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! parsing only: it yields [`Entry`] values with raw names and lets the caller read the entry's
//! stored bytes. It never allocates by a declared size (special payloads are capped at
//! [`pax::MAX_SPECIAL_FILE`]), never loops without consuming input, and turns every malformed,
//! negative or overflowing field into an error instead of a guess.

use std::io::{self, Read};

use super::pax::{self, Pax};

const BLOCK: usize = 512;

/// What an entry is; anything we do not materialise is `Skip` with its type flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Skip(u8),
}

/// One tar member, after PAX / GNU long-name / sparse headers were folded in.
#[derive(Debug)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    /// Permission bits including setuid/setgid/sticky (0o7777).
    pub mode: u32,
    pub mtime: i64,
    /// Logical size (the real size for sparse files).
    pub size: u64,
    /// For sparse files: data chunks (offset, length) in the order their bytes are stored.
    pub sparse: Option<Vec<(u64, u64)>>,
}

/// Why reading the tar stream failed.
#[derive(Debug)]
pub(crate) enum TarError {
    /// The header or payload is malformed; `entry` is the name of the last header seen.
    Format { entry: String, reason: String },
    /// The underlying (decompressed) stream failed.
    Io(io::Error),
}

pub(crate) struct TarStream<R> {
    r: R,
    /// Stored bytes of the current entry not yet read by the caller.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
    last_name: String,
}

fn fmt_err(entry: &str, reason: impl Into<String>) -> TarError {
    TarError::Format {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn nul_trunc(b: &[u8]) -> &[u8] {
    b.split(|c| *c == 0).next().unwrap_or(b)
}

/// A numeric header field: octal text (space/NUL padded) or GNU base-256 (signed).
fn numeric(f: &[u8]) -> Result<i64, String> {
    let first = *f.first().ok_or("empty numeric field")?;
    if first & 0x80 != 0 {
        // Two's complement, big-endian, with the marker bit replaced by the sign.
        let neg = first & 0x40 != 0;
        let mut v: i128 = if neg { -1 } else { 0 };
        for (i, &b) in f.iter().enumerate() {
            let b = if i == 0 {
                if neg {
                    b | 0x80
                } else {
                    b & 0x7f
                }
            } else {
                b
            };
            v = (v << 8) | b as i128;
            if v > i64::MAX as i128 || v < i64::MIN as i128 {
                return Err("base-256 number overflows".into());
            }
        }
        return Ok(v as i64);
    }
    let is_pad = |b: &u8| *b == b' ' || *b == 0;
    let start = f.iter().position(|b| !is_pad(b)).unwrap_or(f.len());
    let end = f
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |i| i.saturating_add(1));
    let t = nul_trunc(f.get(start..end).unwrap_or_default());
    if t.is_empty() {
        return Ok(0);
    }
    if !t.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(format!(
            "numeric field is not octal: {:?}",
            String::from_utf8_lossy(t)
        ));
    }
    let s = std::str::from_utf8(t).map_err(|e| e.to_string())?;
    i64::from_str_radix(s, 8).map_err(|_| "octal number overflows".to_string())
}

fn unsigned(f: &[u8], what: &str) -> Result<u64, String> {
    let v = numeric(f).map_err(|e| format!("{what}: {e}"))?;
    u64::try_from(v).map_err(|_| format!("negative {what}"))
}

fn checksum_ok(h: &[u8; BLOCK]) -> Result<bool, String> {
    let stored = unsigned(&h[148..156], "checksum")?;
    let (mut u, mut s) = (0i64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        // 512 bytes of at most 255 each: no overflow.
        u = u.wrapping_add(b as i64);
        s = s.wrapping_add(b as i8 as i64);
    }
    Ok(stored as i64 == u || stored as i64 == s)
}

impl<R: Read> TarStream<R> {
    pub(crate) fn new(r: R) -> Self {
        TarStream {
            r,
            remaining: 0,
            pad: 0,
            last_name: String::new(),
        }
    }

    /// Gives back the underlying reader (to drain it after the end-of-archive marker).
    pub(crate) fn into_inner(self) -> R {
        self.r
    }

    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(k) => n = n.saturating_add(k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::Io(e)),
            }
        }
        Ok(n)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.read_full(buf.get_mut(..want).unwrap_or_default())?;
            if got == 0 {
                return Err(fmt_err(
                    &self.last_name,
                    "unexpected end of archive inside entry data",
                ));
            }
            n = n.saturating_sub(got as u64);
        }
        Ok(())
    }

    /// Skips up to `n` padding bytes; `false` when the stream ended first.
    fn skip_padding(&mut self, n: u64) -> Result<bool, TarError> {
        let mut buf = [0u8; BLOCK];
        let want = usize::try_from(n).unwrap_or(BLOCK).min(BLOCK);
        let got = self.read_full(buf.get_mut(..want).unwrap_or_default())?;
        Ok(got == want)
    }

    /// Reads the current entry's stored bytes; `Ok(0)` at its end. A stream that ends early is an error.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let got = loop {
            match self.r.read(buf.get_mut(..want).unwrap_or_default()) {
                Ok(k) => break k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::Io(e)),
            }
        };
        if got == 0 {
            return Err(fmt_err(
                &self.last_name,
                "unexpected end of archive inside entry data",
            ));
        }
        self.remaining = self.remaining.saturating_sub(got as u64);
        Ok(got)
    }

    /// Reads a whole special payload (PAX, long name, sparse map) of a size already capped.
    fn read_special(&mut self, size: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > pax::MAX_SPECIAL_FILE {
            return Err(fmt_err(
                &self.last_name,
                format!("{what} of {size} bytes is too long"),
            ));
        }
        let mut v = vec![0u8; size as usize];
        if self.read_full(&mut v)? != v.len() {
            return Err(fmt_err(&self.last_name, format!("{what} is truncated")));
        }
        self.skip(padding(size))?;
        Ok(v)
    }

    /// The next member, or `None` at the end-of-archive marker or a clean EOF between headers.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        self.skip(self.remaining)?;
        self.remaining = 0;
        // As Go's archive/tar and umoci: the stream may end in the padding of a last entry whose
        // data is complete (no padding, no end-of-archive blocks); that is the end.
        let pad = std::mem::take(&mut self.pad);
        if !self.skip_padding(pad)? {
            return Ok(None);
        }
        let mut local = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut h = [0u8; BLOCK];
        loop {
            let n = self.read_full(&mut h)?;
            // As Go's archive/tar: EOF or a zero block ends the archive, even right after an
            // extended header (which then describes nothing and is dropped).
            if n == 0 || (n == BLOCK && h.iter().all(|b| *b == 0)) {
                return Ok(None);
            }
            if n < BLOCK {
                return Err(fmt_err(&self.last_name, "archive ends inside a header"));
            }
            self.last_name = String::from_utf8_lossy(nul_trunc(&h[..100])).into_owned();
            let e = |r: String| fmt_err(&String::from_utf8_lossy(nul_trunc(&h[..100])), r);
            if !checksum_ok(&h).map_err(e)? {
                return Err(e("header checksum mismatch".into()));
            }
            let size = unsigned(&h[124..136], "size").map_err(e)?;
            match h[156] {
                b'x' | b'g' => {
                    let data = self.read_special(size, "PAX header")?;
                    let mut target = Pax::default();
                    let dst = if h[156] == b'x' {
                        &mut local
                    } else {
                        &mut target
                    };
                    pax::parse_into(dst, &data).map_err(e)?;
                }
                b'L' => {
                    long_name = Some(nul_trunc(&self.read_special(size, "GNU long name")?).to_vec())
                }
                b'K' => {
                    long_link = Some(nul_trunc(&self.read_special(size, "GNU long link")?).to_vec())
                }
                _ => return self.member(&h, size, local, long_name, long_link).map(Some),
            }
        }
    }

    fn member(
        &mut self,
        h: &[u8; BLOCK],
        hdr_size: u64,
        pax: Pax,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry, TarError> {
        let ustar = &h[257..263] == b"ustar\0";
        let star = ustar && &h[508..512] == b"tar\0";
        let mut path = nul_trunc(&h[..100]).to_vec();
        if ustar {
            let prefix = nul_trunc(if star { &h[345..476] } else { &h[345..500] });
            if !prefix.is_empty() {
                path = [prefix, b"/", &path].concat();
            }
        }
        let path = pax.path.clone().or(long_name).unwrap_or(path);
        let link = pax
            .linkpath
            .clone()
            .or(long_link)
            .unwrap_or_else(|| nul_trunc(&h[157..257]).to_vec());
        self.last_name = String::from_utf8_lossy(&path).into_owned();
        let shown = self.last_name.clone();
        let e = |r: String| fmt_err(&shown, r);
        let mode = (unsigned(&h[100..108], "mode").map_err(e)? & 0o7777) as u32;
        let mtime = match pax.mtime {
            Some(t) => t,
            None => numeric(&h[136..148]).map_err(|r| e(format!("mtime: {r}")))?,
        };
        let flag = h[156];
        // As Go's archive/tar: links, dirs, devices and FIFOs carry no data whatever their size
        // field says (old tars record the target's size on hardlinks).
        let header_only = matches!(flag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
        let stored = if header_only {
            0
        } else {
            pax.size.unwrap_or(hdr_size)
        };
        let kind = match flag {
            b'\0' if path.ends_with(b"/") => Kind::Dir,
            b'0' | b'\0' | b'7' | b'S' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'5' | b'D' => Kind::Dir,
            other => Kind::Skip(other),
        };
        let mut entry = Entry {
            kind,
            path,
            link,
            mode,
            mtime,
            size: stored,
            sparse: None,
        };
        let pad = padding(stored);
        if flag == b'S' {
            let (map, real) = self.gnu_sparse_map(h).map_err(e)?;
            pax::validate_sparse(&map, real, stored).map_err(e)?;
            entry.sparse = Some(map);
            entry.size = real;
        }
        self.remaining = stored;
        self.pad = pad;
        if kind == Kind::File && flag != b'S' && pax.is_sparse() {
            self.pax_sparse(&mut entry, &pax)?;
        }
        // Only regular files carry data we use; links, dirs and skipped types have it drained.
        if kind != Kind::File {
            entry.size = 0;
        }
        Ok(entry)
    }

    /// Old GNU sparse ('S'): four map slots in the header, then 21 per extension block.
    fn gnu_sparse_map(&mut self, h: &[u8; BLOCK]) -> Result<(Vec<(u64, u64)>, u64), String> {
        let mut map = Vec::new();
        let push = |map: &mut Vec<(u64, u64)>, slot: &[u8]| -> Result<(), String> {
            let (off_field, len_field) = slot.split_at_checked(12).ok_or("short sparse slot")?;
            let off = unsigned(off_field, "sparse offset")?;
            let len = unsigned(
                len_field.get(..12).ok_or("short sparse slot")?,
                "sparse length",
            )?;
            // As GNU and BSD tar: a slot whose offset starts with NUL is unused.
            if slot.first().is_some_and(|b| *b != 0) {
                if map.len() >= pax::MAX_SPARSE_CHUNKS {
                    return Err("too many sparse chunks".into());
                }
                map.push((off, len));
            }
            Ok(())
        };
        // Bytes 386..482 of the header: four 24-byte slots.
        for slot in h.get(386..482).unwrap_or_default().chunks_exact(24) {
            push(&mut map, slot)?;
        }
        let real = unsigned(&h[483..495], "sparse real size")?;
        let mut extended = h[482] != 0;
        let mut ext = [0u8; BLOCK];
        while extended {
            if self
                .read_full(&mut ext)
                .map_err(|_| "sparse extension header unreadable".to_string())?
                != BLOCK
            {
                return Err("archive ends inside a sparse extension header".into());
            }
            // Bytes 0..504 of an extension block: 21 slots.
            for slot in ext.get(..504).unwrap_or_default().chunks_exact(24) {
                push(&mut map, slot)?;
            }
            extended = ext[504] != 0;
        }
        Ok((map, real))
    }

    /// PAX sparse formats 0.0, 0.1 (map in records) and 1.0 (map at the start of the data).
    fn pax_sparse(&mut self, entry: &mut Entry, pax: &Pax) -> Result<(), TarError> {
        let name = entry.path.clone();
        let e = |r: String| fmt_err(&String::from_utf8_lossy(&name), r);
        let real = pax
            .sparse_realsize
            .ok_or_else(|| e("sparse file without a real size".into()))?;
        let map = if pax.sparse_major == Some(1) && pax.sparse_minor == Some(0) {
            self.sparse_map_1_0().map_err(|r| match r {
                TarError::Format { reason, .. } => e(reason),
                io => io,
            })?
        } else if let Some(m) = &pax.sparse_map {
            m.clone()
        } else {
            if !pax.sparse_pairs.len().is_multiple_of(2) {
                return Err(e("GNU.sparse.offset without numbytes".into()));
            }
            pax::pairs(&pax.sparse_pairs)
        };
        pax::validate_sparse(&map, real, self.remaining).map_err(e)?;
        if let Some(n) = &pax.sparse_name {
            entry.path = n.clone();
        }
        entry.sparse = Some(map);
        entry.size = real;
        Ok(())
    }

    /// Reads the 1.0 map: decimal numbers one per line (count, then offset/length pairs), in whole
    /// blocks at the start of the entry data; the data proper starts at the next block boundary.
    fn sparse_map_1_0(&mut self) -> Result<Vec<(u64, u64)>, TarError> {
        let mut nums: Vec<u64> = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let mut want: Option<usize> = None;
        let mut block = [0u8; BLOCK];
        loop {
            if self.remaining < BLOCK as u64 || self.read_full(&mut block)? != BLOCK {
                return Err(fmt_err("", "sparse map is truncated"));
            }
            self.remaining = self.remaining.saturating_sub(BLOCK as u64);
            for &b in block.iter() {
                if want.is_some_and(|w| nums.len() == w) {
                    break;
                }
                if b == b'\n' && want.is_none() && cur.first() == Some(&b'#') {
                    // Comment lines before the count (`#!gnu-sparse-format`, `#format:1.0`),
                    // as written by some GNU tar versions and accepted by libarchive.
                    cur.clear();
                } else if b == b'\n' {
                    let n = pax::parse_decimal(&cur)
                        .ok_or_else(|| fmt_err("", "sparse map number is malformed"))?;
                    cur.clear();
                    if want.is_none() {
                        let count = usize::try_from(n)
                            .ok()
                            .filter(|c| *c <= pax::MAX_SPARSE_CHUNKS);
                        want = Some(
                            count
                                .ok_or_else(|| fmt_err("", "too many sparse chunks"))?
                                .saturating_mul(2),
                        );
                    } else {
                        nums.push(n);
                    }
                } else if cur.len() > 64 {
                    return Err(fmt_err("", "sparse map number is too long"));
                } else {
                    cur.push(b);
                }
            }
            if want.is_some_and(|w| nums.len() == w) {
                return Ok(pax::pairs(&nums));
            }
        }
    }
}

fn padding(size: u64) -> u64 {
    // (512 - size % 512) % 512: the distance to the next multiple of 512 (BLOCK).
    size.wrapping_neg() & 511
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"0000644\0").unwrap(), 0o644);
        assert_eq!(numeric(b"   644 \0").unwrap(), 0o644);
        assert_eq!(numeric(b"\0\0\0\0").unwrap(), 0);
        assert!(numeric(b"0008\0").is_err());
        assert_eq!(
            numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap(),
            256
        );
        assert_eq!(numeric(&[0xff; 12]).unwrap(), -1);
        assert!(
            numeric(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .is_err()
        );
        assert!(unsigned(&[0xff; 12], "size").is_err());
        assert!(numeric(b"777777777777777777777777").is_err());
    }

    #[test]
    fn zero_length_header_stream_does_not_loop() {
        // A header with size 0 followed by nothing: must end, not spin.
        let mut h = tar::Header::new_gnu();
        h.set_path("a").unwrap();
        h.set_size(0);
        h.set_cksum();
        let mut t = TarStream::new(&h.as_bytes()[..]);
        assert!(t.next_entry().unwrap().is_some());
        assert!(t.next_entry().unwrap().is_none());
    }
}
