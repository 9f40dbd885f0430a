//! From an unpacked rootfs to a command on the user's PATH: resolves the image entrypoint inside
//! the rootfs (symlinks followed chroot-style, never out of it), checks that it is a native binary
//! for this host, and writes the `launch` script (through the rootfs's own dynamic loader and
//! library paths for dynamic binaries) and the wrapper. It never runs the binary.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Marker line that makes a wrapper ours; a file without it is never overwritten.
pub const WRAPPER_MARKER: &str = "# gantry-wrapper:";

/// Errors planning the entrypoint.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("the image has no entrypoint or command to install")]
    NoEntrypoint,
    #[error("entrypoint {0} does not exist in the image")]
    Missing(String),
    #[error("entrypoint {0} is a symlink that points outside the image rootfs")]
    OutsideRoot(String),
    #[error("entrypoint {path}: too many levels of symlinks")]
    Loop { path: String },
    #[error("entrypoint {path} is a script ({shebang}); gantry installs native binaries only")]
    Script { path: String, shebang: String },
    #[error("entrypoint {path} is not a native executable: {reason}")]
    NotNative { path: String, reason: String },
    #[error("entrypoint {path} is built for {found}, but this host is {host}")]
    WrongArch {
        path: String,
        found: String,
        host: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `path` inside `root` as a chroot would: absolute symlinks restart at `root`; a
/// relative symlink that climbs above `root` is refused. Returns the path relative to `root`.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, ShimError> {
    let mut stack: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    let mut through_link = false;
    while let Some(c) = pending.pop() {
        if c == ".." {
            if stack.pop().is_none() && through_link {
                return Err(ShimError::OutsideRoot(path.to_string()));
            }
            continue;
        }
        stack.push(c);
        let here: PathBuf = root.join(stack.iter().collect::<PathBuf>());
        let meta = match std::fs::symlink_metadata(&here) {
            Ok(m) => m,
            Err(_) => return Err(ShimError::Missing(path.to_string())),
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err(ShimError::Loop {
                    path: path.to_string(),
                });
            }
            through_link = true;
            let target = std::fs::read_link(&here).map_err(|e| ShimError::Io {
                path: path.into(),
                source: e,
            })?;
            stack.pop();
            if target.is_absolute() {
                stack.clear();
            }
            for comp in target.components().rev() {
                match comp {
                    Component::Normal(n) => pending.push(n.to_owned()),
                    Component::ParentDir => pending.push("..".into()),
                    _ => {}
                }
            }
        }
    }
    Ok(stack.iter().collect())
}

/// What `launch` will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    /// The entrypoint, relative to the rootfs.
    pub program: PathBuf,
    /// The ELF interpreter (dynamic loader), relative to the rootfs.
    pub interpreter: Option<PathBuf>,
    /// Library directories inside the rootfs, relative.
    pub library_path: Vec<PathBuf>,
    /// Baked arguments placed before the user's.
    pub args: Vec<String>,
    /// The entrypoint as the image declares it.
    pub entrypoint: String,
}

