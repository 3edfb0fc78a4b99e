"""zenith.jax: batches as jax.Array through DLPack (jax[cpu] from requirements-test.txt: a
missing jax fails here, it is not skipped)."""

from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import zenith
import zenith.jax
from conftest import ROWS, TENSOR_COLUMNS


def test_batches_are_jax_arrays_equal_to_numpys(data, table):
    with zenith.jax.DataLoader(data["arrow"], batch_size=1000, shuffle=False, columns=TENSOR_COLUMNS) as loader:
        assert len(loader) == 11
        batches = list(loader)
    first = batches[0]
    want = table.slice(0, 1000)
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False, columns=TENSOR_COLUMNS, output="dlpack") as plain:
        reference = {name: np.from_dlpack(t) for name, t in next(iter(plain)).items()}
    for name in TENSOR_COLUMNS:
        value = first[name]
        assert isinstance(value, jax.Array), name
        expected = np.asarray(jnp.asarray(reference[name]))  # JAX's dtype rules (no x64 by default)
        assert value.dtype == expected.dtype, name
        np.testing.assert_array_equal(np.asarray(value), expected)
    assert first["embedding"].shape == (1000, 4) and first["pairs"].shape == (1000, 2, 3)
    assert np.asarray(first["label"]).tolist() == want.column("label").to_pylist()
    ids = np.concatenate([np.asarray(b["id"]) for b in batches])
    assert ids.tolist() == list(range(ROWS))


def test_keys_transform_and_a_jitted_step(data):
    @jax.jit
    def step(total, x, y):
        return total + jnp.sum(x[:, 0]) + jnp.sum(y)

    total = jnp.float32(0)
    seen = 0
    with zenith.jax.DataLoader(source=data["parquet"], batch_size=512, keys=("embedding", "label"), seed=2) as loader:
        for x, y in loader:
            total = step(total, x, y)
            seen += y.shape[0]
    assert seen == ROWS
    assert float(total) == pytest.approx(float(sum(i * 4 + i % 10 for i in range(ROWS))), rel=1e-5)
    with zenith.jax.DataLoader(data["arrow"], batch_size=1000, keys=("id",), transform=lambda t: t[0].shape[0]) as loader:
        assert sum(loader) == ROWS


def test_device_and_non_tensor_columns(data):
    device = jax.devices("cpu")[0]
    with zenith.jax.DataLoader(data["arrow"], batch_size=100, shuffle=False, columns=["id", "name"], device=device) as loader:
        batch = next(iter(loader))
    assert batch["id"].devices() == {device}
    assert batch["name"].to_pylist()[:2] == ["row-0", "row-1"]  # no tensor form: as it comes
