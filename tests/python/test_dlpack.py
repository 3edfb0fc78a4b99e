"""numpy, a DLPack consumer that is not ours, imports the tensors zenith_batch_column_dlpack
exports, and finds the shapes, dtypes and values of pyarrow's own reading of the same file.

The tensors reach numpy through the DLPack Python protocol: conftest.DLPackTensor wraps the
DLManagedTensorVersioned* in a "dltensor_versioned" capsule, numpy takes it and calls the
deleter when its array dies. Also checked: zero copy (read-only views of one buffer), the bool
copy, lifetimes beyond batch, loader and file, and errors.
"""

import ctypes
import gc
import shutil
from ctypes import sizeof

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from conftest import (
    DLPACK_FLAG_BITMASK_IS_COPIED,
    DLPACK_FLAG_BITMASK_READ_ONLY,
    UNCONSUMED_CAPSULES_DELETED,
    ZENITH_ERR_INVALID_ARGUMENT,
    ZENITH_ERR_NULL_ARGUMENT,
    ZENITH_ERR_UNSUPPORTED,
    DLDataType,
    DLDevice,
    DLManagedTensorVersioned,
    DLPackVersion,
    DLTensor,
    TensorPtr,
    ZenithError,
    kDLCPU,
)

SUPPORTED = ["id", "label", "value", "flag", "embedding"]
EXPECTED_DTYPES = {
    "id": np.int64,
    "label": np.int32,
    "value": np.float64,
    "flag": np.bool_,
    "embedding": np.float32,
}


def pyarrow_read(path) -> pa.Table:
    with pa.ipc.open_file(path) as reader:
        return reader.read_all()


def expected_numpy(table: pa.Table, column: str) -> np.ndarray:
    """pyarrow's values of `column` as numpy: fixed-size lists as [rows, width]."""
    array = table.column(column).combine_chunks()
    if pa.types.is_fixed_size_list(array.type):
        return array.flatten().to_numpy().reshape(len(array), array.type.list_size)
    return array.to_numpy(zero_copy_only=False)


def batches(loader):
    while (batch := loader.next_batch()) is not None:
        yield batch


def data_address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


# ---- the structs -----------------------------------------------------------------------------


def test_ctypes_structs_have_the_dlpack_sizes():
    assert (sizeof(DLPackVersion), sizeof(DLDevice), sizeof(DLDataType)) == (8, 8, 4)
    assert sizeof(DLTensor) == 48
    assert sizeof(DLManagedTensorVersioned) == 80


# ---- numpy imports every supported column, equal to pyarrow's reading --------------------------


@pytest.mark.parametrize("name", ["basic.arrow", "single_batch.arrow"])
@pytest.mark.parametrize("batch_size", [777, 1000, 4096])
def test_numpy_imports_every_column_of_every_batch(zenith, data_dir, name, batch_size):
    expected = pyarrow_read(data_dir / name)
    offset = 0
    for batch in batches(zenith.open(data_dir / name, batch_size=batch_size)):
        rows = batch.num_rows()
        reference = expected.slice(offset, rows)
        for column in SUPPORTED:
            tensor = batch.column_dlpack(column)
            array = np.from_dlpack(tensor)

            want = expected_numpy(reference, column)
            assert array.dtype == EXPECTED_DTYPES[column]
            assert array.shape == want.shape == ((rows, 4) if column == "embedding" else (rows,))
            np.testing.assert_array_equal(array, want)
            assert array.flags.c_contiguous
        batch.free()
        offset += rows
    assert offset == expected.num_rows


def test_tensor_layout_as_exported(zenith, data_dir):
    batch = zenith.open(data_dir / "basic.arrow", batch_size=300).next_batch()

    embedding = batch.column_dlpack("embedding")
    managed = embedding.managed
    assert (managed.version.major, managed.version.minor) == (1, 1)
    assert (managed.dl_tensor.device.device_type, managed.dl_tensor.device.device_id) == (kDLCPU, 0)
    assert embedding.shape() == (300, 4)
    assert embedding.strides() == (4, 1), "strides are always filled, in elements"
    assert managed.dl_tensor.byte_offset == 0
    assert managed.flags == DLPACK_FLAG_BITMASK_READ_ONLY
    assert embedding.__dlpack_device__() == (kDLCPU, 0)

    flag = batch.column_dlpack("flag")
    assert flag.managed.flags == DLPACK_FLAG_BITMASK_IS_COPIED
    assert (flag.managed.dl_tensor.dtype.code, flag.managed.dl_tensor.dtype.bits) == (6, 8)
    embedding.close()
    flag.close()


def test_by_index_follows_schema_order(zenith, data_dir):
    expected = pyarrow_read(data_dir / "single_batch.arrow").slice(0, 50)
    batch = zenith.open(data_dir / "single_batch.arrow", batch_size=50).next_batch()
    for index, column in enumerate(expected.column_names):
        if column == "name":
            continue
        np.testing.assert_array_equal(np.from_dlpack(batch.column_dlpack(index)), expected_numpy(expected, column))


