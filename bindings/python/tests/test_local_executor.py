"""The local executor (zenith.job / zenith.submit): jobs as subprocesses on fake GPUs (the
``gpus=`` override), their CUDA_VISIBLE_DEVICES, gangs, queueing when the node is full,
cancellation, crashing jobs, CPU-only jobs. Waits are on events with generous deadlines, never
timing assertions."""

from __future__ import annotations

import os
import signal
import time

import pytest

import zenith
from zenith.scheduler import JobCancelledError, JobFailedError, JobState, LocalExecutor

DEADLINE = 120  # seconds: a failure bound for loaded machines, never a performance claim


def visible_devices():
    return {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "RANK", "WORLD_SIZE", "ZENITH_JOB_ID")}


def add(a, b=0):
    return a + b


def crash(code):
    os._exit(code)


def boom():
    raise KeyError("no such shard")


def wait_for_file(path, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


def block_until(path, marker=None):
    """Runs until `path` exists (a test's release signal); writes `marker` first when given."""
    if marker:
        open(marker, "w").close()
    while not os.path.exists(path):
        time.sleep(0.02)
    return os.environ["CUDA_VISIBLE_DEVICES"]


def ignore_sigterm_and_block(marker):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(marker, "w").close()
    while True:
        time.sleep(1)


@zenith.job(gpus=2)
def two_gpu_job(x):
    return (x, os.environ.get("CUDA_VISIBLE_DEVICES"))


@pytest.fixture
def executor():
    ex = LocalExecutor(gpus=4, cpus=8, memory_mib=16384, grace=2.0, heartbeat_interval=0.2)
    yield ex
    ex.close()


def test_function_result_and_cuda_visible_devices(executor):
    handle = executor.submit(visible_devices, gpus=2)
    env = handle.result(timeout=DEADLINE)
    assert handle.state == JobState.COMPLETED
    assert env["ZENITH_JOB_ID"] == str(handle.id)
    assert env["WORLD_SIZE"] == "1" and env["RANK"] == "0"
    gpus = [int(g) for g in env["CUDA_VISIBLE_DEVICES"].split(",")]
    assert len(gpus) == 2 and len(set(gpus)) == 2 and all(0 <= g < 4 for g in gpus)
    assert tuple(gpus) == handle.gpus
    assert executor.submit(add, 2, b=3).result(timeout=DEADLINE) == 5


def test_decorated_job_and_zenith_submit(executor):
    assert two_gpu_job(7) == (7, os.environ.get("CUDA_VISIBLE_DEVICES"))  # a plain call runs here
    value, devices = two_gpu_job.submit(7, executor=executor).result(timeout=DEADLINE)
    assert value == 7 and len(devices.split(",")) == 2
    value, devices = zenith.submit(two_gpu_job, 8, executor=executor).result(timeout=DEADLINE)
    assert value == 8 and len(devices.split(",")) == 2


def test_gang_members_get_disjoint_gpus(executor):
    handle = executor.submit(visible_devices, gpus=2, gang=2)
    members = handle.result(timeout=DEADLINE)
    assert [m["RANK"] for m in members] == ["0", "1"]
    assert all(m["WORLD_SIZE"] == "2" for m in members)
    sets = [set(m["CUDA_VISIBLE_DEVICES"].split(",")) for m in members]
    assert all(len(s) == 2 for s in sets)
    assert not sets[0] & sets[1]
    assert sets[0] | sets[1] == {"0", "1", "2", "3"}


def test_a_job_waits_while_the_node_is_full(executor, tmp_path):
    release = str(tmp_path / "release")
    first = executor.submit(block_until, release, str(tmp_path / "started1"), gpus=3)
    wait_for_file(tmp_path / "started1")
    second = executor.submit(block_until, release, gpus=2)
    # The pass that would place it has run once the executor reports it QUEUED (not PENDING).
    end = time.monotonic() + DEADLINE
    while second.state == JobState.PENDING and time.monotonic() < end:
        time.sleep(0.02)
    assert second.state == JobState.QUEUED
    assert first.state == JobState.RUNNING
    assert not second.done()
    open(release, "w").close()
    first_gpus = set(first.result(timeout=DEADLINE).split(","))
    second_gpus = set(second.result(timeout=DEADLINE).split(","))
    assert len(first_gpus) == 3 and len(second_gpus) == 2


def test_cancel_sends_sigterm_then_sigkill(executor, tmp_path):
    marker = str(tmp_path / "started")
    handle = executor.submit(ignore_sigterm_and_block, marker, gpus=1)
    wait_for_file(marker)
    assert handle.state == JobState.RUNNING
    assert handle.cancel()
    assert handle.wait(DEADLINE)  # SIGTERM is ignored: SIGKILL after the 2 s grace
    assert handle.state == JobState.CANCELLED
    assert handle.exit_codes == [-signal.SIGKILL]
    with pytest.raises(JobCancelledError):
        handle.result(0)
    assert not handle.cancel()  # already finished
    # A queued job cancels without ever running.
    release = str(tmp_path / "release")
    blocker = executor.submit(block_until, release, gpus=4)
    queued = executor.submit(add, 1, gpus=1)
    assert queued.cancel()
    assert isinstance(queued.exception(DEADLINE), JobCancelledError)
    open(release, "w").close()
    blocker.result(timeout=DEADLINE)


def test_crashing_jobs_are_reported_failed(executor):
    handle = executor.submit(crash, 3, gpus=1)
    with pytest.raises(JobFailedError, match="exited with status 3") as info:
        handle.result(timeout=DEADLINE)
    assert info.value.exit_code == 3
    assert handle.state == JobState.FAILED

    raised = executor.submit(boom)
    err = raised.exception(timeout=DEADLINE)
    assert isinstance(err, JobFailedError)
    assert isinstance(err.cause, KeyError)
    assert "no such shard" in str(err) and "KeyError" in err.remote_traceback
    # The GPUs of failed jobs are free again.
    assert executor.submit(add, 1, gpus=4).result(timeout=DEADLINE) == 1


def test_cpu_jobs_and_commands_on_a_machine_without_gpus(tmp_path):
    with LocalExecutor(gpus=0, cpus=2) as ex:
        env = ex.submit(visible_devices).result(timeout=DEADLINE)
        assert env["CUDA_VISIBLE_DEVICES"] == ""
        out = tmp_path / "out"
        cmd = ["/bin/sh", "-c", f'echo "$CUDA_VISIBLE_DEVICES|$ZENITH_JOB_ID" > {out}']
        handle = ex.submit(cmd)
        assert handle.result(timeout=DEADLINE) == 0
        assert out.read_text().strip() == f"|{handle.id}"
        failing = ex.submit(["/bin/sh", "-c", "exit 7"])
        assert failing.exception(DEADLINE).exit_code == 7
        # A GPU job never fits on this node: it waits (in the queue) until cancelled.
        never = ex.submit(add, 1, gpus=1)
        with pytest.raises(TimeoutError):
            never.result(timeout=0.2)
        assert never.cancel()
        with pytest.raises(zenith.InvalidArgumentError):
            ex.submit(42)


def freeze():
    os.kill(os.getpid(), signal.SIGSTOP)  # alive but silent: its heartbeat stops


def test_a_silent_job_is_a_zombie():
    with LocalExecutor(gpus=1, progress_timeout=1.0, heartbeat_interval=0.1, grace=0.5) as ex:
        handle = ex.submit(freeze, gpus=1, restartable=False)
        err = handle.exception(timeout=DEADLINE)
        assert isinstance(err, JobFailedError) and err.reason == "zombie", err
        assert handle.state == JobState.FAILED
        assert handle.exit_codes == [-signal.SIGKILL]  # SIGTERM waits on a stopped process
        assert ex.submit(add, 2, gpus=1).result(timeout=DEADLINE) == 2  # its GPU is free again


def test_gpu_shares_are_packed_onto_one_gpu(tmp_path):
    """Two jobs of half a GPU share GPU 0 (both run at once); a whole-GPU job then gets GPU 1;
    a fraction above 1 is refused."""
    release = str(tmp_path / "release")
    with LocalExecutor(gpus=2) as ex:
        halves = [ex.submit(block_until, release, str(tmp_path / f"h{i}"), gpus=0.5) for i in range(2)]
        for i in range(2):
            wait_for_file(str(tmp_path / f"h{i}"))
        assert [h.gpus for h in halves] == [(0,), (0,)]
        whole = ex.submit(block_until, release, str(tmp_path / "w"), gpus=1)
        wait_for_file(str(tmp_path / "w"))
        assert whole.gpus == (1,)
        open(release, "w").close()
        assert [h.result(timeout=DEADLINE) for h in halves] == ["0", "0"]
        assert whole.result(timeout=DEADLINE) == "1"
        with pytest.raises(ValueError, match="between 0 and 1"):
            ex.submit(add, 1, gpus=1.5)
