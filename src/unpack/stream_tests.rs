//! Hostile and edge-case layer streams for `unpack_layer`: digest and size mismatches, caps
//! against bombs, corrupt and truncated streams, smuggled PAX sizes, multi-member gzip and
//! multi-frame zstd, parallel layers sharing one budget, and tampered metadata on re-open. Each
//! failure case also checks that the partial layer dir is gone.

use super::record::{LayerEntry, UnpackedLayer, META_FILE};
use super::testutil::{gzip, sha256, unpack_blob, TarBuf};
use super::{unpack_layer, Budget, Compression, Limits, UnpackError};

fn simple() -> Vec<u8> {
    TarBuf::new()
        .dir("d", 0o755)
        .file("d/a", b"hello")
        .symlink("l", "d/a")
        .file("big", &vec![7u8; 600_000])
        .finish()
}

#[test]
fn happy_layer_round_trips_through_open() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = gzip(&simple());
    let l = unpack_blob(
        &blob,
        Compression::Gzip,
        &tmp.path().join("l"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(l.digest(), sha256(&blob));
    assert_eq!(l.entries().len(), 4);
    let again = UnpackedLayer::open(&tmp.path().join("l")).unwrap();
    assert_eq!(again.entries(), l.entries());
    let LayerEntry::File { body, size, .. } = &l.entries()[3] else {
        panic!("{:?}", l.entries())
    };
    assert_eq!(*size, 600_000);
    assert_eq!(
        std::fs::read(l.body_path(*body)).unwrap(),
        vec![7u8; 600_000]
    );
}

#[test]
fn wrong_digest_or_size_is_rejected_and_dir_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = gzip(&simple());
    let dest = tmp.path().join("l");
    let budget = Budget::new(&Limits::default());
    let wrong = sha256(b"something else");
    let e = unpack_layer(
        &blob[..],
        &wrong,
        blob.len() as u64,
        Compression::Gzip,
        &dest,
        &Limits::default(),
        &budget,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::DigestMismatch { .. }), "{e}");
    assert!(!dest.exists());
    let right = sha256(&blob);
    for size in [blob.len() as u64 - 1, blob.len() as u64 + 1, 10] {
        let e = unpack_layer(
            &blob[..],
            &right,
            size,
            Compression::Gzip,
            &dest,
            &Limits::default(),
            &budget,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                UnpackError::SizeMismatch { .. }
                    | UnpackError::Truncated { .. }
                    | UnpackError::Decompress { .. }
            ),
            "{size}: {e}"
        );
        assert!(!dest.exists());
    }
    // Extra bytes after a complete gzip+tar still count: a longer blob is refused.
    let mut longer = blob.clone();
    longer.extend_from_slice(b"trailing");
    let e = unpack_layer(
        &longer[..],
        &sha256(&longer),
        blob.len() as u64,
        Compression::Gzip,
        &dest,
        &Limits::default(),
        &budget,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::SizeMismatch { .. }), "{e}");
    let e = unpack_layer(
        &blob[..],
        "sha512:00",
        blob.len() as u64,
        Compression::Gzip,
        &dest,
        &Limits::default(),
        &budget,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::BadDigest(_)));
    assert!(!dest.exists(), "nothing created for a bad digest");
}

#[test]
fn existing_dest_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep"), b"").unwrap();
    assert!(unpack_blob(&simple(), Compression::None, tmp.path(), &Limits::default()).is_err());
    assert!(tmp.path().join("keep").exists());
}

#[test]
fn caps_stop_bombs_early() {
    let tmp = tempfile::tempdir().unwrap();
    // 64 MiB of zeros in one file gzips to ~64 KiB; a 4 MiB total cap stops it after ~4 MiB.
    let mut h = tar::Header::new_gnu();
    h.set_path("bomb").unwrap();
    h.set_size(64 << 20);
    h.set_cksum();
    let mut t = TarBuf::new();
    t.raw(&h, &vec![0u8; 64 << 20]);
    let blob = gzip(&t.finish());
    assert!(blob.len() < 1 << 20);
    let limits = Limits {
        max_total_bytes: 4 << 20,
        ..Limits::default()
    };
    let e = unpack_blob(&blob, Compression::Gzip, &tmp.path().join("a"), &limits).unwrap_err();
    assert!(
        matches!(&e, UnpackError::Limit(m) if m.contains("max_total_bytes")),
        "{e}"
    );
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let e = unpack_blob(&blob, Compression::Gzip, &tmp.path().join("b"), &limits).unwrap_err();
    assert!(
        matches!(&e, UnpackError::Limit(m) if m.contains("max_file_bytes")),
        "{e}"
    );
    let mut many = TarBuf::new();
    for i in 0..50 {
        many.file(&format!("f{i}"), b"");
    }
    let limits = Limits {
        max_entries: 20,
        ..Limits::default()
    };
    let e = unpack_blob(
        &many.finish(),
        Compression::None,
        &tmp.path().join("c"),
        &limits,
    )
    .unwrap_err();
    assert!(
        matches!(&e, UnpackError::Limit(m) if m.contains("max_entries")),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "every partial dir removed"
    );
}

