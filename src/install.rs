//! The install pipeline, top to bottom as in DESIGN.md: resolve → [resolve] → manifest+config →
//! [manifest] → signatures → [signatures] → attestations → [attestations] → layers → [contents] →
//! plan → [install] → commit. Each stage gathers facts into the hook document; hooks judge it.
//! Nothing is unpacked before the signatures and attestations hooks allow, and nothing becomes
//! visible before the install hook allows. This module composes stages; it owns none of them.

use crate::config::{Config, Mode};
use crate::exit::ExitKind;
use crate::facts::{FileEntry, Platform};
use crate::image::{self, Resolved};
use crate::layout::Layout;
use crate::policy::decisions;
use crate::policy::hook::{HookPoint, Verdict};
use crate::reference::{ImageLocation, Version};
use crate::registry::Registry;
use crate::registry_policy::{RegistryPolicy, Transport};
use crate::repo::Repo;
use crate::report::Reporter;
use crate::source::ManifestRef;
use crate::store::{self, PackageMetadata, Sighting, Store};
use crate::unpack;
use serde_json::{json, Value};
use std::sync::Arc;

/// The decision points the pipeline calls; the policy engine implements this.
pub trait Hooks: Send + Sync {
    /// Judges `input` (the hook document of the policy input contract) at `hook`.
    fn check(&self, hook: HookPoint, input: &Value, ctx: &HookContext) -> Verdict;
}

/// What a hook needs besides its document: the registry policy in force.
pub struct HookContext<'a> {
    pub policy: &'a RegistryPolicy,
}

/// What the user asked for.
pub struct InstallRequest {
    pub location: ImageLocation,
    pub name: Option<String>,
    pub allow_unsigned: bool,
    pub platform: Platform,
    /// Replace a package of the same name installed from another origin.
    pub replace: bool,
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
    /// `gantry verify`: everything up to the attestations hook, nothing written.
    Verified {
        allowed: bool,
        report: Value,
    },
}

/// Why an install failed; each maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Usage(String),
    #[error("install of {reference} denied at the {hook} hook:\n{reasons}")]
    Denied {
        reference: String,
        hook: HookPoint,
        reasons: String,
        record: Box<Value>,
    },
    #[error("{0}")]
    Verification(String),
    #[error("{0}")]
    Registry(String),
    #[error("{0}")]
    Io(String),
}

impl InstallError {
    /// The exit code class of this error.
    pub fn kind(&self) -> ExitKind {
        match self {
            InstallError::Usage(_) => ExitKind::Usage,
            InstallError::Denied { .. } => ExitKind::Denied,
            InstallError::Verification(_) => ExitKind::Verification,
            InstallError::Registry(_) => ExitKind::Registry,
            InstallError::Io(_) => ExitKind::Io,
        }
    }
}

impl From<crate::source::SourceError> for InstallError {
    fn from(e: crate::source::SourceError) -> Self {
        use crate::source::SourceError as S;
        match e {
            S::DigestMismatch { .. } => InstallError::Verification(e.to_string()),
            S::Io { .. } => InstallError::Io(e.to_string()),
            _ => InstallError::Registry(e.to_string()),
        }
    }
}

impl From<image::ImageError> for InstallError {
    fn from(e: image::ImageError) -> Self {
        match e {
            image::ImageError::Source(s) => s.into(),
            image::ImageError::NoPlatform { .. } => InstallError::Usage(e.to_string()),
            other => InstallError::Registry(other.to_string()),
        }
    }
}

impl From<store::StoreError> for InstallError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::BadName(_) => InstallError::Usage(e.to_string()),
            other => InstallError::Io(other.to_string()),
        }
    }
}

impl From<unpack::UnpackError> for InstallError {
    fn from(e: unpack::UnpackError) -> Self {
        // Bad content (wrong digest, hostile or corrupt tar, over the caps) is the image failing
        // our checks; only local disk trouble is an I/O failure.
        match e {
            unpack::UnpackError::Io { .. } | unpack::UnpackError::BadLayerDir { .. } => {
                InstallError::Io(e.to_string())
            }
            // A transfer that broke off is the registry's (or the network's) failure.
            unpack::UnpackError::Truncated { .. } => InstallError::Registry(e.to_string()),
            other => InstallError::Verification(other.to_string()),
        }
    }
}

/// Everything a pipeline run needs.
pub struct Pipeline<'a> {
    pub store: &'a Store,
    /// The effective configuration (limits).
    pub config: &'a Config,
    /// Which registry entry governs the request, decided once before the run.
    pub policy: &'a RegistryPolicy,
    pub hooks: &'a dyn Hooks,
    pub reporter: &'a dyn Reporter,
}

