#!/usr/bin/env bash
# One prepared device check for a machine with an NVIDIA GPU (issue 10): builds, runs the GPU
# tests with a device required (the Arrow device export of CUDA batches included), runs
# compute-sanitizer on them when installed, and measures
# host-to-device bandwidth (pageable vs pinned cuMemcpy vs zenith's slot ring) in one run.
#
#   bench/gpu/run.sh [OUT_DIR]        (default: target/bench-gpu; results in OUT_DIR/results.json)
#
# Fails at once, with the reason, where no CUDA device is usable (no libcuda.so, no device).
# Then: the CLI's device commands (zenith bench h2d, zenith bench --device), the Python device
# tests, and the training-shaped loop (zenith's device path vs torch's DataLoader with pin_memory
# and .to("cuda", non_blocking=True), and zenith's pin_memory host batches copied by the loop
# itself). `zenith bench --device` reports the bytes copied straight from pinned batches vs
# staged (device_bytes_direct / device_bytes_staged). Python with torch: $ZENITH_PYTHON, else .venv-binding.
# Budget: about 8 minutes on a 16-core machine (most of it the release build). A machine without
# cargo or network (this workplace's device machines) runs what bench/gpu/pack.sh packed into
# gpu-pack/ here: carry gpu-pack and the script unpacks it instead of building.
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT="${1:-target/bench-gpu}"
mkdir -p "$OUT"
log() { printf '[bench/gpu] %s\n' "$*" >&2; }

# 1. Is there a device? nvidia-smi is optional; the driver library is not.
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,pci.bus_id,memory.total,driver_version --format=csv,noheader | tee "$OUT/nvidia-smi.txt" >&2 || true
    nvidia-smi topo -m > "$OUT/topo.txt" 2>&1 || true
fi
has_libcuda() {
    ldconfig -p 2>/dev/null | grep -q 'libcuda\.so' && return 0
    local dir
    IFS=: read -ra dirs <<< "${LD_LIBRARY_PATH:-}"
    for dir in "${dirs[@]}"; do
        compgen -G "$dir/libcuda.so*" >/dev/null && return 0
    done
    return 1
}
if ! has_libcuda; then
    log "FAIL: no CUDA driver library (libcuda.so, searched ldconfig's cache and LD_LIBRARY_PATH): no device to measure"
    exit 2
fi

# 2. Build (release profile only, as everywhere in this repo), or, on a machine without cargo,
# unpack what bench/gpu/pack.sh packed here (gpu-pack/, carried with the working tree).
if command -v cargo >/dev/null 2>&1; then
    log "building libzenith, the CLI and zenith-gpu (tests and the h2d_bandwidth example)"
    cargo build --release -p libzenith -p zenith-cli
    cargo build --release -p zenith-gpu --tests --examples
    gpu_tests() { ZENITH_REQUIRE_GPU=1 cargo test --release -p zenith-gpu -- --nocapture; }
    test_binary=$(ls -t target/release/deps/cuda_device-* 2>/dev/null | grep -v '\.d$' | head -n1 || true)
elif [ -d gpu-pack ]; then
    log "no cargo here: unpacking gpu-pack/ (bench/gpu/pack.sh)"
    mkdir -p target/release/examples target/gpu-tests
    for f in gpu-pack/*.xz; do xz -dc "$f" > "target/gpu-tests/$(basename "$f" .xz)"; done
    chmod +x target/gpu-tests/*
    mv target/gpu-tests/libzenith.so target/gpu-tests/zenith target/release/
    mv target/gpu-tests/h2d_bandwidth target/release/examples/
    gpu_tests() {
        local t
        for t in target/gpu-tests/test_*; do
            ZENITH_REQUIRE_GPU=1 "$t" --nocapture || return 1
        done
    }
    test_binary=target/gpu-tests/test_cuda_device
else
    log "FAIL: neither cargo nor gpu-pack/ (run bench/gpu/pack.sh where cargo is and carry gpu-pack)"
    exit 2
fi
ln -sf libzenith.so target/release/libzenith.so.0

# 3. GPU tests with a device required: a missing device fails instead of skipping.
log "running the GPU tests (ZENITH_REQUIRE_GPU=1)"
gpu_tests 2>&1 | tee "$OUT/tests.log"

# 4. compute-sanitizer (memcheck) on the CUDA tests, when installed.
if command -v compute-sanitizer >/dev/null 2>&1; then
    if [ -n "$test_binary" ]; then
        log "compute-sanitizer on $test_binary"
        ZENITH_REQUIRE_GPU=1 compute-sanitizer --error-exitcode 1 "$test_binary" --test-threads=1 \
            2>&1 | tee "$OUT/sanitizer.log"
    fi
else
    log "compute-sanitizer not installed: skipped"
fi

# 5. H2D bandwidth: 256 MiB batches, 40 of them, 4 slots; then 64 MiB with the minimum 3 slots.
log "measuring host-to-device bandwidth"
{
    target/release/examples/h2d_bandwidth 256 40 4
    target/release/examples/h2d_bandwidth 64 100 3
} | tee "$OUT/results.jsonl"
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for r in rows:
    # The loader's workers build batches in pinned memory: the direct ring is what it delivers;
    # the staged ring is the fallback for batches outside it (stage outputs).
    verdict = "meets" if r["zenith_direct_vs_pinned"] >= 0.85 else "BELOW"
    print(f'{r["device"]} {r["batch_bytes"] >> 20} MiB x{r["batches"]}, {r["slots"]} slots: '
          f'pageable {r["pageable_gbps"]} GB/s, pinned {r["pinned_gbps"]} GB/s, '
          f'zenith direct {r["zenith_direct_gbps"]} GB/s = {r["zenith_direct_vs_pinned"]:.0%} of pinned '
          f'({verdict} the 85% goal), staged {r["zenith_ring_gbps"]} GB/s = {r["zenith_vs_pinned"]:.0%}')
PY
# 6. The CLI's device commands.
log "zenith bench h2d and zenith bench --device cuda:0"
target/release/zenith bench h2d --device cuda:0 --json | tee "$OUT/bench_h2d.json"
data=tests/data/generated/parquet/basic.snappy.parquet
if [ ! -f "$data" ]; then
    # The generator needs only pyarrow and numpy: the machine's own python3 has both.
    if command -v cargo >/dev/null 2>&1; then make data; else python3 tests/data/generate.py tests/data/generated; fi
fi
target/release/zenith bench "$data" --device cuda:0 --epochs 3 --json | tee "$OUT/bench_device.json"

# 7. Python: the device tests and the training-shaped loop, with a Python that has torch.
PY="${ZENITH_PYTHON:-}"
[ -n "$PY" ] || for candidate in .venv-binding/bin/python /work/main/.venv-binding/bin/python python3; do
    if [ -x "$(command -v "$candidate" || true)" ] && "$candidate" -c 'import torch, pyarrow, pytest' 2>/dev/null; then
        PY="$candidate"; break
    fi
done
if [ -z "$PY" ]; then
    log "FAIL: no Python with torch, pyarrow and pytest (set ZENITH_PYTHON)"
    exit 3
fi
export PYTHONPATH="$PWD/bindings/python" ZENITH_LIBRARY="$PWD/target/release/libzenith.so"
log "Python device tests with $PY"
"$PY" -m pytest -q bindings/python/tests/test_device.py 2>&1 | tee "$OUT/python_device_tests.log"
log "training-shaped loop: zenith device path vs torch DataLoader (pin_memory, non_blocking)"
timeout 240 "$PY" bench/gpu/train_loop.py "$OUT/train" | tee "$OUT/train_loop.json"

log "done: results in $OUT"
