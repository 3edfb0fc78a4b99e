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

The same table is written in every format Zenith reads (Arrow IPC file and stream, Parquet with
each codec, CSV and TSV plain or compressed, JSON lines), as shards of a directory, and as broken
files that must be clean errors. WebDataset tar shards (webdataset/) hold per-sample files
instead (see wds_sample_files).

Usage: generate.py OUT_DIR [--rows N] [--demo-rows N]
"""

import argparse
import gzip
import io
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

# Record batch sizes in the files cycle through these, so loader batches straddle file batches.
FILE_BATCH_SIZES = [1000, 777, 1500, 123]
EMBEDDING_WIDTH = 4
# Parquet codecs the loader promises, as pyarrow names them ("lz4" is LZ4_RAW in the file).
PARQUET_CODECS = ["snappy", "zstd", "lz4", "gzip", "none"]
PARQUET_ROW_GROUP = 1000
# Rows per shard of shards/ (for 10,000 rows): uneven, so shard boundaries fall inside loader
# batches and row groups of 500 end short.
SHARD_ROWS = [1000, 1500, 777, 1223, 1250, 1250, 2000, 1000]
SHARD_ROW_GROUP = 500
# Rows in large.csv: more than two CSV chunks (65,536 rows each), so the last one is partial.
LARGE_CSV_ROWS = 140_000
# The columns CSV can hold (not the fixed_size_list).
CSV_COLUMNS = ["id", "label", "value", "name", "flag"]


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


def write_stream(path: str, tbl: pa.Table, batches=None) -> None:
    with ipc.new_stream(path, tbl.schema) as writer:
        for batch in batches if batches is not None else irregular_batches(tbl):
            writer.write_batch(batch)


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def write_parquet_files(out: str, basic: pa.Table) -> None:
    """parquet/: one file per codec; shards/ and mixed_shards/: directories of shards; and broken
    Parquet files (truncated: no footer; corrupt: garbage page headers in the first row group)."""
    parquet_dir = os.path.join(out, "parquet")
    os.makedirs(parquet_dir, exist_ok=True)
    for codec in PARQUET_CODECS:
        pq.write_table(
            basic,
            os.path.join(parquet_dir, f"basic.{codec}.parquet"),
            row_group_size=PARQUET_ROW_GROUP,
            compression=codec,
        )

    # shards/: nested directories whose files, in sorted path order, are basic's rows in order;
    # plus the noise that real shard directories hold (markers, hidden checksum files).
    shards = os.path.join(out, "shards")
    # Shard boundaries scale with --rows (SHARD_ROWS is for the default 10,000).
    cumulative = [sum(SHARD_ROWS[:k]) for k in range(len(SHARD_ROWS) + 1)]
    bounds = [c * basic.num_rows // cumulative[-1] for c in cumulative]
    for k in range(len(SHARD_ROWS)):
        subdir = os.path.join(shards, "a" if k < len(SHARD_ROWS) // 2 else "b")
        os.makedirs(subdir, exist_ok=True)
        pq.write_table(
            basic.slice(bounds[k], bounds[k + 1] - bounds[k]),
            os.path.join(subdir, f"part-{k}.parquet"),
            row_group_size=SHARD_ROW_GROUP,
        )
        write_bytes(os.path.join(subdir, f".part-{k}.parquet.crc"), b"not data")
    write_bytes(os.path.join(shards, "_SUCCESS"), b"")

    # mixed_shards/: the second shard stores `label` as int64.
    mixed = os.path.join(out, "mixed_shards")
    os.makedirs(mixed, exist_ok=True)
    pq.write_table(basic.slice(0, 500), os.path.join(mixed, "part-0.parquet"))
    other = basic.slice(500, 500)
    other = other.set_column(1, "label", other.column("label").cast(pa.int64()))
    pq.write_table(other, os.path.join(mixed, "part-1.parquet"))

    with open(os.path.join(parquet_dir, "basic.none.parquet"), "rb") as f:
        good = f.read()
    write_bytes(os.path.join(out, "truncated.parquet"), good[: len(good) * 3 // 5])
    corrupt = bytearray(good)
    row_group = pq.ParquetFile(os.path.join(parquet_dir, "basic.none.parquet")).metadata.row_group(0)
    for i in range(row_group.num_columns):
        column = row_group.column(i)
        start = column.dictionary_page_offset or column.data_page_offset
        corrupt[start : start + 16] = bytes([0xA5]) * 16
    write_bytes(os.path.join(out, "corrupt.parquet"), bytes(corrupt))
    # A footer (the Thrift FileMetaData before the 4-byte length and PAR1) that is garbage.
    footer_len = int.from_bytes(good[-8:-4], "little")
    corrupt = bytearray(good)
    corrupt[len(good) - 8 - footer_len : len(good) - 8] = bytes([0xA5]) * footer_len
    write_bytes(os.path.join(out, "corrupt_footer.parquet"), bytes(corrupt))


def write_csv_files(out: str, basic: pa.Table) -> None:
    """basic.csv and large.csv (header row, nulls as empty fields), and broken CSV files."""
    pacsv.write_csv(basic.select(CSV_COLUMNS), os.path.join(out, "basic.csv"))
    pacsv.write_csv(table(LARGE_CSV_ROWS).select(CSV_COLUMNS), os.path.join(out, "large.csv"))
    # Line 5 (the header is line 1) has one field too many: the CSV itself is malformed.
    lines = ["id,label,value"] + [f"{i},{i % 10},{i * 0.5}" for i in range(10)]
    lines[4] += ",surplus"
    write_bytes(os.path.join(out, "malformed.csv"), ("\n".join(lines) + "\n").encode())
    # Well-formed, but line 1502 is not an integer where the first 1,000 records (which the
    # schema is inferred from) are: a parse error at that line.
    lines = ["id,label"] + [f"{i},{i % 10}" for i in range(2000)]
    lines[1501] = "1500,not-a-number"
    write_bytes(os.path.join(out, "bad_value.csv"), ("\n".join(lines) + "\n").encode())


def write_compressed(path: str, data: bytes) -> None:
    """`data` compressed by the codec the name ends with: Python's gzip, pyarrow's zstd."""
    if path.endswith(".gz"):
        write_bytes(path, gzip.compress(data))
    else:
        with pa.CompressedOutputStream(path, "zstd") as f:
            f.write(data)


def csv_bytes(tbl: pa.Table, **write_options) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(tbl, sink, pacsv.WriteOptions(**write_options))
    return sink.getvalue()


def write_text_format_files(out: str, basic: pa.Table) -> None:
    """formats/: compressed CSV and TSV, CSV without a header, JSON lines (plain and
    compressed), and broken ones. pyarrow reads each of them back in the tests."""
    d = os.path.join(out, "formats")
    os.makedirs(d, exist_ok=True)
    csv_tbl = basic.select(CSV_COLUMNS)
    text = csv_bytes(csv_tbl)
    write_compressed(os.path.join(d, "basic.csv.gz"), text)
    write_compressed(os.path.join(d, "basic.csv.zst"), text)
    tsv = csv_bytes(csv_tbl, delimiter="\t")
    write_bytes(os.path.join(d, "basic.tsv"), tsv)
    write_compressed(os.path.join(d, "basic.tsv.gz"), tsv)
    # `|`-separated under a .csv name: only the delimiter option reads it.
    write_bytes(os.path.join(d, "pipes.csv"), csv_bytes(csv_tbl, delimiter="|"))
    write_bytes(os.path.join(d, "noheader.csv"), csv_bytes(csv_tbl, include_header=False))
    # More than 4 MiB of text (the head a compressed stream keeps) in a .csv.zst.
    write_compressed(os.path.join(d, "large.csv.zst"), csv_bytes(table(LARGE_CSV_ROWS).select(CSV_COLUMNS)))
    # Truncated gzip: the stream ends inside the deflate data.
    whole = gzip.compress(text)
    write_bytes(os.path.join(d, "truncated.csv.gz"), whole[: len(whole) // 2])
    # JSON lines: the CSV columns and the embedding as a list of numbers.
    rows = basic.select(CSV_COLUMNS + ["embedding"]).to_pylist()
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()
    write_bytes(os.path.join(d, "basic.jsonl"), lines)
    write_compressed(os.path.join(d, "basic.jsonl.gz"), lines)
    write_compressed(os.path.join(d, "basic.ndjson.zst"), lines)
    bad = lines.split(b"\n")
    bad[20] = b'{"id": 20, "label": '
    write_bytes(os.path.join(d, "malformed.jsonl"), b"\n".join(bad))


def wds_sample_files(i: int):
    """The files of WebDataset sample `i`: an image-like blob, a class and a JSON document;
    every third sample has no .json."""
    files = [
        ("jpg", bytes((i * 7 + k) % 256 for k in range(50 + i % 13))),
        ("cls", str(i % 10).encode()),
    ]
    if i % 3 != 0:
        files.append(("json", json.dumps({"id": i}).encode()))
    return files


def write_tar(path: str, members, mode: str = "w", fmt=tarfile.PAX_FORMAT) -> None:
    with tarfile.open(path, mode, format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))


def write_tar_files(out: str) -> None:
    """webdataset/: two shards of 100 and 57 samples (keys with a directory part), a gzipped
    shard, and hostile archives."""
    d = os.path.join(out, "webdataset")
    os.makedirs(d, exist_ok=True)
    def members(start, count):
        return [
            (f"train/{i:06d}.{ext}", data)
            for i in range(start, start + count)
            for ext, data in wds_sample_files(i)
        ]
    write_tar(os.path.join(d, "shard-000000.tar"), members(0, 100))
    write_tar(os.path.join(d, "shard-000001.tar"), members(100, 57))
    hostile = os.path.join(out, "webdataset_hostile")
    os.makedirs(hostile, exist_ok=True)
    write_tar(os.path.join(hostile, "shard.tar.gz"), members(0, 40), mode="w:gz")
    # A long directory name: GNU long-name and pax path records carry it.
    long_dir = "d" * 150
    write_tar(os.path.join(hostile, "long_names_gnu.tar"), [(f"{long_dir}/{i}.cls", b"x") for i in range(3)], fmt=tarfile.GNU_FORMAT)
    write_tar(os.path.join(hostile, "long_names_pax.tar"), [(f"{long_dir}/{i}.cls", b"x") for i in range(3)])
    with open(os.path.join(d, "shard-000000.tar"), "rb") as f:
        good = f.read()
    write_bytes(os.path.join(hostile, "truncated.tar"), good[: len(good) // 2 + 100])
    # The first header's size field claims 8 GiB (checksum fixed, so only the size lies).
    huge = bytearray(good[:2048])
    huge[124:136] = b"%011o\0" % ((8 << 30) - 1)
    huge[148:156] = b"        "
    huge[148:156] = b"%06o\0 " % sum(huge[:512])
    write_bytes(os.path.join(hostile, "huge_size.tar"), bytes(huge))
    bad_sum = bytearray(good)
    bad_sum[0] ^= 0x01
    write_bytes(os.path.join(hostile, "bad_checksum.tar"), bytes(bad_sum))
    write_tar(os.path.join(hostile, "traversal.tar"), [("ok.cls", b"1"), ("../evil.cls", b"2")])
    write_tar(os.path.join(hostile, "absolute.tar"), [("/etc/evil.cls", b"2")])
    write_tar(os.path.join(hostile, "duplicate.tar"), [("a.cls", b"1"), ("a.cls", b"2")])


def write_stream_files(out: str, basic: pa.Table, dict_tbl: pa.Table) -> None:
    """The Arrow IPC stream format: basic.arrows (irregular batches), dictionary.arrows, and a
    truncated and a corrupt stream."""
    path = os.path.join(out, "basic.arrows")
    write_stream(path, basic)
    write_stream(os.path.join(out, "dictionary.arrows"), dict_tbl, dict_tbl.to_batches(max_chunksize=30))
    with open(path, "rb") as f:
        good = f.read()
    write_bytes(os.path.join(out, "truncated.arrows"), good[: len(good) * 3 // 5])
    # The first record batch message's flatbuffer (after the schema message) overwritten.
    schema_len = int.from_bytes(good[4:8], "little")
    batch_meta = 8 + schema_len + 8
    corrupt = bytearray(good)
    corrupt[batch_meta : batch_meta + 64] = bytes([0xA5]) * 64
    write_bytes(os.path.join(out, "corrupt.arrows"), bytes(corrupt))


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

    write_parquet_files(out, basic)
    write_csv_files(out, basic)
    write_stream_files(out, basic, dict_tbl)
    write_text_format_files(out, basic)
    write_tar_files(out)

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
    # The first 100 rows, pyarrow's defaults (one row group, snappy).
    pq.write_table(basic.slice(0, 100), os.path.join(out, "basic.parquet"))
    # A directory with nothing to read but noise the discovery skips.
    os.makedirs(os.path.join(out, "empty_dir"), exist_ok=True)
    with open(os.path.join(out, "empty_dir", "_SUCCESS"), "w"):
        pass

    if args.demo_rows:
        sample = table(args.demo_rows)
        write_ipc(os.path.join(out, "sample.arrow"), sample, None)
        pq.write_table(sample, os.path.join(out, "sample.parquet"), row_group_size=65_536)


if __name__ == "__main__":
    main()
