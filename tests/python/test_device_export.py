"""The Arrow C Device Data Interface and the GPU entry points, through the C ABI.

* `zenith_batch_export_device_array` exports a CPU batch as an `ArrowDeviceArray` on
  `ARROW_DEVICE_CPU`, which pyarrow imports with `RecordBatch._import_from_c_device`: the struct
  layout and the release protocol are tested by a real consumer on every machine.
* `zenith_batch_export_device_array_columns` exports a subset of columns, in the order asked
  (how device batches with non-device columns are exported); bad names and streams are refused.
* `zenith_gpu_count` / `zenith_gpu_info` and a CUDA device set on loader options: on a machine
  without a CUDA driver they fail with ZENITH_ERR_NO_DEVICE and a message naming what was searched
  (on a machine with one, they describe its devices).
"""

import ctypes
import os
from ctypes import byref

import pyarrow as pa
import pyarrow.ipc
import pytest

from conftest import ZENITH_OK, ErrorPtr, LoaderPtr, OptionsPtr, _lib


def export_device(zenith, batch):
    """(ArrowDeviceArray, ArrowSchema) of a zenith Batch, through the C function."""
    array, schema, err = _lib.ArrowDeviceArray(), _lib.ArrowSchema(), ErrorPtr()
    status = zenith.lib.zenith_batch_export_device_array(batch.handle, byref(array), byref(schema), byref(err))
    assert zenith.check(status, err) == ZENITH_OK
    return array, schema


def test_cpu_batches_import_into_pyarrow_as_device_arrays(zenith, data_dir):
    path = data_dir / "basic.arrow"
    expected = pa.ipc.open_file(path).read_all()
    loader = zenith.open(path, batch_size=37)
    got = []
    while (batch := loader.next_batch()) is not None:
        array, schema = export_device(zenith, batch)
        assert array.device_type == _lib.ARROW_DEVICE_CPU
        assert array.device_id == -1
        assert array.sync_event is None
        assert list(array.reserved) == [0, 0, 0]
        assert array.array.length == batch.num_rows()
        batch.free()  # the export keeps the buffers alive on its own
        record_batch = pa.RecordBatch._import_from_c_device(ctypes.addressof(array), ctypes.addressof(schema))
        assert not array.array.release, "pyarrow took ownership and marked the struct released"
        got.append(record_batch)
    table = pa.Table.from_batches(got)
    assert table.schema.equals(expected.schema)
    assert table.equals(expected)
    assert [b.num_rows for b in got][:2] == [37, 37]


def test_the_schema_is_optional_and_release_without_import_is_clean(zenith, data_dir):
    loader = zenith.open(data_dir / "basic.arrow", batch_size=10)
    batch = loader.next_batch()
    array, err = _lib.ArrowDeviceArray(), ErrorPtr()
    status = zenith.lib.zenith_batch_export_device_array(batch.handle, byref(array), None, byref(err))
    assert zenith.check(status, err) == ZENITH_OK
    array.array.release(byref(array.array))
    assert not array.array.release
    batch.free()


def export_columns(zenith, batch, names, stream=-1):
    """(status, ArrowDeviceArray, ArrowSchema, message) of zenith_batch_export_device_array_columns."""
    array, schema, err = _lib.ArrowDeviceArray(), _lib.ArrowSchema(), ErrorPtr()
    if names is None:
        pointers, count = None, 0
    else:
        pointers, count = (ctypes.c_char_p * len(names))(*[n.encode() for n in names]), len(names)
    status = zenith.lib.zenith_batch_export_device_array_columns(
        batch.handle, pointers, count, stream, byref(array), byref(schema), byref(err)
    )
    message = zenith.take_error(err)[1] if status < 0 else ""
    return status, array, schema, message


def test_a_subset_of_columns_imports_into_pyarrow_in_the_order_asked(zenith, data_dir):
    path = data_dir / "basic.arrow"
    expected = pa.ipc.open_file(path).read_all()
    names = list(reversed(expected.schema.names))[:2]
    loader = zenith.open(path, batch_size=50)
    batch = loader.next_batch()
    status, array, schema, message = export_columns(zenith, batch, names)
    assert status == ZENITH_OK, message
    assert array.device_type == _lib.ARROW_DEVICE_CPU and array.sync_event is None
    batch.free()
    record_batch = pa.RecordBatch._import_from_c_device(ctypes.addressof(array), ctypes.addressof(schema))
    assert record_batch.schema.names == names
    assert record_batch.equals(expected.slice(0, 50).select(names).to_batches()[0])
    # (NULL, 0): every column, as zenith_batch_export_device_array.
    batch = loader.next_batch()
    status, array, schema, message = export_columns(zenith, batch, None)
    assert status == ZENITH_OK, message
    record_batch = pa.RecordBatch._import_from_c_device(ctypes.addressof(array), ctypes.addressof(schema))
    assert record_batch.schema.names == expected.schema.names
    batch.free()


