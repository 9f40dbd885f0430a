//! Turns parsed command lines into requests and runs them: finds the home, loads the layered
//! configuration, takes the store lock where the store changes, and classifies every failure for
//! its exit code. Output to the user is written here, not in the stages.

use crate::cli::{Cli, Command, InstallArgs, PublishArgs, RegistryAddArgs, RegistryCommand};
use crate::config::{ConfigPaths, Layered, RegistryEntry};
use crate::exit::{Classify, ExitKind, Failure};
use crate::facts::Platform;
use crate::install::{InstallError, InstallRequest, Outcome, Pipeline};
use crate::reference::{self, ImageLocation, Version};
use crate::registry_policy::{RegistryPolicy, Transport};
use crate::repo::Repo;
use crate::report::{JsonReporter, Reporter, TextReporter};
use crate::source::ManifestRef;
use crate::store::{Home, Store};
use std::sync::Arc;

/// `GANTRY_HOME`, or `~/.gantry`.
pub fn home_dir() -> Result<Home, Failure> {
    Home::locate()
        .ok_or_else(|| Failure::msg(ExitKind::Usage, "neither GANTRY_HOME nor HOME is set"))
}

fn load_config(home: &Home) -> Result<Layered, Failure> {
    let classify = |e: crate::config::ConfigError| {
        let kind = match e {
            crate::config::ConfigError::Io { .. } => ExitKind::Io,
            _ => ExitKind::Usage,
        };
        Failure::new(kind, e)
    };
    let paths = ConfigPaths::new(home).map_err(classify)?;
    std::fs::create_dir_all(home.root())
        .map_err(|e| Failure::msg(ExitKind::Io, format!("{}: {e}", home.root().display())))?;
    Layered::load(paths).map_err(classify)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .kind(ExitKind::Internal)
}

fn parse_platform(s: Option<&str>) -> Result<Platform, Failure> {
    let Some(s) = s else {
        return Ok(crate::image::host_platform());
    };
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, v] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(v.to_string()),
        }),
        _ => Err(Failure::msg(
            ExitKind::Usage,
            format!("invalid platform '{s}': use OS/ARCH[/VARIANT]"),
        )),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let verbose = cli.verbose;
    match cli.command {
        Command::Install(a) => install(a, verbose),
        Command::Verify(a) => verify(a, verbose),
        Command::Remove { name } => remove(&name),
        Command::List { json } => list(json),
        Command::Registry(c) => registry(c),
        Command::Publish(a) => publish(a),
        Command::Keygen(a) => {
            let args = crate::cmd::keygen::KeygenArgs {
                output_key_prefix: a.output_key_prefix,
            };
            let written = crate::cmd::keygen::run(&args)?;
            crate::outln!("{}", written.public_key.display());
            crate::errln!(
                "wrote private key {} and public key {}",
                written.private_key.display(),
                written.public_key.display()
            );
            Ok(())
        }
        Command::Policy(c) => crate::cmd::policy::run(c),
        Command::Plugin(c) => crate::cmd::plugin::run(c),
        Command::Explain(a) => crate::cmd::explain::run(a, &home_dir()?),
        Command::Trust(a) => crate::cmd::trust::run(a, &home_dir()?),
        Command::VerifyBundle(a) => crate::cmd::verify_bundle::run(a, &home_dir()?),
    }
}

/// What install and verify share: the parsed request and the policy engine for its registry,
/// loaded (and every policy parsed) before anything is pulled.
struct Prepared {
    home: Home,
    config: crate::config::Config,
    policy: RegistryPolicy,
    hooks: crate::hooks::EngineHooks,
    req: InstallRequest,
}

fn prepare(
    reference_text: &str,
    name: Option<String>,
    allow_unsigned: bool,
    platform: Option<&str>,
) -> Result<Prepared, Failure> {
    if let Some(n) = &name {
        // Before anything is opened or fetched.
        crate::store::validate_name(n).kind(ExitKind::Usage)?;
    }
    let home = home_dir()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let (mut location, named) =
        reference::parse_named(reference_text, &config).kind(ExitKind::Usage)?;
    let platform = parse_platform(platform)?;
    let policy = RegistryPolicy::resolve(&layered, &mut location, named.as_deref(), allow_unsigned)
        .kind(ExitKind::Usage)?;
    let hooks = crate::hooks::EngineHooks::load(&layered, &policy, &home)
        .map_err(|e| Failure::new(ExitKind::Usage, e))?;
    Ok(Prepared {
        home,
        config,
        policy,
        hooks,
        req: InstallRequest {
            location,
            name,
            platform,
            replace: false,
        },
    })
}

