//! The on-disk cache of compiled components. Compiled components are native code run outside
//! the sandbox, so an entry is trusted only when it is bound to the exact source and engine: it
//! is keyed by the sha256 of the component's bytes and a hash of the engine's compatibility
//! settings, and a record beside it states that source hash, that engine hash and the sha256 of
//! the compiled artifact. All three are checked before anything is deserialized; an entry copied
//! over another plugin's (its record names the other source), a torn or a corrupt one is a miss,
//! recompiled and rewritten. The cache must never be the reason a load fails: any cache I/O
//! error falls back to compiling in memory.
//!
//! What this does not defend against: someone who can write the cache directory can also write a
//! matching record for code of their own. So the user's cache (under their home) serves only
//! their own plugins; system-layer plugins are compiled in memory or cached in a directory the
//! system configuration names (see `policy::engine`).

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
    if let Some(component) = read_checked(engine, &entry, wasm) {
        return Ok(component);
    }
    let artifact = engine.precompile_component(wasm)?;
    // A cache that cannot be written only costs the next run a compile.
    let _ = write_entry(&entry, &record(engine, wasm, &artifact), &artifact);
    // SAFETY: `artifact` was produced by `precompile_component` of this very engine just now.
    unsafe { Component::deserialize(engine, &artifact) }
}

fn engine_hash(engine: &Engine) -> String {
    let mut compat = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut compat);
    hex::encode(compat.0.finalize())
}

/// `DIR/<sha256 of wasm>-<engine hash>.cwasm`; its record is `….cwasm.sha256`.
pub fn entry_path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let engine_hash = engine_hash(engine);
    dir.join(format!(
        "{}-{}.cwasm",
        hex::encode(Sha256::digest(wasm)),
        engine_hash.get(..16).unwrap_or(&engine_hash)
    ))
}

fn sidecar(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The record that binds an artifact to its source and engine.
fn record(engine: &Engine, wasm: &[u8], artifact: &[u8]) -> String {
    format!(
        "source sha256:{}\nengine {}\nartifact sha256:{}\n",
        hex::encode(Sha256::digest(wasm)),
        engine_hash(engine),
        hex::encode(Sha256::digest(artifact))
    )
}

/// The cached component for `wasm`, if the entry exists and its record names this source, this
/// engine and these artifact bytes.
fn read_checked(engine: &Engine, entry: &Path, wasm: &[u8]) -> Option<Component> {
    let artifact = std::fs::read(entry).ok()?;
    let stated = std::fs::read_to_string(sidecar(entry)).ok()?;
    if stated != record(engine, wasm, &artifact) {
        return None;
    }
    // SAFETY: the bytes are the artifact this engine compiled from exactly `wasm` (their record
    // states that source, engine and artifact hash, and the record's writer is the user whose
    // own plugins these are), and wasmtime itself rejects artifacts of an incompatible engine;
    // a failed deserialize is a miss.
    unsafe { Component::deserialize(engine, &artifact) }.ok()
}

/// Writes the artifact and then its record, each through a temporary file and a rename, so a
/// reader sees either a whole entry or a mismatch (which it treats as a miss).
fn write_entry(entry: &Path, record: &str, artifact: &[u8]) -> std::io::Result<()> {
    let dir = entry.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    write_atomic(dir, entry, artifact)?;
    write_atomic(dir, &sidecar(entry), record.as_bytes())
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
            read_checked(&engine, &entry, WAT.as_bytes()).is_some(),
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
            read_checked(&engine, &entry, WAT.as_bytes()).is_none(),
            "a flipped byte must fail the hash check"
        );

        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        let rewritten = std::fs::read(&entry).unwrap();
        assert_ne!(rewritten, bad);
        assert!(
            read_checked(&engine, &entry, WAT.as_bytes()).is_some(),
            "the rewritten entry must check out"
        );
    }

    #[test]
    fn entry_without_its_hash_is_a_miss_and_garbage_never_deserializes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let entry = entry_path(&engine, WAT.as_bytes(), dir.path());
        std::fs::write(&entry, b"not a compiled component").unwrap();
        assert!(read_checked(&engine, &entry, WAT.as_bytes()).is_none());
        // Even with a matching record, garbage fails wasmtime's own header check and is a miss.
        std::fs::write(
            sidecar(&entry),
            record(&engine, WAT.as_bytes(), b"not a compiled component"),
        )
        .unwrap();
        assert!(read_checked(&engine, &entry, WAT.as_bytes()).is_none());
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        assert!(read_checked(&engine, &entry, WAT.as_bytes()).is_some());
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

    const OTHER: &str = r#"(component
        (core module $m (func (export "g")))
        (core instance $i (instantiate $m))
    )"#;

    #[test]
    fn an_entry_copied_over_another_components_entry_is_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        compile(&engine, OTHER.as_bytes(), Some(dir.path())).unwrap();
        let (mine, theirs) = (
            entry_path(&engine, WAT.as_bytes(), dir.path()),
            entry_path(&engine, OTHER.as_bytes(), dir.path()),
        );
        // Artifact and record of OTHER copied over WAT's entry: the record names OTHER's source.
        std::fs::copy(&theirs, &mine).unwrap();
        std::fs::copy(sidecar(&theirs), sidecar(&mine)).unwrap();
        assert!(read_checked(&engine, &mine, WAT.as_bytes()).is_none());
        // The artifact alone with WAT's old-style record (only the artifact hash): also a miss.
        std::fs::write(
            sidecar(&mine),
            hex::encode(Sha256::digest(std::fs::read(&mine).unwrap())),
        )
        .unwrap();
        assert!(read_checked(&engine, &mine, WAT.as_bytes()).is_none());
        // compile recompiles WAT and rewrites its entry.
        compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        assert!(read_checked(&engine, &mine, WAT.as_bytes()).is_some());
        assert_ne!(
            std::fs::read(&mine).unwrap(),
            std::fs::read(&theirs).unwrap()
        );
    }
}
