"""``zenith.scheduler``: the gang scheduler from Python.

- :class:`Scheduler`, :class:`JobSpec`, :class:`NodeSpec`, :class:`Decision`: the deterministic
  decision core (time injected as ``now`` in ms) over libzenith's ``zenith_scheduler_*`` C ABI,
  for executors of your own (a Ray or Kubernetes adapter, a simulator);
- :class:`LocalExecutor`, :func:`job`, :func:`submit`: this machine as one node, each job a
  subprocess with its GPU allocation in ``CUDA_VISIBLE_DEVICES`` (``zenith.job`` and
  ``zenith.submit`` are the same functions).

Errors: invalid specs raise :class:`zenith.InvalidArgumentError` (a ``ValueError``) naming the
field; duplicates :class:`AlreadyExistsError`; unknown jobs and nodes :class:`UnknownError` (a
``LookupError``); calls the state does not allow :class:`InvalidStateError`.
"""

from ._core import (
    AlreadyExistsError,
    Decision,
    InvalidStateError,
    JobSpec,
    JobState,
    Member,
    NodeSpec,
    QueueSpec,
    Scheduler,
    UnknownError,
)
from ._driver import JobCancelledError, JobFailedError
from .local import (
    JobFunction,
    JobHandle,
    LocalExecutor,
    default_executor,
    detect_gpus,
    job,
    set_default_executor,
    submit,
)

__all__ = [
    "AlreadyExistsError",
    "Decision",
    "InvalidStateError",
    "JobCancelledError",
    "JobFailedError",
    "JobFunction",
    "JobHandle",
    "JobSpec",
    "JobState",
    "LocalExecutor",
    "Member",
    "NodeSpec",
    "QueueSpec",
    "Scheduler",
    "UnknownError",
    "default_executor",
    "detect_gpus",
    "job",
    "set_default_executor",
    "submit",
]
