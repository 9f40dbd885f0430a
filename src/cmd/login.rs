//! `gantry login REGISTRY [-u USER] [--password-stdin]`: checks a user name and password against
//! the registry (`GET /v2/` through the token flow or HTTP Basic, as reads authenticate) and only
//! then stores them, through the credential helper Docker's config names for the registry, else
//! in `$GANTRY_HOME/auth.json` (mode 0600). The password comes from stdin or a prompt without
//! echo, never from an argument; without either, nothing is asked and it is a usage error.

use super::{home, load_config, registry_host, reporter, runtime, source_failure, stdin_is_tty};
use crate::credentials::{self, Credentials, Sources};
use crate::exit::{Classify, ExitKind, Failure};
use crate::registry::Endpoint;
use crate::store::Store;
use std::io::{BufRead as _, Read as _, Write as _};
use zeroize::Zeroizing;

/// The longest password read from stdin.
const MAX_PASSWORD_BYTES: u64 = 64 * 1024;

/// Arguments of `gantry login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// host[:port], or the name of a configured registry.
    pub registry: String,
    /// User name (prompted for on a terminal when not given).
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from standard input (all of it, less one trailing newline).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs `gantry login`; `verbose` shows retries.
pub fn run(a: LoginArgs, verbose: bool) -> Result<(), Failure> {
    let home = home()?;
    let config = load_config(&home)?.effective();
    let target = registry_host(&a.registry, &config)?;
    let host = target.host.as_str();
    let (username, password) = user_and_password(a)?;

    // A credential configuration gantry cannot store through fails before anything is sent.
    let sources = Sources::locate(&home);
    credentials::target(host, &sources).map_err(|e| Failure::new(e.kind(), e))?;

    let credentials = Credentials::basic(&username, &password);
    let rt = runtime()?;
    let endpoint = Endpoint::for_login(
        host,
        target.insecure,
        &credentials,
        config.network.net(),
        reporter(false, crate::report::Verbosity::from_verbose(verbose)),
    )
    .map_err(source_failure)?;
    rt.block_on(endpoint.check()).map_err(|e| {
        if e.is_unauthorized() {
            Failure::msg(
                ExitKind::Registry,
                format!(
                    "{host} refused the credentials of user {username}; nothing was stored ({e})"
                ),
            )
        } else {
            let f = source_failure(e);
            Failure::msg(f.kind, format!("{f}; nothing was stored"))
        }
    })?;
    // Serialised with other gantry processes on this home, so two logins do not lose one's write.
    let _lock = Store::open(&home)
        .and_then(|s| s.lock())
        .kind(ExitKind::Io)?;
    let stored = credentials::store(host, &sources, &username, &password)
        .map_err(|e| Failure::new(e.kind(), e))?;
    crate::outln!("logged in to {host} as {username} (stored in {stored})");
    Ok(())
}

/// The user name (`-u`, or asked on a terminal) and the password (stdin with `--password-stdin`,
/// or asked without echo on a terminal); a usage error when they cannot be had.
fn user_and_password(a: LoginArgs) -> Result<(String, Zeroizing<String>), Failure> {
    let tty = stdin_is_tty();
    let username = match a.username {
        Some(u) => u,
        None if a.password_stdin => {
            return Err(usage(
                "--password-stdin needs --username (stdin holds the password)",
            ))
        }
        None if tty => read_line_from_tty("Username: ")?,
        None => return Err(usage("no user name: give --username USER")),
    };
    if username.is_empty() || username.contains(':') {
        return Err(usage("the user name must not be empty nor hold ':'"));
    }
    let password = if a.password_stdin {
        password_from_stdin()?
    } else if tty {
        let p = super::keygen::prompt("Password: ")?;
        Zeroizing::new(
            String::from_utf8(p.to_vec()).map_err(|_| usage("the password is not UTF-8"))?,
        )
    } else {
        return Err(usage(
            "no password: pass it on stdin with --password-stdin (stdin is not a terminal, so gantry cannot prompt)",
        ));
    };
    if password.is_empty() {
        return Err(usage("empty password"));
    }
    Ok((username, password))
}

fn usage(message: &str) -> Failure {
    Failure::msg(ExitKind::Usage, message)
}

/// All of stdin, less one trailing newline (`\n` or `\r\n`), as `docker login` reads it.
fn password_from_stdin() -> Result<Zeroizing<String>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_PASSWORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Failure::msg(
                ExitKind::Io,
                format!("cannot read the password from stdin: {e}"),
            )
        })?;
    if bytes.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(usage("the password on stdin is longer than 64 KiB"));
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| usage("the password is not UTF-8"))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Asks for one line on the terminal, shown as it is typed.
fn read_line_from_tty(text: &str) -> Result<String, Failure> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| Failure::msg(ExitKind::Io, format!("/dev/tty: {e}")))?;
    let mut out = &tty;
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    let mut line = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut line)
        .map_err(|e| Failure::msg(ExitKind::Io, format!("/dev/tty: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
