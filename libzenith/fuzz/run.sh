#!/usr/bin/env bash
# The fuzz targets of libzenith (cargo-fuzz on the nightly toolchain; libFuzzer).
#
#   run.sh smoke [SECONDS]    every target for SECONDS (default 10) over its corpus: `make test-fuzz`
#   run.sh full [RUNS]        every target for RUNS executions (default 1,000,000), one after
#                             another, with libFuzzer's final stats (exec/s): `make fuzz`
#   run.sh run TARGET [ARGS]  one target, with libFuzzer arguments (e.g. -runs=100 or a crash file)
#
# Seeds: corpus/<target>/ (committed; written by seeds.py). What the fuzzer finds goes to
# corpus-work/<target>/ and crashes to artifacts/<target>/ (both ignored by git). A crash fails
# the run; turn it into a regression test: commit the input under libzenith/core/tests/fuzz_crashes/<target>/
# (replayed by tests/hostile_metadata.rs), fix the cause. ZENITH_FUZZ_STRICT_PANICS=1 shows panic messages
# (and makes caught panics crashes too).
# Builds are release with debug assertions (overflow checks on) and AddressSanitizer.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
TARGETS=(ipc_file ipc_stream parquet csv csv_gz jsonl tar resume_state descriptors)
# Its own target directory: the fuzz build's flags differ from the main build's.
export CARGO_TARGET_DIR="$HERE/target"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz
fi

# -timeout: an input that takes longer is a hang; the 2 GiB RSS limit (and malloc limit, the
# same) turns an allocation sized by a lie into a crash. The targets run with a 64 MiB budget.
LIBFUZZER_ARGS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

fuzz() {
  local target="$1"
  shift
  mkdir -p "corpus-work/$target" "artifacts/$target"
  cargo +nightly fuzz run --fuzz-dir "$HERE" --debug-assertions "$target" "corpus-work/$target" "corpus/$target" -- \
    -artifact_prefix="artifacts/$target/" "${LIBFUZZER_ARGS[@]}" "$@"
}

mode="${1:-smoke}"
case "$mode" in
  smoke)
    seconds="${2:-10}"
    cargo +nightly fuzz build --fuzz-dir "$HERE" --debug-assertions
    for target in "${TARGETS[@]}"; do
      echo "== fuzz smoke: $target (${seconds}s)"
      fuzz "$target" -max_total_time="$seconds"
    done
    ;;
  full)
    runs="${2:-1000000}"
    cargo +nightly fuzz build --fuzz-dir "$HERE" --debug-assertions
    for target in "${TARGETS[@]}"; do
      echo "== fuzz full: $target ($runs runs)"
      fuzz "$target" -runs="$runs"
    done
    ;;
  run)
    target="${2:?run.sh run TARGET [libFuzzer args]}"
    shift 2
    fuzz "$target" "$@"
    ;;
  *)
    echo "usage: run.sh smoke [SECONDS] | full [RUNS] | run TARGET [ARGS]" >&2
    exit 2
    ;;
esac
