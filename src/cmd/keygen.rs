//! `gantry keygen [--output-key-prefix cosign]`: writes a cosign-compatible encrypted key pair.
//! The password comes from `GANTRY_PASSWORD` or, only when stdin is a terminal, from a prompt
//! (typed twice, without echo). It never overwrites key files and never echoes the password.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::exit::{ExitKind, Failure};
use crate::trust::keygen::{self, KeygenError, WrittenKeyPair};

/// Environment variable holding the key password (as cosign's `COSIGN_PASSWORD`).
pub const PASSWORD_ENV: &str = "GANTRY_PASSWORD";

/// Arguments of `gantry keygen`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (encrypted, mode 0600) and PREFIX.pub.
    #[arg(long, default_value = "cosign")]
    pub output_key_prefix: PathBuf,
}

/// Runs the command: prints the public key's path on stdout, and both paths on stderr (unless
/// `--quiet`).
pub fn run(args: KeygenArgs, verbosity: crate::report::Verbosity) -> Result<(), Failure> {
    let password = password(true)?;
    let written = run_with_password(&args, &password)?;
    crate::outln!("{}", written.public_key.display());
    if !verbosity.quiet() {
        crate::errln!(
            "wrote private key {} and public key {}",
            written.private_key.display(),
            written.public_key.display()
        );
    }
    Ok(())
}

/// Writes the key pair under `password`.
pub fn run_with_password(args: &KeygenArgs, password: &[u8]) -> Result<WrittenKeyPair, Failure> {
    keygen::write_key_pair(&args.output_key_prefix, password).map_err(|e| {
        let kind = match e {
            KeygenError::Exists { .. } => ExitKind::Usage,
            KeygenError::Io { .. } => ExitKind::Io,
            _ => ExitKind::Internal,
        };
        Failure::new(kind, e)
    })
}

/// The key password: `GANTRY_PASSWORD` if set (even empty, as cosign allows), else a prompt on
/// the terminal. With neither, a usage error that says how to supply one. `confirm` asks twice.
pub fn password(confirm: bool) -> Result<Zeroizing<Vec<u8>>, Failure> {
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
    resolve_password(std::env::var_os(PASSWORD_ENV), tty, confirm)
}

fn resolve_password(
    env: Option<std::ffi::OsString>,
    stdin_is_tty: bool,
    confirm: bool,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if let Some(p) = env {
        use std::os::unix::ffi::OsStrExt as _;
        return Ok(Zeroizing::new(p.as_bytes().to_vec()));
    }
    if !stdin_is_tty {
        return Err(Failure::msg(
            ExitKind::Usage,
            format!("no key password: set {PASSWORD_ENV} (stdin is not a terminal, so gantry cannot prompt)"),
        ));
    }
    let first = prompt("Enter password for private key: ")?;
    if confirm {
        let again = prompt("Enter password for private key again: ")?;
        if *first != *again {
            return Err(Failure::msg(ExitKind::Usage, "passwords do not match"));
        }
    }
    Ok(first)
}

/// Reads one line from the terminal with echo off, restoring the terminal afterwards.
pub(super) fn prompt(text: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| Failure::new(ExitKind::Io, e))?;
    use std::os::fd::AsRawFd as _;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr/tcsetattr only read/write it for a valid fd.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_termios = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_termios {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut out = &tty;
    let _ = out.write_all(text.as_bytes());
    let mut line = Zeroizing::new(String::new());
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if have_termios {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.map_err(|e| Failure::new(ExitKind::Io, e))?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Zeroizing::new(trimmed.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_loadable_pair_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let args = KeygenArgs {
            output_key_prefix: dir.path().join("cosign"),
        };
        let w = run_with_password(&args, b"pw").unwrap();
        keygen::load_private_key(&w.private_key, b"pw").unwrap();
        // A second run refuses to overwrite: a usage error, the old key intact.
        let before = std::fs::read(&w.private_key).unwrap();
        assert_eq!(
            run_with_password(&args, b"pw").unwrap_err().kind,
            ExitKind::Usage
        );
        assert_eq!(std::fs::read(&w.private_key).unwrap(), before);
    }

    #[test]
    fn password_comes_from_the_environment_or_not_at_all_without_a_terminal() {
        let pw = resolve_password(Some("s3cret".into()), false, true).unwrap();
        assert_eq!(&pw[..], b"s3cret");
        // An empty password is a choice cosign allows.
        assert!(resolve_password(Some("".into()), false, true)
            .unwrap()
            .is_empty());
        let err = resolve_password(None, false, true).unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
        assert!(err.to_string().contains(PASSWORD_ENV));
    }
}
