//! One handle over the two places images come from (a registry repository or an OCI layout), so
//! the pipeline and the trust module are written once. Adds streaming of layer blobs as a
//! blocking [`Read`], which is what the unpacker consumes on its worker threads.

use crate::layout::Layout;
use crate::net::NetConfig;
use crate::reference::{ImageLocation, Version};
use crate::registry::Registry;
use crate::registry_policy::{RegistryPolicy, Transport};
use crate::report::Reporter;
use crate::source::{
    BlobSource, Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError,
};
use crate::store::Home;
use std::io::Read;
use std::sync::Arc;

/// Why the repository of a reference could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An OCI layout named without a tag or digest holds no image.
    #[error("{} holds no image", .0.display())]
    Empty(std::path::PathBuf),
}

/// Opens the repository `loc` lives in, the way the registry policy says to reach it, and
/// returns the manifest to start from (a layout named without a tag: its one image).
pub fn open(
    loc: &ImageLocation,
    policy: &RegistryPolicy,
    home: &Home,
) -> Result<(Repo, ManifestRef), OpenError> {
    open_with(
        loc,
        policy,
        home,
        NetConfig::default(),
        Arc::new(crate::report::Quiet),
    )
}

/// [`open`] with `net`'s timeouts and retries, reporting retries to `reporter`.
pub fn open_with(
    loc: &ImageLocation,
    policy: &RegistryPolicy,
    home: &Home,
    net: NetConfig,
    reporter: Arc<dyn Reporter>,
) -> Result<(Repo, ManifestRef), OpenError> {
    let version = |v: &Version| match v {
        Version::Tag(t) => ManifestRef::Tag(t.clone()),
        Version::Digest(d) => ManifestRef::Digest(d.clone()),
    };
    match loc {
        ImageLocation::Registry(r) => {
            let insecure = policy.transport == Transport::Http;
            let reg =
                Registry::with_network(&r.host, &r.repository, insecure, home, net, reporter)?;
            Ok((Repo::Registry(reg), version(&r.version)))
        }
        ImageLocation::Layout(l) => {
            let layout = Layout::open(&l.dir)?;
            let v = match &l.version {
                Some(v) => version(v),
                None => ManifestRef::Digest(
                    layout
                        .resolve_tag(None)?
                        .ok_or_else(|| OpenError::Empty(l.dir.clone()))?,
                ),
            };
            Ok((Repo::Layout(layout), v))
        }
    }
}

/// A repository to read an image from.
pub enum Repo {
    Registry(Registry),
    Layout(Layout),
}

impl ImageSource for Repo {
    async fn fetch_manifest(
        &self,
        r: &ManifestRef,
    ) -> Result<Option<FetchedManifest>, SourceError> {
        match self {
            Repo::Registry(x) => x.fetch_manifest(r).await,
            Repo::Layout(x) => x.fetch_manifest(r).await,
        }
    }

    async fn fetch_blob(&self, digest: &str, max_size: u64) -> Result<Vec<u8>, SourceError> {
        match self {
            Repo::Registry(x) => x.fetch_blob(digest, max_size).await,
            Repo::Layout(x) => x.fetch_blob(digest, max_size).await,
        }
    }

    async fn referrers(&self, digest: &str) -> Result<Vec<Descriptor>, SourceError> {
        match self {
            Repo::Registry(x) => x.referrers(digest).await,
            Repo::Layout(x) => x.referrers(digest).await,
        }
    }
}

impl BlobSource for Repo {
    /// For a registry, the download task feeds the reader through a short bounded queue, so
    /// memory stays bounded however large the blob.
    async fn blob_reader(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send>, SourceError> {
        match self {
            Repo::Layout(l) => Ok(Box::new(l.open_blob(&desc.digest)?)),
            Repo::Registry(r) => Ok(Box::new(ChannelReader {
                rx: r.blob_chunks(desc).await?,
                cur: bytes::Bytes::new(),
                failed: None,
            })),
        }
    }
}

struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
    /// The transfer failed: every later read fails the same way (a reader that retries after an
    /// error must not mistake the closed channel for the end of the blob).
    failed: Option<(std::io::ErrorKind, String)>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(std::io::Error::new(*kind, message.clone()));
        }
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}
