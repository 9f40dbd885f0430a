//! The pipeline's [`Hooks`] implementation on the policy engine: loads, once per run and before
//! anything is pulled, the built-in policies plus every Rego policy and Wasm plugin the two
//! configuration layers name (globally and for the target registry), and evaluates them at each
//! hook with the registry's signature policy as the built-ins' `data.config`.

use crate::config::{Config, Layered, PluginRef, PolicyRef, RegistryEntry};
use crate::install::{HookContext, Hooks};
use crate::policy::engine::SignatureConfig;
use crate::policy::hook::{HookPoint, Verdict};
use crate::policy::{Engine, Layer, PluginSpec, PolicyError, PolicySpec};
use serde_json::Value;
use std::path::Path;

/// Errors preparing the hooks (all at load, before any network traffic).
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("registry '{registry}': key {path}: {message}")]
    Key { registry: String, path: String, message: String },
}

/// The engine plus the signature policy of the registry being installed from.
pub struct EngineHooks {
    engine: Engine,
    signature_config: Value,
}

fn policy_specs(layer: Layer, refs: &[PolicyRef]) -> Vec<PolicySpec> {
    refs.iter()
        .map(|p| PolicySpec { layer, path: p.path.clone(), config: serde_json::to_value(&p.config).unwrap_or(Value::Null) })
        .collect()
}

fn plugin_specs(layer: Layer, refs: &[PluginRef]) -> Vec<PluginSpec> {
    refs.iter()
        .map(|p| PluginSpec {
            layer,
            path: p.path.clone(),
            name: p.name.clone().unwrap_or_else(|| {
                p.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into())
            }),
            config: serde_json::to_value(&p.config).unwrap_or(Value::Null),
            grants: p.grants.clone(),
        })
        .collect()
}

/// Fingerprints (`sha256:HEX` of the SPKI) of a registry's configured keys.
pub fn key_fingerprints(registry: &str, entry: &RegistryEntry) -> Result<Vec<String>, HooksError> {
    entry
        .keys
        .iter()
        .map(|p| {
            let err = |message: String| HooksError::Key { registry: registry.into(), path: p.display().to_string(), message };
            let pem = std::fs::read(p).map_err(|e| err(e.to_string()))?;
            crate::trust::keys::PublicKey::from_pem(&pem).map(|k| k.fingerprint()).map_err(|e| err(e.to_string()))
        })
        .collect()
}

/// The built-in signature policy's `data.config` for a registry (`None`: an ad-hoc registry,
/// which has no policy).
pub fn signature_config(config: &Config, registry: &str, entry: Option<&RegistryEntry>, allow_unsigned: bool) -> Result<SignatureConfig, HooksError> {
    let forbid = config.forbid_allow_unsigned;
    let Some(e) = entry else {
        return Ok(SignatureConfig { registry: registry.into(), allow_unsigned: allow_unsigned && !forbid, ..Default::default() });
    };
    Ok(SignatureConfig {
        registry: registry.into(),
        has_signature_policy: e.has_signature_policy(),
        issuer: e.issuer.clone(),
        identity: e.identity.clone(),
        identity_regex: e.identity_regex.as_deref().map(SignatureConfig::anchor),
        key_fingerprints: key_fingerprints(registry, e)?,
        allow_unsigned: allow_unsigned && !forbid,
        always_allow_unsigned: e.always_allow_unsigned && !forbid,
        match_reference: e.match_reference.map(|m| {
            match m {
                crate::config::ReferenceMatch::Repository => "repository",
                crate::config::ReferenceMatch::Exact => "exact",
            }
            .to_string()
        }),
    })
}

impl EngineHooks {
    /// Loads every policy source for an install from `registry`.
    pub fn load(layered: &Layered, effective: &Config, registry: &str, configured: bool, allow_unsigned: bool, home: &Path) -> Result<EngineHooks, HooksError> {
        let mut policies = policy_specs(Layer::System, &layered.system.policies);
        policies.extend(policy_specs(Layer::User, &layered.user.policies));
        let mut plugins = plugin_specs(Layer::System, &layered.system.plugins);
        plugins.extend(plugin_specs(Layer::User, &layered.user.plugins));
        let entry = if configured { effective.registries.get(registry) } else { None };
        if configured {
            // The entry in force is the system one when both layers name the registry.
            let layer = if layered.system.registries.contains_key(registry) { Layer::System } else { Layer::User };
            if let Some(e) = entry {
                policies.extend(policy_specs(layer, &e.policies));
                plugins.extend(plugin_specs(layer, &e.plugins));
            }
        }
        let sig = signature_config(effective, registry, entry, allow_unsigned)?;
        let engine = Engine::load(&policies, &plugins, Some(&home.join("cache").join("plugins")))?;
        Ok(EngineHooks { engine, signature_config: sig.to_value() })
    }
}

impl Hooks for EngineHooks {
    fn check(&self, hook: HookPoint, input: &Value, _ctx: &HookContext) -> Verdict {
        self.engine.evaluate(hook, input, &self.signature_config)
    }
}