/// The reporter of `-v`/`--json` for install and verify.
fn reporter(json: bool, verbose: bool) -> Arc<dyn Reporter> {
    if json {
        Arc::new(JsonReporter)
    } else {
        Arc::new(TextReporter::new(verbose))
    }
}

fn open_repo(p: &Prepared) -> Result<(Repo, ManifestRef), Failure> {
    crate::repo::open(&p.req.location, &p.policy, &p.home).map_err(|e| {
        let e = InstallError::from(e);
        Failure::new(e.kind(), e)
    })
}

fn verify(a: crate::cli::VerifyArgs, verbose: bool) -> Result<(), Failure> {
    let p = prepare(&a.reference, None, a.allow_unsigned, a.platform.as_deref())?;
    let store = Store::open(&p.home).kind(ExitKind::Io)?;
    let reporter: Arc<dyn Reporter> = if a.json {
        Arc::new(crate::report::Quiet)
    } else {
        reporter(false, verbose)
    };
    let pipeline = Pipeline {
        store: &store,
        config: &p.config,
        policy: &p.policy,
        hooks: &p.hooks,
        reporter,
    };
    let rt = runtime()?;
    let (repo, version) = rt.block_on(async { open_repo(&p) })?;
    let report = rt
        .block_on(pipeline.verify(&repo, &version, &p.req))
        .map_err(|e| Failure::new(e.kind(), e))?;
    if a.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        let verified = report.signatures.iter().filter(|s| s.verified).count();
        crate::outln!(
            "{} {}: {verified}/{} signatures verified, {} attestations; {}",
            report.reference,
            report.digest,
            report.signatures.len(),
            report.attestations.len(),
            if report.allowed {
                "allowed by policy"
            } else {
                "DENIED by policy"
            }
        );
    }
    if report.allowed {
        Ok(())
    } else {
        Err(Failure::msg(
            ExitKind::Denied,
            format!(
                "{} does not satisfy the policy of registry '{}'",
                report.reference, report.registry
            ),
        ))
    }
}

fn install(a: InstallArgs, verbose: bool) -> Result<(), Failure> {
    let mut p = prepare(
        &a.reference,
        a.name,
        a.allow_unsigned,
        a.platform.as_deref(),
    )?;
    p.req.replace = a.replace;
    let store = Store::open(&p.home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    store.clean_leftovers().kind(ExitKind::Io)?;
    let pipeline = Pipeline {
        store: &store,
        config: &p.config,
        policy: &p.policy,
        hooks: &p.hooks,
        reporter: reporter(false, verbose),
    };
    let rt = runtime()?;
    let (repo, version) = rt.block_on(async { open_repo(&p) })?;
    // Ctrl-C: the install stops at its next step (the commit itself runs without a pause, so it
    // happens whole or not at all), its workers are given a moment to stop, and the staging it
    // left is removed on the way out.
    let interruptible = async {
        tokio::select! {
            r = pipeline.install(&repo, &version, &p.req) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    };
    let Some(result) = rt.block_on(interruptible) else {
        rt.shutdown_timeout(std::time::Duration::from_secs(2));
        let _ = store.clean_leftovers();
        return Err(Failure::msg(
            ExitKind::Interrupted,
            "interrupted; nothing was changed and the staging was removed",
        ));
    };
    let outcome = result.map_err(|e| Failure::new(e.kind(), e))?;
    match outcome {
        Outcome::Installed {
            name,
            digest,
            previous,
        } => {
            let from = previous.map(|p| format!(" (was {p})")).unwrap_or_default();
            crate::outln!(
                "installed {name} {digest}{from} -> {}",
                store.wrapper_path(&name).display()
            );
        }
        Outcome::AlreadyInstalled { name, digest } => {
            crate::outln!("{name} is already installed at {digest}")
        }
    }
    Ok(())
}

fn remove(name: &str) -> Result<(), Failure> {
    let home = home_dir()?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let _lock = store.lock().kind(ExitKind::Io)?;
    store.clean_leftovers().kind(ExitKind::Io)?;
    store.remove(name).map_err(|e| {
        let kind = match e {
            crate::store::StoreError::NotInstalled(_) | crate::store::StoreError::BadName(_) => {
                ExitKind::Usage
            }
            _ => ExitKind::Io,
        };
        Failure::new(kind, e)
    })?;
    crate::outln!("removed {name}");
    Ok(())
}

fn list(json: bool) -> Result<(), Failure> {
    let home = home_dir()?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    let pkgs = store.list().kind(ExitKind::Io)?;
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&pkgs).expect("metadata serialises")
        );
        return Ok(());
    }
    if pkgs.is_empty() {
        crate::outln!("nothing installed");
    }
    for p in pkgs {
        let signed = if p.signatures.iter().any(|s| s.verified) {
            "signed"
        } else {
            "unsigned"
        };
        crate::outln!(
            "{:<20} {:<60} {} {}",
            p.name,
            p.reference,
            &p.digest[..p.digest.len().min(19)],
            signed
        );
    }
    Ok(())
}

