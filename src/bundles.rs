//! Signed policy bundles: how a security team pushes install policy to a fleet over the
//! registries it already runs. A bundle is an OCI artifact (one tar layer of Rego policies, their
//! JSON data and Wasm plugin components) signed like an image. The system layer names bundles
//! (`[[bundles]] ref = "…", key = "…"`); gantry keeps the last verified copy of each as an OCI
//! layout under the home's cache, refreshes it when older than [`TTL`], and verifies it again,
//! offline, every time it is used: the cache is where the user can write, so a copy is trusted
//! only for its signature by the system's key. A bundle that fails verification is refused and
//! the last verified one stays in force; with no verified copy at all the run fails (never an
//! empty policy).

use crate::config::BundleRef;
use crate::layout::Layout;
use crate::net::NetConfig;
use crate::registry_policy::SignerMatch;
use crate::source::{ImageSource, ManifestRef};
use crate::store::Home;
use crate::trust::cosign::TrustConfig;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A verified copy older than this is refreshed from its registry before use.
pub const TTL: Duration = Duration::from_secs(300);
/// The config media type of a bundle artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.gantry.policy.bundle.config.v1+json";
/// The tag bundles are cached under in their layout.
const CACHED_TAG: &str = "bundle";
/// A bundle's files, unpacked, at most.
const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("policy bundle {reference}: {message}")]
    Refused { reference: String, message: String },
    #[error("policy bundle {reference}: {source}")]
    Source {
        reference: String,
        #[source]
        source: crate::source::SourceError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Unpacked {
    /// The configuration of a policy or plugin file: the JSON file of the same stem beside it
    /// in the bundle (`tags.rego` + `tags.json`), else none.
    pub fn config_of(&self, file: &Path) -> serde_json::Value {
        let json = file.with_extension("json");
        std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

impl BundleError {
    /// The exit class: content that does not verify is a verification failure, a registry that
    /// cannot be asked a registry failure.
    pub fn exit_kind(&self) -> crate::exit::ExitKind {
        use crate::exit::ExitKind;
        use crate::source::SourceError as S;
        match self {
            BundleError::Refused { .. } => ExitKind::Verification,
            BundleError::Source {
                source: S::DigestMismatch { .. },
                ..
            } => ExitKind::Verification,
            BundleError::Source { .. } => ExitKind::Registry,
            BundleError::Io { .. } => ExitKind::Io,
        }
    }
}

/// The files of one verified bundle, unpacked into a temporary directory for loading.
pub struct Unpacked {
    pub dir: tempfile::TempDir,
    pub policies: Vec<PathBuf>,
    pub plugins: Vec<PathBuf>,
    /// The digest that was verified.
    pub digest: String,
    /// Said when the copy in force is not a fresh one (offline, or a refused refresh).
    pub note: Option<String>,
}

/// Builds a bundle from `dir`: every `.rego`, `.json` and `.wasm` file under it (sorted, no
/// other files), as one tar+gzip layer; returns the blobs and the manifest.
pub fn build(dir: &Path) -> Result<crate::publish::BuiltImage, BundleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    let mut files = Vec::new();
    collect(dir, dir, &mut files).map_err(io(dir))?;
    files.sort();
    if !files
        .iter()
        .any(|f| f.ends_with(".rego") || f.ends_with(".wasm"))
    {
        return Err(BundleError::Refused {
            reference: dir.display().to_string(),
            message: "holds no .rego policy and no .wasm plugin".into(),
        });
    }
    let mut tar = tar::Builder::new(Vec::new());
    for f in &files {
        let data = std::fs::read(dir.join(f)).map_err(io(&dir.join(f)))?;
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, f, data.as_slice())
            .map_err(io(&dir.join(f)))?;
    }
    let tar = tar.into_inner().map_err(io(dir))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).map_err(io(dir))?;
    let layer = gz.finish().map_err(io(dir))?;
    let config = serde_json::to_vec(&serde_json::json!({"files": files})).unwrap_or_default();
    let digest = |b: &[u8]| crate::registry::sha256_digest(b);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::publish::MANIFEST_MEDIA_TYPE,
        "artifactType": "application/vnd.gantry.policy.bundle.v1",
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap_or_default();
    Ok(crate::publish::BuiltImage {
        digest: digest(&manifest),
        layers: vec![(layer, "application/vnd.oci.image.layer.v1.tar+gzip".into())],
        config,
        manifest,
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            collect(root, &e.path(), out)?;
        } else if t.is_file() {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap_or(&e.path())
                .to_path_buf();
            let name = rel.to_string_lossy().replace('\\', "/");
            if [".rego", ".json", ".wasm"]
                .iter()
                .any(|x| name.ends_with(x))
            {
                out.push(name);
            }
        }
    }
    Ok(())
}

