"""Parquet, CSV and Arrow IPC stream datasets through the C API, compared with pyarrow's own
reading of the same files (tests/data/generate.py wrote them with pyarrow).

Each dataset is opened with zenith_loader_open and read through zenith_loader_export_stream,
imported by pyarrow as a RecordBatchReader. The loader delivers rows in dataset order (files in
sorted path order, then chunks in file order), so the result must equal pyarrow's reading row for
row.
"""

import glob
from ctypes import addressof

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from conftest import (
    ZENITH_ERR_FORMAT,
    ZENITH_ERR_SCHEMA_MISMATCH,
    ZENITH_SHUFFLE_GLOBAL,
    ZenithError,
)

ROWS_IN_BASIC = 10_000  # generate.py's default --rows
ROWS_IN_LARGE_CSV = 140_000
CSV_CHUNK_ROWS = 65_536
CODECS = ["snappy", "zstd", "lz4", "gzip", "none"]


# ---- helpers ----------------------------------------------------------------------------------


def zenith_read(zenith, path, batch_size=None) -> tuple:
    """(table, batch lengths) of one epoch of the dataset at `path`, through the C stream."""
    loader = zenith.open(path, batch_size=batch_size)
    stream = loader.export_stream()
    reader = pa.RecordBatchReader._import_from_c(addressof(stream))
    batches = list(reader)
    return pa.Table.from_batches(batches, schema=reader.schema), [b.num_rows for b in batches]


def pyarrow_csv(path) -> pa.Table:
    """pyarrow's reading of a CSV file, with empty fields as nulls (as Zenith reads them)."""
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))


def pyarrow_stream(path) -> pa.Table:
    with pa.ipc.open_stream(path) as reader:
        return reader.read_all()


def assert_same_content(got: pa.Table, expected: pa.Table) -> None:
    assert got.schema.equals(expected.schema), f"\n{got.schema}\n!=\n{expected.schema}"
    assert got.num_rows == expected.num_rows
    assert got.equals(expected)


