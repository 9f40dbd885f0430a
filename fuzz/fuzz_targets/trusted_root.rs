//! Sigstore `trusted_root.json` files: JSON, base64 DER keys and certificate chains, validity
//! windows.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gantry::trust::TrustRoot::from_json(data);
});
