"""A minimal ctypes binding of libzenith for the benchmark: the raw C API, without the Python
package's own logic (epochs, capsules), so the numbers show the library's speed.

Loads target/release/libzenith.so (or $ZENITH_LIB_DIR/libzenith.so), opens a loader with the
options the benchmark varies, exports the rest of the epoch as an Arrow C stream and imports it
into pyarrow with `pa.RecordBatchReader._import_from_c`, and reads `zenith_loader_stats`.

The C declarations (structs, handle types, every function's argtypes and restype, constants)
are the Python binding's mirror of include/zenith.h, bindings/python/zenith/_lib.py, imported
from this checkout; a negative status raises ZenithError with the message of the zenith_error
the call returned.
"""

import ctypes
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

# The binding's package from this checkout, ahead of any installed copy.
sys.path.insert(0, str(REPO / "bindings" / "python"))
from zenith import _lib  # noqa: E402
from zenith._lib import (  # noqa: E402,F401  (used by bench_loader.py)
    ZENITH_ERR_INTERNAL,
    ZENITH_OK,
    ZENITH_SHUFFLE_BLOCK,
    ZENITH_SHUFFLE_GLOBAL,
    ZENITH_SHUFFLE_NONE,
    ArrowArrayStream,
    ErrorPtr,
    LoaderPtr,
    OptionsPtr,
)
from zenith._lib import zenith_stats as ZenithStats  # noqa: E402

SHUFFLE_NAMES = {ZENITH_SHUFFLE_NONE: "none", ZENITH_SHUFFLE_GLOBAL: "global", ZENITH_SHUFFLE_BLOCK: "block"}


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
    """The loaded library with every function declared (loaded once per process)."""
    global _LIB
    if _LIB is None:
        path = library_path()
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `make build` (or set ZENITH_LIB_DIR)")
        _LIB = _lib.load(path)
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
            raise ZenithError(ZENITH_ERR_INTERNAL, "zenith_loader_options_new failed")
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
        return {name: getattr(out, name) for name, _ in ZenithStats._fields_ if name != "struct_size"}
