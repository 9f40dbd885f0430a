#!/usr/bin/env bash
# Builds every plugin crate under plugins/ (each directory with a Cargo.toml) into a WebAssembly
# component named after the crate: OUT_DIR/<crate>.wasm.
#   usage: plugins/build.sh [OUT_DIR]        (default: target/plugins under the repository root)
# Needs Debian's rustc-web, cargo-web, rust-web-src, lld-22 and `wasm-tools` on PATH (see README).
# Debian's rustc 1.96 builds std for wasm32-unknown-unknown with -Zbuild-std; the result imports
# nothing but gantry's own host interface.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/target/plugins}
TARGET=wasm32-unknown-unknown
# One target dir for all plugins, so std is built once.
TARGET_DIR=${GANTRY_PLUGIN_TARGET_DIR:-$ROOT/target/plugin-build}

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc  # Debian's 1.96, not a rustup proxy
export RUSTC_BOOTSTRAP=1                             # -Zbuild-std on a stable compiler
export PATH=/usr/lib/llvm-22/bin:$PATH               # wasm-ld
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS

for tool in /usr/bin/cargo /usr/bin/rustc wasm-tools; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (see README: building plugins)" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

built=0
for manifest in "$ROOT"/plugins/*/Cargo.toml; do
  crate=$(basename "$(dirname "$manifest")")
  lib=${crate//-/_}
  echo "== $crate" >&2
  /usr/bin/cargo build --manifest-path "$manifest" --release --locked --target "$TARGET" \
    -Zbuild-std=std,panic_abort --target-dir "$TARGET_DIR"
  wasm-tools component new "$TARGET_DIR/$TARGET/release/$lib.wasm" -o "$OUT/$crate.wasm"
  wasm-tools validate "$OUT/$crate.wasm"
  built=$((built + 1))
done
[ "$built" -gt 0 ] || { echo "build.sh: no plugin crates found" >&2; exit 1; }
echo "built $built plugin(s) into $OUT" >&2
