#!/usr/bin/env bash
# Installs libzenith into a fresh temporary prefix and builds C programs against the installed
# copy the ways a user would: pkg-config (shared and static) and CMake find_package (both imported
# targets, the version file, examples/c, a DESTDIR-staged tree), the C++ example (zenith.hpp)
# with pkg-config, and the README's C quick start built with the README's own commands and run
# without LD_LIBRARY_PATH. Then uninstalls.
#
# Called by `make test-install` from the repository root after `make build`; needs the data that
# `make data` writes ($ZENITH_TEST_DATA, default tests/data/generated). Prints PASS/FAIL per step.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

CC="${CC:-cc}"
CXX="${CXX:-c++}"
MAKE="${MAKE:-make}"
CFLAGS_STRICT="-std=c11 -O1 -Wall -Wextra -Wpedantic -Werror"
CXXFLAGS_STRICT="-std=c++17 -O1 -Wall -Wextra -Wpedantic -Werror"
data_dir="${ZENITH_TEST_DATA:-$repo/tests/data/generated}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
major="${version%%.*}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/zenith-install-test.XXXXXX")"
tmp="$(cd "$tmp" && pwd -P)"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
mkdir -p "$tmp/logs" "$tmp/bin"

failed=0
passed=0

# run_step NAME FUNCTION: runs FUNCTION in a subshell under `set -e` with its output in a log;
# prints PASS (with the note the step left in $note) or FAIL and the log.
note="$tmp/note"
run_step() {
    local name="$1" fn="$2" log rc
    log="$tmp/logs/${fn}.log"
    : >"$note"
    set +e
    ( set -euo pipefail; "$fn" ) >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        if [ -s "$note" ]; then
            echo "PASS: $name: $(cat "$note")"
        else
            echo "PASS: $name"
        fi
    else
        failed=$((failed + 1))
        echo "FAIL: $name (exit $rc); log:"
        sed 's/^/    /' "$log"
    fi
    return 0
}

fail() { echo "error: $*" >&2; exit 1; }
say() { printf '%s' "$*" >"$note"; }

# Runs a program with no help from LD_LIBRARY_PATH: it must find its libraries by itself.
run_bare() { env -u LD_LIBRARY_PATH "$@"; }

needed_libs() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# The consumer finds libzenith.so.N in the installed prefix, nowhere else.
check_dynamic() {
    local bin="$1" lib="$2"
    needed_libs "$bin" | grep -qx "libzenith.so.$major" \
        || fail "$bin does not record NEEDED libzenith.so.$major: $(needed_libs "$bin" | tr '\n' ' ')"
    local resolved
    resolved="$(run_bare ldd "$bin" | awk '$1 == "libzenith.so.'"$major"'" { print $3 }')"
    [ "$resolved" = "$lib/libzenith.so.$major" ] \
        || fail "ldd resolves libzenith.so.$major to '$resolved', expected $lib/libzenith.so.$major"
}

check_static() {
    local bin="$1"
    if needed_libs "$bin" | grep -q libzenith; then
        fail "$bin still has NEEDED $(needed_libs "$bin" | grep libzenith)"
    fi
    if run_bare ldd "$bin" | grep -q libzenith; then
        fail "ldd lists libzenith for $bin"
    fi
}

run_consumer() {
    run_bare "$@" "$data_dir" | tee "$tmp/consumer.out"
    grep -q "all checks passed" "$tmp/consumer.out" || fail "consumer did not pass"
}

# ---- steps -----------------------------------------------------------------------------------

step_preflight() {
    for tool in "$CC" "$CXX" pkg-config cmake readelf ldd; do
        command -v "$tool" >/dev/null || fail "$tool not found"
    done
    [ -n "$version" ] || fail "no version in Cargo.toml"
    [ -f "$data_dir/basic.arrow" ] || fail "$data_dir/basic.arrow missing: run 'make data'"
    say "version $version, data $data_dir"
}

