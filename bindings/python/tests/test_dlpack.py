"""output="dlpack": numpy.from_dlpack imports every column with pyarrow's shapes, dtypes and
values; zero copy; lifetimes; the protocol's refusals. Columns without a tensor form and padded
lists are in test_dlpack_columns.py."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
import pytest

import zenith
from conftest import ROWS, TENSOR_COLUMNS, pyarrow_read, write_ipc

DTYPES = {
    "id": np.int64,
    "label": np.int32,
    "value": np.float64,
    "flag": np.bool_,
    "embedding": np.float32,
    "pairs": np.int16,
    "i8": np.int8,
    "u16": np.uint16,
    "u64": np.uint64,
    "f16": np.float16,
    "digest": np.uint8,
    "noise": np.float64,
}


def expected_numpy(table: pa.Table, name: str) -> np.ndarray:
    """pyarrow's values as numpy: fixed-size lists nest as extra dimensions, fixed-size binary of
    width w is [rows, w] uint8."""
    array = table.column(name).combine_chunks()
    shape = [len(array)]
    while pa.types.is_fixed_size_list(array.type):
        shape.append(array.type.list_size)
        array = array.flatten()
    if pa.types.is_fixed_size_binary(array.type):
        width = array.type.byte_width
        return np.frombuffer(array.buffers()[1], np.uint8)[: len(array) * width].reshape(len(array), width)
    return array.to_numpy(zero_copy_only=False).reshape(shape)


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
@pytest.mark.parametrize("batch_size", [500, 4096])
def test_numpy_imports_every_column(data, fmt, batch_size):
    expected = pyarrow_read(data[fmt])
    offset = 0
    with zenith.Loader(data[fmt], batch_size=batch_size, shuffle=False, columns=TENSOR_COLUMNS, output="dlpack") as loader:
        for tensors in loader:
            assert list(tensors) == TENSOR_COLUMNS
            rows = len(tensors["id"])
            reference = expected.slice(offset, rows)
            for name, tensor in tensors.items():
                assert isinstance(tensor, zenith.Tensor)
                assert tensor.__dlpack_device__() == (1, 0)
                array = np.from_dlpack(tensor)
                want = expected_numpy(reference, name)
                assert array.dtype == DTYPES[name], name
                assert array.shape == want.shape == tensor.shape, name
                assert tensor.dtype == np.dtype(DTYPES[name]).name, name
                np.testing.assert_array_equal(array, want, err_msg=name)
            offset += rows
    assert offset == ROWS


def test_nested_shapes(data):
    with zenith.Loader(data["arrow"], batch_size=100, shuffle=False, columns=["embedding", "pairs", "digest"], output="dlpack") as loader:
        tensors = next(iter(loader))
    assert tensors["embedding"].shape == (100, 4)
    assert tensors["pairs"].shape == (100, 2, 3)
    assert tensors["digest"].shape == (100, 8)
    pairs = np.from_dlpack(tensors["pairs"])
    assert pairs[7, 1, 2] == 7 * 6 + 5


def test_shuffled_tensors_match_their_ids(data, table):
    value = table.column("value").to_numpy()
    with zenith.Loader(data["parquet"], batch_size=1000, seed=8, columns=["id", "value", "embedding"], output="dlpack") as loader:
        seen = []
        for tensors in loader:
            ids = np.from_dlpack(tensors["id"])
            np.testing.assert_array_equal(np.from_dlpack(tensors["value"]), value[ids])
            np.testing.assert_array_equal(np.from_dlpack(tensors["embedding"])[:, 0], ids * 4)
            seen.append(ids)
    assert sorted(np.concatenate(seen).tolist()) == list(range(ROWS))


def test_zero_copy_read_only_and_bool_copies(data):
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False, columns=["id", "flag"], output="dlpack") as loader:
        tensors = next(iter(loader))
    ids = tensors["id"]
    assert ids.readonly and not ids.copied
    first, second = np.from_dlpack(ids), np.from_dlpack(ids)  # a tensor may be imported again
    assert first.__array_interface__["data"][0] == second.__array_interface__["data"][0]
    assert not first.flags.writeable
    flag = tensors["flag"]
    assert flag.copied and not flag.readonly
    copy = np.from_dlpack(flag)
    assert copy.flags.writeable
    copy[:] = True
    assert np.from_dlpack(flag).sum() == 334  # each import its own copy


def test_tensors_outlive_loader_and_batch(data, tmp_path, table):
    path = write_ipc(table, tmp_path / "copy.arrow")
    loader = zenith.Loader(path, batch_size=2500, shuffle=False, columns=TENSOR_COLUMNS, output="dlpack")
    it = iter(loader)
    next(it)
    tensors = next(it)
    unimported = tensors["embedding"]
    arrays = {name: np.from_dlpack(tensors[name]) for name in ("id", "value")}
    loader.close()
    del tensors, it, loader
    path.unlink()
    gc.collect()
    np.testing.assert_array_equal(arrays["id"], np.arange(2500, 5000))
    np.testing.assert_array_equal(arrays["value"], np.arange(2500, 5000) * 0.5)
    np.testing.assert_array_equal(np.from_dlpack(unimported)[:, 1], np.arange(2500, 5000) * 4 + 1)


def test_legacy_consumers_get_an_unversioned_capsule(data):
    """A consumer that passes no max_version (DLPack < 1.0) gets a "dltensor" capsule."""
    with zenith.Loader(data["arrow"], batch_size=10, shuffle=False, columns=["id"], output="dlpack") as loader:
        tensor = next(iter(loader))["id"]
    capsule = tensor.__dlpack__()
    assert "dltensor" in repr(capsule) and "versioned" not in repr(capsule)
    del capsule  # unconsumed: its destructor deletes it
    versioned = tensor.__dlpack__(max_version=(1, 1))
    assert "dltensor_versioned" in repr(versioned)
    del versioned
    gc.collect()

    class Legacy:  # what an old consumer sees
        def __dlpack__(self, stream=None):
            return tensor.__dlpack__(stream=stream)

        def __dlpack_device__(self):
            return tensor.__dlpack_device__()

    np.testing.assert_array_equal(np.from_dlpack(Legacy()), np.arange(10))


def test_protocol_refusals(data):
    with zenith.Loader(data["arrow"], batch_size=10, shuffle=False, columns=["id", "flag"], output="dlpack") as loader:
        tensors = next(iter(loader))
    with pytest.raises(BufferError):
        np.from_dlpack(tensors["id"], copy=True)
    with pytest.raises(BufferError):
        tensors["flag"].__dlpack__(max_version=(1, 0), copy=False)  # bools need a copy
    with pytest.raises(BufferError):
        tensors["id"].__dlpack__(max_version=(1, 0), dl_device=(2, 0))
    with pytest.raises(BufferError):
        tensors["id"].__dlpack__(max_version=(1, 0), stream=7)
    np.testing.assert_array_equal(np.from_dlpack(tensors["id"], device="cpu"), np.arange(10))


def test_a_string_column_as_a_tensor_is_unsupported_and_named(data):
    with zenith.Loader(data["arrow"], batch_size=10, columns=["id", "name"], output="dlpack") as loader:
        batch = loader.next_batch()
    with pytest.raises(zenith.UnsupportedError, match="`name`") as info:
        batch.column("name")
    assert info.value.code == zenith.Status.ERR_UNSUPPORTED


def test_nulls_cannot_be_tensors(tmp_path):
    path = write_ipc(pa.table({"x": pa.array([1.0, None, 3.0])}), tmp_path / "nulls.arrow")
    with zenith.Loader(path, batch_size=3, shuffle=False, output="dlpack") as loader:
        with pytest.raises(zenith.InvalidArgumentError, match="null"):
            next(iter(loader))


def test_batch_column_and_tensors(data):
    with zenith.Loader(data["arrow"], batch_size=10, shuffle=False) as loader:
        batch = loader.next_batch()
    assert batch.column_names[0] == "id"
    np.testing.assert_array_equal(np.from_dlpack(batch.column("value")), np.arange(10) * 0.5)
    np.testing.assert_array_equal(np.from_dlpack(batch.column(0)), np.arange(10))
    with pytest.raises(zenith.UnsupportedError):
        batch.tensors()  # "name" is a string column
    with pytest.raises(zenith.InvalidArgumentError):
        batch.column("missing")
    with pytest.raises(zenith.InvalidArgumentError):
        batch.column(99)
