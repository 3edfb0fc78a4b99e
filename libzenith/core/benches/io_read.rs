//! Benchmark (not a test): file read throughput through each I/O backend, cold and warm page
//! cache, and Parquet loader throughput per backend. `make bench-io` runs it; see
//! bench/README.md for the numbers' meaning.
//!
//!     cargo bench -p zenith-core --bench io_read -- --file F [--parquet P] [--repeat N]
//!         [--block-mib B] [--drop-caches] [--only raw|parquet]
//!
//! Raw reads: the whole file, front to back, in blocks of B MiB (default 8), one `read_ranges`
//! call per block; every byte is summed as u64 words so that mmap's page faults are paid for
//! like the others' copies. Cold cache: before each run the file's pages are evicted with
//! `posix_fadvise(POSIX_FADV_DONTNEED)` (no privileges needed; `--drop-caches` also writes
//! /proc/sys/vm/drop_caches, for the whole machine, where permitted), and `mincore` checks how
//! much of the file stayed resident. The median of N runs (default 3) is reported.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zenith_core::loader::ShuffleMode;
use zenith_core::runtime::io::{
    IoBackend, IoOptions, IoStats, RangeRead, fixed_buffers_registered, open_reader,
};
use zenith_core::{Loader, LoaderOptions};

struct Args {
    file: Option<PathBuf>,
    parquet: Option<PathBuf>,
    repeat: usize,
    block: u64,
    drop_caches: bool,
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        file: None,
        parquet: None,
        repeat: 3,
        block: 8 << 20,
        drop_caches: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--file" => args.file = Some(value().into()),
            "--parquet" => args.parquet = Some(value().into()),
            "--repeat" => args.repeat = value().parse().expect("--repeat N"),
            "--block-mib" => args.block = value().parse::<u64>().expect("--block-mib B") << 20,
            "--drop-caches" => args.drop_caches = true,
            "--only" => args.only = Some(value()),
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// Evicts `path` from the page cache; returns the fraction still resident afterwards.
fn evict(path: &Path, drop_caches: bool) -> f64 {
    let file = File::open(path).unwrap();
    // SAFETY: plain syscalls on an open descriptor.
    unsafe {
        libc::fdatasync(file.as_raw_fd());
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    if drop_caches && std::fs::write("/proc/sys/vm/drop_caches", "1").is_err() {
        eprintln!("(drop_caches not permitted; fadvise only)");
    }
    resident(&file)
}

/// The fraction of `file`'s pages in the page cache (mincore over a mapping of it).
fn resident(file: &File) -> f64 {
    let len = file.metadata().unwrap().len() as usize;
    if len == 0 {
        return 0.0;
    }
    // SAFETY: a read-only mapping used only by mincore, unmapped below.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED);
        let pages = len.div_ceil(4096);
        let mut vec = vec![0u8; pages];
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        libc::munmap(addr, len);
        assert_eq!(rc, 0);
        vec.iter().filter(|&&b| b & 1 == 1).count() as f64 / pages as f64
    }
}

/// Sums the bytes as u64 words (so every byte is loaded).
fn consume(bytes: &[u8]) -> u64 {
    // SAFETY: every bit pattern is a valid u64.
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    let mut sum = words.iter().fold(0u64, |a, &w| a.wrapping_add(w));
    for &b in head.iter().chain(tail) {
        sum = sum.wrapping_add(b as u64);
    }
    sum
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// "median (min-max)".
fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{:.2} ({:.2}-{:.2})", median(values.to_vec()), min, max)
}

/// What one variant measured over the repeats.
#[derive(Default)]
struct Samples {
    cold: Vec<f64>,
    warm: Vec<f64>,
    extra: Vec<Vec<f64>>,
    used: String,
    resident: f64,
}

/// (label, options).
fn raw_variants() -> Vec<(&'static str, IoOptions)> {
    let o = |backend, direct, fixed_buffers| IoOptions {
        backend,
        direct,
        fixed_buffers,
    };
    vec![
        ("mmap", o(IoBackend::Mmap, false, false)),
        ("pread", o(IoBackend::Pread, false, false)),
        ("io_uring", o(IoBackend::IoUring, false, false)),
        ("io_uring+fixed", o(IoBackend::IoUring, false, true)),
        ("pread+O_DIRECT", o(IoBackend::Pread, true, false)),
        ("io_uring+O_DIRECT", o(IoBackend::IoUring, true, false)),
    ]
}

fn read_file(reader: &dyn RangeRead, block: u64) -> u64 {
    let len = reader.len();
    let mut sum = 0u64;
    let mut at = 0;
    while at < len {
        let end = len.min(at + block);
        let part = reader.read_range(at..end).unwrap();
        sum = sum.wrapping_add(consume(&part));
        at = end;
    }
    sum
}

fn bench_raw(args: &Args, path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    println!(
        "\n== Raw reads: {} ({:.2} GB), blocks of {} MiB, median (min-max) of {}",
        path.display(),
        len as f64 / 1e9,
        args.block >> 20,
        args.repeat
    );
    println!(
        "{:<20} {:>18} {:>18} {:>9}  backend used / page cache resident before cold runs",
        "method", "cold GB/s", "warm GB/s", "CPU s/GB"
    );
    let variants = raw_variants();
    let mut results: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
    let mut checksum = None;
    // Round-robin: a change in machine load spreads over every variant.
    for _ in 0..args.repeat {
        for ((label, options), samples) in variants.iter().zip(&mut results) {
            for is_cold in [true, false] {
                if is_cold {
                    samples.resident = samples.resident.max(evict(path, args.drop_caches));
                }
                let stats = Arc::new(IoStats::new(options.backend));
                let cpu_before = cpu_seconds();
                let started = Instant::now();
                let reader = open_reader(path, options, &stats).unwrap();
                let sum = read_file(reader.as_ref(), args.block);
                let elapsed = started.elapsed().as_secs_f64();
                let cpu_used = cpu_seconds() - cpu_before;
                assert_eq!(*checksum.get_or_insert(sum), sum, "{label}: same bytes");
                samples.used = format!(
                    "{}{}",
                    reader.backend(),
                    stats.notes().map(|n| format!(" ({n})")).unwrap_or_default()
                );
                let gbps = len as f64 / 1e9 / elapsed;
                if is_cold {
                    samples.cold.push(gbps);
                    if samples.extra.is_empty() {
                        samples.extra.push(Vec::new());
                    }
                    samples.extra[0].push(cpu_used / (len as f64 / 1e9));
                } else {
                    samples.warm.push(gbps);
                }
            }
        }
    }
    for ((label, _), samples) in variants.iter().zip(results) {
        println!(
            "{label:<20} {:>18} {:>18} {:>9.3}  {} / {:.1}%",
            spread(&samples.cold),
            spread(&samples.warm),
            median(samples.extra[0].clone()),
            samples.used,
            samples.resident * 100.0
        );
    }
    println!(
        "io_uring registered buffers: {:?} (used by +fixed and +O_DIRECT)",
        fixed_buffers_registered()
    );
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn bench_parquet(args: &Args, path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    println!(
        "\n== Parquet loader: {} ({:.0} MB), dataset order, batches of 1024, 2 workers, median (min-max) of {}",
        path.display(),
        len as f64 / 1e6,
        args.repeat
    );
    println!(
        "{:<20} {:>18} {:>18} {:>9} {:>9} {:>8}  backend used",
        "backend", "cold Mrow/s", "warm Mrow/s", "cold MB/s", "read ms", "first ms"
    );
    let variants = [
        ("mmap", IoBackend::Mmap, false),
        ("pread", IoBackend::Pread, false),
        ("io_uring", IoBackend::IoUring, false),
        ("pread+O_DIRECT", IoBackend::Pread, true),
        ("io_uring+O_DIRECT", IoBackend::IoUring, true),
    ];
    let mut results: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
    let mut expected_rows = None;
    for _ in 0..args.repeat {
        for (&(_, backend, direct), samples) in variants.iter().zip(&mut results) {
            for is_cold in [true, false] {
                if is_cold {
                    evict(path, args.drop_caches);
                }
                let mut options = LoaderOptions::default();
                options.set_shuffle(ShuffleMode::None);
                options.set_num_workers(2).unwrap();
                options.set_shard(0, 1).unwrap();
                options.set_io_backend(backend);
                options.set_io_direct(direct);
                let started = Instant::now();
                let loader = Loader::open(path, &options).unwrap();
                let mut rows = 0u64;
                while let Some(batch) = loader.next_batch().unwrap() {
                    rows += batch.num_rows() as u64;
                }
                let elapsed = started.elapsed();
                assert_eq!(*expected_rows.get_or_insert(rows), rows);
                let stats = loader.stats();
                samples.used = format!(
                    "{}{}",
                    stats.io_backend,
                    loader
                        .io_fallback_reason()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                );
                let mrows = rows as f64 / 1e6 / elapsed.as_secs_f64();
                if is_cold {
                    samples.cold.push(mrows);
                    if samples.extra.is_empty() {
                        samples.extra = vec![Vec::new(), Vec::new()];
                    }
                    samples.extra[0]
                        .push(Duration::from_nanos(stats.io_read_ns).as_secs_f64() * 1e3);
                    samples.extra[1].push(stats.time_to_first_batch_ns as f64 / 1e6);
                } else {
                    samples.warm.push(mrows);
                }
            }
        }
    }
    let rows = expected_rows.unwrap_or(0) as f64;
    for ((label, _, _), samples) in variants.iter().zip(results) {
        let cold_mrows = median(samples.cold.clone());
        println!(
            "{label:<20} {:>18} {:>18} {:>9.0} {:>9.0} {:>8.1}  {}",
            spread(&samples.cold),
            spread(&samples.warm),
            len as f64 / 1e6 / (rows / 1e6 / cold_mrows),
            median(samples.extra[0].clone()),
            median(samples.extra[1].clone()),
            samples.used
        );
    }
    println!(
        "(read ms: time inside reads per cold epoch, summed over workers; 0 for mmap, whose reads \
         are page faults; first ms: time to first batch, cold)"
    );
}

fn main() {
    let args = parse_args();
    println!(
        "kernel.io_uring_disabled = {:?}; cache eviction: posix_fadvise(DONTNEED){}",
        zenith_core::runtime::io::io_uring_disabled_sysctl(),
        if args.drop_caches {
            " + /proc/sys/vm/drop_caches"
        } else {
            ""
        }
    );
    if args.only.as_deref() != Some("parquet") {
        match &args.file {
            Some(file) => bench_raw(&args, file),
            None => eprintln!("no --file: raw reads skipped"),
        }
    }
    if args.only.as_deref() != Some("raw") {
        match &args.parquet {
            Some(parquet) => bench_parquet(&args, parquet),
            None => eprintln!("no --parquet: loader runs skipped"),
        }
    }
}
