#!/usr/bin/env python3
"""libzenith side by side with what a user would use instead (a benchmark, not a test).

One run generates the dataset with pyarrow (bench/generate.py, cached), then times one full epoch
per contender, each in its own subprocess so that peak RSS and CPU time are the contender's alone,
R times (default 5) round-robin across the contenders (medians reported):

    zenith ipc shuffled        global shuffle over data.arrow (mmap)
    pyarrow ipc take           memory_map + read_all + combine_chunks, Table.take per batch
                               of a global numpy permutation
    zenith ipc sequential      no shuffle over data.arrow
    pyarrow ipc sequential     memory_map + read_all, Table.to_batches(max_chunksize=B)
    zenith parquet sequential  no shuffle over data.parquet
    pyarrow iter_batches       ParquetFile.iter_batches(batch_size=B)
    zenith parquet shuffled    global shuffle over data.parquet
    pyarrow parquet take       read_table + combine_chunks, Table.take per batch
    zenith shards shuffled     global shuffle over shards/ (8 Parquet files)
    pyarrow dataset take       pyarrow.dataset(shards/).to_table() + combine_chunks, take
    torch DataLoader           (when torch is installed) DataLoader(num_workers=W) over data.arrow,
                               BatchSampler(RandomSampler), each worker Table.take per batch

Every contender hands out pyarrow.RecordBatch objects and the timing loop touches each one the
same way (num_rows, nbytes, one value of the id column). Time to first batch runs from the first
call that opens or constructs anything to the first batch in hand; epoch time from the same start
to the last batch. A ratio is rows/s(zenith) / rows/s(baseline) within one repeat (the two ran
seconds apart), the median over repeats; CPU/row is the baseline's CPU per row over zenith's.

Usage: bench_loader.py [--rows N] [--batch-size B] [--workers W] [--repeat R] [--quick]
                       [--json PATH] [--only NAME[,NAME]] [--data-dir DIR]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SEED = 0

# name -> label, in the order they run and print
CONTENDERS = {
    "zenith_ipc_shuffled": "zenith ipc shuffled",
    "zenith_ipc_shuffled_pinned": "zenith ipc shuffled, numa 0",
    "pyarrow_ipc_take": "pyarrow ipc take",
    "zenith_ipc_seq": "zenith ipc sequential",
    "pyarrow_ipc_seq": "pyarrow ipc sequential",
    "zenith_parquet_seq": "zenith parquet sequential",
    "pyarrow_parquet_iter_batches": "pyarrow iter_batches",
    "zenith_parquet_shuffled": "zenith parquet shuffled",
    "pyarrow_parquet_take": "pyarrow parquet take",
    "zenith_shards_shuffled": "zenith shards shuffled",
    "pyarrow_dataset_take": "pyarrow dataset take",
    "torch_dataloader": "torch DataLoader",
}

# (title, zenith contender, baseline contender, goal text, goal ratio or None)
COMPARISONS = [
    ("shuffled IPC epoch vs Table.take", "zenith_ipc_shuffled", "pyarrow_ipc_take", ">= 2x", 2.0),
    ("sequential Parquet vs iter_batches", "zenith_parquet_seq", "pyarrow_parquet_iter_batches", ">= 1.5x", 1.5),
    ("shuffled Parquet vs read_table+take", "zenith_parquet_shuffled", "pyarrow_parquet_take", ">= 2x", 2.0),
    ("shuffled 8 shards vs dataset+take", "zenith_shards_shuffled", "pyarrow_dataset_take", "(none)", None),
    ("sequential IPC vs to_batches", "zenith_ipc_seq", "pyarrow_ipc_seq", "(none)", None),
    ("shuffled IPC vs torch DataLoader", "zenith_ipc_shuffled", "torch_dataloader", "(none)", None),
    # Workers pinned to NUMA node 0 and batches allocated there, against the same run unpinned.
    # On a one-node machine this measures the cost of pinning and of the copy into node memory.
    ("shuffled IPC pinned to numa 0 vs unpinned", "zenith_ipc_shuffled_pinned", "zenith_ipc_shuffled", "(none)", None),
]

TTFB_GOAL_MS = 10.0


# ================================================================================================
# Child side: one contender, one epoch, one JSON line on stdout.
# ================================================================================================


def _consume(batches, t_start: float) -> dict:
    """The same loop for every contender: count rows and bytes, read one id per batch."""
    from time import perf_counter

    rows = nbytes = nbatches = id_sum = 0
    ttfb = None
    for batch in batches:
        if ttfb is None:
            ttfb = perf_counter() - t_start
        rows += batch.num_rows
        nbytes += batch.nbytes
        id_sum += batch.column(0)[0].as_py()
        nbatches += 1
    elapsed = perf_counter() - t_start
    return {"rows": rows, "bytes": nbytes, "batches": nbatches, "ttfb_s": ttfb, "epoch_s": elapsed}


def _take_batches(table, batch_size: int, seed: int):
    """Table.take per batch of one global permutation (the permutation is part of the work)."""
    import numpy as np

    perm = np.random.default_rng(seed).permutation(table.num_rows)
    for start in range(0, table.num_rows, batch_size):
        yield table.take(perm[start : start + batch_size]).to_batches()[0]


def _zenith(path, shuffle, args, numa_node=None):
    import zenith_ctypes as z

    out = {}

    def gen():
        with z.Loader(
            path,
            batch_size=args.batch_size,
            shuffle=shuffle,
            seed=SEED,
            num_workers=args.workers,
            numa_node=numa_node,
        ) as loader:
            yield from loader.reader()
            out["stats"] = loader.stats()

    return gen(), out


class _TorchArrowDataset:
    """Map-style dataset over the IPC file; __getitem__ takes a list of indices (a whole batch,
    from a BatchSampler) and returns a pyarrow.RecordBatch. Each worker maps the file itself."""

    def __init__(self, path: str, rows: int):
        self.path = path
        self.rows = rows
        self.table = None

    def __len__(self):
        return self.rows

    def __getitem__(self, indices):
        import pyarrow as pa
        import pyarrow.ipc as ipc

        if self.table is None:
            # combine_chunks: Table.take over a multi-chunk table concatenates every call.
            self.table = ipc.open_file(pa.memory_map(self.path)).read_all().combine_chunks()
        return self.table.take(indices).to_batches()[0]


def _peak_rss_bytes() -> int:
    """This process's peak RSS: VmHWM, which execve resets (ru_maxrss keeps the parent's peak
    across fork+exec on Linux, so it would report the benchmark driver's memory)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _torch_identity(batch):
    return batch


