"""zenith.torch: dicts of torch tensors via DLPack, torch's DataLoader(batch_size=None), rank and
world size from torch.distributed; with torch workers (persistent or not, forked or spawned):
set_epoch and the next-epoch rule reach them, state_dict at epoch boundaries resumes, and what
cannot be known (mid-pass state, a mid-epoch resume split across workers) raises. Runs where torch
is importable; skipped otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch to run these)")
import zenith.torch  # noqa: E402  (after the skip)
from conftest import ROWS  # noqa: E402

COLUMNS = ["id", "label", "value", "flag", "embedding", "pairs", "f16"]
TORCH_DTYPES = {
    "id": torch.int64,
    "label": torch.int32,
    "value": torch.float64,
    "flag": torch.bool,
    "embedding": torch.float32,
    "pairs": torch.int16,
    "f16": torch.float16,
}


def all_ids(batches) -> list:
    return [i for b in batches for i in b["id"].tolist()]


def test_dicts_of_tensors_equal_pyarrows_values(data, table):
    with zenith.torch.DataLoader(data["arrow"], batch_size=1000, shuffle=False, columns=COLUMNS) as ds:
        assert isinstance(ds, torch.utils.data.IterableDataset)
        assert len(ds) == 11
        batches = list(ds)
    assert all_ids(batches) == list(range(ROWS))
    first = batches[0]
    for name in COLUMNS:
        assert first[name].dtype == TORCH_DTYPES[name], name
    assert tuple(first["embedding"].shape) == (1000, 4)
    assert tuple(first["pairs"].shape) == (1000, 2, 3)
    want = table.slice(0, 1000)
    np.testing.assert_array_equal(first["value"].numpy(), want.column("value").to_numpy())
    np.testing.assert_array_equal(first["flag"].numpy(), want.column("flag").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(first["embedding"][:, 3].numpy(), np.arange(1000) * 4 + 3)


def test_torch_dataloader_with_batch_size_none(data):
    ds = zenith.torch.DataLoader(data["parquet"], batch_size=512, seed=3, columns=["id", "value"])
    loader = torch.utils.data.DataLoader(ds, batch_size=None)
    epoch0 = all_ids(loader)
    epoch1 = all_ids(loader)  # a second pass is the next epoch
    assert sorted(epoch0) == sorted(epoch1) == list(range(ROWS))
    assert epoch0 != epoch1
    ds.set_epoch(0)
    assert all_ids(loader) == epoch0
    ds.close()


def test_torch_workers_split_the_shard(data):
    ds = zenith.torch.DataLoader(data["arrow"], batch_size=500, seed=1, columns=["id"], num_workers=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    ds.set_epoch(0)
    got = all_ids(loader)
    # Every row once, and the rows that do not divide evenly padded by wrapping around (as
    # torch's DistributedSampler does): every worker gets ceil(ROWS / 2) rows.
    assert set(got) == set(range(ROWS))
    assert len(got) == -(-ROWS // 2) * 2


def test_copy_makes_writable_tensors_and_device(data):
    with zenith.torch.DataLoader(data["arrow"], batch_size=100, shuffle=False, columns=["value"], copy=True, device="cpu") as ds:
        batch = next(iter(ds))
    batch["value"].mul_(2)  # its own memory
    assert batch["value"][3].item() == 3.0


def test_state_dict_resumes(data):
    options = dict(batch_size=1000, seed=4, columns=["id"])
    with zenith.torch.DataLoader(data["parquet"], **options) as ds:
        it = iter(ds)
        next(it), next(it)
        state = ds.state_dict()
        rest = all_ids(it)
    with zenith.torch.DataLoader(data["parquet"], **options) as resumed:
        resumed.load_state_dict(state)
        assert all_ids(resumed) == rest


def test_the_dataset_pickles_without_its_loader(data):
    import pickle

    ds = zenith.torch.DataLoader(data["arrow"], batch_size=1000, columns=["id"])
    len(ds)  # opens the loader
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._loader is None and len(copy) == 11
    ds.close()
    copy.close()


def test_rank_and_world_size_from_torch_distributed(data, tmp_path):
    """Two processes in a gloo group (no RANK/WORLD_SIZE in their environment) read disjoint
    halves of each epoch."""
    script = textwrap.dedent(
        """
        import json, sys
        import torch.distributed as dist
        import zenith.torch
        rank, store, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=2)
        ds = zenith.torch.DataLoader(path, batch_size=300, seed=6, columns=["id"])
        ids = [i for b in ds for i in b["id"].tolist()]
        json.dump({"shard": list(ds.shard()), "len": len(ds), "ids": ids}, open(out, "w"))
        dist.barrier()
        dist.destroy_process_group()
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    store = tmp_path / "store"
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(r), str(store), str(data["arrow"]), str(outs[r])],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    results = [json.loads(o.read_text()) for o in outs]
    assert [r["shard"] for r in results] == [[0, 2], [1, 2]]
    assert results[0]["len"] == results[1]["len"]
    a, b = results[0]["ids"], results[1]["ids"]
    # Each rank ceil(ROWS / 2) rows; together every row, the odd one padded by wrapping around.
    assert len(a) == len(b) == -(-ROWS // 2)
    assert set(a) | set(b) == set(range(ROWS))
    assert len(set(a) & set(b)) == len(a) + len(b) - ROWS


# ---- torch DataLoader workers: epochs and resume --------------------------------------------

WORKER_OPTIONS = dict(batch_size=500, seed=1, columns=["id"], num_workers=1)


def worker_reference(path, epoch: int, workers: int = 2) -> list:
    """The ids `workers` torch workers deliver for `epoch`, from zenith.Loader alone: worker i
    reads shard i of `workers`, and torch takes one batch from each worker in turn."""
    shards = []
    for rank in range(workers):
        with zenith.Loader(path, rank=rank, world_size=workers, **WORKER_OPTIONS) as loader:
            loader.set_epoch(epoch)
            shards.append([b.column("id").to_pylist() for b in loader])
    assert len({len(s) for s in shards}) == 1, "every shard has as many batches"
    return [i for batches in zip(*shards) for b in batches for i in b]


@pytest.fixture(scope="module")
def references(data) -> dict:
    return {epoch: worker_reference(data["arrow"], epoch) for epoch in range(5)}


@pytest.mark.parametrize("persistent", [True, False])
def test_set_epoch_reaches_torch_workers(data, references, persistent):
    ds = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=persistent)
    for epoch in [0, 1, 0, 3]:
        ds.set_epoch(epoch)
        assert all_ids(loader) == references[epoch], f"epoch {epoch}"
    assert len(set(references[0])) == ROWS and references[0] != references[1]


