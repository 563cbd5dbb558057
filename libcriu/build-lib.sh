#!/usr/bin/env bash
# Called by meson (libcriu/meson.build): builds libcriu.so.2 with cargo and copies it to meson's
# output. It links the core (ckpt-core) only, never the C API crate, so the library keeps soname
# libcriu.so.2 and exports criu.h's functions only.
# Stripped, its debug information in OUT_DEBUG (found through a .gnu_debuglink).
# usage: build-lib.sh OUT_SO_2 OUT_DEBUG
set -euo pipefail
root=$(dirname "$(dirname "$(readlink -f "$0")")")
cargo build --release --lib -p ckpt-libcriu --manifest-path "$root/Cargo.toml" \
    --target-dir "$root/target" --quiet
"$root/scripts/split-debug.sh" "$root/target/release/libcriu.so" "$1" "$2"
