"""Errors: zenith.ZenithError with the library's code and message, subclasses that are also the
built-in exceptions users catch."""

from __future__ import annotations

import errno
import pathlib
import pickle
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zenith
from conftest import make_table, write_ipc


def test_a_missing_path_is_a_file_not_found_error(tmp_path):
    missing = tmp_path / "nope.parquet"
    with pytest.raises(FileNotFoundError) as info:
        zenith.Loader(missing)
    e = info.value
    assert isinstance(e, zenith.ZenithError) and isinstance(e, zenith.NotFoundError)
    assert e.code == zenith.Status.ERR_NOT_FOUND == -4
    assert e.errno == errno.ENOENT and e.filename == str(missing)
    assert str(missing) in e.message and str(missing) in str(e)


def test_an_empty_folder_is_not_found(tmp_path):
    with pytest.raises(zenith.NotFoundError):
        zenith.Loader(tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": "10"}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"shuffle": "random"}, "shuffle"),
        ({"shuffle": 1}, "shuffle"),
        ({"seed": -1}, "seed"),
        ({"num_workers": 257}, "num_workers"),
        ({"num_workers": -1}, "num_workers"),
        ({"prefetch": 0}, "prefetch"),
        ({"drop_last": "yes"}, "drop_last"),
        ({"columns": "id"}, "columns"),
        ({"columns": ["id", 3]}, "columns"),
        ({"columns": ["id", "id"]}, "id"),
        ({"columns": ["nope"]}, "nope"),
        ({"rank": 0}, "rank"),
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"rank": 0, "world_size": 0}, "world_size"),
        ({"output": "numpy"}, "output"),
        ({"memory_budget": -5}, "memory_budget"),
    ],
)
def test_bad_arguments_are_value_errors(data, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        zenith.Loader(data["arrow"], **kwargs)
    assert isinstance(info.value, zenith.InvalidArgumentError)
    assert info.value.code == zenith.Status.ERR_INVALID_ARGUMENT


def test_a_bad_path_type(data):
    with pytest.raises(zenith.InvalidArgumentError):
        zenith.Loader(12)


def test_bad_set_epoch(data):
    with zenith.Loader(data["arrow"]) as loader:
        for bad in (-1, "1", None):
            with pytest.raises(ValueError):
                loader.set_epoch(bad)


def test_a_corrupt_file_is_a_format_error(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(make_table(100), path)
    path.write_bytes(path.read_bytes()[:-20])  # truncated footer
    with pytest.raises(zenith.FormatError) as info:
        zenith.Loader(path)
    assert info.value.code == zenith.Status.ERR_FORMAT
    assert "bad.parquet" in info.value.message
    assert not isinstance(info.value, ValueError)

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(zenith.ZenithError):
        zenith.Loader(junk)


def test_shards_with_different_schemas(tmp_path):
    write_ipc(pa.table({"a": [1, 2]}), tmp_path / "a.arrow")
    write_ipc(pa.table({"a": [1.0, 2.0]}), tmp_path / "b.arrow")
    with pytest.raises(zenith.SchemaMismatchError) as info:
        zenith.Loader(tmp_path)
    assert "a.arrow" in info.value.message and "b.arrow" in info.value.message
    assert info.value.code == zenith.Status.ERR_SCHEMA_MISMATCH


def test_errors_pickle_with_their_code():
    error = zenith.NotFoundError(zenith.Status.ERR_NOT_FOUND, "gone")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is zenith.NotFoundError and copy.code == error.code and copy.message == "gone"


def test_status_codes_match_the_header():
    header = pathlib.Path(__file__).resolve().parents[3] / "include" / "zenith.h"
    if not header.is_file():
        pytest.skip("not in a repository checkout (include/zenith.h)")
    defined = {
        name: int(value)
        for name, value in re.findall(r"^#define ZENITH_((?:OK|DONE|ERR_\w+)) (-?\d+)$", header.read_text(), re.MULTILINE)
    }
    assert {s.name: int(s) for s in zenith.Status} == defined
