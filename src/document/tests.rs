//! The contract pinned: the Rego `input` of every hook, for a document holding every kind of
//! fact, against `tests/data/contract.json`; and the contract table of DESIGN.md against it.

use super::*;
use crate::facts::{
    FileType, GithubWorkflow, Identity, SignatureKind, SignatureSource, SignerFacts, TlogEntry,
};
use serde_json::{json, Value};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/contract.json");
const DESIGN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/DESIGN.md");

/// A document as the pipeline has it at `hook`: every section up to that hook.
fn at(hook: HookPoint) -> HookDocument {
    let full = full();
    let mut doc = HookDocument::new(full.registry.clone(), full.image.clone());
    doc.image.manifest = None;
    doc.hook = hook;
    if hook >= HookPoint::Manifest {
        doc.image.manifest = full.image.manifest.clone();
        doc.ledger = full.ledger.clone();
        doc.agreement = full.agreement.clone();
    }
    if hook >= HookPoint::Signatures {
        doc.signatures = full.signatures.clone();
        doc.signature_quorum = full.signature_quorum.clone();
    }
    if hook >= HookPoint::Attestations {
        doc.attestations = full.attestations.clone();
        doc.attestation_quorum = full.attestation_quorum.clone();
    }
    if hook >= HookPoint::Contents {
        doc.files = full.files.clone();
    }
    if hook >= HookPoint::Install {
        doc.install = full.install.clone();
    }
    doc
}

