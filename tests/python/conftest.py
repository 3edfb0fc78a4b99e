"""A small ctypes shim over libzenith.so for the pyarrow and numpy import tests.

The C declarations (the Arrow C Data / C Stream Interface and DLPack structs, zenith_stats,
the opaque handle types, every function's argtypes and restype, the #defined constants) are
the Python binding's own mirror of include/zenith.h, ``bindings/python/zenith/_lib.py``,
imported from this checkout (test_ctypes_mirror.py checks it against the C compiler). This file
adds a few helpers that turn a failing status into a Python exception, and `DLPackTensor`, a
minimal producer of the DLPack Python protocol (`__dlpack__`, `__dlpack_device__`) so that
`numpy.from_dlpack` can import Zenith's tensors. It is a test shim, not the Python binding.

The library and the datasets come from ZENITH_LIB_DIR and ZENITH_TEST_DATA (exported by the
Makefile), defaulting to target/release and tests/data/generated in this repository.
"""

import ctypes
import os
import pathlib
import sys
from ctypes import c_void_p

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LIB_DIR = pathlib.Path(os.environ.get("ZENITH_LIB_DIR") or REPO / "target" / "release")
DATA_DIR = pathlib.Path(os.environ.get("ZENITH_TEST_DATA") or REPO / "tests" / "data" / "generated")

# The binding's package from this checkout, ahead of any installed copy.
sys.path.insert(0, str(REPO / "bindings" / "python"))
from zenith import _capsule, _lib  # noqa: E402
from zenith._lib import (  # noqa: E402,F401  (re-exported to the tests)
    DLPACK_FLAG_BITMASK_IS_COPIED,
    DLPACK_FLAG_BITMASK_READ_ONLY,
    ZENITH_DONE,
    ZENITH_ERR_BUFFER_TOO_SMALL,
    ZENITH_ERR_FORMAT,
    ZENITH_ERR_INTERNAL,
    ZENITH_ERR_INVALID_ARGUMENT,
    ZENITH_ERR_IO,
    ZENITH_ERR_NOT_FOUND,
    ZENITH_ERR_NULL_ARGUMENT,
    ZENITH_ERR_PANIC,
    ZENITH_ERR_SCHEMA_MISMATCH,
    ZENITH_ERR_UNSUPPORTED,
    ZENITH_IO_MMAP,
    ZENITH_IO_PREAD,
    ZENITH_IO_URING,
    ZENITH_OK,
    ZENITH_SHUFFLE_BLOCK,
    ZENITH_SHUFFLE_GLOBAL,
    ZENITH_SHUFFLE_NONE,
    ZENITH_WOULD_BLOCK,
    ArrowArray,
    ArrowArrayStream,
    ArrowSchema,
    BatchPtr,
    DLDataType,
    DLDevice,
    DLManagedTensorVersioned,
    DLPackVersion,
    DLTensor,
    ErrorPtr,
    LoaderPtr,
    OptionsPtr,
    ServerPtr,
    TensorPtr,
    TopologyPtr,
    kDLBool,
    kDLCPU,
    kDLFloat,
    kDLInt,
    kDLUInt,
)
from zenith._lib import zenith_stats as ZenithStats  # noqa: E402,F401

ALL_STATUSES = [
    ZENITH_OK,
    ZENITH_DONE,
    ZENITH_WOULD_BLOCK,
    ZENITH_ERR_NULL_ARGUMENT,
    ZENITH_ERR_INVALID_ARGUMENT,
    ZENITH_ERR_IO,
    ZENITH_ERR_NOT_FOUND,
    ZENITH_ERR_FORMAT,
    ZENITH_ERR_UNSUPPORTED,
    ZENITH_ERR_PANIC,
    ZENITH_ERR_INTERNAL,
    ZENITH_ERR_SCHEMA_MISMATCH,
    ZENITH_ERR_BUFFER_TOO_SMALL,
]


def library_file() -> pathlib.Path:
    """$ZENITH_LIB_DIR/libzenith.so; fails the test (not skips it) when it is missing."""
    path = LIB_DIR / "libzenith.so"
    if not path.exists():
        pytest.fail(f"{path} not found: run `make build` (or set ZENITH_LIB_DIR)", pytrace=False)
    return path


def load_library() -> ctypes.CDLL:
    """The library under test with every function of the header declared (zenith._lib)."""
    return _lib.load(library_file())


# ---- Helpers ----------------------------------------------------------------------------------


