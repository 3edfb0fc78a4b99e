"""The placement and I/O options reach the library from Python (io_backend, io_direct,
numa_node, near_gpu), and stats() carries every field of zenith_stats."""

from __future__ import annotations

import pytest

import zenith
from zenith import _lib
from conftest import ROWS


def ids_of(loader) -> list:
    return [i for b in loader for i in b.column("id").to_pylist()]


@pytest.mark.parametrize("backend", ["mmap", "pread", "io_uring"])
def test_io_backend_reaches_the_library_and_changes_no_rows(data, backend, monkeypatch):
    monkeypatch.delenv("ZENITH_IO_BACKEND", raising=False)
    with zenith.Loader(data["parquet"], batch_size=1000, shuffle=False, columns=["id"], io_backend=backend) as loader:
        assert ids_of(loader) == list(range(ROWS))
        stats = loader.stats()
    assert stats["io_backend_requested"] == backend
    # io_uring may be refused by the kernel or seccomp: then pread reads, and the loader says why.
    if stats["io_backend"] != backend:
        assert (backend, stats["io_backend"]) == ("io_uring", "pread")
        assert stats["io_fallback_reason"]
    else:
        assert stats["io_fallback_reason"] is None
    if backend != "mmap":
        assert stats["io_read_bytes"] > 0


def test_io_direct_reads_the_same_rows(data, monkeypatch):
    monkeypatch.delenv("ZENITH_IO_BACKEND", raising=False)
    with zenith.Loader(data["parquet"], batch_size=1000, shuffle=False, columns=["id"], io_backend="pread", io_direct=True) as loader:
        assert ids_of(loader) == list(range(ROWS))
        reason = loader.io_fallback_reason()
        # A file system that refuses O_DIRECT (tmpfs) is read through the page cache, and says so.
        assert reason is None or "O_DIRECT" in reason or "direct" in reason.lower()


def test_numa_node_places_the_workers(data):
    node = zenith.topology()["numa_nodes"][0]["id"]
    with zenith.Loader(data["arrow"], batch_size=1000, num_workers=2, numa_node=node) as loader:
        assert len(ids_of(loader)) == ROWS
        stats = loader.stats()
    assert stats["numa_node"] == node
    # Workers pin themselves as they start: after an epoch at least the one that built batches.
    assert 1 <= stats["pinned_workers"] <= 2
    with zenith.Loader(data["arrow"], batch_size=1000, numa_node=-1) as loader:
        assert loader.stats()["numa_node"] == -1
        assert loader.stats()["pinned_workers"] == 0


def test_near_gpu(data):
    gpus = zenith.topology()["gpus"]
    if not gpus:  # this machine: naming a GPU that is not there fails the open, clearly
        with pytest.raises(zenith.InvalidArgumentError, match="no GPU"):
            zenith.Loader(data["arrow"], near_gpu=0)
        with pytest.raises(zenith.InvalidArgumentError, match="0000:3b:00.0"):
            zenith.Loader(data["arrow"], near_gpu="0000:3b:00.0")
        return
    with zenith.Loader(data["arrow"], near_gpu=0) as by_index:
        node = by_index.stats()["numa_node"]
    with zenith.Loader(data["arrow"], near_gpu=gpus[0]["pci_address"]) as by_address:
        assert by_address.stats()["numa_node"] == node == max(gpus[0]["numa_node"], -1)


def test_bad_placement_arguments(data):
    for kwargs, match in [
        ({"io_backend": "aio"}, "io_backend"),
        ({"io_direct": 1}, "io_direct"),
        ({"numa_node": -2}, "numa_node"),
        ({"numa_node": 0, "near_gpu": 0}, "not both"),
        ({"near_gpu": -1}, "near_gpu"),
        ({"near_gpu": "not a pci address"}, "PCI address"),
    ]:
        with pytest.raises(zenith.InvalidArgumentError, match=match):
            zenith.Loader(data["arrow"], **kwargs)


def test_stats_carry_every_field_of_zenith_stats(data):
    with zenith.Loader(data["arrow"], batch_size=1000) as loader:
        next(iter(loader))
        stats = loader.stats()
    fields = {name for name, _ in _lib.zenith_stats._fields_} - {"struct_size", "shuffle_mode"}
    assert fields <= set(stats), fields - set(stats)
    assert {"shuffle", "shuffle_downgraded", "io_fallback_reason"} <= set(stats)
    assert stats["rows"] == 1000 and stats["batches"] == 1
    assert stats["rank"] == 0 and stats["world_size"] == 1
    assert stats["io_backend"] in ("mmap", "pread", "io_uring")
