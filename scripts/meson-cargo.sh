#!/usr/bin/env bash
# Called by meson: builds the C API crate (package ckpt-ffi) with cargo and copies the
# libraries to meson's output names.
# usage: meson-cargo.sh SOURCE_ROOT OUT_SO OUT_SO_0 OUT_A
# (libckpt.so for linking, libckpt.so.0 to run and install, libckpt.a)
set -euo pipefail
src=$1 out_so=$2 out_so0=$3 out_a=$4
cargo build --release --lib -p ckpt-ffi --manifest-path "$src/Cargo.toml" --target-dir "$src/target" --quiet
cp -f "$src/target/release/libckpt_ffi.so" "$out_so"
cp -f "$src/target/release/libckpt_ffi.so" "$out_so0"
cp -f "$src/target/release/libckpt_ffi.a" "$out_a"
