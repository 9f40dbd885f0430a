//! `gantry registry add|list|remove`: edits the user layer of the configuration. `add` lowers its
//! flags into one checked `RegistryEntry` (canonical URL, a complete signature policy, keys and
//! trusted roots that parse) before anything is written, and notes where the entry overlaps a
//! system registry. Both edit `config.toml` in place (`config::edit`), so the user's comments and
//! layout stay. The system layer is shown but never changed.

use super::{home, load_config};
use crate::config::edit::ConfigEdit;
use crate::config::{Layered, Mode, ReferenceMatch, RegistryEntry};
use crate::exit::{Classify, ExitKind, Failure};
use crate::identity::{canonical_path, RegistryUrl};
use crate::report::Verbosity;
use crate::store::Store;
use std::path::PathBuf;

/// The subcommands of `gantry registry`.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Add (or replace) a registry.
    Add(AddArgs),
    /// List configured registries.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a registry.
    Remove { name: String },
}

/// Arguments of `gantry registry add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Name used to qualify references (NAME/repo:tag).
    pub name: String,
    /// host[:port][/path/prefix]
    pub url: String,
    /// Make it the registry short names expand against.
    #[arg(long)]
    pub default: bool,
    /// Speak plain HTTP to it (loopback hosts always are).
    #[arg(long)]
    pub insecure: bool,
    /// Pre-fill the signature policy: chainguard (complete), github, gitlab, google (issuer only).
    #[arg(long, value_enum)]
    pub template: Option<Template>,
    /// Expected OIDC issuer of keyless signers.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Expected signer identity (certificate SAN), exact.
    #[arg(long, conflicts_with = "identity_regex")]
    pub identity: Option<String>,
    /// Expected signer identity as a regex (always anchored ^…$).
    #[arg(long)]
    pub identity_regex: Option<String>,
    /// A PEM public key accepted as signer (repeatable).
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
    /// A Sigstore trusted_root.json for a private Sigstore.
    #[arg(long)]
    pub trusted_root: Option<PathBuf>,
    /// Denials are reported but do not stop installs.
    #[arg(long)]
    pub warn_only: bool,
    /// Also require each signature's signed docker-reference to name the image: same repository, or exact reference.
    #[arg(long, value_enum)]
    pub match_reference: Option<MatchReference>,
}

/// Identity templates for well-known signers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    Chainguard,
    Github,
    Gitlab,
    Google,
}

/// The words of `--match-reference`, lowered into [`ReferenceMatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatchReference {
    /// Same `host/repository` (tags and digests ignored).
    Repository,
    /// The reference exactly as installed, tag included.
    Exact,
}

impl From<MatchReference> for ReferenceMatch {
    fn from(m: MatchReference) -> Self {
        match m {
            MatchReference::Repository => ReferenceMatch::Repository,
            MatchReference::Exact => ReferenceMatch::Exact,
        }
    }
}

/// Runs a `gantry registry` subcommand; `--quiet` leaves out notes and confirmations.
pub fn run(c: RegistryCommand, verbosity: Verbosity) -> Result<(), Failure> {
    let home = home()?;
    let layered = load_config(&home)?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let io = |e| Failure::new(ExitKind::Io, e);
    match c {
        RegistryCommand::List { json } => {
            list(&layered, json);
            Ok(())
        }
        RegistryCommand::Add(a) => {
            let _lock = store.lock().kind(ExitKind::Io)?;
            let (name, url, default) = (a.name.clone(), a.url.clone(), a.default);
            let entry = add(&layered, a, verbosity)?;
            // Edited in place: the user's comments and layout stay.
            let mut edit = ConfigEdit::open(&layered.paths.user).map_err(io)?;
            edit.set_registry(&name, &entry).map_err(io)?;
            if default {
                edit.set_default_registry(Some(&name));
            }
            edit.save().map_err(io)?;
            if !verbosity.quiet() {
                crate::outln!("added registry {name} -> {url}");
            }
            Ok(())
        }
        RegistryCommand::Remove { name } => {
            let _lock = store.lock().kind(ExitKind::Io)?;
            if layered.system.registries.contains_key(&name) {
                return Err(Failure::msg(ExitKind::Usage, format!("registry '{name}' is set by the system configuration and cannot be removed")));
            }
            if !layered.user.registries.contains_key(&name) {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    format!("no registry named '{name}'"),
                ));
            }
            let mut edit = ConfigEdit::open(&layered.paths.user).map_err(io)?;
            edit.remove_registry(&name);
            if layered.user.default_registry.as_deref() == Some(name.as_str()) {
                edit.set_default_registry(None);
            }
            edit.save().map_err(io)?;
            if !verbosity.quiet() {
                crate::outln!("removed registry {name}");
            }
            Ok(())
        }
    }
}

fn list(layered: &Layered, json: bool) {
    let eff = layered.effective();
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&eff.registries).expect("registries serialise")
        );
        return;
    }
    for (name, e) in &eff.registries {
        let default = if eff.default_registry.as_deref() == Some(name) {
            " (default)"
        } else {
            ""
        };
        let system = if layered.system.registries.contains_key(name) {
            " [system]"
        } else {
            ""
        };
        let policy = match (&e.identity, &e.identity_regex, e.keys.len()) {
            (Some(i), _, _) => format!("identity {i}"),
            (_, Some(r), _) => format!("identity ~ {r}"),
            (_, _, n) if n > 0 => format!("{n} key(s)"),
            _ => "no signature policy".into(),
        };
        crate::outln!("{name:<16} {:<40} {policy}{default}{system}", e.url);
    }
}

