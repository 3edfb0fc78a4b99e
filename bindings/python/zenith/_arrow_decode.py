"""Arrow C Data arrays read in pure Python (ctypes), for what has no DLPack tensor form:

* :func:`to_pylist`: a column as a Python list, when pyarrow is not installed: numbers, bools,
  strings, binaries (fixed or variable width), lists (variable or fixed size), structs (as
  dicts), nulls and dictionary-encoded columns; nulls become None. Other types (temporal,
  decimal, maps, views, unions) raise :class:`zenith.UnsupportedError` naming pyarrow.
* :func:`list_lengths_and_values`: a variable-size list column of numbers or bools as numpy
  arrays (the lengths of its lists and their values one after the other), from which
  ``output="dlpack"`` builds padded tensors.

Both read a column in place (the struct array `zenith_batch_export_arrow` wrote) and copy what
they return, so the export may be released afterwards.
"""

from __future__ import annotations

import ctypes
import struct

from . import _errors

# Arrow format -> struct/numpy type code of its fixed-width values.
PRIMITIVES = {
    "c": "b",
    "C": "B",
    "s": "h",
    "S": "H",
    "i": "i",
    "I": "I",
    "l": "q",
    "L": "Q",
    "e": "e",
    "f": "f",
    "g": "d",
}
_BOOL = "b"
_OFFSET_WIDTHS = {"u": 4, "z": 4, "U": 8, "Z": 8, "+l": 4, "+L": 8}


def _unsupported(name: str, fmt: str, why: str):
    return _errors.UnsupportedError(
        _errors.Status.ERR_UNSUPPORTED, f"column `{name}` (Arrow format {fmt!r}): {why}"
    )


def _bytes_at(buffer, start: int, size: int) -> bytes:
    """`size` bytes of `buffer` (an address; None for a NULL buffer, which holds nothing) from
    byte `start`."""
    return ctypes.string_at(buffer + start, size) if size else b""


