//! Registry credentials: where a lookup finds them and where `login` puts them. Lookups go in
//! Docker's order: the helper Docker's `config.json` names for the host in `credHelpers`, then its
//! `credsStore` helper, then the `auths` of gantry's own `auth.json` (which must be private, mode
//! 0600) and of Docker's `config.json`; anonymous when none has any. `login` stores through the
//! helper Docker's config names, else in `auth.json`, written atomically and private from its
//! creation. Helpers run under a deadline and an output cap ([`helper`]). Every secret found says
//! where it came from, so a refusal can name what was tried. This module never talks to a
//! registry: `login` checks credentials before it stores them.

mod files;
mod helper;

use crate::exit::ExitKind;
use crate::store::Home;
use base64::Engine as _;
use files::{is_header_safe, normalize, read_docker, read_gantry, update_gantry, AuthFile};
use helper::Helper;
use std::fmt;
use std::path::{Path, PathBuf};

pub use helper::{MAX_OUTPUT as HELPER_MAX_OUTPUT, TIMEOUT as HELPER_TIMEOUT};

/// The server name Docker Hub's credentials are kept under.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Why credentials could not be read, stored or erased.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: credentials file is readable by others (mode {mode:o}); run `chmod 600 {}`", path.display(), path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{}: not valid credentials JSON: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("{}: the credentials for {host} {message}", path.display())]
    BadEntry {
        path: PathBuf,
        host: String,
        message: String,
    },
    #[error("{}: '{name}' is not a credential helper name (letters, digits, '.', '_' and '-')", path.display())]
    BadHelperName { path: PathBuf, name: String },
    #[error("credential helper {program} is not installed (not found on PATH)")]
    HelperMissing { program: String },
    #[error("credential helper `{program} {op}` could not be run: {source}")]
    HelperSpawn {
        program: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper `{program} {op}` failed ({status}){detail}")]
    HelperFailed {
        program: String,
        op: &'static str,
        status: String,
        detail: String,
    },
    #[error("credential helper `{program} {op}` did not finish within {secs} s and was killed")]
    HelperTimeout {
        program: String,
        op: &'static str,
        secs: u64,
    },
    #[error("credential helper `{program} {op}` printed more than {limit} bytes and was stopped")]
    HelperFlood {
        program: String,
        op: &'static str,
        limit: usize,
    },
    #[error(
        "credential helper `{program} {op}` printed something that is not a credential: {message}"
    )]
    HelperGarbage {
        program: String,
        op: &'static str,
        message: String,
    },
}

impl CredentialError {
    /// The exit code class: a configuration gantry cannot use is a usage error; the disk, the
    /// permissions of `auth.json` and a helper that misbehaves are local failures.
    pub fn kind(&self) -> ExitKind {
        match self {
            CredentialError::Malformed { .. }
            | CredentialError::BadEntry { .. }
            | CredentialError::BadHelperName { .. }
            | CredentialError::HelperMissing { .. } => ExitKind::Usage,
            _ => ExitKind::Io,
        }
    }
}

/// A secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A user name and password, sent with HTTP Basic or to the token endpoint.
    Basic { username: String, password: String },
    /// An identity token (Docker's `identitytoken`, or a helper's `<token>` user), sent as a
    /// bearer token.
    IdentityToken(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Secret::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where a secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// gantry's `auth.json`.
    GantryFile(PathBuf),
    /// The `auths` of Docker's `config.json`.
    DockerFile(PathBuf),
    /// A credential helper (the program's name).
    Helper(String),
    /// Given on the command line (`login` checking what it is about to store).
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::GantryFile(p) | Origin::DockerFile(p) => write!(f, "{}", p.display()),
            Origin::Helper(program) => write!(f, "credential helper {program}"),
            Origin::CommandLine => f.write_str("the command line"),
        }
    }
}

/// What a lookup found for a host: a secret and its origin, or nothing (anonymous).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// `None`: requests go anonymously.
    pub found: Option<(Secret, Origin)>,
    /// Helpers the configuration names that are not installed (skipped), for messages.
    pub skipped: Vec<String>,
}

impl Credentials {
    /// No credentials.
    pub fn anonymous() -> Credentials {
        Credentials::default()
    }

