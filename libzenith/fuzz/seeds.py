#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets with pyarrow (corpus/<target>/), small files that
cover what the readers must handle: many types, nulls, dictionaries, nested columns, every
Parquet codec and encoding the loader promises (and some it refuses), several row groups, pages,
batches and dictionary deltas, CSV quoting and headers. The resume-token seeds are written by the
library itself (a unit test, see --tokens).

Usage: .venv/bin/python libzenith/fuzz/seeds.py [--out DIR] [--tokens]
"""

import argparse
import datetime
import decimal
import io
import os
import subprocess

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))


def typed_table(rows: int, seed: int = 0) -> pa.Table:
    """Flat and nested columns of many types, each with nulls."""
    def nullable(values, every=5):
        return [None if (i + seed) % every == 0 else v for i, v in enumerate(values)]

    ids = list(range(seed, seed + rows))
    return pa.table(
        {
            "i8": pa.array(nullable([i % 100 - 50 for i in ids]), pa.int8()),
            "u16": pa.array(nullable([i * 7 % 60000 for i in ids]), pa.uint16()),
            "i32": pa.array(nullable([i * 3 for i in ids]), pa.int32()),
            "i64": pa.array([i * 1_000_003 for i in ids], pa.int64()),
            "f32": pa.array(nullable([i / 3 for i in ids]), pa.float32()),
            "f64": pa.array(nullable([i * 0.25 for i in ids], 7), pa.float64()),
            "flag": pa.array(nullable([i % 3 == 0 for i in ids]), pa.bool_()),
            "name": pa.array(nullable([f"row-{i}" * (i % 4) for i in ids]), pa.utf8()),
            "blob": pa.array(nullable([bytes([i % 256]) * (i % 9) for i in ids]), pa.binary()),
            "fixed": pa.array(nullable([i.to_bytes(4, "little") for i in ids]), pa.binary(4)),
            "day": pa.array(nullable([datetime.date(2020, 1, 1 + i % 28) for i in ids]), pa.date32()),
            "ts": pa.array(nullable([i * 1_000_000 for i in ids]), pa.timestamp("us", tz="UTC")),
            "dec": pa.array(nullable([decimal.Decimal(i) / 100 for i in ids]), pa.decimal128(12, 2)),
            "label": pa.array(nullable([f"l{i % 4}" for i in ids]), pa.utf8()).dictionary_encode(),
            "tags": pa.array(nullable([[i, i + 1][: i % 3] for i in ids], 6), pa.list_(pa.int32())),
            "point": pa.array(
                nullable([{"x": i, "y": str(i)} for i in ids]),
                pa.struct([("x", pa.int64()), ("y", pa.utf8())]),
            ),
            "attrs": pa.array(
                nullable([[("k", i)] * (i % 2) for i in ids]), pa.map_(pa.utf8(), pa.int32())
            ),
            "emb": pa.FixedSizeListArray.from_arrays(
                pa.array([float(i) for i in range(rows * 4)], pa.float32()), 4
            ),
        }
    )


def simple_table(rows: int, seed: int = 0) -> pa.Table:
    ids = list(range(seed, seed + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "label": pa.array([i % 10 for i in ids], pa.int32()),
            "value": pa.array([None if i % 7 == 3 else i * 0.5 for i in ids], pa.float64()),
            "name": pa.array([None if i % 5 == 1 else f"row-{i}" for i in ids], pa.utf8()),
        }
    )


def write(directory: str, name: str, data: bytes) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def ipc_file_bytes(table: pa.Table, batch_rows: int, **options) -> bytes:
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema, options=ipc.IpcWriteOptions(**options)) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return sink.getvalue()


def ipc_stream_bytes(tables, schema, **options) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, schema, options=ipc.IpcWriteOptions(**options)) as writer:
        for table in tables:
            for batch in table.to_batches(max_chunksize=16):
                writer.write_batch(batch)
    return sink.getvalue()


def write_ipc(out: str) -> None:
    files, streams = os.path.join(out, "ipc_file"), os.path.join(out, "ipc_stream")
    typed, simple = typed_table(40), simple_table(50)
    write(files, "typed.arrow", ipc_file_bytes(typed, 16))
    write(files, "simple.arrow", ipc_file_bytes(simple, 13))
    write(files, "one_batch.arrow", ipc_file_bytes(simple.slice(0, 5), 100))
    write(files, "empty.arrow", ipc_file_bytes(simple.slice(0, 0), 100))
    write(files, "nulls.arrow", ipc_file_bytes(pa.table({"n": pa.nulls(20)}), 7))
    # Compressed bodies: a codec this build does not decode (a clean error).
    write(files, "zstd_body.arrow", ipc_file_bytes(simple, 25, compression="zstd"))
    write(streams, "typed.arrows", ipc_stream_bytes([typed], typed.schema))
    write(streams, "simple.arrows", ipc_stream_bytes([simple], simple.schema))
    # Dictionary replacements and deltas across batches.
    labels = [
        pa.table({"label": pa.array(v, pa.utf8()).dictionary_encode(), "x": pa.array(range(len(v)))})
        for v in (["a", "b", "a"], ["a", "c"], ["d", None, "a", "e"])
    ]
    write(
        streams,
        "dict_deltas.arrows",
        ipc_stream_bytes(labels, labels[0].schema, emit_dictionary_deltas=True),
    )
    write(streams, "dict_replaced.arrows", ipc_stream_bytes(labels, labels[0].schema))
    write(streams, "schema_only.arrows", ipc_stream_bytes([], simple.schema))


def parquet_bytes(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def write_parquet(out: str) -> None:
    directory = os.path.join(out, "parquet")
    typed, simple = typed_table(60), simple_table(200)
    for codec in ["none", "snappy", "gzip", "zstd", "lz4", "brotli"]:
        write(
            directory,
            f"typed.{codec}.parquet",
            parquet_bytes(typed, compression=codec, row_group_size=25, data_page_size=256),
        )
    write(directory, "simple.v2.parquet", parquet_bytes(
        simple, data_page_version="2.0", row_group_size=64, data_page_size=128, compression="snappy"))
    write(directory, "simple.v2.none.parquet", parquet_bytes(
        simple, data_page_version="2.0", compression="none", use_dictionary=False))
    write(directory, "simple.plain.parquet", parquet_bytes(
        simple, use_dictionary=False, compression="none", write_statistics=False))
    write(directory, "simple.delta.parquet", parquet_bytes(
        simple.select(["id", "label", "name"]),
        use_dictionary=False,
        column_encoding={"id": "DELTA_BINARY_PACKED", "label": "DELTA_BINARY_PACKED",
                         "name": "DELTA_LENGTH_BYTE_ARRAY"},
        compression="none"))
    write(directory, "simple.delta_bytes.parquet", parquet_bytes(
        simple.select(["name"]), use_dictionary=False,
        column_encoding={"name": "DELTA_BYTE_ARRAY"}, compression="zstd"))
    write(directory, "simple.split.parquet", parquet_bytes(
        simple.select(["value", "label"]), use_dictionary=False, use_byte_stream_split=True,
        compression="none"))
    write(directory, "simple.page_index.parquet", parquet_bytes(
        simple, write_page_index=True, row_group_size=50, data_page_size=64))
    write(directory, "simple.bool_rle.parquet", parquet_bytes(
        pa.table({"flag": pa.array([i % 3 == 0 for i in range(300)])}),
        use_dictionary=False, column_encoding={"flag": "RLE"}, compression="none"))
    write(directory, "constant.parquet", parquet_bytes(
        pa.table({"c": pa.array([7] * 5000, pa.int64()), "n": pa.nulls(5000, pa.int32())}),
        compression="none"))
    write(directory, "empty.parquet", parquet_bytes(simple.slice(0, 0)))


def write_csv(out: str) -> None:
    directory = os.path.join(out, "csv")
    sink = io.BytesIO()
    pacsv.write_csv(simple_table(30), sink)
    write(directory, "simple.csv", sink.getvalue())
    write(directory, "quoted.csv", (
        'id,text,amount\n'
        '1,"plain",1.5\n'
        '2,"with, comma",2\n'
        '3,"with ""quotes""",\n'
        '4,"multi\nline",4.25\n'
        '5,,-3\n'
    ).encode())
    write(directory, "types.csv", (
        "i,f,b,s,d,t\r\n"
        "1,0.5,true,x,2020-01-02,2020-01-02T03:04:05\r\n"
        "-7,1e10,false,,2021-12-31,2021-12-31T23:59:59.123\r\n"
        ",NaN,,ünïcödé,,\r\n"
    ).encode())
    write(directory, "no_trailing_newline.csv", b"a,b\n1,2\n3,4")
    write(directory, "header_only.csv", b"a,b,c\n")
    write(directory, "wide.csv", (",".join(f"c{i}" for i in range(300)) + "\n"
                                  + ",".join(str(i) for i in range(300)) + "\n").encode())
    write(directory, "ragged.csv", b"a,b\n1,2\n3\n4,5,6\n")


