"""Telemetry and I/O backends through the C API, checked by real clients.

* zenith_telemetry_prometheus's text is parsed by prometheus_client's own parser
  (text_string_to_metric_families), and the server started by zenith_telemetry_serve is scraped
  over loopback with urllib.
* Parquet read with ZENITH_IO_MMAP, ZENITH_IO_URING and ZENITH_IO_PREAD (and O_DIRECT) gives
  batches pyarrow finds identical; ZENITH_IO_BACKEND=pread forces the fallback, and the stats say
  so.

The functions are called through conftest's library (every signature from the binding's
zenith._lib, the one ctypes mirror of the header); `Lib` adds the calling conventions used here.
"""

import ctypes
import math
import os
import urllib.error
import urllib.request
from ctypes import byref, c_size_t

import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    ZENITH_ERR_BUFFER_TOO_SMALL,
    ZENITH_IO_MMAP,
    ZENITH_IO_PREAD,
    ZENITH_IO_URING,
    ZENITH_OK,
    ZENITH_SHUFFLE_GLOBAL,
    ArrowArrayStream,
    ErrorPtr,
    LoaderPtr,
    OptionsPtr,
    ServerPtr,
    load_library,
)
from conftest import ZenithStats as Stats

BACKEND_NAMES = {ZENITH_IO_MMAP: "mmap", ZENITH_IO_URING: "io_uring", ZENITH_IO_PREAD: "pread"}


class Lib:
    """libzenith (conftest.load_library); `call` raises on a negative status."""

    def __init__(self):
        self.dll = load_library()

    def call(self, name, *args):
        err = ErrorPtr()
        status = getattr(self.dll, name)(*args, byref(err))
        if status < 0:
            message = self.dll.zenith_error_message(err).decode()
            self.dll.zenith_error_free(err)
            raise RuntimeError(f"{name}: status {status}: {message}")
        assert not err
        return status

    def text_into_buffer(self, name, *args) -> str:
        """The size-query-then-fill protocol of functions writing text into a caller buffer."""
        length = c_size_t()
        err = ErrorPtr()
        status = getattr(self.dll, name)(*args, None, 0, byref(length), byref(err))
        # Even an empty text needs one byte, for its NUL.
        assert status == ZENITH_ERR_BUFFER_TOO_SMALL, status
        assert self.dll.zenith_error_code(err) == ZENITH_ERR_BUFFER_TOO_SMALL
        self.dll.zenith_error_free(err)
        cap = length.value + 1 + 65536  # metrics may grow between the two calls
        buffer = ctypes.create_string_buffer(cap)
        self.call(name, *args, buffer, cap, byref(length))
        assert buffer.raw[length.value] == 0, "NUL-terminated"
        return buffer.raw[: length.value].decode("utf-8")

    def metrics_text(self) -> str:
        """What `zenith.metrics_text()` returns in the Python package."""
        return self.text_into_buffer("zenith_telemetry_prometheus")

    def read(self, path, backend=ZENITH_IO_MMAP, direct=False, shuffle=ZENITH_SHUFFLE_GLOBAL, workers=2):
        """(table, stats, fallback reason) of one epoch of `path`, imported by pyarrow."""
        opts = OptionsPtr()
        assert self.dll.zenith_loader_options_new(byref(opts)) == ZENITH_OK
        loader = LoaderPtr()
        try:
            self.call("zenith_loader_options_set_batch_size", opts, 999)
            self.call("zenith_loader_options_set_shuffle", opts, shuffle)
            self.call("zenith_loader_options_set_seed", opts, 42)
            self.call("zenith_loader_options_set_num_workers", opts, workers)
            self.call("zenith_loader_options_set_io_backend", opts, backend)
            self.call("zenith_loader_options_set_io_direct", opts, direct)
            self.call("zenith_loader_open", os.fsencode(path), opts, byref(loader))
        finally:
            self.dll.zenith_loader_options_free(opts)
        try:
            stream = ArrowArrayStream()
            self.call("zenith_loader_export_stream", loader, byref(stream))
            table = pa.RecordBatchReader._import_from_c(ctypes.addressof(stream)).read_all()
            stats = Stats(struct_size=ctypes.sizeof(Stats))
            self.call("zenith_loader_stats", loader, byref(stats))
            reason = self.text_into_buffer_or_empty(loader)
        finally:
            self.dll.zenith_loader_free(loader)
        return table, stats, reason

    def text_into_buffer_or_empty(self, loader) -> str:
        length = c_size_t()
        buffer = ctypes.create_string_buffer(4096)
        self.call("zenith_loader_io_fallback_reason", loader, buffer, 4096, byref(length))
        return buffer.raw[: length.value].decode()


