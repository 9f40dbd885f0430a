//! gantry: installs command-line tools from signed OCI images. The pull → verify → unpack pipeline
//! stops at named hook points where Rego policies and sandboxed Wasm plugins decide. See
//! DESIGN.md for the picture; `install` reads top to bottom like its diagram.

pub mod bundles;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod credentials;
pub mod doctor;
pub mod document;
pub mod elf;
pub mod exit;
pub mod facts;
pub mod gc;
pub mod hooks;
pub mod identity;
pub mod image;
pub mod install;
pub mod layout;
pub mod ledger;
pub mod lifecycle;
pub mod mirrors;
pub mod net;
pub mod path_setup;
pub mod policy;
pub mod publish;
pub mod purge;
pub mod reference;
pub mod registry;
pub mod registry_policy;
pub mod repo;
pub mod report;
pub mod save;
pub mod shim;
pub mod source;
pub mod store;
pub mod syslog;
pub mod trust;
pub mod unpack;
pub mod verify;
pub mod versions;
