use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = gantry::cli::Cli::parse();
    match gantry::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            gantry::errln!("{}{f}", f.kind.prefix());
            ExitCode::from(f.kind.code())
        }
    }
}
