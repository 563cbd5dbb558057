#!/usr/bin/env bash
# Install everything ckpt needs on a Debian 12 (bookworm) machine, as root.
#
#  - Debian bookworm build/test packages (meson, ninja, patchelf, iptables, runc, ...)
#  - an apt source for Debian 13 "trixie", pinned at priority 100 (nothing upgrades by accident)
#  - CRIU 4.1.1 from trixie in a private prefix (bookworm's criu 3.17 fails on this kernel),
#    with its own glibc, made runnable by patchelf; /usr/local/sbin/criu points to it
#  - libcriu-dev/libcriu2 4.1.1 (trixie) extracted as references (criu.h, rpc.proto, libcriu.so.2)
#  - crun 1.21 (+CRIU) from trixie in its own private prefix, patchelf'd the same way
#  - the cbindgen 0.29.x CLI (cargo install)
#  - $CKPT_DEPS/env.sh exporting CKPT_RPC_PROTO, CKPT_CRIU_H, CKPT_LIBCRIU_DIR, CKPT_CRUN, CKPT_CRIU
#
# Idempotent: each step checks its result (and a stamp) and skips when already done; a second run
# only verifies (a few seconds). Usage: sudo scripts/setup.sh     (env: CKPT_DEPS=/opt/ckpt-deps)
set -euo pipefail

DEPS=${CKPT_DEPS:-/opt/ckpt-deps}
DEBS=$DEPS/debs
CRIU_PREFIX=$DEPS/criu
LIBCRIU_PREFIX=$DEPS/libcriu
CRUN_PREFIX=$DEPS/crun
ENV_SH=$DEPS/env.sh
CRIU_LINK=/usr/local/sbin/criu
MULTIARCH=x86_64-linux-gnu
SYS_LIBDIR=/usr/lib/$MULTIARCH
RECIPE=1 # bump to force re-extraction of the private prefixes

TRIXIE_SOURCES=/etc/apt/sources.list.d/trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/trixie-pin

BOOKWORM_PKGS=(meson ninja-build patchelf iptables busybox-static runc golang-go pkg-config
    valgrind gcc iproute2 libprotobuf-c1 python3 util-linux protobuf-compiler python3-protobuf
    libprotobuf-c-dev)
BOOKWORM_OPTIONAL_PKGS=()

CRIU_PKGS=(criu libcompel1 libc6 libgnutls30t64 libnettle8t64 libhogweed6t64 libunistring5
    libp11-kit0 libtasn1-6 libidn2-0 libgmp10 libffi8 libnftables1 libnl-3-200 libprotobuf-c1
    libbsd0 libnet1 libuuid1 libmd0 libjansson4 libmnl0 libnftnl11 libxtables12 libedit2 libtinfo6)
LIBCRIU_PKGS=(libcriu-dev libcriu2)
CRUN_PKGS=(crun libc6 libyajl2 libsystemd0 libseccomp2 libcap2 libgcrypt20 libgpg-error0
    liblzma5 libzstd1 liblz4-1)

CHECKPOINTCTL_PKGS=(checkpointctl libc6)
CHECKPOINTCTL_PREFIX=$DEPS/checkpointctl
CHECKPOINTCTL_VERSION=1.3.0

CRIU_VERSION=4.1.1
CRUN_VERSION=1.21

