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

passed=0 failed=0 failed_names=()
start_all=$(date +%s)
for stage in scripts/test.d/*.sh; do
    name=$(basename "$stage" .sh)
    if [ -n "${CKPT_ONLY:-}" ] && [[ "$name" != *"$CKPT_ONLY"* ]]; then
        continue
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
echo "=== all stages took $(( $(date +%s) - start_all )) s"
[ "$failed" -eq 0 ] || echo "failed stages: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
