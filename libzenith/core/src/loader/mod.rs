//! The loader: a dataset, an epoch plan over it, and a pool of workers delivering the plan's
//! batches in order.
//!
//! [`Loader`] is a handle to shared state: a stream exported from it ([`Loader::reader`])
//! continues the same epoch from the same position and keeps the state alive after the loader
//! is dropped.

mod cache;
pub mod device_metrics;
pub mod gather;
pub mod metrics;
pub mod numa;
mod options;
pub mod plan;
pub mod shuffle;
pub mod stage;
pub mod state;
pub mod stats;
mod workers;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};

use crate::batch::gather_kernel::HostPool;
use numa::NumaPlacement;
pub use options::{
    DEFAULT_BATCH_SIZE, LoaderOptions, MAX_WORKERS, NumaTarget, ShardSource, default_memory_budget,
};
pub use plan::ShuffleMode;
use plan::{EpochPlan, PlanParams};
pub use stage::{BatchStage, Stages};
pub use state::{RESUME_STATE_SIZE, ResumeState};
use stats::{Counters, Snapshot};
use workers::{EpochJob, Pipeline};

use crate::batch::Batch;
use crate::dataset::{Dataset, DatasetOptions};
use crate::error::{Error, Result};
use crate::runtime::io::{IoBackend, IoContext};
use crate::runtime::pool::{
    BlockPool, HeapAllocator, HostAllocator, NumaAllocator, SharedAllocator,
};

/// Streams the batches of a dataset, epoch after epoch.
#[derive(Debug)]
pub struct Loader {
    core: Arc<Mutex<Core>>,
}

#[derive(Debug)]
struct Core {
    dataset: Arc<Dataset>,
    /// Order parameters of the current epoch (the effective shuffle mode included).
    params: PlanParams,
    /// Where `params.rank` and `params.world_size` came from.
    shard_source: ShardSource,
    /// The shuffle the options asked for (`None`: automatic).
    shuffle_requested: Option<ShuffleMode>,
    /// The memory budget that decided the shuffle, in bytes.
    memory_budget: u64,
    /// Estimated decoded bytes of the dataset (0 when it is served without decoding).
    decoded_bytes: u64,
    columns_hash: u64,
    /// The stages run on each batch, and the schema of the batches they deliver.
    stages: Stages,
    schema: SchemaRef,
    num_workers: usize,
    prefetch: usize,
    numa: NumaPlacement,
    counters: Arc<Counters>,
    /// How the files are read, and the reads' stats.
    io: IoContext,
    /// The I/O backend the options asked for.
    io_requested: IoBackend,
    /// Where gathered batches' buffers come from, across epochs.
    pool: HostPool,
    /// Every batch is copied into `pool` (`LoaderOptions::set_pool_every_batch`).
    pool_every_batch: bool,
    pipeline: Pipeline,
}

impl Loader {
    /// Opens the dataset at `path` (a file, a directory of shards or a glob) and starts building
    /// the first epoch's batches.
    ///
    /// Files are read with the options' I/O backend, unless `ZENITH_IO_BACKEND` in the
    /// environment names another (an unknown name there is an [`Error::InvalidArgument`]).
    ///
    /// Each file's identity is taken here; a file that changes afterwards fails the next epoch,
    /// batch or delivery that needs it with an [`Error::Io`] ("changed while being read") instead
    /// of a crash. Memory-mapped files keep a window (a truncation between that check and a
    /// page access, or after delivery, still faults): `IoBackend::Pread` closes it.
    pub fn open(path: impl AsRef<Path>, options: &LoaderOptions) -> Result<Self> {
        Self::open_dataset(options, |dataset_options| {
            Dataset::open(path.as_ref(), dataset_options)
        })
    }

    /// [`Self::open`] over the files of several paths (each a file, a directory or a glob), in
    /// the order given: see [`Dataset::open_list`].
    pub fn open_list(paths: &[std::path::PathBuf], options: &LoaderOptions) -> Result<Self> {
        Self::open_dataset(options, |dataset_options| {
            Dataset::open_list(paths, dataset_options)
        })
    }

