#!/usr/bin/env bash
# The symbol check: every function declared in CRIU's criu.h is exported by the library (and
# every criu_* symbol the real libcriu.so.2 exports, when given), under soname libcriu.so.2,
# and nothing else is exported (no ckpt_* from the core it is built on).
#
# usage: symbols.sh LIB CRIU_H [REAL_LIBCRIU]
set -uo pipefail
lib=$1 header=$2 real=${3:-}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }

exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u)
# Declarations only: comments removed (criu.h mentions criu_notify_xxx() in one), then every
# identifier followed by "(".
declared=$(gcc -fpreprocessed -dD -E -P "$header" 2>/dev/null |
    grep -oE '\bcriu_[A-Za-z0-9_]+[[:space:]]*\(' | tr -d ' (\t' | sort -u)
n=$(wc -l <<<"$declared")
[ "$n" -gt 100 ] || { echo "FATAL - only $n functions found in $header"; exit 1; }

missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -z "$missing" ]; then
    ok "all $n functions declared in criu.h are exported"
else
    fail "declared in criu.h but not exported: $(echo $missing)"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = libcriu.so.2 ]; then ok "soname $soname"; else fail "soname is '$soname'"; fi

foreign=$(grep -v '^criu_' <<<"$exported")
if [ -z "$foreign" ]; then
    ok "only criu_* symbols are exported ($(wc -l <<<"$exported") in all)"
else
    fail "exported besides criu_*: $(echo $foreign | head -c 300)"
fi

if [ -n "$real" ]; then
    real_syms=$(nm -D --defined-only "$real" | awk '{print $3}' | grep '^criu_' | grep -v '__' | sort -u)
    missing=$(comm -23 <(echo "$real_syms") <(echo "$exported"))
    if [ -z "$missing" ]; then
        ok "every criu_* symbol of $(basename "$real") $(readlink -f "$real" | sed 's/.*\.so\.//') is exported too ($(wc -l <<<"$real_syms"))"
    else
        fail "exported by the real libcriu but not here: $(echo $missing)"
    fi
    # The protobuf-c code of rpc.pb-c.h that libcriu exports is left out on purpose
    # (docs/libcriu.md, "Exports"): no known caller uses it through libcriu.
    pb=$(nm -D --defined-only "$real" | awk '{print $3}' | grep '__' | sort -u)
    if [ "$(wc -l <<<"$pb")" -eq 109 ] && [ -z "$(comm -12 <(echo "$pb") <(echo "$exported"))" ]; then
        ok "the 109 protobuf-c symbols libcriu exports ($(head -n1 <<<"$pb"), ...) are left out, as documented"
    else
        fail "libcriu's protobuf-c exports are not the 109 documented, or some are exported here"
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
