"""zenith.torch: dicts of torch tensors via DLPack, torch's DataLoader(batch_size=None), rank and
world size from torch.distributed. Runs where torch is importable; skipped otherwise."""

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
    assert len(got) == len(set(got)) == ROWS - ROWS % 2


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
    a, b = set(results[0]["ids"]), set(results[1]["ids"])
    assert len(a) == len(b) == ROWS // 2 and not (a & b)
