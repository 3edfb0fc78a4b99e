"""zenith.topology(), zenith.metrics_text() and zenith.MetricsServer: the CPU runtime and the
telemetry registry through the Python package."""

import os
import urllib.request

import pyarrow as pa
import pyarrow.ipc
import pytest

import zenith


def test_topology_of_this_machine_has_the_documented_shape():
    topo = zenith.topology()
    assert set(topo) >= {"numa_nodes", "cpus_online", "gpus", "nics"}
    assert topo["numa_nodes"], "at least one node"
    node = topo["numa_nodes"][0]
    assert set(node) >= {"id", "cpus", "memory_total_bytes", "memory_free_bytes", "distances", "hugepages"}
    assert set(topo["cpus_online"]) >= set(node["cpus"])
    assert len(topo["cpus_online"]) >= 1


def test_topology_of_a_fake_sysfs_tree(tmp_path):
    node = tmp_path / "devices/system/node/node0"
    node.mkdir(parents=True)
    (node / "cpulist").write_text("0-3,8-11\n")
    (node / "distance").write_text("10\n")
    (node / "meminfo").write_text("Node 0 MemTotal:       1024 kB\nNode 0 MemFree:         512 kB\n")
    cpu = tmp_path / "devices/system/cpu"
    cpu.mkdir(parents=True)
    (cpu / "online").write_text("0-3,8-11\n")
    topo = zenith.topology(sysfs_root=tmp_path)
    assert topo["numa_nodes"][0]["cpus"] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert topo["numa_nodes"][0]["memory_total_bytes"] == 1024 * 1024
    assert topo["gpus"] == [] and topo["nics"] == []


def test_missing_sysfs_root_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        zenith.topology(sysfs_root=tmp_path / "nope")


def test_metrics_count_what_loaders_delivered_and_are_served(tmp_path):
    path = os.fspath(tmp_path / "t.arrow")
    table = pa.table({"x": pa.array(range(1000), type=pa.int64())})
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)
    with zenith.Loader(path, batch_size=100, shuffle=False) as loader:
        rows = sum(batch.num_rows for batch in loader)
    assert rows == 1000
    text = zenith.metrics_text()
    assert "# TYPE zenith_loader_rows_total counter" in text
    total = [line for line in text.splitlines() if line.startswith("zenith_loader_rows_total")]
    assert total and float(total[0].split()[-1]) >= 1000
    with zenith.MetricsServer("127.0.0.1:0") as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
            body = response.read().decode()
    assert "zenith_loader_rows_total" in body


def test_freed_decode_buffers_are_kept_for_reuse_until_trimmed(tmp_path):
    # A CSV of ~4 MiB in one chunk: its decoded columns are large blocks the allocator keeps.
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{i * 2},{i * 3}\n" for i in range(200_000)))
    zenith.trim_memory()
    assert zenith.block_cache_bytes() == 0

    def one_pass():
        with zenith.Loader(str(path), batch_size=1000) as loader:
            assert sum(b.num_rows for b in loader) == 200_000

    one_pass()
    kept = zenith.block_cache_bytes()
    assert kept >= 128 * 1024, "the chunk's freed column buffers are kept"
    one_pass()  # reuses them: the cache does not grow by another chunk's worth
    assert zenith.block_cache_bytes() <= kept * 2
    assert zenith.trim_memory() >= kept
    assert zenith.block_cache_bytes() == 0
    try:
        zenith.trim_memory(limit=0)  # reuse off: nothing is kept
        one_pass()
        assert zenith.block_cache_bytes() == 0
    finally:
        zenith.trim_memory(limit=512 << 20)
    with pytest.raises(ValueError):
        zenith.trim_memory(limit=-1)
