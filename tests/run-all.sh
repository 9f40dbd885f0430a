#!/usr/bin/env bash
# Runs every test of the project: builds the Wasm plugins (the plugin tests load the real
# components), then the Rust unit and integration tests, which start a real docker-registry on
# loopback, verify real signatures, run the Rego policy tests and the Sigstore conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash plugins/build.sh target/plugins
cargo test --no-fail-fast 2>&1
