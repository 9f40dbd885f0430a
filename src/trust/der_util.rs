//! Small encoding helpers shared by the trust modules: PEM blocks, base64, DER time and OID
//! lookups. They only decode; any malformed input is an error, never a best guess.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]

use super::TrustError;
use base64::Engine;

/// One PEM block: its label (`CERTIFICATE`, `PUBLIC KEY`, …) and decoded DER.
pub(crate) struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// Decodes every PEM block in `text`, in order. Text outside blocks is ignored (certificate
/// bundles often carry comments); a block that does not decode is an error.
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, TrustError> {
    let text = std::str::from_utf8(text).map_err(|_| TrustError::Key("PEM is not UTF-8".into()))?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            // Encrypted-PEM style headers ("Proc-Type: …") are not part of the base64 body.
            if !l.contains(':') {
                body.push_str(l);
            }
        }
        if !closed {
            return Err(TrustError::Key(format!(
                "PEM block {label} has no END line"
            )));
        }
        let der = b64(&body).map_err(|e| TrustError::Key(format!("PEM block {label}: {e}")))?;
        out.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    Ok(out)
}

/// Strict standard base64 (with padding), as Sigstore bundles use. Line breaks are dropped
/// first (`base64` wraps at 76 columns and some bundles were written that way); any other
/// non-alphabet character is an error.
pub(crate) fn b64(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("invalid base64: {e}"))
}

/// Unix seconds of an X.509 `Time`.
pub(crate) fn x509_time(t: &x509_cert::time::Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

/// Parses an RFC 3339 timestamp (trusted-root `validFor` bounds) into Unix seconds.
pub(crate) fn rfc3339(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|e| format!("bad timestamp {s:?}: {e}"))
}

/// One DER element: its tag byte, the whole encoding, and its contents.
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub whole: &'a [u8],
    pub content: &'a [u8],
}

/// Reads one DER element (single-byte tags, definite lengths) from the front of `input` and
/// returns it with the remaining bytes. Used where the exact signed bytes matter (TBS
/// certificates, CMS signed attributes), so nothing is re-encoded.
pub(crate) fn tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let err = || "truncated or malformed DER".to_string();
    let tag = *input.first().ok_or_else(err)?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte DER tags are not supported".into());
    }
    let l0 = *input.get(1).ok_or_else(err)?;
    let (len, hdr) = if l0 < 0x80 {
        (l0 as usize, 2)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("unsupported DER length".into());
        }
        let mut len = 0usize;
        for b in input
            .get(2..2usize.saturating_add(n))
            .filter(|b| b.len() == n)
            .ok_or_else(err)?
        {
            len = len.checked_mul(256).ok_or_else(err)? | usize::from(*b);
        }
        (len, n.saturating_add(2))
    };
    let end = hdr
        .checked_add(len)
        .filter(|e| *e <= input.len())
        .ok_or_else(err)?;
    let (whole, rest) = input.split_at_checked(end).ok_or_else(err)?;
    Ok((
        Tlv {
            tag,
            whole,
            content: whole.get(hdr..).ok_or_else(err)?,
        },
        rest,
    ))
}

/// All DER elements inside `content`, in order.
pub(crate) fn tlvs(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = tlv(content)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

/// Encodes a DER element from a tag and contents.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(&significant);
    }
    out.extend_from_slice(content);
    out
}

/// Dotted form of a DER-encoded OBJECT IDENTIFIER element.
pub(crate) fn oid_string(whole: &[u8]) -> Result<String, String> {
    use x509_cert::der::Decode;
    let o: x509_cert::der::asn1::ObjectIdentifier =
        x509_cert::der::asn1::ObjectIdentifier::from_der(whole)
            .map_err(|e| format!("bad OID: {e}"))?;
    Ok(o.to_string())
}
