//! Configuration: `$GANTRY_HOME/config.toml` (the user layer) and the system layer
//! (`GANTRY_SYSTEM_CONFIG`, default `/etc/gantry/config.toml`). Owns parsing, the first-run seed,
//! and the rule that the system layer can only be added to, never relaxed, by the user layer.
//! A file that fails to parse is an error naming the file and line; it is never replaced.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod edit;

/// Errors reading or writing configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Whether a registry's denials stop the install or are only reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Warn,
}

/// What an update does when the new digest's verified signers differ from the installed one's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignerContinuity {
    /// Say so, then go on.
    #[default]
    Warn,
    /// Refuse, unless `--accept-signer-change`.
    Enforce,
}

/// How a signature's `docker-reference` must relate to the image being installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceMatch {
    /// Same `host/repository` (tags and digests ignored).
    Repository,
    /// The reference exactly as installed, tag included.
    Exact,
}

/// A Rego policy file and its `data.config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "is_empty_table")]
    pub config: toml::Table,
}

/// A Wasm component plugin, its config and the WASI capabilities granted to it by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty_table")]
    pub config: toml::Table,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
}

fn is_empty_table(t: &toml::Table) -> bool {
    t.is_empty()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One configured registry: where it is and what it requires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// `host[:port][/path/prefix]`.
    pub url: String,
    /// Speak plain HTTP to a non-loopback host.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "is_default_mode")]
    pub mode: Mode,
    /// Expected OIDC issuer of keyless signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Expected signer identity (certificate SAN), exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Expected signer identity as a regex; always anchored `^…$` by gantry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regex: Option<String>,
    /// PEM public keys accepted as signers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PathBuf>,
    /// A Sigstore `trusted_root.json` for a private or air-gapped Sigstore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<PathBuf>,
    /// Also require the signed `docker-reference` to name this image: its repository
    /// (`repository`) or the exact reference with tag (`exact`). Default: digest binding only,
    /// as cosign does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_reference: Option<ReferenceMatch>,
    /// Signers whose attestations count besides the image's signers (a scanner or a builder
    /// that does not sign the image), matched by the same rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestors: Vec<Attestor>,
    /// Install unsigned images from this registry without `--allow-unsigned`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub always_allow_unsigned: bool,
    /// A signer quorum: at least `threshold` distinct signers from this list must have signed
    /// the digest (instead of `keys` or `issuer` + `identity`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<QuorumSigner>,
    /// How many distinct `signers` must have signed (1 to their number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<usize>,
    /// How many distinct `signers` must have signed verified attestations of the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_threshold: Option<usize>,
    /// Other registries serving the same repositories (`host[/prefix]`, mapped like `url`):
    /// a tag must name the same digest on `agree` of the sources before anything is pulled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
    /// How many sources (the registry and its mirrors) must agree on a tag's digest (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agree: Option<usize>,
    /// When an update's signers differ from the installed version's: `warn` (default) or
    /// `enforce`.
    #[serde(default, skip_serializing_if = "is_default_continuity")]
    pub signer_continuity: SignerContinuity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginRef>,
}

/// A signer whose attestations count: keys, or an issuer with an identity (exact or regex).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PathBuf>,
}

/// Checks one signer description (an entry's or an attestor's) is complete: keys, or an issuer
/// with an identity. `keys_given` says whether a `keys` key was written at all (an empty list is
/// a half-filled policy, not no policy).
fn check_signer(
    what: &str,
    issuer: &Option<String>,
    identity: &Option<String>,
    identity_regex: &Option<String>,
    keys: &[PathBuf],
    keys_given: bool,
) -> Result<(), String> {
    if keys_given && keys.is_empty() {
        return Err(format!(
            "{what}: `keys` is empty; list at least one public key, or remove it"
        ));
    }
    if identity.is_some() && identity_regex.is_some() {
        return Err(format!(
            "{what}: give `identity` or `identity_regex`, not both"
        ));
    }
    let has_identity = identity.is_some() || identity_regex.is_some();
    match (issuer.is_some(), has_identity) {
        (true, false) => {
            return Err(format!(
                "{what}: `issuer` without `identity` or `identity_regex` names no signer; add one"
            ))
        }
        (false, true) => {
            let f = if identity.is_some() {
                "identity"
            } else {
                "identity_regex"
            };
            return Err(format!(
                "{what}: `{f}` needs the `issuer` of its OIDC provider"
            ));
        }
        _ => {}
    }
    if let Some(re) = identity_regex {
        regex::Regex::new(&anchor(re)).map_err(|e| format!("{what}: identity_regex: {e}"))?;
    }
    if let Some(i) = issuer.as_deref().filter(|i| i.trim().is_empty()) {
        return Err(format!("{what}: `issuer` is empty ('{i}')"));
    }
    Ok(())
}

