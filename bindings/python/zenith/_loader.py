"""zenith.Loader: a `zenith_loader` handle with Python iteration, the Arrow PyCapsule protocol,
epochs and exact resume."""

from __future__ import annotations

import ctypes
import operator
import os
import threading
import warnings
import weakref

from . import _batch, _capsule, _columns, _errors, _lib

_SHUFFLE = {
    False: _lib.ZENITH_SHUFFLE_NONE,
    True: _lib.ZENITH_SHUFFLE_AUTO,
    "none": _lib.ZENITH_SHUFFLE_NONE,
    "auto": _lib.ZENITH_SHUFFLE_AUTO,
    "global": _lib.ZENITH_SHUFFLE_GLOBAL,
    "block": _lib.ZENITH_SHUFFLE_BLOCK,
}
_SHUFFLE_NAMES = {
    _lib.ZENITH_SHUFFLE_NONE: "none",
    _lib.ZENITH_SHUFFLE_GLOBAL: "global",
    _lib.ZENITH_SHUFFLE_BLOCK: "block",
    _lib.ZENITH_SHUFFLE_AUTO: "auto",
}
_IO_NAMES = {
    _lib.ZENITH_IO_MMAP: "mmap",
    _lib.ZENITH_IO_URING: "io_uring",
    _lib.ZENITH_IO_PREAD: "pread",
}
_SHARD_SOURCES = {
    _lib.ZENITH_SHARD_FROM_NONE: "none",
    _lib.ZENITH_SHARD_FROM_OPTIONS: "options",
    _lib.ZENITH_SHARD_FROM_TORCH: "torch",
    _lib.ZENITH_SHARD_FROM_SLURM: "slurm",
}
_SHARD_SOURCE_TEXT = {
    "none": "no sharding",
    "options": "from the arguments",
    "torch": "from RANK/WORLD_SIZE",
    "slurm": "from SLURM_PROCID/SLURM_NTASKS",
}
# shard= default: rank and world size from the arguments, else from the environment.
_SHARD_FROM_ENV = "env"
# How long one C call waits for a batch: Python runs signal handlers (Ctrl-C) between calls.
_WAIT_SLICE_MS = 100
_OUTPUTS = ("arrow", "dlpack")
_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
STATE_VERSION = 1

_pyarrow = None
_pyarrow_checked = False

# Every open loader, so that a forked child can disown them: their worker threads exist only in
# the parent, so the child must neither use nor free them.
_open_loaders: "weakref.WeakSet[Loader]" = weakref.WeakSet()


def _disown_after_fork() -> None:
    for loader in list(_open_loaders):
        loader._handle = None
        loader._forked = True
        loader._lock = threading.RLock()
    _open_loaders.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_disown_after_fork)


def pyarrow():
    """The pyarrow module, or None when it is not installed (checked once)."""
    global _pyarrow, _pyarrow_checked
    if not _pyarrow_checked:
        try:
            import pyarrow as pa
        except ImportError:
            pa = None
        _pyarrow, _pyarrow_checked = pa, True
    return _pyarrow


