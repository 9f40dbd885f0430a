//! `gantry ledger [REF] [--json]`: shows the tag ledger (every digest each tag was seen to name,
//! and every move a user accepted), for one reference or all of it. Lines that do not parse are
//! shown with their numbers; the command then exits 6, since the ledger is not whole.

use super::{home, load_config};
use crate::exit::{ExitKind, Failure};
use crate::ledger::{Entry, Ledger};
use crate::reference::{self, ImageLocation};

/// Arguments of `gantry ledger`.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// A reference (`host/repo:tag`, or a short name as install takes it); all when absent.
    pub reference: Option<String>,
    /// Print the entries as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gantry ledger`.
pub fn run(a: LedgerArgs) -> Result<(), Failure> {
    let home = home()?;
    let contents = Ledger::at(&home.ledger())
        .read()
        .map_err(|e| Failure::new(ExitKind::Io, e))?;
    let filter = match &a.reference {
        None => None,
        Some(r) => {
            let config = load_config(&home)?.effective();
            let (loc, _) =
                reference::parse_named(r, &config).map_err(|e| Failure::new(ExitKind::Usage, e))?;
            let ImageLocation::Registry(img) = loc else {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    "the ledger records registry tags; an OCI layout has none",
                ));
            };
            Some((
                img.host.clone(),
                img.repository.clone(),
                img.tag().map(str::to_owned),
            ))
        }
    };
    let keep = |e: &Entry| {
        let (reg, repo, tag) = match e {
            Entry::Sighting(s) => (&s.registry, &s.repository, &s.tag),
            Entry::Accepted(x) => (&x.registry, &x.repository, &x.tag),
            Entry::Agreement(x) => (&x.registry, &x.repository, &x.tag),
        };
        filter
            .as_ref()
            .is_none_or(|(r, p, t)| r == reg && p == repo && t.as_ref().is_none_or(|t| t == tag))
    };
    let entries: Vec<&Entry> = contents
        .entries
        .iter()
        .map(|(_, e)| e)
        .filter(|e| keep(e))
        .collect();
    if a.json {
        let doc = serde_json::json!({
            "schema": "gantry.ledger/v1",
            "entries": entries,
            "bad_lines": contents.bad,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for e in &entries {
            match e {
                Entry::Sighting(s) => crate::outln!(
                    "{}  seen      {}/{}:{} -> {}",
                    s.seen,
                    s.registry,
                    s.repository,
                    s.tag,
                    s.digest
                ),
                Entry::Accepted(x) => crate::outln!(
                    "{}  accepted  {}/{}:{} {} -> {} by {}",
                    x.at,
                    x.registry,
                    x.repository,
                    x.tag,
                    x.from,
                    x.to,
                    x.by
                ),
                Entry::Agreement(x) => crate::outln!(
                    "{}  agreement {}/{}:{} {} of {} needed: {}",
                    x.at,
                    x.registry,
                    x.repository,
                    x.tag,
                    x.agreed.as_deref().unwrap_or("none"),
                    x.required,
                    x.sources
                        .iter()
                        .map(|s| format!("{}={}", s.source, s.digest.as_deref().unwrap_or("-")))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            }
        }
        if entries.is_empty() {
            crate::outln!("no ledger entries");
        }
    }
    for b in &contents.bad {
        crate::errln!(
            "{}: line {} does not parse ({})",
            home.ledger().display(),
            b.line,
            b.reason
        );
    }
    if contents.bad.is_empty() {
        Ok(())
    } else {
        Err(Failure::msg(
            ExitKind::Io,
            format!(
                "{} line(s) of the ledger do not parse; they are kept as they are",
                contents.bad.len()
            ),
        ))
    }
}
