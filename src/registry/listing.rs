//! Listings and the login check: a repository's tags, a registry's catalog, page by page as the
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! distribution spec paginates them (`?n=`, then `Link: <…>; rel="next"`), and `GET /v2/` with
//! credentials about to be stored. Every page goes through the fetcher, so retries, stall
//! detection and the token flow apply. A `Link` is followed only to the same origin (scheme, host
//! and port) and under `/v2/`, so credentials are never sent anywhere else; a registry that
//! paginates for ever is cut off after [`MAX_PAGES`] pages or [`MAX_LIST_BYTES`] bytes.

use super::fetch::{Caller, Fetcher};
use super::{base_url, caller, is_loopback_host, Registry};
use crate::credentials::{Credentials, Sources};
use crate::net::NetConfig;
use crate::report::Reporter;
use crate::source::SourceError;
use crate::store::Home;
use std::collections::HashSet;
use std::sync::Arc;

/// Entries asked for per page (`?n=`).
pub const PAGE_SIZE: u16 = 100;

/// Pages followed at most for one listing.
pub const MAX_PAGES: usize = 1000;

/// Bytes read at most for one listing, over all its pages.
pub const MAX_LIST_BYTES: u64 = 32 * 1024 * 1024;

/// Bytes read at most for one page.
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;

impl Registry {
    /// This repository's tags, in the order the registry lists them (every page). A repository
    /// the registry does not know is [`SourceError::Refused`] with status 404.
    pub async fn tags(&self) -> Result<Vec<String>, SourceError> {
        self.tags_paged(PAGE_SIZE).await
    }

    /// [`Registry::tags`] through a short-lived cache in `dir` (one file per repository, kept for
    /// `ttl`): `update` over many packages of one repository asks the registry once. A cache
    /// file that cannot be read or written is ignored (the registry is asked).
    pub async fn tags_cached(
        &self,
        dir: &std::path::Path,
        ttl: std::time::Duration,
    ) -> Result<Vec<String>, SourceError> {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Cached {
            repository: String,
            tags: Vec<String>,
        }
        let key = crate::registry::sha256_digest(self.repository_ref().as_bytes());
        let path = dir.join(format!("{}.json", crate::registry::digest_hex(&key)));
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < ttl);
        if fresh {
            let cached = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
                .filter(|c| c.repository == self.repository_ref());
            if let Some(c) = cached {
                return Ok(c.tags);
            }
        }
        let tags = self.tags().await?;
        let body = serde_json::to_vec(&Cached {
            repository: self.repository_ref(),
            tags: tags.clone(),
        })
        .unwrap_or_default();
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, body).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        Ok(tags)
    }

    /// [`Registry::tags`], asking for `page_size` tags per page.
    pub async fn tags_paged(&self, page_size: u16) -> Result<Vec<String>, SourceError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let first = format!("{}?n={page_size}", self.fetcher.url("tags", "list"));
        let what = format!("tags of {}", self.repository_ref());
        list(&self.fetcher, &what, first, |body| {
            serde_json::from_slice::<TagList>(body).map(|t| t.tags.unwrap_or_default())
        })
        .await
    }
}

/// A registry as a whole rather than one of its repositories: what `login` checks and `search`
/// lists.
pub struct Endpoint {
    fetcher: Fetcher,
    host: String,
    who: String,
}