def _int(name: str, value, low: int, high: int, *, none_ok: bool = False):
    """`value` as an int in [low, high] (None passes when `none_ok`); else InvalidArgumentError."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool):
        raise _errors.invalid(f"{name} must be an integer, not a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise _errors.invalid(f"{name} must be an integer, not {type(value).__name__}") from None
    if not low <= value <= high:
        raise _errors.invalid(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _call(fn, *args):
    """Calls a fallible C function with a trailing `zenith_error **`; raises on failure."""
    err = _errors.new_err()
    return _errors.check(fn(*args, ctypes.byref(err)), err)


# ---- placement and I/O options (io_backend, io_direct, numa_node, near_gpu) ---------------------
# Kept apart from the order options above: they change where and how bytes are read, never which
# rows come in which order.

_IO_BACKENDS = {name: value for value, name in _IO_NAMES.items()}


def _placement_options(io_backend, io_direct, numa_node, near_gpu) -> dict:
    """The checked placement and I/O arguments of :class:`Loader`, as its options entries."""
    if io_backend is not None and io_backend not in _IO_BACKENDS:
        raise _errors.invalid(f'io_backend must be "mmap", "pread", "io_uring" or None, got {io_backend!r}')
    if not isinstance(io_direct, bool):
        raise _errors.invalid(f"io_direct must be a bool, not {type(io_direct).__name__}")
    if numa_node is not None and near_gpu is not None:
        raise _errors.invalid("give numa_node or near_gpu, not both")
    if near_gpu is not None and not isinstance(near_gpu, str):
        near_gpu = _int("near_gpu", near_gpu, 0, _U32)
    elif isinstance(near_gpu, str) and "\0" in near_gpu:
        raise _errors.invalid(f"near_gpu must not contain a NUL character: {near_gpu!r}")
    return {
        "io_backend": None if io_backend is None else _IO_BACKENDS[io_backend],
        "io_direct": io_direct,
        # -1 is the C API's "no placement"; larger than its limit is refused by the library.
        "numa_node": _int("numa_node", numa_node, -1, (1 << 31) - 1, none_ok=True),
        "near_gpu": near_gpu,
    }


def _apply_placement_options(lib, opts, o: dict) -> None:
    """Sets the placement and I/O options of `o` on the C options handle `opts`."""
    if o["io_backend"] is not None:
        _call(lib.zenith_loader_options_set_io_backend, opts, o["io_backend"])
    if o["io_direct"]:
        _call(lib.zenith_loader_options_set_io_direct, opts, True)
    if o["numa_node"] is not None:
        _call(lib.zenith_loader_options_set_numa_node, opts, o["numa_node"])
    if isinstance(o["near_gpu"], str):
        _call(lib.zenith_loader_options_set_near_gpu_pci, opts, o["near_gpu"].encode("utf-8"))
    elif o["near_gpu"] is not None:
        _call(lib.zenith_loader_options_set_near_gpu_index, opts, o["near_gpu"])


def _device_option(device, device_slots) -> tuple | None:
    """``device=`` ("cpu", "cuda", "cuda:N", or None) and ``device_slots=`` as the C call's
    (device type, ordinal, slots); None for host delivery."""
    if device is None or device == "cpu":
        if device_slots is not None:
            raise _errors.invalid('device_slots applies to device="cuda[:N]"')
        return None
    if not isinstance(device, str) or not (device == "cuda" or device.startswith("cuda:")):
        raise _errors.invalid(f'device must be "cpu", "cuda" or "cuda:N", got {device!r}')
    ordinal_text = device[len("cuda:"):] if device.startswith("cuda:") else "0"
    if not ordinal_text.isdigit():
        raise _errors.invalid(f'device must be "cuda:N" with N a device ordinal, got {device!r}')
    ordinal = _int("device ordinal", int(ordinal_text), 0, _U32)
    slots = None if device_slots is None else _int("device_slots", device_slots, 0, _U32)
    return (_lib.ZENITH_DEVICE_CUDA, ordinal, slots)


def _apply_device_option(lib, opts, device) -> None:
    """Sets the device choice `device` (from :func:`_device_option`) on `opts`."""
    if device is None:
        return
    kind, ordinal, slots = device
    _call(lib.zenith_loader_options_set_device, opts, kind, ordinal)
    if slots is not None:
        _call(lib.zenith_loader_options_set_device_slots, opts, slots)


def _pin_memory_option(pin_memory) -> int | None:
    """``pin_memory=`` (False/None, True for CUDA device 0, or "cuda"/"cuda:N") as the CUDA
    ordinal whose pinned memory the batches land in; None: ordinary memory."""
    if pin_memory is None or pin_memory is False:
        return None
    if pin_memory is True:
        return 0
    if isinstance(pin_memory, str) and (pin_memory == "cuda" or pin_memory.startswith("cuda:")):
        return _device_option(pin_memory, None)[1]
    raise _errors.invalid(f'pin_memory must be a bool, "cuda" or "cuda:N", got {pin_memory!r}')


def _apply_pin_memory(lib, opts, ordinal) -> None:
    """Makes the batches land in CUDA device `ordinal`'s pinned memory (None: nothing to set)."""
    if ordinal is not None:
        _call(lib.zenith_loader_options_set_pin_memory, opts, ordinal, True)


class Schema:
    """The loader's schema when pyarrow is not installed: implements ``__arrow_c_schema__``
    (exported from the loader on each call, so it needs the loader open) and ``names``."""

    def __init__(self, loader: "Loader", names: list):
        self._loader = loader
        self.names = list(names)

    def __arrow_c_schema__(self):
        return self._loader._export_schema_capsule()

    def __repr__(self) -> str:
        return f"zenith.Schema(names={self.names})"


def _path_bytes(path) -> bytes:
    """A dataset path as the bytes the C ABI takes (str, bytes or PathLike; no NUL)."""
    try:
        encoded = os.fsencode(path)
    except TypeError:
        raise _errors.invalid(f"path must be str, bytes or os.PathLike, not {type(path).__name__}") from None
    if b"\0" in encoded:
        # A C string ends at the first NUL: the library would open another path.
        raise _errors.invalid(f"path must not contain a NUL character: {path!r}")
    return encoded