fn full() -> HookDocument {
    let github = GithubWorkflow {
        workflow_repository: Some("acme/tool".into()),
        workflow_ref: Some("refs/tags/v1.2".into()),
        workflow_trigger: Some("push".into()),
        workflow_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        workflow_name: Some("release".into()),
    };
    let keyless = Identity {
        issuer: Some("https://token.actions.githubusercontent.com".into()),
        subject: Some(
            "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.2".into(),
        ),
        github: Some(github),
    };
    let tlog = TlogEntry {
        log_index: 7,
        integrated_time: 1_767_225_600,
        log_id: Some("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d".into()),
    };
    let digest = format!("sha256:{}", "a".repeat(64));
    HookDocument {
        hook: HookPoint::Install,
        registry: RegistryFacts {
            name: "acme".into(),
            url: "registry.example/acme".into(),
        },
        image: ImageFacts {
            reference: "registry.example/acme/tool:1.2".into(),
            repository: "acme/tool".into(),
            tag: Some("1.2".into()),
            manifest: Some(ManifestFacts {
                digest: digest.clone(),
                platform: Platform {
                    os: "linux".into(),
                    architecture: "arm".into(),
                    variant: Some("v7".into()),
                },
                config: ImageConfigFacts {
                    entrypoint: vec!["/usr/local/bin/tool".into()],
                    cmd: vec!["--help".into()],
                    env: vec!["PATH=/usr/local/bin:/usr/bin".into()],
                    labels: [(
                        "org.opencontainers.image.source".to_string(),
                        "https://github.com/acme/tool".to_string(),
                    )]
                    .into_iter()
                    .collect(),
                },
                created: Some("2026-01-02T03:04:05Z".into()),
            }),
        },
        agreement: Some(crate::mirrors::AgreementFacts {
            tag: "1.2".into(),
            required: 2,
            sources: vec![
                crate::mirrors::SourceAnswer {
                    source: "registry.example/acme/tool".into(),
                    digest: Some(format!("sha256:{}", "f".repeat(64))),
                    error: None,
                },
                crate::mirrors::SourceAnswer {
                    source: "mirror.example/acme/tool".into(),
                    digest: None,
                    error: Some("connection refused".into()),
                },
                crate::mirrors::SourceAnswer {
                    source: "mirror2.example/acme/tool".into(),
                    digest: Some(format!("sha256:{}", "f".repeat(64))),
                    error: None,
                },
            ],
            agreed: Some(format!("sha256:{}", "f".repeat(64))),
            have: 2,
        }),
        ledger: Some(vec![LedgerSighting {
            digest: format!("sha256:{}", "b".repeat(64)),
            first_seen: "2026-01-01T00:00:00Z".into(),
            last_seen: "2026-02-01T00:00:00Z".into(),
        }]),
        signatures: Some(vec![
            SignatureFact {
                verified: true,
                error: None,
                kind: SignatureKind::Keyless,
                source: SignatureSource::Bundle,
                key_fingerprint: None,
                identity: keyless.clone(),
                tlog: Some(tlog.clone()),
                docker_reference: Some("registry.example/acme/tool".into()),
                signed_digest: Some(format!("sha256:{}", "c".repeat(64))),
                on_index: true,
            },
            SignatureFact {
                verified: false,
                error: Some("signature does not verify with any configured key".into()),
                kind: SignatureKind::Key,
                source: SignatureSource::CosignTag,
                key_fingerprint: Some(format!("sha256:{}", "d".repeat(64))),
                identity: Identity::default(),
                tlog: None,
                docker_reference: None,
                signed_digest: Some(digest),
                on_index: false,
            },
        ]),
        signature_quorum: Some(vec![crate::registry_policy::QuorumFacts {
            registry: "acme".into(),
            required: 2,
            have: 1,
            entries: vec![
                format!("key sha256:{}", "d".repeat(64)),
                "identity https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.2 from issuer https://token.actions.githubusercontent.com".into(),
            ],
            satisfied: vec![crate::registry_policy::QuorumMatch {
                entry: 1,
                signer: "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.2 (issuer https://token.actions.githubusercontent.com)".into(),
                index: 0,
            }],
            missing: vec![format!("key sha256:{}", "d".repeat(64))],
        }]),
        attestation_quorum: Some(vec![crate::registry_policy::QuorumFacts {
            registry: "acme".into(),
            required: 1,
            have: 1,
            entries: vec!["identity https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.2 from issuer https://token.actions.githubusercontent.com".into()],
            satisfied: vec![crate::registry_policy::QuorumMatch {
                entry: 0,
                signer: "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.2 (issuer https://token.actions.githubusercontent.com)".into(),
                index: 0,
            }],
            missing: vec![],
        }]),
        attestations: Some(vec![AttestationFact {
            predicate_type: "https://slsa.dev/provenance/v1".into(),
            predicate: json!({"runDetails": {"builder": {"id": "https://github.com/actions/runner"}}}),
            signer: SignerFacts {
                kind: Some(SignatureKind::Keyless),
                key_fingerprint: None,
                identity: keyless,
                tlog: Some(tlog),
            },
        }]),
        files: Some(vec![
            FileEntry {
                path: "usr/local/bin".into(),
                file_type: FileType::Dir,
                mode: 0o755,
                original_mode: 0o755,
                size: 0,
                link_target: None,
            },
            FileEntry {
                path: "usr/local/bin/tool".into(),
                file_type: FileType::File,
                mode: 0o755,
                original_mode: 0o4755,
                size: 1024,
                link_target: None,
            },
            FileEntry {
                path: "usr/local/bin/t".into(),
                file_type: FileType::Symlink,
                mode: 0o777,
                original_mode: 0o777,
                size: 0,
                link_target: Some("tool".into()),
            },
            FileEntry {
                path: "usr/local/bin/tool2".into(),
                file_type: FileType::Hardlink,
                mode: 0o755,
                original_mode: 0o755,
                size: 0,
                link_target: Some("usr/local/bin/tool".into()),
            },
        ]),
        install: Some(InstallFacts {
            name: "tool".into(),
            entrypoint: "/usr/local/bin/tool".into(),
            wrapper_path: "/home/user/.gantry/bin/tool".into(),
            previous_digest: Some(format!("sha256:{}", "e".repeat(64))),
            previous: Some(PreviousFacts {
                digest: format!("sha256:{}", "e".repeat(64)),
                tag: Some("1.1".into()),
                signers: vec![SignerFacts {
                    kind: Some(SignatureKind::Key),
                    key_fingerprint: Some(format!("sha256:{}", "d".repeat(64))),
                    identity: Identity::default(),
                    tlog: None,
                }],
                attestation_summary: json!({"sboms": [{"format": "SPDX-2.3", "packages": 3}], "provenance": [], "vulnerability_scans": [], "other": []}),
            }),
        }),
    }
}