#[test]
fn budget_is_shared_by_parallel_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let mut t = TarBuf::new();
            for j in 0..300 {
                t.file(&format!("l{i}/f{j}"), format!("{i}-{j}").as_bytes());
            }
            gzip(&t.finish())
        })
        .collect();
    let limits = Limits::default();
    let budget = Budget::new(&limits);
    std::thread::scope(|s| {
        for (i, b) in blobs.iter().enumerate() {
            let (budget, limits, dest) = (&budget, &limits, tmp.path().join(format!("l{i}")));
            s.spawn(move || {
                unpack_layer(
                    &b[..],
                    &sha256(b),
                    b.len() as u64,
                    Compression::Gzip,
                    &dest,
                    limits,
                    budget,
                )
                .unwrap()
            });
        }
    });
    assert_eq!(budget.entries_used(), 1200);
    let layers: Vec<UnpackedLayer> = (0..4)
        .map(|i| UnpackedLayer::open(&tmp.path().join(format!("l{i}"))).unwrap())
        .collect();
    let refs: Vec<&UnpackedLayer> = layers.iter().collect();
    let files = super::compose(&refs, &tmp.path().join("root")).unwrap();
    assert_eq!(files.len(), 1204);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("root/l3/f299")).unwrap(),
        "3-299"
    );
    // Same budget again: the image total is now over a tight cap.
    let tight = Budget::new(&Limits {
        max_entries: 1000,
        ..Limits::default()
    });
    let errs: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = blobs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let (tight, limits, dest) = (&tight, &limits, tmp.path().join(format!("t{i}")));
                s.spawn(move || {
                    unpack_layer(
                        &b[..],
                        &sha256(b),
                        b.len() as u64,
                        Compression::Gzip,
                        &dest,
                        limits,
                        tight,
                    )
                    .is_err()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        errs.iter().any(|e| *e),
        "1200 entries cannot fit a 1000-entry budget"
    );
}

#[test]
fn tampered_metadata_is_refused_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("l");
    unpack_blob(&simple(), Compression::None, &dest, &Limits::default()).unwrap();
    let meta = std::fs::read_to_string(dest.join(META_FILE)).unwrap();
    std::fs::write(
        dest.join(META_FILE),
        meta.replace("\"d/a\"", "\"../../etc/a\""),
    )
    .unwrap();
    assert!(matches!(
        UnpackedLayer::open(&dest),
        Err(UnpackError::BadLayerDir { .. })
    ));
    std::fs::write(dest.join(META_FILE), b"{").unwrap();
    assert!(matches!(
        UnpackedLayer::open(&dest),
        Err(UnpackError::BadLayerDir { .. })
    ));
    assert!(UnpackedLayer::open(tmp.path()).is_err());
}

