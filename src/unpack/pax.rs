//! PAX extended-header records and GNU sparse maps: strict parsers over bounded buffers. They own
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! the rules for what a malformed record is (length prefix, `key=value\n`, NULs, numbers) and must
//! never accept a record a stricter reader would reject, since disagreement between tar parsers is
//! how smuggled entries get through.

/// Largest PAX or GNU long-name payload we read into memory (as Go's archive/tar).
pub(crate) const MAX_SPECIAL_FILE: u64 = 1 << 20;
/// Largest number of sparse chunks accepted for one file.
pub(crate) const MAX_SPARSE_CHUNKS: usize = 1 << 16;

/// The records of one PAX header that we act on; everything else is validated and ignored.
#[derive(Debug, Default)]
pub(crate) struct Pax {
    pub path: Option<Vec<u8>>,
    pub linkpath: Option<Vec<u8>>,
    pub size: Option<u64>,
    pub mtime: Option<i64>,
    pub sparse_major: Option<u64>,
    pub sparse_minor: Option<u64>,
    pub sparse_name: Option<Vec<u8>>,
    pub sparse_realsize: Option<u64>,
    pub sparse_map: Option<Vec<(u64, u64)>>,
    /// GNU sparse 0.0: `GNU.sparse.offset` / `GNU.sparse.numbytes` in record order.
    pub sparse_pairs: Vec<u64>,
}

impl Pax {
    /// True when any GNU sparse record was present.
    pub fn is_sparse(&self) -> bool {
        self.sparse_major.is_some()
            || self.sparse_map.is_some()
            || !self.sparse_pairs.is_empty()
            || self.sparse_realsize.is_some()
    }
}

/// A plain decimal number (ASCII digits only, at most i64::MAX).
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n <= i64::MAX as u64)
}

fn num_u64(v: &[u8], key: &str) -> Result<u64, String> {
    parse_decimal(v).ok_or_else(|| format!("PAX record {key} is not a valid number"))
}

/// `[-]seconds[.fraction]`; the fraction is dropped.
fn pax_time(v: &[u8]) -> Result<i64, String> {
    let bad = || "PAX record mtime is not a valid time".to_string();
    let s = std::str::from_utf8(v).map_err(|_| bad())?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let n: i64 = secs.parse().map_err(|_| bad())?;
    Ok(if neg {
        n.checked_neg().ok_or_else(bad)?
    } else {
        n
    })
}

/// `[a, b, c, d]` as `[(a, b), (c, d)]` (an odd last value is dropped; callers check parity).
pub(crate) fn pairs(nums: &[u64]) -> Vec<(u64, u64)> {
    nums.chunks_exact(2)
        .filter_map(|c| match c {
            [a, b] => Some((*a, *b)),
            _ => None,
        })
        .collect()
}

fn sparse_map(v: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let nums = v
        .split(|b| *b == b',')
        .map(|n| num_u64(n, "GNU.sparse.map"))
        .collect::<Result<Vec<_>, _>>()?;
    if nums.len() % 2 != 0 || nums.len() / 2 > MAX_SPARSE_CHUNKS {
        return Err("GNU.sparse.map has an odd or excessive number of values".into());
    }
    Ok(pairs(&nums))
}

