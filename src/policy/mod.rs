//! The policy engine: hook points and verdicts ([`hook`]), Rego policies on regorus ([`rego`]), their
//! input ([`rego_input`]) and time budget ([`rego_budget`]),
//! the hooks each policy can speak at ([`hook_index`]), sandboxed Wasm component plugins
//! ([`plugin`]), their combination for one run ([`engine`]), the policy test runner ([`testing`])
//! and the hash-chained decision log ([`decisions`]). The core gathers facts; this module judges
//! them and never touches the network or the store.

pub mod decisions;
pub mod engine;
pub mod hook;
pub mod hook_index;
pub mod plugin;
pub mod rego;
pub mod rego_budget;
pub mod rego_input;
pub mod testing;

pub use engine::{Engine, Layer, PluginSpec, PolicyError, PolicySpec, SignatureConfig};
pub use hook::{HookPoint, Message, Verdict};
