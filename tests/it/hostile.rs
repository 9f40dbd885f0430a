//! Hostile images pushed over raw HTTP to a real registry: the install ends safely, nothing is
//! written outside the rootfs, and the previous state survives.

use crate::harness::*;

fn hello_layer(env: &Env) -> Vec<u8> {
    let bin = std::fs::read(hello_binary(env.dir.path(), "hi")).unwrap();
    gzip(
        &RawTar::new()
            .dir("bin/")
            .file("bin/hello", 0o755, &bin)
            .finish(),
    )
}

fn all_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn traversal_symlink_and_hardlink_escapes_never_touch_the_host() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), "original").unwrap();
    let o = outside.display().to_string();
    let evil = RawTar::new()
        .file("../../../escape-dotdot", 0o644, b"x")
        .file(&format!("{o}/abs-escape"), 0o644, b"x")
        .symlink("l", &o)
        .file("l/through-symlink", 0o644, b"x")
        .symlink("v", &format!("{o}/victim"))
        .file("v", 0o644, b"overwritten through symlink")
        .hardlink("hl", &format!("{o}/victim"))
        .hardlink("hl2", "../../../../../../../etc/passwd")
        .file("suid", 0o4755, b"x")
        .special("fifo", tar::EntryType::Fifo)
        .special("dev", tar::EntryType::Char)
        .finish();
    push_raw_image(
        &reg,
        "evil/tool",
        "1",
        &[(hello_layer(&env), TAR_GZ), (gzip(&evil), TAR_GZ)],
        "/bin/hello",
    );
    let r = env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "evil",
        &format!("{}/evil/tool:1", reg.host()),
    ]);
    assert!(
        r.code == SUCCESS || r.code == code(ExitKind::Verification),
        "safe outcome is install-with-escapes-neutralised or a verification error, got {}\n{}",
        r.code,
        r.stderr
    );
    assert_eq!(
        all_files(&outside),
        vec!["victim".to_string()],
        "nothing created outside"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "original"
    );
    assert!(!env.dir.path().join("escape-dotdot").exists());
    if r.code == SUCCESS {
        let root = env.home().join("packages/evil/current/rootfs");
        for p in all_files(&root) {
            let m = std::fs::symlink_metadata(root.join(&p)).unwrap();
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            assert!(
                !m.file_type().is_fifo() && !m.file_type().is_char_device(),
                "{p} is a special file"
            );
            assert_eq!(
                m.permissions().mode() & 0o7000,
                0,
                "{p} kept setuid/setgid/sticky"
            );
        }
        assert_eq!(env.run_tool("evil", &[]).succeeds().stdout, "hi\n");
    }
}

#[test]
fn whiteouts_apply_across_layers_only_inside_the_rootfs() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let l1 = gzip(
        &RawTar::new()
            .dir("a/")
            .file("a/foo", 0o644, b"foo")
            .dir("b/")
            .file("b/bar", 0o644, b"bar")
            .file("keep", 0o644, b"k")
            .finish(),
    );
    let l2 = gzip(
        &RawTar::new()
            .file(".wh.a", 0o644, b"")
            .file("a/baz", 0o644, b"baz")
            .file(".wh.keep", 0o644, b"")
            .finish(),
    );
    push_raw_image(
        &reg,
        "wh/tool",
        "1",
        &[(hello_layer(&env), TAR_GZ), (l1, TAR_GZ), (l2, TAR_GZ)],
        "/bin/hello",
    );
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "wh",
        &format!("{}/wh/tool:1", reg.host()),
    ])
    .succeeds();
    let root = env.home().join("packages/wh/current/rootfs");
    assert!(root.join("a/baz").exists());
    assert!(root.join("b/bar").exists());
    assert!(
        !root.join("a/foo").exists(),
        "whited-out dir content from the lower layer is gone"
    );
    assert!(!root.join("keep").exists());
    assert!(
        all_files(&root).iter().all(|p| !p.contains(".wh.")),
        "whiteout markers are never emitted"
    );
}

#[test]
fn decompression_bomb_stops_at_the_cap() {
    let env = Env::new();
    let reg = TestRegistry::start();
    // 64 MiB of zeros compresses to a few dozen KiB.
    let zeros = vec![0u8; 64 << 20];
    let bomb = gzip(&RawTar::new().file("bomb", 0o644, &zeros).finish());
    assert!(bomb.len() < 1 << 20);
    push_raw_image(
        &reg,
        "bomb/tool",
        "1",
        &[(hello_layer(&env), TAR_GZ), (bomb, TAR_GZ)],
        "/bin/hello",
    );
    env.write_user_config("[limits]\nmax_file_bytes = 1048576\n");
    let r = env
        .run(&[
            "install",
            "--allow-unsigned",
            &format!("{}/bomb/tool:1", reg.host()),
        ])
        .fails_with(ExitKind::Verification);
    assert!(r.stderr.contains("limit"), "{}", r.stderr);
    assert!(!env.home().join("packages/tool").exists());
}

#[test]
fn limits_apply_to_layers_reused_from_the_cache() {
    let env = Env::new();
    let reg = TestRegistry::start();
    // 8 MiB of zeros: a tiny blob that unpacks big.
    let big = gzip(
        &RawTar::new()
            .file("big", 0o644, &vec![0u8; 8 << 20])
            .finish(),
    );
    push_raw_image(
        &reg,
        "cached/tool",
        "1",
        &[(hello_layer(&env), TAR_GZ), (big, TAR_GZ)],
        "/bin/hello",
    );
    let image = format!("{}/cached/tool:1", reg.host());
    // Installed once with no limits: both layers are now in the layer cache.
    env.run(&["install", "--allow-unsigned", &image]).succeeds();
    // The system layer lowers the caps; the same layers, reused, must still be counted.
    for (limit, what) in [
        ("max_file_bytes = 1048576", "max_file_bytes"),
        ("max_total_bytes = 4194304", "max_total_bytes"),
        ("max_entries = 1", "max_entries"),
    ] {
        env.write_system_config(&format!("[limits]\n{limit}\n"));
        let name = format!("again-{what}");
        let r = env
            .run(&["install", "--allow-unsigned", "--name", &name, &image])
            .fails_with(ExitKind::Verification);
        assert!(r.stderr.contains(what), "{what}: {}", r.stderr);
        assert!(!env.home().join("bin").join(&name).exists());
    }
    env.write_system_config("");
    env.run(&["install", "--allow-unsigned", "--name", "again", &image])
        .succeeds();
}
