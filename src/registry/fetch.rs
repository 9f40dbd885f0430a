//! Reads from a registry over HTTP the way a flaky network needs: every GET (manifests, blobs,
//! referrers, the token endpoint) goes through the retry schedule of [`crate::net`], with the
//! server's `Retry-After` seen; bodies are watched for stalls; a blob that breaks off mid-way
//! resumes with a `Range` request (or restarts, skipping what already arrived, when the registry
//! ignores ranges), so its reader sees one unbroken stream. Authentication follows the
//! distribution token flow: the `/v2/` challenge, then a bearer token for the repository (with
//! the user's credentials when there are any), or HTTP Basic when the registry asks for that. A
//! 401 after a fresh token, a 403 and a 404 are answers, never retried; a refusal says which
//! credentials were tried and how to log in.

use crate::net::{self, Attempts, NetConfig, StallGuard};
use crate::report::{Event, Reporter};
use crate::source::SourceError;
use base64::Engine as _;
use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RANGE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use std::sync::Arc;

/// A body chunk, or why the body failed.
pub type Chunk = Result<bytes::Bytes, std::io::Error>;

/// Body chunks of one blob queued between the download task and its reader. Each chunk may pin
/// one of the HTTP client's read buffers (up to ~400 KiB), so the queue is short: when the
/// reader falls behind, TCP flow control holds the rest in the kernel, not in our memory.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Who requests are made as: the secret for the auth flow, and how it was found for messages.
pub(super) struct Caller {
    pub auth: RegistryAuth,
    /// How the credentials were found (`as user alice from …`, `anonymously`).
    pub who: String,
    /// The registry as `gantry login` takes it, for the advice a refusal gives; `None` when
    /// `login` itself is checking the credentials.
    pub login_hint: Option<String>,
}

impl Caller {
    /// What a refusal adds: `: the request was made as user alice from …; run `gantry login
    /// HOST` …`.
    pub(super) fn refused(&self) -> String {
        match &self.login_hint {
            Some(host) => format!(
                ": the request was made {}; run `gantry login {host}` to store credentials for this registry",
                self.who
            ),
            None => format!(": the request was made {}", self.who),
        }
    }
}

/// A response body with the `Link` header that came with it (pagination).
pub(super) struct Page {
    pub body: Vec<u8>,
    /// Every `Link` header of the response, joined with `, `.
    pub link: Option<String>,
}

/// Shared by a registry and the tasks streaming its blobs.
pub(super) struct Fetcher {
    http: reqwest::Client,
    /// `http` has no TLS roots (the registry is reached over plain HTTP).
    plain: bool,
    /// The client with TLS roots, for `https` URLs when `http` has none; built on first use.
    tls: std::sync::OnceLock<Result<reqwest::Client, String>>,
    /// `http://host` or `https://host` (the host as the registry is reached).
    base: String,
    repository: String,
    /// The token scope asked for (`repository:NAME:pull`), if any.
    scope: Option<String>,
    caller: Caller,
    authorization: tokio::sync::Mutex<Option<Option<HeaderValue>>>,
    net: NetConfig,
    reporter: Arc<dyn Reporter>,
}

/// The HTTP client of every read; `plain`: without TLS roots (plain HTTP only).
fn client(net: &NetConfig, plain: bool) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(net.connect_timeout)
        .read_timeout(net.stall_timeout)
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")));
    if plain {
        b = b.tls_certs_only(std::iter::empty());
    }
    b.build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// One failed attempt: what the retry schedule sees, and the message if it is the last.
struct AttemptError {
    failure: net::Failure,
    message: String,
}

impl Fetcher {
    pub(super) fn new(
        base: String,
        repository: String,
        scope: Option<String>,
        caller: Caller,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Fetcher, SourceError> {
        // A registry reached over plain HTTP gets a client without TLS roots: loading the
        // system's certificates costs more than a whole reinstall. An `https` URL it is sent to
        // (a token endpoint elsewhere) goes through a full client, built on first use.
        let plain = base.starts_with("http://");
        let http = client(&net, plain).map_err(|message| SourceError::Registry {
            what: base.clone(),
            message,
        })?;
        Ok(Fetcher {
            http,
            tls: std::sync::OnceLock::new(),
            plain,
            base,
            repository,
            scope,
            caller,
            authorization: tokio::sync::Mutex::new(None),
            net,
            reporter,
        })
    }

    /// A GET of `url` on the client that can reach it.
    fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, SourceError> {
        if !self.plain || !url.starts_with("https://") {
            return Ok(self.http.get(url));
        }
        match self.tls.get_or_init(|| client(&self.net, false)) {
            Ok(c) => Ok(c.get(url)),
            Err(message) => Err(SourceError::Registry {
                what: url.to_string(),
                message: message.clone(),
            }),
        }
    }

    /// `BASE/v2/REPOSITORY/KIND/REF`.
    pub(super) fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    /// `BASE` followed by `path` (`/v2/_catalog`).
    pub(super) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `http://host` or `https://host`, as the registry is reached.
    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// GETs `url` and reads its whole body (at most `cap` bytes). `Ok(None)` for a 404.
    pub(super) async fn get_bytes(
        &self,
        what: &str,
        url: &str,
        accept: &str,
        cap: u64,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.get_page(what, url, accept, cap).await?.map(|p| p.body))
    }

