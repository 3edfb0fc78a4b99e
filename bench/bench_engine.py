#!/usr/bin/env python3
"""The event engine side by side with what a Python user would write instead (a benchmark, not a
test: nothing asserts on timing).

One run, for float64 batches of 1, 64 and 1,024 rows, times N events through each contender, all
with 2 worker threads and output in input order, R times round-robin (median reported):

    zenith wasm          zenith.Engine, the normalize WASM plugin (build/plugins/normalize.wasm)
    zenith python        zenith.Engine, a zenith.NativeStage running the numpy transform
    zenith none          zenith.Engine with no stage (the engine's own cost)
    queue numpy          queue.Queue in, 2 threads applying (x - mean) / std with numpy, a
                         queue.Queue out, reordered to input order by the consumer
    queue pyarrow        the same pipeline with pyarrow.compute

and, for the loader stages, one epoch of a 1M-row float64 file (IPC, batches of 1,024):

    loader + wasm stage  zenith.Loader(stages=[Plugin(normalize)]), 2 workers
    loader + queue       zenith.Loader (2 workers) feeding the queue + 2 numpy threads pipeline

Each contender is fed from one thread (publish / put) while the main thread takes results in
order; the clock runs from the first publish to the last result. Ratios are events/s of the
zenith contender over the queue pipeline's in the same repeat.

Usage: bench_engine.py [--events N] [--repeat R] [--quick] [--plugins DIR]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import queue
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
os.environ.setdefault("ZENITH_LIBRARY", str(ROOT / "target" / "release" / "libzenith.so"))

import zenith  # noqa: E402

WORKERS = 2
STOP = object()


def normalize_numpy(batch: pa.RecordBatch) -> pa.RecordBatch:
    x = batch.column(0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):  # 1-row batches: 0 / 0, as the plugin
        return pa.record_batch({"x": (x - x.mean()) / x.std()})


def normalize_pyarrow(batch: pa.RecordBatch) -> pa.RecordBatch:
    x = batch.column(0)
    mean = pc.mean(x)
    std = pc.stddev(x)
    return pa.record_batch({"x": pc.divide(pc.subtract(x, mean), std)})


def batches(rows: int, count: int) -> list:
    rng = np.random.default_rng(rows)
    distinct = [pa.record_batch({"x": rng.normal(3.0, 2.0, rows)}) for _ in range(min(count, 64))]
    return [distinct[i % len(distinct)] for i in range(count)]


def run_engine(events: list, stages) -> float:
    with zenith.Engine(buffer_size=1024, workers=WORKERS, stages=stages) as engine:
        engine.process(events[0])  # started and warm
        start = time.perf_counter()

        def publish():
            for batch in events:
                engine.publish(batch)

        publisher = threading.Thread(target=publish)
        publisher.start()
        for _ in events:
            engine.poll()
        publisher.join()
        return time.perf_counter() - start


def queue_pipeline(source, transform, sink) -> None:
    """What a user writes: a bounded input queue, WORKERS threads transforming, an output queue,
    and the consumer putting results back in input order."""
    inbox: queue.Queue = queue.Queue(maxsize=1024)
    outbox: queue.Queue = queue.Queue()

    def work():
        while True:
            item = inbox.get()
            if item is STOP:
                return
            sequence, batch = item
            outbox.put((sequence, transform(batch)))

    def feed():
        count = 0
        for batch in source:
            inbox.put((count, batch))
            count += 1
        for _ in range(WORKERS):
            inbox.put(STOP)
        outbox.put(("count", count))

    threads = [threading.Thread(target=work) for _ in range(WORKERS)] + [threading.Thread(target=feed)]
    for thread in threads:
        thread.start()
    waiting, next_sequence, total = {}, 0, None
    while total is None or next_sequence < total:
        sequence, value = outbox.get()
        if sequence == "count":
            total = value
            continue
        waiting[sequence] = value
        while next_sequence in waiting:
            sink(waiting.pop(next_sequence))
            next_sequence += 1
    for thread in threads:
        thread.join()


def run_queue(events: list, transform) -> float:
    transform(events[0])  # warm
    start = time.perf_counter()
    queue_pipeline(events, transform, lambda _batch: None)
    return time.perf_counter() - start


def run_loader_stage(path, plugin) -> float:
    start = time.perf_counter()
    with zenith.Loader(path, batch_size=1024, shuffle=False, num_workers=WORKERS, stages=[plugin]) as loader:
        for _batch in loader:
            pass
    return time.perf_counter() - start


def run_loader_queue(path) -> float:
    start = time.perf_counter()
    with zenith.Loader(path, batch_size=1024, shuffle=False, num_workers=WORKERS) as loader:
        queue_pipeline(iter(loader), normalize_numpy, lambda _batch: None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per contender (1,024-row: a quarter)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 events, 1 repeat, 200k-row file")
    parser.add_argument("--plugins", default=os.environ.get("ZENITH_TEST_PLUGINS", str(ROOT / "build" / "plugins")))
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeat = 2_000, 1
    plugin_path = pathlib.Path(args.plugins) / "normalize.wasm"
    if not plugin_path.exists():
        sys.exit(f"{plugin_path} is missing: run `make plugins`")
    plugin = zenith.Plugin(plugin_path)
    python_stage = zenith.NativeStage(normalize_numpy, name="numpy_normalize")

    print(f"engine: {WORKERS} workers, {args.repeat} repeats (median); {os.cpu_count()} CPUs")
    print(f"{'rows':>6} {'contender':<16} {'events/s':>12} {'vs queue numpy':>15} {'vs queue pyarrow':>17}")
    for rows in (1, 64, 1024):
        count = args.events // 4 if rows == 1024 else args.events
        events = batches(rows, count)
        contenders = {
            "zenith wasm": lambda: run_engine(events, [plugin]),
            "zenith python": lambda: run_engine(events, [python_stage]),
            "zenith none": lambda: run_engine(events, []),
            "queue numpy": lambda: run_queue(events, normalize_numpy),
            "queue pyarrow": lambda: run_queue(events, normalize_pyarrow),
        }
        times = {name: [] for name in contenders}
        for _ in range(args.repeat):
            for name, run in contenders.items():
                times[name].append(run())
        rate = {name: count / statistics.median(t) for name, t in times.items()}
        for name in contenders:
            ratios = ""
            if name.startswith("zenith"):
                ratios = f"{rate[name] / rate['queue numpy']:>14.2f}x {rate[name] / rate['queue pyarrow']:>16.2f}x"
            print(f"{rows:>6} {name:<16} {rate[name]:>12.0f} {ratios}")

    file_rows = 200_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = pathlib.Path(tmp) / "floats.arrow"
        table = pa.table({"x": np.random.default_rng(0).normal(3.0, 2.0, file_rows)})
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=65_536)
        loader_times = {"loader + wasm stage": [], "loader + queue": []}
        for _ in range(args.repeat):
            loader_times["loader + wasm stage"].append(run_loader_stage(path, plugin))
            loader_times["loader + queue"].append(run_loader_queue(path))
        print(f"\nloader, one epoch of {file_rows:,} rows in batches of 1,024, {WORKERS} workers:")
        median = {name: statistics.median(t) for name, t in loader_times.items()}
        for name, seconds in median.items():
            print(f"  {name:<20} {file_rows / seconds:>12.0f} rows/s")
        print(f"  ratio loader + wasm stage / loader + queue: {median['loader + queue'] / median['loader + wasm stage']:.2f}x")


if __name__ == "__main__":
    main()
