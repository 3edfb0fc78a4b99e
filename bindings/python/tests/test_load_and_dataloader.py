"""The seeds' top-level entry points: zenith.load (a whole dataset as a pyarrow Table, in
dataset order) and zenith.DataLoader (dicts or tuples of numpy arrays, the same class with or
without torch)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import zenith
from conftest import ROWS, pyarrow_read


@pytest.mark.parametrize("kind", ["arrow", "arrows", "parquet", "shards", "csv"])
def test_load_equals_pyarrows_table(data, kind):
    want = pyarrow_read(data[kind])
    got = zenith.load(data[kind])
    assert isinstance(got, pa.Table)
    assert got.schema.equals(want.schema)
    assert got.equals(want)


def test_load_columns_keeps_those_in_that_order(data, table):
    got = zenith.load(data["parquet"], columns=["value", "id"])
    assert got.column_names == ["value", "id"]
    assert got.equals(table.select(["value", "id"]))


def test_load_reads_every_row_also_under_torchrun_and_passes_loader_options(data, table, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    got = zenith.load(data["arrow"], columns=["id"], num_workers=2, batch_size=1000, io_backend="pread")
    assert got.column("id").to_pylist() == list(range(ROWS))
    assert max(len(chunk) for chunk in got.column("id").chunks) == 1000
    # Asked for, one rank's part (a shard) and a shuffled table.
    part = zenith.load(data["arrow"], columns=["id"], shard=(1, 4))
    assert 0 < part.num_rows < ROWS
    shuffled = zenith.load(data["arrow"], columns=["id"], shuffle=True, seed=5).column("id").to_pylist()
    assert shuffled != list(range(ROWS)) and sorted(shuffled) == list(range(ROWS))


def test_load_errors(data, tmp_path):
    with pytest.raises(zenith.NotFoundError):
        zenith.load(tmp_path / "missing.parquet")
    with pytest.raises(zenith.InvalidArgumentError, match="nope"):
        zenith.load(data["parquet"], columns=["nope"])
    with pytest.raises(zenith.InvalidArgumentError, match="output"):
        zenith.load(data["parquet"], output="dlpack")


def test_dataloader_yields_dicts_of_numpy_arrays(data, table):
    loader = zenith.DataLoader(data["arrow"], shuffle=False)
    assert len(loader) == -(-ROWS // 64)  # batch_size=64 by default, the last batch kept
    batches = list(loader)
    assert len(batches) == len(loader)
    first = batches[0]
    assert list(first) == table.column_names
    assert all(isinstance(v, np.ndarray) for v in first.values())
    np.testing.assert_array_equal(first["id"], np.arange(64))
    assert first["embedding"].shape == (64, 4) and first["embedding"].dtype == np.float32
    assert first["pairs"].shape == (64, 2, 3)
    assert first["name"].dtype == object and first["name"][3] == "row-3"  # no tensor form
    np.testing.assert_array_equal(np.concatenate([b["value"] for b in batches]), table.column("value").to_numpy())
    loader.close()


def test_dataloader_keys_yield_tuples_and_read_only_those_columns(data):
    with zenith.DataLoader(source=data["parquet"], batch_size=1000, shuffle=False, keys=("embedding", "label")) as loader:
        assert loader.schema.names == ["embedding", "label"]
        seen = 0
        for inputs, labels in loader:  # tuples, not a dict's keys
            assert inputs.shape == (len(labels), 4)
            np.testing.assert_array_equal(labels, (np.arange(seen, seen + len(labels)) % 10).astype(np.int32))
            seen += len(labels)
        assert seen == ROWS


def test_dataloader_transform_and_collate_fn_apply_per_batch(data):
    with zenith.DataLoader(data["arrow"], batch_size=100, shuffle=False, columns=["id"], transform=lambda b: b["id"].sum()) as loader:
        sums = list(loader)
    assert sum(sums) == sum(range(ROWS)) and len(sums) == 101
    with zenith.DataLoader(data["arrow"], batch_size=100, shuffle=False, keys=("id",), collate_fn=lambda t: len(t[0])) as loader:
        assert list(loader)[:2] == [100, 100]


def test_dataloader_epochs_resume_and_options(data):
    with zenith.DataLoader(data["arrow"], batch_size=1000, seed=1, keys=("id",), drop_last=True, num_workers=2) as loader:
        assert len(loader) == ROWS // 1000
        loader.set_epoch(3)
        it = iter(loader)
        first = next(it)[0].copy()
        state = loader.state_dict()
        rest = [ids.copy() for (ids,) in it]
    with zenith.DataLoader(data["arrow"], batch_size=1000, seed=1, keys=("id",), drop_last=True, num_workers=1) as again:
        again.load_state_dict(state)
        assert [ids.tolist() for (ids,) in again] == [r.tolist() for r in rest]
        assert again.stats()["epoch"] == 3
    assert len(first) == 1000


def test_dataloader_bad_arguments(data):
    with pytest.raises(TypeError, match="source"):
        zenith.DataLoader()
    with pytest.raises(zenith.InvalidArgumentError, match="not both"):
        zenith.DataLoader(data["arrow"], source=data["arrow"])
    with pytest.raises(zenith.InvalidArgumentError, match="not both"):
        zenith.DataLoader(data["arrow"], transform=len, collate_fn=len)
    with pytest.raises(zenith.InvalidArgumentError, match="callable"):
        zenith.DataLoader(data["arrow"], transform=3)
    with pytest.raises(zenith.InvalidArgumentError, match="keys"):
        zenith.DataLoader(data["arrow"], keys="id")
    with pytest.raises(zenith.InvalidArgumentError, match="not among columns"):
        zenith.DataLoader(data["arrow"], keys=("label",), columns=["id"])
    with pytest.raises(zenith.InvalidArgumentError, match="nope"):
        zenith.DataLoader(data["arrow"], keys=("nope",))
    with pytest.raises(zenith.InvalidArgumentError, match="output"):
        zenith.DataLoader(data["arrow"], output="arrow")


def test_top_level_dataloader_is_the_numpy_one_with_or_without_torch(data):
    """The documented choice: zenith.DataLoader never turns into the torch one because torch is
    installed; a script behaves the same on every machine."""
    code = (
        "import sys\n"
        f"if sys.argv[1] == 'without': sys.modules['torch'] = None\n"
        "import numpy, zenith\n"
        f"batch = next(iter(zenith.DataLoader({str(data['arrow'])!r}, columns=['id'])))\n"
        "print(type(zenith.DataLoader).__name__, zenith.DataLoader.__module__, type(batch['id']).__name__)\n"
    )
    outputs = set()
    for mode in ("with", "without"):
        result = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, env=dict(os.environ))
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout.strip())
    assert outputs == {"type zenith._dataloader ndarray"}