def test_unknown_columns_and_streams_on_host_batches_are_refused(zenith, data_dir):
    loader = zenith.open(data_dir / "basic.arrow", batch_size=10)
    batch = loader.next_batch()
    status, array, _, message = export_columns(zenith, batch, ["no_such_column"])
    assert status == _lib.ZENITH_ERR_INVALID_ARGUMENT
    assert "`no_such_column`" in message and "its columns:" in message, message
    assert not array.array.release, "nothing written on failure"
    status, array, _, message = export_columns(zenith, batch, None, stream=1)
    assert status == _lib.ZENITH_ERR_INVALID_ARGUMENT
    assert "takes no stream" in message, message
    array, err = _lib.ArrowDeviceArray(), ErrorPtr()
    status = zenith.lib.zenith_batch_export_device_array_columns(batch.handle, None, 2, -1, byref(array), None, byref(err))
    assert status == _lib.ZENITH_ERR_NULL_ARGUMENT
    assert "columns" in zenith.take_error(err)[1]
    batch.free()


def test_host_loaders_report_zero_device_counters(zenith, data_dir):
    loader = zenith.open(data_dir / "basic.arrow", batch_size=10)
    loader.next_batch().free()
    stats, err = _lib.zenith_stats(), ErrorPtr()
    stats.struct_size = ctypes.sizeof(stats)
    assert zenith.check(zenith.lib.zenith_loader_stats(loader.handle, byref(stats), byref(err)), err) == ZENITH_OK
    assert stats.batches == 1
    assert (stats.device_bytes_copied, stats.device_copies, stats.device_consumer_wait_ns) == (0, 0, 0)


def test_null_arguments_are_refused(zenith):
    array, err = _lib.ArrowDeviceArray(), ErrorPtr()
    status = zenith.lib.zenith_batch_export_device_array(None, byref(array), None, byref(err))
    assert status == _lib.ZENITH_ERR_NULL_ARGUMENT
    assert "batch" in zenith.take_error(err)[1]
    assert not array.array.release, "nothing written on failure"


def gpu_count(zenith):
    """(status, count, message)."""
    count, err = ctypes.c_uint32(), ErrorPtr()
    status = zenith.lib.zenith_gpu_count(byref(count), byref(err))
    message = zenith.take_error(err)[1] if status < 0 else ""
    return status, count.value, message


def test_gpu_discovery_reports_no_device_cleanly_or_describes_the_devices(zenith):
    status, count, message = gpu_count(zenith)
    if status == _lib.ZENITH_ERR_NO_DEVICE:
        print(f"no CUDA device here: {message}")
        assert "libcuda.so" in message or "no device" in message, message
        info, err = _lib.zenith_gpu_device_info(), ErrorPtr()
        info.struct_size = ctypes.sizeof(info)
        assert zenith.lib.zenith_gpu_info(0, byref(info), byref(err)) == _lib.ZENITH_ERR_NO_DEVICE
        assert zenith.take_error(err)[0] == _lib.ZENITH_ERR_NO_DEVICE
        assert info.ordinal == 0 and info.name == b"", "nothing written on failure"
        return
    assert status == ZENITH_OK and count > 0
    for ordinal in range(count):
        info, err = _lib.zenith_gpu_device_info(), ErrorPtr()
        info.struct_size = ctypes.sizeof(info)
        assert zenith.check(zenith.lib.zenith_gpu_info(ordinal, byref(info), byref(err)), err) == ZENITH_OK
        assert info.uuid.startswith(b"GPU-") and info.memory_total_bytes > 0 and info.sm_count > 0


