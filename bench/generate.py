#!/usr/bin/env python3
"""Writes the benchmark dataset with pyarrow (no Zenith code writes what Zenith reads).

Schema (the same rows in every layout):

    id     int64                         the row number, 0..rows-1
    label  int32                         random in [0, 1000)
    value  float64                       random in [0, 1)
    emb    fixed_size_list<float32>[64]  random in [0, 1)
    text   utf8                          a short token, "tok-<random 0..99999>" (5 to 9 bytes)

Layouts written under OUT_DIR (default bench/data/):

    data.arrow       one Arrow IPC file, uncompressed, record batches of 65,536 rows
    data.parquet     one Parquet file, row groups of 65,536 rows (pyarrow defaults otherwise:
                     snappy compression, dictionary encoding where pyarrow chooses it)
    shards/          8 Parquet files part-00000.parquet .. part-00007.parquet, contiguous slices
                     of the same rows, row groups of 65,536 rows
    manifest.json    the parameters; a later run with the same parameters skips the writing

Usage: generate.py [OUT_DIR] [--rows N] [--seed S] [--force]
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "data")
CHUNK_ROWS = 65_536  # IPC record batch size and Parquet row group size
EMB_WIDTH = 64
NUM_SHARDS = 8
FORMAT_VERSION = 1  # bump when the layout or the schema changes, so old caches are rewritten


def make_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    emb_flat = rng.random(rows * EMB_WIDTH, dtype=np.float32)
    tokens = rng.integers(0, 100_000, size=rows)
    text = np.char.add("tok-", tokens.astype("U5"))
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "label": pa.array(rng.integers(0, 1000, size=rows, dtype=np.int32)),
            "value": pa.array(rng.random(rows, dtype=np.float64)),
            "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb_flat), EMB_WIDTH),
            "text": pa.array(text, type=pa.utf8()),
        }
    )


def manifest_for(rows: int, seed: int) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "rows": rows,
        "seed": seed,
        "chunk_rows": CHUNK_ROWS,
        "emb_width": EMB_WIDTH,
        "num_shards": NUM_SHARDS,
        "pyarrow": pa.__version__,
    }


def is_current(out: str, rows: int, seed: int) -> bool:
    """True when OUT already holds this dataset: same manifest and files of the right row count."""
    try:
        with open(os.path.join(out, "manifest.json")) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return False
    want = manifest_for(rows, seed)
    if any(old.get(k) != want[k] for k in want if k != "pyarrow"):
        return False
    try:
        with pa.memory_map(os.path.join(out, "data.arrow")) as src:
            if ipc.open_file(src).read_all().num_rows != rows:
                return False
        if pq.ParquetFile(os.path.join(out, "data.parquet")).metadata.num_rows != rows:
            return False
        shard_rows = sum(
            pq.ParquetFile(os.path.join(out, "shards", f"part-{i:05d}.parquet")).metadata.num_rows
            for i in range(NUM_SHARDS)
        )
        return shard_rows == rows
    except (OSError, pa.ArrowException):
        return False


def generate(out: str, rows: int, seed: int = 0, force: bool = False, quiet: bool = False) -> str:
    """Writes the dataset into OUT unless it is already there; returns OUT."""
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if not force and is_current(out, rows, seed):
        log(f"generate: {out} already holds {rows:,} rows (seed {seed}); skipping")
        return out
    t0 = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    # Invalidate first: a crash half-way must not leave a manifest describing partial files.
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    tbl = make_table(rows, seed)

    with ipc.new_file(os.path.join(out, "data.arrow"), tbl.schema) as writer:
        writer.write_table(tbl, max_chunksize=CHUNK_ROWS)
    pq.write_table(tbl, os.path.join(out, "data.parquet"), row_group_size=CHUNK_ROWS)

    shard_dir = os.path.join(out, "shards")
    shutil.rmtree(shard_dir, ignore_errors=True)
    os.makedirs(shard_dir)
    per_shard = -(-rows // NUM_SHARDS)
    for i in range(NUM_SHARDS):
        part = tbl.slice(i * per_shard, per_shard)
        pq.write_table(part, os.path.join(shard_dir, f"part-{i:05d}.parquet"), row_group_size=CHUNK_ROWS)

    with open(manifest_path, "w") as f:
        json.dump(manifest_for(rows, seed), f, indent=2)
        f.write("\n")
    log(
        f"generate: wrote {rows:,} rows to {out} in {time.perf_counter() - t0:.1f} s "
        f"({tbl.nbytes / 1e6:.0f} MB in memory)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", default=DEFAULT_OUT)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rewrite even if present")
    args = parser.parse_args()
    generate(args.out_dir, args.rows, args.seed, args.force)


if __name__ == "__main__":
    main()
