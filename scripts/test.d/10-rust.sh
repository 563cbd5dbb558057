#!/usr/bin/env bash
# Rust: formatting, lints, unit and integration tests (the integration tests use the real criu).
set -euo pipefail
cd "$CKPT_ROOT"
cargo fmt --all --check
# --workspace: also libcriu/ (the libcriu.so.2 drop-in); its C tests run in 60-libcriu.sh.
cargo clippy --workspace --all-targets -- -D warnings
# CKPT_TEST_WORKSPACE=1: the tests that need the scripted fake criu build it as part of the
# workspace (core/tests/faultkit), so cargo finds the one this command built fresh.
CKPT_TEST_WORKSPACE=1 cargo test --workspace --quiet --no-fail-fast -- --test-threads=2