def run_child(name: str, args) -> dict:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    d = args.data_dir
    ipc_path = os.path.join(d, "data.arrow")
    pq_path = os.path.join(d, "data.parquet")
    shard_dir = os.path.join(d, "shards")
    extra = {}

    if name.startswith("zenith_"):
        import zenith_ctypes as z

        z.lib()  # load the library before the clock starts, as pyarrow is imported before it
        path, shuffle = {
            "zenith_ipc_shuffled": (ipc_path, z.ZENITH_SHUFFLE_GLOBAL),
            "zenith_ipc_shuffled_pinned": (ipc_path, z.ZENITH_SHUFFLE_GLOBAL),
            "zenith_ipc_seq": (ipc_path, z.ZENITH_SHUFFLE_NONE),
            "zenith_parquet_seq": (pq_path, z.ZENITH_SHUFFLE_NONE),
            "zenith_parquet_shuffled": (pq_path, z.ZENITH_SHUFFLE_GLOBAL),
            "zenith_shards_shuffled": (shard_dir, z.ZENITH_SHUFFLE_GLOBAL),
        }[name]
    elif name == "torch_dataloader":
        try:
            import torch  # noqa: F401
            from torch.utils.data import BatchSampler, DataLoader, RandomSampler
        except ImportError as e:
            return {"status": "skipped", "message": f"torch not installed ({e})"}
        extra["torch"] = torch.__version__

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    ruc0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        if name.startswith("zenith_"):
            numa_node = 0 if name.endswith("_pinned") else None
            batches, out = _zenith(path, shuffle, args, numa_node)
            res = _consume(batches, t0)
            stats = out["stats"]
            res["zenith_stats"] = stats
            res["shuffle_mode"] = z.SHUFFLE_NAMES.get(stats["shuffle_mode"], stats["shuffle_mode"])
        elif name == "pyarrow_ipc_take":

            def gen():
                table = ipc.open_file(pa.memory_map(ipc_path)).read_all().combine_chunks()
                yield from _take_batches(table, args.batch_size, SEED)

            res = _consume(gen(), t0)
        elif name == "pyarrow_ipc_seq":

            def gen():
                table = ipc.open_file(pa.memory_map(ipc_path)).read_all()
                yield from table.to_batches(max_chunksize=args.batch_size)

            res = _consume(gen(), t0)
        elif name == "pyarrow_parquet_iter_batches":
            res = _consume(pq.ParquetFile(pq_path).iter_batches(batch_size=args.batch_size), t0)
        elif name == "pyarrow_parquet_take":

            def gen():
                table = pq.read_table(pq_path).combine_chunks()
                yield from _take_batches(table, args.batch_size, SEED)

            res = _consume(gen(), t0)
        elif name == "pyarrow_dataset_take":

            def gen():
                table = ds.dataset(shard_dir, format="parquet").to_table().combine_chunks()
                yield from _take_batches(table, args.batch_size, SEED)

            res = _consume(gen(), t0)
        elif name == "torch_dataloader":
            dataset = _TorchArrowDataset(ipc_path, args.rows)
            sampler = BatchSampler(
                RandomSampler(dataset, generator=torch.Generator().manual_seed(SEED)),
                batch_size=args.batch_size,
                drop_last=False,
            )
            loader = DataLoader(
                dataset,
                sampler=sampler,
                batch_size=None,
                num_workers=args.workers,
                collate_fn=_torch_identity,
            )
            res = _consume(iter(loader), t0)
            del loader
        else:
            raise SystemExit(f"unknown contender {name}")
    except Exception as e:  # noqa: BLE001
        code = getattr(e, "code", None)
        if name.startswith("zenith_") and code == -6:
            return {"status": "unsupported", "message": str(e)}
        raise
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    ruc1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    cpu += (ruc1.ru_utime - ruc0.ru_utime) + (ruc1.ru_stime - ruc0.ru_stime)
    peak = _peak_rss_bytes()
    if name == "torch_dataloader":
        # Workers are separate processes: add the largest worker's peak once per worker (an upper
        # bound; a forked worker's ru_maxrss also counts pages it shares with this process).
        peak += ruc1.ru_maxrss * 1024 * args.workers
        extra["rss_note"] = "parent + workers x largest worker"
    res.update(status="ok", cpu_s=cpu, peak_rss_bytes=peak, **extra)
    return res


