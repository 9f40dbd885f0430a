//! Every subcommand, one module each: it owns its clap arguments, lowers them once into the plain
//! request the stages take, runs it, and writes what the user sees. This module dispatches a
//! parsed command line and holds what several commands share: finding the home, loading the
//! layered configuration, the runtime, platform parsing, and the `prepare` of install and verify.
//! Every failure is classified here or in a command, once, for its exit code.

pub mod audit;
pub mod completion;
pub mod doctor;
pub mod explain;
pub mod gc;
pub mod install;
pub mod keygen;
pub mod ledger;
pub mod list;
pub mod login;
pub mod logout;
pub mod path;
pub mod pin;
pub mod plugin;
pub mod policy;
pub mod publish;
pub mod purge;
pub mod registry;
pub mod remove;
pub mod rollback;
pub mod save;
pub mod search;
pub mod tags;
pub mod trust;
pub mod update;
pub mod verify;
pub mod verify_bundle;

use crate::cli::{Cli, Command};
use crate::config::{ConfigError, ConfigPaths, Layered};
use crate::exit::{Classify, ExitKind, Failure};
use crate::facts::Platform;
use crate::install::{InstallError, InstallRequest};
use crate::registry_policy::RegistryPolicy;
use crate::repo::Repo;
use crate::report::{JsonReporter, ProgressReporter, Quiet, Reporter, TextReporter, Verbosity};
use crate::source::ManifestRef;
use crate::store::Home;
use std::sync::Arc;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, true) => Verbosity::Verbose,
        (false, false) => Verbosity::Normal,
    };
    match cli.command {
        Command::Install(a) => install::run(a, verbosity),
        Command::Verify(a) => verify::run(a, verbosity),
        Command::Remove(a) => remove::run(a, verbosity),
        Command::Update(a) => update::run(a, verbosity),
        Command::Rollback(a) => rollback::run(a),
        Command::Save(a) => save::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Ledger(a) => ledger::run(a),
        Command::Pin(a) => pin::run(a, true),
        Command::Unpin(a) => pin::run(a, false),
        Command::List(a) => list::run(a),
        Command::Registry(c) => registry::run(c, verbosity),
        Command::Publish(a) => publish::run(a, verbosity),
        Command::Keygen(a) => keygen::run(a, verbosity),
        Command::Policy(c) => policy::run(c),
        Command::Plugin(c) => plugin::run(c),
        Command::Explain(a) => explain::run(a, &home()?),
        Command::Trust(a) => trust::run(a, &home()?),
        Command::VerifyBundle(a) => verify_bundle::run(a, &home()?),
        Command::Login(a) => login::run(a, verbosity.verbose()),
        Command::Logout(a) => logout::run(a),
        Command::Search(a) => search::run(a, verbosity.verbose()),
        Command::Tags(a) => tags::run(a, verbosity.verbose()),
        Command::Doctor(a) => doctor::run(a, &home()?, verbosity),
        Command::Gc(a) => gc::run(a, &home()?, verbosity),
        Command::Purge(a) => purge::run(a, &home()?, verbosity),
        Command::Completion(a) => completion::run(a),
        Command::Path(a) => path::run(a, &home()?, verbosity),
    }
}

/// `GANTRY_HOME`, or `~/.gantry`.
fn home() -> Result<Home, Failure> {
    Home::locate()
        .ok_or_else(|| Failure::msg(ExitKind::Usage, "neither GANTRY_HOME nor HOME is set"))
}

