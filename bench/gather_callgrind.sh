#!/usr/bin/env bash
# The gather step alone (libzenith/core/examples/gather_bench.rs), shuffled batches of 1024 rows of
# the loader benchmark's five columns, arrow's interleave (before) against the gather kernel (after):
#
# 1. callgrind instructions per million gathered rows (repeatable on a shared machine);
# 2. bytes gathered per CPU-second of one thread, against a single-core memcpy of the same bytes
#    (goal: the kernel at >= 50 % of memcpy). CPU time, not wall time, so other work on the machine
#    weighs less; the machine's load is printed with it. Rows scattered over a data set far larger
#    than the caches cost a cache miss per line, so the same bytes also get a latency ceiling:
#    `lines`, one load from as many random cache lines as the rows occupy (what one core's
#    outstanding misses allow), and the kernel as a share of it.
#
# Environment: ROWS (dataset rows for the timing, default 1048576), CG_ROWS (dataset rows under
# callgrind, default 1048576: 16 chunks, as in the loader benchmark, so the per-chunk work of a
# batch counts as there; 262144 gives 4 chunks and a faster run), CG_GATHER (rows gathered under callgrind, default 65536), REPEAT
# (timed passes, default 5; the median is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1048576}
CG_ROWS=${CG_ROWS:-1048576}
CG_GATHER=${CG_GATHER:-65536}
REPEAT=${REPEAT:-5}
command -v valgrind >/dev/null || { echo "valgrind is missing (scripts/setup.sh installs it)" >&2; exit 1; }
cargo build --release -p zenith-core --example gather_bench >&2
BIN=target/release/examples/gather_bench
OUT=${TMPDIR:-$PWD/target/tmp}/gather_callgrind
mkdir -p "$OUT"
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"
for method in interleave kernel; do
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$method.out" \
        --toggle-collect='*gather_epoch*' "$BIN" "$method" --rows "$CG_ROWS" \
        --gather-rows "$CG_GATHER" >/dev/null 2>"$OUT/$method.log"
    ir=$(awk '/^(summary|totals):/ {v = $2} END {print v}' "$OUT/$method.out")
    echo "callgrind $method: $ir instructions for $CG_GATHER rows = $((ir * 1000000 / CG_GATHER)) instructions per million rows"
done
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for method in memcpy lines interleave kernel; do
    rate=$(for _ in $(seq "$REPEAT"); do
        "$BIN" "$method" --rows "$ROWS" | sed 's/.*bytes_per_cpu_s=\([^ ]*\).*/\1/'
    done | median)
    eval "rate_$method=$rate"
    echo "cpu $method: $rate bytes per CPU-second (median of $REPEAT, dataset $ROWS rows)"
done
awk -v k="$rate_kernel" -v i="$rate_interleave" -v m="$rate_memcpy" -v l="$rate_lines" 'BEGIN {
    printf "kernel at %.1f %% of memcpy per core (interleave: %.1f %%)\n", 100 * k / m, 100 * i / m
    printf "random-line ceiling at %.1f %% of memcpy; kernel at %.1f %% of it (interleave: %.1f %%)\n",
        100 * l / m, 100 * k / l, 100 * i / l }'
echo "machine after: $(uptime | sed 's/.*load/load/')"