    fn open_dataset(
        options: &LoaderOptions,
        open: impl FnOnce(&DatasetOptions) -> Result<Dataset>,
    ) -> Result<Self> {
        let opened = Instant::now();
        let (io_options, note) = options
            .io
            .with_env_override(|name| std::env::var(name).ok())?;
        let io = IoContext::new(io_options).with_storage(options.storage.clone());
        if let Some(note) = note {
            io.stats.note(note);
        }
        let mut dataset_options = DatasetOptions {
            columns: options.columns.clone(),
            ..DatasetOptions::default()
        };
        dataset_options.source.io = io.clone();
        dataset_options.source.memory_budget = options.memory_budget;
        dataset_options.source.csv = options.csv;
        dataset_options.source.csv_schema = options.schema.clone();
        dataset_options.source.json_schema = options.schema.clone();
        let dataset = open(&dataset_options)?;
        Self::start(Arc::new(dataset), options, opened, io)
    }

    /// Starts a loader over a dataset already open (with its projection applied: the options'
    /// `columns` then only enter the resume token's identity, and its I/O options are those the
    /// dataset was opened with, whose stats this loader does not see).
    pub fn from_dataset(dataset: Arc<Dataset>, options: &LoaderOptions) -> Result<Self> {
        Self::start(dataset, options, Instant::now(), IoContext::default())
    }

