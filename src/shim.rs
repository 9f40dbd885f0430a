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
    WrongArch { path: String, found: String, host: String },
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
    let mut pending: Vec<std::ffi::OsString> =
        Path::new(path).components().rev().filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        }).collect();
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
                return Err(ShimError::Loop { path: path.to_string() });
            }
            through_link = true;
            let target = std::fs::read_link(&here).map_err(|e| ShimError::Io { path: path.into(), source: e })?;
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

fn host_elf_machine() -> (u16, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => (62, "x86-64"),
        "aarch64" => (183, "aarch64"),
        "x86" => (3, "x86"),
        "arm" => (40, "arm"),
        "riscv64" => (243, "riscv64"),
        "s390x" => (22, "s390x"),
        "powerpc64" => (21, "ppc64"),
        other => (0, other),
    }
}

fn elf_machine_name(m: u16) -> String {
    match m {
        62 => "x86-64".into(),
        183 => "aarch64".into(),
        3 => "x86".into(),
        40 => "arm".into(),
        243 => "riscv64".into(),
        22 => "s390x".into(),
        21 => "ppc64".into(),
        other => format!("ELF machine {other}"),
    }
}

/// Reads enough of a file to classify it and find its ELF interpreter.
fn inspect_binary(file: &Path, shown: &str) -> Result<Option<String>, ShimError> {
    let io = |e| ShimError::Io { path: shown.to_string(), source: e };
    let mut f = std::fs::File::open(file).map_err(io)?;
    let mut head = vec![0u8; 64 * 1024];
    let n = read_up_to(&mut f, &mut head).map_err(io)?;
    head.truncate(n);
    if head.starts_with(b"#!") {
        let line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
        return Err(ShimError::Script { path: shown.into(), shebang: String::from_utf8_lossy(&line[..line.len().min(80)]).into() });
    }
    if cfg!(target_os = "macos") && head.len() >= 8 {
        let magic = u32::from_le_bytes(head[0..4].try_into().unwrap());
        if magic == 0xfeedfacf {
            let cpu = u32::from_le_bytes(head[4..8].try_into().unwrap());
            let ok = match std::env::consts::ARCH {
                "x86_64" => cpu == 0x0100_0007,
                "aarch64" => cpu == 0x0100_000c,
                _ => false,
            };
            return if ok {
                Ok(None)
            } else {
                Err(ShimError::WrongArch { path: shown.into(), found: format!("Mach-O cpu {cpu:#x}"), host: std::env::consts::ARCH.into() })
            };
        }
    }
    if head.len() < 64 || &head[0..4] != b"\x7fELF" {
        return Err(ShimError::NotNative { path: shown.into(), reason: "not an ELF file".into() });
    }
    let class64 = match head[4] {
        1 => false,
        2 => true,
        _ => return Err(ShimError::NotNative { path: shown.into(), reason: "bad ELF class".into() }),
    };
    if head[5] != 1 {
        return Err(ShimError::NotNative { path: shown.into(), reason: "big-endian ELF".into() });
    }
    let u16at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let u32at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap()) as u64;
    let u64at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().unwrap());
    let e_type = u16at(16);
    if e_type != 2 && e_type != 3 {
        return Err(ShimError::NotNative { path: shown.into(), reason: "ELF file is not an executable".into() });
    }
    let machine = u16at(18);
    let (host_machine, host_name) = host_elf_machine();
    if machine != host_machine || class64 != cfg!(target_pointer_width = "64") {
        return Err(ShimError::WrongArch { path: shown.into(), found: elf_machine_name(machine), host: host_name.into() });
    }
    let (phoff, phentsize, phnum) = if class64 { (u64at(32), u16at(54) as u64, u16at(56) as u64) } else { (u32at(28), u16at(42) as u64, u16at(44) as u64) };
    let bad = || ShimError::NotNative { path: shown.into(), reason: "truncated program headers".into() };
    for i in 0..phnum.min(256) {
        let off = phoff.checked_add(i * phentsize).ok_or_else(bad)? as usize;
        if off + if class64 { 56 } else { 32 } > head.len() {
            return Err(bad());
        }
        if u32at(off) == 3 {
            let (p_offset, p_filesz) = if class64 { (u64at(off + 8), u64at(off + 32)) } else { (u32at(off + 4), u32at(off + 16)) };
            if p_filesz == 0 || p_filesz > 4096 {
                return Err(ShimError::NotNative { path: shown.into(), reason: "bad interpreter header".into() });
            }
            let mut buf = vec![0u8; p_filesz as usize];
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(p_offset)).map_err(io)?;
            f.read_exact(&mut buf).map_err(io)?;
            let s = String::from_utf8_lossy(buf.split(|b| *b == 0).next().unwrap_or(&[])).into_owned();
            return Ok(Some(s));
        }
    }
    Ok(None)
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
pub fn plan(root: &Path, entrypoint: &[String], cmd: &[String], env: &[String]) -> Result<LaunchPlan, ShimError> {
    // Baked arguments are ENTRYPOINT[1..]; CMD only matters when there is no ENTRYPOINT, since
    // CMD is a default the user's own arguments replace.
    let argv: &[String] = if !entrypoint.is_empty() { entrypoint } else { cmd };
    let first = argv.first().filter(|s| !s.is_empty()).ok_or(ShimError::NoEntrypoint)?.clone();
    let declared = if first.contains('/') { first.clone() } else { search_path(root, &first, env).ok_or_else(|| ShimError::Missing(first.clone()))? };
    let program = resolve_in_root(root, &declared)?;
    let abs = root.join(&program);
    let meta = std::fs::metadata(&abs).map_err(|_| ShimError::Missing(declared.clone()))?;
    if !meta.is_file() {
        return Err(ShimError::NotNative { path: declared, reason: "not a regular file".into() });
    }
    let interp = inspect_binary(&abs, &declared)?;
    let (interpreter, library_path) = match interp {
        None => (None, Vec::new()),
        Some(i) => {
            let ld = resolve_in_root(root, &i).map_err(|_| ShimError::NotNative {
                path: declared.clone(),
                reason: format!("its dynamic loader {i} is not in the image"),
            })?;
            (Some(ld), library_dirs(root))
        }
    };
    Ok(LaunchPlan { program, interpreter, library_path, args: argv[1..].to_vec(), entrypoint: declared })
}

fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib"] {
        let Ok(p) = resolve_in_root(root, base) else { continue };
        if root.join(&p).is_dir() && !dirs.contains(&p) {
            dirs.push(p.clone());
            // Debian-style multiarch directories.
            if let Ok(rd) = std::fs::read_dir(root.join(&p)) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
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
        let libs: Vec<String> = plan.library_path.iter().map(|p| format!("$R/{}", p.display())).collect();
        line += &format!("--library-path \"{}\" ", libs.join(":").replace('"', "\\\""));
    }
    line += &prog;
    for a in &plan.args {
        line += " ";
        line += &sh_quote(a);
    }
    line += " \"$@\"";
    format!("#!/bin/sh\n# gantry-launch: {}\nR={}\n{}\n", plan.entrypoint, sh_quote(&r), line)
}

/// The wrapper put on PATH: a fixed stub that runs the current version's launch script, so that
/// flipping `current` switches versions atomically.
pub fn wrapper_script(name: &str, current_launch: &Path) -> String {
    format!("#!/bin/sh\n{WRAPPER_MARKER} {name}\nexec {} \"$@\"\n", sh_quote(&current_launch.display().to_string()))
}

/// True when the file at `path` is a wrapper gantry wrote.
pub fn is_our_wrapper(path: &Path) -> bool {
    let mut buf = [0u8; 256];
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let n = read_up_to(&mut f, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).lines().nth(1).is_some_and(|l| l.starts_with(WRAPPER_MARKER))
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
        assert_eq!(resolve_in_root(root, "/usr/bin/tool").unwrap(), PathBuf::from("usr/bin/real"));
        assert_eq!(resolve_in_root(root, "/bin/tool").unwrap(), PathBuf::from("usr/bin/real"));
        assert_eq!(resolve_in_root(root, "/usr/bin/rel").unwrap(), PathBuf::from("usr/bin/real"));
    }

    #[test]
    fn symlink_escaping_root_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("../../../../etc/passwd", root.join("usr/bin/tool")).unwrap();
        assert!(matches!(resolve_in_root(root, "/usr/bin/tool"), Err(ShimError::OutsideRoot(_))));
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert!(matches!(resolve_in_root(root, "/loop1"), Err(ShimError::Loop { .. })));
    }

    #[test]
    fn scripts_and_foreign_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("s"), b"#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(root.join("t"), b"just text, long enough to not be an ELF file at all........................").unwrap();
        let mut elf = std::fs::read("/proc/self/exe").unwrap();
        elf[18] = 0x28; // ARM
        elf[19] = 0;
        std::fs::write(root.join("arm"), &elf).unwrap();
        assert!(matches!(plan(root, &["/s".into()], &[], &[]), Err(ShimError::Script { .. })));
        assert!(matches!(plan(root, &["/t".into()], &[], &[]), Err(ShimError::NotNative { .. })));
        assert!(matches!(plan(root, &["/arm".into()], &[], &[]), Err(ShimError::WrongArch { .. })));
        assert!(matches!(plan(root, &["/nope".into()], &[], &[]), Err(ShimError::Missing(_))));
        assert!(matches!(plan(root, &[], &[], &[]), Err(ShimError::NoEntrypoint)));
    }

    #[test]
    fn quoting_survives_hostile_arguments() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        let out = std::process::Command::new("sh").arg("-c").arg(format!("printf %s {}", sh_quote("$(id) `x` 'q' \"d\""))).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "$(id) `x` 'q' \"d\"");
    }
}
