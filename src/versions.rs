//! Which tags of a repository are newer versions of the one installed, as `gantry update` offers
//! them. A tag is read as a version only when it looks like one: an optional prefix (`v`,
//! `release-`), dot-separated numbers, an optional pre-release (`-rc.1`, `-beta2`) and an optional
//! variant suffix (`-alpine3.19`, `-slim`); or a date (`20260101`, `2026.01.01`). Versions compare
//! semver-style (`1.10 > 1.9`, `1.2 == 1.2.0`), and only within the same prefix, the same kind
//! (dates with dates of the same shape) and the same suffix shape; pre-releases are offered only
//! when the installed tag is one. Never offered: cosign sidecars (`sha256-….sig|.att|.sbom`),
//! `latest` and every other tag that is not a version.

use std::cmp::Ordering;

/// A tag read as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVersion {
    prefix: String,
    kind: Kind,
    core: Vec<u64>,
    pre: Option<Vec<Ident>>,
    /// The variant suffix (`-alpine3.19`), compared digit-aware.
    suffix: String,
    /// The suffix with every run of digits as `#`: versions compete only within one shape.
    suffix_shape: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Version,
    /// A date, with its shape (`YYYYMMDD` or `YYYY.MM.DD`).
    Date(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Text(String),
}

/// Words that start a pre-release rather than a variant suffix.
const PRE_WORDS: &[&str] = &[
    "alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "nightly", "canary", "a", "b",
];

impl TagVersion {
    /// Reads `tag` as a version, or `None` when it is not one.
    pub fn parse(tag: &str) -> Option<TagVersion> {
        if tag == "latest" || is_sidecar(tag) {
            return None;
        }
        let (tag, _build) = tag.split_once('+').unwrap_or((tag, ""));
        let digits_at = tag.find(|c: char| c.is_ascii_digit())?;
        let (prefix, rest) = tag.split_at(digits_at);
        if prefix.chars().any(|c| c.is_ascii_digit()) || prefix.len() > 16 {
            return None;
        }
        let core_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (core_text, tail) = rest.split_at(core_end);
        if core_text.ends_with('.') || core_text.contains("..") {
            return None;
        }
        let parts: Vec<&str> = core_text.split('.').collect();
        let core: Vec<u64> = parts
            .iter()
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if core.len() > 6 {
            return None;
        }
        let kind = date_shape(&parts).map_or(Kind::Version, Kind::Date);
        let (pre, suffix) = match tail {
            "" => (None, String::new()),
            t if t.starts_with('-') || t.starts_with('.') => split_pre(t.get(1..)?)?,
            _ => return None,
        };
        let suffix_shape = shape(&suffix);
        Some(TagVersion {
            prefix: prefix.to_string(),
            kind,
            core,
            pre,
            suffix,
            suffix_shape,
        })
    }

    /// Whether `other` competes with this version at all (same prefix, kind, suffix shape).
    pub fn comparable(&self, other: &TagVersion) -> bool {
        self.prefix == other.prefix
            && self.kind == other.kind
            && self.suffix_shape == other.suffix_shape
    }

    /// Whether this is a pre-release.
    pub fn is_pre(&self) -> bool {
        self.pre.is_some()
    }
}

/// Orders two comparable versions.
fn cmp_versions(a: &TagVersion, b: &TagVersion) -> Ordering {
    let len = a.core.len().max(b.core.len());
    for i in 0..len {
        let x = a.core.get(i).copied().unwrap_or(0);
        let y = b.core.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    let pre = match (&a.pre, &b.pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => cmp_idents(x, y),
    };
    pre.then_with(|| cmp_digit_aware(&a.suffix, &b.suffix))
}

fn cmp_idents(a: &[Ident], b: &[Ident]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Ident::Num(m), Ident::Num(n)) => m.cmp(n),
            (Ident::Num(_), Ident::Text(_)) => Ordering::Less,
            (Ident::Text(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Text(s), Ident::Text(t)) => s.cmp(t),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Compares strings with runs of digits compared as numbers (`alpine3.9 < alpine3.19`).
fn cmp_digit_aware(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<Ident> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut digits = false;
        for c in s.chars() {
            if !cur.is_empty() && c.is_ascii_digit() != digits {
                out.push(ident(&cur));
                cur.clear();
            }
            digits = c.is_ascii_digit();
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(ident(&cur));
        }
        out
    };
    cmp_idents(&split(a), &split(b))
}

fn ident(s: &str) -> Ident {
    match s.parse::<u64>() {
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => Ident::Num(n),
        _ => Ident::Text(s.to_string()),
    }
}

/// `-rc.1-alpine` → pre-release `rc.1`, suffix `alpine`; `-alpine` → suffix only.
#[allow(clippy::type_complexity)]
fn split_pre(t: &str) -> Option<(Option<Vec<Ident>>, String)> {
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return None;
    }
    let word: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if !PRE_WORDS.contains(&word.to_ascii_lowercase().as_str()) {
        return Some((None, t.to_string()));
    }
    let (pre, suffix) = match t.split_once('-') {
        Some((p, s)) => (p, s.to_string()),
        None => (t, String::new()),
    };
    let mut ids = Vec::new();
    for part in pre.split('.') {
        // `rc1` is `rc`, `1`.
        let w: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let n = part.get(w.len()..).unwrap_or("");
        if !w.is_empty() {
            ids.push(Ident::Text(w.to_ascii_lowercase()));
        }
        if !n.is_empty() {
            ids.push(ident(n));
        }
    }
    Some((Some(ids), suffix))
}

