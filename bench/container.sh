#!/usr/bin/env bash
# A busybox runc container (a shell loop that writes no file, so the two restores from one
# rootfs do not disturb each other) checkpointed (--leave-running) and restored, by runc 1.1.5
# and by ckpt's container layer (examples/container, release build), side by side in one run:
# each round runs both, alternating which goes first; the figures are medians of whole-command
# wall times. Then where the time goes: CRIU's own log timestamps split each run into phases
# (medians over the rounds), the time outside CRIU is the wall time minus CRIU's, and the
# last round's longest waits are listed. Needs root, runc, criu.
# usage: bench/container.sh [ROUNDS]
# CKPT_BENCH_RUN_TMPFS=1 runs it all in a private mount namespace with a tmpfs on /run, as
# hosts with systemd have: CRIU keeps its kernel-probe cache (/run/criu.kdat) only on a tmpfs.
set -euo pipefail
if [ -n "${CKPT_BENCH_RUN_TMPFS:-}" ] && [ -z "${CKPT_BENCH_IN_NS:-}" ]; then
    export CKPT_BENCH_IN_NS=1
    exec unshare -m --propagation private bash -c 'mount -t tmpfs -o mode=755 tmpfs /run && exec bash "$0" "$@"' "$0" "$@"
fi
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
. "$(dirname "$0")/container-common.sh"
rounds=${1:-11}
criu=$(command -v criu)
tag=ckpt-containers-$$-bench
work=/tmp/$tag
state=$work/state
cleanup() {
    for id in "$tag" "$tag-r"; do runc --root "$state" delete -f "$id" >/dev/null 2>&1 || true; done
    [ -f "$work/ckpt.pid" ] && kill -9 "$(cat "$work/ckpt.pid")" 2>/dev/null || true
    sleep 0.3
    remove_cgroups "$tag"
    [ -n "${CKPT_KEEP_TEST_DIRS:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
ex=$(example_build "$root")
export CKPT_CRIU=$criu

b=$work/bundle
busybox_bundle "$b" "$tag"

now() { date +%s%N; }
ms() { echo "scale=1; ($2 - $1) / 1000000" | bc; }
start() { # a fresh container, pid in $pid
    run_container "$state" "$b" "$tag" "$work/init.pid"
    pid=$(cat "$work/init.pid")
}
stop() { runc --root "$state" delete -f "$1" >/dev/null 2>&1 || true; }

# CRIU's log, as the times (ms) at which each marker first appears, then its last line.
marks() {
    local log=$1; shift
    awk -v m="$(printf '%s\n' "$@")" 'BEGIN { n = split(m, k, "\n") }
        /^\(/ { t = substr($1, 2, 9) * 1000; last = t
                 for (i = 1; i <= n; i++) if (!(i in at) && k[i] != "" && index($0, k[i])) at[i] = t }
        END { for (i = 1; i <= n; i++) if (k[i] != "") printf "%.1f ", (i in at) ? at[i] : -1; printf "%.1f\n", last }' "$log"
}
dump_marks=("Dumping processes (pid" "Seized task" "mnt: Dumping mountpoints" "Dumping file-locks" "Namespaces dump complete")
dump_names=("CRIU start-up, kernel probes" "freezing, seizing" "tasks, cgroups" "mount tree (tmpfs: tar)" "namespaces (net: conntrack)" "writing, unfreezing")
restore_marks=("cg: Preparing cgroups yard" "Running pre-restore scripts" "Running post-setup-namespaces scripts" "Restore finished successfully")
restore_names=("CRIU start-up, kernel probes" "cgroups" "mount tree, namespaces" "tasks, resume" "after resume")
# Appends one run's phase durations (ms) and CRIU's total to FILE: wall criu p1 p2 ...
phases() {
    local file=$1 wall=$2 log=$3; shift 3
    [ -f "$log" ] || return 0
    marks "$log" "$@" | awk -v w="$wall" '{ printf "%s %s", w, $NF; p = 0
        for (i = 1; i <= NF; i++) { t = ($i < 0) ? p : $i; printf " %.1f", t - p; p = t } print "" }' >>"$file"
}

: >"$work/d-runc"; : >"$work/d-ckpt"; : >"$work/r-runc"; : >"$work/r-ckpt"
start
for i in $(seq "$rounds"); do
    rm -rf "$work/ri" "$work/ci"
    run_runc() {
        local t0; t0=$(now)
        runc --root "$state" --criu "$criu" checkpoint --leave-running --image-path "$work/ri" "$tag" >/dev/null 2>&1
        ms "$t0" "$(now)" >>"$work/d-runc"
        phases "$work/pd-runc" "$(tail -n1 "$work/d-runc")" "$work/ri/dump.log" "${dump_marks[@]}"
    }
    run_ckpt() {
        local t0; t0=$(now)
        "$ex" checkpoint "$b" "$pid" "$work/ci" leave-running >/dev/null
        ms "$t0" "$(now)" >>"$work/d-ckpt"
        phases "$work/pd-ckpt" "$(tail -n1 "$work/d-ckpt")" "$work/ci/dump.log" "${dump_marks[@]}"
    }
    if [ $((i % 2)) -eq 1 ]; then run_runc; run_ckpt; else run_ckpt; run_runc; fi
    # Restores: each from its own images, into a container that was deleted first.
    stop "$tag"
    rr() {
        local t0; t0=$(now)
        runc --root "$state" --criu "$criu" restore -d --image-path "$work/ri" --bundle "$b" "$tag-r" </dev/null >/dev/null 2>&1
        ms "$t0" "$(now)" >>"$work/r-runc"
        phases "$work/pr-runc" "$(tail -n1 "$work/r-runc")" "$work/ri/restore.log" "${restore_marks[@]}"
        stop "$tag-r"
    }
    rc() {
        local t0; t0=$(now)
        "$ex" restore "$b" "$work/ci" "$work/ckpt.pid" >/dev/null
        ms "$t0" "$(now)" >>"$work/r-ckpt"
        phases "$work/pr-ckpt" "$(tail -n1 "$work/r-ckpt")" "$work/ci/restore.log" "${restore_marks[@]}"
        kill -9 "$(cat "$work/ckpt.pid")"; rm -f "$work/ckpt.pid"; sleep 0.2
    }
    if [ $((i % 2)) -eq 1 ]; then rr; rc; else rc; rr; fi
    start
done
dr=$(median <"$work/d-runc") dc=$(median <"$work/d-ckpt") rr=$(median <"$work/r-runc") rc=$(median <"$work/r-ckpt")
printf '%-34s %10s %10s %8s %8s\n' "busybox container ($rounds rounds)" "runc ms" "ckpt ms" "ratio" "target"
printf '%-34s %10s %10s %8s %8s\n' "checkpoint --leave-running" "$dr" "$dc" "$(echo "scale=2; $dc / $dr" | bc)" "0.35"
printf '%-34s %10s %10s %8s %8s\n' "restore" "$rr" "$rc" "$(echo "scale=2; $rc / $rr" | bc)" "0.50"
# Where the time goes: medians of each phase (CRIU's log timestamps) and of the time outside
# CRIU (the whole command minus CRIU's log span: the tool's own work, starting criu).
col() { awk -v c="$2" '{print $c}' "$1" | median; }
table() { # title pfile-runc pfile-ckpt names...
    local title=$1 fr=$2 fc=$3; shift 3
    [ -s "$fr" ] && [ -s "$fc" ] || return 0
    printf '%-34s %10s %10s\n' "$title: phases (medians)" "runc ms" "ckpt ms"
    local i=3
    for n in "$@"; do printf '  %-32s %10s %10s\n' "$n" "$(col "$fr" $i)" "$(col "$fc" $i)"; i=$((i + 1)); done
    printf '  %-32s %10s %10s\n' "CRIU in all" "$(col "$fr" 2)" "$(col "$fc" 2)"
    printf '  %-32s %10s %10s\n' "outside CRIU (wall - CRIU)" \
        "$(awk '{print $1 - $2}' "$fr" | median)" "$(awk '{print $1 - $2}' "$fc" | median)"
}
table "checkpoint" "$work/pd-runc" "$work/pd-ckpt" "${dump_names[@]}"
table "restore" "$work/pr-runc" "$work/pr-ckpt" "${restore_names[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); /run: $(stat -f -c %T /run)"
# The last round's logs: the three longest waits between consecutive log lines, each with the
# line that ends it. sed reads all of sort's output: head closed the pipe early, and under
# pipefail the SIGPIPE sort got ended the script (exit 141) before ckpt's lines.
gaps() {
    awk '/^\(/ { t = substr($1, 2, 9) + 0; if (n++) printf "%.1f %s\n", (t - p) * 1000, substr($0, 13, 60); p = t }' "$1" |
        sort -rn | sed -n '1,3s/^/      /p'
}
total() { tail -n1 "$1" | sed -E 's/^\(([0-9.]+)\).*/\1/' | awk '{printf "%.1f", $1 * 1000}'; }
for who in runc:ri ckpt:ci; do
    d=$work/${who#*:}/dump.log
    [ -f "$d" ] || continue
    echo "${who%%:*}: CRIU's dump took $(total "$d") ms; its longest waits (ms, then the line that ended them):"
    gaps "$d"
done
