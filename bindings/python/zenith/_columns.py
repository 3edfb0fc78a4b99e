"""What ``output="dlpack"`` yields for one batch: a dict of column name to

* a :class:`zenith.Tensor` for each column with a tensor form (numbers, bools, fixed-size lists
  and binaries);
* the column itself for one without (strings, variable-size lists, structs, dictionaries, ...):
  a ``pyarrow.Array`` sharing the batch's memory, or a Python list when pyarrow is not
  installed;
* for each column named in ``pad`` (variable-size lists of numbers or bools, such as token
  ids): a 2-D numpy array of its lists padded with the given value to the batch's longest list,
  and under ``"<name>_lengths"`` an int64 numpy array of their lengths (0 for a null list).

Which columns have no tensor form is learnt from the library (its ``ERR_UNSUPPORTED``) on the
first batch and remembered, since it depends only on the schema.
"""

from __future__ import annotations

import ctypes

from . import _arrow_decode, _batch, _errors, _lib

LENGTHS_SUFFIX = "_lengths"


def _numpy():
    try:
        import numpy
    except ImportError:
        return None
    return numpy


class ColumnPlan:
    """How each column of a loader's batches is handed out (see the module docs).

    `schema` is the loader's exported ArrowSchema (read during the call), `pad` the user's
    ``{column: value}`` or None. Raises InvalidArgumentError for a pad that cannot apply."""

    def __init__(self, schema, pad):
        self.names = [schema.children[i].contents.name.decode("utf-8") for i in range(schema.n_children)]
        self.non_tensor: set = set()  # indices the library refused as tensors
        self.pad = {}  # column index -> (name, pad value as a 0-d numpy array)
        if pad is None:
            return
        if not isinstance(pad, dict) or not all(isinstance(k, str) for k in pad):
            raise _errors.invalid('pad must be a dict of column name to pad value, e.g. {"tokens": 0}')
        numpy = _numpy()
        if numpy is None:
            raise _errors.invalid("pad needs numpy (pip install numpy)")
        for name, value in pad.items():
            if name not in self.names:
                raise _errors.invalid(f"pad: no column `{name}` (columns: {self.names})")
            if name + LENGTHS_SUFFIX in self.names or name + LENGTHS_SUFFIX in pad:
                raise _errors.invalid(f"pad: the lengths of `{name}` would replace the column `{name}{LENGTHS_SUFFIX}`")
            index = self.names.index(name)
            dtype = _arrow_decode.list_value_dtype(schema.children[index].contents, name, numpy)
            if isinstance(value, bool) != (dtype == numpy.bool_) or not isinstance(value, (bool, int, float)):
                raise _errors.invalid(f"pad: the value for `{name}` must be a number of its type ({dtype}), not {value!r}")
            try:
                fill = numpy.array(value, dtype=dtype)
                exact = fill.item() == value
            except (OverflowError, ValueError):
                exact = False
            if not exact:
                raise _errors.invalid(f"pad: {value!r} is not a {dtype} value (column `{name}`)")
            self.pad[index] = (name, fill)

    def build(self, handle: _batch._BatchHandle, pyarrow) -> dict:
        """The dict for the batch `handle` (pyarrow: the module, or None)."""
        out = {}
        arrow_columns = []  # (name, index) handed over as the Arrow column itself
        for index, name in enumerate(self.names):
            if name in out:  # the first of repeated names
                continue
            if index in self.pad:
                out[name] = None  # filled below, in column order
                out[name + LENGTHS_SUFFIX] = None
                continue
            if index not in self.non_tensor:
                try:
                    out[name] = _batch.Tensor(handle, index, name)
                    continue
                except _errors.UnsupportedError:
                    self.non_tensor.add(index)
            out[name] = None
            arrow_columns.append((name, index))
        if pyarrow is not None and arrow_columns:
            record_batch = pyarrow.record_batch(_batch.Batch(handle, self.names))
            for name, index in arrow_columns:
                out[name] = record_batch.column(index)
            arrow_columns = []
        if arrow_columns or self.pad:
            with _exported(handle) as (array, schema):
                for name, index in arrow_columns:
                    child, field = array.children[index].contents, schema.children[index].contents
                    out[name] = _arrow_decode.to_pylist(child, field, name)
                numpy = _numpy()
                for index, (name, fill) in self.pad.items():
                    child, field = array.children[index].contents, schema.children[index].contents
                    lengths, values = _arrow_decode.list_lengths_and_values(child, field, name, numpy)
                    out[name] = _padded(lengths, values, fill, numpy)
                    out[name + LENGTHS_SUFFIX] = lengths
        return out


def _padded(lengths, values, fill, numpy):
    """Rows of `lengths` values each, from `values`, padded with `fill` to the longest."""
    width = int(lengths.max()) if len(lengths) else 0
    out = numpy.full((len(lengths), width), fill, dtype=fill.dtype)
    out[numpy.arange(width) < lengths[:, None]] = values
    return out


class _exported:
    """The batch exported as an Arrow struct array (ctypes structs), released on exit."""

    def __init__(self, handle: _batch._BatchHandle):
        self._handle = handle

    def __enter__(self):
        self._array, self._schema = _lib.ArrowArray(), _lib.ArrowSchema()
        err = _errors.new_err()
        status = _lib.lib().zenith_batch_export_arrow(
            self._handle.get(), ctypes.byref(self._array), ctypes.byref(self._schema), ctypes.byref(err)
        )
        _errors.check(status, err)
        return self._array, self._schema

    def __exit__(self, *exc):
        for struct in (self._array, self._schema):
            if struct.release:
                struct.release(ctypes.byref(struct))
