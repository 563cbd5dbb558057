#!/usr/bin/env bash
# C: build library, header and C tests with meson, run them against the real criu.
set -euo pipefail
cd "$CKPT_ROOT"
[ -f "$CKPT_BUILD/build.ninja" ] || meson setup "$CKPT_BUILD" >/dev/null
meson compile -C "$CKPT_BUILD"
meson test -C "$CKPT_BUILD" --print-errorlogs
