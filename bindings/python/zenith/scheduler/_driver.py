"""What every executor of the gang scheduler shares: the decision loop and the job handle.

An executor (``local.LocalExecutor``: subprocesses on this machine; ``ray.RayScheduler``: Ray
placement groups) owns a :class:`~zenith.scheduler.Scheduler` and runs its decisions. The loop
that asks for them, the clock it passes, the job table, submission, acting on decisions,
progress heartbeats (zombies), cancellation and the handle users hold are the same for all of
them; how a job starts, is watched and stops is each executor's own (``_launch``, ``_watch``,
``_stop``, ``_after_pass``).
"""

from __future__ import annotations

import abc
import sys
import threading
import time
from typing import Any, Callable, Optional

from .._errors import ZenithError, invalid
from ._core import InvalidStateError, JobSpec, JobState, Scheduler


class JobFailedError(ZenithError, RuntimeError):
    """A job failed: a member raised (``remote_traceback`` holds its traceback), exited with a
    non-zero status or by a signal (``exit_code``), or the scheduler failed it (time limit,
    zombie; ``reason``)."""

    def __init__(self, message: str, *, exit_code=None, reason=None, remote_traceback=None, cause=None):
        super().__init__(-1, message)
        self.exit_code = exit_code
        self.reason = reason
        self.remote_traceback = remote_traceback
        self.cause = cause

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (JobFailedError, (self.message,), self.__dict__)


class JobCancelledError(ZenithError, RuntimeError):
    """The job was cancelled before it finished."""

    def __init__(self, message: str):
        super().__init__(-1, message)

    def __str__(self) -> str:
        return self.message


class JobHandleBase:
    """A submitted job: its state and its result. The job record has ``id``, ``done`` (a
    ``threading.Event``), ``outcome`` (``("ok", value)`` or ``("error", exception)``) and
    ``requeues``."""

    def __init__(self, driver: "DecisionLoop", job):
        self._driver = driver
        self._job = job

    @property
    def id(self) -> int:
        return self._job.id

    @property
    def state(self) -> JobState:
        """The scheduler's state of the job."""
        return self._driver._state(self._job.id)

    def done(self) -> bool:
        return self._job.done.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits until the job finished (and what ran it is gone); False on timeout."""
        return self._job.done.wait(timeout)

    def result(self, timeout: Optional[float] = None) -> Any:
        """The job's value (one per member for a gang). Raises :class:`JobFailedError`,
        :class:`JobCancelledError`, or ``TimeoutError`` when the job did not finish within
        ``timeout`` seconds."""
        if not self._job.done.wait(timeout):
            raise TimeoutError(f"job {self.id} did not finish within {timeout} s (state {self.state.name})")
        kind, value = self._job.outcome
        if kind == "ok":
            return value
        raise value

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The job's error, or None when it completed."""
        try:
            self.result(timeout)
        except (JobFailedError, JobCancelledError) as e:
            return e
        return None

    @property
    def requeues(self) -> list:
        """Why the job went back to the scheduler's queue, in order (``"zombie"``,
        ``"preempted"``, ``"node-lost"``): each a restart the executor carried out."""
        return list(self._job.requeues)

    def cancel(self) -> bool:
        """Cancels the job (the executor stops what runs it). False when it had already
        finished."""
        return self._driver._cancel(self._job)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state.name}>"


