//! Turns a hook's JSON input document (the policy input contract, as Rego sees it) into the typed
//! WIT record of that hook. The stable facts are parsed through the types of `crate::facts`, so a
//! plugin and a Rego policy judge exactly the same data. A fact the contract promises for a hook
//! but the document lacks is an error (the caller denies), never a silently empty field.

use super::bindings::gantry::policy::types as wit;
use crate::facts::{
    AttestationFact, FileEntry, FileType, GithubWorkflow, Identity, LedgerSighting, Platform,
    SignatureFact, SignatureKind, SignatureSource, SignerFacts, TlogEntry,
};
use crate::policy::hook::HookPoint;
use serde::Deserialize;

/// The typed input of one hook call.
pub enum HookInput {
    Resolve(wit::ResolveInput),
    Manifest(wit::ManifestInput),
    Signatures(wit::SignaturesInput),
    Attestations(wit::AttestationsInput),
    Contents(wit::ContentsInput),
    Install(wit::InstallInput),
}

/// The input document as far as plugins read it; later facts are optional here and required per
/// hook below.
#[derive(Deserialize)]
struct Document {
    registry: RegistryDoc,
    image: ImageDoc,
    #[serde(default)]
    ledger: Vec<LedgerSighting>,
    signatures: Option<Vec<SignatureFact>>,
    attestations: Option<Vec<AttestationFact>>,
    files: Option<Vec<FileEntry>>,
    install: Option<InstallDoc>,
}

#[derive(Deserialize)]
struct RegistryDoc {
    name: String,
    url: String,
}

