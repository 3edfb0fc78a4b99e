"""PyCapsules around C structs, made with ctypes (no compiled extension).

A capsule owns what it points to until a consumer takes it:

* ``arrow_schema`` / ``arrow_array`` / ``arrow_array_stream`` (the Arrow PyCapsule protocol): the
  struct lives in memory from ``PyMem_RawMalloc``; a consumer moves its contents out (leaving
  ``release == NULL``); the capsule's destructor calls ``release`` if nobody did, then frees the
  memory.
* ``dltensor_versioned`` / ``dltensor`` (the DLPack protocol): a consumer that takes the tensor
  renames the capsule ``used_...`` and calls the deleter itself; the destructor of a capsule that
  still has its first name calls the deleter.

The Python C API is called through private function pointers, never through the process-wide
``ctypes.pythonapi`` attributes, whose argtypes other libraries set. The destructors are
C-callable ctypes thunks. Each thunk and each capsule name is pinned for the life of the process
(an extra reference, raw memory), so a capsule that dies during interpreter shutdown never calls
into freed memory.
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, POINTER, c_int, c_size_t, c_void_p

from . import _lib


def _c_api(name: str, restype, *argtypes):
    """A private ctypes function pointer to the Python C API function `name`.

    ``ctypes.pythonapi.<name>`` is one object per process: setting its ``argtypes`` changes
    them for every module, and others set them differently (dill, imported by torch and HF
    datasets, declares ``PyCapsule_GetPointer(py_object, c_char_p)``). A prototype of our own
    bound to the same symbol leaves ``ctypes.pythonapi`` untouched. PYFUNCTYPE, like
    ``pythonapi``, keeps the GIL during the call and raises a Python error the function set.
    """
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


# void (*)(PyObject *): the capsule arrives as a bare address (see PyCapsule_IsValid below).
PyCapsule_Destructor = CFUNCTYPE(None, c_void_p)

PyCapsule_New = _c_api("PyCapsule_New", ctypes.py_object, c_void_p, c_void_p, PyCapsule_Destructor)
# The destructors get the dying capsule as a bare address: c_void_p, never py_object, so these
# calls do not touch its reference count.
PyCapsule_IsValid = _c_api("PyCapsule_IsValid", c_int, c_void_p, c_void_p)
PyCapsule_GetPointer = _c_api("PyCapsule_GetPointer", c_void_p, c_void_p, c_void_p)

raw_malloc = _c_api("PyMem_RawMalloc", c_void_p, c_size_t)
raw_calloc = _c_api("PyMem_RawCalloc", c_void_p, c_size_t, c_size_t)
raw_free = _c_api("PyMem_RawFree", None, c_void_p)
_Py_IncRef = _c_api("Py_IncRef", None, ctypes.py_object)


def _pin(obj):
    """Keeps `obj` alive until the process exits (module teardown cannot free it)."""
    _Py_IncRef(obj)
    return obj


def _static_name(name: bytes) -> int:
    """A NUL-terminated copy of `name` in memory that is never freed."""
    address = raw_malloc(len(name) + 1)
    if not address:
        raise MemoryError
    ctypes.memmove(address, name + b"\0", len(name) + 1)
    return address


ARROW_SCHEMA = _static_name(b"arrow_schema")
ARROW_ARRAY = _static_name(b"arrow_array")
ARROW_ARRAY_STREAM = _static_name(b"arrow_array_stream")
DLTENSOR_VERSIONED = _static_name(b"dltensor_versioned")
DLTENSOR = _static_name(b"dltensor")


def alloc(struct_type) -> int:
    """Zeroed raw memory for one `struct_type` (so `release` reads NULL until filled)."""
    address = raw_calloc(1, ctypes.sizeof(struct_type))
    if not address:
        raise MemoryError
    return address


def _arrow_destructor(name: int, struct_type):
    pointer_type = POINTER(struct_type)

    @PyCapsule_Destructor
    def destructor(capsule):
        address = PyCapsule_GetPointer(capsule, name)
        if address:
            struct = struct_type.from_address(address)
            if struct.release:  # not moved out by a consumer
                struct.release(ctypes.cast(address, pointer_type))
            raw_free(address)

    return _pin(destructor)


_release_schema = _arrow_destructor(ARROW_SCHEMA, _lib.ArrowSchema)
_release_array = _arrow_destructor(ARROW_ARRAY, _lib.ArrowArray)
_release_stream = _arrow_destructor(ARROW_ARRAY_STREAM, _lib.ArrowArrayStream)


def schema_capsule(address: int):
    """Wraps a filled ArrowSchema at `address` (from `alloc`); the capsule owns it."""
    return PyCapsule_New(address, ARROW_SCHEMA, _release_schema)


def array_capsule(address: int):
    return PyCapsule_New(address, ARROW_ARRAY, _release_array)


def stream_capsule(address: int):
    return PyCapsule_New(address, ARROW_ARRAY_STREAM, _release_stream)


# ---- DLPack -----------------------------------------------------------------------------------


@PyCapsule_Destructor
def _delete_unused_versioned(capsule):
    # Still named "dltensor_versioned": no consumer took the tensor.
    if PyCapsule_IsValid(capsule, DLTENSOR_VERSIONED):
        address = PyCapsule_GetPointer(capsule, DLTENSOR_VERSIONED)
        tensor = ctypes.cast(address, _lib.TensorPtr)
        tensor.contents.deleter(tensor)


_pin(_delete_unused_versioned)

_LegacyDeleter = _lib.DLManagedTensor._fields_[2][1]


@_LegacyDeleter
def _delete_legacy(managed):
    # The legacy wrapper: its manager_ctx is the versioned tensor it borrows shape and data from.
    address = ctypes.cast(managed, c_void_p).value
    versioned = ctypes.cast(managed.contents.manager_ctx, _lib.TensorPtr)
    versioned.contents.deleter(versioned)
    raw_free(address)


_pin(_delete_legacy)


@PyCapsule_Destructor
def _delete_unused_legacy(capsule):
    if PyCapsule_IsValid(capsule, DLTENSOR):
        address = PyCapsule_GetPointer(capsule, DLTENSOR)
        _delete_legacy(ctypes.cast(address, POINTER(_lib.DLManagedTensor)))


_pin(_delete_unused_legacy)


def versioned_capsule(tensor) -> object:
    """A "dltensor_versioned" capsule that owns `tensor` (a TensorPtr)."""
    return PyCapsule_New(ctypes.cast(tensor, c_void_p), DLTENSOR_VERSIONED, _delete_unused_versioned)


def legacy_capsule(tensor) -> object:
    """A "dltensor" capsule (DLPack < 1.0) for consumers that ask for no version: a
    DLManagedTensor that shares the versioned tensor's DLTensor and deletes it when deleted."""
    address = alloc(_lib.DLManagedTensor)
    legacy = _lib.DLManagedTensor.from_address(address)
    legacy.dl_tensor = tensor.contents.dl_tensor  # a copy of the view; shape/strides stay shared
    legacy.manager_ctx = ctypes.cast(tensor, c_void_p)
    legacy.deleter = _delete_legacy
    try:
        return PyCapsule_New(address, DLTENSOR, _delete_unused_legacy)
    except BaseException:
        raw_free(address)
        raise


__all__ = [
    "PyCapsule_Destructor",
    "PyCapsule_GetPointer",
    "PyCapsule_IsValid",
    "PyCapsule_New",
    "alloc",
    "array_capsule",
    "legacy_capsule",
    "raw_free",
    "schema_capsule",
    "stream_capsule",
    "versioned_capsule",
]


_GetPointerOf = _c_api("PyCapsule_GetPointer", c_void_p, ctypes.py_object, ctypes.c_char_p)


def schema_pointer(capsule) -> int:
    """The `struct ArrowSchema *` inside an ``arrow_schema`` capsule (borrowed: the capsule keeps
    owning it; keep the capsule alive while the pointer is used). Raises ValueError for a capsule
    of another name."""
    return _GetPointerOf(capsule, b"arrow_schema")
