"""The formats users have, through zenith.Loader, compared with pyarrow's reading of the same
files: gzip- and zstd-compressed CSV and TSV, the delimiter, header and schema options, JSON
lines, WebDataset tar shards, lists of paths, ``~`` and unsupported URL schemes."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pytest

import zenith

ROWS = 3_001


def csv_table(rows: int = ROWS) -> pa.Table:
    ids = list(range(rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "value": pa.array([i * 0.25 for i in ids]),
            "name": pa.array([None if i % 7 == 3 else f"row-{i}" for i in ids]),
            "flag": pa.array([i % 3 == 0 for i in ids]),
        }
    )


def csv_bytes(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(**options))
    return sink.getvalue()


def compress(path, data: bytes) -> str:
    if str(path).endswith(".gz"):
        with open(path, "wb") as f:
            f.write(gzip.compress(data))
    elif str(path).endswith(".zst"):
        with pa.CompressedOutputStream(str(path), "zstd") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return str(path)


def zenith_table(path, **kwargs) -> pa.Table:
    with zenith.Loader(path, batch_size=500, shuffle=False, shard=None, **kwargs) as loader:
        return pa.Table.from_batches(list(loader))


def pyarrow_csv(path, **parse) -> pa.Table:
    # Empty fields are nulls in Zenith (pyarrow keeps empty strings by default).
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(**parse), convert_options=convert)


@pytest.mark.parametrize("name", ["t.csv.gz", "t.csv.zst", "t.tsv", "t.tsv.gz"])
def test_compressed_csv_and_tsv_equal_pyarrow(tmp_path, name):
    delimiter = "\t" if ".tsv" in name else ","
    path = compress(tmp_path / name, csv_bytes(csv_table(), delimiter=delimiter))
    expected = pyarrow_csv(path, delimiter=delimiter)
    assert zenith_table(path).equals(expected)


def test_delimiter_header_and_schema_options(tmp_path):
    table = csv_table()
    piped = compress(tmp_path / "piped.csv", csv_bytes(table, delimiter="|"))
    assert zenith_table(piped, delimiter="|").equals(pyarrow_csv(piped, delimiter="|"))

    bare = compress(tmp_path / "bare.csv.gz", csv_bytes(table, include_header=False))
    got = zenith_table(bare, header=False)
    assert got.column_names == ["f0", "f1", "f2", "f3"]
    expected = pacsv.read_csv(
        bare,
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
    )
    assert got.equals(expected)

    schema = pa.schema([("id", pa.int32()), ("value", pa.float32()), ("name", pa.string()), ("flag", pa.bool_())])
    got = zenith_table(bare, header=False, schema=schema)
    assert got.schema == schema
    assert got.equals(table.cast(schema))
    # With a header, the schema's names must be the header's.
    plain = compress(tmp_path / "plain.csv", csv_bytes(table))
    assert zenith_table(plain, schema=schema).equals(table.cast(schema))
    wrong = pa.schema([("x", pa.int64()), ("value", pa.float64()), ("name", pa.string()), ("flag", pa.bool_())])
    with pytest.raises(zenith.ZenithError):
        zenith_table(plain, schema=wrong)
    with pytest.raises(zenith.ZenithError):
        zenith.Loader(plain, delimiter="||")
    with pytest.raises(zenith.ZenithError):
        zenith.Loader(plain, schema="id:int64")


@pytest.mark.parametrize("name", ["t.jsonl", "t.ndjson.gz", "t.jsonl.zst"])
def test_json_lines_equal_pyarrow(tmp_path, name):
    rows = [
        {"id": i, "value": i * 0.5, "name": None if i % 5 == 0 else f"n{i}", "tags": [i, i + 1], "meta": {"k": i % 3}}
        for i in range(ROWS)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path = compress(tmp_path / name, text)
    expected = pajson.read_json(path)
    got = zenith_table(path)
    assert got.column_names == expected.column_names
    # Integers in lists: pyarrow and arrow-json both infer int64; compare as Python values.
    assert got.to_pylist() == expected.to_pylist()


def wds_members(start: int, count: int):
    for i in range(start, start + count):
        yield f"s/{i:05d}.jpg", bytes((i + k) % 256 for k in range(20 + i % 9))
        yield f"s/{i:05d}.cls", str(i % 10).encode()
        if i % 2:
            yield f"s/{i:05d}.json", json.dumps({"i": i}).encode()


def write_tar(path, members, mode="w"):
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def expected_wds(start: int, count: int) -> list:
    rows = []
    for i in range(start, start + count):
        rows.append(
            {
                "__key__": f"s/{i:05d}",
                "cls": str(i % 10).encode(),
                "jpg": bytes((i + k) % 256 for k in range(20 + i % 9)),
                "json": json.dumps({"i": i}).encode() if i % 2 else None,
            }
        )
    return rows


def test_webdataset_tar_shards_shuffle_shard_and_resume(tmp_path):
    a = write_tar(tmp_path / "shard-0.tar", wds_members(0, 60))
    b = write_tar(tmp_path / "shard-1.tar.gz", wds_members(60, 41), mode="w:gz")
    got = zenith_table(str(tmp_path))
    assert got.schema.field("jpg").type == pa.binary()
    assert got.to_pylist() == expected_wds(0, 101)
    # A list of paths: the order given.
    assert zenith_table([b, a]).to_pylist() == expected_wds(60, 41) + expected_wds(0, 60)

    # Two ranks, shuffled: disjoint, and together every sample.
    keys = []
    for rank in range(2):
        with zenith.Loader(str(tmp_path), batch_size=8, seed=3, shard=(rank, 2), drop_remainder=True) as loader:
            keys += [k for batch in loader for k in batch.column("__key__").to_pylist()]
    assert len(keys) == len(set(keys)) == 100
    # Resume after two batches: exactly the rest of the epoch.
    with zenith.Loader(str(tmp_path), batch_size=8, seed=3, shard=None) as loader:
        full = [k for batch in loader for k in batch.column("__key__").to_pylist()]
    with zenith.Loader(str(tmp_path), batch_size=8, seed=3, shard=None) as loader:
        it = iter(loader)
        next(it), next(it)
        state = loader.state_dict()
    with zenith.Loader(str(tmp_path), batch_size=8, seed=3, shard=None) as loader:
        loader.load_state_dict(state)
        rest = [k for batch in loader for k in batch.column("__key__").to_pylist()]
    assert rest == full[16:]


def test_hostile_tar_and_unsupported_paths_are_clear_errors(tmp_path):
    evil = write_tar(tmp_path / "evil.tar", [("../x.cls", b"1")])
    with pytest.raises(zenith.FormatError, match=r"`\.\.` path"):
        zenith.Loader(evil)
    good = write_tar(tmp_path / "good.tar", wds_members(0, 5))
    with open(good, "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2 + 7])
    with pytest.raises(zenith.ZenithError, match="truncated tar archive"):
        zenith.Loader(str(cut))
    for url in ["hdfs://nn/x.parquet", "ftp://host/x.csv"]:
        with pytest.raises(zenith.UnsupportedError, match="URL scheme"):
            zenith.Loader(url)


def test_home_directory_is_expanded(tmp_path, monkeypatch):
    path = compress(tmp_path / "t.csv.gz", csv_bytes(csv_table(10)))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert zenith_table("~/t.csv.gz").equals(zenith_table(path))
