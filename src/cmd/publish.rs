//! `gantry publish SOURCES… --to DEST`: lowers its arguments into a `PublishRequest` and a target
//! (a registry tag or an OCI layout), builds the image, pushes it, and with `--key` signs it and
//! attaches the `--attest` predicates. Building and pushing belong to `crate::publish`; this
//! module resolves the destination against the configuration and prints the digest.

use super::{home, load_config, parse_platform, runtime};
use crate::exit::{Classify, ExitKind, Failure};
use crate::publish::{LayerCompression, PublishError, PublishRequest, Target};
use crate::reference::{self, ImageLocation, Version};
use crate::registry_policy::{RegistryPolicy, Transport};
use std::path::PathBuf;

/// Arguments of `gantry publish`.
#[derive(Debug, clap::Args)]
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
    pub compression: Compression,
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

/// The words of `--compression`, lowered into [`LayerCompression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl From<Compression> for LayerCompression {
    fn from(c: Compression) -> Self {
        match c {
            Compression::Gzip => LayerCompression::Gzip,
            Compression::Zstd => LayerCompression::Zstd,
            Compression::None => LayerCompression::None,
        }
    }
}

/// Runs `gantry publish`.
pub fn run(a: PublishArgs, verbosity: crate::report::Verbosity) -> Result<(), Failure> {
    let home = home()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let (mut target_loc, named) = reference::parse_named(&a.to, &config).kind(ExitKind::Usage)?;
    let target_policy = RegistryPolicy::resolve(&layered, &mut target_loc, named.as_deref(), false)
        .kind(ExitKind::Usage)?;
    let req = PublishRequest {
        labels: labels(&a.labels)?,
        sources: a.sources,
        entrypoint: a.entrypoint,
        args: a.args,
        platform: parse_platform(a.platform.as_deref())?,
        compression: a.compression.into(),
    };
    let img = crate::publish::build(&req).map_err(publish_failure)?;
    let target = match &target_loc {
        ImageLocation::Registry(r) => {
            let tag = match &r.version {
                Version::Tag(t) => t.clone(),
                Version::Digest(_) => {
                    return Err(Failure::msg(
                        ExitKind::Usage,
                        "publish to a tag, not a digest",
                    ))
                }
            };
            let registry = crate::registry::Registry::for_image(
                r,
                target_policy.transport == Transport::Http,
                &home,
            )
            .kind(ExitKind::Registry)?;
            Target::Registry { registry, tag }
        }
        ImageLocation::Layout(l) => {
            let tag = match &l.version {
                Some(Version::Tag(t)) => Some(t.clone()),
                None => None,
                Some(Version::Digest(_)) => {
                    return Err(Failure::msg(
                        ExitKind::Usage,
                        "publish to a tag, not a digest",
                    ))
                }
            };
            let layout = crate::layout::Layout::create(&l.dir).kind(ExitKind::Io)?;
            Target::Layout { layout, tag }
        }
    };
    if a.attest.len() != a.predicate_type.len() {
        return Err(Failure::msg(
            ExitKind::Usage,
            "give one --predicate-type for each --attest",
        ));
    }
    let key = match &a.key {
        Some(p) => {
            let password = super::keygen::password(false)?;
            Some(
                crate::trust::keygen::load_private_key(p, &password)
                    .map_err(|e| Failure::new(ExitKind::Usage, e))?,
            )
        }
        None => None,
    };
    let mut attestations = Vec::new();
    for (file, ptype) in a.attest.iter().zip(&a.predicate_type) {
        let uri = crate::trust::sign::predicate_type_uri(ptype)
            .map_err(|e| Failure::new(ExitKind::Usage, e))?;
        let text = std::fs::read(file)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", file.display())))?;
        let predicate: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            Failure::msg(
                ExitKind::Usage,
                format!("{}: not JSON: {e}", file.display()),
            )
        })?;
        attestations.push((uri, predicate));
    }
    let repository = match &target_loc {
        ImageLocation::Registry(r) => format!("{}/{}", r.host, r.repository),
        ImageLocation::Layout(_) => target_loc.repository(),
    };
    let rt = runtime()?;
    let digest = rt
        .block_on(crate::publish::push(&img, &target))
        .map_err(publish_failure)?;
    if let Some(key) = &key {
        let att = crate::publish::Attachments {
            key,
            repository,
            attestations,
        };
        rt.block_on(crate::publish::attach(&target, &digest, &att))
            .map_err(publish_failure)?;
        if !verbosity.quiet() {
            crate::errln!(
                "signed {digest} with key {}",
                key.public_key().fingerprint()
            );
        }
    }
    crate::outln!("{digest}");
    if !verbosity.quiet() {
        crate::errln!(
            "published {} ({} layer(s))",
            target_loc.normalized(),
            img.layers.len()
        );
    }
    Ok(())
}

/// `--label KEY=VALUE`s as pairs.
fn labels(given: &[String]) -> Result<Vec<(String, String)>, Failure> {
    given
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').ok_or_else(|| {
                Failure::msg(
                    ExitKind::Usage,
                    format!("invalid label '{l}': use KEY=VALUE"),
                )
            })?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn publish_failure(e: PublishError) -> Failure {
    let kind = match &e {
        PublishError::Usage(_) => ExitKind::Usage,
        PublishError::Io { .. } => ExitKind::Io,
        PublishError::Source(crate::source::SourceError::Io { .. }) => ExitKind::Io,
        PublishError::Source(crate::source::SourceError::Credentials(c)) => c.kind(),
        PublishError::Source(_) => ExitKind::Registry,
    };
    Failure::new(kind, e)
}
