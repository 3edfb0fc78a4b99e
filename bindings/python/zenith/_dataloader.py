"""The seeds' top-level entry points: ``zenith.load`` (a whole dataset as a pyarrow Table) and
``zenith.DataLoader`` (batches as dicts of numpy arrays, no framework needed).

``zenith.DataLoader`` is the same class whether torch is installed or not: it yields numpy
arrays (zero copy through DLPack), which every framework imports. Torch users who want tensors,
``pin_memory`` and torch DataLoader workers use :class:`zenith.torch.DataLoader`; JAX and
TensorFlow users :mod:`zenith.jax` and :mod:`zenith.tensorflow`. A top-level name that changed
type with what else happens to be installed would make the same script behave differently on
two machines, so it does not.
"""

from __future__ import annotations

from . import _adapt, _errors, _lib
from ._batch import Tensor
from ._loader import Loader, pyarrow

# Rows per batch when reading a whole table: large batches, few chunks in the Table.
_LOAD_BATCH_SIZE = 65536


def load(path, columns=None, **opts):
    """Reads the dataset at `path` (a file, a directory of shards or a glob; Arrow IPC, Parquet
    or CSV) into one ``pyarrow.Table``, in dataset order, through the loader's worker threads.

    ``columns`` keeps those columns, in that order. Other keyword arguments go to
    :class:`zenith.Loader` (``num_workers``, ``io_backend``, ``numa_node``, ...), with these
    defaults for a whole table: ``shuffle=False`` (pass ``shuffle=True, seed=...`` for a shuffled
    table), no sharding (every row, also under torchrun; pass ``shard=(rank, world_size)`` for one
    rank's part) and batches of 65536 rows (``batch_size`` sets the Table's chunk size). Needs
    pyarrow. Raises what :class:`zenith.Loader` raises (``zenith.NotFoundError``, ...).
    """
    pa = pyarrow()
    if pa is None:
        raise ImportError("zenith.load returns a pyarrow.Table: pip install pyarrow")
    for name in ("output", "pad"):
        if name in opts:
            raise _errors.invalid(f"zenith.load makes a pyarrow.Table: {name}= does not apply")
    opts.setdefault("shuffle", False)
    opts.setdefault("batch_size", _LOAD_BATCH_SIZE)
    if "rank" not in opts and "world_size" not in opts:
        opts.setdefault("shard", None)
    with Loader(path, columns=columns, **opts) as loader:
        # One C stream of the epoch, read by pyarrow (no Python per batch).
        return pa.RecordBatchReader.from_stream(loader).read_all()


def _padded_lengths(pad) -> list:
    """The ``"<name>_lengths"`` entries a ``pad`` adds to each batch."""
    return [name + "_lengths" for name in pad] if isinstance(pad, dict) else []


def _numpy():
    try:
        import numpy
    except ImportError:
        raise ImportError("zenith.DataLoader yields numpy arrays: pip install numpy") from None
    return numpy


class DataLoader(_adapt.LoaderMethods):
    """Batches of a dataset as dicts of column name to ``numpy.ndarray``, built on Zenith's
    native worker threads (no torch, JAX or TensorFlow needed).

    ``for batch in zenith.DataLoader("data/", batch_size=64): batch["features"]`` — each tensor
    column (numbers, bools, fixed-size lists: ``[batch, ...]`` arrays) comes zero copy and
    read-only (it may share a mapping of the file); a column without a tensor form (strings,
    variable-size lists, ...) comes as a numpy object array; a column named in ``pad`` as the
    padded array (and its ``"<name>_lengths"``).

    ``keys=("features", "label")`` yields tuples instead, so ``for x, y in loader:`` unpacks
    arrays; ``transform=`` (alias ``collate_fn=``) is applied to each item (dict or tuple)
    before it is yielded. With ``keys`` and no ``columns``, only the key columns are read.

    The dataset is ``path=`` (or ``source=``, as torch users write it). Every other argument is
    :class:`zenith.Loader`'s (``shuffle`` defaults to True, ``batch_size`` to 64 as in the seed
    documents), and so are ``len()``, ``set_epoch``, ``state_dict``/``load_state_dict``,
    ``stats``, ``schema``, ``loader`` and ``close``. This class is the same with or without torch
    installed (see the module docs); :class:`zenith.torch.DataLoader` is the torch one.
    """

    def __init__(
        self,
        path=None,
        batch_size: int = 64,
        *,
        source=None,
        keys=None,
        transform=None,
        collate_fn=None,
        columns=None,
        **loader_options,
    ):
        self._numpy = _numpy()
        if "output" in loader_options:
            raise _errors.invalid("zenith.DataLoader yields numpy arrays: output= does not apply (use zenith.Loader)")
        path = _adapt.source_argument(path, source)
        self._keys, columns = _adapt.keys_argument(keys, columns, loader_options.get("pad"))
        self._transform = _adapt.transform_argument(transform, collate_fn)
        self.loader = Loader(path, batch_size=batch_size, columns=columns, output="dlpack", **loader_options)
        try:
            _adapt.check_keys(self._keys, self.loader.column_names + _padded_lengths(loader_options.get("pad")))
        except BaseException:
            self.loader.close()
            raise

    def _convert(self, value):
        np = self._numpy
        if isinstance(value, Tensor):
            if value.device[0] != _lib.kDLCPU:  # device="cuda:N": a framework imports it
                return value
            return np.from_dlpack(value)
        if isinstance(value, np.ndarray):  # padded lists and their lengths
            return value
        if hasattr(value, "to_numpy"):  # a pyarrow.Array without a tensor form
            return value.to_numpy(zero_copy_only=False)
        out = np.empty(len(value), dtype=object)  # a Python list (no pyarrow)
        out[:] = value
        return out

    def __iter__(self):
        keys, transform, convert = self._keys, self._transform, self._convert
        for columns in self.loader:
            yield _adapt.finish({name: convert(v) for name, v in columns.items()}, keys, transform)

    def __repr__(self) -> str:
        return f"zenith.DataLoader({self.loader!r}, keys={self._keys})"
