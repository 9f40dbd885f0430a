//! `gantry search [TERM] [--registry NAME] [--json]`: lists the repositories of a registry's
//! catalog (`/v2/_catalog`, every page), only those under the configured entry's path prefix and
//! containing TERM. Many registries keep their catalog to themselves (401, 403, 404 or 405):
//! that is said plainly, with `gantry tags IMAGE` as what works instead.

use super::{home, load_config, registry_host, reporter, runtime, source_failure};
use crate::exit::{ExitKind, Failure};
use crate::registry::Endpoint;
use crate::source::SourceError;

/// The `schema` of `gantry search --json`.
pub const SCHEMA: &str = "gantry.search/v1";

/// Arguments of `gantry search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Only repositories whose name contains this (case-insensitive).
    pub term: Option<String>,
    /// The registry to search: a configured registry's name or host[:port] (default: the default registry).
    #[arg(long)]
    pub registry: Option<String>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Repositories asked for per request (the registry may send fewer).
    #[arg(long, hide = true, default_value_t = crate::registry::PAGE_SIZE, value_parser = clap::value_parser!(u16).range(1..))]
    pub page_size: u16,
}

/// Runs `gantry search`; `verbose` shows retries.
pub fn run(a: SearchArgs, verbose: bool) -> Result<(), Failure> {
    let home = home()?;
    let config = load_config(&home)?.effective();
    let name = match a.registry.as_deref() {
        Some(r) => r.to_string(),
        None => match config.default_registry() {
            Some((n, _)) => n.to_string(),
            None => {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    "no default registry is configured: give --registry NAME",
                ))
            }
        },
    };
    let target = registry_host(&name, &config)?;
    let host = target.host.clone();
    let rt = runtime()?;
    let endpoint = Endpoint::for_catalog(
        &host,
        target.insecure,
        &home,
        config.network.net(),
        reporter(
            false,
            crate::report::Verbosity::from_verbose(verbose && !a.json),
        ),
    )
    .map_err(source_failure)?;
    let all = rt
        .block_on(endpoint.catalog_paged(a.page_size))
        .map_err(|e| match e {
            SourceError::Refused {
                status: status @ (401 | 403 | 404 | 405),
                ..
            } => {
                let login = if status == 401 {
                    format!(", or `gantry login {host}` if it needs credentials")
                } else {
                    String::new()
                };
                Failure::msg(
                    ExitKind::Registry,
                    format!(
                        "{host}: this registry does not offer a catalog (HTTP {status} to a request made {}); try `gantry tags IMAGE`{login}",
                        endpoint.who()
                    ),
                )
            }
            e => source_failure(e),
        })?;
    let prefix = target.prefix.join("/");
    let term = a.term.as_deref().map(str::to_lowercase);
    let found: Vec<String> = all
        .into_iter()
        .filter(|r| {
            prefix.is_empty()
                || r.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .filter(|r| term.as_deref().is_none_or(|t| r.to_lowercase().contains(t)))
        .collect();
    if a.json {
        let doc = serde_json::json!({
            "schema": SCHEMA,
            "registry": host,
            "term": a.term,
            "repositories": found,
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON serialises")
        );
        return Ok(());
    }
    for r in &found {
        crate::outln!("{host}/{r}");
    }
    if found.is_empty() {
        match &a.term {
            Some(t) => crate::errln!("no repository of {host} matches '{t}'"),
            None => crate::errln!("the catalog of {host} is empty"),
        }
    }
    Ok(())
}
