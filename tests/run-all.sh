#!/usr/bin/env bash
# Runs every test of the project: the Rust unit and integration tests (against a real
# docker-registry on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --no-fail-fast 2>&1