def expected_batch_sizes(rows: int, batch_size: int) -> list:
    full, rest = divmod(rows, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def open_error(zenith, path) -> ZenithError:
    with pytest.raises(ZenithError) as info:
        zenith.open(path)
    assert info.value.status == info.value.code, "the status and the error object agree"
    return info.value


# ---- Parquet ----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_parquet_codec_equals_pyarrow_reading(zenith, data_dir, codec):
    path = data_dir / "parquet" / f"basic.{codec}.parquet"
    assert pq.ParquetFile(path).metadata.num_row_groups == 10

    got, sizes = zenith_read(zenith, path, batch_size=1024)

    assert_same_content(got, pq.read_table(path))
    assert sizes == expected_batch_sizes(ROWS_IN_BASIC, 1024)


@pytest.mark.parametrize("batch_size", [1, 999, 1000, 3333, 10_000, 20_000])
def test_parquet_batches_straddle_row_groups(zenith, data_dir, batch_size):
    path = data_dir / "parquet" / "basic.zstd.parquet"

    got, sizes = zenith_read(zenith, path, batch_size=batch_size)

    assert sizes == expected_batch_sizes(ROWS_IN_BASIC, batch_size)
    assert_same_content(got, pq.read_table(path))


PIECE_ROWS = 8192  # rows the Parquet source decodes at a time (dataset/parquet.rs)


def wide_row_groups_table(rows: int) -> pa.Table:
    """Every kind of column the loader serves, with nulls and values of varied lengths."""
    ids = list(range(rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "x": pa.array([None if i % 11 == 0 else i * 0.5 for i in ids], pa.float64()),
            "s": pa.array([None if i % 13 == 0 else "v" * (i % 37) + str(i) for i in ids]),
            "d": pa.array([f"cat-{i % 5}" for i in ids]).dictionary_encode(),
            "flag": pa.array([None if i % 17 == 0 else i % 3 == 0 for i in ids]),
            "l": pa.array([None if i % 19 == 0 else list(range(i % 6)) for i in ids],
                          pa.list_(pa.int32())),
            "emb": pa.array([[float(i), float(-i), 0.5, 1.5] for i in ids],
                            pa.list_(pa.float32(), 4)),
            # Fixed-size lists of every primitive the fast leaf path reads, and some it leaves
            # to arrow-rs (nulls, a narrow integer).
            "emb64": pa.array([[i * 0.25, -1.0, float(i % 3)] for i in ids],
                              pa.list_(pa.float64(), 3)),
            "pair": pa.array([[i, -i] for i in ids], pa.list_(pa.int32(), 2)),
            "wide": pa.array([[i * 7 + k for k in range(5)] for i in ids],
                             pa.list_(pa.int64(), 5)),
            "emb_nulls": pa.array([None if i % 23 == 0 else [float(i), 2.0] for i in ids],
                                  pa.list_(pa.float32(), 2)),
            "small": pa.array([[i % 100, 1] for i in ids], pa.list_(pa.int16(), 2)),
            "st": pa.array([{"a": i, "b": str(i)} for i in ids]),
        }
    )


def without_dictionaries(table: pa.Table) -> pa.Table:
    """`table` with its dictionary columns decoded: a batch that straddles pieces or row groups
    holds the dictionaries of both (valid Arrow, equal in value, not equal to pyarrow's layout)."""
    columns = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    return pa.table(columns, names=table.column_names)


@pytest.mark.parametrize("batch_size", [1000, PIECE_ROWS, 9000, 50_000])
def test_row_groups_larger_than_a_decoded_piece_equal_pyarrow(zenith, tmp_path, batch_size):
    # Row groups of 20,000 rows decode as pieces of 8,192, 8,192 and 3,616 rows: batches that
    # fall inside a piece, that straddle pieces, and that straddle row groups.
    table = wide_row_groups_table(60_000)
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    assert pq.ParquetFile(path).metadata.row_group(0).num_rows == 20_000

    got, sizes = zenith_read(zenith, path, batch_size=batch_size)

    assert sizes == expected_batch_sizes(60_000, batch_size)
    assert pa.types.is_dictionary(got.schema.field("d").type)
    assert_same_content(without_dictionaries(got), without_dictionaries(pq.read_table(path)))


def test_a_shuffled_epoch_over_decoded_pieces_is_a_permutation_of_the_rows(zenith, tmp_path):
    table = wide_row_groups_table(60_000)
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    loader = zenith.open(path, batch_size=1000, shuffle=ZENITH_SHUFFLE_GLOBAL)
    stream = loader.export_stream()
    reader = pa.RecordBatchReader._import_from_c(addressof(stream))
    got = pa.Table.from_batches(list(reader), schema=reader.schema)

    ids = got.column("id").to_pylist()
    assert ids != sorted(ids), "the epoch is shuffled"
    assert sorted(ids) == list(range(60_000))
    # Each row, wherever it landed, is the row of its id: gathered from the right piece.
    expected = pq.read_table(path).take(pa.array(ids))
    assert_same_content(without_dictionaries(got), without_dictionaries(expected))


def test_basic_parquet_holds_the_first_100_rows_of_basic_arrow(zenith, data_dir):
    got, sizes = zenith_read(zenith, data_dir / "basic.parquet", batch_size=64)

    assert sizes == [64, 36]
    assert_same_content(got, pq.read_table(data_dir / "basic.parquet"))
    with pa.ipc.open_file(data_dir / "basic.arrow") as reader:
        arrow = reader.read_all().slice(0, 100)
    assert got.column("id").equals(arrow.column("id"))
    assert got.column("name").equals(arrow.column("name"))


def test_parquet_schema_is_pyarrows(zenith, data_dir):
    path = data_dir / "parquet" / "basic.snappy.parquet"
    c_schema = zenith.open(path).schema()  # keep the struct alive while pyarrow imports it
    schema = pa.Schema._import_from_c(addressof(c_schema))
    assert schema.equals(pq.read_schema(path))
    assert schema.field("label").type == pa.int32(), "the embedded Arrow schema is honoured"


# ---- Parquet shards: a directory and a glob ---------------------------------------------------


def shard_files(data_dir) -> list:
    return sorted(glob.glob(str(data_dir / "shards" / "*" / "part-*.parquet")))


def test_shard_directory_equals_its_files_in_sorted_order(zenith, data_dir):
    files = shard_files(data_dir)
    assert len(files) == 8
    expected = pa.concat_tables([pq.read_table(f) for f in files])

    got, sizes = zenith_read(zenith, data_dir / "shards", batch_size=1000)

    assert sizes == expected_batch_sizes(ROWS_IN_BASIC, 1000)
    assert_same_content(got, expected)
    # ... which is basic's rows in order.
    assert got.column("id").to_pylist() == list(range(ROWS_IN_BASIC))
    assert got.equals(pq.read_table(data_dir / "parquet" / "basic.snappy.parquet"))


def test_shard_glob_reads_the_matching_files(zenith, data_dir):
    pattern = data_dir / "shards" / "b" / "part-*.parquet"
    files = sorted(glob.glob(str(pattern)))
    assert len(files) == 4
    expected = pa.concat_tables([pq.read_table(f) for f in files])

    got, _ = zenith_read(zenith, pattern, batch_size=777)

    assert_same_content(got, expected)
    assert got.column("id")[0].as_py() == 4500


def test_shards_with_different_schemas_are_a_schema_mismatch(zenith, data_dir):
    error = open_error(zenith, data_dir / "mixed_shards")

    assert error.status == ZENITH_ERR_SCHEMA_MISMATCH
    assert "part-0.parquet" in error.message and "part-1.parquet" in error.message
    assert "label" in error.message


# ---- CSV --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, rows", [("basic.csv", ROWS_IN_BASIC), ("large.csv", ROWS_IN_LARGE_CSV)])
def test_csv_equals_pyarrow_reading(zenith, data_dir, name, rows):
    path = data_dir / name
    expected = pyarrow_csv(path)
    assert expected.num_rows == rows

    got, sizes = zenith_read(zenith, path, batch_size=CSV_CHUNK_ROWS - 1)

    assert sizes == expected_batch_sizes(rows, CSV_CHUNK_ROWS - 1)
    assert_same_content(got, expected)
    assert got.column("name").null_count == len([i for i in range(rows) if i % 7 == 3])


def test_csv_is_basic_without_the_embedding(zenith, data_dir):
    got, _ = zenith_read(zenith, data_dir / "basic.csv")
    basic = pq.read_table(data_dir / "parquet" / "basic.none.parquet")
    for name in ["id", "value", "name", "flag"]:
        assert got.column(name).equals(basic.column(name)), name
    # CSV has no int32: label is inferred as int64, with the same values.
    assert got.column("label").to_pylist() == basic.column("label").to_pylist()


@pytest.mark.parametrize(
    "name, line",
    [
        ("malformed.csv", "line 5"),  # one field too many
        ("bad_value.csv", "line 1502"),  # not an integer, past the inference sample
    ],
)
def test_bad_csv_is_a_format_error_naming_file_and_line(zenith, data_dir, name, line):
    error = open_error(zenith, data_dir / name)

    assert error.status == ZENITH_ERR_FORMAT
    assert name in error.message
    assert line in error.message


# ---- Arrow IPC stream -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["basic.arrows", "dictionary.arrows"])
@pytest.mark.parametrize("batch_size", [7, 1000, 1024, 20_000])
def test_ipc_stream_equals_pyarrow_reading(zenith, data_dir, name, batch_size):
    path = data_dir / name
    expected = pyarrow_stream(path)

    got, sizes = zenith_read(zenith, path, batch_size=batch_size)

    assert sizes == expected_batch_sizes(expected.num_rows, batch_size)
    assert got.schema.equals(expected.schema)
    # Dictionaries may be re-encoded when batches are stitched: compare the values.
    for column, expected_column in zip(got.columns, expected.columns):
        assert column.to_pylist() == expected_column.to_pylist()


def test_ipc_stream_equals_the_ipc_file_of_the_same_table(zenith, data_dir):
    got, _ = zenith_read(zenith, data_dir / "basic.arrows", batch_size=4096)
    with pa.ipc.open_file(data_dir / "basic.arrow") as reader:
        assert_same_content(got, reader.read_all())


# ---- broken files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["truncated.parquet", "corrupt_footer.parquet", "truncated.arrows", "corrupt.arrows"],
)
def test_broken_file_is_a_format_error_naming_it(zenith, data_dir, name):
    error = open_error(zenith, data_dir / name)

    assert error.status == ZENITH_ERR_FORMAT
    assert name in error.message


def test_corrupt_row_group_fails_the_stream_with_the_file_name(zenith, data_dir):
    # corrupt.parquet's footer is intact (so it opens), but row group 0's pages are garbage: the
    # first batch fails, through the C stream's error channel, and names the file.
    stream = zenith.open(data_dir / "corrupt.parquet", batch_size=500).export_stream()
    reader = pa.RecordBatchReader._import_from_c(addressof(stream))

    with pytest.raises(pa.ArrowException) as info:
        reader.read_next_batch()

    assert "corrupt.parquet" in str(info.value)
    assert "row group 0" in str(info.value)
