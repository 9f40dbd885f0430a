//! gantry plugin `github-identity`: an identity template for images built by GitHub Actions.
//!
//! From the image repository `ghcr.io/OWNER/REPO` it derives the only signer it accepts: a
//! verified keyless signature whose issuer is GitHub's OIDC issuer and whose certificate subject
//! starts with `https://github.com/OWNER/REPO/` (anchored at the start, owner and repo compared
//! case-insensitively as GitHub does). Without such a signature the `signatures` hook denies.
//!
//! Config (JSON, every key optional):
//! - `issuer`: expected OIDC issuer (default `https://token.actions.githubusercontent.com`);
//! - `hosts`: registry hosts whose paths are `OWNER/REPO` (default `["ghcr.io"]`);
//! - `repository`: `OWNER/REPO` to expect instead of the one derived from the image;
//! - `workflows`: allowed workflow files, e.g. `["release.yml"]` (default: any);
//! - `refs`: allowed ref prefixes, e.g. `["refs/tags/"]` (default: any).

use serde::Deserialize;

wit_bindgen::generate!({ path: "../../wit", world: "gantry:policy/signatures-plugin" });

use exports::gantry::policy::signatures::{Guest, SignaturesInput, Verdict};
use gantry::policy::host::{config, log, Level};
use gantry::policy::types::{Signature, SignatureKind};

const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    issuer: Option<String>,
    hosts: Option<Vec<String>>,
    repository: Option<String>,
    workflows: Vec<String>,
    refs: Vec<String>,
}

struct Plugin;

impl Guest for Plugin {
    fn check(input: SignaturesInput) -> Verdict {
        let mut verdict = Verdict {
            deny: Vec::new(),
            warn: Vec::new(),
        };
        let config: Config = match serde_json::from_str(&config()) {
            Ok(c) => c,
            Err(e) => {
                verdict
                    .deny
                    .push(format!("github-identity: invalid plugin config: {e}"));
                return verdict;
            }
        };
        let repository = match expected_repository(&config, image_name(&input.image.reference)) {
            Ok(r) => r,
            Err(reason) => {
                verdict.deny.push(reason);
                return verdict;
            }
        };
        let issuer = config.issuer.as_deref().unwrap_or(GITHUB_ISSUER);
        let prefix = format!("https://github.com/{repository}/");
        if input
            .signatures
            .iter()
            .any(|s| matches(s, issuer, &prefix, &repository, &config))
        {
            log(
                Level::Debug,
                &format!("signed by a workflow of {repository}"),
            );
            return verdict;
        }
        let seen: Vec<String> = input.signatures.iter().map(describe).collect();
        let seen = if seen.is_empty() {
            "no signatures".to_string()
        } else {
            seen.join("; ")
        };
        verdict.deny.push(format!(
            "{} is not signed by a GitHub Actions workflow of {repository} (expected issuer {issuer} and subject ^{prefix}{}{}); found: {seen}",
            input.image.reference,
            if config.workflows.is_empty() { String::new() } else { format!(" workflow one of {:?}", config.workflows) },
            if config.refs.is_empty() { String::new() } else { format!(" ref starting with one of {:?}", config.refs) },
        ));
        verdict
    }
}

/// `host/path` of a reference: without its `@digest` and its `:tag` (a port's colon is
/// followed by a `/`, a tag's is not).
fn image_name(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// `OWNER/REPO`: from the config, or the first two path segments of an image on a GitHub host.
fn expected_repository(config: &Config, image_repository: &str) -> Result<String, String> {
    if let Some(repo) = &config.repository {
        return match repo.split('/').collect::<Vec<_>>()[..] {
            [owner, name] if !owner.is_empty() && !name.is_empty() => Ok(repo.clone()),
            _ => Err(format!(
                "github-identity: config repository '{repo}' is not OWNER/REPO"
            )),
        };
    }
    let default_hosts = ["ghcr.io".to_string()];
    let hosts = config.hosts.as_deref().unwrap_or(&default_hosts);
    let (host, path) = image_repository
        .split_once('/')
        .unwrap_or((image_repository, ""));
    if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "github-identity: cannot derive a GitHub repository from {image_repository} (host {host} is not one of {hosts:?}); set `repository` in the plugin config"
        ));
    }
    let mut segments = path.split('/');
    match (segments.next(), segments.next()) {
        (Some(owner), Some(name)) if !owner.is_empty() && !name.is_empty() => {
            Ok(format!("{owner}/{name}"))
        }
        _ => Err(format!(
            "github-identity: {image_repository} is not {host}/OWNER/REPO"
        )),
    }
}

/// A verified keyless signature by the expected issuer whose subject is a workflow of the
/// repository (and, when configured, one of the allowed workflow files and refs).
fn matches(sig: &Signature, issuer: &str, prefix: &str, repository: &str, config: &Config) -> bool {
    if !sig.verified || !matches!(sig.kind, SignatureKind::Keyless) {
        return false;
    }
    let id = &sig.identity;
    if id.issuer.as_deref() != Some(issuer) {
        return false;
    }
    let Some(subject) = id.subject.as_deref() else {
        return false;
    };
    // Anchored prefix; GitHub owner and repository names are case-insensitive.
    let Some(head) = subject.get(..prefix.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(prefix) {
        return false;
    }
    let rest = &subject[prefix.len()..];
    // When the certificate names the workflow's repository, it must be the same one.
    if let Some(repo) = id
        .github
        .as_ref()
        .and_then(|g| g.workflow_repository.as_deref())
    {
        if !repo.eq_ignore_ascii_case(repository) {
            return false;
        }
    }
    // rest = ".github/workflows/FILE@REF"
    let (workflow, git_ref) = rest.split_once('@').unwrap_or((rest, ""));
    let file = workflow.strip_prefix(".github/workflows/");
    let workflow_ok = config.workflows.is_empty()
        || file.is_some_and(|f| config.workflows.iter().any(|w| w == f));
    let ref_ok =
        config.refs.is_empty() || config.refs.iter().any(|r| git_ref.starts_with(r.as_str()));
    workflow_ok && ref_ok
}

fn describe(sig: &Signature) -> String {
    let id = &sig.identity;
    let who = match (&id.issuer, &id.subject) {
        (Some(issuer), Some(subject)) => format!("{subject} (issuer {issuer})"),
        _ => match &sig.key_fingerprint {
            Some(fp) => format!("key {fp}"),
            None => "unknown signer".to_string(),
        },
    };
    match (&sig.verified, &sig.error) {
        (true, _) => who,
        (false, Some(e)) => format!("{who}, unverified: {e}"),
        (false, None) => format!("{who}, unverified"),
    }
}

export!(Plugin);
