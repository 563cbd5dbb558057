#!/usr/bin/env bash
# Called by meson: builds the C API crate (package ckpt-ffi) with cargo and lays the libraries
# out as a system library: libckpt.so.0.1.0 (soname libckpt.so.0) with the libckpt.so.0 and
# libckpt.so links, and libckpt.a. The libraries are stripped of debug information, which goes
# to libckpt.so.0.1.0.debug, found by debuggers and valgrind through a .gnu_debuglink.
# usage: meson-cargo.sh SOURCE_ROOT OUT_SO OUT_SO_0 OUT_SO_0_1_0 OUT_DEBUG OUT_A
set -euo pipefail
src=$1 out_so=$2 out_so0=$3 out_real=$4 out_debug=$5 out_a=$6
cargo build --release --lib -p ckpt-ffi --manifest-path "$src/Cargo.toml" --target-dir "$src/target" --quiet
"$src/scripts/split-debug.sh" "$src/target/release/libckpt_ffi.so" "$out_real" "$out_debug"
ln -sf "$(basename "$out_real")" "$out_so0"
ln -sf "$(basename "$out_so0")" "$out_so"
cp -f "$src/target/release/libckpt_ffi.a" "$out_a.tmp"
strip --strip-debug "$out_a.tmp"
mv -f "$out_a.tmp" "$out_a"
