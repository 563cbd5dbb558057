#!/usr/bin/env bash
# Records what the container layer reads from the host, from real runc and crun containers,
# for the root-free plan tests (tests/container_plan.rs): config.json, the runtime's state
# (runc's state.json, crun's status), the init's mountinfo, cgroup file and namespace links,
# the host's mountinfo, and the facts the reading step stats (bind source and masked path
# types, namespace file inodes). Run as root: bash core/tests/data/containers/capture.sh
#
# Each container has a bind-mounted file and directory, a tmpfs, a bind-mounted device, a
# device node from linux.devices, the default masked paths, and a bind mount that a
# createContainer hook adds (as GPU hooks do; it is not in config.json's mounts). The runc one also joins a network
# namespace given by path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
crun=${CKPT_CRUN:-/opt/ckpt-deps/crun/usr/bin/crun}
tag=ckpt-containers-$$
work=/tmp/$tag
netns=$tag-net
cleanup() {
    runc --root "$work/runc-state" delete -f "$tag-runc" >/dev/null 2>&1 || true
    unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"' "$crun" \
        --root "$work/crun-state" delete -f "$tag-crun" >/dev/null 2>&1 || true
    ip netns delete "$netns" 2>/dev/null || true
    for d in /sys/fs/cgroup/*/"$tag"-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"

bundle() { # NAME: a bundle in $work/NAME
    local b=$work/$1 r=$work/$1/rootfs
    mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/hooked" "$b/host-dir" "$b/hook-src"
    cp /bin/busybox "$r/bin/"
    for a in sh sleep echo cat; do ln -s busybox "$r/bin/$a"; done
    echo data >"$b/host-file"
    (cd "$b" && runc spec)
    jq --arg b "$b" --arg cg "/$tag-$1" '.process.terminal = false
        | .process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /counter; sleep 0.1; done"]
        | .root.readonly = false
        | .linux.cgroupsPath = $cg
        | .mounts += [
            {destination: "/data/file", type: "bind", source: ($b + "/host-file"), options: ["bind", "ro"]},
            {destination: "/data/dir", type: "none", source: ($b + "/host-dir"), options: ["rbind", "rw"]},
            {destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "size=1m"]},
            {destination: "/dev/net/tun", type: "bind", source: "/dev/net/tun", options: ["bind"]}]
        | .linux.devices = [{path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 438}]
        | .hooks.createContainer = [{path: "/bin/mount", args: ["mount", "--bind", ($b + "/hook-src"), ($b + "/rootfs/hooked")]}]' \
        "$b/config.json" >"$b/config.new"
    mv "$b/config.new" "$b/config.json"
}

record() { # NAME PID STATEFILE
    local out=$here/$1 pid=$2
    mkdir -p "$out"
    cp "$work/$1/config.json" "$out/config.json"
    cp "$3" "$out/$(basename "$3")"
    cat "/proc/$pid/mountinfo" >"$out/mountinfo"
    cat "/proc/$pid/cgroup" >"$out/cgroup"
    cat /proc/self/mountinfo >"$out/host-mountinfo"
    echo "$pid" >"$out/pid"
    for ns in /proc/"$pid"/ns/*; do echo "$(basename "$ns") $(readlink "$ns")"; done >"$out/ns"
    # What the reading step stats: the type of every mountpoint and masked path in the
    # container, and the inode of each namespace path in config.json.
    awk '{print $5}' "/proc/$pid/mountinfo" | while read -r m; do
        if [ -d "/proc/$pid/root$m" ]; then echo "dir $m"; elif [ -e "/proc/$pid/root$m" ]; then echo "file $m"; fi
    done >"$out/types"
    jq -r '.linux.maskedPaths[]' "$work/$1/config.json" | while read -r m; do
        if [ -d "/proc/$pid/root$m" ]; then echo "dir $m"; elif [ -e "/proc/$pid/root$m" ]; then echo "file $m"; else echo "missing $m"; fi
    done >"$out/masked"
    jq -r '.linux.namespaces[] | select(.path) | "\(.type) \(.path)"' "$work/$1/config.json" | while read -r t p; do
        echo "$t $p $(stat -L -c %i "$p")"
    done >"$out/nspaths"
    sed -i "s|$work|/tmp/ckpt-containers-CAPTURE|g; s|$tag|ckpt-containers-CAPTURE|g" "$out"/*
}

ip netns add "$netns"
bundle runc
jq --arg n "/var/run/netns/$netns" '.linux.namespaces = [.linux.namespaces[] | if .type == "network" then .path = $n else . end]' \
    "$work/runc/config.json" >"$work/runc/c.new" && mv "$work/runc/c.new" "$work/runc/config.json"
runc --root "$work/runc-state" run -d --pid-file "$work/runc.pid" --bundle "$work/runc" "$tag-runc" </dev/null >/dev/null 2>&1
pid=$(cat "$work/runc.pid")
sleep 0.3
record runc "$pid" "$work/runc-state/$tag-runc/state.json"
runc --root "$work/runc-state" delete -f "$tag-runc"

bundle crun
crun_() { unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"' "$crun" --root "$work/crun-state" "$@"; }
crun_ run -d --pid-file "$work/crun.pid" --bundle "$work/crun" "$tag-crun" </dev/null >/dev/null 2>&1
pid=$(cat "$work/crun.pid")
sleep 0.3
record crun "$pid" "$work/crun-state/$tag-crun/status"
crun_ delete -f "$tag-crun"
echo "recorded into $here/runc and $here/crun"
