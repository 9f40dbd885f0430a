//! Registry configuration commands and configuration errors, as a user sees them.

use crate::harness::*;

#[test]
fn registry_add_list_remove_round_trip() {
    let env = Env::new();
    env.run(&[
        "registry",
        "add",
        "corp",
        "registry.corp.example:5000/team",
        "--default",
    ])
    .succeeds();
    let l = env.run(&["registry", "list"]).succeeds();
    assert!(
        l.stdout.contains("corp") && l.stdout.contains("(default)"),
        "{}",
        l.stdout
    );
    assert!(
        l.stdout.contains("chainguard"),
        "seeded registry present: {}",
        l.stdout
    );
    let cfg = std::fs::read_to_string(env.home().join("config.toml")).unwrap();
    assert!(cfg.contains("default_registry = \"corp\""), "{cfg}");
    env.run(&["registry", "remove", "corp"]).succeeds();
    env.run(&["registry", "remove", "corp"])
        .fails_with(ExitKind::Usage);
    env.run(&["registry", "add", "bad name", "x.example"])
        .fails_with(ExitKind::Usage);
}

#[test]
fn broken_config_is_an_error_naming_file_and_line_and_is_kept() {
    let env = Env::new();
    env.write_user_config("[registries.x]\nurl = \"a\"\nbogus = [\n");
    let p = env.home().join("config.toml");
    let r = env.run(&["registry", "list"]).fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains("config.toml") && r.stderr.contains("line"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "[registries.x]\nurl = \"a\"\nbogus = [\n"
    );
}

#[test]
fn system_layer_can_forbid_allow_unsigned() {
    let env = Env::new();
    env.write_system_config("forbid_allow_unsigned = true\n");
    let bin = hello_binary(env.dir.path(), "x");
    let t = format!("oci:{}:1", env.path("l").display());
    env.run(&["publish", bin.to_str().unwrap(), "--to", &t])
        .succeeds();
    let r = env
        .run(&["install", "--allow-unsigned", &t])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("forbidden by the system"), "{}", r.stderr);
}

#[test]
fn image_index_without_host_platform_lists_what_it_offers() {
    let env = Env::new();
    let dir = env.path("l");
    let bin = hello_binary(env.dir.path(), "x");
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--platform",
        "windows/arm64",
        "--to",
        &format!("oci:{}:w", dir.display()),
    ])
    .succeeds();
    // Wrap the single-platform manifest into an index.
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = &idx["manifests"][0];
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": {"os": "windows", "architecture": "arm64"}}]
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    std::fs::write(dir.join("blobs/sha256").join(&digest[7..]), &bytes).unwrap();
    let new_index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&new_index).unwrap(),
    )
    .unwrap();
    let r = env
        .run(&[
            "install",
            "--allow-unsigned",
            &format!("oci:{}:multi", dir.display()),
        ])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("windows/arm64"), "{}", r.stderr);
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let env = Env::new();
    env.run(&[
        "registry",
        "add",
        "corp",
        "registry.corp.example",
        "--default",
    ])
    .succeeds();
    for args in [
        &["registry", "list", "--json"][..],
        &["list", "--json"][..],
        &["registry", "list"][..],
    ] {
        let mut child = env
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before gantry writes
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(SUCCESS), "{args:?}: {stderr}");
    }
    // Both streams gone, on a command that fails: its own exit code, not a panic (101).
    let mut child = env
        .cmd(&["install", "--allow-unsigned", "oci:/nonexistent/layout:1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(code(ExitKind::Registry)));
}
