"""The loader's edges a user relies on: sharding that says where it came from and can be turned
off, ranks padded like torch's DistributedSampler, the automatic shuffle's fallback said out loud,
shards differing only in nullability, arguments a C string cannot carry, the last epoch, and
Ctrl-C while a loop waits for a batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zenith
from conftest import ROWS, write_ipc

U64_MAX = (1 << 64) - 1
SHARD_VARIABLES = ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE")


@pytest.fixture(autouse=True)
def no_shard_environment(monkeypatch):
    for name in SHARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def ids(batches) -> list:
    return [i for batch in batches for i in batch.column("id").to_pylist()]


def ten_rows(tmp_path):
    return write_ipc(pa.table({"id": pa.array(range(10), pa.int64())}), tmp_path / "ten.arrow", batch_rows=4)


# ---- arguments a C string cannot carry; empty projections ----------------------------------------


def test_a_path_with_a_nul_is_refused_instead_of_cut(data):
    # Cut at the NUL, this would silently open data["arrow"].
    for path in (str(data["arrow"]) + "\0.backup", os.fsencode(data["arrow"]) + b"\0x"):
        with pytest.raises(zenith.InvalidArgumentError, match="NUL"):
            zenith.Loader(path)


def test_a_column_name_with_a_nul_is_refused(data):
    with pytest.raises(zenith.InvalidArgumentError, match="NUL"):
        zenith.Loader(data["arrow"], columns=["id\0label"])


def test_an_empty_column_list_is_an_error_not_every_column(data):
    with pytest.raises(zenith.InvalidArgumentError, match="columns must not be empty") as info:
        zenith.Loader(data["arrow"], columns=[])
    assert info.value.code == zenith.Status.ERR_INVALID_ARGUMENT
    with pytest.raises(zenith.InvalidArgumentError, match="columns must not be empty"):
        zenith.Loader(data["arrow"], columns=())


# ---- the last epoch ------------------------------------------------------------------------------


def test_the_last_epoch_runs_resumes_and_does_not_wrap(data):
    with zenith.Loader(data["arrow"], batch_size=4000, seed=3) as loader:
        loader.set_epoch(U64_MAX)
        it = iter(loader)
        first = next(it)
        state = loader.state_dict()
        rest = ids(it)
        assert loader.epoch == U64_MAX
        with pytest.raises(zenith.InvalidArgumentError, match="last epoch"):
            iter(loader)
        assert loader.epoch == U64_MAX, "nothing wrapped to epoch 0"
        complete = loader.state_dict()
        with pytest.raises(zenith.InvalidArgumentError):
            loader.set_epoch(U64_MAX + 1)

    with zenith.Loader(data["arrow"], batch_size=4000, seed=3) as resumed:
        resumed.load_state_dict(state)
        assert resumed.epoch == U64_MAX
        assert ids(resumed) == rest
        assert len(first) + len(rest) == ROWS

    with zenith.Loader(data["arrow"], batch_size=4000, seed=3) as done:
        done.load_state_dict(complete)  # a state at the very end still loads
        assert done.epoch == U64_MAX
        with pytest.raises(zenith.InvalidArgumentError, match="last epoch"):
            iter(done)
        done.set_epoch(0)
        assert len(ids(done)) == ROWS


# ---- sharding: visible, controllable -------------------------------------------------------------


def test_sharding_from_torchrun_is_reported_and_can_be_turned_off(data, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with zenith.Loader(data["arrow"], batch_size=1000) as from_env:
        stats = from_env.stats()
        assert (stats["rank"], stats["world_size"], stats["shard_source"]) == (1, 2, "torch")
        assert "rank=1, world_size=2 (from RANK/WORLD_SIZE)" in repr(from_env)
        assert len(ids(from_env)) == -(-ROWS // 2)

    # An evaluation loader on rank 0 of a torchrun job reads everything when it says so.
    with zenith.Loader(data["arrow"], batch_size=1000, shard=None) as everything:
        stats = everything.stats()
        assert (stats["rank"], stats["world_size"], stats["shard_source"]) == (0, 1, "options")
        assert "world_size=1 (from the arguments)" in repr(everything)
        assert sorted(ids(everything)) == list(range(ROWS))

    with zenith.Loader(data["arrow"], batch_size=1000, shard=(0, 4)) as explicit:
        stats = explicit.stats()
        assert (stats["rank"], stats["world_size"], stats["shard_source"]) == (0, 4, "options")

    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_PROCID", "2")
    monkeypatch.setenv("SLURM_NTASKS", "3")
    with zenith.Loader(data["arrow"], batch_size=1000) as from_slurm:
        stats = from_slurm.stats()
        assert (stats["rank"], stats["world_size"], stats["shard_source"]) == (2, 3, "slurm")
        assert "from SLURM_PROCID/SLURM_NTASKS" in repr(from_slurm)
    monkeypatch.delenv("SLURM_PROCID")
    monkeypatch.delenv("SLURM_NTASKS")
    with zenith.Loader(data["arrow"], batch_size=1000) as alone:
        assert alone.stats()["shard_source"] == "none"
        assert "(no sharding)" in repr(alone)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shard": None, "rank": 0, "world_size": 2}, "not both"),
        ({"shard": (0, 2), "rank": 0, "world_size": 2}, "not both"),
        ({"shard": (1,)}, "shard"),
        ({"shard": "torch"}, "shard"),
        ({"shard": (2, 2)}, "rank"),
        ({"drop_remainder": 1}, "drop_remainder"),
    ],
)
def test_bad_shard_arguments(data, kwargs, match):
    with pytest.raises(zenith.InvalidArgumentError, match=match):
        zenith.Loader(data["arrow"], **kwargs)


def test_ranks_are_padded_like_distributed_sampler(tmp_path):
    path = ten_rows(tmp_path)
    delivered = []
    for rank in range(4):
        with zenith.Loader(path, batch_size=2, shard=(rank, 4), shuffle=False) as loader:
            got = ids(loader)
            assert len(got) == 3, "ceil(10 / 4) rows on every rank"
            assert len(loader) == 2 == loader.stats()["batches_per_epoch"]
            delivered += got
    assert delivered == list(range(10)) + [0, 1], "the order wraps around to its first rows"

    for rank in range(4):
        with zenith.Loader(path, batch_size=2, shard=(rank, 4), drop_remainder=True) as loader:
            assert len(ids(loader)) == 2 and len(loader) == 1


def test_a_world_larger_than_the_dataset_is_an_error(tmp_path, monkeypatch):
    path = ten_rows(tmp_path)
    for drop_remainder in (False, True):
        with pytest.raises(zenith.InvalidArgumentError, match="larger than the dataset"):
            zenith.Loader(path, rank=0, world_size=12, drop_remainder=drop_remainder)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "12")
    with pytest.raises(zenith.InvalidArgumentError, match="RANK/WORLD_SIZE"):
        zenith.Loader(path)
    with zenith.Loader(path, shard=None) as loader:  # the way out for a single-rank reader
        assert len(ids(loader)) == 10


@pytest.mark.parametrize("shuffle", [False, True, "block"])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_state_dict_resumes_padded_and_dropping_shards_exactly(data, shuffle, drop_remainder):
    kwargs = dict(batch_size=700, shuffle=shuffle, seed=2, shard=(2, 3), drop_remainder=drop_remainder)
    with zenith.Loader(data["parquet"], **kwargs) as loader:
        full = ids(loader)
        assert len(full) == (ROWS // 3 if drop_remainder else -(-ROWS // 3))
        batches = len(loader)
    for taken in (1, batches - 1):
        with zenith.Loader(data["parquet"], **kwargs) as loader:
            it = iter(loader)
            head = ids(next(it) for _ in range(taken))
            state = loader.state_dict()
        with zenith.Loader(data["parquet"], num_workers=0, **kwargs) as resumed:
            resumed.load_state_dict(state)
            assert len(resumed) == batches
            assert head + ids(resumed) == full


# ---- the automatic shuffle and the memory budget -------------------------------------------------


@pytest.fixture(scope="module")
def tight_budget(data) -> int:
    """A budget that holds one row group of the Parquet file (which is then readable) but not the
    whole file (which a global shuffle would hold): half its decoded size, 4 row groups."""
    with zenith.Loader(data["parquet"], shuffle=False) as loader:
        return loader.stats()["decoded_bytes"] // 2


def test_the_automatic_shuffle_warns_once_when_it_runs_as_block(data, tight_budget):
    budget = tight_budget
    with pytest.warns(zenith.ShuffleDowngradeWarning, match=f"memory budget of {budget} bytes") as caught:
        loader = zenith.Loader(data["parquet"], batch_size=1000, memory_budget=budget)
    assert len(caught) == 1
    assert issubclass(zenith.ShuffleDowngradeWarning, zenith.ZenithWarning)
    assert caught[0].filename == __file__, "the warning points at the caller"
    with loader:
        stats = loader.stats()
        assert (stats["shuffle"], stats["shuffle_requested"], stats["shuffle_downgraded"]) == ("block", "auto", True)
        assert stats["memory_budget"] == budget and stats["decoded_bytes"] > budget
        assert "shuffle=block (auto: over the memory budget)" in repr(loader)
        assert sorted(ids(loader)) == list(range(ROWS))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            state = loader.state_dict()
            loader.load_state_dict(state)  # once per loader: no second warning
            ids(loader)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for quiet in (
            dict(shuffle="block", memory_budget=budget),
            dict(shuffle=True),
            dict(shuffle=False, memory_budget=budget),
        ):
            with zenith.Loader(data["parquet"], batch_size=1000, **quiet) as loader:
                assert not loader.stats()["shuffle_downgraded"]


def test_an_explicit_global_shuffle_over_budget_is_an_out_of_memory_error(data, tight_budget):
    with pytest.raises(zenith.OutOfMemoryError, match=rf"memory budget \({tight_budget} bytes\)") as info:
        zenith.Loader(data["parquet"], shuffle="global", memory_budget=tight_budget)
    assert isinstance(info.value, MemoryError)
    assert info.value.code == zenith.Status.ERR_OUT_OF_MEMORY
    assert "global shuffle" in str(info.value)
    # Within the budget, or data that needs no decoding (memory-mapped IPC): global it is.
    with zenith.Loader(data["arrow"], shuffle="global", memory_budget=tight_budget) as loader:
        assert (loader.stats()["shuffle"], loader.stats()["shuffle_requested"]) == ("global", "global")


def test_the_default_budget_is_shared_by_the_ranks_of_a_node(data, monkeypatch):
    with zenith.Loader(data["parquet"]) as alone:
        budget = alone.stats()["memory_budget"]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    with zenith.Loader(data["parquet"]) as shared:
        # MemAvailable moves between the two opens: a tolerance of 1/8 of the share.
        assert abs(shared.stats()["memory_budget"] - budget // 8) <= budget // 64


# ---- shards that differ only in nullability ------------------------------------------------------


def test_shards_differing_only_in_nullability_read_to_the_end(tmp_path):
    strict = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    pq.write_table(pa.table({"id": pa.array(range(100), pa.int64())}, schema=strict), tmp_path / "part-0.parquet")
    loose = pa.array([None if i % 10 == 0 else i for i in range(100, 200)], pa.int64())
    pq.write_table(pa.table({"id": loose}), tmp_path / "part-1.parquet")
    with zenith.Loader(tmp_path, batch_size=64, shuffle=True, seed=1) as loader:
        assert loader.schema.field("id").nullable
        batches = list(loader)
        assert all(b.schema == loader.schema for b in batches)
        values = ids(batches)
        assert len(values) == 200 and values.count(None) == 10


# ---- Ctrl-C while a loop waits for a batch -------------------------------------------------------

CTRL_C_CHILD = textwrap.dedent(
    """
    import signal, sys, time
    import zenith

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores SIGINT
    loader = zenith.Loader(sys.argv[1], batch_size=2, shuffle=False, num_workers=2, prefetch=2)
    it = iter(loader)
    print("waiting", flush=True)
    started = time.monotonic()
    try:
        next(it)
        print("no KeyboardInterrupt", flush=True)
        sys.exit(3)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - started:.3f}", flush=True)
    # The iterator continues with the batch it was waiting for.
    got = [i for batch in [next(it), *it] for i in batch.column("id").to_pylist()]
    print(f"continued {got}", flush=True)
    loader.close()
    """
)


def test_ctrl_c_interrupts_a_waiting_loop_promptly_and_the_loop_can_continue(tmp_path):
    path = write_ipc(pa.table({"id": pa.array(range(4), pa.int64())}), tmp_path / "four.arrow")
    delay_s = 3.0
    env = dict(os.environ, ZENITH_TEST_WORKER_DELAY_MS=str(int(delay_s * 1000)))  # test-only knob
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(zenith.__file__)), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "waiting"
        time.sleep(0.3)  # inside next(): the workers are still waiting out their delay
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, f"exit {child.returncode}\n{out}\n{err}"
    lines = out.splitlines()
    assert lines[0].startswith("interrupted after"), out
    waited = float(lines[0].split()[-1])
    assert waited < delay_s - 1.0, f"KeyboardInterrupt came only with the batch ({waited:.2f} s)"
    assert lines[1] == "continued [0, 1, 2, 3]", out
