"""Remote datasets against a real S3 server (versitygw, see conftest.py): what Zenith reads from
``s3://`` equals what pyarrow reads from the same objects through ``pyarrow.fs.S3FileSystem``;
shuffles, shards and resumes behave as on local files; failures are clear errors; an outage
within the retry deadline loses nothing.
"""

import threading
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.ipc as paipc
import pyarrow.parquet as pq
import pytest

import zenith
from conftest import BUCKET

ROWS_PER_FILE = 60_000
FILES = 3


def make_table(start, rows):
    ids = pa.array(range(start, start + rows), pa.int64())
    return pa.table(
        {
            "id": ids,
            "value": pa.array([i * 0.5 for i in range(start, start + rows)], pa.float64()),
            "label": pa.array([f"row-{i % 97}" for i in range(start, start + rows)]),
        }
    )


@pytest.fixture(scope="session")
def dataset(s3fs, tmp_path_factory):
    """Three Parquet files (row groups of 10,000 rows, ~100 KB each: past the tail fetched at
    open, so row groups come by ranged GETs) under pq/, the same rows as an Arrow IPC
    file, an IPC stream and CSV, and a local copy of pq/ for the comparisons."""
    local = tmp_path_factory.mktemp("local_pq")
    for i in range(FILES):
        table = make_table(i * ROWS_PER_FILE, ROWS_PER_FILE)
        pq.write_table(table, f"{BUCKET}/pq/part-{i}.parquet", filesystem=s3fs, row_group_size=10_000)
        pq.write_table(table, local / f"part-{i}.parquet", row_group_size=10_000)
    # Noise a listing must skip.
    with s3fs.open_output_stream(f"{BUCKET}/pq/_SUCCESS") as f:
        f.write(b"")
    pq.write_table(make_table(0, 10), f"{BUCKET}/nested/a/x.parquet", filesystem=s3fs)
    pq.write_table(make_table(10, 10), f"{BUCKET}/nested/b/c/y.parquet", filesystem=s3fs)
    table = make_table(0, 5_000)
    with s3fs.open_output_stream(f"{BUCKET}/formats/t.arrow") as f:
        with paipc.new_file(f, table.schema) as w:
            for batch in table.to_batches(max_chunksize=700):
                w.write_batch(batch)
    with s3fs.open_output_stream(f"{BUCKET}/formats/t.arrows") as f:
        with paipc.new_stream(f, table.schema) as w:
            for batch in table.to_batches(max_chunksize=700):
                w.write_batch(batch)
    with s3fs.open_output_stream(f"{BUCKET}/formats/t.csv") as f:
        pacsv.write_csv(table, f)
    # A truncated Parquet file: the first half of a good one.
    with s3fs.open_input_file(f"{BUCKET}/pq/part-0.parquet") as f:
        whole = f.read()
    with s3fs.open_output_stream(f"{BUCKET}/broken/half.parquet") as f:
        f.write(whole[: len(whole) // 2])
    # Many row groups for the outage tests.
    pq.write_table(make_table(0, 40_000), f"{BUCKET}/long/l.parquet", filesystem=s3fs, row_group_size=500)
    return local


def read_all(loader):
    batches = list(loader)
    return pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None


def pyarrow_read(s3fs, prefix):
    files = sorted(
        i.path for i in s3fs.get_file_info(pa.fs.FileSelector(f"{BUCKET}/{prefix}", recursive=True))
        if i.is_file and i.path.endswith(".parquet")
    )
    return pads.dataset(files, filesystem=s3fs, format="parquet").to_table()


def test_a_prefix_reads_as_pyarrow_reads_it(dataset, s3fs, options):
    loader = zenith.Loader(f"s3://{BUCKET}/pq/", batch_size=1000, shuffle=False, storage_options=options)
    assert len(loader) == FILES * ROWS_PER_FILE // 1000
    got = read_all(loader)
    expected = pyarrow_read(s3fs, "pq")
    assert got.equals(expected.cast(got.schema))


def test_globs_and_projections(dataset, s3fs, options):
    got = read_all(zenith.Loader(f"s3://{BUCKET}/pq/part-[12].parquet", batch_size=999, shuffle=False,
                                 storage_options=options, columns=["label", "id"]))
    assert got.column("id").to_pylist() == list(range(ROWS_PER_FILE, 3 * ROWS_PER_FILE))
    assert got.column_names == ["label", "id"]
    nested = read_all(zenith.Loader(f"s3://{BUCKET}/nested/**/*.parquet", shuffle=False, storage_options=options))
    assert nested.column("id").to_pylist() == list(range(20))
    one_level = read_all(zenith.Loader(f"s3://{BUCKET}/nested/*/*.parquet", shuffle=False, storage_options=options))
    assert one_level.column("id").to_pylist() == list(range(10))


@pytest.mark.parametrize("name", ["t.arrow", "t.arrows", "t.csv"])
def test_ipc_files_streams_and_csv(dataset, s3fs, options, name):
    got = read_all(zenith.Loader(f"s3://{BUCKET}/formats/{name}", batch_size=512, shuffle=False,
                                 storage_options=options))
    expected = make_table(0, 5_000)
    assert got.column("id").to_pylist() == expected.column("id").to_pylist()
    assert got.column("label").to_pylist() == expected.column("label").to_pylist()
    assert got.column("value").to_pylist() == expected.column("value").to_pylist()


def test_shuffles_shards_and_resume_match_local_files(dataset, options):
    remote = f"s3://{BUCKET}/pq/"
    kw = dict(batch_size=700, shuffle=True, seed=7, num_workers=2)
    local_batches = [b.column("id").to_pylist() for b in zenith.Loader(str(dataset), **kw)]
    remote_batches = [b.column("id").to_pylist() for b in zenith.Loader(remote, storage_options=options, **kw)]
    assert remote_batches == local_batches
    assert sorted(i for b in remote_batches for i in b) == list(range(FILES * ROWS_PER_FILE))

    shards = [
        [i for b in zenith.Loader(remote, storage_options=options, shard=(r, 2), **kw) for i in b.column("id").to_pylist()]
        for r in range(2)
    ]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(FILES * ROWS_PER_FILE))

    loader = zenith.Loader(remote, storage_options=options, **kw)
    it = iter(loader)
    head = [next(it).column("id").to_pylist() for _ in range(5)]
    state = loader.state_dict()
    loader.close()
    resumed = zenith.Loader(remote, storage_options=options, **kw)
    resumed.load_state_dict(state)
    rest = [b.column("id").to_pylist() for b in resumed]
    assert head + rest == remote_batches


def test_wrong_credentials_are_a_clear_error(dataset, options):
    bad = dict(options, secret_access_key="wrong")
    with pytest.raises(zenith.ZenithError) as e:
        zenith.Loader(f"s3://{BUCKET}/pq/", storage_options=bad)
    assert e.value.code == zenith.Status.ERR_IO, e.value
    assert "403" in str(e.value), e.value


def test_missing_bucket_and_key_are_not_found(dataset, options):
    with pytest.raises(FileNotFoundError) as e:
        zenith.Loader("s3://no-such-bucket-zenith/pq/", storage_options=options)
    assert "no-such-bucket-zenith" in str(e.value)
    assert "404" in str(e.value), e.value
    with pytest.raises(FileNotFoundError) as e:
        zenith.Loader(f"s3://{BUCKET}/pq/missing.parquet", storage_options=options)
    assert f"s3://{BUCKET}/pq/missing.parquet" in str(e.value)
    with pytest.raises(FileNotFoundError):
        zenith.Loader(f"s3://{BUCKET}/empty-prefix/", storage_options=options)


def test_truncated_objects_and_unknown_schemes(dataset, options):
    with pytest.raises(zenith.ZenithError) as e:
        zenith.Loader(f"s3://{BUCKET}/broken/half.parquet", storage_options=options)
    assert e.value.code == zenith.Status.ERR_FORMAT
    assert "half.parquet" in str(e.value)
    with pytest.raises(zenith.ZenithError) as e:
        zenith.Loader("ftp://host/x.parquet")
    assert e.value.code == zenith.Status.ERR_UNSUPPORTED
    assert "ftp://" in str(e.value)
    with pytest.raises(zenith.ZenithError) as e:
        zenith.Loader(f"s3://{BUCKET}/pq/", storage_options={"no_such_option": "1"})
    assert e.value.code == zenith.Status.ERR_INVALID_ARGUMENT
    assert "no_such_option" in str(e.value)


def remote_counter(name):
    for line in zenith.metrics_text().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


def test_the_cache_serves_the_second_epoch_without_the_server(dataset, server, options, tmp_path):
    opts = dict(options, cache_dir=str(tmp_path / "cache"), cache_max_bytes=1 << 30)
    loader = zenith.Loader(f"s3://{BUCKET}/pq/", batch_size=1000, shuffle=True, storage_options=opts)
    first = sorted(i for b in loader for i in b.column("id").to_pylist())
    assert any((tmp_path / "cache").iterdir())
    requests = remote_counter("zenith_remote_requests_total")
    hits = remote_counter("zenith_remote_cache_hits_total")
    server.stop()
    try:
        second = sorted(i for b in loader for i in b.column("id").to_pylist())
    finally:
        server.start()
    assert second == first == list(range(FILES * ROWS_PER_FILE))
    assert remote_counter("zenith_remote_requests_total") == requests
    assert remote_counter("zenith_remote_cache_hits_total") > hits


def test_a_server_gone_mid_epoch_is_an_error_naming_the_object(dataset, server, options):
    opts = dict(options, retries=4, retry_timeout=2)
    loader = zenith.Loader(f"s3://{BUCKET}/long/l.parquet", batch_size=500, shuffle=False,
                           num_workers=1, prefetch=1, storage_options=opts)
    it = iter(loader)
    for _ in range(3):
        next(it)
    retries = remote_counter("zenith_remote_retries_total")
    server.stop()
    try:
        with pytest.raises(zenith.ZenithError) as e:
            for _ in it:
                pass
    finally:
        server.start()
    assert e.value.code == zenith.Status.ERR_IO, e.value
    assert f"s3://{BUCKET}/long/l.parquet" in str(e.value)
    assert "retries" in str(e.value) and "no HTTP response" in str(e.value), e.value
    assert remote_counter("zenith_remote_retries_total") > retries


def test_a_server_back_within_the_deadline_loses_nothing(dataset, server, options):
    opts = dict(options, retries=100, retry_timeout=60)
    loader = zenith.Loader(f"s3://{BUCKET}/long/l.parquet", batch_size=500, shuffle=True, seed=3,
                           num_workers=2, prefetch=2, storage_options=opts)
    it = iter(loader)
    seen = []
    for _ in range(3):
        seen += next(it).column("id").to_pylist()
    server.stop()
    restart = threading.Timer(2.0, server.start)
    restart.start()
    try:
        for batch in it:
            seen += batch.column("id").to_pylist()
    finally:
        restart.join()
    assert sorted(seen) == list(range(40_000))


def test_an_object_overwritten_mid_epoch_is_an_error_naming_it(dataset, s3fs, options):
    """The footer's ETag is pinned at open; later ranged GETs send If-Match, so a version
    written mid-epoch is a clear error, never its row groups decoded with the old footer."""
    key = f"{BUCKET}/overwrite/o.parquet"
    pq.write_table(make_table(0, 40_000), key, filesystem=s3fs, row_group_size=500)
    url = f"s3://{key}"
    loader = zenith.Loader(url, batch_size=500, shuffle=False, num_workers=1, prefetch=1, storage_options=options)
    it = iter(loader)
    assert next(it).column("id").to_pylist() == list(range(500))
    next(it)
    pq.write_table(make_table(1_000_000, 40_000), key, filesystem=s3fs, row_group_size=500)
    with pytest.raises(zenith.ZenithError) as e:
        for batch in it:
            assert batch.column("id").to_pylist()[0] < 1_000_000, "bytes of the new version were read"
    assert e.value.code == zenith.Status.ERR_IO, e.value
    assert url in str(e.value), e.value
    assert "changed since it was opened" in str(e.value) and "412" in str(e.value), e.value
    # Opened again, the new version reads whole.
    again = [i for b in zenith.Loader(url, batch_size=4000, shuffle=False, storage_options=options)
             for i in b.column("id").to_pylist()]
    assert again == list(range(1_000_000, 1_040_000))


def test_inspect_reads_a_remote_dataset_from_its_footers(dataset, s3fs, server, options):
    import json
    import os
    import pathlib
    import subprocess

    zenith_bin = pathlib.Path(os.environ["ZENITH_LIBRARY"]).parent / "zenith"
    words = [f"--storage-option={k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items()]
    out = subprocess.run([str(zenith_bin), "inspect", f"s3://{BUCKET}/pq/", "--json", *words],
                         check=True, capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout)
    assert report["format"] == "parquet"
    assert report["rows"] == FILES * ROWS_PER_FILE
    assert report["chunks"]["count"] == FILES * ROWS_PER_FILE // 10_000
    sizes = {i.path.rsplit("/", 1)[1]: i.size for i in
             s3fs.get_file_info(pa.fs.FileSelector(f"{BUCKET}/pq")) if i.path.endswith(".parquet")}
    listed = {f["relative_path"]: f["bytes"] for f in report["files"]["list"]}
    assert listed == sizes
    columns = {c["name"]: c for c in report["schema"]}
    assert columns["id"]["nulls"] == 0 and columns["id"]["compression"] == ["snappy"]
    assert columns["id"]["dlpack"]["exportable"]
    # A wrong secret: the command fails naming the status.
    bad = [w for w in words if "secret_access_key" not in w] + ["-o", "secret_access_key=wrong"]
    failed = subprocess.run([str(zenith_bin), "inspect", f"s3://{BUCKET}/pq/", *bad],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert "403" in failed.stderr, failed.stderr