class ZenithError(Exception):
    """A failing call: its returned status and the code and message of its zenith_error."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(f"status {status} (error code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class Zenith:
    """The loaded library (`.lib`, raw functions) plus helpers that raise ZenithError."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        self.opened = []  # every Loader made by open(), for the fixture to free

    def take_error(self, err) -> tuple:
        """Reads (code, message) from a zenith_error and frees it."""
        assert err, "a failing call with a non-NULL err must set *err"
        code = self.lib.zenith_error_code(err)
        message = self.lib.zenith_error_message(err).decode("utf-8")
        self.lib.zenith_error_free(err)
        return code, message

    def check(self, status: int, err) -> int:
        """Returns a non-negative status; raises ZenithError (freeing the error) otherwise."""
        if status < 0:
            raise ZenithError(status, *self.take_error(err))
        assert not err, "a successful call must not set *err"
        return status

    def open(self, path, batch_size=None, shuffle=ZENITH_SHUFFLE_NONE) -> "Loader":
        """Opens a loader on `path` (str, bytes or PathLike), optionally with a batch size; rows
        come in dataset order unless `shuffle` says otherwise (the library's default is global)."""
        lib = self.lib
        opts = OptionsPtr()
        assert lib.zenith_loader_options_new(ctypes.byref(opts)) == ZENITH_OK
        try:
            err = ErrorPtr()
            self.check(lib.zenith_loader_options_set_shuffle(opts, shuffle, ctypes.byref(err)), err)
            if batch_size is not None:
                err = ErrorPtr()
                status = lib.zenith_loader_options_set_batch_size(opts, batch_size, ctypes.byref(err))
                self.check(status, err)
            out, err = LoaderPtr(), ErrorPtr()
            status = lib.zenith_loader_open(os.fsencode(path), opts, ctypes.byref(out), ctypes.byref(err))
            self.check(status, err)
        finally:
            lib.zenith_loader_options_free(opts)  # NULL when no options were made: a no-op
        assert out, "zenith_loader_open returned ZENITH_OK without a loader"
        loader = Loader(self, out)
        self.opened.append(loader)
        return loader


class Loader:
    """An open zenith_loader. `free()` is idempotent; the `zenith` fixture frees leftovers."""

    def __init__(self, zenith: Zenith, handle):
        self.zenith = zenith
        self.handle = handle

    def free(self) -> None:
        if self.handle:
            self.zenith.lib.zenith_loader_free(self.handle)
        self.handle = LoaderPtr()

    def schema(self) -> ArrowSchema:
        out, err = ArrowSchema(), ErrorPtr()
        status = self.zenith.lib.zenith_loader_schema(self.handle, ctypes.byref(out), ctypes.byref(err))
        assert self.zenith.check(status, err) == ZENITH_OK
        return out

    def next(self, array: ArrowArray, schema=None) -> int:
        """Fills `array` (and `schema` unless None); returns ZENITH_OK or ZENITH_DONE."""
        err = ErrorPtr()
        schema_ptr = ctypes.byref(schema) if schema is not None else None
        status = self.zenith.lib.zenith_loader_next(self.handle, ctypes.byref(array), schema_ptr, ctypes.byref(err))
        return self.zenith.check(status, err)

    def export_stream(self) -> ArrowArrayStream:
        out, err = ArrowArrayStream(), ErrorPtr()
        status = self.zenith.lib.zenith_loader_export_stream(self.handle, ctypes.byref(out), ctypes.byref(err))
        assert self.zenith.check(status, err) == ZENITH_OK
        return out

    def next_batch(self):
        """The next batch as a `Batch` (free it, or let it go), or None at the end of the epoch."""
        out, err = BatchPtr(), ErrorPtr()
        status = self.zenith.lib.zenith_loader_next_batch(self.handle, ctypes.byref(out), ctypes.byref(err))
        if self.zenith.check(status, err) == ZENITH_DONE:
            return None
        assert out, "zenith_loader_next_batch returned ZENITH_OK without a batch"
        return Batch(self.zenith, out)


class Batch:
    """An owned zenith_batch. `free()` is idempotent, and `__del__` frees a forgotten one."""

    def __init__(self, zenith: Zenith, handle):
        self.zenith = zenith
        self.handle = handle

    def free(self) -> None:
        if self.handle:
            self.zenith.lib.zenith_batch_free(self.handle)
        self.handle = BatchPtr()

    __del__ = free

    def num_rows(self) -> int:
        return self.zenith.lib.zenith_batch_num_rows(self.handle)

    def column_dlpack(self, column) -> "DLPackTensor":
        """The column (a name, or an index) as a DLPackTensor; raises ZenithError on failure."""
        out, err = TensorPtr(), ErrorPtr()
        if isinstance(column, int):
            status = self.zenith.lib.zenith_batch_column_dlpack_by_index(
                self.handle, column, ctypes.byref(out), ctypes.byref(err)
            )
        else:
            name = column.encode("utf-8") if isinstance(column, str) else column
            status = self.zenith.lib.zenith_batch_column_dlpack(self.handle, name, ctypes.byref(out), ctypes.byref(err))
        self.zenith.check(status, err)
        assert out, "ZENITH_OK without a tensor"
        return DLPackTensor(out)


