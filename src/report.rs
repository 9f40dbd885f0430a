//! How stages tell the user what is happening without printing: the pipeline sends typed
//! [`Event`]s to a [`Reporter`] (as rattler's installer reporter); the CLI picks the
//! implementation: [`ProgressReporter`] (bars and coloured lines on a terminal), [`TextReporter`]
//! (the same lines, plain, on a stderr that is not a terminal), [`JsonReporter`] (one JSON object
//! per line on stderr, for tools) or [`Quiet`]. Stages never format text; the wording lives here.

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

/// How much a command reports: `--quiet` (errors only), the default, or `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

impl Verbosity {
    /// `Verbose` for `-v`, else `Normal`.
    pub fn from_verbose(verbose: bool) -> Verbosity {
        if verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }

    /// `-v` shows every hook verdict, layer and retry.
    pub fn verbose(self) -> bool {
        self == Verbosity::Verbose
    }

    /// `--quiet`: nothing but errors.
    pub fn quiet(self) -> bool {
        self == Verbosity::Quiet
    }
}

/// How a line is coloured on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    Denied,
    Warning,
    Allowed,
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

    fn line(&self, what: &str, detail: &str) -> (Tone, String) {
        let text = if self.verbose {
            format!(
                "{what:>12} {detail} [+{:.3}s]",
                self.start.elapsed().as_secs_f64()
            )
        } else {
            format!("{what:>12} {detail}")
        };
        (Tone::Plain, text)
    }

    /// The lines an event shows, each with its tone.
    fn lines(&self, event: &Event<'_>) -> Vec<(Tone, String)> {
        match event {
            Event::Resolving { reference } => vec![self.line("resolving", reference)],
            Event::Resolved { digest, layers, .. } => {
                vec![self.line("manifest", &format!("{digest} ({layers} layers)"))]
            }
            Event::Signature { signature } => {
                vec![self.line("signature", &describe_signature(signature))]
            }
            Event::NoSignatures => vec![self.line("signatures", "none found")],
            Event::Attestations { summary, rejected } => describe_attestations(summary, rejected)
                .iter()
                .map(|l| self.line("attestation", l))
                .collect(),
            Event::Verdict {
                hook,
                verdict,
                enforced,
            } => {
                let mut out = Vec::new();
                for m in &verdict.deny {
                    let tag = if *enforced {
                        "denied"
                    } else {
                        "denied (warn mode)"
                    };
                    out.push((
                        Tone::Denied,
                        format!("{tag:>12} [{hook}] {} ({})", m.text, m.source),
                    ));
                }
                for m in &verdict.warn {
                    out.push((
                        Tone::Warning,
                        format!("{:>12} [{hook}] {} ({})", "warning", m.text, m.source),
                    ));
                }
                if self.verbose && verdict.deny.is_empty() && verdict.warn.is_empty() {
                    out.push((Tone::Allowed, format!("{:>12} [{hook}]", "allowed")));
                }
                out
            }
            Event::Retry {
                what,
                attempt,
                attempts,
                delay_ms,
                reason,
                ..
            } if self.verbose => vec![self.line(
                "retrying",
                &format!("{what} in {delay_ms} ms (attempt {attempt} of {attempts}): {reason}"),
            )],
            Event::Retry { .. } => vec![],
            Event::SignerChange { name, from, to } => vec![(
                Tone::Warning,
                format!(
                    "{:>12} the signers of {name} changed: installed version signed by {from}, new version by {to}",
                    "warning"
                ),
            )],
            Event::LayerStarted {
                digest,
                size,
                cached,
            } if self.verbose => {
                let how = if *cached { "cached" } else { "downloading" };
                vec![self.line("layer", &format!("{digest} ({size} bytes, {how})"))]
            }
            Event::LayerDone { digest, bytes } if self.verbose => vec![self.line(
                "layer",
                &format!("{digest} unpacked ({bytes} bytes received)"),
            )],
            Event::LayerStarted { .. } | Event::LayerDone { .. } | Event::LayerProgress { .. } => {
                vec![]
            }
            Event::Composing { layers } => {
                vec![self.line("composing", &format!("{layers} layers"))]
            }
            Event::Unpacked { files } => vec![self.line("unpacked", &format!("{files} files"))],
            Event::Committing { name } => vec![self.line("committing", name)],
            Event::Committed { .. } => vec![],
        }
    }
}

impl Reporter for TextReporter {
    fn report(&self, event: &Event<'_>) {
        for (_, l) in self.lines(event) {
            crate::errln!("{l}");
        }
    }
}

/// Progress on a terminal: the [`TextReporter`]'s lines (verdicts coloured unless `NO_COLOR`),
/// and while layers download, one bar per layer in bytes under an overall bar with the rate.
/// Each bar is cleared when its layer is done, the overall one when the last is.
pub struct ProgressReporter {
    text: TextReporter,
    colour: bool,
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<Bars>,
}

#[derive(Default)]
struct Bars {
    /// Per layer digest: its bar and the bytes counted into the overall bar so far.
    layers: std::collections::HashMap<String, (indicatif::ProgressBar, u64)>,
    total: Option<indicatif::ProgressBar>,
}

impl ProgressReporter {
    /// A reporter drawing on stderr; `colour` colours verdict lines.
    pub fn new(verbose: bool, colour: bool) -> Self {
        Self::with_target(verbose, colour, indicatif::ProgressDrawTarget::stderr())
    }

