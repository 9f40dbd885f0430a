//! Finding what is attached to an image: cosign `sha256-HEX.sig` simple-signing layers,
//! `sha256-HEX.att` DSSE layers, and OCI 1.1 referrers (cosign signature/attestation artifacts
//! and sigstore bundles, v0.1–v0.3 spellings). Everything is read through [`ImageSource`], every
//! blob is bounded, and attachments of other media types are ignored. Discovery never decides
//! whether anything is valid: it hands raw bytes to `cosign` for checking.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::facts::SignatureSource;
use crate::source::{ImageSource, ManifestRef, SourceError};

use super::dsse::DSSE_LAYER_MEDIA_TYPE;
use super::sign::SIMPLE_SIGNING_MEDIA_TYPE;

/// Largest attachment manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest simple-signing payload read (cosign's are ~250 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 1 << 20;
/// Largest DSSE envelope or bundle read (SBOMs can be large).
pub const MAX_ATTESTATION_BYTES: u64 = 64 << 20;
/// Most layers looked at in one attachment manifest, and most referrers followed.
pub const MAX_ATTACHMENTS: usize = 256;
/// Most bytes of attachment blobs read for one image, all layers together.
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;

/// Referrer artifact type of a cosign signature.
pub const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Referrer artifact type of a cosign attestation.
pub const COSIGN_ATT_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.att.v1+json";

/// True for every spelling of the sigstore bundle media type (v0.1–v0.3).
pub fn is_bundle_media_type(mt: &str) -> bool {
    matches!(
        mt,
        "application/vnd.dev.sigstore.bundle.v0.3+json"
            | "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle+json;version=0.2"
            | "application/vnd.dev.sigstore.bundle+json;version=0.1"
    )
}

/// Why discovery could not complete (the source failed; nothing here judges content).
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("reading attachments of {digest}: {source}")]
    Source {
        digest: String,
        #[source]
        source: SourceError,
    },
}

/// One attachment layer as found: the blob and the layer's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLayer {
    pub source: SignatureSource,
    /// Where it was found, for messages (`sha256-….sig layer 2`, `referrer sha256:…`).
    pub origin: String,
    pub blob: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Everything attached to one image digest, unverified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Simple-signing payloads (`.sig` tag and cosign signature referrers).
    pub signatures: Vec<FoundLayer>,
    /// DSSE envelopes (`.att` tag and cosign attestation referrers).
    pub attestations: Vec<FoundLayer>,
    /// Sigstore bundles (referrers).
    pub bundles: Vec<FoundLayer>,
    /// Attachment layers of a verified media type that could not be read (too large, no
    /// digest, digest mismatch), with why. Each becomes an unverified fact or a rejection.
    pub unusable: Vec<Unusable>,
}

/// What kind of attachment a layer is, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    Signature,
    Attestation,
    Bundle,
}

/// An attachment layer that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub source: SignatureSource,
    pub kind: AttachmentKind,
    pub reason: String,
}

/// Finds all attachments of manifest `digest` (`sha256:HEX`).
pub async fn discover<S: ImageSource>(src: &S, digest: &str) -> Result<Discovered, DiscoverError> {
    let err = |source| DiscoverError::Source {
        digest: digest.to_string(),
        source,
    };
    let mut out = Discovered::default();
    let mut budget = MAX_TOTAL_BYTES;
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Ok(out);
    };
    for suffix in ["sig", "att"] {
        let tag = format!("sha256-{hex}.{suffix}");
        if let Some(m) = src
            .fetch_manifest(&ManifestRef::Tag(tag.clone()))
            .await
            .map_err(err)?
        {
            collect_layers(
                src,
                &m.bytes,
                SignatureSource::CosignTag,
                &tag,
                &mut out,
                &mut budget,
            )
            .await
            .map_err(err)?;
        }
    }
    let referrers = src.referrers(digest).await.map_err(err)?;
    for r in referrers.iter().take(MAX_ATTACHMENTS) {
        // An oversized referrer cannot be a signature gantry would read; skipping it can only
        // leave the image with fewer verified signatures, never more.
        if r.size < 0 || r.size as u64 > MAX_MANIFEST_BYTES {
            continue;
        }
        let Some(m) = src
            .fetch_manifest(&ManifestRef::Digest(r.digest.clone()))
            .await
            .map_err(err)?
        else {
            continue;
        };
        let origin = format!("referrer {}", r.digest);
        collect_layers(
            src,
            &m.bytes,
            SignatureSource::Referrers,
            &origin,
            &mut out,
            &mut budget,
        )
        .await
        .map_err(err)?;
    }
    Ok(out)
}

