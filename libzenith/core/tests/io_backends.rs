//! The I/O backends (mmap, io_uring, pread; buffered and `O_DIRECT`) deliver identical batches
//! over pyarrow's Parquet, CSV and Arrow IPC test files, report themselves in the loader's stats, fail the
//! same way on broken files, and feed the process-wide telemetry.
//!
//! io_uring is used where this kernel allows it; where it does not, the loader falls back to
//! pread, and [`uring_here`] prints a NOTE saying so (the fallback itself is tested in
//! `io_uring_unavailable.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use common::data_file;
use zenith_core::dataset::Source;
use zenith_core::dataset::parquet::ParquetFile;
use zenith_core::loader::ShuffleMode;
use zenith_core::loader::stats::Snapshot;
use zenith_core::runtime::io::{IoBackend, IoContext, IoOptions, IoStats, open_reader};
use zenith_core::telemetry::prometheus_text;
use zenith_core::{Loader, LoaderOptions};

/// The backend an io_uring request gets on this machine (io_uring, or pread with a NOTE).
fn uring_here() -> IoBackend {
    let stats = Arc::new(IoStats::new(IoBackend::IoUring));
    let options = IoOptions {
        backend: IoBackend::IoUring,
        ..IoOptions::default()
    };
    let reader = open_reader(&data_file("basic.parquet"), &options, &stats).unwrap();
    if reader.backend() != IoBackend::IoUring {
        eprintln!(
            "NOTE: io_uring is unavailable here ({}); io_uring requests ran on pread",
            stats.notes().unwrap_or_default()
        );
    }
    reader.backend()
}

/// Every variant: (backend, O_DIRECT).
const VARIANTS: [(IoBackend, bool); 5] = [
    (IoBackend::Mmap, false),
    (IoBackend::IoUring, false),
    (IoBackend::IoUring, true),
    (IoBackend::Pread, false),
    (IoBackend::Pread, true),
];

fn read_epoch(
    path: &Path,
    backend: IoBackend,
    direct: bool,
    shuffle: ShuffleMode,
    workers: usize,
    columns: Option<&[&str]>,
) -> (Vec<RecordBatch>, Snapshot, Option<String>) {
    let mut options = LoaderOptions::default();
    options.set_batch_size(700).unwrap();
    options.set_shuffle(shuffle);
    options.set_seed(7);
    options.set_num_workers(workers).unwrap();
    options.set_shard(0, 1).unwrap();
    options
        .set_columns(columns.map(|c| c.iter().map(|s| s.to_string()).collect()))
        .unwrap();
    options.set_io_backend(backend);
    options.set_io_direct(direct);
    let loader = Loader::open(path, &options).unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        batches.push(batch.data);
    }
    (batches, loader.stats(), loader.io_fallback_reason())
}

fn parquet_datasets() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = ["snappy", "zstd", "lz4", "gzip", "none"]
        .iter()
        .map(|codec| data_file(&format!("parquet/basic.{codec}.parquet")))
        .collect();
    paths.push(data_file("basic.parquet"));
    paths.push(data_file("shards"));
    paths
}

#[test]
fn parquet_batches_are_identical_for_every_backend() {
    let uring = uring_here();
    for path in parquet_datasets() {
        for (shuffle, workers, columns) in [
            (ShuffleMode::None, 0, None),
            (ShuffleMode::Global, 2, None),
            (ShuffleMode::Block, 1, Some(&["name", "id"][..])),
        ] {
            let (expected, mmap_stats, _) =
                read_epoch(&path, IoBackend::Mmap, false, shuffle, workers, columns);
            assert!(!expected.is_empty());
            assert_eq!(mmap_stats.io_backend, IoBackend::Mmap);
            assert!(mmap_stats.io_read_bytes > 0);
            for (backend, direct) in VARIANTS {
                let (got, stats, reason) =
                    read_epoch(&path, backend, direct, shuffle, workers, columns);
                let what = format!("{} {backend} direct={direct} {shuffle:?}", path.display());
                assert_eq!(got, expected, "{what}");
                let used = if backend == IoBackend::IoUring {
                    uring
                } else {
                    backend
                };
                assert_eq!(stats.io_backend, used, "{what}: {reason:?}");
                assert_eq!(stats.io_backend_requested, backend, "{what}");
                assert_eq!(reason.is_some(), used != backend, "{what}: {reason:?}");
                assert!(stats.io_read_bytes > 0, "{what}");
                if backend != IoBackend::Mmap {
                    assert!(stats.io_read_ns > 0, "{what}");
                }
            }
        }
    }
}

