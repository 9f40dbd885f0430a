//! The bridge between the pipeline and the trust module: gathers every signature and attestation
//! of an image as facts for the `signatures` and `attestations` hooks, with the trust material the
//! registry's configuration names (keys, a custom `trusted_root`, or the cached public-good root).
//! It decides nothing (policies do); a signature that fails is a fact with its reason.

use crate::facts::{AttestationFact, SignatureFact, SignatureKind};
use crate::image;
use crate::registry_policy::{RegistryPolicy, RootSource};
use crate::source::ImageSource;
use crate::store::Home;
use crate::trust::cosign::{self, TrustConfig};
use crate::trust::summary::AttestationSummary;
use crate::trust::TrustRoot;

/// The trust facts of one image.
#[derive(Debug, Default)]
pub struct TrustFacts {
    pub signatures: Vec<SignatureFact>,
    pub attestations: Vec<AttestationFact>,
    /// Attestations that did not count, with the reason.
    pub rejected_attestations: Vec<String>,
    /// Summary for output and metadata (SBOM, provenance, vulnerabilities).
    pub summary: AttestationSummary,
}

/// An image whose signatures and attestations have been looked for and checked: the proof the
/// pipeline needs before it may unpack anything. Only [`verify`] builds one; whether the facts
/// are good enough is for the hooks to judge.
#[derive(Debug)]
pub struct Verified {
    image: image::Resolved,
    trust: TrustFacts,
}

impl Verified {
    /// The image that was verified.
    pub fn image(&self) -> &image::Resolved {
        &self.image
    }

    /// What was found and checked.
    pub fn trust(&self) -> &TrustFacts {
        &self.trust
    }
}

/// Checks every signature and attestation of `image` (see [`gather`]) and hands it on as
/// [`Verified`].
pub async fn verify<S: ImageSource>(
    source: &S,
    repository: &str,
    image: image::Resolved,
    policy: &RegistryPolicy,
    home: &Home,
) -> Result<Verified, GatherError> {
    let trust = gather(
        source,
        repository,
        &image.digest,
        image.index_digest.as_deref(),
        policy,
        home,
    )
    .await?;
    Ok(Verified { image, trust })
}

/// Errors gathering trust facts: a source failure or unusable trust configuration (a bad
/// signature is a fact, not an error).
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Source(#[from] crate::trust::discover::DiscoverError),
    #[error("registry '{registry}': {message}")]
    Config { registry: String, message: String },
}

/// Builds the trust material of a registry policy: every key its rules and attestors name, and
/// the trust root for keyless signers (an entry's `trusted_root`, else the cached public-good
/// root). When the root cannot be had, keyless signatures stay unverified with the reason (fail
/// closed), and key-based ones still verify.
pub fn trust_config(
    policy: &RegistryPolicy,
    home: &Home,
) -> Result<(TrustConfig, Option<String>), GatherError> {
    let err = |message: String| GatherError::Config {
        registry: policy.name.clone(),
        message,
    };
    // Keys were read and parsed once, when the policy was decided (before any pull).
    let keys = policy.public_keys();
    let mut root_problem = None;
    let trust_root = match &policy.trust_root {
        RootSource::None => None,
        RootSource::File(tr) => Some(TrustRoot::from_file(tr).map_err(|x| err(x.to_string()))?),
        RootSource::PublicGood => match TrustRoot::public_good(&home.trust_cache(), false) {
            Ok(r) => Some(r),
            Err(e) => {
                root_problem = Some(e.to_string());
                None
            }
        },
    };
    Ok((
        TrustConfig {
            keys,
            trust_root,
            require_tlog: false,
            pki: None,
        },
        root_problem,
    ))
}

/// Finds and checks every signature and attestation of `digest`, and of `index_digest` (the
/// image index the platform manifest was selected from, which binds it: what `cosign sign`
/// signs for a multi-arch tag). Attestations count only when their signer satisfies the
/// registry policy's signer rules (or attestors).
async fn gather<S: ImageSource>(
    repo: &S,
    repository: &str,
    digest: &str,
    index_digest: Option<&str>,
    policy: &RegistryPolicy,
    home: &Home,
) -> Result<TrustFacts, GatherError> {
    let (cfg, root_problem) = {
        // Reading (or first fetching) the trust root blocks; keep it off the async workers.
        let (p, home) = (policy.clone(), home.clone());
        tokio::task::spawn_blocking(move || trust_config(&p, &home))
            .await
            .map_err(|e| GatherError::Config {
                registry: policy.name.clone(),
                message: format!("trust worker failed: {e}"),
            })??
    };
    let mut found = cosign::verify_image(repo, repository, digest, &cfg).await?;
    if let Some(index) = index_digest.filter(|i| *i != digest) {
        let on_index = cosign::verify_image(repo, repository, index, &cfg).await?;
        found
            .signatures
            .extend(on_index.signatures.into_iter().map(|s| SignatureFact {
                on_index: true,
                ..s
            }));
        found.attestations.extend(on_index.attestations);
        found
            .rejected_attestations
            .extend(on_index.rejected_attestations);
    }
    // A keyless signature that could not be checked says why the root was missing.
    let signatures = found
        .signatures
        .into_iter()
        .map(|s| match &root_problem {
            Some(problem) if s.kind == SignatureKind::Keyless && !s.verified => SignatureFact {
                error: Some(format!(
                    "{} ({problem})",
                    s.error.as_deref().unwrap_or("not verified")
                )),
                ..s
            },
            _ => s,
        })
        .collect();
    let mut attestations = Vec::new();
    let mut rejected = found.rejected_attestations;
    for a in found.attestations {
        match policy.attestation_rejected(&a.signer) {
            None => attestations.push(a),
            Some(why) => rejected.push(format!("attestation {}: {why}", a.predicate_type)),
        }
    }
    let summary = crate::trust::summary::summarize(&attestations);
    Ok(TrustFacts {
        signatures,
        attestations,
        rejected_attestations: rejected,
        summary,
    })
}
