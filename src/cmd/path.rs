//! `gantry path [setup|unset] [--shell bash|zsh|fish]`: prints the wrapper directory, or keeps
//! the marked block that puts it on PATH in the shell's rc file (`crate::path_setup`). The shell
//! is `--shell`, else the one `$SHELL` names.

use crate::exit::{ExitKind, Failure};
use crate::path_setup::{self, PathSetupError, Shell};
use crate::report::Verbosity;
use crate::store::Home;

/// Arguments of `gantry path`.
#[derive(Debug, clap::Args)]
pub struct PathArgs {
    #[command(subcommand)]
    pub command: Option<PathCommand>,
}

/// The subcommands of `gantry path`.
#[derive(Debug, clap::Subcommand)]
pub enum PathCommand {
    /// Add (or update) the block that puts the wrapper directory on PATH in the shell's rc file.
    Setup(ShellArgs),
    /// Remove that block from the shell's rc file, and nothing else.
    Unset(ShellArgs),
}

/// Which shell's rc file to edit.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// bash (~/.bashrc), zsh (~/.zshrc) or fish (~/.config/fish/config.fish); default: from $SHELL.
    #[arg(long, value_enum)]
    pub shell: Option<ShellName>,
}

/// The shells `--shell` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShellName {
    Bash,
    Zsh,
    Fish,
}

impl From<ShellName> for Shell {
    fn from(s: ShellName) -> Self {
        match s {
            ShellName::Bash => Shell::Bash,
            ShellName::Zsh => Shell::Zsh,
            ShellName::Fish => Shell::Fish,
        }
    }
}

/// Runs `gantry path`; `--quiet` leaves out the confirmations of setup and unset.
pub fn run(a: PathArgs, home: &Home, verbosity: Verbosity) -> Result<(), Failure> {
    let bin = home.bin();
    let Some(command) = a.command else {
        crate::outln!("{}", bin.display());
        return Ok(());
    };
    let (PathCommand::Setup(s) | PathCommand::Unset(s)) = &command;
    let shell = match s.shell {
        Some(s) => Shell::from(s),
        None => Shell::from_env(std::env::var_os("SHELL").as_deref()).map_err(usage)?,
    };
    let rc = shell.rc_file(|k| std::env::var_os(k)).map_err(usage)?;
    let text = path_setup::read(&rc).map_err(io)?;
    let say = !verbosity.quiet();
    match command {
        PathCommand::Setup(_) => {
            let new = path_setup::with_block(&rc, &text, &shell.block(&bin)).map_err(usage)?;
            if new == text {
                if say {
                    crate::outln!("{} already puts {} on PATH", rc.display(), bin.display());
                }
                return Ok(());
            }
            path_setup::write_atomic(&rc, &new).map_err(io)?;
            if say {
                crate::outln!(
                    "added {} to PATH in {}; start a new shell to use it",
                    bin.display(),
                    rc.display()
                );
            }
        }
        PathCommand::Unset(_) => match path_setup::without_block(&rc, &text).map_err(usage)? {
            Some(new) => {
                path_setup::write_atomic(&rc, &new).map_err(io)?;
                if say {
                    crate::outln!("removed the gantry block from {}", rc.display());
                }
            }
            None if say => crate::outln!("{} has no gantry block", rc.display()),
            None => {}
        },
    }
    Ok(())
}

fn usage(e: PathSetupError) -> Failure {
    Failure::new(ExitKind::Usage, e)
}

fn io(e: PathSetupError) -> Failure {
    Failure::new(ExitKind::Io, e)
}