fn golden() -> Value {
    let text = std::fs::read_to_string(GOLDEN).expect("tests/data/contract.json");
    serde_json::from_str(&text).expect("the golden file is JSON")
}

#[test]
fn the_rego_input_of_every_hook_is_the_golden_contract() {
    let golden = golden();
    let mut actual = serde_json::Map::new();
    for hook in HookPoint::ALL {
        actual.insert(hook.as_str().into(), at(hook).to_json());
    }
    let actual = Value::Object(actual);
    assert_eq!(
        actual,
        golden,
        "the hook documents changed; if on purpose (fields are only ever added), update \
         tests/data/contract.json and DESIGN.md's contract table to:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

#[test]
fn a_hand_written_document_reads_back_as_the_same_document() {
    let golden = golden();
    for hook in HookPoint::ALL {
        let doc = HookDocument::from_json(hook, &golden[hook.as_str()]).unwrap();
        assert_eq!(doc, at(hook), "{hook}");
        // A stale `hook` in the input is replaced by the hook asked for.
        let mut stale = golden[hook.as_str()].clone();
        stale["hook"] = json!("resolve");
        assert_eq!(HookDocument::from_json(hook, &stale).unwrap().hook, hook);
    }
    assert!(HookDocument::from_json(HookPoint::Resolve, &json!([1])).is_err());
    assert!(HookDocument::from_json(HookPoint::Resolve, &json!({"image": {}})).is_err());
}

/// The rows of DESIGN.md's contract table: (field paths, the hook they appear at).
fn design_rows() -> Vec<(Vec<String>, HookPoint)> {
    let text = std::fs::read_to_string(DESIGN).expect("../shared/DESIGN.md beside the project");
    let table = text
        .split("## The policy input contract")
        .nth(1)
        .expect("DESIGN.md has the contract section");
    let mut rows = Vec::new();
    for line in table
        .lines()
        .skip_while(|l| !l.starts_with("| field"))
        .skip(2)
    {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(fields), Some(from)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let hook: HookPoint = from
            .parse()
            .expect("a hook name in the 'present from' column");
        let fields = fields
            .split(',')
            .map(|f| {
                f.trim()
                    .trim_matches('`')
                    .trim_end_matches("[]")
                    .to_string()
            })
            .collect();
        rows.push((fields, hook));
    }
    rows
}

fn has_path(doc: &Value, path: &str) -> bool {
    path.split('.')
        .try_fold(doc, |v, part| v.get(part))
        .is_some()
}

#[test]
fn design_contract_table_and_golden_documents_agree() {
    let golden = golden();
    let rows = design_rows();
    assert!(rows.len() >= 8, "contract table not found: {rows:?}");
    for (fields, from) in &rows {
        for hook in HookPoint::ALL {
            let doc = &golden[hook.as_str()];
            for f in fields {
                assert_eq!(
                    has_path(doc, f),
                    hook >= *from,
                    "DESIGN.md says `{f}` is present from {from}; the {hook} document disagrees"
                );
            }
        }
    }
    // And every top-level section of the documents is in the table, or in the list of what the
    // open issues add that DESIGN.md names below its table ("the signature quorum result").
    const COMING: &[&str] = &["signature_quorum", "attestation_quorum", "agreement"];
    let design = std::fs::read_to_string(DESIGN).unwrap();
    for announced in ["the signature quorum result", "mirror agreement"] {
        assert!(
            design.contains(announced),
            "DESIGN.md no longer announces {announced}; put its facts in the table"
        );
    }
    let mut documented: Vec<&str> = COMING.to_vec();
    documented.extend(
        rows.iter()
            .flat_map(|(f, _)| f.iter().map(|p| p.split('.').next().unwrap_or(""))),
    );
    for key in golden["install"].as_object().unwrap().keys() {
        assert!(
            documented.contains(&key.as_str()),
            "`{key}` is not in DESIGN.md's table"
        );
    }
}
