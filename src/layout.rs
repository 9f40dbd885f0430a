//! OCI image layout directories (`oci:DIR[:tag]`): reading images from them (air-gapped installs)
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! and writing images into them (`gantry publish` to a directory). Blob paths are derived only from
//! validated digests, so a hostile `index.json` cannot make us read or write outside DIR.

use crate::registry::sha256_digest;
use crate::source::{Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An OCI image layout directory.
pub struct Layout {
    dir: PathBuf,
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The tag an `index.json` entry carries.
fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

/// The `kind` annotation `cosign save` writes on each entry.
fn cosign_kind(d: &Descriptor) -> Option<&str> {
    d.annotations
        .as_ref()
        .and_then(|a| a.get("kind"))
        .map(String::as_str)
        .filter(|k| k.starts_with("dev.cosignproject.cosign/"))
}

/// `sha256-<64 hex>.sig`, `.att` or `.sbom`: where cosign stores what it attaches to a digest.
fn is_cosign_attachment_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, suffix)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && matches!(suffix, "sig" | "att" | "sbom")
}

impl Layout {
    /// Opens an existing layout (checks `oci-layout`).
    pub fn open(dir: &Path) -> Result<Layout, SourceError> {
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            return Err(SourceError::Registry {
                what: dir.display().to_string(),
                message: "not an OCI image layout (no oci-layout file)".into(),
            });
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// Opens a layout for writing, creating it if needed.
    pub fn create(dir: &Path) -> Result<Layout, SourceError> {
        let io = |e| SourceError::Io {
            what: dir.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(io)?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
        }
        if !dir.join("index.json").exists() {
            let idx = Index {
                schema_version: 2,
                media_type: Some("application/vnd.oci.image.index.v1+json".into()),
                manifests: vec![],
            };
            std::fs::write(
                dir.join("index.json"),
                serde_json::to_vec_pretty(&idx)
                    .map_err(std::io::Error::other)
                    .map_err(io)?,
            )
            .map_err(io)?;
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The path of a blob; errors for anything but a well-formed sha256 digest.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, SourceError> {
        if !valid_digest(digest) {
            return Err(SourceError::Registry {
                what: self.dir.display().to_string(),
                message: format!("invalid digest {digest:?}"),
            });
        }
        Ok(self.dir.join("blobs/sha256").join(&digest[7..]))
    }

    fn index(&self) -> Result<Index, SourceError> {
        let p = self.dir.join("index.json");
        let bytes = std::fs::read(&p).map_err(|e| SourceError::Io {
            what: p.display().to_string(),
            source: e,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| SourceError::Registry {
            what: p.display().to_string(),
            message: format!("invalid index.json: {e}"),
        })
    }

    /// A layout written by `cosign save` has no attachment tags: its one image's `.sig`/`.att`/
    /// `.sbom` manifests are the entries of `kind` sigs/atts/sboms. `tag` is such an attachment
    /// tag of that image, the entry it stands for.
    fn cosign_save_attachment(&self, tag: &str) -> Result<Option<String>, SourceError> {
        let Some((hex, suffix)) = tag.strip_prefix("sha256-").and_then(|t| t.split_once('.'))
        else {
            return Ok(None);
        };
        let kind = match suffix {
            "sig" => "dev.cosignproject.cosign/sigs",
            "att" => "dev.cosignproject.cosign/atts",
            "sbom" => "dev.cosignproject.cosign/sboms",
            _ => return Ok(None),
        };
        let idx = self.index()?;
        let image = format!("sha256:{hex}");
        let is_image = |d: &&Descriptor| {
            cosign_kind(d).is_some_and(|k| k.ends_with("/image") || k.ends_with("/imageIndex"))
        };
        if !idx
            .manifests
            .iter()
            .filter(is_image)
            .any(|d| d.digest == image)
        {
            return Ok(None);
        }
        Ok(idx
            .manifests
            .iter()
            .find(|d| cosign_kind(d) == Some(kind))
            .map(|d| d.digest.clone()))
    }

    /// Resolves a tag, or the only image when no tag is given.
    pub fn resolve_tag(&self, tag: Option<&str>) -> Result<Option<String>, SourceError> {
        let idx = self.index()?;
        let found: Vec<&Descriptor> = match tag {
            Some(t) => idx
                .manifests
                .iter()
                .filter(|m| {
                    m.annotations
                        .as_ref()
                        .and_then(|a| a.get(REF_NAME))
                        .is_some_and(|n| n == t)
                })
                .collect(),
            // Signatures, attestations and SBOMs stored next to an image are not images.
            None => idx
                .manifests
                .iter()
                .filter(|m| !self.is_attachment(m))
                .collect(),
        };
        match (found.len(), tag) {
            (0, Some(t)) => self.cosign_save_attachment(t),
            (0, None) => Ok(None),
            (1, _) => Ok(found.first().map(|d| d.digest.clone())),
            (_, Some(t)) => Ok(Some(
                found
                    .last()
                    .map(|d| d.digest.clone())
                    .unwrap_or_else(|| t.to_string()),
            )),
            (n, None) => {
                let tags: Vec<&str> = found.iter().filter_map(|d| ref_name(d)).collect();
                let named = if tags.is_empty() {
                    String::new()
                } else {
                    format!(" (tags: {})", tags.join(", "))
                };
                Err(SourceError::Registry {
                    what: self.dir.display().to_string(),
                    message: format!(
                        "the layout holds {n} images{named}; name one with oci:DIR:TAG"
                    ),
                })
            }
        }
    }

    /// Whether an `index.json` entry is an attachment of another manifest rather than an image:
    /// a cosign attachment tag (`sha256-HEX.sig`, `.att`, `.sbom`), or a manifest that names a
    /// `subject` (an OCI 1.1 referrer, i.e. an artifact about another manifest).
    fn is_attachment(&self, d: &Descriptor) -> bool {
        if ref_name(d).is_some_and(is_cosign_attachment_tag) || d.artifact_type.is_some() {
            return true;
        }
        // `cosign save` marks its entries with a `kind`: the image, and its sigs/atts/sboms.
        if cosign_kind(d).is_some_and(|k| !k.ends_with("/image") && !k.ends_with("/imageIndex")) {
            return true;
        }
        #[derive(serde::Deserialize)]
        struct Subject {
            subject: Option<serde_json::Value>,
        }
        self.read_checked(&d.digest, crate::registry::MAX_MANIFEST_BYTES)
            .ok()
            .and_then(|b| serde_json::from_slice::<Subject>(&b).ok())
            .is_some_and(|m| m.subject.is_some())
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &str) -> Result<std::fs::File, SourceError> {
        let p = self.blob_path(digest)?;
        std::fs::File::open(&p).map_err(|e| SourceError::Io {
            what: format!("blob {digest} in {}", self.dir.display()),
            source: e,
        })
    }

    /// Writes a blob (content-addressed; idempotent).
    pub fn write_blob(&self, bytes: &[u8]) -> Result<String, SourceError> {
        let digest = sha256_digest(bytes);
        let p = self.blob_path(&digest)?;
        if !p.exists() {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, bytes)
                .and_then(|_| std::fs::rename(&tmp, &p))
                .map_err(|e| SourceError::Io {
                    what: p.display().to_string(),
                    source: e,
                })?;
        }
        Ok(digest)
    }

    /// Records a manifest in `index.json` under `tag` (replacing an earlier image of that tag).
    pub fn tag_manifest(
        &self,
        digest: &str,
        size: i64,
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<(), SourceError> {
        let mut idx = self.index()?;
        if let Some(t) = tag {
            idx.manifests.retain(|m| {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .is_none_or(|n| n != t)
            });
        }
        idx.manifests
            .retain(|m| m.digest != digest || tag.is_none());
        let annotations = tag.map(|t| {
            [(REF_NAME.to_string(), t.to_string())]
                .into_iter()
                .collect()
        });
        idx.manifests.push(Descriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            size,
            annotations,
            ..Default::default()
        });
        let p = self.dir.join("index.json");
        let tmp = self.dir.join("index.json.tmp");
        serde_json::to_vec_pretty(&idx)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|_| std::fs::rename(&tmp, &p))
            .map_err(|e| SourceError::Io {
                what: p.display().to_string(),
                source: e,
            })
    }

    fn read_checked(&self, digest: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        let f = self.open_blob(digest)?;
        let mut out = Vec::new();
        f.take(max.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| SourceError::Io {
                what: format!("blob {digest}"),
                source: e,
            })?;
        if out.len() as u64 > max {
            return Err(SourceError::TooLarge {
                what: format!("blob {digest}"),
                limit: max,
            });
        }
        let actual = sha256_digest(&out);
        if actual != digest {
            return Err(SourceError::DigestMismatch {
                what: format!("blob in {}", self.dir.display()),
                expected: digest.into(),
                actual,
            });
        }
        Ok(out)
    }
}

impl ImageSource for Layout {
    async fn fetch_manifest(
        &self,
        r: &ManifestRef,
    ) -> Result<Option<FetchedManifest>, SourceError> {
        let digest = match r {
            ManifestRef::Digest(d) => d.clone(),
            ManifestRef::Tag(t) => match self.resolve_tag(Some(t))? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        match self.blob_path(&digest) {
            Ok(p) if !p.exists() => return Ok(None),
            Err(e) => return Err(e),
            _ => {}
        }
        let bytes = self.read_checked(&digest, crate::registry::MAX_MANIFEST_BYTES)?;
        let media_type = crate::registry::media_type_of(&bytes);
        Ok(Some(FetchedManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    async fn fetch_blob(&self, digest: &str, max_size: u64) -> Result<Vec<u8>, SourceError> {
        self.read_checked(digest, max_size)
    }

    async fn referrers(&self, digest: &str) -> Result<Vec<Descriptor>, SourceError> {
        // Referrers in a layout are manifests listed in index.json whose subject is `digest`.
        let idx = self.index()?;
        let mut out = Vec::new();
        for m in idx.manifests {
            let Ok(bytes) = self.read_checked(&m.digest, crate::registry::MAX_MANIFEST_BYTES)
            else {
                continue;
            };
            #[derive(serde::Deserialize)]
            struct Subj {
                subject: Option<Descriptor>,
                #[serde(rename = "artifactType")]
                artifact_type: Option<String>,
            }
            if let Ok(s) = serde_json::from_slice::<Subj>(&bytes) {
                if s.subject.as_ref().is_some_and(|d| d.digest == digest) {
                    out.push(Descriptor {
                        artifact_type: s.artifact_type,
                        ..m
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn hostile_digests_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::create(dir.path()).unwrap();
        for d in [
            "sha256:../../etc/passwd",
            "sha256:",
            "md5:abc",
            &format!("sha256:{}/x", "a".repeat(63)),
        ] {
            assert!(l.blob_path(d).is_err(), "{d}");
        }
    }

    #[test]
    fn tagging_replaces_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::create(dir.path()).unwrap();
        let a = l.write_blob(b"{}").unwrap();
        let b = l.write_blob(b"{ }").unwrap();
        l.tag_manifest(
            &a,
            2,
            "application/vnd.oci.image.manifest.v1+json",
            Some("v1"),
        )
        .unwrap();
        l.tag_manifest(
            &b,
            3,
            "application/vnd.oci.image.manifest.v1+json",
            Some("v1"),
        )
        .unwrap();
        assert_eq!(l.resolve_tag(Some("v1")).unwrap(), Some(b.clone()));
        assert_eq!(l.resolve_tag(None).unwrap(), Some(b));
        assert_eq!(l.resolve_tag(Some("v2")).unwrap(), None);
    }

    #[test]
    fn attachments_are_not_counted_as_images() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::create(dir.path()).unwrap();
        let mt = "application/vnd.oci.image.manifest.v1+json";
        let image = l.write_blob(br#"{"schemaVersion":2}"#).unwrap();
        l.tag_manifest(&image, 19, mt, Some("1.0")).unwrap();
        let sig = l.write_blob(br#"{"schemaVersion":2,"layers":[]}"#).unwrap();
        let sig_tag = format!("{}.sig", image.replace(':', "-"));
        l.tag_manifest(&sig, 31, mt, Some(&sig_tag)).unwrap();
        let referrer = serde_json::json!({"schemaVersion": 2, "subject": {"mediaType": mt, "digest": image, "size": 19}});
        let r = l.write_blob(referrer.to_string().as_bytes()).unwrap();
        l.tag_manifest(&r, 1, mt, None).unwrap();
        assert_eq!(l.resolve_tag(None).unwrap(), Some(image.clone()));
        let other = l.write_blob(br#"{"schemaVersion":2,"x":1}"#).unwrap();
        l.tag_manifest(&other, 25, mt, Some("2.0")).unwrap();
        let e = l.resolve_tag(None).unwrap_err().to_string();
        assert!(e.contains("holds 2 images (tags: 1.0, 2.0)"), "{e}");
        assert!(!is_cosign_attachment_tag("sha256-abc.sig"));
        assert!(!is_cosign_attachment_tag(&format!(
            "sha256-{}.tar",
            "a".repeat(64)
        )));
    }
}