#[test]
fn pax_size_smuggled_symlink_is_never_seen() {
    // tar-rs pax_size_smuggled_symlink: PAX size=2048 against a header size of 8 hides a
    // symlink header inside the file data. Honouring PAX size, the symlink is file content.
    let mut t = TarBuf::new();
    t.pax(&[("size", b"2048")]);
    let mut h = tar::Header::new_ustar();
    h.set_path("file").unwrap();
    h.set_size(8);
    h.set_cksum();
    let mut data = vec![b'A'; 512];
    let mut sym = tar::Header::new_ustar();
    sym.set_path("smuggled").unwrap();
    sym.set_entry_type(tar::EntryType::Symlink);
    sym.set_link_name("/etc/shadow").unwrap();
    sym.set_size(0);
    sym.set_cksum();
    data.extend_from_slice(sym.as_bytes());
    data.resize(2048, b'B');
    t.raw(&h, &data);
    let tmp = tempfile::tempdir().unwrap();
    let l = unpack_blob(
        &t.finish(),
        Compression::None,
        &tmp.path().join("l"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(l.entries().len(), 1);
    assert!(matches!(&l.entries()[0], LayerEntry::File { path, size: 2048, .. } if path == "file"));
}

#[test]
fn incorrect_and_overflowing_sizes_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    // handling_incorrect_file_size: the header claims more data than the archive holds.
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.set_size(4096);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[1u8; 1000]);
    let e = unpack_blob(
        &bytes,
        Compression::None,
        &tmp.path().join("a"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::Tar { .. }), "{e}");
    // header_size_overflow: a base-256 size beyond u64 / i64.
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.as_old_mut().size = [
        0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    h.set_cksum();
    let e = unpack_blob(
        h.as_bytes(),
        Compression::None,
        &tmp.path().join("b"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::Tar { .. }), "{e}");
    // A 16 GiB declared file with little data is capped by size, never allocated.
    h.set_size(16 << 30);
    h.set_cksum();
    let e = unpack_blob(
        h.as_bytes(),
        Compression::None,
        &tmp.path().join("c"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::Limit(_)), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn huge_pax_header_is_refused_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("././@PaxHeader").unwrap();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(1 << 30);
    h.set_cksum();
    let e = unpack_blob(
        h.as_bytes(),
        Compression::None,
        &tmp.path().join("a"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, UnpackError::Tar { reason, .. } if reason.contains("too long")),
        "{e}"
    );
}

#[test]
fn corrupt_streams_fail_without_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = simple();
    let gz = gzip(&tar);
    let zs = zstd::encode_all(&tar[..], 1).unwrap();
    let mut cases: Vec<(Vec<u8>, Compression)> = vec![
        (tar[..700].to_vec(), Compression::None),
        // Cut inside d/a's 5 data bytes (a cut in its padding is a complete last entry).
        (tar[..1024 + 3].to_vec(), Compression::None),
        (gz[..gz.len() / 2].to_vec(), Compression::Gzip),
        (zs[..zs.len() / 2].to_vec(), Compression::Zstd),
        (b"not gzip at all".to_vec(), Compression::Gzip),
        (b"not zstd at all".to_vec(), Compression::Zstd),
        (tar.clone(), Compression::Gzip),
    ];
    let mut flipped = gz.clone();
    flipped[gz.len() / 2] ^= 0xff;
    cases.push((flipped, Compression::Gzip));
    let mut bad_sum = tar.clone();
    bad_sum[0] ^= 1;
    cases.push((bad_sum, Compression::None));
    for (i, (blob, c)) in cases.into_iter().enumerate() {
        let r = unpack_blob(
            &blob,
            c,
            &tmp.path().join(format!("x{i}")),
            &Limits::default(),
        );
        assert!(r.is_err(), "case {i} should fail");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn multi_member_gzip_and_multi_frame_zstd_decode_fully() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarBuf::new()
        .file("a", b"1")
        .file("b", &vec![2u8; 100_000])
        .file("c", b"3")
        .finish();
    let (p1, p2) = tar.split_at(700);
    let mut multi = gzip(p1);
    multi.extend(gzip(p2));
    let l = unpack_blob(
        &multi,
        Compression::Gzip,
        &tmp.path().join("g"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(l.entries().len(), 3);
    let mut frames = zstd::encode_all(p1, 3).unwrap();
    // A skippable frame (magic 0x184D2A50, 4-byte length) between data frames.
    frames.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
    frames.extend(zstd::encode_all(p2, 3).unwrap());
    let l = unpack_blob(
        &frames,
        Compression::Zstd,
        &tmp.path().join("z"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(l.entries().len(), 3);
    let LayerEntry::File { body, .. } = &l.entries()[2] else {
        panic!()
    };
    assert_eq!(std::fs::read(l.body_path(*body)).unwrap(), b"3");
}

#[test]
fn overlong_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "d/".repeat(2100) + "f";
    let mut t = TarBuf::new();
    t.pax(&[("path", long.as_bytes())]);
    t.file("short", b"");
    let e = unpack_blob(
        &t.finish(),
        Compression::None,
        &tmp.path().join("a"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, UnpackError::UnsafePath { reason, .. } if reason.contains("longer than")),
        "{e}"
    );
    let ok = "d/".repeat(1000) + "f";
    let mut t = TarBuf::new();
    t.pax(&[("path", ok.as_bytes())]);
    t.file("short", b"");
    let l = unpack_blob(
        &t.finish(),
        Compression::None,
        &tmp.path().join("b"),
        &Limits::default(),
    )
    .unwrap();
    assert!(matches!(&l.entries()[0], LayerEntry::File { path, .. } if *path == ok));
}

#[test]
fn a_last_entry_without_padding_or_end_blocks_is_complete() {
    // What umoci's `insert` writes: the last entry's data ends the stream.
    let tmp = tempfile::tempdir().unwrap();
    for (i, len) in [1usize, 100, 511, 512, 513, 5000].into_iter().enumerate() {
        let full = TarBuf::new()
            .file("a", b"first")
            .file("last", &vec![9u8; len])
            .finish();
        let header_end = 512 * 3; // a: header and data block; last: header
        let unpadded = &full[..header_end + len];
        let l = unpack_blob(
            unpadded,
            Compression::None,
            &tmp.path().join(format!("ok{i}")),
            &Limits::default(),
        )
        .unwrap();
        let LayerEntry::File { body, size, .. } = &l.entries()[1] else {
            panic!("{:?}", l.entries())
        };
        assert_eq!(*size as usize, len);
        assert_eq!(std::fs::read(l.body_path(*body)).unwrap(), vec![9u8; len]);
        // Padding cut half-way: still complete.
        let half = &full[..header_end + len + (512 - len % 512) % 512 / 2];
        unpack_blob(
            half,
            Compression::None,
            &tmp.path().join(format!("half{i}")),
            &Limits::default(),
        )
        .unwrap();
        // But data cut short is still an error.
        let cut = &full[..header_end + len - 1];
        let e = unpack_blob(
            cut,
            Compression::None,
            &tmp.path().join(format!("cut{i}")),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("unexpected end of archive inside entry data"),
            "{e}"
        );
    }
}
