#!/usr/bin/env bash
# valgrind memcheck over the C tests (built by stage 20): no invalid read or write, no use of
# uninitialised memory, no definite leak, in libckpt or in the tests. criu is a separate exec'd
# process and is not traced (--trace-children=no); forked children of a test are silenced.
# "possibly lost" and "still reachable" blocks (Rust's std keeps some) are not errors.
# many_calls runs 200 calls instead of 1000 here (CKPT_VALGRIND_CALLS overrides).
# valgrind 3.19 does not know pidfd_open (syscall 434: it warns and returns ENOSYS), so under
# valgrind ckpt watches criu by pid with waitpid, its fallback. That is enough here: what
# valgrind checks (memory use in libckpt and the tests) is the same on both paths, and the
# pidfd path is checked where it runs: c-tests/pidfd.c asserts it in the plain run (stage 20)
# and in the AddressSanitizer run of every C test (stage 50), and asserts the fallback here.
set -uo pipefail
cd "$CKPT_ROOT"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (scripts/setup.sh installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi
if [ ! -f "$CKPT_BUILD/build.ninja" ]; then
    meson setup "$CKPT_BUILD" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$CKPT_BUILD" >/dev/null || { echo "meson build failed"; echo "0 passed, 1 failed"; exit 1; }

logs="$CKPT_BUILD/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
export CKPT_CTEST_VALGRIND=1
export CKPT_CTEST_CALLS="${CKPT_VALGRIND_CALLS:-200}"

for exe in "$CKPT_BUILD"/c-tests/test-*; do
    [ -f "$exe" ] && [ -x "$exe" ] || continue
    name=$(basename "$exe")
    name=${name#test-}
    t0=$(date +%s)
    valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --error-exitcode=99 --trace-children=no \
        --child-silent-after-fork=yes --track-origins=yes --num-callers=30 \
        --log-file="$logs/$name.%p.vg" "$exe" >"$logs/$name.out" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    vg=$(ls "$logs/$name".*.vg 2>/dev/null)
    errors=$(grep -h 'ERROR SUMMARY' $vg | sed -E 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/' |
        awk '{s += $1} END {print s + 0}')
    # Which of the errors have a libckpt frame (Rust code of the crate, or the .so itself).
    in_ckpt=$(awk '/^==[0-9]+== $/ {if (blk ~ /libckpt|ckpt::/) n++; blk=""; next}
                   {blk = blk $0 "\n"} END {print n + 0}' $vg)
    if [ "$rc" -eq 0 ] && [ "$errors" -eq 0 ]; then
        ok "$name under valgrind: no errors, no definite leaks (${secs} s; $(tail -n1 "$logs/$name.out"))"
    else
        bad "$name under valgrind: exit $rc, $errors errors, $in_ckpt blocks with libckpt frames (${secs} s)"
        # The whole output: a failure's explanation (CRIU's excerpt) is on the lines after it.
        head -n 200 "$logs/$name.out"
        for f in $vg; do
            grep -q 'ERROR SUMMARY: 0 errors' "$f" || sed -n '/^==[0-9]*== [A-Z]/,$p' "$f" | head -n 80
        done
    fi
done
echo "valgrind logs: $logs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
