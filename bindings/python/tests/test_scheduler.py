"""zenith.scheduler's decision core through the C ABI: gangs placed whole, preemption, TEST_ONLY
and WILL_RUN, errors as Python exceptions, and a scheduler restored from its journal."""

from __future__ import annotations

import pytest

import zenith
from zenith.scheduler import (
    AlreadyExistsError,
    InvalidStateError,
    JobSpec,
    JobState,
    NodeSpec,
    QueueSpec,
    Scheduler,
    UnknownError,
)


def cluster(s: Scheduler, nodes: int = 2) -> None:
    for n in range(nodes):
        s.add_node(
            NodeSpec(f"n{n}", cpu_milli=64_000, memory_mib=512 * 1024, gpus=8, gpu_type="H100",
                     nvlink_islands=[[0, 1, 2, 3], [4, 5, 6, 7]], rack="r0"),
            0,
        )


def test_gangs_start_whole_on_distinct_gpus():
    with Scheduler() as s:
        cluster(s)
        s.submit(JobSpec(1, gpus=4, gang_size=3, cpu_milli=1000), 10)
        s.submit(JobSpec(2, gpus=2, gang_size=2, locality="same-island"), 10)
        assert s.job_state(1) == JobState.PENDING
        decisions = s.schedule(20)
        assert sorted(d.job for d in decisions) == [1, 2]
        used = set()
        for d in decisions:
            assert d.kind == "start"
            assert len(d.members) == {1: 3, 2: 2}[d.job]
            for m in d.members:
                assert len(m.gpus) == {1: 4, 2: 2}[d.job]
                assert all(milli == 1000 for milli in m.gpu_milli)
                for g in m.gpus:
                    assert (m.node, g) not in used
                    used.add((m.node, g))
        # same-island: both members' GPUs in one NVLink island of one node.
        (gang2,) = [d for d in decisions if d.job == 2]
        assert len({m.node for m in gang2.members}) == 1
        gpus = {g for m in gang2.members for g in m.gpus}
        assert gpus <= {0, 1, 2, 3} or gpus <= {4, 5, 6, 7}
        assert s.job_state(1) == JobState.SCHEDULED
        stats = s.stats()
        assert stats["allocation_success_total"] == 2
        assert stats["jobs"]["SCHEDULED"] == 2


def test_preemption_and_queries():
    with Scheduler() as s:
        cluster(s)
        s.submit(JobSpec(1, gpus=8, preemptible=True), 0)
        s.submit(JobSpec(2, gpus=8, preemptible=True), 0)
        for d in s.schedule(1):
            s.job_started(d.job, 2)
        probe = JobSpec(9, gpus=1)
        assert s.test_only(probe) is None
        assert s.will_run(probe) is None  # running jobs have no time limit
        s.submit(JobSpec(3, gpus=8, gang_size=2, priority=5, max_runtime_ms=60_000), 100)
        decisions = s.schedule(100)
        assert [d.kind for d in decisions] == ["preempt", "preempt", "start"]
        assert {d.job for d in decisions[:2]} == {1, 2}
        assert all(d.by == 3 for d in decisions[:2])
        s.job_started(3, 150)
        assert s.job_state(1) == JobState.SUSPENDED
        assert s.will_run(1) == 150 + 60_000
        requeued = s.schedule(200)
        assert {(d.kind, d.job, d.reason) for d in requeued} == {
            ("requeue", 1, "preempted"),
            ("requeue", 2, "preempted"),
        }
        s.job_completed(3, 1000)
        starts = s.schedule(1000)
        assert sorted(d.job for d in starts if d.kind == "start") == [1, 2]
        placement = s.test_only(JobSpec(10, cpu_milli=1000))
        assert placement is not None and placement[0].gpus == ()


