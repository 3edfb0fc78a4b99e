"""zenith.Engine: the event engine (issue 12) — Arrow record batches through native and sandboxed
WASM stages on the library's worker threads, delivered in publish order.

    import zenith
    with zenith.Engine(buffer_size=4096, workers=2) as engine:
        engine.load_plugin("build/plugins/normalize.wasm", memory=64 << 20, time_limit=1.0)
        out = engine.process(batch)          # a pyarrow.RecordBatch

        sequence = engine.publish(batch)     # ownership of the exported batch moves to the engine
        out = engine.poll()                  # the next event in publish order
                                             # (EventFailedError in a failed event's place)

Stages are fixed when the engine starts (the C ABI copies them into the engine): ``load_plugin``
and ``add_stage`` work until the first ``publish`` / ``poll`` / ``process`` starts the engine, and
``Engine(stages=[...])`` names them up front. The engine's threads run without the GIL; only a
:class:`NativeStage` (a Python function) takes it, per event.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import os
import threading
import time
import weakref
from ctypes import CFUNCTYPE, POINTER, c_char, c_int32, c_size_t, c_uint64, c_void_p

from . import _capsule, _errors, _lib

__all__ = ["Engine", "NativeStage", "Plugin"]

_FOREVER = 2**64 - 1
# Waits are done in slices of at most this many milliseconds, so Ctrl-C and close() from
# another thread are noticed between them (publish gets its event back after each slice).
_SLICE_MS = 100


def _pyarrow():
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - pyarrow is a test dependency
        raise ImportError("zenith.Engine needs pyarrow (pip install pyarrow)") from exc
    return pyarrow


def _millis(timeout, what: str):
    """`None` -> None (wait as long as it takes); seconds -> whole milliseconds (rounded up)."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or math.isnan(timeout) or timeout < 0:
        raise _errors.invalid(f"{what} must be None or seconds >= 0, got {timeout!r}")
    return int(math.ceil(timeout * 1000))


class _Deadline:
    """A wait of `millis` ms (None: unbounded) done in C waits of at most _SLICE_MS each, so that
    Ctrl-C and close() from another thread are noticed between them."""

    def __init__(self, millis):
        self.millis = millis
        self.end = None if millis is None else time.monotonic() + millis / 1000

    def slice(self) -> int:
        if self.end is None:
            return _SLICE_MS
        left = int(math.ceil(max(0.0, self.end - time.monotonic()) * 1000))
        return min(left, _SLICE_MS)

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def _call(function, *args):
    err = _errors.new_err()
    return _errors.check(function(*args, ctypes.byref(err)), err)


# ---- stages ------------------------------------------------------------------------------------


class _Stage:
    """A `zenith_stage *` owned by this object; engines and options share the native stage, which
    outlives this handle while any of them uses it."""

    _handle = None

    def _adopt(self, handle):
        self._handle = handle
        self._finalizer = weakref.finalize(self, _lib.lib().zenith_stage_free, handle)

    def _live(self):
        if not self._handle:
            raise _errors.invalid(f"{type(self).__name__} is closed")
        return self._handle

    def close(self) -> None:
        """Frees this handle (engines using the stage keep it alive). Idempotent."""
        if self._handle:
            self._finalizer()
            self._handle = None


class Plugin(_Stage):
    """A sandboxed WASM stage from a plugin file (plugin ABI v1, docs/plugins.md).

    ``memory`` caps each instance's linear memory in bytes (None: 256 MiB); ``time_limit`` caps the
    CPU time per event in seconds (None: 1 s; 2 ms resolution). A plugin that traps, runs past the
    limit, grows memory past it or returns a malformed result fails that event only
    (:class:`zenith.EventFailedError` from ``Engine.poll``). A missing file raises
    :class:`zenith.NotFoundError`; a module that is not a valid plugin
    :class:`zenith.InvalidArgumentError` with the reason.

    ``config`` (bytes-like) is handed to each instance of the plugin once, before its first
    event, through the plugin's ``zn_configure`` export (e.g. normalize's fixed mean and standard
    deviation as two little-endian float64). A plugin that refuses it, or has no ``zn_configure``,
    raises :class:`zenith.InvalidArgumentError` here.
    """

    def __init__(self, path, memory: int | None = None, time_limit: float | None = None, config=None):
        self.path = os.fspath(path)
        if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool) or memory <= 0):
            raise _errors.invalid(f"memory must be None or a positive number of bytes, got {memory!r}")
        millis = _millis(time_limit, "time_limit")
        if millis == 0:
            raise _errors.invalid("time_limit must be positive")
        try:
            if isinstance(config, (str, int)):
                raise TypeError
            config = b"" if config is None else bytes(config)
        except TypeError:
            raise _errors.invalid(f"config must be bytes-like, not {type(config).__name__}") from None
        handle = _lib.StagePtr()
        _call(
            _lib.lib().zenith_stage_new_wasm_config,
            os.fsencode(self.path),
            memory or 0,
            millis or 0,
            config,
            len(config),
            ctypes.byref(handle),
        )
        self._adopt(handle)

    def __repr__(self) -> str:
        return f"zenith.Plugin({self.path!r})"


