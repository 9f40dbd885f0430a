//! The on-disk cache of compiled components. An entry is keyed by the sha256 of the component's
//! bytes and a hash of the engine's compatibility settings, and is stored with the sha256 of the
//! compiled artifact beside it. An entry is only deserialized after that hash checks out; a
//! missing, torn or corrupt entry is recompiled and rewritten. The cache must never be the
//! reason a load fails: any cache I/O error falls back to compiling in memory.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Returns the compiled component for `wasm` (binary or WAT), from the cache when a checked entry
/// exists, else compiled now (and written to the cache when there is one).
pub fn compile(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir else {
        return Component::new(engine, wasm);
    };
    let entry = entry_path(engine, wasm, dir);
    if let Some(component) = read_checked(engine, &entry) {
        return Ok(component);
    }
    let artifact = engine.precompile_component(wasm)?;
    // A cache that cannot be written only costs the next run a compile.
    let _ = write_entry(&entry, &artifact);
    // SAFETY: `artifact` was produced by `precompile_component` of this very engine just now.
    unsafe { Component::deserialize(engine, &artifact) }
}

/// `DIR/<sha256 of wasm>-<engine hash>.cwasm`; the artifact's hash is in `….cwasm.sha256`.
pub fn entry_path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut compat = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut compat);
    let engine_hash = hex::encode(&compat.0.finalize()[..8]);
    dir.join(format!(
        "{}-{engine_hash}.cwasm",
        hex::encode(Sha256::digest(wasm))
    ))
}

fn sidecar(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The cached component, if the entry and its hash are present and agree.
fn read_checked(engine: &Engine, entry: &Path) -> Option<Component> {
    let artifact = std::fs::read(entry).ok()?;
    let expected = std::fs::read_to_string(sidecar(entry)).ok()?;
    if hex::encode(Sha256::digest(&artifact)) != expected.trim() {
        return None;
    }
    // SAFETY: the bytes are exactly those this process family wrote with `precompile_component`
    // (their sha256 matches the one recorded beside them), and wasmtime itself rejects artifacts
    // of an incompatible engine; a failed deserialize is treated as a miss.
    unsafe { Component::deserialize(engine, &artifact) }.ok()
}

/// Writes the artifact and then its hash, each through a temporary file and a rename, so a reader
/// sees either a whole entry or a mismatch (which it treats as a miss).
fn write_entry(entry: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let dir = entry.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    write_atomic(dir, entry, artifact)?;
    write_atomic(
        dir,
        &sidecar(entry),
        hex::encode(Sha256::digest(artifact)).as_bytes(),
    )
}

fn write_atomic(dir: &Path, to: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// Feeds `Hash` output into sha256, so the engine key is stable across Rust versions (unlike
/// `DefaultHasher`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only the sha256 state is read; `finish` exists to satisfy the trait.
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
    )"#;

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn second_load_hits_the_cache_entry_written_by_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        let entry = entry_path(&engine, WAT.as_bytes(), dir.path());
        let written = std::fs::metadata(&entry).unwrap().modified().unwrap();
        assert!(sidecar(&entry).exists());
        assert!(
            read_checked(&engine, &entry).is_some(),
            "a fresh entry must pass its check"
        );
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        assert_eq!(
            std::fs::metadata(&entry).unwrap().modified().unwrap(),
            written,
            "a hit must not rewrite"
        );
    }

    #[test]
    fn corrupt_entry_is_rejected_recompiled_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        let entry = entry_path(&engine, WAT.as_bytes(), dir.path());
        let good = std::fs::read(&entry).unwrap();
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        std::fs::write(&entry, &bad).unwrap();
        assert!(
            read_checked(&engine, &entry).is_none(),
            "a flipped byte must fail the hash check"
        );

        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        let rewritten = std::fs::read(&entry).unwrap();
        assert_ne!(rewritten, bad);
        assert!(
            read_checked(&engine, &entry).is_some(),
            "the rewritten entry must check out"
        );
    }

    #[test]
    fn entry_without_its_hash_is_a_miss_and_garbage_never_deserializes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let entry = entry_path(&engine, WAT.as_bytes(), dir.path());
        std::fs::write(&entry, b"not a compiled component").unwrap();
        assert!(read_checked(&engine, &entry).is_none());
        // Even with a matching hash, garbage fails wasmtime's own header check and is a miss.
        std::fs::write(
            sidecar(&entry),
            hex::encode(Sha256::digest(b"not a compiled component")),
        )
        .unwrap();
        assert!(read_checked(&engine, &entry).is_none());
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        assert!(read_checked(&engine, &entry).is_some());
    }

    #[test]
    fn key_depends_on_the_component_bytes() {
        let dir = Path::new("cache");
        let engine = engine();
        assert_ne!(
            entry_path(&engine, b"a", dir),
            entry_path(&engine, b"b", dir)
        );
        assert_eq!(
            entry_path(&engine, b"a", dir),
            entry_path(&engine, b"a", dir)
        );
    }
}