step_install() {
    # Pass every directory explicitly so settings from an outer make do not leak in.
    "$MAKE" --no-print-directory install PREFIX="$prefix" LIBDIR="$prefix/lib" \
        INCLUDEDIR="$prefix/include" DESTDIR=
    say "make install PREFIX=$prefix"
}

step_tree() {
    local lib="$prefix/lib"
    [ -f "$lib/libzenith.so.$version" ] && [ ! -L "$lib/libzenith.so.$version" ] \
        || fail "$lib/libzenith.so.$version is not a regular file"
    [ "$(readlink "$lib/libzenith.so.$major")" = "libzenith.so.$version" ] \
        || fail "libzenith.so.$major does not point to libzenith.so.$version"
    [ "$(readlink "$lib/libzenith.so")" = "libzenith.so.$major" ] \
        || fail "libzenith.so does not point to libzenith.so.$major"
    readelf -d "$lib/libzenith.so.$version" | grep -q "SONAME.*\[libzenith.so.$major\]" \
        || fail "installed library's SONAME is not libzenith.so.$major"
    for f in "$lib/libzenith.a" "$prefix/include/zenith.h" "$prefix/include/zenith.hpp" \
             "$lib/pkgconfig/zenith.pc" \
             "$lib/cmake/Zenith/ZenithConfig.cmake" "$lib/cmake/Zenith/ZenithConfigVersion.cmake"; do
        [ -f "$f" ] || fail "$f missing"
    done
    cmp -s include/zenith.h "$prefix/include/zenith.h" || fail "installed zenith.h differs"
    cmp -s bindings/cpp/include/zenith.hpp "$prefix/include/zenith.hpp" \
        || fail "installed zenith.hpp differs"
    if grep -n '@[A-Z_]*@' "$lib/pkgconfig/zenith.pc" "$lib/cmake/Zenith/"*.cmake; then
        fail "unsubstituted @PLACEHOLDER@ in installed files"
    fi
    say "libzenith.so.$version (+ .so.$major, .so links), libzenith.a, zenith.h, zenith.hpp, zenith.pc, ZenithConfig*.cmake"
}

step_pkgconfig_shared() {
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    [ "$(pkg-config --modversion zenith)" = "$version" ] || fail "pkg-config --modversion != $version"
    local bin="$tmp/bin/consumer_pc_shared"
    # shellcheck disable=SC2046  # pkg-config output is meant to be split into words
    "$CC" $CFLAGS_STRICT tests/install/consumer.c $(pkg-config --cflags --libs zenith) \
        -Wl,-rpath,"$prefix/lib" -o "$bin"
    check_dynamic "$bin" "$prefix/lib"
    run_consumer "$bin"
    say "$CC ... \$(pkg-config --cflags --libs zenith) = $(pkg-config --cflags --libs zenith); ran against $prefix/lib/libzenith.so.$major"
}

step_pkgconfig_static() {
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    local bin="$tmp/bin/consumer_pc_static" libs
    libs="$(pkg-config --static --libs zenith)"
    echo "pkg-config --static --libs zenith: $libs"
    [[ " $libs " == *" -lpthread "* && " $libs " == *" -ldl "* ]] \
        || fail "Libs.private lacks the native libraries: $libs"
    # Make the linker take libzenith.a although libzenith.so sits next to it.
    libs="${libs/-lzenith/-Wl,-Bstatic -lzenith -Wl,-Bdynamic}"
    # shellcheck disable=SC2046,SC2086
    "$CC" $CFLAGS_STRICT tests/install/consumer.c $(pkg-config --static --cflags zenith) $libs \
        -o "$bin"
    check_static "$bin"
    run_consumer "$bin"
    say "linked libzenith.a with $(pkg-config --static --libs zenith | sed 's/.*-lzenith //'); no NEEDED libzenith"
}