fn registry(c: RegistryCommand) -> Result<(), Failure> {
    let home = home_dir()?;
    let mut layered = load_config(&home)?;
    let store = Store::open(&home).kind(ExitKind::Io)?;
    match c {
        RegistryCommand::List { json } => {
            let eff = layered.effective();
            if json {
                crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&eff.registries).expect("registries serialise")
                );
            } else {
                for (name, e) in &eff.registries {
                    let default = if eff.default_registry.as_deref() == Some(name) {
                        " (default)"
                    } else {
                        ""
                    };
                    let system = if layered.system.registries.contains_key(name) {
                        " [system]"
                    } else {
                        ""
                    };
                    let policy = match (&e.identity, &e.identity_regex, e.keys.len()) {
                        (Some(i), _, _) => format!("identity {i}"),
                        (_, Some(r), _) => format!("identity ~ {r}"),
                        (_, _, n) if n > 0 => format!("{n} key(s)"),
                        _ => "no signature policy".into(),
                    };
                    crate::outln!("{name:<16} {:<40} {policy}{default}{system}", e.url);
                }
            }
            Ok(())
        }
        RegistryCommand::Add(a) => {
            let _lock = store.lock().kind(ExitKind::Io)?;
            registry_add(&mut layered, a)?;
            layered.user.write(&layered.paths.user).kind(ExitKind::Io)
        }
        RegistryCommand::Remove { name } => {
            let _lock = store.lock().kind(ExitKind::Io)?;
            if layered.system.registries.contains_key(&name) {
                return Err(Failure::msg(ExitKind::Usage, format!("registry '{name}' is set by the system configuration and cannot be removed")));
            }
            if layered.user.registries.remove(&name).is_none() {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    format!("no registry named '{name}'"),
                ));
            }
            if layered.user.default_registry.as_deref() == Some(name.as_str()) {
                layered.user.default_registry = None;
            }
            layered.user.write(&layered.paths.user).kind(ExitKind::Io)?;
            crate::outln!("removed registry {name}");
            Ok(())
        }
    }
}

