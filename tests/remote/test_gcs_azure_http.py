"""Remote datasets on Google Cloud Storage, Azure Blob Storage and plain HTTP, against real local
servers (see conftest.py): fake-gcs-server for ``gs://``, Azurite for ``az://`` and WsgiDAV for
``http://`` (Range, ETag/If-Match and WebDAV PROPFIND listings). Files are written with pyarrow's
own filesystems (``GcsFileSystem``, ``AzureFileSystem``; the WebDAV server's directory for
HTTP), and what Zenith reads equals what pyarrow reads back; globs, errors naming the object,
shuffles and exact resume as on local files, an object replaced mid-epoch; lists of paths mixing
local files and several stores.
"""

import datetime
import functools
import http.server
import threading

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import zenith
from conftest import BUCKET, running

ROWS = 20_000
FILES = 2
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def make_table(start, rows):
    return pa.table(
        {
            "id": pa.array(range(start, start + rows), pa.int64()),
            "value": pa.array([i * 0.25 for i in range(start, start + rows)], pa.float64()),
            "label": pa.array([f"r{i % 89}" for i in range(start, start + rows)]),
        }
    )


class Store:
    """One store under test: Zenith's URL base and storage options, and a pyarrow filesystem
    on the same objects (``root`` is the bucket, container or directory in it)."""

    def __init__(self, name, base, options, fs, root, server):
        self.name, self.base, self.options, self.fs, self.root = name, base, options, fs, root
        self.server = server
        self.local = None  # a local copy of pq/, for comparisons

    def write(self, key, table, **kw):
        if self.name == "http":  # a directory of the WebDAV server: parents first
            self.fs.create_dir(f"{self.root}/{key}".rsplit("/", 1)[0], recursive=True)
        pq.write_table(table, f"{self.root}/{key}", filesystem=self.fs, **kw)

    def read(self, key):
        return pq.read_table(f"{self.root}/{key}", filesystem=self.fs)


def fill(store, local):
    """Two Parquet files under pq/ (row groups of 2,500 rows: past the tail read at open), a
    local copy of them, nested files for globs, noise a listing skips."""
    for i in range(FILES):
        table = make_table(i * ROWS, ROWS)
        store.write(f"pq/part-{i}.parquet", table, row_group_size=2_500)
        pq.write_table(table, local / f"part-{i}.parquet", row_group_size=2_500)
    store.local = local
    store.write("nested/a/x.parquet", make_table(0, 10))
    store.write("nested/b/c/y.parquet", make_table(10, 10))
    with store.fs.open_output_stream(f"{store.root}/pq/_SUCCESS") as f:
        f.write(b"")
    return store


@pytest.fixture(scope="session")
def gcs_store(tmp_path_factory):
    server = running("gcs", fresh=True)
    fs = pafs.GcsFileSystem(anonymous=True, scheme="http", endpoint_override=f"127.0.0.1:{server.port}",
                            project_id="zenith-test", retry_time_limit=datetime.timedelta(seconds=10))
    fs.create_dir(BUCKET)
    options = {"endpoint": server.endpoint, "skip_signature": True, "retries": 2, "retry_timeout": 5}
    yield fill(Store("gs", f"gs://{BUCKET}", options, fs, BUCKET, server), tmp_path_factory.mktemp("gs"))
    server.stop()


@pytest.fixture(scope="session")
def azure_store(tmp_path_factory):
    server = running("azurite", fresh=True)
    fs = pafs.AzureFileSystem(account_name=AZURITE_ACCOUNT, account_key=AZURITE_KEY,
                              blob_storage_authority=f"127.0.0.1:{server.port}", blob_storage_scheme="http",
                              dfs_storage_authority=f"127.0.0.1:{server.port}", dfs_storage_scheme="http")
    fs.create_dir(BUCKET)
    # The emulator flag with the emulator's address: its well-known account and key by default.
    options = {"use_emulator": True, "endpoint": server.endpoint, "retries": 2, "retry_timeout": 5}
    yield fill(Store("az", f"az://{BUCKET}", options, fs, BUCKET, server), tmp_path_factory.mktemp("az"))
    server.stop()


@pytest.fixture(scope="session")
def http_store(tmp_path_factory):
    server = running("webdav", fresh=True)
    (server.data / BUCKET).mkdir(parents=True, exist_ok=True)
    fs = pafs.SubTreeFileSystem(str(server.data), pafs.LocalFileSystem())
    options = {"retries": 2, "retry_timeout": 5}
    base = f"{server.endpoint}/{BUCKET}"
    yield fill(Store("http", base, options, fs, BUCKET, server), tmp_path_factory.mktemp("http"))
    server.stop()


@pytest.fixture(params=["gs", "az", "http"])
def store(request):
    return request.getfixturevalue({"gs": "gcs_store", "az": "azure_store", "http": "http_store"}[request.param])


def read_all(loader):
    batches = list(loader)
    return pa.Table.from_batches(batches, schema=batches[0].schema)


def ids(loader):
    return [b.column("id").to_pylist() for b in loader]