    /// A reporter drawing on `target` (tests draw nowhere).
    pub fn with_target(verbose: bool, colour: bool, target: indicatif::ProgressDrawTarget) -> Self {
        ProgressReporter {
            text: TextReporter::new(verbose),
            colour,
            multi: indicatif::MultiProgress::with_draw_target(target),
            bars: Default::default(),
        }
    }

    /// How many layer bars are drawn now.
    pub fn bars_drawn(&self) -> usize {
        self.bars.lock().map(|b| b.layers.len()).unwrap_or(0)
    }

    fn paint(&self, tone: Tone, line: String) -> String {
        let code = match tone {
            _ if !self.colour => return line,
            Tone::Plain => return line,
            Tone::Denied => "1;31",
            Tone::Warning => "33",
            Tone::Allowed => "32",
        };
        format!("\x1b[{code}m{line}\x1b[0m")
    }

    fn layer_event(&self, event: &Event<'_>) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match *event {
            Event::LayerStarted {
                digest,
                size,
                cached: false,
            } => {
                let total = bars.total.get_or_insert_with(|| {
                    let t = self.multi.add(indicatif::ProgressBar::new(0));
                    t.set_style(style(
                        "{spinner} downloading {binary_bytes}/{binary_total_bytes} at {binary_bytes_per_sec}",
                    ));
                    t.enable_steady_tick(std::time::Duration::from_millis(120));
                    t
                });
                total.inc_length(size);
                let bar = self.multi.add(indicatif::ProgressBar::new(size));
                bar.set_style(style(
                    "  {prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes}",
                ));
                bar.set_prefix(short_digest(digest));
                bars.layers.insert(digest.to_string(), (bar, 0));
            }
            Event::LayerProgress { digest, bytes } | Event::LayerDone { digest, bytes } => {
                let done = matches!(event, Event::LayerDone { .. });
                let Some((bar, counted)) = bars.layers.get_mut(digest) else {
                    return;
                };
                let delta = bytes.saturating_sub(*counted);
                *counted = bytes;
                bar.set_position(bytes);
                if let Some(t) = &bars.total {
                    t.inc(delta);
                }
                if done {
                    if let Some((bar, _)) = bars.layers.remove(digest) {
                        bar.finish_and_clear();
                        self.multi.remove(&bar);
                    }
                    if bars.layers.is_empty() {
                        if let Some(t) = bars.total.take() {
                            t.finish_and_clear();
                            self.multi.remove(&t);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(d: &str) -> String {
    d.get(..19).unwrap_or(d).to_string()
}

impl Reporter for ProgressReporter {
    fn report(&self, event: &Event<'_>) {
        self.layer_event(event);
        let lines = self.text.lines(event);
        if lines.is_empty() {
            return;
        }
        // Printed with the bars lifted, so a line never lands in the middle of one.
        self.multi.suspend(|| {
            for (tone, l) in lines {
                crate::errln!("{}", self.paint(tone, l));
            }
        });
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        // A run that stopped mid-download leaves no bar behind its error message.
        let _ = self.multi.clear();
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
    fn text_lines_keep_their_exact_form() {
        let r = TextReporter::new(false);
        let mut v = Verdict::default();
        v.deny("policy t.rego", "no");
        v.warn("plugin p", "hmm");
        let verdict = Event::Verdict {
            hook: HookPoint::Signatures,
            verdict: &v,
            enforced: true,
        };
        let texts =
            |e: &Event<'_>| -> Vec<String> { r.lines(e).into_iter().map(|(_, l)| l).collect() };
        assert_eq!(
            texts(&verdict),
            [
                "      denied [signatures] no (policy t.rego)",
                "     warning [signatures] hmm (plugin p)"
            ]
        );
        assert_eq!(
            texts(&Event::Resolving { reference: "r/x:1" }),
            ["   resolving r/x:1"]
        );
        assert!(texts(&Event::LayerProgress {
            digest: "sha256:aa",
            bytes: 1
        })
        .is_empty());
    }

    #[test]
    fn progress_bars_come_and_go_with_their_layers_and_colour_is_optional() {
        let p = ProgressReporter::with_target(false, true, indicatif::ProgressDrawTarget::hidden());
        let (a, b) = ("sha256:aaaa", "sha256:bbbb");
        for d in [a, b] {
            p.report(&Event::LayerStarted {
                digest: d,
                size: 1000,
                cached: false,
            });
        }
        p.report(&Event::LayerStarted {
            digest: "sha256:cccc",
            size: 5,
            cached: true,
        });
        assert_eq!(p.bars_drawn(), 2);
        p.report(&Event::LayerProgress {
            digest: a,
            bytes: 500,
        });
        let total = |p: &ProgressReporter| {
            let b = p.bars.lock().unwrap();
            b.total.as_ref().map(|t| (t.position(), t.length()))
        };
        assert_eq!(total(&p), Some((500, Some(2000))));
        p.report(&Event::LayerDone {
            digest: a,
            bytes: 1000,
        });
        assert_eq!(p.bars_drawn(), 1);
        p.report(&Event::LayerDone {
            digest: b,
            bytes: 1000,
        });
        assert_eq!(p.bars_drawn(), 0);
        assert!(p.bars.lock().unwrap().total.is_none());
        assert_eq!(p.paint(Tone::Denied, "x".into()), "\x1b[1;31mx\x1b[0m");
        assert_eq!(p.paint(Tone::Plain, "x".into()), "x");
        let plain =
            ProgressReporter::with_target(false, false, indicatif::ProgressDrawTarget::hidden());
        assert_eq!(plain.paint(Tone::Denied, "x".into()), "x");
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