/// Reads enough of a file to classify it and find its ELF interpreter.
fn inspect_binary(file: &Path, shown: &str) -> Result<Option<String>, ShimError> {
    use crate::elf::Header;
    let io = |e| ShimError::Io {
        path: shown.to_string(),
        source: e,
    };
    let mut f = std::fs::File::open(file).map_err(io)?;
    let mut head = vec![0u8; 64 * 1024];
    let n = read_up_to(&mut f, &mut head).map_err(io)?;
    head.truncate(n);
    match crate::elf::classify(&head) {
        Header::Script(shebang) => Err(ShimError::Script {
            path: shown.into(),
            shebang,
        }),
        Header::WrongArch(found) => Err(ShimError::WrongArch {
            path: shown.into(),
            found,
            host: crate::elf::host_machine().1.into(),
        }),
        Header::NotNative(reason) => Err(ShimError::NotNative {
            path: shown.into(),
            reason: reason.into(),
        }),
        Header::Native { interp: None } => Ok(None),
        Header::Native {
            interp: Some((offset, size)),
        } => {
            use std::io::{Seek, SeekFrom};
            let bad = || ShimError::NotNative {
                path: shown.into(),
                reason: "bad interpreter header".into(),
            };
            let mut buf = vec![0u8; usize::try_from(size).map_err(|_| bad())?];
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            f.read_exact(&mut buf).map_err(|_| bad())?;
            Ok(Some(
                String::from_utf8_lossy(buf.split(|b| *b == 0).next().unwrap_or(&[])).into_owned(),
            ))
        }
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Finds `name` on the image's PATH (from its env), inside the rootfs.
fn search_path(root: &Path, name: &str, env: &[String]) -> Option<String> {
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{}", d.trim_end_matches('/'), name))
        .find(|cand| resolve_in_root(root, cand).is_ok_and(|p| root.join(p).is_file()))
}

/// Plans the launch of the image entrypoint (ENTRYPOINT, or CMD when there is none).
pub fn plan(
    root: &Path,
    entrypoint: &[String],
    cmd: &[String],
    env: &[String],
) -> Result<LaunchPlan, ShimError> {
    // Baked arguments are ENTRYPOINT[1..]; CMD only matters when there is no ENTRYPOINT, since
    // CMD is a default the user's own arguments replace.
    let argv: &[String] = if !entrypoint.is_empty() {
        entrypoint
    } else {
        cmd
    };
    let first = argv
        .first()
        .filter(|s| !s.is_empty())
        .ok_or(ShimError::NoEntrypoint)?
        .clone();
    let declared = if first.contains('/') {
        first.clone()
    } else {
        search_path(root, &first, env).ok_or_else(|| ShimError::Missing(first.clone()))?
    };
    if let Some(bad) = [&first, &declared].into_iter().find(|s| has_control(s)) {
        return Err(ShimError::NotNative {
            path: escape(bad),
            reason: "its path holds control characters".into(),
        });
    }
    let program = resolve_in_root(root, &declared)?;
    let abs = root.join(&program);
    let meta = std::fs::metadata(&abs).map_err(|_| ShimError::Missing(declared.clone()))?;
    if !meta.is_file() {
        return Err(ShimError::NotNative {
            path: declared,
            reason: "not a regular file".into(),
        });
    }
    let interp = inspect_binary(&abs, &declared)?;
    let (interpreter, library_path) = match interp {
        None => (None, Vec::new()),
        Some(i) if has_control(&i) => {
            return Err(ShimError::NotNative {
                path: declared,
                reason: format!(
                    "its dynamic loader path {} holds control characters",
                    escape(&i)
                ),
            })
        }
        Some(i) => {
            let ld = resolve_in_root(root, &i).map_err(|_| ShimError::NotNative {
                path: declared.clone(),
                reason: format!("its dynamic loader {i} is not in the image"),
            })?;
            (Some(ld), library_dirs(root))
        }
    };
    Ok(LaunchPlan {
        program,
        interpreter,
        library_path,
        args: argv[1..].to_vec(),
        entrypoint: declared,
    })
}

fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib"] {
        let Ok(p) = resolve_in_root(root, base) else {
            continue;
        };
        if root.join(&p).is_dir() && !dirs.contains(&p) {
            dirs.push(p.clone());
            // Debian-style multiarch directories.
            if let Ok(rd) = std::fs::read_dir(root.join(&p)) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    // A name that would split the library path or hide a line is skipped.
                    if has_control(&n) || n.contains(':') {
                        continue;
                    }
                    if n.ends_with("-linux-gnu") || n.ends_with("-linux-musl") {
                        let sub = p.join(&n);
                        if root.join(&sub).is_dir() && !dirs.contains(&sub) {
                            dirs.push(sub);
                        }
                    }
                }
            }
        }
    }
    dirs
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A string with control characters shown as escapes, for messages and comments.
fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Quotes a string for POSIX sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `launch` script for a plan whose rootfs will live at `root` (absolute, final location).
pub fn launch_script(plan: &LaunchPlan, root: &Path) -> String {
    let r = root.display().to_string();
    let prog = format!("\"$R\"/{}", sh_quote(&plan.program.display().to_string()));
    let mut line = String::from("exec ");
    if let Some(ld) = &plan.interpreter {
        line += &format!("\"$R\"/{} ", sh_quote(&ld.display().to_string()));
        let musl = ld.to_string_lossy().contains("musl");
        if !musl {
            line += "--inhibit-cache ";
        }
        // One word: `"$R"/'dir'` pieces joined by `:`, every image-controlled part single-quoted.
        let libs: Vec<String> = plan
            .library_path
            .iter()
            .map(|p| format!("\"$R\"/{}", sh_quote(&p.display().to_string())))
            .collect();
        line += &format!("--library-path {} ", libs.join(":"));
    }
    line += &prog;
    for a in &plan.args {
        line += " ";
        line += &sh_quote(a);
    }
    line += " \"$@\"";
    format!(
        "#!/bin/sh\n# gantry-launch: {}\nR={}\n{}\n",
        escape(&plan.entrypoint),
        sh_quote(&r),
        line
    )
}