step_pkgconfig_cpp() {
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    [ -f examples/cpp/stream_batches.cpp ] || fail "examples/cpp/stream_batches.cpp missing"
    local bin="$tmp/bin/stream_batches_cpp"
    # shellcheck disable=SC2046,SC2086  # pkg-config output is meant to be split into words
    "$CXX" $CXXFLAGS_STRICT examples/cpp/stream_batches.cpp $(pkg-config --cflags --libs zenith) \
        -Wl,-rpath,"$prefix/lib" -o "$bin"
    check_dynamic "$bin" "$prefix/lib"
    run_bare "$bin" "$data_dir/basic.arrow" 1000 embedding | tee "$tmp/cpp.out"
    grep -q "^10000 rows in 10 batches" "$tmp/cpp.out" || fail "examples/cpp did not read 10000 rows"
    say "$CXX -std=c++17 examples/cpp/stream_batches.cpp \$(pkg-config --cflags --libs zenith): built and ran"
}

# The README's "C quick start": its ```c block, built with the README's pkg-config command (the
# `cc ...` lines of its ```sh block, rpath from `pkg-config --variable=libdir zenith`) and run with
# no LD_LIBRARY_PATH, so the README cannot drift into a program that fails against an installed
# prefix. Also built with the strict flags, and run on a missing file (it must stop, exit 1).
step_readme_c() {
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    local dir="$tmp/readme" cmd
    mkdir -p "$dir"
    # shellcheck disable=SC2016  # awk programs, not shell expansions
    awk '/^## / { in_section = ($0 == "## C quick start"); next }
         in_section && /^```c$/ { in_code = 1; next }
         in_code && /^```$/ { exit }
         in_code { print }' README.md >"$dir/app.c"
    grep -q 'int main' "$dir/app.c" || fail "README.md: no whole C program in a \`\`\`c block under '## C quick start'"
    # The documented compile command: from `cc ` to the first line without a continuation.
    # shellcheck disable=SC2016
    cmd="$(awk '/^## / { in_section = ($0 == "## C quick start"); next }
                in_section && /^cc / { on = 1 }
                on { print; if ($0 !~ /\\$/) exit }' README.md)"
    [[ "$cmd" == *"pkg-config --variable=libdir zenith"* ]] \
        || fail "README.md: the C quick start's cc command lacks the rpath from pkg-config: $cmd"
    echo "README: $cmd"
    (cd "$dir" && eval "${cmd/#cc /$CC }")
    [ -x "$dir/app" ] || fail "the README's command did not produce ./app"
    check_dynamic "$dir/app" "$prefix/lib"
    # shellcheck disable=SC2046,SC2086  # pkg-config output is meant to be split into words
    "$CC" $CFLAGS_STRICT "$dir/app.c" $(pkg-config --cflags --libs zenith) -o "$dir/app_strict"
    run_bare "$dir/app" "$data_dir/basic.arrow" | tee "$dir/out"
    if ! grep -qx "epoch 0: 10000 rows" "$dir/out" || ! grep -qx "epoch 1: 10000 rows" "$dir/out"; then
        fail "the README's program did not read 10000 rows in each of two epochs"
    fi
    if run_bare "$dir/app" "$data_dir/missing.arrow" >"$dir/missing.out" 2>"$dir/missing.err"; then
        fail "the README's program succeeded on a missing file"
    fi
    cat "$dir/missing.err"
    [ ! -s "$dir/missing.out" ] || fail "the README's program carried on after a failed open: $(cat "$dir/missing.out")"
    grep -q "not found" "$dir/missing.err" || fail "the README's program did not report ZENITH_ERR_NOT_FOUND"
    say "README C quick start built with its own pkg-config + rpath command, ran on basic.arrow (2 epochs) and stopped on a missing file"
}

# cmake_build SOURCE BUILD PREFIX [ARGS...]: configures and builds, checks the package came from PREFIX.
cmake_build() {
    local src="$1" build="$2" pfx="$3"
    shift 3
    cmake -S "$src" -B "$build" -DCMAKE_PREFIX_PATH="$pfx" -DCMAKE_C_COMPILER="$CC" \
        -DCMAKE_C_FLAGS="$CFLAGS_STRICT" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "$@"
    local dir
    dir="$(sed -n 's/^Zenith_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")"
    [ "$dir" = "$pfx/lib/cmake/Zenith" ] || fail "found Zenith in '$dir', expected $pfx/lib/cmake/Zenith"
    cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"
}

