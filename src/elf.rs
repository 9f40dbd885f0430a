//! The little of an executable's header gantry reads: whether it is a script, an ELF or Mach-O
//! file for this host, and the ELF interpreter (dynamic loader) it names. The bytes are the
//! image's, so nothing here indexes, unwraps or does arithmetic unchecked.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// `#!` and the first line (at most 80 bytes).
    Script(String),
    /// A native executable for this host; `Some(offset, size)` locates its `PT_INTERP` string.
    Native { interp: Option<(u64, u64)> },
    /// Built for another machine (its name).
    WrongArch(String),
    /// Not something gantry can run (why).
    NotNative(&'static str),
}

fn bytes<const N: usize>(head: &[u8], at: u64) -> Option<[u8; N]> {
    let start = usize::try_from(at).ok()?;
    let end = start.checked_add(N)?;
    head.get(start..end)?.try_into().ok()
}

fn u16_at(head: &[u8], at: u64) -> Option<u16> {
    bytes::<2>(head, at).map(u16::from_le_bytes)
}

fn u32_at(head: &[u8], at: u64) -> Option<u32> {
    bytes::<4>(head, at).map(u32::from_le_bytes)
}

fn u64_at(head: &[u8], at: u64) -> Option<u64> {
    bytes::<8>(head, at).map(u64::from_le_bytes)
}

/// The host's ELF machine number and name.
pub fn host_machine() -> (u16, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => (62, "x86-64"),
        "aarch64" => (183, "aarch64"),
        "x86" => (3, "x86"),
        "arm" => (40, "arm"),
        "riscv64" => (243, "riscv64"),
        "s390x" => (22, "s390x"),
        "powerpc64" => (21, "ppc64"),
        other => (0, other),
    }
}

fn machine_name(m: u16) -> String {
    match m {
        62 => "x86-64".into(),
        183 => "aarch64".into(),
        3 => "x86".into(),
        40 => "arm".into(),
        243 => "riscv64".into(),
        22 => "s390x".into(),
        21 => "ppc64".into(),
        other => format!("ELF machine {other}"),
    }
}

/// Largest interpreter path accepted.
pub const MAX_INTERP: u64 = 4096;

/// Classifies the first bytes of a file (64 KiB are plenty: program headers live near the start).
pub fn classify(head: &[u8]) -> Header {
    if head.starts_with(b"#!") {
        let line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let shown = line.get(..line.len().min(80)).unwrap_or(&[]);
        return Header::Script(String::from_utf8_lossy(shown).into());
    }
    if cfg!(target_os = "macos") {
        if let (Some(0xfeed_facf), Some(cpu)) = (u32_at(head, 0), u32_at(head, 4)) {
            let ok = match std::env::consts::ARCH {
                "x86_64" => cpu == 0x0100_0007,
                "aarch64" => cpu == 0x0100_000c,
                _ => false,
            };
            return if ok {
                Header::Native { interp: None }
            } else {
                Header::WrongArch(format!("Mach-O cpu {cpu:#x}"))
            };
        }
    }
    if head.len() < 64 || !head.starts_with(b"\x7fELF") {
        return Header::NotNative("not an ELF file");
    }
    let class64 = match head.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Header::NotNative("bad ELF class"),
    };
    if head.get(5) != Some(&1) {
        return Header::NotNative("big-endian ELF");
    }
    let Some(e_type) = u16_at(head, 16) else {
        return Header::NotNative("truncated ELF header");
    };
    if e_type != 2 && e_type != 3 {
        return Header::NotNative("ELF file is not an executable");
    }
    let machine = u16_at(head, 18).unwrap_or(0);
    let (host, _) = host_machine();
    if machine != host || class64 != cfg!(target_pointer_width = "64") {
        return Header::WrongArch(machine_name(machine));
    }
    let table = if class64 {
        (u64_at(head, 32), u16_at(head, 54), u16_at(head, 56))
    } else {
        (
            u32_at(head, 28).map(u64::from),
            u16_at(head, 42),
            u16_at(head, 44),
        )
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = table else {
        return Header::NotNative("truncated ELF header");
    };
    let entry_len: u64 = if class64 { 56 } else { 32 };
    if u64::from(phentsize) < entry_len && phnum > 0 {
        return Header::NotNative("bad program header size");
    }
    for i in 0..u64::from(phnum.min(256)) {
        let Some(off) = i
            .checked_mul(u64::from(phentsize))
            .and_then(|o| o.checked_add(phoff))
        else {
            return Header::NotNative("truncated program headers");
        };
        let Some(p_type) = u32_at(head, off) else {
            return Header::NotNative("truncated program headers");
        };
        if p_type != 3 {
            continue;
        }
        let (offset, size) = if class64 {
            (
                off.checked_add(8).and_then(|o| u64_at(head, o)),
                off.checked_add(32).and_then(|o| u64_at(head, o)),
            )
        } else {
            (
                off.checked_add(4)
                    .and_then(|o| u32_at(head, o))
                    .map(u64::from),
                off.checked_add(16)
                    .and_then(|o| u32_at(head, o))
                    .map(u64::from),
            )
        };
        return match (offset, size) {
            (Some(o), Some(s)) if s > 0 && s <= MAX_INTERP => Header::Native {
                interp: Some((o, s)),
            },
            _ => Header::NotNative("bad interpreter header"),
        };
    }
    Header::Native { interp: None }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn own_header() -> Vec<u8> {
        let mut f = std::fs::read("/proc/self/exe").unwrap();
        f.truncate(64 * 1024);
        f
    }

    #[test]
    fn this_test_binary_is_native() {
        assert!(matches!(classify(&own_header()), Header::Native { .. }));
    }

    #[test]
    fn hostile_headers_are_refused_without_panicking() {
        let base = own_header();
        let class64 = cfg!(target_pointer_width = "64");
        // Program-header offsets near 2^64, huge entry sizes and counts, a truncated file.
        let mut cases = Vec::new();
        for phoff in [u64::MAX, u64::MAX - 7, u64::MAX - 55, 1 << 63, 65_000] {
            let mut h = base.clone();
            if class64 {
                h[32..40].copy_from_slice(&phoff.to_le_bytes());
            }
            cases.push(h);
        }
        let mut h = base.clone();
        h[54..56].copy_from_slice(&u16::MAX.to_le_bytes());
        h[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        cases.push(h);
        let mut h = base.clone();
        h[54..56].copy_from_slice(&1u16.to_le_bytes());
        cases.push(h);
        cases.push(base[..63].to_vec());
        cases.push(base[..64].to_vec());
        for (i, c) in cases.iter().enumerate() {
            let got = classify(c);
            assert!(
                matches!(got, Header::NotNative(_) | Header::Native { interp: None }),
                "case {i}: {got:?}"
            );
        }
        // Every truncation of a real header: no panic.
        for n in 0..base.len().min(4096) {
            let _ = classify(&base[..n]);
        }
    }

    #[test]
    fn scripts_are_named() {
        assert_eq!(
            classify(b"#!/bin/sh\necho"),
            Header::Script("#!/bin/sh".into())
        );
        assert!(matches!(
            classify(&[b'#', b'!', 0xff, 0xfe]),
            Header::Script(_)
        ));
    }
}
