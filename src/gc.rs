//! `gantry gc`: frees what no installed version needs: unpacked layers in the layer cache that no
//! version's metadata names, and what killed runs left behind (staging in `tmp/`, which holds
//! the version directories of interrupted removes and updates). It plans first (the plan is what
//! `--dry-run` shows, and exactly what a real run removes), then removes. Every version
//! directory under `packages/NAME/` is kept, whatever the store keeps there (the current
//! version, and any previous one it keeps). When some version's metadata does not record its
//! layers, no layer is provably unused, so every layer is kept and the plan says which versions
//! are why.

use crate::store::{bytes_freed_by_removing, CachedLayer, Leftover, Store, StoreError};
use std::collections::BTreeSet;
use std::path::Path;

/// What a gc run removes, and what it keeps.
#[derive(Debug)]
pub struct GcPlan {
    /// Cached layers no version's metadata names.
    pub layers: Vec<CachedLayer>,
    /// Leftovers of killed runs.
    pub leftovers: Vec<Leftover>,
    /// Cached layers kept.
    pub kept_layers: usize,
    /// `NAME@DIGEST` of the versions whose metadata does not record their layers (or does not
    /// read); while there is one, every layer is kept.
    pub unrecorded: Vec<String>,
    /// The bytes removing all of it frees (files whose every hard link goes).
    pub bytes: u64,
}

impl GcPlan {
    /// Nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty() && self.leftovers.is_empty()
    }
}

/// Plans a gc of `store`. Reads only; call with the store lock held.
pub fn plan(store: &Store) -> Result<GcPlan, StoreError> {
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let mut unrecorded = Vec::new();
    for name in store.package_names()? {
        for v in store.version_dirs(&name)? {
            match store.version_metadata(&v) {
                Ok(m) if !m.layers.is_empty() => referenced.extend(m.layers),
                _ => unrecorded.push(format!("{name}@{}", v.digest)),
            }
        }
    }
    let cached = store.cached_layers()?;
    let (layers, kept): (Vec<CachedLayer>, Vec<CachedLayer>) = if unrecorded.is_empty() {
        cached
            .into_iter()
            .partition(|l| !referenced.contains(&l.digest()))
    } else {
        (Vec::new(), cached)
    };
    let leftovers = store.leftovers()?;
    let paths: Vec<&Path> = layers
        .iter()
        .map(CachedLayer::path)
        .chain(leftovers.iter().map(Leftover::path))
        .collect();
    Ok(GcPlan {
        bytes: bytes_freed_by_removing(&paths),
        layers,
        leftovers,
        kept_layers: kept.len(),
        unrecorded,
    })
}

/// Removes what `plan` lists. Call with the store lock held, the one the plan was made under.
pub fn execute(store: &Store, plan: &GcPlan) -> Result<(), StoreError> {
    for l in &plan.leftovers {
        store.remove_leftover(l)?;
    }
    for l in &plan.layers {
        store.remove_cached_layer(l)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Home;

    fn version(s: &Store, name: &str, digest: &str, layers: &[&str]) {
        let st = s.staging().unwrap();
        std::fs::write(st.path().join("launch"), b"#!/bin/sh\n").unwrap();
        let meta = serde_json::json!({
            "name": name, "reference": "r", "registry": "r", "digest": digest,
            "platform": {"os": "linux", "architecture": "amd64"},
            "installed_at": "t", "entrypoint": "/x", "layers": layers,
        });
        std::fs::write(st.path().join("metadata.json"), meta.to_string()).unwrap();
        s.commit(name, digest, st, 2).unwrap();
    }

    fn layer(s: &Store, hex: char, bytes: usize) -> String {
        let d = format!("sha256:{}", hex.to_string().repeat(64));
        std::fs::create_dir_all(s.layer_dir(&d)).unwrap();
        std::fs::write(s.layer_dir(&d).join("f"), vec![0u8; bytes]).unwrap();
        d
    }

    #[test]
    fn unreferenced_layers_and_leftovers_go_referenced_layers_stay() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        let (used, unused) = (layer(&s, 'a', 100), layer(&s, 'b', 1000));
        version(&s, "tool", &format!("sha256:{}", "1".repeat(64)), &[&used]);
        std::fs::create_dir_all(home.path().join("tmp/stage-x")).unwrap();
        std::fs::write(home.path().join("tmp/stage-x/f"), vec![0u8; 10]).unwrap();
        let p = plan(&s).unwrap();
        assert_eq!(
            p.layers.iter().map(CachedLayer::digest).collect::<Vec<_>>(),
            std::slice::from_ref(&unused)
        );
        assert_eq!((p.leftovers.len(), p.kept_layers, p.bytes), (1, 1, 1010));
        execute(&s, &p).unwrap();
        assert!(!s.layer_dir(&unused).exists() && s.layer_dir(&used).exists());
        assert!(plan(&s).unwrap().is_empty());
    }

    #[test]
    fn a_version_that_does_not_record_its_layers_keeps_them_all() {
        let home = tempfile::tempdir().unwrap();
        let s = Store::open(&Home::new(home.path())).unwrap();
        layer(&s, 'b', 1000);
        let d = format!("sha256:{}", "1".repeat(64));
        version(&s, "old", &d, &[]);
        let p = plan(&s).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.kept_layers, 1);
        assert_eq!(p.unrecorded, [format!("old@{d}")]);
    }
}
