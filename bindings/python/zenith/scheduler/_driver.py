"""What every executor of the gang scheduler shares: the decision loop and the job handle.

An executor (``local.LocalExecutor``: subprocesses on this machine; ``ray.RayScheduler``: Ray
placement groups) owns a :class:`~zenith.scheduler.Scheduler` and runs its decisions. The loop
that asks for them, the clock it passes, cancellation and the handle users hold are the same
for all of them; how a job starts, is watched and stops is each executor's own (``_step``,
``_stop``).
"""

from __future__ import annotations

import abc
import sys
import time
from typing import Any, Optional

from .._errors import ZenithError
from ._core import InvalidStateError, JobState


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
    ``threading.Event``) and ``outcome`` (``("ok", value)`` or ``("error", exception)``)."""

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

    def cancel(self) -> bool:
        """Cancels the job (the executor stops what runs it). False when it had already
        finished."""
        return self._driver._cancel(self._job)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state.name}>"


class DecisionLoop(abc.ABC):
    """The thread that turns the scheduler's decisions into actions, every ``_poll`` seconds.

    Subclasses set ``_cond`` (a ``threading.Condition`` guarding everything), ``_sched``,
    ``_t0`` (``time.monotonic()`` at the start: the scheduler's clock counts milliseconds from
    it), ``_closed``, ``_poll`` and ``_loop_name``, and implement ``_step()`` (one pass, under
    the lock) and ``_stop(job)`` (stop what runs the job). ``_cancel_finishes`` says whether a
    cancelled job is done at once (True) or once the executor saw it stop (False)."""

    _loop_name = "zenith executor"
    _cancel_finishes = True

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

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                try:
                    self._step()
                except Exception as e:  # never let the loop die silently
                    sys.stderr.write(f"{self._loop_name}: {e!r}\n")
                self._cond.wait(self._poll)

    @abc.abstractmethod
    def _step(self) -> None:
        """One pass over the scheduler's decisions, under the lock."""

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
        if self._cancel_finishes:
            job.done.set()
        self._cond.notify_all()
        return True
