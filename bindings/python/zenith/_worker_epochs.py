"""The epochs of a ``zenith.torch`` dataset, shared between the main process and the worker
processes of a ``torch.utils.data.DataLoader``.

torch copies the dataset into each worker process once (by fork or pickle): persistent workers
keep that copy for every epoch, so an attribute the main process changes later (``set_epoch``)
never reaches them, and fresh workers start from the main process's copy, so they cannot know
how many passes ran before them. What the main process asks for and what the workers did
therefore live in a small JSON file that every process opens by path and updates under an
exclusive ``flock``: the file's path is all that travels with the dataset.

The record holds the requested epoch (with a generation that ``set_epoch`` and
``load_state_dict`` bump), and the last passes the workers ran: each pass is known by a key that
all workers of one pass share (torch's per-iterator base seed, ``WorkerInfo.seed - id``, and the
number of passes the worker process made before), the epoch it runs, and how many of its workers
finished it. The first worker of a pass picks its epoch (the requested one for the first pass
after a request, else the previous pass's plus one); the others find the pass by its key.
(Fresh workers whose DataLoader draws the same base seed every pass, because torch's generator
is re-seeded identically before each one, look like the same pass: without ``set_epoch`` they
repeat its epoch.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import weakref

_KEPT_PASSES = 8  # passes remembered, so a slow worker of an older pass still finds its own


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:  # never from a forked worker that inherited the object
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class WorkerEpochs:
    """The shared record (see the module docs). Made in the main process, which removes its
    file when the object is collected (or at exit); copies made by pickling or fork only open
    it by path."""

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="zenith-torch-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"generation": 0, "epoch": 0, "midway": False, "passes": []}, f)
        self._finalizer = weakref.finalize(self, _remove, self.path, os.getpid())

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path = state["path"]
        self._finalizer = None

    @contextlib.contextmanager
    def _locked(self):
        """The record, read and written back under an exclusive lock."""
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            record = json.load(f)
            yield record
            f.seek(0)
            f.truncate()
            json.dump(record, f)

    def request(self, epoch: int, midway: bool = False) -> None:
        """The next pass runs `epoch` (from ``set_epoch``, or ``load_state_dict``, whose state
        may sit `midway` through the epoch)."""
        with self._locked() as record:
            record["generation"] += 1
            record["epoch"] = epoch
            record["midway"] = midway

    def begin_pass(self, key: list, workers: int) -> tuple:
        """(epoch, resumes midway) of the pass a worker starts; `key` names the pass."""
        with self._locked() as record:
            for p in record["passes"]:
                if p["key"] == key:
                    return p["epoch"], p["midway"]
            latest = record["passes"][-1] if record["passes"] else None
            if latest is None or latest["generation"] != record["generation"]:
                epoch, midway = record["epoch"], record["midway"]
            else:
                epoch, midway = latest["epoch"] + 1, False
            entry = {
                "key": key,
                "generation": record["generation"],
                "epoch": epoch,
                "midway": midway,
                "workers": workers,
                "finished": 0,
            }
            record["passes"] = (record["passes"] + [entry])[-_KEPT_PASSES:]
            return epoch, midway

    def end_pass(self, key: list) -> None:
        """A worker delivered the whole of its share of the pass `key`."""
        with self._locked() as record:
            for p in record["passes"]:
                if p["key"] == key:
                    p["finished"] += 1

    def resume_epoch(self):
        """Where a resume goes after what the workers delivered: None when no worker pass ran
        since the last request (the main process's loader holds the position), else the epoch
        after the last pass when all its workers finished it. Raises RuntimeError while a pass
        is unfinished: how far the training loop got is not known here."""
        with self._locked() as record:
            latest = record["passes"][-1] if record["passes"] else None
            if latest is None or latest["generation"] != record["generation"]:
                return None
            if latest["finished"] >= latest["workers"]:
                return latest["epoch"] + 1
            raise RuntimeError(
                f"epoch {latest['epoch']} is being read by torch DataLoader workers and is not finished "
                f"({latest['finished']} of {latest['workers']} workers done): the main process cannot know "
                "which of their batches the training loop took. Save the state at an epoch boundary "
                "(after a full pass), or iterate with num_workers=0 (Zenith builds batches on its own "
                "threads) to save it anywhere"
            )
