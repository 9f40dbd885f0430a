//! Third-party Sigstore bundles (sigstore-rs, sigstore-go, cosign, GitHub's `gh attestation`
//! fixtures under `../shared/conformance`) driven through the built `gantry verify-bundle`,
//! speaking the Sigstore conformance CLI protocol exactly as the suite's harness would. Every
//! case expected to verify sits next to a hostile twin (wrong digest, identity, issuer, or no
//! key) that must be refused, and each refusal must name the reason it was expected for, so a
//! twin cannot pass by failing for an unrelated cause. Exit 0 means valid; a refusal must be
//! the verification exit code (`ExitKind::Verification`), never a crash or a usage error.
//!
//! Left out of the table, and why:
//! * sigstore-go `examples/bundle-provenance.json`, `examples/bundle-publish.json` (ACCEPT with
//!   the key), `bundles/sigstore.js@2.0.0-provenance.sigstore.json` and `bundles/dsse.sigstore.json`:
//!   their in-toto subjects carry only a SHA-512 digest and the artifact files are not shipped.
//!   The protocol's digest form is `sha256:` only, so they cannot be driven through it. The
//!   artifact-independent refusals of that family (two DSSE signatures; a key-signed bundle
//!   checked for a certificate identity) are in the table.
//! * GitHub's sigstore-js 2.1.0 bundles in DIGEST mode: same reason (SHA-512 subject only); they
//!   run in PATH mode, where gantry hashes the file with SHA-512 itself.
//! * sigstore-go `bundles/public-key-validity.sigstore.json` (REJECT because the signing time is
//!   outside the key's `validFor` window in `public-key-validity.json`): `--key` takes the key
//!   from the command line, and gantry has no validity window for such keys. It does refuse the
//!   bundle, but for another reason (it carries no transparency-log entry), so it would prove
//!   nothing about the window.
//! * MANIFEST 2b's kubewarden 2021 signature, busybox and SUSE signatures are cosign signature
//!   layers, not bundles: their unit tests live in the trust module (`keyless.rs`, `cosign.rs`).

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Sigstore production root, newest copy (Rekor v2 log and 2025 TSA included).
const PUBLIC_GOOD: &str = conformance_path!(
    "sigstore-conformance/public-good-trusted_root.from-sigstore-python-4.5.1.json"
);
/// sigstore-go's copy of the same root.
const PUBLIC_GOOD_GO: &str =
    conformance_path!("sigstore-go/examples/trusted-root-public-good.json");
const GHA: &str = "https://token.actions.githubusercontent.com";
const GITHUB_OAUTH: &str = "https://github.com/login/oauth";

const KUBEWARDEN_SAN: &str =
    "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const KUBEWARDEN_DIGEST: &str = "c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const EMPTY_IMAGE_DIGEST: &str = "732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
const SIGSTORE_JS_SAN: &str =
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
const TOO_LEGIT_SAN: &str =
    "https://github.com/too-legit/attest/.github/workflows/integration.yml@refs/heads/main";
const REUSABLE_SAN: &str = "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d";
const ATTEST_DEMO_SAN: &str =
    "https://github.com/actions/attest-demo/.github/workflows/build-python.yml@refs/heads/main";

/// Who must have signed: a certificate identity, or a PEM key.
enum Signer<'a> {
    Identity(&'a str, &'a str),
    Key(&'a str),
}

