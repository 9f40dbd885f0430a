//! An air-gapped install: a signed and attested image is saved out of the loopback registry into
//! an OCI layout, the registry is stopped, and the image installs from the layout under the same
//! key policy; a layout tampered with afterwards is refused.

use crate::harness::*;

#[test]
fn save_then_install_offline_under_the_same_key_policy_and_refuse_a_tampered_layout() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key, pubkey) = keygen(&env, "k");
    let sbom = env.path("sbom.json");
    std::fs::write(
        &sbom,
        r#"{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app", "packages": [{"SPDXID": "SPDXRef-app", "name": "app", "licenseConcluded": "MIT"}]}"#,
    )
    .unwrap();
    let bin = hello_binary(env.dir.path(), "offline");
    let r = format!("{}/tools/app:1", reg.host());
    env.run_keyed(&[
        "publish",
        bin.to_str().unwrap(),
        "--to",
        &r,
        "--key",
        key.to_str().unwrap(),
        "--attest",
        sbom.to_str().unwrap(),
        "--predicate-type",
        "spdx",
    ])
    .succeeds();

    let dir = env.path("airgap");
    let saved = env
        .run(&["save", &r, "--to", &format!("oci:{}", dir.display())])
        .succeeds();
    assert!(
        saved.stdout.contains("2 attachment(s)"),
        "the .sig and the .att: {}",
        saved.stdout
    );
    let registry_host = reg.host();
    drop(reg);

    // The layout judged by the policy of the registry the images came from.
    env.run(&[
        "registry",
        "add",
        "corp",
        &format!("{registry_host}/tools"),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();
    let layout_ref = format!("oci:{}:1", dir.display());
    let refused = env
        .run(&["install", "--name", "app0", &layout_ref])
        .fails_with(ExitKind::Denied);
    assert!(
        refused.stderr.contains("no signature policy"),
        "{}",
        refused.stderr
    );
    env.run(&[
        "install",
        "--name",
        "app0",
        "--policy-from",
        "corp",
        &layout_ref,
    ])
    .succeeds();
    env.run(&[
        "install",
        "--name",
        "app0",
        "--policy-from",
        "nope",
        &layout_ref,
    ])
    .fails_with(ExitKind::Usage);

    env.run(&[
        "registry",
        "add",
        "airgap",
        &format!("oci:{}", dir.display()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();
    let layout_ref = format!("oci:{}:1", dir.display());
    env.run(&["install", "--name", "app", &layout_ref])
        .succeeds();
    assert_eq!(env.run_tool("app", &[]).succeeds().stdout, "offline\n");
    let v = env.run(&["verify", "--json", &layout_ref]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(doc["signatures"][0]["verified"], true, "{}", v.stdout);
    assert_eq!(
        doc["attestations"].as_array().unwrap().len(),
        1,
        "{}",
        v.stdout
    );

    // The same image as `cosign save` lays it out: no tags, a `kind` on each entry.
    let cosign_dir = env.path("cosign-saved");
    copy_dir(&dir, &cosign_dir);
    let mut idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    for m in idx["manifests"].as_array_mut().unwrap() {
        let name = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let kind = if name.ends_with(".sig") {
            "dev.cosignproject.cosign/sigs"
        } else if name.ends_with(".att") {
            "dev.cosignproject.cosign/atts"
        } else {
            "dev.cosignproject.cosign/image"
        };
        m["annotations"] = serde_json::json!({ "kind": kind });
    }
    std::fs::write(
        cosign_dir.join("index.json"),
        serde_json::to_vec(&idx).unwrap(),
    )
    .unwrap();
    env.run(&[
        "registry",
        "add",
        "cosigned",
        &format!("oci:{}", cosign_dir.display()),
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .succeeds();
    let cosign_ref = format!("oci:{}", cosign_dir.display());
    let v = env.run(&["verify", "--json", &cosign_ref]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(doc["signatures"][0]["verified"], true, "{}", v.stdout);
    assert_eq!(
        doc["attestations"].as_array().unwrap().len(),
        1,
        "{}",
        v.stdout
    );
    env.run(&["install", "--name", "app3", &cosign_ref])
        .succeeds();
    assert_eq!(env.run_tool("app3", &[]).succeeds().stdout, "offline\n");

    // Tampered afterwards: the layer no longer hashes to its digest.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let image = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "1")
        .unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(image["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let _ = std::fs::remove_dir_all(env.home().join("layers"));
    std::fs::create_dir_all(env.home().join("layers")).unwrap();
    env.run(&["install", "--name", "app2", &layout_ref])
        .fails_with(ExitKind::Verification);
    assert!(!env.home().join("bin/app2").exists());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