# ================================================================================================
# Parent side.
# ================================================================================================


def _fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f} "


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _system_info(args) -> dict:
    import pyarrow as pa

    import zenith_ctypes as z

    try:
        import torch

        torch_v = torch.__version__
    except ImportError:
        torch_v = None
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        zv = z.version()
    except OSError as e:
        raise SystemExit(f"bench: cannot load libzenith: {e}")
    return {
        "zenith": zv,
        "zenith_lib": str(z.library_path()),
        "zenith_lib_sha256": _sha256(z.library_path())[:16],
        "pyarrow": pa.__version__,
        "python": platform.python_version(),
        "torch": torch_v,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "loadavg_start": os.getloadavg(),
        "rows": args.rows,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "repeat": args.repeat,
    }


def _snapshot_library() -> str:
    """Copies libzenith.so into a temporary directory (removed at exit); returns that directory."""
    import atexit
    import shutil
    import tempfile

    import zenith_ctypes as z

    src = z.library_path()
    if not src.exists():
        raise SystemExit(f"bench: {src} not found: run `make build` (or set ZENITH_LIB_DIR)")
    snap = tempfile.mkdtemp(prefix="zenith-bench-lib-")
    atexit.register(shutil.rmtree, snap, True)
    shutil.copy2(src, os.path.join(snap, "libzenith.so"))
    return snap


