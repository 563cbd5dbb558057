#!/usr/bin/env bash
# The demo: checkpoint a running program with the ckpt command, look at what CRIU reported,
# restore it, and see it carry on from where it was. Run as root on a fresh machine of the
# kind the README describes: it installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "the demo checkpoints a real process with CRIU and needs root" >&2
    exit 2
fi

if [ -t 1 ]; then
    say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '\n==> %s\n' "$*"; }
fi
build_log=$root/build/demo/build.log

say "Installing what ckpt needs (CRIU 4.1.1, meson, Go, ...): scripts/setup.sh"
bash scripts/setup.sh
# shellcheck disable=SC1091
. /opt/ckpt-deps/env.sh
export PATH="/usr/local/sbin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

say "Building the library (meson + cargo) and the ckpt command (Go)"
mkdir -p "$root/build/demo"
run_logged() {
    if ! "$@" >>"$build_log" 2>&1; then
        echo "failed: $*; the end of $build_log:" >&2
        tail -n 30 "$build_log" >&2
        exit 1
    fi
}
: >"$build_log"
bd=$root/build/demo/meson
stage=$root/build/demo/stage
[ -f "$bd/build.ninja" ] || run_logged meson setup "$bd"
run_logged meson compile -C "$bd"
rm -rf "$stage"
run_logged meson install -C "$bd" --destdir "$stage"
pc=$(find "$stage" -name ckpt.pc -print -quit)
libdir=$(dirname "$(dirname "$pc")")
ckpt=$root/build/demo/bin/ckpt
# cgo finds the library by its pkg-config name; the rpath lets the command run from anywhere.
(cd go && run_logged env PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$stage" \
    GOFLAGS=-mod=readonly GOPROXY=off CGO_LDFLAGS="-Wl,-rpath,$libdir" go build -o "$ckpt" ./cmd/ckpt)
echo "built $ckpt (log: $build_log)"
"$ckpt" check

work=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
workload_pid=""
restored_pid=""
cleanup() {
    for p in $restored_pid $workload_pid; do
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
counter=$work/counter

say "Starting a sample workload: a shell loop that counts, ten times a second, into $counter"
# setsid: the workload is a session of its own, so CRIU needs no --shell-job; --fork leaves it
# a child of init, which reaps it once the checkpoint has killed it.
setsid --fork sh -c 'echo $$ > "$2"; i=0
    while :; do i=$((i+1)); echo "$i" > "$1.tmp"; mv "$1.tmp" "$1"; sleep 0.1; done' \
    workload "$counter" "$work/workload.pid" </dev/null >/dev/null 2>&1
sleep 2
workload_pid=$(cat "$work/workload.pid")
echo "pid $workload_pid is counting: $(cat "$counter"), then after a second $(sleep 1; cat "$counter")"

say "Checkpointing it: $(basename "$ckpt") checkpoint --image-path $work/images --stats $workload_pid"
"$ckpt" checkpoint --image-path "$work/images" --stats "$workload_pid"
at_checkpoint=$(cat "$counter")
# CRIU killed it once its images were written. Its pids must be free again before the
# restore: wait until init has reaped its whole session.
for _ in $(seq 100); do
    [ -z "$(pgrep -s "$workload_pid" || true)" ] && break
    sleep 0.05
done
workload_pid=""
sleep 1
echo "the workload is gone; the counter stopped at $(cat "$counter")"
echo "the images: $(find "$work/images" -name '*.img' | wc -l) files in $work/images"

say "Restoring it: $(basename "$ckpt") restore --image-path $work/images --detach --pid-file $work/pid --stats"
"$ckpt" restore --image-path "$work/images" --detach --pid-file "$work/pid" --stats
restored_pid=$(cat "$work/pid")
sleep 2
now=$(cat "$counter")

say "It carried on"
echo "counter at the checkpoint: $at_checkpoint"
echo "counter 2 s after the restore: $now (pid $restored_pid, the same pid as before)"
if [ "$now" -gt "$at_checkpoint" ] && [ "$now" -lt $((at_checkpoint + 50)) ]; then
    echo "the restored process continued counting from $at_checkpoint, with the memory it had."
else
    echo "unexpected: the counter did not continue from $at_checkpoint" >&2
    exit 1
fi

say "Cleaning up"
kill "$restored_pid"
restored_pid=""

if command -v runc >/dev/null && [ -x /bin/busybox ]; then
    say "A runc container: ckpt works its CRIU options out from the bundle"
    cid=ckpt-demo-$$
    bundle=$work/bundle
    mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/data"
    cp /bin/busybox "$bundle/rootfs/bin/"
    for a in sh sleep mv; do ln -s busybox "$bundle/rootfs/bin/$a"; done
    (cd "$bundle" && runc spec)
    jq --arg d "$bundle/data" --arg cg "/$cid" '.process.terminal = false | .root.readonly = false
        | .process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /data/counter.new; mv /data/counter.new /data/counter; sleep 0.1; done"]
        | .linux.cgroupsPath = $cg
        | .mounts += [{destination: "/data", type: "bind", source: $d, options: ["rbind"]}]' \
        "$bundle/config.json" >"$bundle/c.new" && mv "$bundle/c.new" "$bundle/config.json"
    container_cleanup() {
        runc --root "$work/runc" delete -f "$cid" >/dev/null 2>&1 || true
        [ -n "$restored_pid" ] && kill -9 "$restored_pid" 2>/dev/null || true
        sleep 0.3
        for d in /sys/fs/cgroup/*/"$cid"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
        cleanup
    }
    trap container_cleanup EXIT
    runc --root "$work/runc" run -d --pid-file "$work/cpid" --bundle "$bundle" "$cid" </dev/null >/dev/null 2>&1
    sleep 2
    cpid=$(cat "$work/cpid")
    echo "container $cid (init pid $cpid) counts into $bundle/data/counter: $(cat "$bundle/data/counter")"
    echo "$(basename "$ckpt") checkpoint --explain --bundle $bundle --pid $cpid: the CRIU options and why"
    "$ckpt" checkpoint --image-path "$work/cimages" --explain --bundle "$bundle" --pid "$cpid" |
        jq -r '.criu[] | "   \(.option) \(.value | tostring | .[0:60]): \(.reason | .[0:70])"' | head -n 12
    say "Checkpointing it: $(basename "$ckpt") checkpoint --image-path $work/cimages --bundle $bundle --pid $cpid"
    "$ckpt" checkpoint --image-path "$work/cimages" --bundle "$bundle" --pid "$cpid"
    at_checkpoint=$(cat "$bundle/data/counter")
    runc --root "$work/runc" delete -f "$cid" >/dev/null 2>&1
    echo "checkpointed at $at_checkpoint; runc deleted the container"
    say "Restoring it: $(basename "$ckpt") restore --image-path $work/cimages --bundle $bundle --detach --pid-file $work/rpid"
    "$ckpt" restore --image-path "$work/cimages" --bundle "$bundle" --detach --pid-file "$work/rpid"
    restored_pid=$(cat "$work/rpid")
    sleep 2
    now=$(cat "$bundle/data/counter")
    echo "counter 2 s after the restore: $now (restored init pid $restored_pid)"
    if [ "$now" -gt "$at_checkpoint" ] && [ "$now" -lt $((at_checkpoint + 50)) ]; then
        echo "the restored container continued counting from $at_checkpoint."
    else
        echo "unexpected: the container's counter did not continue from $at_checkpoint" >&2
        exit 1
    fi
fi
echo "done."
