#!/usr/bin/env bash
# The library as installed: stripped, its debug information in the file its .gnu_debuglink
# names (in .debug/ beside it), both from the same build (the build ids match).
# usage: stripped.sh LIB DEBUG_FILE REAL_LIBCRIU
set -uo pipefail
lib=$1 dbg=$2 real=$3
passed=0 failed=0
check() {
    if eval "$1"; then passed=$((passed + 1)); echo "ok   - $2"; else failed=$((failed + 1)); echo "FAIL - $2"; fi
}
sections() { readelf -S -W "$1" 2>/dev/null; }
build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: //p'; }
check '! sections "$lib" | grep -q "\.debug_info\|\.symtab"' "the library has no debug information and no symbol table"
check 'sections "$dbg" | grep -q "\.debug_info"' "the debug file holds the debug information"
check '[ "$(readelf -p .gnu_debuglink "$lib" 2>/dev/null | sed -n "s/.*\] *//p" | head -n1)" = "$(basename "$dbg")" ]' \
    ".gnu_debuglink names $(basename "$dbg")"
check '[ -n "$(build_id "$lib")" ] && [ "$(build_id "$lib")" = "$(build_id "$dbg")" ]' "library and debug file share the build id"
if command -v gdb >/dev/null; then
    check 'gdb -batch -ex "info line criu_dump" "$lib" 2>&1 | grep -q "ffi/ops.rs"' \
        "gdb finds criu_dump's source line through the debug link"
else
    echo "NOTE - no gdb here: that it finds the debug file is not checked"
fi
printf 'sizes: this library %s bytes stripped (debug file %s bytes); the real libcriu.so.2 %s bytes\n' \
    "$(stat -c %s "$lib")" "$(stat -c %s "$dbg")" "$(stat -L -c %s "$real")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
