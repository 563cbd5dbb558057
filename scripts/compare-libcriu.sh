#!/usr/bin/env bash
# Runs the libcriu stage of the test suite, then the same C programs against the real
# libcriu.so.2 4.1.1, and lists the checks libcriu fails: the defects the drop-in fixes
# (docs/libcriu.md, "Fixed"). For reading, not a test: its figures are not counted. About 15 s
# here; where libcriu hangs (it did on a CI runner), a 60 s timeout ends that program.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT_ONLY=60-libcriu CKPT_LIBCRIU_COMPARE=1 exec bash scripts/test.sh