fn is_default_mode(m: &Mode) -> bool {
    *m == Mode::Enforce
}

impl RegistryEntry {
    /// An entry with only a URL.
    pub fn new(url: &str) -> Self {
        RegistryEntry {
            url: url.to_string(),
            ..Default::default()
        }
    }

    /// True when any signer-related field is set: such an entry is a signature-policy entry,
    /// and [`RegistryEntry::check`] makes sure it is a complete one.
    pub fn has_signature_policy(&self) -> bool {
        self.identity.is_some()
            || self.identity_regex.is_some()
            || !self.keys.is_empty()
            || self.issuer.is_some()
            || self.trusted_root.is_some()
            || self.match_reference.is_some()
            || !self.attestors.is_empty()
            || !self.signers.is_empty()
            || self.threshold.is_some()
            || self.attestation_threshold.is_some()
    }

    /// A quorum entry is whole: `signers`, each one key or one keyless identity, with a
    /// threshold between 1 and their number, and no `keys`/`issuer`/`identity` beside it.
    fn check_quorum(&self, what: &str) -> Result<(), String> {
        if self.signers.is_empty() {
            let set: Vec<&str> = [
                self.threshold.map(|_| "threshold"),
                self.attestation_threshold.map(|_| "attestation_threshold"),
            ]
            .into_iter()
            .flatten()
            .collect();
            return match set.is_empty() {
                true => Ok(()),
                false => Err(format!(
                    "{what}: {} set without `signers`: list the signers it counts",
                    set.join(" and ")
                )),
            };
        }
        if !self.keys.is_empty()
            || self.issuer.is_some()
            || self.identity.is_some()
            || self.identity_regex.is_some()
        {
            return Err(format!("{what}: `signers` names who must sign; `keys`, `issuer`, `identity` and `identity_regex` cannot be set beside it (add them to `signers`)"));
        }
        let n = self.signers.len();
        match self.threshold {
            None => {
                return Err(format!(
                    "{what}: `signers` needs `threshold` (how many of the {n} must sign)"
                ))
            }
            Some(t) if t == 0 || t > n => {
                return Err(format!(
                    "{what}: threshold = {t}, but there are {n} signers: use 1 to {n}"
                ))
            }
            Some(_) => {}
        }
        if let Some(t) = self.attestation_threshold.filter(|t| *t == 0 || *t > n) {
            return Err(format!(
                "{what}: attestation_threshold = {t}, but there are {n} signers: use 1 to {n}"
            ));
        }
        for (i, q) in self.signers.iter().enumerate() {
            let sw = format!("{what}: signers[{i}]");
            match (&q.key, q.issuer.is_some() || q.identity.is_some() || q.identity_regex.is_some()) {
                (Some(_), true) => {
                    return Err(format!("{sw}: a signer is one key or one keyless identity, not both"))
                }
                (None, false) => {
                    return Err(format!("{sw}: names no signer: give `key`, or `issuer` with `identity` or `identity_regex`"))
                }
                (Some(_), false) => {}
                (None, true) => {
                    check_signer(&sw, &q.issuer, &q.identity, &q.identity_regex, &[], false)?
                }
            }
        }
        Ok(())
    }

