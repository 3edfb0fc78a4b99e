"""No leak of loaders, batches, tensors or streams: 1,000 open/iterate/close cycles keep the
resident set size and the thread count flat."""

from __future__ import annotations

import gc
import os
import threading

import numpy as np
import pyarrow as pa
import pytest

import zenith
from conftest import make_table, write_ipc

CYCLES = 1000
WARMUP = 150
ROWS = 20_000
# A leaked batch per cycle would add ~40 MB over the measured cycles, a leaked epoch gigabytes.
ALLOWED_GROWTH = 16 << 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    table = make_table(ROWS).select(["id", "value", "embedding", "flag", "name"])
    return write_ipc(table, tmp_path_factory.mktemp("leak") / "leak.arrow", batch_rows=4096)


def cycle(path, k: int) -> int:
    """One open/iterate/close cycle; every fourth mode leaves the cleanup to the garbage
    collector, and each exercises another export."""
    mode = k % 4
    rows = 0
    if mode == 0:  # pyarrow batches, closed by `with`
        with zenith.Loader(path, batch_size=1000, num_workers=2, seed=k) as loader:
            rows = sum(b.num_rows for b in loader)
    elif mode == 1:  # DLPack tensors into numpy, some never imported; loader closed explicitly
        loader = zenith.Loader(path, batch_size=1000, num_workers=2, columns=["id", "embedding", "flag"], output="dlpack")
        for tensors in loader:
            rows += np.from_dlpack(tensors["id"]).shape[0]
            np.from_dlpack(tensors["flag"])
        loader.close()
    elif mode == 2:  # the stream, read half, then an unconsumed capsule; no close(): __del__
        loader = zenith.Loader(path, batch_size=1000, num_workers=1, shuffle=False)
        reader = pa.RecordBatchReader.from_stream(loader)
        for _ in range(10):
            rows += reader.read_next_batch().num_rows
        loader.__arrow_c_stream__()
        rows += ROWS - 10_000
    else:  # owned batches and their Arrow capsules, resume state; abandoned mid-epoch
        loader = zenith.Loader(path, batch_size=2000, num_workers=2)
        for _ in range(3):
            batch = loader.next_batch()
            pa.record_batch(batch)
            batch.__arrow_c_array__()  # unconsumed capsules
        state = loader.state_dict()
        loader.load_state_dict(state)
        rows = ROWS
    return rows


def test_a_thousand_cycles_leak_nothing(dataset):
    baseline_threads = threads()
    for k in range(WARMUP):
        assert cycle(dataset, k) == ROWS
    gc.collect()
    before = rss_bytes()
    for k in range(WARMUP, CYCLES):
        assert cycle(dataset, k) == ROWS
    gc.collect()
    after = rss_bytes()
    growth = after - before
    print(f"RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB over {CYCLES - WARMUP} cycles")
    assert growth < ALLOWED_GROWTH, f"RSS grew {growth / 2**20:.1f} MiB over {CYCLES - WARMUP} cycles"
    assert threads() <= baseline_threads + 1, "worker threads left behind"
    assert threading.active_count() >= 1
