//! `gantry update [NAME…] [--check] [--all] [--yes] [--latest | --to TAG] [--json]`. For each
//! installed package it finds drift (the installed tag now names another digest) and newer tags
//! in the same repository (`crate::versions`). By default it applies drift and only reports newer
//! tags; `--latest` moves to the newest, `--to` to a chosen tag. An update is an install of the
//! new digest, through the whole pipeline and every hook, that accepts the tag's move and records
//! it in the ledger. `--check` only reports: exit 0 when there is nothing to do, 10 when there is;
//! without a terminal and without `--yes` it reports and exits 10 too.

use super::{home, load_config, open_repo, prepare, reporter, runtime, Wanted};
use crate::config::Config;
use crate::exit::{Classify, ExitKind, Failure};
use crate::install::Outcome;
use crate::reference::{self, ImageLocation};
use crate::repo::Repo;
use crate::source::ManifestRef;
use crate::store::{PackageMetadata, Store};
use serde::Serialize;
use std::io::IsTerminal;

/// How long a repository's tag list is reused.
const TAG_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Arguments of `gantry update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Packages to update (default: every installed one).
    pub names: Vec<String>,
    /// Only report what would change: exit 0 when nothing would, 10 when something would.
    #[arg(long)]
    pub check: bool,
    /// Every installed package (the default when no NAME is given).
    #[arg(long)]
    pub all: bool,
    /// Apply without asking.
    #[arg(long, short)]
    pub yes: bool,
    /// Move to the newest version tag of the repository, not only follow the installed tag.
    #[arg(long, conflicts_with = "to")]
    pub latest: bool,
    /// Move to this tag (one package only).
    #[arg(long)]
    pub to: Option<String>,
    /// Accept a change of signer where the registry enforces signer continuity.
    #[arg(long)]
    pub accept_signer_change: bool,
    /// Print the plan and the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// What `update` found for one package, and what it did.
#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    reference: String,
    installed: String,
    /// `up-to-date`, `drift`, `newer`, `pinned`, `no-tag`, `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    /// The digest the installed tag names now.
    #[serde(skip_serializing_if = "Option::is_none")]
    tag_now: Option<String>,
    /// Newer version tags, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    newer: Vec<String>,
    /// Where the update goes: tag and digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// `updated`, `skipped`, `denied`, `failed` once applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Entry {
    fn pending(&self) -> bool {
        self.target.as_ref().is_some_and(|t| *t != self.installed)
    }

    fn has_news(&self) -> bool {
        self.pending() || !self.newer.is_empty()
    }
}

/// Runs `gantry update`.
pub fn run(a: UpdateArgs, verbosity: crate::report::Verbosity) -> Result<(), Failure> {
    let verbose = verbosity.verbose();
    if a.to.is_some() && a.names.len() != 1 {
        return Err(Failure::msg(
            ExitKind::Usage,
            "--to TAG names one package: gantry update NAME --to TAG",
        ));
    }
    let home = home()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let installed = store.list().kind(ExitKind::Io)?;
    let chosen: Vec<&PackageMetadata> = if a.names.is_empty() || a.all {
        installed.iter().collect()
    } else {
        let mut out = Vec::new();
        for n in &a.names {
            let Some(m) = installed.iter().find(|m| &m.name == n) else {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    format!("package '{n}' is not installed"),
                ));
            };
            out.push(m);
        }
        out
    };
    let rt = runtime()?;
    let mut entries = Vec::new();
    for meta in chosen {
        let e = if store.is_pinned(&meta.name) {
            entry(meta, "pinned")
        } else {
            rt.block_on(plan(&config, meta, &a, verbose))
        };
        entries.push(e);
    }
    if !a.json {
        for e in &entries {
            describe(e);
        }
    }
    let pending = entries.iter().filter(|e| e.pending()).count();
    let news = entries.iter().any(Entry::has_news);
    let asks = !a.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if a.check || (pending > 0 && !a.yes && !asks) {
        if a.json {
            print_json(&entries);
        } else if !a.check && pending > 0 {
            crate::errln!("{pending} update(s) to apply: run again with --yes to apply them");
        }
        return if news || entries.iter().any(|e| e.status == "failed") {
            Err(Failure::msg(
                ExitKind::Pending,
                if news {
                    "updates are available"
                } else {
                    "some packages could not be checked"
                },
            ))
        } else {
            Ok(())
        };
    }
    let mut first_failure: Option<Failure> = None;
    for e in entries.iter_mut().filter(|e| e.pending()) {
        if asks && !confirm(e) {
            e.outcome = Some("skipped".into());
            continue;
        }
        match apply(e, &a, verbosity) {
            Ok(()) => e.outcome = Some("updated".into()),
            Err(f) => {
                e.outcome = Some(
                    if f.kind == ExitKind::Denied {
                        "denied"
                    } else {
                        "failed"
                    }
                    .into(),
                );
                e.error = Some(f.to_string());
                crate::errln!(
                    "error: {}: {f}; the installed version keeps running",
                    e.name
                );
                first_failure.get_or_insert(f);
            }
        }
    }
    if a.json {
        print_json(&entries);
    }
    match first_failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

