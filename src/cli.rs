//! The command line's root, and nothing else: the global flags and the list of subcommands. Each
//! subcommand's arguments are declared in `cmd/<name>.rs`, next to the code that lowers them into
//! the plain requests the rest of the program takes; no clap type goes further than `cmd`.

use crate::cmd;
use clap::{Parser, Subcommand};

/// Install command-line tools from signed OCI images, under Rego and Wasm policy.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, about, propagate_version = true)]
pub struct Cli {
    /// Show more detail (every hook verdict).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Report nothing but errors (no progress, notes or confirmations).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, each with the arguments its module in `cmd` declares.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install a tool from an image: REF is a short name, REGISTRY/name, a full reference or oci:DIR[:tag].
    Install(cmd::install::InstallArgs),
    /// Verify an image's signatures and attestations against its registry's policy, without installing.
    Verify(cmd::verify::VerifyArgs),
    /// Remove an installed tool.
    Remove(cmd::remove::RemoveArgs),
    /// Update installed tools: follow moved tags, report (or with --latest take) newer versions.
    Update(cmd::update::UpdateArgs),
    /// Copy images with their signatures, attestations and referrers into an OCI layout (air gap).
    Save(cmd::save::SaveArgs),
    /// Make an earlier kept version of a tool current again, if the current policy allows it.
    Rollback(cmd::rollback::RollbackArgs),
    /// Judge what is installed by the current policy, over the facts recorded at install.
    Audit(cmd::audit::AuditArgs),
    /// Show the tag ledger: every digest each tag was seen to name, and the moves accepted.
    Ledger(cmd::ledger::LedgerArgs),
    /// Keep a tool at its installed version: update leaves it alone.
    Pin(cmd::pin::PinArgs),
    /// Let update move a pinned tool again.
    Unpin(cmd::pin::PinArgs),
    /// List installed tools.
    List(cmd::list::ListArgs),
    /// Manage configured registries.
    #[command(subcommand)]
    Registry(cmd::registry::RegistryCommand),
    /// Build an image from a binary or directories and push it to a registry or an OCI layout.
    Publish(cmd::publish::PublishArgs),
    /// Generate a cosign-compatible encrypted key pair (password from GANTRY_PASSWORD or a prompt).
    Keygen(cmd::keygen::KeygenArgs),
    /// Evaluate, test and publish policies and plugins; pull the signed bundles the system names.
    Policy(cmd::policy::PolicyCommand),
    /// Inspect Wasm plugin components.
    Plugin(cmd::plugin::PluginCommand),
    /// Explain the recorded policy decisions for an installed package.
    Explain(cmd::explain::ExplainArgs),
    /// Manage the Sigstore trust root cache.
    Trust(cmd::trust::TrustArgs),
    /// Verify a Sigstore bundle (Sigstore conformance client protocol).
    VerifyBundle(cmd::verify_bundle::VerifyBundleArgs),
    /// Log in to a registry: check a user name and password, then store them.
    Login(cmd::login::LoginArgs),
    /// Log out of a registry: erase its stored credentials.
    Logout(cmd::logout::LogoutArgs),
    /// List a registry's repositories (its catalog), optionally only those containing TERM.
    Search(cmd::search::SearchArgs),
    /// List the tags of an image's repository.
    Tags(cmd::tags::TagsArgs),
    /// Check the home for drift (wrappers, versions, leftovers, PATH, logs) and repair what is safe.
    Doctor(cmd::doctor::DoctorArgs),
    /// Free cached layers no installed version uses and leftovers of interrupted runs.
    Gc(cmd::gc::GcArgs),
    /// Remove the gantry home and everything installed in it.
    Purge(cmd::purge::PurgeArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell.
    Completion(cmd::completion::CompletionArgs),
    /// Print the wrapper directory, or put it on PATH in your shell's rc file (setup, unset).
    Path(cmd::path::PathArgs),
}
