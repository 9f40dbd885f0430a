//! Putting the wrapper directory on the user's `PATH`: whether it is there, and the marked block
//! (`# >>> gantry >>>` … `# <<< gantry <<<`) that `gantry path setup` keeps in a shell's rc file
//! and `gantry path unset` takes out. Editing is text in, text out: the block is replaced in place
//! or appended, and removed line for line, so nothing else in the file changes; the file is
//! written atomically (through a symlink to its target, keeping its mode). It never runs a shell.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The first line of the block.
pub const BEGIN: &str = "# >>> gantry >>>";
/// The last line of the block.
pub const END: &str = "# <<< gantry <<<";

/// Errors finding or editing an rc file.
#[derive(Debug, thiserror::Error)]
pub enum PathSetupError {
    #[error("cannot tell your shell from SHELL={0:?}: pass --shell bash, zsh or fish")]
    UnknownShell(String),
    #[error("SHELL is not set: pass --shell bash, zsh or fish")]
    NoShell,
    #[error("HOME is not set: cannot find the shell's rc file")]
    NoHome,
    #[error("{path}: line {line} opens a gantry block ({BEGIN}) that is never closed ({END}); fix the file by hand")]
    Unclosed { path: PathBuf, line: usize },
    #[error("{path}: line {line} closes a gantry block ({END}) that was never opened; fix the file by hand")]
    Unopened { path: PathBuf, line: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A shell whose rc file gantry can edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// The shell `$SHELL` names (its file name: `/usr/bin/zsh` is zsh).
    pub fn from_env(shell: Option<&OsStr>) -> Result<Shell, PathSetupError> {
        let s = shell
            .filter(|s| !s.is_empty())
            .ok_or(PathSetupError::NoShell)?;
        let name = Path::new(s)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.as_str() {
            "bash" => Ok(Shell::Bash),
            "zsh" => Ok(Shell::Zsh),
            "fish" => Ok(Shell::Fish),
            _ => Err(PathSetupError::UnknownShell(
                s.to_string_lossy().into_owned(),
            )),
        }
    }

    /// The rc file the shell reads for interactive sessions: `~/.bashrc`; `$ZDOTDIR/.zshrc` or
    /// `~/.zshrc`; `$XDG_CONFIG_HOME/fish/config.fish` or `~/.config/fish/config.fish`. `env`
    /// reads a variable (the process environment, or a test's).
    pub fn rc_file(
        self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<PathBuf, PathSetupError> {
        let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = set("HOME");
        let home = || home.clone().ok_or(PathSetupError::NoHome);
        Ok(match self {
            Shell::Bash => home()?.join(".bashrc"),
            Shell::Zsh => set("ZDOTDIR").map_or_else(home, Ok)?.join(".zshrc"),
            Shell::Fish => set("XDG_CONFIG_HOME")
                .map_or_else(|| home().map(|h| h.join(".config")), Ok)?
                .join("fish/config.fish"),
        })
    }

    /// The block that puts `bin` first on `PATH` for this shell, unless it is already there.
    pub fn block(self, bin: &Path) -> String {
        let dir = bin.display().to_string();
        let body = match self {
            Shell::Bash | Shell::Zsh => {
                let q = crate::shim::sh_quote(&dir);
                format!(
                    "case \":$PATH:\" in\n  *:{q}:*) ;;\n  *) export PATH={q}\":$PATH\" ;;\nesac\n"
                )
            }
            Shell::Fish => {
                let q = fish_quote(&dir);
                format!("contains -- {q} $PATH\nor set -gx PATH {q} $PATH\n")
            }
        };
        format!("{BEGIN}\n# Added by `gantry path setup`; `gantry path unset` removes it.\n{body}{END}\n")
    }
}

/// Whether `dir` is one of the directories of a `PATH` value (compared as paths, so a trailing
/// slash or a symlinked spelling of the same directory counts).
pub fn on_path(dir: &Path, path_var: Option<&OsStr>) -> bool {
    let Some(var) = path_var else {
        return false;
    };
    let want = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::env::split_paths(var).any(|p| {
        // Path equality compares components, so a trailing slash does not matter.
        !p.as_os_str().is_empty()
            && (p == dir || std::fs::canonicalize(&p).is_ok_and(|c| c == want))
    })
}

/// `text` with `block` in it: replacing the first gantry block in place (and dropping any later
/// ones), or appended at the end. Setting the same block twice gives the same text.
pub fn with_block(path: &Path, text: &str, block: &str) -> Result<String, PathSetupError> {
    let spans = blocks(path, text)?;
    let Some(first) = spans.first() else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(block);
        return Ok(out);
    };
    let mut out = String::with_capacity(text.len() + block.len());
    out.push_str(&text[..first.0]);
    out.push_str(block);
    let mut at = first.1;
    for (start, end) in spans.iter().skip(1) {
        out.push_str(&text[at..*start]);
        at = *end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// `text` without its gantry blocks, exactly those lines; `None` when it has none.
pub fn without_block(path: &Path, text: &str) -> Result<Option<String>, PathSetupError> {
    let spans = blocks(path, text)?;
    if spans.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(Some(out))
}

/// The byte ranges of the gantry blocks in `text`, each from the start of its `BEGIN` line to
/// just after its `END` line (newline included).
fn blocks(path: &Path, text: &str) -> Result<Vec<(usize, usize)>, PathSetupError> {
    let mut spans = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end_matches(['\n', '\r']).trim_end();
        let end = offset + line.len();
        if trimmed == BEGIN {
            if let Some((_, l)) = open {
                return Err(PathSetupError::Unclosed {
                    path: path.into(),
                    line: l,
                });
            }
            open = Some((offset, i + 1));
        } else if trimmed == END {
            match open.take() {
                Some((start, _)) => spans.push((start, end)),
                None => {
                    return Err(PathSetupError::Unopened {
                        path: path.into(),
                        line: i + 1,
                    })
                }
            }
        }
        offset = end;
    }
    if let Some((_, line)) = open {
        return Err(PathSetupError::Unclosed {
            path: path.into(),
            line,
        });
    }
    Ok(spans)
}

/// The rc file's text; a missing file is empty.
pub fn read(path: &Path) -> Result<String, PathSetupError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(PathSetupError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Replaces the file's contents atomically: a temp file next to the real file (a symlinked rc
/// file is written at its target, so the link stays), synced, with the old mode, renamed over it.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), PathSetupError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let err = |source| PathSetupError::Io {
        path: target.clone(),
        source,
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mode = std::fs::metadata(&target)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    let mut tmp = tempfile::Builder::new()
        .prefix(".gantry-rc-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    Ok(())
}

/// Quotes a string for fish: inside single quotes only `\` and `'` are special.
fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "rc";

    #[test]
    fn setting_twice_is_one_block_and_unsetting_restores_the_file() {
        let bin = Path::new("/h/.gantry/bin");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let block = shell.block(bin);
            for original in ["", "alias ll='ls -l'\n# mine\n", "no newline at end"] {
                let once = with_block(Path::new(P), original, &block).unwrap();
                let twice = with_block(Path::new(P), &once, &block).unwrap();
                assert_eq!(once, twice);
                assert_eq!(once.matches(BEGIN).count(), 1);
                let back = without_block(Path::new(P), &once).unwrap().unwrap();
                let expected = if original.ends_with('\n') || original.is_empty() {
                    original.to_string()
                } else {
                    format!("{original}\n")
                };
                assert_eq!(back, expected, "{shell:?} {original:?}");
            }
        }
    }

    #[test]
    fn a_block_in_the_middle_is_replaced_in_place_and_removed_exactly() {
        let old = format!("a\n{BEGIN}\nexport PATH=/old:$PATH\n{END}\nb\n");
        let block = Shell::Bash.block(Path::new("/new bin"));
        let new = with_block(Path::new(P), &old, &block).unwrap();
        assert_eq!(new, format!("a\n{block}b\n"));
        assert!(new.contains("export PATH='/new bin'\":$PATH\""), "{new}");
        assert_eq!(
            without_block(Path::new(P), &new).unwrap().unwrap(),
            "a\nb\n"
        );
        assert_eq!(without_block(Path::new(P), "a\nb\n").unwrap(), None);
    }

    #[test]
    fn a_broken_block_is_refused_with_its_line() {
        let e = with_block(Path::new(P), &format!("x\n{BEGIN}\ny\n"), "b").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = without_block(Path::new(P), &format!("{END}\n")).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn the_block_works_in_sh_and_never_adds_the_directory_twice() {
        let bin = Path::new("/tmp/it's here/bin");
        let script = format!(
            "PATH=/usr/bin:/bin\n{b}{b}echo \"$PATH\"\n",
            b = Shell::Bash.block(bin)
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/tmp/it's here/bin:/usr/bin:/bin\n"
        );
    }

    #[test]
    fn shells_and_rc_files() {
        assert_eq!(
            Shell::from_env(Some(OsStr::new("/usr/bin/zsh"))).unwrap(),
            Shell::Zsh
        );
        assert!(matches!(
            Shell::from_env(Some(OsStr::new("/bin/tcsh"))),
            Err(PathSetupError::UnknownShell(_))
        ));
        assert!(matches!(
            Shell::from_env(None),
            Err(PathSetupError::NoShell)
        ));
        let env = |k: &str| match k {
            "HOME" => Some("/h".into()),
            "XDG_CONFIG_HOME" => Some("/x".into()),
            _ => None,
        };
        assert_eq!(Shell::Bash.rc_file(env).unwrap(), Path::new("/h/.bashrc"));
        assert_eq!(Shell::Zsh.rc_file(env).unwrap(), Path::new("/h/.zshrc"));
        assert_eq!(
            Shell::Fish.rc_file(env).unwrap(),
            Path::new("/x/fish/config.fish")
        );
    }

    #[test]
    fn path_membership_compares_paths() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let with = std::env::join_paths([Path::new("/usr/bin"), &bin]).unwrap();
        assert!(on_path(&bin, Some(&with)));
        let slash = format!("/usr/bin:{}/", bin.display());
        assert!(on_path(&bin, Some(OsStr::new(&slash))));
        assert!(!on_path(&bin, Some(OsStr::new("/usr/bin:"))));
        assert!(!on_path(&bin, None));
    }
}
