#!/usr/bin/env bash
# Two builds of ckpt's container example (core/examples/container.rs) restoring one busybox
# runc container from the same images, interleaved (each round runs both, alternating which
# goes first; the container's cgroups are removed before each restore, so CRIU makes them
# every time): the medians of the whole command's wall time, of CRIU's log span, of CRIU's
# first write of the restored init to a cgroup.procs (from the first "`-> ... cgroup.procs"
# line of "cg: Move into" to the next line), of CRIU's phase "mount tree, namespaces" (which
# holds that write) and of the time outside CRIU (the whole command minus CRIU's log span),
# for measuring one change. The new
# build is this tree's (release); the old one is given. Needs root, runc, criu.
# usage: bench/container-ab-restore.sh OLD_EXAMPLE_BINARY [ROUNDS]
set -euo pipefail
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
. "$(dirname "$0")/container-common.sh"
old=${1:?usage: bench/container-ab-restore.sh OLD_EXAMPLE_BINARY [ROUNDS]}
rounds=${2:-15}
criu=$(command -v criu)
tag=ckpt-containers-$$-abr
work=/tmp/$tag
state=$work/state
cleanup() {
    runc --root "$state" delete -f "$tag" >/dev/null 2>&1 || true
    [ -f "$work/r.pid" ] && kill -9 "$(cat "$work/r.pid")" 2>/dev/null || true
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
"$new" checkpoint "$b" "$(cat "$work/init.pid")" "$work/img" >/dev/null
runc --root "$state" delete -f "$tag" >/dev/null 2>&1
sleep 0.3
remove_cgroups "$tag"
# CRIU's log span, its first cgroup.procs write and its phase "mount tree, namespaces" (from
# "Running pre-restore scripts" to "Running post-setup-namespaces scripts", as
# bench/container.sh cuts it; it holds that write) (ms), from the log $1.
logt() {
    awk '/^\(/ { t = substr($1, 2, 9) * 1000; last = t
            if (w == 1 && !e) e = t
            if (index($0, "`-> ") && index($0, "cgroup.procs") && !w) { w = 1; s = t }
            if (index($0, "Running pre-restore scripts") && !a) a = t
            if (index($0, "Running post-setup-namespaces scripts") && !b) b = t }
        END { printf "%.1f %.2f %.1f\n", last, e - s, b - a }' "$1"
}
one() { # binary, name
    local t0 t1
    t0=$(date +%s%N)
    "$1" restore "$b" "$work/img" "$work/r.pid" >/dev/null
    t1=$(date +%s%N)
    echo "$(echo "scale=1; ($t1 - $t0) / 1000000" | bc) $(logt "$work/img/restore.log")" >>"$work/t-$2"
    kill -9 "$(cat "$work/r.pid")"
    rm -f "$work/r.pid"
    sleep 0.2
    remove_cgroups "$tag"
}
for i in $(seq "$rounds"); do
    if [ $((i % 2)) -eq 1 ]; then one "$old" old; one "$new" new; else one "$new" new; one "$old" old; fi
done
col() { awk -v c="$2" '{print $c}' "$work/t-$1" | median; }
printf '%-34s %10s %10s %8s\n' "restore ($rounds rounds, medians)" "old ms" "new ms" "ratio"
for c in 1:"whole command" 2:"CRIU's log span" 3:"CRIU's first cgroup.procs write" 4:"mount tree, namespaces"; do
    o=$(col old "${c%%:*}") n=$(col new "${c%%:*}")
    printf '%-34s %10s %10s %8s\n' "${c#*:}" "$o" "$n" "$(echo "scale=2; $n / $o" | bc 2>/dev/null || echo -)"
done
# The tool's own time and criu's start-up and exit: the whole command minus CRIU's log span.
o=$(awk '{print $1 - $2}' "$work/t-old" | median) n=$(awk '{print $1 - $2}' "$work/t-new" | median)
printf '%-34s %10s %10s %8s\n' "outside CRIU (whole - span)" "$o" "$n" "$(echo "scale=2; $n / $o" | bc)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
