//! The registry policy: which configured entry governs a reference, and everything that follows
//! from it (transport, who must sign and under which trust root, the unsigned rule, enforce or
//! warn, the registry-scoped policies and plugins). It is decided once per run, here, from the two
//! configuration layers, the reference and the flags; hooks, verification and install take the
//! resulting [`RegistryPolicy`] and nothing else re-derives it.
//!
//! The rules (README, "Registries and trust"):
//! - references and entry URLs are compared by registry identity ([`crate::identity`]);
//! - if any system entry covers a reference, the most specific system entry governs it, whatever
//!   the user layer holds; the most specific user entry that also covers it may only add
//!   requirements: its signer rule must hold too, its policies and plugins run too, and its
//!   transport, mode, unsigned rule and trust root never replace the system's;
//! - otherwise the most specific user entry governs; a reference no entry covers is an ad-hoc
//!   registry with no signer policy.

use crate::config::{Attestor, Layered, Mode, PluginRef, PolicyRef, ReferenceMatch, RegistryEntry};
use crate::facts::{Identity, SignatureFact, SignatureKind, SignerFacts};
use crate::identity::{canonical_path, HostPort, RegistryUrl};
use crate::policy::engine::SignatureConfig;
use crate::policy::Layer;
use crate::reference::ImageLocation;
use crate::trust::PublicKey;
use std::path::{Path, PathBuf};

/// Errors deciding the registry policy (all before anything is pulled).
#[derive(Debug, thiserror::Error)]
pub enum RegistryPolicyError {
    #[error("registry '{registry}': key {path}: {message}")]
    Key {
        registry: String,
        path: String,
        message: String,
    },
    #[error("registry '{registry}': {message}")]
    Invalid { registry: String, message: String },
    #[error("--allow-unsigned is forbidden by the system configuration")]
    UnsignedForbidden,
}

/// How the image is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    /// Plain HTTP: loopback hosts, or an entry with `insecure = true`.
    Http,
    /// A local OCI image layout.
    Layout,
}

/// One signer description, matched against a signature's or attestation's signer: keys (by
/// fingerprint), or an issuer with an exact or regex (anchored) identity.
#[derive(Debug, Clone, Default)]
pub struct SignerMatch {
    pub issuer: Option<String>,
    pub identity: Option<String>,
    /// As configured; matched anchored as `^(?:RE)$`.
    pub identity_regex: Option<String>,
    compiled: Option<regex::Regex>,
    /// `sha256:HEX` of each accepted key's SubjectPublicKeyInfo.
    pub key_fingerprints: Vec<String>,
    /// The keys behind `key_fingerprints`, read once when the policy is decided.
    pub keys: Vec<PublicKey>,
}

impl SignerMatch {
    /// A signer from configuration (keys read and parsed now; the regex anchored and compiled).
    pub(crate) fn new(
        registry: &str,
        issuer: &Option<String>,
        identity: &Option<String>,
        identity_regex: &Option<String>,
        keys: &[PathBuf],
    ) -> Result<SignerMatch, RegistryPolicyError> {
        let compiled = match identity_regex {
            Some(re) => Some(regex::Regex::new(&crate::config::anchor(re)).map_err(|e| {
                RegistryPolicyError::Invalid {
                    registry: registry.into(),
                    message: format!("identity_regex: {e}"),
                }
            })?),
            None => None,
        };
        let keys = read_keys(registry, keys)?;
        Ok(SignerMatch {
            issuer: issuer.clone(),
            identity: identity.clone(),
            identity_regex: identity_regex.clone(),
            compiled,
            key_fingerprints: keys.iter().map(PublicKey::fingerprint).collect(),
            keys,
        })
    }

