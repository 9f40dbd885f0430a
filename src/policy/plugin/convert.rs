//! Turns the hook document into the typed WIT record of its hook, straight from the types of
//! `crate::document` and `crate::facts` (no JSON in between), so a plugin and a Rego policy judge
//! exactly the same data; and calls a plugin's export with it. This is the one place that pairs
//! hooks with WIT types. Every conversion destructures its source, so a field added to a fact
//! type does not compile until it is either passed on here or deliberately left out. A fact the
//! contract promises for a hook but the document lacks is an error (the caller denies), never a
//! silently empty field.

use super::bindings::gantry::policy::types as wit;
use super::sandbox::{HostState, RawVerdict};
use crate::document::{
    HookDocument, ImageFacts, InstallFacts, ManifestFacts, Missing, RegistryFacts,
};
use crate::facts::{
    AttestationFact, FileEntry, FileType, GithubWorkflow, Identity, LedgerSighting, Platform,
    SignatureFact, SignatureKind, SignatureSource, SignerFacts, TlogEntry,
};
use crate::policy::hook::HookPoint;
use wasmtime::component::{ComponentExportIndex, Instance};
use wasmtime::Store;

/// The typed input of one hook call.
pub enum HookInput {
    Resolve(wit::ResolveInput),
    Manifest(wit::ManifestInput),
    Signatures(wit::SignaturesInput),
    Attestations(wit::AttestationsInput),
    Contents(wit::ContentsInput),
    Install(wit::InstallInput),
}

impl HookInput {
    /// The WIT record of `doc.hook`, built from the document's sections.
    pub fn from_document(doc: &HookDocument) -> Result<HookInput, Missing> {
        let registry = wit::Registry::from(&doc.registry);
        if doc.hook == HookPoint::Resolve {
            let image = wit::ImageRef::from(&doc.image);
            return Ok(HookInput::Resolve(wit::ResolveInput { registry, image }));
        }
        let image = image(&doc.image, doc.manifest()?);
        // Hand-written documents may leave the ledger out: no earlier sightings.
        let ledger = list(doc.ledger.as_deref().unwrap_or_default());
        if doc.hook == HookPoint::Manifest {
            let i = wit::ManifestInput {
                registry,
                image,
                ledger,
            };
            return Ok(HookInput::Manifest(i));
        }
        let signatures = list(HookDocument::need(&doc.signatures, "signatures")?);
        if doc.hook == HookPoint::Signatures {
            let i = wit::SignaturesInput {
                registry,
                image,
                ledger,
                signatures,
            };
            return Ok(HookInput::Signatures(i));
        }
        let attestations = list(HookDocument::need(&doc.attestations, "attestations")?);
        if doc.hook == HookPoint::Attestations {
            let i = wit::AttestationsInput {
                registry,
                image,
                ledger,
                signatures,
                attestations,
            };
            return Ok(HookInput::Attestations(i));
        }
        let files = list(HookDocument::need(&doc.files, "files")?);
        if doc.hook == HookPoint::Contents {
            let i = wit::ContentsInput {
                registry,
                image,
                ledger,
                signatures,
                attestations,
                files,
            };
            return Ok(HookInput::Contents(i));
        }
        let install = wit::InstallFacts::from(HookDocument::need(&doc.install, "install")?);
        let i = wit::InstallInput {
            registry,
            image,
            ledger,
            signatures,
            attestations,
            files,
            install,
        };
        Ok(HookInput::Install(i))
    }

    /// The hook this is the input of.
    pub fn hook(&self) -> HookPoint {
        match self {
            HookInput::Resolve(_) => HookPoint::Resolve,
            HookInput::Manifest(_) => HookPoint::Manifest,
            HookInput::Signatures(_) => HookPoint::Signatures,
            HookInput::Attestations(_) => HookPoint::Attestations,
            HookInput::Contents(_) => HookPoint::Contents,
            HookInput::Install(_) => HookPoint::Install,
        }
    }

