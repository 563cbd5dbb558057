# Sourced by the container benches (bench/container.sh, bench/container-ab.sh,
# bench/container-ab-restore.sh): the example they build, the busybox bundle they run, its
# start and its cgroups' removal, and the median they print.

# example_build ROOT: builds ckpt's container example (release) in the tree ROOT and prints
# its path.
example_build() {
    (cd "$1" && cargo build --quiet --release -p ckpt-core --example container) &&
        echo "$1/target/release/examples/container"
}

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

# run_container STATE BUNDLE ID PIDFILE: runc (state in STATE) runs BUNDLE detached as ID,
# quietly, its init's pid in PIDFILE; then 0.3 s for the loop to start.
run_container() {
    runc --root "$1" run -d --pid-file "$4" --bundle "$2" "$3" </dev/null >/dev/null 2>&1
    sleep 0.3
}

# remove_cgroups TAG: the containers' cgroup directories named TAG, once empty.
remove_cgroups() {
    for d in /sys/fs/cgroup/*/"$1"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
}

# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m}'; }
