#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/setup.sh), then runs every stage in
# scripts/test.d in order. Each stage is a script that exits non-zero on failure. The last line
# is the plain "N passed, N failed" count of stages.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "ckpt's tests drive the real CRIU against real processes and need root" >&2
    exit 2
fi
bash scripts/setup.sh || { echo "setup failed"; exit 1; }
# shellcheck disable=SC1091
. /opt/ckpt-deps/env.sh
export PATH="/usr/local/sbin:/root/.cargo/bin:$PATH"
export CKPT_ROOT="$root"
export CKPT_BUILD="${CKPT_BUILD:-$root/builddir}"

# Cgroups an interrupted earlier run left (every test names its own ckpt-*): CRIU dumps the
# hierarchy a crun container sits in, so leftovers would be copied into each restore.
find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name 'ckpt-*' \
    -exec sh -c 'find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null' _ {} \; 2>/dev/null

# Warm-up builds. Most of stage 10's test time is spent waiting on CRIU, runtimes and sleeping
# workloads; meanwhile stage 20's meson build (the release libraries and the C tests), then
# stage 50's fuzz targets, are compiled in the background at the lowest CPU and I/O priority,
# where they take only what the tests leave. They only fill the build caches: every stage
# still runs its own build and reports its own failure (the warm-up's output goes to a log that
# is removed). Stage 20 and later wait for the meson warm-up to end (two ninja runs must never
# share a build directory), stage 50 and later for the fuzz one. Only when every stage runs;
# CKPT_WARM=0 turns it off.
warm_pid="" warm_dir=""
if [ -z "${CKPT_ONLY:-}" ] && [ "${CKPT_WARM:-1}" = 1 ]; then
    warm_dir=$(mktemp -d /tmp/ckpt-warm.XXXXXX)
    (
        low() { nice -n 19 ionice -c 3 "$@"; }
        { [ -f "$CKPT_BUILD/build.ninja" ] || meson setup "$CKPT_BUILD"; } &&
            low meson compile -C "$CKPT_BUILD"
        touch "$warm_dir/meson.done"
        cd fuzz && RUSTC_BOOTSTRAP=1 low cargo +stable fuzz build -O -a
    ) >"$warm_dir/log" 2>&1 &
    warm_pid=$!
fi
# warm_wait [FILE]: waits until the warm-up has made FILE, or without FILE until it has ended.
warm_wait() {
    [ -n "$warm_pid" ] || return 0
    local t0 st
    t0=$(date +%s)
    if [ -n "${1:-}" ]; then
        while [ ! -e "$1" ] && st=$(ps -o stat= -p "$warm_pid") && [[ "$st" != Z* ]]; do
            sleep 1
        done
    else
        wait "$warm_pid"
        warm_pid=""
        rm -rf "$warm_dir"
    fi
    echo "=== (waited $(( $(date +%s) - t0 )) s for the warm-up build)"
}

passed=0 failed=0 failed_names=()
start_all=$(date +%s)
for stage in scripts/test.d/*.sh; do
    name=$(basename "$stage" .sh)
    if [ -n "${CKPT_ONLY:-}" ] && [[ "$name" != *"$CKPT_ONLY"* ]]; then
        continue
    fi
    if [ -n "$warm_pid" ] && [[ "$name" > "50" ]]; then
        warm_wait
    elif [ -n "$warm_pid" ] && [[ "$name" > "20" ]] && [ -z "${meson_warm:-}" ]; then
        warm_wait "$warm_dir/meson.done"
        meson_warm=done
    fi
    echo "=== stage $name"
    t0=$(date +%s)
    if bash "$stage"; then
        passed=$((passed + 1))
        echo "=== stage $name passed ($(( $(date +%s) - t0 )) s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "=== stage $name FAILED ($(( $(date +%s) - t0 )) s)"
    fi
done
warm_wait
echo "=== all stages took $(( $(date +%s) - start_all )) s"
[ "$failed" -eq 0 ] || echo "failed stages: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
