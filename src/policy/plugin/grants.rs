//! The capabilities a registry entry may grant a plugin by name, and the import check that decides
//! what a component may link. gantry implements the few WASI interfaces it grants itself (wall and
//! monotonic clocks, random bytes) instead of pulling in a WASI runtime, so a grant can only ever
//! hand a plugin what is listed here. This module must never link an import that was not granted,
//! never link a function it does not implement (a component asking for one fails to load, naming
//! it), and never let a plugin size a host allocation beyond [`MAX_RANDOM_BYTES`].

use super::sandbox::{HostRefusal, HostState};
use super::{is_allowed_import, PluginError, WIT_PACKAGE, WIT_VERSION};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentType, Lift, Linker, Lower};
use wasmtime::Engine;

/// Every grant name a registry entry may use, and what it provides.
pub const KNOWN_GRANTS: [(&str, &str); 2] = [
    (
        "clocks",
        "wasi:clocks/wall-clock@0.2.x (now, resolution), wasi:clocks/monotonic-clock@0.2.x (now, resolution)",
    ),
    (
        "random",
        "wasi:random/random@0.2.x (get-random-bytes, get-random-u64)",
    ),
];

/// Most bytes one `get-random-bytes` call may ask for; more traps the call (and so denies).
pub const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// One WASI interface gantry implements: the grant that unlocks it and the functions it has.
#[derive(Debug)]
pub struct Capability {
    /// The interface name without its version, e.g. `wasi:clocks/wall-clock`.
    pub interface: &'static str,
    /// The grant name that unlocks it.
    pub grant: &'static str,
    functions: &'static [&'static str],
}

const CAPABILITIES: [Capability; 3] = [
    Capability {
        interface: "wasi:clocks/wall-clock",
        grant: "clocks",
        functions: &["now", "resolution"],
    },
    Capability {
        interface: "wasi:clocks/monotonic-clock",
        grant: "clocks",
        functions: &["now", "resolution"],
    },
    Capability {
        interface: "wasi:random/random",
        grant: "random",
        functions: &["get-random-bytes", "get-random-u64"],
    },
];

/// The capability an import name stands for, at any 0.2.x version (WASI 0.2 patch releases are
/// compatible, so a component built against 0.2.3 links against the same host functions).
pub fn capability(import: &str) -> Option<&'static Capability> {
    let (interface, version) = import.split_once('@')?;
    let patch = version.strip_prefix("0.2.")?;
    if patch.is_empty() || !patch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    CAPABILITIES.iter().find(|c| c.interface == interface)
}