    /// True when a verified signer of this kind, key and identity is the one described.
    pub fn matches(
        &self,
        kind: Option<SignatureKind>,
        key_fingerprint: Option<&str>,
        identity: &Identity,
    ) -> bool {
        match kind {
            Some(SignatureKind::Key) => {
                key_fingerprint.is_some_and(|f| self.key_fingerprints.iter().any(|k| k == f))
            }
            Some(SignatureKind::Keyless) => {
                let (Some(want), Some(got)) = (&self.issuer, &identity.issuer) else {
                    return false;
                };
                let Some(subject) = identity.subject.as_deref() else {
                    return false;
                };
                want == got
                    && (self.identity.as_deref() == Some(subject)
                        || self
                            .compiled
                            .as_ref()
                            .is_some_and(|re| re.is_match(subject)))
            }
            None => false,
        }
    }

    /// True when keyless signers can match (an issuer is set).
    pub fn wants_keyless(&self) -> bool {
        self.issuer.is_some()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(i) = &self.identity {
            parts.push(format!(
                "identity {i} from issuer {}",
                self.issuer.as_deref().unwrap_or("?")
            ));
        }
        if let Some(r) = &self.identity_regex {
            parts.push(format!(
                "identity ~ {r} from issuer {}",
                self.issuer.as_deref().unwrap_or("?")
            ));
        }
        if !self.key_fingerprints.is_empty() {
            parts.push(format!("key {}", self.key_fingerprints.join(" or ")));
        }
        parts.join("; or ")
    }
}

/// Who must sign, as one registry entry says: every rule of a [`RegistryPolicy`] must hold.
#[derive(Debug, Clone)]
pub struct SignerRule {
    /// The entry that set it, for messages.
    pub registry: String,
    pub layer: Layer,
    pub signer: SignerMatch,
    pub match_reference: Option<ReferenceMatch>,
    /// Signers whose attestations also count for this rule.
    pub attestors: Vec<SignerMatch>,
}

impl SignerRule {
    fn from_entry(
        name: &str,
        layer: Layer,
        e: &RegistryEntry,
    ) -> Result<SignerRule, RegistryPolicyError> {
        let attestors = e
            .attestors
            .iter()
            .map(|a: &Attestor| {
                SignerMatch::new(name, &a.issuer, &a.identity, &a.identity_regex, &a.keys)
            })
            .collect::<Result<_, _>>()?;
        Ok(SignerRule {
            registry: name.to_string(),
            layer,
            signer: SignerMatch::new(name, &e.issuer, &e.identity, &e.identity_regex, &e.keys)?,
            match_reference: e.match_reference,
            attestors,
        })
    }

    /// Why an attestation's signer does not count for this rule, or `None` when it does.
    fn rejects(&self, signer: &SignerFacts) -> Option<String> {
        let ok = |m: &SignerMatch| {
            m.matches(
                signer.kind,
                signer.key_fingerprint.as_deref(),
                &signer.identity,
            )
        };
        if ok(&self.signer) || self.attestors.iter().any(ok) {
            return None;
        }
        let mut expected = self.signer.describe();
        for a in &self.attestors {
            expected.push_str("; or attestor ");
            expected.push_str(&a.describe());
        }
        Some(format!(
            "signed by {}, which does not satisfy the signer policy of registry '{}' (expected {expected})",
            describe_signer(signer),
            self.registry
        ))
    }
}

fn describe_signer(s: &SignerFacts) -> String {
    match (s.kind, &s.key_fingerprint, &s.identity.subject) {
        (Some(SignatureKind::Keyless), _, Some(subject)) => {
            format!(
                "{subject} (issuer {})",
                s.identity.issuer.as_deref().unwrap_or("unknown")
            )
        }
        (_, Some(fp), _) => format!("key {fp}"),
        _ => "an unrecorded signer".into(),
    }
}

/// The trust root keyless signatures are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// No rule accepts keyless signers: none is needed.
    None,
    /// The Sigstore public-good root (cached, TUF-updated).
    PublicGood,
    /// An entry's `trusted_root.json`.
    File(PathBuf),
}

