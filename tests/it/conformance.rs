//! The Sigstore conformance suite (`../shared/conformance/sigstore-conformance`), driven through
//! the built `gantry verify-bundle` exactly as the suite's harness would: every case directory,
//! in PATH mode (artifact file) and DIGEST mode (`sha256:HEX`). Cases without their own
//! `trusted_root.json` get the public-good root copy shipped with the suite. Prints every miss
//! with its reason and the score, and fails below `THRESHOLD`.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The score this implementation reaches (out of 140). Known misses: none.
const THRESHOLD: usize = 140;

const DEFAULT_IDENTITY: &str =
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn suite() -> PathBuf {
    PathBuf::from(conformance_path!("sigstore-conformance"))
}

fn read_opt(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The `verify-bundle` arguments for one case and mode, in the protocol's order.
fn case_args(dir: &Path, digest_mode: bool) -> Vec<String> {
    let assets = dir.parent().expect("case dir has a parent");
    let artifact = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        assets.join("a.txt")
    };
    let mut args = vec![
        "verify-bundle".to_string(),
        "--bundle".into(),
        dir.join("bundle.sigstore.json").display().to_string(),
    ];
    if dir.join("key.pub").exists() {
        args.extend(["--key".into(), dir.join("key.pub").display().to_string()]);
    } else {
        let identity = read_opt(dir, "identity").unwrap_or_else(|| DEFAULT_IDENTITY.into());
        let issuer = read_opt(dir, "issuer").unwrap_or_else(|| DEFAULT_ISSUER.into());
        args.extend([
            "--certificate-identity".into(),
            identity,
            "--certificate-oidc-issuer".into(),
            issuer,
        ]);
    }
    let root = if dir.join("trusted_root.json").exists() {
        dir.join("trusted_root.json")
    } else {
        suite().join("public-good-trusted_root.from-sigstore-python-4.5.1.json")
    };
    args.extend(["--trusted-root".into(), root.display().to_string()]);
    if digest_mode {
        let bytes = std::fs::read(&artifact).expect("artifact is readable");
        args.push(format!("sha256:{}", sha256_hex(&bytes)));
    } else {
        args.push(artifact.display().to_string());
    }
    args
}

#[test]
fn sigstore_conformance_suite() {
    let assets = suite().join("test/assets/bundle-verify");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&assets)
        .expect("the conformance suite is present")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("bundle.sigstore.json").exists())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 70, "expected 70 conformance cases");
    let home = tempfile::tempdir().expect("temp home");
    let (mut pass, mut total, mut misses) = (0, 0, Vec::new());
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let expect_ok = !name.ends_with("_fail");
        for digest_mode in [false, true] {
            total += 1;
            let out = Command::new(gantry_bin())
                .args(case_args(dir, digest_mode))
                .env("GANTRY_HOME", home.path())
                .output()
                .expect("gantry runs");
            if out.status.success() == expect_ok {
                pass += 1;
            } else {
                let mode = if digest_mode { "DIGEST" } else { "PATH" };
                misses.push(format!(
                    "{mode}-{name}: expected {}, got exit {:?}: {}",
                    if expect_ok { "success" } else { "failure" },
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    for m in &misses {
        println!("MISS {m}");
    }
    println!("sigstore conformance: {pass}/{total}");
    assert_eq!(total, 140);
    assert!(
        pass >= THRESHOLD,
        "conformance score {pass}/{total} is below {THRESHOLD}"
    );
}
