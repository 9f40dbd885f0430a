//! Image manifests, indexes and configs as a hostile OCI layout serves them: the bytes are
//! `index.json` and, content-addressed, the manifest it names, so both the layout reader and
//! the manifest/index/config parsers see them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs");
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write");
    let digest = gantry::registry::sha256_digest(data);
    std::fs::write(blobs.join(gantry::registry::digest_hex(&digest)), data).expect("write");
    std::fs::write(dir.path().join("index.json"), data).expect("write");
    let Ok(layout) = gantry::layout::Layout::open(dir.path()) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let platform = gantry::image::host_platform();
    for version in [
        gantry::source::ManifestRef::Digest(digest.clone()),
        gantry::source::ManifestRef::Tag("latest".into()),
    ] {
        let _ = rt.block_on(gantry::image::resolve(&layout, "fuzz", &version, &platform));
    }
});
