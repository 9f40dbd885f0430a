//! The one harness of the integration tests: a temp GANTRY_HOME, the built binary, a real
//! `docker-registry` (distribution 2.8) on a free loopback port with temp storage, test binaries
//! compiled with the system C compiler, and the helpers more than one topic uses.
//!
//! Every topic runs in one process, tests in parallel: nothing here changes the process's own
//! environment or working directory (each command gets its environment on its `Command`), every
//! test has its own temp home and its own registry, and registries start one at a time (see
//! [`TestRegistry::start`]).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use gantry::exit::ExitKind;

/// The exit code of a command that succeeded.
pub const SUCCESS: i32 = 0;

/// The process exit code gantry gives a failure of this kind.
pub fn code(kind: ExitKind) -> i32 {
    i32::from(kind.code())
}

/// The repository root (`CARGO_MANIFEST_DIR`): shipped policies, `tests/data/`.
pub fn repo_root() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

/// A path under the workspace's `shared/conformance/` (next to the repository), as a `&'static
/// str` usable in constants.
macro_rules! conformance_path {
    ($p:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance/", $p)
    };
}
pub(crate) use conformance_path;

/// Hex SHA-256 of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

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

    /// Panics with the output unless the command succeeded (exit 0).
    #[track_caller]
    pub fn succeeds(self) -> Run {
        self.expect_code(SUCCESS)
    }

    /// Panics with the output unless the command failed with the exit code of `kind`.
    #[track_caller]
    pub fn fails_with(self, kind: ExitKind) -> Run {
        self.expect_code(code(kind))
    }

    #[track_caller]
    fn expect_code(self, code: i32) -> Run {
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

    /// Replaces the system layer (`system.toml`).
    pub fn write_system_config(&self, text: &str) {
        std::fs::write(self.path("system.toml"), text).unwrap();
    }

    /// Replaces the user layer (`config.toml` in the home, which is made if missing).
    pub fn write_user_config(&self, text: impl AsRef<[u8]>) {
        std::fs::create_dir_all(self.home()).unwrap();
        std::fs::write(self.home().join("config.toml"), text).unwrap();
    }

    /// The user layer as it is on disk (empty if there is none yet).
    pub fn user_config(&self) -> String {
        std::fs::read_to_string(self.home().join("config.toml")).unwrap_or_default()
    }

    /// Whether the home's staging directory (`tmp/`) is empty.
    pub fn staging_is_empty(&self) -> bool {
        std::fs::read_dir(self.home().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    }

    /// How many unpacking temp dirs (`.tmp*`) the layer cache holds.
    pub fn layer_temp_dirs(&self) -> usize {
        std::fs::read_dir(self.home().join("layers"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .count()
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

    /// [`Env::run`] with the password of the keys [`keygen`] makes, for commands that sign.
    pub fn run_keyed(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).env("GANTRY_PASSWORD", KEY_PASSWORD).output();
        Run::from(out.expect("run gantry"))
    }

    /// Runs `c` (from [`Env::cmd`]) with `input` on its stdin.
    pub fn run_with_stdin(&self, mut c: Command, input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gantry");
        // A command that exits without reading its input is the test's to judge, not a panic.
        let _ = child.stdin.take().expect("stdin").write_all(input);
        Run::from(child.wait_with_output().expect("wait for gantry"))
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

/// Held while a registry starts: in this one test process, no other test picks a port between
/// the moment [`free_port`] releases one and the moment docker-registry listens on it.
static STARTING: Mutex<()> = Mutex::new(());

impl TestRegistry {
    /// Starts a registry of this test's own. Starts are serialised (see [`STARTING`]); a
    /// docker-registry that exits before it listens (its port was taken meanwhile, by a process
    /// outside this binary) is retried on another port.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(tempfile::tempdir().unwrap(), "")
    }

    /// [`TestRegistry::start`] with HTTP Basic authentication: one user, its password kept in an
    /// htpasswd file (bcrypt, written by `htpasswd -Bbn`, from apache2-utils) that
    /// docker-registry's `auth: htpasswd` reads. Every request, reads included, needs it.
    pub fn start_with_htpasswd(user: &str, password: &str) -> TestRegistry {
        let storage = tempfile::tempdir().unwrap();
        let htpasswd = which("htpasswd")
            .expect("htpasswd is not installed (apt-get install apache2-utils; .ci/run does this)");
        let out = Command::new(htpasswd)
            .args(["-Bbn", user, password])
            .output()
            .expect("run htpasswd");
        assert!(
            out.status.success(),
            "htpasswd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = storage.path().join("htpasswd");
        std::fs::write(&file, &out.stdout).unwrap();
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: gantry-test\n    path: {}\n",
            file.display()
        );
        TestRegistry::start_with(storage, &auth)
    }

    /// Starts docker-registry with `extra` appended to its configuration.
    fn start_with(storage: tempfile::TempDir, extra: &str) -> TestRegistry {
        let cfg = storage.path().join("config.yml");
        let log = storage.path().join("registry.log");
        let bin = which("docker-registry").expect(
            "docker-registry is not installed (apt-get install docker-registry; .ci/run does this)",
        );
        let _one_at_a_time = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                    storage.path().join("data").display()
                ),
            )
            .unwrap();
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("start docker-registry");
            if listening(&mut child, port) {
                return TestRegistry {
                    child,
                    port,
                    storage,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry exited before listening, on 5 ports: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// A client for `repo` on this registry, as gantry's own code talks to it.
    pub fn client(&self, repo: &str) -> gantry::registry::Registry {
        // No credentials: the home only has to exist while the client is made.
        let home = tempfile::tempdir().unwrap();
        gantry::registry::Registry::new(
            &self.host(),
            repo,
            false,
            &gantry::store::Home::new(home.path()),
        )
        .unwrap()
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

/// Waits until `child` accepts connections on `port`: false if it exited first (it could not
/// bind), panics if it neither listens nor exits within 20 s.
fn listening(child: &mut Child, port: u16) -> bool {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("docker-registry status").is_some() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // A registry that could not bind exits: if it is gone, what answered is another
            // process's.
            return child.try_wait().expect("docker-registry status").is_none();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "docker-registry did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
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

/// Runs a future to completion on a runtime of its own (for the library's async registry calls).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
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
    let r = reg.client(repo);
    let p = gantry::image::host_platform();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": p.architecture, "os": p.os,
        "config": {"Entrypoint": [entrypoint]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    block_on(async {
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
        r.push_manifest(
            &gantry::source::ManifestRef::Tag(tag.into()),
            manifest,
            "application/vnd.oci.image.manifest.v1+json",
        )
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
    let r = reg.client(repo);
    block_on(async {
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

/// Copies the attachment manifest at `from_repo:from_tag` (a cosign `.sig` or `.att` tag), with
/// its config and layer blobs, to `to_repo:to_tag`, byte for byte: what anyone with push access
/// to `to_repo` can do with a signature they did not make.
pub fn copy_attachment(
    reg: &TestRegistry,
    (from_repo, from_tag): (&str, &str),
    (to_repo, to_tag): (&str, &str),
) {
    use gantry::trust::sign::OCI_MANIFEST_MEDIA_TYPE;
    let (src, dst) = (reg.client(from_repo), reg.client(to_repo));
    block_on(async {
        use gantry::source::{ImageSource, ManifestRef};
        let m = src
            .fetch_manifest(&ManifestRef::Tag(from_tag.into()))
            .await
            .unwrap()
            .unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        for d in std::iter::once(&manifest["config"]).chain(layers) {
            let blob = src
                .fetch_blob(d["digest"].as_str().unwrap(), 1 << 20)
                .await
                .unwrap();
            dst.push_blob(blob).await.unwrap();
        }
        dst.push_manifest(
            &ManifestRef::Tag(to_tag.into()),
            m.bytes,
            OCI_MANIFEST_MEDIA_TYPE,
        )
        .await
        .unwrap();
    });
}

/// The password of the keys [`keygen`] makes (given to gantry as `GANTRY_PASSWORD`).
pub const KEY_PASSWORD: &str = "correct horse";

/// A cosign key pair from `gantry keygen`: `PREFIX.key` and `PREFIX.pub` in the env's dir.
pub fn keygen(env: &Env, prefix: &str) -> (PathBuf, PathBuf) {
    let p = env.path(prefix);
    env.cmd(&["keygen", "--output-key-prefix", p.to_str().unwrap()])
        .env("GANTRY_PASSWORD", KEY_PASSWORD)
        .output()
        .unwrap();
    let (k, pubk) = (p.with_extension("key"), p.with_extension("pub"));
    assert!(
        k.is_file() && pubk.is_file(),
        "keygen wrote {} and {}",
        k.display(),
        pubk.display()
    );
    (k, pubk)
}

/// `gantry publish BIN --to REGISTRY/REPO:TAG`, signed with `key` when one is given (a key from
/// [`keygen`]); returns the digest it prints.
pub fn publish_bin(
    env: &Env,
    reg: &TestRegistry,
    key: Option<&Path>,
    bin: &Path,
    repo_tag: &str,
) -> String {
    let to = format!("{}/{repo_tag}", reg.host());
    let mut args = vec!["publish", bin.to_str().unwrap(), "--to", &to];
    if let Some(k) = key {
        args.extend(["--key", k.to_str().unwrap()]);
    }
    env.run_keyed(&args).succeeds().stdout.trim().to_string()
}

/// [`publish_bin`] of a [`hello_binary`] printing `greeting`.
pub fn publish_hello(
    env: &Env,
    reg: &TestRegistry,
    key: Option<&Path>,
    repo_tag: &str,
    greeting: &str,
) -> String {
    let bin = hello_binary(env.dir.path(), greeting);
    publish_bin(env, reg, key, &bin, repo_tag)
}
