#!/usr/bin/env bash
# Packs what bench/gpu/run.sh needs on a GPU machine that has no Rust toolchain and no network
# (this workplace's device machines: CUDA, PyTorch and pyarrow, but no cargo and no registries):
# the release library, the CLI, the zenith-gpu test binaries and the h2d example, stripped and
# xz-compressed under gpu-pack/ (git-ignored), small enough to travel with the working tree.
#
#   bench/gpu/pack.sh            then carry gpu-pack/ and run bench/gpu/run.sh there
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p libzenith -p zenith-cli
cargo build --release -p zenith-gpu --tests --examples
rm -rf gpu-pack
mkdir -p gpu-pack
cp target/release/libzenith.so target/release/zenith target/release/examples/h2d_bandwidth gpu-pack/
# The newest build of each zenith-gpu test binary (cargo names them NAME-HASH).
for test in cuda_device device_path device_export device_feed slot_ring no_device; do
    binary=$(ls -t target/release/deps/"$test"-* | grep -v '\.d$' | head -n1)
    cp "$binary" "gpu-pack/test_$test"
done
strip --strip-unneeded gpu-pack/*
xz -T2 -6 gpu-pack/*
du -ch gpu-pack/* | tail -n1
