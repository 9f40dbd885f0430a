//! The bridge between the pipeline and the trust module: gathers every signature and attestation
//! of an image as facts for the `signatures` and `attestations` hooks, with the trust material the
//! registry's configuration names (keys, a custom `trusted_root`, or the cached public-good root).
//! It decides nothing (policies do); a signature that fails is a fact with its reason.

use crate::facts::{AttestationFact, SignatureFact, SignatureKind};
use crate::registry_policy::{RegistryPolicy, RootSource};
use crate::repo::Repo;
use crate::trust::cosign::{self, TrustConfig};
use crate::trust::TrustRoot;
use std::path::Path;

/// The trust facts of one image.
#[derive(Debug, Default)]
pub struct TrustFacts {
    pub signatures: Vec<SignatureFact>,
    pub attestations: Vec<AttestationFact>,
    /// Attestations that did not count, with the reason.
    pub rejected_attestations: Vec<String>,
    /// Summary for output and metadata (SBOM, provenance, vulnerabilities).
    pub summary: serde_json::Value,
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
    home: &Path,
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
        RootSource::PublicGood => {
            match TrustRoot::public_good(&crate::cmd::trust::cache_dir(home), false) {
                Ok(r) => Some(r),
                Err(e) => {
                    root_problem = Some(e.to_string());
                    None
                }
            }
        }
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
pub async fn gather(
    repo: &Repo,
    repository: &str,
    digest: &str,
    index_digest: Option<&str>,
    policy: &RegistryPolicy,
    home: &Path,
) -> Result<TrustFacts, GatherError> {
    let (cfg, root_problem) = {
        // Reading (or first fetching) the trust root blocks; keep it off the async workers.
        let (p, home) = (policy.clone(), home.to_path_buf());
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
    let mut signatures = found.signatures;
    if let Some(problem) = root_problem {
        for s in signatures
            .iter_mut()
            .filter(|s| s.kind == SignatureKind::Keyless && !s.verified)
        {
            s.error = Some(format!(
                "{} ({problem})",
                s.error.as_deref().unwrap_or("not verified")
            ));
        }
    }
    let mut attestations = Vec::new();
    let mut rejected = found.rejected_attestations;
    for a in found.attestations {
        match policy.attestation_rejected(&a.signer) {
            None => attestations.push(a),
            Some(why) => rejected.push(format!("attestation {}: {why}", a.predicate_type)),
        }
    }
    let summary =
        serde_json::to_value(crate::trust::summary::summarize(&attestations)).unwrap_or_default();
    Ok(TrustFacts {
        signatures,
        attestations,
        rejected_attestations: rejected,
        summary,
    })
}

/// One line describing a signature for the install output.
pub fn describe_signature(s: &SignatureFact) -> String {
    let who = match s.kind {
        SignatureKind::Key => format!(
            "key {}",
            s.key_fingerprint.as_deref().unwrap_or("(unknown key)")
        ),
        SignatureKind::Keyless => format!(
            "{} (issuer {})",
            s.identity.subject.as_deref().unwrap_or("?"),
            s.identity.issuer.as_deref().unwrap_or("?")
        ),
    };
    let tlog = s
        .tlog
        .as_ref()
        .map(|t| format!(", tlog index {} at {}", t.log_index, t.integrated_time))
        .unwrap_or_default();
    let on = match (&s.signed_digest, s.on_index) {
        (Some(d), true) => format!(" on image index {d}"),
        (Some(d), false) => format!(" on {d}"),
        (None, _) => String::new(),
    };
    if s.verified {
        format!("verified: {who}{on}{tlog}")
    } else {
        format!(
            "NOT verified{on}: {who}: {}",
            s.error.as_deref().unwrap_or("unknown error")
        )
    }
}

/// Lines describing the attestations for the install output: what counted, summarised, and
/// what was dropped and why.
pub fn describe_attestations(t: &TrustFacts) -> Vec<String> {
    let mut out = Vec::new();
    let s = &t.summary;
    for sb in s["sboms"].as_array().into_iter().flatten() {
        out.push(format!(
            "SBOM {}: {} packages",
            sb["format"].as_str().unwrap_or("?"),
            sb["packages"]
        ));
    }
    for p in s["provenance"].as_array().into_iter().flatten() {
        out.push(format!(
            "provenance: builder {}, source {}",
            p["builder_id"].as_str().unwrap_or("?"),
            p["source"].as_str().unwrap_or("?")
        ));
    }
    for v in s["vulnerability_scans"].as_array().into_iter().flatten() {
        out.push(format!(
            "vulnerability scan by {}: {}",
            v["scanner"].as_str().unwrap_or("?"),
            v["by_severity"]
        ));
    }
    for r in &t.rejected_attestations {
        out.push(format!("ignored: {r}"));
    }
    out
}
