//! `gantry save REF… --to oci:DIR`: copies images, with their signatures, attestations and
//! referrers, into one OCI image layout for an air-gapped site (see `crate::save`). An install
//! from the layout verifies them as it would from the registry, under the layout's registry entry
//! (`url = "oci:DIR"` with the same keys or identities).

use super::{home, load_config, runtime};
use crate::exit::{ExitKind, Failure};
use crate::install::InstallError;
use crate::reference::{self, ImageLocation};
use crate::registry_policy::RegistryPolicy;
use crate::source::ManifestRef;

/// Arguments of `gantry save`.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Images to save (as install takes them: short names, REGISTRY/name, host/repo:tag).
    #[arg(required = true)]
    pub references: Vec<String>,
    /// The layout to write: `oci:DIR` (created if missing; images already there are kept).
    #[arg(long)]
    pub to: String,
}

/// Runs `gantry save`.
pub fn run(a: SaveArgs) -> Result<(), Failure> {
    let Some(dir) = a.to.strip_prefix("oci:") else {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("--to {}: give an OCI layout as oci:DIR", a.to),
        ));
    };
    let home = home()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let out = crate::layout::Layout::create(std::path::Path::new(dir))
        .map_err(|e| Failure::new(ExitKind::Io, e))?;
    let rt = runtime()?;
    for r in &a.references {
        let (mut location, named) =
            reference::parse_named(r, &config).map_err(|e| Failure::new(ExitKind::Usage, e))?;
        if matches!(location, ImageLocation::Layout(_)) {
            return Err(Failure::msg(
                ExitKind::Usage,
                format!("{r}: save copies from a registry; this is already a layout"),
            ));
        }
        let policy = RegistryPolicy::resolve(&layered, &mut location, named.as_deref(), false)
            .map_err(|e| Failure::new(ExitKind::Usage, e))?;
        let (repo, version) = crate::repo::open_with(
            &location,
            &policy,
            &home,
            config.network.net(),
            std::sync::Arc::new(crate::report::Quiet),
        )
        .map_err(|e| {
            let e = InstallError::from(e);
            Failure::new(e.kind(), e)
        })?;
        let tag = match &version {
            ManifestRef::Tag(t) => Some(t.clone()),
            ManifestRef::Digest(_) => None,
        };
        let saved = rt
            .block_on(crate::save::save(
                &repo,
                &location.normalized(),
                &version,
                tag.as_deref(),
                &out,
            ))
            .map_err(|e| {
                let e = InstallError::from(e);
                Failure::new(e.kind(), e)
            })?;
        crate::outln!(
            "saved {} {} to {}: {} manifest(s), {} blob(s), {} attachment(s)",
            location.normalized(),
            saved.digest,
            a.to,
            saved.manifests,
            saved.blobs,
            saved.attachments
        );
    }
    Ok(())
}
