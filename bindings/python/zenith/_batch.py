"""Batches and tensors: owned `zenith_batch` handles, their Arrow export (the PyCapsule
protocol) and their columns as DLPack tensors."""

from __future__ import annotations

import ctypes
import functools

from . import _capsule, _errors, _lib

_DTYPE_CODES = {0: "int", 1: "uint", 2: "float", 4: "bfloat", 5: "complex", 6: "bool"}


class _BatchHandle:
    """Owns one `zenith_batch *`; frees it when closed or collected. Tensors and `Batch`
    objects share one handle, so it lives as long as any of them."""

    __slots__ = ("pointer", "__weakref__")

    def __init__(self, pointer):
        self.pointer = pointer

    def get(self):
        if not self.pointer:
            raise _errors.invalid("the batch is closed")
        return self.pointer

    def close(self) -> None:
        pointer, self.pointer = self.pointer, None
        if pointer:
            _lib.lib().zenith_batch_free(pointer)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


@functools.lru_cache(maxsize=None)
def _dtype_name(code: int, bits: int) -> str:
    kind = _DTYPE_CODES.get(code, f"code{code}_")
    return "bool" if kind == "bool" else f"{kind}{bits}"


def _export_column(handle: _BatchHandle, index: int):
    out, err = _lib.TensorPtr(), _errors.new_err()
    status = _lib.lib().zenith_batch_column_dlpack_by_index(handle.get(), index, ctypes.byref(out), ctypes.byref(err))
    _errors.check(status, err)
    return out


def _export_column_for_stream(handle: _BatchHandle, name: str, stream: int):
    """The column as a tensor for a consumer on `stream` (DLPack's stream values: -1, 1, 2 or a
    stream handle); on a device batch the consumer's stream waits for the copy."""
    out, err = _lib.TensorPtr(), _errors.new_err()
    status = _lib.lib().zenith_batch_column_dlpack_stream(
        handle.get(), name.encode("utf-8"), stream, ctypes.byref(out), ctypes.byref(err)
    )
    _errors.check(status, err)
    return out


