//! Sigstore bundles (v0.1-v0.3: JSON, certificates, tlog entries, inclusion proofs, checkpoints,
//! DSSE, timestamps) verified against the public-good root.
#![no_main]
use gantry::trust::bundle::{verify_bundle, Artifact, BundlePolicy};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn root() -> &'static gantry::trust::TrustRoot {
    static ROOT: OnceLock<gantry::trust::TrustRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/sigstore-conformance/public-good-trusted_root.from-sigstore-python-4.5.1.json");
        gantry::trust::TrustRoot::from_file(std::path::Path::new(p)).expect("public-good root")
    })
}

fuzz_target!(|data: &[u8]| {
    let policy = BundlePolicy::Identity {
        issuer: "https://github.com/login/oauth".into(),
        san: "someone@example.com".into(),
    };
    let _ = verify_bundle(data, Artifact::Bytes(b"a.txt".to_vec()), &policy, root());
    let _ = verify_bundle(data, Artifact::Sha256([7; 32]), &policy, root());
});
