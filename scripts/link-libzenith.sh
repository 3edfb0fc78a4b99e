#!/bin/sh
# The linker cargo runs on this host (.cargo/config.toml). For libzenith.so alone it narrows
# the list of symbols rustc exports to the C ABI (zenith_*): rustc exports every #[no_mangle]
# function of every dependency from a cdylib (rust-lang/rust#73958), and object_store's crc-fast
# carries such functions (crc_fast_*), which another copy of crc-fast in the same process could
# interpose. Every other link runs unchanged.
set -eu
case " $* " in
  *"-soname,libzenith.so."*)
    for arg in "$@"; do
      case "$arg" in
        -Wl,--version-script=*)
          # rustc's script lists one symbol per line ("name;") under global:, then "local: *;".
          sed -i -E '/^[[:space:]]*[A-Za-z_][A-Za-z0-9_.$]*;[[:space:]]*$/{/^[[:space:]]*zenith_/!d;}' \
            "${arg#-Wl,--version-script=}"
          ;;
      esac
    done
    ;;
esac
exec "${ZENITH_LINK_CC:-cc}" "$@"