# ---- zero copy, and the one copy ---------------------------------------------------------------


def test_numeric_columns_are_read_only_views_of_the_batch_memory(zenith, data_dir):
    batch = zenith.open(data_dir / "single_batch.arrow", batch_size=1000).next_batch()
    for column in ["id", "label", "value", "embedding"]:
        first, second = (np.from_dlpack(batch.column_dlpack(column)) for _ in range(2))
        assert not first.flags.writeable, "the tensor may be a read-only file mapping"
        assert data_address(first) == data_address(second), "two exports share one buffer"
        with pytest.raises(ValueError):
            first[0] = 0


def test_bools_are_a_writable_copy_per_export(zenith, data_dir):
    batch = zenith.open(data_dir / "basic.arrow", batch_size=1000).next_batch()
    first, second = (np.from_dlpack(batch.column_dlpack("flag")) for _ in range(2))
    assert first.flags.writeable
    assert data_address(first) != data_address(second)
    first[:] = True  # the copy is the consumer's own
    np.testing.assert_array_equal(second, np.arange(1000) % 3 == 0)


# ---- lifetimes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["basic.arrow", "single_batch.arrow"])
def test_arrays_outlive_batch_loader_and_file(zenith, data_dir, tmp_path, name):
    path = tmp_path / name
    shutil.copyfile(data_dir / name, path)
    loader = zenith.open(path, batch_size=2500)
    loader.next_batch().free()
    batch = loader.next_batch()
    arrays = {column: np.from_dlpack(batch.column_dlpack(column)) for column in SUPPORTED}
    unconsumed = batch.column_dlpack("embedding")  # a tensor numpy never saw
    batch.free()
    loader.free()
    path.unlink()
    gc.collect()

    reference = pyarrow_read(data_dir / name).slice(2500, 2500)
    for column, array in arrays.items():
        np.testing.assert_array_equal(array, expected_numpy(reference, column))
    np.testing.assert_array_equal(np.from_dlpack(unconsumed), expected_numpy(reference, "embedding"))


def test_an_unconsumed_capsule_releases_its_tensor(zenith, data_dir):
    batch = zenith.open(data_dir / "basic.arrow", batch_size=10).next_batch()
    tensor = batch.column_dlpack("id")
    before = UNCONSUMED_CAPSULES_DELETED[0]

    capsule = tensor.__dlpack__(max_version=(1, 0))
    assert not tensor.pointer, "the capsule owns the tensor now"
    with pytest.raises(BufferError):
        tensor.__dlpack__(max_version=(1, 0))
    del capsule
    gc.collect()
    assert UNCONSUMED_CAPSULES_DELETED[0] == before + 1, "the capsule destructor called the deleter"

    consumed = np.from_dlpack(batch.column_dlpack("id"))
    del consumed
    gc.collect()
    assert UNCONSUMED_CAPSULES_DELETED[0] == before + 1, "numpy, not the capsule, released that one"


def test_the_protocol_refuses_what_the_shim_cannot_do(zenith, data_dir):
    batch = zenith.open(data_dir / "basic.arrow", batch_size=10).next_batch()
    with pytest.raises(BufferError):
        np.from_dlpack(batch.column_dlpack("id"), copy=True)
    np.testing.assert_array_equal(np.from_dlpack(batch.column_dlpack("id"), device="cpu"), np.arange(10))


# ---- errors ------------------------------------------------------------------------------------


def test_a_string_column_is_unsupported(zenith, data_dir):
    batch = zenith.open(data_dir / "basic.arrow", batch_size=100).next_batch()
    with pytest.raises(ZenithError) as info:
        batch.column_dlpack("name")
    assert info.value.code == ZENITH_ERR_UNSUPPORTED
    assert "`name`" in info.value.message and "Utf8" in info.value.message


@pytest.mark.parametrize("column", ["nope", "", "Id", b"\xff\xfe", 6, 1000])
def test_unknown_or_invalid_columns_are_invalid_arguments(zenith, data_dir, column):
    batch = zenith.open(data_dir / "basic.arrow", batch_size=100).next_batch()
    with pytest.raises(ZenithError) as info:
        batch.column_dlpack(column)
    assert info.value.status == info.value.code == ZENITH_ERR_INVALID_ARGUMENT
    if isinstance(column, str) and column:
        assert f"`{column}`" in info.value.message


def test_null_arguments_leave_out_untouched(zenith, data_dir):
    lib = zenith.lib
    batch = zenith.open(data_dir / "basic.arrow", batch_size=100).next_batch()
    out = ctypes.cast(ctypes.c_void_p(0xDEADBEEF), TensorPtr)
    for args in [(None, b"id"), (batch.handle, None)]:
        assert lib.zenith_batch_column_dlpack(*args, ctypes.byref(out), None) == ZENITH_ERR_NULL_ARGUMENT
        assert ctypes.cast(out, ctypes.c_void_p).value == 0xDEADBEEF, "*out is untouched"
    assert lib.zenith_batch_column_dlpack(batch.handle, b"id", None, None) == ZENITH_ERR_NULL_ARGUMENT
