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

ZENITH_DEVICE_CPU = 1
ZENITH_DEVICE_CUDA = 2
ZENITH_DEVICE_DEFAULT_SLOTS = 4

ZENITH_GPU_LINK_SAME_DEVICE = 0
ZENITH_GPU_LINK_NVLINK = 1
ZENITH_GPU_LINK_PCIE_SWITCH = 2
ZENITH_GPU_LINK_PCIE_SWITCHES = 3
ZENITH_GPU_LINK_HOST_BRIDGE = 4
ZENITH_GPU_LINK_NUMA_NODE = 5
ZENITH_GPU_LINK_SYSTEM = 6
ZENITH_GPU_LINK_UNKNOWN = 7

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
ZENITH_ERR_NO_DEVICE = -14
ZENITH_ERR_EVENT_FAILED = -15

# DLPack (the header's DLDeviceType, DLDataTypeCode and flag bits that the binding reads).
kDLCPU = 1
kDLCUDA = 2
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

# ---- Arrow C Device Data Interface --------------------------------------------------------------

ARROW_DEVICE_CPU = 1
ARROW_DEVICE_CUDA = 2
ARROW_DEVICE_CUDA_HOST = 3


class ArrowDeviceArray(ctypes.Structure):
    _fields_ = [
        ("array", ArrowArray),
        ("device_id", c_int64),
        ("device_type", c_int32),
        ("sync_event", c_void_p),
        ("reserved", c_int64 * 3),
    ]


class ArrowDeviceArrayStream(ctypes.Structure):
    pass