/// Refuses a grant name gantry does not know, naming it.
pub fn check_grant_names(path: &Path, grants: &[String]) -> Result<(), PluginError> {
    match grants
        .iter()
        .find(|g| !KNOWN_GRANTS.iter().any(|(k, _)| k == g))
    {
        Some(grant) => Err(PluginError::UnknownGrant {
            file: path.to_path_buf(),
            grant: grant.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks every import of `component`: the host interface always passes; a granted capability
/// passes if gantry implements every function it asks for; anything else is refused. Returns the
/// granted imports to link, by their exact import names.
pub fn check_imports(
    engine: &Engine,
    component: &Component,
    path: &Path,
    grants: &[String],
) -> Result<Vec<(String, &'static Capability)>, PluginError> {
    check_grant_names(path, grants)?;
    let ty = component.component_type();
    let mut imports: Vec<_> = ty.imports(engine).collect();
    // Capabilities first: for a granted interface that needs something gantry lacks (a pollable
    // needs wasi:io), naming the missing function says more than naming wasi:io.
    imports.sort_by_key(|(name, _)| capability(name).is_none());
    let mut linked = Vec::new();
    for (import, item) in imports {
        if is_allowed_import(import) {
            continue;
        }
        let file = path.to_path_buf();
        let cap = capability(import);
        let Some(cap) = cap.filter(|c| grants.iter().any(|g| g == c.grant)) else {
            let hint = match cap {
                Some(c) => format!("grant \"{}\" in the registry entry allows it", c.grant),
                None => format!(
                    "no grant provides it; a plugin may import {WIT_PACKAGE}/host@{WIT_VERSION} and the granted capabilities: {}",
                    KNOWN_GRANTS.map(|(name, what)| format!("\"{name}\" = {what}")).join("; ")
                ),
            };
            return Err(PluginError::UngrantedImport {
                file,
                import: import.to_string(),
                hint,
            });
        };
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            return Err(PluginError::UnsupportedGrant {
                file,
                import: import.to_string(),
                function: "(not an interface instance)".into(),
            });
        };
        // Functions first, so a component asking for subscribe-duration is told that, rather
        // than about the pollable type it brings along.
        let mut members: Vec<_> = instance.exports(engine).collect();
        members.sort_by_key(|(_, m)| !matches!(m.ty, ComponentItem::ComponentFunc(_)));
        for (name, member) in members {
            let provided = match member.ty {
                ComponentItem::ComponentFunc(_) => cap.functions.contains(&name),
                // Plain type definitions (datetime, instant) carry no capability; a resource
                // (a pollable) would need wasi:io, which gantry does not implement.
                ComponentItem::Type(_) => true,
                _ => false,
            };
            if !provided {
                return Err(PluginError::UnsupportedGrant {
                    file,
                    import: import.to_string(),
                    function: name.to_string(),
                });
            }
        }
        linked.push((import.to_string(), cap));
    }
    Ok(linked)
}

/// WASI's `datetime` record: seconds and nanoseconds since the Unix epoch.
#[derive(ComponentType, Lift, Lower, Debug, Clone, Copy)]
#[component(record)]
pub struct Datetime {
    pub seconds: u64,
    pub nanoseconds: u32,
}

/// The start of the monotonic clock every plugin sees: the first time any plugin asks.
fn monotonic_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Defines the functions of `cap` under the exact import name the component used.
pub fn link(
    linker: &mut Linker<HostState>,
    import: &str,
    cap: &Capability,
) -> wasmtime::Result<()> {
    let mut inst = linker.root().into_instance(import)?;
    match cap.interface {
        "wasi:clocks/wall-clock" => {
            inst.func_wrap("now", |_, (): ()| {
                // A clock before 1970 is reported as the epoch rather than trapping the plugin.
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Ok((Datetime {
                    seconds: now.as_secs(),
                    nanoseconds: now.subsec_nanos(),
                },))
            })?;
            inst.func_wrap("resolution", |_, (): ()| {
                Ok((Datetime {
                    seconds: 0,
                    nanoseconds: 1,
                },))
            })?;
        }
        "wasi:clocks/monotonic-clock" => {
            inst.func_wrap("now", |_, (): ()| {
                let elapsed = monotonic_origin().elapsed().as_nanos();
                Ok((u64::try_from(elapsed).unwrap_or(u64::MAX),))
            })?;
            inst.func_wrap("resolution", |_, (): ()| Ok((1u64,)))?;
        }
        "wasi:random/random" => {
            inst.func_wrap("get-random-bytes", |_, (len,): (u64,)| {
                if len > MAX_RANDOM_BYTES {
                    return Err(wasmtime::Error::new(HostRefusal(format!(
                        "get-random-bytes asked for {len} bytes (limit {MAX_RANDOM_BYTES})"
                    ))));
                }
                let mut bytes = vec![0u8; len as usize];
                fill_random(&mut bytes)?;
                Ok((bytes,))
            })?;
            inst.func_wrap("get-random-u64", |_, (): ()| {
                let mut bytes = [0u8; 8];
                fill_random(&mut bytes)?;
                Ok((u64::from_le_bytes(bytes),))
            })?;
        }
        other => wasmtime::bail!("no host implementation of {other}"),
    }
    Ok(())
}

fn fill_random(bytes: &mut [u8]) -> wasmtime::Result<()> {
    aws_lc_rs::rand::fill(bytes).map_err(|_| {
        wasmtime::Error::new(HostRefusal(
            "the system random number generator failed".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_matches_any_0_2_patch_and_nothing_else() {
        let wall = capability("wasi:clocks/wall-clock@0.2.0").unwrap();
        assert_eq!(wall.grant, "clocks");
        assert_eq!(
            capability("wasi:random/random@0.2.7").unwrap().grant,
            "random"
        );
        for other in [
            "wasi:clocks/wall-clock@0.3.0",
            "wasi:clocks/wall-clock@0.2.",
            "wasi:clocks/wall-clock@0.2.0-rc",
            "wasi:clocks/wall-clock",
            "wasi:filesystem/types@0.2.0",
            "wasi:random/insecure@0.2.0",
        ] {
            assert!(capability(other).is_none(), "{other}");
        }
    }

    #[test]
    fn unknown_grant_names_are_refused_by_name() {
        let path = Path::new("p.wasm");
        check_grant_names(path, &["clocks".into(), "random".into()]).unwrap();
        let err = check_grant_names(path, &["clocks".into(), "network".into()]).unwrap_err();
        assert!(
            matches!(&err, PluginError::UnknownGrant { grant, .. } if grant == "network"),
            "{err:?}"
        );
        assert!(err.to_string().contains("'network'"), "{err}");
    }
}
