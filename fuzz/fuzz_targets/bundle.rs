//! Sigstore bundles (v0.1-v0.3: JSON, certificates, tlog entries, inclusion proofs, checkpoints,
//! DSSE, timestamps) verified against the public-good root.
#![no_main]
use gantry::trust::bundle::{verify_bundle, Artifact, BundlePolicy};
use libfuzzer_sys::fuzz_target;

mod shared;

fn root() -> &'static gantry::trust::TrustRoot {
    shared::trust_root(shared::PUBLIC_GOOD)
}

fuzz_target!(|data: &[u8]| {
    let policy = BundlePolicy::Identity {
        issuer: "https://github.com/login/oauth".into(),
        san: "someone@example.com".into(),
    };
    let _ = verify_bundle(data, Artifact::Bytes(b"a.txt".to_vec()), &policy, root());
    let _ = verify_bundle(data, Artifact::Sha256([7; 32]), &policy, root());
});
