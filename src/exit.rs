//! Exit codes and the one error type commands return. Each failure is classified once, where it
//! happens, so `main` only has to turn it into a process exit code. The codes are documented in
//! the README and are public interface.

use std::fmt;

/// Why a command failed; each kind has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Anything not classified below (a bug, an unexpected state): exit 1.
    Internal,
    /// Bad arguments or configuration: exit 2.
    Usage,
    /// A policy or plugin denied: exit 3.
    Denied,
    /// A signature, attestation or digest failed to verify: exit 4.
    Verification,
    /// The registry could not be reached, refused, or answered wrongly: exit 5.
    Registry,
    /// Local I/O failed (disk, permissions, lock, corrupt store): exit 6.
    Io,
    /// Interrupted (SIGINT, Ctrl-C) before the change was made: exit 130, as shells report.
    Interrupted,
    /// `update --check` (or `update` with no terminal and no `--yes`): there are updates to
    /// apply: exit 10.
    Pending,
}

impl ExitKind {
    /// The process exit code for this kind.
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Internal => 1,
            ExitKind::Usage => 2,
            ExitKind::Denied => 3,
            ExitKind::Verification => 4,
            ExitKind::Registry => 5,
            ExitKind::Io => 6,
            ExitKind::Interrupted => 130,
            ExitKind::Pending => 10,
        }
    }

    /// How the failure's message is introduced on stderr: `error: `, except for an exit that
    /// reports news rather than a fault (pending updates).
    pub fn prefix(self) -> &'static str {
        match self {
            ExitKind::Pending => "",
            _ => "error: ",
        }
    }
}

/// A command's failure: what kind it is and the error chain to show the user.
pub struct Failure {
    pub kind: ExitKind,
    pub error: anyhow::Error,
}

impl Failure {
    /// Classifies an error.
    pub fn new(kind: ExitKind, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            kind,
            error: error.into(),
        }
    }

    /// A failure from a plain message.
    pub fn msg(kind: ExitKind, message: impl fmt::Display) -> Self {
        Failure {
            kind,
            error: anyhow::anyhow!("{message}"),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.kind, self.error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Extension to classify any `Result` in one call: `thing().kind(ExitKind::Io)?`.
pub trait Classify<T> {
    fn kind(self, kind: ExitKind) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn kind(self, kind: ExitKind) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(kind, e))
    }
}

/// Writes command output to stdout. A reader that went away (`gantry list | head -1`) ends the
/// command quietly with success, as `cat` does, instead of a panic.
pub fn write_stdout(args: fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let result = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            write_stderr(format_args!("error: cannot write output: {e}"));
            std::process::exit(i32::from(ExitKind::Io.code()));
        }
    }
}

/// `println!` for command output, through [`write_stdout`].
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::exit::write_stdout(format_args!($($t)*), true) };
}

/// `print!` for command output, through [`write_stdout`].
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::exit::write_stdout(format_args!($($t)*), false) };
}

/// Writes a line of progress or error text to stderr; a closed or broken stderr is ignored (the
/// exit code still tells the outcome).
pub fn write_stderr(args: fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` through [`write_stderr`]: never panics on a broken pipe.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::exit::write_stderr(format_args!($($t)*)) };
}
