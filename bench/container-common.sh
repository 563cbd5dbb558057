# Sourced by the container benches (bench/container.sh, bench/container-ab.sh): the busybox
# bundle they run, and the median they print.

# busybox_bundle BUNDLE TAG: a runc bundle in BUNDLE whose container (cgroup /TAG, no
# terminal, writable rootfs) runs a shell loop that writes no file.
busybox_bundle() {
    local b=$1 tag=$2 r=$1/rootfs
    mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
    cp /bin/busybox "$r/bin/"
    for a in sh sleep; do ln -s busybox "$r/bin/$a"; done
    (cd "$b" && runc spec)
    jq --arg cg "/$tag" '.process.terminal = false | .root.readonly = false | .linux.cgroupsPath = $cg
        | .process.args = ["sh", "-c", "while :; do sleep 0.1; done"]' \
        "$b/config.json" >"$b/c.new" && mv "$b/c.new" "$b/config.json"
}

# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m}'; }
