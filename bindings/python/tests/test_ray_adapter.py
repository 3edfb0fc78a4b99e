"""The Ray adapter (zenith.scheduler.ray) against a real Ray cluster this test starts and stops:
``ray.cluster_utils.Cluster`` with three Ray nodes on this machine, each declaring fake GPUs
(Ray only counts them). zenith decides; the tests check Ray carried the decisions out: a gang's
tasks run on the nodes zenith chose, a full cluster queues, a higher-priority job preempts a
preemptible one (its placement group removed, the job requeued and restarted), and a node removed
from the cluster is down for zenith. Every wait has a deadline; no timing assertions."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

import ray
from ray.cluster_utils import Cluster
from ray.util.placement_group import placement_group_table

from zenith.scheduler import JobCancelledError, JobFailedError, JobState
from zenith.scheduler.ray import RayScheduler

DEADLINE = 120  # seconds: a failure bound for loaded machines, never a performance claim
GPUS_PER_NODE = 2

# Ray's workers cannot import this test module: its functions travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def where(tag=None):
    """A gang member's report: the Ray node it runs on and its rank."""
    return (ray.get_runtime_context().get_node_id(), int(os.environ["RANK"]), tag)


def boom():
    raise KeyError("no such shard")


def block_until(path, marker):
    """Runs until `path` exists; writes `marker` (with the node id) first."""
    with open(marker + ".tmp", "w") as f:
        f.write(ray.get_runtime_context().get_node_id())
    os.replace(marker + ".tmp", marker)
    while not os.path.exists(path):
        time.sleep(0.05)
    return "released"


def freeze_unless(marker):
    """The first attempt writes its pid to `marker` and stops itself (alive but silent: its
    heartbeat stops); a later attempt, finding the marker, returns."""
    if os.path.exists(marker):
        return "second attempt"
    with open(marker + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(marker + ".tmp", marker)
    os.kill(os.getpid(), signal.SIGSTOP)


def share_report(path, marker):
    """A fractional-GPU member: reports the GPU Ray gave it (and zenith's choice), then blocks
    until `path` exists."""
    ctx = ray.get_runtime_context()
    report = {
        "node": ctx.get_node_id(),
        "ray_gpus": [str(g) for g in ray.get_gpu_ids()],
        "gpu_resources": sorted({v for k, v in ctx.get_assigned_resources().items() if k.startswith("GPU")}),
        "zenith_gpus": os.environ["ZENITH_GPUS"],
    }
    with open(marker + ".tmp", "w") as f:
        json.dump(report, f)
    os.replace(marker + ".tmp", marker)
    while not os.path.exists(path):
        time.sleep(0.05)
    return report


def gone(pid):
    """The process exited (or is a zombie process waiting for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(cond, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster():
    """Three Ray nodes of GPUS_PER_NODE fake GPUs each and 2 CPUs (the head too)."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": GPUS_PER_NODE})
    nodes = [c.head_node] + [c.add_node(num_cpus=2, num_gpus=GPUS_PER_NODE) for _ in range(2)]
    try:
        c.wait_for_nodes(timeout=DEADLINE)
        ray.init(address=c.address)
        yield c, nodes
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture
def sched(cluster):
    s = RayScheduler(node_refresh=0.2)
    try:
        wait_until(lambda: sum(v == "up" for v in s.nodes().values()) >= 3, "zenith to see the three Ray nodes")
        yield s
    finally:
        s.close()


def test_gang_lands_on_the_nodes_zenith_chose(sched):
    spread = sched.submit(where, "spread", gpus=1, gang=2, locality="spread")
    reports = spread.result(timeout=DEADLINE)
    assert [r[1] for r in reports] == [0, 1]
    assert tuple(r[0] for r in reports) == spread.nodes
    assert len(set(spread.nodes)) == 2
    assert spread.state == JobState.COMPLETED

    packed = sched.submit(where, "pack", gpus=1, gang=2, locality="same-node")
    reports = packed.result(timeout=DEADLINE)
    assert tuple(r[0] for r in reports) == packed.nodes
    assert len(set(packed.nodes)) == 1
    # A finished job's placement group is gone.
    assert packed.placement_group is None


