//! What several fuzz targets share: a trusted root from ../shared/conformance, read once.

use std::sync::OnceLock;

/// The trusted root at `rel` under ../shared/conformance (each target uses one).
pub fn trust_root(rel: &str) -> &'static gantry::trust::TrustRoot {
    static ROOT: OnceLock<gantry::trust::TrustRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance")
            .join(rel);
        gantry::trust::TrustRoot::from_file(&p).expect("conformance trusted root")
    })
}

/// The Sigstore public-good root shipped with the conformance suite.
#[allow(dead_code)] // not every target reads it
pub const PUBLIC_GOOD: &str =
    "sigstore-conformance/public-good-trusted_root.from-sigstore-python-4.5.1.json";
