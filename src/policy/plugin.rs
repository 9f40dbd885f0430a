//! The Wasm plugin host: loads WebAssembly components built against the WIT package in `wit/`,
//! checks what they import and export, and calls their hook exports in a sandbox. Each load
//! compiles a component once (or takes it from the on-disk cache) and pre-links it; each call runs
//! in a fresh store with a memory cap, a fuel budget and a wall-clock deadline. Whatever a plugin
//! does (loop, allocate without end, trap, return garbage) comes back as a deny with the reason.
//! This module must never let a plugin's failure become an allow, never give a plugin a capability
//! beyond logging, its own configuration and what its registry entry grants by name (see
//! [`grants`]), and never print: log lines are returned as data.

mod cache;
mod convert;
pub use convert::HookInput;
mod grants;
mod inspect;
mod sandbox;

use crate::policy::hook::{HookPoint, Verdict};
use sandbox::{HostState, RawVerdict};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, Store};

pub use grants::{KNOWN_GRANTS, MAX_RANDOM_BYTES};
pub use inspect::{inspect, ImportInfo, PluginInfo};
pub use sandbox::{LogLevel, LogLine};

/// Generated from `wit/`: the host interface gantry implements and the typed hook records.
mod bindings {
    wasmtime::component::bindgen!({ path: "wit", world: "gantry:policy/plugin" });
}

/// The WIT package every plugin is built against; exports and imports are matched on it.
pub const WIT_PACKAGE: &str = "gantry:policy";
/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.0";
/// The only interfaces a plugin may import (the types interface carries no functions).
const ALLOWED_IMPORTS: [&str; 2] = ["host", "types"];

/// Why a plugin could not be loaded, or the runtime could not start. Calls never fail: they deny.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot start the Wasm engine")]
    Engine(#[source] wasmtime::Error),
    #[error("cannot read plugin {file}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin {file} is not a valid WebAssembly component")]
    Compile {
        file: PathBuf,
        #[source]
        source: wasmtime::Error,
    },
    #[error("plugin {file} imports '{import}', which was not granted ({hint})")]
    UngrantedImport {
        file: PathBuf,
        import: String,
        /// Which grant would allow it, or that none would.
        hint: String,
    },
    #[error("plugin {file} imports '{function}' of '{import}': the interface is granted, but gantry does not provide that function")]
    UnsupportedGrant {
        file: PathBuf,
        import: String,
        function: String,
    },
    #[error("plugin {file}: unknown grant '{grant}' in its configuration (known grants: clocks, random)")]
    UnknownGrant { file: PathBuf, grant: String },
    #[error("plugin {file} exports '{export}', built for another version of {WIT_PACKAGE} (this gantry speaks @{WIT_VERSION})")]
    IncompatibleExport { file: PathBuf, export: String },
    #[error("plugin {file} exports no hook interface of {WIT_PACKAGE}@{WIT_VERSION} (resolve, manifest, signatures, attestations, contents, install)")]
    NoHooks { file: PathBuf },
    #[error("plugin {file}: export '{hook}' does not have the type of {WIT_PACKAGE}/{hook}@{WIT_VERSION}")]
    BadExport {
        file: PathBuf,
        hook: HookPoint,
        #[source]
        source: wasmtime::Error,
    },
    #[error("plugin {file} cannot be linked against the host")]
    Link {
        file: PathBuf,
        #[source]
        source: wasmtime::Error,
    },
    #[error("the configuration of plugin {file} cannot be encoded as JSON")]
    Config {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Per-call sandbox limits. The defaults keep every call well under 200 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Largest linear memory a call may grow to, in bytes.
    pub memory_bytes: usize,
    /// Fuel (roughly, Wasm instructions) a call may burn.
    pub fuel: u64,
    /// Wall-clock time a call may take, enforced by epoch interruption.
    pub deadline: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 64 << 20,
            fuel: 100_000_000,
            deadline: Duration::from_millis(100),
        }
    }
}

/// How often the epoch ticker advances the engine's clock; the deadline is counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// One Wasm engine (compiler settings, code cache, epoch clock) shared by all plugins of a run.
pub struct PluginRuntime {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    limits: PluginLimits,
}

