#!/usr/bin/env bash
# A real runc container, checkpointed and restored through ckpt's C API and its container
# layer (ckpt_container_*): runc runs a busybox container that counts into a file, `runc
# checkpoint` dumps it once (the baseline: the setup works), then ckpt dumps it from its
# bundle and init pid alone and the result is compared with runc's images; the container is
# killed and deleted, ckpt restores it from the bundle, and the counter carries on.
#
# The container-level CRIU options (root, external bind/cgroup/masked/device mounts, freezer
# cgroup, empty network namespace, cgroup mode and roots, network lock) are the layer's: the
# explain output shows each with its reason. docs/containers.md compares them with runc's.
set -euo pipefail
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CKPT_BUILD:-$root/builddir}
export PATH="/usr/local/sbin:$PATH"
criu=$(command -v criu)
command -v runc >/dev/null || { echo "runc is not installed"; exit 1; }
[ -x /bin/busybox ] || { echo "/bin/busybox (busybox-static) is not installed"; exit 1; }

work=$(mktemp -d /tmp/ckpt-runc.XXXXXX)
id=ckpt-runc-$$
state=$work/runc-state
rcg=() # the container's cgroup directories, "controller-mount:path", for cleanup
restored=""
cleanup() {
    [ -n "$restored" ] && kill -9 "$restored" 2>/dev/null || true
    runc --root "$state" kill "$id" KILL >/dev/null 2>&1 || true
    runc --root "$state" delete -f "$id" >/dev/null 2>&1 || true
    # CRIU recreated the cgroups on restore; nobody else removes them once the tree is gone.
    local dir
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -n "$restored" ] && [ -d "/proc/$restored" ] && sleep 0.1 || break
    done
    for dir in "${rcg[@]}"; do rmdir "$dir" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

# The library, installed into a private prefix; a small C client of ckpt.h plays runc's part.
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson install -C "$build" --destdir "$work/stage" --quiet >/dev/null
pc=$(find "$work/stage" -name ckpt.pc -print -quit)
libdir=$(dirname "$(dirname "$pc")")
cp "$root/c-tests/runc_client.c" "$work/runc-ckpt.c"
# shellcheck disable=SC2046
gcc -Wall -Wextra -Werror -o "$work/runc-ckpt" "$work/runc-ckpt.c" \
    $(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$work/stage pkg-config --cflags --libs ckpt) \
    -Wl,-rpath,"$libdir"
drv=$work/runc-ckpt

# The bundle: busybox-static as the rootfs, runc's default spec, a counting shell loop.
bundle=$work/bundle
rootfs=$bundle/rootfs
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/"
for a in sh sleep echo; do ln -s busybox "$rootfs/bin/$a"; done
(cd "$bundle" && runc spec)
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /counter; sleep 0.1; done"]
    | .root.readonly = false' "$bundle/config.json" >"$bundle/config.new"
mv "$bundle/config.new" "$bundle/config.json"
counter=$rootfs/counter
count() { # empty while being rewritten (`echo $i > /counter` truncates first): look again
    local c n
    for n in $(seq 20); do
        c=$(cat "$counter" 2>/dev/null) || true
        [ -n "$c" ] && break
        sleep 0.01
    done
    echo "${c:-0}"
}
advancing() { # true when the counter moves within 2 s
    local c0 n
    c0=$(count)
    for n in $(seq 20); do
        sleep 0.1
        [ "$(count)" -gt "$c0" ] && return 0
    done
    return 1
}

runc --root "$state" run -d --pid-file "$work/init.pid" --bundle "$bundle" "$id" \
    </dev/null >/dev/null 2>&1
pid=$(cat "$work/init.pid")
if advancing; then ok "runc runs the container (init pid $pid, counter $(count))"; else bad "container does not count"; fi

