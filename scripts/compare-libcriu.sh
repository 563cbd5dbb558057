#!/usr/bin/env bash
# Runs the libcriu stage of the test suite, then the same C programs against the real
# libcriu.so.2 4.1.1, and lists the checks libcriu fails: the defects the drop-in fixes
# (docs/libcriu.md, "Fixed"). For reading, not a test: its figures are not counted. Takes a few
# minutes, most of it libcriu waiting on criu until the 60 s timeout kills it.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT_ONLY=60-libcriu CKPT_LIBCRIU_COMPARE=1 exec bash scripts/test.sh
