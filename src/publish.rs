//! `gantry publish`: builds an image from a binary or directories (one layer each, with the
//! entrypoint set) and pushes it to a registry or writes it into an OCI layout directory. Layers
//! are deterministic (sorted entries, zero times and owners), so publishing the same input twice
//! gives the same digest. Signing and attestations are added by the trust module's artifacts.

use crate::facts::Platform;
use crate::layout::Layout;
use crate::registry::{sha256_digest, Registry};
use crate::source::ManifestRef;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Layer compression for published images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
    None,
}

impl LayerCompression {
    fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// Where to publish.
pub enum Target {
    Registry { registry: Registry, tag: String },
    Layout { layout: Layout, tag: Option<String> },
}

/// What to publish.
pub struct PublishRequest {
    pub sources: Vec<PathBuf>,
    pub entrypoint: Option<String>,
    pub args: Vec<String>,
    pub platform: Platform,
    pub labels: Vec<(String, String)>,
    pub compression: LayerCompression,
}

/// Errors publishing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
}

/// A built image, ready to push.
pub struct BuiltImage {
    pub layers: Vec<(Vec<u8>, String)>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |e| PublishError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Builds the image in memory.
pub fn build(req: &PublishRequest) -> Result<BuiltImage, PublishError> {
    if req.sources.is_empty() {
        return Err(PublishError::Usage(
            "nothing to publish: give a binary or a directory".into(),
        ));
    }
    let single_file = req.sources.len() == 1 && req.sources[0].is_file();
    let entrypoint = match (&req.entrypoint, single_file) {
        (Some(e), _) => e.clone(),
        (None, true) => {
            let n = req.sources[0].file_name().unwrap().to_string_lossy();
            format!("/usr/local/bin/{n}")
        }
        (None, false) => {
            return Err(PublishError::Usage(
                "publishing a directory needs --entrypoint PATH-IN-IMAGE".into(),
            ))
        }
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for src in &req.sources {
        let tar = if src.is_file() {
            let name = src.file_name().unwrap().to_string_lossy().into_owned();
            tar_of_file(src, &format!("usr/local/bin/{name}"))?
        } else if src.is_dir() {
            tar_of_dir(src)?
        } else {
            return Err(PublishError::Usage(format!(
                "{}: not a file or directory",
                src.display()
            )));
        };
        diff_ids.push(sha256_digest(&tar));
        let blob = compress(&tar, req.compression).map_err(io_err(src))?;
        layers.push((blob, req.compression.media_type().to_string()));
    }
    let mut ep = vec![entrypoint];
    ep.extend(req.args.iter().cloned());
    let labels: serde_json::Map<String, serde_json::Value> = req
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut cfg = json!({
        "architecture": req.platform.architecture,
        "os": req.platform.os,
        "config": {
            "Entrypoint": ep,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let Some(v) = &req.platform.variant {
        cfg["variant"] = json!(v);
    }
    let config = serde_json::to_vec(&cfg).expect("config serialises");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(&config), "size": config.len()},
        "layers": layers.iter().map(|(b, mt)| json!({"mediaType": mt, "digest": sha256_digest(b), "size": b.len()})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest serialises");
    let digest = sha256_digest(&manifest);
    Ok(BuiltImage {
        layers,
        config,
        manifest,
        digest,
    })
}

/// Pushes or writes a built image; returns its digest.
pub async fn push(img: &BuiltImage, target: &Target) -> Result<String, PublishError> {
    match target {
        Target::Registry { registry, tag } => {
            registry.auth_push().await?;
            for (blob, _) in &img.layers {
                registry.push_blob(blob.clone()).await?;
            }
            registry.push_blob(img.config.clone()).await?;
            registry
                .push_manifest(
                    &ManifestRef::Tag(tag.clone()),
                    img.manifest.clone(),
                    MANIFEST_MEDIA_TYPE,
                )
                .await?;
        }
        Target::Layout { layout, tag } => {
            for (blob, _) in &img.layers {
                layout.write_blob(blob)?;
            }
            layout.write_blob(&img.config)?;
            layout.write_blob(&img.manifest)?;
            layout.tag_manifest(
                &img.digest,
                img.manifest.len() as i64,
                MANIFEST_MEDIA_TYPE,
                tag.as_deref(),
            )?;
        }
    }
    Ok(img.digest.clone())
}

fn compress(tar: &[u8], c: LayerCompression) -> std::io::Result<Vec<u8>> {
    match c {
        LayerCompression::None => Ok(tar.to_vec()),
        LayerCompression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar)?;
            e.finish()
        }
        LayerCompression::Zstd => zstd::encode_all(tar, 3),
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn tar_of_file(src: &Path, name: &str) -> Result<Vec<u8>, PublishError> {
    let data = std::fs::read(src).map_err(io_err(src))?;
    let mut b = tar::Builder::new(Vec::new());
    let mut parent = String::new();
    for comp in name.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
        parent.push_str(comp);
        parent.push('/');
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, &parent, std::io::empty())
            .map_err(io_err(src))?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, data.len() as u64);
    b.append_data(&mut h, name, &data[..])
        .map_err(io_err(src))?;
    b.into_inner().map_err(io_err(src))
}

fn tar_of_dir(root: &Path) -> Result<Vec<u8>, PublishError> {
    use std::os::unix::fs::PermissionsExt;
    let mut b = tar::Builder::new(Vec::new());
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
        for e in entries {
            let path = e.path();
            let name = rel.join(e.file_name());
            let shown = name.to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(io_err(&path))?;
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, &shown, &target)
                    .map_err(io_err(&path))?;
            } else if meta.is_dir() {
                let mut h = header(tar::EntryType::Directory, mode, 0);
                b.append_data(&mut h, format!("{shown}/"), std::io::empty())
                    .map_err(io_err(&path))?;
                stack.push(name);
            } else if meta.is_file() {
                let f = std::fs::File::open(&path).map_err(io_err(&path))?;
                let mut h = header(tar::EntryType::Regular, mode, meta.len());
                b.append_data(&mut h, &shown, f).map_err(io_err(&path))?;
            }
        }
    }
    b.into_inner().map_err(io_err(root))
}

