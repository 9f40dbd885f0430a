//! End-to-end install tests against a real docker-registry on loopback.

use crate::harness::*;

#[test]
fn publish_install_run_list_remove() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let bin = hello_binary(env.dir.path(), "hello from gantry");
    let r = format!("{}/tools/hello:1.0", reg.host());
    let out = env
        .run(&[
            "publish",
            bin.to_str().unwrap(),
            "--to",
            &r,
            "--arg",
            "baked",
        ])
        .succeeds();
    let digest = out.stdout.trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // Unsigned: refused without the flag, nothing on disk.
    let denied = env.run(&["install", &r]).fails_with(ExitKind::Denied);
    assert!(
        denied.stderr.contains("--allow-unsigned"),
        "{}",
        denied.stderr
    );
    assert!(!env.home().join("bin/hello").exists());
    assert!(!env.home().join("packages/hello").exists());

    let ok = env.run(&["install", "--allow-unsigned", &r]).succeeds();
    assert!(
        ok.stdout.contains(&format!("installed hello {digest}")),
        "{}",
        ok.stdout
    );
    let run = env.run_tool("hello", &["a b", "$HOME"]).succeeds();
    assert_eq!(run.stdout, "hello from gantry [baked] [a b] [$HOME]\n");

    // The same digest again is a no-op.
    let again = env.run(&["install", "--allow-unsigned", &r]).succeeds();
    assert!(
        again.stdout.contains("already installed"),
        "{}",
        again.stdout
    );

    let list = env.run(&["list", "--json"]).succeeds();
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(v["schema"], "gantry.list/v1");
    let v = &v["packages"];
    assert_eq!(v[0]["name"], "hello");
    assert_eq!(v[0]["digest"], digest.as_str());
    assert_eq!(v[0]["reference"], r.as_str());
    assert_eq!(v[0]["pinned"], false);

    env.run(&["remove", "hello"]).succeeds();
    assert!(!env.home().join("bin/hello").exists());
    assert!(!env.home().join("packages/hello").exists());
    env.run(&["remove", "hello"]).fails_with(ExitKind::Usage);
}

#[test]
fn update_replaces_version_and_tampered_blob_keeps_previous() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let r = format!("{}/tools/hello:1.0", reg.host());
    let v1 = hello_binary(env.dir.path(), "v1");
    env.run(&["publish", v1.to_str().unwrap(), "--to", &r])
        .succeeds();
    env.run(&["install", "--allow-unsigned", &r]).succeeds();
    assert_eq!(env.run_tool("hello", &[]).stdout, "v1\n");

    // v2 is pushed, but its layer is corrupted in the registry's storage (a registry that lies).
    let v2 = hello_binary(env.dir.path(), "v2");
    env.run(&["publish", v2.to_str().unwrap(), "--to", &r])
        .succeeds();
    let manifest_digest = find_layer_digest(&reg, "tools/hello", "1.0");
    let blob = reg.blob_file(&manifest_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    // The tag moved: install refuses it, naming both digests and what to run.
    let moved = env
        .run(&["install", "--allow-unsigned", &r])
        .fails_with(ExitKind::Denied);
    assert!(
        moved.stderr.contains("now names sha256:")
            && moved.stderr.contains("as this home recorded it")
            && moved.stderr.contains("gantry update hello"),
        "{}",
        moved.stderr
    );
    let bad = env
        .run(&["update", "hello", "--yes"])
        .fails_with(ExitKind::Verification);
    assert!(
        bad.stderr.contains("tampered") || bad.stderr.contains("digest"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        env.run_tool("hello", &[]).stdout,
        "v1\n",
        "previous version still works"
    );
    assert!(env.staging_is_empty(), "no staging left");

    // A body cut short is a transfer failure (exit 5), not tampering: what arrived may be right.
    let v3 = hello_binary(env.dir.path(), "v3");
    env.run(&["publish", v3.to_str().unwrap(), "--to", &r])
        .succeeds();
    let blob = reg.blob_file(&find_layer_digest(&reg, "tools/hello", "1.0"));
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    let cut = env
        .run(&["update", "hello", "--yes"])
        .fails_with(ExitKind::Registry);
    assert!(
        cut.stderr.contains("transfer ended after"),
        "{}",
        cut.stderr
    );
    assert_eq!(
        env.run_tool("hello", &[]).stdout,
        "v1\n",
        "previous version still works"
    );
}

/// The digest of the first layer of repo:tag, read from the registry's storage.
fn find_layer_digest(reg: &TestRegistry, repo: &str, tag: &str) -> String {
    let link = reg.storage.path().join(format!(
        "data/docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}/current/link"
    ));
    let mdigest = std::fs::read_to_string(link).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob_file(mdigest.trim())).unwrap()).unwrap();
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn oci_layout_install_needs_no_registry() {
    let env = Env::new();
    let bin = hello_binary(env.dir.path(), "from layout");
    let dir = env.path("layout");
    let target = format!("oci:{}:2.0", dir.display());
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &target,
        "--compression",
        "zstd",
    ])
    .succeeds();
    env.run(&["install", "--allow-unsigned", "--name", "hl", &target])
        .succeeds();
    assert_eq!(env.run_tool("hl", &[]).stdout, "from layout\n");
}

