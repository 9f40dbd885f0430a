//! How stages tell the user what is happening without printing: the pipeline sends typed
//! [`Event`]s to a [`Reporter`] (as rattler's installer reporter); the CLI picks the
//! implementation: [`TextReporter`] (lines on stderr), [`JsonReporter`] (one JSON object per line
//! on stderr, for tools) or [`Quiet`]. Stages never format text; the wording lives here.

use crate::facts::SignatureFact;
use crate::policy::hook::{HookPoint, Verdict};
use crate::trust::summary::AttestationSummary;
use serde::Serialize;

/// Something the pipeline did or found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The reference is about to be resolved.
    Resolving { reference: &'a str },
    /// The platform manifest was found.
    Resolved {
        reference: &'a str,
        digest: &'a str,
        layers: usize,
    },
    /// One signature was found and checked (verified or not).
    Signature { signature: &'a SignatureFact },
    /// No signature was found at all.
    NoSignatures,
    /// What the attestations that counted say, and those that did not count.
    Attestations {
        summary: &'a AttestationSummary,
        rejected: &'a [String],
    },
    /// A request failed in a way worth another attempt, which comes after `delay_ms`.
    Retry {
        what: &'a str,
        url: &'a str,
        /// The attempt about to be made (2 for the first retry) and the most there will be.
        attempt: u32,
        attempts: u32,
        delay_ms: u64,
        reason: &'a str,
    },
    /// The new version's verified signers differ from the installed one's.
    SignerChange {
        name: &'a str,
        from: &'a str,
        to: &'a str,
    },
    /// A hook was judged (every hook, allow included).
    Verdict {
        hook: HookPoint,
        verdict: &'a Verdict,
        enforced: bool,
    },
    /// A layer starts downloading (`cached` layers are reused without a download).
    LayerStarted {
        digest: &'a str,
        size: u64,
        cached: bool,
    },
    /// Bytes of a layer received so far (sent at most every few hundred KiB).
    LayerProgress { digest: &'a str, bytes: u64 },
    /// A layer is unpacked into the layer cache.
    LayerDone { digest: &'a str, bytes: u64 },
    /// The layers are being composed into the staged root filesystem.
    Composing { layers: usize },
    /// The root filesystem is staged.
    Unpacked { files: usize },
    /// The new version is about to become current.
    Committing { name: &'a str },
    /// The new version is current.
    Committed { name: &'a str, digest: &'a str },
}

/// Receives the pipeline's events. Called from the pipeline's task and from its layer workers.
pub trait Reporter: Send + Sync {
    fn report(&self, event: &Event<'_>);
}

/// Human-readable progress on stderr; verbose mode adds hook allows, layer events and the time
/// since start to each line.
pub struct TextReporter {
    pub verbose: bool,
    pub start: std::time::Instant,
}

impl TextReporter {
    /// A reporter whose clock starts now.
    pub fn new(verbose: bool) -> Self {
        TextReporter {
            verbose,
            start: std::time::Instant::now(),
        }
    }

    fn line(&self, what: &str, detail: &str) {
        if self.verbose {
            crate::errln!(
                "{what:>12} {detail} [+{:.3}s]",
                self.start.elapsed().as_secs_f64()
            );
        } else {
            crate::errln!("{what:>12} {detail}");
        }
    }
}

impl Reporter for TextReporter {
    fn report(&self, event: &Event<'_>) {
        match event {
            Event::Resolving { reference } => self.line("resolving", reference),
            Event::Resolved { digest, layers, .. } => {
                self.line("manifest", &format!("{digest} ({layers} layers)"))
            }
            Event::Signature { signature } => {
                self.line("signature", &describe_signature(signature))
            }
            Event::NoSignatures => self.line("signatures", "none found"),
            Event::Attestations { summary, rejected } => {
                for l in describe_attestations(summary, rejected) {
                    self.line("attestation", &l);
                }
            }
            Event::Verdict {
                hook,
                verdict,
                enforced,
            } => {
                for m in &verdict.deny {
                    let tag = if *enforced {
                        "denied"
                    } else {
                        "denied (warn mode)"
                    };
                    crate::errln!("{tag:>12} [{hook}] {} ({})", m.text, m.source);
                }
                for m in &verdict.warn {
                    crate::errln!("{:>12} [{hook}] {} ({})", "warning", m.text, m.source);
                }
                if self.verbose && verdict.deny.is_empty() && verdict.warn.is_empty() {
                    crate::errln!("{:>12} [{hook}]", "allowed");
                }
            }
            Event::Retry {
                what,
                attempt,
                attempts,
                delay_ms,
                reason,
                ..
            } if self.verbose => self.line(
                "retrying",
                &format!("{what} in {delay_ms} ms (attempt {attempt} of {attempts}): {reason}"),
            ),
            Event::Retry { .. } => {}
            Event::SignerChange { name, from, to } => crate::errln!(
                "{:>12} the signers of {name} changed: installed version signed by {from}, new version by {to}",
                "warning"
            ),
            Event::LayerStarted {
                digest,
                size,
                cached,
            } if self.verbose => {
                let how = if *cached { "cached" } else { "downloading" };
                self.line("layer", &format!("{digest} ({size} bytes, {how})"));
            }
            Event::LayerDone { digest, bytes } if self.verbose => self.line(
                "layer",
                &format!("{digest} unpacked ({bytes} bytes received)"),
            ),
            Event::LayerStarted { .. } | Event::LayerDone { .. } | Event::LayerProgress { .. } => {}
            Event::Composing { layers } => self.line("composing", &format!("{layers} layers")),
            Event::Unpacked { files } => self.line("unpacked", &format!("{files} files")),
            Event::Committing { name } => self.line("committing", name),
            Event::Committed { .. } => {}
        }
    }
}

/// One JSON object per event on stderr (`{"event": "resolved", …}`), for tools that follow an
/// install; stdout keeps the command's own output.
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn report(&self, event: &Event<'_>) {
        if let Ok(line) = serde_json::to_string(event) {
            crate::errln!("{line}");
        }
    }
}

/// Reports nothing.
pub struct Quiet;

impl Reporter for Quiet {
    fn report(&self, _: &Event<'_>) {}
}

/// One line describing a signature for the install output.
pub fn describe_signature(s: &SignatureFact) -> String {
    use crate::facts::SignatureKind;
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
pub fn describe_attestations(s: &AttestationSummary, rejected: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for sb in &s.sboms {
        out.push(format!("SBOM {}: {} packages", sb.format, sb.packages));
    }
    for p in &s.provenance {
        out.push(format!(
            "provenance: builder {}, source {}",
            p.builder_id.as_deref().unwrap_or("?"),
            p.source.as_deref().unwrap_or("?")
        ));
    }
    for v in &s.vulnerability_scans {
        out.push(format!(
            "vulnerability scan by {}: {}",
            v.scanner.as_deref().unwrap_or("?"),
            serde_json::to_string(&v.by_severity).unwrap_or_default()
        ));
    }
    for r in rejected {
        out.push(format!("ignored: {r}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::summary::{ProvenanceSummary, SbomSummary, VulnSummary};

    #[test]
    fn attestation_lines_read_the_typed_summary() {
        let s = AttestationSummary {
            sboms: vec![SbomSummary {
                format: "SPDX-2.3".into(),
                packages: 12,
            }],
            provenance: vec![ProvenanceSummary {
                slsa_version: "v1".into(),
                builder_id: Some("https://github.com/actions/runner".into()),
                source: None,
            }],
            vulnerability_scans: vec![VulnSummary {
                scanner: Some("grype".into()),
                by_severity: [("critical".to_string(), 2)].into_iter().collect(),
                result_recognised: true,
            }],
            other: vec![],
        };
        assert_eq!(
            describe_attestations(&s, &["attestation x: unknown signer".into()]),
            [
                "SBOM SPDX-2.3: 12 packages",
                "provenance: builder https://github.com/actions/runner, source ?",
                r#"vulnerability scan by grype: {"critical":2}"#,
                "ignored: attestation x: unknown signer",
            ]
        );
    }

    #[test]
    fn json_events_are_tagged_objects() {
        let e = Event::Resolved {
            reference: "r.example/a/b:1",
            digest: "sha256:aa",
            layers: 3,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event": "resolved", "reference": "r.example/a/b:1", "digest": "sha256:aa", "layers": 3})
        );
    }
}