/// Every run of digits as `#`.
fn shape(s: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// `YYYYMMDD` or `YYYY.MM.DD` (years 1970–2099, real months and days).
fn date_shape(parts: &[&str]) -> Option<&'static str> {
    let ok = |y: &str, m: &str, d: &str| {
        let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
            return false;
        };
        (1970..=2099).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
    };
    match parts {
        [one] if one.len() == 8 && ok(&one[..4], &one[4..6], &one[6..]) => Some("YYYYMMDD"),
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 && ok(y, m, d) => {
            Some("YYYY.MM.DD")
        }
        _ => None,
    }
}

/// cosign's attachment tags and the referrers tag schema: `sha256-HEX[.sig|.att|.sbom]`.
fn is_sidecar(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let hex = rest.split('.').next().unwrap_or("");
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The tags among `tags` that are newer versions than `current`, newest first. Empty when
/// `current` is not a version (such a tag is followed for drift only).
pub fn newer<'a>(current: &str, tags: &'a [String]) -> Vec<&'a str> {
    let Some(cur) = TagVersion::parse(current) else {
        return Vec::new();
    };
    let mut found: Vec<(TagVersion, &str)> = tags
        .iter()
        .filter_map(|t| TagVersion::parse(t).map(|v| (v, t.as_str())))
        .filter(|(v, _)| cur.comparable(v))
        .filter(|(v, _)| cur.is_pre() || !v.is_pre())
        .filter(|(v, _)| cmp_versions(v, &cur) == Ordering::Greater)
        .collect();
    found.sort_by(|(a, ta), (b, tb)| cmp_versions(b, a).then_with(|| ta.cmp(tb)));
    found.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(a: &str, b: &str) -> Option<Ordering> {
        let (x, y) = (TagVersion::parse(a)?, TagVersion::parse(b)?);
        x.comparable(&y).then(|| cmp_versions(&x, &y))
    }

    #[test]
    fn the_ordering_table() {
        use Ordering::*;
        let table: &[(&str, &str, Option<Ordering>)] = &[
            ("1.10", "1.9", Some(Greater)),
            ("1.2", "1.2.0", Some(Equal)),
            ("1.2.1", "1.2", Some(Greater)),
            ("2", "1.99.99", Some(Greater)),
            ("v1.10.0", "v1.9.3", Some(Greater)),
            ("v1.2", "1.2", None),
            ("release-1.3", "release-1.2", Some(Greater)),
            ("1.2.0", "1.2.0-rc.1", Some(Greater)),
            ("1.2.0-rc.2", "1.2.0-rc.1", Some(Greater)),
            ("1.2.0-rc.10", "1.2.0-rc.9", Some(Greater)),
            ("1.2.0-rc1", "1.2.0-beta3", Some(Greater)),
            ("1.3-alpine", "1.2-alpine", Some(Greater)),
            ("1.3-alpine", "1.4", None),
            ("1.3-alpine3.20", "1.3-alpine3.19", Some(Greater)),
            ("1.3-alpine3.9", "1.3-alpine3.19", Some(Less)),
            ("1.3-alpine", "1.3-alpine3.19", None),
            ("1.2.3+build7", "1.2.3", Some(Equal)),
            ("20260102", "20260101", Some(Greater)),
            ("2026.01.02", "2026.01.01", Some(Greater)),
            ("20260101", "2026.01.01", None),
            ("20260101", "1.2", None),
            ("2026.1.5", "2026.1.4", Some(Greater)),
        ];
        for (a, b, want) in table {
            assert_eq!(order(a, b), *want, "{a} vs {b}");
        }
    }

    #[test]
    fn what_is_not_a_version() {
        let sidecar = format!("sha256-{}", "a".repeat(64));
        for t in [
            "latest".to_string(),
            "main".into(),
            "stable".into(),
            format!("{sidecar}.sig"),
            format!("{sidecar}.att"),
            format!("{sidecar}.sbom"),
            sidecar,
            "1.2.".into(),
            "1..2".into(),
            "1.2-".into(),
            "1.2~x".into(),
            "abc1x".into(),
            "1.2.3.4.5.6.7".into(),
        ] {
            assert_eq!(TagVersion::parse(&t), None, "{t}");
        }
    }

    #[test]
    fn newer_tags_are_offered_newest_first_within_their_shape() {
        let tags: Vec<String> = [
            "1.9",
            "1.10",
            "1.10.1",
            "1.11.0-rc.1",
            "v2.0",
            "2.0-alpine",
            "latest",
            "1.8",
            "20260101",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(newer("1.9", &tags), ["1.10.1", "1.10"]);
        // Pre-releases only for a pre-release.
        assert_eq!(newer("1.11.0-rc.0", &tags), ["1.11.0-rc.1"]);
        assert_eq!(newer("1.10.1", &tags), Vec::<&str>::new());
        assert_eq!(newer("latest", &tags), Vec::<&str>::new());
        assert_eq!(newer("1.0-alpine", &tags), ["2.0-alpine"]);
        assert_eq!(newer("v1.0", &tags), ["v2.0"]);
        assert_eq!(newer("20251231", &tags), ["20260101"]);
    }
}
