"""Finding and loading libzenith.so, and the C declarations of include/zenith.h in ctypes.

This module is the one ctypes mirror of the header in the repository: the binding, the C-ABI
tests (tests/python) and the benchmark (bench/zenith_ctypes.py) all import it, and
tests/python/test_ctypes_mirror.py checks it against the C compiler (struct sizes, alignments
and field offsets, macro values, function names and arities).

The library is looked up, in order, at:

1. ``$ZENITH_LIBRARY`` (the path of the shared library, or of a folder holding ``libzenith.so``);
2. the copy bundled in this package (``zenith/libzenith.so``, put there by ``pip install``);
3. the repository this package sits in: ``target/release``, then ``target/debug``.

It is loaded on first use, once per process. Every function gets its ``argtypes`` and
``restype`` here, so a wrong argument fails in ctypes instead of in C.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

LIBRARY_ENV = "ZENITH_LIBRARY"
LIBRARY_NAME = "libzenith.so"

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# bindings/python/zenith/_lib.py -> the repository root, when run from a checkout.
_REPO_DIR = _PACKAGE_DIR.parents[2]

# ---- Constants: every #define of zenith.h, and the DLPack values the binding uses --------------
#
# tests/python/test_ctypes_mirror.py compares each with the C compiler's value, and fails when the
# header gains a ZENITH_* macro this list lacks.

ZENITH_ALLOC_NO_HUGEPAGES = 1
ZENITH_ALLOC_NO_HUGETLB = 2
ZENITH_ALLOC_STRICT_NODE = 4
ZENITH_DEFAULT_BATCH_SIZE = 1024
ZENITH_MAX_WORKERS = 256
ZENITH_RESUME_STATE_SIZE = 96
ZENITH_VERSION_MAJOR = 0
ZENITH_VERSION_MINOR = 1
ZENITH_VERSION_PATCH = 0
ZENITH_VERSION_NUMBER = 100

ZENITH_HUGEPAGES_NONE = 0
ZENITH_HUGEPAGES_TRANSPARENT = 1
ZENITH_HUGEPAGES_EXPLICIT = 2

ZENITH_PLACEMENT_NONE = 0
ZENITH_PLACEMENT_PREFERRED = 1
ZENITH_PLACEMENT_BIND = 2
ZENITH_PLACEMENT_FIRST_TOUCH = 3

ZENITH_SHUFFLE_NONE = 0
ZENITH_SHUFFLE_GLOBAL = 1
ZENITH_SHUFFLE_BLOCK = 2
ZENITH_SHUFFLE_AUTO = 3

ZENITH_SHARD_FROM_NONE = 0
ZENITH_SHARD_FROM_OPTIONS = 1
ZENITH_SHARD_FROM_TORCH = 2
ZENITH_SHARD_FROM_SLURM = 3

ZENITH_IO_MMAP = 0
ZENITH_IO_URING = 1
ZENITH_IO_PREAD = 2

ZENITH_RING_SPSC = 0
ZENITH_RING_MPMC = 1

ZENITH_OK = 0
ZENITH_DONE = 1
ZENITH_WOULD_BLOCK = 2
ZENITH_ERR_NULL_ARGUMENT = -1
ZENITH_ERR_INVALID_ARGUMENT = -2
ZENITH_ERR_IO = -3
ZENITH_ERR_NOT_FOUND = -4
ZENITH_ERR_FORMAT = -5
ZENITH_ERR_UNSUPPORTED = -6
ZENITH_ERR_PANIC = -7
ZENITH_ERR_INTERNAL = -8
ZENITH_ERR_SCHEMA_MISMATCH = -9
ZENITH_ERR_BUFFER_TOO_SMALL = -10
ZENITH_ERR_OUT_OF_MEMORY = -11

# DLPack (the header's DLDeviceType, DLDataTypeCode and flag bits that the binding reads).
kDLCPU = 1
kDLInt = 0
kDLUInt = 1
kDLFloat = 2
kDLBfloat = 4
kDLComplex = 5
kDLBool = 6
DLPACK_FLAG_BITMASK_READ_ONLY = 1 << 0
DLPACK_FLAG_BITMASK_IS_COPIED = 1 << 1

# ---- Arrow C Data Interface / C Stream Interface ------------------------------------------------


class ArrowSchema(ctypes.Structure):
    pass


ArrowSchema._fields_ = [
    ("format", c_char_p),
    ("name", c_char_p),
    ("metadata", c_void_p),  # binary, not NUL-terminated text
    ("flags", c_int64),
    ("n_children", c_int64),
    ("children", POINTER(POINTER(ArrowSchema))),
    ("dictionary", POINTER(ArrowSchema)),
    ("release", CFUNCTYPE(None, POINTER(ArrowSchema))),
    ("private_data", c_void_p),
]


class ArrowArray(ctypes.Structure):
    pass


ArrowArray._fields_ = [
    ("length", c_int64),
    ("null_count", c_int64),
    ("offset", c_int64),
    ("n_buffers", c_int64),
    ("n_children", c_int64),
    ("buffers", POINTER(c_void_p)),
    ("children", POINTER(POINTER(ArrowArray))),
    ("dictionary", POINTER(ArrowArray)),
    ("release", CFUNCTYPE(None, POINTER(ArrowArray))),
    ("private_data", c_void_p),
]


class ArrowArrayStream(ctypes.Structure):
    pass


ArrowArrayStream._fields_ = [
    ("get_schema", CFUNCTYPE(c_int, POINTER(ArrowArrayStream), POINTER(ArrowSchema))),
    ("get_next", CFUNCTYPE(c_int, POINTER(ArrowArrayStream), POINTER(ArrowArray))),
    ("get_last_error", CFUNCTYPE(c_char_p, POINTER(ArrowArrayStream))),
    ("release", CFUNCTYPE(None, POINTER(ArrowArrayStream))),
    ("private_data", c_void_p),
]

# ---- DLPack 1.x ---------------------------------------------------------------------------------


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]  # device_type: an int-sized enum


class DLDataType(ctypes.Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", c_void_p),
        ("device", DLDevice),
        ("ndim", c_int32),
        ("dtype", DLDataType),
        ("shape", POINTER(c_int64)),
        ("strides", POINTER(c_int64)),
        ("byte_offset", c_uint64),
    ]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", c_void_p),
    ("deleter", CFUNCTYPE(None, POINTER(DLManagedTensorVersioned))),
    ("flags", c_uint64),
    ("dl_tensor", DLTensor),
]


class DLManagedTensor(ctypes.Structure):
    """The legacy (DLPack < 1.0) managed tensor, for consumers that ask for no version."""


DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", c_void_p),
    ("deleter", CFUNCTYPE(None, POINTER(DLManagedTensor))),
]

# ---- Public structs of the library (each starts with the caller-set struct_size) ---------------


class zenith_stats(ctypes.Structure):
    """Counters and configuration of a running loader (`zenith_loader_stats`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("rows", c_uint64),
        ("batches", c_uint64),
        ("bytes", c_uint64),
        ("time_to_first_batch_ns", c_uint64),
        ("consumer_wait_ns", c_uint64),
        ("worker_busy_ns", c_uint64),
        ("decode_ns", c_uint64),
        ("chunks_decoded", c_uint64),
        ("queue_depth", c_uint64),
        ("epoch", c_uint64),
        ("batches_per_epoch", c_uint64),
        ("shuffle_mode", c_int32),
        ("num_workers", c_uint32),
        ("numa_node", c_int32),
        ("pinned_workers", c_uint32),
        ("io_backend", c_int32),
        ("io_backend_requested", c_int32),
        ("io_read_bytes", c_uint64),
        ("io_read_ns", c_uint64),
        ("rank", c_uint32),
        ("world_size", c_uint32),
        ("shard_source", c_int32),
        ("shuffle_requested", c_int32),
        ("memory_budget", c_uint64),
        ("decoded_bytes", c_uint64),
    ]