    fn start(
        dataset: Arc<Dataset>,
        options: &LoaderOptions,
        opened: Instant,
        io: IoContext,
    ) -> Result<Self> {
        let (rank, world_size, shard_source) = match options.shard {
            Some((rank, world)) => (rank, world, ShardSource::Options),
            None => options::shard_from_env(|name| std::env::var(name).ok())?,
        };
        check_world_fits(&dataset, world_size, shard_source)?;
        let num_workers = options.num_workers.unwrap_or_else(default_workers);
        let prefetch = options.prefetch.unwrap_or(2 * num_workers.max(1));
        let columns_hash = state::columns_hash(options.columns.as_deref());
        let numa = NumaPlacement::resolve(options.numa.as_ref(), options.sysfs_root.as_deref())?;
        let pool = batch_pool(options.host_allocator.as_ref(), numa.batch_node());

        let requested = PlanParams {
            shuffle: options.shuffle,
            seed: options.seed,
            epoch: 0,
            batch_size: options.batch_size,
            drop_last: options.drop_last,
            rank,
            world_size,
            drop_remainder: options.shard_drop_remainder,
            window_chunks: 1,
        };
        let shuffle_requested = options.shuffle_request();
        let memory_budget = options
            .memory_budget
            .unwrap_or_else(options::default_memory_budget);
        let decoded_bytes = decoded_bytes(&dataset);
        let (params, first_batch) = match &options.resume {
            Some(token) => (
                resumed_params(&dataset, &requested, shuffle_requested, columns_hash, token)?,
                token.batches_delivered,
            ),
            None => (effective_params(&dataset, requested, memory_budget), 0),
        };
        if shuffle_requested == Some(ShuffleMode::Global) {
            check_global_fits(&dataset, memory_budget, decoded_bytes)?;
        }
        let counters = Arc::new(Counters::new(opened));
        dataset.check_unchanged()?;
        let stages = options.stages.clone();
        let schema = stages.output_schema(dataset.schema());
        let pipeline = start_epoch(
            &dataset,
            &params,
            first_batch,
            (num_workers, prefetch),
            BatchHome {
                numa: &numa,
                pool: &pool,
                every_batch: options.pool_every_batch,
            },
            &counters,
            &stages,
        )?;
        let core = Core {
            dataset,
            params,
            shard_source,
            shuffle_requested,
            memory_budget,
            decoded_bytes,
            columns_hash,
            stages,
            schema,
            num_workers,
            prefetch,
            numa,
            counters,
            io,
            io_requested: options.io.backend,
            pool,
            pool_every_batch: options.pool_every_batch,
            pipeline,
        };
        Ok(Loader {
            core: Arc::new(Mutex::new(core)),
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    /// The schema of every batch (after the stages, when they accept an empty batch; see
    /// [`Stages`]).
    pub fn schema(&self) -> SchemaRef {
        self.core().schema.clone()
    }

    /// Batches this rank receives per epoch.
    pub fn num_batches(&self) -> u64 {
        self.core().pipeline.plan().num_batches()
    }

    /// Total rows in the dataset (all ranks).
    pub fn num_rows(&self) -> u64 {
        self.core().dataset.num_rows()
    }

    /// The next batch of the epoch, or `None` once the epoch is delivered (until
    /// [`Self::set_epoch`] starts another).
    pub fn next_batch(&self) -> Result<Option<Batch>> {
        self.core().next_batch()
    }

    /// Like [`Self::next_batch`], but waits at most `timeout` for the workers to publish the
    /// batch: [`Fetched::Pending`] when they have not, and the loader is as before (the batch
    /// comes with a later call). `Duration::ZERO` only looks. Without workers the batch is
    /// built by the calling thread, which the timeout does not interrupt.
    pub fn next_batch_timeout(&self, timeout: Duration) -> Result<Fetched> {
        self.core().next_batch_timeout(timeout)
    }

    /// Starts epoch `epoch` from its first batch (the order depends on the epoch number). Batches
    /// not yet taken from the current epoch are discarded. Every `u64` is an epoch, `u64::MAX`
    /// included (its resume token round-trips); a caller counting epochs stops there.
    ///
    /// A file of the dataset that changed since it was opened is an [`Error::Io`] ("changed
    /// while being read"); the current epoch is then left as it was.
    pub fn set_epoch(&self, epoch: u64) -> Result<()> {
        let mut core = self.core();
        core.dataset.check_unchanged()?;
        let mut params = core.params.clone();
        params.epoch = epoch;
        // Stop the current workers first, so two epochs never compete for cores and memory.
        core.pipeline.stop();
        core.pipeline = start_epoch(
            &core.dataset,
            &params,
            0,
            (core.num_workers, core.prefetch),
            BatchHome {
                numa: &core.numa,
                pool: &core.pool,
                every_batch: core.pool_every_batch,
            },
            &core.counters,
            &core.stages,
        )?;
        core.params = params;
        Ok(())
    }

    /// The resume token for the current position: opening with it (see
    /// [`LoaderOptions::set_resume_state`]) delivers exactly the batches not yet delivered.
    pub fn save_state(&self) -> Vec<u8> {
        let core = self.core();
        let delivered = core
            .pipeline
            .delivered()
            .min(core.pipeline.plan().num_batches());
        let rows =
            (delivered * core.params.batch_size as u64).min(core.pipeline.plan().rank_rows());
        ResumeState {
            fingerprint: core.dataset.fingerprint(),
            columns_hash: core.columns_hash,
            params: core.params.clone(),
            batches_delivered: delivered,
            rows_delivered: rows,
        }
        .encode()
    }

    /// Counters and the current configuration.
    pub fn stats(&self) -> Snapshot {
        let core = self.core();
        Snapshot {
            queue_depth: core.pipeline.queue_depth(),
            epoch: core.params.epoch,
            batches_per_epoch: core.pipeline.plan().num_batches(),
            shuffle: core.params.shuffle,
            num_workers: core.num_workers as u32,
            numa_node: core.numa.node,
            pinned_workers: core.pipeline.pinned_workers(),
            io_backend: core.io.stats.used().unwrap_or(IoBackend::Mmap),
            io_backend_requested: core.io_requested,
            io_read_bytes: core.io.stats.read_bytes(),
            io_read_ns: core.io.stats.read_ns(),
            rank: core.params.rank,
            world_size: core.params.world_size,
            shard_source: core.shard_source,
            shuffle_requested: core.shuffle_requested,
            memory_budget: core.memory_budget,
            decoded_bytes: core.decoded_bytes,
            ..core.counters.snapshot()
        }
    }

    /// Why the files are not read as the options asked (io_uring unavailable and `pread` used
    /// instead, with the reason; `O_DIRECT` refused; `ZENITH_IO_BACKEND` overriding the option),
    /// and the paths skipped while listing the dataset (special files, links back to an
    /// ancestor directory); `None` when there is nothing to say.
    pub fn io_fallback_reason(&self) -> Option<String> {
        self.core().io.stats.notes()
    }

    /// A reader that continues this epoch from the loader's current position. Batches it yields
    /// are consumed: the loader does not deliver them again. It stays valid after the loader is
    /// dropped.
    pub fn reader(&self) -> EpochReader {
        EpochReader {
            schema: self.schema(),
            core: self.core.clone(),
        }
    }
}

/// What [`Loader::next_batch_timeout`] got.
#[derive(Debug)]
pub enum Fetched {
    /// The next batch.
    Batch(Batch),
    /// The epoch is delivered.
    Done,
    /// The batch was not ready in time; nothing was consumed.
    Pending,
}

impl Core {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        match self.next_batch_timeout(Duration::MAX)? {
            Fetched::Batch(batch) => Ok(Some(batch)),
            Fetched::Done => Ok(None),
            Fetched::Pending => Err(Error::Internal(
                "a wait without a deadline timed out".into(),
            )),
        }
    }

    fn next_batch_timeout(&mut self, timeout: Duration) -> Result<Fetched> {
        let (index, data) = match self.pipeline.next(&self.counters, timeout)? {
            workers::Next::Batch(index, data) => (index, data),
            workers::Next::Done => return Ok(Fetched::Done),
            workers::Next::Pending => return Ok(Fetched::Pending),
        };
        self.counters
            .delivered(data.num_rows(), logical_bytes(&data));
        Ok(Fetched::Batch(Batch {
            data,
            epoch: self.params.epoch,
            index,
        }))
    }
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    // Every field is replaced whole; a panic mid-call leaves a consistent (if stale) core.
    core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where an epoch's batches are built and live: the workers' node, and the pool of their buffers.
struct BatchHome<'a> {
    numa: &'a NumaPlacement,
    pool: &'a HostPool,
    /// Every batch lives in `pool`, not only gathered ones.
    every_batch: bool,
}

fn start_epoch(
    dataset: &Arc<Dataset>,
    params: &PlanParams,
    first_batch: u64,
    (num_workers, prefetch): (usize, usize),
    home: BatchHome<'_>,
    counters: &Arc<Counters>,
    stages: &Stages,
) -> Result<Pipeline> {
    let BatchHome {
        numa,
        pool,
        every_batch,
    } = home;
    let plan = EpochPlan::new(dataset.chunks(), params.clone());
    let first_batch = first_batch.min(plan.num_batches());
    // Decoding ahead by one chunk per worker (plus one) overlaps decoding with consumption.
    let job = EpochJob::new(
        dataset.clone(),
        plan,
        first_batch,
        num_workers + 1,
        counters.clone(),
        numa.batch_node(),
        pool.clone(),
    )
    .with_stages(stages.clone())
    .with_pool_every_batch(every_batch);
    Pipeline::start(job, first_batch, num_workers, prefetch, numa.worker_cpus())
}

/// The pool of gathered batches' buffers: over the allocator the options give, else on the node
/// the loader is placed on, else on the heap.
fn batch_pool(allocator: Option<&SharedAllocator>, node: Option<u32>) -> HostPool {
    let allocator: Arc<dyn HostAllocator> = match (allocator, node) {
        (Some(allocator), _) => allocator.0.clone(),
        (None, Some(node)) => Arc::new(NumaAllocator::new(Some(node), 0)),
        (None, None) => Arc::new(HeapAllocator),
    };
    BlockPool::new(allocator)
}

/// Workers by default: one per core, at most 4 (decoding saturates memory bandwidth early and
/// the trainer needs cores too).
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4)
}

