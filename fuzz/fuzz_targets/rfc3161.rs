//! RFC 3161 timestamp responses and tokens (DER, CMS SignedData, TSTInfo) under the conformance
//! suite's trusted root, which lists timestamp authorities.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn root() -> &'static gantry::trust::TrustRoot {
    static ROOT: OnceLock<gantry::trust::TrustRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/sigstore-conformance/test/assets/bundle-verify/rekor2-happy-path/trusted_root.json");
        gantry::trust::TrustRoot::from_file(std::path::Path::new(p)).expect("conformance trusted root")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = gantry::trust::tsa::attest_timestamp(root(), data, b"signature");
});