    /// A user name and password given on the command line.
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials {
            found: Some((
                Secret::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                },
                Origin::CommandLine,
            )),
            skipped: Vec::new(),
        }
    }

    /// The secret, if any.
    pub fn secret(&self) -> Option<&Secret> {
        self.found.as_ref().map(|(s, _)| s)
    }

    /// How requests were made, for messages: `as user alice from /home/a/.gantry/auth.json`,
    /// `anonymously`.
    pub fn describe(&self) -> String {
        match &self.found {
            Some((Secret::Basic { username, .. }, Origin::CommandLine)) => {
                format!("as user {username}")
            }
            Some((Secret::Basic { username, .. }, origin)) => {
                format!("as user {username} from {origin}")
            }
            Some((Secret::IdentityToken(_), origin)) => {
                format!("with an identity token from {origin}")
            }
            None if self.skipped.is_empty() => "anonymously".to_string(),
            None => format!("anonymously ({} not installed)", self.skipped.join(", ")),
        }
    }
}

/// The two files credentials are read from and written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// gantry's own `auth.json`.
    pub gantry: PathBuf,
    /// Docker's `config.json` (`DOCKER_CONFIG/config.json` or `~/.docker/config.json`), if a
    /// place for it is known; it may not exist.
    pub docker: Option<PathBuf>,
}

impl Sources {
    /// The files of `home` and of this user's Docker.
    pub fn locate(home: &Home) -> Sources {
        let docker = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".docker").join("config.json")),
        };
        Sources {
            gantry: home.auth(),
            docker,
        }
    }
}

