//! The registry client: oci-client with gantry's authentication and transport rules. Owns
//! credentials (gantry's `auth.json`, Docker's `config.json` and credential helpers), the plain-HTTP
//! rule (loopback hosts, or `insecure = true`), and digest checks on everything it returns. It
//! never judges content; it only fetches and pushes bytes.

use crate::reference::RegistryImage;
use crate::source::{Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError};
use crate::store::Home;
use base64::Engine as _;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// Media types gantry accepts for manifests.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifests larger than this are refused (the spec's recommended limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A connection to one repository of one registry.
pub struct Registry {
    client: Client,
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
    /// Connects (lazily: no request yet) to `host/repository`.
    pub fn new(
        host: &str,
        repository: &str,
        insecure: bool,
        home: &Home,
    ) -> Result<Registry, SourceError> {
        let protocol = if insecure || is_loopback_host(host) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            read_timeout: Some(std::time::Duration::from_secs(120)),
            connect_timeout: Some(std::time::Duration::from_secs(20)),
            ..Default::default()
        });
        let auth = credentials(host, home)?;
        Ok(Registry {
            client,
            auth,
            host: host.to_string(),
            repository: repository.to_string(),
        })
    }

    /// Connects to the repository of a parsed image reference.
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

    /// Streams a blob: the returned stream yields the raw bytes; the caller checks the digest.
    pub async fn blob_stream(
        &self,
        desc: &Descriptor,
    ) -> Result<
        impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        SourceError,
    > {
        let image = self.reference(&ManifestRef::Digest(desc.digest.clone()));
        let sized = self
            .client
            .pull_blob_stream(&image, desc)
            .await
            .map_err(|e| self.err(format!("blob {}", desc.digest), e))?;
        // oci-client checks the digest itself at EOF and then yields an error instead of the end.
        // Our unpacker hashes every byte independently and names the mismatch precisely, so that
        // final error becomes the end of the stream; every other error is kept.
        let is_digest_error = |e: &std::io::Error| {
            e.get_ref().is_some_and(|inner| {
                inner
                    .downcast_ref::<oci_client::errors::DigestError>()
                    .is_some()
            })
        };
        Ok(sized
            .stream
            .map(move |r| match r {
                Err(e) if is_digest_error(&e) => None,
                other => Some(other),
            })
            .take_while(|x| std::future::ready(x.is_some()))
            .map(|x| x.expect("take_while stops at None")))
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

    /// `host/repository`, as cosign's `docker-reference` wants it.
    pub fn repository_ref(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                oci_client::errors::OciErrorCode::ManifestUnknown
                    | oci_client::errors::OciErrorCode::NotFound
                    | oci_client::errors::OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}

impl ImageSource for Registry {
    async fn fetch_manifest(
        &self,
        r: &ManifestRef,
    ) -> Result<Option<FetchedManifest>, SourceError> {
        let image = self.reference(r);
        self.client
            .store_auth_if_needed(image.resolve_registry(), &self.auth)
            .await;
        let (bytes, _) = match self
            .client
            .pull_manifest_raw(&image, &self.auth, MANIFEST_MEDIA_TYPES)
            .await
        {
            Ok(x) => x,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.err(self.what(r), e)),
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
        let desc = Descriptor {
            digest: digest.to_string(),
            ..Default::default()
        };
        let mut stream = Box::pin(self.blob_stream(&desc).await?);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| SourceError::Io {
                what: format!("blob {digest}"),
                source: e,
            })?;
            if (out.len() + chunk.len()) as u64 > max_size {
                return Err(SourceError::TooLarge {
                    what: format!("blob {digest}"),
                    limit: max_size,
                });
            }
            out.extend_from_slice(&chunk);
        }
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
        let image = self.reference(&ManifestRef::Digest(digest.to_string()));
        match self.client.pull_referrers(&image, None).await {
            Ok(index) => Ok(index
                .manifests
                .into_iter()
                .map(|m| Descriptor {
                    media_type: m.media_type,
                    digest: m.digest,
                    size: m.size,
                    annotations: m.annotations,
                    artifact_type: m.artifact_type,
                    ..Default::default()
                })
                .collect()),
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(self.err(format!("referrers of {digest}"), e)),
        }
    }
}

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