/// What to sign and attach after pushing.
pub struct Attachments<'a> {
    pub key: &'a crate::trust::sign::SigningKey,
    /// `host/repository` (repository only, no tag, as cosign writes `docker-reference`).
    pub repository: String,
    /// (predicate type URI, predicate) pairs to attest.
    pub attestations: Vec<(String, serde_json::Value)>,
}

/// Signs `digest` (cosign simple signing, `.sig` tag) and attaches each attestation (DSSE,
/// `.att` tag), appending to attachments already there as cosign does.
pub async fn attach(
    target: &Target,
    digest: &str,
    a: &Attachments<'_>,
) -> Result<(), PublishError> {
    use crate::trust::sign;
    let sign_err = |e: sign::SignError| PublishError::Usage(format!("signing failed: {e}"));
    let sig = sign::sign_image(a.key, &a.repository, digest).map_err(sign_err)?;
    push_attachment(
        target,
        &sign::attachment_tag(digest, "sig").map_err(sign_err)?,
        &sig,
    )
    .await?;
    for (ptype, predicate) in &a.attestations {
        let att = sign::attest(a.key, digest, &a.repository, ptype, predicate.clone())
            .map_err(sign_err)?;
        push_attachment(
            target,
            &sign::attachment_tag(digest, "att").map_err(sign_err)?,
            &att,
        )
        .await?;
    }
    Ok(())
}

async fn push_attachment(
    target: &Target,
    tag: &str,
    layer: &crate::trust::sign::AttachmentLayer,
) -> Result<(), PublishError> {
    use crate::source::ImageSource;
    use crate::trust::sign;
    let r = ManifestRef::Tag(tag.to_string());
    let existing = match target {
        Target::Registry { registry, .. } => registry.fetch_manifest(&r).await?,
        Target::Layout { layout, .. } => layout.fetch_manifest(&r).await?,
    };
    let m = sign::build_attachment_manifest(existing.as_ref().map(|m| m.bytes.as_slice()), layer)
        .map_err(|e| PublishError::Usage(format!("cannot attach to {tag}: {e}")))?;
    if !m.appended {
        return Ok(());
    }
    match target {
        Target::Registry { registry, .. } => {
            registry.push_blob(layer.payload.clone()).await?;
            registry.push_blob(m.config.clone()).await?;
            registry
                .push_manifest(&r, m.manifest, sign::OCI_MANIFEST_MEDIA_TYPE)
                .await?;
        }
        Target::Layout { layout, .. } => {
            layout.write_blob(&layer.payload)?;
            layout.write_blob(&m.config)?;
            let d = layout.write_blob(&m.manifest)?;
            layout.tag_manifest(
                &d,
                m.manifest.len() as i64,
                sign::OCI_MANIFEST_MEDIA_TYPE,
                Some(tag),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(src: PathBuf) -> PublishRequest {
        PublishRequest {
            sources: vec![src],
            entrypoint: None,
            args: vec!["--x".into()],
            platform: crate::image::host_platform(),
            labels: vec![],
            compression: LayerCompression::Gzip,
        }
    }

    #[test]
    fn publishing_is_deterministic_and_sets_entrypoint() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("hello");
        std::fs::write(&bin, b"\x7fELF...").unwrap();
        let a = build(&req(bin.clone())).unwrap();
        let b = build(&req(bin)).unwrap();
        assert_eq!(a.digest, b.digest);
        let cfg: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(
            cfg["config"]["Entrypoint"],
            json!(["/usr/local/bin/hello", "--x"])
        );
    }

    #[test]
    fn a_directory_needs_an_entrypoint() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            build(&req(d.path().to_path_buf())),
            Err(PublishError::Usage(_))
        ));
    }
}
