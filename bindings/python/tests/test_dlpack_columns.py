"""output="dlpack" with columns that have no tensor form: they come as pyarrow Arrays (Python
lists without pyarrow) next to the tensors of the others, and variable-size lists named in
``pad`` come as padded 2-D arrays plus their lengths; the same through zenith.torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

import zenith
from conftest import write_ipc

ROWS = 3_001


def tokens_of(i: int):
    """Row i's token ids: lengths 0..12 (every 17th row a null list), values from i."""
    if i % 17 == 5:
        return None
    return [i * 100 + k for k in range(i % 13)]


def big_of(i: int):
    """Row i's tokens as uint16 values."""
    tokens = tokens_of(i)
    return None if tokens is None else [v % 65536 for v in tokens]


@pytest.fixture(scope="module")
def table() -> pa.Table:
    ids = np.arange(ROWS, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "text": pa.array([None if i % 11 == 3 else f"row {i} é" for i in ids]),
            "tokens": pa.array([tokens_of(i) for i in ids], pa.list_(pa.int32())),
            "big": pa.array([big_of(i) for i in ids], pa.large_list(pa.uint16())),
            "mask": pa.array([[bool(k % 2) for k in range(i % 4)] for i in ids], pa.list_(pa.bool_())),
            "meta": pa.array([{"n": int(i), "tag": f"t{i % 3}"} for i in ids]),
            "kind": pa.array([f"k{i % 4}" for i in ids]).dictionary_encode(),
            "blob": pa.array([bytes([i % 256]) * (i % 3) for i in ids], pa.binary()),
            "value": ids * 0.25,
        }
    )


@pytest.fixture(scope="module")
def path(tmp_path_factory, table):
    return write_ipc(table, tmp_path_factory.mktemp("columns") / "columns.arrow", batch_rows=700)


def padded_reference(rows, width: int, fill) -> np.ndarray:
    out = np.full((len(rows), width), fill)
    for k, row in enumerate(rows):
        out[k, : len(row or [])] = row or []
    return out


def test_columns_without_a_tensor_form_come_as_pyarrow_arrays(path, table):
    columns = ["id", "text", "tokens", "meta", "kind", "blob", "value"]
    seen = []
    with zenith.Loader(path, batch_size=256, seed=5, columns=columns, output="dlpack") as loader:
        for batch in loader:
            assert list(batch) == columns
            assert isinstance(batch["id"], zenith.Tensor) and isinstance(batch["value"], zenith.Tensor)
            ids = np.from_dlpack(batch["id"])
            want = table.take(pa.array(ids))
            for name in ("text", "tokens", "meta", "kind", "blob"):
                assert isinstance(batch[name], pa.Array), name
                assert batch[name].type == table.schema.field(name).type, name
                assert batch[name].to_pylist() == want.column(name).to_pylist(), name
            np.testing.assert_array_equal(np.from_dlpack(batch["value"]), ids * 0.25)
            seen.extend(ids.tolist())
    assert sorted(seen) == list(range(ROWS)) and seen != sorted(seen)


def test_padded_lists_and_their_lengths(path, table):
    with zenith.Loader(path, batch_size=100, seed=2, columns=["id", "tokens", "big", "mask"], output="dlpack",
                       pad={"tokens": -1, "big": 7, "mask": False}) as loader:
        batches = list(loader)
    assert list(batches[0]) == ["id", "tokens", "tokens_lengths", "big", "big_lengths", "mask", "mask_lengths"]
    for batch in batches:
        ids = np.from_dlpack(batch["id"])
        rows = [tokens_of(int(i)) for i in ids]
        lengths = np.array([len(r or []) for r in rows])
        width = lengths.max()  # each batch is padded to its own longest list
        tokens = batch["tokens"]
        assert isinstance(tokens, np.ndarray) and tokens.dtype == np.int32 and tokens.shape == (len(ids), width)
        np.testing.assert_array_equal(tokens, padded_reference(rows, width, -1))
        assert batch["tokens_lengths"].dtype == np.int64
        np.testing.assert_array_equal(batch["tokens_lengths"], lengths)
        assert batch["big"].dtype == np.uint16
        np.testing.assert_array_equal(batch["big"], padded_reference([big_of(int(i)) for i in ids], width, 7))
        np.testing.assert_array_equal(batch["big_lengths"], lengths)
        masks = table.column("mask").take(pa.array(ids)).to_pylist()
        np.testing.assert_array_equal(batch["mask_lengths"], [len(m) for m in masks])
        assert batch["mask"].dtype == np.bool_
        np.testing.assert_array_equal(batch["mask"], padded_reference(masks, max(map(len, masks)), False))
        assert np.from_dlpack(batch["tokens"]).shape == tokens.shape  # a DLPack producer too


def test_a_batch_of_empty_lists_pads_to_width_zero(tmp_path):
    path = write_ipc(pa.table({"t": pa.array([[], None, []], pa.list_(pa.int64()))}), tmp_path / "empty.arrow")
    with zenith.Loader(path, batch_size=3, shuffle=False, output="dlpack", pad={"t": 0}) as loader:
        batch = next(iter(loader))
    assert batch["t"].shape == (3, 0) and batch["t_lengths"].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "pad, message",
    [
        ({"nope": 0}, "no column `nope`"),
        ({"id": 0}, "not a variable-size list"),
        ({"text": 0}, "not a variable-size list"),
        ({"meta": 0}, "not a variable-size list"),
        ({"big": -1}, "not a uint16 value"),
        ({"tokens": 0.5}, "not a int32 value"),
        ({"tokens": "0"}, "must be a number"),
        ({"mask": 0}, "must be a number of its type"),
        ({"tokens": 0, "tokens_lengths": 0}, "would replace"),
        ([("tokens", 0)], "must be a dict"),
    ],
)
def test_pad_refuses_what_it_cannot_pad(path, pad, message):
    with pytest.raises(zenith.InvalidArgumentError, match=message):
        zenith.Loader(path, output="dlpack", pad=pad)