/// Reads the layers of one attachment manifest that have a media type we verify.
async fn collect_layers<S: ImageSource>(
    src: &S,
    manifest: &[u8],
    source: SignatureSource,
    origin: &str,
    out: &mut Discovered,
    budget: &mut u64,
) -> Result<(), SourceError> {
    let Ok(m) = serde_json::from_slice::<Value>(manifest) else {
        return Ok(());
    };
    let artifact_type = m
        .get("artifactType")
        .or_else(|| m.pointer("/config/mediaType"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let layers = m
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, layer) in layers.iter().take(MAX_ATTACHMENTS).enumerate() {
        let media_type = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let (kind, limit) = if media_type == SIMPLE_SIGNING_MEDIA_TYPE {
            (AttachmentKind::Signature, MAX_SIGNATURE_BYTES)
        } else if media_type == DSSE_LAYER_MEDIA_TYPE {
            (AttachmentKind::Attestation, MAX_ATTESTATION_BYTES)
        } else if is_bundle_media_type(media_type)
            || (i == 0 && is_bundle_media_type(artifact_type))
        {
            (AttachmentKind::Bundle, MAX_ATTESTATION_BYTES)
        } else {
            // Other attachments (SBOM blobs, text/plain, …) are not signatures: ignore them.
            continue;
        };
        let origin = format!("{origin} layer {}", i + 1);
        let unusable = |reason: String| Unusable {
            source,
            kind,
            reason: format!("{origin}: {reason}"),
        };
        let Some(digest) = layer.get("digest").and_then(Value::as_str) else {
            out.unusable.push(unusable("layer has no digest".into()));
            continue;
        };
        let size = layer.get("size").and_then(Value::as_i64).unwrap_or(-1);
        if size < 0 || size as u64 > limit {
            out.unusable.push(unusable(format!(
                "layer size {size} is outside 0..={limit} bytes"
            )));
            continue;
        }
        if *budget < size as u64 {
            out.unusable.push(unusable(format!(
                "over the {MAX_TOTAL_BYTES}-byte budget for one image's attachments"
            )));
            continue;
        }
        *budget -= size as u64;
        let blob = match src.fetch_blob(digest, size as u64).await {
            Ok(b) => b,
            // A blob that does not match its digest or cap is a bad attachment, not a source outage.
            Err(e @ (SourceError::DigestMismatch { .. } | SourceError::TooLarge { .. })) => {
                out.unusable.push(unusable(e.to_string()));
                continue;
            }
            Err(e) => return Err(e),
        };
        let annotations: BTreeMap<String, String> = layer
            .get("annotations")
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let source = if kind == AttachmentKind::Bundle {
            SignatureSource::Bundle
        } else {
            source
        };
        let found = FoundLayer {
            source,
            origin,
            blob,
            annotations,
        };
        match kind {
            AttachmentKind::Signature => out.signatures.push(found),
            AttachmentKind::Attestation => out.attestations.push(found),
            AttachmentKind::Bundle => out.bundles.push(found),
        }
    }
    Ok(())
}

/// An in-memory [`ImageSource`] for unit tests: tags and digests map to manifests, blobs are
/// digest-checked like a real source.
#[cfg(test)]
pub(crate) mod memsource {
    use std::collections::HashMap;
    use std::future::Future;

    use crate::source::{Descriptor, FetchedManifest, ImageSource, ManifestRef, SourceError};
    use crate::trust::sign::{self, AttachmentLayer};

    #[derive(Default)]
    pub struct MemSource {
        pub manifests: HashMap<String, Vec<u8>>,
        pub blobs: HashMap<String, Vec<u8>>,
        pub referrers: Vec<Descriptor>,
    }

    impl MemSource {
        /// Stores `layers` under the cosign tag `sha256-HEX.SUFFIX` of `digest`, as publish would.
        pub fn attach(&mut self, digest: &str, suffix: &str, layers: &[AttachmentLayer]) {
            let tag = sign::attachment_tag(digest, suffix).unwrap();
            for l in layers {
                let existing = self.manifests.get(&tag).cloned();
                let m = sign::build_attachment_manifest(existing.as_deref(), l).unwrap();
                self.blobs.insert(m.layer_digest.clone(), l.payload.clone());
                self.manifests.insert(tag.clone(), m.manifest);
            }
        }

        /// Stores a raw manifest under a digest and lists it as a referrer.
        pub fn add_referrer(&mut self, manifest: Vec<u8>) {
            let digest = sign::sha256_digest(&manifest);
            self.referrers.push(Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: digest.clone(),
                size: manifest.len() as i64,
                ..Default::default()
            });
            self.manifests.insert(digest, manifest);
        }

        pub fn add_blob(&mut self, blob: Vec<u8>) -> String {
            let d = sign::sha256_digest(&blob);
            self.blobs.insert(d.clone(), blob);
            d
        }
    }

    impl ImageSource for MemSource {
        fn fetch_manifest(
            &self,
            r: &ManifestRef,
        ) -> impl Future<Output = Result<Option<FetchedManifest>, SourceError>> + Send {
            let key = match r {
                ManifestRef::Tag(t) => t.clone(),
                ManifestRef::Digest(d) => d.clone(),
            };
            let found = self.manifests.get(&key).map(|bytes| FetchedManifest {
                bytes: bytes.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: sign::sha256_digest(bytes),
            });
            async move { Ok(found) }
        }

        fn fetch_blob(
            &self,
            digest: &str,
            max_size: u64,
        ) -> impl Future<Output = Result<Vec<u8>, SourceError>> + Send {
            let what = format!("blob {digest}");
            let res = match self.blobs.get(digest) {
                None => Err(SourceError::Registry {
                    what,
                    message: "not found".into(),
                }),
                Some(b) if b.len() as u64 > max_size => Err(SourceError::TooLarge {
                    what,
                    limit: max_size,
                }),
                Some(b) if sign::sha256_digest(b) != digest => Err(SourceError::DigestMismatch {
                    what,
                    expected: digest.into(),
                    actual: sign::sha256_digest(b),
                }),
                Some(b) => Ok(b.clone()),
            };
            async move { res }
        }

        fn referrers(
            &self,
            _digest: &str,
        ) -> impl Future<Output = Result<Vec<Descriptor>, SourceError>> + Send {
            let r = self.referrers.clone();
            async move { Ok(r) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memsource::MemSource;
    use super::*;
    use crate::trust::sign::AttachmentLayer;

    const D: &str = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";

    fn layer(media_type: &str, payload: &[u8]) -> AttachmentLayer {
        AttachmentLayer {
            payload: payload.to_vec(),
            media_type: media_type.into(),
            annotations: BTreeMap::new(),
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn finds_sig_att_and_referrers_and_ignores_other_media_types() {
        let mut src = MemSource::default();
        src.attach(
            D,
            "sig",
            &[
                layer(SIMPLE_SIGNING_MEDIA_TYPE, b"s1"),
                layer("text/plain", b"x"),
            ],
        );
        src.attach(D, "att", &[layer(DSSE_LAYER_MEDIA_TYPE, b"a1")]);
        let bundle = b"{}".to_vec();
        let bd = src.add_blob(bundle.clone());
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": bd, "size": bundle.len()}]});
        src.add_referrer(serde_json::to_vec(&m).unwrap());
        let sbom = src.add_blob(b"sbom".to_vec());
        let other = serde_json::json!({"schemaVersion": 2, "artifactType": "application/spdx+json",
            "layers": [{"mediaType": "application/spdx+json", "digest": sbom, "size": 4}]});
        src.add_referrer(serde_json::to_vec(&other).unwrap());
        let found = run(discover(&src, D)).unwrap();
        assert_eq!(found.signatures.len(), 1);
        assert_eq!(found.signatures[0].blob, b"s1");
        assert_eq!(found.signatures[0].source, SignatureSource::CosignTag);
        assert_eq!(found.attestations.len(), 1);
        assert_eq!(found.bundles.len(), 1);
        assert_eq!(found.bundles[0].source, SignatureSource::Bundle);
        assert!(found.unusable.is_empty());
    }

    #[test]
    fn oversized_and_mismatched_blobs_become_unusable_not_errors() {
        let mut src = MemSource::default();
        src.attach(D, "sig", &[layer(SIMPLE_SIGNING_MEDIA_TYPE, b"good")]);
        // Lie about the size in the manifest: larger than the signature cap.
        let tag = crate::trust::sign::attachment_tag(D, "sig").unwrap();
        let mut m: Value = serde_json::from_slice(&src.manifests[&tag]).unwrap();
        m["layers"][0]["size"] = serde_json::json!(MAX_SIGNATURE_BYTES + 1);
        let honest = m["layers"][0].clone();
        let mut swapped = honest.clone();
        swapped["size"] = serde_json::json!(4);
        swapped["digest"] = serde_json::json!(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        );
        src.blobs.insert(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
            b"evil".to_vec(),
        );
        m["layers"] = serde_json::json!([honest, swapped]);
        src.manifests.insert(tag, serde_json::to_vec(&m).unwrap());
        let found = run(discover(&src, D)).unwrap();
        assert!(found.signatures.is_empty());
        assert_eq!(found.unusable.len(), 2, "{:?}", found.unusable);
        assert!(found.unusable[0].reason.contains("outside"));
        assert!(found.unusable[1].reason.contains("digest mismatch"));
    }

    #[test]
    fn no_attachments_is_empty_and_a_bad_digest_finds_nothing() {
        let src = MemSource::default();
        assert_eq!(run(discover(&src, D)).unwrap(), Discovered::default());
        assert_eq!(
            run(discover(&src, "latest")).unwrap(),
            Discovered::default()
        );
    }

    #[test]
    fn attachment_bytes_are_budgeted_per_image() {
        let mut src = MemSource::default();
        let layers: Vec<_> = (0..5)
            .map(|i| layer(DSSE_LAYER_MEDIA_TYPE, format!("a{i}").as_bytes()))
            .collect();
        src.attach(D, "att", &layers);
        // Each layer claims 60 MiB: within the per-layer cap, but five exceed the image budget.
        let tag = crate::trust::sign::attachment_tag(D, "att").unwrap();
        let mut m: Value = serde_json::from_slice(&src.manifests[&tag]).unwrap();
        for l in m["layers"].as_array_mut().unwrap() {
            l["size"] = serde_json::json!(60u64 << 20);
        }
        src.manifests.insert(tag, serde_json::to_vec(&m).unwrap());
        let found = run(discover(&src, D)).unwrap();
        assert_eq!(found.attestations.len(), 4);
        assert_eq!(found.unusable.len(), 1);
        assert_eq!(found.unusable[0].kind, AttachmentKind::Attestation);
        assert!(found.unusable[0].reason.contains("budget"));
    }
}
