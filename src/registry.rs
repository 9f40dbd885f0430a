//! The registry client: oci-client with gantry's authentication and transport rules. Owns the
//! plain-HTTP rule (loopback hosts, or `insecure = true`), digest checks on everything it
//! returns, and listings (tags, the catalog, in [`listing`]); the credentials it sends come from
//! [`crate::credentials`], and every refusal says which were tried. It never judges content; it
//! only fetches and pushes bytes.

use crate::credentials::{Credentials, Secret, Sources};
use crate::net::NetConfig;
use crate::reference::RegistryImage;
use crate::report::Reporter;
use crate::source::{Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError};
use crate::store::Home;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Media types gantry accepts for manifests.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifests larger than this are refused (the spec's recommended limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

mod fetch;
mod listing;

pub use listing::{Endpoint, MAX_PAGES, PAGE_SIZE};

/// A connection to one repository of one registry: reads go through [`fetch`] (retries, stall
/// detection, resumed blobs), pushes through oci-client.
pub struct Registry {
    /// For pushes only, made on the first: building it loads the system's TLS roots, which an
    /// install (reads only) must not pay for.
    pushes: Box<Pushes>,
    fetcher: Arc<fetch::Fetcher>,
    auth: RegistryAuth,
    /// What a refusal of the credentials adds to its message (which were tried, how to log in).
    refused: String,
    host: String,
    repository: String,
    /// Small blobs seen before (image configs, signature payloads), by digest.
    blob_cache: Option<BlobCache>,
}

/// The oci-client of pushes, made on first use, and what it is made with.
struct Pushes {
    client: std::sync::OnceLock<Client>,
    protocol: ClientProtocol,
    net: NetConfig,
}

/// Small blobs by digest, under the home's cache: content-addressed, so a copy is used only
/// while it still hashes to its name; anything else there is ignored and fetched again.
struct BlobCache {
    dir: std::path::PathBuf,
}

impl BlobCache {
    /// Blobs up to this size are kept (configs and signature payloads are a few KiB).
    const MAX: usize = 256 * 1024;

    fn path(&self, digest: &str) -> Option<std::path::PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| self.dir.join(hex))
    }

    fn get(&self, digest: &str, max_size: u64) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(digest)?).ok()?;
        let fits = u64::try_from(bytes.len()).is_ok_and(|n| n <= max_size);
        (fits && sha256_digest(&bytes) == digest).then_some(bytes)
    }

    /// Best effort: a cache that cannot be written only costs a fetch next time.
    fn put(&self, digest: &str, bytes: &[u8]) {
        let Some(path) = self.path(digest) else {
            return;
        };
        if bytes.len() > Self::MAX || std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir) {
            if std::io::Write::write_all(&mut tmp, bytes).is_ok() {
                let _ = tmp.persist(&path);
            }
        }
    }
}

/// True for hosts Docker speaks plain HTTP to: loopback addresses and `localhost`, in any
/// spelling [`crate::identity`] accepts.
pub fn is_loopback_host(host: &str) -> bool {
    crate::identity::HostPort::parse(host).is_ok_and(|h| h.is_loopback())
}