/// Everything that governs one reference, decided once.
#[derive(Debug, Clone)]
pub struct RegistryPolicy {
    /// The governing entry's name, or an ad-hoc name (the host, or `oci-layout`).
    pub name: String,
    /// The governing entry's URL, or the host / layout directory.
    pub url: String,
    /// The governing entry's layer; `None` for an ad-hoc registry.
    pub layer: Option<Layer>,
    /// User entries that also cover the reference and only add requirements.
    pub additional: Vec<String>,
    pub transport: Transport,
    /// Every rule must be satisfied by some verified signature; empty: no signer policy.
    pub signers: Vec<SignerRule>,
    pub trust_root: RootSource,
    /// `--allow-unsigned` was given (and the system layer allows it).
    pub allow_unsigned: bool,
    /// The governing entry sets `always_allow_unsigned` (and the system layer allows it).
    pub always_allow_unsigned: bool,
    /// The system layer forbids `--allow-unsigned` (so no message may suggest it).
    pub unsigned_forbidden: bool,
    pub mode: Mode,
    /// What a change of signers on update does (the stricter of the governing and adding
    /// entries).
    pub signer_continuity: crate::config::SignerContinuity,
    /// Signer quorums (k of n) of the governing and adding entries; each must be met.
    pub quorums: Vec<Quorum>,
    /// The governing entry's mirrors, each `host[/prefix]` standing for its `url`.
    pub mirrors: Vec<String>,
    /// How many of the registry and its mirrors must name the same digest for a tag.
    pub agree: usize,
    /// Registry-scoped policies and plugins, each with the layer of the entry that names it.
    pub policies: Vec<(Layer, PolicyRef)>,
    pub plugins: Vec<(Layer, PluginRef)>,
}

/// What a reference is, for matching.
enum Target {
    Registry {
        host: HostPort,
        repository: Vec<String>,
    },
    Layout(PathBuf),
}

/// How specifically `entry` covers `target` (more path components: more specific), or `None`.
fn coverage(entry: &RegistryEntry, target: &Target) -> Option<usize> {
    match (RegistryUrl::parse(&entry.url).ok()?, target) {
        (
            RegistryUrl::Registry { host, prefix },
            Target::Registry {
                host: h,
                repository,
            },
        ) => {
            let plain = entry.insecure || host.is_loopback();
            let same_host = host.identity(plain) == h.identity(plain);
            (same_host && repository.len() > prefix.len() && repository.starts_with(&prefix))
                .then_some(prefix.len() + 1)
        }
        (RegistryUrl::Layout(dir), Target::Layout(d)) => {
            let dir = canonical_path(&dir);
            d.starts_with(&dir).then_some(dir.components().count())
        }
        _ => None,
    }
}

/// The most specific entry of `entries` covering `target` (ties: the first name in order).
fn best<'a>(
    entries: impl Iterator<Item = (&'a String, &'a RegistryEntry)>,
    target: &Target,
) -> Option<(&'a str, &'a RegistryEntry)> {
    let mut found: Option<(usize, &'a str, &'a RegistryEntry)> = None;
    for (name, e) in entries {
        if let Some(n) = coverage(e, target) {
            if found.is_none_or(|(m, _, _)| n > m) {
                found = Some((n, name.as_str(), e));
            }
        }
    }
    found.map(|(_, n, e)| (n, e))
}

