"""Compressed CSV and TSV, JSON lines and WebDataset tar shards through the C API (generate.py
wrote them with pyarrow, Python's gzip and tarfile), compared with pyarrow's own reading of the
same files: the loader delivers rows in file order, so the tables must be equal."""

import tarfile

import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pytest

from conftest import ZENITH_ERR_FORMAT, ZenithError
from test_sources import zenith_read

ROWS_IN_BASIC = 10_000


@pytest.mark.parametrize("name", ["basic.csv.gz", "basic.csv.zst", "basic.tsv", "basic.tsv.gz", "large.csv.zst"])
def test_compressed_csv_and_tsv_equal_pyarrow(zenith, data_dir, name):
    path = data_dir / "formats" / name
    delimiter = "\t" if ".tsv" in name else ","
    expected = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
    )
    got, _ = zenith_read(zenith, path, batch_size=4096)
    assert got.num_rows == expected.num_rows
    assert got.equals(expected)


@pytest.mark.parametrize("name", ["basic.jsonl", "basic.jsonl.gz", "basic.ndjson.zst"])
def test_json_lines_equal_pyarrow(zenith, data_dir, name):
    path = data_dir / "formats" / name
    expected = pajson.read_json(path)
    got, _ = zenith_read(zenith, path, batch_size=1000)
    assert got.column_names == expected.column_names
    assert got.num_rows == ROWS_IN_BASIC
    assert got.equals(expected)


def test_webdataset_shards_equal_tarfile_reading(zenith, data_dir):
    """Each row holds the files of one key, as Python's tarfile lists them."""
    expected = []
    for shard in sorted((data_dir / "webdataset").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                if not expected or expected[-1]["__key__"] != key:
                    expected.append({"__key__": key})
                expected[-1][ext] = tar.extractfile(member).read()
    got, _ = zenith_read(zenith, data_dir / "webdataset", batch_size=32)
    assert got.column_names == ["__key__", "cls", "jpg", "json"]
    assert got.to_pylist() == [{"json": None, **row} for row in expected]


@pytest.mark.parametrize(
    "name, status, message",
    [
        ("formats/truncated.csv.gz", ZENITH_ERR_FORMAT, "gzip"),
        ("formats/malformed.jsonl", ZENITH_ERR_FORMAT, "malformed JSON lines"),
        ("webdataset_hostile/truncated.tar", ZENITH_ERR_FORMAT, "truncated tar archive"),
        ("webdataset_hostile/traversal.tar", ZENITH_ERR_FORMAT, "`..` path"),
        ("webdataset_hostile/bad_checksum.tar", ZENITH_ERR_FORMAT, "checksum"),
    ],
)
def test_broken_files_are_clear_errors(zenith, data_dir, name, status, message):
    with pytest.raises(ZenithError) as info:
        zenith.open(data_dir / name)
    assert info.value.status == status
    assert message in str(info.value)