/// Parses and merges the records of one PAX header into `pax` (later records win).
pub(crate) fn parse_into(pax: &mut Pax, mut data: &[u8]) -> Result<(), String> {
    while !data.is_empty() {
        // A header padded with NULs ends at the first NUL.
        if data.first() == Some(&0) {
            break;
        }
        let sp = data
            .iter()
            .position(|b| *b == b' ')
            .ok_or("PAX record without length")?;
        let (digits, _) = data
            .split_at_checked(sp)
            .ok_or("PAX record without length")?;
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        let (rec, rest) = data
            .split_at_checked(len)
            .ok_or("PAX record length out of range")?;
        data = rest;
        // The record is `LEN SP BODY`: the body starts after the space and is not empty.
        let body = rec
            .get(sp.saturating_add(1)..)
            .filter(|b| !b.is_empty())
            .ok_or("PAX record length out of range")?;
        let body = match body.strip_suffix(b"\n") {
            Some(b) => b,
            // As libarchive: a last record `N key=` (empty value) may lack its newline. Any
            // other missing or replaced terminator is an error (as Go's archive/tar).
            None if data.is_empty() && body.ends_with(b"=") => body,
            None => return Err("PAX record does not end in newline".into()),
        };
        let eq = body
            .iter()
            .position(|b| *b == b'=')
            .ok_or("PAX record without '='")?;
        let (key, value) = body.split_at(eq);
        let value = value.get(1..).unwrap_or_default();
        if key.is_empty() || key.contains(&0) {
            return Err("PAX record key is empty or contains NUL".into());
        }
        let key = std::str::from_utf8(key).map_err(|_| "PAX record key is not UTF-8")?;
        let has_nul = value.contains(&0);
        match key {
            "path" | "linkpath" | "uname" | "gname" if has_nul => {
                return Err(format!("PAX record {key} contains NUL"));
            }
            "path" => pax.path = Some(value.to_vec()),
            "linkpath" => pax.linkpath = Some(value.to_vec()),
            "size" => {
                pax.size = if value.is_empty() {
                    None
                } else {
                    Some(num_u64(value, key)?)
                }
            }
            "mtime" => {
                pax.mtime = if value.is_empty() {
                    None
                } else {
                    Some(pax_time(value)?)
                }
            }
            "uid" | "gid" if !value.is_empty() => {
                num_u64(value, key)?;
            }
            "atime" | "ctime" if !value.is_empty() => {
                pax_time(value)?;
            }
            "GNU.sparse.major" => pax.sparse_major = Some(num_u64(value, key)?),
            "GNU.sparse.minor" => pax.sparse_minor = Some(num_u64(value, key)?),
            "GNU.sparse.name" => pax.sparse_name = Some(value.to_vec()),
            "GNU.sparse.realsize" | "GNU.sparse.size" => {
                pax.sparse_realsize = Some(num_u64(value, key)?)
            }
            "GNU.sparse.map" => pax.sparse_map = Some(sparse_map(value)?),
            "GNU.sparse.offset" | "GNU.sparse.numbytes" => {
                if pax.sparse_pairs.len() >= 2 * MAX_SPARSE_CHUNKS {
                    return Err("too many GNU.sparse.offset records".into());
                }
                pax.sparse_pairs.push(num_u64(value, key)?);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a sparse map against the logical size and the stored data size: chunks in order, not
/// overlapping, inside the file, and their lengths summing to exactly the stored bytes.
pub(crate) fn validate_sparse(
    map: &[(u64, u64)],
    realsize: u64,
    stored: u64,
) -> Result<(), String> {
    if map.len() > MAX_SPARSE_CHUNKS {
        return Err("too many sparse chunks".into());
    }
    let mut end = 0u64;
    let mut sum = 0u64;
    for &(off, len) in map {
        if off < end {
            return Err("sparse chunks overlap or are out of order".into());
        }
        end = off.checked_add(len).ok_or("sparse chunk overflows")?;
        if end > realsize {
            return Err("sparse chunk lies past the file size".into());
        }
        sum = sum.checked_add(len).ok_or("sparse chunks overflow")?;
    }
    if sum != stored {
        return Err(format!(
            "sparse map covers {sum} bytes but the entry stores {stored}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn rec(k: &str, v: &str) -> Vec<u8> {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        if (n.to_string() + &body).len() != n {
            n += 1;
        }
        format!("{n}{body}").into_bytes()
    }

    #[test]
    fn good_records_parse_and_later_wins() {
        let mut data = rec("path", "a/b");
        data.extend(rec("size", "2048"));
        data.extend(rec("mtime", "-2146608000.5"));
        data.extend(rec("path", "c"));
        let mut p = Pax::default();
        parse_into(&mut p, &data).unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"c"[..]));
        assert_eq!(p.size, Some(2048));
        assert_eq!(p.mtime, Some(-2146608000));
        let mut p = Pax::default();
        parse_into(&mut p, b"4 x=").unwrap();
    }

    #[test]
    fn malformed_records_are_errors() {
        let bad: Vec<Vec<u8>> = vec![
            b"99 path=a\n".to_vec(),
            b"13 path=abc\0".to_vec(),
            b"10 patha\n\n".to_vec(),
            b"x path=a\n".to_vec(),
            rec("size", "-1"),
            rec("size", "12a"),
            rec("mtime", "1e9"),
            b"13 path=a\0b\n".to_vec(),
            b"12 a\0b=xyz\n".to_vec(),
            b"9 path=a ".to_vec(),
        ];
        for b in bad {
            assert!(
                parse_into(&mut Pax::default(), &b).is_err(),
                "{:?}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    #[test]
    fn sparse_maps_are_validated() {
        assert!(validate_sparse(&[(0, 5), (10, 5)], 20, 10).is_ok());
        assert!(validate_sparse(&[(10, 5), (0, 5)], 20, 10).is_err());
        assert!(validate_sparse(&[(0, 5), (18, 5)], 20, 10).is_err());
        assert!(validate_sparse(&[(0, 5)], 20, 6).is_err());
        assert!(validate_sparse(&[(u64::MAX, 5)], u64::MAX, 5).is_err());
    }
}