    /// Calls the plugin's `check` export for this input's hook, on a fresh instance.
    pub(super) fn call(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        index: &ComponentExportIndex,
    ) -> wasmtime::Result<RawVerdict> {
        use HookInput as H;
        match self {
            H::Resolve(i) => call_check(store, instance, index, i),
            H::Manifest(i) => call_check(store, instance, index, i),
            H::Signatures(i) => call_check(store, instance, index, i),
            H::Attestations(i) => call_check(store, instance, index, i),
            H::Contents(i) => call_check(store, instance, index, i),
            H::Install(i) => call_check(store, instance, index, i),
        }
    }

    /// Looks the `check` export of `hook` up with the input type of that hook, so a plugin whose
    /// `check` has the wrong signature fails at load rather than at each call.
    pub(super) fn typecheck(
        hook: HookPoint,
        store: &mut Store<HostState>,
        instance: &Instance,
        index: &ComponentExportIndex,
    ) -> wasmtime::Result<()> {
        match hook {
            HookPoint::Resolve => typed::<wit::ResolveInput>(store, instance, index),
            HookPoint::Manifest => typed::<wit::ManifestInput>(store, instance, index),
            HookPoint::Signatures => typed::<wit::SignaturesInput>(store, instance, index),
            HookPoint::Attestations => typed::<wit::AttestationsInput>(store, instance, index),
            HookPoint::Contents => typed::<wit::ContentsInput>(store, instance, index),
            HookPoint::Install => typed::<wit::InstallInput>(store, instance, index),
        }
    }

    /// Parses a hand-written JSON document as the input of `hook`.
    pub fn from_json(hook: HookPoint, input: &serde_json::Value) -> Result<HookInput, String> {
        let doc = HookDocument::from_json(hook, input)?;
        HookInput::from_document(&doc).map_err(|e| e.to_string())
    }
}

fn typed<I>(
    store: &mut Store<HostState>,
    instance: &Instance,
    index: &ComponentExportIndex,
) -> wasmtime::Result<()>
where
    I: wasmtime::component::ComponentType + wasmtime::component::Lower,
{
    instance
        .get_typed_func::<(&I,), (RawVerdict,)>(&mut *store, index)
        .map(drop)
}

fn call_check<I>(
    store: &mut Store<HostState>,
    instance: &Instance,
    index: &ComponentExportIndex,
    input: &I,
) -> wasmtime::Result<RawVerdict>
where
    I: wasmtime::component::ComponentType + wasmtime::component::Lower,
{
    let check = instance.get_typed_func::<(&I,), (RawVerdict,)>(&mut *store, index)?;
    let (verdict,) = check.call(&mut *store, (input,))?;
    Ok(verdict)
}

fn list<'a, T: 'a, W: From<&'a T>>(items: &'a [T]) -> Vec<W> {
    items.iter().map(W::from).collect()
}

impl From<&RegistryFacts> for wit::Registry {
    fn from(r: &RegistryFacts) -> Self {
        let RegistryFacts { name, url } = r;
        wit::Registry {
            name: name.clone(),
            url: url.clone(),
        }
    }
}

impl From<&ImageFacts> for wit::ImageRef {
    fn from(i: &ImageFacts) -> Self {
        let ImageFacts {
            reference,
            repository,
            tag,
            manifest: _,
        } = i;
        wit::ImageRef {
            reference: reference.clone(),
            repository: repository.clone(),
            tag: tag.clone(),
        }
    }
}

fn image(i: &ImageFacts, m: &ManifestFacts) -> wit::Image {
    let ManifestFacts {
        digest,
        platform,
        config,
        // Not in gantry:policy@0.1.0; plugins see it with the next WIT version.
        created: _,
    } = m;
    let wit::ImageRef {
        reference,
        repository,
        tag,
    } = wit::ImageRef::from(i);
    wit::Image {
        reference,
        repository,
        tag,
        digest: digest.clone(),
        platform: wit::Platform::from(platform),
        config: serde_json::to_string(config).unwrap_or_else(|_| "{}".into()),
    }
}

impl From<&Platform> for wit::Platform {
    fn from(p: &Platform) -> Self {
        let Platform {
            os,
            architecture,
            variant,
        } = p;
        wit::Platform {
            os: os.clone(),
            architecture: architecture.clone(),
            variant: variant.clone(),
        }
    }
}