def write_streamed_formats(out: str) -> None:
    """Seeds of the streamed formats: a gzip-compressed CSV, JSON lines, WebDataset tar shards."""
    import gzip
    import io
    import json
    import tarfile

    sink = io.BytesIO()
    pacsv.write_csv(simple_table(30), sink)
    directory = os.path.join(out, "csv_gz")
    write(directory, "simple.csv.gz", gzip.compress(sink.getvalue()))
    write(directory, "two_members.csv.gz", gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n"))
    directory = os.path.join(out, "jsonl")
    write(directory, "simple.jsonl", b"".join(
        json.dumps({"a": i, "b": f"s{i}", "c": [i, i + 1], "d": {"e": i % 2 == 0}}).encode() + b"\n"
        for i in range(30)
    ))
    write(directory, "missing_keys.jsonl", b'{"a": 1}\n{"b": "x"}\n{"a": null, "b": null}\n')
    directory = os.path.join(out, "tar")
    for name, fmt in [("ustar.tar", tarfile.USTAR_FORMAT), ("gnu.tar", tarfile.GNU_FORMAT), ("pax.tar", tarfile.PAX_FORMAT)]:
        sink = io.BytesIO()
        with tarfile.open(fileobj=sink, mode="w", format=fmt) as tar:
            for i in range(4):
                for ext, data in [("jpg", bytes(range(i * 10))), ("cls", str(i).encode())]:
                    info = tarfile.TarInfo(f"{'d' * (60 if fmt != tarfile.USTAR_FORMAT else 1)}/{i}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        write(directory, name, sink.getvalue())


def write_descriptors(out: str) -> None:
    """Guest-memory images for the `descriptors` target (plugin ABI v1, docs/plugins.md): the
    `zn_output` struct at 0 (n_columns at 8, columns at 12), 56-byte `zn_column` descriptors
    (type, width, rows, null_count, then (offset, length) of validity, offsets, data and name),
    and the buffers they point at: valid outputs of each layout, for the fuzzer to break."""
    import struct

    def image(columns):
        memory = bytearray(4096)
        struct.pack_into("<II", memory, 8, len(columns), 64)
        at = 1024
        for index, (code, width, rows, nulls, validity, offsets, data, name) in enumerate(columns):
            pieces = []
            for blob in (validity, offsets, data, name):
                memory[at : at + len(blob)] = blob
                pieces += [at if blob else 0, len(blob)]
                at = (at + len(blob) + 63) // 64 * 64
            struct.pack_into("<IIQQ8I", memory, 64 + index * 56, code, width, rows, nulls, *pieces)
        return bytes(memory)

    doubles = struct.pack("<4d", 1.5, -2.0, 0.0, 8.25)
    strings = struct.pack("<4i", 0, 1, 1, 4)
    directory = os.path.join(out, "descriptors")
    write(directory, "float64.bin", image([(10, 0, 4, 0, b"", b"", doubles, b"x")]))
    write(directory, "nulls_and_utf8.bin", image([
        (10, 0, 3, 1, bytes([0b101]), b"", doubles[:24], b"x"),
        (11, 0, 3, 1, bytes([0b011]), strings, b"abcd", b"name"),
    ]))
    write(directory, "fixed_size_binary.bin", image([(13, 3, 2, 0, b"", b"", b"abcdef", b"img")]))
    write(directory, "empty.bin", image([]))


def write_tokens() -> None:
    """Resume tokens encoded by the library (a unit test writes them when asked)."""
    root = os.path.dirname(os.path.dirname(HERE))
    env = dict(os.environ, ZENITH_WRITE_FUZZ_SEEDS=os.path.join(HERE, "corpus", "resume_state"))
    subprocess.run(
        ["cargo", "test", "--release", "-p", "libzenith", "--lib", "fuzz_seed_tokens"],
        cwd=root, env=env, check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "corpus"))
    parser.add_argument("--tokens", action="store_true",
                        help="also (re)write the resume-token seeds through cargo test")
    args = parser.parse_args()
    write_ipc(args.out)
    write_parquet(args.out)
    write_csv(args.out)
    write_streamed_formats(args.out)
    write_descriptors(args.out)
    if args.tokens:
        write_tokens()
    for target in sorted(os.listdir(args.out)):
        files = os.listdir(os.path.join(args.out, target))
        size = sum(os.path.getsize(os.path.join(args.out, target, f)) for f in files)
        print(f"{target}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
