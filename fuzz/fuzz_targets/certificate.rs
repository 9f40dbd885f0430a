//! X.509 leaf certificates (and a one-certificate chain) checked against the public-good root:
//! DER, extensions, SCTs, SANs.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod shared;

fn root() -> &'static gantry::trust::TrustRoot {
    shared::trust_root(shared::PUBLIC_GOOD)
}

fuzz_target!(|data: &[u8]| {
    let _ = gantry::trust::cert::verify_leaf_at(root(), data, &[], 1_700_000_000);
    let (a, b) = data.split_at(data.len() / 2);
    let _ = gantry::trust::cert::verify_leaf_at(root(), a, &[b.to_vec()], 1_700_000_000);
});