fn entry(meta: &PackageMetadata, status: &'static str) -> Entry {
    Entry {
        name: meta.name.clone(),
        reference: meta.reference.clone(),
        installed: meta.digest.clone(),
        status,
        tag: None,
        tag_now: None,
        newer: Vec::new(),
        target_tag: None,
        target: None,
        outcome: None,
        error: None,
    }
}

/// Finds drift and newer tags for one package (nothing is installed here).
async fn plan(config: &Config, meta: &PackageMetadata, a: &UpdateArgs, verbose: bool) -> Entry {
    let mut e = entry(meta, "up-to-date");
    let fail = |mut e: Entry, why: String| {
        e.status = "failed";
        e.error = Some(why);
        e
    };
    let (location, _) = match reference::parse_named(&meta.reference, config) {
        Ok(x) => x,
        Err(err) => return fail(e, err.to_string()),
    };
    let Some(tag) = location.tag() else {
        e.status = "no-tag";
        return e;
    };
    e.tag = Some(tag.clone());
    let p = match prepare(Wanted {
        reference: &meta.reference,
        name: Some(meta.name.clone()),
        platform: Some(&platform_text(&meta.platform)),
        allow_unsigned: meta.allow_unsigned,
        replace: false,
        policy_from: None,
    }) {
        Ok(p) => p,
        Err(f) => return fail(e, f.to_string()),
    };
    let quiet: std::sync::Arc<dyn crate::report::Reporter> = if verbose {
        reporter(false, crate::report::Verbosity::Verbose)
    } else {
        std::sync::Arc::new(crate::report::Quiet)
    };
    let (repo, _) = match open_repo(&p, quiet) {
        Ok(x) => x,
        Err(f) => return fail(e, f.to_string()),
    };
    let resolve = |t: String| {
        let repo = &repo;
        let platform = meta.platform.clone();
        let what = format!("{}:{t}", location.normalized());
        async move {
            crate::image::resolve(repo, &what, &ManifestRef::Tag(t), &platform)
                .await
                .map(|r| r.digest)
        }
    };
    let now = match resolve(tag.clone()).await {
        Ok(d) => d,
        Err(err) => return fail(e, err.to_string()),
    };
    e.tag_now = Some(now.clone());
    if let (Repo::Registry(r), ImageLocation::Registry(_)) = (&repo, &location) {
        match r.tags_cached(&p.home.tag_cache(), TAG_CACHE_TTL).await {
            Ok(tags) => {
                e.newer = crate::versions::newer(&tag, &tags)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }
            Err(err) => return fail(e, err.to_string()),
        }
    }
    let target_tag = match (&a.to, a.latest) {
        (Some(t), _) => t.clone(),
        (None, true) => e.newer.first().cloned().unwrap_or_else(|| tag.clone()),
        (None, false) => tag.clone(),
    };
    let target = if target_tag == tag {
        now.clone()
    } else {
        match resolve(target_tag.clone()).await {
            Ok(d) => d,
            Err(err) => return fail(e, err.to_string()),
        }
    };
    e.status = if now != meta.digest {
        "drift"
    } else if !e.newer.is_empty() {
        "newer"
    } else {
        "up-to-date"
    };
    e.target_tag = Some(target_tag);
    e.target = Some(target);
    e
}