def test_pad_needs_dlpack_output_and_no_name_clash(path, tmp_path):
    with pytest.raises(zenith.InvalidArgumentError, match='output="dlpack"'):
        zenith.Loader(path, pad={"tokens": 0})
    clash = write_ipc(pa.table({"t": pa.array([[1]]), "t_lengths": pa.array([1])}), tmp_path / "clash.arrow")
    with pytest.raises(zenith.InvalidArgumentError, match="would replace the column `t_lengths`"):
        zenith.Loader(clash, output="dlpack", pad={"t": 0})


def test_a_null_inside_a_padded_list_is_refused(tmp_path):
    path = write_ipc(pa.table({"t": pa.array([[1, None], [2]], pa.list_(pa.int64()))}), tmp_path / "nulls.arrow")
    with zenith.Loader(path, batch_size=2, shuffle=False, output="dlpack", pad={"t": 0}) as loader:
        with pytest.raises(zenith.InvalidArgumentError, match="null inside a list"):
            next(iter(loader))


def test_without_pyarrow_the_columns_are_python_lists(path, table):
    """The same loader in a process where pyarrow cannot be imported."""
    code = textwrap.dedent(
        """
        import json, sys
        sys.modules["pyarrow"] = None
        import numpy as np
        import zenith
        path = sys.argv[1]
        out = []
        with zenith.Loader(path, batch_size=128, seed=9, output="dlpack", pad={"tokens": 0}) as loader:
            for batch in loader:
                row = {"id": np.from_dlpack(batch["id"]).tolist()}
                for name in ("text", "big", "mask", "meta", "kind"):
                    assert isinstance(batch[name], list), name
                    row[name] = batch[name]
                row["blob"] = [None if b is None else b.hex() for b in batch["blob"]]
                row["tokens"] = batch["tokens"].tolist()
                row["tokens_lengths"] = batch["tokens_lengths"].tolist()
                out.append(row)
        with zenith.Loader(sys.argv[2], batch_size=4, shuffle=False, output="dlpack") as loader:
            edge = {name: value for name, value in next(iter(loader)).items() if isinstance(value, list)}
        print(json.dumps([out, edge]))
        """
    )
    edge = pa.table(
        {
            "empty": pa.array(["", "", None, ""]),  # no string data at all
            "lists": pa.array([[], None, [], []], pa.list_(pa.string())),
            "nested": pa.array([[[1], []], [], None, [[2, 3]]], pa.list_(pa.list_(pa.int8()))),
            "date": pa.array([0, 1, 2, 3], pa.int32()),  # a tensor column, skipped
        }
    )
    edge_path = write_ipc(edge, path.parent / "edge.arrow")
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(edge_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    batches, edges = json.loads(result.stdout)
    assert edges == {name: edge.column(name).to_pylist() for name in ("empty", "lists", "nested")}
    assert sum(len(b["id"]) for b in batches) == ROWS
    for batch in batches:
        want = table.take(pa.array(batch["id"]))
        for name in ("text", "big", "mask", "meta", "kind"):
            assert batch[name] == want.column(name).to_pylist(), name
        assert batch["blob"] == [b.hex() for b in want.column("blob").to_pylist()]
        rows = want.column("tokens").to_pylist()
        assert batch["tokens_lengths"] == [len(r or []) for r in rows]
        assert batch["tokens"] == padded_reference(rows, max(batch["tokens_lengths"]), 0).tolist()


def test_zenith_torch_passes_columns_through_and_pads(path, table):
    import torch  # a test requirement (requirements-test.txt): missing, this test fails

    import zenith.torch

    ds = zenith.torch.DataLoader(path, batch_size=500, seed=3, columns=["id", "text", "tokens"], pad={"tokens": 0},
                                 num_workers=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    total = 0
    for batch in loader:
        assert list(batch) == ["id", "text", "tokens", "tokens_lengths"]
        ids = batch["id"].tolist()
        want = table.take(pa.array(ids))
        assert isinstance(batch["text"], pa.Array) and batch["text"].to_pylist() == want.column("text").to_pylist()
        assert batch["tokens"].dtype == torch.int32 and batch["tokens_lengths"].dtype == torch.int64
        rows = want.column("tokens").to_pylist()
        assert batch["tokens_lengths"].tolist() == [len(r or []) for r in rows]
        assert batch["tokens"].tolist() == padded_reference(rows, max(len(r or []) for r in rows), 0).tolist()
        total += len(ids)
    assert total == -(-ROWS // 2) * 2  # two workers, the odd row padded by wrapping around


def test_without_pyarrow_other_types_name_pyarrow(tmp_path):
    path = write_ipc(pa.table({"id": [1, 2], "at": pa.array([1, 2], pa.timestamp("s"))}), tmp_path / "ts.arrow")
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pyarrow"] = None
        import zenith
        with zenith.Loader(sys.argv[1], batch_size=2, output="dlpack") as loader:
            try:
                next(iter(loader))
            except zenith.UnsupportedError as e:
                print(e)
        """
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "column `at`" in result.stdout and "install pyarrow" in result.stdout
