"""zenith.tensorflow: a Zenith loader as a ``tf.data.Dataset``, its tensors through DLPack.

    import zenith.tensorflow
    ds = zenith.tensorflow.ZenithDataset(source="data/", batch_size=32, keys=("features", "label"))
    model.fit(ds.prefetch(2), epochs=3)       # each pass over ds is the next epoch

``ZenithDataset`` is a real ``tf.data.Dataset`` (``map``, ``prefetch``, ``model.fit`` and
``tf.function`` take it): a ``from_generator`` source whose generator takes each batch from a
:class:`zenith.Loader` and imports each tensor column with ``tf.experimental.dlpack.from_dlpack``
(TensorFlow shares the batch's memory or copies, as it needs). Its elements are dicts of column
name to ``tf.Tensor`` of shape ``[batch, ...]`` (the last batch may be shorter: ``drop_last=True``
makes every batch full), or tuples with ``keys=``. String and binary columns become ``tf.string``
tensors; padded lists (``pad=``) ``[batch, None]`` tensors; other columns without a tensor form
(variable-size lists, structs) are refused when the dataset is built: leave them out with
``columns=``.

Each pass over the dataset (a ``for`` loop, one epoch of ``model.fit``) is the loader's next
epoch, as with :class:`zenith.Loader`; ``set_epoch``, ``state_dict``/``load_state_dict``,
``stats``, ``len()`` and ``close`` are the loader's. ``transform=`` (alias ``collate_fn=``) is
for ``zenith.DataLoader`` users; here use ``ds.map(...)``, which TensorFlow can trace and run in
parallel.

Arguments: those of :class:`zenith.Loader` (except ``output``), with ``source=`` as an alias of
``path`` and ``batch_size=32`` by default.
"""

from __future__ import annotations

import tensorflow as tf

from . import _adapt, _errors
from ._batch import Tensor
from ._loader import Loader, pyarrow

__all__ = ["ZenithDataset"]

# Zenith's dtype names (zenith.Tensor.dtype) as TensorFlow dtypes.
_TF_DTYPES = {
    "bool": tf.bool,
    "int8": tf.int8,
    "int16": tf.int16,
    "int32": tf.int32,
    "int64": tf.int64,
    "uint8": tf.uint8,
    "uint16": tf.uint16,
    "uint32": tf.uint32,
    "uint64": tf.uint64,
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
    "float32": tf.float32,
    "float64": tf.float64,
}


def _spec_of(name: str, value, pyarrow_module) -> tf.TensorSpec:
    """The TensorSpec of one column, from a batch of it (any length: the first dim is None)."""
    if isinstance(value, Tensor):
        dtype = _TF_DTYPES.get(value.dtype)
        if dtype is None:
            raise _errors.error(_errors.Status.ERR_UNSUPPORTED, f"column `{name}` ({value.dtype}) has no TensorFlow dtype; leave it out with columns=")
        return tf.TensorSpec(shape=(None,) + tuple(value.shape[1:]), dtype=dtype, name=name)
    if hasattr(value, "ndim") and hasattr(value, "dtype"):  # a padded numpy array and its lengths
        return tf.TensorSpec(shape=(None,) * value.ndim, dtype=tf.as_dtype(value.dtype), name=name)
    if pyarrow_module is not None and hasattr(value, "type"):
        t = value.type
        pa = pyarrow_module
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return tf.TensorSpec(shape=(None,), dtype=tf.string, name=name)
        raise _errors.error(_errors.Status.ERR_UNSUPPORTED, 
            f"column `{name}` ({t}) has no tensor form in TensorFlow; leave it out with columns=, or pad= a "
            "variable-size list of numbers"
        )
    raise _errors.error(_errors.Status.ERR_UNSUPPORTED, f"column `{name}` has no tensor form without pyarrow (pip install pyarrow)")


def _to_tf(value):
    if isinstance(value, Tensor):
        return tf.experimental.dlpack.from_dlpack(value.__dlpack__())  # a legacy "dltensor" capsule
    if hasattr(value, "to_numpy"):  # strings / binaries
        return tf.constant(value.to_numpy(zero_copy_only=False))
    return tf.convert_to_tensor(value)  # padded numpy arrays


class ZenithDataset(_adapt.LoaderMethods, tf.data.Dataset):
    """A ``tf.data.Dataset`` of Zenith batches; see the module docs."""

    def __init__(self, path=None, batch_size: int = 32, *, source=None, keys=None, columns=None, **loader_options):
        if "output" in loader_options:
            raise _errors.invalid("zenith.tensorflow.ZenithDataset yields tf.Tensors: output= does not apply")
        path = _adapt.source_argument(path, source)
        self._keys, columns = _adapt.keys_argument(keys, columns, loader_options.get("pad"))
        self.loader = Loader(path, batch_size=batch_size, columns=columns, output="dlpack", **loader_options)
        try:
            specs = self._column_specs(path, columns, loader_options.get("pad"))
            _adapt.check_keys(self._keys, list(specs))
        except BaseException:
            self.loader.close()
            raise
        signature = specs if self._keys is None else tuple(specs[k] for k in self._keys)
        self._inner = tf.data.Dataset.from_generator(self._generate, output_signature=signature)
        # The generator dataset's graph node is this dataset's: every tf.data method applies.
        super().__init__(self._inner._variant_tensor)

    def _column_specs(self, path, columns, pad) -> dict:
        """One TensorSpec per entry of a batch, from the first row of the dataset (read by a
        probe loader without shuffle or sharding, so the real loader's epoch is untouched)."""
        with Loader(path, batch_size=1, shuffle=False, shard=None, columns=columns, output="dlpack", pad=pad, num_workers=0) as probe:
            first = next(iter(probe), None)
            if first is None:
                raise _errors.invalid(f"the dataset at {path!r} has no rows: no element spec to build")
            pa = pyarrow()
            return {name: _spec_of(name, value, pa) for name, value in first.items()}

    def _generate(self):
        keys = self._keys
        for columns in self.loader:
            batch = {name: _to_tf(value) for name, value in columns.items()}
            yield batch if keys is None else tuple(batch[k] for k in keys)

    # -- what tf.data.Dataset asks of a subclass --
    def _inputs(self):
        return []

    @property
    def element_spec(self):
        return self._inner.element_spec