impl RegistryPolicy {
    /// Decides the policy for `location`. `named`: the entry the reference was expanded against
    /// (`corp/tool`), which governs among user entries when no system entry covers the
    /// reference. A layout's directory is made canonical in place, so the directory opened is
    /// the one matched.
    pub fn resolve(
        layered: &Layered,
        location: &mut ImageLocation,
        named: Option<&str>,
        allow_unsigned: bool,
    ) -> Result<RegistryPolicy, RegistryPolicyError> {
        let system = &layered.system;
        let forbid_unsigned = system.forbid_allow_unsigned;
        if allow_unsigned && forbid_unsigned {
            return Err(RegistryPolicyError::UnsignedForbidden);
        }
        let target = match location {
            ImageLocation::Registry(r) => Target::Registry {
                host: HostPort::parse(&r.host).map_err(|e| RegistryPolicyError::Invalid {
                    registry: r.host.clone(),
                    message: e.to_string(),
                })?,
                repository: r.repository.split('/').map(str::to_owned).collect(),
            },
            ImageLocation::Layout(l) => {
                l.dir = canonical_path(&l.dir);
                Target::Layout(l.dir.clone())
            }
        };
        let user_entries = layered
            .user
            .registries
            .iter()
            .filter(|(n, _)| !system.registries.contains_key(*n));
        let sys_best = best(system.registries.iter(), &target);
        // Within the user layer, the entry the user named wins (their own choice); the system
        // layer is above that choice.
        let named_user = named
            .and_then(|n| layered.user.registries.get_key_value(n))
            .filter(|(n, e)| !system.registries.contains_key(*n) && coverage(e, &target).is_some())
            .map(|(n, e)| (n.as_str(), e));
        let user_best = named_user.or_else(|| best(user_entries, &target));
        let (governing, additional) = match (sys_best, user_best) {
            (Some(s), u) => (Some((Layer::System, s)), u),
            (None, Some(u)) => (Some((Layer::User, u)), None),
            (None, None) => (None, None),
        };

        let (adhoc_name, adhoc_url, adhoc_transport) = match location {
            ImageLocation::Registry(r) => {
                let loopback = HostPort::parse(&r.host).is_ok_and(|h| h.is_loopback());
                (
                    r.host.clone(),
                    r.host.clone(),
                    if loopback {
                        Transport::Http
                    } else {
                        Transport::Https
                    },
                )
            }
            ImageLocation::Layout(l) => (
                "oci-layout".to_string(),
                format!("oci:{}", l.dir.display()),
                Transport::Layout,
            ),
        };
        let mut policy = RegistryPolicy {
            name: adhoc_name,
            url: adhoc_url,
            layer: None,
            additional: Vec::new(),
            transport: adhoc_transport,
            signers: Vec::new(),
            trust_root: RootSource::None,
            allow_unsigned,
            always_allow_unsigned: false,
            unsigned_forbidden: forbid_unsigned,
            mode: Mode::Enforce,
            signer_continuity: Default::default(),
            quorums: Vec::new(),
            mirrors: Vec::new(),
            agree: 1,
            policies: Vec::new(),
            plugins: Vec::new(),
        };
        let Some((layer, (name, entry))) = governing else {
            return Ok(policy);
        };
        policy.name = name.to_string();
        policy.url = entry.url.clone();
        policy.mirrors = entry.mirrors.clone();
        policy.agree = entry.agree.unwrap_or(1);
        policy.layer = Some(layer);
        if policy.transport == Transport::Https && entry.insecure {
            policy.transport = Transport::Http;
        }
        policy.always_allow_unsigned = entry.always_allow_unsigned && !forbid_unsigned;
        policy.mode = if system.forbid_warn_mode {
            Mode::Enforce
        } else {
            entry.mode
        };
        let mut roots = Vec::new();
        for (layer, name, e) in std::iter::once((layer, name, entry))
            .chain(additional.map(|(n, e)| (Layer::User, n, e)))
        {
            if layer == Layer::User && policy.layer == Some(Layer::System) {
                policy.additional.push(name.to_string());
            }
            policy.signer_continuity = policy.signer_continuity.max(e.signer_continuity);
            if !e.signers.is_empty() {
                let q = Quorum::from_entry(name, e)?;
                if q.entries.iter().any(SignerMatch::wants_keyless) {
                    roots.push(
                        e.trusted_root
                            .clone()
                            .map_or(RootSource::PublicGood, RootSource::File),
                    );
                }
                policy.quorums.push(q);
            }
            if e.has_signature_policy() && e.signers.is_empty() {
                let rule = SignerRule::from_entry(name, layer, e)?;
                let keyless = rule.signer.wants_keyless()
                    || rule.attestors.iter().any(SignerMatch::wants_keyless);
                if keyless {
                    roots.push(
                        e.trusted_root
                            .clone()
                            .map_or(RootSource::PublicGood, RootSource::File),
                    );
                }
                policy.signers.push(rule);
            }
            policy
                .policies
                .extend(e.policies.iter().map(|p| (layer, p.clone())));
            policy
                .plugins
                .extend(e.plugins.iter().map(|p| (layer, p.clone())));
        }
        // One root checks every keyless signature: the governing entry's if it takes keyless
        // signers, else the adding entry's (whose rule is then the only keyless one).
        policy.trust_root = roots.into_iter().next().unwrap_or(RootSource::None);
        Ok(policy)
    }

