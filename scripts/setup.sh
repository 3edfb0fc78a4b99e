#!/usr/bin/env bash
# Installs what building and testing libzenith needs on a fresh Debian/Ubuntu machine, skipping
# whatever is already there: system packages (apt: compilers, cmake, pkg-config, valgrind,
# GoogleTest, libclang, python3-venv, Node.js and npm, and Go when apt has 1.25 or newer), the
# nightly Rust toolchain (rustup; the fuzz targets build with it) and the Python venv (.venv)
# with the test clients (pyarrow, numpy, pytest, wsgidav). Safe to run repeatedly.
#
# Not installed here: Rust itself (https://rustup.rs) and Go where apt has none new enough (Debian
# 12 has 1.19): the script says how. `scripts/check_toolchains.sh` (the first step of `make test`)
# lists whatever is still missing.
set -euo pipefail
cd "$(dirname "$0")/.."

GO_MIN=1.25
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

# any_exists PATTERN...: some file matches one of the (already expanded) globs.
any_exists() {
  local f
  for f in "$@"; do [ -e "$f" ] && return 0; done
  return 1
}
need_apt=()
want() {
  local p
  for p in ${need_apt[@]+"${need_apt[@]}"}; do [ "$p" = "$1" ] && return 0; done
  need_apt+=("$1")
}
command -v valgrind >/dev/null || want valgrind
command -v pkg-config >/dev/null || want pkg-config
command -v cmake >/dev/null || want cmake
command -v cc >/dev/null || want build-essential
command -v c++ >/dev/null || want build-essential
command -v nm >/dev/null || want binutils
# bindgen (the ABI check) loads libclang at run time.
any_exists /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*-linux-gnu/libclang*.so* || want libclang-dev
python3 -c 'import venv, ensurepip' 2>/dev/null || want python3-venv
# The example WASM plugins (examples/plugins/build.sh): clang --target=wasm32 and wasm-ld.
command -v clang >/dev/null || want clang
command -v wasm-ld >/dev/null || want lld
# Node.js and npm for Azurite, the Azure Blob emulator of the remote-dataset tests.
command -v node >/dev/null || want nodejs
command -v npm >/dev/null || want npm
# GoogleTest for tests/cpp (find_package(GTest)); libgtest-dev ships the built libraries.
{ [ -e /usr/include/gtest/gtest.h ] && any_exists /usr/lib/*-linux-gnu/libgtest.* /usr/lib/libgtest.*; } \
  || want libgtest-dev

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
apt_updated=0
apt_update() {
  [ "$apt_updated" = 1 ] && return 0
  $sudo_cmd apt-get update -qq
  apt_updated=1
}

# Go >= 1.25 for bindings/go. apt's golang-go is often older; a versioned golang-1.NN-go package
# installs into /usr/lib/go-1.NN without touching PATH.
go_version() { GOTOOLCHAIN=local "$1" version 2>/dev/null | sed -n 's/^go version go\([0-9][0-9.]*\).*/\1/p'; }
go_v=""
go_apt=""      # why apt cannot provide Go (empty: it can, or Go is present)
go_bin=""      # where a versioned golang-1.NN-go package puts go
command -v go >/dev/null && go_v="$(go_version go)"
if [ -z "$go_v" ] || ! version_ge "$go_v" "$GO_MIN"; then
  if command -v apt-get >/dev/null; then
    apt_update || true   # only to look; without network the apt lists may be stale or empty
    # "2:1.19~1" -> 1.19
    candidate="$(apt-cache policy golang-go 2>/dev/null | sed -n 's/^ *Candidate: *//p' \
      | sed -e 's/^[0-9]*://' -e 's/[~+-].*//')"
    versioned="$(apt-cache search --names-only '^golang-1\.[0-9]+-go$' 2>/dev/null \
      | sed -n 's/^golang-\(1\.[0-9]*\)-go .*/\1/p' | sort -V | tail -n 1)"
    if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && version_ge "$candidate" "$GO_MIN"; then
      want golang-go
    elif [ -n "$versioned" ] && version_ge "$versioned" "$GO_MIN"; then
      want "golang-$versioned-go"
      go_bin="/usr/lib/go-$versioned/bin"
    else
      go_apt="apt offers golang-go ${candidate:-(none)}${versioned:+, golang-$versioned-go at most}"
    fi
  else
    go_apt="no apt-get"
  fi
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: no apt-get; install the equivalents of these Debian packages: ${need_apt[*]}" >&2
  else
    echo "setup: installing ${need_apt[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi
if [ -n "$go_bin" ]; then
  echo "setup: Go is in $go_bin, off PATH: export PATH=$go_bin:\$PATH"
elif [ -n "$go_apt" ]; then
  echo "setup: warning: Go >= $GO_MIN (for make test-go) not found${go_v:+ (go $go_v is too old)} and $go_apt." \
    "Install it from https://go.dev/dl (tar -C /usr/local -xzf go1.2*.linux-amd64.tar.gz;" \
    "PATH=/usr/local/go/bin:\$PATH), or with Go >= 1.21 and network access set GOTOOLCHAIN=auto." >&2
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
rust_min="$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)"
rustc_v="$(rustc --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)"
if [ -n "$rust_min" ] && ! version_ge "$rustc_v" "$rust_min"; then
  echo "setup: warning: rustc $rustc_v is older than rust-version $rust_min: rustup update stable" >&2
fi
if command -v rustup >/dev/null; then
  # `make lint` runs cargo fmt and clippy; the minimal rustup profile has neither.
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "setup: adding the rustfmt and clippy components"
    rustup component add rustfmt clippy
  fi
  # The fuzz targets build with nightly (cargo +nightly).
  if ! RUSTUP_AUTO_INSTALL=0 cargo +nightly --version >/dev/null 2>&1; then
    echo "setup: installing the nightly Rust toolchain (minimal profile)"
    rustup toolchain install nightly --profile minimal
  fi
fi

if [ ! -x .venv/bin/python ] || ! cmp -s tests/python/requirements.txt .venv/.requirements; then
  echo "setup: creating .venv with tests/python/requirements.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/python/requirements.txt
  cp tests/python/requirements.txt .venv/.requirements
fi
