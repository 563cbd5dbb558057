#!/usr/bin/env bash
# Prints the system libraries a program linking the static libckpt.a also needs (ckpt.pc's
# Libs.private): the ones rustc names for its standard library, asked of an empty static
# library built by the same rustc. ckpt's own dependencies (libc, nix, prost) add none.
# Without -lgcc_s: that is the unwinder as a shared library, which a fully static link
# (`cc -static ... $(pkg-config --static --libs ckpt)`) cannot find; the compiler driver links
# an unwinder by itself, libgcc_s as needed in a dynamic link and libgcc_eh in a static one.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '' | rustc --crate-type staticlib --print native-static-libs -o "$tmp/empty.a" - 2>&1 |
    sed -n 's/^note: native-static-libs: //p' | sed -E 's/(^| )-lgcc_s( |$)/\1/'
