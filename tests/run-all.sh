#!/usr/bin/env bash
# Runs every test of the project: builds the Wasm plugins (the plugin tests load the real
# components), then the Rust unit and integration tests, which start a real docker-registry on
# loopback, verify real signatures, run the Rego policy tests and the Sigstore conformance suite.
# Ends with one line totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash plugins/build.sh target/plugins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --no-fail-fast --lib --bins --tests 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