impl Endpoint {
    /// For checking `credentials` against `host` (no token scope asked for, as `docker login`).
    pub fn for_login(
        host: &str,
        insecure: bool,
        credentials: &Credentials,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Endpoint, SourceError> {
        Endpoint::connect(
            host,
            insecure,
            None,
            caller(host, credentials, false),
            net,
            reporter,
        )
    }

    /// For the catalog of `host` (token scope `registry:catalog:*`), with the credentials
    /// [`crate::credentials::lookup`] finds for it.
    pub fn for_catalog(
        host: &str,
        insecure: bool,
        home: &Home,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Endpoint, SourceError> {
        let credentials = crate::credentials::lookup(host, &Sources::locate(home))?;
        let scope = Some("registry:catalog:*".to_string());
        Endpoint::connect(
            host,
            insecure,
            scope,
            caller(host, &credentials, true),
            net,
            reporter,
        )
    }

    fn connect(
        host: &str,
        insecure: bool,
        scope: Option<String>,
        caller: Caller,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Endpoint, SourceError> {
        let plain = insecure || is_loopback_host(host);
        let who = caller.who.clone();
        let fetcher = Fetcher::new(
            base_url(host, plain),
            String::new(),
            scope,
            caller,
            net,
            reporter,
        )?;
        Ok(Endpoint {
            fetcher,
            host: host.to_string(),
            who,
        })
    }

    /// How requests are made (`as user alice from …`, `anonymously`), for messages.
    pub fn who(&self) -> &str {
        &self.who
    }

    /// `GET /v2/` with the credentials: `Ok` when the registry accepts them. A refusal is
    /// [`SourceError::Refused`] (see [`SourceError::is_unauthorized`]).
    pub async fn check(&self) -> Result<(), SourceError> {
        let url = self.fetcher.endpoint("/v2/");
        match self
            .fetcher
            .get_bytes(&self.host, &url, "application/json", MAX_PAGE_BYTES)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(SourceError::Refused {
                what: url,
                status: 404,
                message: "not found: this does not answer as an OCI registry".into(),
            }),
        }
    }

    /// Every repository of the catalog, in the registry's order. A registry without one answers
    /// [`SourceError::Refused`] (401, 403, 404 or 405, as registries do).
    pub async fn catalog(&self) -> Result<Vec<String>, SourceError> {
        self.catalog_paged(PAGE_SIZE).await
    }

    /// [`Endpoint::catalog`], asking for `page_size` repositories per page.
    pub async fn catalog_paged(&self, page_size: u16) -> Result<Vec<String>, SourceError> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let first = self
            .fetcher
            .endpoint(&format!("/v2/_catalog?n={page_size}"));
        let what = format!("catalog of {}", self.host);
        list(&self.fetcher, &what, first, |body| {
            serde_json::from_slice::<Catalog>(body).map(|c| c.repositories.unwrap_or_default())
        })
        .await
    }
}

/// Reads a paginated listing from `first` on, following `rel="next"` links.
async fn list(
    fetcher: &Fetcher,
    what: &str,
    first: String,
    parse: impl Fn(&[u8]) -> Result<Vec<String>, serde_json::Error>,
) -> Result<Vec<String>, SourceError> {
    let refuse = |message: String| SourceError::Registry {
        what: what.to_string(),
        message,
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut read: u64 = 0;
    let mut url = first;
    for _ in 0..MAX_PAGES {
        seen.insert(url.clone());
        let Some(page) = fetcher
            .get_page(what, &url, "application/json", MAX_PAGE_BYTES)
            .await?
        else {
            return Err(SourceError::Refused {
                what: what.to_string(),
                status: 404,
                message: format!("{url}: not found"),
            });
        };
        read = read.saturating_add(page.body.len() as u64);
        if read > MAX_LIST_BYTES {
            return Err(SourceError::TooLarge {
                what: what.to_string(),
                limit: MAX_LIST_BYTES,
            });
        }
        let entries = parse(&page.body).map_err(|e| {
            refuse(format!(
                "{url}: not a listing the registry API defines: {e}"
            ))
        })?;
        out.extend(entries);
        let Some(next) = page.link.as_deref().and_then(next_link) else {
            return Ok(out);
        };
        let next = follow(fetcher.base(), &url, &next).map_err(refuse)?;
        if !seen.insert(next.clone()) {
            return Err(refuse(format!(
                "its pages link back to {next}: the listing never ends"
            )));
        }
        url = next;
    }
    Err(refuse(format!(
        "more than {MAX_PAGES} pages: given up (the listing is too long or never ends)"
    )))
}

/// The target of the `rel="next"` link in a `Link` header, if there is one.
fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some((_, after)) = rest.split_once('<') {
        let (target, tail) = after.split_once('>')?;
        // This link's parameters run up to the next `<`.
        let params = tail.split_once('<').map_or(tail, |(p, _)| p);
        let is_next = params.split([';', ',']).any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.trim().to_string());
        }
        rest = tail;
    }
    None
}

/// `link` resolved against the page it came from; refused unless it stays on the registry's
/// own origin and API (`base`, under `/v2/`), so no credential is sent anywhere else.
fn follow(base: &str, current: &str, link: &str) -> Result<String, String> {
    let base = url::Url::parse(base).map_err(|e| format!("{base}: {e}"))?;
    let current = url::Url::parse(current).map_err(|e| format!("{current}: {e}"))?;
    let next = current
        .join(link)
        .map_err(|e| format!("its Link header names '{link}', which is not a URL: {e}"))?;
    if next.origin() != base.origin() {
        return Err(format!(
            "its Link header points to another host ({}); gantry does not follow it, so no credentials are sent there",
            next.origin().ascii_serialization()
        ));
    }
    if !next.path().starts_with("/v2/") {
        return Err(format!(
            "its Link header points outside the registry API ({}); not followed",
            next.path()
        ));
    }
    Ok(next.to_string())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_found_among_others() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"</v2/x?p=1>; rel="prev", </v2/x?p=3>; rel=next"#).as_deref(),
            Some("/v2/x?p=3")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/x?last=a,b>; title="t"; rel="last next""#)
                .as_deref(),
            Some("https://r.example/v2/x?last=a,b")
        );
        assert_eq!(next_link(r#"</v2/x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<unterminated; rel=next"), None);
    }

    #[test]
    fn links_are_followed_only_on_the_same_origin_and_api() {
        let base = "http://127.0.0.1:5000";
        let page = "http://127.0.0.1:5000/v2/a/tags/list?n=2";
        assert_eq!(
            follow(base, page, "/v2/a/tags/list?n=2&last=b").unwrap(),
            "http://127.0.0.1:5000/v2/a/tags/list?n=2&last=b"
        );
        assert_eq!(
            follow(base, page, "http://127.0.0.1:5000/v2/a/tags/list?last=c").unwrap(),
            "http://127.0.0.1:5000/v2/a/tags/list?last=c"
        );
        for hostile in [
            "http://127.0.0.2:5000/v2/a/tags/list?last=b",
            "http://127.0.0.1:5001/v2/a/tags/list?last=b",
            "https://127.0.0.1:5000/v2/a/tags/list?last=b",
            "//evil.example/v2/a/tags/list",
            "http://user@evil.example/v2/",
        ] {
            let e = follow(base, page, hostile).unwrap_err();
            assert!(e.contains("another host"), "{hostile}: {e}");
        }
        assert!(follow(base, page, "/admin")
            .unwrap_err()
            .contains("outside"));
        assert!(follow(base, page, "http://[::1").is_err());
    }
}
