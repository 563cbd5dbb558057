#!/usr/bin/env bash
# Called by meson (libcriu/meson.build): builds libcriu.so.2 with cargo and writes meson's
# outputs: the library stripped for installation and its debug information split off into a
# file of its own (scripts/split-debug.sh, as Debian packages do). A cargo invocation of its own
# (-p ckpt-libcriu), so the core is built without its C API and the library keeps soname
# libcriu.so.2 and exports criu.h's functions only.
# usage: build-lib.sh OUT_SO_2 OUT_DEBUG
set -euo pipefail
root=$(dirname "$(dirname "$(readlink -f "$0")")")
cargo build --release --lib -p ckpt-libcriu --manifest-path "$root/Cargo.toml" \
    --target-dir "$root/target" --quiet
"$root/scripts/split-debug.sh" "$root/target/release/libcriu.so" "$1" "$2"
