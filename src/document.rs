//! The hook document: the policy input contract of DESIGN.md as one set of types. The pipeline
//! builds a [`HookDocument`] section by section as its stages establish facts; serde turns it into
//! the Rego `input` (field for field the contract table, pinned by the golden test below), and
//! `policy::plugin::convert` turns it into the WIT record of each hook without a JSON round trip.
//! The fact types themselves live in [`crate::facts`]; this module only says which hook sees
//! which of them. Field names are public interface: add freely, never rename.

use crate::facts::{
    AttestationFact, FileEntry, ImageConfigFacts, LedgerSighting, Platform, SignatureFact,
};
use crate::policy::hook::HookPoint;
use serde::{Deserialize, Serialize};

/// Everything the hooks so far have been shown. A section is `None` until the stage that
/// establishes it has run; from then on every later hook carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDocument {
    /// The hook being evaluated (set by the gate, whatever the document held before).
    pub hook: HookPoint,
    pub registry: RegistryFacts,
    pub image: ImageFacts,
    /// What the registry and each of its mirrors said the tag names, when the registry has
    /// mirrors (from `manifest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<crate::mirrors::AgreementFacts>,
    /// Earlier sightings of this tag (from `manifest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<Vec<LedgerSighting>>,
    /// Every signature found, verified or not (from `signatures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<SignatureFact>>,
    /// Each signer quorum of the registry policy (k of n): which entry each distinct signer
    /// satisfied (from `signatures`; absent when the registry counts no quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_quorum: Option<Vec<crate::registry_policy::QuorumFacts>>,
    /// Verified, subject-bound attestations whose signer the registry accepts (from
    /// `attestations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<Vec<AttestationFact>>,
    /// Each attestation quorum (entries with `attestation_threshold`), over the attestations
    /// that counted (from `attestations`; absent when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_quorum: Option<Vec<crate::registry_policy::QuorumFacts>>,
    /// The staged filesystem (from `contents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileEntry>>,
    /// What the install is about to do (from `install`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallFacts>,
}

/// The configured registry the reference maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryFacts {
    pub name: String,
    pub url: String,
}

/// The image: its reference from `resolve`, what its manifest says from `manifest` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// Normalised reference as the user gave it (`host/repo:tag` or `host/repo@sha256:…`).
    pub reference: String,
    /// The repository path within the registry (or the layout directory).
    pub repository: String,
    /// The tag, `null` for a reference by digest.
    pub tag: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestFacts>,
}

/// What the platform manifest and its config say (the `image` fields from `manifest` on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFacts {
    /// `sha256:HEX` of the platform manifest being installed (not the index).
    pub digest: String,
    pub platform: Platform,
    pub config: ImageConfigFacts,
    /// When the image says it was built (the config's `created`, RFC 3339 UTC; the builder's
    /// claim, unverified: a verified signature's `tlog.integrated_time` is the proof of age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// What the install step is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallFacts {
    /// The package name (and command name).
    pub name: String,
    /// The entrypoint as the image declares it (a hand-written document may give an argv list,
    /// read as its words joined by spaces).
    #[serde(deserialize_with = "entrypoint_text")]
    pub entrypoint: String,
    /// Where the command wrapper is written.
    pub wrapper_path: String,
    /// The digest this install replaces, `null` for a first install.
    pub previous_digest: Option<String>,
    /// What the version this install replaces was installed with, so a policy can compare
    /// (absent for a first install).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousFacts>,
}

/// The installed version an install (an update) replaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousFacts {
    pub digest: String,
    /// The tag it was installed from (`null` for a reference by digest).
    pub tag: Option<String>,
    /// Its verified signers.
    pub signers: Vec<crate::facts::SignerFacts>,
    /// What its attestations said (`{sboms, provenance, vulnerability_scans, other}`).
    pub attestation_summary: serde_json::Value,
}

/// A fact the contract promises for a hook is missing from the document (only a hand-written
/// document, as `gantry policy eval` reads, can lack one; the pipeline always fills them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing field `{0}`")]
pub struct Missing(pub &'static str);

impl HookDocument {
    /// The document of the `resolve` hook: what is known before anything is fetched.
    pub fn new(registry: RegistryFacts, image: ImageFacts) -> Self {
        HookDocument {
            hook: HookPoint::Resolve,
            registry,
            image,
            agreement: None,
            ledger: None,
            signatures: None,
            signature_quorum: None,
            attestations: None,
            attestation_quorum: None,
            files: None,
            install: None,
        }
    }

    /// Reads a hand-written document (`gantry policy eval`, plugin tests) for `hook`.
    pub fn from_json(hook: HookPoint, input: &serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(map) = input else {
            return Err("the input document is not a JSON object".into());
        };
        let mut map = map.clone();
        map.insert("hook".into(), serde_json::Value::from(hook.as_str()));
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
    }

    /// The document as Rego's `input`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The manifest section, which every hook after `resolve` must have.
    pub fn manifest(&self) -> Result<&ManifestFacts, Missing> {
        self.image.manifest.as_ref().ok_or(Missing("image.digest"))
    }

    /// A section the hook needs, or which field is missing.
    pub fn need<'a, T>(section: &'a Option<T>, name: &'static str) -> Result<&'a T, Missing> {
        section.as_ref().ok_or(Missing(name))
    }
}

fn entrypoint_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entrypoint {
        One(String),
        Argv(Vec<String>),
    }
    Ok(match Entrypoint::deserialize(d)? {
        Entrypoint::One(s) => s,
        Entrypoint::Argv(v) => v.join(" "),
    })
}

#[cfg(test)]
mod tests;