impl From<&LedgerSighting> for wit::LedgerSighting {
    fn from(s: &LedgerSighting) -> Self {
        let LedgerSighting {
            digest,
            first_seen,
            last_seen,
        } = s;
        wit::LedgerSighting {
            digest: digest.clone(),
            first_seen: first_seen.clone(),
            last_seen: last_seen.clone(),
        }
    }
}

impl From<SignatureKind> for wit::SignatureKind {
    fn from(k: SignatureKind) -> Self {
        match k {
            SignatureKind::Key => wit::SignatureKind::Key,
            SignatureKind::Keyless => wit::SignatureKind::Keyless,
        }
    }
}

impl From<SignatureSource> for wit::SignatureSource {
    fn from(s: SignatureSource) -> Self {
        match s {
            SignatureSource::CosignTag => wit::SignatureSource::CosignTag,
            SignatureSource::Referrers => wit::SignatureSource::Referrers,
            SignatureSource::Bundle => wit::SignatureSource::Bundle,
        }
    }
}

impl From<&Identity> for wit::Identity {
    fn from(i: &Identity) -> Self {
        let Identity {
            issuer,
            subject,
            github,
        } = i;
        wit::Identity {
            issuer: issuer.clone(),
            subject: subject.clone(),
            github: github.as_ref().map(wit::GithubWorkflow::from),
        }
    }
}

impl From<&GithubWorkflow> for wit::GithubWorkflow {
    fn from(g: &GithubWorkflow) -> Self {
        let GithubWorkflow {
            workflow_repository,
            workflow_ref,
            workflow_trigger,
            workflow_sha,
            workflow_name,
        } = g;
        wit::GithubWorkflow {
            workflow_repository: workflow_repository.clone(),
            workflow_ref: workflow_ref.clone(),
            workflow_trigger: workflow_trigger.clone(),
            workflow_sha: workflow_sha.clone(),
            workflow_name: workflow_name.clone(),
        }
    }
}

impl From<&TlogEntry> for wit::TlogEntry {
    fn from(t: &TlogEntry) -> Self {
        let TlogEntry {
            log_index,
            integrated_time,
            log_id,
        } = t;
        wit::TlogEntry {
            log_index: *log_index,
            integrated_time: *integrated_time,
            log_id: log_id.clone(),
        }
    }
}

impl From<&SignatureFact> for wit::Signature {
    fn from(s: &SignatureFact) -> Self {
        let SignatureFact {
            verified,
            error,
            kind,
            source,
            key_fingerprint,
            identity,
            tlog,
            // Not in gantry:policy@0.1.0; plugins see them with the next WIT version.
            docker_reference: _,
            signed_digest: _,
            on_index: _,
        } = s;
        wit::Signature {
            verified: *verified,
            error: error.clone(),
            kind: (*kind).into(),
            source: (*source).into(),
            key_fingerprint: key_fingerprint.clone(),
            identity: identity.into(),
            tlog: tlog.as_ref().map(wit::TlogEntry::from),
        }
    }
}

impl From<&SignerFacts> for wit::Signer {
    fn from(s: &SignerFacts) -> Self {
        let SignerFacts {
            kind,
            key_fingerprint,
            identity,
            tlog,
        } = s;
        wit::Signer {
            kind: kind.map(wit::SignatureKind::from),
            key_fingerprint: key_fingerprint.clone(),
            identity: identity.into(),
            tlog: tlog.as_ref().map(wit::TlogEntry::from),
        }
    }
}

impl From<&AttestationFact> for wit::Attestation {
    fn from(a: &AttestationFact) -> Self {
        let AttestationFact {
            predicate_type,
            predicate,
            signer,
        } = a;
        wit::Attestation {
            predicate_type: predicate_type.clone(),
            predicate: predicate.to_string(),
            signer: signer.into(),
        }
    }
}

impl From<&FileEntry> for wit::FileEntry {
    fn from(f: &FileEntry) -> Self {
        let FileEntry {
            path,
            file_type,
            mode,
            original_mode,
            size,
            link_target,
        } = f;
        wit::FileEntry {
            path: path.clone(),
            type_: match file_type {
                FileType::File => wit::FileType::File,
                FileType::Dir => wit::FileType::Dir,
                FileType::Symlink => wit::FileType::Symlink,
                FileType::Hardlink => wit::FileType::Hardlink,
            },
            mode: *mode,
            original_mode: *original_mode,
            size: *size,
            link_target: link_target.clone(),
        }
    }
}