def test_queues_when_full_then_runs(sched, tmp_path):
    release = str(tmp_path / "release")
    # 3 nodes x 2 GPUs: three whole-node jobs fill the cluster, the fourth waits.
    blockers = [
        sched.submit(block_until, release, str(tmp_path / f"m{i}"), gpus=GPUS_PER_NODE) for i in range(3)
    ]
    for i in range(3):
        wait_until(lambda i=i: os.path.exists(tmp_path / f"m{i}"), f"blocker {i} to run")
    waiting = sched.submit(where, gpus=1)
    # zenith keeps it queued: no placement group is created for it while the cluster is full.
    wait_until(lambda: waiting.state == JobState.QUEUED, "the job to enter the queue")
    time.sleep(1.0)  # a few more passes (one each 50 ms): still not started
    assert waiting.state == JobState.QUEUED
    assert waiting.placement_group is None and waiting.attempts == 0
    open(release, "w").close()
    assert [b.result(timeout=DEADLINE) for b in blockers] == ["released"] * 3
    node, rank, _ = waiting.result(timeout=DEADLINE)
    assert node == waiting.nodes[0]


def test_higher_priority_preempts_a_preemptible_job(sched, tmp_path):
    release = str(tmp_path / "release")
    # Low-priority preemptible gang filling the whole cluster (3 members x 2 GPUs).
    low = sched.submit(
        block_until, release, str(tmp_path / "low"), gpus=GPUS_PER_NODE, gang=3, locality="spread",
        priority=1, preemptible=True,
    )
    wait_until(lambda: os.path.exists(tmp_path / "low"), "the low-priority job to run")
    low_pg = low.placement_group
    assert low_pg is not None and low.attempts == 1

    high = sched.submit(where, "high", gpus=GPUS_PER_NODE, priority=100)
    node, _, tag = high.result(timeout=DEADLINE)
    assert tag == "high" and node == high.nodes[0]
    # The preempted attempt's placement group was removed from Ray...
    assert placement_group_table(low_pg)["state"] == "REMOVED"
    # ...and the job went back to zenith's queue, then started again when room came back.
    wait_until(lambda: low.attempts == 2, "the preempted job to be restarted")
    open(release, "w").close()
    assert low.result(timeout=DEADLINE) == ["released"] * 3
    assert sched.stats()["preemptions_total"] >= 1


def test_cancel_removes_the_placement_group(sched, tmp_path):
    handle = sched.submit(block_until, str(tmp_path / "never"), str(tmp_path / "m"), gpus=1)
    wait_until(lambda: os.path.exists(tmp_path / "m"), "the job to run")
    pg = handle.placement_group
    assert handle.cancel()
    with pytest.raises(JobCancelledError):
        handle.result(timeout=DEADLINE)
    assert handle.state == JobState.CANCELLED
    assert placement_group_table(pg)["state"] == "REMOVED"
    assert not handle.cancel()


def test_job_failing_in_ray_fails_in_zenith(sched):
    handle = sched.submit(boom, gpus=1, gang=2, locality="spread")
    with pytest.raises(JobFailedError, match="no such shard") as info:
        handle.result(timeout=DEADLINE)
    assert isinstance(info.value.cause, KeyError)
    assert handle.state == JobState.FAILED