/// What is passed as FILE_OR_DIGEST.
enum Subject<'a> {
    /// PATH mode: the artifact file.
    File(&'a str),
    /// DIGEST mode from a known hex SHA-256 (the artifact itself is an image, not a file).
    Sha256(&'a str),
    /// DIGEST mode computed from a shipped file, as the conformance harness does.
    Sha256Of(&'a str),
}

/// One row of the table: `reject` is `None` for ACCEPT, or the reason the refusal must give.
struct Case<'a> {
    name: &'a str,
    bundle: PathBuf,
    signer: Signer<'a>,
    root: &'a str,
    subject: Subject<'a>,
    reject: Option<&'a str>,
}

fn flip_first_nibble(hex_digest: &str) -> String {
    let first = if hex_digest.starts_with('0') {
        '1'
    } else {
        '0'
    };
    format!("{first}{}", &hex_digest[1..])
}

/// Writes each non-empty line of a `.jsonl` file as its own bundle file.
fn split_jsonl(path: &str, dir: &Path, stem: &str) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(path).expect("jsonl is readable");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let p = dir.join(format!("{stem}-{i}.sigstore.json"));
            std::fs::write(&p, line).expect("temp bundle is writable");
            p
        })
        .collect()
}

fn args(case: &Case) -> Vec<String> {
    let mut a = vec![
        "verify-bundle".to_string(),
        "--bundle".into(),
        case.bundle.display().to_string(),
    ];
    match case.signer {
        Signer::Identity(san, issuer) => a.extend([
            "--certificate-identity".into(),
            san.into(),
            "--certificate-oidc-issuer".into(),
            issuer.into(),
        ]),
        Signer::Key(pem) => a.extend(["--key".into(), pem.into()]),
    }
    a.extend(["--trusted-root".into(), case.root.into()]);
    a.push(match case.subject {
        Subject::File(f) => f.into(),
        Subject::Sha256(h) => format!("sha256:{h}"),
        Subject::Sha256Of(f) => format!(
            "sha256:{}",
            sha256_hex(&std::fs::read(f).expect("artifact"))
        ),
    });
    a
}

