//! `gantry verify-bundle`: the Sigstore conformance client protocol for bundle verification.
//! Exit 0 only when the bundle verifies for the artifact under the given identity or key and
//! trusted root; any other outcome is a verification (or usage/IO) failure. It prints nothing
//! on success; the failure reason travels in the returned `Failure`.

use crate::exit::{Classify, ExitKind, Failure};
use crate::store::Home;
use crate::trust::bundle::{verify_bundle, Artifact, BundlePolicy};
use crate::trust::{PublicKey, TrustRoot};
use std::path::{Path, PathBuf};

/// Arguments of `gantry verify-bundle`, in the conformance suite's order.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyBundleArgs {
    /// Verify against the Sigstore staging instance (not supported: always fails closed).
    #[arg(long)]
    pub staging: bool,
    /// The Sigstore bundle (JSON) to verify.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Expected certificate SAN (exact match).
    #[arg(long, requires = "certificate_oidc_issuer", conflicts_with = "key")]
    pub certificate_identity: Option<String>,
    /// Expected OIDC issuer (exact match).
    #[arg(long, requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,
    /// PEM public key for key-signed bundles.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A `trusted_root.json` to use instead of the public-good root.
    #[arg(long)]
    pub trusted_root: Option<PathBuf>,
    /// The artifact path, or `sha256:HEX` of the artifact.
    pub file_or_digest: String,
}

/// Parses `sha256:` + 64 hex digits, unless a file of that name exists.
fn artifact(arg: &str) -> Result<Artifact, Failure> {
    if let Some(hex_part) = arg.strip_prefix("sha256:") {
        if hex_part.len() == 64
            && hex_part.bytes().all(|b| b.is_ascii_hexdigit())
            && !Path::new(arg).exists()
        {
            let mut d = [0u8; 32];
            hex::decode_to_slice(hex_part, &mut d).kind(ExitKind::Usage)?;
            return Ok(Artifact::Sha256(d));
        }
    }
    let bytes = std::fs::read(arg)
        .map_err(|e| Failure::new(ExitKind::Io, anyhow::anyhow!("reading artifact {arg}: {e}")))?;
    Ok(Artifact::Bytes(bytes))
}

/// Runs the command; `home` is `$GANTRY_HOME` (the public-good root is cached under it).
pub fn run(args: VerifyBundleArgs, home: &Home) -> Result<(), Failure> {
    if args.staging {
        return Err(Failure::msg(
            ExitKind::Usage,
            "--staging is not supported: pass the staging root with --trusted-root",
        ));
    }
    let policy =
        match (
            &args.key,
            &args.certificate_identity,
            &args.certificate_oidc_issuer,
        ) {
            (Some(k), None, None) => {
                let pem = std::fs::read(k).map_err(|e| {
                    Failure::new(
                        ExitKind::Io,
                        anyhow::anyhow!("reading key {}: {e}", k.display()),
                    )
                })?;
                BundlePolicy::Key(PublicKey::from_pem(&pem).kind(ExitKind::Usage)?)
            }
            (None, Some(san), Some(issuer)) => BundlePolicy::Identity {
                issuer: issuer.clone(),
                san: san.clone(),
            },
            _ => return Err(Failure::msg(
                ExitKind::Usage,
                "give either --key, or both --certificate-identity and --certificate-oidc-issuer",
            )),
        };
    let root = match &args.trusted_root {
        Some(p) => TrustRoot::from_file(p).kind(ExitKind::Verification)?,
        None => TrustRoot::public_good(&home.trust_cache(), false).kind(ExitKind::Verification)?,
    };
    let bundle = std::fs::read(&args.bundle).map_err(|e| {
        Failure::new(
            ExitKind::Io,
            anyhow::anyhow!("reading bundle {}: {e}", args.bundle.display()),
        )
    })?;
    let artifact = artifact(&args.file_or_digest)?;
    verify_bundle(&bundle, artifact, &policy, &root).map_err(|e| {
        Failure::new(
            ExitKind::Verification,
            anyhow::anyhow!("bundle {}: {e}", args.bundle.display()),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testdata::{CASES, PUBLIC_GOOD as ROOT};

    const BEACON: &str =
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

    fn args(case: &str, artifact: &str, root: Option<&str>) -> VerifyBundleArgs {
        VerifyBundleArgs {
            staging: false,
            bundle: format!("{CASES}/{case}/bundle.sigstore.json").into(),
            certificate_identity: Some(BEACON.into()),
            certificate_oidc_issuer: Some("https://token.actions.githubusercontent.com".into()),
            key: None,
            trusted_root: root.map(Into::into),
            file_or_digest: artifact.into(),
        }
    }

    #[test]
    fn digest_argument_only_when_not_a_file() {
        let hexd = "a".repeat(64);
        assert!(
            matches!(artifact(&format!("sha256:{hexd}")).unwrap(), Artifact::Sha256(d) if d == [0xaa; 32])
        );
        // Too short, or not hex: treated as a path, which does not exist.
        assert!(artifact("sha256:abcd").is_err());
        assert!(artifact(&format!("sha256:{}", "g".repeat(64))).is_err());
        // A file literally named like a digest is read as a file.
        let dir = tempfile::tempdir().unwrap();
        let name = format!("sha256:{hexd}");
        std::fs::write(dir.path().join(&name), b"content").unwrap();
        let path = dir.path().join(&name);
        assert!(
            matches!(artifact(path.to_str().unwrap()).unwrap(), Artifact::Bytes(b) if b == b"content")
        );
    }

    #[test]
    fn verifies_and_refuses_through_the_command() {
        let home = tempfile::tempdir().unwrap();
        let a = format!("{CASES}/a.txt");
        run(
            args("happy-path-v0.3", &a, Some(ROOT)),
            &Home::new(home.path()),
        )
        .unwrap();
        let f = run(
            args("signature-mismatch_fail", &a, Some(ROOT)),
            &Home::new(home.path()),
        )
        .unwrap_err();
        assert_eq!(f.kind, ExitKind::Verification);
        // No --trusted-root, no cached public-good root, no network: fail closed.
        let f = run(args("happy-path-v0.3", &a, None), &Home::new(home.path())).unwrap_err();
        assert_eq!(f.kind, ExitKind::Verification);
        assert!(f.to_string().contains("gantry trust refresh"), "{f}");
        // A wrong identity or issuer is named plainly, never as a Rust `Some("…")`.
        let mut wrong = args("happy-path-v0.3", &a, Some(ROOT));
        wrong.certificate_identity = Some("https://example.com/other".into());
        let f = run(wrong, &Home::new(home.path())).unwrap_err();
        let shown = f.to_string();
        assert_eq!(f.kind, ExitKind::Verification);
        assert!(
            shown.contains(&format!(
                "certificate identity \"{BEACON}\" is not \"https://example.com/other\""
            )),
            "{shown}"
        );
        let mut wrong = args("happy-path-v0.3", &a, Some(ROOT));
        wrong.certificate_oidc_issuer = Some("https://issuer.example".into());
        let shown = run(wrong, &Home::new(home.path())).unwrap_err().to_string();
        assert!(
            shown.contains("is not \"https://issuer.example\"") && !shown.contains("Some("),
            "{shown}"
        );
        let mut no_policy = args("happy-path-v0.3", &a, Some(ROOT));
        no_policy.certificate_identity = None;
        no_policy.certificate_oidc_issuer = None;
        assert_eq!(
            run(no_policy, &Home::new(home.path())).unwrap_err().kind,
            ExitKind::Usage
        );
    }
}
