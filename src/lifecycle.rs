//! What the lifecycle commands share: the policy in force today for an installed package (from
//! the reference and flags it was installed with), and the judgement of a version's recorded hook
//! document by every hook again, offline. `rollback` and `audit` rest on this: a version is judged
//! on the facts that were verified when it was installed, by the policy as it stands now.

use crate::config::{Layered, Mode};
use crate::document::HookDocument;
use crate::hooks::EngineHooks;
use crate::install::Hooks;
use crate::policy::decisions::HookDecision;
use crate::policy::hook::HookPoint;
use crate::reference;
use crate::registry_policy::RegistryPolicy;
use crate::store::{Home, PackageMetadata};

/// Why the policy of an installed package could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{package}: its recorded reference {reference} no longer parses: {message}")]
    Reference {
        package: String,
        reference: String,
        message: String,
    },
    #[error("{package}: {message}")]
    Policy { package: String, message: String },
    #[error(transparent)]
    Hooks(#[from] crate::hooks::HooksError),
}

/// The registry policy and loaded hooks that govern `meta`'s reference today. A package installed
/// with `--allow-unsigned` is judged with it, unless the system layer now forbids it (then it is
/// judged without, and the built-in signature policy says why).
pub fn policy_for(
    layered: &Layered,
    home: &Home,
    meta: &PackageMetadata,
) -> Result<(RegistryPolicy, EngineHooks), LifecycleError> {
    let config = layered.effective();
    let parse = || {
        reference::parse_named(&meta.reference, &config).map_err(|e| LifecycleError::Reference {
            package: meta.name.clone(),
            reference: meta.reference.clone(),
            message: e.to_string(),
        })
    };
    let (mut location, named) = parse()?;
    let policy = match RegistryPolicy::resolve(
        layered,
        &mut location,
        named.as_deref(),
        meta.allow_unsigned,
    ) {
        Ok(p) => p,
        Err(_) if meta.allow_unsigned => {
            let (mut location, named) = parse()?;
            RegistryPolicy::resolve(layered, &mut location, named.as_deref(), false).map_err(
                |e| LifecycleError::Policy {
                    package: meta.name.clone(),
                    message: e.to_string(),
                },
            )?
        }
        Err(e) => {
            return Err(LifecycleError::Policy {
                package: meta.name.clone(),
                message: e.to_string(),
            })
        }
    };
    let hooks = EngineHooks::load(layered, &policy, home)?;
    Ok((policy, hooks))
}

/// The verdicts of every hook over a recorded document, in pipeline order.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub hooks: Vec<HookDecision>,
    /// The registry is in warn mode: denials are reported, not enforced.
    pub warn_mode: bool,
}

impl Judgement {
    /// No hook denied, or the registry is in warn mode.
    pub fn allowed(&self) -> bool {
        self.warn_mode || self.hooks.iter().all(|h| h.verdict.allowed())
    }

    /// Each deny as `[hook] text (source)`.
    pub fn reasons(&self) -> Vec<String> {
        self.hooks
            .iter()
            .flat_map(|h| {
                h.verdict
                    .deny
                    .iter()
                    .map(move |m| format!("[{}] {} ({})", h.hook, m.text, m.source))
            })
            .collect()
    }
}

/// Runs every hook over `doc` (a version's recorded install document), each with `hook` set to
/// it, as an install would have.
pub fn judge<H: Hooks + ?Sized>(
    hooks: &H,
    policy: &RegistryPolicy,
    doc: &HookDocument,
) -> Judgement {
    let mut doc = doc.clone();
    let mut out = Vec::new();
    for hook in HookPoint::ALL {
        doc.hook = hook;
        out.push(HookDecision {
            hook,
            verdict: hooks.check(&doc),
        });
    }
    Judgement {
        hooks: out,
        warn_mode: policy.mode == Mode::Warn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::hook::Verdict;

    struct DenyAt(HookPoint);

    impl Hooks for DenyAt {
        fn check(&self, doc: &HookDocument) -> Verdict {
            let mut v = Verdict::default();
            if doc.hook == self.0 {
                v.deny("test", "no");
            }
            v
        }
    }

    #[test]
    fn every_hook_judges_the_recorded_document() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/contract.json"
        ))
        .unwrap();
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        let doc = HookDocument::from_json(HookPoint::Install, &golden["install"]).unwrap();
        let paths = crate::config::ConfigPaths {
            user: "/u/config.toml".into(),
            system: "/s/config.toml".into(),
        };
        let layered = Layered {
            user: crate::config::Config::default(),
            system: crate::config::Config::default(),
            paths,
        };
        let (mut loc, _) =
            reference::parse_named("registry.example/acme/tool:1.2", &layered.effective()).unwrap();
        let policy = RegistryPolicy::resolve(&layered, &mut loc, None, false).unwrap();
        for hook in HookPoint::ALL {
            let j = judge(&DenyAt(hook), &policy, &doc);
            assert_eq!(j.hooks.len(), 6);
            assert!(!j.allowed(), "{hook}");
            assert_eq!(j.reasons(), [format!("[{hook}] no (test)")]);
            let warned = Judgement {
                warn_mode: true,
                ..j
            };
            assert!(warned.allowed());
        }
    }
}