impl From<&InstallFacts> for wit::InstallFacts {
    fn from(i: &InstallFacts) -> Self {
        let InstallFacts {
            name,
            entrypoint,
            wrapper_path,
            previous_digest,
            // Not in gantry:policy@0.1.0; plugins see it with the next WIT version.
            previous: _,
        } = i;
        wit::InstallFacts {
            name: name.clone(),
            entrypoint: entrypoint.clone(),
            wrapper_path: wrapper_path.clone(),
            previous_digest: previous_digest.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest_doc() -> serde_json::Value {
        json!({
            "hook": "manifest",
            "registry": {"name": "ghcr", "url": "https://ghcr.io"},
            "image": {
                "reference": "ghcr.io/acme/tool:1.0", "repository": "acme/tool", "tag": "1.0",
                "digest": "sha256:aa", "platform": {"os": "linux", "architecture": "amd64"},
                "config": {"labels": {"org.opencontainers.image.source": "https://github.com/acme/tool"}}
            },
            "ledger": [{"digest": "sha256:bb", "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-02T00:00:00Z"}]
        })
    }

    #[test]
    fn manifest_document_becomes_typed_record_with_config_as_json() {
        let HookInput::Manifest(m) =
            HookInput::from_json(HookPoint::Manifest, &manifest_doc()).unwrap()
        else {
            panic!("wrong hook input")
        };
        assert_eq!(m.image.digest, "sha256:aa");
        assert_eq!(m.image.platform.variant, None);
        assert_eq!(m.ledger[0].digest, "sha256:bb");
        let config: serde_json::Value = serde_json::from_str(&m.image.config).unwrap();
        assert_eq!(
            config["labels"]["org.opencontainers.image.source"],
            "https://github.com/acme/tool"
        );
    }

    #[test]
    fn a_fact_promised_for_the_hook_but_missing_is_an_error() {
        // The signatures hook without `signatures` must not look like "no signatures".
        let err = HookInput::from_json(HookPoint::Signatures, &manifest_doc())
            .err()
            .unwrap();
        assert!(err.contains("signatures"), "{err}");
        let mut doc = manifest_doc();
        doc["image"].as_object_mut().unwrap().remove("digest");
        let err = HookInput::from_json(HookPoint::Manifest, &doc)
            .err()
            .unwrap();
        assert!(err.contains("image.digest"), "{err}");
        assert!(HookInput::from_json(HookPoint::Resolve, &json!({"image": {}})).is_err());
    }

    #[test]
    fn install_document_carries_every_earlier_fact() {
        let mut doc = manifest_doc();
        doc["signatures"] = json!([{"verified": true, "kind": "keyless", "source": "bundle",
            "identity": {"issuer": "https://token.actions.githubusercontent.com", "subject": "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1"},
            "tlog": {"log_index": 7, "integrated_time": 1700000000}}]);
        doc["attestations"] = json!([{"predicate_type": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {}}, "signer": {"kind": "keyless", "identity": {}}}]);
        doc["files"] = json!([{"path": "bin/tool", "type": "file", "mode": 493, "original_mode": 2541, "size": 10}]);
        doc["install"] = json!({"name": "tool", "entrypoint": ["/bin/tool", "--x"], "wrapper_path": "bin/tool", "previous_digest": null});
        let HookInput::Install(i) = HookInput::from_json(HookPoint::Install, &doc).unwrap() else {
            panic!("wrong hook input")
        };
        assert_eq!(i.signatures[0].tlog.as_ref().unwrap().log_index, 7);
        assert!(matches!(i.signatures[0].kind, wit::SignatureKind::Keyless));
        assert_eq!(i.attestations[0].predicate, r#"{"buildDefinition":{}}"#);
        assert_eq!(i.files[0].original_mode, 2541);
        assert_eq!(i.install.entrypoint, "/bin/tool --x");
        assert_eq!(i.image.repository, "acme/tool");
    }
}
