//! The executable header reader (scripts, ELF, Mach-O, program headers).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gantry::elf::classify(data);
});
