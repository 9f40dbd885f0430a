//! gantry plugin `attestation-gate`: judges the verified attestations of an image.
//!
//! - SLSA provenance (`https://slsa.dev/provenance/v0.2` and `/v1`): every provenance must name a
//!   builder id from `builders`, and at least one must be present unless `require_provenance` is
//!   false. An entry ending in `@` allows any ref of that builder workflow (`…/builder.yml@`);
//!   any other entry must match exactly.
//! - Vulnerability scans (`https://cosign.sigstore.dev/attestation/vuln/v1`): denies when any
//!   finding in `scanner.result` has a severity at or above `max_severity` (one of `low`,
//!   `medium`, `high`, `critical`). Findings are read wherever the scanner puts them, as values of
//!   a `severity` key (Trivy's `Severity`, Grype's `vulnerability.severity`). With
//!   `require_vuln_scan`, an image without a scan is denied.
//!
//! Config (JSON): `{"builders": [..], "max_severity": "high", "require_provenance": true,
//! "require_vuln_scan": false}`.

use serde::Deserialize;
use serde_json::Value;

wit_bindgen::generate!({ path: "../../wit", world: "gantry:policy/attestations-plugin" });

use exports::gantry::policy::attestations::{AttestationsInput, Guest, Verdict};
use gantry::policy::host::{config, log, Level};

const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const COSIGN_VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    builders: Vec<String>,
    max_severity: Option<Severity>,
    #[serde(default = "yes")]
    require_provenance: bool,
    #[serde(default)]
    require_vuln_scan: bool,
}

fn yes() -> bool {
    true
}

/// Severities in increasing order; anything a scanner says that is not one of these (unknown,
/// negligible, none) ranks below `low`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" | "important" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

struct Plugin;

impl Guest for Plugin {
    fn check(input: AttestationsInput) -> Verdict {
        let mut deny = Vec::new();
        let config: Config = match serde_json::from_str(&config()) {
            Ok(c) => c,
            Err(e) => {
                deny.push(format!("attestation-gate: invalid plugin config: {e}"));
                return Verdict {
                    deny,
                    warn: Vec::new(),
                };
            }
        };
        let mut provenances = 0;
        let mut scans = 0;
        for att in &input.attestations {
            let kind = att.predicate_type.as_str();
            if kind != SLSA_V02 && kind != SLSA_V1 && kind != COSIGN_VULN {
                continue;
            }
            let predicate: Value = match serde_json::from_str(&att.predicate) {
                Ok(p) => p,
                Err(e) => {
                    deny.push(format!(
                        "attestation-gate: {kind} predicate is not JSON: {e}"
                    ));
                    continue;
                }
            };
            if kind == COSIGN_VULN {
                scans += 1;
                check_scan(&predicate, config.max_severity, &mut deny);
            } else {
                provenances += 1;
                check_builder(kind, &predicate, &config.builders, &mut deny);
            }
        }
        if config.require_provenance && provenances == 0 {
            deny.push(format!(
                "{} has no verified SLSA provenance attestation",
                input.image.reference
            ));
        }
        if config.require_vuln_scan && scans == 0 {
            deny.push(format!(
                "{} has no verified vulnerability scan attestation",
                input.image.reference
            ));
        }
        log(
            Level::Debug,
            &format!("{provenances} provenance and {scans} scan attestations judged"),
        );
        Verdict {
            deny,
            warn: Vec::new(),
        }
    }
}

fn check_builder(kind: &str, predicate: &Value, builders: &[String], deny: &mut Vec<String>) {
    let pointer = if kind == SLSA_V1 {
        "/runDetails/builder/id"
    } else {
        "/builder/id"
    };
    let Some(id) = predicate.pointer(pointer).and_then(Value::as_str) else {
        deny.push(format!(
            "SLSA provenance ({kind}) names no builder id at {pointer}"
        ));
        return;
    };
    let allowed = builders.iter().any(|b| match b.strip_suffix('@') {
        Some(workflow) => id
            .strip_prefix(workflow)
            .is_some_and(|rest| rest.starts_with('@')),
        None => id == b,
    });
    if !allowed {
        deny.push(format!("SLSA provenance built by '{id}', which is not an allowed builder (allowed: {builders:?})"));
    }
}

fn check_scan(predicate: &Value, max: Option<Severity>, deny: &mut Vec<String>) {
    let Some(max) = max else { return };
    let Some(result) = predicate.pointer("/scanner/result") else {
        deny.push("vulnerability scan attestation has no scanner.result".to_string());
        return;
    };
    let mut found = Vec::new();
    collect_severities(result, &mut found);
    let worst: Vec<Severity> = found.into_iter().filter(|s| *s >= max).collect();
    if let Some(top) = worst.iter().max() {
        deny.push(format!(
            "vulnerability scan reports {} finding(s) at or above {max:?} (worst: {top:?})",
            worst.len()
        ));
    }
}

/// Every value of a key named `severity` (any case) anywhere in the scanner's result.
fn collect_severities(value: &Value, out: &mut Vec<Severity>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.eq_ignore_ascii_case("severity") {
                    if let Some(s) = v.as_str().and_then(Severity::parse) {
                        out.push(s);
                    }
                }
                collect_severities(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_severities(v, out)),
        _ => {}
    }
}

export!(Plugin);