/// Ranks beyond the dataset's rows would get nothing but repeated rows (or, dropping the
/// remainder, nothing): an error at open, naming where the world size came from.
fn check_world_fits(dataset: &Dataset, world_size: u32, source: ShardSource) -> Result<()> {
    let rows = dataset.num_rows();
    if world_size == 1 || u64::from(world_size) <= rows {
        return Ok(());
    }
    let from = match source {
        ShardSource::Options => "the loader options",
        ShardSource::TorchEnv => "RANK/WORLD_SIZE in the environment",
        ShardSource::SlurmEnv => "SLURM_PROCID/SLURM_NTASKS in the environment",
        ShardSource::None => "the defaults",
    };
    Err(Error::InvalidArgument(format!(
        "world_size {world_size} (from {from}) is larger than the dataset at {} ({rows} rows): \
         some ranks would get no row of their own; use fewer ranks, or turn sharding off \
         for a loader that reads everything on one rank",
        dataset.path().display()
    )))
}

/// Estimated bytes of the whole dataset decoded (what a global shuffle holds), 0 when its chunks
/// are served without decoding (memory-mapped Arrow IPC, CSV parsed at open).
fn decoded_bytes(dataset: &Dataset) -> u64 {
    if dataset.in_memory() {
        return 0;
    }
    (0..dataset.chunks().len())
        .map(|c| dataset.chunk_decoded_bytes(c))
        .fold(0, u64::saturating_add)
}

