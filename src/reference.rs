//! Parsing what the user typed into an image location: a short name expanded against the default
//! registry, a name qualified by a configured registry (`corp/tool:1.2`), a full reference
//! (`host[:port]/path/name[:tag|@sha256:…]`), or a local OCI image layout (`oci:DIR[:tag]`).
//! This module only parses and normalises; it never touches the network or the disk.

use crate::config::{Config, RegistryEntry};
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

/// An image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryImage {
    /// The configured registry this maps to, or an ad-hoc one named after the host.
    pub registry: String,
    /// Whether `registry` is a configured entry (ad-hoc registries carry no signature policy).
    pub configured: bool,
    /// `host[:port]`.
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
    /// The configured registry whose `url = "oci:PREFIX"` covers this directory (air-gapped
    /// catalogs get the same signature policy as a registry).
    pub registry: Option<String>,
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
    ReferenceError::Invalid { input: input.to_string(), reason: reason.into() }
}

fn is_valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

fn is_valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

fn is_valid_repo(r: &str) -> bool {
    !r.is_empty()
        && r.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        })
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

/// Splits a registry URL (`host[:port][/prefix]`, scheme optional) into host and path prefix.
pub fn split_registry_url(url: &str) -> (String, String) {
    let url = url.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
    match url.split_once('/') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (url.to_string(), String::new()),
    }
}

fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost" || component.starts_with('[')
}

fn in_registry(input: &str, name: &str, entry: &RegistryEntry, rest: &str) -> Result<ImageLocation, ReferenceError> {
    let (host, prefix) = split_registry_url(&entry.url);
    let (path, version) = split_version(input, rest)?;
    let repository = if prefix.is_empty() { path } else { format!("{prefix}/{path}") };
    if !is_valid_repo(&repository) {
        return Err(invalid(input, format!("'{repository}' is not a valid repository path")));
    }
    Ok(ImageLocation::Registry(RegistryImage {
        registry: name.to_string(),
        configured: true,
        host,
        repository,
        version,
    }))
}

/// Parses a reference as the user typed it, against the configured registries.
pub fn parse(input: &str, config: &Config) -> Result<ImageLocation, ReferenceError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(invalid(input, "empty reference"));
    }
    if let Some(rest) = s.strip_prefix("oci:") {
        let mut l = parse_layout(input, rest)?;
        if let ImageLocation::Layout(img) = &mut l {
            img.registry = config.layout_registry(&img.dir).map(str::to_owned);
        }
        return Ok(l);
    }
    let first = s.split('/').next().unwrap_or("");
    if s.contains('/') && looks_like_host(first) {
        let rest = &s[first.len() + 1..];
        // A host that a configured registry covers maps to that registry (with its policy).
        let (path, version) = split_version(input, rest)?;
        if !is_valid_repo(&path) {
            return Err(invalid(input, format!("'{path}' is not a valid repository path")));
        }
        let (registry, configured) = match config.registry_for(first, &path) {
            Some(name) => (name.to_string(), true),
            None => (first.to_string(), false),
        };
        return Ok(ImageLocation::Registry(RegistryImage {
            registry,
            configured,
            host: first.to_string(),
            repository: path,
            version,
        }));
    }
    if let Some((reg, rest)) = s.split_once('/') {
        if let Some(entry) = config.registries.get(reg) {
            return in_registry(input, reg, entry, rest);
        }
    }
    let (name, entry) = config.default_registry().ok_or_else(|| ReferenceError::NoDefault { input: input.to_string() })?;
    in_registry(input, name, entry, s)
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
    Ok(ImageLocation::Layout(LayoutImage { dir: PathBuf::from(dir), version, registry: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryEntry;

    fn config() -> Config {
        let mut c = Config::default();
        c.registries.insert("corp".into(), RegistryEntry::new("registry.corp.example:5000/team"));
        c.registries.insert("hub".into(), RegistryEntry::new("docker.io/chainguard"));
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
        assert_eq!(r.registry, "hub");
        assert_eq!(r.normalized(), "docker.io/chainguard/jq:latest");
    }

    #[test]
    fn configured_registry_prefix_expands() {
        let l = parse("corp/tools/jq:1.7", &config()).unwrap();
        assert_eq!(l.default_name(), "jq");
        let r = reg(l);
        assert_eq!(r.registry, "corp");
        assert_eq!(r.normalized(), "registry.corp.example:5000/team/tools/jq:1.7");
    }

    #[test]
    fn full_reference_with_port_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = reg(parse(&format!("127.0.0.1:5000/x/y@{d}"), &config()).unwrap());
        assert_eq!(r.host, "127.0.0.1:5000");
        assert!(!r.configured);
        assert_eq!(r.version, Version::Digest(d));
    }

    #[test]
    fn full_reference_under_a_configured_url_gets_that_registry() {
        let r = reg(parse("registry.corp.example:5000/team/jq:1", &config()).unwrap());
        assert_eq!(r.registry, "corp");
        assert!(r.configured);
        // Same host, other path: not covered by the entry's prefix.
        let r = reg(parse("registry.corp.example:5000/teamx/jq:1", &config()).unwrap());
        assert!(!r.configured);
    }

    #[test]
    fn layout_references() {
        let l = parse("oci:./out:1.0", &config()).unwrap();
        assert_eq!(l, ImageLocation::Layout(LayoutImage { dir: "./out".into(), version: Some(Version::Tag("1.0".into())), registry: None }));
        let l = parse("oci:/tmp/a/b", &config()).unwrap();
        assert_eq!(l, ImageLocation::Layout(LayoutImage { dir: "/tmp/a/b".into(), version: None, registry: None }));
    }

    #[test]
    fn layout_under_a_configured_oci_prefix_gets_that_registry() {
        let d = tempfile::tempdir().unwrap();
        let catalog = d.path().join("catalog");
        std::fs::create_dir_all(catalog.join("tools")).unwrap();
        std::fs::create_dir_all(d.path().join("catalogue")).unwrap();
        let mut c = config();
        c.registries.insert("airgap".into(), RegistryEntry::new(&format!("oci:{}", catalog.display())));
        let l = parse(&format!("oci:{}/tools:1", catalog.display()), &c).unwrap();
        assert!(matches!(l, ImageLocation::Layout(LayoutImage { registry: Some(ref r), .. }) if r == "airgap"));
        // A sibling directory sharing the prefix string is not covered.
        let l = parse(&format!("oci:{}:1", d.path().join("catalogue").display()), &c).unwrap();
        assert!(matches!(l, ImageLocation::Layout(LayoutImage { registry: None, .. })));
    }

    #[test]
    fn hostile_or_malformed_references_are_rejected() {
        let c = config();
        for bad in ["", "x@sha256:zz", "x:ta g", "127.0.0.1:5000/../etc", "127.0.0.1:5000/A/B", "corp/tools/jq:-x", "oci:"] {
            assert!(parse(bad, &c).is_err(), "{bad:?} should be rejected");
        }
        let mut none = Config::default();
        none.registries.clear();
        none.default_registry = None;
        assert!(matches!(parse("jq", &none), Err(ReferenceError::NoDefault { .. })));
    }
}
