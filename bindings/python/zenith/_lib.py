"""Finding and loading libzenith.so, and the C declarations of include/zenith.h in ctypes.

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

# ---- Constants (#defines of zenith.h) ----------------------------------------------------------

ZENITH_OK = 0
ZENITH_DONE = 1
ZENITH_DEFAULT_BATCH_SIZE = 1024
ZENITH_RESUME_STATE_SIZE = 96
MAX_WORKERS = 256

ZENITH_SHUFFLE_NONE = 0
ZENITH_SHUFFLE_GLOBAL = 1
ZENITH_SHUFFLE_BLOCK = 2

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

kDLCPU = 1
DLPACK_FLAG_BITMASK_READ_ONLY = 1 << 0
DLPACK_FLAG_BITMASK_IS_COPIED = 1 << 1


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


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

# ---- zenith_stats -------------------------------------------------------------------------------


class zenith_stats(ctypes.Structure):
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


# ---- Opaque handles: distinct pointer types, so ctypes rejects a handle of the wrong kind -------


class zenith_error(ctypes.Structure):
    pass


class zenith_loader(ctypes.Structure):
    pass


class zenith_loader_options(ctypes.Structure):
    pass


class zenith_batch(ctypes.Structure):
    pass


ErrorPtr = POINTER(zenith_error)
LoaderPtr = POINTER(zenith_loader)
OptionsPtr = POINTER(zenith_loader_options)
BatchPtr = POINTER(zenith_batch)
TensorPtr = POINTER(DLManagedTensorVersioned)
_Err = POINTER(ErrorPtr)

SIGNATURES = {
    "zenith_version": ([], c_char_p),
    "zenith_version_number": ([], c_uint32),
    "zenith_status_str": ([c_int32], c_char_p),
    "zenith_error_code": ([ErrorPtr], c_int32),
    "zenith_error_message": ([ErrorPtr], c_char_p),
    "zenith_error_free": ([ErrorPtr], None),
    "zenith_loader_options_new": ([POINTER(OptionsPtr)], c_int32),
    "zenith_loader_options_free": ([OptionsPtr], None),
    "zenith_loader_options_set_batch_size": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_shuffle": ([OptionsPtr, c_int32, _Err], c_int32),
    "zenith_loader_options_set_seed": ([OptionsPtr, c_uint64, _Err], c_int32),
    "zenith_loader_options_set_drop_last": ([OptionsPtr, c_bool, _Err], c_int32),
    "zenith_loader_options_set_num_workers": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_prefetch": ([OptionsPtr, c_size_t, _Err], c_int32),
    "zenith_loader_options_set_shard": ([OptionsPtr, c_uint32, c_uint32, _Err], c_int32),
    "zenith_loader_options_set_columns": ([OptionsPtr, POINTER(c_char_p), c_size_t, _Err], c_int32),
    "zenith_loader_options_set_memory_budget": ([OptionsPtr, c_uint64, _Err], c_int32),
    "zenith_loader_options_set_resume_state": ([OptionsPtr, POINTER(c_uint8), c_size_t, _Err], c_int32),
    "zenith_loader_open": ([c_char_p, OptionsPtr, POINTER(LoaderPtr), _Err], c_int32),
    "zenith_loader_schema": ([LoaderPtr, POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_next": ([LoaderPtr, POINTER(ArrowArray), POINTER(ArrowSchema), _Err], c_int32),
    "zenith_loader_next_batch": ([LoaderPtr, POINTER(BatchPtr), _Err], c_int32),
    "zenith_loader_export_stream": ([LoaderPtr, c_void_p, _Err], c_int32),
    "zenith_loader_stats": ([LoaderPtr, POINTER(zenith_stats), _Err], c_int32),
    "zenith_loader_num_batches": ([LoaderPtr], c_uint64),
    "zenith_loader_set_epoch": ([LoaderPtr, c_uint64, _Err], c_int32),
    "zenith_loader_save_state": ([LoaderPtr, POINTER(c_uint8), c_size_t, POINTER(c_size_t), _Err], c_int32),
    "zenith_loader_free": ([LoaderPtr], None),
    "zenith_batch_num_rows": ([BatchPtr], c_size_t),
    "zenith_batch_export_arrow": ([BatchPtr, c_void_p, c_void_p, _Err], c_int32),
    "zenith_batch_column_dlpack": ([BatchPtr, c_char_p, POINTER(TensorPtr), _Err], c_int32),
    "zenith_batch_column_dlpack_by_index": ([BatchPtr, c_size_t, POINTER(TensorPtr), _Err], c_int32),
    "zenith_batch_free": ([BatchPtr], None),
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
            loaded = ctypes.CDLL(str(path))
            for name, (argtypes, restype) in SIGNATURES.items():
                try:
                    fn = getattr(loaded, name)
                except AttributeError:
                    raise ImportError(f"zenith: {path} does not export {name} (an older libzenith?)") from None
                fn.argtypes = argtypes
                fn.restype = restype
            _path = path
            _lib = loaded
    return _lib


def library_path() -> pathlib.Path:
    """The path of the library this process loaded."""
    lib()
    assert _path is not None
    return _path


# ---- Sharding, the automatic shuffle, bounded waits (appended) -------------------------------------

ZENITH_WOULD_BLOCK = 2
ZENITH_ERR_OUT_OF_MEMORY = -11
ZENITH_SHUFFLE_AUTO = 3
ZENITH_SHARD_FROM_NONE = 0
ZENITH_SHARD_FROM_OPTIONS = 1
ZENITH_SHARD_FROM_TORCH = 2
ZENITH_SHARD_FROM_SLURM = 3

SIGNATURES.update(
    {
        "zenith_loader_options_set_shard_none": ([OptionsPtr, _Err], c_int32),
        "zenith_loader_options_set_shard_drop_remainder": ([OptionsPtr, c_bool, _Err], c_int32),
        "zenith_loader_next_timeout": ([LoaderPtr, c_uint64, POINTER(ArrowArray), POINTER(ArrowSchema), _Err], c_int32),
        "zenith_loader_next_batch_timeout": ([LoaderPtr, c_uint64, POINTER(BatchPtr), _Err], c_int32),
    }
)
