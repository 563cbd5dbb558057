#!/usr/bin/env bash
# C: build the library, header and C tests with meson and run them against the real criu
# (c-tests/*.c; each prints what it could not exercise here and why). Also checks that
# c-tests/setters.c names every ckpt_opts_set_* / ckpt_opts_add_* the header declares, so a new
# setter cannot arrive without its bad-input checks.
set -uo pipefail
cd "$CKPT_ROOT"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

missing=$(grep -oE '\bckpt_opts_(set|add)_[a-z0-9_]+\(' include/ckpt.h | tr -d '(' | sort -u |
    while read -r fn; do grep -q "\b$fn\b" c-tests/setters.c || echo "$fn"; done)
if [ -z "$missing" ]; then
    ok "every setter in ckpt.h is exercised by c-tests/setters.c"
else
    bad "setters without bad-input checks in c-tests/setters.c: $(echo "$missing" | tr '\n' ' ')"
fi

if { [ -f "$CKPT_BUILD/build.ninja" ] || meson setup "$CKPT_BUILD" >/dev/null; } &&
    meson compile -C "$CKPT_BUILD"; then
    ok "meson build"
    # One line per test (meson's own summary), then each test's output for the record.
    if meson test -C "$CKPT_BUILD" --print-errorlogs; then
        ok "meson test"
    else
        bad "meson test (log: $CKPT_BUILD/meson-logs/testlog.txt)"
    fi
    # The per-test check counts, from the tests' closing lines.
    grep -hE '^[a-z_]+: [0-9]+ checks, [0-9]+ failed$' "$CKPT_BUILD/meson-logs/testlog.txt" |
        sed 's/^/  /'
    grep -hE '^not exercised: ' "$CKPT_BUILD/meson-logs/testlog.txt" | sort -u | sed 's/^/  /'
else
    bad "meson build"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
