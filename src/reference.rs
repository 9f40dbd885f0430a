//! Parsing what the user typed into an image location: a short name expanded against the default
//! registry, a name qualified by a configured registry (`corp/tool:1.2`), a full reference
//! (`host[:port]/path/name[:tag|@sha256:…]`), or a local OCI image layout (`oci:DIR[:tag]`).
//! This module only parses and normalises; it never touches the network or the disk.

use crate::config::{Config, RegistryEntry};
use crate::identity::{HostPort, RegistryUrl};
use std::fmt;
use std::path::PathBuf;

/// Errors in a reference as typed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference '{input}': {reason}")]
    Invalid { input: String, reason: String },
    #[error("'{input}' is a short name but no default registry is configured (run `gantry registry add NAME URL --default`)")]
    NoDefault { input: String },
}

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Tag(String),
    Digest(String),
}

/// An image in a registry. Which configured entry governs it is not decided here but once, by
/// [`crate::registry_policy::RegistryPolicy::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryImage {
    /// `host[:port]` in canonical spelling (see [`crate::identity`]).
    pub host: String,
    /// Repository path within the host, e.g. `tools/jq`.
    pub repository: String,
    pub version: Version,
}

/// An image in a local OCI layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutImage {
    pub dir: PathBuf,
    pub version: Option<Version>,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    Registry(RegistryImage),
    Layout(LayoutImage),
}

impl RegistryImage {
    /// `host/repo:tag` or `host/repo@sha256:…`.
    pub fn normalized(&self) -> String {
        match &self.version {
            Version::Tag(t) => format!("{}/{}:{}", self.host, self.repository, t),
            Version::Digest(d) => format!("{}/{}@{}", self.host, self.repository, d),
        }
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        match &self.version {
            Version::Tag(t) => Some(t),
            Version::Digest(_) => None,
        }
    }
}

impl ImageLocation {
    /// The normalised reference, as policies see it in `image.reference`.
    pub fn normalized(&self) -> String {
        match self {
            ImageLocation::Registry(r) => r.normalized(),
            ImageLocation::Layout(l) => match &l.version {
                None => format!("oci:{}", l.dir.display()),
                Some(Version::Tag(t)) => format!("oci:{}:{}", l.dir.display(), t),
                Some(Version::Digest(d)) => format!("oci:{}@{}", l.dir.display(), d),
            },
        }
    }

    /// The repository path (`tools/jq`); for a layout, the directory name.
    pub fn repository(&self) -> String {
        match self {
            ImageLocation::Registry(r) => r.repository.clone(),
            ImageLocation::Layout(l) => l
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into()),
        }
    }

    /// The tag named, if any.
    pub fn tag(&self) -> Option<String> {
        match self {
            ImageLocation::Registry(r) => r.tag().map(str::to_owned),
            ImageLocation::Layout(l) => match &l.version {
                Some(Version::Tag(t)) => Some(t.clone()),
                _ => None,
            },
        }
    }

    /// The default package name: the last component of the repository path.
    pub fn default_name(&self) -> String {
        let repo = self.repository();
        repo.rsplit('/').next().unwrap_or(&repo).to_string()
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn is_valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

fn is_valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// A repository path in the distribution grammar: components of lower-case alphanumerics joined
/// by one separator (`.`, `_`, `__` or a run of `-`), never starting or ending with one.
pub fn is_valid_repo(r: &str) -> bool {
    !r.is_empty() && r.len() <= 255 && r.split('/').all(is_valid_component)
}

fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !(b.first().is_some_and(alnum) && b.last().is_some_and(alnum)) {
        return false;
    }
    // Every run of separators is one of `.`, `_`, `__` or `-+`.
    let mut run = String::new();
    for &x in b {
        if alnum(&x) {
            if !(run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.bytes().all(|y| y == b'-'))
            {
                return false;
            }
            run.clear();
        } else if b"._-".contains(&x) {
            run.push(x as char);
        } else {
            return false;
        }
    }
    true
}

/// Why a repository path is not valid, naming the bad component.
fn repo_problem(r: &str) -> String {
    match r.split('/').find(|c| !is_valid_component(c)) {
        Some("") => format!("'{r}' has an empty path component"),
        Some(c) => format!("repository component '{c}' is not valid (lower case letters and digits, joined by one of '.', '_', '__' or '-')"),
        None => format!("'{r}' is not a valid repository path"),
    }
}

