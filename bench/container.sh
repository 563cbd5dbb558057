#!/usr/bin/env bash
# A busybox runc container (a shell loop that writes no file, so the two restores from one
# rootfs do not disturb each other) checkpointed (--leave-running) and restored, by runc 1.1.5
# and by ckpt's container layer (examples/container, release build), side by side in one run:
# each round runs both, alternating which goes first; the figures are medians of whole-command
# wall times. Then, from CRIU's logs of the last round, where the time goes (freezing, the
# network lock, cgroups). Needs root, runc, criu. usage: bench/container.sh [ROUNDS]
set -euo pipefail
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
rounds=${1:-11}
criu=$(command -v criu)
tag=ckpt-containers-$$-bench
work=/tmp/$tag
state=$work/state
cleanup() {
    for id in "$tag" "$tag-r"; do runc --root "$state" delete -f "$id" >/dev/null 2>&1 || true; done
    [ -f "$work/ckpt.pid" ] && kill -9 "$(cat "$work/ckpt.pid")" 2>/dev/null || true
    sleep 0.3
    for d in /sys/fs/cgroup/*/"$tag"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    [ -n "${CKPT_KEEP_TEST_DIRS:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
(cd "$root" && cargo build --quiet --release -p ckpt-core --example container)
ex=$root/target/release/examples/container
export CKPT_CRIU=$criu

b=$work/bundle r=$work/bundle/rootfs
mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
cp /bin/busybox "$r/bin/"
for a in sh sleep; do ln -s busybox "$r/bin/$a"; done
(cd "$b" && runc spec)
jq --arg cg "/$tag" '.process.terminal = false | .root.readonly = false | .linux.cgroupsPath = $cg
    | .process.args = ["sh", "-c", "while :; do sleep 0.1; done"]' \
    "$b/config.json" >"$b/c.new" && mv "$b/c.new" "$b/config.json"

now() { date +%s%N; }
ms() { echo "scale=1; ($2 - $1) / 1000000" | bc; }
median() { sort -n | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m}'; }
start() { # a fresh container, pid in $pid
    runc --root "$state" run -d --pid-file "$work/init.pid" --bundle "$b" "$tag" </dev/null >/dev/null 2>&1
    pid=$(cat "$work/init.pid")
    sleep 0.3
}
stop() { runc --root "$state" delete -f "$1" >/dev/null 2>&1 || true; }

: >"$work/d-runc"; : >"$work/d-ckpt"; : >"$work/r-runc"; : >"$work/r-ckpt"
start
for i in $(seq "$rounds"); do
    rm -rf "$work/ri" "$work/ci"
    run_runc() {
        local t0; t0=$(now)
        runc --root "$state" --criu "$criu" checkpoint --leave-running --image-path "$work/ri" "$tag" >/dev/null 2>&1
        ms "$t0" "$(now)" >>"$work/d-runc"
    }
    run_ckpt() {
        local t0; t0=$(now)
        "$ex" checkpoint "$b" "$pid" "$work/ci" leave-running >/dev/null
        ms "$t0" "$(now)" >>"$work/d-ckpt"
    }
    if [ $((i % 2)) -eq 1 ]; then run_runc; run_ckpt; else run_ckpt; run_runc; fi
    # Restores: each from its own images, into a container that was deleted first.
    stop "$tag"
    rr() {
        local t0; t0=$(now)
        runc --root "$state" --criu "$criu" restore -d --image-path "$work/ri" --bundle "$b" "$tag-r" </dev/null >/dev/null 2>&1
        ms "$t0" "$(now)" >>"$work/r-runc"
        stop "$tag-r"
    }
    rc() {
        local t0; t0=$(now)
        "$ex" restore "$b" "$work/ci" "$work/ckpt.pid" >/dev/null
        ms "$t0" "$(now)" >>"$work/r-ckpt"
        kill -9 "$(cat "$work/ckpt.pid")"; rm -f "$work/ckpt.pid"; sleep 0.2
    }
    if [ $((i % 2)) -eq 1 ]; then rr; rc; else rc; rr; fi
    start
done
dr=$(median <"$work/d-runc") dc=$(median <"$work/d-ckpt") rr=$(median <"$work/r-runc") rc=$(median <"$work/r-ckpt")
printf '%-34s %10s %10s %8s %8s\n' "busybox container ($rounds rounds)" "runc ms" "ckpt ms" "ratio" "target"
printf '%-34s %10s %10s %8s %8s\n' "checkpoint --leave-running" "$dr" "$dc" "$(echo "scale=2; $dc / $dr" | bc)" "0.35"
printf '%-34s %10s %10s %8s %8s\n' "restore" "$rr" "$rc" "$(echo "scale=2; $rc / $rr" | bc)" "0.50"
# Where the time goes, from CRIU's own timestamps in the last round's logs: the three longest
# waits between consecutive log lines, each with the line that ends it.
gaps() {
    awk '/^\(/ { t = substr($1, 2, 9) + 0; if (n++) printf "%.1f %s\n", (t - p) * 1000, substr($0, 13, 60); p = t }' "$1" |
        sort -rn | head -n 3 | sed 's/^/      /'
}
total() { tail -n1 "$1" | sed -E 's/^\(([0-9.]+)\).*/\1/' | awk '{printf "%.1f", $1 * 1000}'; }
for who in runc:ri ckpt:ci; do
    d=$work/${who#*:}/dump.log
    [ -f "$d" ] || continue
    echo "${who%%:*}: CRIU's dump took $(total "$d") ms; its longest waits (ms, then the line that ended them):"
    gaps "$d"
done
