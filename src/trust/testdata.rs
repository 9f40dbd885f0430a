//! Where the trust tests find their third-party material (the shared conformance folder beside
//! the repository), in one place. Compiled for tests only.

use super::TrustRoot;

/// The Sigstore conformance suite.
pub(crate) const CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/sigstore-conformance"
);

/// Its bundle-verify case directories.
pub(crate) const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/sigstore-conformance/test/assets/bundle-verify"
);

/// The public-good trusted root copy shipped with the suite.
pub(crate) const PUBLIC_GOOD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/sigstore-conformance/public-good-trusted_root.from-sigstore-python-4.5.1.json"
);

/// The public-good trusted root.
pub(crate) fn public_good() -> TrustRoot {
    TrustRoot::from_file(std::path::Path::new(PUBLIC_GOOD))
        .expect("public-good trusted root parses")
}

/// `shared!("dir/file")`: a path in the shared conformance folder, as a `&'static str`.
macro_rules! shared {
    ($p:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance/", $p)
    };
}
pub(crate) use shared;

/// `ci!("file")`: a path in the containers-image fixtures.
macro_rules! ci {
    ($p:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/containers-image/",
            $p
        )
    };
}
pub(crate) use ci;
