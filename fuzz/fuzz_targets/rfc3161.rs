//! RFC 3161 timestamp responses and tokens (DER, CMS SignedData, TSTInfo) under the conformance
//! suite's trusted root, which lists timestamp authorities.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod shared;

fn root() -> &'static gantry::trust::TrustRoot {
    shared::trust_root(
        "sigstore-conformance/test/assets/bundle-verify/rekor2-happy-path/trusted_root.json",
    )
}

fuzz_target!(|data: &[u8]| {
    let _ = gantry::trust::tsa::attest_timestamp(root(), data, b"signature");
});
