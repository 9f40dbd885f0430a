//! Every file of the third-party tar corpora (conformance MANIFEST section 4) through the real
//! unpacker, checked against the outcome the MANIFEST gives: error vs. read OK, the entries and
//! metadata named there, whiteout results after compose, and nothing outside the root.

use std::collections::BTreeMap;
use std::path::Path;

use super::record::LayerEntry;
use super::testutil::{sha256, tree, unpack_blob};
use super::{compose, unpack_layer, Budget, Compression, Limits, UnpackError, UnpackedLayer};

const BASE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/tar-corpora"
);

fn blob(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{BASE}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn compression_of(rel: &str) -> Compression {
    if rel.ends_with(".zst") {
        Compression::Zstd
    } else if rel.ends_with(".gz") || rel.ends_with(".tgz") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Unpacks one corpus file into a fresh temp dir (kept alive with the result).
fn unpack(rel: &str, limits: &Limits) -> (tempfile::TempDir, Result<UnpackedLayer, UnpackError>) {
    let tmp = tempfile::tempdir().unwrap();
    let r = unpack_blob(
        &blob(rel),
        compression_of(rel),
        &tmp.path().join("layer"),
        limits,
    );
    if r.is_err() {
        assert!(
            !tmp.path().join("layer").exists(),
            "{rel}: partial layer dir left behind"
        );
    }
    (tmp, r)
}

fn ok(rel: &str) -> (tempfile::TempDir, UnpackedLayer) {
    let (tmp, r) = unpack(rel, &Limits::default());
    let l = r.unwrap_or_else(|e| panic!("{rel} must read OK: {e}"));
    (tmp, l)
}

fn err(rel: &str) -> UnpackError {
    match unpack(rel, &Limits::default()).1 {
        Ok(l) => panic!("{rel} must fail, read {:?}", l.entries()),
        Err(e) => e,
    }
}

fn paths(l: &UnpackedLayer) -> Vec<&str> {
    l.entries()
        .iter()
        .map(|e| match e {
            LayerEntry::Dir { path, .. }
            | LayerEntry::File { path, .. }
            | LayerEntry::Symlink { path, .. }
            | LayerEntry::Hardlink { path, .. }
            | LayerEntry::Whiteout { path } => path.as_str(),
            LayerEntry::Opaque { dir } => dir.as_str(),
        })
        .collect()
}

fn file<'a>(l: &'a UnpackedLayer, p: &str) -> &'a LayerEntry {
    l.entries()
        .iter()
        .find(|e| matches!(e, LayerEntry::File { path, .. } if path == p))
        .unwrap_or_else(|| panic!("no file {p}"))
}

/// Composes a single layer and checks everything landed inside the rootfs.
fn compose_one(tmp: &Path, l: &UnpackedLayer) -> Vec<crate::facts::FileEntry> {
    let files = compose(&[l], &tmp.join("rootfs")).unwrap();
    let mut top: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["layer", "rootfs"],
        "nothing created next to the rootfs"
    );
    files
}

