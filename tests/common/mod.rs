//! Shared harness for integration tests: a temp GANTRY_HOME, the built binary, a real
//! `docker-registry` (distribution 2.8) on a free loopback port with temp storage, and test
//! binaries compiled with the system C compiler.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The gantry binary under test.
pub fn gantry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gantry")
}

/// A temp home plus helpers to run gantry in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// The outcome of one gantry run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The outcome of a command run with [`Env::cmd`].
    pub fn from_output(o: Output) -> Run {
        Run::from(o)
    }

    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Env {
    /// A temp dir with an empty system layer (`system.toml`, which tests may fill).
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("system.toml"), "").expect("write system.toml");
        Env { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A command for gantry with this env's home and an empty system layer.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(gantry_bin());
        c.args(args)
            .env("GANTRY_HOME", self.home())
            .env("GANTRY_SYSTEM_CONFIG", self.dir.path().join("system.toml"))
            .env("HOME", self.dir.path())
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run gantry"))
    }

    /// Runs an installed command through its wrapper.
    pub fn run_tool(&self, name: &str, args: &[&str]) -> Run {
        let w = self.home().join("bin").join(name);
        Run::from(
            Command::new(&w)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("run {}: {e}", w.display())),
        )
    }
}

/// A docker-registry on loopback, stopped on drop.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub storage: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        let storage = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = storage.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let bin = which("docker-registry").expect(
            "docker-registry is not installed (apt-get install docker-registry; .ci/run does this)",
        );
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry {
            child,
            port,
            storage,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file in the registry's storage that holds a blob (for tampering tests).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{}/data",
            &hex[..2],
            hex
        ))
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Compiles a C program with the system compiler; `static_link` gives a static binary.
pub fn compile_c(dir: &Path, name: &str, source: &str, static_link: bool) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let mut c = Command::new("cc");
    c.arg("-O2").arg("-o").arg(&out).arg(&src);
    if static_link {
        c.arg("-static");
    }
    let o = c.output().expect("run cc (install gcc)");
    assert!(
        o.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A static binary that prints its greeting and its arguments.
pub fn hello_binary(dir: &Path, greeting: &str) -> PathBuf {
    let src = format!(
        "#include <stdio.h>\nint main(int argc, char **argv) {{ printf(\"{greeting}\"); for (int i = 1; i < argc; i++) printf(\" [%s]\", argv[i]); printf(\"\\n\"); return 0; }}\n"
    );
    let bin_dir = dir.join(format!(
        "src-{}",
        greeting.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    std::fs::create_dir_all(&bin_dir).unwrap();
    compile_c(&bin_dir, "hello", &src, true)
}

/// Builds tar archives entry by entry, including names `tar::Builder` refuses to write
/// (`..`, absolute paths), for hostile-layer tests.
pub struct RawTar {
    out: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar { out: Vec::new() }
    }

    fn push(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            assert!(name.len() < 100, "test names stay short");
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn file(mut self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.push(name, tar::EntryType::Regular, mode, None, data);
        self
    }
    pub fn dir(mut self, name: &str) -> Self {
        self.push(name, tar::EntryType::Directory, 0o755, None, b"");
        self
    }
    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.push(name, tar::EntryType::Symlink, 0o777, Some(target), b"");
        self
    }
    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.push(name, tar::EntryType::Link, 0o644, Some(target), b"");
        self
    }
    pub fn special(mut self, name: &str, kind: tar::EntryType) -> Self {
        self.push(name, kind, 0o644, None, b"");
        self
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Pushes an image made of raw layer blobs straight to the registry over HTTP (what
/// `gantry publish` would never produce), with a host-platform config and `entrypoint`.
pub fn push_raw_image(
    reg: &TestRegistry,
    repo: &str,
    tag: &str,
    layers: &[(Vec<u8>, &str)],
    entrypoint: &str,
) -> String {
    let home = tempfile::tempdir().unwrap();
    let r = gantry::registry::Registry::new(&reg.host(), repo, false, home.path()).unwrap();
    let p = gantry::image::host_platform();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": p.architecture, "os": p.os,
        "config": {"Entrypoint": [entrypoint]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut descs = Vec::new();
        for (blob, mt) in layers {
            let d = r.push_blob(blob.clone()).await.unwrap();
            descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": blob.len()}));
        }
        let cd = r.push_blob(config.clone()).await.unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": descs,
        }))
        .unwrap();
        r.push_manifest(&gantry::source::ManifestRef::Tag(tag.into()), manifest, "application/vnd.oci.image.manifest.v1+json")
            .await
            .unwrap()
    })
}

pub const TAR_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Appends a signature or attestation layer to a cosign attachment tag (`sha256-HEX.sig`/`.att`)
/// of `repo`, as `cosign attach` would: what a third party with push access can do.
pub fn push_attachment(
    reg: &TestRegistry,
    repo: &str,
    tag: &str,
    layer: &gantry::trust::sign::AttachmentLayer,
) {
    use gantry::trust::sign::{build_attachment_manifest, OCI_MANIFEST_MEDIA_TYPE};
    let home = tempfile::tempdir().unwrap();
    let r = gantry::registry::Registry::new(&reg.host(), repo, false, home.path()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use gantry::source::{ImageSource, ManifestRef};
        let existing = r
            .fetch_manifest(&ManifestRef::Tag(tag.into()))
            .await
            .unwrap();
        let m = build_attachment_manifest(existing.as_ref().map(|m| m.bytes.as_slice()), layer)
            .unwrap();
        r.push_blob(layer.payload.clone()).await.unwrap();
        r.push_blob(m.config.clone()).await.unwrap();
        r.push_manifest(
            &ManifestRef::Tag(tag.into()),
            m.manifest,
            OCI_MANIFEST_MEDIA_TYPE,
        )
        .await
        .unwrap();
    });
}