class zenith_numa_node_info(ctypes.Structure):
    """One NUMA node (`zenith_topology_node`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("id", c_uint32),
        ("num_cpus", c_uint32),
        ("memory_total_bytes", c_uint64),
        ("memory_free_bytes", c_uint64),
        ("hugepages_2m_total", c_uint64),
        ("hugepages_2m_free", c_uint64),
        ("hugepages_1g_total", c_uint64),
        ("hugepages_1g_free", c_uint64),
    ]


class zenith_pci_device_info(ctypes.Structure):
    """A GPU or NIC on the PCI bus (`zenith_topology_gpu`, `zenith_topology_nic`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("pci_address", c_char * 32),
        ("vendor_id", c_uint16),
        ("device_id", c_uint16),
        ("class_code", c_uint32),
        ("numa_node", c_int32),
    ]


# The structs above by their C names: what the layout test compares with the C compiler.
STRUCTS = {
    cls.__name__: cls
    for cls in (
        ArrowSchema,
        ArrowArray,
        ArrowArrayStream,
        DLPackVersion,
        DLDevice,
        DLDataType,
        DLTensor,
        DLManagedTensor,
        DLManagedTensorVersioned,
        zenith_stats,
        zenith_numa_node_info,
        zenith_pci_device_info,
    )
}

