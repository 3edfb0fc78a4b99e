//! Benchmark (not a test): what decoding Parquet row groups costs, per row group and per epoch.
//! `make bench-parquet` runs it over bench/data/data.parquet; see bench/README.md.
//!
//!     cargo bench -p zenith-core --bench parquet_decode -- --file F [--repeat N]
//!         [--columns a,b] [--workers W] [--only decode|loader]
//!
//! decode: every row group of F decoded on one thread as a loader worker does (the file checked,
//! then `Source::fetch_pieces`: pieces of 8,192 rows, kept until the row group is done), then
//! the same row groups decoded by arrow-rs's own reader in batches of 8,192 rows, also kept
//! (the reference); wall ms and CPU ms per row group, and minor page faults per row group (fresh
//! memory the kernel had to zero: the allocation churn). The bench runs with the allocator
//! libzenith installs (the block cache), as the loader does.
//! loader: one epoch through the loader, dataset order and global shuffle, batches of 1024:
//! rows/s, CPU seconds per million rows, time to first batch.
//! Figures are medians of N runs (default 5), with min-max.

use std::path::{Path, PathBuf};
use std::time::Instant;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use zenith_core::dataset::Source;
use zenith_core::dataset::parquet::ParquetFile;
use zenith_core::loader::ShuffleMode;
use zenith_core::{Loader, LoaderOptions};

/// The allocator libzenith.so and the CLI install: decode buffers are reused across row groups
/// there, so the figures here must be taken with it too.
#[global_allocator]
static ALLOCATOR: zenith_core::runtime::block_cache::BlockCacheAllocator =
    zenith_core::runtime::block_cache::BlockCacheAllocator::new();

struct Args {
    file: PathBuf,
    repeat: usize,
    columns: Option<Vec<String>>,
    workers: usize,
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut file = None;
    let mut args = Args {
        file: PathBuf::new(),
        repeat: 5,
        columns: None,
        workers: 2,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--file" => file = Some(PathBuf::from(value())),
            "--repeat" => args.repeat = value().parse().expect("--repeat N"),
            "--columns" => {
                args.columns = Some(value().split(',').map(str::to_owned).collect());
            }
            "--workers" => args.workers = value().parse().expect("--workers W"),
            "--only" => args.only = Some(value()),
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args.file = file.expect("--file F (a Parquet file) is required");
    args
}

/// This process's (user + system CPU seconds, minor page faults) so far.
fn usage() -> (f64, i64) {
    // SAFETY: getrusage fills the struct.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(usage.ru_utime) + tv(usage.ru_stime), usage.ru_minflt)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// "median (min-max)" of `values`.
fn spread(values: &[f64], digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.digits$} ({min:.digits$}-{max:.digits$})",
        median(values.to_vec())
    )
}

/// Per-run samples: wall ms, CPU ms and minor faults per row group.
#[derive(Default)]
struct Samples {
    wall_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    faults: Vec<f64>,
}

impl Samples {
    fn time(&mut self, row_groups: usize, run: impl FnOnce()) {
        let (cpu0, faults0) = usage();
        let started = Instant::now();
        run();
        let wall = started.elapsed().as_secs_f64();
        let (cpu1, faults1) = usage();
        let n = row_groups.max(1) as f64;
        self.wall_ms.push(wall * 1e3 / n);
        self.cpu_ms.push((cpu1 - cpu0) * 1e3 / n);
        self.faults.push((faults1 - faults0) as f64 / n);
    }

    fn print(&self, label: &str) {
        println!(
            "{label:<28} {:>22} {:>22} {:>22}",
            spread(&self.wall_ms, 2),
            spread(&self.cpu_ms, 2),
            spread(&self.faults, 0)
        );
    }
}

fn projection(file: &ParquetFile, columns: Option<&[String]>) -> Option<Vec<usize>> {
    columns.map(|names| {
        names
            .iter()
            .map(|name| {
                file.schema()
                    .index_of(name)
                    .unwrap_or_else(|_| panic!("no column {name}"))
            })
            .collect()
    })
}

