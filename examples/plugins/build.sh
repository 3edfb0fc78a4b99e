#!/usr/bin/env bash
# Builds the example plugins (*.c here) into WASM modules with Debian's clang and wasm-ld (apt
# packages clang and lld; `make setup` installs them). No libc: the plugins use only compiler
# builtins and include/zenith_plugin.h.
#
#   examples/plugins/build.sh [OUT_DIR]     default OUT_DIR: build/plugins
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/build/plugins}"
CLANG="${CLANG:-clang}"
command -v "$CLANG" >/dev/null || { echo "build.sh: $CLANG not found (apt install clang lld, or make setup)" >&2; exit 1; }
command -v wasm-ld >/dev/null || { echo "build.sh: wasm-ld not found (apt install lld, or make setup)" >&2; exit 1; }
mkdir -p "$out"
for source in "$here"/*.c; do
    name="$(basename "$source" .c)"
    # --no-entry: a library, no _start; exports come from ZN_EXPORT (export_name attributes);
    # -mbulk-memory lets clang lower memcpy/struct copies to memory.copy instead of a libc call.
    "$CLANG" --target=wasm32 -nostdlib -O2 -mbulk-memory -Wall -Wextra -Werror \
        -I "$root/include" -I "$here" \
        -Wl,--no-entry -Wl,--strip-all \
        -o "$out/$name.wasm" "$source"
    echo "built $out/$name.wasm"
done
