"""The local executor: the gang scheduler running this machine as one node.

    import zenith

    @zenith.job(gpus=4)
    def train(lr):
        ...                           # CUDA_VISIBLE_DEVICES holds the 4 GPUs it was given
        return loss

    handle = train.submit(0.1)        # or zenith.submit(train, 0.1)
    print(handle.result(timeout=3600))

Each gang member runs as a subprocess (a fresh Python interpreter for a function, the program
itself for a command) whose ``CUDA_VISIBLE_DEVICES`` is its GPU allocation (empty for a CPU
job), with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` and
``ZENITH_JOB_ID`` set. Liveness is a heartbeat: a function's process writes to a pipe every
``heartbeat_interval`` seconds and the scheduler turns a job silent for ``progress_timeout``
into a zombie (requeued, or failed when not restartable). Cancelling sends SIGTERM to the
member's process group, then SIGKILL after ``grace`` seconds. The node's GPUs are those
``nvidia-smi`` lists (none when it is missing), or ``gpus=`` given to :class:`LocalExecutor`.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import multiprocessing.spawn
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional, Sequence, Union

from .._errors import invalid
from ._core import NodeSpec
from ._driver import DecisionLoop, JobFailedError, JobHandleBase
from ._runner import BOOTSTRAP

NODE = "local"


def detect_gpus() -> list:
    """The machine's GPUs as ``[(type, memory_mib), ...]`` from ``nvidia-smi``; an empty list
    when it is not installed (or fails)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        name, _, memory = line.partition(",")
        name = "-".join(name.split()) or "GPU"
        try:
            mib = int(float(memory.strip()))
        except ValueError:
            mib = 0
        gpus.append((name, mib))
    return gpus


def _memory_mib() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Member:
    """One running gang member: its process, heartbeat pipe and result file."""

    def __init__(self, proc, pipe_fd, result_path):
        self.proc = proc
        self.pipe_fd = pipe_fd
        self.result_path = result_path
        self.kill_at = None  # SIGKILL deadline once SIGTERM was sent

    def signal(self, sig) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close_pipe(self) -> None:
        if self.pipe_fd is not None:
            os.close(self.pipe_fd)
            self.pipe_fd = None


class _Job:
    def __init__(self, job_id, target, args, kwargs, spec):
        self.id = job_id
        self.target = target  # a callable, or a command (list of str)
        self.args = args
        self.kwargs = kwargs
        self.spec = spec
        self.members: list = []  # live _Member of the current attempt
        self.stopping: list = []  # members being stopped (SIGTERM sent)
        self.allocation: Optional[tuple] = None
        self.attempts = 0
        self.exit_codes: list = []
        self.requeues: list = []  # why the job went back to the queue (zombie, preempted, ...)
        self.outcome: Optional[tuple] = None  # ("ok", value) | ("error", exc)
        self.done = threading.Event()
        self.workdir: Optional[str] = None


class JobHandle(JobHandleBase):
    """A submitted job: its state, its GPUs, its result (see :class:`JobHandleBase`; cancelling
    sends SIGTERM, then SIGKILL after the executor's grace period)."""

    @property
    def gpus(self):
        """The GPU indices of the current (or last) run: a tuple for a one-member job, a list of
        tuples (one per member) for a gang; None before it started."""
        alloc = self._job.allocation
        if alloc is None:
            return None
        return alloc[0] if len(alloc) == 1 else list(alloc)

    @property
    def exit_codes(self) -> list:
        """The members' exit statuses of the last run (negative: killed by that signal)."""
        return list(self._job.exit_codes)


