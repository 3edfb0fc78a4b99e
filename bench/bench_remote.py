"""Remote Parquet epochs from a local S3 server (versitygw over loopback): zenith vs
``pyarrow.dataset`` over ``pyarrow.fs.S3FileSystem`` on the same bucket, one run, ratios; plus
zenith on the same files read locally, requests per epoch and bytes fetched vs file size.

    scripts/s3_server.sh start          # prints PORT
    .venv/bin/python bench/bench_remote.py --port PORT [--rows 2000000] [--files 4]

A benchmark, not a test: it prints numbers and asserts nothing.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyarrow import fs

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bindings" / "python"))
os.environ.setdefault("ZENITH_LIBRARY", str(REPO / "target" / "release" / "libzenith.so"))
import zenith  # noqa: E402

ACCESS, SECRET, BUCKET = "zenith", "zenith-secret-key", "zenith-bench"


def counter(name):
    for line in zenith.metrics_text().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def timed(fn):
    start = time.perf_counter()
    rows = fn()
    return time.perf_counter() - start, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8192)
    args = ap.parse_args()
    s3 = fs.S3FileSystem(access_key=ACCESS, secret_key=SECRET, scheme="http", region="us-east-1",
                         endpoint_override=f"127.0.0.1:{args.port}", allow_bucket_creation=True)
    try:
        s3.create_dir(BUCKET)
    except OSError:
        pass
    local = pathlib.Path(tempfile.mkdtemp(dir=REPO / "target" / "tmp"))
    per_file = args.rows // args.files
    size = 0
    for i in range(args.files):
        n = pa.array(range(i * per_file, (i + 1) * per_file), pa.int64())
        table = pa.table({"id": n, "x": pa.compute.multiply(n, 0.5), "y": pa.compute.cast(n, pa.string())})
        pq.write_table(table, f"{BUCKET}/train/part-{i}.parquet", filesystem=s3, row_group_size=65_536)
        pq.write_table(table, local / f"part-{i}.parquet", row_group_size=65_536)
        size += (local / f"part-{i}.parquet").stat().st_size
    options = {"endpoint": f"http://127.0.0.1:{args.port}", "access_key_id": ACCESS,
               "secret_access_key": SECRET, "region": "us-east-1"}

    def zenith_epoch(path, shuffle, **kw):
        with zenith.Loader(path, batch_size=args.batch, shuffle=shuffle, num_workers=4, **kw) as loader:
            return sum(b.num_rows for b in loader)

    def pyarrow_epoch(shuffle):
        dataset = pads.dataset(f"{BUCKET}/train/", filesystem=s3, format="parquet")
        table = dataset.to_table()
        if shuffle:
            import numpy as np
            table = table.take(np.random.default_rng(0).permutation(table.num_rows))
        return sum(b.num_rows for b in table.to_batches(max_chunksize=args.batch))

    print(f"{args.rows:,} rows in {args.files} files, {size / 1e6:.1f} MB of Parquet")
    for shuffle in (False, True):
        name = "shuffled" if shuffle else "sequential"
        requests, fetched = counter("zenith_remote_requests_total"), counter("zenith_remote_fetched_bytes_total")
        t_zen, rows = timed(lambda: zenith_epoch(f"s3://{BUCKET}/train/", shuffle, storage_options=options))
        requests = counter("zenith_remote_requests_total") - requests
        fetched = counter("zenith_remote_fetched_bytes_total") - fetched
        t_pa, _ = timed(lambda: pyarrow_epoch(shuffle))
        t_local, _ = timed(lambda: zenith_epoch(str(local), shuffle))
        print(f"{name:>10}: zenith s3 {rows / t_zen / 1e6:6.2f} Mrows/s ({t_zen:.2f}s) | pyarrow s3 "
              f"{rows / t_pa / 1e6:6.2f} Mrows/s ({t_pa:.2f}s) | zenith local {rows / t_local / 1e6:6.2f} "
              f"Mrows/s | zenith/pyarrow {t_pa / t_zen:.2f}x | local/s3 {t_zen / t_local:.2f}x | "
              f"{requests:.0f} requests | fetched/file size {fetched / size:.2f}")


if __name__ == "__main__":
    main()
