#!/usr/bin/env bash
# Tests the C++ bindings (bindings/cpp/include/zenith.hpp) the way a user gets them: `make install`
# into build/tests/cpp/prefix, then CMake find_package(Zenith CONFIG REQUIRED).
#
# Passing means: the installed zenith.hpp is the source one, compiles alone and twice as C++17
# and C++20 with -Wall -Wextra -Wpedantic -Werror (and refuses C++14); the GoogleTest suite in
# tests/cpp passes under valgrind with zero errors and zero definitely-lost bytes; examples/cpp
# builds with find_package(Zenith), runs, and reports a missing file through zenith::Error.
#
# Called by `make test-cpp` after `make build data`; reads $ZENITH_TEST_DATA (default
# tests/data/generated).
set -euo pipefail
cd "$(dirname "$0")/../.."

export ZENITH_TEST_DATA=${ZENITH_TEST_DATA:-$PWD/tests/data/generated}
CXX=${CXX:-c++}
MAKE=${MAKE:-make}
out=$PWD/build/tests/cpp
prefix=$out/prefix
strict=(-Wall -Wextra -Wpedantic -Werror)
jobs=$(nproc 2>/dev/null || echo 2)

for tool in "$CXX" cmake valgrind; do
  command -v "$tool" >/dev/null || { echo "FAILED: $tool not found" >&2; exit 1; }
done
if [ ! -f "$ZENITH_TEST_DATA/basic.arrow" ]; then
  echo "FAILED: $ZENITH_TEST_DATA/basic.arrow missing: run 'make data'" >&2
  exit 1
fi

echo "== make install PREFIX=$prefix"
rm -rf "$prefix"
mkdir -p "$out"
# Every directory explicitly, so settings from an outer make do not leak in.
"$MAKE" --no-print-directory install PREFIX="$prefix" LIBDIR="$prefix/lib" \
  INCLUDEDIR="$prefix/include" DESTDIR= >"$out/install.log" 2>&1 \
  || { cat "$out/install.log" >&2; exit 1; }
cmp bindings/cpp/include/zenith.hpp "$prefix/include/zenith.hpp"

echo "== zenith.hpp: alone, included twice, C++17 and C++20 (a std::ranges::input_range)"
for std in c++17 c++20; do
  "$CXX" -std=$std "${strict[@]}" -I"$prefix/include" -c tests/cpp/header_checks.cpp \
    -o "$out/header_checks.$std.o"
done
if "$CXX" -std=c++14 -I"$prefix/include" -c tests/cpp/header_checks.cpp -o "$out/c++14.o" \
    2>"$out/c++14.log"; then
  echo "FAILED: zenith.hpp compiled as C++14" >&2
  exit 1
elif ! grep -q "zenith.hpp needs C++17" "$out/c++14.log"; then
  echo "FAILED: zenith.hpp as C++14 failed without its #error:" >&2
  cat "$out/c++14.log" >&2
  exit 1
fi

# cmake_build SOURCE BUILD: configures against the prefix (and nothing else), then builds.
cmake_build() {
  cmake -S "$1" -B "$2" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_CXX_FLAGS="${strict[*]}" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$2.configure.log" 2>&1 \
    || { cat "$2.configure.log" >&2; return 1; }
  local dir
  dir=$(sed -n 's/^Zenith_DIR:[A-Z]*=//p' "$2/CMakeCache.txt")
  if [ "$dir" != "$prefix/lib/cmake/Zenith" ]; then
    echo "FAILED: found Zenith in '$dir', expected $prefix/lib/cmake/Zenith" >&2
    return 1
  fi
  cmake --build "$2" -j "$jobs" >"$2.build.log" 2>&1 || { cat "$2.build.log" >&2; return 1; }
}

echo "== tests/cpp: build with find_package(Zenith) and find_package(GTest)"
cmake_build tests/cpp "$out/tests"

echo "== tests/cpp: GoogleTest under valgrind"
log=$out/valgrind.log
if valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --log-file="$log" \
    "$out/tests/zenith_cpp_tests" --gtest_brief=1 >"$out/gtest.log" 2>&1; then
  tail -n 3 "$out/gtest.log"
  echo "   valgrind: $(grep -c . "$log" || true) report lines, 0 errors, 0 definite leaks"
else
  status=$?
  cat "$out/gtest.log" >&2
  echo "FAILED: zenith_cpp_tests exited with $status" \
    "(99 = valgrind errors or definite leaks); $log:" >&2
  cat "$log" >&2
  exit 1
fi

echo "== examples/cpp: build with find_package(Zenith) and run"
cmake_build examples/cpp "$out/example"
# No LD_LIBRARY_PATH: the program finds libzenith through the RPATH CMake gave it.
env -u LD_LIBRARY_PATH "$out/example/stream_batches" "$ZENITH_TEST_DATA/basic.arrow" 1000 \
  embedding | tee "$out/example.out"
grep -q "^10000 rows in 10 batches" "$out/example.out" \
  || { echo "FAILED: examples/cpp did not read 10000 rows in 10 batches" >&2; exit 1; }
if "$out/example/stream_batches" "$ZENITH_TEST_DATA/missing.arrow" 2>"$out/example.err"; then
  echo "FAILED: examples/cpp succeeded on a missing file" >&2
  exit 1
fi
if ! grep -q "zenith error -4 (not found)" "$out/example.err"; then
  echo "FAILED: examples/cpp did not report ZENITH_ERR_NOT_FOUND (-4):" >&2
  cat "$out/example.err" >&2
  exit 1
fi
echo "   missing file: $(cat "$out/example.err")"
echo "test-cpp: PASS"