def test_zombies_are_failed_or_requeued_by_policy(cluster, tmp_path):
    """A member whose heartbeat stops (its worker process stopped) past the progress timeout is
    a zombie: not restartable, the job fails with reason "zombie"; restartable, it is requeued
    and runs again. Either way its placement group is removed and the stopped worker killed."""
    pids = []
    try:
        with RayScheduler(node_refresh=0.2, progress_timeout=3.0, heartbeat_interval=0.2) as sched:
            wait_until(lambda: sum(v == "up" for v in sched.nodes().values()) >= 3, "zenith to see the Ray nodes")
            marker = str(tmp_path / "frozen")
            handle = sched.submit(freeze_unless, marker, gpus=1, restartable=False)
            wait_until(lambda: os.path.exists(marker), "the member to stop itself")
            pids.append(int(open(marker).read()))
            pg = handle.placement_group
            err = handle.exception(timeout=DEADLINE)
            assert isinstance(err, JobFailedError) and err.reason == "zombie", err
            assert handle.state == JobState.FAILED and handle.requeues == []
            assert placement_group_table(pg)["state"] == "REMOVED"
            wait_until(lambda: gone(pids[0]), "Ray to kill the zombie's worker")

            marker = str(tmp_path / "frozen-once")
            handle = sched.submit(freeze_unless, marker, gpus=1)
            wait_until(lambda: os.path.exists(marker), "the member to stop itself")
            pids.append(int(open(marker).read()))
            assert handle.result(timeout=DEADLINE) == "second attempt"
            assert handle.requeues == ["zombie"] and handle.attempts == 2
            wait_until(lambda: gone(pids[1]), "Ray to kill the zombie's worker")
            stats = sched.stats()
            assert stats["jobs"]["FAILED"] == 1 and stats["requeues_total"] == 1, stats
    finally:
        for pid in pids:  # never leave a stopped process behind, whatever failed above
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_fractional_gpus_are_packed_and_map_to_ray_num_gpus(sched, tmp_path):
    """Four jobs of half a GPU: zenith packs them two per GPU, each member's bundle and task ask
    Ray for num_gpus=0.5 and Ray gives the two jobs of a zenith GPU one GPU; the four whole GPUs
    left then take a 4-GPU gang at once (Ray's accounting agrees with zenith's)."""
    release = str(tmp_path / "release")
    shares = [sched.submit(share_report, release, str(tmp_path / f"s{i}"), gpus=0.5) for i in range(4)]
    for i in range(4):
        wait_until(lambda i=i: os.path.exists(tmp_path / f"s{i}"), f"share {i} to run")
    reports = [json.load(open(tmp_path / f"s{i}")) for i in range(4)]
    places = {}
    for h, r in zip(shares, reports):
        assert r["gpu_resources"] == [0.5], r
        assert len(r["ray_gpus"]) == 1 and r["node"] == h.nodes[0]
        assert r["zenith_gpus"] == ",".join(map(str, h.gpus[0]))
        places.setdefault((h.nodes[0], h.gpus[0]), []).append(r["ray_gpus"][0])
    # Two zenith GPUs, two shares each, and Ray put each pair on one GPU.
    assert sorted(len(v) for v in places.values()) == [2, 2], places
    assert all(len(set(v)) == 1 for v in places.values()), places
    gang = sched.submit(where, "whole", gpus=1, gang=4)
    reports_gang = gang.result(timeout=DEADLINE)
    assert [r[2] for r in reports_gang] == ["whole"] * 4
    open(release, "w").close()
    assert [h.result(timeout=DEADLINE)["node"] for h in shares] == [r["node"] for r in reports]
    with pytest.raises(ValueError, match="between 0 and 1"):
        sched.submit(where, gpus=1.5)


def test_removed_node_is_down_for_zenith(cluster, tmp_path):
    """Last: it shrinks the module's cluster."""
    c, nodes = cluster
    victim = nodes[-1]
    victim_id = victim.node_id
    with RayScheduler(node_refresh=0.2) as sched:
        wait_until(lambda: sum(v == "up" for v in sched.nodes().values()) >= 3, "zenith to see the three Ray nodes")
        # A gang on all three nodes: one member runs on the victim.
        gang = sched.submit(
            block_until, str(tmp_path / "never"), str(tmp_path / "m"), gpus=GPUS_PER_NODE, gang=3, locality="spread"
        )
        wait_until(lambda: os.path.exists(tmp_path / "m"), "the gang to run")
        assert victim_id in gang.nodes
        pg = gang.placement_group

        c.remove_node(victim)
        wait_until(lambda: sched.nodes().get(victim_id) == "down", "zenith to see the removed node down")
        # zenith requeued the gang (node lost): its placement group is gone, and with two nodes
        # left it no longer fits, so it waits in the queue instead of failing.
        wait_until(lambda: gang.placement_group is None, "the lost gang's placement group to be removed")
        assert placement_group_table(pg)["state"] == "REMOVED"
        wait_until(lambda: gang.state == JobState.QUEUED, "the lost gang to be requeued")
        assert not gang.done() and gang.attempts == 1
        assert gang.cancel()

        # New jobs are placed on the nodes left.
        handle = sched.submit(where, gpus=1, gang=2, locality="spread")
        reports = handle.result(timeout=DEADLINE)
        assert victim_id not in {r[0] for r in reports}