ArrowDeviceArrayStream._fields_ = [
    ("device_type", c_int32),
    ("get_schema", CFUNCTYPE(c_int, POINTER(ArrowDeviceArrayStream), POINTER(ArrowSchema))),
    ("get_next", CFUNCTYPE(c_int, POINTER(ArrowDeviceArrayStream), POINTER(ArrowDeviceArray))),
    ("get_last_error", CFUNCTYPE(c_char_p, POINTER(ArrowDeviceArrayStream))),
    ("release", CFUNCTYPE(None, POINTER(ArrowDeviceArrayStream))),
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
        ("device_bytes_copied", c_uint64),
        ("device_copies", c_uint64),
        ("device_copy_ns", c_uint64),
        ("device_consumer_wait_ns", c_uint64),
        ("device_consumer_waits", c_uint64),
        ("device_staging_waits", c_uint64),
        ("device_memory_waits", c_uint64),
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


class zenith_gpu_device_info(ctypes.Structure):
    """One CUDA device (`zenith_gpu_info`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("ordinal", c_uint32),
        ("compute_capability_major", c_uint32),
        ("compute_capability_minor", c_uint32),
        ("sm_count", c_uint32),
        ("name", c_char * 256),
        ("uuid", c_char * 48),
        ("pci_address", c_char * 32),
        ("memory_total_bytes", c_uint64),
        ("memory_free_bytes", c_uint64),
        ("numa_node", c_int32),
        ("num_affinity_cpus", c_uint32),
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
        ArrowDeviceArray,
        ArrowDeviceArrayStream,
        zenith_gpu_device_info,
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


class zenith_engine(ctypes.Structure):
    pass


class zenith_engine_options(ctypes.Structure):
    pass


class zenith_stage(ctypes.Structure):
    pass


ErrorPtr = POINTER(zenith_error)
LoaderPtr = POINTER(zenith_loader)
OptionsPtr = POINTER(zenith_loader_options)
BatchPtr = POINTER(zenith_batch)
AllocationPtr = POINTER(zenith_allocation)
RingPtr = POINTER(zenith_ring)
ServerPtr = POINTER(zenith_telemetry_server)
TopologyPtr = POINTER(zenith_topology)
EnginePtr = POINTER(zenith_engine)
EngineOptionsPtr = POINTER(zenith_engine_options)
StagePtr = POINTER(zenith_stage)
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
    "zenith_loader_options_set_csv_delimiter": ([OptionsPtr, c_uint8, _Err], c_int32),
    "zenith_loader_options_set_csv_header": ([OptionsPtr, c_bool, _Err], c_int32),
    "zenith_loader_options_set_schema": ([OptionsPtr, POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_options_add_stage": ([OptionsPtr, StagePtr, _Err], c_int32),
    # loader
    "zenith_loader_open": ([c_char_p, OptionsPtr, POINTER(LoaderPtr), _Err], c_int32),
    "zenith_loader_open_paths": ([POINTER(c_char_p), c_size_t, OptionsPtr, POINTER(LoaderPtr), _Err], c_int32),
    "zenith_loader_schema": ([LoaderPtr, POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_next": ([LoaderPtr, POINTER(ArrowArray), POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_next_batch": ([LoaderPtr, POINTER(BatchPtr), _Err], c_int32),
    "zenith_loader_next_timeout": (
        [LoaderPtr, c_uint64, POINTER(ArrowArray), POINTER(ArrowSchema), _Err],
        c_int32,
    ),
    "zenith_loader_next_batch_timeout": ([LoaderPtr, c_uint64, POINTER(BatchPtr), _Err], c_int32),
    "zenith_loader_export_stream": ([LoaderPtr, POINTER(ArrowArrayStream), _Err], c_int32),
    "zenith_loader_export_device_stream": ([LoaderPtr, POINTER(ArrowDeviceArrayStream), _Err], c_int32),
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
    "zenith_block_cache_bytes": ([], c_size_t),
    "zenith_block_cache_trim": ([], c_size_t),
    "zenith_block_cache_set_limit": ([c_size_t], None),
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
    # GPUs and the Arrow C Device Data Interface
    "zenith_gpu_count": ([POINTER(c_uint32), _Err], c_int32),
    "zenith_gpu_info": ([c_uint32, POINTER(zenith_gpu_device_info), _Err], c_int32),
    "zenith_gpu_cpu_affinity": ([c_uint32, _Cpus, c_size_t, _Len, _Err], c_int32),
    "zenith_gpu_link": ([c_uint32, c_uint32, POINTER(c_int32), POINTER(c_uint32), _Err], c_int32),
    "zenith_loader_options_set_device": ([OptionsPtr, c_int32, c_uint32, _Err], c_int32),
    "zenith_loader_options_set_device_slots": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_pin_memory": ([OptionsPtr, c_uint32, c_bool, _Err], c_int32),
    "zenith_batch_column_dlpack_stream": ([BatchPtr, c_char_p, c_int64, POINTER(TensorPtr), _Err], c_int32),
    "zenith_batch_export_device_array": (
        [BatchPtr, POINTER(ArrowDeviceArray), POINTER(ArrowSchema), _Err],
        c_int32,
    ),
    "zenith_batch_export_device_array_columns": (
        [BatchPtr, POINTER(c_char_p), c_size_t, c_int64, POINTER(ArrowDeviceArray), POINTER(ArrowSchema), _Err],
        c_int32,
    ),
    # the event engine and its stages (callbacks as plain pointers: wrap a CFUNCTYPE to pass one)
    "zenith_engine_options_new": ([POINTER(EngineOptionsPtr)], c_int32),
    "zenith_engine_options_free": ([EngineOptionsPtr], None),
    "zenith_engine_options_set_capacity": ([EngineOptionsPtr, c_size_t, c_uint64, _Err], c_int32),
    "zenith_engine_options_set_workers": ([EngineOptionsPtr, c_size_t, _Err], c_int32),
    "zenith_engine_options_set_cpus": ([EngineOptionsPtr, POINTER(c_uint32), c_size_t, _Err], c_int32),
    "zenith_engine_options_set_numa_node": ([EngineOptionsPtr, c_int32, _Err], c_int32),
    "zenith_engine_options_add_stage": ([EngineOptionsPtr, StagePtr, _Err], c_int32),
    "zenith_engine_new": ([EngineOptionsPtr, POINTER(EnginePtr), _Err], c_int32),
    "zenith_engine_free": ([EnginePtr], None),
    "zenith_engine_shutdown": ([EnginePtr, POINTER(c_uint64), _Err], c_int32),
    "zenith_engine_publish": (
        [EnginePtr, POINTER(ArrowArray), POINTER(ArrowSchema), c_uint64, POINTER(c_uint64), _Err],
        c_int32,
    ),
    "zenith_engine_poll": (
        [EnginePtr, POINTER(ArrowArray), POINTER(ArrowSchema), POINTER(c_uint64), c_uint64, _Err],
        c_int32,
    ),
    "zenith_stage_new_native": ([c_char_p, c_void_p, c_void_p, c_void_p, POINTER(StagePtr), _Err], c_int32),
    "zenith_stage_new_wasm": ([c_char_p, c_uint64, c_uint64, POINTER(StagePtr), _Err], c_int32),
    "zenith_stage_new_wasm_config": (
        [c_char_p, c_uint64, c_uint64, c_char_p, c_size_t, POINTER(StagePtr), _Err],
        c_int32,
    ),
    "zenith_stage_free": ([StagePtr], None),
}


# ==== Gang scheduler (zenith_scheduler_*; issue 11) ==============================================
# One block for the scheduler's part of the mirror, kept apart from the loader's declarations
# above: its constants, structs, handles and functions.

ZENITH_ERR_ALREADY_EXISTS = -12
ZENITH_ERR_INVALID_STATE = -13

ZENITH_JOB_PENDING = 0
ZENITH_JOB_QUEUED = 1
ZENITH_JOB_SCHEDULED = 2
ZENITH_JOB_RUNNING = 3
ZENITH_JOB_SUSPENDED = 4
ZENITH_JOB_COMPLETED = 5
ZENITH_JOB_FAILED = 6
ZENITH_JOB_CANCELLED = 7

ZENITH_DECISION_START = 0
ZENITH_DECISION_PREEMPT = 1
ZENITH_DECISION_REQUEUE = 2
ZENITH_DECISION_FAIL = 3

ZENITH_REASON_NONE = 0
ZENITH_REASON_PREEMPTED = 1
ZENITH_REASON_NODE_LOST = 2
ZENITH_REASON_ZOMBIE = 3
ZENITH_REASON_TIME_LIMIT = 4
ZENITH_REASON_REPORTED = 5

ZENITH_LOCALITY_ANY = 0
ZENITH_LOCALITY_SAME_NODE = 1
ZENITH_LOCALITY_SAME_ISLAND = 2
ZENITH_LOCALITY_SAME_RACK = 3
ZENITH_LOCALITY_SPREAD = 4

ZENITH_JOB_UPDATE_PRIORITY = 1
ZENITH_JOB_UPDATE_PREEMPTIBLE = 2
ZENITH_JOB_UPDATE_RESTARTABLE = 4
ZENITH_JOB_UPDATE_MAX_RUNTIME = 8

ZENITH_QUEUE_NOMINAL = 0
ZENITH_QUEUE_BORROWING_LIMIT = 1
ZENITH_QUEUE_LENDING_LIMIT = 2


class zenith_scheduler_decision(ctypes.Structure):
    """One decision of a pass (`zenith_scheduler_decisions_get`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("kind", c_int32),
        ("reason", c_int32),
        ("job", c_uint64),
        ("by", c_uint64),
        ("members", c_size_t),
    ]


class zenith_scheduler_member(ctypes.Structure):
    """Where one gang member of a START runs (`zenith_scheduler_decisions_member`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("node_id", c_uint32),
        ("node_name", c_char_p),
        ("gpus", c_size_t),
    ]


class zenith_scheduler_stats(ctypes.Structure):
    """Counters and gauges of one scheduler (`zenith_scheduler_get_stats`)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("jobs", c_uint64 * 8),
        ("allocation_success_total", c_uint64),
        ("preemptions_total", c_uint64),
        ("requeues_total", c_uint64),
        ("passes_total", c_uint64),
        ("decisions_total", c_uint64),
        ("gpus_total", c_uint64),
        ("gpu_free_milli", c_uint64),
        ("restored_records", c_uint64),
        ("now_ms", c_uint64),
    ]