# ---- Opaque handles: distinct pointer types, so ctypes rejects a handle of the wrong kind -------


class zenith_error(ctypes.Structure):
    pass


class zenith_loader(ctypes.Structure):
    pass


class zenith_loader_options(ctypes.Structure):
    pass


class zenith_batch(ctypes.Structure):
    pass


class zenith_allocation(ctypes.Structure):
    pass


class zenith_ring(ctypes.Structure):
    pass


class zenith_telemetry_server(ctypes.Structure):
    pass


class zenith_topology(ctypes.Structure):
    pass


ErrorPtr = POINTER(zenith_error)
LoaderPtr = POINTER(zenith_loader)
OptionsPtr = POINTER(zenith_loader_options)
BatchPtr = POINTER(zenith_batch)
AllocationPtr = POINTER(zenith_allocation)
RingPtr = POINTER(zenith_ring)
ServerPtr = POINTER(zenith_telemetry_server)
TopologyPtr = POINTER(zenith_topology)
TensorPtr = POINTER(DLManagedTensorVersioned)

# ---- Functions: every zenith_* function of zenith.h, as (argtypes, restype) ---------------------
#
# C types map as: zenith_status, zenith_shuffle, zenith_io_backend, ... -> c_int32; `char *`
# buffers the library writes -> POINTER(c_char) (pass ctypes.create_string_buffer(n) or None);
# `const char *` text -> c_char_p; `void *` -> c_void_p. tests/python/test_ctypes_mirror.py checks
# that the names and the number of arguments match the header's prototypes.

_Err = POINTER(ErrorPtr)
_Text = POINTER(c_char)
_Len = POINTER(c_size_t)
_Cpus = POINTER(c_uint32)