def test_a_cuda_device_that_does_not_exist_fails_loader_open_with_no_device(zenith, data_dir):
    lib = zenith.lib
    status, count, _ = gpu_count(zenith)
    # An ordinal past the last device: NO_DEVICE on every machine.
    ordinal = count if status == ZENITH_OK else 0
    opts = OptionsPtr()
    assert lib.zenith_loader_options_new(byref(opts)) == ZENITH_OK
    try:
        err = ErrorPtr()
        assert lib.zenith_loader_options_set_device(opts, 7, 0, byref(err)) == _lib.ZENITH_ERR_INVALID_ARGUMENT
        zenith.take_error(err)
        err = ErrorPtr()
        assert lib.zenith_loader_options_set_device(opts, _lib.ZENITH_DEVICE_CPU, 1, byref(err)) == _lib.ZENITH_ERR_INVALID_ARGUMENT
        zenith.take_error(err)
        err = ErrorPtr()
        assert zenith.check(lib.zenith_loader_options_set_device(opts, _lib.ZENITH_DEVICE_CUDA, ordinal, byref(err)), err) == ZENITH_OK
        out, err = LoaderPtr(), ErrorPtr()
        status = lib.zenith_loader_open(os.fsencode(data_dir / "basic.arrow"), opts, byref(out), byref(err))
        assert status == _lib.ZENITH_ERR_NO_DEVICE
        code, message = zenith.take_error(err)
        assert code == _lib.ZENITH_ERR_NO_DEVICE and message.startswith("no device: "), message
        assert not out, "no loader on failure"
        # Back on the CPU, the same options open.
        err = ErrorPtr()
        assert zenith.check(lib.zenith_loader_options_set_device(opts, _lib.ZENITH_DEVICE_CPU, 0, byref(err)), err) == ZENITH_OK
        err = ErrorPtr()
        status = lib.zenith_loader_open(os.fsencode(data_dir / "basic.arrow"), opts, byref(out), byref(err))
        assert zenith.check(status, err) == ZENITH_OK
        lib.zenith_loader_free(out)
    finally:
        lib.zenith_loader_options_free(opts)


def test_status_string_of_no_device(zenith):
    assert b"no device" in zenith.lib.zenith_status_str(_lib.ZENITH_ERR_NO_DEVICE)


def test_a_host_loader_streams_cpu_device_arrays_that_pyarrow_imports(zenith, data_dir):
    """zenith_loader_export_device_stream: the ArrowDeviceArrayStream protocol driven by hand
    (pyarrow has no reader import for device streams), each array imported by pyarrow."""
    path = data_dir / "basic.arrow"
    expected = pa.ipc.open_file(path).read_all()
    loader = zenith.open(path, batch_size=64)
    first = loader.next_batch()  # batches already delivered are not in the stream
    first.free()
    stream, err = _lib.ArrowDeviceArrayStream(), ErrorPtr()
    status = zenith.lib.zenith_loader_export_device_stream(loader.handle, byref(stream), byref(err))
    assert zenith.check(status, err) == ZENITH_OK
    assert stream.device_type == _lib.ARROW_DEVICE_CPU
    # The loader may go first: the stream keeps what it needs.
    loader.free()
    got = []
    while True:
        schema, array = _lib.ArrowSchema(), _lib.ArrowDeviceArray()
        assert stream.get_schema(byref(stream), byref(schema)) == 0
        assert stream.get_next(byref(stream), byref(array)) == 0, stream.get_last_error(byref(stream))
        if not array.array.release:
            schema.release(byref(schema))
            break  # the end of the epoch
        assert array.device_type == _lib.ARROW_DEVICE_CPU and array.sync_event is None
        got.append(pa.RecordBatch._import_from_c_device(ctypes.addressof(array), ctypes.addressof(schema)))
    stream.release(byref(stream))
    assert not stream.release, "released streams mark themselves"
    table = pa.Table.from_batches(got)
    assert table.schema.equals(expected.schema)
    assert table.equals(expected.slice(64))
    assert got[0].num_rows == 64


def test_device_stream_arguments_are_checked(zenith, data_dir):
    loader = zenith.open(data_dir / "basic.arrow", batch_size=10)
    stream, err = _lib.ArrowDeviceArrayStream(), ErrorPtr()
    status = zenith.lib.zenith_loader_export_device_stream(None, byref(stream), byref(err))
    assert status == _lib.ZENITH_ERR_NULL_ARGUMENT
    assert "loader" in zenith.take_error(err)[1]
    status = zenith.lib.zenith_loader_export_device_stream(loader.handle, None, byref(err))
    assert status == _lib.ZENITH_ERR_NULL_ARGUMENT
    assert "out" in zenith.take_error(err)[1]
    assert not stream.release, "nothing written on failure"
    # A host loader keeps delivering on its own after a device stream was taken of it.
    err = ErrorPtr()
    status = zenith.lib.zenith_loader_export_device_stream(loader.handle, byref(stream), byref(err))
    assert zenith.check(status, err) == ZENITH_OK
    stream.release(byref(stream))
    batch = loader.next_batch()
    assert batch is not None and batch.num_rows() == 10
    batch.free()
