"""The Arrow PyCapsule protocol: pyarrow, polars, duckdb and nanoarrow read a loader (and its
batches) directly; without pyarrow, iteration yields objects that implement
``__arrow_c_array__``."""

from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

import zenith
from conftest import ROWS, pyarrow_read

SIMPLE = ["id", "label", "value", "flag", "name"]  # types every consumer here knows


def test_pyarrow_reads_the_stream(data, table):
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False) as loader:
        reader = pa.RecordBatchReader.from_stream(loader)
        assert reader.schema.equals(table.schema)
        assert reader.read_all().equals(table)
        assert loader.epoch == 0
        # A second export is a second pass: the next epoch (same rows, in dataset order here).
        assert pa.RecordBatchReader.from_stream(loader).read_all().equals(table)
        assert loader.epoch == 1


def test_the_stream_continues_a_pass_and_outlives_the_loader(data, table):
    loader = zenith.Loader(data["parquet"], batch_size=1000, shuffle=False)
    stream = pa.RecordBatchReader.from_stream(loader)
    first = stream.read_next_batch()
    loader.close()
    gc.collect()
    rest = stream.read_all()
    assert pa.Table.from_batches([first]).num_rows + rest.num_rows == ROWS
    assert pa.concat_tables([pa.Table.from_batches([first]), rest]).equals(table)


def test_schema_capsule(data, table):
    with zenith.Loader(data["arrow"], columns=SIMPLE) as loader:
        assert pa.schema(loader).equals(table.select(SIMPLE).schema)


def test_an_unconsumed_stream_capsule_releases_its_stream(data):
    with zenith.Loader(data["arrow"], batch_size=1000) as loader:
        for _ in range(100):
            capsule = loader.__arrow_c_stream__()
            del capsule
        gc.collect()
        assert loader.stats()["batches"] == 0


def test_requested_schema_is_ignored(data, table):
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False, columns=["id"]) as loader:
        reader = pa.RecordBatchReader.from_stream(loader, schema=pa.schema([("id", pa.int64())]))
        assert reader.read_all().column("id").to_pylist() == list(range(ROWS))


def test_polars(data, table):
    pl = pytest.importorskip("polars")
    with zenith.Loader(data["parquet"], batch_size=1000, shuffle=False, columns=SIMPLE) as loader:
        frame = pl.DataFrame(loader)
    assert frame.height == ROWS
    assert frame.to_arrow().cast(table.select(SIMPLE).schema).equals(table.select(SIMPLE))
    with zenith.Loader(data["parquet"], batch_size=333, shuffle=True, seed=1, columns=SIMPLE) as loader:
        frame = pl.from_arrow(pa.RecordBatchReader.from_stream(loader))
    assert sorted(frame["id"].to_list()) == list(range(ROWS))


def test_duckdb(data, table):
    duckdb = pytest.importorskip("duckdb")
    with zenith.Loader(data["arrow"], batch_size=1000, seed=2, columns=SIMPLE) as loader:
        con = duckdb.connect()  # scans the Python variable `loader` through __arrow_c_stream__
        result = con.execute("SELECT count(*), sum(id), sum(label), count(DISTINCT name) FROM loader").fetchone()
    assert result == (ROWS, ROWS * (ROWS - 1) // 2, sum(i % 10 for i in range(ROWS)), ROWS)
    with zenith.Loader(data["arrow"], batch_size=1000, seed=3, columns=SIMPLE) as loader:
        relation = duckdb.connect().sql("SELECT * FROM loader ORDER BY id")
        got = pa.RecordBatchReader.from_stream(relation).read_all()
    assert got.cast(table.select(SIMPLE).schema).equals(table.select(SIMPLE))


def test_nanoarrow(data, table):
    na = pytest.importorskip("nanoarrow")
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False) as loader:
        stream = na.ArrayStream(loader)
        assert [f.name for f in stream.schema.fields] == table.column_names
        array = stream.read_all()
    assert len(array) == ROWS
    assert pa.table(array).equals(table)
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False) as loader:
        assert na.c_schema(loader).n_children == len(table.column_names)


def test_batches_implement_the_array_protocol(data, table):
    na = pytest.importorskip("nanoarrow")
    with zenith.Loader(data["arrow"], batch_size=2500, shuffle=False) as loader:
        batch = loader.next_batch()
    assert pa.record_batch(batch).equals(table.slice(0, 2500).to_batches()[0])
    assert len(na.Array(batch)) == 2500
    assert pa.schema(batch).equals(table.schema)


@pytest.mark.skipif(importlib.util.find_spec("nanoarrow") is None, reason="nanoarrow is not installed")
def test_without_pyarrow_iteration_yields_array_protocol_objects(data):
    """In a child process where `import pyarrow` fails: batches, schema and stream still work
    through the PyCapsule protocol, checked with nanoarrow (which does not need pyarrow)."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["pyarrow"] = None  # import pyarrow now raises ImportError
        import nanoarrow as na
        import zenith

        with zenith.Loader({str(data["arrow"])!r}, batch_size=4000, shuffle=False,
                           columns=["id", "value", "name"]) as loader:
            assert isinstance(loader.schema, zenith.Schema), loader.schema
            assert loader.schema.names == ["id", "value", "name"]
            assert na.c_schema(loader.schema).n_children == 3
            batches = list(loader)
            assert all(isinstance(b, zenith.Batch) for b in batches), batches
            assert all(hasattr(b, "__arrow_c_array__") for b in batches)
            ids = [v for b in batches for v in na.Array(b).child(0).to_pylist()]
            assert ids == list(range({ROWS})), ids[:10]
            names = na.Array(batches[1]).child(2).to_pylist()
            assert names[0] == "row-4000", names[0]
            assert len(na.ArrayStream(loader).read_all()) == {ROWS}  # next pass
        assert "pyarrow" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_content_equals_pyarrow_for_every_format_through_the_stream(data):
    for fmt in ("arrow", "arrows", "parquet", "shards"):
        with zenith.Loader(data[fmt], batch_size=1234, shuffle=False) as loader:
            assert pa.RecordBatchReader.from_stream(loader).read_all().equals(pyarrow_read(data[fmt])), fmt