class Loader:
    """Shuffled, sharded batches of a dataset (an Arrow IPC, Parquet or CSV file, a directory of
    shards, or a glob), built ahead on native worker threads.

    ``for batch in loader`` yields ``pyarrow.RecordBatch`` objects (``output="arrow"``; without
    pyarrow, :class:`zenith.Batch` objects implementing ``__arrow_c_array__``), or dicts of column
    name to :class:`zenith.Tensor` (``output="dlpack"``). With ``output="dlpack"`` a column
    without a tensor form (strings, variable-size lists, structs, ...) comes as itself, a
    ``pyarrow.Array`` (a Python list without pyarrow), and ``pad={"tokens": 0}`` turns the
    variable-size list column ``tokens`` into a 2-D numpy array padded with 0 to the batch's
    longest list, with their lengths under ``"tokens_lengths"``.

    Epochs: the first pass (a ``for`` loop, or an export through ``__arrow_c_stream__``) runs
    epoch 0. Each later pass starts the next epoch, unless :meth:`set_epoch` was called since the
    last pass began (then it runs that epoch), or the current epoch has delivered nothing yet. The
    order of epoch ``e`` depends only on (dataset, seed, e, shuffle, batch size, shard), so loops
    that call ``set_epoch(e)`` before each epoch and loops that don't see the same batches.

    Arguments:
        path: a file, a directory (searched recursively) or a glob (str, bytes or PathLike;
            ``~`` is the home directory, ``file://`` URLs are paths), or a list of them (one
            dataset, files in the order given). Files: Arrow IPC, Parquet, CSV/TSV and JSON lines
            (also ``.gz``/``.zst``), WebDataset ``.tar`` shards (a ``__key__`` column and one
            binary column per file extension).
        batch_size: rows per batch (the last batch of an epoch may be shorter, see drop_last).
        shuffle: True or "global" (an exact permutation of all rows per epoch), "block" (row
            groups, then rows within windows that fit ``memory_budget``), False or "none".
        seed: the shuffle seed.
        num_workers: worker threads (None: one per core, at most 4; 0: built by the caller).
            Workers change speed only, never content or order.
        prefetch: batches built ahead (None: twice the workers); bounds memory.
        drop_last: drop the last batch of an epoch when it is short.
        columns: names of the columns to read, in that order (None: all).
        rank, world_size: this process's shard (both or neither; None: from ``RANK``/
            ``WORLD_SIZE`` or ``SLURM_PROCID``/``SLURM_NTASKS``, else 0 of 1). ``repr(loader)``
            and :meth:`stats` say which rank and world size run and where they came from.
        output: "arrow" or "dlpack".
        pad: with output="dlpack", ``{column: value}`` for variable-size list columns of numbers
            or bools to hand out padded (needs numpy; see above).
        memory_budget: bytes of decoded data a shuffle may hold (None: half the memory available
            at open, divided by the ranks on this node: ``LOCAL_WORLD_SIZE`` under torchrun, else
            ``SLURM_NTASKS_PER_NODE``).
        shard: ``"env"`` (the default: ``rank``/``world_size``, else the environment as above),
            ``None`` (no sharding: this loader reads every row, also under torchrun, e.g. an
            evaluation loader on rank 0), or ``(rank, world_size)``.
        drop_remainder: when the rows do not divide evenly across ranks, drop the last
            ``rows % world_size`` rows of each epoch's order (every rank gets
            ``rows // world_size``) instead of padding it by wrapping around, as torch's
            ``DistributedSampler`` does (the default: every rank gets ``ceil(rows / world_size)``
            rows, a few seen twice). Either way every rank gets ``len(loader)`` batches. A world
            larger than the dataset is an error.
        delimiter: the CSV field delimiter, one character (None: a tab for ``.tsv``, else ``,``).
        header: whether CSV files start with a header row (False: columns named by ``schema``,
            else ``f0``, ``f1``, ...).
        schema: a ``pyarrow.Schema`` (anything with ``__arrow_c_schema__``) to parse CSV and JSON
            lines files with, instead of inferring one.
        io_backend: how files are read: "mmap" (the default: zero-copy slices of mapped IPC
            files), "pread", or "io_uring" (Parquet row groups in one batched submission; falls
            back to pread where io_uring is unavailable, see :meth:`io_fallback_reason`). The
            environment variable ``ZENITH_IO_BACKEND`` overrides it.
        io_direct: read with ``O_DIRECT`` (bypassing the page cache) with "pread" or "io_uring";
            file systems that refuse it are read through the page cache (see
            :meth:`io_fallback_reason`).
        numa_node: run the workers on this NUMA node and allocate batches there (-1 or None: no
            placement).
        near_gpu: like ``numa_node``, the node of a GPU: its index on the PCI bus (int) or its
            PCI address ("0000:3b:00.0"). A GPU that does not exist fails the open.
        device: where batches land: None or "cpu" (host memory), "cuda" or "cuda:N" (CUDA
            device N; needs ``output="dlpack"``): tensor columns are copied through a ring of
            pinned staging slots into device memory, and each :class:`zenith.Tensor` is a
            ``kDLCUDA`` tensor whose ``__dlpack__(stream=...)`` makes the consumer's stream wait
            for the copy (``torch.from_dlpack(t)`` is correct on torch's current stream). Without
            a CUDA driver or device, opening raises :class:`zenith.ZenithError` with code
            ``NO_DEVICE``.
        device_slots: staging slots of the device ring (at least 3; default 4).
        pin_memory: True (CUDA device 0) or "cuda:N": batches land in pinned (page-locked) host
            memory, so your own ``tensor.to("cuda", non_blocking=True)`` copies are truly
            asynchronous. Every batch the workers build lands there (zero-copy views of
            memory-mapped files with ``shuffle=False`` are copied there); the output of
            ``stages`` stays where the stage built it. Without a CUDA driver or device, opening raises
            :class:`zenith.ZenithError` with code ``NO_DEVICE``. With ``device="cuda..."`` the
            loader uses pinned memory anyway.
        storage_options: for a dataset at a URL (``s3://bucket/prefix/``,
            ``s3://bucket/prefix/*.parquet``, ``gs://``, ``az://``, ``abfss://``, ``http(s)://``),
            ``{key: value}`` as fsspec and pyarrow take them: ``endpoint``, ``region``,
            ``path_style``, ``allow_http``, ``access_key_id``, ``secret_access_key``,
            ``session_token``, ``request_timeout``, ``retries``, ``retry_timeout``,
            ``cache_dir``, ``cache_max_bytes``, ... (see ``zenith_loader_options_set_storage_option``).
            Values may be str, int, float or bool. None: credentials from the environment.
        stages: per-batch preprocessing run on the worker threads right after each batch is
            gathered, before delivery, in the order given: :class:`zenith.Plugin` (a sandboxed
            WASM plugin) and :class:`zenith.NativeStage` objects (a plain function
            ``fn(pyarrow.RecordBatch) -> RecordBatch`` is made a NativeStage), the stages
            ``zenith.Engine`` runs. Order, sharding and resume are unchanged. The loader's
            schema is what the stages make of an empty batch, so a stage must return the same
            schema for every batch (give new columns an explicit type). A batch a stage fails raises
            :class:`zenith.EventFailedError` naming the stage, the batch and the reason; the
            next iteration builds that batch again.

    Shuffles: ``shuffle=True`` (or "auto") is a global shuffle, which runs as a block shuffle
    when the decoded data (Parquet) exceeds the memory budget; the loader then warns once with a
    :class:`zenith.ShuffleDowngradeWarning` and its stats say ``"shuffle": "block"``.
    ``shuffle="global"`` is strict: over the budget, opening raises
    :class:`zenith.OutOfMemoryError` naming the bytes needed and the budget.

    Iteration waits for batches in slices of 0.1 s, so Ctrl-C raises ``KeyboardInterrupt``
    promptly; the loader and the iterator stay usable (``next()`` on the iterator continues with
    the batch it was waiting for; the loader's :meth:`state_dict` resumes exactly).

    Raises :class:`zenith.NotFoundError` (a ``FileNotFoundError``) for a missing path,
    :class:`zenith.InvalidArgumentError` (a ``ValueError``) for a bad argument, and other
    :class:`zenith.ZenithError` subclasses for unreadable data.

    Calls on one loader are serialised by a lock; close it with :meth:`close` or ``with``.
    """

    def __init__(
        self,
        path,
        batch_size: int = _lib.ZENITH_DEFAULT_BATCH_SIZE,
        shuffle=True,
        seed: int = 0,
        num_workers: int | None = None,
        prefetch: int | None = None,
        drop_last: bool = False,
        columns=None,
        rank: int | None = None,
        world_size: int | None = None,
        output: str = "arrow",
        memory_budget: int | None = None,
        pad: dict | None = None,
        shard=_SHARD_FROM_ENV,
        drop_remainder: bool = False,
        delimiter: str | None = None,
        header: bool = True,
        schema=None,
        # -- placement and I/O (speed only, never content or order) --
        io_backend: str | None = None,
        io_direct: bool = False,
        numa_node: int | None = None,
        near_gpu=None,
        storage_options: dict | None = None,
        stages=(),
        # -- delivery on a GPU --
        device: str | None = None,
        device_slots: int | None = None,
        pin_memory: bool | str = False,
    ):
        self._handle = None  # set last: __del__ and close() see None until the open succeeds
        # A list of paths is one dataset (files in the order given).
        self._paths = None
        if isinstance(path, (list, tuple)):
            if not path:
                raise _errors.invalid("path must not be an empty list")
            self._paths = [_path_bytes(p) for p in path]
            self._path = self._paths[0]
        else:
            self._path = _path_bytes(path)
        if delimiter is not None:
            if not isinstance(delimiter, (str, bytes)) or len(delimiter) != 1 or ord(delimiter) > 127 or ord(delimiter) == 0:
                raise _errors.invalid(f"delimiter must be one ASCII character, got {delimiter!r}")
            delimiter = ord(delimiter)
        if not isinstance(header, bool):
            raise _errors.invalid(f"header must be a bool, not {type(header).__name__}")
        if schema is not None and not hasattr(schema, "__arrow_c_schema__"):
            raise _errors.invalid(
                f"schema must be a pyarrow.Schema (or implement __arrow_c_schema__), not {type(schema).__name__}"
            )
        if isinstance(shuffle, str):
            shuffle = shuffle.lower()
        if not isinstance(shuffle, (bool, str)) or shuffle not in _SHUFFLE:
            raise _errors.invalid(f'shuffle must be True, False, "global", "block" or "none", got {shuffle!r}')
        if not isinstance(drop_last, bool):
            raise _errors.invalid(f"drop_last must be a bool, not {type(drop_last).__name__}")
        if output not in _OUTPUTS:
            raise _errors.invalid(f'output must be "arrow" or "dlpack", got {output!r}')
        if pad is not None and output != "dlpack":
            raise _errors.invalid('pad applies to output="dlpack"')
        if columns is not None:
            if isinstance(columns, (str, bytes)) or not all(isinstance(c, str) for c in columns):
                raise _errors.invalid("columns must be a list of column names (str)")
            columns = list(columns)
            if not columns:
                raise _errors.invalid("columns must not be empty (None reads every column)")
            for name in columns:
                if "\0" in name:
                    raise _errors.invalid(f"column names must not contain a NUL character: {name!r}")
        if (rank is None) != (world_size is None):
            raise _errors.invalid("give both rank and world_size, or neither")
        if not isinstance(drop_remainder, bool):
            raise _errors.invalid(f"drop_remainder must be a bool, not {type(drop_remainder).__name__}")
        if isinstance(shard, str) and shard == _SHARD_FROM_ENV:
            shard_mode = "env" if rank is None else "explicit"
        elif shard is None or isinstance(shard, (tuple, list)):
            if rank is not None:
                raise _errors.invalid("give shard or rank and world_size, not both")
            if shard is None:
                shard_mode = "none"
            elif len(shard) != 2:
                raise _errors.invalid(f"shard must be None, \"env\" or (rank, world_size), got {shard!r}")
            else:
                shard_mode = "explicit"
                rank, world_size = shard
        else:
            raise _errors.invalid(f"shard must be None, \"env\" or (rank, world_size), got {shard!r}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise _errors.invalid(f"storage_options must be a dict, not {type(storage_options).__name__}")
        storage = []
        for key, value in (storage_options or {}).items():
            if not isinstance(key, str):
                raise _errors.invalid(f"storage_options keys must be str, not {type(key).__name__}")
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = str(value)
            elif not isinstance(value, str):
                raise _errors.invalid(f"storage_options[{key!r}] must be str, int, float or bool")
            if "\0" in key or "\0" in value:
                raise _errors.invalid(f"storage_options[{key!r}] must not contain a NUL character")
            storage.append((key, value))
        from .engine import NativeStage, _Stage

        stages = [s if isinstance(s, _Stage) or not callable(s) else NativeStage(s) for s in stages or ()]
        for stage in stages:
            if not isinstance(stage, _Stage):
                raise _errors.invalid(
                    f"stages must be zenith.Plugin or zenith.NativeStage objects (or functions), not {type(stage).__name__}"
                )
            stage._live()  # a closed stage is an error here, not at the first batch
        self._options = {
            "stages": stages,  # held: the options share their native stages at each open
            "storage": storage,
            "batch_size": _int("batch_size", batch_size, 1, _U64),
            "shuffle": _SHUFFLE[shuffle],
            "seed": _int("seed", seed, 0, _U64),
            "num_workers": _int("num_workers", num_workers, 0, _lib.ZENITH_MAX_WORKERS, none_ok=True),
            "prefetch": _int("prefetch", prefetch, 1, _U64, none_ok=True),
            "drop_last": drop_last,
            "columns": columns,
            "rank": _int("rank", rank, 0, _U32, none_ok=True),
            "world_size": _int("world_size", world_size, 1, _U32, none_ok=True),
            "memory_budget": _int("memory_budget", memory_budget, 0, _U64, none_ok=True),
            "shard": shard_mode,
            "drop_remainder": drop_remainder,
            "delimiter": delimiter,
            "header": header,
            "schema": schema,
        }
        self._options.update(_placement_options(io_backend, io_direct, numa_node, near_gpu))
        self._options["device"] = _device_option(device, device_slots)
        self._options["pin_memory"] = _pin_memory_option(pin_memory)
        if self._options["device"] is not None and output != "dlpack":
            raise _errors.invalid('device="cuda..." delivers tensors: use output="dlpack"')
        self._output = output
        self._pad = dict(pad) if isinstance(pad, dict) else pad  # checked by _columns.ColumnPlan
        self._lock = threading.RLock()
        self._pa_schema = None
        handle = self._open(None)
        try:
            self._plan = self._read_plan(handle)
            self._names = self._plan.names
            self._reset_position(handle, epoch=0, base=0)
        except BaseException:
            _lib.lib().zenith_loader_free(handle)
            raise
        self._generation = 0
        self._forked = False
        self._handle = handle
        _open_loaders.add(self)
        self._warn_if_downgraded()

    # ---- opening -----------------------------------------------------------------------------

    def _open(self, resume: bytes | None):
        """A new `zenith_loader *` with this loader's options (and a resume token)."""
        lib = _lib.lib()
        o = self._options
        opts = _lib.OptionsPtr()
        _errors.check(lib.zenith_loader_options_new(ctypes.byref(opts)), None)
        try:
            _call(lib.zenith_loader_options_set_batch_size, opts, o["batch_size"])
            _call(lib.zenith_loader_options_set_shuffle, opts, o["shuffle"])
            _call(lib.zenith_loader_options_set_seed, opts, o["seed"])
            _call(lib.zenith_loader_options_set_drop_last, opts, o["drop_last"])
            if o["num_workers"] is not None:
                _call(lib.zenith_loader_options_set_num_workers, opts, o["num_workers"])
            if o["prefetch"] is not None:
                _call(lib.zenith_loader_options_set_prefetch, opts, o["prefetch"])
            if o["shard"] == "none":
                _call(lib.zenith_loader_options_set_shard_none, opts)
            elif o["rank"] is not None:
                _call(lib.zenith_loader_options_set_shard, opts, o["rank"], o["world_size"])
            _call(lib.zenith_loader_options_set_shard_drop_remainder, opts, o["drop_remainder"])
            if o["columns"] is not None:
                names = [c.encode("utf-8") for c in o["columns"]]
                array = (ctypes.c_char_p * max(len(names), 1))(*names)
                _call(lib.zenith_loader_options_set_columns, opts, array, len(names))
            if o["memory_budget"] is not None:
                _call(lib.zenith_loader_options_set_memory_budget, opts, o["memory_budget"])
            if o["delimiter"] is not None:
                _call(lib.zenith_loader_options_set_csv_delimiter, opts, o["delimiter"])
            _call(lib.zenith_loader_options_set_csv_header, opts, o["header"])
            if o["schema"] is not None:
                capsule = o["schema"].__arrow_c_schema__()
                pointer = ctypes.cast(_capsule.schema_pointer(capsule), ctypes.POINTER(_lib.ArrowSchema))
                _call(lib.zenith_loader_options_set_schema, opts, pointer)
                del capsule  # copied by the library: the capsule releases its schema
            _apply_placement_options(lib, opts, o)
            _apply_device_option(lib, opts, o["device"])
            _apply_pin_memory(lib, opts, o["pin_memory"])
            for key, value in o["storage"]:
                _call(lib.zenith_loader_options_set_storage_option, opts, key.encode(), value.encode())
            for stage in o["stages"]:
                _call(lib.zenith_loader_options_add_stage, opts, stage._live())
            if resume is not None:
                buf = (ctypes.c_uint8 * max(len(resume), 1)).from_buffer_copy(resume.ljust(1, b"\0"))
                _call(lib.zenith_loader_options_set_resume_state, opts, buf, len(resume))
            handle = _lib.LoaderPtr()
            try:
                if self._paths is not None:
                    array = (ctypes.c_char_p * len(self._paths))(*self._paths)
                    _call(lib.zenith_loader_open_paths, array, len(self._paths), opts, ctypes.byref(handle))
                else:
                    _call(lib.zenith_loader_open, self._path, opts, ctypes.byref(handle))
            except _errors.NotFoundError as e:
                e.filename = os.fsdecode(self._path)
                raise
        finally:
            lib.zenith_loader_options_free(opts)
        return handle

    def _read_plan(self, handle) -> _columns.ColumnPlan:
        """The column names, and how output="dlpack" hands each column out, from the schema."""
        schema = _lib.ArrowSchema()
        _call(_lib.lib().zenith_loader_schema, handle, ctypes.byref(schema))
        try:
            return _columns.ColumnPlan(schema, self._pad)
        finally:
            schema.release(ctypes.byref(schema))

    def _warn_if_downgraded(self) -> None:
        """Warns (once per loader) when the automatic shuffle runs as a block shuffle."""
        s = self._stats_of(self._handle)
        if s.shuffle_requested != _lib.ZENITH_SHUFFLE_AUTO or s.shuffle_mode != _lib.ZENITH_SHUFFLE_BLOCK:
            return
        warnings.warn(
            _errors.ShuffleDowngradeWarning(
                f"zenith.Loader({os.fsdecode(self._path)!r}): shuffle=True runs as a block shuffle (rows shuffled "
                f"within windows of row groups, not across the whole dataset): the decoded data, about "
                f"{s.decoded_bytes} bytes, exceeds the memory budget of {s.memory_budget} bytes (memory_budget=, "
                f"by default half the available memory shared by the ranks on this node). Pass shuffle=\"block\" "
                f"to ask for it, shuffle=\"global\" to fail instead, or a larger memory_budget."
            ),
            stacklevel=3,
        )

    def _reset_position(self, handle, epoch: int, base: int) -> None:
        """Bookkeeping for an epoch prepared and not yet passed over (see the class docs)."""
        self._epoch = epoch
        self._fresh = True  # the next pass runs this epoch
        self._complete = False  # a resumed epoch already delivered in full (see load_state_dict)
        self._epoch_base = base  # batches of this epoch delivered before this handle existed
        self._epoch_start = self._stats_of(handle).batches  # the handle's counter at epoch start

    # ---- lifetime ----------------------------------------------------------------------------

    def _live(self):
        if not self._handle:
            if getattr(self, "_forked", False):
                raise _errors.invalid("this loader was opened in the parent of a fork; open a new one in this process")
            raise _errors.invalid("the loader is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return not self._handle

    def close(self) -> None:
        """Frees the loader (its workers and prefetched batches). Batches, tensors and streams
        already handed out stay valid. Idempotent."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            handle, self._handle = self._handle, None
            self._generation = getattr(self, "_generation", 0) + 1
            if handle:
                _lib.lib().zenith_loader_free(handle)

    def __del__(self):
        # The backstop for a loader never closed: nothing else can hold it now, so no lock.
        handle = getattr(self, "_handle", None)
        if handle:
            self._handle = None
            try:
                _lib.lib().zenith_loader_free(handle)
            except Exception:  # interpreter shutdown
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        raise TypeError("a zenith.Loader cannot be pickled (it owns native threads); open one per process")

    def __repr__(self) -> str:
        if self.closed:
            state = "closed"
        else:
            with self._lock:
                s = self._stats_of(self._live())
            source = _SHARD_SOURCES.get(s.shard_source, "unknown")
            shuffle = _SHUFFLE_NAMES.get(s.shuffle_mode, "unknown")
            if s.shuffle_requested == _lib.ZENITH_SHUFFLE_AUTO and s.shuffle_mode == _lib.ZENITH_SHUFFLE_BLOCK:
                shuffle += " (auto: over the memory budget)"
            state = (
                f"epoch={self._epoch}, batches_per_epoch={s.batches_per_epoch}, rank={s.rank}, "
                f"world_size={s.world_size} ({_SHARD_SOURCE_TEXT.get(source, source)}), shuffle={shuffle}"
            )
        shown = [os.fsdecode(p) for p in self._paths] if self._paths is not None else os.fsdecode(self._path)
        return f"zenith.Loader({shown!r}, batch_size={self._options['batch_size']}, {state})"

    # ---- facts -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        with self._lock:
            return _lib.lib().zenith_loader_num_batches(self._live())

    @property
    def epoch(self) -> int:
        """The epoch the next pass runs (or the one running)."""
        return self._epoch

    @property
    def column_names(self) -> list:
        return list(self._names)

    @property
    def schema(self):
        """The schema of every batch: a ``pyarrow.Schema`` (a :class:`zenith.Schema`
        implementing ``__arrow_c_schema__`` when pyarrow is not installed)."""
        pa = pyarrow()
        if pa is None:
            return Schema(self, self._names)
        with self._lock:
            if self._pa_schema is None:
                schema = _lib.ArrowSchema()
                _call(_lib.lib().zenith_loader_schema, self._live(), ctypes.byref(schema))
                try:
                    self._pa_schema = pa.Schema._import_from_c(ctypes.addressof(schema))
                finally:
                    if schema.release:
                        schema.release(ctypes.byref(schema))
            return self._pa_schema

    def _export_schema_capsule(self):
        with self._lock:
            address = _capsule.alloc(_lib.ArrowSchema)
            err = _errors.new_err()
            status = _lib.lib().zenith_loader_schema(self._live(), ctypes.cast(address, ctypes.POINTER(_lib.ArrowSchema)), ctypes.byref(err))
            if status < 0:
                _capsule.raw_free(address)
                _errors.check(status, err)
            return _capsule.schema_capsule(address)

    def __arrow_c_schema__(self):
        """The schema as an "arrow_schema" PyCapsule (the Arrow PyCapsule protocol)."""
        return self._export_schema_capsule()

    @staticmethod
    def _stats_of(handle) -> _lib.zenith_stats:
        stats = _lib.zenith_stats()
        stats.struct_size = ctypes.sizeof(_lib.zenith_stats)
        _call(_lib.lib().zenith_loader_stats, handle, ctypes.byref(stats))
        return stats

    def stats(self) -> dict:
        """Counters since open and the configuration running: rows, batches, bytes delivered;
        time_to_first_batch_ns, consumer_wait_ns, worker_busy_ns, decode_ns; chunks_decoded;
        queue_depth; epoch; batches_per_epoch; shuffle ("none", "global" or "block": the mode
        that runs, which is "block" for the automatic shuffle over the memory budget); num_workers;
        numa_node (-1: no placement) and pinned_workers; io_backend and io_backend_requested
        ("mmap", "io_uring" or "pread": the one reading, and the one asked for); io_read_bytes,
        io_read_ns; rank, world_size and shard_source ("options", "torch" for RANK/WORLD_SIZE,
        "slurm" for SLURM_PROCID/SLURM_NTASKS, or "none"); shuffle_requested ("auto", "global",
        "block" or "none") and shuffle_downgraded (the automatic shuffle runs as block);
        memory_budget (bytes) and decoded_bytes (the decoded size of the data, 0 when it needs no
        decoding); the device path's device_bytes_copied, device_copies, device_copy_ns,
        device_consumer_wait_ns (GPU starvation), device_consumer_waits, device_staging_waits and
        device_memory_waits (all 0 on the host); io_fallback_reason (see
        :meth:`io_fallback_reason`). Every field of the C ``zenith_stats`` is here."""
        with self._lock:
            s = self._stats_of(self._live())
        out = {name: getattr(s, name) for name, _ in _lib.zenith_stats._fields_[1:]}
        out["shuffle"] = _SHUFFLE_NAMES.get(out.pop("shuffle_mode"), "unknown")
        for key in ("io_backend", "io_backend_requested"):
            out[key] = _IO_NAMES.get(out[key], "unknown")
        out["shuffle_requested"] = _SHUFFLE_NAMES.get(out["shuffle_requested"], "unknown")
        out["shuffle_downgraded"] = out["shuffle_requested"] == "auto" and out["shuffle"] == "block"
        out["shard_source"] = _SHARD_SOURCES.get(out["shard_source"], "unknown")
        out["io_fallback_reason"] = self.io_fallback_reason()
        return out

    def io_fallback_reason(self) -> str | None:
        """Why the loader reads with another I/O backend than the one asked for, or without
        O_DIRECT though ``io_direct=True`` (e.g. io_uring refused by seccomp, tmpfs refusing
        O_DIRECT); None when it runs as asked."""
        lib = _lib.lib()
        with self._lock:
            handle = self._live()
            length = ctypes.c_size_t()
            buf = ctypes.create_string_buffer(512)
            err = _errors.new_err()
            status = lib.zenith_loader_io_fallback_reason(handle, buf, len(buf), ctypes.byref(length), ctypes.byref(err))
            if status == _errors.Status.ERR_BUFFER_TOO_SMALL:
                lib.zenith_error_free(err)
                buf = ctypes.create_string_buffer(length.value + 1)
                _call(lib.zenith_loader_io_fallback_reason, handle, buf, len(buf), ctypes.byref(length))
            else:
                _errors.check(status, err)
        return buf.raw[: length.value].decode("utf-8", "replace") or None

    # ---- epochs and passes -------------------------------------------------------------------

    def _taken(self) -> int:
        """Batches of the current epoch delivered through this handle (by any pass)."""
        return self._stats_of(self._handle).batches - self._epoch_start

    def _set_epoch(self, epoch: int) -> None:
        _call(_lib.lib().zenith_loader_set_epoch, self._handle, epoch)
        self._reset_position(self._handle, epoch, 0)
        self._generation += 1

    def set_epoch(self, epoch: int) -> None:
        """Prepares epoch `epoch` (from its first batch) for the next pass; batches of the current
        epoch not yet taken are discarded. Calling it with the epoch already prepared and not yet
        started does nothing: after :meth:`load_state_dict` it keeps the resumed position."""
        epoch = _int("epoch", epoch, 0, _U64)
        with self._lock:
            self._live()
            if self._fresh and epoch == self._epoch and self._taken() == 0:
                return
            self._set_epoch(epoch)

    def _begin_pass(self) -> int:
        """Starts a pass (lock held): moves to the next epoch when the last pass took batches."""
        self._live()
        if not self._fresh and (self._complete or self._taken() > 0):
            if self._epoch == _U64:
                raise _errors.invalid(
                    f"epoch {_U64} (2**64 - 1) is the last epoch: the epoch counter cannot advance past it "
                    "(call set_epoch to run an epoch again)"
                )
            self._set_epoch(self._epoch + 1)
        self._fresh = False
        self._generation += 1
        return self._generation

    def __iter__(self):
        with self._lock:
            generation = self._begin_pass()
        return _Pass(self, generation)

    def next_batch(self):
        """The next batch of the current epoch as a :class:`zenith.Batch` (whatever ``output``
        says), or None at the end of the epoch. A lower-level alternative to iteration; it does
        not start a pass (no epoch is advanced)."""
        with self._lock:
            handle = self._take_batch()
            return None if handle is None else _batch.Batch(handle, self._names)

    def _wait(self, fn, *outputs) -> int:
        """Calls a `zenith_loader_next*_timeout` function in slices of `_WAIT_SLICE_MS` until it
        returns a batch (ZENITH_OK) or the end of the epoch (ZENITH_DONE). Between slices Python runs
        its signal handlers: Ctrl-C raises KeyboardInterrupt here, and nothing was consumed."""
        while True:
            status = _call(fn, self._live(), _WAIT_SLICE_MS, *outputs)
            if status != _lib.ZENITH_WOULD_BLOCK:
                return status

    def _take_batch(self):
        out = _lib.BatchPtr()
        status = self._wait(_lib.lib().zenith_loader_next_batch_timeout, ctypes.byref(out))
        if status == _lib.ZENITH_DONE:
            return None
        return _batch._BatchHandle(out)

    def _next_item(self):
        if self._output == "dlpack":
            handle = self._take_batch()
            return None if handle is None else self._plan.build(handle, pyarrow())
        pa = pyarrow()
        if pa is None:
            handle = self._take_batch()
            return None if handle is None else _batch.Batch(handle, self._names)
        array = _lib.ArrowArray()
        status = self._wait(_lib.lib().zenith_loader_next_timeout, ctypes.byref(array), None)
        if status == _lib.ZENITH_DONE:
            return None
        try:
            return pa.RecordBatch._import_from_c(ctypes.addressof(array), self.schema)
        finally:
            if array.release:  # the import failed before moving it
                array.release(ctypes.byref(array))

    def __arrow_c_stream__(self, requested_schema=None):
        """The rest of the pass's epoch as an "arrow_array_stream" PyCapsule (the Arrow PyCapsule
        protocol): ``pa.RecordBatchReader.from_stream(loader)``, ``polars.DataFrame(loader)``,
        duckdb and nanoarrow read it. Exporting starts a pass (see the class docs). The stream
        stays valid after the loader is closed. `requested_schema` is not used: the data comes
        in its own schema."""
        with self._lock:
            self._begin_pass()
            address = _capsule.alloc(_lib.ArrowArrayStream)
            err = _errors.new_err()
            stream = ctypes.cast(address, ctypes.POINTER(_lib.ArrowArrayStream))
            status = _lib.lib().zenith_loader_export_stream(self._handle, stream, ctypes.byref(err))
            if status < 0:
                _capsule.raw_free(address)
                _errors.check(status, err)
            return _capsule.stream_capsule(address)

    # ---- resume ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Where the loader stands: ``{"version", "epoch", "batches_delivered", "token"}`` (the
        token: the library's resume state, about 100 bytes; no data). Pass it to
        :meth:`load_state_dict` of a loader opened on the same data with the same order options
        (any ``num_workers`` and ``prefetch``)."""
        with self._lock:
            handle = self._live()
            lib = _lib.lib()
            length = ctypes.c_size_t()
            buf = (ctypes.c_uint8 * _lib.ZENITH_RESUME_STATE_SIZE)()
            err = _errors.new_err()
            status = lib.zenith_loader_save_state(handle, buf, len(buf), ctypes.byref(length), ctypes.byref(err))
            if status == _errors.Status.ERR_BUFFER_TOO_SMALL:  # a newer library with a longer token
                lib.zenith_error_free(err)
                buf = (ctypes.c_uint8 * length.value)()
                _call(lib.zenith_loader_save_state, handle, buf, len(buf), ctypes.byref(length))
            else:
                _errors.check(status, err)
            return {
                "version": STATE_VERSION,
                "epoch": self._epoch,
                "batches_delivered": self._epoch_base + self._taken(),
                "token": bytes(buf[: length.value]),
            }

    def load_state_dict(self, state: dict) -> None:
        """Resumes from :meth:`state_dict`: the next pass delivers exactly the batches of the saved
        epoch not yet delivered (the next epoch when the saved one was complete). Re-opens the
        dataset; on failure (another dataset, other order options) raises
        :class:`InvalidArgumentError` and leaves this loader as it was."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise _errors.invalid(f"not a zenith.Loader state dict (version {STATE_VERSION})")
        token = state.get("token")
        if not isinstance(token, (bytes, bytearray, memoryview)):
            raise _errors.invalid("state['token'] must be bytes")
        epoch = _int("state['epoch']", state.get("epoch"), 0, _U64)
        delivered = _int("state['batches_delivered']", state.get("batches_delivered"), 0, _U64)
        with self._lock:
            self._live()
            handle = self._open(bytes(token))
            try:
                resumed_epoch = self._stats_of(handle).epoch
                if resumed_epoch != epoch:
                    raise _errors.invalid(f"state['epoch'] is {epoch} but its token is for epoch {resumed_epoch}")
                plan = self._read_plan(handle)
            except BaseException:
                _lib.lib().zenith_loader_free(handle)
                raise
            old, self._handle = self._handle, handle
            _lib.lib().zenith_loader_free(old)
            self._plan, self._names = plan, plan.names
            self._pa_schema = None
            self._reset_position(handle, epoch, delivered)
            self._generation += 1
            batches = _lib.lib().zenith_loader_num_batches(handle)
            if batches > 0 and delivered >= batches:
                if epoch == _U64:
                    # The last epoch, complete: the next pass raises instead of wrapping to 0.
                    self._fresh, self._complete = False, True
                else:
                    self._set_epoch(epoch + 1)


class _Pass:
    """The iterator of one pass over a loader (``iter(loader)``). An exception while it waits for
    a batch (KeyboardInterrupt from Ctrl-C) leaves it usable: ``next()`` continues with the batch
    it was waiting for."""

    __slots__ = ("_loader", "_generation", "_done")

    def __init__(self, loader: Loader, generation: int):
        self._loader = loader
        self._generation = generation
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        loader = self._loader
        with loader._lock:
            if self._generation != loader._generation:
                if not loader._handle:
                    loader._live()  # raises: closed, or inherited through fork
                raise RuntimeError("this iterator was superseded (a newer pass, set_epoch or load_state_dict)")
            item = loader._next_item()
        if item is None:
            self._done = True
            raise StopIteration
        return item