class Tensor:
    """One column of a batch as a DLPack tensor on the CPU (``kDLCPU``, device 0).

    Hand it to any DLPack consumer: ``numpy.from_dlpack(t)``, ``torch.from_dlpack(t)``, ... It
    can be handed over several times; each import shares the batch's memory (zero copy, read-only:
    it may be a mapping of the file), except bool columns and misaligned buffers, which Zenith
    copies once per import (writable). ``shape``, ``dtype`` (``"int64"``, ``"float32"``,
    ``"bool"``, ...) and ``readonly`` describe it. The memory stays valid as long as any import
    of it lives, also after the loader is closed.
    """

    __slots__ = ("_handle", "_index", "_first", "name", "shape", "strides", "dtype", "readonly", "copied", "device")

    def __init__(self, handle: _BatchHandle, index: int, name: str):
        self._handle = handle
        self._index = index
        self._first = _export_column(handle, index)  # validates the column now; handed out first
        managed = self._first.contents
        t = managed.dl_tensor
        ndim = t.ndim
        self.name = name
        self.shape = tuple(t.shape[:ndim])
        self.strides = tuple(t.strides[:ndim])
        dtype = t.dtype
        self.dtype = _dtype_name(dtype.code, dtype.bits)
        flags = managed.flags
        self.readonly = bool(flags & _lib.DLPACK_FLAG_BITMASK_READ_ONLY)
        self.copied = bool(flags & _lib.DLPACK_FLAG_BITMASK_IS_COPIED)
        # (kDLCPU, 0), or (kDLCUDA, ordinal) for a loader opened with device="cuda:N".
        self.device = (t.device.device_type, t.device.device_id)
        if self.device[0] != _lib.kDLCPU:
            # A device tensor is exported per consumer stream in __dlpack__; the one made here
            # (on the legacy default stream) is not handed out.
            self.close()

    def __repr__(self) -> str:
        return f"zenith.Tensor(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __dlpack_device__(self) -> tuple:
        return self.device

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if self.device[0] != _lib.kDLCPU:
            return self._dlpack_on_device(stream, max_version, dl_device, copy)
        if stream is not None and stream != -1:
            raise BufferError("a CPU tensor takes no stream (pass stream=None)")
        if dl_device is not None and tuple(dl_device) != (_lib.kDLCPU, 0):
            raise BufferError(f"the tensor is on the CPU (kDLCPU, 0), not on {tuple(dl_device)}")
        if copy:
            raise BufferError("zenith exports without copying; import with copy=None or False")
        if self._first:
            tensor, self._first = self._first, None
        else:
            tensor = _export_column(self._handle, self._index)
        if copy is False and tensor.contents.flags & _lib.DLPACK_FLAG_BITMASK_IS_COPIED:
            tensor.contents.deleter(tensor)
            raise BufferError(f"column {self.name!r} ({self.dtype}) cannot be exported without a copy")
        try:
            if max_version is None or max_version[0] < 1:
                return _capsule.legacy_capsule(tensor)
            return _capsule.versioned_capsule(tensor)
        except BaseException:
            tensor.contents.deleter(tensor)
            raise

    def _dlpack_on_device(self, stream, max_version, dl_device, copy):
        if dl_device is not None and tuple(dl_device) != self.device:
            raise BufferError(f"the tensor is on {self.device}, not on {tuple(dl_device)}")
        if copy:
            raise BufferError("zenith exports without copying; import with copy=None or False")
        # The array API's None means the legacy default stream (1) for CUDA.
        value = 1 if stream is None else int(stream)
        tensor = _export_column_for_stream(self._handle, self.name, value)
        try:
            if max_version is None or max_version[0] < 1:
                return _capsule.legacy_capsule(tensor)
            return _capsule.versioned_capsule(tensor)
        except BaseException:
            tensor.contents.deleter(tensor)
            raise

    def close(self) -> None:
        """Releases the tensor exported ahead (imports already made stay valid)."""
        first, self._first = self._first, None
        if first:
            first.contents.deleter(first)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Batch:
    """One batch, owned: what iteration yields when pyarrow is not installed (and what
    :meth:`zenith.Loader.next_batch` returns).

    It implements ``__arrow_c_array__`` and ``__arrow_c_schema__`` (the Arrow PyCapsule protocol),
    so pyarrow (``pa.record_batch(b)``), nanoarrow (``na.Array(b)``), polars and others import it
    without copying; ``column(name)`` or ``tensors()`` give DLPack tensors. ``close()`` frees it
    early; exports already made stay valid.
    """

    __slots__ = ("_handle", "_names")

    def __init__(self, handle: _BatchHandle, names: list):
        self._handle = handle
        self._names = names

    @property
    def num_rows(self) -> int:
        return _lib.lib().zenith_batch_num_rows(self._handle.get())

    def __len__(self) -> int:
        return self.num_rows

    @property
    def column_names(self) -> list:
        return list(self._names)

    def __repr__(self) -> str:
        rows = self.num_rows if self._handle.pointer else "closed"
        return f"zenith.Batch(rows={rows}, columns={self._names})"

    def _export(self, with_schema: bool):
        array = _capsule.alloc(_lib.ArrowArray)
        schema = _capsule.alloc(_lib.ArrowSchema)
        err = _errors.new_err()
        status = _lib.lib().zenith_batch_export_arrow(
            self._handle.get(),
            ctypes.cast(array, ctypes.POINTER(_lib.ArrowArray)),
            ctypes.cast(schema, ctypes.POINTER(_lib.ArrowSchema)),
            ctypes.byref(err),
        )
        if status < 0:
            _capsule.raw_free(array)
            _capsule.raw_free(schema)
            _errors.check(status, err)
        # From here the capsules own the structs (their destructors release and free them).
        schema_capsule = _capsule.schema_capsule(schema)
        array_capsule = _capsule.array_capsule(array)
        return schema_capsule, array_capsule

    def __arrow_c_array__(self, requested_schema=None):
        """(schema capsule, array capsule): the batch as a struct array, one child per column.
        `requested_schema` is not used: the data comes in its own schema."""
        return self._export(True)

    def __arrow_c_schema__(self):
        schema_capsule, _array_capsule = self._export(True)
        return schema_capsule

    def column(self, name) -> Tensor:
        """The column `name` (or at index `name`) as a DLPack :class:`Tensor`."""
        if isinstance(name, int) and not isinstance(name, bool):
            if not 0 <= name < len(self._names):
                raise _errors.invalid(f"column index {name} out of range ({len(self._names)} columns)")
            return Tensor(self._handle, name, self._names[name])
        if name not in self._names:
            raise _errors.invalid(f"no column `{name}` in this batch (columns: {self._names})")
        return Tensor(self._handle, self._names.index(name), name)

    def tensors(self) -> dict:
        """Every column as a DLPack :class:`Tensor`, by name (the first of repeated names)."""
        return tensors_of(self._handle, self._names)

    def to_pyarrow(self):
        """A ``pyarrow.RecordBatch`` sharing this batch's memory (needs pyarrow)."""
        import pyarrow as pa

        return pa.record_batch(self)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tensors_of(handle: _BatchHandle, names: list) -> dict:
    out = {}
    for index, name in enumerate(names):
        if name not in out:
            out[name] = Tensor(handle, index, name)
    return out