/// Splits `name[:tag][@digest]` into name and version (default tag `latest`).
fn split_version(input: &str, s: &str) -> Result<(String, Version), ReferenceError> {
    if let Some((name, digest)) = s.split_once('@') {
        if !is_valid_digest(digest) {
            return Err(invalid(input, format!("'{digest}' is not a sha256 digest (sha256: followed by 64 lowercase hex digits)")));
        }
        // A tag beside the digest is informative only; the digest wins.
        let name = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => n,
            _ => name,
        };
        return Ok((name.to_string(), Version::Digest(digest.to_string())));
    }
    match s.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => {
            if !is_valid_tag(tag) {
                return Err(invalid(input, format!("'{tag}' is not a valid tag")));
            }
            Ok((name.to_string(), Version::Tag(tag.to_string())))
        }
        _ => Ok((s.to_string(), Version::Tag("latest".into()))),
    }
}

fn looks_like_host(component: &str) -> bool {
    component.contains('.')
        || component.contains(':')
        || component.eq_ignore_ascii_case("localhost")
        || component.starts_with('[')
}

fn in_registry(
    input: &str,
    entry: &RegistryEntry,
    rest: &str,
) -> Result<ImageLocation, ReferenceError> {
    let url = RegistryUrl::parse(&entry.url).map_err(|e| invalid(input, e.to_string()))?;
    let (path, version) = split_version(input, rest)?;
    if !is_valid_repo(&path) {
        return Err(invalid(input, repo_problem(&path)));
    }
    match url {
        RegistryUrl::Registry { host, prefix } => {
            let repository = prefix
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(path.as_str()))
                .collect::<Vec<_>>()
                .join("/");
            Ok(ImageLocation::Registry(RegistryImage {
                host: host.to_string(),
                repository,
                version,
            }))
        }
        RegistryUrl::Layout(dir) => Ok(ImageLocation::Layout(LayoutImage {
            dir: dir.join(path),
            version: Some(version),
        })),
    }
}

/// Parses a reference as the user typed it. `config` supplies the registry names a reference
/// may start with and the default registry; it does not decide which entry governs the result.
pub fn parse(input: &str, config: &Config) -> Result<ImageLocation, ReferenceError> {
    parse_named(input, config).map(|(l, _)| l)
}

/// [`parse`], also returning the name of the registry entry the reference was expanded against
/// (`corp/tool`, or a short name and the default registry), if any.
pub fn parse_named(
    input: &str,
    config: &Config,
) -> Result<(ImageLocation, Option<String>), ReferenceError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(invalid(input, "empty reference"));
    }
    if let Some(rest) = s.strip_prefix("oci:") {
        return parse_layout(input, rest).map(|l| (l, None));
    }
    if s.contains("://") {
        return Err(invalid(
            input,
            "drop the URL scheme: write host[:port]/repository[:tag]",
        ));
    }
    if s.starts_with('-') {
        return Err(invalid(input, "a reference cannot start with '-'"));
    }
    let first = s.split('/').next().unwrap_or("");
    if s.contains('/') && looks_like_host(first) {
        let rest = s.get(first.len() + 1..).unwrap_or("");
        let host = HostPort::parse(first).map_err(|e| invalid(input, e.reason))?;
        let (path, version) = split_version(input, rest)?;
        if !is_valid_repo(&path) {
            return Err(invalid(input, repo_problem(&path)));
        }
        return Ok((
            ImageLocation::Registry(RegistryImage {
                host: host.to_string(),
                repository: path,
                version,
            }),
            None,
        ));
    }
    if let Some((reg, rest)) = s.split_once('/') {
        if let Some(entry) = config.registries.get(reg) {
            return in_registry(input, entry, rest).map(|l| (l, Some(reg.to_string())));
        }
    }
    let (name, entry) = config
        .default_registry()
        .ok_or_else(|| ReferenceError::NoDefault {
            input: input.to_string(),
        })?;
    in_registry(input, entry, s).map(|l| (l, Some(name.to_string())))
}