# The container's cgroups, for cleanup: runc made them, CRIU recreates them on restore.
while IFS=: read -r _ ctrl path; do
    case $ctrl in "") dir=unified ;; name=*) dir=${ctrl#name=} ;; *) dir=${ctrl%%,*} ;; esac
    rcg+=("/sys/fs/cgroup/$dir$path")
done <"/proc/$pid/cgroup"
freezer=/sys/fs/cgroup/freezer$(awk -F: '$2 == "freezer" {print $3}' "/proc/$pid/cgroup")

# The layer's plan, explained: every CRIU option with a reason.
if "$drv" explain pid="$pid" images="$work/explain" bundle="$bundle" >"$work/explain.json" 2>&1 \
    && jq -e '.operation == "checkpoint" and (.criu | length) > 5 and all(.criu[]; (.reason | length) > 10)
        and any(.criu[]; .option == "root" and .value == "'"$rootfs"'")
        and any(.criu[]; .option == "freeze_cgroup" and .value == "'"$freezer"'")' "$work/explain.json" >/dev/null; then
    ok "explain: $(jq '.criu | length' "$work/explain.json") CRIU options, each with its reason (root, freezer $freezer, ...)"
else
    bad "explain: $(head -c 600 "$work/explain.json")"
fi

# 1. The baseline: runc drives CRIU itself.
if runc --root "$state" --criu "$criu" checkpoint --leave-running --image-path "$work/runc-images" \
    "$id" >"$work/runc-ckpt.out" 2>&1; then
    ok "runc checkpoint --leave-running ($(ls "$work/runc-images" | wc -l) files)"
else
    bad "runc checkpoint: $(cat "$work/runc-ckpt.out")"
fi
advancing && ok "the container runs on after runc's checkpoint" || bad "the container stopped after runc's checkpoint"

# 2. A container state that runc would not checkpoint is refused before criu starts.
if "$drv" checkpoint pid="$pid" images="$work/refused" root="$rootfs" status=created \
    >"$work/refused.out" 2>&1; then
    bad "checkpoint with container status 'created' was accepted"
elif [ ! -e "$work/refused/dump.log" ]; then
    ok "status 'created' refused before criu ran: $(head -n1 "$work/refused.out")"
else
    bad "status 'created' reached criu: $(head -n1 "$work/refused.out")"
fi

# 3. ckpt's container layer drives CRIU from the bundle and the init pid.
images=$work/ckpt-images
# A count well above what a fresh start would reach in the seconds after the restore.
for _ in $(seq 50); do [ "$(count)" -ge 25 ] && break; sleep 0.1; done
if "$drv" checkpoint pid="$pid" images="$images" bundle="$bundle" status=running \
    >"$work/ckpt.out" 2>&1; then
    at_dump=$(count)
    ok "ckpt checkpoint of the container's init at counter $at_dump ($(ls "$images" | wc -l) files)"
else
    bad "ckpt checkpoint: $(cat "$work/ckpt.out")"
fi
if [ -s "$images/inventory.img" ] && [ -s "$images/pstree.img" ] \
    && grep -q 'Dumping finished successfully' "$images/dump.log"; then
    ok "complete dump: inventory.img, pstree.img, 'Dumping finished successfully' in dump.log"
else
    bad "incomplete dump in $images"
fi
# The same kinds of image as runc's (process ids stripped; descriptors.json is runc's own file).
kinds() { ls "$1" | sed -E 's/-[0-9]+\.img$/.img/' | grep -v -x -e descriptors.json -e ckpt-container.json -e dump.log | sort -u; }
if diff <(kinds "$work/runc-images") <(kinds "$images") >"$work/kinds.diff"; then
    ok "ckpt wrote the same kinds of image as runc ($(kinds "$images" | wc -l) kinds)"
else
    bad "image kinds differ from runc's: $(cat "$work/kinds.diff")"
fi
advancing && ok "the container runs on after ckpt's checkpoint (leave_running)" \
    || bad "the container stopped after ckpt's checkpoint"

# 4. Kill and delete the container, restore it through ckpt into its rootfs.
runc --root "$state" kill "$id" KILL
for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
runc --root "$state" delete -f "$id"
at_kill=$(count)
sleep 0.5
[ "$(count)" -eq "$at_kill" ] && ok "runc kill + delete: the counter stopped at $at_kill" \
    || bad "the counter still moves after runc delete"
if "$drv" restore images="$images" bundle="$bundle" pidfile="$work/restored.pid" \
    >"$work/restore.out" 2>&1; then
    restored=$(cat "$work/restored.pid")
    ok "ckpt restore into $rootfs (pid $restored)"
else
    bad "ckpt restore: $(cat "$work/restore.out")"
fi
if [ -n "$restored" ]; then
    sleep 1
    now=$(count)
    # The loop resumes from the value it had at the dump (a fresh start would be near 10).
    if [ "$now" -gt "${at_dump:-0}" ] && [ "$now" -lt $((at_kill + 40)) ] && advancing; then
        ok "the restored container counts on from the dump: $now, 1 s after restore (dumped at ${at_dump:-?}, killed at $at_kill)"
    else
        bad "the counter did not continue: $now (dumped at ${at_dump:-?}, killed at $at_kill)"
    fi
    if [ "$(readlink "/proc/$restored/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] \
        && [ "$(readlink "/proc/$restored/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] \
        && grep -q " /sys/fs/cgroup/freezer " "/proc/$restored/mountinfo" \
        && [ "/sys/fs/cgroup/freezer$(awk -F: '$2 == "freezer" {print $3}' "/proc/$restored/cgroup")" = "$freezer" ]; then
        ok "restored in its own pid and mount namespaces, with its cgroup mounts, in $freezer"
    else
        bad "the restored tree lacks its namespaces, mounts or cgroups"
    fi
fi
echo "not exercised: runc restore's own bookkeeping (runc state, veth attachment) because ckpt"
echo "  restores the container without runc; runc no longer lists the container"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