    /// [`Fetcher::get_bytes`], with the response's `Link` header.
    pub(super) async fn get_page(
        &self,
        what: &str,
        url: &str,
        accept: &str,
        cap: u64,
    ) -> Result<Option<Page>, SourceError> {
        let mut attempts = Attempts::new(&self.net);
        loop {
            let result = self.try_get_page(url, accept, cap).await;
            match result {
                Ok(page) => return Ok(page),
                Err(Fatal(e)) => return Err(e),
                Err(Again(e)) => self.wait_or_fail(&mut attempts, what, url, e).await?,
            }
        }
    }

    async fn try_get_page(
        &self,
        url: &str,
        accept: &str,
        cap: u64,
    ) -> Result<Option<Page>, Outcome> {
        let response = self.send(url, accept, None).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.check_status(url, response).await?;
        let links: Vec<&str> = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let link = (!links.is_empty()).then(|| links.join(", "));
        if response.content_length().is_some_and(|n| n > cap) {
            return Err(Fatal(SourceError::TooLarge {
                what: url.to_string(),
                limit: cap,
            }));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        let mut guard = StallGuard::new(self.net.stall_timeout);
        loop {
            let next = tokio::time::timeout(guard.time_left(), stream.next()).await;
            let chunk = match next {
                Err(_) => return Err(Again(stalled(url, &self.net))),
                Ok(None) => return Ok(Some(Page { body, link })),
                Ok(Some(Err(e))) => return Err(Again(connection(url, &e))),
                Ok(Some(Ok(c))) => c,
            };
            if !guard.progress(chunk.len() as u64) {
                return Err(Again(stalled(url, &self.net)));
            }
            if (body.len() as u64).saturating_add(chunk.len() as u64) > cap {
                return Err(Fatal(SourceError::TooLarge {
                    what: url.to_string(),
                    limit: cap,
                }));
            }
            body.extend_from_slice(&chunk);
        }
    }

    /// Streams blob `digest` of `size` bytes (0: unknown) into a bounded channel from a task,
    /// resuming after breaks; the receiver sees the bytes once each, or an error at the end.
    pub(super) fn blob_stream(
        self: &Arc<Self>,
        digest: &str,
        size: u64,
    ) -> tokio::sync::mpsc::Receiver<Chunk> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let me = self.clone();
        let url = self.url("blobs", digest);
        let what = format!("blob {digest}");
        tokio::spawn(async move {
            if let Err(e) = me.pump_blob(&what, &url, size, &tx).await {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        });
        rx
    }

    async fn pump_blob(
        &self,
        what: &str,
        url: &str,
        size: u64,
        tx: &tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<(), SourceError> {
        let mut attempts = Attempts::new(&self.net);
        let mut sent: u64 = 0;
        loop {
            match self.try_pump(url, size, &mut sent, tx).await {
                Ok(()) => return Ok(()),
                Err(Fatal(e)) => return Err(e),
                Err(Again(e)) => self.wait_or_fail(&mut attempts, what, url, e).await?,
            }
        }
    }

    /// One attempt at the rest of a blob, from byte `sent` on.
    async fn try_pump(
        &self,
        url: &str,
        size: u64,
        sent: &mut u64,
        tx: &tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<(), Outcome> {
        let range = (*sent > 0).then(|| format!("bytes={sent}-"));
        let response = self.send(url, "*/*", range.as_deref()).await?;
        let response = self.check_status(url, response).await?;
        // A registry that ignores the range sends it all again: skip what already went out.
        let mut skip = match response.status() {
            StatusCode::PARTIAL_CONTENT
                if content_range_start(response.headers()) == Some(*sent) =>
            {
                0
            }
            StatusCode::PARTIAL_CONTENT => {
                return Err(Fatal(SourceError::Registry {
                    what: url.to_string(),
                    message: "answered a range request with another range".into(),
                }))
            }
            _ => *sent,
        };
        let mut stream = response.bytes_stream();
        let mut guard = StallGuard::new(self.net.stall_timeout);
        loop {
            let next = tokio::time::timeout(guard.time_left(), stream.next()).await;
            let mut chunk = match next {
                Err(_) => return Err(Again(stalled(url, &self.net))),
                Ok(None) if size > 0 && *sent < size => {
                    // Ended early without an error: resume like any other break.
                    return Err(Again(AttemptError {
                        failure: net::Failure::Connection("body ended early".into()),
                        message: format!("{url}: body ended after {sent} of {size} bytes"),
                    }));
                }
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(Again(connection(url, &e))),
                Ok(Some(Ok(c))) => c,
            };
            if !guard.progress(chunk.len() as u64) {
                return Err(Again(stalled(url, &self.net)));
            }
            if skip > 0 {
                let n = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
                let _ = chunk.split_to(n);
                skip = skip.saturating_sub(n as u64);
            }
            if chunk.is_empty() {
                continue;
            }
            *sent = sent.saturating_add(chunk.len() as u64);
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(()); // the reader gave up (error or cap): stop downloading
            }
        }
    }

    /// Waits out the retry delay (saying so), or turns the failure into the final error.
    async fn wait_or_fail(
        &self,
        attempts: &mut Attempts<'_>,
        what: &str,
        url: &str,
        e: AttemptError,
    ) -> Result<(), SourceError> {
        let made = attempts.made();
        match attempts.next_delay(&e.failure) {
            Some(delay) => {
                self.reporter.report(&Event::Retry {
                    what,
                    url,
                    attempt: made.saturating_add(1),
                    attempts: self.net.attempts,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    reason: &e.message,
                });
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => {
                let tries = if made > 1 {
                    format!(" (after {made} attempts)")
                } else {
                    String::new()
                };
                Err(SourceError::Registry {
                    what: what.to_string(),
                    message: format!("{}{tries}", e.message),
                })
            }
        }
    }

    /// Sends one GET with the current authorization; a 401 gets one fresh token and a second try.
    /// An anonymous caller's first request goes out without asking the registry how to
    /// authenticate (a round trip a public or loopback registry never needs); its 401, if any,
    /// carries the challenge the token flow starts from.
    async fn send(
        &self,
        url: &str,
        accept: &str,
        range: Option<&str>,
    ) -> Result<reqwest::Response, Outcome> {
        let mut refreshed = false;
        let mut challenge = None;
        loop {
            let (authorization, optimistic) =
                self.authorization(refreshed, challenge.take()).await?;
            let mut request = self.get(url).map_err(Fatal)?.header(ACCEPT, accept);
            if let Some(a) = authorization.clone() {
                request = request.header(AUTHORIZATION, a);
            }
            if let Some(r) = range {
                request = request.header(RANGE, r);
            }
            let send = tokio::time::timeout(self.net.stall_timeout, request.send()).await;
            let response = match send {
                Err(_) => return Err(Again(stalled(url, &self.net))),
                Ok(Err(e)) => return Err(Again(connection(url, &e))),
                Ok(Ok(r)) => r,
            };
            if response.status() == StatusCode::UNAUTHORIZED {
                if optimistic {
                    // Authenticate as this answer asks: that is the one fresh token.
                    refreshed = true;
                    challenge = Some(
                        response
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    );
                    continue;
                }
                if !refreshed {
                    // The token may have expired, or this is the first challenge: once more.
                    refreshed = true;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// A success status passes; a failing one becomes the attempt's error.
    async fn check_status(
        &self,
        url: &str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, Outcome> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(net::parse_retry_after);
        let body = response.text().await.unwrap_or_default();
        let detail = error_detail(&body);
        let answer = match status {
            StatusCode::UNAUTHORIZED => {
                format!("401 Unauthorized{detail}{}", self.caller.refused())
            }
            StatusCode::FORBIDDEN => format!(
                "403 Forbidden{detail} (the request was made {})",
                self.caller.who
            ),
            s => format!("HTTP {}{detail}", s.as_u16()),
        };
        if net::retryable_status(status.as_u16()) {
            Err(Again(AttemptError {
                failure: net::Failure::Status {
                    code: status.as_u16(),
                    retry_after,
                },
                message: format!("{url}: {answer}"),
            }))
        } else {
            Err(Fatal(SourceError::Refused {
                what: url.to_string(),
                status: status.as_u16(),
                message: answer,
            }))
        }
    }

    /// The `Authorization` header to send (cached; `refresh` asks the registry again), and
    /// whether it is a guess: an anonymous caller that has not been challenged yet sends none.
    /// `challenge`: the `WWW-Authenticate` of a 401 just received (`Some(None)`: it had none).
    async fn authorization(
        &self,
        refresh: bool,
        challenge: Option<Option<String>>,
    ) -> Result<(Option<HeaderValue>, bool), Outcome> {
        let mut cached = self.authorization.lock().await;
        if let (Some(a), false, None) = (cached.as_ref(), refresh, &challenge) {
            return Ok((a.clone(), false));
        }
        let anonymous = matches!(self.caller.auth, RegistryAuth::Anonymous);
        if anonymous && cached.is_none() && challenge.is_none() && !refresh {
            return Ok((None, true));
        }
        let fresh = self.negotiate(challenge).await.map_err(Fatal)?;
        *cached = Some(fresh.clone());
        Ok((fresh, false))
    }

    /// The distribution auth flow for pulling from this repository.
    /// `known`: the challenge of a 401 already received, so `/v2/` need not be asked.
    async fn negotiate(
        &self,
        known: Option<Option<String>>,
    ) -> Result<Option<HeaderValue>, SourceError> {
        if let RegistryAuth::Bearer(t) = &self.caller.auth {
            return Ok(header(&format!("Bearer {t}")));
        }
        let ping = format!("{}/v2/", self.base);
        let mut attempts = Attempts::new(&self.net);
        let challenge = loop {
            if let Some(known) = known {
                break known;
            }
            let sent = tokio::time::timeout(self.net.stall_timeout, self.get(&ping)?.send());
            let e = match sent.await {
                Ok(Ok(r)) if r.status() == StatusCode::UNAUTHORIZED => {
                    break r
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                }
                Ok(Ok(r)) if net::retryable_status(r.status().as_u16()) => AttemptError {
                    failure: net::Failure::Status {
                        code: r.status().as_u16(),
                        retry_after: None,
                    },
                    message: format!("{ping}: HTTP {}", r.status().as_u16()),
                },
                Ok(Ok(_)) => break None,
                Ok(Err(e)) => connection(&ping, &e),
                Err(_) => stalled(&ping, &self.net),
            };
            self.wait_or_fail(&mut attempts, "registry", &ping, e)
                .await?;
        };
        let basic = match &self.caller.auth {
            RegistryAuth::Basic(u, p) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                header(&format!("Basic {b64}"))
            }
            _ => None,
        };
        let Some(challenge) = challenge else {
            return Ok(basic);
        };
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Ok(basic); // Basic (or another scheme): send the credentials as they are
        };
        let params = challenge_params(params);
        let Some(realm) = params.iter().find(|(k, _)| k == "realm").map(|(_, v)| v) else {
            return Err(SourceError::Registry {
                what: self.base.clone(),
                message: format!("its token challenge names no realm: {challenge}"),
            });
        };
        let mut query = Vec::new();
        if let Some(scope) = &self.scope {
            query.push(("scope".to_string(), scope.clone()));
        }
        if let Some((_, s)) = params.iter().find(|(k, _)| k == "service") {
            query.push(("service".into(), s.clone()));
        }
        let what = match &self.scope {
            Some(scope) => format!("token for {scope}"),
            None => format!("token for {}", self.base),
        };
        let mut attempts = Attempts::new(&self.net);
        loop {
            let mut request = self.get(realm.as_str())?.query(&query);
            if let Some(b) = &basic {
                request = request.header(AUTHORIZATION, b.clone());
            }
            let sent = tokio::time::timeout(self.net.stall_timeout, request.send()).await;
            let e = match sent {
                Ok(Ok(r)) if r.status().is_success() => {
                    let body = r.bytes().await.unwrap_or_default();
                    return token_header(&body)
                        .map(Some)
                        .ok_or_else(|| SourceError::Registry {
                            what: realm.clone(),
                            message: "the token endpoint's answer holds no token".into(),
                        });
                }
                Ok(Ok(r)) => {
                    let code = r.status().as_u16();
                    let body = error_detail(&r.text().await.unwrap_or_default());
                    if code == 401 || code == 403 {
                        // An answer about the credentials: never retried.
                        return Err(SourceError::Refused {
                            what,
                            status: code,
                            message: format!(
                                "the token endpoint {realm} refused the credentials for {} (HTTP {code}){body}{}",
                                self.base,
                                self.caller.refused()
                            ),
                        });
                    }
                    AttemptError {
                        failure: net::Failure::Status {
                            code,
                            retry_after: None,
                        },
                        message: format!("the token endpoint {realm} failed (HTTP {code}){body}"),
                    }
                }
                Ok(Err(e)) => connection(realm, &e),
                Err(_) => stalled(realm, &self.net),
            };
            self.wait_or_fail(&mut attempts, &what, realm, e).await?;
        }
    }
}

/// How one attempt ended, if not with success.
enum Outcome {
    /// Worth another attempt (if the schedule allows).
    Again(AttemptError),
    /// An answer: no more attempts.
    Fatal(SourceError),
}
use Outcome::{Again, Fatal};

impl From<AttemptError> for Outcome {
    fn from(e: AttemptError) -> Self {
        Again(e)
    }
}

fn connection(url: &str, e: &reqwest::Error) -> AttemptError {
    if e.is_timeout() && !e.is_connect() {
        // The client's own read timeout: nothing arrived for a whole stall window.
        return read_timed_out(url);
    }
    let mut message = format!("{url}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    AttemptError {
        failure: net::Failure::Connection(e.to_string()),
        message,
    }
}

fn stalled(url: &str, net: &NetConfig) -> AttemptError {
    AttemptError {
        failure: net::Failure::Stalled(url.to_string()),
        message: format!(
            "{url} stalled: less than {} bytes in {} s (the stall timeout; raise [network] stall_timeout to wait longer)",
            net::STALL_MIN_BYTES,
            net.stall_timeout.as_secs()
        ),
    }
}

/// [`stalled`] when the window is the client's read timeout.
fn read_timed_out(url: &str) -> AttemptError {
    AttemptError {
        failure: net::Failure::Stalled(url.to_string()),
        message: format!(
            "{url} stalled: nothing arrived within the stall timeout (raise [network] stall_timeout to wait longer)"
        ),
    }
}

fn header(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(value).ok()
}

/// `Bearer TOKEN` from a token endpoint's JSON (`token` or `access_token`).
fn token_header(body: &[u8]) -> Option<HeaderValue> {
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let t: Token = serde_json::from_slice(body).ok()?;
    let token = t.token.or(t.access_token).filter(|t| !t.is_empty())?;
    header(&format!("Bearer {token}"))
}

/// The `key="value"` pairs of a `WWW-Authenticate` challenge.
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((v, t)) => (v.to_string(), t),
                None => (quoted.to_string(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((v, t)) => (v.trim().to_string(), t),
                None => (after.trim().to_string(), ""),
            }
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The first byte position of a `Content-Range: bytes START-END/SIZE` header.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

/// A server's error body for a message: the `code: message` pairs of a distribution error
/// envelope (`{"errors":[…]}`), else the body shortened to one line; empty when there is none.
pub(super) fn error_detail(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Envelope>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|x| match (x.code.is_empty(), x.message.is_empty()) {
                    (false, false) => format!("{}: {}", x.code, x.message),
                    (false, true) => x.code.clone(),
                    _ => x.message.clone(),
                })
                .collect();
            one_line(&parts.join("; "))
        }
        _ => one_line(body),
    }
}

/// Text shortened to one line for a message (empty when there is none).
fn one_line(body: &str) -> String {
    let line: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quotes_and_commas() {
        let p = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            p,
            [
                (
                    "realm".to_string(),
                    "https://auth.example/token".to_string()
                ),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(challenge_params("realm=x, service=y").len(), 2);
        assert!(challenge_params("garbage").is_empty());
        assert_eq!(
            challenge_params(r#"realm="unterminated"#)[0].1,
            "unterminated"
        );
    }

    #[test]
    fn error_bodies_are_shortened_to_what_they_say() {
        assert_eq!(
            error_detail(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]}]}"#
            ),
            ": UNAUTHORIZED: authentication required"
        );
        assert_eq!(error_detail("slow\n  down"), ": slow down");
        assert_eq!(error_detail(r#"{"errors":[]}"#), r#": {"errors":[]}"#);
        assert_eq!(error_detail(""), "");
    }

    #[test]
    fn tokens_and_ranges_are_read_defensively() {
        assert!(token_header(br#"{"token":"abc"}"#).is_some());
        assert!(token_header(br#"{"access_token":"abc"}"#).is_some());
        assert!(token_header(br#"{"token":""}"#).is_none());
        assert!(token_header(b"not json").is_none());
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 100-199/200"),
        );
        assert_eq!(content_range_start(&h), Some(100));
        h.insert(
            reqwest::header::CONTENT_RANGE,
            HeaderValue::from_static("items 1-2"),
        );
        assert_eq!(content_range_start(&h), None);
    }
}