def _warm_page_cache(data_dir: str) -> None:
    """Reads every file once so every contender starts from a warm page cache."""
    for root, _dirs, files in os.walk(data_dir):
        if os.path.relpath(root, data_dir).startswith("rows-"):
            continue
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(1 << 24):
                    pass


def _run_one(name: str, args) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        name,
        "--data-dir",
        args.data_dir,
        "--batch-size",
        str(args.batch_size),
        "--workers",
        str(args.workers),
        "--rows",
        str(args.rows),
    ]
    env = dict(os.environ)
    # pyarrow imports numpy, whose OpenBLAS starts one spinning thread per core; no contender uses
    # BLAS, and on a 2-core machine those threads steal time from the loaders. Same for everyone.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        return {"status": "error", "message": (proc.stderr.strip().splitlines() or ["?"])[-1], "stderr": proc.stderr}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(runs: list, rows_expected: int) -> dict:
    first = runs[0]
    if first["status"] != "ok":
        return {"status": first["status"], "message": first.get("message", "")}
    ok = [r for r in runs if r["status"] == "ok"]
    for r in ok:
        if r["rows"] != rows_expected:
            raise SystemExit(f"bench: a contender delivered {r['rows']} rows, expected {rows_expected}")
    rps = [r["rows"] / r["epoch_s"] for r in ok]
    s = {
        "status": "ok",
        "repeats": len(ok),
        "rows": ok[0]["rows"],
        "batches": ok[0]["batches"],
        "bytes": ok[0]["bytes"],
        "epoch_s": _median([r["epoch_s"] for r in ok]),
        "rows_per_s": _median(rps),
        "rows_per_s_min": min(rps),
        "rows_per_s_max": max(rps),
        "gb_per_s": _median([r["bytes"] / r["epoch_s"] / 1e9 for r in ok]),
        "ttfb_ms": _median([r["ttfb_s"] * 1e3 for r in ok]),
        "peak_rss_mb": _median([r["peak_rss_bytes"] / 1e6 for r in ok]),
        "cpu_s_per_mrows": _median([r["cpu_s"] / (r["rows"] / 1e6) for r in ok]),
        "runs": ok,
    }
    if "zenith_stats" in ok[0]:
        st = [r["zenith_stats"] for r in ok]
        s["shuffle_mode"] = ok[0]["shuffle_mode"]
        s["consumer_wait_us_per_batch"] = _median([x["consumer_wait_ns"] / 1e3 / max(x["batches"], 1) for x in st])
        s["consumer_wait_ms"] = _median([x["consumer_wait_ns"] / 1e6 for x in st])
        s["worker_busy_ms"] = _median([x["worker_busy_ns"] / 1e6 for x in st])
        s["decode_ms"] = _median([x["decode_ns"] / 1e6 for x in st])
        s["chunks_decoded"] = st[0]["chunks_decoded"]
        s["lib_ttfb_ms"] = _median([x["time_to_first_batch_ns"] / 1e6 for x in st])
    return s


def _unsupported_text(name: str, result: dict) -> str:
    """What a contender that this build cannot serve (ZENITH_ERR_UNSUPPORTED) prints."""
    if "parquet" in name or "shards" in name:
        return "n/a (Parquet not supported by this build)"
    return f"n/a ({result.get('message', 'unsupported')})"


