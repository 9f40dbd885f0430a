//! `gantry plugin …`: tooling for plugin authors. `inspect` shows what a component file exports
//! and imports, its size and hash, without loading it into the sandbox. This module only parses
//! arguments and prints; what a component contains is read by `crate::policy::plugin`.

use crate::exit::{ExitKind, Failure};
use crate::policy::plugin::{self, PluginError, PluginInfo};
use std::path::PathBuf;

/// `gantry plugin`: work with Wasm policy plugins.
#[derive(Debug, clap::Args)]
pub struct PluginCommand {
    #[command(subcommand)]
    pub command: PluginSubcommand,
}

/// The subcommands of `gantry plugin`.
#[derive(Debug, clap::Subcommand)]
pub enum PluginSubcommand {
    /// Show the hooks a plugin component exports, its imports, its size and sha256.
    Inspect {
        /// The component file (.wasm, or component text .wat).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `gantry plugin` subcommand.
pub fn run(cmd: PluginCommand) -> Result<(), Failure> {
    match cmd.command {
        PluginSubcommand::Inspect { file, json } => {
            let info = plugin::inspect(&file).map_err(classify)?;
            if json {
                let text = serde_json::to_string_pretty(&info)
                    .map_err(|e| Failure::new(ExitKind::Internal, e))?;
                crate::outln!("{text}");
            } else {
                crate::out!("{}", render(&file, &info));
            }
            Ok(())
        }
    }
}

fn classify(e: PluginError) -> Failure {
    let kind = match e {
        PluginError::Read { .. } => ExitKind::Io,
        _ => ExitKind::Usage,
    };
    Failure::new(kind, e)
}

/// The text form of `plugin inspect`.
fn render(file: &std::path::Path, info: &PluginInfo) -> String {
    let mut out = String::new();
    let hooks: Vec<&str> = info.hooks.iter().map(|h| h.as_str()).collect();
    out.push_str(&format!("file:    {}\n", file.display()));
    out.push_str(&format!("size:    {} bytes\n", info.size));
    out.push_str(&format!(
        "sha256:  {}\n",
        info.sha256.trim_start_matches("sha256:")
    ));
    out.push_str(&format!(
        "hooks:   {}\n",
        if hooks.is_empty() {
            "(none: gantry will refuse to load it)".to_string()
        } else {
            hooks.join(", ")
        }
    ));
    out.push_str("imports:\n");
    if info.imports.is_empty() {
        out.push_str("  (none)\n");
    }
    for import in &info.imports {
        let note = match (&import.allowed, &import.grant) {
            (true, _) => "host interface".to_string(),
            (false, Some(grant)) => {
                format!("provided only with grants = [\"{grant}\"]; loading fails without it")
            }
            (false, None) => "NOT provided: no grant allows it; loading fails".to_string(),
        };
        out.push_str(&format!("  {}  ({note})\n", import.name));
    }
    out.push_str("exports:\n");
    for export in &info.exports {
        out.push_str(&format!("  {export}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/plugins/echo.wat");
    const UNGRANTED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/plugins/ungranted.wat"
    );

    #[test]
    fn inspect_lists_hooks_imports_size_and_hash() {
        let info = plugin::inspect(ECHO.as_ref()).unwrap();
        let bytes = std::fs::read(ECHO).unwrap();
        assert_eq!(info.size, bytes.len() as u64);
        assert!(info.sha256.starts_with("sha256:") && info.sha256.len() == 7 + 64);
        assert_eq!(info.hooks, vec![crate::policy::hook::HookPoint::Manifest]);
        let text = render(ECHO.as_ref(), &info);
        assert!(text.contains("hooks:   manifest"), "{text}");
        assert!(
            text.contains("gantry:policy/host@0.1.0  (host interface)"),
            "{text}"
        );
    }

    #[test]
    fn inspect_flags_an_import_gantry_would_refuse() {
        let info = plugin::inspect(UNGRANTED.as_ref()).unwrap();
        let clock = info
            .imports
            .iter()
            .find(|i| i.name.starts_with("wasi:clocks/wall-clock"))
            .unwrap();
        assert!(!clock.allowed);
        assert_eq!(clock.grant.as_deref(), Some("clocks"));
        assert!(
            render(UNGRANTED.as_ref(), &info).contains(r#"provided only with grants = ["clocks"]"#),
            "{}",
            render(UNGRANTED.as_ref(), &info)
        );
        // wasi:io comes with the pollable clock functions, and no grant provides it.
        let pollable = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/plugins/pollable.wat"
        );
        let info = plugin::inspect(pollable.as_ref()).unwrap();
        let text = render(pollable.as_ref(), &info);
        assert!(
            text.contains("wasi:io/poll@0.2.0  (NOT provided: no grant allows it; loading fails)"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"wasi:clocks/monotonic-clock@0.2.0  (provided only with grants = ["clocks"]"#
            ),
            "{text}"
        );
    }

    #[test]
    fn inspect_of_a_missing_file_is_an_io_failure_and_garbage_a_usage_failure() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PluginCommand {
            command: PluginSubcommand::Inspect {
                file: dir.path().join("nope.wasm"),
                json: false,
            },
        };
        assert_eq!(run(missing).unwrap_err().kind, ExitKind::Io);
        let junk = dir.path().join("junk.wasm");
        std::fs::write(&junk, b"\0asm garbage").unwrap();
        let garbage = PluginCommand {
            command: PluginSubcommand::Inspect {
                file: junk,
                json: true,
            },
        };
        assert_eq!(run(garbage).unwrap_err().kind, ExitKind::Usage);
    }
}
