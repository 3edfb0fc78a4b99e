"""The gang scheduler's decision core from Python: :class:`Scheduler`, :class:`JobSpec`,
:class:`NodeSpec`, :class:`Decision` over the ``zenith_scheduler_*`` C functions.

Time is injected: every call that depends on time takes ``now`` in milliseconds (any clock,
never decreasing), so the same calls give the same decisions and a journal replays them.
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

from .. import _lib
from .._errors import Status, ZenithError, _CLASSES, check, invalid, new_err, ref


class AlreadyExistsError(ZenithError, ValueError):
    """A job id, node name or queue that is already in use (``ZENITH_ERR_ALREADY_EXISTS``)."""


class InvalidStateError(ZenithError, RuntimeError):
    """A call the job's or node's state does not allow: an illegal transition, cancelling a
    finished job, a clock that went backwards (``ZENITH_ERR_INVALID_STATE``)."""


class UnknownError(ZenithError, LookupError):
    """A job, node or queue the scheduler does not know (``ZENITH_ERR_NOT_FOUND``)."""


# The scheduler's statuses get their own exception classes; the loader's keep theirs.
_CLASSES.setdefault(_lib.ZENITH_ERR_ALREADY_EXISTS, AlreadyExistsError)
_CLASSES.setdefault(_lib.ZENITH_ERR_INVALID_STATE, InvalidStateError)


def _call(name: str, *args) -> int:
    """Calls the C function `name` with `args` and a fresh error slot; raises on failure. A
    NOT_FOUND from the scheduler is an :class:`UnknownError` (a ``LookupError``, not the
    loader's ``FileNotFoundError``)."""
    err = new_err()
    status = getattr(_lib.lib(), name)(*args, ref(err))
    try:
        return check(status, err)
    except ZenithError as e:
        if e.code == Status.ERR_NOT_FOUND:
            raise UnknownError(e.code, e.message) from None
        raise


def _text(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise invalid(f"{what} must be a str, not {type(value).__name__}")
    return value.encode("utf-8")


class JobState(enum.IntEnum):
    """A job's state (the ``ZENITH_JOB_*`` values)."""

    PENDING = _lib.ZENITH_JOB_PENDING
    QUEUED = _lib.ZENITH_JOB_QUEUED
    SCHEDULED = _lib.ZENITH_JOB_SCHEDULED
    RUNNING = _lib.ZENITH_JOB_RUNNING
    SUSPENDED = _lib.ZENITH_JOB_SUSPENDED
    COMPLETED = _lib.ZENITH_JOB_COMPLETED
    FAILED = _lib.ZENITH_JOB_FAILED
    CANCELLED = _lib.ZENITH_JOB_CANCELLED

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


_LOCALITIES = {
    "any": _lib.ZENITH_LOCALITY_ANY,
    "same-node": _lib.ZENITH_LOCALITY_SAME_NODE,
    "same-island": _lib.ZENITH_LOCALITY_SAME_ISLAND,
    "same-rack": _lib.ZENITH_LOCALITY_SAME_RACK,
    "spread": _lib.ZENITH_LOCALITY_SPREAD,
}

_KINDS = {
    _lib.ZENITH_DECISION_START: "start",
    _lib.ZENITH_DECISION_PREEMPT: "preempt",
    _lib.ZENITH_DECISION_REQUEUE: "requeue",
    _lib.ZENITH_DECISION_FAIL: "fail",
}

_REASONS = {
    _lib.ZENITH_REASON_NONE: None,
    _lib.ZENITH_REASON_PREEMPTED: "preempted",
    _lib.ZENITH_REASON_NODE_LOST: "node-lost",
    _lib.ZENITH_REASON_ZOMBIE: "zombie",
    _lib.ZENITH_REASON_TIME_LIMIT: "time-limit",
    _lib.ZENITH_REASON_REPORTED: "reported",
}


@dataclass
class NodeSpec:
    """A node: ``gpus`` GPUs of ``gpu_type`` (indices 0..gpus-1), NVLink islands as lists of GPU
    indices, allocatable CPU in milli-CPUs and memory in MiB, topology labels."""

    name: str
    cpu_milli: int = 0
    memory_mib: int = 0
    gpus: int = 0
    gpu_type: str = "GPU"
    gpu_memory_mib: int = 0
    nvlink_islands: Sequence[Sequence[int]] = ()
    rack: Optional[str] = None
    switch: Optional[str] = None
    zone: Optional[str] = None

    def _build(self):
        spec = _lib.NodeSpecPtr()
        _call("zenith_node_spec_new", _text(self.name, "name"), self.cpu_milli, self.memory_mib, ctypes.byref(spec))
        try:
            if self.gpus:
                _call("zenith_node_spec_add_gpus", spec, self.gpus, _text(self.gpu_type, "gpu_type"), self.gpu_memory_mib)
            for island in self.nvlink_islands:
                indices = (ctypes.c_uint32 * len(island))(*island)
                _call("zenith_node_spec_add_nvlink_island", spec, indices, len(island))
            for key in ("rack", "switch", "zone"):
                value = getattr(self, key)
                if value is not None:
                    _call("zenith_node_spec_set_label", spec, key.encode(), _text(value, key))
        except BaseException:
            _lib.lib().zenith_node_spec_free(spec)
            raise
        return spec


@dataclass
class JobSpec:
    """A job (the seeds' ``JobDescriptor``): ``gang_size`` members that start together or not at
    all, each asking for ``gpus`` whole GPUs (or, with ``gpu_share_milli``, a share of one GPU),
    ``cpu_milli`` and ``memory_mib``; placed by ``locality`` (``"any"``, ``"same-node"``,
    ``"same-island"``, ``"same-rack"``, ``"spread"``). ``command`` (program and arguments),
    ``env`` and ``workdir`` are data for the executor, validated by the scheduler."""

    id: int
    name: str = "job"
    user: str = "default"
    queue: str = "default"
    gpus: int = 0
    gpu_share_milli: Optional[int] = None
    gpu_types: Sequence[str] = ()
    cpu_milli: int = 0
    memory_mib: int = 0
    gang_size: int = 1
    locality: str = "any"
    priority: int = 0
    preemptible: bool = False
    restartable: bool = True
    max_runtime_ms: Optional[int] = None
    progress_timeout_ms: Optional[int] = None
    command: Optional[Sequence[str]] = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: Optional[str] = None

    def _build(self):
        if self.locality not in _LOCALITIES:
            raise invalid(f"unknown locality {self.locality!r}: expected one of {', '.join(_LOCALITIES)}")
        spec = _lib.JobSpecPtr()
        _call("zenith_job_spec_new", self.id, _text(self.name, "name"), ctypes.byref(spec))
        try:
            _call("zenith_job_spec_set_user", spec, _text(self.user, "user"))
            _call("zenith_job_spec_set_queue", spec, _text(self.queue, "queue"))
            if self.gpu_share_milli is not None:
                _call("zenith_job_spec_set_gpu_share", spec, self.gpu_share_milli)
            else:
                _call("zenith_job_spec_set_gpus", spec, self.gpus)
            for t in self.gpu_types:
                _call("zenith_job_spec_add_gpu_type", spec, _text(t, "gpu_types"))
            _call("zenith_job_spec_set_cpus", spec, self.cpu_milli)
            _call("zenith_job_spec_set_memory", spec, self.memory_mib)
            _call("zenith_job_spec_set_gang", spec, self.gang_size, _LOCALITIES[self.locality])
            _call("zenith_job_spec_set_priority", spec, self.priority, int(bool(self.preemptible)))
            _call("zenith_job_spec_set_restartable", spec, int(bool(self.restartable)))
            _call("zenith_job_spec_set_max_runtime", spec, self.max_runtime_ms or 0)
            _call("zenith_job_spec_set_progress_timeout", spec, self.progress_timeout_ms or 0)
            if self.command:
                program, *args = self.command
                _call("zenith_job_spec_set_command", spec, _text(program, "command"))
                for a in args:
                    _call("zenith_job_spec_add_arg", spec, _text(a, "command argument"))
                for k, v in self.env.items():
                    _call("zenith_job_spec_add_env", spec, _text(k, "env name"), _text(v, "env value"))
                if self.workdir is not None:
                    _call("zenith_job_spec_set_workdir", spec, _text(self.workdir, "workdir"))
            elif self.env or self.workdir is not None:
                raise invalid("env and workdir need a command")
        except BaseException:
            _lib.lib().zenith_job_spec_free(spec)
            raise
        return spec

    def validate(self) -> None:
        """Checks every field as submit does; raises :class:`zenith.InvalidArgumentError` naming
        the first field that breaks a rule."""
        spec = self._build()
        try:
            _call("zenith_job_spec_validate", spec)
        finally:
            _lib.lib().zenith_job_spec_free(spec)


UNLIMITED = ((1 << 64) - 1) // 4  # u64::MAX / 4: the core's "unlimited" quantity


@dataclass
class QueueSpec:
    """A queue with a quota (Kueue's ClusterQueue): ``nominal`` (guaranteed), ``borrowing_limit``
    (how much above it the queue may borrow from its ``cohort``), ``lending_limit`` (how much of it
    the queue lends), each ``(gpu_milli, cpu_milli, memory_mib)`` or None; ``weight`` is its
    fair-share weight. :meth:`gpus` builds a GPU-only quantity."""

    name: str
    nominal: Optional[tuple] = None
    borrowing_limit: Optional[tuple] = None
    lending_limit: Optional[tuple] = None
    cohort: Optional[str] = None
    weight: int = 1

    @staticmethod
    def gpus(n: float) -> tuple:
        """``n`` GPUs, CPU and memory unlimited."""
        return (int(n * 1000), UNLIMITED, UNLIMITED)

    def _build(self):
        spec = _lib.QueueSpecPtr()
        _call("zenith_queue_spec_new", _text(self.name, "name"), ctypes.byref(spec))
        try:
            for which, q in (
                (_lib.ZENITH_QUEUE_NOMINAL, self.nominal),
                (_lib.ZENITH_QUEUE_BORROWING_LIMIT, self.borrowing_limit),
                (_lib.ZENITH_QUEUE_LENDING_LIMIT, self.lending_limit),
            ):
                if q is not None:
                    gpu, cpu, mem = q
                    _call("zenith_queue_spec_set_limit", spec, which, gpu, cpu, mem)
            cohort = None if self.cohort is None else _text(self.cohort, "cohort")
            _call("zenith_queue_spec_set_cohort", spec, cohort, self.weight)
        except BaseException:
            _lib.lib().zenith_queue_spec_free(spec)
            raise
        return spec


@dataclass(frozen=True)
class Member:
    """Where one gang member runs: the node, and its GPUs by index with the milli-GPUs granted
    (1000 = a whole GPU)."""

    node: str
    node_id: int
    gpus: tuple
    gpu_milli: tuple


@dataclass(frozen=True)
class Decision:
    """One decision of a pass. ``kind`` is ``"start"`` (``members`` says where), ``"preempt"``
    (``by`` is the job it makes room for), ``"requeue"`` or ``"fail"`` (``reason``:
    ``"preempted"``, ``"node-lost"``, ``"zombie"``, ``"time-limit"``, ``"reported"``)."""

    kind: str
    job: int
    by: Optional[int] = None
    reason: Optional[str] = None
    members: tuple = ()


def _read_decisions(handle) -> list:
    lib = _lib.lib()
    try:
        out = []
        for i in range(lib.zenith_scheduler_decisions_len(handle)):
            d = _lib.zenith_scheduler_decision(struct_size=ctypes.sizeof(_lib.zenith_scheduler_decision))
            _call("zenith_scheduler_decisions_get", handle, i, ctypes.byref(d))
            members = []
            for m in range(d.members):
                info = _lib.zenith_scheduler_member(struct_size=ctypes.sizeof(_lib.zenith_scheduler_member))
                _call("zenith_scheduler_decisions_member", handle, i, m, ctypes.byref(info))
                gpus, milli = [], []
                for g in range(info.gpus):
                    index, share = ctypes.c_uint32(), ctypes.c_uint32()
                    _call("zenith_scheduler_decisions_member_gpu", handle, i, m, g, ctypes.byref(index), ctypes.byref(share))
                    gpus.append(index.value)
                    milli.append(share.value)
                members.append(Member(info.node_name.decode("utf-8"), info.node_id, tuple(gpus), tuple(milli)))
            kind = _KINDS[d.kind]
            out.append(
                Decision(
                    kind=kind,
                    job=d.job,
                    by=d.by if kind == "preempt" else None,
                    reason=_REASONS.get(d.reason),
                    members=tuple(members),
                )
            )
        return out
    finally:
        lib.zenith_scheduler_decisions_free(handle)


class Scheduler:
    """A gang scheduler: a deterministic decision core (see ``libzenith/scheduler``).

    ``policy``: ``"zenith"`` (multifactor priority, EASY backfill, topology-aware placement,
    preemption), ``"fifo"``, ``"first-fit"``, ``"best-fit"`` or ``"sjf"``. With ``journal``
    (a path), every call is journaled there; a scheduler created on an existing journal is
    restored from it, with no job lost. Use as a context manager or call :meth:`close`.
    Thread-safe.
    """

    def __init__(
        self,
        policy: str = "zenith",
        journal: Union[str, os.PathLike, None] = None,
        *,
        journal_sync: bool = False,
        node_suspect_after_ms: Optional[int] = None,
        node_down_after_ms: Optional[int] = None,
        zombie_timeout_ms: Optional[int] = None,
        implicit_queues: bool = True,
    ):
        self._lock = threading.Lock()
        self._handle = None
        opts = _lib.SchedulerOptionsPtr()
        _call("zenith_scheduler_options_new", ctypes.byref(opts))
        try:
            _call("zenith_scheduler_options_set_policy", opts, _text(policy, "policy"))
            if journal is not None:
                _call("zenith_scheduler_options_set_journal", opts, os.fsencode(journal), int(journal_sync))
            if node_suspect_after_ms or node_down_after_ms:
                _call(
                    "zenith_scheduler_options_set_node_timeouts",
                    opts,
                    node_suspect_after_ms or 0,
                    node_down_after_ms or 0,
                )
            _call("zenith_scheduler_options_set_zombie_timeout", opts, zombie_timeout_ms or 0)
            _call("zenith_scheduler_options_set_implicit_queues", opts, int(implicit_queues))
            handle = _lib.SchedulerPtr()
            _call("zenith_scheduler_new", opts, ctypes.byref(handle))
            self._handle = handle
        finally:
            _lib.lib().zenith_scheduler_options_free(opts)

    # ---- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the scheduler (its journal is kept). Idempotent."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle:
            _lib.lib().zenith_scheduler_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _h(self):
        handle = self._handle
        if not handle:
            raise InvalidStateError(_lib.ZENITH_ERR_INVALID_STATE, "the scheduler is closed")
        return handle

    # ---- nodes ------------------------------------------------------------------------------

    def add_node(self, spec: NodeSpec, now: int) -> int:
        """Adds a node at ``now`` (its first heartbeat); returns its id."""
        c_spec = spec._build()
        try:
            node_id = ctypes.c_uint32()
            _call("zenith_scheduler_node_add", self._h(), c_spec, now, ctypes.byref(node_id))
            return node_id.value
        finally:
            _lib.lib().zenith_node_spec_free(c_spec)

    def remove_node(self, name: str, now: int) -> None:
        """Removes a node; the next pass requeues (or fails) its jobs."""
        _call("zenith_scheduler_node_remove", self._h(), _text(name, "name"), now)

    def heartbeat(self, name: str, now: int) -> None:
        """A node's heartbeat."""
        _call("zenith_scheduler_node_heartbeat", self._h(), _text(name, "name"), now)

    def drain(self, name: str, now: int, drain: bool = True) -> None:
        """Drains a node (no new work; running jobs finish), or ends the draining."""
        fn = "zenith_scheduler_node_drain" if drain else "zenith_scheduler_node_undrain"
        _call(fn, self._h(), _text(name, "name"), now)

    # ---- queues -----------------------------------------------------------------------------

    def set_queue(self, spec: QueueSpec) -> None:
        """Adds or replaces a queue and its quota."""
        c_spec = spec._build()
        try:
            _call("zenith_scheduler_set_queue", self._h(), c_spec)
        finally:
            _lib.lib().zenith_queue_spec_free(c_spec)

    # ---- jobs -------------------------------------------------------------------------------

    def submit(self, spec: JobSpec, now: int) -> None:
        """Submits a job (PENDING; it enters the queue at the next pass)."""
        c_spec = spec._build()
        try:
            _call("zenith_scheduler_submit", self._h(), c_spec, now)
        finally:
            _lib.lib().zenith_job_spec_free(c_spec)

    def cancel(self, job: int, now: int) -> None:
        """Cancels a live job (the executor stops it)."""
        _call("zenith_scheduler_cancel", self._h(), job, now)

    def update(
        self,
        job: int,
        now: int,
        *,
        priority: Optional[int] = None,
        preemptible: Optional[bool] = None,
        restartable: Optional[bool] = None,
        max_runtime_ms: Optional[int] = None,
    ) -> None:
        """Changes a live job's policy fields (those given)."""
        fields = 0
        if priority is not None:
            fields |= _lib.ZENITH_JOB_UPDATE_PRIORITY
        if preemptible is not None:
            fields |= _lib.ZENITH_JOB_UPDATE_PREEMPTIBLE
        if restartable is not None:
            fields |= _lib.ZENITH_JOB_UPDATE_RESTARTABLE
        if max_runtime_ms is not None:
            fields |= _lib.ZENITH_JOB_UPDATE_MAX_RUNTIME
        _call(
            "zenith_scheduler_update",
            self._h(),
            job,
            fields,
            priority or 0,
            int(bool(preemptible)),
            int(bool(restartable)),
            max_runtime_ms or 0,
            now,
        )

    def job_started(self, job: int, now: int) -> None:
        """The executor started a SCHEDULED job (→ RUNNING)."""
        _call("zenith_scheduler_job_started", self._h(), job, now)

    def job_progress(self, job: int, now: int) -> None:
        """A RUNNING job's progress heartbeat."""
        _call("zenith_scheduler_job_progress", self._h(), job, now)

    def job_completed(self, job: int, now: int) -> None:
        """A RUNNING job finished successfully (→ COMPLETED)."""
        _call("zenith_scheduler_job_completed", self._h(), job, now)

    def job_failed(self, job: int, now: int) -> None:
        """A SCHEDULED or RUNNING job failed (→ FAILED)."""
        _call("zenith_scheduler_job_failed", self._h(), job, now)

    def suspend(self, job: int, now: int) -> None:
        """Holds a QUEUED or RUNNING job (→ SUSPENDED) until :meth:`resume`."""
        _call("zenith_scheduler_suspend", self._h(), job, now)

    def resume(self, job: int, now: int) -> None:
        """Puts a SUSPENDED job back in the queue."""
        _call("zenith_scheduler_resume", self._h(), job, now)

    # ---- passes and queries -----------------------------------------------------------------

    def schedule(self, now: int) -> list:
        """One scheduling pass: the :class:`Decision` list, in the order to act on it."""
        handle = _lib.DecisionsPtr()
        _call("zenith_scheduler_schedule", self._h(), now, ctypes.byref(handle))
        return _read_decisions(handle)

    def next_wakeup(self) -> Optional[int]:
        """When a pass could next do something new (ms), or None."""
        at = ctypes.c_uint64()
        status = _call("zenith_scheduler_next_wakeup", self._h(), ctypes.byref(at))
        return at.value if status == Status.OK else None

    def compact_journal(self) -> None:
        """Compacts the journal: the state goes to ``<journal>.snapshot`` and the journal
        restarts from it (both replaced atomically), so restoring stays fast and the journal
        stays short. Raises for a scheduler without a journal."""
        _call("zenith_scheduler_compact_journal", self._h())

    def job_state(self, job: int) -> JobState:
        """A job's state."""
        state = ctypes.c_int32()
        _call("zenith_scheduler_job_state", self._h(), job, ctypes.byref(state))
        return JobState(state.value)

    def test_only(self, job: Union[JobSpec, int]) -> Optional[tuple]:
        """TEST_ONLY: the members' placement ``job`` (a spec, or a submitted job's id) could get
        now, or None. Changes nothing."""
        handle = _lib.DecisionsPtr()
        if isinstance(job, JobSpec):
            c_spec = job._build()
            try:
                _call("zenith_scheduler_test_only", self._h(), c_spec, ctypes.byref(handle))
            finally:
                _lib.lib().zenith_job_spec_free(c_spec)
        else:
            _call("zenith_scheduler_test_only_job", self._h(), job, ctypes.byref(handle))
        decisions = _read_decisions(handle)
        return decisions[0].members if decisions else None

    def will_run(self, job: Union[JobSpec, int]) -> Optional[int]:
        """WILL_RUN: the earliest time (ms) ``job`` could start from the running jobs' time limits,
        or None when it never fits on the current nodes. Changes nothing."""
        at = ctypes.c_uint64()
        if isinstance(job, JobSpec):
            c_spec = job._build()
            try:
                status = _call("zenith_scheduler_will_run", self._h(), c_spec, ctypes.byref(at))
            finally:
                _lib.lib().zenith_job_spec_free(c_spec)
        else:
            status = _call("zenith_scheduler_will_run_job", self._h(), job, ctypes.byref(at))
        return at.value if status == Status.OK else None

    def stats(self) -> dict:
        """Counters and gauges: ``jobs`` per state name, allocations, preemptions, requeues,
        passes, decisions, GPUs, restored journal records, the latest ``now``."""
        s = _lib.zenith_scheduler_stats(struct_size=ctypes.sizeof(_lib.zenith_scheduler_stats))
        _call("zenith_scheduler_get_stats", self._h(), ctypes.byref(s))
        out = {name: getattr(s, name) for name, _ in _lib.zenith_scheduler_stats._fields_ if name not in ("struct_size", "jobs")}
        out["jobs"] = {state.name: s.jobs[state] for state in JobState}
        return out