class LocalExecutor(DecisionLoop):
    """Runs jobs on this machine, scheduled by the gang scheduler as one node.

    ``gpus``: how many GPUs the node has (default: what ``nvidia-smi`` lists, 0 without it).
    ``cpus`` and ``memory_mib``: the node's allocatable CPUs and memory (default: the machine's).
    ``heartbeat_interval``: seconds between a function job's heartbeats; ``progress_timeout``:
    seconds without one after which the job is a zombie (None: never). ``grace``: seconds between
    SIGTERM and SIGKILL when a job is cancelled or preempted.
    """

    _loop_name = "zenith local executor"
    # A stopped job is done once its processes are gone (the loop reaps them).
    _stop_finishes = False

    def __init__(
        self,
        gpus: Optional[int] = None,
        *,
        gpu_type: Optional[str] = None,
        cpus: Optional[float] = None,
        memory_mib: Optional[int] = None,
        policy: str = "zenith",
        heartbeat_interval: float = 1.0,
        progress_timeout: Optional[float] = 60.0,
        grace: float = 5.0,
        poll_interval: float = 0.05,
    ):
        if gpus is None:
            found = detect_gpus()
            gpus = len(found)
            if gpu_type is None and found:
                gpu_type = found[0][0]
            gpu_memory = found[0][1] if found else 0
        else:
            gpu_memory = 0
        if gpus < 0:
            raise invalid("gpus must be >= 0")
        super().__init__(
            policy,
            poll_interval=poll_interval,
            progress_timeout=progress_timeout,
            heartbeat_interval=heartbeat_interval,
        )
        self.gpus = gpus
        self.grace = grace
        cpu_milli = int((cpus if cpus is not None else (os.cpu_count() or 1)) * 1000)
        self._sched.add_node(
            NodeSpec(
                NODE,
                cpu_milli=cpu_milli,
                memory_mib=memory_mib if memory_mib is not None else _memory_mib(),
                gpus=gpus,
                gpu_type=gpu_type or "GPU",
                gpu_memory_mib=gpu_memory,
            ),
            0,
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="zenith-jobs-")
        self._start_loop("zenith-local-executor")

    # ---- public -------------------------------------------------------------------------------

    def submit(
        self,
        target: Union[Callable, Sequence[str]],
        *args,
        gpus: float = 0,
        gang: int = 1,
        cpus: Optional[float] = None,
        memory_mib: int = 0,
        priority: int = 0,
        preemptible: bool = False,
        restartable: bool = True,
        max_runtime: Optional[float] = None,
        name: Optional[str] = None,
        **kwargs,
    ) -> JobHandle:
        """Submits ``target(*args, **kwargs)`` (a picklable callable; or a command as a list of
        strings, run as it is) as a job of ``gang`` members, each with ``gpus`` GPUs (a fraction
        below 1 is a share of one GPU, packed with other shares), ``cpus``
        CPUs (default 1 for a CPU-only job, 0 otherwise) and ``memory_mib``. ``max_runtime`` in
        seconds. Returns a :class:`JobHandle` at once; the job starts when it fits."""
        is_command = isinstance(target, (list, tuple))
        if is_command:
            if not target or not all(isinstance(a, str) for a in target):
                raise invalid("a command is a non-empty list of strings")
            if args or kwargs:
                raise invalid("a command takes no Python arguments")
        elif not callable(target):
            raise invalid(f"cannot run {target!r}: not callable and not a command")
        name = name or (os.path.basename(target[0]) if is_command else getattr(target, "__name__", "job"))
        make = lambda job_id, spec: _Job(job_id, list(target) if is_command else target, args, kwargs, spec)  # noqa: E731
        job = self._new_job(make, name, gpus=gpus, cpus=cpus, memory_mib=memory_mib, gang=gang, priority=priority,
                            preemptible=preemptible, restartable=restartable, max_runtime=max_runtime)  # fmt: skip
        return JobHandle(self, job)

    def stats(self) -> dict:
        with self._cond:
            return self._sched.stats()

    def close(self, cancel: bool = True) -> None:
        """Stops the executor: cancels live jobs (or, with ``cancel=False``, waits for them),
        stops their processes and frees the scheduler. Idempotent."""
        if not cancel:
            for job in list(self._jobs.values()):
                job.done.wait()
        with self._cond:
            if self._closed:
                return
            for job in self._jobs.values():
                if not job.done.is_set():
                    self._cancel_locked(job)
            self._cond.notify_all()
        # Let the loop reap what it stopped (SIGKILL after the grace period at most).
        deadline = time.monotonic() + self.grace + 5
        for job in list(self._jobs.values()):
            job.done.wait(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
        self._sched.close()
        self._tmp.cleanup()

    # ---- the loop (DecisionLoop's _step every poll interval calls these) ----------------------

    def _after_pass(self, now: int) -> None:
        for job in list(self._jobs.values()):
            self._reap_stopping(job, now)

    def _launch(self, job: _Job, members, now: int) -> None:
        job.attempts += 1
        job.allocation = tuple(m.gpus for m in members)
        job.exit_codes = []
        job.workdir = tempfile.mkdtemp(prefix=f"job{job.id}-{job.attempts}-", dir=self._tmp.name)
        port = _free_port()
        started = []
        try:
            for rank, m in enumerate(members):
                env = dict(os.environ)
                env.update(
                    CUDA_VISIBLE_DEVICES=",".join(str(g) for g in m.gpus),
                    ZENITH_JOB_ID=str(job.id),
                    RANK=str(rank),
                    LOCAL_RANK=str(rank),
                    WORLD_SIZE=str(len(members)),
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port),
                )
                result_path = os.path.join(job.workdir, f"result{rank}.pickle")
                if isinstance(job.target, list):
                    proc = subprocess.Popen(job.target, env=env, start_new_session=True)
                    started.append(_Member(proc, None, result_path))
                    continue
                payload_path = os.path.join(job.workdir, f"payload{rank}.pickle")
                prep = multiprocessing.spawn.get_preparation_data(f"zenith-job-{job.id}")
                prep.pop("authkey", None)  # multiprocessing's secret: the job needs none
                with open(payload_path, "wb") as f:
                    pickle.dump(prep, f)
                    pickle.dump((job.target, job.args, job.kwargs), f)
                read_fd, write_fd = os.pipe()
                os.set_blocking(read_fd, False)
                env["ZENITH_HEARTBEAT_FD"] = str(write_fd)
                env["ZENITH_HEARTBEAT_INTERVAL"] = str(self.heartbeat_interval)
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-c", BOOTSTRAP, payload_path, result_path],
                        env=env,
                        pass_fds=(write_fd,),
                        start_new_session=True,
                    )
                except BaseException:
                    os.close(read_fd)
                    raise
                finally:
                    os.close(write_fd)
                started.append(_Member(proc, read_fd, result_path))
        except Exception as e:  # could not launch (pickling, exec): the job fails
            for m in started:
                m.signal(signal.SIGKILL)
                m.proc.wait()
                m.close_pipe()
            self._sched.job_failed(job.id, now)
            job.outcome = ("error", JobFailedError(f"job {job.id} could not be launched: {e!r}", cause=e))
            job.done.set()
            return
        job.members = started
        self._sched.job_started(job.id, now)

    def _watch(self, job: _Job, now: int) -> None:
        """Heartbeats and exits of a running job's members."""
        if not job.members:
            return
        beat = False
        for m in job.members:
            if m.pipe_fd is not None:
                try:
                    beat |= bool(os.read(m.pipe_fd, 4096))
                except BlockingIOError:
                    pass
            elif m.proc.poll() is None:
                beat = True  # a command: alive is its heartbeat
        codes = [m.proc.poll() for m in job.members]
        if any(c is not None and c != 0 for c in codes):
            failed = next(i for i, c in enumerate(codes) if c not in (None, 0))
            err = self._member_error(job, failed, codes[failed])
            for m in job.members:
                if m.proc.poll() is None:
                    m.signal(signal.SIGKILL)
            for m in job.members:
                m.proc.wait()
                m.close_pipe()
            job.exit_codes = [m.proc.returncode for m in job.members]
            job.members = []
            self._sched.job_failed(job.id, now)
            job.outcome = ("error", err)
            job.done.set()
            return
        if all(c == 0 for c in codes):
            values = []
            for rank, m in enumerate(job.members):
                m.close_pipe()
                if isinstance(job.target, list):
                    values.append(0)
                else:
                    values.append(self._read_result(m.result_path)[1])
            job.exit_codes = codes
            job.members = []
            self._sched.job_completed(job.id, now)
            job.outcome = ("ok", values[0] if len(values) == 1 else values)
            job.done.set()
            return
        if beat:
            self._progress(job, now)

    def _read_result(self, path: str):
        try:
            with open(path, "rb") as f:
                return pickle.load(f)[:2]
        except (OSError, EOFError, pickle.UnpicklingError):
            return ("error", None)

    def _member_error(self, job: _Job, rank: int, code: int) -> JobFailedError:
        member = job.members[rank]
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        text = cause = None
        if not isinstance(job.target, list):
            try:
                with open(member.result_path, "rb") as f:
                    _, cause, text = pickle.load(f)
            except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
                pass
        message = f"job {job.id} member {rank} {how}"
        if cause is not None:
            message += f": {type(cause).__name__}: {cause}"
        elif text:
            message += ": " + text.strip().splitlines()[-1]
        return JobFailedError(message, exit_code=code, remote_traceback=text, cause=cause)

    def _stop(self, job: _Job) -> None:
        """SIGTERM to every live member; SIGKILL after the grace period (see _reap_stopping)."""
        deadline = time.monotonic() + self.grace
        for m in job.members:
            m.signal(signal.SIGTERM)
            m.kill_at = deadline
            job.stopping.append(m)
        job.members = []

    def _reap_stopping(self, job: _Job, now: int) -> None:
        still = []
        for m in job.stopping:
            if m.proc.poll() is None:
                if time.monotonic() >= m.kill_at:
                    m.signal(signal.SIGKILL)
                still.append(m)
            else:
                m.close_pipe()
                job.exit_codes.append(m.proc.returncode)
        job.stopping = still
        if not still and job.outcome is not None and not job.members and not job.done.is_set():
            job.done.set()


