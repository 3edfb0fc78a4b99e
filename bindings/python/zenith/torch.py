"""zenith.torch: a Zenith loader as a PyTorch ``IterableDataset`` of dicts of tensors.

    import torch, zenith.torch
    data = zenith.torch.DataLoader("data/", batch_size=1024, shuffle=True, seed=0)
    for epoch in range(epochs):
        data.set_epoch(epoch)
        for batch in data:                  # {"features": tensor, "label": tensor, ...}
            ...
    # or through torch's DataLoader (batching is Zenith's, so batch_size=None):
    torch.utils.data.DataLoader(data, batch_size=None, pin_memory=True)

Tensors come from the batches through DLPack without a copy (columns of numbers, bools,
fixed-size lists or fixed-size binary). They may share read-only memory (a memory-mapped file):
pass ``copy=True`` if you modify them in place. A column without a tensor form (strings,
variable-size lists, structs, ...) comes as itself, a ``pyarrow.Array`` (a Python list without
pyarrow); ``pad={"tokens": 0}`` makes the variable-size list column ``tokens`` a 2-D tensor
padded with 0 to the batch's longest list, and ``"tokens_lengths"`` an int64 tensor of the
lengths (see :class:`zenith.Loader`).

Rank and world size come from the arguments, else from ``torch.distributed`` when it is
initialised, else ``RANK``/``WORLD_SIZE`` or ``SLURM_*``; ``shard=None`` reads every row on every
rank (an evaluation loader on rank 0 under torchrun), still split across torch workers.

Zenith builds batches on its own threads, so ``num_workers=0`` is the usual choice in a torch
``DataLoader``. With torch workers (``num_workers=W``) each reads its own part (shard
``rank * W + id`` of ``world_size * W``; rows that do not divide evenly are padded by wrapping
around, as torch's ``DistributedSampler`` does, so every worker gets as many rows), and the epochs behave as without them, persistent
workers or not: each pass runs the next epoch, or the one given to ``set_epoch`` (called in the
main process) since the last pass; the workers learn it through a small file shared by path
(see ``zenith/_worker_epochs.py``). ``state_dict()`` in the main process works at epoch
boundaries (after a full pass it resumes at the next epoch) and raises ``RuntimeError`` in the
middle of a pass, whose progress only the workers know; a state saved in the middle of an
epoch (with ``num_workers=0``) resumes only without torch workers.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.utils.data

from . import _adapt
from ._batch import Tensor
from ._errors import invalid
from ._loader import Loader
from ._worker_epochs import WorkerEpochs

__all__ = ["DataLoader"]


def numpy_ndarray():
    """numpy.ndarray, or a type nothing is an instance of when numpy is not installed (padded
    columns, the only numpy arrays a loader yields, need numpy)."""
    try:
        import numpy
    except ImportError:
        return ()
    return numpy.ndarray


def _default_zenith_workers() -> int:
    """The worker threads a loader starts without num_workers: one per usable core, at most 4
    (the library's rule)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, min(cores, 4))


def _prefetch_from_factor(prefetch, prefetch_factor, num_workers):
    """Zenith's prefetch (batches built ahead, all workers together) from torch's
    ``prefetch_factor`` (batches ahead per worker): factor x Zenith's worker threads."""
    if prefetch_factor is None:
        return prefetch
    if prefetch is not None:
        raise invalid("give prefetch (batches ahead in all) or prefetch_factor (per worker), not both")
    if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) or prefetch_factor < 1:
        raise invalid(f"prefetch_factor must be a positive integer, got {prefetch_factor!r}")
    workers = _default_zenith_workers() if num_workers is None else max(num_workers, 1)
    return prefetch_factor * workers


def _env_shard():
    for rank_var, world_var in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        rank, world = os.environ.get(rank_var), os.environ.get(world_var)
        if rank is not None and world is not None:
            try:
                return int(rank), int(world)
            except ValueError:
                raise invalid(f"{rank_var}={rank!r} / {world_var}={world!r} are not integers") from None
    return 0, 1