#[test]
fn tar_rs_archives() {
    for f in [
        "simple_missing_last_header.tar",
        "empty_filename.tar",
        "pax_size.tar",
        "pax.tar",
        "pax2.tar",
        "biguid_gnu.tar",
        "biguid_pax.tar",
        "sparse.tar",
        "sparse-1.tar",
        "7z_long_path.tar",
        "link.tar",
        "duplicate_dirs.tar",
        "xattrs.tar",
        "directory.tar",
        "reading_files.tar",
        "simple.tar",
        "file_times.tar",
        "spaces.tar",
    ] {
        let (tmp, l) = ok(&format!("tar-rs/{f}"));
        compose_one(tmp.path(), &l);
    }
    let (_t, l) = ok("tar-rs/simple_missing_last_header.tar");
    assert_eq!(paths(&l), ["a", "b", "c"]);
    let (_t, l) = ok("tar-rs/spaces.tar");
    assert!(matches!(
        file(&l, "a"),
        LayerEntry::File {
            mode: 0o777,
            mtime: 0o12440016664,
            ..
        }
    ));
    let (_t, l) = ok("tar-rs/pax_size.tar");
    assert!(matches!(file(&l, "test"), LayerEntry::File { size: 4, .. }));
    let (_t, l) = ok("tar-rs/empty_filename.tar");
    assert!(
        l.entries().is_empty(),
        "an empty name is the root itself: nothing written"
    );
    let (_t, l) = ok("tar-rs/link.tar");
    assert!(l.entries().iter().any(|e| matches!(e, LayerEntry::Symlink { path, target, .. } if path == "lnk" && target == "file")));
    // Unpacking link.tar twice: the second layer's entries replace the first's.
    let tmp = tempfile::tempdir().unwrap();
    let a = unpack_blob(
        &blob("tar-rs/link.tar"),
        Compression::None,
        &tmp.path().join("a"),
        &Limits::default(),
    )
    .unwrap();
    compose(&[&a, &a], &tmp.path().join("rootfs")).unwrap();
    assert_eq!(
        std::fs::read_link(tmp.path().join("rootfs/lnk")).unwrap(),
        Path::new("file")
    );
    // The sparse file contents: data chunks in place, holes read as zeros.
    let (_t, l) = ok("tar-rs/sparse.tar");
    let LayerEntry::File { body, size, .. } = file(&l, "sparse_begin.txt") else {
        unreachable!()
    };
    let data = std::fs::read(l.body_path(*body)).unwrap();
    assert_eq!(data.len() as u64, *size);
    assert!(data.starts_with(b"test"), "{:?}", &data[..16]);
    assert!(data[4096..].iter().all(|b| *b == 0));
}

#[test]
fn tar_rs_sparse_large_is_capped_not_allocated() {
    let e = unpack("tar-rs/sparse-large.tar", &Limits::default())
        .1
        .unwrap_err();
    assert!(
        matches!(&e, UnpackError::Limit(m) if m.contains("max_file_bytes")),
        "{e}"
    );
    // With the caps lifted it is written as a sparse file: the logical size, next to no blocks.
    let lifted = Limits {
        max_file_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        max_entries: 10,
    };
    let (_t, l) = unpack("tar-rs/sparse-large.tar", &lifted);
    let l = l.unwrap();
    let LayerEntry::File { body, size, .. } = file(&l, "huge") else {
        unreachable!()
    };
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(l.body_path(*body)).unwrap();
    assert_eq!(m.len(), *size);
    assert!(
        m.blocks() * 512 < 64 << 20,
        "{} bytes allocated",
        m.blocks() * 512
    );
}

#[test]
fn go_archive_tar_must_error() {
    for f in [
        "neg-size.tar",
        "issue10968.tar",
        "issue11169.tar",
        "issue12435.tar",
        "pax-bad-hdr-file.tar",
        "pax-bad-mtime-file.tar",
        "pax-nul-xattrs.tar",
        "pax-nul-path.tar",
    ] {
        let e = err(&format!("go-archive-tar/{f}"));
        assert!(matches!(e, UnpackError::Tar { .. }), "{f}: {e}");
    }
    // issue6550.gz: a gzip stream that used to spin forever terminates with an error.
    let e = err("go-archive-tar/issue6550.gz");
    assert!(
        matches!(e, UnpackError::Decompress { .. } | UnpackError::Tar { .. }),
        "{e}"
    );
}