/// The hex part of a `sha256:HEX` digest.
pub fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// `sha256:HEX` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Registry {
    /// Connects (lazily: no request yet) to `host/repository` with the default network settings
    /// and no reporter.
    pub fn new(
        host: &str,
        repository: &str,
        insecure: bool,
        home: &Home,
    ) -> Result<Registry, SourceError> {
        Registry::with_network(
            host,
            repository,
            insecure,
            home,
            NetConfig::default(),
            Arc::new(crate::report::Quiet),
        )
    }

    /// Connects to `host/repository` with `net`'s timeouts and retries, reporting retries to
    /// `reporter`, with the credentials [`crate::credentials::lookup`] finds for `host`.
    pub fn with_network(
        host: &str,
        repository: &str,
        insecure: bool,
        home: &Home,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Registry, SourceError> {
        let credentials = crate::credentials::lookup(host, &Sources::locate(home))?;
        let mut r =
            Registry::with_credentials(host, repository, insecure, &credentials, net, reporter)?;
        r.blob_cache = Some(BlobCache {
            dir: home.blob_cache(),
        });
        Ok(r)
    }

    /// [`Registry::with_network`] with the credentials given.
    pub fn with_credentials(
        host: &str,
        repository: &str,
        insecure: bool,
        credentials: &Credentials,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Registry, SourceError> {
        let plain = insecure || is_loopback_host(host);
        let protocol = if plain {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let net_for_pushes = net.clone();
        let caller = caller(host, credentials, true);
        let auth = caller.auth.clone();
        let refused = caller.refused();
        let fetcher = fetch::Fetcher::new(
            base_url(host, plain),
            repository.to_string(),
            Some(format!("repository:{repository}:pull")),
            caller,
            net,
            reporter,
        )?;
        Ok(Registry {
            pushes: Box::new(Pushes {
                client: std::sync::OnceLock::new(),
                protocol,
                net: net_for_pushes,
            }),
            fetcher: Arc::new(fetcher),
            auth,
            refused,
            host: host.to_string(),
            repository: repository.to_string(),
            blob_cache: None,
        })
    }

    /// Connects to the repository of a parsed image reference (default network settings).
    pub fn for_image(
        img: &RegistryImage,
        insecure: bool,
        home: &Home,
    ) -> Result<Registry, SourceError> {
        Registry::new(&img.host, &img.repository, insecure, home)
    }

    fn reference(&self, r: &ManifestRef) -> Reference {
        match r {
            ManifestRef::Tag(t) => {
                Reference::with_tag(self.host.clone(), self.repository.clone(), t.clone())
            }
            ManifestRef::Digest(d) => {
                Reference::with_digest(self.host.clone(), self.repository.clone(), d.clone())
            }
        }
    }

    fn what(&self, r: &ManifestRef) -> String {
        match r {
            ManifestRef::Tag(t) => format!("{}/{}:{}", self.host, self.repository, t),
            ManifestRef::Digest(d) => format!("{}/{}@{}", self.host, self.repository, d),
        }
    }

    fn err(&self, what: String, e: OciDistributionError) -> SourceError {
        let (message, refused) = match &e {
            OciDistributionError::ServerError { code, url, message } => (
                format!("{url}: HTTP {code}{}", fetch::error_detail(message)),
                *code == 401,
            ),
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => (e.to_string(), true),
            _ => (e.to_string(), e.to_string().contains("UNAUTHORIZED")),
        };
        if !refused {
            return SourceError::Registry { what, message };
        }
        SourceError::Refused {
            what,
            status: 401,
            message: format!("{message}{}", self.refused),
        }
    }

    /// Streams a blob: the returned queue yields the raw bytes (resumed across breaks), then
    /// ends, or yields an error last; the caller checks the digest.
    pub async fn blob_chunks(
        &self,
        desc: &Descriptor,
    ) -> Result<tokio::sync::mpsc::Receiver<fetch::Chunk>, SourceError> {
        let size = u64::try_from(desc.size).unwrap_or(0);
        Ok(self.fetcher.blob_stream(&desc.digest, size))
    }

    /// The oci-client of pushes.
    fn client(&self) -> &Client {
        let p = &self.pushes;
        p.client.get_or_init(|| {
            let (protocol, net) = (&p.protocol, &p.net);
            Client::new(ClientConfig {
                protocol: protocol.clone(),
                read_timeout: Some(net.stall_timeout),
                connect_timeout: Some(net.connect_timeout),
                ..Default::default()
            })
        })
    }

    /// Uploads a blob (skipped if the registry has it already).
    pub async fn push_blob(&self, bytes: Vec<u8>) -> Result<String, SourceError> {
        let digest = sha256_digest(&bytes);
        let image = self.reference(&ManifestRef::Digest(digest.clone()));
        let exists = self
            .client()
            .blob_exists(&image, &digest)
            .await
            .unwrap_or(false);
        if !exists {
            self.client()
                .push_blob(&image, bytes, &digest)
                .await
                .map_err(|e| self.err(format!("push blob {digest}"), e))?;
        }
        Ok(digest)
    }

    /// Uploads a manifest under a tag (or its digest) and returns its digest.
    pub async fn push_manifest(
        &self,
        r: &ManifestRef,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<String, SourceError> {
        let digest = sha256_digest(&bytes);
        let image = self.reference(r);
        let ct = media_type.parse().map_err(|_| SourceError::Registry {
            what: self.what(r),
            message: format!("bad media type {media_type}"),
        })?;
        self.client()
            .push_manifest_raw(&image, bytes, ct)
            .await
            .map_err(|e| self.err(format!("push {}", self.what(r)), e))?;
        Ok(digest)
    }

    /// Authenticates for pushing (anonymous registries accept this as a no-op).
    pub async fn auth_push(&self) -> Result<(), SourceError> {
        let image = self.reference(&ManifestRef::Tag("latest".into()));
        self.client()
            .auth(&image, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map(|_| ())
            .map_err(|e| self.err(format!("authenticate to {}", self.host), e))
    }

    /// `host/repository`, as cosign's `docker-reference` wants it.
    pub fn repository_ref(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

impl ImageSource for Registry {
    async fn fetch_manifest(
        &self,
        r: &ManifestRef,
    ) -> Result<Option<FetchedManifest>, SourceError> {
        let reference = match r {
            ManifestRef::Tag(t) => t.as_str(),
            ManifestRef::Digest(d) => d.as_str(),
        };
        let url = self.fetcher.url("manifests", reference);
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        let Some(bytes) = self
            .fetcher
            .get_bytes(&self.what(r), &url, &accept, MAX_MANIFEST_BYTES)
            .await?
        else {
            return Ok(None);
        };
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(SourceError::TooLarge {
                what: self.what(r),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let digest = sha256_digest(&bytes);
        if let ManifestRef::Digest(d) = r {
            if *d != digest {
                return Err(SourceError::DigestMismatch {
                    what: self.what(r),
                    expected: d.clone(),
                    actual: digest,
                });
            }
        }
        let media_type = media_type_of(&bytes);
        Ok(Some(FetchedManifest {
            bytes: bytes.to_vec(),
            media_type,
            digest,
        }))
    }

    async fn fetch_blob(&self, digest: &str, max_size: u64) -> Result<Vec<u8>, SourceError> {
        if let Some(bytes) = self
            .blob_cache
            .as_ref()
            .and_then(|c| c.get(digest, max_size))
        {
            return Ok(bytes);
        }
        let url = self.fetcher.url("blobs", digest);
        let out = self
            .fetcher
            .get_bytes(&format!("blob {digest}"), &url, "*/*", max_size)
            .await?
            .ok_or_else(|| SourceError::Registry {
                what: format!("blob {digest} in {}", self.repository_ref()),
                message: "not found".into(),
            })?;
        let actual = sha256_digest(&out);
        if actual != digest {
            return Err(SourceError::DigestMismatch {
                what: format!("blob in {}", self.repository_ref()),
                expected: digest.into(),
                actual,
            });
        }
        if let Some(c) = &self.blob_cache {
            c.put(digest, &out);
        }
        Ok(out)
    }

    async fn referrers(&self, digest: &str) -> Result<Vec<Descriptor>, SourceError> {
        let what = format!("referrers of {digest}");
        let url = self.fetcher.url("referrers", digest);
        let index = match self
            .fetcher
            .get_bytes(&what, &url, INDEX_MEDIA_TYPE, MAX_MANIFEST_BYTES)
            .await?
        {
            Some(bytes) => bytes,
            // No referrers API: the tag schema (`sha256-HEX`), as the distribution spec says.
            None => {
                let tag = ManifestRef::Tag(format!("sha256-{}", digest_hex(digest)));
                match self.fetch_manifest(&tag).await? {
                    Some(m) => m.bytes,
                    None => return Ok(Vec::new()),
                }
            }
        };
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let index: Index = serde_json::from_slice(&index).map_err(|e| SourceError::Registry {
            what,
            message: format!("the referrers index is not valid JSON: {e}"),
        })?;
        Ok(index.manifests)
    }
}

/// The media type of an OCI image index (what the referrers API answers with).
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// The media type a manifest declares (its `mediaType` field), defaulting to OCI image manifest.
pub fn media_type_of(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(m),
            ..
        }) => m,
        Ok(Probe {
            manifests: Some(_), ..
        }) => "application/vnd.oci.image.index.v1+json".into(),
        _ => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

/// `http://HOST` or `https://HOST`, the host as requests reach it (Docker Hub's API host for
/// `docker.io`).
fn base_url(host: &str, plain: bool) -> String {
    let resolved = Reference::with_tag(host.to_string(), "x".into(), "x".into())
        .resolve_registry()
        .to_string();
    let scheme = if plain { "http" } else { "https" };
    format!("{scheme}://{resolved}")
}

/// The credentials as the HTTP layer sends them, with how they were found; `advise_login`: a
/// refusal suggests `gantry login HOST`.
fn caller(host: &str, credentials: &Credentials, advise_login: bool) -> fetch::Caller {
    let auth = match credentials.secret() {
        Some(Secret::Basic { username, password }) => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Some(Secret::IdentityToken(t)) => RegistryAuth::Bearer(t.clone()),
        None => RegistryAuth::Anonymous,
    };
    fetch::Caller {
        auth,
        who: credentials.describe(),
        login_hint: advise_login.then(|| host.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_cache_serves_only_what_still_hashes_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache {
            dir: dir.path().join("blobs"),
        };
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let digest = sha256_digest(config);
        assert_eq!(cache.get(&digest, 1 << 20), None, "empty cache");
        cache.put(&digest, config);
        assert_eq!(cache.get(&digest, 1 << 20).as_deref(), Some(&config[..]));
        // Over the caller's size cap: not served.
        assert_eq!(cache.get(&digest, 10), None);
        // Hostile: the copy was replaced by other bytes; it is ignored, never served.
        let path = dir.path().join("blobs").join(digest_hex(&digest));
        std::fs::write(&path, br#"{"architecture":"amd64","os":"linux","x":1}"#).unwrap();
        assert_eq!(cache.get(&digest, 1 << 20), None);
        // Hostile: a digest that is not a sha256 hex name never becomes a path.
        for bad in [
            "sha256:../../etc/passwd",
            "sha512:aa",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert_eq!(cache.path(bad), None, "{bad}");
            cache.put(bad, config);
            assert_eq!(cache.get(bad, 1 << 20), None);
        }
        // Large blobs are not kept.
        let big = vec![7u8; BlobCache::MAX + 1];
        let big_digest = sha256_digest(&big);
        cache.put(&big_digest, &big);
        assert_eq!(cache.get(&big_digest, u64::MAX), None);
    }

    #[test]
    fn loopback_detection() {
        for h in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "127.3.2.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "10.0.0.1:5000",
            "example.com",
            "127.0.0.1.example.com",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