STRUCTS.update(
    {cls.__name__: cls for cls in (zenith_scheduler_decision, zenith_scheduler_member, zenith_scheduler_stats)}
)


class zenith_scheduler(ctypes.Structure):
    pass


class zenith_scheduler_options(ctypes.Structure):
    pass


class zenith_scheduler_decisions(ctypes.Structure):
    pass


class zenith_job_spec(ctypes.Structure):
    pass


class zenith_node_spec(ctypes.Structure):
    pass


class zenith_queue_spec(ctypes.Structure):
    pass


SchedulerPtr = POINTER(zenith_scheduler)
SchedulerOptionsPtr = POINTER(zenith_scheduler_options)
DecisionsPtr = POINTER(zenith_scheduler_decisions)
JobSpecPtr = POINTER(zenith_job_spec)
NodeSpecPtr = POINTER(zenith_node_spec)
QueueSpecPtr = POINTER(zenith_queue_spec)

SIGNATURES.update(
    {
        # options
        "zenith_scheduler_options_new": ([POINTER(SchedulerOptionsPtr), _Err], c_int32),
        "zenith_scheduler_options_free": ([SchedulerOptionsPtr], None),
        "zenith_scheduler_options_set_policy": ([SchedulerOptionsPtr, c_char_p, _Err], c_int32),
        "zenith_scheduler_options_set_journal": ([SchedulerOptionsPtr, c_char_p, c_int32, _Err], c_int32),
        "zenith_scheduler_options_set_node_timeouts": ([SchedulerOptionsPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_options_set_zombie_timeout": ([SchedulerOptionsPtr, c_uint64, _Err], c_int32),
        "zenith_scheduler_options_set_implicit_queues": ([SchedulerOptionsPtr, c_int32, _Err], c_int32),
        # job spec builder
        "zenith_job_spec_new": ([c_uint64, c_char_p, POINTER(JobSpecPtr), _Err], c_int32),
        "zenith_job_spec_free": ([JobSpecPtr], None),
        "zenith_job_spec_validate": ([JobSpecPtr, _Err], c_int32),
        "zenith_job_spec_set_id": ([JobSpecPtr, c_uint64, _Err], c_int32),
        "zenith_job_spec_set_name": ([JobSpecPtr, c_char_p, _Err], c_int32),
        "zenith_job_spec_set_user": ([JobSpecPtr, c_char_p, _Err], c_int32),
        "zenith_job_spec_set_queue": ([JobSpecPtr, c_char_p, _Err], c_int32),
        "zenith_job_spec_set_gpus": ([JobSpecPtr, c_uint32, _Err], c_int32),
        "zenith_job_spec_set_gpu_share": ([JobSpecPtr, c_uint32, _Err], c_int32),
        "zenith_job_spec_add_gpu_type": ([JobSpecPtr, c_char_p, _Err], c_int32),
        "zenith_job_spec_set_cpus": ([JobSpecPtr, c_uint64, _Err], c_int32),
        "zenith_job_spec_set_memory": ([JobSpecPtr, c_uint64, _Err], c_int32),
        "zenith_job_spec_set_gang": ([JobSpecPtr, c_uint32, c_int32, _Err], c_int32),
        "zenith_job_spec_set_priority": ([JobSpecPtr, c_int32, c_int32, _Err], c_int32),
        "zenith_job_spec_set_restartable": ([JobSpecPtr, c_int32, _Err], c_int32),
        "zenith_job_spec_set_max_runtime": ([JobSpecPtr, c_uint64, _Err], c_int32),
        "zenith_job_spec_set_progress_timeout": ([JobSpecPtr, c_uint64, _Err], c_int32),
        "zenith_job_spec_set_command": ([JobSpecPtr, c_char_p, _Err], c_int32),
        "zenith_job_spec_add_arg": ([JobSpecPtr, c_char_p, _Err], c_int32),
        "zenith_job_spec_add_env": ([JobSpecPtr, c_char_p, c_char_p, _Err], c_int32),
        "zenith_job_spec_set_workdir": ([JobSpecPtr, c_char_p, _Err], c_int32),
        # node spec builder
        "zenith_node_spec_new": ([c_char_p, c_uint64, c_uint64, POINTER(NodeSpecPtr), _Err], c_int32),
        "zenith_node_spec_free": ([NodeSpecPtr], None),
        "zenith_node_spec_add_gpus": ([NodeSpecPtr, c_uint32, c_char_p, c_uint64, _Err], c_int32),
        "zenith_node_spec_add_nvlink_island": ([NodeSpecPtr, POINTER(c_uint32), c_size_t, _Err], c_int32),
        "zenith_node_spec_set_label": ([NodeSpecPtr, c_char_p, c_char_p, _Err], c_int32),
        # queue spec builder
        "zenith_queue_spec_new": ([c_char_p, POINTER(QueueSpecPtr), _Err], c_int32),
        "zenith_queue_spec_free": ([QueueSpecPtr], None),
        "zenith_queue_spec_set_limit": ([QueueSpecPtr, c_int32, c_uint64, c_uint64, c_uint64, _Err], c_int32),
        "zenith_queue_spec_set_cohort": ([QueueSpecPtr, c_char_p, c_uint32, _Err], c_int32),
        "zenith_scheduler_set_queue": ([SchedulerPtr, QueueSpecPtr, _Err], c_int32),
        # scheduler
        "zenith_scheduler_new": ([SchedulerOptionsPtr, POINTER(SchedulerPtr), _Err], c_int32),
        "zenith_scheduler_free": ([SchedulerPtr], None),
        "zenith_scheduler_schedule": ([SchedulerPtr, c_uint64, POINTER(DecisionsPtr), _Err], c_int32),
        "zenith_scheduler_next_wakeup": ([SchedulerPtr, POINTER(c_uint64), _Err], c_int32),
        "zenith_scheduler_compact_journal": ([SchedulerPtr, _Err], c_int32),
        "zenith_scheduler_get_stats": ([SchedulerPtr, POINTER(zenith_scheduler_stats), _Err], c_int32),
        "zenith_scheduler_node_add": ([SchedulerPtr, NodeSpecPtr, c_uint64, POINTER(c_uint32), _Err], c_int32),
        "zenith_scheduler_node_remove": ([SchedulerPtr, c_char_p, c_uint64, _Err], c_int32),
        "zenith_scheduler_node_heartbeat": ([SchedulerPtr, c_char_p, c_uint64, _Err], c_int32),
        "zenith_scheduler_node_drain": ([SchedulerPtr, c_char_p, c_uint64, _Err], c_int32),
        "zenith_scheduler_node_undrain": ([SchedulerPtr, c_char_p, c_uint64, _Err], c_int32),
        "zenith_scheduler_submit": ([SchedulerPtr, JobSpecPtr, c_uint64, _Err], c_int32),
        "zenith_scheduler_update": (
            [SchedulerPtr, c_uint64, c_uint32, c_int32, c_int32, c_int32, c_uint64, c_uint64, _Err],
            c_int32,
        ),
        "zenith_scheduler_cancel": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_job_started": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_job_progress": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_job_completed": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_job_failed": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_suspend": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_resume": ([SchedulerPtr, c_uint64, c_uint64, _Err], c_int32),
        "zenith_scheduler_job_state": ([SchedulerPtr, c_uint64, POINTER(c_int32), _Err], c_int32),
        "zenith_scheduler_test_only": ([SchedulerPtr, JobSpecPtr, POINTER(DecisionsPtr), _Err], c_int32),
        "zenith_scheduler_test_only_job": ([SchedulerPtr, c_uint64, POINTER(DecisionsPtr), _Err], c_int32),
        "zenith_scheduler_will_run": ([SchedulerPtr, JobSpecPtr, POINTER(c_uint64), _Err], c_int32),
        "zenith_scheduler_will_run_job": ([SchedulerPtr, c_uint64, POINTER(c_uint64), _Err], c_int32),
        # decisions
        "zenith_scheduler_decisions_free": ([DecisionsPtr], None),
        "zenith_scheduler_decisions_len": ([DecisionsPtr], c_size_t),
        "zenith_scheduler_decisions_get": (
            [DecisionsPtr, c_size_t, POINTER(zenith_scheduler_decision), _Err],
            c_int32,
        ),
        "zenith_scheduler_decisions_member": (
            [DecisionsPtr, c_size_t, c_size_t, POINTER(zenith_scheduler_member), _Err],
            c_int32,
        ),
        "zenith_scheduler_decisions_member_gpu": (
            [DecisionsPtr, c_size_t, c_size_t, c_size_t, POINTER(c_uint32), POINTER(c_uint32), _Err],
            c_int32,
        ),
    }
)

# ==== end of the gang scheduler block =============================================================


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
