//! Configuration: `$GANTRY_HOME/config.toml` (the user layer) and the system layer
//! (`GANTRY_SYSTEM_CONFIG`, default `/etc/gantry/config.toml`). Owns parsing, the first-run seed,
//! and the rule that the system layer can only be added to, never relaxed, by the user layer.
//! A file that fails to parse is an error naming the file and line; it is never replaced.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// How a signature's `docker-reference` must relate to the image being installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceMatch {
    /// Same `host/repository` (tags and digests ignored).
    Repository,
    /// The reference exactly as installed, tag included.
    Exact,
}

/// A Rego policy file and its `data.config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "is_empty_table")]
    pub config: toml::Table,
}

/// A Wasm component plugin, its config and the WASI capabilities granted to it by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Install unsigned images from this registry without `--allow-unsigned`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub always_allow_unsigned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginRef>,
}

fn is_default_mode(m: &Mode) -> bool {
    *m == Mode::Enforce
}

impl RegistryEntry {
    /// An entry with only a URL.
    pub fn new(url: &str) -> Self {
        RegistryEntry { url: url.to_string(), ..Default::default() }
    }

    /// True when the entry says who must sign (identity or keys).
    pub fn has_signature_policy(&self) -> bool {
        self.identity.is_some() || self.identity_regex.is_some() || !self.keys.is_empty()
    }
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
    #[serde(default, skip_serializing_if = "is_default_limits")]
    pub limits: LimitsConfig,
    /// Policies that run for every registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRef>,
    /// Plugins that run for every registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginRef>,
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryEntry>,
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
        self.registries.get_key_value(name).map(|(k, v)| (k.as_str(), v))
    }

    /// The configured registry covering `host/path`, longest URL prefix first.
    pub fn registry_for(&self, host: &str, path: &str) -> Option<&str> {
        self.registries
            .iter()
            .filter_map(|(name, e)| {
                let (h, prefix) = crate::reference::split_registry_url(&e.url);
                let covered = h == host
                    && (prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/")));
                covered.then_some((name.as_str(), prefix.len()))
            })
            .max_by_key(|(_, len)| *len)
            .map(|(n, _)| n)
    }

    /// The configured registry whose `url = "oci:PREFIX"` contains the layout directory `dir`
    /// (compared as canonical paths, component by component).
    pub fn layout_registry(&self, dir: &Path) -> Option<&str> {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.registries
            .iter()
            .filter_map(|(name, e)| {
                let prefix = e.url.strip_prefix("oci:")?;
                let prefix = std::fs::canonicalize(prefix).unwrap_or_else(|_| PathBuf::from(prefix));
                dir.starts_with(&prefix).then_some((name.as_str(), prefix.components().count()))
            })
            .max_by_key(|(_, n)| *n)
            .map(|(n, _)| n)
    }

    /// Reads a config file; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Config>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfigError::Io { path: path.into(), source: e }),
        };
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: describe_toml_error(&text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate().map_err(|m| ConfigError::Parse { path: path.into(), message: m })?;
        Ok(Some(config))
    }

    /// Writes atomically (temp file + rename), so a crash never leaves a half-written config.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |e| ConfigError::Io { path: path.into(), source: e };
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
        for r in self.registries.values_mut() {
            r.keys.iter_mut().for_each(fix);
            if let Some(t) = r.trusted_root.as_mut() {
                fix(t);
            }
            r.policies.iter_mut().for_each(|p| fix(&mut p.path));
            r.plugins.iter_mut().for_each(|p| fix(&mut p.path));
        }
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(d) = &self.default_registry {
            if !self.registries.contains_key(d) {
                return Err(format!("default_registry '{d}' is not a configured registry"));
            }
        }
        for (name, r) in &self.registries {
            if r.url.trim().is_empty() {
                return Err(format!("registry '{name}' has an empty url"));
            }
            if let Some(re) = &r.identity_regex {
                regex::Regex::new(&anchor(re)).map_err(|e| format!("registry '{name}': identity_regex: {e}"))?;
            }
        }
        Ok(())
    }
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

impl ConfigPaths {
    /// User layer under `home`; system layer from `GANTRY_SYSTEM_CONFIG` or `/etc/gantry/config.toml`.
    pub fn new(home: &Path) -> Self {
        let system = std::env::var_os("GANTRY_SYSTEM_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/gantry/config.toml"));
        ConfigPaths { user: home.join("config.toml"), system }
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
        Ok(Layered { paths, user, system })
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
            max_total_bytes: min_opt(self.user.limits.max_total_bytes, self.system.limits.max_total_bytes),
            max_entries: min_opt(self.user.limits.max_entries, self.system.limits.max_entries),
            max_file_bytes: min_opt(self.user.limits.max_file_bytes, self.system.limits.max_file_bytes),
        };
        // Policies and plugins of both layers run; the system ones cannot be removed.
        c.policies = self.system.policies.iter().chain(&self.user.policies).cloned().collect();
        c.plugins = self.system.plugins.iter().chain(&self.user.plugins).cloned().collect();
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
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "default_registry = \"x\"\n[registries.x]\nurl = \n");
    }

    #[test]
    fn first_run_seeds_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ConfigPaths { user: dir.path().join("config.toml"), system: dir.path().join("none.toml") };
        let l = Layered::load(paths.clone()).unwrap();
        assert_eq!(l.user, Config::seed());
        assert_eq!(Config::read(&paths.user).unwrap().unwrap(), Config::seed());
    }

    #[test]
    fn system_layer_wins_and_only_tightens() {
        let mut user = Config::seed();
        user.registries.insert("corp".into(), RegistryEntry { url: "evil.example/x".into(), ..Default::default() });
        user.limits.max_entries = Some(10);
        let mut system = Config::default();
        system.registries.insert("corp".into(), RegistryEntry::new("corp.example/x"));
        system.forbid_allow_unsigned = true;
        system.limits.max_entries = Some(100);
        let l = Layered { paths: ConfigPaths { user: "u".into(), system: "s".into() }, user, system };
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

    #[test]
    fn registry_for_prefers_longest_prefix() {
        let mut c = Config::default();
        c.registries.insert("a".into(), RegistryEntry::new("r.example"));
        c.registries.insert("b".into(), RegistryEntry::new("r.example/team"));
        assert_eq!(c.registry_for("r.example", "team/x"), Some("b"));
        assert_eq!(c.registry_for("r.example", "teamx/x"), Some("a"));
        assert_eq!(c.registry_for("q.example", "team/x"), None);
    }
}
