//! `gantry tags IMAGE [--json]`: lists the tags of an image's repository, every page of them, in
//! the registry's order. IMAGE is a reference as `install` takes it (short name, REGISTRY/name,
//! host/repository); a tag or digest in it is ignored. It reaches the registry the way its
//! governing entry says (plain HTTP or not), with the credentials found for the host.

use super::{home, load_config, reporter, runtime, source_failure};
use crate::exit::{Classify, ExitKind, Failure};
use crate::reference::ImageLocation;
use crate::registry::Registry;
use crate::registry_policy::{RegistryPolicy, Transport};
use crate::source::SourceError;

/// The `schema` of `gantry tags --json`.
pub const SCHEMA: &str = "gantry.tags/v1";

/// Arguments of `gantry tags`.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {
    /// Image reference: a short name, REGISTRY/name or host[:port]/repository.
    pub image: String,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Tags asked for per request (the registry may send fewer).
    #[arg(long, hide = true, default_value_t = crate::registry::PAGE_SIZE, value_parser = clap::value_parser!(u16).range(1..))]
    pub page_size: u16,
}

/// Runs `gantry tags`; `verbose` shows retries.
pub fn run(a: TagsArgs, verbose: bool) -> Result<(), Failure> {
    let home = home()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let (mut location, named) =
        crate::reference::parse_named(&a.image, &config).kind(ExitKind::Usage)?;
    let policy = RegistryPolicy::resolve(&layered, &mut location, named.as_deref(), false)
        .kind(ExitKind::Usage)?;
    let ImageLocation::Registry(image) = &location else {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("{location} is an OCI layout, not a registry repository: it has no tag list to fetch"),
        ));
    };
    let repository = format!("{}/{}", image.host, image.repository);
    let rt = runtime()?;
    let tags = rt.block_on(async {
        let registry = Registry::with_network(
            &image.host,
            &image.repository,
            policy.transport == Transport::Http,
            &home,
            config.network.net(),
            reporter(
                false,
                crate::report::Verbosity::from_verbose(verbose && !a.json),
            ),
        )?;
        registry.tags_paged(a.page_size).await
    });
    let tags = tags.map_err(|e| match e {
        SourceError::Refused { status: 404, .. } => Failure::msg(
            ExitKind::Registry,
            format!("{repository}: no such repository (the registry answered 404)"),
        ),
        e => source_failure(e),
    })?;
    if a.json {
        let doc = serde_json::json!({
            "schema": SCHEMA,
            "repository": repository,
            "tags": tags,
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON serialises")
        );
    } else {
        for t in &tags {
            crate::outln!("{t}");
        }
        if tags.is_empty() {
            crate::errln!("{repository} has no tags");
        }
    }
    Ok(())
}
