#!/usr/bin/env bash
# Checks, in a few seconds, that every tool `make test` needs is present and new enough, and lists
# everything missing at once (instead of `make test` failing minutes in, at the first suite that
# needs it). `make test` runs it first (`make check-toolchains`); it installs nothing.
#
#   scripts/check_toolchains.sh     exit 0: all present; exit 1: the missing ones, each with a hint
#
# Items marked "(make setup)" are installed by scripts/setup.sh on Debian/Ubuntu; the others are
# not in every distribution's apt (Rust through rustup, Go >= 1.25). Honours $CC and $CXX.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

CC="${CC:-cc}"
CXX="${CXX:-c++}"
GO_MIN=1.25
CMAKE_MIN=3.19   # tests/install/version uses version ranges

problems=()
# ok WHAT DETAIL / missing WHAT HINT
ok() { printf '  ok       %-22s %s\n' "$1" "$2"; }
missing() {
    printf '  MISSING  %-22s %s\n' "$1" "$2"
    problems+=("$1")
    case "$2" in *"(make setup)"*) setup_fixes=1 ;; esac
}
setup_fixes=0
has() { command -v "$1" >/dev/null 2>&1; }
# version_ge A B: A >= B as dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
first_version() { grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n 1; }

echo "check-toolchains: what \`make test\` needs"

# ---- Rust ------------------------------------------------------------------------------------
rust_min="$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' Cargo.toml 2>/dev/null | head -n 1)"
if has cargo && has rustc; then
    rustc_v="$(rustc --version 2>/dev/null | first_version)"
    if [ -z "$rust_min" ]; then
        ok "cargo, rustc" "rustc $rustc_v (no rust-version in Cargo.toml to compare with)"
    elif [ -n "$rustc_v" ] && version_ge "$rustc_v" "$rust_min"; then
        ok "cargo, rustc" "rustc $rustc_v >= $rust_min (Cargo.toml rust-version)"
    else
        missing "rustc >= $rust_min" "found rustc ${rustc_v:-?}: rustup update stable"
    fi
    for component in fmt clippy; do
        if cargo "$component" --version >/dev/null 2>&1; then
            ok "cargo $component" "$(cargo "$component" --version 2>/dev/null | first_version)"
        else
            missing "cargo $component" "rustup component add $([ $component = fmt ] && echo rustfmt || echo clippy)"
        fi
    done
    # The fuzz targets build with nightly. RUSTUP_AUTO_INSTALL=0: a check never downloads.
    if nightly_v="$(RUSTUP_AUTO_INSTALL=0 cargo +nightly --version 2>/dev/null)"; then
        ok "cargo +nightly" "$(echo "$nightly_v" | cut -d' ' -f2)"
    elif has rustup; then
        missing "cargo +nightly" "rustup toolchain install nightly --profile minimal (make setup)"
    else
        missing "cargo +nightly" "needs rustup (https://rustup.rs), then rustup toolchain install nightly"
    fi
else
    missing "cargo, rustc" "install Rust ${rust_min:+>= $rust_min }with rustup: https://rustup.rs"
    missing "cargo +nightly" "after rustup: rustup toolchain install nightly --profile minimal"
fi

# ---- C, C++ and the tools the test scripts call ------------------------------------------------
if has "$CC"; then ok "C compiler" "$CC: $("$CC" --version 2>/dev/null | head -n 1)"
else missing "C compiler ($CC)" "apt-get install build-essential (make setup)"; fi
if has "$CXX"; then ok "C++ compiler" "$CXX: $("$CXX" --version 2>/dev/null | head -n 1)"
else missing "C++ compiler ($CXX)" "apt-get install build-essential (make setup)"; fi

if has cmake; then
    cmake_v="$(cmake --version | first_version)"
    if version_ge "$cmake_v" "$CMAKE_MIN"; then ok "cmake" "$cmake_v"
    else missing "cmake >= $CMAKE_MIN" "found $cmake_v: apt-get install cmake, or pip install cmake"; fi
else
    missing "cmake" "apt-get install cmake (make setup)"
fi
if has pkg-config; then ok "pkg-config" "$(pkg-config --version)"
else missing "pkg-config" "apt-get install pkg-config (make setup)"; fi
if has valgrind; then ok "valgrind" "$(valgrind --version)"
else missing "valgrind" "apt-get install valgrind (make setup)"; fi
# Azurite (the Azure Blob emulator of make test-remote) installs with npm and runs on Node.js.
if has node && has npm; then ok "node, npm" "node $(node --version 2>/dev/null | first_version), npm $(npm --version 2>/dev/null)"
else missing "node, npm" "apt-get install nodejs npm (make setup)"; fi
# The example WASM plugins (make plugins): clang with the wasm32 target, and wasm-ld.
if has clang && clang --print-targets 2>/dev/null | grep -q wasm32; then
    ok "clang (wasm32)" "$(clang --version | head -n 1)"