fn refusal(b: &BundleRef, message: String) -> BundleError {
    BundleError::Refused {
        reference: b.reference.clone(),
        message,
    }
}

fn source_error(b: &BundleRef, source: crate::source::SourceError) -> BundleError {
    BundleError::Source {
        reference: b.reference.clone(),
        source,
    }
}

/// Where a bundle's verified copy lives.
fn cache_dir(home: &Home, b: &BundleRef) -> PathBuf {
    let key = crate::registry::sha256_digest(b.reference.as_bytes());
    home.cache()
        .join("bundles")
        .join(crate::registry::digest_hex(&key))
}

/// The bundles of the system layer, each verified and unpacked: refreshed first when the copy
/// is older than [`TTL`] (or `refresh`), else the copy in force.
pub fn ensure_all(
    bundles: &[BundleRef],
    home: &Home,
    net: &NetConfig,
    refresh: bool,
) -> Result<Vec<Unpacked>, BundleError> {
    bundles
        .iter()
        .map(|b| ensure(b, home, net, refresh))
        .collect()
}

fn ensure(
    b: &BundleRef,
    home: &Home,
    net: &NetConfig,
    force: bool,
) -> Result<Unpacked, BundleError> {
    let keys = signer(b, home)?;
    let dir = cache_dir(home, b);
    let age = std::fs::metadata(dir.join("index.json"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let mut note = None;
    if force || age.is_none_or(|a| a >= TTL) {
        if let Err(e) = fetch(b, home, net, &keys, &dir) {
            if force || age.is_none() {
                return Err(e);
            }
            note = Some(format!("{e}; the copy verified earlier stays in force"));
        }
    }
    let mut u = unpack(b, &keys, &dir)?;
    u.note = note;
    Ok(u)
}

/// Who must have signed a bundle, and the material to check it with.
struct Signer {
    matcher: SignerMatch,
    root: Option<crate::trust::TrustRoot>,
    /// For messages.
    shown: String,
}

fn signer(b: &BundleRef, home: &Home) -> Result<Signer, BundleError> {
    let refused = |m| refusal(b, m);
    let keys: Vec<PathBuf> = b.key.iter().cloned().collect();
    let matcher = SignerMatch::new(
        &b.reference,
        &b.issuer,
        &b.identity,
        &b.identity_regex,
        &keys,
    )
    .map_err(|e| refused(e.to_string()))?;
    let root = match (&b.issuer, &b.trusted_root) {
        (None, _) => None,
        (Some(_), Some(file)) => {
            Some(crate::trust::TrustRoot::from_file(file).map_err(|e| refused(e.to_string()))?)
        }
        (Some(_), None) => Some(
            crate::trust::TrustRoot::public_good(&home.trust_cache(), false)
                .map_err(|e| refused(e.to_string()))?,
        ),
    };
    let shown = match (&b.key, &b.issuer) {
        (Some(k), _) => k.display().to_string(),
        (None, Some(i)) => format!(
            "{} from issuer {i}",
            b.identity
                .as_deref()
                .or(b.identity_regex.as_deref())
                .unwrap_or("?")
        ),
        (None, None) => "nobody".into(),
    };
    Ok(Signer {
        matcher,
        root,
        shown,
    })
}

/// Pulls the bundle into a fresh layout, verifies it there, then puts it in place of the copy
/// in force (one rename); a bundle that does not verify leaves the copy in force untouched.
fn fetch(
    b: &BundleRef,
    home: &Home,
    net: &NetConfig,
    keys: &Signer,
    dir: &Path,
) -> Result<(), BundleError> {
    let (refused, src) = (|m| refusal(b, m), |e| source_error(b, e));
    let (host, rest) = b
        .reference
        .split_once('/')
        .ok_or_else(|| refused("not HOST/REPOSITORY:TAG".into()))?;
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (rest, "latest"),
    };
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|source| BundleError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    let fresh = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|source| BundleError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    let (host, repository, tag, net) = (
        host.to_string(),
        repository.to_string(),
        tag.to_string(),
        net.clone(),
    );
    let home2 = home.clone();
    let fresh_path = fresh.path().to_path_buf();
    // Its own runtime on its own thread: callers may already be inside one.
    let pulled: Result<(), BundleError> = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| refused(format!("cannot start a runtime: {e}")))?;
            rt.block_on(async {
                let reg = crate::registry::Registry::with_network(
                    &host,
                    &repository,
                    false,
                    &home2,
                    net,
                    std::sync::Arc::new(crate::report::Quiet),
                )
                .map_err(src)?;
                let out = Layout::create(&fresh_path).map_err(src)?;
                crate::save::save(
                    &reg,
                    &b.reference,
                    &ManifestRef::Tag(tag.clone()),
                    Some(CACHED_TAG),
                    &out,
                )
                .await
                .map_err(src)?;
                Ok(())
            })
        })
        .join()
        .unwrap_or_else(|_| Err(refused("the fetch worker failed".into())))
    });
    pulled?;
    // Verified before it replaces anything.
    unpack(b, keys, fresh.path())?;
    let old = parent.join(format!(".old-{}", std::process::id()));
    let _ = std::fs::rename(dir, &old);
    let kept = fresh.keep();
    std::fs::rename(&kept, dir).map_err(|source| BundleError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Verifies the copy in `dir` (its signature by one of `keys`, every digest on the way) and
/// unpacks its files into a temporary directory.
fn unpack(b: &BundleRef, keys: &Signer, dir: &Path) -> Result<Unpacked, BundleError> {
    let (refused, src) = (|m| refusal(b, m), |e| source_error(b, e));
    let layout = Layout::open(dir).map_err(src)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| refused(format!("cannot start a runtime: {e}")))?;
    let (digest, layer) = std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                let m = layout
                    .fetch_manifest(&ManifestRef::Tag(CACHED_TAG.into()))
                    .await
                    .map_err(src)?
                    .ok_or_else(|| refused("no verified copy yet".into()))?;
                let cfg = TrustConfig {
                    keys: keys.matcher.keys.clone(),
                    trust_root: keys.root.clone(),
                    require_tlog: false,
                    pki: None,
                };
                let found =
                    crate::trust::cosign::verify_image(&layout, &b.reference, &m.digest, &cfg)
                        .await
                        .map_err(|e| refused(e.to_string()))?;
                let by_signer = |s: &&crate::facts::SignatureFact| {
                    s.verified
                        && keys.matcher.matches(
                            Some(s.kind),
                            s.key_fingerprint.as_deref(),
                            &s.identity,
                        )
                };
                if !found.signatures.iter().any(|s| by_signer(&s)) {
                    let why: Vec<String> = found
                        .signatures
                        .iter()
                        .filter_map(|s| s.error.clone())
                        .collect();
                    return Err(refused(format!(
                        "not signed by {} ({})",
                        keys.shown,
                        if why.is_empty() {
                            "no signature".to_string()
                        } else {
                            why.join("; ")
                        }
                    )));
                }
                #[derive(serde::Deserialize)]
                struct M {
                    config: crate::source::Descriptor,
                    layers: Vec<crate::source::Descriptor>,
                }
                let parsed: M = serde_json::from_slice(&m.bytes)
                    .map_err(|e| refused(format!("not a bundle manifest: {e}")))?;
                if parsed.config.media_type != CONFIG_MEDIA_TYPE || parsed.layers.len() != 1 {
                    return Err(refused("not a gantry policy bundle".into()));
                }
                let layer = layout
                    .fetch_blob(&parsed.layers[0].digest, MAX_BUNDLE_BYTES)
                    .await
                    .map_err(src)?;
                Ok::<_, BundleError>((m.digest, layer))
            })
        })
        .join()
        .unwrap_or_else(|_| Err(refused("the verify worker failed".into())))
    })?;
    let out = tempfile::tempdir().map_err(|source| BundleError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut policies = Vec::new();
    let mut plugins = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let entries = archive
        .entries()
        .map_err(|e| refused(format!("unreadable layer: {e}")))?;
    let mut total: u64 = 0;
    for (i, e) in entries.enumerate() {
        let mut e = e.map_err(|e| refused(format!("unreadable layer: {e}")))?;
        let name = e
            .path()
            .map_err(|e| refused(format!("unreadable layer: {e}")))?
            .to_string_lossy()
            .into_owned();
        if e.header().entry_type() != tar::EntryType::Regular
            || name
                .split('/')
                .any(|p| p.is_empty() || p == ".." || p == ".")
            || i > 10_000
        {
            return Err(refused(format!("entry {name:?} is not a plain file name")));
        }
        // A flat name: policies are loaded by file, their directories do not matter.
        let flat = name.replace('/', "__");
        let mut data = Vec::new();
        (&mut e)
            .take(MAX_BUNDLE_BYTES.saturating_sub(total).saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| refused(format!("unreadable layer: {e}")))?;
        total = total.saturating_add(data.len() as u64);
        if total > MAX_BUNDLE_BYTES {
            return Err(refused(format!("more than {MAX_BUNDLE_BYTES} bytes")));
        }
        let path = out.path().join(&flat);
        std::fs::write(&path, data).map_err(|source| BundleError::Io {
            path: path.clone(),
            source,
        })?;
        if flat.ends_with(".rego") && !flat.ends_with("_test.rego") {
            policies.push(path);
        } else if flat.ends_with(".wasm") {
            plugins.push(path);
        }
    }
    policies.sort();
    plugins.sort();
    Ok(Unpacked {
        dir: out,
        policies,
        plugins,
        digest,
        note: None,
    })
}
