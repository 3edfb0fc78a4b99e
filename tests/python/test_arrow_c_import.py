"""pyarrow, a consumer that is not ours, imports what libzenith exports through the Arrow C Data
and C Stream Interfaces, and finds the same content as its own reading of the same file.

Also: the lifetimes the header promises (exports outlive the loader), the cursor shared by
`zenith_loader_next` and the exported stream, and error reporting through a plain C caller.
"""

import ctypes
import shutil
import tomllib
from ctypes import addressof, byref, c_void_p, sizeof

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet
import pytest

from conftest import (
    ALL_STATUSES,
    REPO,
    ZENITH_DONE,
    ZENITH_ERR_FORMAT,
    ZENITH_ERR_INVALID_ARGUMENT,
    ZENITH_ERR_NOT_FOUND,
    ZENITH_ERR_NULL_ARGUMENT,
    ZENITH_OK,
    ArrowArray,
    ArrowArrayStream,
    ArrowSchema,
    ErrorPtr,
    LoaderPtr,
    OptionsPtr,
    ZenithError,
)

ROWS_IN_BASIC = 10_000  # generate.py's default --rows
READABLE_FILES = ["basic.arrow", "single_batch.arrow", "dictionary.arrow", "empty.arrow"]
BATCH_SIZES = [1, 7, 1000, 1024, 10000, 20000]
SENTINEL_ADDRESS = 0xDEADBEEF
SENTINEL_BYTE = 0xA5


# ---- helpers ----------------------------------------------------------------------------------


def pyarrow_read(path) -> pa.Table:
    """pyarrow's own reading of an Arrow IPC file: the reference every test compares with."""
    with pa.ipc.open_file(path) as reader:
        return reader.read_all()