impl PluginRuntime {
    /// Starts an engine with default limits; compiled components are cached in `cache_dir`.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, PluginError> {
        Self::with_limits(cache_dir, PluginLimits::default())
    }

    /// Starts an engine with explicit sandbox limits.
    pub fn with_limits(
        cache_dir: Option<&Path>,
        limits: PluginLimits,
    ) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&config).map_err(PluginError::Engine)?;
        spawn_epoch_ticker(&engine);
        // Fail at start rather than at the first load if the host interface cannot be linked.
        host_linker(&engine).map_err(PluginError::Engine)?;
        Ok(PluginRuntime {
            engine,
            cache_dir: cache_dir.map(Path::to_path_buf),
            limits,
        })
    }

    /// Loads the component at `path` (binary or WAT) under `name`: compiles it (or reuses the
    /// checked cache entry), refuses imports outside the host interface unless `grants` names the
    /// capability (and refuses unknown grant names), finds the hook interfaces it exports and
    /// checks their types. The component is linked against the host interface and exactly the
    /// granted capabilities it imports.
    pub fn load(
        &self,
        path: &Path,
        name: &str,
        config: &serde_json::Value,
        grants: &[String],
    ) -> Result<Plugin, PluginError> {
        self.load_cached_in(path, name, config, grants, self.cache_dir.as_deref())
    }

    /// [`PluginRuntime::load`] with the compiled code cached in `cache_dir` (`None`: compiled in
    /// memory), whatever this runtime's own cache directory is.
    pub fn load_cached_in(
        &self,
        path: &Path,
        name: &str,
        config: &serde_json::Value,
        grants: &[String],
        cache_dir: Option<&Path>,
    ) -> Result<Plugin, PluginError> {
        let file = path.to_path_buf();
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            file: file.clone(),
            source,
        })?;
        let component = cache::compile(&self.engine, &bytes, cache_dir).map_err(|source| {
            PluginError::Compile {
                file: file.clone(),
                source,
            }
        })?;
        let granted = grants::check_imports(&self.engine, &component, path, grants)?;
        let hooks = find_exports(&self.engine, &component, path)?;
        let link_error = |source| PluginError::Link {
            file: file.clone(),
            source,
        };
        let mut linker = host_linker(&self.engine).map_err(link_error)?;
        for (import, cap) in &granted {
            grants::link(&mut linker, import, cap).map_err(link_error)?;
        }
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let config = serde_json::to_string(config).map_err(|source| PluginError::Config {
            file: file.clone(),
            source,
        })?;
        let plugin = Plugin {
            name: name.to_string(),
            file,
            pre,
            exports: hooks.iter().map(|(h, _)| *h).collect(),
            indices: hooks,
            config: Arc::from(config),
            engine: self.engine.clone(),
            limits: self.limits,
        };
        plugin.typecheck_exports()?;
        Ok(plugin)
    }
}

