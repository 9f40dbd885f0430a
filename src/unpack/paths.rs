//! Turns raw tar names into clean root-relative paths and classifies OCI whiteouts. It owns the
//! lexical rules only (`.`/`..`/absolute/empty, `.wh.` names); it never touches the filesystem, so
//! symlinks are resolved later, chroot-style, by compose.

/// What a cleaned entry name means for the layer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Named {
    /// An ordinary path.
    Plain(String),
    /// `.wh.NAME`: delete `path` from lower layers.
    Whiteout(String),
    /// `.wh..wh..opq`: hide everything lower layers put under this dir ("" is the root).
    Opaque(String),
    /// Another `.wh..wh.` (aufs metadata): ignored, never written.
    Meta,
}

/// Cleans a raw tar name: absolute names are re-rooted, `.` and empty components dropped, `..`
/// applied lexically. A name that climbs above the root is an error; the root itself is `None`.
pub(crate) fn clean(raw: &[u8]) -> Result<Option<String>, String> {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for comp in text.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("path climbs above the root with '..'".into());
                }
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// True for a path as `clean` produces it (used to re-check metadata read back from disk).
pub(crate) fn is_clean(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && !p.contains('\0')
}

/// Classifies a cleaned path by its last component.
pub(crate) fn classify(path: String) -> Result<Named, String> {
    let (parent, base) = match path.rsplit_once('/') {
        Some((p, b)) => (p, b),
        None => ("", path.as_str()),
    };
    if base == ".wh..wh..opq" {
        return Ok(Named::Opaque(parent.to_string()));
    }
    if base.starts_with(".wh..wh.") {
        return Ok(Named::Meta);
    }
    if let Some(name) = base.strip_prefix(".wh.") {
        if name.is_empty() || name == "." || name == ".." {
            return Err(format!("invalid whiteout name '{base}'"));
        }
        let target = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        return Ok(Named::Whiteout(target));
    }
    Ok(Named::Plain(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_reroots_absolute_and_rejects_escapes() {
        assert_eq!(
            clean(b"/tmp/abs_evil.txt").unwrap().as_deref(),
            Some("tmp/abs_evil.txt")
        );
        assert_eq!(clean(b"///tmp/x").unwrap().as_deref(), Some("tmp/x"));
        assert_eq!(clean(b"/./tmp/x").unwrap().as_deref(), Some("tmp/x"));
        assert_eq!(clean(b"./a//b/./c/").unwrap().as_deref(), Some("a/b/c"));
        assert_eq!(
            clean(b"dne/../.wh.etc").unwrap().as_deref(),
            Some(".wh.etc")
        );
        assert_eq!(clean(b"").unwrap(), None);
        assert_eq!(clean(b"./").unwrap(), None);
        for bad in [
            &b"../x"[..],
            b"/../tmp/x",
            b"./../x",
            b"some/../../x",
            b"..",
            b"/////////..",
        ] {
            assert!(clean(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn whiteouts_classified_and_invalid_names_rejected() {
        assert_eq!(
            classify("a/.wh.b".into()).unwrap(),
            Named::Whiteout("a/b".into())
        );
        assert_eq!(
            classify(".wh.etc".into()).unwrap(),
            Named::Whiteout("etc".into())
        );
        assert_eq!(
            classify("d/.wh..wh..opq".into()).unwrap(),
            Named::Opaque("d".into())
        );
        assert_eq!(
            classify(".wh..wh..opq".into()).unwrap(),
            Named::Opaque("".into())
        );
        assert_eq!(classify(".wh..wh.plnk".into()).unwrap(), Named::Meta);
        assert_eq!(
            classify(".wh.etc/somefile".into()).unwrap(),
            Named::Plain(".wh.etc/somefile".into())
        );
        for bad in [".wh.", ".wh..", ".wh...", "etc/.wh..", "etc/.wh..."] {
            assert!(classify(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn is_clean_matches_clean_output() {
        assert!(is_clean("a/b"));
        for bad in ["", "/a", "a/../b", "a//b", "./a", "a/"] {
            assert!(!is_clean(bad), "{bad}");
        }
    }
}
