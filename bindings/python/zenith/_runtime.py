"""The CPU runtime and telemetry from Python: the machine's topology and the process-wide
Prometheus metrics (text, or served over HTTP)."""

import ctypes
import json
import os
from ctypes import c_size_t

from . import _lib
from ._errors import Status, check, new_err, ref


def _fn(name):
    """The C function `name`, declared in _lib.SIGNATURES."""
    return getattr(_lib.lib(), name)


def _read_text(call) -> str:
    """Runs a `(buf, cap, &len, &err)` call twice: once for the size, once to fill the buffer
    (with headroom, since metrics may grow between the two calls)."""
    length = c_size_t(0)
    for _ in range(8):
        cap = length.value + 1 + 65536 if length.value else 65536
        buf = ctypes.create_string_buffer(cap)
        err = new_err()
        status = call(buf, cap, ctypes.byref(length), ref(err))
        if status == Status.ERR_BUFFER_TOO_SMALL:
            _lib.lib().zenith_error_free(err)
            continue
        check(status, err)
        return buf.raw[: length.value].decode("utf-8")
    raise RuntimeError("the text kept growing faster than the buffer")


def topology(sysfs_root=None) -> dict:
    """The machine's topology, read from sysfs (``/sys``, or ``sysfs_root``): a dict with
    ``"numa_nodes"`` (each with ``"id"``, ``"cpus"``, ``"memory_total_bytes"``,
    ``"memory_free_bytes"``, ``"distances"``, ``"hugepages"``), ``"cpus_online"``, ``"gpus"``
    and ``"nics"`` (each with ``"pci_address"``, ``"vendor"``, ``"numa_node"``)."""
    handle = _lib.TopologyPtr()
    err = new_err()
    if sysfs_root is None:
        check(_fn("zenith_topology_discover")(ctypes.byref(handle), ref(err)), err)
    else:
        path = os.fsencode(sysfs_root)
        check(_fn("zenith_topology_discover_at")(path, ctypes.byref(handle), ref(err)), err)
    try:
        to_json = _fn("zenith_topology_to_json")
        return json.loads(_read_text(lambda buf, cap, n, e: to_json(handle, buf, cap, n, e)))
    finally:
        _fn("zenith_topology_free")(handle)


def metrics_text() -> str:
    """The process-wide metrics (loader rows, batches, bytes, waits, queue depth, I/O by backend,
    ...) in the Prometheus text format 0.0.4."""
    render = _fn("zenith_telemetry_prometheus")
    return _read_text(lambda buf, cap, n, e: render(buf, cap, n, e))


def block_cache_bytes() -> int:
    """Bytes of freed large blocks (decode and read buffers of 128 KiB and more) the library
    keeps for reuse, so the next chunk does not fault in fresh pages; see :func:`trim_memory`."""
    return _fn("zenith_block_cache_bytes")()


def trim_memory(limit: int | None = None) -> int:
    """Hands the freed large blocks the library keeps for reuse back to the system and returns
    the bytes released; with ``limit`` (bytes), also sets how much it may keep from now on
    (default 512 MiB; 0 turns the reuse off)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 bytes, not {limit}")
    released = _fn("zenith_block_cache_trim")()
    if limit is not None:
        _fn("zenith_block_cache_set_limit")(limit)
    return released


class MetricsServer:
    """Serves :func:`metrics_text` at ``GET /metrics`` on a background thread until closed."""

    def __init__(self, addr: str = "127.0.0.1:0"):
        self._handle = _lib.ServerPtr()
        err = new_err()
        check(_fn("zenith_telemetry_serve")(addr.encode("utf-8"), ctypes.byref(self._handle), ref(err)), err)

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return _fn("zenith_telemetry_server_port")(self._handle)

    def close(self) -> None:
        """Stops the server (idempotent)."""
        if self._handle:
            _fn("zenith_telemetry_server_free")(self._handle)
            self._handle = _lib.ServerPtr()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