#[test]
fn projections_read_only_the_column_chunks_they_need() {
    let path = data_file("parquet/basic.none.parquet");
    let (_, all, _) = read_epoch(&path, IoBackend::Pread, false, ShuffleMode::None, 0, None);
    let (_, one, _) = read_epoch(
        &path,
        IoBackend::Pread,
        false,
        ShuffleMode::None,
        0,
        Some(&["flag"]),
    );
    // The footer is read either way; the column data only for the projection.
    assert!(
        one.io_read_bytes * 3 < all.io_read_bytes,
        "{} vs {}",
        one.io_read_bytes,
        all.io_read_bytes
    );
}

#[test]
fn csv_batches_are_identical_for_every_backend() {
    let uring = uring_here();
    for name in ["basic.csv", "large.csv"] {
        let path = data_file(name);
        let (expected, _, _) =
            read_epoch(&path, IoBackend::Mmap, false, ShuffleMode::Global, 2, None);
        for (backend, direct) in VARIANTS {
            let (got, stats, _) = read_epoch(&path, backend, direct, ShuffleMode::Global, 2, None);
            assert_eq!(got, expected, "{name} {backend} direct={direct}");
            let used = if backend == IoBackend::IoUring {
                uring
            } else {
                backend
            };
            assert_eq!(stats.io_backend, used);
            let size = std::fs::metadata(&path).unwrap().len();
            assert_eq!(stats.io_read_bytes, size, "{name}: the whole file, once");
        }
    }
}

#[test]
fn arrow_ipc_files_follow_the_io_backend() {
    // Mapped by default; read into memory with pread and io_uring (same batches either way).
    let uring = uring_here();
    for name in ["basic.arrow", "basic.arrows"] {
        let (mapped, stats, _) = read_epoch(
            &data_file(name),
            IoBackend::Mmap,
            false,
            ShuffleMode::None,
            0,
            None,
        );
        assert_eq!(stats.io_backend, IoBackend::Mmap, "{name}");
        for (backend, expected) in [
            (IoBackend::Pread, IoBackend::Pread),
            (IoBackend::IoUring, uring),
        ] {
            let (read, stats, _) =
                read_epoch(&data_file(name), backend, false, ShuffleMode::None, 0, None);
            assert_eq!(stats.io_backend, expected, "{name}");
            assert_eq!(stats.io_backend_requested, backend, "{name}");
            assert!(stats.io_read_bytes > 0, "{name}");
            assert_eq!(read, mapped, "{name}: {backend}");
        }
    }
}

#[test]
fn broken_files_fail_alike_on_every_backend() {
    for (backend, direct) in VARIANTS {
        let io = IoContext::new(IoOptions {
            backend,
            direct,
            ..IoOptions::default()
        });
        for name in [
            "truncated.parquet",
            "corrupt_footer.parquet",
            "not_a_dataset.bin",
        ] {
            let err = ParquetFile::open_with(&data_file(name), &io).unwrap_err();
            assert_eq!(
                err.kind(),
                zenith_core::ErrorKind::Format,
                "{name} {backend}: {err}"
            );
        }
        let corrupt = ParquetFile::open_with(&data_file("corrupt.parquet"), &io).unwrap();
        let err = corrupt.read_chunk(0, None).unwrap_err();
        assert_eq!(
            err.kind(),
            zenith_core::ErrorKind::Format,
            "{backend}: {err}"
        );
        assert!(err.to_string().contains("row group 0"), "{err}");
        // The other row groups are intact.
        assert!(corrupt.read_chunk(1, None).is_ok());
    }
}

/// The value of the sample `name` (with its label set, as rendered) in the registry's text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name}"))
        .parse()
        .unwrap()
}

#[test]
fn reads_and_batches_feed_the_process_registry() {
    let path = data_file("basic.parquet");
    let before = prometheus_text();
    let (batches, stats, _) =
        read_epoch(&path, IoBackend::Pread, false, ShuffleMode::Global, 2, None);
    let after = prometheus_text();
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    // Other tests run at the same time in this process: the registry grows at least by ours.
    assert!(delta("zenith_io_read_bytes_total{backend=\"pread\"}") >= stats.io_read_bytes as f64);
    assert!(delta("zenith_io_read_seconds_count{backend=\"pread\"}") >= 1.0);
    assert!(delta("zenith_loader_batches_total") >= batches.len() as f64);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert!(delta("zenith_loader_rows_total") >= rows as f64);
    assert!(delta("zenith_loader_time_to_first_batch_seconds_count") >= 1.0);
    assert!(delta("zenith_loader_worker_busy_seconds_total") > 0.0);
    let inf = sample(
        &after,
        "zenith_loader_consumer_wait_seconds_bucket{le=\"+Inf\"}",
    );
    assert_eq!(
        inf,
        sample(&after, "zenith_loader_consumer_wait_seconds_count")
    );
}
