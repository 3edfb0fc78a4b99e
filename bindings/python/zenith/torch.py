"""zenith.torch: a Zenith loader as a PyTorch ``IterableDataset`` of dicts of tensors.

    import torch, zenith.torch
    data = zenith.torch.DataLoader("data/", batch_size=1024, shuffle=True, seed=0)
    for epoch in range(epochs):
        data.set_epoch(epoch)
        for batch in data:                  # {"features": tensor, "label": tensor, ...}
            ...
    # or through torch's DataLoader (batching is Zenith's, so batch_size=None):
    torch.utils.data.DataLoader(data, batch_size=None, pin_memory=True)

Tensors come from the batches through DLPack without a copy (columns must be numbers, bools,
fixed-size lists or fixed-size binary; pick them with ``columns=``). They may share read-only
memory (a memory-mapped file): pass ``copy=True`` if you modify them in place.

Rank and world size come from ``torch.distributed`` when it is initialised (else from the
arguments, else ``RANK``/``WORLD_SIZE`` or ``SLURM_*``). Inside a ``torch.utils.data.DataLoader``
with ``num_workers=W > 1`` each torch worker reads a disjoint part: shard ``rank * W + id`` of
``world_size * W``. Zenith builds batches on its own threads, so ``num_workers=0`` is the usual
choice there; with torch workers, call ``set_epoch`` before each epoch.
"""

from __future__ import annotations

import os

import torch
import torch.utils.data

from ._errors import invalid
from ._loader import Loader

__all__ = ["DataLoader"]


def _env_shard():
    for rank_var, world_var in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        rank, world = os.environ.get(rank_var), os.environ.get(world_var)
        if rank is not None and world is not None:
            try:
                return int(rank), int(world)
            except ValueError:
                raise invalid(f"{rank_var}={rank!r} / {world_var}={world!r} are not integers") from None
    return 0, 1


class DataLoader(torch.utils.data.IterableDataset):
    """Iterates dicts of column name -> ``torch.Tensor``, one dict per Zenith batch.

    Takes the arguments of :class:`zenith.Loader` (except ``output``), plus ``device`` (move each
    tensor there, ``non_blocking``) and ``copy`` (clone each tensor: writable memory of its own).
    The underlying loader opens on first use in each process (so the object pickles into torch
    worker processes); ``len()`` is the batches per epoch of this rank; ``set_epoch``,
    ``state_dict``/``load_state_dict`` (in the process that iterates), ``stats`` and ``close``
    delegate to it.
    """

    def __init__(
        self,
        path,
        batch_size: int = 1024,
        shuffle=True,
        seed: int = 0,
        num_workers: int | None = None,
        prefetch: int | None = None,
        drop_last: bool = False,
        columns=None,
        rank: int | None = None,
        world_size: int | None = None,
        memory_budget: int | None = None,
        device=None,
        copy: bool = False,
    ):
        super().__init__()
        if (rank is None) != (world_size is None):
            raise invalid("give both rank and world_size, or neither")
        self._kwargs = dict(
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            num_workers=num_workers,
            prefetch=prefetch,
            drop_last=drop_last,
            columns=columns,
            memory_budget=memory_budget,
        )
        self.path = path
        self.device = None if device is None else torch.device(device)
        self.copy = bool(copy)
        self._rank, self._world_size = rank, world_size
        self._epoch = None  # the epoch asked for with set_epoch, replayed in worker processes
        self._loader = None
        self._pid = None

    def shard(self) -> tuple:
        """(rank, world_size) this process reads: arguments, else torch.distributed, else the
        environment; split further across torch DataLoader workers."""
        if self._rank is not None:
            rank, world = self._rank, self._world_size
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            rank, world = _env_shard()
        info = torch.utils.data.get_worker_info()
        if info is not None and info.num_workers > 1:
            rank, world = rank * info.num_workers + info.id, world * info.num_workers
        return rank, world

    @property
    def loader(self) -> Loader:
        """The :class:`zenith.Loader` of this process (opened on first use)."""
        if self._loader is None or self._pid != os.getpid():
            # A loader inherited through fork belongs to the parent: zenith disowns it (never
            # freed here); this process opens its own.
            rank, world = self.shard()
            loader = Loader(self.path, output="dlpack", rank=rank, world_size=world, **self._kwargs)
            if self._epoch is not None:
                loader.set_epoch(self._epoch)
            self._loader, self._pid = loader, os.getpid()
        return self._loader

    def __iter__(self):
        device, copy = self.device, self.copy
        for tensors in self.loader:
            batch = {}
            for name, tensor in tensors.items():
                t = torch.from_dlpack(tensor)
                if copy:
                    t = t.clone()
                if device is not None:
                    t = t.to(device, non_blocking=True)
                batch[name] = t
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        if self._loader is not None and self._pid == os.getpid():
            self._loader.set_epoch(epoch)

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)
        self._epoch = None  # the state says where to go on

    def stats(self) -> dict:
        return self.loader.stats()

    @property
    def schema(self):
        return self.loader.schema

    def close(self) -> None:
        if self._loader is not None:
            self._loader.close()
            self._loader = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_loader"], state["_pid"] = None, None  # each process opens its own
        return state
