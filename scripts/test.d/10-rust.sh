#!/usr/bin/env bash
# Rust: formatting, lints, unit and integration tests (the integration tests use the real criu).
set -euo pipefail
cd "$CKPT_ROOT"
cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
cargo test --quiet -- --test-threads=2
