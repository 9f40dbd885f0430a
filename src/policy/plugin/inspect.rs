//! What `gantry plugin inspect` reports about a component file: its size and hash, the hooks it
//! exports and every import with whether gantry would provide it (always, or under which grant). It compiles the component to
//! read its types but never links, instantiates or caches it.

use super::grants::capability;
use super::{is_allowed_import, parse_hook_export, PluginError, WIT_VERSION};
use crate::policy::hook::HookPoint;
use std::path::Path;
use wasmtime::component::Component;
use wasmtime::Engine;

/// What `gantry plugin inspect` shows about a component file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub size: u64,
    /// `sha256:HEX` of the file.
    pub sha256: String,
    /// The hooks it exports at this host's WIT version.
    pub hooks: Vec<HookPoint>,
    /// Every import, with whether a plugin may have it without a grant, or which grant provides it.
    pub imports: Vec<ImportInfo>,
    /// Every export name.
    pub exports: Vec<String>,
}

/// One import of a component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportInfo {
    pub name: String,
    /// The host interface: every plugin may import it.
    pub allowed: bool,
    /// The grant name that provides it (`clocks`, `random`), if any grant does.
    pub grant: Option<String>,
}

/// Compiles the component at `path` (without caching or linking) and lists what it imports and
/// exports. Works on components this host would refuse to load, so authors can see why.
pub fn inspect(path: &Path) -> Result<PluginInfo, PluginError> {
    use sha2::{Digest, Sha256};
    let file = path.to_path_buf();
    let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
        file: file.clone(),
        source,
    })?;
    let engine = Engine::default();
    let component =
        Component::new(&engine, &bytes).map_err(|source| PluginError::Compile { file, source })?;
    let ty = component.component_type();
    let imports = ty
        .imports(&engine)
        .map(|(name, _)| ImportInfo {
            name: name.to_string(),
            allowed: is_allowed_import(name),
            grant: capability(name).map(|c| c.grant.to_string()),
        })
        .collect();
    let exports: Vec<String> = ty
        .exports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let mut hooks: Vec<HookPoint> = exports
        .iter()
        .filter_map(|e| parse_hook_export(e))
        .filter(|(_, version)| *version == WIT_VERSION)
        .map(|(h, _)| h)
        .collect();
    hooks.sort();
    Ok(PluginInfo {
        size: bytes.len() as u64,
        sha256: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        hooks,
        imports,
        exports,
    })
}
