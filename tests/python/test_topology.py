"""The topology as Python sees it: `topology(sysfs_root=None)` below is the shape of
`zenith.topology()` (a dict parsed from zenith_topology_to_json), over this machine's /sys and
fake sysfs trees written here (4 nodes with split CPU lists, memory-less and CPU-less nodes,
hugepage pools, GPUs with and without a NUMA node, NICs, missing files).

The functions are declared by conftest's library (the binding's zenith._lib, the one ctypes
mirror of the header).
"""

import ctypes
import json
import os
from ctypes import c_size_t

import pytest

from conftest import ZENITH_ERR_BUFFER_TOO_SMALL, ZENITH_ERR_NOT_FOUND, ZENITH_OK, ErrorPtr, TopologyPtr, load_library

NODE_KEYS = {"id", "cpus", "memory_total_bytes", "memory_free_bytes", "distances", "hugepages"}
DEVICE_KEYS = {"pci_address", "vendor", "numa_node"}


class TopologyError(Exception):
    def __init__(self, status, message):
        super().__init__(f"status {status}: {message}")
        self.status = status


LIB = load_library()


def _check(status, err):
    if status != ZENITH_OK:
        message = LIB.zenith_error_message(err).decode() if err else ""
        LIB.zenith_error_free(err)
        raise TopologyError(status, message)


def topology(sysfs_root=None) -> dict:
    """What `zenith.topology(sysfs_root=None)` returns."""
    handle, err = TopologyPtr(), ErrorPtr()
    if sysfs_root is None:
        _check(LIB.zenith_topology_discover(ctypes.byref(handle), ctypes.byref(err)), err)
    else:
        root = os.fsencode(sysfs_root)
        _check(LIB.zenith_topology_discover_at(root, ctypes.byref(handle), ctypes.byref(err)), err)
    try:
        length = c_size_t()
        status = LIB.zenith_topology_to_json(handle, None, 0, ctypes.byref(length), None)
        assert status == ZENITH_ERR_BUFFER_TOO_SMALL
        buffer = ctypes.create_string_buffer(length.value + 1)
        _check(
            LIB.zenith_topology_to_json(
                handle, buffer, len(buffer), ctypes.byref(length), ctypes.byref(err)
            ),
            err,
        )
        return json.loads(buffer.value.decode("utf-8"))
    finally:
        LIB.zenith_topology_free(handle)


def write(root, relative, content):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def node(root, id, cpus, total_kib=None, free_kib=None, distances=None):
    base = f"devices/system/node/node{id}"
    write(root, f"{base}/cpulist", cpus + "\n")
    if total_kib is not None:
        write(
            root,
            f"{base}/meminfo",
            f"Node {id} MemTotal:       {total_kib} kB\nNode {id} MemFree:        {free_kib} kB\n",
        )
    if distances is not None:
        write(root, f"{base}/distance", distances + "\n")


def pci(root, address, vendor, klass, numa_node=None):
    device = root / "devices" / "pci0000:00" / address
    write(root, f"devices/pci0000:00/{address}/vendor", f"0x{vendor:04x}\n")
    write(root, f"devices/pci0000:00/{address}/device", "0x2330\n")
    write(root, f"devices/pci0000:00/{address}/class", f"0x{klass:06x}\n")
    if numa_node is not None:
        write(root, f"devices/pci0000:00/{address}/numa_node", f"{numa_node}\n")
    (root / "bus/pci/devices").mkdir(parents=True, exist_ok=True)
    (root / "bus/pci/devices" / address).symlink_to(device)


def assert_shape(topo):
    assert {"numa_nodes", "cpus_online", "gpus", "nics"} <= topo.keys()
    assert topo["numa_nodes"], "at least one node"
    for n in topo["numa_nodes"]:
        assert NODE_KEYS <= n.keys(), n
        assert all(isinstance(c, int) for c in n["cpus"])
        assert n["memory_free_bytes"] <= n["memory_total_bytes"] or n["memory_total_bytes"] == 0
        sizes = [p["page_size_bytes"] for p in n["hugepages"]]
        assert 2 << 20 in sizes and 1 << 30 in sizes
        for p in n["hugepages"]:
            assert {"page_size_bytes", "total", "free"} <= p.keys()
    for device in topo["gpus"] + topo["nics"]:
        assert DEVICE_KEYS <= device.keys(), device


