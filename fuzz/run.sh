#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 600), two at a time, seeding
# each corpus from the third-party material in ../shared/conformance and from files on this
# machine. Prints one line per target: target, seconds, executions, crashes. Crashing inputs land
# in fuzz/artifacts/TARGET/; keep each as a regression test next to the parser it broke.
#   usage: fuzz/run.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (cargo install cargo-fuzz); RUSTC_BOOTSTRAP lets a stable toolchain take the
# sanitizer flags.
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-600}
shift || true
SHARED=$(cd ../../shared/conformance && pwd)
export RUSTC_BOOTSTRAP=1
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(tar_layer elf_header rfc3161 certificate bundle dsse manifest config trusted_root)

seed() { # seed TARGET FILE...
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/$(sha256sum "$f" | cut -c1-16)" 2>/dev/null; done
}
seed tar_layer $(find "$SHARED/tar-corpora" -type f -size -2M)
seed elf_header /bin/true /bin/ls /usr/bin/env
seed rfc3161 # timestamps come from the bundles below, decoded
seed certificate $(find "$SHARED" -name '*.der' -o -name '*.crt' | head -50)
seed bundle $(find "$SHARED" -name '*.sigstore.json' -o -name '*.sigstore' | head -200)
seed dsse $(find "$SHARED" -name '*.json' -size -64k | grep -i -e dsse -e att -e intoto | head -100)
seed manifest $(find "$SHARED" -name 'manifest.json' -o -name 'index.json' | head -100)
seed config ../README.md
seed trusted_root $(find "$SHARED" -name 'trusted_root*.json' | head -50)
# Decoded timestamps and certificates out of the bundles.
python3 - "$SHARED" <<'PY'
import base64, glob, hashlib, json, os, sys
for path in glob.glob(sys.argv[1] + "/**/*.sigstore.json", recursive=True):
    try:
        b = json.load(open(path))
    except Exception:
        continue
    vm = (b.get("verificationMaterial") if isinstance(b, dict) else None) or {}
    tsd = vm.get("timestampVerificationData") or {}
    items = [("rfc3161", (t or {}).get("signedTimestamp")) for t in (tsd.get("rfc3161Timestamps") or [])]
    items += [("certificate", (vm.get("certificate") or {}).get("rawBytes"))]
    items += [("certificate", (c or {}).get("rawBytes")) for c in ((vm.get("x509CertificateChain") or {}).get("certificates") or [])]
    for target, b64 in items:
        if not isinstance(b64, str):
            continue
        try:
            raw = base64.b64decode(b64)
        except Exception:
            continue
        os.makedirs(f"corpus/{target}", exist_ok=True)
        open(f"corpus/{target}/{hashlib.sha256(raw).hexdigest()[:16]}", "wb").write(raw)
PY
cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O || exit 1

run_one() {
  local t=$1 log="artifacts/$1.log"
  mkdir -p "artifacts/$t"
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$SECS" -rss_limit_mb=4096 -timeout=30 \
    -artifact_prefix="artifacts/$t/" >"$log" 2>&1
  local execs crashes
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  echo "fuzz: $t ${SECS}s executions=${execs:-?} crashes=$crashes"
}
i=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  i=$((i + 1))
  if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