/// Where `login` stores (and `logout` erases) a host's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A credential helper Docker's config names (`credHelpers` for the host, or `credsStore`).
    Helper(String),
    /// gantry's `auth.json`.
    GantryFile(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Helper(program) => write!(f, "credential helper {program}"),
            Target::GantryFile(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Finds the credentials for `host` (`host[:port]` as in a reference), in Docker's order.
pub fn lookup(host: &str, sources: &Sources) -> Result<Credentials, CredentialError> {
    let docker = read_docker(sources)?;
    let server = server_url(host);
    let mut skipped = Vec::new();
    if let Some((path, file)) = &docker {
        for h in helpers_for(host, path, file)? {
            match h.get(&server) {
                Ok(Some((user, secret))) => {
                    let secret = secret_from_helper(&h, user, secret)?;
                    return Ok(Credentials {
                        found: Some((secret, Origin::Helper(h.program()))),
                        skipped,
                    });
                }
                Ok(None) => {}
                // A store left named after its program was removed (Docker Desktop's `desktop`,
                // say) must not make every registry unusable: go on, and say so on a refusal.
                Err(CredentialError::HelperMissing { program }) => skipped.push(program),
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(file) = read_gantry(&sources.gantry)? {
        if let Some(secret) = file.secret_for(host, &sources.gantry)? {
            return Ok(Credentials {
                found: Some((secret, Origin::GantryFile(sources.gantry.clone()))),
                skipped,
            });
        }
    }
    if let Some((path, file)) = &docker {
        if let Some(secret) = file.secret_for(host, path)? {
            return Ok(Credentials {
                found: Some((secret, Origin::DockerFile(path.clone()))),
                skipped,
            });
        }
    }
    Ok(Credentials {
        found: None,
        skipped,
    })
}

/// Where `login` stores credentials for `host`: the helper Docker's config names for it, else
/// its `credsStore`, else gantry's `auth.json`. A helper named there that is not installed is an
/// error, so `login` can say so before it sends anything.
pub fn target(host: &str, sources: &Sources) -> Result<Target, CredentialError> {
    Ok(match store_helper(host, sources)? {
        Some(h) if !h.installed() => {
            return Err(CredentialError::HelperMissing {
                program: h.program(),
            })
        }
        Some(h) => Target::Helper(h.program()),
        None => Target::GantryFile(sources.gantry.clone()),
    })
}

/// Stores `username` and `password` for `host` where [`target`] says, and returns that place.
pub fn store(
    host: &str,
    sources: &Sources,
    username: &str,
    password: &str,
) -> Result<Target, CredentialError> {
    if let Some(h) = store_helper(host, sources)? {
        h.store(&server_url(host), username, password)?;
        return Ok(Target::Helper(h.program()));
    }
    let path = &sources.gantry;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    update_gantry(path, |auths| {
        auths.retain(|k, _| normalize(k) != normalize(host));
        auths.insert(server_url(host), serde_json::json!({ "auth": auth }));
        true
    })?;
    Ok(Target::GantryFile(path.clone()))
}

/// Erases the credentials of `host` from where [`target`] says, and also from gantry's
/// `auth.json` (so none of gantry's own is left behind a helper); returns the places that held
/// some. Docker's `config.json` itself is never changed.
pub fn erase(host: &str, sources: &Sources) -> Result<Vec<Target>, CredentialError> {
    let mut erased = Vec::new();
    if let Some(h) = store_helper(host, sources)? {
        if h.erase(&server_url(host))? {
            erased.push(Target::Helper(h.program()));
        }
    }
    let path = &sources.gantry;
    let removed = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        _ => update_gantry(path, |auths| {
            let before = auths.len();
            auths.retain(|k, _| normalize(k) != normalize(host));
            auths.len() != before
        })?,
    };
    if removed {
        erased.push(Target::GantryFile(path.clone()));
    }
    Ok(erased)
}

/// The server name helpers and `auths` know a host by: Docker Hub's legacy URL, or the host.
pub fn server_url(host: &str) -> String {
    if normalize(host) == "docker.io" {
        DOCKER_HUB_SERVER.to_string()
    } else {
        host.to_string()
    }
}

/// A helper's answer as a secret: user `<token>` means an identity token (Docker's convention).
fn secret_from_helper(h: &Helper, user: String, secret: String) -> Result<Secret, CredentialError> {
    if user == "<token>" {
        if !is_header_safe(&secret) {
            return Err(CredentialError::HelperGarbage {
                program: h.program(),
                op: "get",
                message: "the identity token holds characters a header cannot carry".into(),
            });
        }
        return Ok(Secret::IdentityToken(secret));
    }
    Ok(Secret::Basic {
        username: user,
        password: secret,
    })
}

/// The helpers to ask for `host`, in order: `credHelpers[host]`, then `credsStore`.
fn helpers_for(host: &str, path: &Path, file: &AuthFile) -> Result<Vec<Helper>, CredentialError> {
    let wanted = normalize(host);
    let named = file
        .cred_helpers
        .get(host)
        .or_else(|| {
            file.cred_helpers
                .iter()
                .find(|(k, _)| normalize(k) == wanted)
                .map(|(_, v)| v)
        })
        .filter(|n| !n.is_empty());
    let store = file.creds_store.as_ref().filter(|n| !n.is_empty());
    named
        .into_iter()
        .chain(store)
        .map(|name| {
            Helper::new(name).ok_or_else(|| CredentialError::BadHelperName {
                path: path.to_path_buf(),
                name: name.clone(),
            })
        })
        .collect()
}

/// The helper `login` stores through, if Docker's config names one for `host`.
fn store_helper(host: &str, sources: &Sources) -> Result<Option<Helper>, CredentialError> {
    let Some((path, file)) = read_docker(sources)? else {
        return Ok(None);
    };
    Ok(helpers_for(host, &path, &file)?.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn sources(dir: &Path) -> Sources {
        Sources {
            gantry: dir.join("home/auth.json"),
            docker: Some(dir.join("docker/config.json")),
        }
    }

    #[test]
    fn auth_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path());
        std::fs::create_dir_all(s.gantry.parent().unwrap()).unwrap();
        std::fs::write(&s.gantry, r#"{"auths":{"r.example":{"auth":"dTpw"}}}"#).unwrap();
        std::fs::set_permissions(&s.gantry, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = lookup("r.example", &s).unwrap_err();
        assert!(
            matches!(e, CredentialError::Exposed { .. })
                && e.kind() == ExitKind::Io
                && e.to_string().contains("chmod 600"),
            "a local error (exit 6): {e}"
        );
        std::fs::set_permissions(&s.gantry, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = lookup("r.example", &s).unwrap();
        assert_eq!(
            c.secret(),
            Some(&Secret::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert!(
            c.describe().starts_with("as user u from "),
            "{}",
            c.describe()
        );
        let other = lookup("other.example", &s).unwrap();
        assert_eq!(other.found, None);
        assert_eq!(other.describe(), "anonymously");
    }

    #[test]
    fn auths_keys_match_in_any_docker_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path());
        std::fs::create_dir_all(s.docker.as_ref().unwrap().parent().unwrap()).unwrap();
        std::fs::write(
            s.docker.as_ref().unwrap(),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},
                "https://Reg.Example:443/v2/":{"username":"a","password":"b"},
                "tok.example":{"identitytoken":"abc"},
                "store.example":{}}}"#,
        )
        .unwrap();
        let user = |h: &str| match lookup(h, &s).unwrap().found {
            Some((Secret::Basic { username, .. }, Origin::DockerFile(_))) => username,
            other => panic!("{h}: {other:?}"),
        };
        assert_eq!(user("docker.io"), "hub");
        assert_eq!(user("reg.example"), "a");
        assert!(matches!(
            lookup("tok.example", &s).unwrap().found,
            Some((Secret::IdentityToken(_), _))
        ));
        assert_eq!(lookup("store.example", &s).unwrap().found, None);
        assert_eq!(server_url("docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn gantry_file_comes_before_docker_auths_and_bad_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path());
        let docker = s.docker.clone().unwrap();
        std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
        std::fs::write(&docker, r#"{"auths":{"r.example":{"auth":"ZDpk"}}}"#).unwrap();
        store("r.example", &s, "g", "pw").unwrap();
        assert!(matches!(
            lookup("r.example", &s).unwrap().found,
            Some((Secret::Basic { username, .. }, Origin::GantryFile(_))) if username == "g"
        ));
        std::fs::write(&docker, r#"{"auths":{"x.example":{"auth":"!!"}}}"#).unwrap();
        let e = lookup("x.example", &s).unwrap_err();
        assert!(e.to_string().contains("x.example"), "{e}");
        assert_eq!(e.kind(), ExitKind::Usage);
        std::fs::write(&docker, "{not json").unwrap();
        assert!(matches!(
            lookup("x.example", &s).unwrap_err(),
            CredentialError::Malformed { .. }
        ));
    }

    #[test]
    fn store_is_private_atomic_and_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path());
        std::fs::create_dir_all(s.gantry.parent().unwrap()).unwrap();
        std::fs::write(
            &s.gantry,
            r#"{"auths":{"https://a.example/":{"auth":"eDp5"},"b.example":{"auth":"eDp5"}},"other":1}"#,
        )
        .unwrap();
        std::fs::set_permissions(&s.gantry, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            store("a.example", &s, "alice", "pw:with:colons").unwrap(),
            Target::GantryFile(s.gantry.clone())
        );
        let mode = std::fs::metadata(&s.gantry).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&s.gantry).unwrap()).unwrap();
        assert_eq!(doc["other"], 1);
        let keys: Vec<&String> = doc["auths"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["a.example", "b.example"],
            "the old spelling is replaced"
        );
        assert!(matches!(
            lookup("a.example", &s).unwrap().found,
            Some((Secret::Basic { username, password }, _)) if username == "alice" && password == "pw:with:colons"
        ));
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(s.gantry.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["auth.json"]);

        assert_eq!(
            erase("a.example", &s).unwrap(),
            [Target::GantryFile(s.gantry.clone())]
        );
        assert!(erase("a.example", &s).unwrap().is_empty());
        assert_eq!(lookup("a.example", &s).unwrap().found, None);
        assert!(lookup("b.example", &s).unwrap().found.is_some());
    }

    #[test]
    fn helpers_come_first_and_a_missing_one_is_skipped_but_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path());
        let docker = s.docker.clone().unwrap();
        std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
        std::fs::write(
            &docker,
            r#"{"credsStore":"gantry-test-no-such-helper","auths":{"r.example":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let c = lookup("r.example", &s).unwrap();
        assert!(matches!(c.found, Some((_, Origin::DockerFile(_)))));
        let c = lookup("q.example", &s).unwrap();
        assert_eq!(c.found, None);
        assert!(
            c.describe()
                .contains("docker-credential-gantry-test-no-such-helper not installed"),
            "{}",
            c.describe()
        );
        assert!(matches!(
            target("q.example", &s).unwrap_err(),
            CredentialError::HelperMissing { program } if program == "docker-credential-gantry-test-no-such-helper"
        ));
        let e = store("q.example", &s, "u", "p").unwrap_err();
        assert!(matches!(e, CredentialError::HelperMissing { .. }), "{e}");
        std::fs::write(&docker, r#"{"credHelpers":{"q.example":"../../bin/sh"}}"#).unwrap();
        let e = lookup("q.example", &s).unwrap_err();
        assert!(matches!(e, CredentialError::BadHelperName { .. }), "{e}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let s = Secret::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let t = Secret::IdentityToken("tok".into());
        assert!(!format!("{t:?}").contains("tok"));
    }
}