def test_errors_are_pythonic():
    with Scheduler() as s:
        cluster(s, 1)
        with pytest.raises(AlreadyExistsError):
            s.add_node(NodeSpec("n0", cpu_milli=1000), 0)
        with pytest.raises(zenith.InvalidArgumentError, match="job.member"):
            s.submit(JobSpec(1), 0)  # asks for nothing
        with pytest.raises(ValueError, match=r"command.env\[0\].name"):
            s.submit(JobSpec(1, gpus=1, command=["/bin/true"], env={"1BAD": "x"}), 0)
        with pytest.raises(ValueError, match="unknown locality"):
            s.submit(JobSpec(1, gpus=1, locality="nearby"), 0)
        with pytest.raises(zenith.InvalidArgumentError, match="job.member.gpu_milli"):
            JobSpec(1, gpu_share_milli=1500).validate()
        s.submit(JobSpec(1, gpus=1, command=["/usr/bin/python3", "-c", "pass"], env={"A": "1"}), 0)
        with pytest.raises(AlreadyExistsError, match="job 1 already exists"):
            s.submit(JobSpec(1, gpus=1), 0)
        with pytest.raises(UnknownError):
            s.cancel(42, 0)
        with pytest.raises(LookupError):
            s.heartbeat("ghost", 0)
        s.cancel(1, 5)
        with pytest.raises(InvalidStateError, match="already finished"):
            s.cancel(1, 6)
        with pytest.raises(InvalidStateError, match="clock went backwards"):
            s.schedule(1)
        with pytest.raises(ValueError, match="unknown policy"):
            Scheduler("lottery")
    with pytest.raises(InvalidStateError, match="closed"):
        s.schedule(10)
    s.close()  # idempotent


def test_compacting_without_a_journal_is_a_state_error():
    with Scheduler() as s:
        with pytest.raises(InvalidStateError, match="no journal file"):
            s.compact_journal()


def test_restore_from_the_journal(tmp_path):
    journal = tmp_path / "sched.journal"
    s = Scheduler(journal=journal)
    cluster(s)
    s.submit(JobSpec(1, gpus=8, gang_size=2, user="alice"), 0)  # the whole cluster
    s.submit(JobSpec(2, gpus=4), 0)
    (start,) = s.schedule(10)
    s.job_started(start.job, 20)
    waiting = 3 - start.job
    before = {j: s.job_state(j) for j in (1, 2)}
    # Compaction: the journal restarts from a snapshot; later calls append after it.
    s.compact_journal()
    assert (tmp_path / "sched.journal.snapshot").exists()
    assert journal.read_text().splitlines()[1].split(" ")[2] == "snapshot"
    s.job_progress(start.job, 20)
    s.close()  # as if the process died here: the journal holds every call

    with Scheduler(journal=journal) as restored:
        assert {j: restored.job_state(j) for j in (1, 2)} == before
        stats = restored.stats()
        assert stats["restored_records"] > 5
        assert stats["now_ms"] == 20
        assert restored.job_state(start.job) == JobState.RUNNING
        assert restored.job_state(waiting) == JobState.QUEUED
        restored.job_completed(start.job, 100)
        (d,) = restored.schedule(100)
        assert (d.kind, d.job) == ("start", waiting)


def test_metrics_series_are_exported():
    with Scheduler() as s:
        cluster(s, 1)
        s.submit(JobSpec(1, gpus=1), 0)
        s.schedule(1)
        text = zenith.metrics_text()
    for name in (
        "zenith_scheduler_jobs_pending",
        "zenith_scheduler_jobs_running",
        "zenith_scheduler_allocation_success_total",
        "zenith_scheduler_decision_latency_seconds_bucket",
    ):
        assert name in text


def test_queue_quotas_hold_jobs_back():
    with Scheduler() as s:
        cluster(s)
        s.set_queue(QueueSpec("small", nominal=QueueSpec.gpus(8)))
        s.submit(JobSpec(1, gpus=8, queue="small"), 0)
        s.submit(JobSpec(2, gpus=4, queue="small"), 0)
        s.submit(JobSpec(3, gpus=4, queue="other"), 0)
        started = {d.job for d in s.schedule(1) if d.kind == "start"}
        # Jobs 1 and 2 fit the cluster together (12 of 16 GPUs) but not their queue's quota.
        assert 3 in started and len(started & {1, 2}) == 1, started
        (held,) = {1, 2} - started
        assert s.job_state(held) == JobState.QUEUED
        with pytest.raises(InvalidStateError, match="below its current usage"):
            s.set_queue(QueueSpec("small", nominal=QueueSpec.gpus(2)))
        s.set_queue(QueueSpec("small", nominal=QueueSpec.gpus(12)))
        assert [d.job for d in s.schedule(2)] == [held]
        with pytest.raises(ValueError):
            s.set_queue(QueueSpec("bad name"))