#[test]
fn go_archive_tar_must_read() {
    let expect: &[(&str, &[&str])] = &[
        ("gnu.tar", &["small.txt", "small2.txt"]),
        ("star.tar", &["small.txt", "small2.txt"]),
        ("v7.tar", &["small.txt", "small2.txt"]),
        ("pax.tar", &[]),
        ("ustar.tar", &[]),
        ("ustar-file-reg.tar", &["foo"]),
        ("pax-pos-size-file.tar", &["foo"]),
        ("pax-records.tar", &["file"]),
        (
            "pax-global-records.tar",
            &["file1", "file2", "file3", "file4"],
        ),
        ("pax-multi-hdrs.tar", &["PAX2/PAX2/long-path-name"]),
        ("pax-path-hdr.tar", &[]),
        ("gnu-multi-hdrs.tar", &["GNU2/GNU2/long-path-name"]),
        (
            "gnu-incremental.tar",
            &["test2", "test2/foo", "test2/sparse"],
        ),
        ("gnu-long-nul.tar", &["0123456789"]),
        ("gnu-utf8.tar", &[]),
        ("gnu-not-utf8.tar", &[]),
        ("nil-uid.tar", &["P1050238.JPG.log"]),
        ("invalid-go17.tar", &[]),
        ("xattrs.tar", &["small.txt", "small2.txt"]),
        ("trailing-slash.tar", &[]),
        ("file-and-dir.tar", &["small.txt", "dir"]),
        ("hardlink.tar", &["file.txt", "hard.txt"]),
        ("ustar-file-devs.tar", &["file"]),
        ("sparse-formats.tar", &[]),
        ("gnu-nil-sparse-data.tar", &["sparse.db"]),
        ("gnu-nil-sparse-hole.tar", &["sparse.db"]),
        ("pax-nil-sparse-data.tar", &["sparse.db"]),
        ("pax-nil-sparse-hole.tar", &["sparse.db"]),
        ("hdr-only.tar", &[]),
        ("writer.tar", &["small.txt", "small2.txt", "link.txt"]),
    ];
    for (f, want) in expect {
        let (tmp, l) = ok(&format!("go-archive-tar/{f}"));
        if !want.is_empty() {
            assert_eq!(&paths(&l), want, "{f}");
        }
        compose_one(tmp.path(), &l);
    }
    // hdr-only.tar: devices and FIFOs are left out, never written.
    let (_t, l) = ok("go-archive-tar/hdr-only.tar");
    assert!(l.skipped() >= 3);
    // Every sparse format decodes to the same bytes as the GNU one.
    let (_t, l) = ok("go-archive-tar/sparse-formats.tar");
    let bodies: Vec<Vec<u8>> = l
        .entries()
        .iter()
        .filter_map(|e| match e {
            LayerEntry::File { path, body, .. } if path.starts_with("sparse-") => {
                Some(std::fs::read(l.body_path(*body)).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 4);
    assert!(
        bodies.iter().all(|b| b == &bodies[0] && b.len() == 200),
        "sparse formats disagree"
    );
    let (_t, l) = ok("go-archive-tar/gnu-long-nul.tar");
    assert_eq!(
        paths(&l),
        ["0123456789"],
        "long name truncated at the first NUL"
    );
}

#[test]
fn go_archive_tar_huge_sizes_are_never_allocated() {
    for f in [
        "gnu-sparse-big.tar",
        "pax-sparse-big.tar",
        "writer-big.tar",
        "writer-big-long.tar",
    ] {
        let e = err(&format!("go-archive-tar/{f}"));
        assert!(
            matches!(&e, UnpackError::Limit(m) if m.contains("max_file_bytes")),
            "{f}: {e}"
        );
    }
    // Without the per-file cap, the 16 GiB headers hit the end of the data instead.
    let lifted = Limits {
        max_file_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        ..Limits::default()
    };
    for f in ["writer-big.tar", "writer-big-long.tar"] {
        let e = unpack(&format!("go-archive-tar/{f}"), &lifted)
            .1
            .unwrap_err();
        assert!(
            matches!(&e, UnpackError::Tar { reason, .. } if reason.contains("unexpected end")),
            "{f}: {e}"
        );
    }
}

#[test]
fn cpython_testtar() {
    let (tmp, l) = ok("cpython/testtar.tar");
    assert!(l.skipped() >= 3, "blk, chr and fifo entries are skipped");
    assert!(l.entries().iter().any(
        |e| matches!(e, LayerEntry::Symlink { path, target, .. } if path == "ustar/linktest2/symtype" && target == "../linktest1/regtype")
    ));
    assert!(paths(&l).contains(&"misc/eof"));
    let files = compose_one(tmp.path(), &l);
    assert!(files.iter().all(|f| !f.path.contains("fifotype")
        && !f.path.contains("blktype")
        && !f.path.contains("chrtype")));
    let e = err("cpython/recursion.tar");
    assert!(matches!(e, UnpackError::Tar { .. }), "{e}");
}

#[test]
fn libarchive_fatal_and_hostile() {
    for f in [
        "test_read_format_tar_V_negative_size.tar",
        "test_read_format_tar_invalid_pax_size.tar",
        "test_read_filter_gzip_recursive.gz",
        "test_read_too_many_filters.gz",
        "test_read_format_tar_pax_g_large.tar",
        "test_read_format_tar_acl_oob_read.tar",
    ] {
        err(&format!("libarchive/{f}"));
    }
    // 12 bytes that look like zstd must not loop.
    let raw = blob("libarchive/test_read_filter_zstd_raw_loop");
    let tmp = tempfile::tempdir().unwrap();
    assert!(unpack_blob(
        &raw,
        Compression::Zstd,
        &tmp.path().join("l"),
        &Limits::default()
    )
    .is_err());
}

#[test]
fn libarchive_must_read() {
    let six = ["f1", "f2", "f3", "d1/f1", "d1/f2", "d1/f3"];
    for f in [
        "test_compat_zstd_1.tar.zst",
        "test_compat_zstd_2.tar.zst",
        "test_compat_gzip_1.tgz",
        "test_compat_gzip_2.tgz",
    ] {
        let (tmp, l) = ok(&format!("libarchive/{f}"));
        let mut got = paths(&l);
        got.retain(|p| *p != "d1");
        assert_eq!(got, six, "{f}");
        compose_one(tmp.path(), &l);
    }
    let (_t, l) = ok("libarchive/test_read_format_tar_concatenated.tar");
    assert_eq!(paths(&l), ["file1"]);
    let (_t, l) = ok("libarchive/test_read_format_tar_timestamp_overflow.tar");
    assert!(matches!(
        file(&l, "tmp/f.txt"),
        LayerEntry::File {
            mtime: 0o15155542402,
            ..
        }
    ));
    let (_t, l) = ok("libarchive/test_read_format_tar_pax_negative_time.tar");
    assert!(matches!(
        file(&l, "empty"),
        LayerEntry::File {
            mtime: -2146608000,
            ..
        }
    ));
    let (_t, l) = ok("libarchive/test_read_pax_empty_val_no_nl.tar");
    assert_eq!(paths(&l), ["empty"]);
    let (_t, l) = ok("libarchive/test_read_format_tar_empty_filename.tar");
    assert!(
        l.entries().is_empty(),
        "an empty dir name is the root: not written"
    );
    let (tmp, l) = ok("libarchive/test_compat_tar_hardlink_1.tar");
    let files = compose_one(tmp.path(), &l);
    assert!(files.iter().any(|f| f.path == "xmcd-3.3.2/README"
        && f.link_target.as_deref() == Some("xmcd-3.3.2/docs_d/READMf")));
    for f in [
        "test_compat_gtar_1.tar",
        "test_compat_gtar_2.tar",
        "test_read_format_gtar_sparse_1_17_posix10_modified.tar",
        "test_read_format_gtar_sparse_reuse.tar",
        "test_read_format_tar_empty_with_gnulabel.tar",
        "test_pax_xattr_header_all.tar",
        "test_read_pax_xattr_schily.tar",
        "test_read_pax_xattr_rht_security_selinux.tar",
        "test_pax_filename_encoding.tar",
        "test_compat_tar_directory_1.tar",
    ] {
        let (tmp, l) = ok(&format!("libarchive/{f}"));
        compose_one(tmp.path(), &l);
    }
    let (_t, l) = ok("libarchive/test_read_format_gtar_sparse_1_17_posix10_modified.tar");
    assert_eq!(paths(&l), ["sparse", "sparse2", "non-sparse"]);
    assert!(matches!(
        file(&l, "sparse2"),
        LayerEntry::File { size: 99000001, .. }
    ));
}

/// Unpacks the layers of an OCI layout (first manifest of index.json) with their media types.
fn oci_layout_layers(dir: &str, tmp: &Path) -> Vec<UnpackedLayer> {
    let root = format!("{BASE}/go-containerregistry/oci-layouts/{dir}");
    let read_json = |d: &str| -> serde_json::Value {
        let hex = d.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(format!("{root}/blobs/sha256/{hex}")).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{root}/index.json")).unwrap()).unwrap();
    let manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let budget = Budget::new(&Limits::default());
    let descs = manifest["layers"].as_array().unwrap();
    descs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let digest = d["digest"].as_str().unwrap();
            let c = Compression::from_media_type(d["mediaType"].as_str().unwrap()).unwrap();
            let f = std::fs::File::open(format!("{root}/blobs/sha256/{}", &digest[7..])).unwrap();
            let size = d["size"].as_u64().unwrap();
            unpack_layer(
                f,
                digest,
                size,
                c,
                &tmp.join(format!("l{i}")),
                &Limits::default(),
                &budget,
            )
            .unwrap()
        })
        .collect()
}

fn compose_layout(dir: &str) -> (tempfile::TempDir, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let layers = oci_layout_layers(dir, tmp.path());
    let refs: Vec<&UnpackedLayer> = layers.iter().collect();
    let files = compose(&refs, &tmp.path().join("rootfs")).unwrap();
    let listed: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        listed,
        tree(&tmp.path().join("rootfs")),
        "file list matches the disk"
    );
    assert!(
        listed
            .iter()
            .all(|p| !p.split('/').any(|c| c.starts_with(".wh."))),
        "{dir}: whiteout emitted"
    );
    (tmp, listed)
}

#[test]
fn go_containerregistry_whiteouts_and_overwrites() {
    let (_t, files) = compose_layout("whiteout_image");
    assert!(
        files.contains(&"bar.txt".to_string()) && !files.contains(&"foo.txt".to_string()),
        "{files:?}"
    );

    let (_t, files) = compose_layout("whiteout_dir");
    for want in ["a/baz", "b/bar"] {
        assert!(files.contains(&want.to_string()), "{want} in {files:?}");
    }
    assert!(!files.contains(&"a/foo".to_string()), "{files:?}");

    let (tmp, _) = compose_layout("overwritten_file");
    let root = tmp.path().join("rootfs");
    let foo = std::fs::read(root.join("foo.txt")).unwrap();
    assert_eq!(foo, std::fs::read(root.join("bar.txt")).unwrap());
    assert!(!String::from_utf8_lossy(&foo).contains("foo"));
}

/// Reads a docker-save tarball with our own unpacker and returns each image's layer blobs.
fn docker_save_layers(rel: &str, tmp: &Path) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let outer = unpack_blob(
        &blob(rel),
        Compression::None,
        &tmp.join("outer"),
        &Limits::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut by_path: BTreeMap<&str, &LayerEntry> = BTreeMap::new();
    for e in outer.entries() {
        if let LayerEntry::File { path, .. } | LayerEntry::Symlink { path, .. } = e {
            by_path.insert(path, e);
        }
    }
    let read = |p: &str| -> Result<Vec<u8>, String> {
        let mut p = p.trim_start_matches("./").to_string();
        for _ in 0..4 {
            match by_path.get(p.as_str()) {
                Some(LayerEntry::File { body, .. }) => {
                    return std::fs::read(outer.body_path(*body)).map_err(|e| e.to_string())
                }
                // Shared layers are symlinks relative to the link's dir.
                Some(LayerEntry::Symlink { target, path, .. }) => {
                    let dir = path.rsplit_once('/').map_or("", |d| d.0);
                    p = super::paths::clean(format!("{dir}/{target}").as_bytes())?
                        .ok_or("link to root")?;
                }
                _ => return Err(format!("{p} not in the tarball")),
            }
        }
        Err("symlink chain too long".into())
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&read("manifest.json")?).map_err(|e| e.to_string())?;
    let images = manifest.as_array().ok_or("manifest.json is not an array")?;
    images
        .iter()
        .map(|img| {
            img["Layers"]
                .as_array()
                .ok_or("no Layers")?
                .iter()
                .map(|l| read(l.as_str().unwrap_or("")))
                .collect()
        })
        .collect()
}

#[test]
fn go_containerregistry_docker_save_tarballs() {
    let tarballs = [
        "mutate/source_image.tar",
        "mutate/source_image_with_empty_layer_history.tar",
        "mutate/whiteout_image.tar",
        "mutate/whiteout_dir.tar",
        "mutate/overwritten_file.tar",
        "tarball/test_link.tar",
        "tarball/hello-world-v25.tar",
        "tarball/test_bundle.tar",
        "tarball/test_image_1.tar",
        "tarball/test_image_2.tar",
        "tarball/test_load_manifest.tar",
    ];
    for t in tarballs {
        let tmp = tempfile::tempdir().unwrap();
        let images = docker_save_layers(&format!("go-containerregistry/{t}"), tmp.path())
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(!images.is_empty(), "{t}");
        for (i, layers) in images.iter().enumerate() {
            let mut unpacked = Vec::new();
            for (j, b) in layers.iter().enumerate() {
                // Layers in docker-save tarballs are plain or gzip tars; the magic tells.
                let c = if b.starts_with(&[0x1f, 0x8b]) {
                    Compression::Gzip
                } else {
                    Compression::None
                };
                let dest = tmp.path().join(format!("i{i}l{j}"));
                let l = unpack_layer(
                    &b[..],
                    &sha256(b),
                    b.len() as u64,
                    c,
                    &dest,
                    &Limits::default(),
                    &Budget::new(&Limits::default()),
                );
                unpacked.push(l.unwrap_or_else(|e| panic!("{t} layer {j}: {e}")));
            }
            let refs: Vec<&UnpackedLayer> = unpacked.iter().collect();
            compose(&refs, &tmp.path().join(format!("rootfs{i}")))
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        }
        if t == "mutate/whiteout_image.tar" {
            assert_eq!(tree(&tmp.path().join("rootfs0")), ["bar.txt"]);
        }
    }
    for t in ["tarball/no_manifest.tar", "tarball/null_manifest.tar"] {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            docker_save_layers(&format!("go-containerregistry/{t}"), tmp.path()).is_err(),
            "{t} has no usable manifest"
        );
    }
    for t in [
        "crane/content.tar",
        "crane/content.tar.zst",
        "tarball/content.tar",
    ] {
        let (tmp, l) = ok(&format!("go-containerregistry/{t}"));
        assert_eq!(paths(&l), ["bat", "baz"]);
        compose_one(tmp.path(), &l);
    }
}

#[test]
fn bzip2_and_xz_corpus_files_are_not_layer_formats() {
    // pax-bad-hdr-large.tar.bz2 and testtar.tar.xz: no OCI media type maps to bzip2 or xz, so such
    // a layer is refused before any byte is read. The huge-PAX-header case itself is covered in
    // code by layer::tests::huge_pax_header_is_refused_without_reading_it.
    for mt in [
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        "application/vnd.oci.image.layer.v1.tar+xz",
    ] {
        assert!(Compression::from_media_type(mt).is_err());
    }
    assert!(Path::new(BASE)
        .join("go-archive-tar/pax-bad-hdr-large.tar.bz2")
        .exists());
}
