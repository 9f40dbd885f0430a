//! The command line, and nothing else: clap types live here and are turned into plain requests
//! for the rest of the program by `commands`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Install command-line tools from signed OCI images, under Rego and Wasm policy.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, about, propagate_version = true)]
pub struct Cli {
    /// Show more detail (every hook verdict).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install a tool from an image: REF is a short name, REGISTRY/name, a full reference or oci:DIR[:tag].
    Install(InstallArgs),
    /// Verify an image's signatures and attestations against its registry's policy, without installing.
    Verify(VerifyArgs),
    /// Remove an installed tool.
    Remove {
        /// Package name.
        name: String,
    },
    /// List installed tools.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Manage configured registries.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Build an image from a binary or directories and push it to a registry or an OCI layout.
    Publish(PublishArgs),
    /// Generate a cosign-compatible encrypted key pair (password from GANTRY_PASSWORD or a prompt).
    Keygen(KeygenArgs),
    /// Evaluate and test Rego policies and plugins.
    Policy(crate::cmd::policy::PolicyCommand),
    /// Inspect Wasm plugin components.
    Plugin(crate::cmd::plugin::PluginCommand),
    /// Explain the recorded policy decisions for an installed package.
    Explain(crate::cmd::explain::ExplainArgs),
    /// Manage the Sigstore trust root cache.
    Trust(crate::cmd::trust::TrustArgs),
    /// Verify a Sigstore bundle (Sigstore conformance client protocol).
    VerifyBundle(crate::cmd::verify_bundle::VerifyBundleArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Image reference.
    pub reference: String,
    /// Install even though the image is not signed (refused where a signature policy exists).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Package and command name (default: last component of the repository path).
    #[arg(long)]
    pub name: Option<String>,
    /// Platform to install, OS/ARCH[/VARIANT] (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
    /// Replace a package of this name installed from another registry or repository.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Image reference.
    pub reference: String,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Judge as if --allow-unsigned were given to install.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Platform, OS/ARCH[/VARIANT] (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Add (or replace) a registry.
    Add(RegistryAddArgs),
    /// List configured registries.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a registry.
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct RegistryAddArgs {
    /// Name used to qualify references (NAME/repo:tag).
    pub name: String,
    /// host[:port][/path/prefix]
    pub url: String,
    /// Make it the registry short names expand against.
    #[arg(long)]
    pub default: bool,
    /// Speak plain HTTP to it (loopback hosts always are).
    #[arg(long)]
    pub insecure: bool,
    /// Pre-fill the signature policy: chainguard (complete), github, gitlab, google (issuer only).
    #[arg(long, value_enum)]
    pub template: Option<Template>,
    /// Expected OIDC issuer of keyless signers.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Expected signer identity (certificate SAN), exact.
    #[arg(long, conflicts_with = "identity_regex")]
    pub identity: Option<String>,
    /// Expected signer identity as a regex (always anchored ^…$).
    #[arg(long)]
    pub identity_regex: Option<String>,
    /// A PEM public key accepted as signer (repeatable).
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
    /// A Sigstore trusted_root.json for a private Sigstore.
    #[arg(long)]
    pub trusted_root: Option<PathBuf>,
    /// Denials are reported but do not stop installs.
    #[arg(long)]
    pub warn_only: bool,
    /// Also require each signature's signed docker-reference to name the image: same repository, or exact reference.
    #[arg(long, value_enum)]
    pub match_reference: Option<crate::config::ReferenceMatch>,
}

/// Identity templates for well-known signers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    Chainguard,
    Github,
    Gitlab,
    Google,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A binary (installed as /usr/local/bin/NAME) or directories (one layer each, at the image root).
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// Destination: a registry reference or oci:DIR[:tag].
    #[arg(long)]
    pub to: String,
    /// Entrypoint path inside the image (default for a binary: /usr/local/bin/NAME).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Argument baked in after the entrypoint (repeatable).
    #[arg(long = "arg", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Image label KEY=VALUE (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Platform of the image, OS/ARCH[/VARIANT] (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: crate::publish::LayerCompression,
    /// Sign the pushed image with this cosign private key (password from GANTRY_PASSWORD or a prompt).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Attach a DSSE attestation of this predicate file (repeatable; needs --key and one --predicate-type each).
    #[arg(long = "attest", requires = "key")]
    pub attest: Vec<PathBuf>,
    /// Predicate type of each --attest: slsaprovenance1, slsaprovenance, spdx, cyclonedx, vuln, or a URI.
    #[arg(long = "predicate-type")]
    pub predicate_type: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (encrypted, mode 0600) and PREFIX.pub.
    #[arg(long, default_value = "cosign")]
    pub output_key_prefix: PathBuf,
}