/// `os/arch[/variant]`, as `--platform` takes it.
fn platform_text(p: &crate::facts::Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The reference of `e`'s repository at its target tag.
fn target_reference(e: &Entry) -> String {
    let base = match e
        .tag
        .as_deref()
        .and_then(|t| e.reference.strip_suffix(&format!(":{t}")))
    {
        Some(b) => b.to_string(),
        None => e.reference.clone(),
    };
    format!("{base}:{}", e.target_tag.as_deref().unwrap_or("latest"))
}

fn describe(e: &Entry) {
    let short = |d: &str| d.chars().take(19).collect::<String>();
    match e.status {
        "pinned" => crate::outln!("{}: pinned at {}; skipped", e.name, short(&e.installed)),
        "no-tag" => crate::outln!(
            "{}: installed by digest ({}); no tag to follow",
            e.name,
            e.reference
        ),
        "failed" => crate::outln!(
            "{}: cannot check: {}",
            e.name,
            e.error.as_deref().unwrap_or("unknown error")
        ),
        _ => {
            let tag = e.tag.as_deref().unwrap_or("?");
            if let Some(now) = e.tag_now.as_deref().filter(|n| *n != e.installed) {
                crate::outln!(
                    "{}: tag {tag} moved: {} -> {}",
                    e.name,
                    short(&e.installed),
                    short(now)
                );
            }
            if !e.newer.is_empty() {
                let moving = e.target_tag.as_deref() != Some(tag);
                crate::outln!(
                    "{}: newer tags: {}{}",
                    e.name,
                    e.newer.join(", "),
                    if moving {
                        String::new()
                    } else {
                        format!(" (staying on {tag}; --latest moves to {})", e.newer[0])
                    }
                );
            }
            if let (Some(t), Some(d)) = (&e.target_tag, &e.target) {
                if e.pending() {
                    crate::outln!("{}: would update to {t} ({})", e.name, short(d));
                } else if e.newer.is_empty() {
                    crate::outln!("{}: up to date ({tag} at {})", e.name, short(&e.installed));
                }
            }
        }
    }
}

fn print_json(entries: &[Entry]) {
    let doc = serde_json::json!({"schema": "gantry.update/v1", "packages": entries});
    crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn confirm(e: &Entry) -> bool {
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "update {} to {} ({})? [y/N] ",
            e.name,
            e.target_tag.as_deref().unwrap_or("?"),
            e.target.as_deref().unwrap_or("?")
        );
        let _ = err.flush();
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

/// Installs the target of `e` through the whole pipeline, accepting the tag's move.
fn apply(e: &Entry, a: &UpdateArgs, verbosity: crate::report::Verbosity) -> Result<(), Failure> {
    let reference = target_reference(e);
    let store_home = home()?;
    let installed_meta = Store::open(&store_home)
        .kind(ExitKind::Io)?
        .current_metadata(&e.name)
        .kind(ExitKind::Io)?;
    let mut p = prepare(Wanted {
        reference: &reference,
        name: Some(e.name.clone()),
        platform: Some(&platform_text(&installed_meta.platform)),
        allow_unsigned: installed_meta.allow_unsigned,
        replace: false,
        policy_from: None,
    })?;
    p.req.accept_move = true;
    p.req.accept_signer_change = a.accept_signer_change;
    p.req.action = Some("update");
    let store = Store::open(&p.home).kind(ExitKind::Io)?;
    let outcome = super::install_prepared(&p, &super::load_hooks(&p)?, &store, verbosity, false)?;
    match outcome {
        Outcome::Installed {
            name,
            digest,
            previous,
        } => crate::outln!(
            "updated {name} to {reference} {digest}{}",
            previous.map(|p| format!(" (was {p})")).unwrap_or_default()
        ),
        Outcome::AlreadyInstalled { name, digest } => {
            crate::outln!("{name} is already at {digest}")
        }
    }
    Ok(())
}
