//! The Docker-format credential files: gantry's own `auth.json` and Docker's `config.json`.
//! Reads them (gantry's only when no one else can read it), matches their keys to hosts in any
//! spelling Docker writes (`https://host/v1/`, `host:port`), and rewrites `auth.json` atomically,
//! private from its creation. Which file is asked when, and the helpers, are the parent's.

use super::{CredentialError, Secret, Sources};
use crate::identity::HostPort;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A key of `auths` or `credHelpers` (`https://host/v1/`, `host:port`, …) as the host it is
/// for, in canonical spelling; Docker Hub's names are all `docker.io`.
pub(super) fn normalize(key: &str) -> String {
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = bare.split('/').next().unwrap_or(bare).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => HostPort::parse(&host)
            .map(|h| h.to_string())
            .unwrap_or(host),
    }
}

/// A credentials file: the parts of Docker's format gantry reads.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    pub(super) cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    pub(super) creds_store: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthFile {
    /// The entry for `host`: one whose key is the host exactly, else the first that names it.
    fn entry(&self, host: &str) -> Option<&AuthEntry> {
        let wanted = normalize(host);
        self.auths.get(host).or_else(|| {
            self.auths
                .iter()
                .find(|(k, _)| normalize(k) == wanted)
                .map(|(_, e)| e)
        })
    }

    /// The secret of the entry for `host` in this file at `path`, if there is one.
    pub(super) fn secret_for(
        &self,
        host: &str,
        path: &Path,
    ) -> Result<Option<Secret>, CredentialError> {
        let Some(entry) = self.entry(host) else {
            return Ok(None);
        };
        let bad = |message: &str| CredentialError::BadEntry {
            path: path.to_path_buf(),
            host: host.to_string(),
            message: message.to_string(),
        };
        if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            if !is_header_safe(t) {
                return Err(bad(
                    "hold an identity token with characters a header cannot carry",
                ));
            }
            return Ok(Some(Secret::IdentityToken(t.to_string())));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Secret::Basic {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        let Some(a) = entry.auth.as_deref().filter(|a| !a.trim().is_empty()) else {
            return Ok(None); // `{}`: Docker's mark that a credential store holds them
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            });
        match decoded {
            Some((username, password)) => Ok(Some(Secret::Basic { username, password })),
            None => Err(bad("are not base64 of user:password")),
        }
    }
}

/// Visible ASCII only: what can go into an `Authorization` header as it is.
pub(super) fn is_header_safe(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// Docker's config, if it exists. It is Docker's file: read, never judged by its mode.
pub(super) fn read_docker(
    sources: &Sources,
) -> Result<Option<(PathBuf, AuthFile)>, CredentialError> {
    let Some(path) = &sources.docker else {
        return Ok(None);
    };
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    Ok(Some((path.clone(), parse(path, &text)?)))
}

/// gantry's `auth.json`, if it exists; refused when others can read it.
pub(super) fn read_gantry(path: &Path) -> Result<Option<AuthFile>, CredentialError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    check_private(path)?;
    parse(path, &text).map(Some)
}

fn check_private(path: &Path) -> Result<(), CredentialError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        // A local permission problem, not the registry's.
        return Err(CredentialError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<String>, CredentialError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

fn parse(path: &Path, text: &str) -> Result<AuthFile, CredentialError> {
    serde_json::from_str(text).map_err(|e| CredentialError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn io(path: &Path, source: std::io::Error) -> CredentialError {
    CredentialError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rewrites gantry's `auth.json` with `change` applied to its `auths` (keeping every other
/// field), atomically: a private temp file in the same directory, synced, renamed over the old
/// one. Nothing is written when `change` reports no change. The file is never readable by
/// others, not even for a moment: the temp file is created with mode 0600.
pub(super) fn update_gantry(
    path: &Path,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<bool, CredentialError> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let malformed = |message: String| CredentialError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let mut doc = match read_optional(path)? {
        Some(text) => serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| malformed(e.to_string()))?,
        None => serde_json::json!({}),
    };
    let root = doc
        .as_object_mut()
        .ok_or_else(|| malformed("not a JSON object".into()))?;
    let auths = root
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or_else(|| malformed("`auths` is not an object".into()))?;
    if !change(auths) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth.json.")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))?;
    let mut text = serde_json::to_vec_pretty(&doc).expect("JSON values serialise");
    text.push(b'\n');
    tmp.write_all(&text)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| io(path, e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(true)
}
