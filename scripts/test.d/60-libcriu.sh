#!/usr/bin/env bash
# libcriu.so.2 drop-in (libcriu/): the symbol check, C programs written against CRIU's criu.h
# run against this library and the real criu, valgrind over the option paths, and crun 1.21
# checkpointing and restoring a container with this library in place of libcriu. With
# CKPT_LIBCRIU_COMPARE=1 (scripts/compare-libcriu.sh sets it) the same C programs then run against
# the real libcriu.so.2 4.1.1, for comparison only: the checks it fails are the defects this
# library fixes. That run is not part of the test command: libcriu hangs until killed on some
# inputs, which costs minutes and proves nothing about ckpt.
set -uo pipefail
cd "$CKPT_ROOT"
: "${CKPT_CRIU_H:?}" "${CKPT_LIBCRIU_DIR:?}" "${CKPT_CRUN:?}"
export CKPT_CRUN CKPT_PYTHON="${CKPT_PYTHON:-python3}"

# criu.h includes rpc.pb-c.h, which includes protobuf-c's header.
if [ ! -e /usr/include/protobuf-c/protobuf-c.h ]; then
    echo "installing libprotobuf-c-dev (criu.h needs protobuf-c/protobuf-c.h)"
    apt-get install -y -q --no-install-recommends libprotobuf-c-dev >/dev/null ||
        { echo "FATAL - cannot install libprotobuf-c-dev"; exit 1; }
fi

work=$(mktemp -d /tmp/ckpt-libcriu.XXXXXX)
lib=$work/lib bin=$work/bin
mkdir -p "$lib" "$bin" "$work/scratch"
passed=0 failed=0 failed_parts=()

# Runs one part, showing its output; adds up its closing "N passed, N failed" line. A part
# that exits non-zero without reporting a failure counts as one failure.
part() {
    local name=$1 p f rc
    shift
    echo "--- $name"
    "$@" 2>&1 | tee "$work/part.log"
    rc=${PIPESTATUS[0]}
    read -r p f < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/part.log" | tail -n1)
    p=${p:-0} f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL - $name exited with status $rc"
        f=1
    fi
    passed=$((passed + p)) failed=$((failed + f))
    [ "$f" -eq 0 ] || failed_parts+=("$name")
}

echo "--- build"
if ! cargo build --release --lib -p ckpt-libcriu --quiet; then
    echo "FAIL - cargo build -p ckpt-libcriu"
    echo "0 passed, 1 failed"
    exit 1
fi
# A copy, stripped as meson installs it (its debug information split off): the tests run
# what is installed, and a concurrent cargo build cannot swap the library under them.
scripts/split-debug.sh target/release/libcriu.so "$lib/libcriu.so.2" "$lib/.debug/libcriu.so.2.debug"
ln -s libcriu.so.2 "$lib/libcriu.so"

part "stripped" bash libcriu/tests/stripped.sh "$lib/libcriu.so.2" "$lib/.debug/libcriu.so.2.debug" \
    "$CKPT_LIBCRIU_DIR/libcriu.so.2"

part "symbols" bash libcriu/tests/symbols.sh "$lib/libcriu.so.2" "$CKPT_CRIU_H/criu.h" \
    "$CKPT_LIBCRIU_DIR/libcriu.so.2"

compile() {
    local t=$1 ok=0
    shift
    gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -I"$(dirname "$CKPT_CRIU_H")" \
        -o "$bin/$t" "libcriu/tests/c/$t.c" "$@" -lpthread || ok=1
    return $ok
}
compiled=0 broken=()
for t in ops selfdump pty threads forks isolation leaks table; do
    if compile "$t" -L"$lib" -l:libcriu.so.2; then compiled=$((compiled + 1)); else broken+=("$t"); fi
done
if compile dlopen -ldl; then compiled=$((compiled + 1)); else broken+=(dlopen); fi
part "compile against criu.h" sh -c \
    "echo '$compiled programs compiled${broken[*]:+; failed: ${broken[*]}}'; echo '$compiled passed, ${#broken[@]} failed'"

ours() { env LD_LIBRARY_PATH="$lib" LIBCRIU_TEST_DIR="$work/scratch" timeout 300 "$@"; }
for t in ops selfdump pty threads forks dlopen isolation; do
    [ -x "$bin/$t" ] && part "$t" ours "$bin/$t"
done

# valgrind does not know pidfd_open (ckpt then waits for criu with waitpid): drop that noise.
memcheck() {
    valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=9 "$@" 2>&1 |
        grep -v -e 'unhandled amd64-linux syscall: 434' -e 'write your own handler' \
            -e 'README_MISSING_SYSCALL' -e 'Nevertheless we consider' -e 'valgrind.org/support'
    return "${PIPESTATUS[0]}"
}
[ -x "$bin/leaks" ] && part "valgrind: leaks" ours bash -c "$(declare -f memcheck); memcheck '$bin/leaks' 200"

# The same cases against the real libcriu.so.2 and this library: every difference is one the
# table names (docs/libcriu.md, "Deliberate differences").
[ -x "$bin/table" ] && part "table: libcriu 4.1.1 and this library" \
    bash libcriu/tests/table.sh "$bin/table" "$lib" "$CKPT_LIBCRIU_DIR" "$work/scratch"

part "crun" bash libcriu/tests/crun.sh "$lib" "$work/crun"

if [ "${CKPT_LIBCRIU_COMPARE:-0}" = 1 ]; then
    echo "--- for comparison, not counted: the same programs against the real libcriu.so.2 4.1.1"
    real() { env LD_LIBRARY_PATH="$CKPT_LIBCRIU_DIR" LIBCRIU_TEST_DIR="$work/scratch" timeout 60 "$@"; }
    # ops section by section: libcriu crashes on some bad inputs, which would hide the rest.
    for t in "ops bad-pids" "ops fd-limit" "ops version" "ops features" "ops dump-restore" "ops log-file" "ops pre-dump" \
        "ops timeout" "ops setters" "ops service-socket" "ops service-fd" "ops conventions" \
        "ops local" threads forks isolation; do
        # shellcheck disable=SC2086 # "ops SECTION" is program and argument
        out=$(real $bin/$t 2>&1)
        rc=$?
        echo "real libcriu, $t: $(tail -n1 <<<"$out" | grep 'passed' || echo "exit status $rc")"
        grep '^FAIL' <<<"$out" | sed 's/^FAIL - [^ ]* /    fails: /'
        [ "$rc" -lt 128 ] || echo "    crashed (signal $((rc - 128)))"
    done
    lost=$(real bash -c "$(declare -f memcheck); memcheck '$bin/leaks' 200" | grep -c 'definitely lost')
    echo "real libcriu, valgrind over leaks: $lost leak records"
fi

echo "=== libcriu: scratch files in $work"
[ "$failed" -ne 0 ] || rm -rf "$work"
[ "${#failed_parts[@]}" -eq 0 ] || echo "failed parts: ${failed_parts[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