/// Runs one case; returns a description of the mismatch, if any.
fn check(case: &Case, home: &Path) -> Option<String> {
    let out = Command::new(gantry_bin())
        .args(args(case))
        .env("GANTRY_HOME", home)
        .output()
        .expect("gantry runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refused = code(ExitKind::Verification);
    match (case.reject, out.status.code()) {
        (None, Some(SUCCESS)) => None,
        (None, got) => Some(format!("expected ACCEPT, got {got:?}: {stderr}")),
        (Some(reason), Some(got)) if got == refused && stderr.contains(reason) => None,
        (Some(reason), got) => Some(format!(
            "expected REJECT (exit {refused}, \"{reason}\"), got {got:?}: {stderr}"
        )),
    }
}

fn file(p: &str) -> PathBuf {
    PathBuf::from(p)
}

fn cases(tmp: &Path) -> Vec<Case<'static>> {
    let identity = Signer::Identity;
    let rs_v03 = || file(conformance_path!("sigstore-rs/tests-data/bundle_v03.json"));
    let othername = || {
        file(conformance_path!(
            "sigstore-go/pkg/testing/data/bundles/othername.sigstore.json"
        ))
    };
    let scaffolding =
        conformance_path!("sigstore-go/pkg/testing/data/trusted-roots/scaffolding.json");
    let othername_digest = "bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b";
    let oci = || {
        file(conformance_path!(
            "cosign/pkg/cosign/testdata/oci-attestation.sigstore.json"
        ))
    };
    let pgi = conformance_path!("cosign/pkg/cosign/testdata/trusted_root_pgi.json");
    let sjs = || {
        file(conformance_path!(
            "gh-cli-attestation/sigstore-js-2.1.0-bundle.json"
        ))
    };
    let sjs_v01 = || {
        file(conformance_path!(
            "gh-cli-attestation/sigstore-js-2.1.0-bundle-v0.1.json"
        ))
    };
    let tgz = conformance_path!("gh-cli-attestation/sigstore-js-2.1.0.tgz");
    let gh_root = conformance_path!("gh-cli-attestation/trusted_root.json");
    let custom = || {
        file(conformance_path!(
            "gh-cli-attestation/custom-issuer.sigstore.json"
        ))
    };
    let custom_art = conformance_path!("gh-cli-attestation/custom-issuer-artifact");
    let reusable = || {
        file(conformance_path!(
            "gh-cli-attestation/reusable-workflow-attestation.sigstore.json"
        ))
    };
    let reusable_art = conformance_path!("gh-cli-attestation/reusable-workflow-artifact");
    let whl =
        conformance_path!("gh-cli-attestation/github_provenance_demo-0.0.12-py3-none-any.whl");
    let two = split_jsonl(
        conformance_path!("gh-cli-attestation/sigstore-js-2.1.0_with_2_bundles.jsonl"),
        tmp,
        "sjs-two",
    );
    assert_eq!(two.len(), 2, "the jsonl holds two bundles");
    let demo = |suffix: &str, path: &str| {
        let mut v = split_jsonl(path, tmp, &format!("demo{suffix}"));
        assert_eq!(v.len(), 1, "{path} holds one bundle");
        v.remove(0)
    };
    let demo_ok = demo(
        "",
        conformance_path!(
            "gh-cli-attestation/github_provenance_demo-0.0.12-py3-none-any-bundle.jsonl"
        ),
    );
    let demo_no_cert = demo("-missing-cert", conformance_path!("gh-cli-attestation/github_provenance_demo-0.0.12-py3-none-any-bundle-missing-cert.jsonl"));
    let demo_no_vm = demo("-missing-vm", conformance_path!("gh-cli-attestation/github_provenance_demo-0.0.12-py3-none-any-bundle-missing-verification-material.jsonl"));
    let wrong_kw = flip_first_nibble(KUBEWARDEN_DIGEST);
    let wrong_empty = flip_first_nibble(EMPTY_IMAGE_DIGEST);
    let wrong_other = flip_first_nibble(othername_digest);
    // Leaked on purpose: the table borrows these strings for the whole test.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let (wrong_kw, wrong_empty, wrong_other) =
        (leak(wrong_kw), leak(wrong_empty), leak(wrong_other));
    let not_subject = "not a subject of the in-toto statement";
    let c = |name, bundle, signer, root, subject, reject| Case {
        name,
        bundle,
        signer,
        root,
        subject,
        reject,
    };
    let mut v = vec![
        // 2b sigstore-rs: cosign v3 keyless DSSE signature of kubewarden-controller v1.34.0.
        c("rs-v03", rs_v03(), identity(KUBEWARDEN_SAN, GHA), PUBLIC_GOOD, Subject::Sha256(KUBEWARDEN_DIGEST), None),
        c("rs-v03 go-root", rs_v03(), identity(KUBEWARDEN_SAN, GHA), PUBLIC_GOOD_GO, Subject::Sha256(KUBEWARDEN_DIGEST), None),
        c("rs-v03 wrong digest", rs_v03(), identity(KUBEWARDEN_SAN, GHA), PUBLIC_GOOD, Subject::Sha256(wrong_kw), Some(not_subject)),
        c("rs-v03 wrong identity", rs_v03(),
            identity("https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.33.0", GHA),
            PUBLIC_GOOD, Subject::Sha256(KUBEWARDEN_DIGEST), Some("identity")),
        c("rs-v03 wrong issuer", rs_v03(), identity(KUBEWARDEN_SAN, GITHUB_OAUTH), PUBLIC_GOOD, Subject::Sha256(KUBEWARDEN_DIGEST), Some("identity")),
        // 2c sigstore-go: private instance, otherName SAN.
        c("go-othername", othername(), identity("foo!oidc.local", "http://oidc.local:8080"), scaffolding, Subject::Sha256(othername_digest), None),
        c("go-othername email-form SAN", othername(), identity("foo@oidc.local", "http://oidc.local:8080"), scaffolding, Subject::Sha256(othername_digest), Some("identity")),
        c("go-othername wrong digest", othername(), identity("foo!oidc.local", "http://oidc.local:8080"), scaffolding, Subject::Sha256(wrong_other), Some("digest")),
        c("go-othername key instead of identity", othername(), Signer::Key(conformance_path!("sigstore-go/examples/publish_key.pub")), scaffolding,
            Subject::Sha256(othername_digest), Some("signed by a certificate, but a key was required")),
        c("go-othername public-good root", othername(), identity("foo!oidc.local", "http://oidc.local:8080"), PUBLIC_GOOD, Subject::Sha256(othername_digest), Some("not in the trusted root")),
        // 2c artifact-independent refusals (their ACCEPT twins need the unshipped sha512 artifact).
        c("go-dsse-2sigs", file(conformance_path!("sigstore-go/pkg/testing/data/bundles/dsse-2sigs.sigstore.json")),
            identity("brian@dehamer.com", GITHUB_OAUTH), PUBLIC_GOOD, Subject::File(custom_art), Some("exactly one signature")),
        c("go-publish no key", file(conformance_path!("sigstore-go/examples/bundle-publish.json")),
            identity(SIGSTORE_JS_SAN, GHA), PUBLIC_GOOD, Subject::File(custom_art), Some("signed by a key")),
        // 2d cosign: public-good keyless attestation of go-containerregistry's empty image.
        c("cosign-oci-attestation pgi", oci(), identity("cody@soyland.com", GITHUB_OAUTH), pgi, Subject::Sha256(EMPTY_IMAGE_DIGEST), None),
        c("cosign-oci-attestation public-good", oci(), identity("cody@soyland.com", GITHUB_OAUTH), PUBLIC_GOOD, Subject::Sha256(EMPTY_IMAGE_DIGEST), None),
        c("cosign-oci-attestation wrong digest", oci(), identity("cody@soyland.com", GITHUB_OAUTH), pgi, Subject::Sha256(wrong_empty), Some(not_subject)),
        c("cosign-oci-attestation wrong SAN", oci(), identity("wrong@soyland.com", GITHUB_OAUTH), pgi, Subject::Sha256(EMPTY_IMAGE_DIGEST), Some("identity")),
        // 2f gh attestation: sigstore-js 2.1.0 (sha512 subject, PATH mode).
        c("gh-sjs v0.3", sjs(), identity(SIGSTORE_JS_SAN, GHA), PUBLIC_GOOD, Subject::File(tgz), None),
        c("gh-sjs v0.3 gh root", sjs(), identity(SIGSTORE_JS_SAN, GHA), gh_root, Subject::File(tgz), None),
        c("gh-sjs v0.3 wrong artifact", sjs(), identity(SIGSTORE_JS_SAN, GHA), PUBLIC_GOOD, Subject::File(custom_art), Some(not_subject)),
        c("gh-sjs v0.3 wrong identity", sjs(),
            identity("https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/evil", GHA),
            PUBLIC_GOOD, Subject::File(tgz), Some("identity")),
        // gh refuses v0.1 by its own policy; cryptographically it is valid, and the protocol accepts v0.1.
        c("gh-sjs v0.1", sjs_v01(), identity(SIGSTORE_JS_SAN, GHA), PUBLIC_GOOD, Subject::File(tgz), None),
        c("gh-sjs v0.1 wrong issuer", sjs_v01(), identity(SIGSTORE_JS_SAN, GITHUB_OAUTH), PUBLIC_GOOD, Subject::File(tgz), Some("identity")),
        c("gh-sjs invalid signature", file(conformance_path!("gh-cli-attestation/sigstoreBundle-invalid-signature.json")),
            identity(SIGSTORE_JS_SAN, GHA), PUBLIC_GOOD, Subject::File(tgz), Some("signature")),
        // GitHub-hosted: the custom issuer, and a reusable workflow.
        c("gh-custom-issuer", custom(), identity(TOO_LEGIT_SAN, "https://token.actions.githubusercontent.com/hammer-time"), PUBLIC_GOOD, Subject::File(custom_art), None),
        c("gh-custom-issuer digest", custom(), identity(TOO_LEGIT_SAN, "https://token.actions.githubusercontent.com/hammer-time"), PUBLIC_GOOD, Subject::Sha256Of(custom_art), None),
        c("gh-custom-issuer plain issuer", custom(), identity(TOO_LEGIT_SAN, GHA), PUBLIC_GOOD, Subject::File(custom_art), Some("identity")),
        c("gh-reusable", reusable(), identity(REUSABLE_SAN, GHA), PUBLIC_GOOD, Subject::File(reusable_art), None),
        c("gh-reusable digest", reusable(), identity(REUSABLE_SAN, GHA), PUBLIC_GOOD, Subject::Sha256Of(reusable_art), None),
        c("gh-reusable caller SAN", reusable(),
            identity("https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@refs/heads/main", GHA),
            PUBLIC_GOOD, Subject::File(reusable_art), Some("identity")),
        c("gh-reusable wrong digest", reusable(), identity(REUSABLE_SAN, GHA), PUBLIC_GOOD, Subject::Sha256Of(custom_art), Some(not_subject)),
        // GitHub's private Fulcio + TSA, not in the public-good root. Such bundles carry no
        // transparency-log entry (the GitHub TSA timestamp stands in), which the protocol's
        // verifier requires, so that is the first refusal gantry reaches.
        c("gh-demo private instance", demo_ok, identity(ATTEST_DEMO_SAN, GHA), PUBLIC_GOOD, Subject::File(whl), Some("no transparency log entry")),
        c("gh-demo missing cert", demo_no_cert.clone(), identity(ATTEST_DEMO_SAN, GHA), PUBLIC_GOOD, Subject::File(whl), Some("signed by a key")),
        c("gh-demo missing cert, with a key", demo_no_cert, Signer::Key(conformance_path!("sigstore-go/examples/publish_key.pub")), PUBLIC_GOOD,
            Subject::File(whl), Some("no messageSignature or dsseEnvelope")),
        c("gh-demo missing verification material", demo_no_vm, identity(ATTEST_DEMO_SAN, GHA), PUBLIC_GOOD, Subject::File(whl), Some("verificationMaterial")),
    ];
    for (i, b) in two.into_iter().enumerate() {
        let name = leak(format!("gh-sjs jsonl[{i}]"));
        let gh = leak(format!("gh-sjs jsonl[{i}] gh root"));
        let twin = leak(format!("gh-sjs jsonl[{i}] wrong artifact"));
        v.push(c(
            name,
            b.clone(),
            identity(SIGSTORE_JS_SAN, GHA),
            PUBLIC_GOOD,
            Subject::File(tgz),
            None,
        ));
        v.push(c(
            gh,
            b.clone(),
            identity(SIGSTORE_JS_SAN, GHA),
            gh_root,
            Subject::File(tgz),
            None,
        ));
        v.push(c(
            twin,
            b,
            identity(SIGSTORE_JS_SAN, GHA),
            PUBLIC_GOOD,
            Subject::File(whl),
            Some(not_subject),
        ));
    }
    v
}

#[test]
fn third_party_bundles_through_verify_bundle() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // An empty home: no cached public-good root can stand in for the one each case names.
    let home = tempfile::tempdir().expect("temp home");
    let table = cases(tmp.path());
    let mut misses = Vec::new();
    for case in &table {
        let verdict = if case.reject.is_some() {
            "REJECT"
        } else {
            "ACCEPT"
        };
        match check(case, home.path()) {
            None => println!("ok   {verdict} {}", case.name),
            Some(why) => {
                println!("MISS {verdict} {}: {why}", case.name);
                misses.push(case.name);
            }
        }
    }
    let accepts = table.iter().filter(|c| c.reject.is_none()).count();
    assert!(
        accepts >= 10 && table.len() - accepts >= 10,
        "the table lost cases"
    );
    assert!(
        misses.is_empty(),
        "{} of {} cases differ: {misses:?}",
        misses.len(),
        table.len()
    );
}