    /// Checks the entry is whole: a valid URL, and either no signer field at all or a complete
    /// signer policy (keys, or an issuer with an identity). `keys_given`: a `keys` key was
    /// written in the file (so an empty list is caught).
    pub fn check(&self, name: &str, keys_given: bool) -> Result<(), String> {
        let what = format!("registry '{name}'");
        crate::identity::RegistryUrl::parse(&self.url).map_err(|e| format!("{what}: {e}"))?;
        self.check_quorum(&what)?;
        for m in &self.mirrors {
            match crate::identity::RegistryUrl::parse(m.trim_end_matches('/')) {
                Ok(crate::identity::RegistryUrl::Registry { .. }) => {}
                Ok(_) => {
                    return Err(format!(
                    "{what}: mirror {m:?}: a mirror is a registry (host[/prefix]), not a layout"
                ))
                }
                Err(e) => return Err(format!("{what}: mirror {m:?}: {e}")),
            }
        }
        let sources = self.mirrors.len().saturating_add(1);
        if let Some(k) = self.agree.filter(|k| *k == 0 || *k > sources) {
            return Err(format!(
                "{what}: agree = {k}, but there are {sources} sources (the registry and {} mirror(s)): use 1 to {sources}",
                self.mirrors.len()
            ));
        }
        let signer_fields = (keys_given || self.has_signature_policy()) && self.signers.is_empty();
        if !self.signers.is_empty() && self.always_allow_unsigned {
            return Err(format!(
                "{what}: `always_allow_unsigned` contradicts its signature policy; remove one"
            ));
        }
        if signer_fields {
            let names_signer =
                !self.keys.is_empty() || self.identity.is_some() || self.identity_regex.is_some();
            if !names_signer && !keys_given && self.issuer.is_none() {
                let set: Vec<&str> = [
                    self.trusted_root.as_ref().map(|_| "trusted_root"),
                    self.match_reference.as_ref().map(|_| "match_reference"),
                    (!self.attestors.is_empty()).then_some("attestors"),
                ]
                .into_iter()
                .flatten()
                .collect();
                return Err(format!(
                    "{what}: {} set, but no signer is named: add `keys`, or `issuer` with `identity` or `identity_regex` (a half-filled signature policy is refused, never read as no policy)",
                    set.join(", ")
                ));
            }
            check_signer(
                &what,
                &self.issuer,
                &self.identity,
                &self.identity_regex,
                &self.keys,
                keys_given,
            )?;
            if self.always_allow_unsigned {
                return Err(format!(
                    "{what}: `always_allow_unsigned` contradicts its signature policy; remove one"
                ));
            }
        }
        for (i, a) in self.attestors.iter().enumerate() {
            let aw = format!("{what}: attestors[{i}]");
            if a.keys.is_empty()
                && a.issuer.is_none()
                && a.identity.is_none()
                && a.identity_regex.is_none()
            {
                return Err(format!("{aw}: names no signer: give `keys`, or `issuer` with `identity` or `identity_regex`"));
            }
            check_signer(
                &aw,
                &a.issuer,
                &a.identity,
                &a.identity_regex,
                &a.keys,
                false,
            )?;
        }
        Ok(())
    }
}

/// One entry of a signer quorum: a key, or a keyless identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumSigner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regex: Option<String>,
}

/// Caps on what one image may unpack to; absent fields take the built-in defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
}

/// A signed policy bundle the system layer names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleRef {
    /// `HOST/REPOSITORY:TAG` of the bundle artifact.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The public key its signature must verify with (or a keyless signer below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// A keyless signer instead of a key: the OIDC issuer, with `identity` or `identity_regex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regex: Option<String>,
    /// The Sigstore trusted root for a keyless signer (default: the public-good one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<PathBuf>,
}

/// Where decision records go besides `decisions.jsonl` (system layer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogConfig {
    /// `tcp://HOST:PORT`: every record as an RFC 5424 message (octet-counted frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<String>,
}

/// How gantry reaches registries; absent fields take the built-in defaults (`crate::net`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Seconds to establish a connection (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u64>,
    /// Seconds a response or body may go without progress (under 1 KiB) before it fails
    /// (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_timeout: Option<u64>,
    /// Attempts per request, the first included (default 5; 1 turns retries off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl Config {
    /// Versions kept per package, the current one included.
    pub fn keep(&self) -> usize {
        self.keep_versions.unwrap_or(2)
    }
}

impl NetworkConfig {
    /// The settings in force: these values over the built-in defaults.
    pub fn net(&self) -> crate::net::NetConfig {
        let d = crate::net::NetConfig::default();
        let secs = std::time::Duration::from_secs;
        crate::net::NetConfig {
            connect_timeout: self.connect_timeout.map_or(d.connect_timeout, secs),
            stall_timeout: self.stall_timeout.map_or(d.stall_timeout, secs),
            attempts: self.attempts.unwrap_or(d.attempts),
            ..d
        }
    }

