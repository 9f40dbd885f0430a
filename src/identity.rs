//! Registry identity: the canonical form in which hosts and layout paths are compared when the
//! configuration decides which registry entry governs a reference. Two spellings of one registry
//! must never select two different policies, so every comparison goes through this module:
//! - a host is lower case, without a trailing dot, its port without leading zeros and dropped when
//!   it is the transport's default (`:443`, and `:80` for plain HTTP), IPv6 in brackets and
//!   compressed, IPv4 in dotted decimal (so `0x7f.1` and `2130706433` are `127.0.0.1`, as the
//!   HTTP client would read them);
//! - the loopback names (`localhost`, `127.0.0.0/8`, `[::1]`, `[::ffff:127.x.y.z]`) are one host
//!   per port;
//! - an `oci:` path is absolute with `.`, `..` and symlinks resolved.
//!
//! Other DNS names for the same machine are other registries: nothing here resolves names.

use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

/// A `host[:port]` that failed to parse, with the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid registry address '{input}': {reason}")]
pub struct HostError {
    pub input: String,
    pub reason: String,
}

/// A parsed registry host and port, in canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: Host,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Host {
    Domain(String),
    Ip(IpAddr),
}

impl HostPort {
    /// Parses `host[:port]` as written in a reference or a registry URL.
    pub fn parse(input: &str) -> Result<HostPort, HostError> {
        let err = |reason: &str| HostError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty host"));
        }
        if input.contains("://") {
            return Err(err(
                "drop the URL scheme (write host[:port], not http://host)",
            ));
        }
        let (host_part, port_part) = if let Some(rest) = input.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| err("an IPv6 address needs its closing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| err("unexpected text after the IPv6 address"))?,
                ),
            };
            let ip: std::net::Ipv6Addr = inside
                .parse()
                .map_err(|_| err("not an IPv6 address inside [...]"))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            if input.matches(':').count() > 1 {
                return Err(err(
                    "an IPv6 address must be written in brackets, as [::1]:5000",
                ));
            }
            let (h, p) = match input.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (input, None),
            };
            (parse_name(h).map_err(|r| err(&r))?, p)
        };
        let port = match port_part {
            None => None,
            Some("") => return Err(err("empty port after ':'")),
            Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(err(&format!("port '{p}' is not a number")))
            }
            Some(p) => {
                let digits = p.trim_start_matches('0');
                let n: u32 = if digits.is_empty() {
                    0
                } else if digits.len() > 5 {
                    u32::MAX
                } else {
                    digits.parse().unwrap_or(u32::MAX)
                };
                if n == 0 || n > 65535 {
                    return Err(err(&format!("port {p} is out of range (1-65535)")));
                }
                u16::try_from(n).ok()
            }
        };
        Ok(HostPort {
            host: host_part,
            port,
        })
    }

    /// True for the loopback names: `localhost`, `127.0.0.0/8`, `::1` (and `::ffff:127.x.y.z`).
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Domain(d) => d == "localhost",
            Host::Ip(IpAddr::V4(v4)) => v4.is_loopback(),
            Host::Ip(IpAddr::V6(v6)) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }

    /// The port as written (leading zeros dropped), if one was.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The identity compared when matching registry entries: the loopback names are one host,
    /// and the default port of the transport (443, or 80 for plain HTTP) is dropped.
    pub fn identity(&self, plain_http: bool) -> String {
        let host = if self.is_loopback() {
            "localhost".to_string()
        } else {
            self.host_text()
        };
        let default = if plain_http { 80 } else { 443 };
        match self.port {
            Some(p) if p != default => format!("{host}:{p}"),
            _ => host,
        }
    }

    fn host_text(&self) -> String {
        match &self.host {
            Host::Domain(d) => d.clone(),
            Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        }
    }
}

/// The canonical spelling, loopback address kept as written (the address to connect to): lower
/// case, no trailing dot, `:443` dropped, port without leading zeros.
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host_text())?;
        match self.port {
            Some(443) | None => Ok(()),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

/// A registry entry's `url`: `host[:port][/path/prefix]` (an `https://` or `http://` in front is
/// dropped), or `oci:DIR` for layouts under a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryUrl {
    Registry { host: HostPort, prefix: Vec<String> },
    Layout(PathBuf),
}

impl RegistryUrl {
    /// Parses an entry's `url`.
    pub fn parse(url: &str) -> Result<RegistryUrl, HostError> {
        let err = |reason: String| HostError {
            input: url.to_string(),
            reason,
        };
        if let Some(dir) = url.strip_prefix("oci:") {
            if dir.is_empty() {
                return Err(err("oci: needs a directory".into()));
            }
            return Ok(RegistryUrl::Layout(PathBuf::from(dir)));
        }
        let bare = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url);
        let (h, p) = bare.split_once('/').unwrap_or((bare, ""));
        let host = HostPort::parse(h).map_err(|e| err(e.reason))?;
        let prefix: Vec<String> = p
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = prefix.iter().find(|c| !crate::reference::is_valid_repo(c)) {
            return Err(err(format!("path component '{bad}' is not a valid repository name (lower case letters, digits, '.', '_', '-')")));
        }
        Ok(RegistryUrl::Registry { host, prefix })
    }
}

