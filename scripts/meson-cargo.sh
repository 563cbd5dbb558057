#!/usr/bin/env bash
# Called by meson: builds the crate with cargo and copies the libraries to meson's output names.
# usage: meson-cargo.sh SOURCE_ROOT OUT_SO OUT_SO_0 OUT_A OUT_DEBUG
# (libckpt.so for linking, libckpt.so.0 to run and install: stripped, with its debug
# information split off into OUT_DEBUG as Debian packages do; libckpt.a)
set -euo pipefail
src=$1 out_so=$2 out_so0=$3 out_a=$4 out_debug=$5
cargo build --release --lib --manifest-path "$src/Cargo.toml" --target-dir "$src/target" --quiet
cp -f "$src/target/release/libckpt.so" "$out_so"
"$src/scripts/split-debug.sh" "$src/target/release/libckpt.so" "$out_so0" "$out_debug"
cp -f "$src/target/release/libckpt.a" "$out_a"