/// The hook document as it grows stage by stage, with the verdicts so far.
struct Doc {
    input: Value,
    verdicts: serde_json::Map<String, Value>,
    hooks: Vec<decisions::HookDecision>,
    digest: Option<String>,
    name: Option<String>,
    warn_mode: bool,
    /// Verify only: record every verdict, stop after the attestations hook, write nothing.
    verify_only: bool,
    /// The decision record of this run is already in the log.
    recorded: bool,
}

impl Pipeline<'_> {
    fn gate(
        &self,
        doc: &mut Doc,
        hook: HookPoint,
        ctx: &HookContext,
        reference: &str,
    ) -> Result<(), InstallError> {
        doc.input["hook"] = json!(hook.as_str());
        let verdict = self.hooks.check(hook, &doc.input, ctx);
        let warn_mode = ctx.policy.mode == Mode::Warn;
        doc.warn_mode = warn_mode;
        self.reporter.verdict(hook, &verdict, !warn_mode);
        doc.verdicts.insert(
            hook.as_str().into(),
            serde_json::to_value(&verdict).unwrap_or(Value::Null),
        );
        doc.hooks.push(decisions::HookDecision {
            hook,
            verdict: verdict.clone(),
        });
        if !verdict.allowed() && !warn_mode && !doc.verify_only {
            let reasons = verdict
                .deny
                .iter()
                .map(|m| format!("  - {} ({})", m.text, m.source))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(InstallError::Denied {
                reference: reference.to_string(),
                hook,
                reasons,
                record: Box::new(Value::Object(doc.verdicts.clone())),
            });
        }
        Ok(())
    }

    /// Resolves and verifies without installing: every hook up to `attestations` runs and all
    /// verdicts are reported; nothing is written but the tag ledger.
    pub async fn verify(&self, req: &InstallRequest) -> Result<Outcome, InstallError> {
        let mut doc = Doc {
            input: Value::Null,
            verdicts: Default::default(),
            hooks: Vec::new(),
            digest: None,
            name: None,
            warn_mode: false,
            verify_only: true,
            recorded: false,
        };
        self.run(req, &mut doc).await
    }

    /// Runs the whole pipeline for one request and records the decision in `decisions.jsonl`
    /// whatever the outcome (an install that is a no-op records nothing). A successful install's
    /// record is appended and synced before `current` flips (see [`Pipeline::run`]); one that
    /// cannot be written fails the install with nothing changed.
    pub async fn install(&self, req: &InstallRequest) -> Result<Outcome, InstallError> {
        let mut doc = Doc {
            input: Value::Null,
            verdicts: Default::default(),
            hooks: Vec::new(),
            digest: None,
            name: None,
            warn_mode: false,
            verify_only: false,
            recorded: false,
        };
        let result = self.run(req, &mut doc).await;
        let outcome = match &result {
            Ok(Outcome::AlreadyInstalled { .. } | Outcome::Verified { .. }) => return result,
            Ok(Outcome::Installed { .. }) | Err(_) if doc.recorded => return result,
            Ok(Outcome::Installed { .. }) => decisions::DecisionOutcome::Installed,
            Err(InstallError::Denied { .. }) => decisions::DecisionOutcome::Denied,
            Err(_) => decisions::DecisionOutcome::Failed,
        };
        let error = result.as_ref().err().map(|e| e.to_string());
        if let Err(e) = self.record(&mut doc, req, outcome, error) {
            // The install is refused or failed already; a log we cannot write is reported loudly.
            if result.is_ok() {
                return Err(e);
            }
        }
        result
    }

    /// Appends (and syncs) the decision record of this run.
    fn record(
        &self,
        doc: &mut Doc,
        req: &InstallRequest,
        outcome: decisions::DecisionOutcome,
        error: Option<String>,
    ) -> Result<(), InstallError> {
        let name = doc
            .name
            .clone()
            .or_else(|| req.name.clone())
            .unwrap_or_else(|| req.location.default_name());
        let mut record = decisions::DecisionRecord::new(
            &name,
            &req.location.normalized(),
            doc.digest.as_deref(),
            outcome,
        );
        record.mode = Some(if doc.warn_mode { "warn" } else { "enforce" }.into());
        record.hooks = if doc.recorded {
            doc.hooks.clone()
        } else {
            std::mem::take(&mut doc.hooks)
        };
        record.error = error;
        let log = self.store.home().join("decisions.jsonl");
        decisions::append(&log, record).map_err(|e| {
            InstallError::Io(format!(
                "{}: cannot record the decision: {e}",
                log.display()
            ))
        })
    }

    async fn run(&self, req: &InstallRequest, doc: &mut Doc) -> Result<Outcome, InstallError> {
        let reference = req.location.normalized();
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
        doc.name = early_name.clone();
        // ── resolve
        let policy = self.policy;
        let registry_name = policy.name.clone();
        let ctx = HookContext { policy };
        let tag = req.location.tag();
        doc.input = json!({
            "hook": "resolve",
            "registry": {"name": registry_name, "url": policy.url},
            "image": {"reference": reference, "repository": req.location.repository(), "tag": tag},
        });
        self.reporter.step("resolving", &reference);
        self.gate(doc, HookPoint::Resolve, &ctx, &reference)?;

        // ── manifest + config
        let (repo, version) = self.open(&req.location)?;
        let resolved = image::resolve(&repo, &reference, &version, &req.platform).await?;
        let ledger = self.record_sighting(&req.location, &resolved.digest)?;
        doc.digest = Some(resolved.digest.clone());
        doc.input["image"]["digest"] = json!(resolved.digest);
        doc.input["image"]["platform"] = json!(resolved.platform);
        doc.input["image"]["config"] = json!(resolved.config);
        doc.input["ledger"] = json!(ledger);
        self.reporter.step(
            "manifest",
            &format!("{} ({} layers)", resolved.digest, resolved.layers.len()),
        );
        self.gate(doc, HookPoint::Manifest, &ctx, &reference)?;

        let name = match early_name {
            Some(n) => n,
            None => {
                let ep = resolved
                    .config
                    .entrypoint
                    .first()
                    .or(resolved.config.cmd.first());
                ep.and_then(|e| e.rsplit('/').next())
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| req.location.default_name())
            }
        };
        store::validate_name(&name)?;
        doc.name = Some(name.clone());
        let previous = self.store.current_digest(&name);
        if !doc.verify_only {
            if previous.is_some() {
                self.check_origin(&name, &req.location, req.replace)?;
            }
            if previous.as_deref() == Some(resolved.digest.as_str()) {
                // An earlier run killed before its wrapper was written: put it back.
                self.store.ensure_wrapper(&name)?;
                return Ok(Outcome::AlreadyInstalled {
                    name,
                    digest: resolved.digest,
                });
            }
            self.store.check_wrapper_free(&name)?;
        }

        // ── signatures and attestations
        let trust = self.gather_trust(&repo, &req.location, &resolved).await?;
        doc.input["signatures"] = json!(trust.signatures);
        self.gate(doc, HookPoint::Signatures, &ctx, &reference)?;
        for line in crate::verify::describe_attestations(&trust) {
            self.reporter.step("attestation", &line);
        }
        doc.input["attestations"] = json!(trust.attestations);
        self.gate(doc, HookPoint::Attestations, &ctx, &reference)?;
        if doc.verify_only {
            return Ok(verify_report(
                doc,
                &reference,
                &registry_name,
                &resolved,
                &trust,
            ));
        }

        // ── layers → staging → contents
        let staged = self.store.staging()?;
        let rootfs = staged.path().join("rootfs");
        let files = self.unpack_layers(&repo, &resolved, &rootfs).await?;
        self.reporter
            .step("unpacked", &format!("{} files", files.len()));
        // Start writing the staged files back while the remaining hooks run; the commit syncs
        // again (cheaply, if this got there first) before anything becomes visible.
        let early_sync = {
            let p = staged.path().to_path_buf();
            std::thread::spawn(move || store::sync_fs(&p))
        };
        doc.input["files"] = json!(files);
        self.gate(doc, HookPoint::Contents, &ctx, &reference)?;

        // ── plan → install
        let plan = crate::shim::plan(
            &rootfs,
            &resolved.config.entrypoint,
            &resolved.config.cmd,
            &resolved.config.env,
        )
        .map_err(|e| InstallError::Usage(format!("cannot install {reference}: {e}")))?;
        let wrapper = self.store.wrapper_path(&name);
        doc.input["install"] = json!({
            "name": name,
            "entrypoint": plan.entrypoint,
            "wrapper_path": wrapper.display().to_string(),
            "previous_digest": previous,
        });
        self.gate(doc, HookPoint::Install, &ctx, &reference)?;

        // ── commit
        let meta = PackageMetadata {
            name: name.clone(),
            reference: reference.clone(),
            registry: registry_name.clone(),
            digest: resolved.digest.clone(),
            index_digest: resolved.index_digest.clone(),
            platform: resolved.platform.clone(),
            installed_at: now(),
            entrypoint: plan.entrypoint.clone(),
            args: plan.args.clone(),
            signatures: trust.signatures.clone(),
            attestations: trust.summary.clone(),
            verdicts: Value::Object(doc.verdicts.clone()),
        };
        self.write_version(staged.path(), &plan, &meta)?;
        let _ = early_sync.join();
        // The decision is on disk before the install becomes visible: if it cannot be written,
        // nothing changes.
        self.record(doc, req, decisions::DecisionOutcome::Installed, None)
            .map_err(|e| InstallError::Io(format!("{e}; nothing was installed")))?;
        doc.recorded = true;
        self.reporter.step("committing", &name);
        if let Err(e) = self.store.commit(&name, &resolved.digest, staged) {
            // Say so after the record that announced it.
            let e = InstallError::from(e);
            let _ = self.record(
                doc,
                req,
                decisions::DecisionOutcome::Failed,
                Some(e.to_string()),
            );
            return Err(e);
        }
        Ok(Outcome::Installed {
            name,
            digest: resolved.digest,
            previous,
        })
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

    /// Records a tag sighting (registry images with a tag) and returns the earlier ones.
    fn record_sighting(
        &self,
        loc: &ImageLocation,
        digest: &str,
    ) -> Result<Vec<crate::facts::LedgerSighting>, InstallError> {
        match loc {
            ImageLocation::Registry(r) => match r.tag() {
                Some(t) => Ok(self.store.record_sighting(&Sighting {
                    registry: r.host.clone(),
                    repository: r.repository.clone(),
                    tag: t.to_string(),
                    digest: digest.to_string(),
                    seen: now(),
                })?),
                None => Ok(Vec::new()),
            },
            ImageLocation::Layout(_) => Ok(Vec::new()),
        }
    }

    /// Finds and checks every signature and attestation (of the platform manifest, and of the
    /// index it was selected from), and reports what was found.
    async fn gather_trust(
        &self,
        repo: &Repo,
        loc: &ImageLocation,
        resolved: &Resolved,
    ) -> Result<crate::verify::TrustFacts, InstallError> {
        let trust = crate::verify::gather(
            repo,
            &loc.repository(),
            &resolved.digest,
            resolved.index_digest.as_deref(),
            self.policy,
            self.store.home(),
        )
        .await
        .map_err(|e| match e {
            crate::verify::GatherError::Config { .. } => InstallError::Usage(e.to_string()),
            crate::verify::GatherError::Source(_) => InstallError::Registry(e.to_string()),
        })?;
        if trust.signatures.is_empty() {
            self.reporter.step("signatures", "none found");
        }
        for s in &trust.signatures {
            self.reporter
                .step("signature", &crate::verify::describe_signature(s));
        }
        Ok(trust)
    }

    /// Writes the version's `launch` script (for its final location) and `metadata.json` into
    /// the staging dir.
    fn write_version(
        &self,
        staged: &std::path::Path,
        plan: &crate::shim::LaunchPlan,
        meta: &PackageMetadata,
    ) -> Result<(), InstallError> {
        let final_root = self
            .store
            .version_dir(&meta.name, &meta.digest)
            .join("rootfs");
        store::write_executable(
            &staged.join("launch"),
            crate::shim::launch_script(plan, &final_root).as_bytes(),
        )?;
        let meta_path = staged.join("metadata.json");
        std::fs::write(
            &meta_path,
            serde_json::to_vec_pretty(meta).expect("metadata serialises"),
        )
        .map_err(|e| InstallError::Io(format!("{}: {e}", meta_path.display())))
    }

    fn open(&self, loc: &ImageLocation) -> Result<(Repo, ManifestRef), InstallError> {
        match loc {
            ImageLocation::Registry(r) => {
                let reg = Registry::for_image(
                    r,
                    self.policy.transport == Transport::Http,
                    self.store.home(),
                )?;
                let v = match &r.version {
                    Version::Tag(t) => ManifestRef::Tag(t.clone()),
                    Version::Digest(d) => ManifestRef::Digest(d.clone()),
                };
                Ok((Repo::Registry(reg), v))
            }
            ImageLocation::Layout(l) => {
                let layout = Layout::open(&l.dir)?;
                let v = match &l.version {
                    Some(Version::Digest(d)) => ManifestRef::Digest(d.clone()),
                    Some(Version::Tag(t)) => ManifestRef::Tag(t.clone()),
                    None => ManifestRef::Digest(layout.resolve_tag(None)?.ok_or_else(|| {
                        InstallError::Usage(format!("{} holds no image", l.dir.display()))
                    })?),
                };
                Ok((Repo::Layout(layout), v))
            }
        }
    }

    /// Unpacks every layer (in parallel; cached layers are reused) and composes the rootfs.
    async fn unpack_layers(
        &self,
        repo: &Repo,
        resolved: &Resolved,
        rootfs: &std::path::Path,
    ) -> Result<Vec<FileEntry>, InstallError> {
        let limits = limits(&self.config.limits);
        let budget = Arc::new(unpack::Budget::new(&limits));
        let mut tasks = Vec::new();
        for desc in &resolved.layers {
            let cached = self.store.layer_dir(&desc.digest);
            if let Ok(layer) = unpack::UnpackedLayer::open(&cached) {
                // A cached layer counts against the limits exactly as a fresh one.
                layer.charge(&limits, &budget)?;
                tasks.push(tokio::task::spawn_blocking(move || {
                    Ok::<_, InstallError>(layer)
                }));
                continue;
            }
            let compression = unpack::Compression::from_media_type(&desc.media_type)?;
            let reader = repo.blob_reader(desc).await?;
            let tmp = self.store.layer_tmp_dir(&desc.digest);
            let (digest, size, limits, budget) = (
                desc.digest.clone(),
                desc.size.max(0) as u64,
                limits.clone(),
                budget.clone(),
            );
            tasks.push(tokio::task::spawn_blocking(move || {
                let _ = store::remove_any(&tmp);
                unpack::unpack_layer(reader, &digest, size, compression, &tmp, &limits, &budget)?;
                match std::fs::rename(&tmp, &cached) {
                    Ok(()) => {}
                    // Another process cached the same layer meanwhile: use theirs.
                    Err(_) if cached.exists() => {
                        let _ = store::remove_any(&tmp);
                    }
                    Err(e) => return Err(InstallError::Io(format!("{}: {e}", cached.display()))),
                }
                // Start this layer's writeback now, while other layers still unpack: the commit
                // must sync everything anyway, and overlapping the I/O with their CPU work
                // hides most of it.
                // (Detached: the commit's own sync is the one that counts.)
                let dir = cached.clone();
                std::thread::spawn(move || store::sync_fs(&dir));
                Ok(unpack::UnpackedLayer::open(&cached)?)
            }));
        }
        let mut layers = Vec::new();
        let mut first_err = None;
        for t in tasks {
            match t.await {
                Ok(Ok(l)) => layers.push(l),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(InstallError::Io(format!("layer worker failed: {e}")));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        self.reporter
            .step("composing", &format!("{} layers", layers.len()));
        let rootfs = rootfs.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&unpack::UnpackedLayer> = layers.iter().collect();
            unpack::compose(&refs, &rootfs)
        })
        .await
        .map_err(|e| InstallError::Io(format!("compose worker failed: {e}")))?
        .map_err(Into::into)
    }
}

