//! The registry client: oci-client with gantry's authentication and transport rules. Owns
//! credentials (gantry's `auth.json`, Docker's `config.json` and credential helpers), the plain-HTTP
//! rule (loopback hosts, or `insecure = true`), and digest checks on everything it returns. It
//! never judges content; it only fetches and pushes bytes.

use crate::net::NetConfig;
use crate::reference::RegistryImage;
use crate::report::Reporter;
use crate::source::{Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError};
use crate::store::Home;
use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::sync::Arc;

/// Media types gantry accepts for manifests.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Tags asked for per page of a tag list.
pub const TAG_PAGE_SIZE: usize = 100;
/// Pages of a tag list followed at most.
pub const MAX_TAG_PAGES: usize = 200;

/// Manifests larger than this are refused (the spec's recommended limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

mod fetch;

/// A connection to one repository of one registry: reads go through [`fetch`] (retries, stall
/// detection, resumed blobs), pushes through oci-client.
pub struct Registry {
    client: Client,
    fetcher: Arc<fetch::Fetcher>,
    auth: RegistryAuth,
    host: String,
    repository: String,
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
    /// `reporter`.
    pub fn with_network(
        host: &str,
        repository: &str,
        insecure: bool,
        home: &Home,
        net: NetConfig,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Registry, SourceError> {
        let plain = insecure || is_loopback_host(host);
        let protocol = if plain {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            read_timeout: Some(net.stall_timeout),
            connect_timeout: Some(net.connect_timeout),
            ..Default::default()
        });
        let auth = credentials(host, home)?;
        let resolved = Reference::with_tag(host.to_string(), repository.to_string(), "x".into())
            .resolve_registry()
            .to_string();
        let scheme = if plain { "http" } else { "https" };
        let fetcher = fetch::Fetcher::new(
            format!("{scheme}://{resolved}"),
            repository.to_string(),
            auth.clone(),
            net,
            reporter,
        )?;
        Ok(Registry {
            client,
            fetcher: Arc::new(fetcher),
            auth,
            host: host.to_string(),
            repository: repository.to_string(),
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
        SourceError::Registry {
            what,
            message: e.to_string(),
        }
    }

    /// Streams a blob: the returned stream yields the raw bytes (resumed across breaks); the
    /// caller checks the digest.
    pub async fn blob_stream(
        &self,
        desc: &Descriptor,
    ) -> Result<
        impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        SourceError,
    > {
        let size = u64::try_from(desc.size).unwrap_or(0);
        let rx = self.fetcher.blob_stream(&desc.digest, size);
        Ok(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|chunk| (chunk, rx))
        }))
    }

    /// Uploads a blob (skipped if the registry has it already).
    pub async fn push_blob(&self, bytes: Vec<u8>) -> Result<String, SourceError> {
        let digest = sha256_digest(&bytes);
        let image = self.reference(&ManifestRef::Digest(digest.clone()));
        let exists = self
            .client
            .blob_exists(&image, &digest)
            .await
            .unwrap_or(false);
        if !exists {
            self.client
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
        self.client
            .push_manifest_raw(&image, bytes, ct)
            .await
            .map_err(|e| self.err(format!("push {}", self.what(r)), e))?;
        Ok(digest)
    }

    /// Authenticates for pushing (anonymous registries accept this as a no-op).
    pub async fn auth_push(&self) -> Result<(), SourceError> {
        let image = self.reference(&ManifestRef::Tag("latest".into()));
        self.client
            .auth(&image, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map(|_| ())
            .map_err(|e| self.err(format!("authenticate to {}", self.host), e))
    }

    /// Every tag of the repository, in the registry's order, following `Link` pagination on the
    /// same registry (at most [`MAX_TAG_PAGES`] pages).
    pub async fn tags(&self) -> Result<Vec<String>, SourceError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = format!("tags of {}", self.repository_ref());
        let mut url = format!("{}?n={TAG_PAGE_SIZE}", self.fetcher.url("tags", "list"));
        let mut out = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let Some((body, next)) = self
                .fetcher
                .get_page(&what, &url, "application/json", MAX_MANIFEST_BYTES)
                .await?
            else {
                return Ok(out); // no such repository: no tags
            };
            let page: Page = serde_json::from_slice(&body).map_err(|e| SourceError::Registry {
                what: what.clone(),
                message: format!("the tag list is not valid JSON: {e}"),
            })?;
            out.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
        Err(SourceError::Registry {
            what,
            message: format!("more than {MAX_TAG_PAGES} pages of tags"),
        })
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

/// Finds credentials for `host`: gantry's own `auth.json` first, then Docker's config and
/// credential helpers; anonymous when none.
fn credentials(host: &str, home: &Home) -> Result<RegistryAuth, SourceError> {
    let path = home.auth();
    if let Some(auth) = gantry_auth(&path, host)? {
        return Ok(auth);
    }
    let server = if host == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    Ok(match docker_credential::get_credential(server) {
        Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => {
            RegistryAuth::Basic(u, p)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(t)) => RegistryAuth::Bearer(t),
        Err(_) => RegistryAuth::Anonymous,
    })
}

fn gantry_auth(path: &Path, host: &str) -> Result<Option<RegistryAuth>, SourceError> {
    let io = |e| SourceError::Io {
        what: path.display().to_string(),
        source: e,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            // A local permission problem (exit 6), not the registry's.
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "credentials file is readable by others (mode {:o}); run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            )));
        }
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
    }
    let file: File = serde_json::from_str(&text).map_err(|e| SourceError::Registry {
        what: path.display().to_string(),
        message: format!("not valid auth JSON: {e}"),
    })?;
    let Some(entry) = file.auths.get(host) else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(RegistryAuth::Basic(u.clone(), p.clone())));
    }
    if let Some(a) = &entry.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            });
        return match decoded {
            Some((u, p)) => Ok(Some(RegistryAuth::Basic(u, p))),
            None => Err(SourceError::Registry {
                what: path.display().to_string(),
                message: format!("auth for {host} is not base64 of user:password"),
            }),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn auth_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        std::fs::write(&p, r#"{"auths":{"r.example":{"auth":"dTpw"}}}"#).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = gantry_auth(&p, "r.example").unwrap_err();
        assert!(
            matches!(e, SourceError::Io { .. }) && e.to_string().contains("chmod 600"),
            "a local error (exit 6): {e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        match gantry_auth(&p, "r.example").unwrap() {
            Some(RegistryAuth::Basic(u, pw)) => assert_eq!((u.as_str(), pw.as_str()), ("u", "p")),
            other => panic!("{other:?}"),
        }
        assert!(gantry_auth(&p, "other.example").unwrap().is_none());
    }
}