def test_a_prefix_reads_as_pyarrow_reads_it(store):
    loader = zenith.Loader(f"{store.base}/pq/", batch_size=1000, shuffle=False, storage_options=store.options)
    assert len(loader) == FILES * ROWS // 1000
    got = read_all(loader)
    expected = pa.concat_tables([store.read(f"pq/part-{i}.parquet") for i in range(FILES)])
    assert got.equals(expected.cast(got.schema))


def test_globs_and_single_objects(store):
    opts = store.options
    one = read_all(zenith.Loader(f"{store.base}/pq/part-1.parquet", shuffle=False, storage_options=opts))
    assert one.column("id").to_pylist() == list(range(ROWS, 2 * ROWS))
    globbed = read_all(zenith.Loader(f"{store.base}/pq/part-*.parquet", shuffle=False, storage_options=opts,
                                     columns=["label", "id"]))
    assert globbed.column_names == ["label", "id"]
    assert globbed.column("id").to_pylist() == list(range(FILES * ROWS))
    nested = read_all(zenith.Loader(f"{store.base}/nested/**/*.parquet", shuffle=False, storage_options=opts))
    assert nested.column("id").to_pylist() == list(range(20))
    one_level = read_all(zenith.Loader(f"{store.base}/nested/*/*.parquet", shuffle=False, storage_options=opts))
    assert one_level.column("id").to_pylist() == list(range(10))


def test_a_missing_object_is_not_found_naming_it(store):
    url = f"{store.base}/pq/missing.parquet"
    with pytest.raises(FileNotFoundError) as e:
        zenith.Loader(url, storage_options=store.options)
    assert url in str(e.value), e.value
    assert "404" in str(e.value), e.value
    with pytest.raises(FileNotFoundError):
        zenith.Loader(f"{store.base}/no-such-prefix/", storage_options=store.options)


def test_shuffles_and_exact_resume_match_local_files(store):
    kw = dict(batch_size=700, shuffle=True, seed=11, num_workers=2)
    expected = ids(zenith.Loader(str(store.local), **kw))
    remote = f"{store.base}/pq/"
    got = ids(zenith.Loader(remote, storage_options=store.options, **kw))
    assert got == expected
    loader = zenith.Loader(remote, storage_options=store.options, **kw)
    it = iter(loader)
    head = [next(it).column("id").to_pylist() for _ in range(7)]
    state = loader.state_dict()
    loader.close()
    resumed = zenith.Loader(remote, storage_options=store.options, **kw)
    resumed.load_state_dict(state)
    assert head + ids(resumed) == expected


def test_an_object_replaced_mid_epoch_is_an_error_naming_it(store):
    key = "replaced/r.parquet"
    store.write(key, make_table(0, 40_000), row_group_size=500)
    url = f"{store.base}/{key}"
    loader = zenith.Loader(url, batch_size=500, shuffle=False, num_workers=1, prefetch=1,
                           storage_options=store.options)
    it = iter(loader)
    first = [next(it).column("id").to_pylist() for _ in range(2)]
    assert first[0] == list(range(500))
    # Another version (other rows, another ETag): the rest of the epoch must not decode it.
    store.write(key, make_table(1_000_000, 40_000), row_group_size=500)
    with pytest.raises(zenith.ZenithError) as e:
        for batch in it:
            assert batch.column("id").to_pylist()[0] < 1_000_000, "bytes of the new version were read"
    assert e.value.code == zenith.Status.ERR_IO, e.value
    assert url in str(e.value) and "changed since it was opened" in str(e.value), e.value


def test_http_listings_need_webdav(http_store, tmp_path):
    """A plain web server (Python's, which answers Range but not PROPFIND) serves single files;
    listing one is refused by name, not mistaken for an empty directory."""
    pq.write_table(make_table(0, 100), tmp_path / "a.parquet")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        with pytest.raises(zenith.ZenithError) as e:
            zenith.Loader(f"{base}/", storage_options={"retries": 0})
        assert e.value.code == zenith.Status.ERR_UNSUPPORTED, e.value
        assert "PROPFIND" in str(e.value), e.value
    finally:
        httpd.shutdown()
        thread.join()


def test_lists_of_paths_mix_local_files_and_stores(gcs_store, azure_store, http_store, tmp_path):
    local = tmp_path / "local.parquet"
    pq.write_table(make_table(-100, 100), local)
    # One set of storage options serves every store: each takes the keys of its family.
    options = {
        "endpoint": gcs_store.options["endpoint"],
        "skip_signature": True,
    }
    paths = [str(local), f"{gcs_store.base}/pq/part-1.parquet", f"{http_store.base}/nested/a/x.parquet"]
    got = read_all(zenith.Loader(paths, shuffle=False, storage_options=options))
    assert got.column("id").to_pylist() == list(range(-100, 0)) + list(range(ROWS, 2 * ROWS)) + list(range(10))
    # Azure with its own options, in a list with a local glob.
    paths = [f"{azure_store.base}/nested/b/c/y.parquet", str(tmp_path / "*.parquet")]
    got = read_all(zenith.Loader(paths, shuffle=False, storage_options=azure_store.options))
    assert got.column("id").to_pylist() == list(range(10, 20)) + list(range(-100, 0))
    with pytest.raises(zenith.ZenithError) as e:
        zenith.Loader([str(local), str(local)])
    assert "twice" in str(e.value)
