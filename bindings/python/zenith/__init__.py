"""Zenith: shuffled, sharded batches of Arrow IPC, Parquet and CSV datasets, built on native
worker threads and handed over zero-copy as pyarrow RecordBatches or DLPack tensors.

    import zenith
    with zenith.Loader("data/", batch_size=1024, shuffle=True, seed=0) as loader:
        for epoch in range(3):
            loader.set_epoch(epoch)
            for batch in loader:          # pyarrow.RecordBatch
                ...

A thin ctypes binding over libzenith.so (no compiled extension): the library comes from
$ZENITH_LIBRARY, else the copy bundled in this package, else the repository's target/release or
target/debug. pyarrow, numpy and torch are optional. ``zenith.load(path)`` reads a dataset into a
pyarrow Table; ``zenith.DataLoader(path, batch_size=64)`` yields dicts of numpy arrays (with or
without torch installed). ``zenith.torch``, ``zenith.jax`` and ``zenith.tensorflow`` (each
imported on its own) hand batches to those frameworks through DLPack.
"""

from ._batch import Batch, Tensor
from ._errors import (
    FormatError,
    InvalidArgumentError,
    NotFoundError,
    OutOfMemoryError,
    SchemaMismatchError,
    ShuffleDowngradeWarning,
    Status,
    UnsupportedError,
    ZenithError,
    ZenithIOError,
    ZenithWarning,
)
from ._lib import library_path
from ._loader import Loader, Schema
from ._runtime import MetricsServer, block_cache_bytes, metrics_text, topology, trim_memory

# ---- gang scheduler (issue 11): the seeds' API, jobs on this machine -----------------------------
from .scheduler import job, submit  # noqa: E402  (zenith.scheduler holds the rest)
# ---- end of the gang scheduler's exports ----------------------------------------------------------
# -- the seeds' entry points: zenith.load (a pyarrow.Table) and zenith.DataLoader (numpy batches) --
from ._dataloader import DataLoader, load

# ---- event engine (issue 12): Arrow batches through WASM / Python stages on native threads ------
from ._errors import EngineTimeoutError, EventFailedError  # noqa: E402
from .engine import Engine, NativeStage, Plugin  # noqa: E402
# ---- end of the event engine's exports -----------------------------------------------------------


def version() -> str:
    """The version of the loaded libzenith, e.g. "0.1.0"."""
    from . import _lib

    return _lib.lib().zenith_version().decode("ascii")


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version

        try:
            return dist_version("libzenith")
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    return "0+unknown"


__version__ = _package_version()

__all__ = [
    "Batch",
    "DataLoader",
    "FormatError",
    "InvalidArgumentError",
    "Loader",
    "MetricsServer",
    "NotFoundError",
    "OutOfMemoryError",
    "Schema",
    "SchemaMismatchError",
    "ShuffleDowngradeWarning",
    "Status",
    "Tensor",
    "UnsupportedError",
    "ZenithError",
    "ZenithIOError",
    "ZenithWarning",
    "block_cache_bytes",
    "library_path",
    "load",
    "metrics_text",
    # gang scheduler
    "job",
    "submit",
    "topology",
    "trim_memory",
    "version",
    # event engine
    "Engine",
    "EngineTimeoutError",
    "EventFailedError",
    "NativeStage",
    "Plugin",
]