else missing "clang (wasm32)" "apt-get install clang (make setup)"; fi
if has wasm-ld; then ok "wasm-ld" "$(wasm-ld --version | head -n 1)"
else missing "wasm-ld" "apt-get install lld (make setup)"; fi
if has nm && has readelf; then ok "nm, readelf" "binutils"
else missing "nm, readelf" "apt-get install binutils (make setup)"; fi

# ---- GoogleTest: the same find_package(GTest) that tests/cpp/CMakeLists.txt runs ---------------
gtest_found=""
if has cmake && has "$CXX"; then
    probe="$(mktemp -d "${TMPDIR:-/tmp}/zenith-gtest-probe.XXXXXX")"
    printf '%s\n' 'cmake_minimum_required(VERSION 3.16)' 'project(gtest_probe CXX)' \
        'find_package(GTest REQUIRED)' >"$probe/CMakeLists.txt"
    if cmake -S "$probe" -B "$probe/build" -DCMAKE_CXX_COMPILER="$CXX" >/dev/null 2>&1; then
        gtest_found="find_package(GTest)$(sed -n 's/^GTest_DIR:[A-Z]*=/: /p' "$probe/build/CMakeCache.txt")"
    fi
    rm -rf "$probe"
else
    # Without cmake (reported above) look for the files.
    for lib in /usr/lib/libgtest.* /usr/lib/*-linux-gnu/libgtest.* /usr/local/lib/libgtest.*; do
        if [ -e "$lib" ] && { [ -e /usr/include/gtest/gtest.h ] || [ -e /usr/local/include/gtest/gtest.h ]; }; then
            gtest_found="$lib"
            break
        fi
    done
fi
if [ -n "$gtest_found" ]; then ok "GoogleTest" "$gtest_found"
else missing "GoogleTest" "apt-get install libgtest-dev (make setup)"; fi

# ---- libclang: bindgen (tests/abi) loads it at run time; $LIBCLANG_PATH overrides the search --
libclang=""
for f in ${LIBCLANG_PATH:+"$LIBCLANG_PATH"/libclang*.so*} /usr/lib/llvm-*/lib/libclang.so* \
         /usr/lib/*-linux-gnu/libclang*.so* /usr/lib64/libclang.so* /usr/local/lib/libclang.so*; do
    if [ -e "$f" ]; then libclang="$f"; break; fi
done
if [ -n "$libclang" ]; then ok "libclang" "$libclang"
else missing "libclang" "apt-get install libclang-dev (make setup), or set LIBCLANG_PATH"; fi

# ---- Python with venv (the .venv of test clients, .venv-binding) -------------------------------
if has python3; then
    py_v="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
    if ! version_ge "${py_v:-0}" 3.9; then
        missing "python3 >= 3.9" "found ${py_v:-?}"
    elif python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        ok "python3 + venv" "$py_v"
    else
        missing "python3 venv" "apt-get install python3-venv (make setup)"
    fi
else
    missing "python3" "apt-get install python3 python3-venv (make setup)"
fi

# ---- Go (bindings/go, examples/go) -------------------------------------------------------------
# GOTOOLCHAIN=local: report the installed go, never download one.
go_version() { GOTOOLCHAIN=local "$1" version 2>/dev/null | sed -n 's/^go version go\([0-9][0-9.]*\).*/\1/p'; }
go_v=""
has go && go_v="$(go_version go)"
if [ -n "$go_v" ] && version_ge "$go_v" "$GO_MIN"; then
    if [ "$(go env CGO_ENABLED 2>/dev/null)" = 1 ]; then ok "go" "$go_v ($(command -v go))"
    else missing "go cgo" "go $go_v has cgo disabled: unset CGO_ENABLED=0 (cgo needs $CC)"; fi
elif [ -n "$go_v" ] && version_ge "$go_v" 1.21 && [ -n "${GOTOOLCHAIN:-}" ] \
        && [ "${GOTOOLCHAIN}" != local ]; then
    ok "go" "$go_v; GOTOOLCHAIN=$GOTOOLCHAIN fetches go >= $GO_MIN for bindings/go (needs network)"
else
    # A newer Go may be installed off PATH (golang-1.2x-go lives in /usr/lib/go-1.2x).
    hint="install Go >= $GO_MIN from https://go.dev/dl (tar -C /usr/local -xzf go*.tar.gz) and put /usr/local/go/bin on PATH"
    for g in /usr/local/go/bin/go /usr/lib/go-1.*/bin/go; do
        v="$([ -x "$g" ] && go_version "$g")"
        if [ -n "$v" ] && version_ge "$v" "$GO_MIN"; then
            hint="go $v is installed but not first on PATH: export PATH=$(dirname "$g"):\$PATH"
            break
        fi
    done
    missing "go >= $GO_MIN" "${go_v:+found go $go_v; }$hint"
fi

if [ ${#problems[@]} -gt 0 ]; then
    list="$(printf '%s; ' "${problems[@]}")"
    echo "check-toolchains: FAILED, missing: ${list%; }" >&2
    if [ "$setup_fixes" = 1 ]; then
        echo "  \`make setup\` (scripts/setup.sh) installs the ones marked (make setup) on Debian/Ubuntu." >&2
    fi
    exit 1
fi
echo "check-toolchains: all present"