@pytest.fixture(scope="module")
def z():
    return Lib()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family) -> dict:
    """{(sample name, frozenset of labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value for s in family.samples}


def check_histogram(family) -> None:
    """Buckets are cumulative, end with +Inf, and +Inf equals _count."""
    assert family.type == "histogram"
    by_labels = {}
    for s in family.samples:
        key = frozenset((k, v) for k, v in s.labels.items() if k != "le")
        by_labels.setdefault(key, []).append(s)
    assert by_labels, family.name
    for key, group in by_labels.items():
        buckets = [(float(s.labels["le"]), s.value) for s in group if s.name.endswith("_bucket")]
        assert buckets == sorted(buckets), f"{family.name}: buckets in increasing le order"
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"{family.name}{dict(key)}: cumulative"
        assert math.isinf(buckets[-1][0]), "the last bucket is +Inf"
        count = next(s.value for s in group if s.name == family.name + "_count")
        assert buckets[-1][1] == count
        assert any(s.name == family.name + "_sum" for s in group)


def test_prometheus_text_parses_with_prometheus_client(z, data_dir):
    table, _, _ = z.read(data_dir / "parquet" / "basic.snappy.parquet", ZENITH_IO_PREAD)
    text = z.metrics_text()
    parsed = families(text)

    assert all(name.startswith("zenith_") for name in parsed), sorted(parsed)
    types = {name: f.type for name, f in parsed.items()}
    # prometheus_client names counter families without their `_total` suffix.
    for name in ["zenith_loader_rows", "zenith_loader_batches", "zenith_loader_bytes",
                 "zenith_loader_worker_busy_seconds", "zenith_io_read_bytes"]:
        assert types[name] == "counter", name
    for name in ["zenith_loader_queue_depth", "zenith_loaders_open", "zenith_build_info"]:
        assert types[name] == "gauge", name
    for name in ["zenith_loader_time_to_first_batch_seconds", "zenith_loader_consumer_wait_seconds",
                 "zenith_io_read_seconds"]:
        check_histogram(parsed[name])

    rows = samples(parsed["zenith_loader_rows"])[("zenith_loader_rows_total", frozenset())]
    assert rows >= table.num_rows
    read = samples(parsed["zenith_io_read_bytes"])
    assert {dict(labels)["backend"] for _, labels in read} == {"io_uring", "pread", "mmap"}
    assert read[("zenith_io_read_bytes_total", frozenset({("backend", "pread")}))] > 0
    assert samples(parsed["zenith_loader_queue_depth"])[("zenith_loader_queue_depth", frozenset())] >= 0


def test_the_text_reports_its_size_when_the_buffer_is_too_small(z):
    length, err = c_size_t(), ErrorPtr()
    small = ctypes.create_string_buffer(16)
    status = z.dll.zenith_telemetry_prometheus(small, 16, byref(length), byref(err))
    assert status == ZENITH_ERR_BUFFER_TOO_SMALL
    assert b"buffer too small" in z.dll.zenith_error_message(err)
    z.dll.zenith_error_free(err)
    assert length.value > 16
    assert small.raw == b"\0" * 16, "nothing written"


def test_metrics_endpoint_answers_over_loopback(z, data_dir):
    server = ServerPtr()
    z.call("zenith_telemetry_serve", b"127.0.0.1:0", byref(server))
    try:
        port = z.dll.zenith_telemetry_server_port(server)
        assert port > 0
        z.read(data_dir / "parquet" / "basic.zstd.parquet", ZENITH_IO_URING)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            body = response.read().decode("utf-8")
        parsed = families(body)
        check_histogram(parsed["zenith_io_read_seconds"])
        assert samples(parsed["zenith_loader_batches"])[("zenith_loader_batches_total", frozenset())] > 0

        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert info.value.code == 404
    finally:
        z.dll.zenith_telemetry_server_free(server)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)


PARQUET = ["parquet/basic.snappy.parquet", "parquet/basic.gzip.parquet", "parquet/basic.none.parquet", "shards"]


@pytest.mark.parametrize("name", PARQUET)
def test_every_io_backend_delivers_identical_batches(z, data_dir, name):
    expected, stats, reason = z.read(data_dir / name, ZENITH_IO_MMAP)
    assert (stats.io_backend, reason) == (ZENITH_IO_MMAP, "")
    assert expected.num_rows > 0
    for backend in (ZENITH_IO_URING, ZENITH_IO_PREAD):
        for direct in (False, True):
            got, stats, reason = z.read(data_dir / name, backend, direct)
            assert got.equals(expected), (name, BACKEND_NAMES[backend], direct)
            assert stats.io_backend_requested == backend
            assert stats.io_read_bytes > 0 and stats.io_read_ns > 0
            if backend == ZENITH_IO_URING and stats.io_backend == ZENITH_IO_PREAD:
                # Only where the kernel refuses io_uring; the reason says why.
                print(f"NOTE: io_uring unavailable here, pread used: {reason}")
                assert "pread" in reason
            else:
                assert stats.io_backend == backend, reason


def test_forced_fallback_reads_with_pread_and_says_so(z, data_dir, monkeypatch):
    path = data_dir / "parquet" / "basic.lz4.parquet"
    expected, _, _ = z.read(path, ZENITH_IO_MMAP)
    monkeypatch.setenv("ZENITH_IO_BACKEND", "pread")
    got, stats, reason = z.read(path, ZENITH_IO_URING)
    assert got.equals(expected)
    assert stats.io_backend_requested == ZENITH_IO_URING
    assert stats.io_backend == ZENITH_IO_PREAD
    assert "ZENITH_IO_BACKEND=pread overrides the loader option (io_uring)" in reason

    monkeypatch.setenv("ZENITH_IO_BACKEND", "carrier-pigeon")
    with pytest.raises(RuntimeError, match="ZENITH_IO_BACKEND"):
        z.read(path, ZENITH_IO_URING)
