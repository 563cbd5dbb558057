#!/usr/bin/env bash
# A longer fuzzing session than the test suite's: each cargo-fuzz target for SECONDS (default
# 600), inputs up to 64 KiB. Crash inputs are copied to fuzz/regressions/<target>/, where
# tests/hostile.rs replays them on every `cargo test`: fix the bug, keep the input.
# usage: scripts/fuzz-long.sh [SECONDS] [TARGET...]     (targets: replies c_api)
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="/root/.cargo/bin:$PATH"
secs=${1:-600}
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(replies c_api)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: run scripts/setup.sh" >&2; exit 2; }
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "=== fuzzing $t for ${secs}s"
    if ! RUSTC_BOOTSTRAP=1 cargo +stable fuzz run -O -a "$t" "corpus/$t" "regressions/$t" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1; then
        status=1
    fi
    for a in artifacts/"$t"/*; do
        [ -f "$a" ] || continue
        cp "$a" "regressions/$t/"
        echo "crash input saved as fuzz/regressions/$t/$(basename "$a")"
    done
done
exit "$status"
