//! The install pipeline, top to bottom as in DESIGN.md, as stages that hand on proofs:
//! [`resolve`](Pipeline::resolve) → [`Resolved`] (hooks `resolve`, `manifest`) →
//! [`verify`](Pipeline::verify_trust) → [`Verified`] (hooks `signatures`, `attestations`; only the
//! trust bridge builds one) → [`stage`](Pipeline::stage) → [`Staged`] (hook `contents`) →
//! [`plan`](Pipeline::plan) → [`Plan`] (hook `install`) → [`commit`](Pipeline::commit). Nothing
//! is unpacked without a `Verified`, and nothing becomes visible before the install hook allows.
//! `gantry verify` is the first two stages. The pipeline is generic over where images come from
//! ([`BlobSource`]) and over its [`Hooks`], so it is tested with an in-memory source and fake
//! hooks (`install/tests.rs`). This module composes stages; it owns none of them, and it never
//! prints: it sends [`Event`]s to a reporter.

mod error;
mod layers;
#[cfg(test)]
mod tests;

pub use error::InstallError;

use crate::config::{Config, Mode};
use crate::document::{HookDocument, ImageFacts, InstallFacts, ManifestFacts, RegistryFacts};
use crate::facts::{LedgerSighting, Platform};
use crate::image;
use crate::ledger::{Acceptance, Entry, Sighting};
use crate::policy::decisions::{self, DecisionOutcome, HookDecision};
use crate::policy::hook::{HookPoint, Verdict};
use crate::reference::ImageLocation;
use crate::registry_policy::RegistryPolicy;
use crate::report::{Event, Reporter};
use crate::shim::LaunchPlan;
use crate::source::{BlobSource, ImageSource, ManifestRef};
use crate::store::{self, PackageMetadata, Store};
use crate::verify::{self, Verified};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// The decision points the pipeline calls; the policy engine implements this
/// (`hooks::EngineHooks`), tests fake it.
pub trait Hooks: Send + Sync {
    /// Judges the hook document at its hook (`doc.hook`).
    fn check(&self, doc: &HookDocument) -> Verdict;
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    pub location: ImageLocation,
    pub name: Option<String>,
    pub platform: Platform,
    /// Replace a package of the same name installed from another origin.
    pub replace: bool,
    /// Accept a tag that now names another digest than the ledger holds (`gantry update`); the
    /// move is recorded in the ledger when the install commits.
    pub accept_move: bool,
    /// What the decision log calls this run: `None` for an install, `update`.
    pub action: Option<&'static str>,
    /// Go on where the registry enforces signer continuity and the signers changed.
    pub accept_signer_change: bool,
    /// What the registry and its mirrors said the tag names (registries with mirrors).
    pub agreement: Option<crate::mirrors::AgreementFacts>,
}

/// How an install ended.
#[derive(Debug)]
pub enum Outcome {
    Installed {
        name: String,
        digest: String,
        previous: Option<String>,
    },
    AlreadyInstalled {
        name: String,
        digest: String,
    },
}

/// What `gantry verify` found: the facts and every verdict up to the attestations hook.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// `gantry.verify/v1`.
    pub schema: &'static str,
    pub reference: String,
    pub digest: String,
    pub platform: Platform,
    pub registry: String,
    /// Every hook allowed (or the registry is in warn mode).
    pub allowed: bool,
    pub signatures: Vec<crate::facts::SignatureFact>,
    pub attestations: Vec<crate::facts::AttestationFact>,
    pub attestation_summary: crate::trust::summary::AttestationSummary,
    pub rejected_attestations: Vec<String>,
    pub verdicts: serde_json::Map<String, Value>,
}

/// Everything a pipeline run needs.
pub struct Pipeline<'a, H: Hooks + ?Sized> {
    pub store: &'a Store,
    /// The effective configuration (limits).
    pub config: &'a Config,
    /// Which registry entry governs the request, decided once before the run.
    pub policy: &'a RegistryPolicy,
    pub hooks: &'a H,
    pub reporter: Arc<dyn Reporter>,
    /// Set when the run is interrupted: layer workers stop reading (and writing) at once.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// After the `resolve` and `manifest` hooks: the platform manifest the reference names.
