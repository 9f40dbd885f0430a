//! The pipeline's [`Hooks`] implementation on the policy engine: loads, once per run and before
//! anything is pulled, the built-in policies plus every Rego policy and Wasm plugin the two
//! configuration layers name (globally, and for the registry policy in force), and evaluates them
//! at each hook with each signer rule of that registry policy as a `data.config` of the built-ins.

use crate::config::{Layered, PluginRef, PolicyRef};
use crate::document::HookDocument;
use crate::install::Hooks;
use crate::policy::engine::SignatureConfig;
use crate::policy::hook::Verdict;
use crate::policy::{Engine, Layer, PluginSpec, PolicyError, PolicySpec};
use crate::registry_policy::RegistryPolicy;
use crate::store::Home;
use serde_json::Value;

/// Errors preparing the hooks (all at load, before any network traffic).
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Bundle(#[from] crate::bundles::BundleError),
}

/// The engine plus the signer rules of the registry policy being installed under.
pub struct EngineHooks {
    engine: Engine,
    signature_configs: Vec<Value>,
    /// What the user should know about the policy in force (a bundle used offline).
    pub notes: Vec<String>,
}

fn policy_specs(layer: Layer, refs: &[PolicyRef]) -> Vec<PolicySpec> {
    refs.iter()
        .map(|p| PolicySpec {
            layer,
            path: p.path.clone(),
            config: serde_json::to_value(&p.config).unwrap_or(Value::Null),
        })
        .collect()
}

fn plugin_specs(layer: Layer, refs: &[PluginRef]) -> Vec<PluginSpec> {
    refs.iter()
        .map(|p| PluginSpec {
            layer,
            path: p.path.clone(),
            name: p.name.clone().unwrap_or_else(|| {
                p.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "plugin".into())
            }),
            config: serde_json::to_value(&p.config).unwrap_or(Value::Null),
            grants: p.grants.clone(),
        })
        .collect()
}

impl EngineHooks {
    /// Loads every policy source for an install governed by `policy`: both layers' global
    /// policies and plugins, then the registry-scoped ones the policy names.
    pub fn load(
        layered: &Layered,
        policy: &RegistryPolicy,
        home: &Home,
    ) -> Result<EngineHooks, HooksError> {
        let mut policies = policy_specs(Layer::System, &layered.system.policies);
        policies.extend(policy_specs(Layer::User, &layered.user.policies));
        let mut plugins = plugin_specs(Layer::System, &layered.system.plugins);
        plugins.extend(plugin_specs(Layer::User, &layered.user.plugins));
        for (layer, p) in &policy.policies {
            policies.extend(policy_specs(*layer, std::slice::from_ref(p)));
        }
        for (layer, p) in &policy.plugins {
            plugins.extend(plugin_specs(*layer, std::slice::from_ref(p)));
        }
        // The system's signed bundles: verified (refreshed when stale) and run as system sources.
        let net = layered.effective().network.net();
        let bundles = crate::bundles::ensure_all(&layered.system.bundles, home, &net, false)?;
        let mut notes = Vec::new();
        for b in &bundles {
            if let Some(n) = &b.note {
                notes.push(n.clone());
            }
            for p in &b.policies {
                policies.push(PolicySpec {
                    layer: Layer::System,
                    path: p.clone(),
                    config: b.config_of(p),
                });
            }
            for p in &b.plugins {
                plugins.push(PluginSpec {
                    layer: Layer::System,
                    path: p.clone(),
                    name: p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "plugin".into()),
                    config: b.config_of(p),
                    grants: Vec::new(),
                });
            }
        }
        let signature_configs = policy
            .signature_configs()
            .iter()
            .map(SignatureConfig::to_value)
            .collect();
        // System plugins are cached only where the system layer says (never under the home).
        let engine = Engine::load_with_caches(
            &policies,
            &plugins,
            Some(&home.plugin_cache()),
            layered.system.plugin_cache_dir.as_deref(),
        )?;
        // The policies are parsed and the plugins compiled: the unpacked bundles can go.
        drop(bundles);
        Ok(EngineHooks {
            engine,
            signature_configs,
            notes,
        })
    }
}

impl Hooks for EngineHooks {
    fn check(&self, doc: &HookDocument) -> Verdict {
        self.engine.evaluate(doc, &self.signature_configs)
    }
}
