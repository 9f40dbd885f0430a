//! X.509 leaf certificates (and a one-certificate chain) checked against the public-good root:
//! DER, extensions, SCTs, SANs.
#![no_main]
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
    let _ = gantry::trust::cert::verify_leaf_at(root(), data, &[], 1_700_000_000);
    let (a, b) = data.split_at(data.len() / 2);
    let _ = gantry::trust::cert::verify_leaf_at(root(), a, &[b.to_vec()], 1_700_000_000);
});