fn bench_decode(args: &Args) {
    let file = ParquetFile::open(&args.file).expect("open the Parquet file");
    let groups = file.chunk_rows().len();
    let rows: u64 = file.chunk_rows().iter().sum();
    let columns = projection(&file, args.columns.as_deref());
    println!(
        "\n== decode: {} ({groups} row groups, {rows} rows), one thread, per row group, median \
         (min-max) of {}",
        args.file.display(),
        args.repeat
    );
    println!(
        "{:<28} {:>22} {:>22} {:>22}",
        "reader", "wall ms", "CPU ms", "minor faults"
    );
    let mut zenith = Samples::default();
    let mut reference = Samples::default();
    let bytes = std::fs::read(&args.file).expect("read the file");
    let bytes = bytes::Bytes::from(bytes);
    for _ in 0..args.repeat {
        zenith.time(groups, || {
            for index in 0..groups {
                file.check_unchanged().unwrap();
                let pieces = file.fetch_pieces(index, columns.as_deref()).unwrap();
                assert_eq!(pieces.num_rows() as u64, file.chunk_rows()[index]);
            }
        });
        reference.time(groups, || {
            for index in 0..groups {
                let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
                let mask = match &columns {
                    Some(c) => ProjectionMask::roots(builder.parquet_schema(), c.iter().copied()),
                    None => ProjectionMask::all(),
                };
                let reader = builder
                    .with_row_groups(vec![index])
                    .with_projection(mask)
                    .with_batch_size(8192)
                    .build()
                    .unwrap();
                let decoded: usize = reader.map(|b| b.unwrap().num_rows()).sum();
                assert_eq!(decoded as u64, file.chunk_rows()[index]);
            }
        });
    }
    zenith.print("zenith fetch_pieces");
    reference.print("arrow-rs, 8192-row batches");
}

fn bench_loader(args: &Args) {
    println!(
        "\n== loader: one epoch, batches of 1024, {} workers, median (min-max) of {}",
        args.workers, args.repeat
    );
    println!(
        "{:<28} {:>22} {:>22} {:>22}",
        "order", "M rows/s", "CPU s / M rows", "first batch ms"
    );
    for (label, mode) in [
        ("dataset order", ShuffleMode::None),
        ("global shuffle", ShuffleMode::Global),
    ] {
        let (mut rate, mut cpu, mut first) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.repeat {
            let mut options = LoaderOptions::default();
            options.set_shuffle(mode);
            options.set_num_workers(args.workers).unwrap();
            options.set_shard(0, 1).unwrap();
            options.set_columns(args.columns.clone()).unwrap();
            let (cpu0, _) = usage();
            let started = Instant::now();
            let loader = Loader::open(&args.file, &options).unwrap();
            let mut rows = 0u64;
            let mut first_at = None;
            while let Some(batch) = loader.next_batch().unwrap() {
                first_at.get_or_insert_with(|| started.elapsed());
                rows += batch.num_rows() as u64;
            }
            let elapsed = started.elapsed().as_secs_f64();
            drop(loader);
            let (cpu1, _) = usage();
            rate.push(rows as f64 / 1e6 / elapsed);
            cpu.push((cpu1 - cpu0) / (rows as f64 / 1e6));
            first.push(first_at.unwrap_or_default().as_secs_f64() * 1e3);
        }
        println!(
            "{label:<28} {:>22} {:>22} {:>22}",
            spread(&rate, 2),
            spread(&cpu, 3),
            spread(&first, 1)
        );
    }
}

fn main() {
    let args = parse_args();
    let path: &Path = &args.file;
    assert!(path.exists(), "{} not found", path.display());
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average at start: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if args.only.as_deref() != Some("loader") {
        bench_decode(&args);
    }
    if args.only.as_deref() != Some("decode") {
        bench_loader(&args);
    }
}
