"""The Ray adapter: zenith's gang scheduler deciding for a Ray cluster.

    from zenith.scheduler.ray import RayScheduler

    with RayScheduler(address="auto") as sched:
        handle = sched.submit(train, 0.1, gpus=1, gang=2, locality="spread")
        print(handle.result(timeout=3600))   # one value per gang member

Zenith's queue decides admission, order, placement and preemption; Ray only carries the work
out. The Ray nodes (from Ray's node table, ``ray.nodes()``) are zenith's nodes, named by their
Ray node id, with the GPUs, CPUs and memory Ray reports. A started job becomes one Ray placement
group with a bundle per gang member, each bundle pinned to the node zenith chose by the
``ray.io/node-id`` label selector (Ray >= 2.49), under ``STRICT_PACK`` when every member is on
one node, ``STRICT_SPREAD`` when each is on its own node (``PACK`` otherwise: the selectors pin
them anyway). Each member then runs ``fn(*args, **kwargs)`` as a Ray task in its bundle, with
``RANK``, ``WORLD_SIZE`` and ``ZENITH_JOB_ID`` in its environment.

A member sends a progress heartbeat every ``heartbeat_interval`` seconds to a small Ray actor
of the scheduler's (pinned to the driver's node); the job counts as running from its first
heartbeat (Ray's worker start-up is not the job's; a job that has not beaten a progress timeout
after its launch counts as running from then), and a running job silent for
``progress_timeout`` seconds (a member stopped, or hung in C code holding the GIL) is a zombie:
zenith requeues it when restartable, else fails it (``JobFailedError.reason == "zombie"``), and
its placement group is removed, which kills its tasks. ``handle.requeues`` lists why a job went
back to the queue.

A fraction of a GPU (``gpus=0.5``: 500 milli-GPUs) is zenith's GPU sharing: zenith packs shares
onto GPUs (its fragmentation-aware placement picks the node and the GPU) and the member's bundle
and task ask Ray for that fraction (``num_gpus=0.5``). Ray picks the GPU instance itself, by best
fit, which packs equal shares as zenith does; with mixed shares the two may choose different
GPUs of the node (Ray's ``CUDA_VISIBLE_DEVICES`` is what the task uses; zenith's choice is in
``ZENITH_GPUS``), and a whole-GPU bundle may then wait for Ray although zenith found room.

Preemption and cancellation remove the placement group, which kills its tasks; a preempted job
goes back to zenith's queue (the decision says requeue or fail) and starts again from scratch.
A node Ray reports dead, or that left the node table, is removed from zenith, which requeues
(or fails) the jobs it ran. Ray decides which of a node's GPUs a task sees
(``CUDA_VISIBLE_DEVICES``); zenith decides how many and on which node. The Ray nodes need
zenith installed (the member's wrapper is this module's function); the job's function travels
as Ray pickles it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Optional

from .._errors import invalid
from ._core import JobSpec, JobState, NodeSpec, UnknownError
from ._driver import DecisionLoop, JobFailedError, JobHandleBase
from ._runner import beat_every

try:
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy
except ImportError as e:  # pragma: no cover - the adapter is useless without Ray
    raise ImportError("zenith.scheduler.ray needs Ray: pip install 'ray>=2.49'") from e

NODE_ID_LABEL = "ray.io/node-id"


def _run_member(fn, args, kwargs, env, heartbeats, key, interval):
    """One gang member inside its bundle: the job's function with its rank in the environment,
    beating to the scheduler's heartbeat actor meanwhile."""
    os.environ.update(env)
    beat_every(lambda: heartbeats.beat.remote(key), interval)
    return fn(*args, **kwargs)


_remote_member = ray.remote(max_retries=0)(_run_member)


@ray.remote(num_cpus=0)
class _Heartbeats:
    """Counts the members' heartbeats per job attempt; the scheduler reads the counts."""

    def __init__(self):
        self._counts = {}

    def beat(self, key: str) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def counts(self) -> dict:
        return dict(self._counts)

    def forget(self, key: str) -> None:
        self._counts.pop(key, None)