# ---- the seeds' API: zenith.job and zenith.submit ----------------------------------------------

_default: Optional[LocalExecutor] = None
_default_lock = threading.Lock()


def default_executor() -> LocalExecutor:
    """The process's executor for :func:`submit` and :func:`job` (created on first use with the
    machine's GPUs; stopped at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LocalExecutor()
            atexit.register(_default.close)
        return _default


def set_default_executor(executor: Optional[LocalExecutor]) -> None:
    """Makes ``executor`` the one :func:`submit` and :func:`job` use (None: a new default on
    next use)."""
    global _default
    with _default_lock:
        _default = executor


def submit(target, *args, executor: Optional[LocalExecutor] = None, **options_and_kwargs) -> JobHandle:
    """Submits ``target(*args, **kwargs)`` to the local executor; see
    :meth:`LocalExecutor.submit` for the options (``gpus``, ``gang``, ``cpus``, ``memory_mib``,
    ``priority``, ``preemptible``, ``restartable``, ``max_runtime``, ``name``); other keyword
    arguments go to ``target``. A function decorated with :func:`job` brings its own options."""
    if isinstance(target, JobFunction):
        merged = dict(target.options)
        merged.update(options_and_kwargs)
        options_and_kwargs = merged
    return (executor or default_executor()).submit(target, *args, **options_and_kwargs)


def _resolve(module: str, qualname: str):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class JobFunction:
    """A function decorated with :func:`job`: calling it runs it here; ``.submit(...)`` runs it
    as a job."""

    def __init__(self, fn: Callable, options: dict):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.options = options

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def submit(self, *args, executor: Optional[LocalExecutor] = None, **kwargs) -> JobHandle:
        """Submits ``fn(*args, **kwargs)`` as a job with the decorator's options."""
        return (executor or default_executor()).submit(self, *args, **self.options, **kwargs)

    def __reduce__(self):
        # Pickled by reference (module and name), like the function it wraps.
        return (_resolve, (self.__module__, self.__qualname__))


def job(fn: Optional[Callable] = None, **options):
    """Declares a function as a job: ``@zenith.job(gpus=4)`` (options as
    :meth:`LocalExecutor.submit`). The function then has ``.submit(*args, **kwargs)``."""
    allowed = {"gpus", "gang", "cpus", "memory_mib", "priority", "preemptible", "restartable", "max_runtime", "name"}
    unknown = set(options) - allowed
    if unknown:
        raise invalid(f"unknown job options: {', '.join(sorted(unknown))}")
    if fn is None:
        return lambda f: JobFunction(f, options)
    return JobFunction(fn, options)
