#!/usr/bin/env bash
# The documentation's complete examples, as a reader would use them: the C program of
# docs/c-api.md and the Go program of docs/go.md are extracted from the pages, built against the
# installed library (C through pkg-config, Go in a module of its own with the go.mod snippet of
# docs/go.md), and each checkpoints a real counting process tree with the real criu, restores
# it, and the counter carries on in the restored tree.
set -uo pipefail
root=${CKPT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CKPT_BUILD:-$root/builddir}
cd "$root"
work=$(mktemp -d /tmp/ckpt-doc-examples.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

# extract PAGE LANG MARKER: the first fenced block of LANG in PAGE that contains MARKER.
extract() {
    awk -v lang="$2" -v marker="$3" '
        inblock && $0 == "```" { inblock = 0; if (index(buf, marker) && !done) { printf "%s", buf; done = 1 } next }
        !inblock && $0 == "```" lang { inblock = 1; buf = ""; next }
        inblock { buf = buf $0 "\n" }' "$1"
}

[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
stage=$work/stage
meson install -C "$build" --destdir "$stage" --quiet >/dev/null
pc=$(find "$stage" -name ckpt.pc -print -quit)
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR=$stage
PKG_CONFIG_PATH=$(dirname "$pc")

# A counting tree, a session of its own; prints its pid.
start_counter() { # counter-file
    local pidfile=$work/pid.$RANDOM
    setsid --fork sh -c 'echo $$ > "$2"; i=0
        while :; do i=$((i+1)); echo "$i" > "$1.tmp"; mv "$1.tmp" "$1"; sleep 0.1; done' \
        sh "$1" "$pidfile" </dev/null >/dev/null 2>&1
    for _ in $(seq 50); do [ -s "$pidfile" ] && break; sleep 0.05; done
    cat "$pidfile"
}

# run_example NAME BINARY: checkpoint and restore a counter with it, check the counter goes on.
run_example() {
    local name=$1 bin=$2 counter=$work/$1.count pid out newpid before after
    pid=$(start_counter "$counter")
    pids+=("$pid")
    sleep 0.5
    if ! out=$("$bin" "$pid" "$work/$name-images" 2>&1); then
        bad "$name example failed: $out"
        return
    fi
    echo "$out" | sed "s/^/    $name: /"
    newpid=$(echo "$out" | sed -n 's/^restored: pid \([0-9]*\).*/\1/p')
    if [ "$newpid" != "$pid" ]; then
        bad "$name example: restored pid '$newpid', expected $pid"
        return
    fi
    before=$(cat "$counter")
    sleep 0.5
    after=$(cat "$counter")
    if kill -0 "$pid" 2>/dev/null && [ "$after" -gt "$before" ]; then
        ok "$name example: checkpointed and restored pid $pid; its counter went on ($before -> $after)"
    else
        bad "$name example: the restored tree is not counting ($before -> $after)"
    fi
    kill -9 "$pid" 2>/dev/null
}

# C, from docs/c-api.md
mkdir -p "$work/c"
extract docs/c-api.md c 'int main(' >"$work/c/example.c"
if [ ! -s "$work/c/example.c" ]; then
    bad "docs/c-api.md has no complete C program"
elif ! gcc -Wall -Wextra -Werror -o "$work/c/example" "$work/c/example.c" \
    $(pkg-config --cflags --libs ckpt) -Wl,-rpath,"$libdir" 2>"$work/c/cc.log"; then
    bad "docs/c-api.md's example does not compile: $(cat "$work/c/cc.log")"
else
    ok "docs/c-api.md's example compiles with -Wall -Wextra -Werror"
    run_example c "$work/c/example"
fi
# The same program linked fully static, with what `pkg-config --static` gives (README: "From
# C"): it must link and start (no arguments: its usage, exit status 2).
if [ -s "$work/c/example.c" ]; then
    if ! gcc -static -o "$work/c/example-static" "$work/c/example.c" \
        $(pkg-config --static --cflags --libs ckpt) 2>"$work/c/cc-static.log"; then
        bad "docs/c-api.md's example does not link with -static and pkg-config --static: $(grep -v 'statically linked' "$work/c/cc-static.log" | tail -n 3)"
    else
        "$work/c/example-static" >/dev/null 2>&1
        rc=$?
        [ "$rc" -eq 2 ] && ok "docs/c-api.md's example links fully static (pkg-config --static) and runs" \
            || bad "the static example exited $rc, not 2 (usage)"
    fi
fi

# Go, from docs/go.md, in a module of the reader's own (the go.mod snippet, path filled in).
mod=$work/go
mkdir -p "$mod"
extract docs/go.md go 'package main' >"$mod/main.go"
extract docs/go.md go-mod '// go.mod of your program' | sed "s#/path/to/ckpt/go#$root/go#" >"$mod/go.mod"
if [ ! -s "$mod/main.go" ] || ! grep -q '^replace ckpt.dev/go/ckpt' "$mod/go.mod"; then
    bad "docs/go.md lacks the complete Go program or the go.mod snippet"
elif ! (cd "$mod" && GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 CGO_LDFLAGS="-Wl,-rpath,$libdir" \
    go build -o example . 2>"$mod/build.log"); then
    bad "docs/go.md's example does not build in its own module: $(cat "$mod/build.log")"
else
    ok "docs/go.md's example builds in a module of its own (replace directive, pkg-config)"
    (cd "$mod" && go vet . 2>&1) && ok "go vet on docs/go.md's example" || bad "go vet on docs/go.md's example"
    run_example go "$mod/example"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
