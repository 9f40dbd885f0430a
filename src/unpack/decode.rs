//! Stream plumbing between the verified blob and the tar reader: gzip member handling and the
//! budget meter on decompressed bytes. It must never buffer a whole stream or let decompressed
//! bytes through without charging them to the image budget.

use std::io::{BufRead, Read};

use super::{Budget, UnpackError};

/// gzip members one after another (as `gzip -d` does); bytes after the last member that do not
/// start another member are left undecoded (the verifier still hashes them), as gzip's "trailing
/// garbage ignored". Corrupt members and CRC mismatches are errors.
pub(crate) struct GzMembers<'a> {
    cur: Option<flate2::bufread::GzDecoder<Box<dyn BufRead + 'a>>>,
}

impl<'a> GzMembers<'a> {
    pub(crate) fn new(r: Box<dyn BufRead + 'a>) -> Self {
        GzMembers {
            cur: Some(flate2::bufread::GzDecoder::new(r)),
        }
    }
}

impl Read for GzMembers<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(dec) = self.cur.as_mut() else {
                return Ok(0);
            };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(mut rest) = self.cur.take().map(|d| d.into_inner()) else {
                return Ok(0);
            };
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
pub(crate) struct Charged<'a, R> {
    pub inner: R,
    pub budget: &'a Budget,
    pub pending: u64,
    /// Every byte charged so far (recorded with the layer, so a cached layer costs the same).
    pub total: u64,
}

impl<R: Read> Read for Charged<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        self.total += n as u64;
        if self.pending >= 1 << 20 || n == 0 {
            let p = std::mem::take(&mut self.pending);
            self.budget.charge_bytes(p).map_err(std::io::Error::other)?;
        }
        Ok(n)
    }
}

/// Gets back an [`UnpackError`] (a budget overrun) that travelled through an `io::Error`.
pub(crate) fn take_unpack_error(e: std::io::Error) -> Result<UnpackError, std::io::Error> {
    if !e.get_ref().is_some_and(|i| i.is::<UnpackError>()) {
        return Err(e);
    }
    match e.into_inner().map(|b| b.downcast::<UnpackError>()) {
        Some(Ok(inner)) => Ok(*inner),
        _ => Err(std::io::Error::other("error lost in transit")),
    }
}