# ---- The DLPack Python protocol over a DLManagedTensorVersioned* --------------------------------
#
# https://dmlc.github.io/dlpack/latest/python_spec.html: `__dlpack__` returns a PyCapsule named
# "dltensor_versioned" holding the DLManagedTensorVersioned*. A consumer that takes the tensor
# renames the capsule "used_dltensor_versioned" and calls the deleter itself when done; a capsule
# that dies unconsumed must call the deleter from its destructor.

_CAPSULE_NAME = ctypes.create_string_buffer(b"dltensor_versioned")  # PyCapsule keeps the pointer
_PyCapsule_Destructor = _capsule.PyCapsule_Destructor
# The binding's private pointers to PyCapsule_New/IsValid/GetPointer (ctypes.pythonapi's own
# function objects are process-wide, so nobody should set their argtypes). IsValid and GetPointer
# take the capsule as c_void_p, never as py_object: in the destructor that keeps the calls from
# touching the dying capsule's reference count.
_PyCapsule_New = _capsule.PyCapsule_New
_PyCapsule_IsValid = _capsule.PyCapsule_IsValid
_PyCapsule_GetPointer = _capsule.PyCapsule_GetPointer

UNCONSUMED_CAPSULES_DELETED = [0]  # how many tensors the capsule destructor released (for tests)


@_PyCapsule_Destructor
def _capsule_destructor(capsule: int) -> None:
    # Still named "dltensor_versioned": nobody took the tensor, so it is released here.
    if _PyCapsule_IsValid(capsule, ctypes.addressof(_CAPSULE_NAME)):
        address = _PyCapsule_GetPointer(capsule, ctypes.addressof(_CAPSULE_NAME))
        tensor = ctypes.cast(address, TensorPtr)
        tensor.contents.deleter(tensor)
        UNCONSUMED_CAPSULES_DELETED[0] += 1


class DLPackTensor:
    """Owns one tensor from zenith_batch_column_dlpack until `__dlpack__` hands it over (once);
    `close()` (or `__del__`) calls the deleter of a tensor never handed over."""

    def __init__(self, pointer):
        self.pointer = pointer

    @property
    def managed(self) -> DLManagedTensorVersioned:
        assert self.pointer, "the tensor was handed over or closed"
        return self.pointer.contents

    def shape(self) -> tuple:
        t = self.managed.dl_tensor
        return tuple(t.shape[k] for k in range(t.ndim))

    def strides(self) -> tuple:
        t = self.managed.dl_tensor
        return tuple(t.strides[k] for k in range(t.ndim))

    def __dlpack_device__(self) -> tuple:
        return (kDLCPU, 0)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if not self.pointer:
            raise BufferError("this tensor was already exported (or closed)")
        if stream is not None:
            raise BufferError("a CPU tensor takes no stream")
        if dl_device is not None and tuple(dl_device) != (kDLCPU, 0):
            raise BufferError(f"the tensor is on the CPU, not on {dl_device}")
        if copy:
            raise BufferError("this producer cannot copy; import without copy=True")
        if max_version is None or max_version[0] < 1:
            raise BufferError("only versioned (DLPack >= 1.0) capsules are produced")
        capsule = _PyCapsule_New(
            ctypes.cast(self.pointer, c_void_p), ctypes.addressof(_CAPSULE_NAME), _capsule_destructor
        )
        self.pointer = TensorPtr()  # the capsule, then its consumer, owns it now
        return capsule

    def close(self) -> None:
        if self.pointer:
            pointer, self.pointer = self.pointer, TensorPtr()
            pointer.contents.deleter(pointer)

    __del__ = close


@pytest.fixture(scope="session")
def lib() -> ctypes.CDLL:
    return load_library()


@pytest.fixture
def zenith(lib):
    """A Zenith whose loaders opened during the test are freed when it ends."""
    z = Zenith(lib)
    yield z
    for loader in z.opened:
        loader.free()


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    if not (DATA_DIR / "basic.arrow").exists():
        pytest.fail(f"no datasets in {DATA_DIR}: run `make data` (or set ZENITH_TEST_DATA)", pytrace=False)
    return DATA_DIR