class DataLoader(_adapt.LoaderMethods, torch.utils.data.IterableDataset):
    """Iterates dicts of column name -> ``torch.Tensor``, one dict per Zenith batch.

    Takes the arguments of :class:`zenith.Loader` (except ``output``; the placement and I/O ones,
    ``io_backend``, ``io_direct``, ``numa_node``, ``near_gpu``, ``drop_remainder``, as keywords),
    plus ``device`` (a CUDA device: batches land there through zenith's device path, see
    ``zenith.Loader(device=...)``; another device: each tensor moves there, ``non_blocking``) and ``copy`` (clone each tensor
    zero-copied from the batch: writable memory of its own), and the names torch users type:

    - ``source=``: the dataset, as ``path`` (give one of them);
    - ``keys=("features", "label")``: yield tuples of those tensors, so that
      ``for inputs, labels in loader:`` unpacks tensors (a dict would unpack its keys); with no
      ``columns`` only the key columns are read;
    - ``transform=`` (alias ``collate_fn=``): a callable applied to each batch (the dict, or the
      tuple with ``keys``) in the process that iterates, for what native stages don't cover;
      what it returns is yielded;
    - ``pin_memory=True``: each tensor is copied into page-locked memory (``Tensor.pin_memory``)
      before ``device`` moves it, so that host-to-GPU copies run asynchronously; without CUDA it
      does nothing and warns once per pass, as torch does. With torch DataLoader workers
      (processes) give ``pin_memory=True`` to torch's DataLoader instead: tensors crossing
      processes land in shared, not pinned, memory;
    - ``prefetch_factor=k``: batches built ahead per Zenith worker thread, as torch's is per
      worker process: ``prefetch = k * num_workers`` (the default worker count when
      ``num_workers`` is None); give it or ``prefetch``, not both;
    - ``drop_last=True``: drop the short last batch of each epoch (also in zenith.Loader).

    Zenith's ``num_workers`` are threads of the native loader; torch's DataLoader
    ``num_workers`` (processes) stay a choice of the torch DataLoader that wraps this dataset.
    The underlying loader opens on first use in each process (so the object pickles into torch
    worker processes); ``len()`` is the batches per epoch of this rank; ``set_epoch``,
    ``state_dict``/``load_state_dict`` (called in the main process, also with torch workers:
    see the module docs), ``stats`` and ``close`` delegate to it.
    """

    def __init__(
        self,
        path=None,
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
        pad: dict | None = None,
        shard="distributed",
        *,
        source=None,
        keys=None,
        transform=None,
        collate_fn=None,
        pin_memory: bool = False,
        prefetch_factor: int | None = None,
        **loader_options,
    ):
        super().__init__()
        # -- the names torch users type (source=, keys=, transform=/collate_fn=, pin_memory=,
        # prefetch_factor=) and the placement/I-O options of zenith.Loader (**loader_options) --
        path = _adapt.source_argument(path, source)
        for name in ("output", "rank", "world_size"):
            if name in loader_options:  # (rank/world_size are named above; output is fixed)
                raise invalid(f"zenith.torch.DataLoader: {name}= does not apply here")
        self._keys, columns = _adapt.keys_argument(keys, columns, pad)
        self._transform = _adapt.transform_argument(transform, collate_fn)
        if not isinstance(pin_memory, bool):
            raise invalid(f"pin_memory must be a bool, not {type(pin_memory).__name__}")
        self.pin_memory = pin_memory
        prefetch = _prefetch_from_factor(prefetch, prefetch_factor, num_workers)
        if (rank is None) != (world_size is None):
            raise invalid("give both rank and world_size, or neither")
        if shard is not None and shard != "distributed":
            raise invalid(f'shard must be "distributed" (the default) or None, got {shard!r}')
        if shard is None and rank is not None:
            raise invalid("give shard=None or rank and world_size, not both")
        self._no_shard = shard is None
        self._kwargs = dict(
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            num_workers=num_workers,
            prefetch=prefetch,
            drop_last=drop_last,
            columns=columns,
            memory_budget=memory_budget,
            pad=pad,
            **loader_options,
        )
        self.path = path
        self.device = None if device is None else torch.device(device)
        if self.device is not None and self.device.type == "cuda":
            # The native device path: batches land in device memory through zenith's pinned
            # slot ring and copy stream (no pin_memory, no .to()); torch.from_dlpack makes
            # torch's current stream wait for each copy.
            self._kwargs["device"] = f"cuda:{self.device.index or 0}"
        self.copy = bool(copy)
        self._rank, self._world_size = rank, world_size
        self._epoch = None  # the epoch asked for with set_epoch, replayed when the loader opens
        self._epochs = WorkerEpochs()  # what the main process asks of torch workers, and they did
        self._passes = 0  # passes this process made as a torch worker
        self._loader = None
        self._pid = None

    def shard(self) -> tuple:
        """(rank, world_size) this process reads: arguments, else torch.distributed, else the
        environment; split further across torch DataLoader workers."""
        if self._no_shard:
            rank, world = 0, 1
        elif self._rank is not None:
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
            try:
                _adapt.check_keys(self._keys, loader.column_names + [n + "_lengths" for n in (self._kwargs["pad"] or {})])
            except BaseException:
                loader.close()
                raise
            if self._epoch is not None and torch.utils.data.get_worker_info() is None:
                loader.set_epoch(self._epoch)  # (a torch worker sets each pass's epoch itself)
            self._loader, self._pid = loader, os.getpid()
        return self._loader

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        if info is None:  # the main process: the loader's own epochs
            yield from self._batches(self.loader)
            return
        # A torch worker: the pass's epoch comes from the shared record. All workers of one
        # pass share torch's base seed (its seed less its id) and their count of passes.
        key = [info.seed - info.id, self._passes]
        self._passes += 1
        epoch, midway = self._epochs.begin_pass(key, info.num_workers)
        if midway:
            raise invalid(
                "the state given to load_state_dict stops in the middle of an epoch, a position torch "
                "DataLoader workers cannot split among themselves; resume it with num_workers=0, or "
                "save states at epoch boundaries"
            )
        loader = self.loader
        loader.set_epoch(epoch)
        yield from self._batches(loader)
        self._epochs.end_pass(key)

    def _batches(self, loader: Loader):
        """One pass of `loader` as dicts of torch tensors (and of the columns without a tensor
        form, as they come)."""
        device, copy, ndarray = self.device, self.copy, numpy_ndarray()
        keys, transform, pin = self._keys, self._transform, self._pinning()
        for columns in loader:
            batch = {}
            for name, value in columns.items():
                if isinstance(value, Tensor):
                    t = torch.from_dlpack(value)
                    if copy and not pin:  # (pinning copies already)
                        t = t.clone()
                elif isinstance(value, ndarray):  # padded lists and their lengths: own memory
                    t = torch.from_numpy(value)
                else:  # no tensor form: a pyarrow.Array or a list
                    batch[name] = value
                    continue
                if pin and t.device.type == "cpu":
                    t = t.pin_memory()
                if device is not None and t.device != device:
                    t = t.to(device, non_blocking=True)
                batch[name] = t
            yield _adapt.finish(batch, keys, transform)

    def _pinning(self) -> bool:
        """Whether to pin each batch's tensors: asked for, and CUDA is there. Without CUDA there
        is nothing to pin for (pinned memory only speeds host-to-GPU copies): a warning, once
        per pass, says it does nothing, as torch's own DataLoader does."""
        if not self.pin_memory:
            return False
        if torch.cuda.is_available():
            return True
        warnings.warn(
            "zenith.torch.DataLoader(pin_memory=True): no CUDA device is available, so tensors stay in "
            "ordinary (pageable) memory; pinning only speeds host-to-GPU copies",
            UserWarning,
            stacklevel=3,
        )
        return False

    def set_epoch(self, epoch: int) -> None:
        """The next pass (in this process, or in torch workers) runs `epoch`."""
        if self._loader is not None and self._pid == os.getpid():
            self._loader.set_epoch(epoch)  # validates it
        self._epoch = epoch
        self._epochs.request(epoch)

    def state_dict(self) -> dict:
        """Where to resume (see :meth:`zenith.Loader.state_dict`). After passes in torch
        workers: the start of the next epoch once the last pass finished; RuntimeError while
        it runs."""
        after_workers = self._epochs.resume_epoch()
        if after_workers is not None:
            self.loader.set_epoch(after_workers)
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Resumes from :meth:`state_dict`, in this process or in torch workers (these only from
        the start of an epoch)."""
        loader = self.loader
        loader.load_state_dict(state)
        self._epoch = None  # the state says where to go on
        self._epochs.request(loader.epoch, midway=loader.state_dict()["batches_delivered"] > 0)

    def close(self) -> None:
        """Closes the loader of this process, if it opened one (the next use opens it again)."""
        if self._loader is not None:
            self._loader.close()
            self._loader = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_loader"], state["_pid"] = None, None  # each process opens its own
        return state