    fn check(&self) -> Result<(), String> {
        let bad = |k: &str, v: u64, lo: u64, hi: u64| {
            (v < lo || v > hi).then(|| format!("network.{k} = {v}: use {lo} to {hi}"))
        };
        let problems = [
            self.connect_timeout
                .and_then(|v| bad("connect_timeout", v, 1, 600)),
            self.stall_timeout
                .and_then(|v| bad("stall_timeout", v, 1, 3600)),
            self.attempts
                .and_then(|v| bad("attempts", u64::from(v), 1, 20)),
        ];
        match problems.into_iter().flatten().next() {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }
}

/// One configuration file (either layer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The registry short names expand against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_registry: Option<String>,
    /// System layer only: refuse `--allow-unsigned` and `always_allow_unsigned`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub forbid_allow_unsigned: bool,
    /// System layer only: refuse `mode = "warn"` in any registry.
    #[serde(default, skip_serializing_if = "is_false")]
    pub forbid_warn_mode: bool,
    /// System layer only (the default system file): let `GANTRY_SYSTEM_CONFIG` name another
    /// system file.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_system_config_override: bool,
    /// System layer only: where system-layer plugins' compiled code is cached (a directory only
    /// the administrator can write). Unset: they are compiled in memory on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_cache_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "is_default_limits")]
    pub limits: LimitsConfig,
    /// Timeouts and retries.
    #[serde(default, skip_serializing_if = "is_default_network")]
    pub network: NetworkConfig,
    /// System layer only: signed policy bundles whose policies and plugins run for every install.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<BundleRef>,
    /// System layer only: where decision records are sent besides the local log.
    #[serde(default, skip_serializing_if = "is_default_decision_log")]
    pub decision_log: DecisionLogConfig,
    /// Versions of each package kept on disk for `rollback`, the current one included
    /// (default 2: current and one before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_versions: Option<usize>,
    /// Policies that run for every registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRef>,
    /// Plugins that run for every registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginRef>,
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryEntry>,
}

fn is_default_decision_log(d: &DecisionLogConfig) -> bool {
    *d == DecisionLogConfig::default()
}

fn is_default_continuity(c: &SignerContinuity) -> bool {
    *c == SignerContinuity::Warn
}

fn is_default_network(n: &NetworkConfig) -> bool {
    *n == NetworkConfig::default()
}

fn is_default_limits(l: &LimitsConfig) -> bool {
    *l == LimitsConfig::default()
}

const SEED_HEADER: &str = "# gantry configuration (user layer). See the README for every key.\n\n";

impl Config {
    /// The configuration written on first run: Chainguard's public images, signed by their
    /// GitHub Actions workflows.
    pub fn seed() -> Config {
        let mut c = Config::default();
        let mut cg = RegistryEntry::new("docker.io/chainguard");
        cg.issuer = Some("https://token.actions.githubusercontent.com".into());
        cg.identity_regex = Some("https://github.com/chainguard-images/images/.*".into());
        c.registries.insert("chainguard".into(), cg);
        c.default_registry = Some("chainguard".into());
        c
    }