@pytest.mark.parametrize("persistent", [True, False])
def test_torch_workers_move_to_the_next_epoch_each_pass(data, references, persistent):
    ds = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=persistent)
    assert [all_ids(loader) for _ in range(3)] == [references[0], references[1], references[2]]
    ds.set_epoch(4)
    assert all_ids(loader) == references[4]


def test_spawned_persistent_workers_follow_set_epoch(data, references):
    ds = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=None, num_workers=2, persistent_workers=True, multiprocessing_context="spawn"
    )
    ds.set_epoch(3)
    assert all_ids(loader) == references[3]
    ds.set_epoch(1)
    assert all_ids(loader) == references[1]


@pytest.mark.parametrize("persistent", [True, False])
def test_state_dict_after_worker_passes_resumes_at_the_next_epoch(data, references, persistent):
    ds = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=persistent)
    all_ids(loader), all_ids(loader)  # epochs 0 and 1
    state = ds.state_dict()
    assert (state["epoch"], state["batches_delivered"]) == (2, 0)

    resumed = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    resumed.load_state_dict(state)
    again = torch.utils.data.DataLoader(resumed, batch_size=None, num_workers=2, persistent_workers=persistent)
    assert all_ids(again) == references[2]
    assert all_ids(again) == references[3]

    with zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS) as alone:  # no torch workers
        alone.load_state_dict(state)
        with zenith.Loader(data["arrow"], **WORKER_OPTIONS) as reference:
            reference.set_epoch(2)
            assert all_ids(alone) == [i for b in reference for i in b.column("id").to_pylist()]


def test_state_dict_in_the_middle_of_a_worker_pass_raises(data):
    ds = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    it = iter(loader)
    next(it), next(it), next(it)
    with pytest.raises(RuntimeError, match="not finished.*num_workers=0"):
        ds.state_dict()
    del it


def test_a_state_from_the_middle_of_an_epoch_does_not_resume_in_workers(data):
    with zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS) as ds:
        it = iter(ds)
        next(it), next(it)
        state = ds.state_dict()
    assert (state["epoch"], state["batches_delivered"]) == (0, 2)
    resumed = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    resumed.load_state_dict(state)
    with pytest.raises(Exception, match="middle of an epoch"):
        all_ids(torch.utils.data.DataLoader(resumed, batch_size=None, num_workers=2))
    resumed.set_epoch(0)  # an explicit epoch replaces the state
    assert len(all_ids(torch.utils.data.DataLoader(resumed, batch_size=None, num_workers=2))) == -(-ROWS // 2) * 2


def test_the_shared_epoch_file_goes_with_the_dataset(data):
    import gc

    ds = zenith.torch.DataLoader(data["arrow"], **WORKER_OPTIONS)
    path = ds._epochs.path
    assert os.path.exists(path)
    del ds
    gc.collect()
    assert not os.path.exists(path)


def test_shard_none_reads_every_row_under_torchrun(data, monkeypatch):
    """Under torchrun (RANK/WORLD_SIZE set) the default shards; shard=None reads everything."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    sharded = zenith.torch.DataLoader(data["arrow"], batch_size=500, columns=["id"], num_workers=1)
    assert sharded.shard() == (1, 4)
    everything = zenith.torch.DataLoader(data["arrow"], batch_size=500, columns=["id"], num_workers=1, shard=None)
    assert everything.shard() == (0, 1)
    assert sorted(all_ids(everything)) == list(range(ROWS))
    with pytest.raises(zenith.InvalidArgumentError):
        zenith.torch.DataLoader(data["arrow"], shard=None, rank=0, world_size=2)
    sharded.close()
    everything.close()