/// The checked entry `a` describes, to be written into the user layer by the caller.
fn add(layered: &Layered, a: AddArgs, verbosity: Verbosity) -> Result<RegistryEntry, Failure> {
    let valid_name = !a.name.is_empty()
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if !valid_name {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!(
                "invalid registry name '{}': use letters, digits, '-' and '_'",
                a.name
            ),
        ));
    }
    if layered.system.registries.contains_key(&a.name) {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("registry '{}' is set by the system configuration", a.name),
        ));
    }
    let entry = entry(&a)?;
    for (sys_name, sys) in &layered.system.registries {
        if verbosity.quiet() {
            break;
        }
        if let Some(what) = overlap(&entry.url, &sys.url) {
            crate::errln!(
                "note: registry '{}' ({}) {what} system registry '{sys_name}' ({}): where both cover a reference, the system entry governs and '{}' can only add requirements",
                a.name, entry.url, sys.url, a.name
            );
        }
    }
    Ok(entry)
}

/// Lowers the flags of `registry add` into the entry they describe, checked as at load: a
/// half-filled signature policy is never written.
fn entry(a: &AddArgs) -> Result<RegistryEntry, Failure> {
    if a.url.contains(char::is_whitespace) {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("invalid registry URL '{}'", a.url),
        ));
    }
    let url = canonical_url(&a.url)?;
    let mut entry = RegistryEntry {
        url,
        insecure: a.insecure,
        ..Default::default()
    };
    match a.template {
        Some(Template::Chainguard) => {
            entry.issuer = Some("https://token.actions.githubusercontent.com".into());
            entry.identity_regex = Some("https://github.com/chainguard-images/images/.*".into());
        }
        Some(t) => {
            entry.issuer = Some(
                match t {
                    Template::Github => "https://token.actions.githubusercontent.com",
                    Template::Gitlab => "https://gitlab.com",
                    _ => "https://accounts.google.com",
                }
                .into(),
            );
            if a.identity.is_none() && a.identity_regex.is_none() {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    "this template sets only the issuer: give --identity or --identity-regex",
                ));
            }
        }
        None => {}
    }
    if let Some(i) = &a.issuer {
        entry.issuer = Some(i.clone());
    }
    if let Some(i) = &a.identity {
        entry.identity = Some(i.clone());
        entry.identity_regex = None;
    }
    if let Some(r) = &a.identity_regex {
        regex::Regex::new(&crate::config::anchor(r))
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("--identity-regex: {e}")))?;
        entry.identity_regex = Some(r.clone());
        entry.identity = None;
    }
    if (entry.identity.is_some() || entry.identity_regex.is_some()) && entry.issuer.is_none() {
        return Err(Failure::msg(
            ExitKind::Usage,
            "an identity needs --issuer (or a --template that sets it)",
        ));
    }
    if entry.issuer.is_some() && entry.identity.is_none() && entry.identity_regex.is_none() {
        return Err(Failure::msg(
            ExitKind::Usage,
            "--issuer names no signer by itself: add --identity or --identity-regex",
        ));
    }
    for k in &a.keys {
        let abs = std::fs::canonicalize(k)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", k.display())))?;
        let pem = std::fs::read(&abs)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", k.display())))?;
        crate::trust::PublicKey::from_pem(&pem)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", k.display())))?;
        entry.keys.push(abs);
    }
    if let Some(t) = &a.trusted_root {
        let abs = std::fs::canonicalize(t)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", t.display())))?;
        crate::trust::TrustRoot::from_file(&abs).map_err(|e| Failure::new(ExitKind::Usage, e))?;
        entry.trusted_root = Some(abs);
    }
    if a.warn_only {
        entry.mode = Mode::Warn;
    }
    entry.match_reference = a.match_reference.map(ReferenceMatch::from);
    entry
        .check(&a.name, false)
        .map_err(|m| Failure::msg(ExitKind::Usage, m))?;
    Ok(entry)
}

/// An entry URL in canonical spelling (host as in [`crate::identity`], prefix without empty
/// components), or the reason it is not one.
fn canonical_url(url: &str) -> Result<String, Failure> {
    match RegistryUrl::parse(url.trim_end_matches('/'))
        .map_err(|e| Failure::msg(ExitKind::Usage, e))?
    {
        RegistryUrl::Registry { host, prefix } => Ok(std::iter::once(host.to_string())
            .chain(prefix)
            .collect::<Vec<_>>()
            .join("/")),
        RegistryUrl::Layout(dir) => Ok(format!("oci:{}", canonical_path(&dir).display())),
    }
}

/// How a user entry's URL overlaps a system entry's, if it does.
fn overlap(user: &str, system: &str) -> Option<&'static str> {
    let (a, b): (Vec<String>, Vec<String>) = match (
        RegistryUrl::parse(user).ok()?,
        RegistryUrl::parse(system).ok()?,
    ) {
        (
            RegistryUrl::Registry {
                host: h1,
                prefix: p1,
            },
            RegistryUrl::Registry {
                host: h2,
                prefix: p2,
            },
        ) => {
            let plain = h1.is_loopback() || h2.is_loopback();
            if h1.identity(plain) != h2.identity(plain) {
                return None;
            }
            (p1, p2)
        }
        (RegistryUrl::Layout(d1), RegistryUrl::Layout(d2)) => {
            let parts = |d: &std::path::Path| {
                canonical_path(d)
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect()
            };
            (parts(&d1), parts(&d2))
        }
        _ => return None,
    };
    if a == b {
        Some("is the same registry as")
    } else if a.starts_with(&b) {
        Some("is inside")
    } else if b.starts_with(&a) {
        Some("covers")
    } else {
        None
    }
}
