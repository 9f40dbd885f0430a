//! The pipeline on its own: an image (signed with a real key) in an in-memory source, fake hooks
//! that record every document they are shown and deny where a test says, and a real store in a
//! temp home. What a user would see is asserted: the outcome and its exit class, what is and is
//! not installed, the decision log.

use super::*;
use crate::config::{Config, ConfigPaths, Layered};
use crate::exit::ExitKind;
use crate::policy::hook::HookPoint;
use crate::publish::{LayerCompression, PublishRequest};
use crate::reference;
use crate::source::memory::MemorySource;
use crate::trust::sign::{self, SigningKey};
use std::sync::Mutex;

const REFERENCE: &str = "registry.example/acme/tool:1.0";

/// Records every document it is shown; denies at `deny` (every hook for `None` in `all`).
#[derive(Default)]
struct FakeHooks {
    deny: Vec<HookPoint>,
    seen: Mutex<Vec<HookDocument>>,
}

impl FakeHooks {
    fn denying(deny: &[HookPoint]) -> Self {
        FakeHooks {
            deny: deny.to_vec(),
            ..Default::default()
        }
    }

    fn hooks_seen(&self) -> Vec<HookPoint> {
        self.seen.lock().unwrap().iter().map(|d| d.hook).collect()
    }
}

impl Hooks for FakeHooks {
    fn check(&self, doc: &HookDocument) -> Verdict {
        self.seen.lock().unwrap().push(doc.clone());
        let mut v = Verdict::default();
        if self.deny.contains(&doc.hook) {
            v.deny("fake", format!("no at {}", doc.hook));
        }
        v
    }
}

/// A 64-byte ELF header for this machine with no program headers: a native static binary as far
/// as the launch planner can tell.
fn tiny_elf() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little-endian
    h[6] = 1;
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&crate::elf::host_machine().0.to_le_bytes());
    h[54..56].copy_from_slice(&56u16.to_le_bytes());
    h
}

/// An image of the binary `bin` with baked arguments `args`, as `gantry publish` builds it.
fn build_image(bin: &std::path::Path, args: &[&str]) -> crate::publish::BuiltImage {
    crate::publish::build(&PublishRequest {
        sources: vec![bin.to_path_buf()],
        entrypoint: None,
        args: args.iter().map(|a| a.to_string()).collect(),
        platform: crate::image::host_platform(),
        labels: vec![],
        compression: LayerCompression::Gzip,
    })
    .unwrap()
}

struct Fixture {
    home: tempfile::TempDir,
    store: Store,
    config: Config,
    policy: RegistryPolicy,
    source: MemorySource,
    req: InstallRequest,
    version: ManifestRef,
    /// The platform manifest's digest.
    digest: String,
    /// The one layer's digest.
    layer: String,
}

/// Publishes `tool` (signed by a key the registry entry names) into memory; `entry` is added to
/// the registry entry (e.g. `mode = "warn"`).
fn fixture(entry: &str) -> Fixture {
    let home = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let pub_path = home.path().join("k.pub");
    std::fs::write(&pub_path, key.public_key_pem().unwrap()).unwrap();
    let paths = ConfigPaths {
        user: home.path().join("config.toml"),
        system: home.path().join("system.toml"),
    };
    let text = format!(
        "[registries.acme]\nurl = \"registry.example/acme\"\nkeys = [\"{}\"]\n{entry}",
        pub_path.display()
    );
    let layered = Layered {
        user: Config::parse(&paths.user, &text).unwrap(),
        system: Config::parse(&paths.system, "").unwrap(),
        paths,
    };
    let config = layered.effective();
    let (mut location, named) = reference::parse_named(REFERENCE, &config).unwrap();
    let policy = RegistryPolicy::resolve(&layered, &mut location, named.as_deref(), false).unwrap();

    let bin = home.path().join("tool");
    std::fs::write(&bin, tiny_elf()).unwrap();
    let built = build_image(&bin, &[]);
    let source = MemorySource::default();
    let layer = built
        .layers
        .iter()
        .map(|(blob, _)| source.blob(blob))
        .next()
        .unwrap();
    source.blob(&built.config);
    let digest = source.manifest(Some("1.0"), &built.manifest);
    assert_eq!(digest, built.digest);
    let sig = sign::sign_image(&key, "registry.example/acme/tool", &digest).unwrap();
    let att = sign::build_attachment_manifest(None, &sig).unwrap();
    source.blob(&sig.payload);
    source.blob(&att.config);
    source.manifest(
        Some(&sign::attachment_tag(&digest, "sig").unwrap()),
        &att.manifest,
    );

    let store = Store::open(&store::Home::new(home.path())).unwrap();
    Fixture {
        store,
        config,
        policy,
        source,
        req: InstallRequest {
            location,
            name: None,
            platform: crate::image::host_platform(),
            replace: false,
            accept_move: false,
            action: None,
            accept_signer_change: false,
            agreement: None,
        },
        version: ManifestRef::Tag("1.0".into()),
        digest,
        layer,
        home,
    }
}