def decoded(table: pa.Table) -> pa.Table:
    """`table` with dictionary columns decoded to their values (dictionaries may be re-encoded)."""
    columns = [
        column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def assert_same_content(got: pa.Table, expected: pa.Table) -> None:
    assert got.schema.equals(expected.schema), f"\n{got.schema}\n!=\n{expected.schema}"
    assert got.num_rows == expected.num_rows
    assert decoded(got).equals(decoded(expected))


def expected_batch_sizes(rows: int, batch_size: int) -> list:
    full, rest = divmod(rows, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def import_stream(stream: ArrowArrayStream) -> pa.RecordBatchReader:
    reader = pa.RecordBatchReader._import_from_c(addressof(stream))
    assert not stream.release, "importing moves the stream: the source struct is marked released"
    return reader


def import_schema(c_schema: ArrowSchema) -> pa.Schema:
    schema = pa.Schema._import_from_c(addressof(c_schema))
    assert not c_schema.release
    return schema


def import_batch(array: ArrowArray, schema) -> pa.RecordBatch:
    """Imports `array` with `schema`: an ArrowSchema struct or a pyarrow Schema."""
    schema_arg = addressof(schema) if isinstance(schema, ArrowSchema) else schema
    batch = pa.RecordBatch._import_from_c(addressof(array), schema_arg)
    assert not array.release
    return batch


def filled(struct_type):
    """A struct of `struct_type` whose every byte is SENTINEL_BYTE, to detect any write to it."""
    struct = struct_type()
    ctypes.memset(addressof(struct), SENTINEL_BYTE, sizeof(struct))
    return struct


def sentinel_loader() -> LoaderPtr:
    return ctypes.cast(c_void_p(SENTINEL_ADDRESS), LoaderPtr)


def address_of(pointer) -> int:
    return ctypes.cast(pointer, c_void_p).value


def open_raw(lib, path, opts=None):
    """zenith_loader_open with a sentinel in *out: returns (status, out, err)."""
    out, err = sentinel_loader(), ErrorPtr()
    status = lib.zenith_loader_open(path, opts, byref(out), byref(err))
    return status, out, err


# ---- the structs -----------------------------------------------------------------------------


def test_ctypes_structs_have_the_c_data_interface_sizes():
    assert sizeof(ArrowSchema) == 72
    assert sizeof(ArrowArray) == 80
    assert sizeof(ArrowArrayStream) == 40


# ---- zenith_loader_export_stream --------------------------------------------------------------


@pytest.mark.parametrize("name", READABLE_FILES)
def test_stream_equals_pyarrow_reading(zenith, data_dir, name):
    path = data_dir / name
    expected = pyarrow_read(path)

    reader = import_stream(zenith.open(path).export_stream())
    assert reader.schema.equals(expected.schema)
    got = reader.read_all()

    assert_same_content(got, expected)
    if name == "empty.arrow":
        assert got.num_rows == 0
    if name == "dictionary.arrow":
        assert pa.types.is_dictionary(got.schema.field("color").type)
        assert got.column("color").to_pylist() == [["red", "green", "blue"][i % 3] for i in range(100)]


@pytest.mark.parametrize("name", ["basic.arrow", "single_batch.arrow"])
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_stream_batches_have_exactly_batch_size_rows_except_the_last(zenith, data_dir, name, batch_size):
    path = data_dir / name
    expected = pyarrow_read(path)
    assert expected.num_rows == ROWS_IN_BASIC

    batches = list(import_stream(zenith.open(path, batch_size=batch_size).export_stream()))

    assert [b.num_rows for b in batches] == expected_batch_sizes(ROWS_IN_BASIC, batch_size)
    assert_same_content(pa.Table.from_batches(batches, schema=expected.schema), expected)


def test_stream_release_without_reading_is_clean(zenith, data_dir):
    loader = zenith.open(data_dir / "basic.arrow")
    stream = loader.export_stream()
    stream.release(byref(stream))
    assert not stream.release, "release marks the stream released"
    # Nothing was read through the stream: the loader still delivers the whole epoch.
    got = import_stream(loader.export_stream()).read_all()
    assert_same_content(got, pyarrow_read(data_dir / "basic.arrow"))


# ---- zenith_loader_schema ---------------------------------------------------------------------


@pytest.mark.parametrize("name", READABLE_FILES)
def test_schema_equals_file_schema(zenith, data_dir, name):
    expected = pyarrow_read(data_dir / name).schema
    c_schema = zenith.open(data_dir / name).schema()
    assert c_schema.format == b"+s", "a record batch schema is a struct schema"

    schema = import_schema(c_schema)

    assert schema.names == expected.names
    assert schema.types == expected.types
    assert [f.nullable for f in schema] == [f.nullable for f in expected]
    assert schema.equals(expected)


# ---- zenith_loader_next -----------------------------------------------------------------------


def take_all_with_next(loader, schema=None) -> list:
    """Calls zenith_loader_next until ZENITH_DONE. With `schema` (a pyarrow Schema) the array is
    imported with it and out_schema is NULL; without, each call also fills an ArrowSchema."""
    batches = []
    while True:
        array = ArrowArray()
        c_schema = ArrowSchema() if schema is None else None
        status = loader.next(array, c_schema)
        if status == ZENITH_DONE:
            return batches
        assert status == ZENITH_OK
        batches.append(import_batch(array, c_schema if schema is None else schema))


@pytest.mark.parametrize("name", READABLE_FILES)
def test_next_with_array_and_schema(zenith, data_dir, name):
    expected = pyarrow_read(data_dir / name)

    batches = take_all_with_next(zenith.open(data_dir / name, batch_size=777))

    assert [b.num_rows for b in batches] == expected_batch_sizes(expected.num_rows, 777)
    for batch in batches:
        assert batch.schema.equals(expected.schema)
    assert_same_content(pa.Table.from_batches(batches, schema=expected.schema), expected)


@pytest.mark.parametrize("name", READABLE_FILES)
def test_next_with_null_schema_uses_loader_schema(zenith, data_dir, name):
    expected = pyarrow_read(data_dir / name)
    loader = zenith.open(data_dir / name, batch_size=1024)
    schema = import_schema(loader.schema())

    batches = take_all_with_next(loader, schema=schema)

    assert [b.num_rows for b in batches] == expected_batch_sizes(expected.num_rows, 1024)
    assert_same_content(pa.Table.from_batches(batches, schema=schema), expected)


def test_next_at_end_of_epoch_writes_nothing(zenith, data_dir):
    loader = zenith.open(data_dir / "dictionary.arrow", batch_size=1000)
    assert len(take_all_with_next(loader)) == 1

    for _ in range(2):  # and stays at the end
        array, schema = filled(ArrowArray), filled(ArrowSchema)
        array_before, schema_before = bytes(array), bytes(schema)
        assert loader.next(array, schema) == ZENITH_DONE
        assert bytes(array) == array_before
        assert bytes(schema) == schema_before


# ---- lifetimes: exports outlive the loader (and the file's directory entry) -------------------


@pytest.mark.parametrize("name", ["basic.arrow", "single_batch.arrow", "dictionary.arrow"])
def test_stream_read_after_loader_free(zenith, data_dir, tmp_path, name):
    expected = pyarrow_read(data_dir / name)
    path = tmp_path / name
    shutil.copyfile(data_dir / name, path)
    loader = zenith.open(path, batch_size=100)

    stream = loader.export_stream()
    loader.free()
    path.unlink()  # nothing may reopen the file: the export holds the mapping

    got = import_stream(stream).read_all()
    assert_same_content(got, expected)


@pytest.mark.parametrize("name", ["basic.arrow", "single_batch.arrow", "dictionary.arrow"])
def test_array_imported_after_loader_free(zenith, data_dir, tmp_path, name):
    expected = pyarrow_read(data_dir / name)
    path = tmp_path / name
    shutil.copyfile(data_dir / name, path)
    loader = zenith.open(path, batch_size=50)

    arrays = [(ArrowArray(), ArrowSchema()) for _ in range(2)]
    for array, schema in arrays:
        assert loader.next(array, schema) == ZENITH_OK
    loader.free()
    path.unlink()

    batches = [import_batch(array, schema) for array, schema in arrays]
    assert_same_content(pa.Table.from_batches(batches), expected.slice(0, 100))


# ---- the stream and zenith_loader_next share one cursor ---------------------------------------


def test_stream_continues_after_batches_taken_with_next(zenith, data_dir):
    expected = pyarrow_read(data_dir / "basic.arrow")
    loader = zenith.open(data_dir / "basic.arrow", batch_size=1000)
    schema = import_schema(loader.schema())

    taken = []
    for _ in range(2):
        array = ArrowArray()
        assert loader.next(array) == ZENITH_OK
        taken.append(import_batch(array, schema))
    assert_same_content(pa.Table.from_batches(taken), expected.slice(0, 2000))

    rest = import_stream(loader.export_stream()).read_all()
    assert rest.num_rows == ROWS_IN_BASIC - 2000
    assert_same_content(rest, expected.slice(2000))

    # The stream consumed the rest of the epoch.
    assert loader.next(ArrowArray()) == ZENITH_DONE


# ---- errors through a plain C caller ----------------------------------------------------------


def test_missing_path_is_not_found_and_names_the_path(zenith, tmp_path):
    lib = zenith.lib
    path = tmp_path / "no-such-dataset.arrow"

    status, out, err = open_raw(lib, bytes(path))

    assert status == ZENITH_ERR_NOT_FOUND
    assert address_of(out) == SENTINEL_ADDRESS, "*out is untouched on failure"
    code, message = zenith.take_error(err)
    assert code == ZENITH_ERR_NOT_FOUND
    assert str(path) in message


@pytest.mark.parametrize(
    "name, status",
    [
        ("truncated.arrow", ZENITH_ERR_FORMAT),
        ("corrupt_footer.arrow", ZENITH_ERR_FORMAT),
        ("not_a_dataset.bin", ZENITH_ERR_FORMAT),
        ("zero_bytes.arrow", ZENITH_ERR_FORMAT),
        ("truncated.parquet", ZENITH_ERR_FORMAT),
        ("truncated.arrows", ZENITH_ERR_FORMAT),
        ("malformed.csv", ZENITH_ERR_FORMAT),
    ],
)
def test_unreadable_file_is_a_clean_error(zenith, data_dir, name, status):
    path = data_dir / name

    got, out, err = open_raw(zenith.lib, bytes(path))

    assert got == status
    assert address_of(out) == SENTINEL_ADDRESS
    code, message = zenith.take_error(err)
    assert code == status
    assert message, "the error carries a message"
    assert name in message


def test_parquet_is_read(zenith, data_dir):
    # basic.parquet (the first 100 rows of basic.arrow) was ZENITH_ERR_UNSUPPORTED before the
    # Parquet source; tests/python/test_sources.py covers Parquet in depth.
    got = import_stream(zenith.open(data_dir / "basic.parquet", batch_size=30).export_stream()).read_all()
    assert_same_content(got, pyarrow.parquet.read_table(data_dir / "basic.parquet"))
    assert got.column("id").to_pylist() == list(range(100))


def test_failing_open_with_null_err_returns_the_status(zenith, data_dir):
    out = sentinel_loader()
    assert zenith.lib.zenith_loader_open(bytes(data_dir / "truncated.arrow"), None, byref(out), None) == ZENITH_ERR_FORMAT
    assert address_of(out) == SENTINEL_ADDRESS


def test_zero_batch_size_is_invalid_and_leaves_options_unchanged(zenith, data_dir):
    lib = zenith.lib
    opts = OptionsPtr()
    assert lib.zenith_loader_options_new(byref(opts)) == ZENITH_OK
    try:
        assert lib.zenith_loader_options_set_batch_size(opts, 7, None) == ZENITH_OK
        err = ErrorPtr()
        assert lib.zenith_loader_options_set_batch_size(opts, 0, byref(err)) == ZENITH_ERR_INVALID_ARGUMENT
        code, message = zenith.take_error(err)
        assert code == ZENITH_ERR_INVALID_ARGUMENT
        assert message

        status, out, err = open_raw(lib, bytes(data_dir / "dictionary.arrow"), opts)
        zenith.check(status, err)
    finally:
        lib.zenith_loader_options_free(opts)
    try:
        array = ArrowArray()
        assert lib.zenith_loader_next(out, byref(array), None, None) == ZENITH_OK
        assert array.length == 7, "the rejected batch size left the earlier one in place"
        array.release(byref(array))
    finally:
        lib.zenith_loader_free(out)


def test_zero_batch_size_through_the_helper_raises(zenith, data_dir):
    with pytest.raises(ZenithError) as info:
        zenith.open(data_dir / "basic.arrow", batch_size=0)
    assert info.value.status == info.value.code == ZENITH_ERR_INVALID_ARGUMENT


def test_null_path_and_null_out_are_null_arguments(zenith, data_dir):
    lib = zenith.lib

    status, out, err = open_raw(lib, None)
    assert status == ZENITH_ERR_NULL_ARGUMENT
    assert address_of(out) == SENTINEL_ADDRESS
    assert zenith.take_error(err)[0] == ZENITH_ERR_NULL_ARGUMENT

    err = ErrorPtr()
    status = lib.zenith_loader_open(bytes(data_dir / "basic.arrow"), None, None, byref(err))
    assert status == ZENITH_ERR_NULL_ARGUMENT
    assert zenith.take_error(err)[0] == ZENITH_ERR_NULL_ARGUMENT

    assert lib.zenith_loader_options_new(None) == ZENITH_ERR_NULL_ARGUMENT


def test_null_loader_leaves_c_structs_untouched(zenith):
    lib = zenith.lib
    schema, array, stream = filled(ArrowSchema), filled(ArrowArray), filled(ArrowArrayStream)
    before = bytes(schema), bytes(array), bytes(stream)

    calls = [
        lambda err: lib.zenith_loader_schema(None, byref(schema), err),
        lambda err: lib.zenith_loader_next(None, byref(array), byref(schema), err),
        lambda err: lib.zenith_loader_export_stream(None, byref(stream), err),
    ]
    for call in calls:
        err = ErrorPtr()
        assert call(byref(err)) == ZENITH_ERR_NULL_ARGUMENT
        assert zenith.take_error(err)[0] == ZENITH_ERR_NULL_ARGUMENT
        assert call(None) == ZENITH_ERR_NULL_ARGUMENT

    assert (bytes(schema), bytes(array), bytes(stream)) == before


def test_null_outputs_of_a_live_loader_consume_nothing(zenith, data_dir):
    lib = zenith.lib
    loader = zenith.open(data_dir / "basic.arrow", batch_size=1000)

    for call in [
        lambda err: lib.zenith_loader_schema(loader.handle, None, err),
        lambda err: lib.zenith_loader_next(loader.handle, None, None, err),
        lambda err: lib.zenith_loader_export_stream(loader.handle, None, err),
    ]:
        err = ErrorPtr()
        assert call(byref(err)) == ZENITH_ERR_NULL_ARGUMENT
        assert zenith.take_error(err)[0] == ZENITH_ERR_NULL_ARGUMENT

    # The failed calls took no batch: the epoch still starts at row 0.
    got = import_stream(loader.export_stream()).read_all()
    assert_same_content(got, pyarrow_read(data_dir / "basic.arrow"))


def test_null_handles_are_harmless(lib):
    lib.zenith_error_free(None)
    lib.zenith_loader_free(None)
    lib.zenith_loader_options_free(None)
    assert lib.zenith_error_code(None) == ZENITH_OK
    assert lib.zenith_error_message(None) == b""


# ---- status strings and version ---------------------------------------------------------------


def test_status_str_describes_every_code(lib):
    descriptions = {status: lib.zenith_status_str(status) for status in ALL_STATUSES}
    assert all(descriptions.values()), descriptions
    assert len(set(descriptions.values())) == len(ALL_STATUSES), "each code has its own text"
    assert lib.zenith_status_str(-1000) == b"unknown status code"
    assert lib.zenith_status_str(ZENITH_ERR_NOT_FOUND) == b"not found"


def test_version_matches_cargo_toml(lib):
    with open(REPO / "Cargo.toml", "rb") as f:
        version = tomllib.load(f)["workspace"]["package"]["version"]
    major, minor, patch = (int(part) for part in version.split("."))

    assert lib.zenith_version().decode() == version
    assert lib.zenith_version_number() == major * 10000 + minor * 100 + patch
