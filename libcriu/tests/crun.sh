#!/usr/bin/env bash
# crun 1.21 checkpoints and restores a busybox container with this library loaded instead of
# libcriu: with and without --leave-running, and --pre-dump refused cleanly on a kernel
# without memory tracking. Each operation proves which libcriu.so.2 crun mapped, from
# /proc/<crun pid>/maps while it runs and from the dynamic loader's own trace (LD_DEBUG=libs).
#
# usage: crun.sh LIBDIR WORKDIR   (LIBDIR holds libcriu.so.2; needs CKPT_CRUN, root)
set -uo pipefail
libdir=$1 work=$2
lib="$libdir/libcriu.so.2"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

# crun refuses cgroup hybrid mode: each call runs in a mount namespace without cgroup2. The
# pid stays crun's through unshare, sh and exec.
unmounted='umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'
crun_() { unshare -m sh -c "$unmounted" "$CKPT_CRUN" "$@"; }

bundle=$work/bundle id=ckpt-libcriu-$$
mkdir -p "$bundle/rootfs"/{bin,proc,sys,dev,tmp,etc} "$work/ld"
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
for c in sh sleep mv; do ln -sf busybox "$bundle/rootfs/bin/$c"; done
(cd "$bundle" && "$CKPT_CRUN" spec) || { echo "FATAL - crun spec failed"; exit 1; }
"${CKPT_PYTHON:-python3}" - "$bundle/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
    "i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done"]
c["root"]["readonly"] = False
json.dump(c, open(p, "w"), indent=1)
EOF
count() { cat "$bundle/rootfs/tmp/count" 2>/dev/null || echo -1; }
# waits up to 5 s for the counter to pass $1
counts_past() {
    local i
    for i in $(seq 100); do [ "$(count)" -gt "$1" ] && return 0; sleep 0.05; done
    return 1
}
status() { crun_ state "$id" 2>/dev/null | sed -n 's/.*"status": "\(.*\)".*/\1/p'; }

# Runs crun with this library first on the search path; records the libcriu it mapped
# (from /proc/PID/maps, polled while it runs) in $mapped and the loader's trace in $trace.
traced() {
    local pid
    rm -f "$work"/ld/trace.*
    LD_DEBUG=libs LD_DEBUG_OUTPUT=$work/ld/trace LD_LIBRARY_PATH=$libdir \
        unshare -m sh -c "$unmounted" "$CKPT_CRUN" "$@" </dev/null >"$work/out" 2>&1 &
    pid=$!
    mapped=""
    while kill -0 "$pid" 2>/dev/null; do
        mapped=$(grep -m1 -o '/[^ ]*libcriu[^ ]*' "/proc/$pid/maps" 2>/dev/null) && break
    done
    wait "$pid"
    rc=$?
    trace=$work/ld/trace.$pid
}
mapped_ours() { [ "$mapped" = "$lib" ] && grep -q "calling init: $lib\$" "$trace"; }

crun_ delete -f "$id" >/dev/null 2>&1
crun_ run -d -b "$bundle" "$id" </dev/null >/dev/null 2>&1
check "container $id runs and counts" counts_past 2

traced checkpoint --image-path "$work/img-lr" --leave-running "$id"
check "crun checkpoint --leave-running succeeds (rc $rc)" [ "$rc" -eq 0 ]
check "crun mapped $lib (maps: ${mapped:-nothing seen}; LD_DEBUG: calling init)" mapped_ours
check "CRIU's log says the dump finished" grep -q "Dumping finished successfully" "$work/img-lr/dump.log"
n=$(count)
check "the container still runs and counts after --leave-running" counts_past "$n"

traced checkpoint --pre-dump --image-path "$work/img-pre" "$id"
check "crun checkpoint --pre-dump is refused (rc $rc): $(tail -n1 "$work/out")" \
    sh -c "[ $rc -ne 0 ] && grep -q 'memory tracking not supported' '$work/out'"
check "the refusal came through this library" mapped_ours
n=$(count)
check "the container is untouched by the refused pre-dump" sh -c "[ '$(status)' = running ]"
check "... and counts on" counts_past "$n"
echo "NOTE - pre-dump itself is not exercised: this kernel has no memory change tracking"

traced checkpoint --image-path "$work/img" "$id"
check "crun checkpoint succeeds (rc $rc)" [ "$rc" -eq 0 ]
check "crun mapped $lib for the checkpoint" mapped_ours
stopped=$(count)
sleep 0.3
check "the container is gone and its counter stopped at $stopped" \
    sh -c "[ -z '$(status)' ] && [ $(count) -eq $stopped ]"

traced restore -d --image-path "$work/img" -b "$bundle" "$id"
check "crun restore succeeds (rc $rc): $(tail -n1 "$work/out")" [ "$rc" -eq 0 ]
check "crun mapped $lib for the restore" mapped_ours
check "the restored container runs" sh -c "[ '$(status)' = running ]"
check "its counter goes on from $stopped" counts_past "$stopped"
check "CRIU's log says the restore finished" grep -q "Restore finished successfully" "$work/img/restore.log"

crun_ delete -f "$id" >/dev/null 2>&1
# crun's container sits in the cgroup2 root here, so CRIU dumped that whole hierarchy and
# recreated it under the container's cgroup on restore: remove the container's cgroups, copies
# included, deepest first, or each run nests the last one's leftovers again.
for d in /sys/fs/cgroup/*/"$id"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
done
left=$(find /sys/fs/cgroup -maxdepth 2 -type d -name "$id" | head -n 3)
check "no cgroup of $id is left${left:+: $left}" [ -z "$left" ]
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
