//! A layer blob (tar, or gzip/zstd by its magic) through the whole unpacker: PAX and GNU
//! headers, sparse maps, names, links, caps. The digest is the blob's own, so every input gets
//! past the digest check to the parsers.
#![no_main]
use gantry::registry::sha256_digest;
use gantry::unpack::{unpack_layer, Budget, Compression, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let compression = match data {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    };
    let limits = Limits {
        max_total_bytes: 16 << 20,
        max_entries: 4096,
        max_file_bytes: 4 << 20,
    };
    let budget = Budget::new(&limits);
    let dir = tempfile::tempdir().expect("tempdir");
    let _ = unpack_layer(
        data,
        &sha256_digest(data),
        data.len() as u64,
        compression,
        &dir.path().join("l"),
        &limits,
        &budget,
    );
});