#[derive(Deserialize)]
struct ImageDoc {
    reference: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
    platform: Option<Platform>,
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct InstallDoc {
    name: String,
    entrypoint: Entrypoint,
    wrapper_path: String,
    previous_digest: Option<String>,
}

/// The entrypoint as a path, or as an argv list (joined with spaces for the WIT string).
#[derive(Deserialize)]
#[serde(untagged)]
enum Entrypoint {
    One(String),
    Argv(Vec<String>),
}

/// Parses `input` as the document of `hook` into its WIT record.
pub fn hook_input(hook: HookPoint, input: &serde_json::Value) -> Result<HookInput, String> {
    let doc = Document::deserialize(input).map_err(|e| e.to_string())?;
    let registry = wit::Registry {
        name: doc.registry.name,
        url: doc.registry.url,
    };
    if hook == HookPoint::Resolve {
        let i = doc.image;
        let image = wit::ImageRef {
            reference: i.reference,
            repository: i.repository,
            tag: i.tag,
        };
        return Ok(HookInput::Resolve(wit::ResolveInput { registry, image }));
    }
    let image = image(doc.image)?;
    let ledger = doc.ledger.into_iter().map(ledger).collect();
    if hook == HookPoint::Manifest {
        return Ok(HookInput::Manifest(wit::ManifestInput {
            registry,
            image,
            ledger,
        }));
    }
    let signatures = need(doc.signatures, "signatures")?
        .into_iter()
        .map(signature)
        .collect();
    if hook == HookPoint::Signatures {
        return Ok(HookInput::Signatures(wit::SignaturesInput {
            registry,
            image,
            ledger,
            signatures,
        }));
    }
    let attestations = need(doc.attestations, "attestations")?
        .into_iter()
        .map(attestation)
        .collect();
    if hook == HookPoint::Attestations {
        let i = wit::AttestationsInput {
            registry,
            image,
            ledger,
            signatures,
            attestations,
        };
        return Ok(HookInput::Attestations(i));
    }
    let files = need(doc.files, "files")?.into_iter().map(file).collect();
    if hook == HookPoint::Contents {
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
    let install = install(need(doc.install, "install")?);
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

fn need<T>(fact: Option<T>, field: &str) -> Result<T, String> {
    fact.ok_or_else(|| format!("missing field `{field}`"))
}

fn image(i: ImageDoc) -> Result<wit::Image, String> {
    let p = need(i.platform, "image.platform")?;
    let config = i.config.unwrap_or_else(|| serde_json::json!({}));
    Ok(wit::Image {
        reference: i.reference,
        repository: i.repository,
        tag: i.tag,
        digest: need(i.digest, "image.digest")?,
        platform: wit::Platform {
            os: p.os,
            architecture: p.architecture,
            variant: p.variant,
        },
        config: config.to_string(),
    })
}

fn ledger(s: LedgerSighting) -> wit::LedgerSighting {
    wit::LedgerSighting {
        digest: s.digest,
        first_seen: s.first_seen,
        last_seen: s.last_seen,
    }
}

fn kind(k: SignatureKind) -> wit::SignatureKind {
    match k {
        SignatureKind::Key => wit::SignatureKind::Key,
        SignatureKind::Keyless => wit::SignatureKind::Keyless,
    }
}

fn identity(i: Identity) -> wit::Identity {
    wit::Identity {
        issuer: i.issuer,
        subject: i.subject,
        github: i.github.map(github),
    }
}

fn github(g: GithubWorkflow) -> wit::GithubWorkflow {
    wit::GithubWorkflow {
        workflow_repository: g.workflow_repository,
        workflow_ref: g.workflow_ref,
        workflow_trigger: g.workflow_trigger,
        workflow_sha: g.workflow_sha,
        workflow_name: g.workflow_name,
    }
}

fn tlog(t: TlogEntry) -> wit::TlogEntry {
    wit::TlogEntry {
        log_index: t.log_index,
        integrated_time: t.integrated_time,
        log_id: t.log_id,
    }
}

fn signature(s: SignatureFact) -> wit::Signature {
    wit::Signature {
        verified: s.verified,
        error: s.error,
        kind: kind(s.kind),
        source: match s.source {
            SignatureSource::CosignTag => wit::SignatureSource::CosignTag,
            SignatureSource::Referrers => wit::SignatureSource::Referrers,
            SignatureSource::Bundle => wit::SignatureSource::Bundle,
        },
        key_fingerprint: s.key_fingerprint,
        identity: identity(s.identity),
        tlog: s.tlog.map(tlog),
    }
}

fn signer(s: SignerFacts) -> wit::Signer {
    wit::Signer {
        kind: s.kind.map(kind),
        key_fingerprint: s.key_fingerprint,
        identity: identity(s.identity),
        tlog: s.tlog.map(tlog),
    }
}

fn attestation(a: AttestationFact) -> wit::Attestation {
    wit::Attestation {
        predicate_type: a.predicate_type,
        predicate: a.predicate.to_string(),
        signer: signer(a.signer),
    }
}

fn file(f: FileEntry) -> wit::FileEntry {
    wit::FileEntry {
        path: f.path,
        type_: match f.file_type {
            FileType::File => wit::FileType::File,
            FileType::Dir => wit::FileType::Dir,
            FileType::Symlink => wit::FileType::Symlink,
            FileType::Hardlink => wit::FileType::Hardlink,
        },
        mode: f.mode,
        original_mode: f.original_mode,
        size: f.size,
        link_target: f.link_target,
    }
}

fn install(i: InstallDoc) -> wit::InstallFacts {
    let entrypoint = match i.entrypoint {
        Entrypoint::One(path) => path,
        Entrypoint::Argv(argv) => argv.join(" "),
    };
    wit::InstallFacts {
        name: i.name,
        entrypoint,
        wrapper_path: i.wrapper_path,
        previous_digest: i.previous_digest,
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
        let HookInput::Manifest(m) = hook_input(HookPoint::Manifest, &manifest_doc()).unwrap()
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
        let err = hook_input(HookPoint::Signatures, &manifest_doc())
            .err()
            .unwrap();
        assert!(err.contains("signatures"), "{err}");
        let mut doc = manifest_doc();
        doc["image"].as_object_mut().unwrap().remove("digest");
        let err = hook_input(HookPoint::Manifest, &doc).err().unwrap();
        assert!(err.contains("image.digest"), "{err}");
        assert!(hook_input(HookPoint::Resolve, &json!({"image": {}})).is_err());
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
        let HookInput::Install(i) = hook_input(HookPoint::Install, &doc).unwrap() else {
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