/// A global shuffle asked for explicitly holds the whole decoded dataset: more than the budget
/// is an [`Error::OutOfMemory`], not a silent block shuffle.
fn check_global_fits(dataset: &Dataset, budget: u64, decoded: u64) -> Result<()> {
    if decoded <= budget {
        return Ok(());
    }
    Err(Error::over_budget(
        format!(
            "a global shuffle of {} (its decoded rows; ask for a block shuffle or the automatic \
             one, or raise memory_budget)",
            dataset.path().display()
        ),
        decoded,
        budget,
    ))
}

/// The order parameters a fresh loader runs with: a global shuffle of data that must be decoded
/// and would not fit the memory budget runs as a block shuffle with windows that fit (an
/// explicit global shuffle is checked by [`check_global_fits`] instead).
fn effective_params(dataset: &Dataset, mut params: PlanParams, budget: u64) -> PlanParams {
    let plan = shuffle_plan(dataset, params.shuffle, Some(budget));
    params.shuffle = plan.mode;
    if plan.mode == ShuffleMode::Block {
        params.window_chunks = plan.window_chunks;
    }
    params
}

/// How a shuffle mode would run on a dataset: what [`shuffle_plan`] decides, and the numbers it
/// decides on (`zenith inspect` reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShufflePlan {
    /// The mode asked for.
    pub requested: ShuffleMode,
    /// The mode that runs: a global shuffle whose decoded data exceeds the budget runs as block
    /// (what the automatic shuffle does; an explicitly requested global shuffle fails instead).
    pub mode: ShuffleMode,
    /// Estimated bytes of the whole dataset once decoded (the sum of its chunks' estimates).
    pub decoded_bytes: u64,
    /// The memory budget the decision used (the one given, else [`default_memory_budget`]).
    pub memory_budget: u64,
    /// True when every file serves chunks without decoding (mmap'd IPC, materialised CSV): a
    /// global shuffle then needs no memory beyond the data already held.
    pub in_memory: bool,
    /// Chunks per shuffle window in block mode (1 otherwise).
    pub window_chunks: usize,
}

/// The shuffle a loader opened with `shuffle` and `memory_budget` (`None`: the default budget)
/// would run on `dataset`; the loader itself decides with this function.
pub fn shuffle_plan(dataset: &Dataset, shuffle: ShuffleMode, budget: Option<u64>) -> ShufflePlan {
    let chunks = dataset.chunks().len();
    let budget = budget.unwrap_or_else(options::default_memory_budget);
    let total: u64 = (0..chunks)
        .map(|c| dataset.chunk_decoded_bytes(c))
        .fold(0, u64::saturating_add);
    let mut plan = ShufflePlan {
        requested: shuffle,
        mode: shuffle,
        decoded_bytes: total,
        memory_budget: budget,
        in_memory: dataset.in_memory(),
        window_chunks: 1,
    };
    if shuffle == ShuffleMode::None || chunks == 0 {
        return plan;
    }
    if shuffle == ShuffleMode::Global && (plan.in_memory || total <= budget) {
        return plan;
    }
    // Half the budget per window: the next window decodes while the current one drains.
    let average = (total / chunks as u64).max(1);
    plan.mode = ShuffleMode::Block;
    plan.window_chunks = ((budget / 2) / average).clamp(1, chunks as u64) as usize;
    plan
}

