#!/usr/bin/env python3
"""Writes the datasets the tests and the demo read, with pyarrow, so that no Zenith code writes
what Zenith reads.

Every value is a function of the row id, so a reader (C, Rust or Python) can check any row it
receives without a reference copy:

    id        int64     the row number, 0..rows-1
    label     int32     id % 10
    value     float64   id * 0.5
    name      utf8      "row-<id>", NULL when id % 7 == 3
    flag      bool      id % 3 == 0
    embedding fixed_size_list<float32>[4]   [id + 0.0, id + 0.25, id + 0.5, id + 0.75]

Usage: generate.py OUT_DIR [--rows N] [--demo-rows N]
"""

import argparse
import os

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

# Record batch sizes in the files cycle through these, so loader batches straddle file batches.
FILE_BATCH_SIZES = [1000, 777, 1500, 123]
EMBEDDING_WIDTH = 4


def table(rows: int, start: int = 0) -> pa.Table:
    ids = pa.array(range(start, start + rows), type=pa.int64())
    id_list = ids.to_pylist()
    flat = [float(i) + k / EMBEDDING_WIDTH for i in id_list for k in range(EMBEDDING_WIDTH)]
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), EMBEDDING_WIDTH)
    return pa.table(
        {
            "id": ids,
            "label": pa.array([i % 10 for i in id_list], type=pa.int32()),
            "value": pa.array([i * 0.5 for i in id_list], type=pa.float64()),
            "name": pa.array([None if i % 7 == 3 else f"row-{i}" for i in id_list], type=pa.utf8()),
            "flag": pa.array([i % 3 == 0 for i in id_list], type=pa.bool_()),
            "embedding": embedding,
        }
    )


def irregular_batches(tbl: pa.Table):
    offset, k = 0, 0
    while offset < tbl.num_rows:
        size = FILE_BATCH_SIZES[k % len(FILE_BATCH_SIZES)]
        yield from tbl.slice(offset, size).to_batches()
        offset += size
        k += 1


def write_ipc(path: str, tbl: pa.Table, batches=None) -> None:
    with ipc.new_file(path, tbl.schema) as writer:
        for batch in batches if batches is not None else irregular_batches(tbl):
            writer.write_batch(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in basic.arrow")
    parser.add_argument("--demo-rows", type=int, default=0, help="also write sample.arrow")
    args = parser.parse_args()
    out = args.out_dir
    os.makedirs(out, exist_ok=True)

    basic = table(args.rows)
    basic_path = os.path.join(out, "basic.arrow")
    write_ipc(basic_path, basic)

    # One record batch: every loader batch is a zero-copy slice of the mapping.
    write_ipc(os.path.join(out, "single_batch.arrow"), basic, basic.combine_chunks().to_batches())

    # A schema and no batches at all.
    write_ipc(os.path.join(out, "empty.arrow"), basic.slice(0, 0), [])

    # A dictionary-encoded column (dictionaries live in their own IPC blocks).
    dict_tbl = pa.table(
        {
            "id": pa.array(range(100), type=pa.int64()),
            "color": pa.array([["red", "green", "blue"][i % 3] for i in range(100)]).dictionary_encode(),
        }
    )
    write_ipc(os.path.join(out, "dictionary.arrow"), dict_tbl, dict_tbl.to_batches(max_chunksize=30))

    # Broken inputs: each must be a clean error, never a crash.
    with open(basic_path, "rb") as f:
        good = f.read()
    with open(os.path.join(out, "truncated.arrow"), "wb") as f:
        f.write(good[: len(good) * 3 // 5])
    corrupt = bytearray(good)
    # Overwrite the footer (it sits just before the 4-byte length and the trailing magic).
    footer_len = int.from_bytes(good[-10:-6], "little")
    footer_start = len(good) - 10 - footer_len
    corrupt[footer_start : footer_start + footer_len] = bytes([0xA5]) * footer_len
    with open(os.path.join(out, "corrupt_footer.arrow"), "wb") as f:
        f.write(bytes(corrupt))
    with open(os.path.join(out, "not_a_dataset.bin"), "w") as f:
        f.write("neither Arrow nor Parquet, and no known extension\n")
    with open(os.path.join(out, "zero_bytes.arrow"), "wb"):
        pass
    pq.write_table(basic.slice(0, 100), os.path.join(out, "basic.parquet"))
    # A directory with nothing to read but noise the discovery skips.
    os.makedirs(os.path.join(out, "empty_dir"), exist_ok=True)
    with open(os.path.join(out, "empty_dir", "_SUCCESS"), "w"):
        pass

    if args.demo_rows:
        write_ipc(os.path.join(out, "sample.arrow"), table(args.demo_rows), None)


if __name__ == "__main__":
    main()
