//! `zenith bench PATH`: loader epochs, timed, with the loader's own stats; sweeps of worker
//! counts and I/O backends side by side in one table.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::{Value, json};
use zenith_core::loader::ShuffleMode;
use zenith_core::runtime::io::IoBackend;
use zenith_core::telemetry::http::MetricsServer;
use zenith_core::{Loader, LoaderOptions};

use crate::exit::Failure;
use crate::inspect::mode_name;
use crate::output::{self, Table};

pub const EXAMPLES: &str = "\
Examples:
  zenith bench data/ --epochs 3
  zenith bench data.parquet --workers 1,2,4 --io mmap,pread,io_uring
  zenith bench shards/ --shuffle block --memory-budget 1G --json > bench.json
  zenith bench data/ --epochs 100 --metrics-addr 127.0.0.1:9100    scrape it meanwhile
  zenith bench data/ --device cuda:0    batches through the device path into GPU memory
  zenith bench h2d --device cuda:0      pageable vs pinned host-to-device GB/s per size

Each combination of --workers and --io opens a fresh loader and runs --epochs epochs.
Rows/s and GB/s count the whole run, opening included; GB are Arrow buffer bytes delivered
(10^9 bytes). ZENITH_IO_BACKEND in the environment overrides --io (the table says so).";

/// How `--shuffle` orders rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shuffle {
    /// Dataset order.
    None,
    /// The library's default: global, or block when the decoded data exceeds the memory budget.
    Auto,
    /// One exact permutation of all rows; an error when the decoded data exceeds the budget.
    Global,
    /// Row groups shuffled, then rows within windows that fit the memory budget.
    Block,
}

impl From<Shuffle> for ShuffleMode {
    fn from(s: Shuffle) -> Self {
        match s {
            Shuffle::None => ShuffleMode::None,
            Shuffle::Auto | Shuffle::Global => ShuffleMode::Global,
            Shuffle::Block => ShuffleMode::Block,
        }
    }
}

/// Arguments of `zenith bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file, a directory of shards, or a glob (quote it: 'data/*.parquet').
    pub path: PathBuf,
    /// Epochs per run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Rows per batch.
    #[arg(long, default_value_t = 1024, value_parser = parse_positive)]
    pub batch_size: usize,
    /// Worker threads; a comma-separated list runs one loader per count (default: the loader's,
    /// one per core up to 4).
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    pub workers: Vec<usize>,
    /// Row order.
    #[arg(long, value_enum, default_value_t = Shuffle::Auto)]
    pub shuffle: Shuffle,
    /// Batches built ahead of the consumer (default: the loader's, twice the workers).
    #[arg(long, value_parser = parse_positive)]
    pub prefetch: Option<usize>,
    /// I/O backends for Parquet and CSV (mmap, pread, io_uring); a comma-separated list runs one
    /// loader per backend (Arrow IPC files too: pread and io_uring read them into owned memory).
    #[arg(long, value_delimiter = ',', value_parser = parse_io, value_name = "BACKEND[,...]")]
    pub io: Vec<IoBackend>,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only these columns, in this order (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub columns: Option<Vec<String>>,
    /// Memory for shuffling (512M, 4G, ...); default: half of MemAvailable.
    #[arg(long, value_parser = output::parse_bytes, value_name = "BYTES")]
    pub memory_budget: Option<u64>,
    /// Drop the last, short batch of each epoch.
    #[arg(long)]
    pub drop_last: bool,
    /// Also serve this run's Prometheus metrics at http://ADDR/metrics while it lasts (the URL
    /// goes to stderr).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Deliver into this CUDA device's memory through the loader's device path (cuda or
    /// cuda:N); with PATH `h2d`, the device to measure. Without a CUDA device: exit code 16
    /// (ZENITH_ERR_NO_DEVICE).
    #[arg(long, value_parser = crate::bench_device::parse_device, value_name = "cuda[:N]")]
    pub device: Option<u32>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a positive integer")),
    }
}

fn parse_io(text: &str) -> Result<IoBackend, String> {
    IoBackend::parse(text)
        .ok_or_else(|| format!("{text:?} is not an I/O backend (mmap, pread or io_uring)"))
}

