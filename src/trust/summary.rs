//! Summaries of verified attestations for the install output and `metadata.json`: how many
//! packages an SBOM lists (SPDX 2.x JSON and tag-value, SPDX 3 JSON-LD, CycloneDX), which
//! builder and source a SLSA provenance names (v0.2 and v1), and how many vulnerabilities of each
//! severity a cosign vuln predicate reports. It only reads [`AttestationFact`]s, which exist only
//! for attestations whose signature and subject were verified; it never judges them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::facts::AttestationFact;

/// Predicate type of SPDX documents as cosign attaches them (`--type spdx|spdxjson`).
pub const SPDX: &str = "https://spdx.dev/Document";
/// Predicate type of CycloneDX documents (`--type cyclonedx`).
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
/// SLSA provenance v0.2.
pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
/// SLSA provenance v1.
pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// cosign's vulnerability scan predicate (`--type vuln`).
pub const VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// What the verified attestations of one image say, in brief.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttestationSummary {
    pub sboms: Vec<SbomSummary>,
    pub provenance: Vec<ProvenanceSummary>,
    pub vulnerability_scans: Vec<VulnSummary>,
    /// Predicate types present but not summarised.
    pub other: Vec<String>,
}

/// One SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomSummary {
    /// e.g. `SPDX-2.2`, `SPDX-3`, `CycloneDX-1.4`.
    pub format: String,
    pub packages: u64,
}

/// One SLSA provenance statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenanceSummary {
    /// `v0.2` or `v1`.
    pub slsa_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One vulnerability scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VulnSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanner: Option<String>,
    /// Lower-case severity → count; empty when the scan reported no findings.
    pub by_severity: BTreeMap<String, u64>,
    /// False when `scanner.result` had a shape gantry does not know, so the counts are unknown
    /// rather than zero.
    pub result_recognised: bool,
}

/// Summarises verified attestations, in their order.
pub fn summarize(atts: &[AttestationFact]) -> AttestationSummary {
    let mut out = AttestationSummary::default();
    for att in atts {
        let pt = att.predicate_type.as_str();
        let p = &att.predicate;
        if pt == SPDX || pt.starts_with("https://spdx.dev/Document/") {
            out.sboms.push(spdx(p));
        } else if pt == CYCLONEDX || pt.starts_with("https://cyclonedx.org/bom/") {
            out.sboms.push(cyclonedx(p));
        } else if pt == SLSA_V02 || pt == "https://slsa.dev/provenance/v0.1" {
            out.provenance.push(slsa_v02(p));
        } else if pt == SLSA_V1 {
            out.provenance.push(slsa_v1(p));
        } else if pt == VULN {
            out.vulnerability_scans.push(vuln(p));
        } else if !out.other.iter().any(|o| o == pt) {
            out.other.push(pt.to_string());
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))?
        .as_str()
        .filter(|s| !s.is_empty())
}