fn parse_layout(input: &str, rest: &str) -> Result<ImageLocation, ReferenceError> {
    if rest.is_empty() {
        return Err(invalid(input, "oci: needs a directory"));
    }
    let (dir, version) = if let Some((d, digest)) = rest.rsplit_once('@') {
        if !is_valid_digest(digest) {
            return Err(invalid(input, format!("'{digest}' is not a sha256 digest")));
        }
        (d, Some(Version::Digest(digest.to_string())))
    } else {
        match rest.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') && !d.is_empty() => {
                if !is_valid_tag(t) {
                    return Err(invalid(input, format!("'{t}' is not a valid tag")));
                }
                (d, Some(Version::Tag(t.to_string())))
            }
            _ => (rest, None),
        }
    };
    Ok(ImageLocation::Layout(LayoutImage {
        dir: PathBuf::from(dir),
        version,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryEntry;

    fn config() -> Config {
        let mut c = Config::default();
        c.registries.insert(
            "corp".into(),
            RegistryEntry::new("registry.corp.example:5000/team"),
        );
        c.registries
            .insert("hub".into(), RegistryEntry::new("docker.io/chainguard"));
        c.default_registry = Some("hub".into());
        c
    }

    fn reg(l: ImageLocation) -> RegistryImage {
        match l {
            ImageLocation::Registry(r) => r,
            other => panic!("expected registry image, got {other:?}"),
        }
    }

    #[test]
    fn short_name_expands_against_default_registry() {
        let r = reg(parse("jq", &config()).unwrap());
        assert_eq!(r.normalized(), "docker.io/chainguard/jq:latest");
    }

    #[test]
    fn configured_registry_prefix_expands() {
        let l = parse("corp/tools/jq:1.7", &config()).unwrap();
        assert_eq!(l.default_name(), "jq");
        assert_eq!(
            reg(l).normalized(),
            "registry.corp.example:5000/team/tools/jq:1.7"
        );
    }

    #[test]
    fn full_reference_with_port_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = reg(parse(&format!("127.0.0.1:5000/x/y@{d}"), &config()).unwrap());
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.version, Version::Digest(d));
    }

    #[test]
    fn hosts_are_spelled_canonically() {
        for (typed, host) in [
            (
                "Registry.Corp.Example.:443/team/jq",
                "registry.corp.example",
            ),
            ("127.000.0.1:05000/x", "127.0.0.1:5000"),
            ("[0:0::1]:5000/x", "[::1]:5000"),
            ("LOCALHOST:5000/x", "localhost:5000"),
        ] {
            assert_eq!(reg(parse(typed, &config()).unwrap()).host, host, "{typed}");
        }
    }

    #[test]
    fn layout_references() {
        let l = parse("oci:./out:1.0", &config()).unwrap();
        assert_eq!(
            l,
            ImageLocation::Layout(LayoutImage {
                dir: "./out".into(),
                version: Some(Version::Tag("1.0".into()))
            })
        );
        let l = parse("oci:/tmp/a/b", &config()).unwrap();
        assert_eq!(
            l,
            ImageLocation::Layout(LayoutImage {
                dir: "/tmp/a/b".into(),
                version: None
            })
        );
    }

    #[test]
    fn hostile_or_malformed_references_are_rejected() {
        let c = config();
        for (bad, part) in [
            ("", "empty"),
            ("x@sha256:zz", "sha256"),
            ("x:ta g", "tag"),
            ("127.0.0.1:5000/../etc", "'..'"),
            ("127.0.0.1:5000/A/B", "'A'"),
            ("corp/tools/jq:-x", "tag"),
            ("oci:", "directory"),
            ("127.0.0.1:/x", "empty port"),
            ("127.0.0.1:99999/x", "out of range"),
            ("127.0.0.1:5x/x", "not a number"),
            ("::1:5000/x", "brackets"),
            ("http://127.0.0.1:5000/x", "scheme"),
            ("127.0.0.1:5000/a___b", "'a___b'"),
            ("127.0.0.1:5000/a-/b", "'a-'"),
            ("127.0.0.1:5000/a//b", "empty path component"),
            ("-rf", "'-'"),
        ] {
            let e = parse(bad, &c)
                .map(|l| l.normalized())
                .unwrap_err()
                .to_string();
            assert!(e.contains(part), "{bad:?}: {e}");
        }
        let mut none = Config::default();
        none.registries.clear();
        none.default_registry = None;
        assert!(matches!(
            parse("jq", &none),
            Err(ReferenceError::NoDefault { .. })
        ));
    }

    #[test]
    fn repository_grammar() {
        for ok in ["a", "a/b", "a.b", "a_b", "a__b", "a---b", "a1/b-2.c_d"] {
            assert!(is_valid_repo(ok), "{ok}");
        }
        for bad in [
            "", "a___b", "a..b", "a._b", "_a", "a_", "A", "a/", "/a", "a b",
        ] {
            assert!(!is_valid_repo(bad), "{bad}");
        }
    }
}
