"""Epochs of shuffled batches with zenith: pyarrow batches, DLPack tensors into numpy, a resume
token, and the loader's stats.

    pip install ./bindings/python pyarrow numpy
    python examples/python/train_loop.py [DATASET]      # default: writes a small Parquet file
"""

import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import zenith

if len(sys.argv) > 1:
    path = sys.argv[1]
else:  # 100,000 rows of (id, features[8], label) in row groups of 10,000
    path = tempfile.mkdtemp() + "/train.parquet"
    n = 100_000
    features = pa.FixedSizeListArray.from_arrays(pa.array(np.random.rand(n * 8).astype(np.float32)), 8)
    pq.write_table(pa.table({"id": np.arange(n), "features": features, "label": np.arange(n) % 10}), path, row_group_size=10_000)

with zenith.Loader(path, batch_size=4096, shuffle=True, seed=0, num_workers=2) as loader:
    print(f"{len(loader)} batches per epoch; schema: {loader.schema.names}")
    for epoch in range(2):
        loader.set_epoch(epoch)
        rows = 0
        for batch in loader:  # pyarrow.RecordBatch
            rows += batch.num_rows
        print(f"epoch {epoch}: {rows} rows")
    state = loader.state_dict()  # small: save it with your checkpoint
    print("stats:", {k: loader.stats()[k] for k in ("rows", "batches", "time_to_first_batch_ns", "shuffle")})

# DLPack: each batch as {column: tensor}; numpy (or torch) imports them without a copy.
# Resuming needs the options that decide the order (path, batch_size, shuffle, seed, columns, shard).
with zenith.Loader(path, batch_size=4096, shuffle=True, seed=0, output="dlpack") as loader:
    loader.load_state_dict(state)  # resume: epoch 1 was complete, so epoch 2 from its first batch
    tensors = next(iter(loader))
    features, labels = np.from_dlpack(tensors["features"]), np.from_dlpack(tensors["label"])
    print(f"epoch {loader.epoch}: features {features.shape} {features.dtype}, labels {labels.shape} {labels.dtype}")
