//! DSSE envelopes and the in-toto statements inside them.
#![no_main]
use gantry::trust::dsse::{Envelope, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Envelope::parse(data);
    let _ = Statement::parse("application/vnd.in-toto+json", data);
});