# The native stage's C callback type (zenith_stage_callback) and free callback.
_Callback = CFUNCTYPE(
    c_int32,
    c_void_p,
    POINTER(_lib.ArrowArray),
    POINTER(_lib.ArrowSchema),
    POINTER(_lib.ArrowArray),
    POINTER(_lib.ArrowSchema),
    POINTER(c_char),
    c_size_t,
)
_FreeCallback = CFUNCTYPE(None, c_void_p)

# Every live native stage's Python function, by the token passed as its `user_data`. The library
# calls `_forget` with the token when the last engine using the stage is freed: only then may the
# function go. The one C thunk `_transform` serves every stage, and it lives as long as the process.
_functions: dict = {}
_tokens = itertools.count(1)


def _write_message(buffer, capacity: int, message: str) -> None:
    if not buffer or capacity == 0:
        return
    data = message.encode("utf-8", "replace")[: capacity - 1]
    ctypes.memmove(buffer, data + b"\0", len(data) + 1)


@_Callback
def _transform(user_data, in_array, in_schema, out_array, out_schema, error, capacity):
    # Runs on an engine worker thread, with the GIL (ctypes takes it). Nothing may escape: an
    # exception becomes the event's failure message.
    try:
        function = _functions[user_data]
        pa = _pyarrow()
        batch = pa.RecordBatch._import_from_c(
            ctypes.addressof(in_array.contents), ctypes.addressof(in_schema.contents)
        )
        result = function(batch)
        if not isinstance(result, pa.RecordBatch):
            result = pa.record_batch(result)
        result._export_to_c(ctypes.addressof(out_array.contents), ctypes.addressof(out_schema.contents))
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported as the event's failure
        _write_message(error, capacity, f"{type(exc).__name__}: {exc}")
        return 1


@_FreeCallback
def _forget(user_data):
    _functions.pop(user_data, None)


_capsule._pin(_transform)
_capsule._pin(_forget)