/// The system and user configuration layers of `home`, creating the home if it is missing.
fn load_config(home: &Home) -> Result<Layered, Failure> {
    let classify = |e: ConfigError| {
        let kind = match e {
            ConfigError::Io { .. } => ExitKind::Io,
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

/// `--platform OS/ARCH[/VARIANT]`, or this host's platform when it is not given.
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

/// A registry as login, logout and search name it: `host[:port]`, or a configured registry's name.
struct RegistryHost {
    /// `host[:port]` in canonical spelling, as references and credential files name it.
    host: String,
    /// Plain HTTP to a host that is not loopback (a configured entry's `insecure`).
    insecure: bool,
    /// The configured entry's path prefix (`team` of `registry.example/team`), if any.
    prefix: Vec<String>,
}

/// Resolves `arg` against `config`: a configured registry's name first (its URL's host), else a
/// `host[:port]`, which must look like one (a dot, a port, `localhost` or an IP address) so a
/// mistyped registry name is not taken for a host.
fn registry_host(arg: &str, config: &crate::config::Config) -> Result<RegistryHost, Failure> {
    use crate::identity::{HostPort, RegistryUrl};
    let usage = |m: String| Failure::msg(ExitKind::Usage, m);
    if let Some(entry) = config.registries.get(arg) {
        return match RegistryUrl::parse(&entry.url).kind(ExitKind::Usage)? {
            RegistryUrl::Registry { host, prefix } => Ok(RegistryHost {
                host: host.to_string(),
                insecure: entry.insecure,
                prefix,
            }),
            RegistryUrl::Layout(dir) => Err(usage(format!(
                "registry '{arg}' is the OCI layout directory {}, not a registry server",
                dir.display()
            ))),
        };
    }
    let host = HostPort::parse(arg).kind(ExitKind::Usage)?;
    let looks_like_host = arg.contains(['.', ':', '[']) || arg.eq_ignore_ascii_case("localhost");
    if !looks_like_host {
        let names: Vec<&str> = config.registries.keys().map(String::as_str).collect();
        return Err(usage(format!(
            "no registry named '{arg}' is configured (configured: {}); give a host as host[:port]",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    // An entry for the same host may ask for plain HTTP.
    let insecure = config.registries.values().any(|e| {
        e.insecure
            && matches!(RegistryUrl::parse(&e.url), Ok(RegistryUrl::Registry { host: h, .. })
                if h.identity(true) == host.identity(true))
    });
    Ok(RegistryHost {
        host: host.to_string(),
        insecure,
        prefix: Vec::new(),
    })
}

/// The failure for a registry read: credential trouble keeps its own class, the rest is the
/// registry's.
fn source_failure(e: crate::source::SourceError) -> Failure {
    use crate::source::SourceError;
    let kind = match &e {
        SourceError::Credentials(c) => c.kind(),
        SourceError::Io { .. } => ExitKind::Io,
        _ => ExitKind::Registry,
    };
    Failure::new(kind, e)
}

/// Whether stdin is a terminal (so gantry may prompt).
fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// What install and verify both name on their command lines, before anything is resolved.
struct Wanted<'a> {
    reference: &'a str,
    name: Option<String>,
    platform: Option<&'a str>,
    allow_unsigned: bool,
    replace: bool,
    /// `--policy-from REGISTRY`: a layout judged by that registry entry's policy.
    policy_from: Option<&'a str>,
}

/// What install, verify and update share: the lowered request and the registry policy that
/// governs it, decided before anything is opened ([`load_hooks`] adds the policy engine).
struct Prepared {
    home: Home,
    layered: Layered,
    config: crate::config::Config,
    policy: RegistryPolicy,
    req: InstallRequest,
}

fn prepare(w: Wanted<'_>) -> Result<Prepared, Failure> {
    if let Some(n) = &w.name {
        // Before anything is opened or fetched.
        crate::store::validate_name(n).kind(ExitKind::Usage)?;
    }
    let home = home()?;
    let layered = load_config(&home)?;
    let config = layered.effective();
    let (mut location, named) =
        crate::reference::parse_named(w.reference, &config).kind(ExitKind::Usage)?;
    let platform = parse_platform(w.platform)?;
    let mut policy =
        RegistryPolicy::resolve(&layered, &mut location, named.as_deref(), w.allow_unsigned)
            .kind(ExitKind::Usage)?;
    if let Some(from) = w.policy_from {
        policy = policy_from(&layered, &location, &policy, from, w.allow_unsigned)?;
    }
    Ok(Prepared {
        home,
        layered,
        config,
        policy,
        req: InstallRequest {
            location,
            name: w.name,
            platform,
            replace: w.replace,
            accept_move: false,
            action: None,
            accept_signer_change: false,
            agreement: None,
        },
    })
}

/// The policy engine for a prepared request: every policy parsed and plugin compiled (and the
/// system's bundles verified) before anything is pulled. Only the commands that judge load it.
fn load_hooks(p: &Prepared) -> Result<crate::hooks::EngineHooks, Failure> {
    let hooks = crate::hooks::EngineHooks::load(&p.layered, &p.policy, &p.home).map_err(|e| {
        let kind = match &e {
            crate::hooks::HooksError::Bundle(b) => b.exit_kind(),
            _ => ExitKind::Usage,
        };
        Failure::new(kind, e)
    })?;
    for n in &hooks.notes {
        crate::errln!("note: {n}");
    }
    Ok(hooks)
}

/// `--policy-from REGISTRY`: the policy of the named entry, for an OCI layout its images came
/// from. Only where no system entry governs the layout (the system's word stands), and only for
/// layouts (a registry image is governed by its own registry's entry).
fn policy_from(
    layered: &Layered,
    location: &crate::reference::ImageLocation,
    own: &RegistryPolicy,
    from: &str,
    allow_unsigned: bool,
) -> Result<RegistryPolicy, Failure> {
    if !matches!(location, crate::reference::ImageLocation::Layout(_)) {
        return Err(Failure::msg(
            ExitKind::Usage,
            "--policy-from applies to an OCI layout (oci:DIR); a registry image is judged by its own registry's entry",
        ));
    }
    if own.layer == Some(crate::policy::Layer::System) {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!(
                "--policy-from {from}: the system entry '{}' governs this layout",
                own.name
            ),
        ));
    }
    let config = layered.effective();
    let entry = config.registries.get(from).ok_or_else(|| {
        Failure::msg(
            ExitKind::Usage,
            format!("--policy-from {from}: no registry of that name"),
        )
    })?;
    // Resolve a reference inside the entry, so its rules (and the system's over it) apply.
    let probe = match entry.url.strip_prefix("oci:") {
        Some(dir) => format!("oci:{dir}"),
        None => format!("{}/policy-from:probe", entry.url.trim_end_matches('/')),
    };
    let (mut probe_loc, _) =
        crate::reference::parse_named(&probe, &config).kind(ExitKind::Usage)?;
    let mut p = RegistryPolicy::resolve(layered, &mut probe_loc, Some(from), allow_unsigned)
        .kind(ExitKind::Usage)?;
    p.transport = crate::registry_policy::Transport::Layout;
    p.mirrors.clear();
    p.agree = 1;
    Ok(p)
}

/// The reporter of `-v`/`--quiet`/`--json` for install and verify: bars and colour when stderr
/// is a terminal (colour off with `NO_COLOR`), plain lines when it is not.
fn reporter(json: bool, verbosity: Verbosity) -> Arc<dyn Reporter> {
    use std::io::IsTerminal;
    let verbose = verbosity.verbose();
    if verbosity.quiet() {
        Arc::new(Quiet)
    } else if json {
        Arc::new(JsonReporter)
    } else if std::io::stderr().is_terminal() {
        let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Arc::new(ProgressReporter::new(verbose, colour))
    } else {
        Arc::new(TextReporter::new(verbose))
    }
}

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C) or, on Unix, SIGTERM; names it.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

/// Runs the install pipeline for a prepared request under the store lock. SIGINT (Ctrl-C) or
/// SIGTERM stops it at its next step (the commit itself runs without a pause, so it happens whole
/// or not at all), its workers are given a moment to stop, and the staging it left is removed on
/// the way out.
fn install_prepared(
    p: &Prepared,
    hooks: &crate::hooks::EngineHooks,
    store: &crate::store::Store,
    verbosity: Verbosity,
    json: bool,
) -> Result<crate::install::Outcome, Failure> {
    let _lock = store.lock().kind(ExitKind::Io)?;
    store.clean_leftovers().kind(ExitKind::Io)?;
    let reporter = reporter(json, verbosity);
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pipeline = crate::install::Pipeline {
        store,
        config: &p.config,
        policy: &p.policy,
        hooks,
        reporter: reporter.clone(),
        cancel: cancel.clone(),
    };
    let rt = runtime()?;
    let (repo, version, req) = open_sources(p, reporter, &rt)?;
    let interruptible = async {
        tokio::select! {
            r = pipeline.install(&repo, &version, &req) => Ok(r),
            signal = interrupted() => Err(signal),
        }
    };
    match rt.block_on(interruptible) {
        Ok(r) => r.map_err(|e| Failure::new(e.kind(), e)),
        Err(signal) => {
            // Layer workers stop at their next read; the runtime waits for them, then the
            // staging goes.
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            let _ = store.clean_leftovers();
            Err(Failure::msg(
                ExitKind::Interrupted,
                format!("interrupted by {signal}; nothing was changed and the staging was removed"),
            ))
        }
    }
}

/// The registry of the request and its mirrors as one source. With mirrors and a tag, every
/// source is asked what the tag names first; the request carries their answers, and the image is
/// then read by the digest they agree on.
fn open_sources(
    p: &Prepared,
    reporter: Arc<dyn Reporter>,
    rt: &tokio::runtime::Runtime,
) -> Result<
    (
        crate::mirrors::MultiSource<Repo>,
        ManifestRef,
        InstallRequest,
    ),
    Failure,
> {
    let (repo, version) = rt.block_on(async { open_repo(p, reporter.clone()) })?;
    let mut req = p.req.clone();
    let crate::reference::ImageLocation::Registry(image) = &p.req.location else {
        return Ok((
            crate::mirrors::MultiSource::new(vec![(p.req.location.normalized(), repo)]),
            version,
            req,
        ));
    };
    let mirrors = p.policy.mirror_images(image);
    let primary = format!("{}/{}", image.host, image.repository);
    let mut sources = vec![(primary, repo)];
    let insecure = p.policy.transport == crate::registry_policy::Transport::Http;
    for m in &mirrors {
        let reg = rt
            .block_on(async {
                crate::registry::Registry::with_network(
                    &m.host,
                    &m.repository,
                    insecure,
                    &p.home,
                    p.config.network.net(),
                    reporter.clone(),
                )
            })
            .map_err(|e| {
                let e = InstallError::from(e);
                Failure::new(e.kind(), e)
            })?;
        sources.push((format!("{}/{}", m.host, m.repository), Repo::Registry(reg)));
    }
    let multi = crate::mirrors::MultiSource::new(sources);
    let (Some(tag), false) = (image.tag(), mirrors.is_empty()) else {
        return Ok((multi, version, req));
    };
    let facts = rt.block_on(multi.agree(tag, p.policy.agree));
    let version = match &facts.agreed {
        Some(d) => ManifestRef::Digest(d.clone()),
        None => version,
    };
    req.agreement = Some(facts);
    Ok((multi, version, req))
}

/// Opens the repository of the request with the configured network settings, reporting retries
/// to `reporter`.
fn open_repo(p: &Prepared, reporter: Arc<dyn Reporter>) -> Result<(Repo, ManifestRef), Failure> {
    let net = p.config.network.net();
    crate::repo::open_with(&p.req.location, &p.policy, &p.home, net, reporter).map_err(|e| {
        let e = InstallError::from(e);
        Failure::new(e.kind(), e)
    })
}