fn registry_add(layered: &mut Layered, a: RegistryAddArgs) -> Result<(), Failure> {
    let valid_name = !a.name.is_empty()
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if !valid_name {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!(
                "invalid registry name '{}': use letters, digits, '-' and '_'",
                a.name
            ),
        ));
    }
    if layered.system.registries.contains_key(&a.name) {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("registry '{}' is set by the system configuration", a.name),
        ));
    }
    if a.url.contains(char::is_whitespace) {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("invalid registry URL '{}'", a.url),
        ));
    }
    let url = canonical_url(&a.url)?;
    let mut entry = RegistryEntry {
        url,
        insecure: a.insecure,
        ..Default::default()
    };
    use crate::cli::Template;
    match a.template {
        Some(Template::Chainguard) => {
            entry.issuer = Some("https://token.actions.githubusercontent.com".into());
            entry.identity_regex = Some("https://github.com/chainguard-images/images/.*".into());
        }
        Some(t) => {
            entry.issuer = Some(
                match t {
                    Template::Github => "https://token.actions.githubusercontent.com",
                    Template::Gitlab => "https://gitlab.com",
                    _ => "https://accounts.google.com",
                }
                .into(),
            );
            if a.identity.is_none() && a.identity_regex.is_none() {
                return Err(Failure::msg(
                    ExitKind::Usage,
                    "this template sets only the issuer: give --identity or --identity-regex",
                ));
            }
        }
        None => {}
    }
    if let Some(i) = a.issuer {
        entry.issuer = Some(i);
    }
    if let Some(i) = a.identity {
        entry.identity = Some(i);
        entry.identity_regex = None;
    }
    if let Some(r) = a.identity_regex {
        regex::Regex::new(&crate::config::anchor(&r))
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("--identity-regex: {e}")))?;
        entry.identity_regex = Some(r);
        entry.identity = None;
    }
    if (entry.identity.is_some() || entry.identity_regex.is_some()) && entry.issuer.is_none() {
        return Err(Failure::msg(
            ExitKind::Usage,
            "an identity needs --issuer (or a --template that sets it)",
        ));
    }
    if entry.issuer.is_some() && entry.identity.is_none() && entry.identity_regex.is_none() {
        return Err(Failure::msg(
            ExitKind::Usage,
            "--issuer names no signer by itself: add --identity or --identity-regex",
        ));
    }
    for k in &a.keys {
        let abs = std::fs::canonicalize(k)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", k.display())))?;
        let pem = std::fs::read(&abs)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", k.display())))?;
        crate::trust::PublicKey::from_pem(&pem)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", k.display())))?;
        entry.keys.push(abs);
    }
    if let Some(t) = a.trusted_root {
        let abs = std::fs::canonicalize(&t)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", t.display())))?;
        crate::trust::TrustRoot::from_file(&abs).map_err(|e| Failure::new(ExitKind::Usage, e))?;
        entry.trusted_root = Some(abs);
    }
    if a.warn_only {
        entry.mode = crate::config::Mode::Warn;
    }
    entry.match_reference = a.match_reference;
    // The same check as at load: a half-filled signature policy is never written.
    entry
        .check(&a.name, false)
        .map_err(|m| Failure::msg(ExitKind::Usage, m))?;
    for (sys_name, sys) in &layered.system.registries {
        if let Some(what) = overlap(&entry.url, &sys.url) {
            crate::errln!(
                "note: registry '{}' ({}) {what} system registry '{sys_name}' ({}): where both cover a reference, the system entry governs and '{}' can only add requirements",
                a.name, entry.url, sys.url, a.name
            );
        }
    }
    layered.user.registries.insert(a.name.clone(), entry);
    if a.default {
        layered.user.default_registry = Some(a.name.clone());
    }
    crate::outln!("added registry {} -> {}", a.name, a.url);
    Ok(())
}

/// An entry URL in canonical spelling (host as in [`crate::identity`], prefix without empty
/// components), or the reason it is not one.
fn canonical_url(url: &str) -> Result<String, Failure> {
    use crate::identity::RegistryUrl;
    match RegistryUrl::parse(url.trim_end_matches('/'))
        .map_err(|e| Failure::msg(ExitKind::Usage, e))?
    {
        RegistryUrl::Registry { host, prefix } => Ok(std::iter::once(host.to_string())
            .chain(prefix)
            .collect::<Vec<_>>()
            .join("/")),
        RegistryUrl::Layout(dir) => Ok(format!(
            "oci:{}",
            crate::identity::canonical_path(&dir).display()
        )),
    }
}

/// How a user entry's URL overlaps a system entry's, if it does.
fn overlap(user: &str, system: &str) -> Option<&'static str> {
    use crate::identity::{canonical_path, RegistryUrl};
    let (a, b): (Vec<String>, Vec<String>) = match (
        RegistryUrl::parse(user).ok()?,
        RegistryUrl::parse(system).ok()?,
    ) {
        (
            RegistryUrl::Registry {
                host: h1,
                prefix: p1,
            },
            RegistryUrl::Registry {
                host: h2,
                prefix: p2,
            },
        ) => {
            let plain = h1.is_loopback() || h2.is_loopback();
            if h1.identity(plain) != h2.identity(plain) {
                return None;
            }
            (p1, p2)
        }
        (RegistryUrl::Layout(d1), RegistryUrl::Layout(d2)) => {
            let parts = |d: &std::path::Path| {
                canonical_path(d)
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect()
            };
            (parts(&d1), parts(&d2))
        }
        _ => return None,
    };
    if a == b {
        Some("is the same registry as")
    } else if a.starts_with(&b) {
        Some("is inside")
    } else if b.starts_with(&a) {
        Some("covers")
    } else {
        None
    }
}