pub struct Resolved {
    image: image::Resolved,
}

/// After the `contents` hook: the image unpacked into a staging directory.
pub struct Staged {
    verified: Verified,
    dir: tempfile::TempDir,
    early_sync: std::thread::JoinHandle<Result<(), store::StoreError>>,
}

/// After the `install` hook: everything the commit writes, computed.
pub struct Plan {
    staged: Staged,
    launch: LaunchPlan,
    meta: PackageMetadata,
    previous: Option<String>,
}

/// What a hook's deny does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judging {
    /// An install: an enforced deny ends it.
    StopOnDeny,
    /// `gantry verify`: every verdict is recorded and reported, none ends the run.
    ReportAll,
}

/// One run: the hook document as it grows stage by stage, and the verdicts so far.
struct Run {
    doc: HookDocument,
    reference: String,
    judging: Judging,
    warn_mode: bool,
    verdicts: serde_json::Map<String, Value>,
    hooks: Vec<HookDecision>,
    digest: Option<String>,
    name: Option<String>,
    /// The decision record of this run is already in the log.
    recorded: bool,
    /// The tag moved and the request accepts it: recorded in the ledger at the commit.
    moved: Option<Acceptance>,
}

impl<H: Hooks + ?Sized> Pipeline<'_, H> {
    /// Resolves and verifies without installing: every hook up to `attestations` runs and all
    /// verdicts are reported; nothing is written but the tag ledger.
    pub async fn verify<S: ImageSource>(
        &self,
        source: &S,
        version: &ManifestRef,
        req: &InstallRequest,
    ) -> Result<VerifyReport, InstallError> {
        let mut run = self.start(req, Judging::ReportAll);
        let resolved = self.resolve(source, version, req, &mut run).await?;
        let verified = self.verify_trust(source, resolved, req, &mut run).await?;
        let allowed = run.warn_mode || run.hooks.iter().all(|h| h.verdict.allowed());
        let image = verified.image();
        let trust = verified.trust();
        Ok(VerifyReport {
            schema: "gantry.verify/v1",
            reference: run.reference.clone(),
            digest: image.digest.clone(),
            platform: image.platform.clone(),
            registry: self.policy.name.clone(),
            allowed,
            signatures: trust.signatures.clone(),
            attestations: trust.attestations.clone(),
            attestation_summary: trust.summary.clone(),
            rejected_attestations: trust.rejected_attestations.clone(),
            verdicts: run.verdicts,
        })
    }

    /// Runs every stage for one request and records the decision in `decisions.jsonl` whatever
    /// the outcome (an install that is a no-op records nothing). A successful install's record
    /// is appended and synced before `current` flips (see [`Pipeline::commit`]); one that cannot
    /// be written fails the install with nothing changed.
    pub async fn install<S: BlobSource>(
        &self,
        source: &S,
        version: &ManifestRef,
        req: &InstallRequest,
    ) -> Result<Outcome, InstallError> {
        let mut run = self.start(req, Judging::StopOnDeny);
        let result = self.install_stages(source, version, req, &mut run).await;
        let outcome = match &result {
            Ok(Outcome::AlreadyInstalled { .. }) => return result,
            _ if run.recorded => return result,
            Ok(Outcome::Installed { .. }) => DecisionOutcome::Installed,
            Err(InstallError::Denied { .. }) => DecisionOutcome::Denied,
            Err(_) => DecisionOutcome::Failed,
        };
        let error = result.as_ref().err().map(|e| e.to_string());
        // The install is refused or failed already; a log we cannot write changes nothing.
        let _ = self.record(&mut run, req, outcome, error);
        result
    }

    async fn install_stages<S: BlobSource>(
        &self,
        source: &S,
        version: &ManifestRef,
        req: &InstallRequest,
        run: &mut Run,
    ) -> Result<Outcome, InstallError> {
        let resolved = self.resolve(source, version, req, run).await?;
        let name = run.name.clone().unwrap_or_default();
        let previous = self.store.current_digest(&name);
        if previous.is_some() {
            self.check_origin(&name, &req.location, req.replace)?;
        }
        if previous.as_deref() == Some(resolved.image.digest.as_str()) {
            // An earlier run killed before its wrapper was written: put it back.
            self.store.ensure_wrapper(&name)?;
            return Ok(Outcome::AlreadyInstalled {
                name,
                digest: resolved.image.digest,
            });
        }
        self.store.check_wrapper_free(&name)?;
        let verified = self.verify_trust(source, resolved, req, run).await?;
        let staged = self.stage(source, verified, run).await?;
        let plan = self.plan(staged, &name, previous, req, run)?;
        self.commit(plan, req, run)
    }

    fn start(&self, req: &InstallRequest, judging: Judging) -> Run {
        let reference = req.location.normalized();
        let doc = HookDocument::new(
            RegistryFacts {
                name: self.policy.name.clone(),
                url: self.policy.url.clone(),
            },
            ImageFacts {
                reference: reference.clone(),
                repository: req.location.repository(),
                tag: req.location.tag(),
                manifest: None,
            },
        );
        Run {
            doc,
            reference,
            judging,
            warn_mode: self.policy.mode == Mode::Warn,
            verdicts: Default::default(),
            hooks: Vec::new(),
            digest: None,
            name: None,
            recorded: false,
            moved: None,
        }
    }

    /// Judges the document at `hook` and records the verdict; an enforced deny ends an install.
    fn gate(&self, run: &mut Run, hook: HookPoint) -> Result<(), InstallError> {
        run.doc.hook = hook;
        let verdict = self.hooks.check(&run.doc);
        self.reporter.report(&Event::Verdict {
            hook,
            verdict: &verdict,
            enforced: !run.warn_mode,
        });
        run.verdicts.insert(
            hook.as_str().into(),
            serde_json::to_value(&verdict).unwrap_or(Value::Null),
        );
        let allowed = verdict.allowed();
        let reasons = verdict
            .deny
            .iter()
            .map(|m| format!("  - {} ({})", m.text, m.source))
            .collect::<Vec<_>>()
            .join("\n");
        run.hooks.push(HookDecision { hook, verdict });
        if !allowed && !run.warn_mode && run.judging == Judging::StopOnDeny {
            return Err(InstallError::Denied {
                reference: run.reference.clone(),
                hook,
                reasons,
            });
        }
        Ok(())
    }

    /// Stage 1: the `resolve` hook on the reference alone, then the manifest and config of the
    /// platform asked for, the tag ledger, and the `manifest` hook. Settles the package name.
    async fn resolve<S: ImageSource>(
        &self,
        source: &S,
        version: &ManifestRef,
        req: &InstallRequest,
        run: &mut Run,
    ) -> Result<Resolved, InstallError> {
        // A registry image is named after its repository; a layout's directory name says little,
        // so it is named after its entrypoint once the config is known.
        let early_name = match (&req.name, &req.location) {
            (Some(n), _) => Some(n.clone()),
            (None, ImageLocation::Registry(_)) => Some(req.location.default_name()),
            (None, ImageLocation::Layout(_)) => None,
        };
        if let Some(n) = &early_name {
            store::validate_name(n)?;
        }
        run.name = early_name.clone();
        self.reporter.report(&Event::Resolving {
            reference: &run.reference,
        });
        self.gate(run, HookPoint::Resolve)?;

        if let Some(a) = &req.agreement {
            self.record_agreement(&req.location, a)?;
            run.doc.agreement = Some(a.clone());
            if a.agreed.is_none() {
                return Err(InstallError::Disagreement {
                    reference: run.reference.clone(),
                    registry: self.policy.name.clone(),
                    required: a.required,
                    have: a.have,
                    answers: a.describe(),
                });
            }
        }
        let image = image::resolve(source, &run.reference, version, &req.platform).await?;
        let ledger = self.check_ledger(&req.location, &image.digest, req, run)?;
        run.digest = Some(image.digest.clone());
        run.doc.image.manifest = Some(ManifestFacts {
            digest: image.digest.clone(),
            platform: image.platform.clone(),
            config: image.config.clone(),
            created: image.created.clone(),
        });
        run.doc.ledger = Some(ledger);
        self.reporter.report(&Event::Resolved {
            reference: &run.reference,
            digest: &image.digest,
            layers: image.layers.len(),
        });
        self.gate(run, HookPoint::Manifest)?;

        let name = match early_name {
            Some(n) => n,
            None => entrypoint_name(&image.config).unwrap_or_else(|| req.location.default_name()),
        };
        store::validate_name(&name)?;
        run.name = Some(name);
        Ok(Resolved { image })
    }

    /// Stage 2: every signature and attestation of the image (and of the index it was selected
    /// from), checked by the trust bridge, then the `signatures` and `attestations` hooks.
    async fn verify_trust<S: ImageSource>(
        &self,
        source: &S,
        resolved: Resolved,
        req: &InstallRequest,
        run: &mut Run,
    ) -> Result<Verified, InstallError> {
        let verified = verify::verify(
            source,
            &req.location.repository(),
            resolved.image,
            self.policy,
            self.store.home(),
        )
        .await?;
        let trust = verified.trust();
        if trust.signatures.is_empty() {
            self.reporter.report(&Event::NoSignatures);
        }
        for signature in &trust.signatures {
            self.reporter.report(&Event::Signature { signature });
        }
        run.doc.signatures = Some(trust.signatures.clone());
        let quorums = self.policy.signature_quorums(&trust.signatures);
        run.doc.signature_quorum = (!quorums.is_empty()).then_some(quorums);
        self.gate(run, HookPoint::Signatures)?;
        self.reporter.report(&Event::Attestations {
            summary: &trust.summary,
            rejected: &trust.rejected_attestations,
        });
        run.doc.attestations = Some(trust.attestations.clone());
        let quorums = self.policy.attestation_quorums(&trust.attestations);
        run.doc.attestation_quorum = (!quorums.is_empty()).then_some(quorums);
        self.gate(run, HookPoint::Attestations)?;
        Ok(verified)
    }

    /// Stage 3: the layers (cached ones reused) unpacked and composed into a staging directory,
    /// then the `contents` hook on the staged files.
    async fn stage<S: BlobSource>(
        &self,
        source: &S,
        verified: Verified,
        run: &mut Run,
    ) -> Result<Staged, InstallError> {
        let dir = self.store.staging()?;
        let rootfs = dir.path().join("rootfs");
        let files = layers::unpack(self, source, verified.image(), &rootfs).await?;
        self.reporter
            .report(&Event::Unpacked { files: files.len() });
        // Start writing the staged files back while the remaining hooks run; the commit syncs
        // again (cheaply, if this got there first) before anything becomes visible.
        let early_sync = {
            let p = dir.path().to_path_buf();
            std::thread::spawn(move || store::sync_fs(&p))
        };
        run.doc.files = Some(files);
        self.gate(run, HookPoint::Contents)?;
        Ok(Staged {
            verified,
            dir,
            early_sync,
        })
    }

    /// Stage 4: how the command will be launched and what the commit writes, then the `install`
    /// hook on it.
    fn plan(
        &self,
        staged: Staged,
        name: &str,
        previous: Option<String>,
        req: &InstallRequest,
        run: &mut Run,
    ) -> Result<Plan, InstallError> {
        let image = staged.verified.image();
        let rootfs = staged.dir.path().join("rootfs");
        let launch = crate::shim::plan(
            &rootfs,
            &image.config.entrypoint,
            &image.config.cmd,
            &image.config.env,
        )
        .map_err(|source| InstallError::Plan {
            reference: run.reference.clone(),
            source,
        })?;
        let installed = previous
            .as_ref()
            .and_then(|_| self.store.current_metadata(name).ok());
        if let Some(old) = &installed {
            self.check_signers(name, old, &staged.verified.trust().signatures, req)?;
        }
        run.doc.install = Some(InstallFacts {
            name: name.to_string(),
            entrypoint: launch.entrypoint.clone(),
            wrapper_path: self.store.wrapper_path(name).display().to_string(),
            previous_digest: previous.clone(),
            previous: installed.as_ref().map(previous_facts),
        });
        self.gate(run, HookPoint::Install)?;
        let trust = staged.verified.trust();
        let meta = PackageMetadata {
            name: name.to_string(),
            reference: run.reference.clone(),
            registry: self.policy.name.clone(),
            digest: image.digest.clone(),
            index_digest: image.index_digest.clone(),
            platform: image.platform.clone(),
            installed_at: now(),
            entrypoint: launch.entrypoint.clone(),
            args: launch.args.clone(),
            signatures: trust.signatures.clone(),
            attestations: serde_json::to_value(&trust.summary).unwrap_or_default(),
            verdicts: Value::Object(run.verdicts.clone()),
            allow_unsigned: self.policy.allow_unsigned,
            layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
        };
        Ok(Plan {
            staged,
            launch,
            meta,
            previous,
        })
    }

    /// Stage 5: the version written into staging, the decision recorded, then `current` flips.
    fn commit(
        &self,
        plan: Plan,
        req: &InstallRequest,
        run: &mut Run,
    ) -> Result<Outcome, InstallError> {
        let Plan {
            staged,
            launch,
            meta,
            previous,
        } = plan;
        self.write_version(staged.dir.path(), &launch, &meta, &run.doc)?;
        let _ = staged.early_sync.join();
        // The decision is on disk before the install becomes visible: if it cannot be written,
        // nothing changes.
        self.record(run, req, DecisionOutcome::Installed, None)?;
        run.recorded = true;
        if let Some(accepted) = run.moved.take() {
            self.store.ledger().append(&Entry::Accepted(accepted))?;
        }
        self.reporter
            .report(&Event::Committing { name: &meta.name });
        if let Err(e) = self
            .store
            .commit(&meta.name, &meta.digest, staged.dir, self.config.keep())
        {
            // Say so after the record that announced it.
            let e = InstallError::from(e);
            let _ = self.record(run, req, DecisionOutcome::Failed, Some(e.to_string()));
            return Err(e);
        }
        self.reporter.report(&Event::Committed {
            name: &meta.name,
            digest: &meta.digest,
        });
        Ok(Outcome::Installed {
            name: meta.name,
            digest: meta.digest,
            previous,
        })
    }

    /// Appends (and syncs) the decision record of this run.
    fn record(
        &self,
        run: &mut Run,
        req: &InstallRequest,
        outcome: DecisionOutcome,
        error: Option<String>,
    ) -> Result<(), InstallError> {
        let name = run
            .name
            .clone()
            .unwrap_or_else(|| req.location.default_name());
        let mut record =
            decisions::DecisionRecord::new(&name, &run.reference, run.digest.as_deref(), outcome);
        record.mode = Some(if run.warn_mode { "warn" } else { "enforce" }.into());
        record.action = req.action.map(str::to_owned);
        record.hooks = if run.recorded {
            run.hooks.clone()
        } else {
            std::mem::take(&mut run.hooks)
        };
        record.error = error;
        let path = self.store.home().decisions();
        decisions::append_and_forward(
            &path,
            &self.store.home().decision_outbox(),
            self.config.decision_log.syslog.as_deref(),
            record,
        )
        .map_err(|source| InstallError::Record { path, source })
    }

    /// Keeps what the registry and its mirrors said in the ledger.
    fn record_agreement(
        &self,
        loc: &ImageLocation,
        a: &crate::mirrors::AgreementFacts,
    ) -> Result<(), InstallError> {
        let ImageLocation::Registry(r) = loc else {
            return Ok(());
        };
        self.store
            .ledger()
            .append(&Entry::Agreement(crate::ledger::Agreement {
                event: "agreement".into(),
                registry: r.host.clone(),
                repository: r.repository.clone(),
                tag: a.tag.clone(),
                required: a.required,
                sources: a.sources.clone(),
                agreed: a.agreed.clone(),
                at: now(),
            }))?;
        Ok(())
    }

    /// Signer continuity: the new version's verified signers against the installed one's. A
    /// change is reported; where the registry enforces continuity it is refused unless the
    /// request accepts it.
    fn check_signers(
        &self,
        name: &str,
        old: &PackageMetadata,
        new: &[crate::facts::SignatureFact],
        req: &InstallRequest,
    ) -> Result<(), InstallError> {
        let (before, after) = (signers(&old.signatures), signers(new));
        if before == after {
            return Ok(());
        }
        let list = |s: &std::collections::BTreeSet<String>| {
            if s.is_empty() {
                "no verified signer".to_string()
            } else {
                s.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        let (from, to) = (list(&before), list(&after));
        self.reporter.report(&Event::SignerChange {
            name,
            from: &from,
            to: &to,
        });
        let enforced = self.policy.signer_continuity == crate::config::SignerContinuity::Enforce;
        if enforced && !req.accept_signer_change {
            return Err(InstallError::SignerChanged {
                name: name.to_string(),
                registry: self.policy.name.clone(),
                from,
                to,
            });
        }
        Ok(())
    }

    /// A package does not silently change origin: installing `name` from another registry or
    /// repository than the one it came from needs `--replace`.
    fn check_origin(
        &self,
        name: &str,
        loc: &ImageLocation,
        replace: bool,
    ) -> Result<(), InstallError> {
        let Ok(meta) = self.store.current_metadata(name) else {
            return Ok(());
        };
        let old = origin_of(&meta.reference);
        let new = origin_of(&loc.normalized());
        if old == new || replace {
            return Ok(());
        }
        Err(InstallError::Usage(format!(
            "{name} is installed from {old}, not from {new}; pass --replace to install it from {new} instead, or --name to install both"
        )))
    }

    /// Records a tag sighting (registry images with a tag) and returns the earlier ones. A tag
    /// that now names another digest than the ledger holds it to is refused, unless the request
    /// accepts the move (`gantry update`); the accepted move is kept in `run` for the commit.
    fn check_ledger(
        &self,
        loc: &ImageLocation,
        digest: &str,
        req: &InstallRequest,
        run: &mut Run,
    ) -> Result<Vec<LedgerSighting>, InstallError> {
        let ImageLocation::Registry(r) = loc else {
            return Ok(Vec::new());
        };
        let Some(tag) = r.tag() else {
            return Ok(Vec::new());
        };
        let ledger = self.store.ledger();
        let contents = ledger.read()?;
        let earlier = contents.sightings(&r.host, &r.repository, tag);
        let expected = contents.expected(&r.host, &r.repository, tag);
        let seen = now();
        let sighting = Entry::Sighting(Sighting {
            registry: r.host.clone(),
            repository: r.repository.clone(),
            tag: tag.to_string(),
            digest: digest.to_string(),
            seen: seen.clone(),
        });
        // The first sighting of a digest is what later ones are judged by: synced. Seeing it
        // again only moves its `last_seen`.
        if earlier.iter().any(|e| e.digest == digest) {
            ledger.append_repeat(&sighting)?;
        } else {
            ledger.append(&sighting)?;
        }
        match expected {
            Some(e) if e.digest != digest => {
                if req.accept_move || run.judging == Judging::ReportAll {
                    run.moved = Some(Acceptance {
                        event: "accepted".into(),
                        registry: r.host.clone(),
                        repository: r.repository.clone(),
                        tag: tag.to_string(),
                        from: e.digest,
                        to: digest.to_string(),
                        by: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
                        at: seen,
                    });
                    return Ok(earlier);
                }
                let first_seen = contents
                    .first_seen(&r.host, &r.repository, tag, digest)
                    .unwrap_or(seen);
                Err(InstallError::TagMoved(Box::new(error::TagMoved {
                    reference: run.reference.clone(),
                    name: run.name.clone().unwrap_or_else(|| loc.default_name()),
                    recorded: e.digest,
                    recorded_seen: e.first_seen,
                    now: digest.to_string(),
                    now_seen: first_seen,
                })))
            }
            _ => Ok(earlier),
        }
    }

    /// Writes the version's `launch` script (for its final location), the hook document it was
    /// judged on and `metadata.json` into the staging dir.
    fn write_version(
        &self,
        staged: &std::path::Path,
        plan: &LaunchPlan,
        meta: &PackageMetadata,
        doc: &HookDocument,
    ) -> Result<(), InstallError> {
        let final_root = self
            .store
            .version_dir(&meta.name, &meta.digest)
            .join("rootfs");
        store::write_executable(
            &staged.join("launch"),
            crate::shim::launch_script(plan, &final_root).as_bytes(),
        )?;
        // The facts every hook judged, so a rollback or an audit can judge them again offline.
        // Streamed: the document lists every file, and need not exist twice in memory.
        let path = staged.join(store::DOCUMENT_FILE);
        let written = std::fs::File::create(&path).and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            serde_json::to_writer(&mut out, doc).map_err(std::io::Error::other)?;
            std::io::Write::flush(&mut out)
        });
        written.map_err(|source| InstallError::Io { path, source })?;
        let path = staged.join("metadata.json");
        let bytes = serde_json::to_vec_pretty(meta).unwrap_or_default();
        std::fs::write(&path, bytes).map_err(|source| InstallError::Io { path, source })
    }
}