class _RayJob:
    def __init__(self, job_id: int, fn: Callable, args, kwargs, spec: JobSpec):
        self.id = job_id
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.spec = spec
        self.pg = None  # the placement group of the current attempt
        self.refs: list = []  # the members' ObjectRefs of the current attempt
        self.nodes: tuple = ()  # the Ray node ids zenith chose for the current attempt
        self.attempts = 0
        self.gpus: tuple = ()  # zenith's GPU indices per member of the current attempt
        self.beats: Optional[int] = None  # heartbeats seen of the current attempt
        self.launched_at = 0  # the scheduler's clock when the current attempt was launched
        self.requeues: list = []  # why the job went back to the queue (zombie, preempted, ...)
        self.lost_since: Optional[float] = None  # when Ray first reported a member lost
        self.outcome: Optional[tuple] = None  # ("ok", value) | ("error", exc)
        self.done = threading.Event()

    @property
    def key(self) -> str:
        return f"{self.id}:{self.attempts}"


class RayJobHandle(JobHandleBase):
    """A job submitted to :class:`RayScheduler`: its state, where it runs, its result (see
    :class:`~zenith.scheduler._driver.JobHandleBase`; cancelling removes its placement group)."""

    @property
    def nodes(self) -> tuple:
        """The Ray node ids (hex) zenith chose for the current (or last) attempt, one per member."""
        return self._job.nodes

    @property
    def gpus(self) -> tuple:
        """zenith's GPU indices on each member's node for the current (or last) attempt, one
        tuple per member."""
        return self._job.gpus

    @property
    def attempts(self) -> int:
        """How many times the job was started (more than one after a preemption or a lost node)."""
        return self._job.attempts

    @property
    def placement_group(self):
        """The Ray placement group of the running attempt, or None."""
        return self._job.pg


