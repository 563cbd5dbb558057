#!/usr/bin/env bash
# The CRIU request ckpt's container layer builds next to the one runc 1.1.5 sends, for the
# same busybox container (a bind-mounted file and directory, a tmpfs, a bind-mounted device,
# the default masked paths): both go through criu-recorder.py, which records each request,
# and protoc decodes them. Prints both as text and their differences, for checkpoint and
# restore. docs/containers.md lists the differences and why. Needs root, runc, criu, protoc.
set -euo pipefail
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
proto=${CKPT_RPC_PROTO:-/opt/ckpt-deps/libcriu/usr/include/criu/rpc.proto}
tag=ckpt-containers-$$-cmp
work=/tmp/$tag
state=$work/state
rec=$root/scripts/containers/criu-recorder.py
export CKPT_REAL_CRIU=${CKPT_REAL_CRIU:-$(command -v criu)}
cleanup() {
    [ -f "$work/ckpt.pid" ] && kill -9 "$(cat "$work/ckpt.pid")" 2>/dev/null || true
    for id in "$tag" "$tag-r"; do runc --root "$state" delete -f "$id" >/dev/null 2>&1 || true; done
    sleep 0.3
    for d in /sys/fs/cgroup/*/"$tag"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    [ -n "${CKPT_KEEP_TEST_DIRS:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
(cd "$root" && cargo build --quiet -p ckpt-core --example container)
ex=$root/target/debug/examples/container

b=$work/bundle r=$work/bundle/rootfs
mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$b/host-dir"
cp /bin/busybox "$r/bin/"
for a in sh sleep; do ln -s busybox "$r/bin/$a"; done
echo data >"$b/host-file"
(cd "$b" && runc spec)
jq --arg b "$b" --arg cg "/$tag" '.process.terminal = false
    | .process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /counter; sleep 0.1; done"]
    | .root.readonly = false | .linux.cgroupsPath = $cg
    | .mounts += [
        {destination: "/data/file", type: "bind", source: ($b + "/host-file"), options: ["bind", "ro"]},
        {destination: "/data/dir", type: "none", source: ($b + "/host-dir"), options: ["rbind", "rw"]},
        {destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["size=1m"]},
        {destination: "/dev/net/tun", type: "bind", source: "/dev/net/tun", options: ["bind"]}]' \
    "$b/config.json" >"$b/c.new" && mv "$b/c.new" "$b/config.json"

decode() { # DIR: the first request recorded there, as text, fds and pids blanked
    protoc --decode=criu_req -I "$(dirname "$proto")" "$proto" <"$1/req-0.bin" |
        sed -E 's/^(  (images_dir_fd|pid|work_dir_fd)): .*/\1: N/; s/^(  ?fd): [0-9]+/\1: N/'
}
record() { mkdir -p "$work/$1"; export CKPT_RECORD_DIR=$work/$1; }

runc --root "$state" run -d --pid-file "$work/init.pid" --bundle "$b" "$tag" </dev/null >/dev/null 2>&1
pid=$(cat "$work/init.pid")
record runc-dump
runc --root "$state" --criu "$rec" checkpoint --leave-running --image-path "$work/runc-img" "$tag"
record ckpt-dump
CKPT_CRIU=$rec "$ex" checkpoint "$b" "$pid" "$work/ckpt-img" leave-running >"$work/ckpt-dump.plan"
runc --root "$state" delete -f "$tag"
record runc-restore
runc --root "$state" --criu "$rec" restore -d --image-path "$work/runc-img" --bundle "$b" "$tag-r" </dev/null >/dev/null 2>&1
runc --root "$state" delete -f "$tag-r"
record ckpt-restore
CKPT_CRIU=$rec "$ex" restore "$b" "$work/ckpt-img" "$work/ckpt.pid" >"$work/ckpt-restore.plan"
for op in dump restore; do
    echo "=== $op: runc 1.1.5's request"
    decode "$work/runc-$op" | tee "$work/runc-$op.txt"
    echo "=== $op: ckpt's request"
    decode "$work/ckpt-$op" | sed "s|$work/ckpt-img|$work/runc-img|" | tee "$work/ckpt-$op.txt"
    echo "=== $op: differences (< runc, > ckpt; paths of ckpt's criu-root differ by design)"
    diff <(sort "$work/runc-$op.txt") <(sort "$work/ckpt-$op.txt") || true
done
