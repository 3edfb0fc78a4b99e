//! `zenith`: look at a dataset, measure the loader, show the machine, serve metrics, without
//! writing code.
//!
//! Every subcommand prints a table for people by default and one JSON document with `--json`
//! (stable field names, for scripts). Progress bars go to stderr and only when stderr is a
//! terminal, so piped output stays clean; `NO_COLOR` turns colour off. Errors go to stderr and
//! the exit status says what failed (see [`exit`]).

#![forbid(unsafe_code)]

mod bench;
mod bench_device;
mod exit;
mod inspect;
mod metrics;
mod output;
mod plugin;
mod sim;
mod topology;

use std::process::ExitCode;

/// The library's allocator: large freed blocks are kept for reuse (see
/// `zenith_core::runtime::block_cache`), so `zenith bench` measures what the library does.
#[global_allocator]
static ALLOCATOR: zenith_core::runtime::block_cache::BlockCacheAllocator =
    zenith_core::runtime::block_cache::BlockCacheAllocator::new();

use clap::{Parser, Subcommand};

use crate::exit::Failure;

const EXAMPLES: &str = "\
Examples:
  zenith inspect data/                      format, schema, rows, row groups, compression,
                                            what each column exports as, shuffle memory
  zenith inspect 'shards/*.parquet' --json  the same as one JSON document
  zenith bench data/ --epochs 3 --batch-size 4096
  zenith bench data.parquet --workers 1,2,4 --io mmap,pread,io_uring
  zenith topology                           NUMA nodes, CPUs, memory, hugepages, GPUs, NICs
  zenith metrics serve --addr 127.0.0.1:9100
  zenith sim --workload synthetic --json    the gang scheduler's policies on a simulated
                                            workload (and the Alibaba openb trace)
  zenith plugin check normalize.wasm --input data.parquet
                                            load a WASM transform plugin with its limits and
                                            run it on the dataset's first batch

Every subcommand takes --json. Progress goes to stderr, and only when it is a terminal.
NO_COLOR=1 turns colour off.";

/// Exit statuses, in the help text (the table lives in `exit.rs`).
const EXIT_STATUS: &str = "\
Exit status:
  0  success                       6  not found (missing path, no data files)
  1  output or signal failure      7  format (not the claimed format, corrupt)
  2  usage (bad arguments)         8  unsupported
  3  null argument                 9  internal panic
  4  invalid argument             10  internal error
  5  I/O error                    11  schema mismatch between shards
                                  12  buffer too small
                                  13  over the memory budget
                                  16  no GPU driver or device
  Library errors exit with 2 - zenith_status (ZENITH_ERR_NOT_FOUND = -4 exits 6).";

/// Zenith's command line: inspect datasets, benchmark the loader, show the topology.
#[derive(Debug, Parser)]
#[command(
    name = "zenith",
    version,
    about = "Zenith's command line: inspect a dataset, benchmark the loader, show the machine",
    after_help = format!("{EXAMPLES}\n\n{EXIT_STATUS}"),
    propagate_version = true,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe a dataset: files, schema, rows, chunks, compression, exports, shuffle memory.
    #[command(after_help = inspect::EXAMPLES)]
    Inspect(inspect::Args),
    /// Run loader epochs and report rows/s, GB/s, time to first batch, wait and busy times.
    #[command(after_help = bench::EXAMPLES)]
    Bench(bench::Args),
    /// Show NUMA nodes, CPUs, memory, hugepages, GPUs and NICs with their nodes.
    #[command(after_help = topology::EXAMPLES)]
    Topology(topology::Args),
    /// Simulate the gang scheduler's policies on the openb trace and a synthetic workload.
    #[command(after_help = sim::EXAMPLES)]
    Sim(sim::Args),
    /// WASM transform plugins (plugin ABI v1).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Prometheus metrics.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a plugin the way the engine does (ABI, limits) and run it on a dataset's first batch.
    #[command(after_help = plugin::EXAMPLES)]
    Check(plugin::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum MetricsCommand {
    /// Serve GET /metrics until SIGINT or SIGTERM; the first line on stdout is the URL.
    #[command(after_help = metrics::EXAMPLES)]
    Serve(metrics::ServeArgs),
}

fn main() -> ExitCode {
    // Usage errors exit 2, --help and --version 0 (clap's own exits).
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Topology(args) => topology::run(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Plugin {
            command: PluginCommand::Check(args),
        } => plugin::check(&args),
        Command::Metrics {
            command: MetricsCommand::Serve(args),
        } => metrics::serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`zenith ... | head`) is not an error worth a message.
        Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
        Err(failure) => {
            output::error(&failure.to_string());
            ExitCode::from(failure.exit_code())
        }
    }
}