    /// The default registry, if one is configured and exists.
    pub fn default_registry(&self) -> Option<(&str, &RegistryEntry)> {
        let name = self.default_registry.as_deref()?;
        self.registries
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Reads a config file; `Ok(None)` when it does not exist. Unknown keys, text that is not
    /// UTF-8 and half-filled signature policies are errors naming the file (and line).
    pub fn read(path: &Path) -> Result<Option<Config>, ConfigError> {
        let bytes = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ConfigError::Io {
                    path: path.into(),
                    source: e,
                })
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e
                .as_bytes()
                .get(..at)
                .map_or(1, |b| b.iter().filter(|&&c| c == b'\n').count() + 1);
            ConfigError::Parse {
                path: path.into(),
                message: format!("line {line}: not UTF-8 text (invalid byte at offset {at})"),
            }
        })?;
        Config::parse(path, &text).map(Some)
    }

    /// Parses and checks the text of a config file read from `path` (relative paths in it are
    /// relative to its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: path.into(),
            message,
        };
        let mut config: Config =
            toml::from_str(text).map_err(|e| parse_err(describe_toml_error(text, &e)))?;
        let raw: toml::Table =
            toml::from_str(text).map_err(|e| parse_err(describe_toml_error(text, &e)))?;
        config.validate(&raw).map_err(|(m, key)| {
            parse_err(match key.and_then(|k| find_line(text, &k)) {
                Some(line) => format!("line {line}: {m}"),
                None => m,
            })
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }
    /// Writes atomically (temp file + rename), so a crash never leaves a half-written config.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |e| ConfigError::Io {
            path: path.into(),
            source: e,
        };
        let body = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".config.toml.{}", std::process::id()));
        std::fs::write(&tmp, format!("{SEED_HEADER}{body}")).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.policies.iter_mut().for_each(|p| fix(&mut p.path));
        self.plugins.iter_mut().for_each(|p| fix(&mut p.path));
        if let Some(d) = self.plugin_cache_dir.as_mut() {
            fix(d);
        }
        for b in self.bundles.iter_mut() {
            b.key.iter_mut().for_each(fix);
            b.trusted_root.iter_mut().for_each(fix);
        }
        for r in self.registries.values_mut() {
            r.keys.iter_mut().for_each(fix);
            r.signers
                .iter_mut()
                .filter_map(|q| q.key.as_mut())
                .for_each(fix);
            r.attestors
                .iter_mut()
                .flat_map(|a| a.keys.iter_mut())
                .for_each(fix);
            if let Some(t) = r.trusted_root.as_mut() {
                fix(t);
            }
            r.policies.iter_mut().for_each(|p| fix(&mut p.path));
            r.plugins.iter_mut().for_each(|p| fix(&mut p.path));
        }
    }

    /// Checks what serde cannot: references between keys and whole signature policies. An error
    /// carries the registry (and field) it is about, so the caller can name the line.
    fn validate(&self, raw: &toml::Table) -> Result<(), (String, Option<EntryField>)> {
        self.network.check().map_err(|m| (m, None))?;
        for (i, b) in self.bundles.iter().enumerate() {
            let what = format!("bundles[{i}] ({})", b.reference);
            let keyless = b.issuer.is_some() || b.identity.is_some() || b.identity_regex.is_some();
            match (&b.key, keyless) {
                (Some(_), true) => {
                    return Err((format!("{what}: give `key` or a keyless signer, not both"), None))
                }
                (None, false) => {
                    return Err((
                        format!("{what}: names no signer: give `key`, or `issuer` with `identity` or `identity_regex`"),
                        None,
                    ))
                }
                (Some(_), false) => {}
                (None, true) => check_signer(&what, &b.issuer, &b.identity, &b.identity_regex, &[], false)
                    .map_err(|m| (m, None))?,
            }
        }
        if let Some(url) = &self.decision_log.syslog {
            crate::syslog::Collector::parse(url).map_err(|m| (m, None))?;
        }
        if let Some(k) = self.keep_versions.filter(|k| !(1..=100).contains(k)) {
            return Err((format!("keep_versions = {k}: use 1 to 100"), None));
        }
        if let Some(d) = &self.default_registry {
            if !self.registries.contains_key(d) {
                return Err((
                    format!("default_registry '{d}' is not a configured registry"),
                    None,
                ));
            }
        }
        for (name, r) in &self.registries {
            let table = raw
                .get("registries")
                .and_then(|t| t.get(name))
                .and_then(|t| t.as_table());
            let keys_given = table.is_some_and(|t| t.contains_key("keys"));
            if let Err(m) = r.check(name, keys_given) {
                // The line of the field the message is about, when the entry writes it.
                let field = [
                    "url",
                    "keys",
                    "identity_regex",
                    "identity",
                    "issuer",
                    "always_allow_unsigned",
                    "attestors",
                    "trusted_root",
                    "match_reference",
                ]
                .into_iter()
                .filter(|f| table.is_some_and(|t| t.contains_key(*f)))
                .find(|f| {
                    m.contains(&format!("`{f}`"))
                        || m.contains(&format!("{f} set"))
                        || (*f == "url" && m.contains("registry address"))
                })
                .map(str::to_owned);
                return Err((m, Some((name.clone(), field))));
            }
        }
        Ok(())
    }
}

/// A registry entry's name and, optionally, one of its fields.
type EntryField = (String, Option<String>);