impl Fixture {
    fn pipeline<'a>(&'a self, hooks: &'a FakeHooks) -> Pipeline<'a, FakeHooks> {
        Pipeline {
            store: &self.store,
            config: &self.config,
            policy: &self.policy,
            hooks,
            reporter: Arc::new(crate::report::Quiet),
            cancel: Default::default(),
        }
    }

    async fn install(&self, hooks: &FakeHooks) -> Result<Outcome, InstallError> {
        self.pipeline(hooks)
            .install(&self.source, &self.version, &self.req)
            .await
    }

    /// The outcomes in the decision log, oldest first.
    fn decisions(&self) -> Vec<String> {
        let log =
            std::fs::read_to_string(self.home.path().join("decisions.jsonl")).unwrap_or_default();
        log.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["outcome"].to_string())
            .collect()
    }

    /// Nothing of the package is visible: no command, not listed, no current version.
    fn assert_nothing_installed(&self) {
        assert!(!self.store.wrapper_path("tool").exists());
        assert!(self.store.list().unwrap().is_empty());
        assert_eq!(self.store.current_digest("tool"), None);
        let staging = std::fs::read_dir(self.home.path().join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(staging, 0, "staging left behind");
    }
}

/// The top-level sections of a document.
fn sections(doc: &HookDocument) -> Vec<String> {
    let mut keys: Vec<String> = doc.to_json().as_object().unwrap().keys().cloned().collect();
    if doc.image.manifest.is_some() {
        keys.push("image.digest".into());
    }
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_run_in_pipeline_order_and_each_sees_the_facts_so_far() {
    let f = fixture("");
    let hooks = FakeHooks::default();
    let outcome = f.install(&hooks).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Installed { name, digest, previous: None } if name == "tool" && *digest == f.digest),
        "{outcome:?}"
    );
    assert_eq!(hooks.hooks_seen(), HookPoint::ALL);
    let seen = hooks.seen.lock().unwrap();
    let expected: [&[&str]; 6] = [
        &["hook", "image", "registry"],
        &["hook", "image", "image.digest", "ledger", "registry"],
        &[
            "hook",
            "image",
            "image.digest",
            "ledger",
            "registry",
            "signatures",
        ],
        &[
            "attestations",
            "hook",
            "image",
            "image.digest",
            "ledger",
            "registry",
            "signatures",
        ],
        &[
            "attestations",
            "files",
            "hook",
            "image",
            "image.digest",
            "ledger",
            "registry",
            "signatures",
        ],
        &[
            "attestations",
            "files",
            "hook",
            "image",
            "image.digest",
            "install",
            "ledger",
            "registry",
            "signatures",
        ],
    ];
    for (doc, want) in seen.iter().zip(expected) {
        assert_eq!(sections(doc), want, "at {}", doc.hook);
    }
    let install = &seen[5];
    assert_eq!(install.registry.name, "acme");
    assert_eq!(install.image.reference, REFERENCE);
    assert_eq!(install.image.tag.as_deref(), Some("1.0"));
    assert_eq!(install.manifest().unwrap().digest, f.digest);
    let sigs = install.signatures.as_ref().unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(sigs[0].verified, "{sigs:?}");
    let files = install.files.as_ref().unwrap();
    assert!(
        files.iter().any(|e| e.path == "usr/local/bin/tool"),
        "{files:?}"
    );
    let facts = install.install.as_ref().unwrap();
    assert_eq!(
        (facts.name.as_str(), facts.entrypoint.as_str()),
        ("tool", "/usr/local/bin/tool")
    );
    assert_eq!(facts.previous_digest, None);

    assert!(f.store.wrapper_path("tool").exists());
    assert_eq!(f.store.current_digest("tool"), Some(f.digest.clone()));
    assert_eq!(f.decisions(), ["\"installed\""]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_at_any_hook_stops_there_and_leaves_nothing_visible() {
    for (i, hook) in HookPoint::ALL.into_iter().enumerate() {
        let f = fixture("");
        let hooks = FakeHooks::denying(&[hook]);
        let err = f.install(&hooks).await.unwrap_err();
        assert!(
            matches!(&err, InstallError::Denied { hook: h, .. } if *h == hook),
            "{hook}: {err}"
        );
        assert_eq!(err.kind(), ExitKind::Denied);
        assert!(err.to_string().contains(&format!("no at {hook}")), "{err}");
        // No hook after the one that denied was asked.
        assert_eq!(hooks.hooks_seen(), &HookPoint::ALL[..=i], "{hook}");
        f.assert_nothing_installed();
        assert_eq!(f.decisions(), ["\"denied\""], "{hook}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn warn_mode_reports_denies_and_installs() {
    let f = fixture("mode = \"warn\"\n");
    let hooks = FakeHooks::denying(&HookPoint::ALL);
    let outcome = f.install(&hooks).await.unwrap();
    assert!(matches!(outcome, Outcome::Installed { .. }), "{outcome:?}");
    assert_eq!(hooks.hooks_seen(), HookPoint::ALL);
    assert!(f.store.wrapper_path("tool").exists());
    let meta = f.store.current_metadata("tool").unwrap();
    assert_eq!(
        meta.verdicts["install"]["deny"][0]["text"], "no at install",
        "{:?}",
        meta.verdicts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_is_the_first_two_stages_and_reports_every_verdict() {
    let f = fixture("");
    let hooks = FakeHooks::denying(&[HookPoint::Resolve, HookPoint::Signatures]);
    let report = f
        .pipeline(&hooks)
        .verify(&f.source, &f.version, &f.req)
        .await
        .unwrap();
    assert!(!report.allowed);
    assert_eq!(hooks.hooks_seen(), &HookPoint::ALL[..4]);
    assert_eq!(report.digest, f.digest);
    assert_eq!(report.signatures.len(), 1);
    assert!(report.signatures[0].verified);
    assert_eq!(report.verdicts.len(), 4);
    f.assert_nothing_installed();
    assert!(f.decisions().is_empty(), "verify records no decision");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reinstall_of_the_same_digest_runs_no_trust_or_content_hook() {
    let f = fixture("");
    f.install(&FakeHooks::default()).await.unwrap();
    let hooks = FakeHooks::default();
    let outcome = f.install(&hooks).await.unwrap();
    assert!(
        matches!(outcome, Outcome::AlreadyInstalled { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        hooks.hooks_seen(),
        [HookPoint::Resolve, HookPoint::Manifest]
    );
    // The second sighting of the tag shows the first.
    let ledger = hooks.seen.lock().unwrap()[1].ledger.clone().unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].digest, f.digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_that_hashes_wrong_is_a_verification_failure_with_nothing_visible() {
    let f = fixture("");
    let mut evil = build_image(&f.home.path().join("tool"), &["--evil"]);
    let (blob, _) = evil.layers.remove(0);
    let mut blob = blob;
    blob.extend_from_slice(b"trailing");
    f.source.blob_as(&f.layer, &blob);
    let hooks = FakeHooks::default();
    let err = f.install(&hooks).await.unwrap_err();
    assert_eq!(err.kind(), ExitKind::Verification, "{err}");
    assert!(matches!(err, InstallError::Unpack(_)), "{err:?}");
    // The content hooks never saw the bad layer.
    assert_eq!(hooks.hooks_seen(), &HookPoint::ALL[..4]);
    f.assert_nothing_installed();
    assert_eq!(f.decisions(), ["\"failed\""]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_image_reaches_the_signatures_hook_as_a_fact() {
    let f = fixture("");
    // Another image under the tag, with no signature of its own.
    let evil = build_image(&f.home.path().join("tool"), &["--evil"]);
    for (blob, _) in &evil.layers {
        f.source.blob(blob);
    }
    f.source.blob(&evil.config);
    let digest = f.source.manifest(Some("1.0"), &evil.manifest);
    let hooks = FakeHooks::denying(&[HookPoint::Signatures]);
    let err = f.install(&hooks).await.unwrap_err();
    assert!(matches!(
        err,
        InstallError::Denied {
            hook: HookPoint::Signatures,
            ..
        }
    ));
    let seen = hooks.seen.lock().unwrap();
    assert_eq!(seen[2].manifest().unwrap().digest, digest);
    assert_eq!(seen[2].signatures.as_deref(), Some(&[][..]));
}
