#!/usr/bin/env bash
# Go: the package over cgo (go/) and the ckpt command (go/cmd/ckpt), against the real criu.
# The meson build is installed into a private staging prefix; cgo finds the library through
# pkg-config by package name ("ckpt"), as a user's program would, and the test binaries and
# the command load libckpt.so.0 from there.
set -euo pipefail
cd "$CKPT_ROOT"
build=${CKPT_BUILD:-$CKPT_ROOT/builddir}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
stage=$build/go-stage
rm -rf "$stage"
meson install -C "$build" --destdir "$stage" --quiet >/dev/null

pc=$(find "$stage" -name ckpt.pc -print -quit)
[ -n "$pc" ] || { echo "meson install put no ckpt.pc in $stage"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR=$stage
# The rpath lets the test binaries and the command find libckpt.so.0 here. It also keys Go's
# build cache to this place: Go does not hash pkg-config's output into its cache keys, so
# without a flag naming the path, a package compiled against another staging directory (with
# its -L path) would be reused.
export CGO_LDFLAGS="-Wl,-rpath,$libdir"
# Everything the module needs is in the tree: never reach for the network.
export GOFLAGS=-mod=readonly GOPROXY=off CGO_ENABLED=1
echo "pkg-config ckpt $(pkg-config --modversion ckpt): $(pkg-config --cflags --libs ckpt)"

cd go
passed=0 failed=0
check() { # name, command...
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $name"
    fi
}
unformatted() { [ -z "$(gofmt -l .)" ] || { gofmt -l .; return 1; }; }
check "gofmt" unformatted
check "go vet" go vet ./...
check "go build" go build -o "$stage/bin/ckpt" ./cmd/ckpt

log=$stage/go-test.log
set +e
CKPT_CMD=$stage/bin/ckpt go test -race -count=1 -timeout 5m -v ./... >"$log" 2>&1
rc=$?
set -e
# The verdicts, what was not exercised and why, and the evidence the tests log.
grep -v -e '^=== ' "$log"
tests_passed=$(grep -c -- '--- PASS' "$log" || true)
tests_failed=$(grep -c -- '--- FAIL' "$log" || true)
passed=$((passed + tests_passed))
failed=$((failed + tests_failed))
if [ "$rc" -ne 0 ] && [ "$tests_failed" -eq 0 ]; then
    failed=$((failed + 1)) # a build error or a crash outside any test
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
