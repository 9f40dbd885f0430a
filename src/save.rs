//! `gantry save`: copies images out of a registry into one OCI image layout, with everything that
//! vouches for them, for an air-gapped site. For each image: its manifest (an index with every
//! platform manifest), their configs and layers; each manifest's cosign attachments
//! (`sha256-HEX.sig|.att|.sbom`, as tags) and its OCI referrers (listed in `index.json`, found by
//! their `subject`). The image's tag becomes its `org.opencontainers.image.ref.name`, as the
//! image-spec says. Every blob is digest-checked on the way in; nothing is judged here: an
//! install from the layout verifies it under the policy as it would from the registry.

use crate::layout::Layout;
use crate::registry::MAX_MANIFEST_BYTES;
use crate::source::{Descriptor, ImageSource, ManifestRef, SourceError};

/// Layers and configs larger than this are refused (the unpacker's own caps apply at install).
const MAX_BLOB_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// What one image's save copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The digest the tag named.
    pub digest: String,
    pub manifests: usize,
    pub blobs: usize,
    /// Attachment tags and referrers copied with it.
    pub attachments: usize,
}

#[derive(serde::Deserialize)]
struct Parts {
    #[serde(default)]
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Copies the image `version` names (and what vouches for it) from `src` into `out`, under
/// `tag` when there is one.
pub async fn save<S: ImageSource>(
    src: &S,
    what: &str,
    version: &ManifestRef,
    tag: Option<&str>,
    out: &Layout,
) -> Result<Saved, SourceError> {
    let top = src
        .fetch_manifest(version)
        .await?
        .ok_or_else(|| SourceError::Registry {
            what: what.to_string(),
            message: "not found".into(),
        })?;
    let mut saved = Saved {
        digest: top.digest.clone(),
        ..Default::default()
    };
    copy_manifest(src, &top.digest, &top.bytes, out, &mut saved, true).await?;
    out.tag_manifest(&top.digest, top.bytes.len() as i64, &top.media_type, tag)?;
    Ok(saved)
}

/// Writes one manifest and everything under it; with `attachments`, also what vouches for it.
async fn copy_manifest<S: ImageSource>(
    src: &S,
    digest: &str,
    bytes: &[u8],
    out: &Layout,
    saved: &mut Saved,
    attachments: bool,
) -> Result<(), SourceError> {
    out.write_blob(bytes)?;
    saved.manifests = saved.manifests.saturating_add(1);
    let parts: Parts = serde_json::from_slice(bytes).map_err(|e| SourceError::Registry {
        what: format!("manifest {digest}"),
        message: format!("not a manifest: {e}"),
    })?;
    for child in &parts.manifests {
        let m = src
            .fetch_manifest(&ManifestRef::Digest(child.digest.clone()))
            .await?
            .ok_or_else(|| SourceError::Registry {
                what: format!("manifest {}", child.digest),
                message: "listed by its index, but not found".into(),
            })?;
        Box::pin(copy_manifest(
            src,
            &m.digest,
            &m.bytes,
            out,
            saved,
            attachments,
        ))
        .await?;
    }
    for blob in parts.config.iter().chain(&parts.layers) {
        if out.blob_path(&blob.digest)?.exists() {
            continue;
        }
        let cap = u64::try_from(blob.size).unwrap_or(0).min(MAX_BLOB_BYTES);
        let data = src.fetch_blob(&blob.digest, cap.max(1)).await?;
        out.write_blob(&data)?;
        saved.blobs = saved.blobs.saturating_add(1);
    }
    if !attachments {
        return Ok(());
    }
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    for suffix in ["sig", "att", "sbom"] {
        let tag = format!("sha256-{hex}.{suffix}");
        if let Some(m) = src.fetch_manifest(&ManifestRef::Tag(tag.clone())).await? {
            if m.bytes.len() as u64 > MAX_MANIFEST_BYTES {
                continue;
            }
            Box::pin(copy_manifest(src, &m.digest, &m.bytes, out, saved, false)).await?;
            out.tag_manifest(&m.digest, m.bytes.len() as i64, &m.media_type, Some(&tag))?;
            saved.attachments = saved.attachments.saturating_add(1);
        }
    }
    for r in src.referrers(digest).await? {
        let Some(m) = src
            .fetch_manifest(&ManifestRef::Digest(r.digest.clone()))
            .await?
        else {
            continue;
        };
        Box::pin(copy_manifest(src, &m.digest, &m.bytes, out, saved, false)).await?;
        out.tag_manifest(&m.digest, m.bytes.len() as i64, &m.media_type, None)?;
        saved.attachments = saved.attachments.saturating_add(1);
    }
    Ok(())
}
