"""The child side of the local executor: runs one gang member's Python function in a fresh
interpreter, sends progress heartbeats to the executor, and writes the result.

Started as ``python -c BOOTSTRAP payload result``: the bootstrap (which needs nothing but the
standard library) reads the parent's preparation data from the payload file and prepares the
interpreter the way multiprocessing's spawn start method does (``sys.path``, working directory,
the main module as ``__mp_main__``), so functions defined in a script or a test module unpickle
here; then :func:`main` reads the function and its arguments.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
import traceback

# What the executor runs; `%r` placeholders are not used: the paths come as arguments.
BOOTSTRAP = (
    "import sys, pickle, multiprocessing.spawn as s\n"
    "payload, result = sys.argv[1:3]\n"
    "f = open(payload, 'rb')\n"
    "s.prepare(pickle.load(f))\n"
    "from zenith.scheduler import _runner\n"
    "_runner.main(f, result)\n"
)


def beat_every(send, interval: float) -> threading.Thread:
    """Calls ``send()`` every `interval` seconds on a daemon thread while the process lives: a
    gang member's progress heartbeat (the local executor's pipe, the Ray adapter's heartbeat
    actor). A process that hangs in C code without releasing the GIL, or is stopped, stops
    beating: a zombie. The thread ends when ``send`` raises (the executor went away)."""

    def run():
        while True:
            try:
                send()
            except Exception:
                return
            time.sleep(interval)

    t = threading.Thread(target=run, name="zenith-heartbeat", daemon=True)
    t.start()
    return t


def main(payload, result_path: str) -> None:
    fn, args, kwargs = pickle.load(payload)
    payload.close()
    fd = os.environ.get("ZENITH_HEARTBEAT_FD")
    if fd:
        interval = float(os.environ.get("ZENITH_HEARTBEAT_INTERVAL", "1"))
        beat_every(lambda: os.write(int(fd), b"."), interval)
    try:
        value = fn(*args, **kwargs)
    except BaseException as e:  # reported to the parent, which raises JobFailedError
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        try:
            blob = pickle.dumps(("error", e, text))
        except Exception:
            blob = pickle.dumps(("error", None, text))
        _write(result_path, blob)
        sys.stderr.write(text)
        sys.stderr.flush()
        os._exit(1)
    try:
        blob = pickle.dumps(("ok", value, None))
    except Exception as e:
        text = f"the job's return value cannot be pickled: {e!r}"
        _write(result_path, pickle.dumps(("error", None, text)))
        os._exit(1)
    _write(result_path, blob)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _write(path: str, blob: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
