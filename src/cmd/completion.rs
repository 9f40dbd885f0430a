//! `gantry completion SHELL`: prints the completion script clap_complete generates from the
//! command tree, for the user to source or install.

use crate::exit::Failure;
use clap::CommandFactory;

/// Arguments of `gantry completion`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells a script is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl From<CompletionShell> for clap_complete::Shell {
    fn from(s: CompletionShell) -> Self {
        match s {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
            CompletionShell::Powershell => clap_complete::Shell::PowerShell,
        }
    }
}

/// Runs `gantry completion`.
pub fn run(a: CompletionArgs) -> Result<(), Failure> {
    let mut cmd = crate::cli::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::from(a.shell),
        &mut cmd,
        "gantry",
        &mut script,
    );
    crate::out!("{}", String::from_utf8_lossy(&script));
    Ok(())
}