    /// True when some rule names who must sign.
    pub fn has_signer_policy(&self) -> bool {
        !self.signers.is_empty() || !self.quorums.is_empty()
    }

    /// Where each mirror serves `image`: the entry's URL prefix replaced by the mirror's.
    pub fn mirror_images(
        &self,
        image: &crate::reference::RegistryImage,
    ) -> Vec<crate::reference::RegistryImage> {
        let prefix: Vec<String> = match RegistryUrl::parse(&self.url) {
            Ok(RegistryUrl::Registry { prefix, .. }) => prefix,
            _ => return Vec::new(),
        };
        let parts: Vec<&str> = image.repository.split('/').collect();
        let rest = parts.get(prefix.len()..).unwrap_or(&[]).join("/");
        self.mirrors
            .iter()
            .filter_map(
                |m| match RegistryUrl::parse(m.trim_end_matches('/')).ok()? {
                    RegistryUrl::Registry { host, prefix } => {
                        let repository = prefix
                            .into_iter()
                            .chain(std::iter::once(rest.clone()).filter(|r| !r.is_empty()))
                            .collect::<Vec<_>>()
                            .join("/");
                        Some(crate::reference::RegistryImage {
                            host: host.to_string(),
                            repository,
                            version: image.version.clone(),
                        })
                    }
                    RegistryUrl::Layout(_) => None,
                },
            )
            .collect()
    }

