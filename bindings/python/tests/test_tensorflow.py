"""zenith.tensorflow.ZenithDataset: a real tf.data.Dataset whose tensors come through DLPack
(tensorflow-cpu from requirements-test.txt: a missing TensorFlow fails here, it is not
skipped)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import zenith  # noqa: E402
import zenith.tensorflow  # noqa: E402
from conftest import ROWS  # noqa: E402


def test_a_real_dataset_of_dicts_of_tensors(data, table):
    ds = zenith.tensorflow.ZenithDataset(source=data["arrow"], batch_size=1000, shuffle=False)
    assert isinstance(ds, tf.data.Dataset)
    assert len(ds) == 11
    spec = ds.element_spec
    assert spec["embedding"] == tf.TensorSpec((None, 4), tf.float32, name="embedding")
    assert spec["pairs"].shape.as_list() == [None, 2, 3] and spec["name"].dtype == tf.string
    batches = list(ds)
    assert len(batches) == 11
    first = batches[0]
    want = table.slice(0, 1000)
    for name in ("id", "label", "value", "flag", "u64", "f16", "noise"):
        np.testing.assert_array_equal(first[name].numpy(), want.column(name).to_numpy(zero_copy_only=False), err_msg=name)
    np.testing.assert_array_equal(first["embedding"].numpy()[:, 1], np.arange(1000) * 4 + 1)
    assert first["name"].numpy()[2] == b"row-2"
    ids = np.concatenate([b["id"].numpy() for b in batches])
    assert ids.tolist() == list(range(ROWS))
    ds.close()


def test_keys_map_epochs_and_tf_function(data):
    ds = zenith.tensorflow.ZenithDataset(data["parquet"], batch_size=512, seed=1, keys=("embedding", "label"), drop_last=True)
    assert ds.element_spec == (tf.TensorSpec((None, 4), tf.float32, name="embedding"), tf.TensorSpec((None,), tf.int32, name="label"))
    epoch0 = [y.numpy().tolist() for _, y in ds]
    epoch1 = [y.numpy().tolist() for _, y in ds]  # each pass is the next epoch
    assert len(epoch0) == len(epoch1) == ROWS // 512
    assert epoch0 != epoch1
    ds.set_epoch(0)
    assert [y.numpy().tolist() for _, y in ds] == epoch0

    @tf.function
    def total(dataset):
        s = tf.constant(0.0, tf.float64)
        for x, y in dataset:
            s += tf.reduce_sum(tf.cast(x[:, 0], tf.float64))
        return s

    scaled = ds.map(lambda x, y: (x * 2.0, y)).prefetch(2)
    got = float(total(scaled))  # the next pass: epoch 1
    same = dict(batch_size=512, seed=1, columns=["embedding", "label"], drop_last=True, output="dlpack")
    with zenith.Loader(data["parquet"], **same) as reference:
        reference.set_epoch(1)
        want = sum(float(np.from_dlpack(b["embedding"])[:, 0].astype(np.float64).sum()) for b in reference)
    assert got == pytest.approx(2 * want)
    ds.close()


def test_bad_columns_are_refused_when_built(data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"tokens": pa.array([[1, 2], [3]]), "id": pa.array([0, 1])}), path)
    with pytest.raises(zenith.ZenithError, match="tokens"):
        zenith.tensorflow.ZenithDataset(path, batch_size=2)
    padded = zenith.tensorflow.ZenithDataset(path, batch_size=2, shuffle=False, pad={"tokens": 0})
    batch = next(iter(padded))
    assert batch["tokens"].numpy().tolist() == [[1, 2], [3, 0]]
    assert batch["tokens_lengths"].numpy().tolist() == [2, 1]
    padded.close()
    with pytest.raises(zenith.InvalidArgumentError, match="nope"):
        zenith.tensorflow.ZenithDataset(path, keys=("nope",))