SIGNATURES = {
    # errors and versions
    "zenith_error_code": ([ErrorPtr], c_int32),
    "zenith_error_message": ([ErrorPtr], c_char_p),
    "zenith_error_free": ([ErrorPtr], None),
    "zenith_status_str": ([c_int32], c_char_p),
    "zenith_version": ([], c_char_p),
    "zenith_version_number": ([], c_uint32),
    # loader options
    "zenith_loader_options_new": ([POINTER(OptionsPtr)], c_int32),
    "zenith_loader_options_free": ([OptionsPtr], None),
    "zenith_loader_options_set_batch_size": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_shuffle": ([OptionsPtr, c_int32, _Err], c_int32),
    "zenith_loader_options_set_seed": ([OptionsPtr, c_uint64, _Err], c_int32),
    "zenith_loader_options_set_drop_last": ([OptionsPtr, c_bool, _Err], c_int32),
    "zenith_loader_options_set_num_workers": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_prefetch": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_shard": ([OptionsPtr, c_uint32, c_uint32, _Err], c_int32),
    "zenith_loader_options_set_shard_none": ([OptionsPtr, _Err], c_int32),
    "zenith_loader_options_set_shard_drop_remainder": ([OptionsPtr, c_bool, _Err], c_int32),
    "zenith_loader_options_set_columns": ([OptionsPtr, POINTER(c_char_p), c_size_t, _Err], c_int32),
    "zenith_loader_options_set_memory_budget": ([OptionsPtr, c_uint64, _Err], c_int32),
    "zenith_loader_options_set_numa_node": ([OptionsPtr, c_int32, _Err], c_int32),
    "zenith_loader_options_set_near_gpu_index": ([OptionsPtr, c_uint32, _Err], c_int32),
    "zenith_loader_options_set_near_gpu_pci": ([OptionsPtr, c_char_p, _Err], c_int32),
    "zenith_loader_options_set_resume_state": ([OptionsPtr, POINTER(c_uint8), c_size_t, _Err], c_int32),
    "zenith_loader_options_set_io_backend": ([OptionsPtr, c_int32, _Err], c_int32),
    "zenith_loader_options_set_storage_option": ([OptionsPtr, c_char_p, c_char_p, _Err], c_int32),
    "zenith_loader_options_set_io_direct": ([OptionsPtr, c_bool, _Err], c_int32),
    # loader
    "zenith_loader_open": ([c_char_p, OptionsPtr, POINTER(LoaderPtr), _Err], c_int32),
    "zenith_loader_schema": ([LoaderPtr, POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_next": ([LoaderPtr, POINTER(ArrowArray), POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_next_batch": ([LoaderPtr, POINTER(BatchPtr), _Err], c_int32),
    "zenith_loader_next_timeout": (
        [LoaderPtr, c_uint64, POINTER(ArrowArray), POINTER(ArrowSchema), _Err],
        c_int32,
    ),
    "zenith_loader_next_batch_timeout": ([LoaderPtr, c_uint64, POINTER(BatchPtr), _Err], c_int32),
    "zenith_loader_export_stream": ([LoaderPtr, POINTER(ArrowArrayStream), _Err], c_int32),
    "zenith_loader_stats": ([LoaderPtr, POINTER(zenith_stats), _Err], c_int32),
    "zenith_loader_io_fallback_reason": ([LoaderPtr, _Text, c_size_t, _Len, _Err], c_int32),
    "zenith_loader_num_batches": ([LoaderPtr], c_uint64),
    "zenith_loader_set_epoch": ([LoaderPtr, c_uint64, _Err], c_int32),
    "zenith_loader_save_state": ([LoaderPtr, POINTER(c_uint8), c_size_t, _Len, _Err], c_int32),
    "zenith_loader_free": ([LoaderPtr], None),
    # batches
    "zenith_batch_num_rows": ([BatchPtr], c_size_t),
    "zenith_batch_export_arrow": ([BatchPtr, POINTER(ArrowArray), POINTER(ArrowSchema), _Err], c_int32),
    "zenith_batch_column_dlpack": ([BatchPtr, c_char_p, POINTER(TensorPtr), _Err], c_int32),
    "zenith_batch_column_dlpack_by_index": ([BatchPtr, c_size_t, POINTER(TensorPtr), _Err], c_int32),
    "zenith_batch_free": ([BatchPtr], None),
    # NUMA-local allocation and thread affinity
    "zenith_numa_alloc": ([c_size_t, c_int32, c_uint32, POINTER(AllocationPtr), _Err], c_int32),
    "zenith_allocation_data": ([AllocationPtr], c_void_p),
    "zenith_allocation_size": ([AllocationPtr], c_size_t),
    "zenith_allocation_hugepages": ([AllocationPtr], c_int32),
    "zenith_allocation_numa_node": ([AllocationPtr], c_int32),
    "zenith_allocation_placement": ([AllocationPtr], c_int32),
    "zenith_allocation_free": ([AllocationPtr], None),
    "zenith_pin_current_thread": ([_Cpus, c_size_t, _Err], c_int32),
    "zenith_current_thread_affinity": ([_Cpus, c_size_t, _Len, _Err], c_int32),
    # rings
    "zenith_ring_new": ([c_size_t, c_size_t, c_int32, POINTER(RingPtr), _Err], c_int32),
    "zenith_ring_push": ([RingPtr, c_void_p, _Err], c_int32),
    "zenith_ring_pop": ([RingPtr, c_void_p, _Err], c_int32),
    "zenith_ring_push_many": ([RingPtr, c_void_p, c_size_t, _Len, _Err], c_int32),
    "zenith_ring_pop_many": ([RingPtr, c_void_p, c_size_t, _Len, _Err], c_int32),
    "zenith_ring_len": ([RingPtr], c_size_t),
    "zenith_ring_capacity": ([RingPtr], c_size_t),
    "zenith_ring_free": ([RingPtr], None),
    # telemetry
    "zenith_telemetry_prometheus": ([_Text, c_size_t, _Len, _Err], c_int32),
    "zenith_telemetry_serve": ([c_char_p, POINTER(ServerPtr), _Err], c_int32),
    "zenith_telemetry_server_port": ([ServerPtr], c_uint16),
    "zenith_telemetry_server_free": ([ServerPtr], None),
    # topology
    "zenith_topology_discover": ([POINTER(TopologyPtr), _Err], c_int32),
    "zenith_topology_discover_at": ([c_char_p, POINTER(TopologyPtr), _Err], c_int32),
    "zenith_topology_free": ([TopologyPtr], None),
    "zenith_topology_num_nodes": ([TopologyPtr], c_size_t),
    "zenith_topology_node": ([TopologyPtr, c_size_t, POINTER(zenith_numa_node_info), _Err], c_int32),
    "zenith_topology_node_cpus": ([TopologyPtr, c_size_t, _Cpus, c_size_t, _Len, _Err], c_int32),
    "zenith_topology_node_distances": ([TopologyPtr, c_size_t, _Cpus, c_size_t, _Len, _Err], c_int32),
    "zenith_topology_cpus_online": ([TopologyPtr, _Cpus, c_size_t, _Len, _Err], c_int32),
    "zenith_topology_num_gpus": ([TopologyPtr], c_size_t),
    "zenith_topology_num_nics": ([TopologyPtr], c_size_t),
    "zenith_topology_gpu_numa_node": ([TopologyPtr, c_size_t], c_int32),
    "zenith_topology_gpu": ([TopologyPtr, c_size_t, POINTER(zenith_pci_device_info), _Err], c_int32),
    "zenith_topology_nic": ([TopologyPtr, c_size_t, POINTER(zenith_pci_device_info), _Err], c_int32),
    "zenith_topology_to_json": ([TopologyPtr, _Text, c_size_t, _Len, _Err], c_int32),
}


def candidates() -> list[pathlib.Path]:
    """Where the library is looked for, in order (see the module docstring)."""
    found = []
    env = os.environ.get(LIBRARY_ENV)
    if env:
        path = pathlib.Path(env)
        found.append(path / LIBRARY_NAME if path.is_dir() else path)
        return found  # an explicit choice: never fall back to another copy silently
    found.append(_PACKAGE_DIR / LIBRARY_NAME)
    for profile in ("release", "debug"):
        found.append(_REPO_DIR / "target" / profile / LIBRARY_NAME)
    return found


def load(path) -> ctypes.CDLL:
    """Loads the library at `path` (a fresh ctypes.CDLL, its own function objects) with every
    function of SIGNATURES declared. For programs that name one file, such as the C-ABI tests
    and the benchmark; the binding itself uses :func:`lib`. Raises ImportError when the file
    lacks one of the functions (an older libzenith)."""
    loaded = ctypes.CDLL(str(path))
    for name, (argtypes, restype) in SIGNATURES.items():
        try:
            fn = getattr(loaded, name)
        except AttributeError:
            raise ImportError(f"zenith: {path} does not export {name} (an older libzenith?)") from None
        fn.argtypes = argtypes
        fn.restype = restype
    return loaded


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_path: pathlib.Path | None = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first call). Raises ImportError when none is found."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            tried = candidates()
            path = next((p for p in tried if p.is_file()), None)
            if path is None:
                where = ", ".join(str(p) for p in tried)
                raise ImportError(
                    f"zenith: libzenith.so not found (looked at {where}); install the package with "
                    f"`pip install ./bindings/python`, run `cargo build --release -p libzenith`, or set "
                    f"{LIBRARY_ENV} to the library's path"
                )
            loaded = load(path)
            _path = path
            _lib = loaded
    return _lib


def library_path() -> pathlib.Path:
    """The path of the library this process loaded."""
    lib()
    assert _path is not None
    return _path