#[test]
fn foreign_file_at_wrapper_path_is_never_overwritten() {
    let env = Env::new();
    let bin = hello_binary(env.dir.path(), "x");
    let target = format!("oci:{}:1", env.path("l").display());
    env.run(&["publish", bin.to_str().unwrap(), "--to", &target])
        .succeeds();
    std::fs::create_dir_all(env.home().join("bin")).unwrap();
    std::fs::write(env.home().join("bin/hello"), "#!/bin/sh\necho mine\n").unwrap();
    let r = env
        .run(&["install", "--allow-unsigned", &target])
        .fails_with(ExitKind::Io);
    assert!(r.stderr.contains("not a gantry wrapper"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(env.home().join("bin/hello")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    assert!(!env.home().join("packages/hello/current").exists());
}

#[test]
fn script_and_missing_entrypoints_are_refused_clearly() {
    let env = Env::new();
    let img = env.path("img");
    std::fs::create_dir_all(img.join("bin")).unwrap();
    std::fs::write(img.join("bin/tool.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let target = format!("oci:{}:1", env.path("l").display());
    env.run(&[
        "publish",
        img.to_str().unwrap(),
        "--entrypoint",
        "/bin/tool.sh",
        "--to",
        &target,
    ])
    .succeeds();
    let r = env
        .run(&["install", "--allow-unsigned", "--name", "tool", &target])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("is a script"), "{}", r.stderr);
    assert!(!env.home().join("bin/tool").exists());

    let target2 = format!("oci:{}:2", env.path("l").display());
    env.run(&[
        "publish",
        img.to_str().unwrap(),
        "--entrypoint",
        "/bin/nope",
        "--to",
        &target2,
    ])
    .succeeds();
    let r = env
        .run(&["install", "--allow-unsigned", "--name", "tool", &target2])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn dynamic_binary_runs_through_the_images_own_loader() {
    let env = Env::new();
    let img = env.path("img");
    let src = env.path("dyn");
    std::fs::create_dir_all(&src).unwrap();
    let bin = compile_c(
        &src,
        "dyn",
        "#include <stdio.h>\nint main(void){puts(\"dynamic ok\");return 0;}\n",
        false,
    );
    // Build a rootfs with the binary, its loader and libc, from the host's own copies.
    let ldd = std::process::Command::new("ldd")
        .arg(&bin)
        .output()
        .unwrap();
    std::fs::create_dir_all(img.join("usr/bin")).unwrap();
    std::fs::copy(&bin, img.join("usr/bin/dyn")).unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            let real = std::fs::canonicalize(p).unwrap();
            let dest = img.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&real, &dest).unwrap();
        }
    }
    let target = format!("oci:{}:1", env.path("l").display());
    env.run(&[
        "publish",
        img.to_str().unwrap(),
        "--entrypoint",
        "/usr/bin/dyn",
        "--to",
        &target,
    ])
    .succeeds();
    env.run(&["install", "--allow-unsigned", "--name", "dyn", &target])
        .succeeds();
    let launch = std::fs::read_to_string(env.home().join("packages/dyn/current/launch")).unwrap();
    assert!(launch.contains("--library-path"), "{launch}");
    assert_eq!(env.run_tool("dyn", &[]).succeeds().stdout, "dynamic ok\n");
}

#[test]
fn usage_and_registry_failures_have_their_exit_codes() {
    let env = Env::new();
    env.run(&["install", "--allow-unsigned", "127.0.0.1:1/x@sha256:zz"])
        .fails_with(ExitKind::Usage);
    // Nothing listens on port 1.
    let r = env
        .run(&["install", "--allow-unsigned", "127.0.0.1:1/x:1"])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "../evil",
        "oci:/nonexistent:1",
    ])
    .fails_with(ExitKind::Usage);
    // A name remove could not take without `--`.
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name=-rf",
        "oci:/nonexistent:1",
    ])
    .fails_with(ExitKind::Usage);
    let r = env
        .run(&["install", "--allow-unsigned", "oci:/nonexistent:1"])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("not an OCI image layout"), "{}", r.stderr);
}