export DEBIAN_FRONTEND=noninteractive
# cargo-installed tools (cbindgen) live here; CI may not have it on PATH.
if [ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH

# ---------------------------------------------------------------------------------------------
# logging and timing
log() { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[setup] ERROR: %s\n' "$*" >&2
    exit 1
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

STEP_SUMMARY=()
run_step() { # run_step NAME FUNCTION
    local name=$1 fn=$2 t0
    t0=$(now)
    log "==> $name"
    "$fn"
    local dt
    dt=$(elapsed "$t0")
    log "<== $name: ${dt}s"
    STEP_SUMMARY+=("$(printf '%-28s %7ss' "$name" "$dt")")
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ "$(uname -m)" = x86_64 ] || die "only x86_64 is supported"
[ -r /etc/debian_version ] || die "not a Debian system"

mkdir -p "$DEPS" "$DEBS"
exec 9>"$DEPS/.setup.lock"
flock 9

# ---------------------------------------------------------------------------------------------
# apt helpers
APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
}

has_candidate() { # has_candidate PKG: the package is known to apt with an installable version
    local c
    c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$c" ] && [ "$c" != "(none)" ]
}

missing_pkgs() { # print the given packages that are not installed
    local p st
    for p in "$@"; do
        st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$st" in ii*) ;; *) echo "$p" ;; esac
    done
}

trixie_lists_present() {
    compgen -G "/var/lib/apt/lists/*_dists_trixie_InRelease" >/dev/null ||
        compgen -G "/var/lib/apt/lists/*_dists_trixie_Release" >/dev/null
}

deb_for() { # deb_for PKG: newest cached .deb of PKG in $DEBS (empty if none)
    compgen -G "$DEBS/${1}_*.deb" | sort -V | tail -n1 || true
}

deb_version() { dpkg-deb -f "$1" Version; }

# ---------------------------------------------------------------------------------------------
# step: trixie source + pin
SOURCES_CHANGED=0
write_if_changed() { # write_if_changed FILE (content on stdin); returns 0 if it changed
    local f=$1 tmp
    tmp=$(mktemp "$f.XXXXXX")
    cat >"$tmp"
    chmod 644 "$tmp"
    if [ -f "$f" ] && cmp -s "$tmp" "$f"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$f"
    return 0
}

step_apt_sources() {
    local src=/etc/apt/sources.list.d/debian.sources uri keyring
    [ -r "$src" ] || die "$src not found: cannot tell which Debian mirror this machine uses"
    # URIs and Signed-By of the stanza that carries suite "bookworm" (not -security)
    read -r uri keyring < <(awk '
        function flush() { if (is_main && uri != "") { print uri, (key == "" ? "-" : key); done = 1 }
                           uri = ""; key = ""; is_main = 0 }
        /^[ \t]*$/ { if (!done) flush(); next }
        /^URIs:/ { uri = $2 }
        /^Signed-By:/ { key = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") is_main = 1 }
        END { if (!done) flush() }' "$src") || true
    [ -n "${uri:-}" ] || die "no bookworm stanza with URIs in $src"
    if [ "$keyring" = - ]; then keyring=/usr/share/keyrings/debian-archive-keyring.gpg; fi
    log "mirror: $uri (Signed-By: $keyring)"

    if write_if_changed "$TRIXIE_SOURCES" <<EOF; then
# Added by ckpt scripts/setup.sh: Debian 13 for CRIU 4.1.1 / crun 1.21 (downloaded, never installed).
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: $keyring
EOF
        log "wrote $TRIXIE_SOURCES"
        SOURCES_CHANGED=1
    else
        log "$TRIXIE_SOURCES up to date"
    fi
    if write_if_changed "$TRIXIE_PIN" <<'EOF'; then
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOF
        log "wrote $TRIXIE_PIN"
        SOURCES_CHANGED=1
    else
        log "$TRIXIE_PIN up to date"
    fi
}

ensure_trixie_lists() {
    if [ "$SOURCES_CHANGED" -eq 1 ] || ! trixie_lists_present; then apt_update; fi
}

# ---------------------------------------------------------------------------------------------
# step: bookworm packages
step_bookworm_pkgs() {
    local want=("${BOOKWORM_PKGS[@]}") p missing
    # optional packages: only if installed already or apt knows them
    for p in "${BOOKWORM_OPTIONAL_PKGS[@]}"; do
        if [ -z "$(missing_pkgs "$p")" ]; then
            want+=("$p")
        elif has_candidate "$p" || { apt_update && has_candidate "$p"; }; then
            want+=("$p")
        else
            warn "optional package $p is not available: skipped"
        fi
    done
    mapfile -t missing < <(missing_pkgs "${want[@]}")
    if [ "${#missing[@]}" -eq 0 ]; then
        log "all installed: ${want[*]}"
        return
    fi
    log "installing: ${missing[*]}"
    [ "$SOURCES_CHANGED" -eq 1 ] && apt_update
    for p in "${missing[@]}"; do has_candidate "$p" || apt_update; done
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        [ "$APT_UPDATED" -eq 0 ] || die "apt-get install failed"
        warn "apt-get install failed; retrying after apt-get update"
        apt_update
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    mapfile -t missing < <(missing_pkgs "${want[@]}")
    [ "${#missing[@]}" -eq 0 ] || die "still not installed: ${missing[*]}"
}

step_check_pin() {
    local out bad n stamp_file=$DEPS/.apt-pin-checked key
    # apt-get -s upgrade takes seconds: redo it only when the apt configuration or lists changed
    key=$(cat "$TRIXIE_SOURCES" "$TRIXIE_PIN" /etc/apt/sources.list.d/*.sources /etc/apt/preferences.d/* \
        2>/dev/null | md5sum)
    key="$key $(stat -c '%n %Y' /var/lib/apt/lists/*Release 2>/dev/null | md5sum)"
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$key" ]; then
        log "apt configuration and lists unchanged since the last check: pin ok"
        return
    fi
    out=$(apt-get -s -o Debug::NoLocking=1 upgrade 2>&1) || die "apt-get -s upgrade failed: $out"
    n=$(grep -c '^Inst ' <<<"$out" || true)
    bad=$(grep '^Inst ' <<<"$out" | grep -E 'trixie|Debian(-Security)?:13' || true)
    [ -z "$bad" ] || die "apt-get upgrade would pull trixie packages (pin broken):
$bad"
    log "apt-get -s upgrade: $n package(s) would be upgraded, none from trixie"
    echo "$key" >"$stamp_file"
}

# ---------------------------------------------------------------------------------------------
# step: download the trixie .debs into the cache
download_trixie() { # download_trixie PKG...: fetch those not cached yet
    local p need=()
    for p in "$@"; do [ -n "$(deb_for "$p")" ] || need+=("$p"); done
    [ "${#need[@]}" -gt 0 ] || return 0
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    ensure_trixie_lists
    log "apt-get download -t trixie: ${need[*]}"
    if ! (cd "$DEBS" && apt-get download -q -t trixie -o APT::Sandbox::User=root "${need[@]}"); then
        [ "$APT_UPDATED" -eq 0 ] || die "apt-get download failed"
        warn "apt-get download failed; retrying after apt-get update"
        apt_update
        (cd "$DEBS" && apt-get download -q -t trixie -o APT::Sandbox::User=root "${need[@]}")
    fi
    for p in "${need[@]}"; do [ -n "$(deb_for "$p")" ] || die "download of $p failed"; done
}

check_deb_versions() {
    local v
    v=$(deb_version "$(deb_for libc6)")
    dpkg --compare-versions "$v" ge 2.38 || die "cached libc6 is $v, need >= 2.38 (trixie)"
}

# extract_prefix PREFIX PKG...: fresh extraction of the .debs into PREFIX (the caller writes
# PREFIX/.ckpt-stamp once the result is verified)
extract_prefix() {
    local prefix=$1 p deb
    shift
    rm -rf "$prefix.new"
    mkdir -p "$prefix.new"
    for p in "$@"; do
        deb=$(deb_for "$p")
        log "  extract $(basename "$deb")"
        dpkg-deb -x "$deb" "$prefix.new"
    done
    rm -rf "$prefix"
    mv "$prefix.new" "$prefix"
}

find_interp() { # the real (non-symlink) ld-linux inside a prefix
    local f
    f=$(find "$1" -name ld-linux-x86-64.so.2 -type f | sort | head -n1)
    [ -n "$f" ] || die "no ld-linux-x86-64.so.2 in $1"
    echo "$f"
}

patch_binary() { # patch_binary BINARY PREFIX
    local bin=$1 prefix=$2 interp rpath
    interp=$(find_interp "$prefix")
    rpath="$prefix/lib/$MULTIARCH:$prefix/usr/lib/$MULTIARCH:$SYS_LIBDIR"
    patchelf --set-interpreter "$interp" --force-rpath --set-rpath "$rpath" "$bin"
    log "  patched $bin: interpreter $interp, DT_RPATH $rpath"
}

check_ldd() { # no "not found" in ldd output
    local out
    out=$(ldd "$1" 2>&1) || die "ldd $1 failed: $out"
    if grep -q 'not found' <<<"$out"; then die "unresolved libraries for $1:
$out"; fi
}

stamp_ok() { [ -f "$1/.ckpt-stamp" ] && [ "$(cat "$1/.ckpt-stamp")" = "$2" ]; }

# ---------------------------------------------------------------------------------------------
# step: CRIU 4.1.1
CRIU_BIN=$CRIU_PREFIX/usr/sbin/criu
criu_works() { "$CRIU_BIN" --version 2>/dev/null | grep -q "Version: $CRIU_VERSION\$"; }

step_criu() {
    local stamp="recipe=$RECIPE pkgs=${CRIU_PKGS[*]}"
    if stamp_ok "$CRIU_PREFIX" "$stamp" && criu_works; then
        log "criu $CRIU_VERSION already in $CRIU_PREFIX"
    else
        download_trixie "${CRIU_PKGS[@]}"
        check_deb_versions
        local v
        v=$(deb_version "$(deb_for criu)")
        case "$v" in "$CRIU_VERSION"-*) ;; *) die "cached criu deb is $v, want $CRIU_VERSION" ;; esac
        log "extracting ${#CRIU_PKGS[@]} packages into $CRIU_PREFIX"
        extract_prefix "$CRIU_PREFIX" "${CRIU_PKGS[@]}"
        patch_binary "$CRIU_BIN" "$CRIU_PREFIX"
        check_ldd "$CRIU_BIN"
        criu_works || die "$CRIU_BIN --version does not report $CRIU_VERSION: $("$CRIU_BIN" --version 2>&1)"
        echo "$stamp" >"$CRIU_PREFIX/.ckpt-stamp"
    fi
    if [ "$(readlink "$CRIU_LINK" 2>/dev/null || true)" != "$CRIU_BIN" ]; then
        if [ -e "$CRIU_LINK" ] && [ ! -L "$CRIU_LINK" ]; then warn "replacing non-symlink $CRIU_LINK"; fi
        mkdir -p "$(dirname "$CRIU_LINK")"
        ln -sfn "$CRIU_BIN" "$CRIU_LINK"
        log "symlink $CRIU_LINK -> $CRIU_BIN"
    fi
    local onpath
    onpath=$(command -v criu || true)
    if [ "$onpath" != "$CRIU_LINK" ]; then
        warn "'criu' on PATH is '$onpath', not $CRIU_LINK"
    fi
    log "criu --version: $("$CRIU_LINK" --version | tr '\n' ' ')"
}

step_criu_check() {
    local out rc=0 f
    out=$("$CRIU_LINK" check 2>&1) || rc=$?
    # harmless here: "rlimit: Can't setup RLIMIT_NOFILE for self" and "Can't keep kdat cache on
    # non-tempfs" (/run is not a tmpfs on this machine)
    local noise
    noise=$(grep -v -e 'RLIMIT_NOFILE' -e 'kdat cache on non-tempfs' -e '^Looks good' <<<"$out" || true)
    if [ "$rc" -eq 0 ] && grep -q '^Looks good' <<<"$out"; then
        log "criu check: Looks good."
        [ -z "$noise" ] || warn "criu check also said:
$noise"
    else
        die "criu check failed (rc=$rc):
$out"
    fi
    # informational: optional kernel features the tests care about
    for f in mem_dirty_track uffd-noncoop; do
        if "$CRIU_LINK" check --feature "$f" >/dev/null 2>&1; then
            log "kernel feature $f: yes"
        else
            log "kernel feature $f: no"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# step: libcriu 4.1.1 (reference headers/proto and the real libcriu.so.2), not in /usr
RPC_PROTO='' CRIU_H_DIR='' LIBCRIU_DIR=''
libcriu_paths() {
    RPC_PROTO=$(find "$LIBCRIU_PREFIX" -name rpc.proto -type f | sort | head -n1)
    local h
    h=$(find "$LIBCRIU_PREFIX" -name criu.h -type f | sort | head -n1)
    CRIU_H_DIR=${h:+$(dirname "$h")}
    local so
    so=$(find "$LIBCRIU_PREFIX" -name libcriu.so.2 | sort | head -n1)
    LIBCRIU_DIR=${so:+$(dirname "$so")}
    [ -n "$RPC_PROTO" ] && [ -n "$CRIU_H_DIR" ] && [ -n "$LIBCRIU_DIR" ] &&
        [ -f "$CRIU_H_DIR/rpc.pb-c.h" ] && [ -f "$CRIU_H_DIR/version.h" ]
}

step_libcriu() {
    local stamp="recipe=$RECIPE pkgs=${LIBCRIU_PKGS[*]}"
    if stamp_ok "$LIBCRIU_PREFIX" "$stamp" && libcriu_paths; then
        log "libcriu $CRIU_VERSION already in $LIBCRIU_PREFIX"
    else
        download_trixie "${LIBCRIU_PKGS[@]}"
        local p v
        for p in "${LIBCRIU_PKGS[@]}"; do
            v=$(deb_version "$(deb_for "$p")")
            case "$v" in "$CRIU_VERSION"-*) ;; *) die "cached $p deb is $v, want $CRIU_VERSION" ;; esac
        done
        log "extracting ${LIBCRIU_PKGS[*]} into $LIBCRIU_PREFIX"
        extract_prefix "$LIBCRIU_PREFIX" "${LIBCRIU_PKGS[@]}"
        libcriu_paths || die "libcriu files (rpc.proto, criu.h, rpc.pb-c.h, version.h, libcriu.so.2) not found in $LIBCRIU_PREFIX"
        check_ldd "$LIBCRIU_DIR/libcriu.so.2"
        echo "$stamp" >"$LIBCRIU_PREFIX/.ckpt-stamp"
    fi
    log "rpc.proto:    $RPC_PROTO"
    log "criu.h:       $CRIU_H_DIR/criu.h"
    log "libcriu.so.2: $LIBCRIU_DIR/libcriu.so.2 -> $(readlink -f "$LIBCRIU_DIR/libcriu.so.2")"
    if [ -e "$SYS_LIBDIR/libcriu.so.2" ] || [ -e "/lib/$MULTIARCH/libcriu.so.2" ]; then
        warn "a system libcriu.so.2 exists in $SYS_LIBDIR: crun's DT_RPATH includes that directory, so crun" \
            "will load it instead of one given by LD_LIBRARY_PATH (apt-get remove libcriu2 to avoid that)"
    fi
}

# ---------------------------------------------------------------------------------------------
# step: crun 1.21 (+CRIU) in its own prefix
CRUN_BIN=$CRUN_PREFIX/usr/bin/crun
crun_works() { "$CRUN_BIN" --version 2>/dev/null | grep -q "^crun version $CRUN_VERSION\$"; }

step_crun() {
    local stamp="recipe=$RECIPE pkgs=${CRUN_PKGS[*]}"
    if stamp_ok "$CRUN_PREFIX" "$stamp" && crun_works; then
        log "crun $CRUN_VERSION already in $CRUN_PREFIX"
    else
        download_trixie "${CRUN_PKGS[@]}"
        check_deb_versions
        local v
        v=$(deb_version "$(deb_for crun)")
        case "$v" in "$CRUN_VERSION"-*) ;; *) die "cached crun deb is $v, want $CRUN_VERSION" ;; esac
        log "extracting ${#CRUN_PKGS[@]} packages into $CRUN_PREFIX"
        extract_prefix "$CRUN_PREFIX" "${CRUN_PKGS[@]}"
        patch_binary "$CRUN_BIN" "$CRUN_PREFIX"
        check_ldd "$CRUN_BIN"
        crun_works || die "$CRUN_BIN --version does not report $CRUN_VERSION: $("$CRUN_BIN" --version 2>&1)"
        echo "$stamp" >"$CRUN_PREFIX/.ckpt-stamp"
    fi
    # crun dlopens libcriu.so.2; DT_RPATH is searched before LD_LIBRARY_PATH, so the real
    # libcriu must not sit in any rpath directory (tests substitute their own libcriu.so.2).
    local rpath d
    rpath=$(patchelf --print-rpath "$CRUN_BIN")
    IFS=: read -ra dirs <<<"$rpath"
    for d in "${dirs[@]}"; do
        [ ! -e "$d/libcriu.so.2" ] || warn "crun DT_RPATH directory $d contains libcriu.so.2"
        [ "$(readlink -f "$d")" != "$(readlink -f "$LIBCRIU_DIR")" ] ||
            die "crun DT_RPATH contains the libcriu directory $LIBCRIU_DIR"
    done
    local ver
    ver=$("$CRUN_BIN" --version)
    grep -q '+CRIU' <<<"$ver" || die "crun was built without CRIU support: $ver"
    log "crun --version: $(tr '\n' ' ' <<<"$ver")"
}

# ---------------------------------------------------------------------------------------------
# step: checkpointctl 1.3.0 from trixie (it needs glibc 2.38) in its own prefix, patchelf'd as
# criu is; the archive interoperability tests run it on ckpt's checkpoint archives
CHECKPOINTCTL_BIN=$CHECKPOINTCTL_PREFIX/usr/bin/checkpointctl
# Debian's build has no version flag: the deb's version is checked when it is extracted, and the
# stamp records it; the binary must run and know the show and inspect commands.
checkpointctl_works() { "$CHECKPOINTCTL_BIN" --help 2>/dev/null | grep -q 'inspect'; }

step_checkpointctl() {
    local stamp="recipe=$RECIPE pkgs=${CHECKPOINTCTL_PKGS[*]} version=$CHECKPOINTCTL_VERSION"
    if stamp_ok "$CHECKPOINTCTL_PREFIX" "$stamp" && checkpointctl_works; then
        log "checkpointctl $CHECKPOINTCTL_VERSION already in $CHECKPOINTCTL_PREFIX"
        return 0
    fi
    download_trixie "${CHECKPOINTCTL_PKGS[@]}"
    check_deb_versions
    local v
    v=$(deb_version "$(deb_for checkpointctl)")
    case "$v" in "$CHECKPOINTCTL_VERSION"[-+]*) ;; *) die "cached checkpointctl deb is $v, want $CHECKPOINTCTL_VERSION" ;; esac
    extract_prefix "$CHECKPOINTCTL_PREFIX" "${CHECKPOINTCTL_PKGS[@]}"
    patch_binary "$CHECKPOINTCTL_BIN" "$CHECKPOINTCTL_PREFIX"
    check_ldd "$CHECKPOINTCTL_BIN"
    checkpointctl_works || die "$CHECKPOINTCTL_BIN does not run: $("$CHECKPOINTCTL_BIN" --help 2>&1)"
    echo "$stamp" >"$CHECKPOINTCTL_PREFIX/.ckpt-stamp"
}

# ---------------------------------------------------------------------------------------------
# step: Podman 4.3.1 (bookworm) without recommends: Debian's criu 3.17 (which fails on this
# kernel) must not come with it; Podman finds criu 4.1.1 through /usr/local/sbin/criu
step_podman() {
    if [ -z "$(missing_pkgs podman)" ]; then
        log "podman already installed: $(podman --version)"
    else
        apt_update
        log "apt-get install --no-install-recommends podman"
        apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 podman >/dev/null
    fi
    if [ -z "$(missing_pkgs criu)" ]; then die "Debian's criu is installed; Podman must use criu $CRIU_VERSION"; fi
    podman --version | grep -q ' 4\.3\.' || warn "podman is $(podman --version), the tests expect 4.3"
}

# ---------------------------------------------------------------------------------------------
# step: cbindgen 0.29.x (Debian's 0.24 cannot parse edition-2024 #[unsafe(no_mangle)])
step_cbindgen() {
    local v
    v=$(cbindgen --version 2>/dev/null || true)
    case "$v" in
    "cbindgen 0.29."*) log "$v already installed ($(command -v cbindgen))" ;;
    *)
        command -v cargo >/dev/null || die "cargo not found (install Rust with rustup first)"
        log "cargo install cbindgen --version ^0.29 --locked (had: ${v:-none})"
        cargo install cbindgen --version '^0.29' --locked
        v=$(cbindgen --version)
        case "$v" in "cbindgen 0.29."*) log "installed $v" ;; *) die "cbindgen is $v after install" ;; esac
        ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# step: cargo-fuzz (the fuzz targets in fuzz/; run on the stable toolchain with RUSTC_BOOTSTRAP=1)
step_cargo_fuzz() {
    local v
    v=$(cargo fuzz --version 2>/dev/null || true)
    case "$v" in
    "cargo-fuzz 0."*) log "$v already installed" ;;
    *)
        command -v cargo >/dev/null || die "cargo not found (install Rust with rustup first)"
        log "cargo install cargo-fuzz --locked"
        cargo install cargo-fuzz --locked
        v=$(cargo fuzz --version) || die "cargo fuzz does not run after install"
        log "installed $v"
        ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# step: kernel settings CRIU needs here
# CRIU's lazy-pages page server asks for 4 MiB pipes; root on this VM lacks CAP_SYS_RESOURCE, so
# with the default fs.pipe-max-size (1 MiB) the request is refused, CRIU ignores that and fails
# the first page transfer ("splice: -1: Bad file descriptor").
PIPE_MAX=4194304
SYSCTL_CONF=/etc/sysctl.d/60-ckpt-criu.conf
step_sysctl() {
    if ! grep -qx "fs.pipe-max-size = $PIPE_MAX" "$SYSCTL_CONF" 2>/dev/null; then
        echo "fs.pipe-max-size = $PIPE_MAX" >"$SYSCTL_CONF"
    fi
    local cur
    cur=$(cat /proc/sys/fs/pipe-max-size)
    if [ "$cur" -lt "$PIPE_MAX" ]; then
        echo "$PIPE_MAX" >/proc/sys/fs/pipe-max-size || die "cannot raise fs.pipe-max-size"
        log "fs.pipe-max-size raised from $cur to $PIPE_MAX"
    else
        log "fs.pipe-max-size is $cur"
    fi
}

# ---------------------------------------------------------------------------------------------
# step: env.sh
step_env_sh() {
    libcriu_paths || die "libcriu paths unknown"
    if write_if_changed "$ENV_SH" <<EOF; then
# Generated by ckpt scripts/setup.sh. Source it: . $ENV_SH
export CKPT_DEPS=$DEPS
export CKPT_RPC_PROTO=$RPC_PROTO
export CKPT_CRIU_H=$CRIU_H_DIR
export CKPT_LIBCRIU_DIR=$LIBCRIU_DIR
export CKPT_CRUN=$CRUN_BIN
export CKPT_CRIU=$CRIU_BIN
export CKPT_CHECKPOINTCTL=$CHECKPOINTCTL_BIN
# python with google.protobuf (Debian's python3-protobuf); pyenv's python3 may come first on PATH
export CKPT_PYTHON=/usr/bin/python3
EOF
        log "wrote $ENV_SH"
    else
        log "$ENV_SH up to date"
    fi
    sed 's/^/[setup]   /' "$ENV_SH"
}

# ---------------------------------------------------------------------------------------------
# step: sanity checks (always run; cheap)
step_sanity() {
    log "iptables-restore --version: $(iptables-restore --version 2>&1)"
    log "runc --version: $(runc --version | head -n1)"
    if command -v protoc >/dev/null; then log "protoc --version: $(protoc --version)"; fi
    if /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null; then
        log "/usr/bin/python3 has google.protobuf $(/usr/bin/python3 -c 'import google.protobuf as g; print(g.__version__)')"
    fi

    # criu dump -R of a detached shell loop (stdio on /dev/null, own session)
    local dir pid sid ok=0
    dir=$(mktemp -d /tmp/ckpt-setup-dump.XXXXXX)
    (cd / && exec setsid sh -c 'while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 9>&-) &
    pid=$!
    # setsid execs in place when the child is not a process-group leader (no job control here)
    sleep 0.2
    sid=$(awk '{ print $6 }' "/proc/$pid/stat" 2>/dev/null || echo none)
    if [ "$sid" = "$pid" ]; then
        if "$CRIU_LINK" dump -t "$pid" -D "$dir" -R -v4 -o dump.log >/dev/null 2>&1 &&
            grep -q 'Dumping finished successfully' "$dir/dump.log"; then
            ok=1
        fi
    else
        warn "test process $pid is not a session leader (sid=$sid)"
    fi
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$ok" -eq 1 ]; then
        log "criu dump -R of pid $pid: ok ($(find "$dir" -name '*.img' | wc -l) images)"
        rm -rf "$dir"
    else
        tail -n 30 "$dir/dump.log" >&2 2>/dev/null || true
        die "criu dump sanity check failed; log in $dir/dump.log"
    fi

    # libcriu.so.2 (the real one) talks to criu swrk
    local lv
    if lv=$(PATH="$(dirname "$CRIU_LINK"):$PATH" /usr/bin/python3 - "$LIBCRIU_DIR/libcriu.so.2" <<'PY' 2>&1
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
if lib.criu_init_opts() != 0:
    sys.exit("criu_init_opts failed")
print(lib.criu_get_version())
PY
    ); then
        log "libcriu criu_get_version(): $lv"
    else
        warn "libcriu criu_get_version() failed: $lv"
    fi
}

# ---------------------------------------------------------------------------------------------
T0=$(now)
log "ckpt setup: deps in $DEPS"
run_step "apt sources (trixie pin)" step_apt_sources
run_step "bookworm packages" step_bookworm_pkgs
run_step "criu $CRIU_VERSION" step_criu
run_step "criu check" step_criu_check
run_step "libcriu $CRIU_VERSION" step_libcriu
run_step "crun $CRUN_VERSION" step_crun
run_step "checkpointctl $CHECKPOINTCTL_VERSION" step_checkpointctl
run_step "podman" step_podman
run_step "apt pin check" step_check_pin
run_step "cbindgen 0.29" step_cbindgen
run_step "cargo-fuzz" step_cargo_fuzz
run_step "sysctl for CRIU" step_sysctl
run_step "env.sh" step_env_sh
run_step "sanity" step_sanity
log "summary:"
for s in "${STEP_SUMMARY[@]}"; do log "  $s"; done
log "done in $(elapsed "$T0")s"
