#!/usr/bin/env bash
# Regenerates include/ckpt.h from the Rust sources (needs cbindgen 0.29, see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cbindgen --config cbindgen.toml --crate ckpt-ffi --output include/ckpt.h
