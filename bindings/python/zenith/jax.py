"""zenith.jax: Zenith batches as ``jax.Array`` objects, through DLPack.

    import zenith.jax
    loader = zenith.jax.DataLoader("data/", batch_size=256, keys=("features", "label"))
    for epoch in range(3):
        loader.set_epoch(epoch)
        for x, y in loader:               # jax.Array, [256, ...] and [256]
            params = step(params, x, y)

Each tensor column (numbers, bools, fixed-size lists) is imported with ``jax.numpy.from_dlpack``:
on the CPU JAX shares the batch's memory when the buffer suits it, else it copies. JAX's dtype
rules apply: without ``jax_enable_x64`` (JAX's default) 64-bit columns arrive as 32-bit arrays,
exactly as ``jnp.asarray`` would make them. ``device=`` (a ``jax.Device``) puts each array there
with ``jax.device_put``. Columns without a tensor form (strings, variable-size lists) pass
through as they come (a ``pyarrow.Array``); padded lists (``pad=``) arrive as arrays too.

Arguments: those of :class:`zenith.Loader` (except ``output``), with ``source=`` as an alias of
``path``, ``keys=`` (yield tuples), ``transform=``/``collate_fn=`` (applied to each item), as in
:class:`zenith.DataLoader`. ``len()``, ``set_epoch``, ``state_dict``/``load_state_dict``,
``stats`` and ``close`` are the loader's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._batch import Tensor
from ._dataloader import DataLoader as _NumpyDataLoader

__all__ = ["DataLoader"]


class DataLoader(_NumpyDataLoader):
    """Dicts (or tuples, with ``keys``) of ``jax.Array``; see the module docs."""

    def __init__(self, path=None, batch_size: int = 64, *, device=None, **options):
        super().__init__(path, batch_size, **options)
        self.device = device

    def _convert(self, value):
        if isinstance(value, Tensor):
            array = jnp.from_dlpack(value)
        elif isinstance(value, self._numpy.ndarray):  # padded lists and their lengths
            array = jnp.asarray(value)
        else:  # no tensor form: as it comes
            return value
        if self.device is not None:
            array = jax.device_put(array, self.device)
        return array

    def __repr__(self) -> str:
        return f"zenith.jax.DataLoader({self.loader!r}, keys={self._keys})"
