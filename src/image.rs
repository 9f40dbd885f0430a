//! Resolving an image to the one platform manifest gantry installs: tag → (index →) manifest →
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
//! config. Owns platform selection and the parsing of manifests and configs; every document it
//! reads came through an [`ImageSource`], so its digest is already checked.

use crate::facts::{ImageConfigFacts, Platform};
use crate::source::{Descriptor, ImageSource, ManifestRef, SourceError};

/// Image configs larger than this are refused.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Errors resolving an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("no image for {wanted} in {what}; it offers: {offered}")]
    NoPlatform {
        what: String,
        wanted: String,
        offered: String,
    },
    #[error("{what}: {message}")]
    Malformed { what: String, message: String },
}

/// The host platform in OCI terms.
pub fn host_platform() -> Platform {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    let variant = (architecture == "arm64").then(|| "v8".to_string());
    Platform {
        os: os.into(),
        architecture: architecture.into(),
        variant,
    }
}

/// The platform manifest chosen for install, with its config.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of the platform manifest (what signatures name).
    pub digest: String,
    /// Digest of the index it was picked from, if any.
    pub index_digest: Option<String>,
    pub manifest_bytes: Vec<u8>,
    pub layers: Vec<Descriptor>,
    pub config_digest: String,
    pub platform: Platform,
    pub config: ImageConfigFacts,
    /// The config's `created` time (RFC 3339, UTC), when it has a well-formed one.
    pub created: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawIndex {
    manifests: Vec<RawIndexEntry>,
}

#[derive(serde::Deserialize)]
struct RawIndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(serde::Deserialize, Clone)]
struct RawPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(serde::Deserialize, Default)]
struct RawConfigFile {
    /// When the image was built, as its config says (RFC 3339; set by the builder, unverified).
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(serde::Deserialize, Default)]
struct RawConfig {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Labels", default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

fn is_index(media_type: &str) -> bool {
    media_type.contains("image.index") || media_type.contains("manifest.list")
}

fn variant_matches(wanted: &Platform, offered: &RawPlatform) -> bool {
    match (&wanted.variant, &offered.variant) {
        (Some(w), Some(o)) => w == o,
        _ => true,
    }
}

/// Resolves `version` in `src` to the manifest for `platform`.
pub async fn resolve<S: ImageSource>(
    src: &S,
    what: &str,
    version: &ManifestRef,
    platform: &Platform,
) -> Result<Resolved, ImageError> {
    let top = src
        .fetch_manifest(version)
        .await?
        .ok_or_else(|| ImageError::NotFound {
            what: what.to_string(),
        })?;
    let (manifest, index_digest) = if is_index(&top.media_type) {
        let idx: RawIndex =
            serde_json::from_slice(&top.bytes).map_err(|e| ImageError::Malformed {
                what: what.into(),
                message: format!("image index: {e}"),
            })?;
        let chosen = idx
            .manifests
            .iter()
            .find(|m| {
                m.platform.as_ref().is_some_and(|p| {
                    p.os == platform.os
                        && p.architecture == platform.architecture
                        && variant_matches(platform, p)
                })
            })
            .ok_or_else(|| ImageError::NoPlatform {
                what: what.into(),
                wanted: format!("{}/{}", platform.os, platform.architecture),
                offered: {
                    let v: Vec<String> = idx
                        .manifests
                        .iter()
                        .filter_map(|m| m.platform.as_ref())
                        .filter(|p| p.os != "unknown")
                        .map(|p| match &p.variant {
                            Some(v) => format!("{}/{}/{}", p.os, p.architecture, v),
                            None => format!("{}/{}", p.os, p.architecture),
                        })
                        .collect();
                    if v.is_empty() {
                        "nothing".into()
                    } else {
                        v.join(", ")
                    }
                },
            })?;
        let m = src
            .fetch_manifest(&ManifestRef::Digest(chosen.digest.clone()))
            .await?
            .ok_or_else(|| ImageError::NotFound {
                what: format!("{what} platform manifest {}", chosen.digest),
            })?;
        (m, Some(top.digest))
    } else {
        (top, None)
    };
    let raw: RawManifest =
        serde_json::from_slice(&manifest.bytes).map_err(|e| ImageError::Malformed {
            what: what.into(),
            message: format!("image manifest: {e}"),
        })?;
    let config_bytes = src.fetch_blob(&raw.config.digest, MAX_CONFIG_BYTES).await?;
    let cfg: RawConfigFile =
        serde_json::from_slice(&config_bytes).map_err(|e| ImageError::Malformed {
            what: what.into(),
            message: format!("image config: {e}"),
        })?;
    let image_platform = Platform {
        os: cfg.os.clone(),
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone(),
    };
    if index_digest.is_none()
        && (cfg.os != platform.os || cfg.architecture != platform.architecture)
    {
        return Err(ImageError::NoPlatform {
            what: what.into(),
            wanted: format!("{}/{}", platform.os, platform.architecture),
            offered: format!("{}/{}", cfg.os, cfg.architecture),
        });
    }
    let c = cfg.config.unwrap_or_default();
    // Only a well-formed time, normalised to UTC, reaches policies.
    let created = cfg
        .created
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
    Ok(Resolved {
        created,
        digest: manifest.digest,
        index_digest,
        manifest_bytes: manifest.bytes,
        layers: raw.layers,
        config_digest: raw.config.digest,
        platform: image_platform,
        config: ImageConfigFacts {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
        },
    })
}