fn publish(a: PublishArgs) -> Result<(), Failure> {
    let home = home_dir()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let (mut target_loc, named) = reference::parse_named(&a.to, &config).kind(ExitKind::Usage)?;
    let target_policy = RegistryPolicy::resolve(&layered, &mut target_loc, named.as_deref(), false)
        .kind(ExitKind::Usage)?;
    let mut labels = Vec::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').ok_or_else(|| {
            Failure::msg(
                ExitKind::Usage,
                format!("invalid label '{l}': use KEY=VALUE"),
            )
        })?;
        labels.push((k.to_string(), v.to_string()));
    }
    let req = crate::publish::PublishRequest {
        sources: a.sources,
        entrypoint: a.entrypoint,
        args: a.args,
        platform: parse_platform(a.platform.as_deref())?,
        labels,
        compression: a.compression,
    };
    let img = crate::publish::build(&req).map_err(publish_failure)?;
    let target = match &target_loc {
        ImageLocation::Registry(r) => {
            let tag = match &r.version {
                Version::Tag(t) => t.clone(),
                Version::Digest(_) => {
                    return Err(Failure::msg(
                        ExitKind::Usage,
                        "publish to a tag, not a digest",
                    ))
                }
            };
            let registry = crate::registry::Registry::for_image(
                r,
                target_policy.transport == Transport::Http,
                &home,
            )
            .kind(ExitKind::Registry)?;
            crate::publish::Target::Registry { registry, tag }
        }
        ImageLocation::Layout(l) => {
            let tag = match &l.version {
                Some(Version::Tag(t)) => Some(t.clone()),
                None => None,
                Some(Version::Digest(_)) => {
                    return Err(Failure::msg(
                        ExitKind::Usage,
                        "publish to a tag, not a digest",
                    ))
                }
            };
            let layout = crate::layout::Layout::create(&l.dir).kind(ExitKind::Io)?;
            crate::publish::Target::Layout { layout, tag }
        }
    };
    if a.attest.len() != a.predicate_type.len() {
        return Err(Failure::msg(
            ExitKind::Usage,
            "give one --predicate-type for each --attest",
        ));
    }
    let key = match &a.key {
        Some(p) => {
            let password = crate::cmd::keygen::password(false)?;
            Some(
                crate::trust::keygen::load_private_key(p, &password)
                    .map_err(|e| Failure::new(ExitKind::Usage, e))?,
            )
        }
        None => None,
    };
    let mut attestations = Vec::new();
    for (file, ptype) in a.attest.iter().zip(&a.predicate_type) {
        let uri = crate::trust::sign::predicate_type_uri(ptype)
            .map_err(|e| Failure::new(ExitKind::Usage, e))?;
        let text = std::fs::read(file)
            .map_err(|e| Failure::msg(ExitKind::Usage, format!("{}: {e}", file.display())))?;
        let predicate: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            Failure::msg(
                ExitKind::Usage,
                format!("{}: not JSON: {e}", file.display()),
            )
        })?;
        attestations.push((uri, predicate));
    }
    let repository = match &target_loc {
        ImageLocation::Registry(r) => format!("{}/{}", r.host, r.repository),
        ImageLocation::Layout(_) => target_loc.repository(),
    };
    let rt = runtime()?;
    let digest = rt
        .block_on(crate::publish::push(&img, &target))
        .map_err(publish_failure)?;
    if let Some(key) = &key {
        let att = crate::publish::Attachments {
            key,
            repository,
            attestations,
        };
        rt.block_on(crate::publish::attach(&target, &digest, &att))
            .map_err(publish_failure)?;
        crate::errln!(
            "signed {digest} with key {}",
            key.public_key().fingerprint()
        );
    }
    crate::outln!("{digest}");
    crate::errln!(
        "published {} ({} layer(s))",
        target_loc.normalized(),
        img.layers.len()
    );
    Ok(())
}

fn publish_failure(e: crate::publish::PublishError) -> Failure {
    use crate::publish::PublishError as P;
    let kind = match &e {
        P::Usage(_) => ExitKind::Usage,
        P::Io { .. } => ExitKind::Io,
        P::Source(crate::source::SourceError::Io { .. }) => ExitKind::Io,
        P::Source(_) => ExitKind::Registry,
    };
    Failure::new(kind, e)
}
