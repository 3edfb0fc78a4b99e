//! `zenith plugin check`: loads a WASM transform plugin the way the engine and the loader do
//! (plugin ABI v1, no imports, the memory and CPU limits) and, given a dataset, runs it on the
//! dataset's first batch and shows what comes out, so a plugin's author meets a refusal or a
//! failing event here rather than in a training job.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use serde_json::json;
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions};
use zenith_engine::stage::wasm::{
    DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, Origin, WasmOptions, WasmStage,
};
use zenith_engine::{FailureKind, Stage};

use crate::exit::Failure;
use crate::output;

pub const EXAMPLES: &str = "\
Examples:
  zenith plugin check normalize.wasm
  zenith plugin check normalize.wasm --input data.parquet --rows 4096 --columns id,value
  zenith plugin check resize.wasm --input shards/ --memory 64MiB --time-limit-ms 50 --json

A plugin that breaks the plugin ABI (docs/plugins.md: exports memory, zn_alloc and zn_transform,
imports nothing) exits 4; so does one that fails on the input batch (trap, time or memory limit,
a malformed result), with the reason. An input column of a type the ABI does not carry exits 8
(choose columns with --columns). --json prints one document: {\"plugin\", \"bytes\",
\"compiled\", \"memory_limit_bytes\", \"time_limit_ms\", \"input\": null | {\"path\", \"rows\",
\"columns\"}, \"output\": null | {\"rows\", \"schema\": [{\"name\", \"type\", \"nullable\"}],
\"seconds\"}}.";

/// Arguments of `zenith plugin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The plugin: a WebAssembly module built for plugin ABI v1.
    pub plugin: PathBuf,
    /// A dataset (any path the loader reads) whose first batch the plugin transforms.
    #[arg(long, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// Rows in that first batch.
    #[arg(long, default_value_t = 1024)]
    pub rows: usize,
    /// Only these columns of the input, in this order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Most linear memory one plugin instance may use (e.g. 64MiB; default 256 MiB).
    #[arg(long, value_parser = output::parse_bytes, value_name = "BYTES")]
    pub memory: Option<u64>,
    /// Most CPU time the plugin may take for one batch, in milliseconds (default 1000).
    #[arg(long, value_name = "MS")]
    pub time_limit_ms: Option<u64>,
    /// One JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `zenith plugin check`.
pub fn check(args: &CheckArgs) -> Result<(), Failure> {
    let memory_limit = match args.memory {
        None => DEFAULT_MEMORY_LIMIT,
        Some(bytes) => usize::try_from(bytes)
            .map_err(|_| Error::InvalidArgument(format!("--memory {bytes} is too large")))?,
    };
    let time_limit = args
        .time_limit_ms
        .map_or(DEFAULT_TIME_LIMIT, Duration::from_millis);
    let bytes = std::fs::metadata(&args.plugin)
        .map_err(|e| Error::io(&args.plugin, e))?
        .len();
    // Compiled in memory only: a check leaves the user's module cache as it was.
    let options = WasmOptions {
        memory_limit,
        time_limit,
        cache_dir: None,
        ..WasmOptions::default()
    };
    let stage = WasmStage::load(&args.plugin, options)?;

    let run = match &args.input {
        None => None,
        Some(path) => {
            let input = first_batch(path, args.rows, args.columns.clone())?;
            let started = Instant::now();
            let output = stage.process(input.clone()).map_err(|e| {
                let message = format!(
                    "plugin {} failed on the first batch of {} ({}): {}",
                    args.plugin.display(),
                    path.display(),
                    e.kind.as_str(),
                    e.message
                );
                // A column type the ABI does not carry is the input's limit, not the plugin's
                // fault: unsupported (exit 8); anything else the plugin did is exit 4.
                match e.kind {
                    FailureKind::Unsupported => Error::Unsupported(message),
                    _ => Error::InvalidArgument(message),
                }
            })?;
            Some((path, input, output, started.elapsed()))
        }
    };

    let compiled = match stage.origin() {
        Origin::Process => "in this process",
        Origin::Disk => "from the disk cache",
        Origin::Compiled => "compiled now",
    };
    if args.json {
        let (input, output) = match &run {
            None => (json!(null), json!(null)),
            Some((path, input, output, elapsed)) => (
                json!({
                    "path": path.display().to_string(),
                    "rows": input.num_rows(),
                    "columns": input.num_columns(),
                }),
                json!({
                    "rows": output.num_rows(),
                    "schema": schema_json(output),
                    "seconds": elapsed.as_secs_f64(),
                }),
            ),
        };
        return output::print_json(&json!({
            "plugin": args.plugin.display().to_string(),
            "bytes": bytes,
            "compiled": compiled,
            "memory_limit_bytes": memory_limit,
            "time_limit_ms": u64::try_from(time_limit.as_millis()).unwrap_or(u64::MAX),
            "input": input,
            "output": output,
        }));
    }

    let mut text = format!(
        "plugin      {} ({})\n\
         interface   plugin ABI v1: memory, zn_alloc, zn_transform; no imports\n\
         compiled    {compiled}\n\
         limits      memory {}, CPU time {} per batch\n",
        args.plugin.display(),
        output::bytes(bytes),
        output::bytes(memory_limit as u64),
        output::seconds(time_limit.as_secs_f64()),
    );
    match &run {
        None => text.push_str("input       none (give --input PATH to run it on a batch)\n"),
        Some((path, input, output_batch, elapsed)) => {
            text.push_str(&format!(
                "input       {}: {} rows, {} columns\n\
                 output      {} rows in {}\n",
                path.display(),
                output::count(input.num_rows() as u64),
                input.num_columns(),
                output::count(output_batch.num_rows() as u64),
                output::seconds(elapsed.as_secs_f64()),
            ));
            for field in output_batch.schema().fields() {
                text.push_str(&format!(
                    "  {}: {}{}\n",
                    field.name(),
                    field.data_type(),
                    if field.is_nullable() { "" } else { " not null" }
                ));
            }
        }
    }
    output::print(&text)
}

/// The first `rows` rows of the dataset at `path`, in dataset order, as one batch.
fn first_batch(
    path: &std::path::Path,
    rows: usize,
    columns: Option<Vec<String>>,
) -> Result<RecordBatch, Failure> {
    let mut options = LoaderOptions::default();
    options.set_batch_size(rows)?;
    options.set_columns(columns)?;
    options.set_shuffle(ShuffleMode::None);
    options.set_num_workers(1)?;
    let loader = Loader::open(path, &options)?;
    match loader.next_batch()? {
        Some(batch) => Ok(batch.data),
        None => Err(Error::InvalidArgument(format!(
            "{}: no rows to run the plugin on",
            path.display()
        ))
        .into()),
    }
}

fn schema_json(batch: &RecordBatch) -> serde_json::Value {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect()
}
