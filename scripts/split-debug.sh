#!/usr/bin/env bash
# Strips a shared library for installation the way Debian packages do (dh_strip): the debug
# information goes to a file of its own (objcopy --only-keep-debug), the library is stripped of
# it and of what the dynamic loader does not need (strip --strip-unneeded, .comment removed),
# and carries a .gnu_debuglink naming the debug file. Install the debug file in a `.debug`
# directory beside the library (or under /usr/lib/debug) and gdb finds it by itself.
# usage: split-debug.sh IN OUT_STRIPPED OUT_DEBUG
set -euo pipefail
in=$(realpath "$1") out=$(realpath -m "$2") dbg=$(realpath -m "$3")
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$(dirname "$out")/.split.XXXXXX")
trap 'rm -f "$tmp"' EXIT
mkdir -p "$(dirname "$dbg")"
objcopy --only-keep-debug "$in" "$dbg"
chmod 0644 "$dbg"
strip --strip-unneeded --remove-section=.comment -o "$tmp" "$in"
# The link records the debug file's name and checksum; gdb searches for that name.
(cd "$(dirname "$dbg")" && objcopy --add-gnu-debuglink="$(basename "$dbg")" "$tmp")
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