    /// The signature quorums, as the `signatures` hook sees them.
    pub fn signature_quorums(&self, sigs: &[SignatureFact]) -> Vec<QuorumFacts> {
        self.quorums
            .iter()
            .map(|q| {
                let signers: Vec<Candidate> = sigs
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.verified)
                    .map(|(i, s)| Candidate {
                        index: i,
                        kind: Some(s.kind),
                        key_fingerprint: s.key_fingerprint.clone(),
                        identity: s.identity.clone(),
                    })
                    .collect();
                q.evaluate(q.threshold, &signers)
            })
            .collect()
    }

    /// The attestation quorums (where an entry sets `attestation_threshold`), over the
    /// attestations that counted.
    pub fn attestation_quorums(&self, atts: &[crate::facts::AttestationFact]) -> Vec<QuorumFacts> {
        self.quorums
            .iter()
            .filter_map(|q| {
                let t = q.attestation_threshold?;
                let signers: Vec<Candidate> = atts
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Candidate {
                        index: i,
                        kind: a.signer.kind,
                        key_fingerprint: a.signer.key_fingerprint.clone(),
                        identity: a.signer.identity.clone(),
                    })
                    .collect();
                Some(q.evaluate(t, &signers))
            })
            .collect()
    }

    /// The built-in signature policy's `data.config`, one per rule (each must allow); a single
    /// unsigned-rule config when there is no signer policy. The governing entry's config comes
    /// first and is always there, so an adding user entry can never lift its denial.
    pub fn signature_configs(&self) -> Vec<SignatureConfig> {
        let base = SignatureConfig {
            registry: self.name.clone(),
            allow_unsigned: self.allow_unsigned,
            always_allow_unsigned: self.always_allow_unsigned,
            forbid_allow_unsigned: self.unsigned_forbidden,
            ..Default::default()
        };
        let governing_has_rule = self
            .signers
            .first()
            .is_some_and(|r| r.registry == self.name)
            || self.quorums.iter().any(|q| q.registry == self.name);
        let mut out = Vec::new();
        if !governing_has_rule {
            out.push(base.clone());
        }
        for q in &self.quorums {
            out.push(SignatureConfig {
                registry: q.registry.clone(),
                has_signature_policy: true,
                quorum: true,
                ..base.clone()
            });
        }
        for r in &self.signers {
            out.push(SignatureConfig {
                registry: r.registry.clone(),
                has_signature_policy: true,
                issuer: r.signer.issuer.clone(),
                identity: r.signer.identity.clone(),
                identity_regex: r
                    .signer
                    .identity_regex
                    .as_deref()
                    .map(SignatureConfig::anchor),
                key_fingerprints: r.signer.key_fingerprints.clone(),
                match_reference: r.match_reference.map(|m| {
                    match m {
                        ReferenceMatch::Repository => "repository",
                        ReferenceMatch::Exact => "exact",
                    }
                    .to_string()
                }),
                ..base.clone()
            });
        }
        out
    }

    /// Why an attestation with this signer does not count, or `None` when it does: its signer
    /// must satisfy every rule (the rule's signers or its attestors). With no signer policy, no
    /// attestation counts: there is nobody to bind it to.
    pub fn attestation_rejected(&self, signer: &SignerFacts) -> Option<String> {
        for q in &self.quorums {
            let ok = q.entries.iter().any(|m| {
                m.matches(
                    signer.kind,
                    signer.key_fingerprint.as_deref(),
                    &signer.identity,
                )
            });
            if !ok {
                return Some(format!(
                    "signed by {}, which is none of the signers of registry '{}'",
                    describe_signer(signer),
                    q.registry
                ));
            }
        }
        if self.signers.is_empty() && !self.quorums.is_empty() {
            return None;
        }
        if self.signers.is_empty() {
            return Some(format!(
                "signed by {}, but registry '{}' has no signer policy to bind attestations to (add keys, an identity or attestors to the entry)",
                describe_signer(signer),
                self.name
            ));
        }
        self.signers.iter().find_map(|r| r.rejects(signer))
    }

    /// Every key any rule or attestor names, once each (to verify key-based signatures with).
    pub fn public_keys(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = Vec::new();
        let quorum_keys = self
            .quorums
            .iter()
            .flat_map(|q| q.entries.iter().flat_map(|m| m.keys.iter()));
        let rule_keys = self.signers.iter().flat_map(|r| {
            r.signer
                .keys
                .iter()
                .chain(r.attestors.iter().flat_map(|a| a.keys.iter()))
        });
        for k in rule_keys.chain(quorum_keys) {
            if !keys
                .iter()
                .any(|have| have.fingerprint() == k.fingerprint())
            {
                keys.push(k.clone());
            }
        }
        keys
    }
}

/// A k-of-n signer quorum of one registry entry.
#[derive(Debug, Clone)]
pub struct Quorum {
    pub registry: String,
    /// Each entry is one key or one keyless identity.
    pub entries: Vec<SignerMatch>,
    pub threshold: usize,
    pub attestation_threshold: Option<usize>,
}

/// What a quorum saw: which entry each distinct signer satisfied (a matching: every signer and
/// every entry counts at most once), as the hook document carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumFacts {
    pub registry: String,
    pub required: usize,
    pub have: usize,
    /// The entries, described (`key sha256:…`, `identity … from issuer …`).
    pub entries: Vec<String>,
    pub satisfied: Vec<QuorumMatch>,
    /// The entries no signer satisfied.
    pub missing: Vec<String>,
}

/// One entry satisfied by one distinct signer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumMatch {
    /// Index into `entries`.
    pub entry: usize,
    /// The signer (`key sha256:…`, or `SUBJECT (issuer ISSUER)`).
    pub signer: String,
    /// Index of the (first) signature or attestation of that signer.
    pub index: usize,
}

/// A verified signature or attestation, as far as a quorum looks at it.
struct Candidate {
    index: usize,
    kind: Option<SignatureKind>,
    key_fingerprint: Option<String>,
    identity: Identity,
}

