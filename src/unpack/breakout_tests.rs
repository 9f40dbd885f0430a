//! Hostile layers from the conformance MANIFEST section 4f (containerd TestBreakouts, dropzone's
//! extract tests) and the brief's symlink cases, generated in code. Each test puts a "host" tree
//! next to the rootfs (with a 0400 passwd), points the hostile links at it by absolute path, and
//! checks both outcomes: what lands inside the root, and that the host tree is byte-for-byte,
//! mode-for-mode and link-count-for-link-count unchanged.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::testutil::{build, tree, TarBuf};
use super::UnpackError;
use crate::facts::FileType;

struct Host {
    tmp: tempfile::TempDir,
    /// Absolute host dir the hostile links aim at.
    host: PathBuf,
}

type Snapshot = Vec<(String, Vec<u8>, u32, u64)>;

impl Host {
    fn new() -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        fs::create_dir_all(host.join("etc")).unwrap();
        fs::write(host.join("etc/passwd"), b"root:x:0:0 host secret\n").unwrap();
        fs::write(host.join("etc/whitedout"), b"host file\n").unwrap();
        fs::set_permissions(host.join("etc/passwd"), fs::Permissions::from_mode(0o400)).unwrap();
        Host { tmp, host }
    }

    /// The host path as a link target string.
    fn abs(&self, rel: &str) -> String {
        format!("{}/{rel}", self.host.display())
    }

    /// Where an absolute host path lands once re-rooted inside the rootfs.
    fn in_root(&self, rel: &str) -> PathBuf {
        self.root()
            .join(self.host.strip_prefix("/").unwrap())
            .join(rel)
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("rootfs")
    }

    fn snapshot(&self) -> Snapshot {
        tree(&self.host)
            .into_iter()
            .map(|p| {
                let full = self.host.join(&p);
                let m = fs::symlink_metadata(&full).unwrap();
                let data = if m.is_file() {
                    fs::read(&full).unwrap_or_default()
                } else {
                    Vec::new()
                };
                (p, data, m.permissions().mode(), m.nlink())
            })
            .collect()
    }

    /// Builds the layers and checks the host is untouched whatever the outcome.
    fn run(&self, layers: &[Vec<u8>]) -> Result<Vec<crate::facts::FileEntry>, UnpackError> {
        let before = self.snapshot();
        let r = build(self.tmp.path(), layers);
        assert_eq!(before, self.snapshot(), "host tree changed");
        let names: Vec<String> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n == "host" || n == "rootfs" || n.starts_with("layer")),
            "stray {names:?}"
        );
        r
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn symlink_absolute_then_write_through_lands_in_root() {
    let h = Host::new();
    let l = TarBuf::new()
        .symlink("localetc", &h.abs("etc"))
        .file("localetc/unbroken", b"in root")
        .finish();
    h.run(&[l]).unwrap();
    assert_eq!(read(&h.in_root("etc/unbroken")), "in root");
    assert!(fs::symlink_metadata(h.root().join("localetc"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn symlink_up_and_out_and_chains_are_clamped() {
    let h = Host::new();
    let up = format!("../../../../../../../../../../..{}", h.abs("etc"));
    let l = TarBuf::new()
        .dir("dummy", 0o755)
        .symlink("dummy/localetc", &up)
        .file("dummy/localetc/up", b"1")
        .symlink("chain1", &h.abs(""))
        .symlink("chain2", "chain1/etc")
        .symlink("chain3", "./dummy/../chain2")
        .file("chain3/chained", b"2")
        .file("chain3/passwd", b"in-root passwd, not the host's")
        .finish();
    h.run(&[l]).unwrap();
    assert_eq!(read(&h.in_root("etc/up")), "1");
    assert_eq!(read(&h.in_root("etc/chained")), "2");
    assert_eq!(
        read(&h.in_root("etc/passwd")),
        "in-root passwd, not the host's"
    );
}

#[test]
fn symlink_from_earlier_layer_is_resolved_in_root_in_later_layer() {
    let h = Host::new();
    let l0 = TarBuf::new()
        .symlink("localetc", &h.abs("etc"))
        .symlink("loop", "loop")
        .finish();
    let l1 = TarBuf::new()
        .file("localetc/unbroken", b"later layer")
        .finish();
    h.run(&[l0.clone(), l1]).unwrap();
    assert_eq!(read(&h.in_root("etc/unbroken")), "later layer");

    // A symlink loop met as a component is refused, not followed forever.
    let h = Host::new();
    let l1 = TarBuf::new().file("loop/x", b"").finish();
    assert!(matches!(
        h.run(&[l0, l1]),
        Err(UnpackError::UnsafePath { .. })
    ));
}

#[test]
fn hardlinks_through_escaping_symlinks_link_in_root_or_fail() {
    for target in ["../../etc", "../../../../../../../etc"] {
        let h = Host::new();
        let rel = format!("../..{}", h.abs("").trim_end_matches('/'));
        let l = TarBuf::new()
            .dir("breakouts", 0o755)
            .symlink(
                "breakouts/d1",
                &format!(
                    "{rel}/{}",
                    target.trim_start_matches("../").trim_start_matches("../")
                ),
            )
            .file(
                &format!("{}/etc/passwd", h.abs("").trim_start_matches('/')),
                b"rootfs passwd",
            )
            .hardlink("breakouts/d1/passwd-link", "breakouts/d1/passwd")
            .finish();
        h.run(&[l]).unwrap();
        let inroot = h.in_root("etc/passwd");
        assert_eq!(read(&inroot), "rootfs passwd");
        assert_eq!(
            fs::metadata(&inroot).unwrap().nlink(),
            3,
            "layer body, passwd and the link share one inode"
        );
    }
    // Without an in-root target the hardlink fails; it never links the host file.
    let h = Host::new();
    let l = TarBuf::new()
        .symlink("d1", &h.abs("etc"))
        .hardlink("stolen", "d1/passwd")
        .finish();
    assert!(h.run(&[l]).is_err());
    assert!(!h.root().exists());
}

#[test]
fn direct_hardlink_targets_are_rerooted_or_rejected() {
    let h = Host::new();
    let l = TarBuf::new().hardlink("x", &h.abs("etc/passwd")).finish();
    assert!(
        h.run(&[l]).is_err(),
        "absolute target is re-rooted, and missing in the root"
    );
    for target in [
        "../../../../../etc/passwd",
        "../etc/passwd",
        "a/../../etc/passwd",
    ] {
        let h = Host::new();
        let l = TarBuf::new()
            .file("etc/passwd", b"p")
            .hardlink("x", target)
            .finish();
        let e = h.run(&[l]).unwrap_err();
        assert!(
            matches!(&e, UnpackError::UnsafePath { reason, .. } if reason.contains("hardlink target")),
            "{e}"
        );
    }
}

#[test]
fn traversal_names_are_rejected_and_absolute_names_rerooted() {
    for name in [
        "../escape",
        "a/../../escape",
        "..",
        "/////////..",
        "./../x",
        "/../tmp/rel_evil.txt",
        "../.wh.victim",
        "a/../../.wh..wh..opq",
    ] {
        let h = Host::new();
        let l = TarBuf::new().file("ok", b"").file(name, b"evil").finish();
        let e = h.run(&[l]).unwrap_err();
        assert!(e.to_string().contains("path"), "{name}: {e}");
        assert!(
            !h.tmp.path().join("layer0").exists(),
            "partial layer removed"
        );
    }
    let h = Host::new();
    let l = TarBuf::new()
        .file("/abs/path", b"a")
        .file("//tmp/two", b"b")
        .file("/./tmp/three", b"c")
        .file("", b"")
        .finish();
    h.run(&[l]).unwrap();
    assert_eq!(
        tree(&h.root()),
        ["abs", "abs/path", "tmp", "tmp/three", "tmp/two"]
    );
}

#[test]
fn odd_symlink_names() {
    let h = Host::new();
    let l = TarBuf::new().symlink("..", &h.abs("etc")).finish();
    assert!(
        h.run(&[l]).is_err(),
        "a symlink named '..' would replace the root's parent"
    );
    let h = Host::new();
    let l = TarBuf::new()
        .symlink("", &h.abs("etc"))
        .dir("localetc", 0o755)
        .symlink("localetc/sub/..", &h.abs("etc"))
        .symlink("slash/", "target")
        .finish();
    h.run(&[l]).unwrap();
    assert_eq!(tree(&h.root()), ["localetc", "slash"]);
    assert!(fs::symlink_metadata(h.root().join("localetc"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn dirs_and_symlinks_override_each_other() {
    let h = Host::new();
    let l0 = TarBuf::new()
        .dir("etc", 0o755)
        .file("etc/f", b"")
        .symlink("localetc", &h.abs("etc"))
        .file("orig", b"o")
        .finish();
    let l1 = TarBuf::new()
        .symlink("etc", &h.abs("etc"))
        .dir("localetc", 0o755)
        .file("localetc/x", b"x")
        .hardlink("localetc/orig", "orig")
        .finish();
    let l2 = TarBuf::new()
        .dir("localetc", 0o755)
        .file("localetc/orig", b"replaced")
        .finish();
    let files = h.run(&[l0, l1, l2]).unwrap();
    assert!(fs::symlink_metadata(h.root().join("etc"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(h.root().join("localetc"))
        .unwrap()
        .is_dir());
    assert_eq!(read(&h.root().join("localetc/x")), "x");
    // The hardlink is not shared afterwards: replacing one name leaves the other alone.
    assert_eq!(read(&h.root().join("orig")), "o");
    assert_eq!(read(&h.root().join("localetc/orig")), "replaced");
    assert!(files.iter().all(|f| f.path != "etc/f"));
}

#[test]
fn invalid_whiteout_names_are_rejected() {
    for name in [".wh...", "etc/.wh...", ".wh..", "etc/.wh.."] {
        let h = Host::new();
        let l = TarBuf::new().file(name, b"").finish();
        let e = h.run(&[l]).unwrap_err();
        assert!(
            matches!(&e, UnpackError::UnsafePath { reason, .. } if reason.contains("whiteout")),
            "{name}: {e}"
        );
    }
}

#[test]
fn whiteouts_through_symlinks_stay_in_root() {
    let h = Host::new();
    let l0 = TarBuf::new()
        .symlink("localetc", &h.abs("etc"))
        .file(
            &format!("{}/etc/whitedout", h.abs("").trim_start_matches('/')),
            b"in root",
        )
        .symlink("other", &h.abs("etc"))
        .symlink("dead", "/nonexistent-dir")
        .dir("etc", 0o755)
        .finish();
    let l1 = TarBuf::new()
        .file("localetc/.wh.whitedout", b"")
        .file(".wh.other", b"")
        .file("dead/.wh.x", b"")
        .file("dne/../.wh.etc", b"")
        .file(".wh.etc/somefile", b"ordinary")
        .finish();
    let files = h.run(&[l0, l1]).unwrap();
    assert!(
        !h.in_root("etc/whitedout").exists(),
        "whited out through the in-root symlink"
    );
    assert!(h.in_root("etc").is_dir());
    assert!(
        fs::symlink_metadata(h.root().join("other")).is_err(),
        "the symlink itself is removed"
    );
    assert!(fs::symlink_metadata(h.root().join("dead"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!h.root().join("etc").exists());
    assert_eq!(read(&h.root().join(".wh.etc/somefile")), "ordinary");
    assert!(files.iter().any(|f| f.path == ".wh.etc/somefile"));
}

#[test]
fn hardlinking_a_symlink_links_the_symlink_and_chmods_nothing() {
    let h = Host::new();
    let l = TarBuf::new()
        .symlink("passwd", &h.abs("etc/passwd"))
        .hardlink("hardlink", "passwd")
        .symlink("s", "target-made-later")
        .hardlink("h2", "s")
        .file("target-made-later", b"t")
        .finish();
    let files = h.run(&[l]).unwrap();
    assert!(fs::symlink_metadata(h.root().join("hardlink"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(h.root().join("h2"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::metadata(h.host.join("etc/passwd"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );
    assert_eq!(
        files
            .iter()
            .find(|f| f.path == "hardlink")
            .unwrap()
            .file_type,
        FileType::Hardlink
    );
}

#[test]
fn dropzone_devices_fifos_skipped_setuid_dropped() {
    let h = Host::new();
    let l = TarBuf::new()
        .dir("bin", 0o755)
        .file_mode("bin/su", b"x", 0o4755)
        .file_mode("bin/sg", b"x", 0o2755)
        .dir("tmp", 0o1777)
        .special("dev/null", tar::EntryType::Char)
        .special("dev/sda", tar::EntryType::Block)
        .special("fifo", tar::EntryType::Fifo)
        .file("after", b"still extracted")
        .finish();
    let files = h.run(&[l]).unwrap();
    assert_eq!(tree(&h.root()), ["after", "bin", "bin/sg", "bin/su", "tmp"]);
    let su = files.iter().find(|f| f.path == "bin/su").unwrap();
    assert_eq!((su.mode, su.original_mode), (0o755, 0o4755));
    let tmp = files.iter().find(|f| f.path == "tmp").unwrap();
    assert_eq!((tmp.mode, tmp.original_mode), (0o777, 0o1777));
    for p in ["bin/su", "bin/sg", "tmp"] {
        assert_eq!(
            fs::metadata(h.root().join(p)).unwrap().permissions().mode() & 0o7000,
            0,
            "{p}"
        );
    }
}