fn spdx(p: &Value) -> SbomSummary {
    // cosign attaches tag-value SPDX (`--type spdx` on a .spdx file) as a JSON string.
    if let Some(text) = p.as_str() {
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("SPDXVersion:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "SPDX".into());
        let packages = text
            .lines()
            .filter(|l| l.starts_with("PackageName:"))
            .count() as u64;
        return SbomSummary {
            format: version,
            packages,
        };
    }
    if let Some(graph) = p.get("@graph").and_then(Value::as_array) {
        let packages = graph
            .iter()
            .filter(|e| {
                matches!(
                    e.get("type").and_then(Value::as_str),
                    Some("software_Package")
                )
            })
            .count() as u64;
        return SbomSummary {
            format: "SPDX-3".into(),
            packages,
        };
    }
    let format = str_at(p, &["spdxVersion"]).unwrap_or("SPDX").to_string();
    let packages = p
        .get("packages")
        .and_then(Value::as_array)
        .map_or(0, |a| a.len() as u64);
    SbomSummary { format, packages }
}

fn cyclonedx(p: &Value) -> SbomSummary {
    // Components nest (assemblies); count every level.
    fn count(components: Option<&Value>) -> u64 {
        components.and_then(Value::as_array).map_or(0, |a| {
            a.iter().map(|c| 1 + count(c.get("components"))).sum()
        })
    }
    let format = match str_at(p, &["specVersion"]) {
        Some(v) => format!("CycloneDX-{v}"),
        None => "CycloneDX".into(),
    };
    SbomSummary {
        format,
        packages: count(p.get("components")),
    }
}

fn slsa_v02(p: &Value) -> ProvenanceSummary {
    let source = str_at(p, &["invocation", "configSource", "uri"]).or_else(|| {
        p.get("materials")?
            .as_array()?
            .iter()
            .find_map(|m| str_at(m, &["uri"]))
    });
    ProvenanceSummary {
        slsa_version: "v0.2".into(),
        builder_id: str_at(p, &["builder", "id"]).map(String::from),
        source: source.map(String::from),
    }
}

fn slsa_v1(p: &Value) -> ProvenanceSummary {
    let source = str_at(
        p,
        &[
            "buildDefinition",
            "externalParameters",
            "workflow",
            "repository",
        ],
    )
    .or_else(|| {
        p.pointer("/buildDefinition/resolvedDependencies")?
            .as_array()?
            .iter()
            .find_map(|m| str_at(m, &["uri"]))
    });
    ProvenanceSummary {
        slsa_version: "v1".into(),
        builder_id: str_at(p, &["runDetails", "builder", "id"]).map(String::from),
        source: source.map(String::from),
    }
}

fn vuln(p: &Value) -> VulnSummary {
    let scanner = str_at(p, &["scanner", "uri"]).map(String::from);
    let result = p.pointer("/scanner/result").unwrap_or(&Value::Null);
    let mut by_severity = BTreeMap::new();
    let mut bump = |sev: Option<&str>| {
        *by_severity
            .entry(sev.unwrap_or("unknown").to_ascii_lowercase())
            .or_insert(0) += 1;
    };
    let result_recognised = if result.is_null() {
        // cosign's own test predicate: a scan that produced no result document, i.e. no findings.
        true
    } else if let Some(results) = result.get("Results").and_then(Value::as_array) {
        // Trivy JSON.
        for r in results {
            for v in r
                .get("Vulnerabilities")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                bump(v.get("Severity").and_then(Value::as_str));
            }
        }
        true
    } else if let Some(matches) = result.get("matches").and_then(Value::as_array) {
        // Grype JSON.
        for m in matches {
            bump(m.pointer("/vulnerability/severity").and_then(Value::as_str));
        }
        true
    } else {
        false
    };
    VulnSummary {
        scanner,
        by_severity,
        result_recognised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::SignerFacts;

    use crate::trust::testdata::shared;

    fn fact(pt: &str, predicate: Value) -> AttestationFact {
        AttestationFact {
            predicate_type: pt.into(),
            predicate,
            signer: SignerFacts::default(),
        }
    }

    fn json(path: &str) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The predicate of the in-toto Statement inside a sigstore bundle's DSSE envelope.
    fn bundle_predicate(path: &str) -> Value {
        use base64::Engine as _;
        let b = json(path);
        let payload = b["dsseEnvelope"]["payload"].as_str().unwrap();
        let st: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        st["predicate"].clone()
    }

    #[test]
    fn cosign_sboms_and_vuln_predicate() {
        let spdx_tv =
            std::fs::read_to_string(shared!("cosign/test/testdata/bom-go-mod.spdx")).unwrap();
        let s = summarize(&[
            fact(
                SPDX,
                json(shared!("cosign/test/testdata/bom-go-mod.spdx.json")),
            ),
            fact(
                CYCLONEDX,
                json(shared!("cosign/test/testdata/bom-go-mod.cyclonedx.json")),
            ),
            fact(SPDX, Value::String(spdx_tv)),
            fact(
                VULN,
                json(shared!(
                    "cosign/test/testdata/attestations/vuln-predicate.json"
                )),
            ),
        ]);
        assert_eq!(
            s.sboms[0],
            SbomSummary {
                format: "SPDX-2.2".into(),
                packages: 0
            }
        );
        assert_eq!(
            s.sboms[1],
            SbomSummary {
                format: "CycloneDX-1.4".into(),
                packages: 0
            }
        );
        assert_eq!(
            s.sboms[2],
            SbomSummary {
                format: "SPDX-2.2".into(),
                packages: 143
            }
        );
        let v = &s.vulnerability_scans[0];
        assert_eq!(
            v.scanner.as_deref(),
            Some("fakescanner.example.com/cosign-testing")
        );
        assert!(v.by_severity.is_empty() && v.result_recognised);
    }

    #[test]
    fn counts_packages_components_and_severities() {
        let mut spdx2 = json(shared!("cosign/test/testdata/bom-go-mod.spdx.json"));
        spdx2["packages"] = serde_json::json!([{"name": "a"}, {"name": "b"}]);
        let spdx3 = serde_json::json!({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
            "@graph": [{"type": "software_Package"}, {"type": "software_File"}, {"type": "software_Package"}]});
        let mut cdx = json(shared!("cosign/test/testdata/bom-go-mod.cyclonedx.json"));
        cdx["components"] =
            serde_json::json!([{"name": "x", "components": [{"name": "y"}]}, {"name": "z"}]);
        let mut trivy = json(shared!(
            "cosign/test/testdata/attestations/vuln-predicate.json"
        ));
        trivy["scanner"]["result"] = serde_json::json!({"Results": [{"Vulnerabilities": [
            {"Severity": "CRITICAL"}, {"Severity": "HIGH"}, {"Severity": "HIGH"}]}]});
        let mut unknown = trivy.clone();
        unknown["scanner"]["result"] = serde_json::json!({"runs": []});
        let s = summarize(&[
            fact(SPDX, spdx2),
            fact(SPDX, spdx3),
            fact(CYCLONEDX, cdx),
            fact(VULN, trivy),
            fact(VULN, unknown),
            fact("https://example.com/custom", Value::Null),
        ]);
        assert_eq!(
            s.sboms.iter().map(|b| b.packages).collect::<Vec<_>>(),
            vec![2, 2, 3]
        );
        assert_eq!(s.sboms[1].format, "SPDX-3");
        let counts = &s.vulnerability_scans[0].by_severity;
        assert_eq!((counts["critical"], counts["high"]), (1, 2));
        // An unknown result shape is "unknown", never "zero findings".
        assert!(!s.vulnerability_scans[1].result_recognised);
        assert_eq!(s.other, vec!["https://example.com/custom".to_string()]);
    }

    #[test]
    fn slsa_v02_and_v1_from_real_bundles() {
        let v02 = bundle_predicate(shared!("sigstore-go/examples/bundle-provenance.json"));
        let v1 = bundle_predicate(shared!("gh-cli-attestation/sigstore-js-2.1.0-bundle.json"));
        let s = summarize(&[fact(SLSA_V02, v02), fact(SLSA_V1, v1)]);
        assert_eq!(
            s.provenance[0],
            ProvenanceSummary {
                slsa_version: "v0.2".into(),
                builder_id: Some("https://github.com/actions/runner".into()),
                source: Some("git+https://github.com/sigstore/sigstore-js@refs/heads/main".into()),
            }
        );
        assert_eq!(
            s.provenance[1],
            ProvenanceSummary {
                slsa_version: "v1".into(),
                builder_id: Some("https://github.com/actions/runner/github-hosted".into()),
                source: Some("https://github.com/sigstore/sigstore-js".into()),
            }
        );
    }

    #[test]
    fn provenance_falls_back_to_materials() {
        let v02 = serde_json::json!({"builder": {"id": "b"}, "materials": [{"uri": "git+m"}]});
        let v1 =
            serde_json::json!({"buildDefinition": {"resolvedDependencies": [{"uri": "git+r"}]}});
        let s = summarize(&[fact(SLSA_V02, v02), fact(SLSA_V1, v1)]);
        assert_eq!(s.provenance[0].source.as_deref(), Some("git+m"));
        assert_eq!(s.provenance[1].source.as_deref(), Some("git+r"));
        assert_eq!(s.provenance[1].builder_id, None);
    }
}