def _valid(array, length: int) -> list:
    """Whether each of the array's `length` slots holds a value (its validity bitmap)."""
    if array.null_count == 0 or not array.buffers[0]:
        return [True] * length
    start = array.offset
    bitmap = _bytes_at(array.buffers[0], 0, (start + length + 7) // 8)
    return [bool(bitmap[(start + k) >> 3] >> ((start + k) & 7) & 1) for k in range(length)]


def _valid_numpy(array, length: int, numpy):
    """_valid as a numpy bool array (bit-unpacked without a Python loop)."""
    if array.null_count == 0 or not array.buffers[0] or length == 0:
        return numpy.ones(length, dtype=bool)
    start = array.offset
    bitmap = numpy.frombuffer(_bytes_at(array.buffers[0], 0, (start + length + 7) // 8), dtype=numpy.uint8)
    return numpy.unpackbits(bitmap, bitorder="little")[start : start + length].astype(bool)


def _offsets(array, width: int) -> tuple:
    """The array's length + 1 offsets into its child or data buffer."""
    count = array.length + 1
    if array.length == 0:
        return (0,)
    raw = _bytes_at(array.buffers[1], array.offset * width, count * width)
    return struct.unpack("<%d%s" % (count, "i" if width == 4 else "q"), raw)


def _fixed_size(fmt: str) -> int:
    return int(fmt.split(":", 1)[1])


def _values(array, schema, name: str) -> list:
    """The array's values, with None for nulls (the recursive reader behind to_pylist)."""
    fmt = schema.format.decode("utf-8")
    n = array.length
    if schema.dictionary:
        indices = _values(array, _IndexSchema(fmt), name)
        dictionary = _values(array.dictionary.contents, schema.dictionary.contents, name)
        return [None if i is None else dictionary[i] for i in indices]
    if fmt == "n":
        return [None] * n
    valid = _valid(array, n)
    if fmt in PRIMITIVES:
        code = PRIMITIVES[fmt]
        size = struct.calcsize(code)
        raw = _bytes_at(array.buffers[1], array.offset * size, n * size)
        values = list(struct.unpack("<%d%s" % (n, code), raw))
    elif fmt == _BOOL:
        start = array.offset
        bits = _bytes_at(array.buffers[1], 0, (start + n + 7) // 8 if n else 0)
        values = [bool(bits[(start + k) >> 3] >> ((start + k) & 7) & 1) for k in range(n)]
    elif fmt in ("u", "U", "z", "Z"):
        offsets = _offsets(array, _OFFSET_WIDTHS[fmt])
        data = _bytes_at(array.buffers[2], offsets[0], offsets[-1] - offsets[0])
        base = offsets[0]
        values = [data[offsets[k] - base : offsets[k + 1] - base] for k in range(n)]
        if fmt in ("u", "U"):
            values = [v.decode("utf-8") for v in values]
    elif fmt.startswith("w:"):
        width = _fixed_size(fmt)
        data = _bytes_at(array.buffers[1], array.offset * width, n * width)
        values = [data[k * width : (k + 1) * width] for k in range(n)]
    elif fmt in ("+l", "+L"):
        offsets = _offsets(array, _OFFSET_WIDTHS[fmt])
        child = _child_values(array, schema, name, offsets[0], offsets[-1])
        base = offsets[0]
        values = [child[offsets[k] - base : offsets[k + 1] - base] for k in range(n)]
    elif fmt.startswith("+w:"):
        size = _fixed_size(fmt)
        start = array.offset * size
        child = _child_values(array, schema, name, start, start + n * size)
        values = [child[k * size : (k + 1) * size] for k in range(n)]
    elif fmt == "+s":
        fields = []
        for k in range(schema.n_children):
            column = _child_values(array, schema, name, array.offset, array.offset + n, index=k)
            fields.append((schema.children[k].contents.name.decode("utf-8"), column))
        values = [{key: column[k] for key, column in fields} for k in range(n)]
    else:
        raise _unsupported(name, fmt, "without pyarrow, only numbers, bools, strings, binaries, lists, structs "
                           "and dictionaries are read into Python lists; install pyarrow for this column")
    return [v if ok else None for v, ok in zip(values, valid)]


def _child_values(array, schema, name: str, start: int, stop: int, index: int = 0) -> list:
    """Values `start`..`stop` of the array's child `index` (offsets relative to the child)."""
    child = array.children[index].contents
    view = _Window(child, start, stop - start)
    return _values(view, schema.children[index].contents, name)


class _Window:
    """An ArrowArray seen from `start` for `length` slots (offsets add up, nothing is copied)."""

    def __init__(self, array, start: int, length: int):
        self.offset = array.offset + start
        self.length = length
        self.null_count = array.null_count
        self.buffers = array.buffers
        self.children = array.children
        self.dictionary = array.dictionary


class _IndexSchema:
    """The schema of a dictionary column's indices (its own format, no dictionary)."""

    def __init__(self, fmt: str):
        self.format = fmt.encode("utf-8")
        self.dictionary = None


def to_pylist(array, schema, name: str) -> list:
    """Column `name` (`array`, `schema`: one child of an exported batch) as a Python list."""
    return _values(array, schema, name)


def list_value_dtype(field, name: str, numpy):
    """The numpy dtype of the values of `field`, a variable-size list of numbers or bools (an
    ArrowSchema); InvalidArgumentError for another type."""
    fmt = field.format.decode("utf-8")
    child = field.children[0].contents if fmt in ("+l", "+L") and field.n_children == 1 else None
    child_fmt = child.format.decode("utf-8") if child is not None else None
    if child is not None and not field.dictionary and not child.dictionary:
        if child_fmt == _BOOL:
            return numpy.dtype(numpy.bool_)
        if child_fmt in PRIMITIVES:
            return numpy.dtype("<" + PRIMITIVES[child_fmt])
    raise _errors.invalid(f"pad: column `{name}` (Arrow format {fmt!r}) is not a variable-size list of numbers or bools")


def list_lengths_and_values(array, schema, name: str, numpy):
    """(lengths, values) of a variable-size list column of numbers or bools as numpy arrays:
    ``lengths[k]`` values of row k (0 for a null list) follow one another in ``values``.
    Raises InvalidArgumentError for another type or for a null value inside a list."""
    dtype = list_value_dtype(schema, name, numpy)
    fmt = schema.format.decode("utf-8")
    offsets = numpy.array(_offsets(array, _OFFSET_WIDTHS[fmt]), dtype=numpy.int64)
    spans = numpy.diff(offsets)
    valid = _valid_numpy(array, array.length, numpy)
    start, stop = int(offsets[0]), int(offsets[-1])
    child = _Window(array.children[0].contents, start, stop - start)
    keep = numpy.repeat(valid, spans)  # a null list's span (if any) is not its value
    if child.null_count and not _valid_numpy(child, stop - start, numpy)[keep].all():
        raise _errors.invalid(f"pad: column `{name}` has a null inside a list (a tensor cannot hold nulls)")
    if dtype == numpy.bool_:
        flat = numpy.array(_values(child, schema.children[0].contents, name), dtype=numpy.bool_)
    else:
        raw = _bytes_at(child.buffers[1], child.offset * dtype.itemsize, (stop - start) * dtype.itemsize)
        flat = numpy.frombuffer(raw, dtype=dtype)
    return numpy.where(valid, spans, 0), flat[keep]
