#!/usr/bin/env bash
# Installs what building and testing libzenith needs on a fresh Debian/Ubuntu machine, skipping
# whatever is already there: system packages (apt) and the Python venv (.venv) with the test
# clients (pyarrow, numpy, pytest). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v nm >/dev/null || need_apt+=(binutils)
# bindgen (the ABI check) loads libclang at run time.
ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 \
  || need_apt+=(libclang-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ] || ! cmp -s tests/python/requirements.txt .venv/.requirements; then
  echo "setup: creating .venv with tests/python/requirements.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/python/requirements.txt
  cp tests/python/requirements.txt .venv/.requirements
fi
