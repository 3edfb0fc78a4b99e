#!/usr/bin/env bash
# Builds the C tests against the freshly built library and runs them under valgrind.
#
# Passing means: the header compiles alone (C11 and C++17, -Wall -Wextra -Wpedantic -Werror,
# included twice, beside another Arrow C ABI definition, before and after the real dlpack.h) and
# refuses a pre-1.0 dlpack.h, every C test's checks pass, and valgrind reports zero errors and
# zero definitely-lost bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."

lib_dir=${ZENITH_LIB_DIR:-$PWD/target/release}
export ZENITH_TEST_DATA=${ZENITH_TEST_DATA:-$PWD/tests/data/generated}
out=build/tests/c
mkdir -p "$out"
strict=(-Wall -Wextra -Wpedantic -Werror)

echo "== header: C11 and C++17, included twice, beside arrow/c/abi.h"
for source in tests/c/header_twice.c tests/c/header_with_arrow_abi.c; do
  name=$(basename "$source" .c)
  cc -std=c11 "${strict[@]}" -Iinclude -c "$source" -o "$out/$name.c.o"
  c++ -std=c++17 "${strict[@]}" -x c++ -Iinclude -c "$source" -o "$out/$name.cpp.o"
done

# The real dlpack.h: the copy pyarrow ships (the test venv has it; `make setup` makes the venv).
python=${PYTHON:-.venv/bin/python}
dlpack_include=$("$python" -c 'import pyarrow; print(pyarrow.get_include())' 2>/dev/null || true)
if [ ! -f "$dlpack_include/arrow/c/dlpack_abi.h" ]; then
  echo "FAILED: no dlpack.h to check zenith.h against: $python cannot import pyarrow or its" \
    "include/arrow/c/dlpack_abi.h is missing (run \`make setup\`)" >&2
  exit 1
fi
echo "== header: C11 and C++17, before and after dlpack.h ($dlpack_include/arrow/c/dlpack_abi.h)"
for order in "" -DDLPACK_FIRST; do
  cc -std=c11 "${strict[@]}" $order -Iinclude -I"$dlpack_include" \
    -c tests/c/header_with_dlpack.c -o "$out/header_with_dlpack.c.o"
  c++ -std=c++17 "${strict[@]}" $order -x c++ -Iinclude -I"$dlpack_include" \
    -c tests/c/header_with_dlpack.c -o "$out/header_with_dlpack.cpp.o"
done
echo "== header: refuses a pre-1.0 dlpack.h"
if cc -std=c11 -Iinclude -c tests/c/header_with_old_dlpack.c -o "$out/old_dlpack.o" \
    2>"$out/old_dlpack.log"; then
  echo "FAILED: zenith.h compiled after a pre-1.0 dlpack.h" >&2
  exit 1
elif ! grep -q "zenith.h needs DLPack >= 1.0" "$out/old_dlpack.log"; then
  echo "FAILED: zenith.h after a pre-1.0 dlpack.h failed without its #error:" >&2
  cat "$out/old_dlpack.log" >&2
  exit 1
fi

failed=0
for source in tests/c/test_*.c; do
  name=$(basename "$source" .c)
  echo "== $name (valgrind)"
  cc -std=c11 "${strict[@]}" -g -O0 -pthread -Iinclude "$source" -L"$lib_dir" -lzenith \
    -Wl,-rpath,"$lib_dir" -o "$out/$name"
  log="$out/$name.valgrind.log"
  if valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --show-leak-kinds=definite --suppressions=tests/c/valgrind.supp --log-file="$log" \
      "$out/$name"; then
    echo "   valgrind: $(grep -c . "$log" || true) report lines, 0 errors, 0 definite leaks"
  else
    status=$?
    echo "FAILED: $name exited with $status (99 = valgrind errors or definite leaks); $log:" >&2
    cat "$log" >&2
    failed=1
  fi
done
exit $failed