/// A linker holding only the host interface (`log`, `config`); grants are added per plugin.
fn host_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    bindings::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Advances the engine's epoch once per [`EPOCH_TICK`] of wall-clock time for as long as the
/// engine lives, so a call's deadline is wall-clock time even when the plugin spins inside host
/// calls. A ticker woken late (a loaded machine) catches up on the ticks it missed rather than
/// stretching the deadline.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("gantry-plugin-epoch".into())
        .spawn(move || {
            let start = std::time::Instant::now();
            let mut ticks: u128 = 0;
            loop {
                std::thread::sleep(EPOCH_TICK);
                let Some(engine) = weak.upgrade() else { return };
                let due = start.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
                while ticks < due {
                    engine.increment_epoch();
                    ticks += 1;
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}

/// A loaded plugin: pre-linked once, instantiated afresh for every call.
pub struct Plugin {
    name: String,
    file: PathBuf,
    pre: InstancePre<HostState>,
    exports: Vec<HookPoint>,
    indices: Vec<(HookPoint, ComponentExportIndex)>,
    config: Arc<str>,
    engine: Engine,
    limits: PluginLimits,
}

impl Plugin {
    /// The name the plugin was configured under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hooks this plugin exports, in pipeline order.
    pub fn exports(&self) -> &[HookPoint] {
        &self.exports
    }

    /// Runs the plugin's export for `hook` on a hand-written JSON input document (`gantry policy
    /// eval`, tests). A hook the plugin does not export yields an empty verdict; any failure
    /// yields a deny saying what went wrong.
    pub fn call(&self, hook: HookPoint, input: &serde_json::Value) -> Verdict {
        self.call_logged(hook, input).0
    }

    /// As [`Plugin::call`], also returning the lines the plugin logged during the call.
    pub fn call_logged(
        &self,
        hook: HookPoint,
        input: &serde_json::Value,
    ) -> (Verdict, Vec<LogLine>) {
        if self.index(hook).is_none() {
            return (Verdict::default(), Vec::new());
        }
        match convert::HookInput::from_json(hook, input) {
            Ok(input) => self.check_logged(&input),
            Err(e) => (malformed(&self.name, hook, &e), Vec::new()),
        }
    }

    /// Runs the plugin's export for the hook of `input` (the typed record the engine made once
    /// for every plugin of the hook).
    pub fn check(&self, input: &convert::HookInput) -> Verdict {
        self.check_logged(input).0
    }

    /// As [`Plugin::check`], also returning the lines the plugin logged during the call.
    pub fn check_logged(&self, input: &convert::HookInput) -> (Verdict, Vec<LogLine>) {
        let hook = input.hook();
        let source = format!("plugin {} export {}", self.name, hook);
        let mut verdict = Verdict::default();
        let Some(index) = self.index(hook) else {
            return (verdict, Vec::new());
        };
        let mut store = self.new_store();
        let outcome = self.invoke(&mut store, index, input);
        let state = store.into_data();
        match outcome {
            Ok(raw) => {
                raw.deny
                    .0
                    .into_iter()
                    .for_each(|m| verdict.deny(&source, m.0));
                raw.warn
                    .0
                    .into_iter()
                    .for_each(|m| verdict.warn(&source, m.0));
            }
            Err(e) => verdict.deny(&source, sandbox::failure_reason(&e, &state, &self.limits)),
        }
        (verdict, state.logs)
    }

    fn index(&self, hook: HookPoint) -> Option<&ComponentExportIndex> {
        self.indices
            .iter()
            .find(|(h, _)| *h == hook)
            .map(|(_, i)| i)
    }

    fn new_store(&self) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState::new(self.config.clone(), self.limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        // Fuel and the epoch deadline are both set on a fresh store: neither can fail here.
        store
            .set_fuel(self.limits.fuel)
            .expect("fuel is enabled on this engine");
        let ticks = (self.limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    fn invoke(
        &self,
        store: &mut Store<HostState>,
        index: &ComponentExportIndex,
        input: &convert::HookInput,
    ) -> wasmtime::Result<RawVerdict> {
        let instance = self.pre.instantiate(&mut *store)?;
        input.call(store, &instance, index)
    }

    /// Looks every export up as a typed function once, so a plugin whose `check` has the wrong
    /// signature fails at load rather than at each call.
    fn typecheck_exports(&self) -> Result<(), PluginError> {
        let mut store = self.new_store();
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|source| PluginError::Link {
                file: self.file.clone(),
                source,
            })?;
        for (hook, index) in &self.indices {
            convert::HookInput::typecheck(*hook, &mut store, &instance, index).map_err(
                |source| PluginError::BadExport {
                    file: self.file.clone(),
                    hook: *hook,
                    source,
                },
            )?;
        }
        Ok(())
    }
}

/// The deny of a plugin whose input document lacks a fact its hook promises.
pub(crate) fn malformed(plugin: &str, hook: HookPoint, why: &str) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.deny(
        format!("plugin {plugin} export {hook}"),
        format!("input document for hook {hook} is malformed: {why}"),
    );
    verdict
}

fn is_allowed_import(name: &str) -> bool {
    ALLOWED_IMPORTS
        .iter()
        .any(|iface| name == format!("{WIT_PACKAGE}/{iface}@{WIT_VERSION}"))
}

/// The hook interface a component export name stands for, if it is one of ours at any version.
fn parse_hook_export(name: &str) -> Option<(HookPoint, &str)> {
    let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
    let (iface, version) = rest.split_once('@')?;
    Some((iface.parse().ok()?, version))
}

/// The hook interfaces a component exports, with the index of each one's `check` function.
fn find_exports(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<Vec<(HookPoint, ComponentExportIndex)>, PluginError> {
    let mut hooks = Vec::new();
    for (export, _) in component.component_type().exports(engine) {
        let Some((hook, version)) = parse_hook_export(export) else {
            continue;
        };
        if version != WIT_VERSION {
            return Err(PluginError::IncompatibleExport {
                file: path.to_path_buf(),
                export: export.to_string(),
            });
        }
        let check = component
            .get_export_index(None, export)
            .and_then(|iface| component.get_export_index(Some(&iface), "check"))
            .ok_or_else(|| PluginError::BadExport {
                file: path.to_path_buf(),
                hook,
                source: wasmtime::format_err!("interface has no 'check' function"),
            })?;
        hooks.push((hook, check));
    }
    if hooks.is_empty() {
        return Err(PluginError::NoHooks {
            file: path.to_path_buf(),
        });
    }
    hooks.sort_by_key(|(h, _)| *h);
    Ok(hooks)
}

#[cfg(test)]
mod tests;