#[test]
fn the_decision_is_recorded_before_the_install_is_visible() {
    let env = Env::new();
    let bin = hello_binary(env.dir.path(), "recorded");
    let t = format!("oci:{}:1", env.path("l").display());
    env.run(&["publish", bin.to_str().unwrap(), "--to", &t])
        .succeeds();
    // A log that cannot be appended to (a directory in its place): the install fails, nothing
    // becomes visible.
    std::fs::create_dir_all(env.home().join("decisions.jsonl")).unwrap();
    let r = env
        .run(&["install", "--allow-unsigned", "--name", "rec", &t])
        .fails_with(ExitKind::Io);
    assert!(
        r.stderr.contains("cannot record the decision")
            && r.stderr.contains("nothing was installed"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/rec").exists());
    assert!(!env.home().join("packages/rec/current").exists());
    assert!(env
        .run(&["list"])
        .succeeds()
        .stdout
        .contains("nothing installed"));
    // With the log back, the same install goes through and is recorded once.
    std::fs::remove_dir(env.home().join("decisions.jsonl")).unwrap();
    env.run(&["install", "--allow-unsigned", "--name", "rec", &t])
        .succeeds();
    let log = std::fs::read_to_string(env.home().join("decisions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("\"installed\""), "{log}");
}

#[test]
fn a_package_does_not_silently_change_origin() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let one = hello_binary(env.dir.path(), "from one");
    let two = hello_binary(env.dir.path(), "from two");
    for (bin, repo) in [
        (&one, "one/tool:1"),
        (&two, "two/tool:1"),
        (&two, "one/tool:2"),
    ] {
        env.run(&[
            "publish",
            bin.to_str().unwrap(),
            "--to",
            &format!("{}/{repo}", reg.host()),
        ])
        .succeeds();
    }
    let (a, b) = (
        format!("{}/one/tool:1", reg.host()),
        format!("{}/two/tool:1", reg.host()),
    );
    env.run(&["install", "--allow-unsigned", &a]).succeeds();
    let r = env
        .run(&["install", "--allow-unsigned", &b])
        .fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains(&format!("{}/one/tool", reg.host()))
            && r.stderr.contains(&format!("{}/two/tool", reg.host()))
            && r.stderr.contains("--replace"),
        "{}",
        r.stderr
    );
    assert_eq!(env.run_tool("tool", &[]).stdout, "from one\n");
    // Another tag of the same repository is the same origin.
    env.run(&[
        "install",
        "--allow-unsigned",
        &format!("{}/one/tool:2", reg.host()),
    ])
    .succeeds();
    // And --replace says yes.
    env.run(&["install", "--allow-unsigned", "--replace", &b])
        .succeeds();
    assert_eq!(env.run_tool("tool", &[]).stdout, "from two\n");
    // From a layout: another origin too.
    let t = format!("oci:{}:1", env.path("l").display());
    env.run(&["publish", one.to_str().unwrap(), "--to", &t])
        .succeeds();
    let r = env
        .run(&["install", "--allow-unsigned", "--name", "tool", &t])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("oci:"), "{}", r.stderr);
}

#[test]
fn a_layout_catalog_is_reachable_by_its_registry_name() {
    let env = Env::new();
    let bin = hello_binary(env.dir.path(), "from the catalog");
    let catalog = env.path("catalog");
    env.run(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &format!("oci:{}/tools:1", catalog.display()),
    ])
    .succeeds();
    env.run(&[
        "registry",
        "add",
        "cat",
        &format!("oci:{}", catalog.display()),
    ])
    .succeeds();
    // NAME/path:tag under an oci: entry is the layout DIR/path at that tag, governed by the entry.
    let r = env
        .run(&["install", "cat/tools:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("registry 'cat' has no signature policy"),
        "{}",
        r.stderr
    );
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "hello",
        "cat/tools:1",
    ])
    .succeeds();
    assert_eq!(env.run_tool("hello", &[]).stdout, "from the catalog\n");
}

#[test]
fn json_output_carries_its_schema_and_progress_comes_as_json_lines() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let r = format!("{}/tools/hello:1.0", reg.host());
    let v1 = hello_binary(env.dir.path(), "v1");
    env.run(&["publish", v1.to_str().unwrap(), "--to", &r])
        .succeeds();
    let out = env
        .run(&["install", "--allow-unsigned", "--json", &r])
        .succeeds();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.install/v1");
    assert_eq!(doc["outcome"], "installed");
    assert_eq!(doc["name"], "hello");
    let events: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for want in ["resolving", "resolved", "verdict", "committed"] {
        assert!(kinds.contains(&want), "{want} in {kinds:?}");
    }
    let v = env
        .run(&["verify", "--json", "--allow-unsigned", &r])
        .succeeds();
    let doc: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.verify/v1");
    let rm = env.run(&["remove", "--json", "hello"]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&rm.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.remove/v1");
}