/// Checks a resume token against the dataset and the options, and returns the parameters to
/// resume with (the token's, which include the epoch and any block window).
fn resumed_params(
    dataset: &Dataset,
    requested: &PlanParams,
    shuffle_requested: Option<ShuffleMode>,
    columns_hash: u64,
    token: &ResumeState,
) -> Result<PlanParams> {
    let mismatch = |what: &str, saved: String, now: String| {
        Err(Error::InvalidArgument(format!(
            "resume state does not match this loader: it was saved with {what} {saved}, the loader has {now}"
        )))
    };
    if token.fingerprint != dataset.fingerprint() {
        return Err(Error::InvalidArgument(format!(
            "resume state belongs to another dataset (fingerprint {:016x}; {} has {:016x})",
            token.fingerprint,
            dataset.path().display(),
            dataset.fingerprint()
        )));
    }
    let saved = &token.params;
    if token.columns_hash != columns_hash {
        return mismatch("columns", "another projection".into(), "this one".into());
    }
    if saved.seed != requested.seed {
        return mismatch("seed", saved.seed.to_string(), requested.seed.to_string());
    }
    if saved.batch_size != requested.batch_size {
        return mismatch(
            "batch_size",
            saved.batch_size.to_string(),
            requested.batch_size.to_string(),
        );
    }
    if saved.drop_last != requested.drop_last {
        return mismatch(
            "drop_last",
            saved.drop_last.to_string(),
            requested.drop_last.to_string(),
        );
    }
    if (saved.rank, saved.world_size) != (requested.rank, requested.world_size) {
        let render = |p: &PlanParams| format!("rank {} of {}", p.rank, p.world_size);
        return mismatch("shard", render(saved), render(requested));
    }
    // Rows that divide evenly make padding and dropping the same plan.
    if saved.drop_remainder != requested.drop_remainder
        && dataset.num_rows() % u64::from(saved.world_size) != 0
    {
        return mismatch(
            "shard_drop_remainder",
            saved.drop_remainder.to_string(),
            requested.drop_remainder.to_string(),
        );
    }
    // The automatic shuffle may have run as block for lack of memory; an explicit one must match.
    let compatible = match shuffle_requested {
        None => matches!(saved.shuffle, ShuffleMode::Global | ShuffleMode::Block),
        Some(mode) => saved.shuffle == mode,
    };
    if !compatible {
        let render = |mode: Option<ShuffleMode>| match mode {
            None => "Auto (Global, or Block over the memory budget)".to_string(),
            Some(mode) => format!("{mode:?}"),
        };
        return mismatch(
            "shuffle",
            format!("{:?}", saved.shuffle),
            render(shuffle_requested),
        );
    }
    Ok(saved.clone())
}

/// Bytes of the buffers a batch's rows use (slices count their share, not the whole buffer).
fn logical_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

/// An iterator over the rest of an epoch, usable as an Arrow [`RecordBatchReader`] (and from there
/// as an `ArrowArrayStream`).
#[derive(Debug)]
pub struct EpochReader {
    schema: SchemaRef,
    core: Arc<Mutex<Core>>,
}

impl EpochReader {
    /// The loader's next batch with its epoch and position (what the iterator yields, with
    /// the batch's place in the epoch): `None` at the end of the epoch.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        lock(&self.core).next_batch()
    }
}

impl Iterator for EpochReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
            .map(|b| b.map(|b| b.data))
            .map_err(Error::into_arrow)
            .transpose()
    }
}

impl RecordBatchReader for EpochReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