/// The line of `[registries.NAME]` (or of FIELD within it) in a config file's text.
fn find_line(text: &str, (name, field): &(String, Option<String>)) -> Option<usize> {
    let header = |l: &str| {
        let l: String = l
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
            .collect();
        l == format!("[registries.{name}]")
            || l.starts_with(&format!("registries.{name}="))
            || l.starts_with(&format!("{name}="))
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| header(l))?;
    if let Some(f) = field {
        for (i, l) in lines.iter().enumerate().skip(start) {
            if i > start
                && l.trim_start().starts_with('[')
                && !l.trim_start().starts_with(&format!("[[registries.{name}."))
            {
                break;
            }
            let t = l.trim_start();
            if t.starts_with(f.as_str()) && t[f.len()..].trim_start().starts_with('=')
                || (i == start && t.contains(&format!("{f} =")))
            {
                return Some(i + 1);
            }
        }
    }
    Some(start + 1)
}

/// Anchors an identity regex so it must match the whole identity (a substring match is the
/// footgun peers ship).
pub fn anchor(re: &str) -> String {
    format!("^(?:{re})$")
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

/// Where the two layers live.
#[derive(Debug, Clone)]
pub struct ConfigPaths {
    pub user: PathBuf,
    pub system: PathBuf,
}

/// The system layer's file when `GANTRY_SYSTEM_CONFIG` does not name another.
pub const DEFAULT_SYSTEM_CONFIG: &str = "/etc/gantry/config.toml";

impl ConfigPaths {
    /// User layer under `home`; system layer from `GANTRY_SYSTEM_CONFIG` or
    /// [`DEFAULT_SYSTEM_CONFIG`] (see [`ConfigPaths::resolve`]).
    pub fn new(home: &crate::store::Home) -> Result<Self, ConfigError> {
        ConfigPaths::resolve(
            home.config(),
            Path::new(DEFAULT_SYSTEM_CONFIG),
            std::env::var_os("GANTRY_SYSTEM_CONFIG"),
        )
    }

    /// The rules for the system layer's location, so it does not depend on the caller's
    /// environment: `env` (the variable's value) set but empty, or naming a file that does not
    /// exist, is an error; and while `default_system` exists, `env` may name another file only
    /// when `default_system` sets `allow_system_config_override = true`.
    pub fn resolve(
        user: PathBuf,
        default_system: &Path,
        env: Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        let Some(value) = env else {
            return Ok(ConfigPaths {
                user,
                system: default_system.to_path_buf(),
            });
        };
        if value.is_empty() {
            return Err(ConfigError::Invalid("GANTRY_SYSTEM_CONFIG is set but empty: unset it, or name the system configuration file".into()));
        }
        let named = PathBuf::from(value);
        if !named.is_file() {
            return Err(ConfigError::Invalid(format!(
                "GANTRY_SYSTEM_CONFIG names {}, which does not exist or is not a file",
                named.display()
            )));
        }
        if default_system.exists()
            && crate::identity::canonical_path(&named)
                != crate::identity::canonical_path(default_system)
        {
            let default = Config::read(default_system)?.unwrap_or_default();
            if !default.allow_system_config_override {
                return Err(ConfigError::Invalid(format!(
                    "GANTRY_SYSTEM_CONFIG may not replace {}: that file does not set allow_system_config_override = true",
                    default_system.display()
                )));
            }
        }
        Ok(ConfigPaths {
            user,
            system: named,
        })
    }
}

/// Both layers, loaded. The user layer is created (seeded) on first run.
#[derive(Debug, Clone)]
pub struct Layered {
    pub paths: ConfigPaths,
    pub user: Config,
    pub system: Config,
}

impl Layered {
    /// Loads both layers, seeding the user layer if it does not exist yet.
    pub fn load(paths: ConfigPaths) -> Result<Layered, ConfigError> {
        let user = match Config::read(&paths.user)? {
            Some(c) => c,
            None => {
                let seed = Config::seed();
                seed.write(&paths.user)?;
                seed
            }
        };
        let system = Config::read(&paths.system)?.unwrap_or_default();
        Ok(Layered {
            paths,
            user,
            system,
        })
    }

    /// The registries in force: the system layer's entries win over user entries of the same name.
    pub fn effective(&self) -> Config {
        let mut c = self.user.clone();
        for (name, entry) in &self.system.registries {
            c.registries.insert(name.clone(), entry.clone());
        }
        if self.system.default_registry.is_some() {
            c.default_registry = self.system.default_registry.clone();
        }
        c.forbid_allow_unsigned |= self.system.forbid_allow_unsigned;
        c.forbid_warn_mode |= self.system.forbid_warn_mode;
        c.limits = LimitsConfig {
            max_total_bytes: min_opt(
                self.user.limits.max_total_bytes,
                self.system.limits.max_total_bytes,
            ),
            max_entries: min_opt(self.user.limits.max_entries, self.system.limits.max_entries),
            max_file_bytes: min_opt(
                self.user.limits.max_file_bytes,
                self.system.limits.max_file_bytes,
            ),
        };
        c.keep_versions = self.user.keep_versions.or(self.system.keep_versions);
        // Where records leave the machine, and which bundles hold policy, are the system's to say.
        c.decision_log = self.system.decision_log.clone();
        c.bundles = self.system.bundles.clone();
        // Network settings are the machine's own: the user's where set, else the system's.
        c.network = NetworkConfig {
            connect_timeout: self
                .user
                .network
                .connect_timeout
                .or(self.system.network.connect_timeout),
            stall_timeout: self
                .user
                .network
                .stall_timeout
                .or(self.system.network.stall_timeout),
            attempts: self.user.network.attempts.or(self.system.network.attempts),
        };
        // Policies and plugins of both layers run; the system ones cannot be removed.
        c.policies = self
            .system
            .policies
            .iter()
            .chain(&self.user.policies)
            .cloned()
            .collect();
        c.plugins = self
            .system
            .plugins
            .iter()
            .chain(&self.user.plugins)
            .cloned()
            .collect();
        c
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "default_registry = \"x\"\n[registries.x]\nurl = \n").unwrap();
        let err = Config::read(&p).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        // The broken file is left as it was.
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "default_registry = \"x\"\n[registries.x]\nurl = \n"
        );
    }

    #[test]
    fn first_run_seeds_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ConfigPaths {
            user: dir.path().join("config.toml"),
            system: dir.path().join("none.toml"),
        };
        let l = Layered::load(paths.clone()).unwrap();
        assert_eq!(l.user, Config::seed());
        assert_eq!(Config::read(&paths.user).unwrap().unwrap(), Config::seed());
    }

    #[test]
    fn system_layer_wins_and_only_tightens() {
        let mut user = Config::seed();
        user.registries.insert(
            "corp".into(),
            RegistryEntry {
                url: "evil.example/x".into(),
                ..Default::default()
            },
        );
        user.limits.max_entries = Some(10);
        let mut system = Config::default();
        system
            .registries
            .insert("corp".into(), RegistryEntry::new("corp.example/x"));
        system.forbid_allow_unsigned = true;
        system.limits.max_entries = Some(100);
        let l = Layered {
            paths: ConfigPaths {
                user: "u".into(),
                system: "s".into(),
            },
            user,
            system,
        };
        let e = l.effective();
        assert_eq!(e.registries["corp"].url, "corp.example/x");
        assert!(e.forbid_allow_unsigned);
        assert_eq!(e.limits.max_entries, Some(10));
    }

    #[test]
    fn identity_regex_is_anchored() {
        let re = regex::Regex::new(&anchor("https://github.com/corp/.*")).unwrap();
        assert!(re.is_match("https://github.com/corp/x"));
        assert!(!re.is_match("https://evil.example/?https://github.com/corp/x"));
        assert!(!re.is_match("https://github.com/corp/x\nsuffix"));
    }

    fn parse_err(text: &str) -> String {
        Config::parse(Path::new("/etc/x/config.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn half_filled_signature_policies_are_errors_naming_file_and_line() {
        let head = "default_registry = \"r\"\n\n[registries.r]\nurl = \"r.example\"\n";
        for (body, line, what) in [
            ("issuer = \"https://gh\"\n", 5, "without `identity`"),
            ("identity = \"me\"\n", 5, "needs the `issuer`"),
            ("keys = []\n", 5, "`keys` is empty"),
            ("match_reference = \"exact\"\n", 5, "no signer is named"),
            ("trusted_root = \"/r.json\"\n", 5, "no signer is named"),
            (
                "insecure = true\ntrusted_root = \"/r.json\"\n",
                6,
                "trusted_root set",
            ),
            (
                "keys = [\"/k.pub\"]\nalways_allow_unsigned = true\n",
                6,
                "contradicts",
            ),
            (
                "issuer = \"https://gh\"\nidentity = \"a\"\nidentity_regex = \"b\"\n",
                7,
                "not both",
            ),
            (
                "[[registries.r.attestors]]\nissuer = \"https://gh\"\n",
                3,
                "attestors",
            ),
        ] {
            let e = parse_err(&format!("{head}{body}"));
            assert!(
                e.contains("/etc/x/config.toml")
                    && e.contains(&format!("line {line}:"))
                    && e.contains(what),
                "{body:?}: {e}"
            );
        }
        // Whole policies load.
        for body in [
            "keys = [\"/k.pub\"]\n",
            "issuer = \"https://gh\"\nidentity_regex = \"x.*\"\nmatch_reference = \"repository\"\n",
            "",
        ] {
            Config::parse(Path::new("/c.toml"), &format!("{head}{body}")).unwrap();
        }
    }

    #[test]
    fn unknown_keys_are_errors_in_every_table() {
        for text in [
            "polices = []\n",
            "[limits]\nmax_entires = 1\n",
            "[registries.r]\nurl = \"r.example\"\nidentiy = \"x\"\n",
            "[[policies]]\npath = \"/p.rego\"\nconfg = {}\n",
            "[[plugins]]\npath = \"/p.wasm\"\ngrant = [\"clocks\"]\n",
            "[registries.r]\nurl = \"r.example\"\n[[registries.r.plugins]]\npath = \"/p.wasm\"\nmod = 1\n",
            "[registries.r]\nurl = \"r.example\"\nkeys = [\"/k\"]\n[[registries.r.attestors]]\nkeys = [\"/k\"]\nsubject = \"x\"\n",
        ] {
            let e = parse_err(text);
            assert!(e.contains("unknown field"), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_config_that_is_not_utf8_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, b"default_registry = \"x\"\n# caf\xe9\n").unwrap();
        let e = Config::read(&p).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }));
        let e = e.to_string();
        assert!(
            e.contains("config.toml") && e.contains("line 2") && e.contains("not UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn bad_registry_urls_are_errors() {
        for url in [
            "r.example:",
            "r.example:70000",
            "::1",
            "r.example/Team",
            "r.example/a___b",
            "oci:",
        ] {
            let e = parse_err(&format!("[registries.r]\nurl = \"{url}\"\n"));
            assert!(
                e.contains("registry 'r'") && e.contains("line 2"),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn the_system_layer_does_not_depend_on_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let absent = dir.path().join("etc-absent.toml");
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "forbid_allow_unsigned = true\n").unwrap();
        // Unset: the default file (present or not).
        assert_eq!(
            ConfigPaths::resolve(home.join("config.toml"), &absent, None)
                .unwrap()
                .system,
            absent
        );
        // Set but empty, or naming nothing: an error.
        let e = ConfigPaths::resolve(home.join("config.toml"), &absent, Some("".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("set but empty"), "{e}");
        let e = ConfigPaths::resolve(
            home.join("config.toml"),
            &absent,
            Some(dir.path().join("nope.toml").into()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not exist"), "{e}");
        // No default file: the variable names the system layer.
        assert_eq!(
            ConfigPaths::resolve(
                home.join("config.toml"),
                &absent,
                Some(other.clone().into())
            )
            .unwrap()
            .system,
            other
        );
        // A default file that does not allow it: the variable cannot point elsewhere.
        let default = dir.path().join("etc.toml");
        std::fs::write(&default, "forbid_warn_mode = true\n").unwrap();
        let e = ConfigPaths::resolve(
            home.join("config.toml"),
            &default,
            Some(other.clone().into()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("allow_system_config_override"), "{e}");
        // Naming the default file itself is fine.
        assert_eq!(
            ConfigPaths::resolve(
                home.join("config.toml"),
                &default,
                Some(default.clone().into())
            )
            .unwrap()
            .system,
            default
        );
        std::fs::write(&default, "allow_system_config_override = true\n").unwrap();
        assert_eq!(
            ConfigPaths::resolve(
                home.join("config.toml"),
                &default,
                Some(other.clone().into())
            )
            .unwrap()
            .system,
            other
        );
    }
}
