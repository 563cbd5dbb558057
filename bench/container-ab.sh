#!/usr/bin/env bash
# Two builds of ckpt's container example (core/examples/container.rs) checkpointing
# (--leave-running) one busybox runc container, interleaved (each round runs both, alternating
# which goes first): the medians of the whole command's wall time and of CRIU's mount-tree
# phase (from "mnt: Dumping mountpoints" to "Dumping file-locks" in CRIU's log), for
# measuring one change. The new build is this tree's (release); the old one is given.
# Needs root, runc, criu.
# usage: bench/container-ab.sh OLD_EXAMPLE_BINARY [ROUNDS]
set -euo pipefail
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
. "$(dirname "$0")/container-common.sh"
old=${1:?usage: bench/container-ab.sh OLD_EXAMPLE_BINARY [ROUNDS]}
rounds=${2:-15}
criu=$(command -v criu)
tag=ckpt-containers-$$-ab
work=/tmp/$tag
state=$work/state
cleanup() {
    runc --root "$state" delete -f "$tag" >/dev/null 2>&1 || true
    sleep 0.3
    remove_cgroups "$tag"
    rm -rf "$work"
}
trap cleanup EXIT
new=$(example_build "$root")
export CKPT_CRIU=$criu
b=$work/bundle
busybox_bundle "$b" "$tag"
run_container "$state" "$b" "$tag" "$work/init.pid"
pid=$(cat "$work/init.pid")
mnt() { # CRIU's mount-tree phase (ms) in the log $1
    awk '/^\(/ { t = substr($1, 2, 9) * 1000 }
        /mnt: Dumping mountpoints/ && !s { s = t } /Dumping file-locks/ && !e { e = t }
        END { printf "%.1f\n", e - s }' "$1"
}
one() { # which binary
    local bin=$1 t0 t1
    rm -rf "$work/img-$2"
    t0=$(date +%s%N)
    "$bin" checkpoint "$b" "$pid" "$work/img-$2" leave-running >/dev/null
    t1=$(date +%s%N)
    echo "scale=1; ($t1 - $t0) / 1000000" | bc >>"$work/w-$2"
    mnt "$work/img-$2/dump.log" >>"$work/m-$2"
}
for i in $(seq "$rounds"); do
    if [ $((i % 2)) -eq 1 ]; then one "$old" old; one "$new" new; else one "$new" new; one "$old" old; fi
done
printf '%-34s %10s %10s %8s\n' "checkpoint --leave-running ($rounds)" "old ms" "new ms" "ratio"
wo=$(median <"$work/w-old") wn=$(median <"$work/w-new")
mo=$(median <"$work/m-old") mn=$(median <"$work/m-new")
printf '%-34s %10s %10s %8s\n' "whole command" "$wo" "$wn" "$(echo "scale=2; $wn / $wo" | bc)"
printf '%-34s %10s %10s %8s\n' "CRIU's mount tree phase" "$mo" "$mn" "$(echo "scale=2; $mn / $mo" | bc)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