/// The report of `gantry verify`: the facts and every verdict up to the attestations hook.
fn verify_report(
    doc: &Doc,
    reference: &str,
    registry: &str,
    resolved: &Resolved,
    trust: &crate::verify::TrustFacts,
) -> Outcome {
    let allowed = doc.hooks.iter().all(|h| h.verdict.allowed()) || doc.warn_mode;
    let report = json!({
        "reference": reference,
        "digest": resolved.digest,
        "platform": resolved.platform,
        "registry": registry,
        "allowed": allowed,
        "signatures": trust.signatures,
        "attestations": trust.attestations,
        "attestation_summary": trust.summary,
        "rejected_attestations": trust.rejected_attestations,
        "verdicts": Value::Object(doc.verdicts.clone()),
    });
    Outcome::Verified { allowed, report }
}

/// The unpack caps in force: configured values, built-in defaults for the rest.
fn limits(cfg: &crate::config::LimitsConfig) -> unpack::Limits {
    let d = unpack::Limits::default();
    unpack::Limits {
        max_total_bytes: cfg.max_total_bytes.unwrap_or(d.max_total_bytes),
        max_entries: cfg.max_entries.unwrap_or(d.max_entries),
        max_file_bytes: cfg.max_file_bytes.unwrap_or(d.max_file_bytes),
    }
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