impl Quorum {
    fn from_entry(name: &str, e: &RegistryEntry) -> Result<Quorum, RegistryPolicyError> {
        let entries = e
            .signers
            .iter()
            .map(|q| {
                let keys: Vec<PathBuf> = q.key.iter().cloned().collect();
                SignerMatch::new(name, &q.issuer, &q.identity, &q.identity_regex, &keys)
            })
            .collect::<Result<_, _>>()?;
        Ok(Quorum {
            registry: name.to_string(),
            entries,
            threshold: e.threshold.unwrap_or(usize::MAX),
            attestation_threshold: e.attestation_threshold,
        })
    }

    /// The largest matching between distinct signers and entries. Distinct signers are
    /// distinct keys (by SPKI fingerprint) or distinct (issuer, subject) pairs; each counts once
    /// however many signatures it made, and each entry is satisfied once however often its key
    /// is listed.
    fn evaluate(&self, required: usize, candidates: &[Candidate]) -> QuorumFacts {
        let mut signers: Vec<(String, &Candidate)> = Vec::new();
        for c in candidates {
            let id = match (c.kind, &c.key_fingerprint, &c.identity.subject) {
                (Some(SignatureKind::Key), Some(fp), _) => format!("key {fp}"),
                (Some(SignatureKind::Keyless), _, Some(subject)) => format!(
                    "{subject} (issuer {})",
                    c.identity.issuer.as_deref().unwrap_or("unknown")
                ),
                _ => continue, // no identifiable signer: counts zero
            };
            if !signers.iter().any(|(s, _)| *s == id) {
                signers.push((id, c));
            }
        }
        let edges: Vec<Vec<usize>> = signers
            .iter()
            .map(|(_, c)| {
                (0..self.entries.len())
                    .filter(|e| {
                        self.entries[*e].matches(c.kind, c.key_fingerprint.as_deref(), &c.identity)
                    })
                    .collect()
            })
            .collect();
        // Kuhn's augmenting paths: entry_of[e] = the signer holding entry e.
        let mut entry_of: Vec<Option<usize>> = vec![None; self.entries.len()];
        for s in 0..signers.len() {
            let mut seen = vec![false; self.entries.len()];
            augment(s, &edges, &mut entry_of, &mut seen);
        }
        let mut satisfied: Vec<QuorumMatch> = entry_of
            .iter()
            .enumerate()
            .filter_map(|(e, s)| {
                let (id, c) = signers.get((*s)?)?;
                Some(QuorumMatch {
                    entry: e,
                    signer: id.clone(),
                    index: c.index,
                })
            })
            .collect();
        satisfied.sort_by_key(|m| m.entry);
        let entries: Vec<String> = self.entries.iter().map(SignerMatch::describe).collect();
        let missing = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| entry_of.get(*i).is_some_and(Option::is_none))
            .map(|(_, d)| d.clone())
            .collect();
        QuorumFacts {
            registry: self.registry.clone(),
            required,
            have: satisfied.len(),
            entries,
            satisfied,
            missing,
        }
    }
}

fn augment(
    s: usize,
    edges: &[Vec<usize>],
    entry_of: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for &e in edges.get(s).map(Vec::as_slice).unwrap_or(&[]) {
        if seen.get(e).copied().unwrap_or(true) {
            continue;
        }
        seen[e] = true;
        let free = match entry_of[e] {
            None => true,
            Some(other) => augment(other, edges, entry_of, seen),
        };
        if free {
            entry_of[e] = Some(s);
            return true;
        }
    }
    false
}

/// Reads and parses key files (PEM public keys).
fn read_keys(registry: &str, keys: &[PathBuf]) -> Result<Vec<PublicKey>, RegistryPolicyError> {
    keys.iter()
        .map(|p: &PathBuf| {
            let err = |message: String| RegistryPolicyError::Key {
                registry: registry.into(),
                path: p.display().to_string(),
                message,
            };
            let pem = std::fs::read(p as &Path).map_err(|e| err(e.to_string()))?;
            PublicKey::from_pem(&pem).map_err(|e| err(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
