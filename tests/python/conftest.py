"""A small ctypes shim over libzenith.so for the pyarrow import tests.

It declares the Arrow C Data / C Stream Interface structs as they appear in include/zenith.h, the
signature (argtypes and restype) of every libzenith function the tests call, and a few helpers
that turn a failing status into a Python exception. It is a test shim, not the Python binding.

The library and the datasets come from ZENITH_LIB_DIR and ZENITH_TEST_DATA (exported by the
Makefile), defaulting to target/release and tests/data/generated in this repository.
"""

import ctypes
import os
import pathlib
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint32, c_void_p

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LIB_DIR = pathlib.Path(os.environ.get("ZENITH_LIB_DIR") or REPO / "target" / "release")
DATA_DIR = pathlib.Path(os.environ.get("ZENITH_TEST_DATA") or REPO / "tests" / "data" / "generated")

# Status codes, as #defined in include/zenith.h.
ZENITH_OK = 0
ZENITH_DONE = 1
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

# Shuffle modes.
ZENITH_SHUFFLE_NONE = 0
ZENITH_SHUFFLE_GLOBAL = 1
ZENITH_SHUFFLE_BLOCK = 2

ALL_STATUSES = [
    ZENITH_OK,
    ZENITH_DONE,
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


# ---- Arrow C Data Interface / C Stream Interface (the canonical structs of zenith.h) ----------


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


# ---- Opaque handles: distinct pointer types, so ctypes rejects a handle of the wrong kind -----


class zenith_error(ctypes.Structure):
    pass


class zenith_loader(ctypes.Structure):
    pass


class zenith_loader_options(ctypes.Structure):
    pass


ErrorPtr = POINTER(zenith_error)
LoaderPtr = POINTER(zenith_loader)
OptionsPtr = POINTER(zenith_loader_options)

_SIGNATURES = {
    "zenith_error_code": ([ErrorPtr], c_int32),
    "zenith_error_message": ([ErrorPtr], c_char_p),
    "zenith_error_free": ([ErrorPtr], None),
    "zenith_status_str": ([c_int32], c_char_p),
    "zenith_loader_options_new": ([POINTER(OptionsPtr)], c_int32),
    "zenith_loader_options_free": ([OptionsPtr], None),
    "zenith_loader_options_set_batch_size": ([OptionsPtr, c_size_t, POINTER(ErrorPtr)], c_int32),
    "zenith_loader_options_set_shuffle": ([OptionsPtr, c_int32, POINTER(ErrorPtr)], c_int32),
    "zenith_loader_open": ([c_char_p, OptionsPtr, POINTER(LoaderPtr), POINTER(ErrorPtr)], c_int32),
    "zenith_loader_schema": ([LoaderPtr, POINTER(ArrowSchema), POINTER(ErrorPtr)], c_int32),
    "zenith_loader_next": (
        [LoaderPtr, POINTER(ArrowArray), POINTER(ArrowSchema), POINTER(ErrorPtr)],
        c_int32,
    ),
    "zenith_loader_export_stream": (
        [LoaderPtr, POINTER(ArrowArrayStream), POINTER(ErrorPtr)],
        c_int32,
    ),
    "zenith_loader_free": ([LoaderPtr], None),
    "zenith_version": ([], c_char_p),
    "zenith_version_number": ([], c_uint32),
}


def load_library() -> ctypes.CDLL:
    path = LIB_DIR / "libzenith.so"
    if not path.exists():
        pytest.fail(f"{path} not found: run `make build` (or set ZENITH_LIB_DIR)", pytrace=False)
    lib = ctypes.CDLL(str(path))
    for name, (argtypes, restype) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restype
    return lib


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