class RayScheduler(DecisionLoop):
    """zenith's gang scheduler over a Ray cluster.

    ``address``: the Ray cluster to connect to (``ray.init(address)``) when this process is not
    connected yet; None starts or joins one as ``ray.init()`` does. ``policy``: the scheduler
    policy (see :class:`~zenith.scheduler.Scheduler`). ``node_refresh``: seconds between reads of
    Ray's node table; ``poll_interval``: seconds between scheduling passes;
    ``node_lost_grace``: seconds a member Ray lost (its worker died) waits for its node to show
    up dead in the node table (the job is then requeued) before the job counts as failed;
    ``progress_timeout``: seconds without a member's heartbeat after which a running job is a
    zombie (None: never); ``heartbeat_interval``: seconds between a member's heartbeats.
    """

    _loop_name = "zenith ray scheduler"

    def __init__(
        self,
        address: Optional[str] = None,
        policy: str = "zenith",
        *,
        node_refresh: float = 0.5,
        poll_interval: float = 0.05,
        node_lost_grace: float = 30.0,
        progress_timeout: Optional[float] = 60.0,
        heartbeat_interval: float = 1.0,
    ):
        if not ray.is_initialized():
            ray.init(address=address)
        super().__init__(
            policy,
            poll_interval=poll_interval,
            progress_timeout=progress_timeout,
            heartbeat_interval=heartbeat_interval,
        )
        self._node_refresh = node_refresh
        self._node_lost_grace = node_lost_grace
        self._nodes: dict = {}  # Ray node id -> "up" | "down"
        self._last_refresh = float("-inf")
        # The heartbeat actor lives on the driver's node: a lost worker node loses no beats.
        self._heartbeats = _Heartbeats.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        ).remote()
        self._beats_ref = None  # the counts being fetched
        self._beats_at = float("-inf")
        with self._cond:
            self._refresh_nodes(self._now())
        self._start_loop("zenith-ray-scheduler")

    # ---- public -------------------------------------------------------------------------------

    def submit(
        self,
        fn: Callable,
        *args,
        gpus: float = 0,
        gang: int = 1,
        cpus: Optional[float] = None,
        memory_mib: int = 0,
        locality: str = "any",
        priority: int = 0,
        preemptible: bool = False,
        restartable: bool = True,
        max_runtime: Optional[float] = None,
        name: Optional[str] = None,
        **kwargs,
    ) -> RayJobHandle:
        """Submits ``fn(*args, **kwargs)`` (a function Ray can pickle) as a job of ``gang``
        members, each with ``gpus`` GPUs (a fraction below 1 is a share of one GPU: Ray's
        fractional ``num_gpus``), ``cpus`` CPUs (default 1 for a CPU-only job, 0 otherwise) and
        ``memory_mib``, placed by ``locality`` (``"any"``, ``"same-node"``, ``"spread"``, ...).
        ``max_runtime`` in seconds. Returns a handle at once; the job starts when zenith says
        so."""
        if not callable(fn):
            raise invalid(f"cannot run {fn!r}: not callable")
        make = lambda job_id, spec: _RayJob(job_id, fn, args, kwargs, spec)  # noqa: E731
        job = self._new_job(make, name or getattr(fn, "__name__", "job"), gpus=gpus, cpus=cpus, memory_mib=memory_mib,
                            gang=gang, priority=priority, preemptible=preemptible, restartable=restartable,
                            max_runtime=max_runtime, locality=locality)  # fmt: skip
        return RayJobHandle(self, job)

    def nodes(self) -> dict:
        """The Ray nodes zenith knows: node id (hex) -> ``"up"`` or ``"down"`` (Ray reported it
        dead, or it left the node table; zenith removed it)."""
        with self._cond:
            return dict(self._nodes)

    def stats(self) -> dict:
        """zenith's counters (see :meth:`Scheduler.stats`)."""
        with self._cond:
            return self._sched.stats()

    def close(self) -> None:
        """Cancels live jobs (removing their placement groups) and frees the scheduler; the Ray
        connection stays. Idempotent."""
        with self._cond:
            if self._closed:
                return
            for job in self._jobs.values():
                if not job.done.is_set():
                    self._cancel_locked(job)
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self._sched.close()
        try:
            ray.kill(self._heartbeats)
        except Exception:  # Ray already shut down
            pass

    # ---- the loop (DecisionLoop's _step every poll interval calls these) ----------------------

    def _before_pass(self, now: int) -> None:
        if time.monotonic() - self._last_refresh >= self._node_refresh:
            self._refresh_nodes(now)
        self._read_heartbeats(now)

    def _read_heartbeats(self, now: int) -> None:
        """The heartbeat counts, fetched without blocking the loop: a job whose count moved
        starts (its first beat) or shows progress."""
        if self._beats_ref is not None:
            ready, _ = ray.wait([self._beats_ref], timeout=0)
            if not ready:
                return
            try:
                counts = ray.get(self._beats_ref)
            except Exception:  # the actor is gone: no beats this round (zombies will show)
                counts = {}
            self._beats_ref = None
            for job in self._jobs.values():
                seen = counts.get(job.key) if job.refs else None
                if seen is not None and seen != job.beats:
                    job.beats = seen
                    self._running(job, now)
                elif (
                    job.refs
                    and job.beats is None
                    and self.progress_timeout is not None
                    and now - job.launched_at > self.progress_timeout * 1000
                    and self._sched.job_state(job.id) == JobState.SCHEDULED
                ):
                    # Launched a progress timeout ago and never beat: it runs (or hangs) without
                    # beating; from now on the zombie deadline applies.
                    self._sched.job_started(job.id, now)
        if time.monotonic() - self._beats_at >= self.heartbeat_interval:
            self._beats_at = time.monotonic()
            self._beats_ref = self._heartbeats.counts.remote()

    def _running(self, job: _RayJob, now: int) -> None:
        """A member of `job` beat: the job runs from its first beat on."""
        if self._sched.job_state(job.id) == JobState.SCHEDULED:
            self._sched.job_started(job.id, now)
        else:
            self._progress(job, now)

    def _refresh_nodes(self, now: int) -> None:
        """Ray's node table into zenith: new alive nodes are added, alive ones heartbeat, dead or
        vanished ones are removed (zenith requeues their jobs at the next pass)."""
        self._last_refresh = time.monotonic()
        seen = set()
        for n in ray.nodes():
            node_id = n["NodeID"]
            seen.add(node_id)
            alive = n.get("Alive", False)
            state = self._nodes.get(node_id)
            if alive and state is None:
                res = n.get("Resources", {})
                self._sched.add_node(
                    NodeSpec(
                        node_id,
                        cpu_milli=int(res.get("CPU", 0) * 1000),
                        memory_mib=int(res.get("memory", 0)) >> 20,
                        gpus=int(res.get("GPU", 0)),
                    ),
                    now,
                )
                self._nodes[node_id] = "up"
            elif alive and state == "up":
                self._sched.heartbeat(node_id, now)
            elif not alive and state == "up":
                self._node_down(node_id, now)
        for node_id, state in list(self._nodes.items()):
            if state == "up" and node_id not in seen:
                self._node_down(node_id, now)

    def _node_down(self, node_id: str, now: int) -> None:
        try:
            self._sched.remove_node(node_id, now)
        except UnknownError:
            pass
        self._nodes[node_id] = "down"

    def _launch(self, job: _RayJob, members, now: int) -> None:
        job.attempts += 1
        job.lost_since = None
        nodes = tuple(m.node for m in members)
        job.nodes = nodes
        job.gpus = tuple(m.gpus for m in members)
        job.beats = None
        job.launched_at = now
        spec = job.spec
        bundle = {}
        if spec.gpu_share_milli is not None:
            bundle["GPU"] = spec.gpu_share_milli / 1000  # Ray's fractional GPU
        elif spec.gpus:
            bundle["GPU"] = float(spec.gpus)
        if spec.cpu_milli:
            bundle["CPU"] = spec.cpu_milli / 1000
        if spec.memory_mib:
            bundle["memory"] = float(spec.memory_mib << 20)
        if not bundle:
            bundle["CPU"] = 0.001  # Ray refuses an empty bundle
        if len(set(nodes)) == 1:
            strategy = "STRICT_PACK"
        elif len(set(nodes)) == len(nodes):
            strategy = "STRICT_SPREAD"
        else:
            strategy = "PACK"
        try:
            pg = placement_group(
                [dict(bundle) for _ in nodes],
                strategy=strategy,
                name=f"zenith-job-{job.id}-{job.attempts}",
                bundle_label_selector=[{NODE_ID_LABEL: node} for node in nodes],
            )
            job.pg = pg
            refs = []
            for rank in range(len(nodes)):
                env = {
                    "RANK": str(rank),
                    "WORLD_SIZE": str(len(nodes)),
                    "ZENITH_JOB_ID": str(job.id),
                    "ZENITH_GPUS": ",".join(str(g) for g in job.gpus[rank]),
                }
                refs.append(
                    _remote_member.options(
                        num_gpus=bundle.get("GPU", 0),
                        num_cpus=bundle.get("CPU", 0),
                        memory=bundle.get("memory"),
                        scheduling_strategy=PlacementGroupSchedulingStrategy(
                            placement_group=pg, placement_group_bundle_index=rank
                        ),
                    ).remote(job.fn, job.args, job.kwargs, env, self._heartbeats, job.key, self.heartbeat_interval)
                )
            job.refs = refs
        except Exception as e:  # could not launch (pickling, a Ray too old for label selectors)
            self._stop(job)
            self._sched.job_failed(job.id, now)
            job.outcome = ("error", JobFailedError(f"job {job.id} could not be launched: {e!r}", cause=e))
            job.done.set()
            return
        # RUNNING from the first heartbeat on (_read_heartbeats), or when a member finished.

    def _watch(self, job: _RayJob, now: int) -> None:
        """A running job's members: all done -> completed, one raised -> failed."""
        if not job.refs:
            return
        ready, _ = ray.wait(job.refs, num_returns=len(job.refs), timeout=0)
        failed = None
        for ref in ready:
            try:
                ray.get(ref, timeout=0)
            except Exception as e:  # the member raised (RayTaskError wraps its exception)
                failed = e
                break
        if failed is None and len(ready) < len(job.refs):
            return
        if failed is not None and not isinstance(failed, ray.exceptions.RayTaskError):
            # Ray lost the member (its worker or node died), not the function raising. When its
            # node is going away, Ray's node table says so shortly: zenith then requeues the job
            # (node-lost). Only when the nodes stay up past the grace period is it a failure.
            if job.lost_since is None:
                job.lost_since = time.monotonic()
                self._refresh_nodes(now)
            if any(self._nodes.get(node) != "up" for node in job.nodes):
                return  # the pass after the node's removal requeues (or fails) the job
            if time.monotonic() - job.lost_since < self._node_lost_grace:
                return  # _step reads the node table again every node_refresh seconds
        if self._sched.job_state(job.id) == JobState.SCHEDULED:
            self._sched.job_started(job.id, now)  # it ended before its first beat was read
        if failed is not None:
            cause = getattr(failed, "cause", None) or failed
            self._stop(job)
            self._sched.job_failed(job.id, now)
            job.outcome = (
                "error",
                JobFailedError(f"job {job.id} failed: {type(cause).__name__}: {cause}", cause=cause, remote_traceback=str(failed)),
            )
            job.done.set()
            return
        values = ray.get(job.refs)
        self._stop(job)
        self._sched.job_completed(job.id, now)
        job.outcome = ("ok", values[0] if len(values) == 1 else values)
        job.done.set()

    def _stop(self, job: _RayJob) -> None:
        """Removes the attempt's placement group, which kills its tasks."""
        for ref in job.refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        job.refs = []
        job.beats = None
        if job.attempts:
            self._heartbeats.forget.remote(job.key)
        if job.pg is not None:
            try:
                remove_placement_group(job.pg)
            except Exception:  # already gone
                pass
            job.pg = None


__all__ = ["RayJobHandle", "RayScheduler"]