def test_this_machine():
    topo = topology()
    assert_shape(topo)
    assert topo["cpus_online"]
    allowed = os.sched_getaffinity(0)
    assert allowed <= set(topo["cpus_online"])
    assert allowed <= {c for n in topo["numa_nodes"] for c in n["cpus"]}


def test_four_nodes_with_memory_less_and_cpu_less_nodes(tmp_path):
    write(tmp_path, "devices/system/cpu/online", "0-3,8-11\n")
    rows = ["10 16 32 32", "16 10 32 32", "32 32 10 16", "32 32 16 10"]
    node(tmp_path, 0, "0-3,8-11", 8 << 20, 6 << 20, rows[0])
    node(tmp_path, 1, "", 16 << 20, 16 << 20, rows[1])  # memory only
    node(tmp_path, 2, "", 0, 0, rows[2])  # memory-less (and CPU-less here)
    node(tmp_path, 3, "", distances=rows[3])  # no meminfo at all
    write(tmp_path, "devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "64\n")
    write(tmp_path, "devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "60\n")
    topo = topology(tmp_path)
    assert_shape(topo)
    assert [n["id"] for n in topo["numa_nodes"]] == [0, 1, 2, 3]
    n0, n1, n2, n3 = topo["numa_nodes"]
    assert n0["cpus"] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert topo["cpus_online"] == n0["cpus"]
    assert n0["memory_total_bytes"] == 8 << 30 and n0["memory_free_bytes"] == 6 << 30
    assert n1["cpus"] == [] and n1["memory_total_bytes"] == 16 << 30
    assert n2["memory_total_bytes"] == 0 and n3["memory_total_bytes"] == 0
    assert n2["distances"] == [32, 32, 10, 16]
    assert {"page_size_bytes": 2 << 20, "total": 64, "free": 60} in n0["hugepages"]
    assert topo["gpus"] == [] and topo["nics"] == []


def test_gpus_and_nics_with_their_numa_nodes(tmp_path):
    node(tmp_path, 0, "0-1", 1024, 512, "10 20")
    node(tmp_path, 1, "2-3", 1024, 512, "20 10")
    pci(tmp_path, "0000:b1:00.0", 0x10DE, 0x030200, 1)
    pci(tmp_path, "0000:17:00.0", 0x10DE, 0x030200, 0)
    pci(tmp_path, "0000:c1:00.0", 0x1002, 0x038000, -1)
    pci(tmp_path, "0000:00:02.0", 0x1234, 0x030000, -1)  # emulated VGA: not a GPU
    pci(tmp_path, "0000:31:00.0", 0x15B3, 0x020700, 0)
    pci(tmp_path, "0000:00:05.0", 0x1AF4, 0x020000)  # no numa_node file
    (tmp_path / "devices/pci0000:00/0000:31:00.0/net/ib0").mkdir(parents=True)
    topo = topology(tmp_path)
    assert_shape(topo)
    gpus = [(g["pci_address"], g["vendor"], g["numa_node"]) for g in topo["gpus"]]
    assert gpus == [
        ("0000:17:00.0", 0x10DE, 0),
        ("0000:b1:00.0", 0x10DE, 1),
        ("0000:c1:00.0", 0x1002, None),
    ]
    assert [g["index"] for g in topo["gpus"]] == [0, 1, 2]
    assert topo["gpus"][0]["vendor_name"] == "nvidia"
    nics = [(n["pci_address"], n["numa_node"], n["interfaces"]) for n in topo["nics"]]
    assert nics == [("0000:00:05.0", None, []), ("0000:31:00.0", 0, ["ib0"])]


def test_missing_files_give_defaults(tmp_path):
    (tmp_path / "devices/system/node/node0").mkdir(parents=True)
    topo = topology(tmp_path)
    assert_shape(topo)
    (n0,) = topo["numa_nodes"]
    assert n0 == {
        "id": 0,
        "cpus": [],
        "memory_total_bytes": 0,
        "memory_free_bytes": 0,
        "distances": [],
        "hugepages": [
            {"page_size_bytes": 2 << 20, "total": 0, "free": 0},
            {"page_size_bytes": 1 << 30, "total": 0, "free": 0},
        ],
    }
    assert topo["cpus_online"] == [] and topo["gpus"] == []


def test_a_missing_root_is_not_found(tmp_path):
    with pytest.raises(TopologyError) as info:
        topology(tmp_path / "missing")
    assert info.value.status == ZENITH_ERR_NOT_FOUND
    assert "missing" in str(info.value)
