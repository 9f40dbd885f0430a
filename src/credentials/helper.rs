//! Runs Docker credential helpers: `docker-credential-NAME get|store|erase`, one short-lived
//! process per call, found on `PATH`, its input on stdin and its answer on stdout. A helper is
//! code gantry does not control, so every call is bounded: at most [`MAX_OUTPUT`] bytes are read
//! from each of its streams, and after [`TIMEOUT`] it is killed with everything it started (it
//! runs in a process group of its own). A helper that is missing, fails, hangs, floods or prints
//! garbage is an error naming it; nothing here panics on what a helper does.

use super::CredentialError;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one helper call may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The most a helper may print on stdout (or stderr) in one call.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// What helpers print when they hold nothing for a server (docker-credential-helpers'
/// `ErrCredentialsNotFound`), matched case-insensitively as Docker does.
const NOT_FOUND: &str = "credentials not found";

/// A credential helper, by the name Docker's config gives it (`test` for
/// `docker-credential-test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    name: String,
}

/// A helper's answer to `get`.
#[derive(serde::Deserialize)]
struct Got {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// How a helper process ended, when it ended by itself within the deadline.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Helper {
    /// The helper `name`; only letters, digits, `.`, `_` and `-`, so a config cannot name a
    /// program by path.
    pub fn new(name: &str) -> Option<Helper> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        ok.then(|| Helper {
            name: name.to_string(),
        })
    }

    /// `docker-credential-NAME`, the program run.
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// Whether the program is an executable file in a `PATH` directory, as running it would
    /// find it.
    pub fn installed(&self) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        let program = self.program();
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| {
                std::fs::metadata(dir.join(&program))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    }

    /// The username and secret stored for `server`; `None` when the helper holds none.
    pub fn get(&self, server: &str) -> Result<Option<(String, String)>, CredentialError> {
        let ran = self.run("get", server.as_bytes())?;
        if !ran.status.success() {
            if says_not_found(&ran) {
                return Ok(None);
            }
            return Err(self.failed("get", &ran));
        }
        let got: Got = serde_json::from_slice(&ran.stdout).map_err(|e| self.garbage("get", e))?;
        if got.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some((got.username, got.secret)))
    }

    /// Stores `username` and `secret` for `server`.
    pub fn store(&self, server: &str, username: &str, secret: &str) -> Result<(), CredentialError> {
        let input = serde_json::json!({
            "ServerURL": server,
            "Username": username,
            "Secret": secret,
        });
        let ran = self.run("store", input.to_string().as_bytes())?;
        if ran.status.success() {
            Ok(())
        } else {
            Err(self.failed("store", &ran))
        }
    }

    /// Erases what is stored for `server`; `false` when there was nothing.
    pub fn erase(&self, server: &str) -> Result<bool, CredentialError> {
        let ran = self.run("erase", server.as_bytes())?;
        if ran.status.success() {
            Ok(true)
        } else if says_not_found(&ran) {
            Ok(false)
        } else {
            Err(self.failed("erase", &ran))
        }
    }

    fn failed(&self, op: &'static str, ran: &Ran) -> CredentialError {
        // Helpers report errors on stdout (the protocol) or stderr (a crash): show both.
        let text = [&ran.stdout, &ran.stderr]
            .iter()
            .map(|b| {
                String::from_utf8_lossy(b)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let detail: String = text.chars().take(200).collect();
        CredentialError::HelperFailed {
            program: self.program(),
            op,
            status: ran.status.to_string(),
            detail: if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            },
        }
    }

    fn garbage(&self, op: &'static str, e: serde_json::Error) -> CredentialError {
        CredentialError::HelperGarbage {
            program: self.program(),
            op,
            message: format!("expected JSON with ServerURL, Username and Secret ({e})"),
        }
    }

    /// Runs `program op` with `input` on stdin, within [`TIMEOUT`] and [`MAX_OUTPUT`].
    fn run(&self, op: &'static str, input: &[u8]) -> Result<Ran, CredentialError> {
        use std::os::unix::process::CommandExt as _;
        let program = self.program();
        let mut child = Command::new(&program)
            .arg(op)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so a timeout kills whatever it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    CredentialError::HelperMissing {
                        program: program.clone(),
                    }
                } else {
                    CredentialError::HelperSpawn {
                        program: program.clone(),
                        op,
                        source: e,
                    }
                }
            })?;
        let deadline = Instant::now() + TIMEOUT;
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.to_vec();
            // A helper that never reads its input must not block us: write from a thread, and
            // ignore a helper that exits without reading (a broken pipe).
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let (tx, rx) = mpsc::channel();
        for (stream, reader) in [
            (
                Stream::Out,
                child
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn Read + Send>),
            ),
            (
                Stream::Err,
                child
                    .stderr
                    .take()
                    .map(|r| Box::new(r) as Box<dyn Read + Send>),
            ),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let read = match reader {
                    Some(r) => r
                        .take(MAX_OUTPUT as u64 + 1)
                        .read_to_end(&mut buf)
                        .map(|_| ()),
                    None => Ok(()),
                };
                let _ = tx.send((stream, read.map(|()| buf)));
            });
        }
        drop(tx);
        let (mut stdout, mut stderr) = (None, None);
        while stdout.is_none() || stderr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let (stream, read) = match rx.recv_timeout(left) {
                Ok(got) => got,
                Err(_) => return Err(self.kill(&mut child, op)),
            };
            let bytes = read.map_err(|e| {
                kill_group(&mut child);
                CredentialError::HelperSpawn {
                    program: program.clone(),
                    op,
                    source: e,
                }
            })?;
            if bytes.len() > MAX_OUTPUT {
                kill_group(&mut child);
                return Err(CredentialError::HelperFlood {
                    program,
                    op,
                    limit: MAX_OUTPUT,
                });
            }
            match stream {
                Stream::Out => stdout = Some(bytes),
                Stream::Err => stderr = Some(bytes),
            }
        }
        // Both streams are closed: the helper has exited or is about to.
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Ok(Ran {
                        status,
                        stdout: stdout.unwrap_or_default(),
                        stderr: stderr.unwrap_or_default(),
                    })
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => return Err(self.kill(&mut child, op)),
                Err(e) => {
                    return Err(CredentialError::HelperSpawn {
                        program,
                        op,
                        source: e,
                    })
                }
            }
        }
    }

    /// Kills a helper that ran out of time and says so.
    fn kill(&self, child: &mut Child, op: &'static str) -> CredentialError {
        kill_group(child);
        CredentialError::HelperTimeout {
            program: self.program(),
            op,
            secs: TIMEOUT.as_secs(),
        }
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// Kills the helper's process group and reaps the helper. Called only while the helper has not
/// been reaped, so its pid (the group's id) cannot have been reused.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill only sends a signal; the group is the helper's own (process_group(0)).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn says_not_found(ran: &Ran) -> bool {
    String::from_utf8_lossy(&ran.stdout)
        .to_ascii_lowercase()
        .contains(NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_cannot_be_paths() {
        assert_eq!(
            Helper::new("pass").map(|h| h.program()),
            Some("docker-credential-pass".to_string())
        );
        assert!(Helper::new("ecr-login").is_some());
        for bad in ["", "../../bin/sh", "a/b", "x y", "a;b", "\u{e9}"] {
            assert!(Helper::new(bad).is_none(), "{bad:?}");
        }
    }
}