class NativeStage(_Stage):
    """A stage that runs a Python function ``fn(batch) -> batch`` on each event: a
    ``pyarrow.RecordBatch`` in, a RecordBatch (or anything ``pyarrow.record_batch`` accepts)
    out. An exception fails that event only; its message reaches ``Engine.poll`` as an
    :class:`zenith.EventFailedError`.

    The function runs on the engine's worker threads, several at once, each holding the GIL while
    it runs: it must be thread-safe, and it parallelises only as far as it releases the GIL
    (numpy and pyarrow compute kernels do). For native speed, use a :class:`Plugin` or a C stage.
    """

    def __init__(self, fn, name: str | None = None):
        if not callable(fn):
            raise _errors.invalid(f"NativeStage needs a callable, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "python")
        token = next(_tokens)
        _functions[token] = fn
        handle = _lib.StagePtr()
        err = _errors.new_err()
        status = _lib.lib().zenith_stage_new_native(
            self.name.encode("utf-8"),
            ctypes.cast(_transform, c_void_p),
            c_void_p(token),
            ctypes.cast(_forget, c_void_p),
            ctypes.byref(handle),
            ctypes.byref(err),
        )
        if status < 0:
            _functions.pop(token, None)  # on failure the library does not call _forget
            _errors.check(status, err)
        self._adopt(handle)

    def __repr__(self) -> str:
        return f"zenith.NativeStage({self.name!r})"


# ---- the engine --------------------------------------------------------------------------------


def _shutdown_and_free(handle, released: list) -> None:
    count = c_uint64(0)
    lib = _lib.lib()
    lib.zenith_engine_shutdown(handle, ctypes.byref(count), None)
    lib.zenith_engine_free(handle)
    released.append(count.value)


class Engine:
    """An event engine: batches published in, transformed by the stages on ``workers`` threads in
    parallel across events, polled out in publish order; every published event comes out exactly
    once, or its place is an :class:`zenith.EventFailedError`.

    ``buffer_size`` bounds the events in flight (published, not yet polled) and ``max_bytes`` their
    size (None: 1 GiB): ``publish`` waits for room up to its timeout, then raises
    :class:`zenith.EngineTimeoutError` and leaves the batch with the caller. ``workers``: None for
    the library's default (2). ``stages``: :class:`Plugin` / :class:`NativeStage` objects (more
    can be added with ``load_plugin`` / ``add_stage`` until the engine starts). ``cpus`` (a list of
    CPU numbers) or ``numa_node`` (a node's online CPUs) pins every worker there; a node the
    machine lacks raises :class:`zenith.InvalidArgumentError` when the engine starts.

    Thread safety: any number of threads may publish and poll at once; ``close`` waits for the calls
    in progress (a waiting call notices it within 100 ms and raises).
    """

    def __init__(
        self,
        buffer_size: int = 4096,
        workers: int | None = None,
        max_bytes: int | None = None,
        stages=(),
        cpus=None,
        numa_node: int | None = None,
    ):
        for name, value in (("buffer_size", buffer_size), ("workers", workers), ("max_bytes", max_bytes)):
            if value is None and name != "buffer_size":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise _errors.invalid(f"{name} must be a positive integer, got {value!r}")
        if cpus is not None and numa_node is not None:
            raise _errors.invalid("give cpus or numa_node, not both")
        if cpus is not None:
            cpus = list(cpus)
            if not cpus or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 2**32 for c in cpus):
                raise _errors.invalid(f"cpus must be a non-empty list of CPU numbers, got {cpus!r}")
        if numa_node is not None and (not isinstance(numa_node, int) or isinstance(numa_node, bool) or numa_node < 0):
            raise _errors.invalid(f"numa_node must be None or a node number >= 0, got {numa_node!r}")
        self.cpus = cpus
        self.numa_node = numa_node
        self.buffer_size = buffer_size
        self.workers = workers
        self.max_bytes = max_bytes
        self._stages: list = []
        self._handle = None
        self._finalizer = None
        self._released: list = []
        self._closed = False
        self._users = 0
        self._published = 0
        self._polled = 0  # delivered or reported failed
        self._lock = threading.Condition()
        self._process_lock = threading.Lock()
        for stage in stages:
            self.add_stage(stage)

    # -- building -----------------------------------------------------------------------------

    def add_stage(self, stage) -> "Engine":
        """Appends a stage (a :class:`Plugin` or :class:`NativeStage`, or a plain function, made a
        NativeStage). Only before the engine starts (first publish/poll/process)."""
        if not isinstance(stage, _Stage):
            if callable(stage):
                stage = NativeStage(stage)
            else:
                raise _errors.invalid(f"a stage is a zenith.Plugin or zenith.NativeStage, got {stage!r}")
        stage._live()
        with self._lock:
            if self._closed:
                raise _errors.invalid("the engine is closed")
            if self._handle is not None:
                raise _errors.invalid(
                    "the engine has started (stages are fixed when it starts): add stages before "
                    "the first publish, poll or process, or pass Engine(stages=[...])"
                )
            self._stages.append(stage)
        return self

    def load_plugin(self, path, memory: int | None = None, time_limit: float | None = None, config=None) -> Plugin:
        """Adds a WASM plugin stage (see :class:`Plugin`) and returns it."""
        plugin = Plugin(path, memory=memory, time_limit=time_limit, config=config)
        self.add_stage(plugin)
        return plugin

    @property
    def stages(self) -> list:
        return list(self._stages)

    def _start(self):
        # Called with self._lock held.
        lib = _lib.lib()
        options = _lib.EngineOptionsPtr()
        _errors.check(lib.zenith_engine_options_new(ctypes.byref(options)), None)
        try:
            _call(lib.zenith_engine_options_set_capacity, options, self.buffer_size, self.max_bytes or (1 << 30))
            if self.workers is not None:
                _call(lib.zenith_engine_options_set_workers, options, self.workers)
            if self.cpus is not None:
                array = (ctypes.c_uint32 * len(self.cpus))(*self.cpus)
                _call(lib.zenith_engine_options_set_cpus, options, array, len(self.cpus))
            if self.numa_node is not None:
                _call(lib.zenith_engine_options_set_numa_node, options, self.numa_node)
            for stage in self._stages:
                _call(lib.zenith_engine_options_add_stage, options, stage._live())
            handle = _lib.EnginePtr()
            _call(lib.zenith_engine_new, options, ctypes.byref(handle))
        finally:
            lib.zenith_engine_options_free(options)
        self._handle = handle
        # The backstop: an engine never closed is shut down when collected or at exit (before the
        # interpreter goes, so a NativeStage's workers never call into a finalized Python).
        self._finalizer = weakref.finalize(self, _shutdown_and_free, handle, self._released)

    def _enter(self):
        with self._lock:
            if self._closed:
                raise _errors.invalid("the engine is closed")
            if self._handle is None:
                self._start()
            self._users += 1
            return self._handle

    def _leave(self):
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._lock.notify_all()

    @property
    def started(self) -> bool:
        return self._handle is not None

    # -- events -------------------------------------------------------------------------------

    def publish(self, batch, timeout: float | None = None) -> int:
        """Publishes one event and returns its sequence number (0, 1, 2, ... in publish order).

        ``batch``: a ``pyarrow.RecordBatch`` or anything with ``__arrow_c_array__`` exporting a
        struct array (the record-batch form). It is exported through the Arrow C Data Interface,
        zero copy, and the engine takes the exported data (the Python object stays usable: its
        buffers are shared, immutable). ``timeout`` in seconds (None: as long as it takes): when
        the engine stays full, :class:`zenith.EngineTimeoutError`, and nothing was taken.
        """
        if not hasattr(batch, "__arrow_c_array__"):
            raise _errors.invalid(
                f"publish takes a pyarrow.RecordBatch or an object with __arrow_c_array__, got {type(batch).__name__}"
            )
        schema_capsule, array_capsule = batch.__arrow_c_array__()
        # The capsules own the exported structs: after a successful publish they are marked
        # released (moved into the engine) and the capsules only free their memory; after a
        # timeout they hold the event again and release it when dropped.
        schema = _capsule.PyCapsule_GetPointer(id(schema_capsule), _capsule.ARROW_SCHEMA)
        array = _capsule.PyCapsule_GetPointer(id(array_capsule), _capsule.ARROW_ARRAY)
        if not schema or not array:
            raise _errors.invalid("__arrow_c_array__ returned capsules that are not arrow_schema / arrow_array")
        array_ptr = ctypes.cast(array, POINTER(_lib.ArrowArray))
        schema_ptr = ctypes.cast(schema, POINTER(_lib.ArrowSchema))
        millis = _millis(timeout, "timeout")
        handle = self._enter()
        try:
            publish = _lib.lib().zenith_engine_publish
            sequence = c_uint64(0)
            deadline = _Deadline(millis)
            while True:
                err = _errors.new_err()
                status = publish(handle, array_ptr, schema_ptr, deadline.slice(), ctypes.byref(sequence), ctypes.byref(err))
                _errors.check(status, err)
                if status == _lib.ZENITH_OK:
                    with self._lock:
                        self._published += 1
                    return sequence.value
                self._check_open()
                if deadline.passed():
                    raise _errors.EngineTimeoutError(
                        _lib.ZENITH_WOULD_BLOCK,
                        f"publish: the engine stayed full for {timeout} s "
                        f"(buffer_size={self.buffer_size}); the batch was not taken",
                    )
        finally:
            self._leave()
            del schema_capsule, array_capsule

    def poll(self, timeout: float | None = None):
        """The next event in publish order, as a ``pyarrow.RecordBatch``.

        A failed event raises :class:`zenith.EventFailedError` in its place (``.sequence`` is its
        sequence number; the engine goes on, the next poll returns the next event). ``timeout`` in
        seconds (None: as long as it takes): when the next event is not done in time,
        :class:`zenith.EngineTimeoutError`.
        """
        return self._poll(timeout)[1]

    def poll_with_sequence(self, timeout: float | None = None):
        """Like :meth:`poll`, returning ``(sequence, batch)``."""
        return self._poll(timeout)

    def _poll(self, timeout):
        pa = _pyarrow()
        millis = _millis(timeout, "timeout")
        handle = self._enter()
        try:
            poll = _lib.lib().zenith_engine_poll
            array = _lib.ArrowArray()
            schema = _lib.ArrowSchema()
            sequence = c_uint64(0)
            deadline = _Deadline(millis)
            while True:
                err = _errors.new_err()
                status = poll(
                    handle, ctypes.byref(array), ctypes.byref(schema), ctypes.byref(sequence), deadline.slice(), ctypes.byref(err)
                )
                if status in (_lib.ZENITH_OK, _lib.ZENITH_ERR_EVENT_FAILED):
                    with self._lock:
                        self._polled += 1
                if status == _lib.ZENITH_OK:
                    try:
                        batch = pa.RecordBatch._import_from_c(ctypes.addressof(array), ctypes.addressof(schema))
                    finally:
                        if array.release:  # the import failed before moving them
                            array.release(ctypes.byref(array))
                        if schema.release:
                            schema.release(ctypes.byref(schema))
                    return sequence.value, batch
                if status == _lib.ZENITH_ERR_EVENT_FAILED:
                    lib = _lib.lib()
                    message = lib.zenith_error_message(err).decode("utf-8", "replace") if err else "event failed"
                    if err:
                        lib.zenith_error_free(err)
                    raise _errors.EventFailedError(status, message, sequence.value)
                _errors.check(status, err)
                self._check_open()
                if deadline.passed():
                    raise _errors.EngineTimeoutError(
                        _lib.ZENITH_WOULD_BLOCK, f"poll: no event finished within {timeout} s"
                    )
        finally:
            self._leave()

    def process(self, batch, timeout: float | None = None):
        """Runs one batch through the stages: ``publish`` then ``poll``, returning the transformed
        ``pyarrow.RecordBatch`` (or raising :class:`zenith.EventFailedError` for it). ``timeout``
        bounds each of the two waits; after a poll timeout the event stays in flight (take it with
        :meth:`poll`).

        For request/response use with nothing else in flight: with events published and not yet
        polled, the next poll would return one of those, so ``process`` refuses (nothing is
        taken). Concurrent ``process`` calls take turns.
        """
        with self._process_lock:
            in_flight = self.in_flight
            if in_flight:
                raise _errors.invalid(
                    f"process: {in_flight} event(s) published and not yet polled would come out "
                    "first; poll them, or use publish/poll"
                )
            sequence = self.publish(batch, timeout=timeout)
            try:
                got, result = self._poll(timeout)
            except _errors.EventFailedError as exc:
                if exc.sequence != sequence:
                    raise self._overtaken(exc.sequence, sequence) from exc
                raise
            if got != sequence:
                raise self._overtaken(got, sequence)
            return result

    @staticmethod
    def _overtaken(got, sequence):
        return _errors.invalid(
            f"process: event {got} came out instead of this batch's ({sequence}): another thread "
            "published meanwhile (use publish/poll when several threads share an engine)"
        )

    @property
    def in_flight(self) -> int:
        """Events published through this object and not yet polled (delivered or failed)."""
        with self._lock:
            return self._published - self._polled

    @property
    def published(self) -> int:
        """Events published through this object so far."""
        with self._lock:
            return self._published

    def _check_open(self):
        if self._closed:
            raise _errors.invalid("the engine was closed while waiting")

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> int:
        """Stops the engine and frees it: workers finish the event they hold, and every event
        published and not yet polled is released. Returns how many were released (also kept in
        :attr:`released`). Waits for publish/poll calls in progress (they notice within 100 ms
        and raise). Idempotent: a second call returns 0."""
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
            while self._users:
                self._lock.wait()
            finalizer = self._finalizer
        if finalizer is None:  # never started: nothing in flight
            return 0
        finalizer()
        return self.released

    @property
    def released(self) -> int:
        """Events released unpolled by :meth:`close` (0 before it)."""
        return self._released[0] if self._released else 0

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._handle is not None else "not started")
        return f"zenith.Engine(buffer_size={self.buffer_size}, workers={self.workers}, stages={self._stages!r}, {state})"