def print_report(info: dict, results: dict, comparisons: list) -> None:
    p = print
    p()
    p(
        f"libzenith {info['zenith']} vs pyarrow {info['pyarrow']} (python {info['python']}); "
        f"{info['rows']:,} rows, batch {info['batch_size']}, {info['workers']} workers, "
        f"median of {info['repeat']}"
    )
    p(f"library: {info['zenith_lib_source']} (sha256 {info['zenith_lib_sha256']}, copied for the run)")
    la = info["loadavg_start"]
    le = info.get("loadavg_end", la)
    p(
        f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load average (1, 5, 15 min) at start "
        f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, at end {le[0]:.2f} {le[1]:.2f} {le[2]:.2f}; "
        "warm page cache, OPENBLAS_NUM_THREADS=1"
    )
    p()
    hdr = (
        f"{'contender':<27} {'rows/s':>9} {'spread':>7} {'GB/s':>6} {'1st batch':>10} "
        f"{'peak RSS':>9} {'CPU s/Mrow':>10} {'wait/batch':>11}"
    )
    p(hdr)
    p("-" * len(hdr))
    for name, label in CONTENDERS.items():
        r = results.get(name)
        if r is None:
            continue
        if r["status"] == "unsupported":
            p(f"{label:<27} {_unsupported_text(name, r)}")
            continue
        if r["status"] == "skipped":
            p(f"{label:<27} skipped: {r['message']}")
            continue
        if r["status"] != "ok":
            p(f"{label:<27} error: {r['message']}")
            continue
        spread = (r["rows_per_s_max"] - r["rows_per_s_min"]) / r["rows_per_s"] * 100
        wait = f"{r['consumer_wait_us_per_batch']:.0f} us" if "consumer_wait_us_per_batch" in r else "-"
        p(
            f"{label:<27} {_fmt_rate(r['rows_per_s']):>9} {spread:>6.0f}% {r['gb_per_s']:>6.2f} "
            f"{r['ttfb_ms']:>7.1f} ms {r['peak_rss_mb']:>6.0f} MB {r['cpu_s_per_mrows']:>10.2f} {wait:>11}"
        )
    p()
    p("zenith_loader_stats (median):")
    for name, label in CONTENDERS.items():
        r = results.get(name)
        if r and r["status"] == "ok" and "worker_busy_ms" in r:
            p(
                f"  {label:<27} shuffle={r['shuffle_mode']:<6} consumer_wait {r['consumer_wait_ms']:7.1f} ms  "
                f"worker_busy {r['worker_busy_ms']:7.1f} ms  decode {r['decode_ms']:7.1f} ms  "
                f"chunks {r['chunks_decoded']}  lib ttfb {r['lib_ttfb_ms']:.1f} ms"
            )
    p()
    p(f"{'comparison (rows/s zenith / baseline)':<38} {'ratio':>8}  {'goal':<7} {'met':<4} {'range':<13} {'CPU/row':>7}")
    for c in comparisons:
        ratio = c["ratio"]
        if ratio is None:
            p(f"{c['title']:<38} {'n/a':>8}  {c['goal']:<7} {'':<4} {c['why']}")
        else:
            met = "" if c["goal_ratio"] is None else ("yes" if ratio >= c["goal_ratio"] else "NO")
            rng = f"{c['ratio_min']:.2f}-{c['ratio_max']:.2f}x"
            p(f"{c['title']:<38} {ratio:>7.2f}x  {c['goal']:<7} {met:<4} {rng:<13} {c['cpu_ratio']:>6.2f}x")
    for name in ("zenith_ipc_shuffled", "zenith_ipc_seq", "zenith_parquet_shuffled"):
        r = results.get(name)
        if r and r["status"] == "ok":
            # The goal is set for shuffled IPC; the others are reported alongside.
            goal = name == "zenith_ipc_shuffled"
            met = ("yes" if r["ttfb_ms"] < TTFB_GOAL_MS else "NO") if goal else ""
            title = f"time to first batch, {CONTENDERS[name].replace('zenith ', '')}"
            p(f"{title:<38} {r['ttfb_ms']:>5.1f} ms  {'< 10 ms' if goal else '(none)':<7} {met:<4}")
    torch_r = results.get("torch_dataloader")
    if torch_r and torch_r["status"] == "skipped":
        p(f"torch: {torch_r['message']}; the DataLoader comparison was skipped")
    p()
    p(
        "rows/s, GB/s (sum of RecordBatch.nbytes / epoch time), 1st batch (open to first batch in hand), "
        "peak RSS (child VmHWM, mapped file pages included), CPU s/Mrow (user+sys) are medians; spread = (max-min)/median of rows/s; "
        "wait/batch = zenith consumer_wait_ns / batches. ratio = median over repeats of zenith's rows/s over "
        "the baseline's in the same repeat (range: min-max); CPU/row = baseline CPU s/Mrow over zenith's. "
        "Goals are targets, not pass/fail checks."
    )
    cpus = info["cpus"] or 1
    peak_load = max(info["loadavg_start"][0], info.get("loadavg_end", (0,))[0])
    if peak_load > cpus:
        p(
            f"note: the 1-minute load average reached {peak_load:.1f} on {cpus} CPUs: other work competed for "
            "the cores, so wall-clock rows/s (and the parallel workers' advantage) are understated and noisy; "
            "the CPU/row ratio is the steadier signal."
        )


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=None, help="rows in the dataset (default 1,000,000)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5, help="epochs per contender; the median is reported")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100,000 rows, 1 repeat")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--only", help="comma-separated contender names (see the list above)")
    ap.add_argument("--data-dir", help="dataset cache (default bench/data, bench/data/rows-N when N != 1M)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rows is None:
        args.rows = 100_000 if args.quick else 1_000_000
    if args.quick and "--repeat" not in (argv or sys.argv):
        args.repeat = 1
    if args.data_dir is None:
        base = os.path.join(HERE, "data")
        args.data_dir = base if args.rows == 1_000_000 else os.path.join(base, f"rows-{args.rows}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args)))
        return

    import generate

    names = list(CONTENDERS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = [n for n in names if n not in CONTENDERS]
        if unknown:
            raise SystemExit(f"bench: unknown contender(s) {unknown}; choose from {list(CONTENDERS)}")

    # Others may rebuild target/release while this runs: every child loads one private copy of
    # the library, so all repeats measure the same build.
    import zenith_ctypes as z

    source = str(z.library_path())
    snapshot = _snapshot_library()
    os.environ["ZENITH_LIB_DIR"] = snapshot
    info = _system_info(args)
    info["zenith_lib_source"] = source
    generate.generate(args.data_dir, args.rows, SEED)
    _warm_page_cache(args.data_dir)

    runs = {n: [] for n in names}
    done = set()  # contenders that cannot run (unsupported, skipped, failed): not repeated
    t_start = time.perf_counter()
    for rep in range(args.repeat):
        for name in names:
            if name in done:
                continue
            r = _run_one(name, args)
            runs[name].append(r)
            if r["status"] != "ok":
                done.add(name)
                if r["status"] == "error":
                    print(f"bench: {name} failed:\n{r.get('stderr', '')}", file=sys.stderr)
            else:
                print(
                    f"  [{rep + 1}/{args.repeat}] {name:<30} {r['rows'] / r['epoch_s'] / 1e6:6.2f} M rows/s  "
                    f"1st batch {r['ttfb_s'] * 1e3:7.1f} ms",
                    flush=True,
                )
    info["bench_wall_s"] = time.perf_counter() - t_start
    info["loadavg_end"] = os.getloadavg()
    results = {n: summarize(runs[n], args.rows) for n in names}

    comparisons = []
    for title, zname, bname, goal, goal_ratio in COMPARISONS:
        zr, br = results.get(zname), results.get(bname)
        c = {"title": title, "zenith": zname, "baseline": bname, "goal": goal, "goal_ratio": goal_ratio}
        if zr is None or br is None:
            continue
        if zr["status"] == "ok" and br["status"] == "ok":
            # Paired: repeat i of zenith against repeat i of the baseline, which ran right next to
            # it, so a load change on a shared machine hits both sides of a pair alike.
            pairs = [
                (z["rows"] / z["epoch_s"]) / (b["rows"] / b["epoch_s"]) for z, b in zip(zr["runs"], br["runs"])
            ]
            c["ratio"] = statistics.median(pairs)
            c["ratio_min"], c["ratio_max"] = min(pairs), max(pairs)
            c["ratio_of_medians"] = zr["rows_per_s"] / br["rows_per_s"]
            # CPU used per row, baseline over zenith: > 1 means zenith spends less CPU per row.
            c["cpu_ratio"] = br["cpu_s_per_mrows"] / zr["cpu_s_per_mrows"]
        else:
            c["ratio"] = None
            bad = zr if zr["status"] != "ok" else br
            bad_name = zname if zr["status"] != "ok" else bname
            c["why"] = (
                _unsupported_text(bad_name, bad).removeprefix("n/a ")
                if bad["status"] == "unsupported"
                else f"({bad['message']})"
            )
        comparisons.append(c)

    print_report(info, results, comparisons)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": results, "comparisons": comparisons}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
