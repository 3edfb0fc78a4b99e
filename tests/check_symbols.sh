#!/usr/bin/env bash
# The shared library exports the C API and nothing else: every defined dynamic symbol starts with
# `zenith_` (house style rule 1). Usage: check_symbols.sh path/to/libzenith.so
set -euo pipefail
lib=${1:?usage: check_symbols.sh path/to/libzenith.so}
exported=$(nm -D --defined-only "$lib" | awk '{print $3}')
count=$(grep -c '^zenith_' <<<"$exported" || true)
stray=$(grep -v '^zenith_' <<<"$exported" || true)
if [ -n "$stray" ]; then
  echo "FAIL: $lib exports symbols outside the zenith_ prefix:" >&2
  echo "$stray" >&2
  exit 1
fi
if [ "$count" -eq 0 ]; then
  echo "FAIL: $lib exports no zenith_ symbols" >&2
  exit 1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
case "$soname" in
  libzenith.so.[0-9]*) ;;
  *) echo "FAIL: $lib has soname '$soname', expected libzenith.so.<major>" >&2; exit 1 ;;
esac
echo "symbols: $count exported, all zenith_*; soname $soname"
