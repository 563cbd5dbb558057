#!/usr/bin/env bash
# Reliability beyond `cargo test` (whose tests/faults.rs, tests/hostile.rs and
# tests/concurrency.rs run in stage 10): a short run of each cargo-fuzz target, and the C tests
# built with AddressSanitizer. Env: CKPT_FUZZ_SECONDS (per target, default 10).
set -uo pipefail
cd "$CKPT_ROOT"
secs=${CKPT_FUZZ_SECONDS:-10}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# ---- fuzzing: libFuzzer through cargo-fuzz, on the stable toolchain (RUSTC_BOOTSTRAP=1 lets
# it use the sanitizer flags cargo-fuzz passes). The corpus persists in fuzz/corpus/ between
# runs; the committed regression inputs seed it.
fuzz_log=$(mktemp /tmp/ckpt-fuzz.XXXXXX)
if ! command -v cargo-fuzz >/dev/null; then
    bad "fuzz: cargo-fuzz is not installed (scripts/setup.sh installs it)"
elif ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo +stable fuzz build -O -a) >"$fuzz_log" 2>&1; then
    tail -n 40 "$fuzz_log"
    bad "fuzz: building the targets"
else
    for target in replies c_api archive; do
        mkdir -p "fuzz/corpus/$target"
        rm -rf "fuzz/artifacts/$target"
        if (cd fuzz && RUSTC_BOOTSTRAP=1 cargo +stable fuzz run -O -a "$target" \
            "corpus/$target" "regressions/$target" -- \
            -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1) \
            >"$fuzz_log" 2>&1; then
            ok "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$fuzz_log" | tail -n1)"
        else
            grep -vE '^(#[0-9]|")' "$fuzz_log" | tail -n 40
            # Every crash becomes a regression input: tests/hostile.rs replays them all.
            for a in fuzz/artifacts/"$target"/*; do
                [ -f "$a" ] || continue
                cp "$a" "fuzz/regressions/$target/"
                echo "crash input saved as fuzz/regressions/$target/$(basename "$a")"
            done
            bad "fuzz $target"
        fi
    done
fi
rm -f "$fuzz_log"

# ---- AddressSanitizer build of the C tests (C-side misuse: reads past strings ckpt returns,
# use after ckpt_*_free, double frees, leaks). The Rust library itself is not instrumented,
# but its allocations go through the intercepted malloc/free.
# many_calls makes 200 calls here instead of 1000 (CKPT_ASAN_CALLS overrides), as under
# valgrind: every kind of call still runs dozens of times and the fd, zombie and child checks
# are the same; the count matters only for the resident-memory bound, which ASan's quarantine
# keeps from being exercised here anyway (the plain run in stage 20 makes the 1000 calls).
asan_dir="${CKPT_BUILD:-$CKPT_ROOT/builddir}-asan"
if [ ! -f "$asan_dir/build.ninja" ] &&
    ! meson setup "$asan_dir" -Db_sanitize=address -Db_lundef=false >/dev/null; then
    bad "asan: meson setup"
elif ! meson compile -C "$asan_dir" >/dev/null; then
    meson compile -C "$asan_dir" 2>&1 | tail -n 30
    bad "asan: build"
elif ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1 \
    CKPT_CTEST_CALLS="${CKPT_ASAN_CALLS:-200}" meson test -C "$asan_dir" --print-errorlogs; then
    ok "asan: C tests"
else
    bad "asan: C tests (log: $asan_dir/meson-logs/testlog.txt)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
