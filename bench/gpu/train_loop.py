"""A training-shaped loop fed two ways, side by side (issue 10's device check):

- zenith:  zenith.torch.DataLoader(device="cuda:0") - batches land in device memory through the
           pinned slot ring; torch.from_dlpack makes torch's stream wait for each copy;
- torch:   torch.utils.data.DataLoader(pin_memory=True, num_workers=2) over the same shuffled
           rows, then .to("cuda", non_blocking=True);
- zenith pin_memory: zenith.Loader(pin_memory=True) host batches in pinned memory, copied by
           the loop itself with .to("cuda", non_blocking=True) (each host batch kept until its
           copy's event completed: the loader reuses a released batch's memory).

The GPU step is a fixed chain of matmuls (~5 ms alone). GPU busy fraction = steps x (the step's
time alone) / wall time. Prints one JSON object with both runs and the ratios.

    python bench/gpu/train_loop.py OUT_DIR [--rows N] [--dim D] [--batch B] [--steps S]
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import zenith
import zenith.torch as zt


def make_dataset(out: pathlib.Path, rows: int, dim: int) -> pathlib.Path:
    path = out / f"train_{rows}x{dim}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    label = rng.integers(0, 1000, rows, dtype=np.int64)
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim), "label": label})
    pq.write_table(table, path, row_group_size=65536)
    return path


def make_step(dim: int, target_ms: float = 5.0):
    weights = [torch.randn(dim, dim, device="cuda") / dim**0.5 for _ in range(4)]

    def step(x: torch.Tensor) -> torch.Tensor:
        for w in weights:
            x = torch.tanh(x @ w)
        return x

    x = torch.randn(1024, dim, device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        step(x)
    torch.cuda.synchronize()
    one = (time.perf_counter() - start) / 20
    repeats = max(1, round(target_ms / 1000 / one))

    def fixed_step(x: torch.Tensor) -> torch.Tensor:
        for _ in range(repeats):
            x = step(x)
        return x

    return fixed_step


def step_time_alone(step, batch: int, dim: int) -> float:
    x = torch.randn(batch, dim, device="cuda")
    for _ in range(5):
        step(x)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(30):
        step(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / 30


def run(name: str, batches, step, steps: int, alone: float) -> dict:
    it = iter(batches)
    x, _ = next(it)  # warm-up: opening, first batch
    step(x.float())
    torch.cuda.synchronize()
    start = time.perf_counter()
    done = 0
    for x, _label in it:
        step(x)
        done += 1
        if done == steps:
            break
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {
        "loader": name,
        "steps": done,
        "seconds": wall,
        "steps_per_second": done / wall,
        "gpu_busy_fraction": min(1.0, done * alone / wall),
    }


class Rows(torch.utils.data.Dataset):
    def __init__(self, path):
        table = pq.read_table(path)
        dim = table.schema.field("x").type.list_size
        self.x = table.column("x").combine_chunks().values.to_numpy().reshape(-1, dim)
        self.label = table.column("label").to_numpy()

    def __len__(self):
        return len(self.label)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), int(self.label[i])


def torch_batches(path, batch: int):
    loader = torch.utils.data.DataLoader(
        Rows(path), batch_size=batch, shuffle=True, pin_memory=True, num_workers=2, drop_last=True
    )
    while True:
        for x, label in loader:
            yield x.to("cuda", non_blocking=True), label.to("cuda", non_blocking=True)


def zenith_batches(path, batch: int):
    loader = zt.DataLoader(str(path), batch_size=batch, shuffle=True, drop_last=True, keys=("x", "label"), device="cuda:0")
    while True:
        yield from loader


def zenith_pinned_batches(path, batch: int):
    loader = zenith.Loader(
        str(path), batch_size=batch, shuffle=True, drop_last=True, columns=["x", "label"],
        output="dlpack", pin_memory=True,
    )
    held = collections.deque()  # (copy event, host tensors) until the copy finished
    checked = False
    while True:
        for columns in loader:
            x = torch.from_dlpack(columns["x"])
            label = torch.from_dlpack(columns["label"])
            if not checked:
                # The point of pin_memory: the host batch is page-locked, the copy truly async.
                assert x.is_pinned() and label.is_pinned(), "pin_memory batches must be pinned"
                checked = True
            gx, glabel = x.to("cuda", non_blocking=True), label.to("cuda", non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            held.append((event, (x, label, columns)))
            while held and (len(held) > 4 or held[0][0].query()):
                held[0][0].synchronize()
                held.popleft()
            yield gx, glabel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = make_dataset(out, args.rows, args.dim)
    step = make_step(args.dim)
    alone = step_time_alone(step, args.batch, args.dim)
    results = {
        "batch_bytes": args.batch * (args.dim * 4 + 8),
        "step_seconds_alone": alone,
        "zenith": run("zenith device path", zenith_batches(path, args.batch), step, args.steps, alone),
        "torch": run("torch DataLoader pin_memory + .to(non_blocking)", torch_batches(path, args.batch), step, args.steps, alone),
        "zenith_pin_memory": run(
            "zenith Loader pin_memory + .to(non_blocking)", zenith_pinned_batches(path, args.batch), step, args.steps, alone
        ),
    }
    z, t = results["zenith"], results["torch"]
    results["zenith_over_torch_steps_per_second"] = z["steps_per_second"] / t["steps_per_second"]
    results["goal_zenith_busy_at_least_0.95"] = z["gpu_busy_fraction"] >= 0.95
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