/// A DNS name or IPv4 address (any of the forms an HTTP client accepts), canonicalised.
fn parse_name(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("empty host name".into());
    }
    if !h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(format!("'{h}' holds characters a host name cannot have"));
    }
    let lower = h.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.split('.').any(|l| l.is_empty() || l.len() > 63) || name.len() > 253
    {
        return Err(format!("'{h}' is not a valid host name"));
    }
    if name
        .split('.')
        .any(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return Err(format!(
            "'{h}' is not a valid host name (a label starts or ends with '-')"
        ));
    }
    // A name whose last label is numeric is an IPv4 address to an HTTP client (WHATWG host
    // parsing: `127.1`, `0x7f.0.0.1`, `2130706433`); read it the same way here.
    match url::Host::parse(name) {
        Ok(url::Host::Ipv4(v4)) => Ok(Host::Ip(IpAddr::V4(v4))),
        Ok(url::Host::Ipv6(v6)) => Ok(Host::Ip(IpAddr::V6(v6))),
        Ok(url::Host::Domain(_)) => Ok(Host::Domain(name.to_string())),
        Err(_) => Err(format!("'{h}' is not a valid host name or IPv4 address")),
    }
}

/// A path made absolute, with `.`, `..` and symlinks resolved. The longest existing ancestor is
/// resolved through the file system; the rest (which does not exist yet) is normalised
/// lexically.
pub fn canonical_path(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(p)
    };
    let parts: Vec<Component> = abs.components().collect();
    for n in (1..=parts.len()).rev() {
        let (head, tail) = parts.split_at(n);
        if let Ok(mut out) = std::fs::canonicalize(head.iter().collect::<PathBuf>()) {
            out.extend(tail);
            return if tail.is_empty() { out } else { lexical(&out) };
        }
    }
    lexical(&abs)
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> String {
        HostPort::parse(s).unwrap().identity(false)
    }

    #[test]
    fn spellings_of_one_host_share_an_identity() {
        for s in [
            "Corp.Example",
            "corp.example.",
            "CORP.EXAMPLE.:443",
            "corp.example:0443",
        ] {
            assert_eq!(id(s), "corp.example", "{s}");
        }
        assert_eq!(id("corp.example:05000"), "corp.example:5000");
        assert_eq!(
            HostPort::parse("corp.example:80").unwrap().identity(true),
            "corp.example"
        );
        assert_eq!(id("corp.example:80"), "corp.example:80");
        for s in [
            "[::1]:5000",
            "127.0.0.1:5000",
            "localhost:5000",
            "LOCALHOST.:5000",
            "127.8.9.10:05000",
            "127.1:5000",
            "2130706433:5000",
            "0x7f.0.0.1:5000",
            "[::ffff:127.0.0.1]:5000",
            "[0:0::1]:5000",
        ] {
            assert_eq!(id(s), "localhost:5000", "{s}");
        }
        assert_eq!(id("[2001:DB8:0:0::1]"), "[2001:db8::1]");
        assert_eq!(
            HostPort::parse("Corp.Example:0443").unwrap().to_string(),
            "corp.example"
        );
        assert_eq!(
            HostPort::parse("127.000.000.001:5000").unwrap().to_string(),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn different_hosts_and_ports_stay_different() {
        assert_ne!(id("corp.example"), id("corp.example:5000"));
        assert_ne!(id("corp.example"), id("corp.example.evil"));
        assert_ne!(id("localhost:5000"), id("localhost:5001"));
        assert_ne!(id("10.0.0.1"), id("localhost"));
    }

    #[test]
    fn malformed_hosts_name_the_bad_part() {
        for (s, part) in [
            ("h:", "empty port"),
            ("h:99999", "out of range"),
            ("h:0", "out of range"),
            ("h:12a", "not a number"),
            ("::1", "brackets"),
            ("[::1", "closing"),
            ("[zz::1]:5", "IPv6"),
            ("http://h", "scheme"),
            ("h@x", "characters"),
            ("", "empty"),
            ("-h.example", "label"),
            ("a..b", "not a valid host"),
        ] {
            let e = HostPort::parse(s).unwrap_err().to_string();
            assert!(e.contains(part), "{s}: {e}");
        }
    }

    #[test]
    fn paths_are_resolved_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let canon = std::fs::canonicalize(&real).unwrap();
        assert_eq!(canonical_path(&d.path().join("link/sub/..")), canon);
        assert_eq!(
            canonical_path(&d.path().join("link/./sub")),
            canon.join("sub")
        );
        // Not existing yet: the existing part is resolved, the rest normalised.
        assert_eq!(
            canonical_path(&d.path().join("link/new/../other")),
            canon.join("other")
        );
    }
}