step_cmake_consumer() {
    local build="$tmp/build-cmake"
    cmake_build tests/install/cmake "$build" "$prefix"
    check_dynamic "$build/consumer_shared" "$prefix/lib"
    run_consumer "$build/consumer_shared"
    check_static "$build/consumer_static"
    run_consumer "$build/consumer_static"
    say "find_package(Zenith CONFIG REQUIRED): Zenith::zenith and Zenith::zenith_static built and ran"
}

step_cmake_version() {
    cmake -S tests/install/version -B "$tmp/build-version" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DZENITH_VERSION="$version"
    say "$(grep -c 'as expected' "$tmp/logs/step_cmake_version.log") find_package(Zenith <version>) cases"
}

step_cmake_example() {
    [ -f examples/c/stream_batches.c ] || fail "examples/c/stream_batches.c missing"
    local build="$tmp/build-example"
    cmake_build examples/c "$build" "$prefix"
    check_dynamic "$build/stream_batches" "$prefix/lib"
    run_bare "$build/stream_batches" "$data_dir/basic.arrow" 1000
    say "examples/c built with find_package(Zenith) and ran on basic.arrow"
}

step_destdir_relocated() {
    # Staged the way packagers do: the files land under DESTDIR, the configs name /opt/zenith.
    local stage="$tmp/stage" staged
    "$MAKE" --no-print-directory install DESTDIR="$stage" PREFIX=/opt/zenith \
        LIBDIR=/opt/zenith/lib INCLUDEDIR=/opt/zenith/include
    staged="$stage/opt/zenith"
    [ -f "$staged/lib/libzenith.so.$version" ] || fail "DESTDIR install missing files"
    grep -q '^libdir=/opt/zenith/lib$' "$staged/lib/pkgconfig/zenith.pc" || fail "zenith.pc libdir"
    # The CMake config computes its paths from its own location, so the staged tree is usable.
    local build="$tmp/build-staged"
    cmake_build tests/install/cmake "$build" "$staged"
    check_dynamic "$build/consumer_shared" "$staged/lib"
    run_consumer "$build/consumer_shared"
    "$MAKE" --no-print-directory uninstall DESTDIR="$stage" PREFIX=/opt/zenith \
        LIBDIR=/opt/zenith/lib INCLUDEDIR=/opt/zenith/include
    [ -z "$(find "$stage" -type f -o -type l)" ] || fail "DESTDIR uninstall left $(find "$stage" -type f -o -type l)"
    say "DESTDIR install; CMake config relocatable (found under $stage); DESTDIR uninstall clean"
}

step_uninstall() {
    "$MAKE" --no-print-directory uninstall PREFIX="$prefix" LIBDIR="$prefix/lib" \
        INCLUDEDIR="$prefix/include" DESTDIR=
    local left
    left="$(find "$prefix" -type f -o -type l)"
    [ -z "$left" ] || fail "make uninstall left: $left"
    say "no files left under the prefix"
}

run_step "preflight" step_preflight
[ "$failed" -eq 0 ] || exit 1
run_step "make install" step_install
[ "$failed" -eq 0 ] || exit 1
run_step "installed tree" step_tree
run_step "pkg-config shared link" step_pkgconfig_shared
run_step "pkg-config static link" step_pkgconfig_static
run_step "pkg-config C++ (zenith.hpp)" step_pkgconfig_cpp
run_step "README C quick start" step_readme_c
run_step "CMake consumer" step_cmake_consumer
run_step "CMake version file" step_cmake_version
run_step "CMake examples/c" step_cmake_example
run_step "DESTDIR staged install" step_destdir_relocated
run_step "make uninstall" step_uninstall

if [ "$failed" -ne 0 ]; then
    echo "test-install: FAIL ($failed failed, $passed passed)"
    exit 1
fi
echo "test-install: PASS ($passed steps)"
