"""Datasets for the binding's tests, written by pyarrow into temporary folders (no Zenith code
writes what it reads, and nothing comes from the repository's tests/data)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

ROWS = 10_007  # not a multiple of any batch size used


def make_table(rows: int = ROWS, start: int = 0) -> pa.Table:
    """Every column type the loader exports as a tensor, plus a string column (which it cannot)."""
    ids = np.arange(start, start + rows, dtype=np.int64)
    rng = np.random.default_rng(7)
    embedding = (ids[:, None] * 4 + np.arange(4)).astype(np.float32).ravel()
    pairs = (ids[:, None] * 6 + np.arange(6)).astype(np.int16).ravel()
    inner = pa.FixedSizeListArray.from_arrays(pa.array(pairs), 3)
    return pa.table(
        {
            "id": pa.array(ids),
            "label": pa.array((ids % 10).astype(np.int32)),
            "value": pa.array(ids * 0.5),
            "flag": pa.array(ids % 3 == 0),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embedding), 4),
            "pairs": pa.FixedSizeListArray.from_arrays(inner, 2),
            "i8": pa.array((ids % 100 - 50).astype(np.int8)),
            "u16": pa.array((ids % 60000).astype(np.uint16)),
            "u64": pa.array(ids.astype(np.uint64) * 3),
            "f16": pa.array((ids % 64).astype(np.float16)),
            "digest": pa.array([int(i).to_bytes(8, "little") for i in ids], pa.binary(8)),
            "noise": pa.array(rng.random(rows, dtype=np.float64)),
            "name": pa.array([f"row-{i}" for i in ids]),
        }
    )


TENSOR_COLUMNS = [c for c in make_table(1).column_names if c != "name"]


def write_ipc(table: pa.Table, path, batch_rows: int = 1000):
    with pa.ipc.new_file(path, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return path


def write_ipc_stream(table: pa.Table, path, batch_rows: int = 1000):
    with pa.ipc.new_stream(path, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return path


@pytest.fixture(scope="session")
def table() -> pa.Table:
    return make_table()


@pytest.fixture(scope="session")
def data(tmp_path_factory, table) -> dict:
    """Paths of the same rows in several formats and layouts, and what pyarrow reads back."""
    root = tmp_path_factory.mktemp("data")
    paths = {
        "arrow": write_ipc(table, root / "t.arrow"),
        "arrows": write_ipc_stream(table, root / "t.arrows"),
    }
    pq.write_table(table, root / "t.parquet", row_group_size=2500)
    paths["parquet"] = root / "t.parquet"
    shards = root / "shards"
    shards.mkdir()
    for k, offset in enumerate(range(0, ROWS, 4000)):
        pq.write_table(table.slice(offset, 4000), shards / f"part-{k:03d}.parquet", row_group_size=1500)
    (shards / "_SUCCESS").write_bytes(b"")
    paths["shards"] = shards
    simple = table.select(["id", "label", "value"])
    pa.csv.write_csv(simple, root / "t.csv")
    paths["csv"] = root / "t.csv"
    return paths


def pyarrow_read(path) -> pa.Table:
    """pyarrow's own reading of a file written by these fixtures."""
    path = str(path)
    if path.endswith(".arrow"):
        with pa.ipc.open_file(path) as reader:
            return reader.read_all()
    if path.endswith(".arrows"):
        with pa.ipc.open_stream(path) as reader:
            return reader.read_all()
    if path.endswith(".csv"):
        return pa.csv.read_csv(path)
    return pq.read_table(path)  # a file or a folder of shards


# -- JAX and TensorFlow start thread pools when first used, and fork() after that may deadlock
# the child (JAX warns so). The tests that fork (test_package.py, torch DataLoader workers) run
# first; the JAX and TensorFlow tests last.
_RUN_LAST = ("test_jax.py", "test_tensorflow.py")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name in _RUN_LAST)  # stable: keeps the order otherwise