/// Runs `zenith bench`.
pub fn run(args: &Args) -> Result<(), Failure> {
    // `zenith bench h2d`: a dataset of that name is reachable as ./h2d.
    if args.path.as_os_str() == "h2d" {
        return crate::bench_device::run_h2d(args.device.unwrap_or(0), args.json);
    }
    let ios: Vec<Option<IoBackend>> = if args.io.is_empty() {
        vec![None]
    } else {
        args.io.iter().copied().map(Some).collect()
    };
    let workers: Vec<Option<usize>> = if args.workers.is_empty() {
        vec![None]
    } else {
        args.workers.iter().copied().map(Some).collect()
    };
    let progress = std::io::stderr().is_terminal();
    // Lives until the runs are done; stdout stays the table's (or the JSON's).
    let _metrics = match &args.metrics_addr {
        Some(addr) => {
            zenith_core::register_metrics();
            let server = MetricsServer::start(addr)?;
            output::note(&format!(
                "serving metrics at http://{}/metrics",
                server.local_addr()
            ));
            Some(server)
        }
        None => None,
    };
    let mut runs = Vec::new();
    for io in &ios {
        for count in &workers {
            runs.push(run_one(args, *io, *count, progress)?);
        }
    }
    let report = json!({
        "path": args.path.to_string_lossy(),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "shuffle": match args.shuffle {
            Shuffle::Auto => "auto",
            requested => mode_name(requested.into()),
        },
        "seed": args.seed,
        "runs": runs,
    });
    if args.json {
        output::print_json(&report)
    } else {
        output::print(&render(&report, output::color_stdout()))
    }
}

fn progress_bar(enabled: bool, prefix: String) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let template = if output::no_color() {
        "{prefix} {msg} [{wide_bar}] {pos}/{len} batches {rate} eta {eta}"
    } else {
        "{prefix:.bold} {msg} [{wide_bar:.cyan/blue}] {pos}/{len} batches {rate} eta {eta}"
    };
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        };
        bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}