class DecisionLoop(abc.ABC):
    """The thread that turns the scheduler's decisions into actions, every ``poll_interval``
    seconds, and the state every executor keeps: ``_cond`` (a ``threading.Condition`` guarding
    everything), the scheduler ``_sched`` (policy ``policy``), the job table ``_jobs``, the clock
    origin ``_t0`` (the scheduler's clock counts milliseconds from it), ``_closed``.

    ``progress_timeout``: seconds without a progress heartbeat after which a running job is a
    zombie (None: never); the scheduler then requeues it (restartable) or fails it, and the
    executor stops what runs it. ``heartbeat_interval``: seconds between a member's heartbeats.

    Subclasses call :meth:`_start_loop` at the end of their ``__init__``, and implement
    ``_launch(job, members, now)`` (start a job where the scheduler said), ``_watch(job, now)``
    (a running job's members: exits, heartbeats), ``_stop(job)`` (stop what runs the job) and
    ``close()``. ``_stop_finishes`` says whether a stopped job (cancelled or failed by the
    scheduler) is done at once (True) or once the executor saw it stop (False)."""

    _loop_name = "zenith executor"
    _stop_finishes = True

    def __init__(
        self,
        policy: str,
        *,
        poll_interval: float,
        progress_timeout: Optional[float],
        heartbeat_interval: float,
    ):
        if progress_timeout is not None and progress_timeout <= 0:
            raise invalid("progress_timeout must be > 0 seconds (or None)")
        if heartbeat_interval <= 0:
            raise invalid("heartbeat_interval must be > 0 seconds")
        self.progress_timeout = progress_timeout
        self.heartbeat_interval = heartbeat_interval
        self._poll = poll_interval
        self._cond = threading.Condition()
        self._jobs: dict = {}
        self._next_id = 1
        self._closed = False
        self._t0 = time.monotonic()
        self._sched = Scheduler(policy)
        self._thread: Optional[threading.Thread] = None

    def _start_loop(self, name: str) -> None:
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Stops the executor and what it runs."""

    def _now(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def _state(self, job_id: int) -> JobState:
        with self._cond:
            return self._sched.job_state(job_id)

    def _new_job(
        self,
        make_job: Callable,
        name: str,
        *,
        gpus,
        cpus,
        memory_mib: int,
        gang: int,
        priority: int,
        preemptible: bool,
        restartable: bool,
        max_runtime: Optional[float],
        **spec,
    ) -> Any:
        """Submits a job with the options every executor's ``submit`` takes: ``gpus`` whole GPUs
        per member, or a share of one GPU when it is a fraction below 1 (``gpus=0.25``: 250
        milli-GPUs); ``cpus`` defaults to 1 for a CPU-only job and 0 otherwise; ``max_runtime``
        in seconds; ``spec``: more :class:`JobSpec` fields. ``make_job(job_id, spec)`` builds the
        executor's job record."""
        share = None
        if isinstance(gpus, float) and not gpus.is_integer():
            if not 0 < gpus < 1:
                raise invalid(f"gpus={gpus}: a fraction of a GPU must be between 0 and 1")
            share = round(gpus * 1000)
            if share == 0:
                raise invalid(f"gpus={gpus}: less than one milli-GPU")
            gpus = 1
        elif gpus < 0:
            raise invalid("gpus must be >= 0")
        if cpus is None:
            cpus = 1 if gpus == 0 else 0
        with self._cond:
            if self._closed:
                raise InvalidStateError(-13, "the executor is closed")
            job_id = self._next_id
            self._next_id += 1
            job_spec = JobSpec(
                id=job_id,
                name=name,
                gpus=int(gpus),
                gpu_share_milli=share,
                cpu_milli=int(cpus * 1000),
                memory_mib=memory_mib,
                gang_size=gang,
                priority=priority,
                preemptible=preemptible,
                restartable=restartable,
                max_runtime_ms=int(max_runtime * 1000) if max_runtime else None,
                progress_timeout_ms=int(self.progress_timeout * 1000) if self.progress_timeout else None,
                **spec,
            )
            self._sched.submit(job_spec, self._now())
            job = make_job(job_id, job_spec)
            self._jobs[job_id] = job
            self._cond.notify_all()
        return job

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                try:
                    self._step()
                except Exception as e:  # never let the loop die silently
                    sys.stderr.write(f"{self._loop_name}: {e!r}\n")
                self._cond.wait(self._poll)

    def _step(self) -> None:
        """One pass, under the lock: the running jobs, then the scheduler's decisions."""
        now = self._now()
        self._before_pass(now)
        for job in list(self._jobs.values()):
            self._watch(job, now)
        for d in self._sched.schedule(now):
            job = self._jobs.get(d.job)
            if job is None:
                continue
            if d.kind == "start":
                self._launch(job, d.members, now)
            elif d.kind in ("preempt", "requeue"):
                if d.kind == "requeue":
                    job.requeues.append(d.reason)
                # zenith already put the job back in its queue (or suspended it); a zombie's or
                # a lost node's leftovers, or a preempted job, are stopped.
                self._stop(job)
            elif d.kind == "fail":  # time limit, zombie, lost node without restart
                self._stop(job)
                job.outcome = ("error", JobFailedError(f"job {job.id} failed: {d.reason}", reason=d.reason))
                if self._stop_finishes:
                    job.done.set()
        self._after_pass(now)

    def _before_pass(self, now: int) -> None:
        """Executor work before the jobs are watched (default: none)."""

    def _after_pass(self, now: int) -> None:
        """Executor work after the decisions (default: none)."""

    def _progress(self, job, now: int) -> None:
        """A member of `job` showed progress (a heartbeat): keeps a running job from being a
        zombie."""
        if self._sched.job_state(job.id) == JobState.RUNNING:
            self._sched.job_progress(job.id, now)

    @abc.abstractmethod
    def _launch(self, job, members, now: int) -> None:
        """Starts `job`'s members where the scheduler placed them."""

    @abc.abstractmethod
    def _watch(self, job, now: int) -> None:
        """A running job's members: exits and heartbeats."""

    @abc.abstractmethod
    def _stop(self, job) -> None:
        """Stops what runs `job`."""

    def _cancel(self, job) -> bool:
        with self._cond:
            return self._cancel_locked(job)

    def _cancel_locked(self, job) -> bool:
        try:
            self._sched.cancel(job.id, self._now())
        except InvalidStateError:
            return False
        self._stop(job)
        job.outcome = ("error", JobCancelledError(f"job {job.id} was cancelled"))
        if self._stop_finishes:
            job.done.set()
        self._cond.notify_all()
        return True
