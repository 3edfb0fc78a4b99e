"""A minimal ctypes binding of libzenith for the benchmark (the Python package is a later issue).

Loads target/release/libzenith.so (or $ZENITH_LIB_DIR/libzenith.so), opens a loader with the
options the benchmark varies, exports the rest of the epoch as an Arrow C stream and imports it
into pyarrow with `pa.RecordBatchReader._import_from_c`, and reads `zenith_loader_stats`.

Every struct mirrors include/zenith.h exactly; a negative status raises ZenithError with the
message of the zenith_error the call returned.
"""

import ctypes
import os
import pathlib
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p

REPO = pathlib.Path(__file__).resolve().parents[1]

# Status codes (include/zenith.h).
ZENITH_OK = 0
ZENITH_DONE = 1
ZENITH_ERR_UNSUPPORTED = -6

# Shuffle modes (include/zenith.h).
ZENITH_SHUFFLE_NONE = 0
ZENITH_SHUFFLE_GLOBAL = 1
ZENITH_SHUFFLE_BLOCK = 2
SHUFFLE_NAMES = {ZENITH_SHUFFLE_NONE: "none", ZENITH_SHUFFLE_GLOBAL: "global", ZENITH_SHUFFLE_BLOCK: "block"}


# ---- Arrow C Stream Interface (only the stream struct is needed: pyarrow reads it) ------------


class ArrowArrayStream(ctypes.Structure):
    _fields_ = [
        ("get_schema", c_void_p),
        ("get_next", c_void_p),
        ("get_last_error", c_void_p),
        ("release", c_void_p),
        ("private_data", c_void_p),
    ]


# ---- zenith_stats, field for field as in include/zenith.h -------------------------------------


class ZenithStats(ctypes.Structure):
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
    ]

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name, _ in self._fields_ if name != "struct_size"}


class _Opaque(ctypes.Structure):
    pass


class _Error(_Opaque):
    pass


class _Loader(_Opaque):
    pass


class _Options(_Opaque):
    pass


ErrorPtr = POINTER(_Error)
LoaderPtr = POINTER(_Loader)
OptionsPtr = POINTER(_Options)
_E = POINTER(ErrorPtr)

_SIGNATURES = {
    "zenith_error_code": ([ErrorPtr], c_int32),
    "zenith_error_message": ([ErrorPtr], c_char_p),
    "zenith_error_free": ([ErrorPtr], None),
    "zenith_status_str": ([c_int32], c_char_p),
    "zenith_version": ([], c_char_p),
    "zenith_loader_options_new": ([POINTER(OptionsPtr)], c_int32),
    "zenith_loader_options_free": ([OptionsPtr], None),
    "zenith_loader_options_set_batch_size": ([OptionsPtr, c_size_t, _E], c_int32),
    "zenith_loader_options_set_shuffle": ([OptionsPtr, c_int32, _E], c_int32),
    "zenith_loader_options_set_seed": ([OptionsPtr, c_uint64, _E], c_int32),
    "zenith_loader_options_set_num_workers": ([OptionsPtr, c_size_t, _E], c_int32),
    "zenith_loader_options_set_prefetch": ([OptionsPtr, c_size_t, _E], c_int32),
    "zenith_loader_options_set_shard": ([OptionsPtr, c_uint32, c_uint32, _E], c_int32),
    "zenith_loader_options_set_numa_node": ([OptionsPtr, c_int32, _E], c_int32),
    "zenith_loader_open": ([c_char_p, OptionsPtr, POINTER(LoaderPtr), _E], c_int32),
    "zenith_loader_export_stream": ([LoaderPtr, POINTER(ArrowArrayStream), _E], c_int32),
    "zenith_loader_stats": ([LoaderPtr, POINTER(ZenithStats), _E], c_int32),
    "zenith_loader_num_batches": ([LoaderPtr], c_uint64),
    "zenith_loader_free": ([LoaderPtr], None),
}


class ZenithError(Exception):
    """A failing call: its (negative) status code and the library's message."""

    def __init__(self, code: int, message: str):
        super().__init__(f"zenith error {code}: {message}")
        self.code = code
        self.message = message


def library_path() -> pathlib.Path:
    lib_dir = os.environ.get("ZENITH_LIB_DIR") or str(REPO / "target" / "release")
    return pathlib.Path(lib_dir) / "libzenith.so"


_LIB = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded once per process)."""
    global _LIB
    if _LIB is None:
        path = library_path()
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `make build` (or set ZENITH_LIB_DIR)")
        handle = ctypes.CDLL(str(path))
        for name, (argtypes, restype) in _SIGNATURES.items():
            fn = getattr(handle, name)
            fn.argtypes = argtypes
            fn.restype = restype
        _LIB = handle
    return _LIB


def version() -> str:
    return lib().zenith_version().decode()


def _check(status: int, err: ErrorPtr) -> int:
    if status >= 0:
        return status
    zl = lib()
    if err:
        code = zl.zenith_error_code(err)
        message = zl.zenith_error_message(err).decode("utf-8", "replace")
        zl.zenith_error_free(err)
    else:
        code, message = status, zl.zenith_status_str(status).decode()
    raise ZenithError(code, message)


def _call(fn, *args) -> int:
    err = ErrorPtr()
    return _check(fn(*args, ctypes.byref(err)), err)


class Loader:
    """An open zenith_loader; use as a context manager or call close()."""

    def __init__(
        self,
        path,
        batch_size: int = 1024,
        shuffle: int = ZENITH_SHUFFLE_GLOBAL,
        seed: int = 0,
        num_workers: int = 2,
        prefetch: int = None,
        rank: int = 0,
        world_size: int = 1,
        numa_node: int = None,
    ):
        zl = lib()
        self._handle = LoaderPtr()
        opts = OptionsPtr()
        if zl.zenith_loader_options_new(ctypes.byref(opts)) != ZENITH_OK:
            raise ZenithError(-8, "zenith_loader_options_new failed")
        try:
            _call(zl.zenith_loader_options_set_batch_size, opts, batch_size)
            _call(zl.zenith_loader_options_set_shuffle, opts, shuffle)
            _call(zl.zenith_loader_options_set_seed, opts, seed)
            _call(zl.zenith_loader_options_set_num_workers, opts, num_workers)
            if prefetch is not None:
                _call(zl.zenith_loader_options_set_prefetch, opts, prefetch)
            _call(zl.zenith_loader_options_set_shard, opts, rank, world_size)
            if numa_node is not None:
                _call(zl.zenith_loader_options_set_numa_node, opts, numa_node)
            out = LoaderPtr()
            _call(zl.zenith_loader_open, os.fsencode(os.fspath(path)), opts, ctypes.byref(out))
            self._handle = out
        finally:
            zl.zenith_loader_options_free(opts)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._handle:
            lib().zenith_loader_free(self._handle)
        self._handle = LoaderPtr()

    def num_batches(self) -> int:
        return lib().zenith_loader_num_batches(self._handle)

    def reader(self):
        """The rest of the epoch as a pyarrow.RecordBatchReader (imported through the C stream)."""
        import pyarrow as pa

        stream = ArrowArrayStream()
        _call(lib().zenith_loader_export_stream, self._handle, ctypes.byref(stream))
        # pyarrow moves the stream out of `stream` (and releases it when the reader is done).
        return pa.RecordBatchReader._import_from_c(ctypes.addressof(stream))

    def stats(self) -> dict:
        out = ZenithStats()
        out.struct_size = ctypes.sizeof(ZenithStats)
        _call(lib().zenith_loader_stats, self._handle, ctypes.byref(out))
        return out.as_dict()
