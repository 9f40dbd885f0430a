//! The integration tests: one test binary (`cargo test --test it`), a module per topic, and one
//! shared harness. Every topic runs in this one process, in parallel with the others, so the
//! harness keeps no per-process state that a test could see change under it: each test makes its
//! own temp home, and its own registry where it needs one.
//!
//! Exit codes are asserted through [`gantry::exit::ExitKind`], the type the binary classifies its
//! failures with, never as bare numbers.

mod harness;

mod airgap;
mod atomic;
mod boundary;
mod bundles;
mod care;
mod cli;
mod conformance;
mod crash;
mod faults;
mod hostile;
mod install;
mod lifecycle;
mod login;
mod mirrors;
mod policy;
mod policy_bundles;
mod proxy;
mod quorum;
mod rough_edges;
mod signed;
mod syslog;
