"""zenith.torch.DataLoader takes the names torch users type: source=, keys= (tuples, so that
`for inputs, labels in loader:` unpacks tensors), transform=/collate_fn=, pin_memory=,
prefetch_factor= (per worker), drop_last=, and the loader's placement options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import zenith
import zenith.torch
from conftest import ROWS


def test_source_keys_yield_tuples_of_tensors(data):
    ds = zenith.torch.DataLoader(source=data["parquet"], batch_size=1000, shuffle=False, keys=("embedding", "label"))
    assert ds.schema.names == ["embedding", "label"]  # only the key columns are read
    seen = 0
    for inputs, labels in ds:
        assert isinstance(inputs, torch.Tensor) and isinstance(labels, torch.Tensor)
        assert inputs.shape == (len(labels), 4) and inputs.dtype == torch.float32
        assert labels.tolist() == [i % 10 for i in range(seen, seen + len(labels))]
        seen += len(labels)
    assert seen == ROWS
    # Through torch's own DataLoader, as users wire it.
    inputs, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=None)))
    assert inputs.shape == (1000, 4)
    ds.close()


def test_transform_and_collate_fn(data):
    def normalise(batch):
        return (batch["embedding"] / 4.0, batch["label"].long())

    ds = zenith.torch.DataLoader(data["arrow"], batch_size=500, shuffle=False, transform=normalise)
    x, y = next(iter(ds))
    assert y.dtype == torch.int64
    np.testing.assert_allclose(x[:, 0].numpy(), np.arange(500, dtype=np.float32))
    ds.close()
    ds = zenith.torch.DataLoader(data["arrow"], batch_size=500, keys=("id",), collate_fn=lambda t: t[0].sum().item())
    assert sum(ds) == sum(range(ROWS))
    ds.close()
    with pytest.raises(zenith.InvalidArgumentError, match="not both"):
        zenith.torch.DataLoader(data["arrow"], transform=len, collate_fn=len)
    with pytest.raises(zenith.InvalidArgumentError, match="not both"):
        zenith.torch.DataLoader(data["arrow"], source=data["arrow"])
    with pytest.raises(TypeError):
        zenith.torch.DataLoader()


def test_keys_must_name_columns(data):
    ds = zenith.torch.DataLoader(data["arrow"], keys=("nope",))
    with pytest.raises(zenith.InvalidArgumentError, match="nope"):
        len(ds)  # the loader opens on first use
    with pytest.raises(zenith.InvalidArgumentError, match="not among columns"):
        zenith.torch.DataLoader(data["arrow"], keys=("label",), columns=["id"])


def test_drop_last(data):
    ds = zenith.torch.DataLoader(data["arrow"], batch_size=1000, drop_last=True, keys=("id",))
    sizes = [len(ids) for (ids,) in ds]
    assert sizes == [1000] * (ROWS // 1000) == [1000] * len(ds)
    ds.close()


def test_prefetch_factor_is_per_zenith_worker(data):
    ds = zenith.torch.DataLoader(data["arrow"], num_workers=3, prefetch_factor=2)
    assert ds._kwargs["prefetch"] == 6
    assert len(list(ds)) == len(ds)
    ds.close()
    default = zenith.torch.DataLoader(data["arrow"], prefetch_factor=5)
    workers = default.stats()["num_workers"]  # the library's default worker count
    assert default._kwargs["prefetch"] == 5 * workers
    default.close()
    with pytest.raises(zenith.InvalidArgumentError, match="not both"):
        zenith.torch.DataLoader(data["arrow"], prefetch=4, prefetch_factor=2)
    with pytest.raises(zenith.InvalidArgumentError, match="prefetch_factor"):
        zenith.torch.DataLoader(data["arrow"], prefetch_factor=0)


def test_pin_memory(data):
    ds = zenith.torch.DataLoader(data["arrow"], batch_size=1000, keys=("embedding", "id"), pin_memory=True)
    if torch.cuda.is_available():
        x, ids = next(iter(ds))
        assert x.is_pinned() and ids.is_pinned()
    else:  # nothing to pin for: a clear warning, and ordinary tensors
        with pytest.warns(UserWarning, match=r"pin_memory=True\): no CUDA device"):
            x, ids = next(iter(ds))
        assert not x.is_pinned()
    assert x.shape == (1000, 4)
    ds.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = zenith.torch.DataLoader(data["arrow"], batch_size=1000)
        next(iter(quiet))
        quiet.close()
    with pytest.raises(zenith.InvalidArgumentError, match="pin_memory"):
        zenith.torch.DataLoader(data["arrow"], pin_memory="yes")


def test_placement_options_pass_through(data):
    ds = zenith.torch.DataLoader(data["parquet"], io_backend="pread", numa_node=-1, drop_remainder=True)
    stats = ds.stats()
    assert stats["io_backend_requested"] == "pread" and stats["numa_node"] == -1
    ds.close()