/// Opens a loader with `io` and `workers` and runs the epochs.
fn run_one(
    args: &Args,
    io: Option<IoBackend>,
    workers: Option<usize>,
    progress: bool,
) -> Result<Value, Failure> {
    let mut options = LoaderOptions::default();
    options.set_batch_size(args.batch_size)?;
    match args.shuffle {
        Shuffle::Auto => options.set_shuffle_auto(),
        requested => options.set_shuffle(requested.into()),
    }
    options.set_seed(args.seed);
    options.set_drop_last(args.drop_last);
    if let Some(count) = workers {
        options.set_num_workers(count)?;
    }
    if let Some(prefetch) = args.prefetch {
        options.set_prefetch(prefetch)?;
    }
    options.set_columns(args.columns.clone())?;
    options.set_memory_budget(args.memory_budget)?;
    if let Some(io) = io {
        options.set_io_backend(io);
    }

    let prefix = format!(
        "io={} w={}",
        io.map_or("default", IoBackend::name),
        workers.map_or("default".into(), |w| w.to_string())
    );
    let bar = progress_bar(progress, prefix);
    // Checked before the dataset opens: no device is the clearer failure.
    let mut device = args
        .device
        .map(|ordinal| crate::bench_device::open_path(ordinal, &mut options))
        .transpose()?;
    let start = Instant::now();
    let loader = Loader::open(&args.path, &options)?;
    if let Some(path) = device.as_mut() {
        path.set_batch_shape(&loader.schema(), options.batch_size())?;
    }
    let opened = start.elapsed();
    let per_epoch = loader.num_batches();
    bar.set_length(per_epoch * args.epochs);
    let mut epoch_seconds = Vec::new();
    for epoch in 0..args.epochs {
        let epoch_start = Instant::now();
        if epoch > 0 {
            loader.set_epoch(epoch)?;
        }
        bar.set_message(format!("epoch {}/{}", epoch + 1, args.epochs));
        match device.as_mut() {
            Some(path) => crate::bench_device::drain_epoch(&loader, path, &bar)?,
            None => {
                while let Some(batch) = loader.next_batch()? {
                    drop(batch);
                    bar.inc(1);
                }
            }
        }
        epoch_seconds.push(epoch_start.elapsed().as_secs_f64());
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let stats = loader.stats();
    let ns = |n: u64| n as f64 / 1e9;
    let threads = f64::from(stats.num_workers.max(1));
    let device_report = match (&device, args.device) {
        (Some(path), Some(ordinal)) => crate::bench_device::report(ordinal, path, seconds),
        _ => json!({ "device": "cpu" }),
    };
    let mut report = json!({
        "io_requested": io.map(IoBackend::name),
        "io_backend": stats.io_backend.name(),
        "io_note": loader.io_fallback_reason(),
        "workers": stats.num_workers,
        "prefetch": args.prefetch,
        "shuffle": mode_name(stats.shuffle),
        "rows": stats.rows,
        "batches": stats.batches,
        "bytes": stats.bytes,
        "batches_per_epoch": per_epoch,
        "seconds": seconds,
        "open_seconds": opened.as_secs_f64(),
        "epoch_seconds": epoch_seconds,
        "rows_per_second": stats.rows as f64 / seconds,
        "gb_per_second": stats.bytes as f64 / seconds / 1e9,
        "time_to_first_batch_seconds": ns(stats.time_to_first_batch_ns),
        "consumer_wait_seconds": ns(stats.consumer_wait_ns),
        "consumer_wait_per_batch_seconds": ns(stats.consumer_wait_ns) / stats.batches.max(1) as f64,
        "worker_busy_seconds": ns(stats.worker_busy_ns),
        "worker_busy_fraction": ns(stats.worker_busy_ns) / (seconds * threads),
        "decode_seconds": ns(stats.decode_ns),
        "chunks_decoded": stats.chunks_decoded,
        "io_read_bytes": stats.io_read_bytes,
        "io_read_seconds": ns(stats.io_read_ns),
        "numa_node": stats.numa_node,
        "pinned_workers": stats.pinned_workers,
    });
    if let (Some(report), Some(extra)) = (report.as_object_mut(), device_report.as_object()) {
        report.extend(extra.clone());
    }
    Ok(report)
}

/// The human table: one row per run.
fn render(report: &Value, color: bool) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let mut out = format!(
        "{} {}: {} epoch{}, batch size {}, shuffle {}, seed {}\n\n",
        output::bold("bench", color),
        report["path"].as_str().unwrap_or(""),
        u(&report["epochs"]),
        if u(&report["epochs"]) == 1 { "" } else { "s" },
        output::count(u(&report["batch_size"])),
        report["shuffle"].as_str().unwrap_or(""),
        u(&report["seed"]),
    );
    let mut table = Table::new(
        &[
            "io",
            "workers",
            "rows",
            "batches",
            "time",
            "rows/s",
            "GB/s",
            "1st batch",
            "wait/batch",
            "busy",
            "shuffle",
        ],
        &[
            false, true, true, true, true, true, true, true, true, true, false,
        ],
    );
    let mut notes = Vec::new();
    let runs = report["runs"].as_array().cloned().unwrap_or_default();
    for run in &runs {
        let used = run["io_backend"].as_str().unwrap_or("");
        let io = match run["io_requested"].as_str() {
            Some(asked) if asked != used => format!("{used} ({asked} asked)"),
            _ => used.to_string(),
        };
        if let Some(note) = run["io_note"].as_str() {
            notes.push(format!("{io}: {note}"));
        }
        table.row(vec![
            io,
            u(&run["workers"]).to_string(),
            output::count(u(&run["rows"])),
            output::count(u(&run["batches"])),
            output::seconds(f(&run["seconds"])),
            output::rate(f(&run["rows_per_second"])),
            format!("{:.2}", f(&run["gb_per_second"])),
            output::seconds(f(&run["time_to_first_batch_seconds"])),
            output::seconds(f(&run["consumer_wait_per_batch_seconds"])),
            format!("{:.0}%", 100.0 * f(&run["worker_busy_fraction"])),
            run["shuffle"].as_str().unwrap_or("").into(),
        ]);
    }
    out.push_str(&table.render(0, color));
    if runs.len() > 1 {
        let best = runs
            .iter()
            .map(|r| f(&r["rows_per_second"]))
            .fold(0.0_f64, f64::max);
        let slowest = runs
            .iter()
            .map(|r| f(&r["rows_per_second"]))
            .fold(f64::INFINITY, f64::min);
        if slowest > 0.0 {
            out.push_str(&format!(
                "\nfastest run: {:.2}x the slowest (rows/s)\n",
                best / slowest
            ));
        }
    }
    for note in notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(
        "\nbusy: worker time / (wall time x workers); wait/batch: consumer blocked per batch\n",
    );
    out
}
