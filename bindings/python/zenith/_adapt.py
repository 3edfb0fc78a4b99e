"""What every framework loader (``zenith.DataLoader``, ``zenith.torch``, ``zenith.jax``,
``zenith.tensorflow``) does the same way to a batch once its columns are framework arrays: pick
``keys`` as a tuple, then apply the user's ``transform`` (alias ``collate_fn``).

The rule, documented on each loader: ``keys=None`` yields the dict of column name to array;
``keys=("features", "label")`` yields the tuple ``(batch["features"], batch["label"])`` (so
``for inputs, labels in loader:`` unpacks arrays, not the dict's keys); then ``transform(item)``
is yielded instead of ``item`` when a transform is given. When ``keys`` is given and ``columns``
is not, only the key columns are read.

:class:`LoaderMethods` is what they pass on to the :class:`~zenith.Loader` they wrap.
"""

from __future__ import annotations

from . import _errors


def source_argument(path, source):
    """The dataset path from ``path=`` or its torch-style alias ``source=`` (exactly one)."""
    if path is None and source is None:
        raise TypeError("give the dataset as path= (or source=)")
    if path is not None and source is not None:
        raise _errors.invalid("give path= or source=, not both")
    return path if source is None else source


def transform_argument(transform, collate_fn):
    """The per-batch callable from ``transform=`` or ``collate_fn=`` (at most one), or None."""
    if transform is not None and collate_fn is not None:
        raise _errors.invalid("give transform= or collate_fn= (the same thing), not both")
    fn = transform if transform is not None else collate_fn
    if fn is not None and not callable(fn):
        raise _errors.invalid(f"transform must be callable, not {type(fn).__name__}")
    return fn


def keys_argument(keys, columns, pad=None):
    """(keys as a tuple or None, the columns to read): the key columns when only keys are given
    (and no ``pad``, whose ``"<name>_lengths"`` keys are no columns)."""
    if keys is None:
        return None, columns
    if isinstance(keys, (str, bytes)) or not all(isinstance(k, str) for k in keys):
        raise _errors.invalid('keys must be a sequence of column names, e.g. keys=("features", "label")')
    keys = tuple(keys)
    if not keys:
        raise _errors.invalid("keys must not be empty (None yields dicts)")
    if columns is None:
        if pad is None:
            columns = list(dict.fromkeys(keys))
    elif pad is None:
        missing = [k for k in keys if k not in columns]
        if missing:
            raise _errors.invalid(f"keys {missing} are not among columns {list(columns)}")
    return keys, columns


def check_keys(keys, names) -> None:
    """Raises when a key names no column of the loader's batches (``names``)."""
    if keys is None:
        return
    missing = [k for k in keys if k not in names]
    if missing:
        raise _errors.invalid(f"keys {missing} name no column of the batches (columns: {list(names)})")


def finish(batch: dict, keys, transform):
    """The item yielded for `batch` (a dict of converted columns): see the module docs."""
    item = batch if keys is None else tuple(batch[k] for k in keys)
    return item if transform is None else transform(item)


class LoaderMethods:
    """The loader's own methods on a framework loader that wraps one in ``self.loader``: length,
    epochs, resume state, stats, schema, close (also as a context manager)."""

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)

    def stats(self) -> dict:
        return self.loader.stats()

    @property
    def schema(self):
        return self.loader.schema

    def close(self) -> None:
        self.loader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