/// The wrapper put on PATH: a fixed stub that runs the current version's launch script, so that
/// flipping `current` switches versions atomically.
pub fn wrapper_script(name: &str, current_launch: &Path) -> String {
    format!(
        "#!/bin/sh\n{WRAPPER_MARKER} {name}\nexec {} \"$@\"\n",
        sh_quote(&current_launch.display().to_string())
    )
}

/// True when the file at `path` is a wrapper gantry wrote.
pub fn is_our_wrapper(path: &Path) -> bool {
    let mut buf = [0u8; 256];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = read_up_to(&mut f, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .nth(1)
        .is_some_and(|l| l.starts_with(WRAPPER_MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_resolve_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/real"), b"x").unwrap();
        symlink("/usr/bin/real", root.join("usr/bin/tool")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("../bin/tool", root.join("usr/bin/rel")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/usr/bin/tool").unwrap(),
            PathBuf::from("usr/bin/real")
        );
        assert_eq!(
            resolve_in_root(root, "/bin/tool").unwrap(),
            PathBuf::from("usr/bin/real")
        );
        assert_eq!(
            resolve_in_root(root, "/usr/bin/rel").unwrap(),
            PathBuf::from("usr/bin/real")
        );
    }

    #[test]
    fn symlink_escaping_root_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("../../../../etc/passwd", root.join("usr/bin/tool")).unwrap();
        assert!(matches!(
            resolve_in_root(root, "/usr/bin/tool"),
            Err(ShimError::OutsideRoot(_))
        ));
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert!(matches!(
            resolve_in_root(root, "/loop1"),
            Err(ShimError::Loop { .. })
        ));
    }

    #[test]
    fn scripts_and_foreign_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("s"), b"#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(
            root.join("t"),
            b"just text, long enough to not be an ELF file at all........................",
        )
        .unwrap();
        let mut elf = std::fs::read("/proc/self/exe").unwrap();
        elf[18] = 0x28; // ARM
        elf[19] = 0;
        std::fs::write(root.join("arm"), &elf).unwrap();
        assert!(matches!(
            plan(root, &["/s".into()], &[], &[]),
            Err(ShimError::Script { .. })
        ));
        assert!(matches!(
            plan(root, &["/t".into()], &[], &[]),
            Err(ShimError::NotNative { .. })
        ));
        assert!(matches!(
            plan(root, &["/arm".into()], &[], &[]),
            Err(ShimError::WrongArch { .. })
        ));
        assert!(matches!(
            plan(root, &["/nope".into()], &[], &[]),
            Err(ShimError::Missing(_))
        ));
        assert!(matches!(
            plan(root, &[], &[], &[]),
            Err(ShimError::NoEntrypoint)
        ));
    }

    #[test]
    fn quoting_survives_hostile_arguments() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote("$(id) `x` 'q' \"d\"")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "$(id) `x` 'q' \"d\"");
    }

    #[test]
    fn image_controlled_names_never_reach_the_shell() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let pwned = d.path().join("pwned");
        let inject = "$(touch pwned)`touch pwned`;touch pwned".to_string();
        // A stand-in loader that prints the arguments it was given, one per line.
        let ld = format!("ld-{inject}");
        std::fs::write(
            root.join(&ld),
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
        )
        .unwrap();
        std::fs::set_permissions(root.join(&ld), std::fs::Permissions::from_mode(0o755)).unwrap();
        let plan = LaunchPlan {
            program: PathBuf::from(format!("bin/{inject}'q")),
            interpreter: Some(PathBuf::from(&ld)),
            library_path: vec![
                PathBuf::from(format!("lib/{inject}-linux-gnu")),
                PathBuf::from("usr/lib\"x"),
            ],
            args: vec![inject.clone(), "a'b".into()],
            entrypoint: "/bin/x\ntouch pwned".into(),
        };
        let script = launch_script(&plan, &root);
        assert_eq!(script.lines().count(), 4, "{script}");
        let launch = d.path().join("launch");
        std::fs::write(&launch, &script).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&launch)
            .arg("$(user arg)")
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !pwned.exists(),
            "an image-controlled name ran a command:\n{script}"
        );
        let r = root.display();
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        let expected = vec![
            "--inhibit-cache".to_string(),
            "--library-path".into(),
            format!("{r}/lib/{inject}-linux-gnu:{r}/usr/lib\"x"),
            format!("{r}/bin/{inject}'q"),
            inject.clone(),
            "a'b".into(),
            "$(user arg)".into(),
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn control_characters_in_entrypoints_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = plan(d.path(), &["/bin/x\ntouch /tmp/y".into()], &[], &[]).unwrap_err();
        assert!(
            e.to_string().contains("control characters") && e.to_string().contains("\\n"),
            "{e}"
        );
    }
}