/// Who verifiably signed, one line per signer: `key sha256:…`, or `ISSUER SUBJECT` with a URI
/// subject's `@ref` dropped (a release workflow signs each tag from another ref; the workflow is
/// what must stay the same).
fn signers(sigs: &[crate::facts::SignatureFact]) -> std::collections::BTreeSet<String> {
    use crate::facts::SignatureKind;
    sigs.iter()
        .filter(|s| s.verified)
        .map(|s| match s.kind {
            SignatureKind::Key => format!("key {}", s.key_fingerprint.as_deref().unwrap_or("?")),
            SignatureKind::Keyless => {
                let subject = s.identity.subject.as_deref().unwrap_or("?");
                let subject = match subject.split_once('@') {
                    Some((workflow, _)) if subject.contains("://") => workflow,
                    _ => subject,
                };
                format!("{} {subject}", s.identity.issuer.as_deref().unwrap_or("?"))
            }
        })
        .collect()
}

/// What a policy sees of the installed version an install replaces.
fn previous_facts(m: &PackageMetadata) -> crate::document::PreviousFacts {
    let tag = m
        .reference
        .split_once('@')
        .map_or(m.reference.as_str(), |(r, _)| r)
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t.to_string())
        .filter(|_| !m.reference.contains('@'));
    crate::document::PreviousFacts {
        digest: m.digest.clone(),
        tag,
        signers: m
            .signatures
            .iter()
            .filter(|s| s.verified)
            .map(|s| crate::facts::SignerFacts {
                kind: Some(s.kind),
                key_fingerprint: s.key_fingerprint.clone(),
                identity: s.identity.clone(),
                tlog: s.tlog.clone(),
            })
            .collect(),
        attestation_summary: m.attestations.clone(),
    }
}

/// The name of a layout image: the last path component of its entrypoint (or command).
fn entrypoint_name(config: &crate::facts::ImageConfigFacts) -> Option<String> {
    let ep = config.entrypoint.first().or(config.cmd.first())?;
    ep.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Where a normalised reference comes from: `host/repository` or `oci:DIR`, without tag or
/// digest.
fn origin_of(reference: &str) -> String {
    let no_digest = reference.split_once('@').map_or(reference, |(r, _)| r);
    match no_digest.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') && r != "oci" => r.to_string(),
        _ => no_digest.to_string(),
    }
}

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
