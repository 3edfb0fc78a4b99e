//! What a user can ask of a loader, validated at the setter so errors point at the argument.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_schema::SchemaRef;

use super::plan::ShuffleMode;
use super::stage::{BatchStage, Stages};
use super::state::ResumeState;
use crate::dataset::csv::CsvOptions;
use crate::error::{Error, Result};
use crate::runtime::alloc::MAX_NUMA_NODE;
use crate::runtime::io::remote::StorageOptions;
use crate::runtime::io::{IoBackend, IoOptions};
pub use crate::runtime::memory_budget::default_memory_budget;
use crate::runtime::pool::{HostAllocator, SharedAllocator};
use crate::runtime::topology::PciAddress;

/// The batch size a loader uses unless `zenith_loader_options_set_batch_size` says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// Options for [`crate::Loader::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderOptions {
    pub(crate) batch_size: usize,
    pub(crate) shuffle: ShuffleMode,
    /// The shuffle was set explicitly: a global shuffle over the memory budget is then an error
    /// instead of a block shuffle.
    pub(crate) shuffle_explicit: bool,
    pub(crate) seed: u64,
    pub(crate) drop_last: bool,
    pub(crate) num_workers: Option<usize>,
    pub(crate) prefetch: Option<usize>,
    /// `None`: from the environment.
    pub(crate) shard: Option<(u32, u32)>,
    /// Drop the rows that do not divide evenly across ranks instead of padding.
    pub(crate) shard_drop_remainder: bool,
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) memory_budget: Option<u64>,
    pub(crate) resume: Option<ResumeState>,
    pub(crate) io: IoOptions,
    /// Endpoint, credentials, retries and cache for remote (`s3://`, ...) datasets.
    pub(crate) storage: StorageOptions,
    pub(crate) numa: Option<NumaTarget>,
    pub(crate) sysfs_root: Option<PathBuf>,
    /// How CSV files are split.
    pub(crate) csv: CsvOptions,
    /// The schema CSV and JSON lines files are parsed with (`None`: inferred).
    pub(crate) schema: Option<SchemaRef>,
    /// Transforms the workers run on each batch before delivery.
    pub(crate) stages: Stages,
    /// Where gathered batches' buffers are allocated (`None`: the heap, or the NUMA node the
    /// loader is placed on).
    pub(crate) host_allocator: Option<SharedAllocator>,
    /// Every batch lives in the batch pool: those the gather kernel did not write are copied in.
    pub(crate) pool_every_batch: bool,
}

/// Where a loader's workers run and its batches live: a NUMA node, or the node of a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumaTarget {
    /// The NUMA node with this kernel id.
    Node(u32),
    /// The node of the GPU with this index (PCI address order, as `nvidia-smi` numbers them).
    GpuIndex(u32),
    /// The node of the GPU at this PCI address.
    GpuAddress(PciAddress),
}

impl Default for LoaderOptions {
    /// Batches of 1024 rows, automatic shuffle (global, or block over the memory budget) with
    /// seed 0, the last batch kept, workers and prefetch sized to the machine, rank and world size
    /// from the environment with the remainder padded, all columns.
    fn default() -> Self {
        LoaderOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            shuffle: ShuffleMode::Global,
            shuffle_explicit: false,
            seed: 0,
            drop_last: false,
            num_workers: None,
            prefetch: None,
            shard: None,
            shard_drop_remainder: false,
            columns: None,
            memory_budget: None,
            resume: None,
            numa: None,
            sysfs_root: None,
            io: IoOptions::default(),
            csv: CsvOptions::default(),
            schema: None,
            storage: StorageOptions::default(),
            stages: Stages::default(),
            host_allocator: None,
            pool_every_batch: false,
        }
    }
}

impl LoaderOptions {
    /// Rows per batch; every batch has exactly this many rows except the last of an epoch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets the rows per batch. Zero is an [`Error::InvalidArgument`].
    pub fn set_batch_size(&mut self, batch_size: usize) -> Result<()> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        self.batch_size = batch_size;
        Ok(())
    }

    /// Sets how epochs order rows, strictly: a [`ShuffleMode::Global`] set here whose decoded
    /// data exceeds the memory budget fails at open with [`Error::OutOfMemory`] (see
    /// [`Self::set_shuffle_auto`] for the default that falls back to a block shuffle).
    pub fn set_shuffle(&mut self, shuffle: ShuffleMode) {
        self.shuffle = shuffle;
        self.shuffle_explicit = true;
    }

    /// The default shuffle: global, or block (with windows that fit) when the decoded data would
    /// exceed the memory budget; [`crate::loader::stats::Snapshot::shuffle`] says which ran.
    pub fn set_shuffle_auto(&mut self) {
        self.shuffle = ShuffleMode::Global;
        self.shuffle_explicit = false;
    }

    /// The shuffle asked for: `None` for the automatic default (see [`Self::set_shuffle_auto`]).
    pub fn shuffle_request(&self) -> Option<ShuffleMode> {
        self.shuffle_explicit.then_some(self.shuffle)
    }

    /// Sets the storage option `key` to `value` (see
    /// [`crate::runtime::io::remote::options::KEYS`]); an unknown key or a value that does not
    /// parse is an [`Error::InvalidArgument`].
    pub fn set_storage_option(&mut self, key: &str, value: &str) -> Result<()> {
        self.storage.set(key, value)
    }

    /// The storage options set.
    pub fn storage_options(&self) -> &StorageOptions {
        &self.storage
    }

    /// Sets the seed of the shuffle (the order is a pure function of seed and epoch).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// Drops the last batch of an epoch when it is shorter than `batch_size`.
    pub fn set_drop_last(&mut self, drop_last: bool) {
        self.drop_last = drop_last;
    }

    /// Sets the number of worker threads building batches (0: batches are built by the thread
    /// that asks for them). Workers change speed, never content or order.
    pub fn set_num_workers(&mut self, num_workers: usize) -> Result<()> {
        if num_workers > MAX_WORKERS {
            return Err(Error::InvalidArgument(format!(
                "num_workers must be at most {MAX_WORKERS}"
            )));
        }
        self.num_workers = Some(num_workers);
        Ok(())
    }

    /// Sets how many batches may be built ahead of the consumer (at least 1).
    pub fn set_prefetch(&mut self, prefetch: usize) -> Result<()> {
        if prefetch == 0 {
            return Err(Error::InvalidArgument("prefetch must be at least 1".into()));
        }
        self.prefetch = Some(prefetch);
        Ok(())
    }

    /// Makes this loader rank `rank` of `world_size`: it receives its share of each epoch, and
    /// the environment (`RANK`, `SLURM_PROCID`, ...) is not consulted.
    pub fn set_shard(&mut self, rank: u32, world_size: u32) -> Result<()> {
        check_shard(rank, world_size)?;
        self.shard = Some((rank, world_size));
        Ok(())
    }

    /// No sharding, whatever the environment says: the loader reads every row (rank 0 of 1), also
    /// under `torchrun` or `srun` (an evaluation loader on one rank).
    pub fn set_shard_none(&mut self) {
        self.shard = Some((0, 1));
    }

    /// Shards from the environment again (the default): `RANK`/`WORLD_SIZE`, else
    /// `SLURM_PROCID`/`SLURM_NTASKS`, else no sharding.
    pub fn set_shard_from_env(&mut self) {
        self.shard = None;
    }

    /// What a rank gets when the rows do not divide evenly across ranks. By default (`false`) the
    /// order is padded by wrapping around to its first rows, as torch's `DistributedSampler`
    /// does: every rank gets `ceil(rows / world_size)` rows, and a few rows are seen twice per
    /// epoch. With `true` the last `rows % world_size` rows of each epoch's order are dropped:
    /// every rank gets `floor(rows / world_size)` rows. Either way every rank gets the same
    /// number of batches.
    pub fn set_shard_drop_remainder(&mut self, drop: bool) {
        self.shard_drop_remainder = drop;
    }

    /// Keeps only these columns, in this order (`None`: every column). Names are checked against
    /// the dataset at open.
    pub fn set_columns(&mut self, columns: Option<Vec<String>>) -> Result<()> {
        if let Some(columns) = &columns {
            if columns.is_empty() {
                return Err(Error::InvalidArgument("columns must not be empty".into()));
            }
        }
        self.columns = columns;
        Ok(())
    }

    /// Caps the bytes of decoded data the loader holds for shuffling (`None`: half of the memory
    /// available when the loader opens, divided among the node's ranks; see
    /// [`default_memory_budget`]). With the automatic shuffle, decoded data that would exceed it
    /// is shuffled in blocks instead (the stats say which mode ran); a global shuffle set with
    /// [`Self::set_shuffle`] fails to open instead.
    pub fn set_memory_budget(&mut self, bytes: Option<u64>) -> Result<()> {
        if bytes == Some(0) {
            return Err(Error::InvalidArgument(
                "memory_budget must be positive".into(),
            ));
        }
        self.memory_budget = bytes;
        Ok(())
    }

    /// Runs the workers on NUMA node `node` and allocates gathered batches there (`None`: no
    /// placement, the default). Replaces a GPU set with [`Self::set_near_gpu`]. A node the
    /// machine does not have means no placement (the loader runs, and its stats say so).
    pub fn set_numa_node(&mut self, node: Option<u32>) -> Result<()> {
        if let Some(node) = node.filter(|n| *n > MAX_NUMA_NODE) {
            return Err(Error::InvalidArgument(format!(
                "numa_node {node} is out of range (at most {MAX_NUMA_NODE})"
            )));
        }
        self.numa = node.map(NumaTarget::Node);
        Ok(())
    }

    /// Runs the workers on the NUMA node of a GPU, given by index ([`NumaTarget::GpuIndex`]) or
    /// PCI address ([`NumaTarget::GpuAddress`]), and allocates gathered batches there. Replaces
    /// a node set with [`Self::set_numa_node`]. The GPU is looked up when the loader opens: an
    /// unknown one is an [`Error::InvalidArgument`] there; a GPU whose node the kernel does not
    /// know means no placement.
    pub fn set_near_gpu(&mut self, gpu: NumaTarget) {
        self.numa = Some(gpu);
    }

    /// Allocates gathered batches' buffers with `allocator` (pinned host memory for a GPU, for
    /// one), pooled and reused once the consumer releases a batch; `None` restores the default:
    /// the heap, or the node the loader is placed on (hugepage-backed where available).
    pub fn set_host_allocator(&mut self, allocator: Option<Arc<dyn HostAllocator>>) {
        self.host_allocator = allocator.map(SharedAllocator);
    }

    /// Makes every delivered batch live in the batch pool ([`Self::set_host_allocator`]), not
    /// only the batches the gather kernel writes there: zero-copy views of mapped files,
    /// concatenations and the kernel's fallbacks are copied into a pool block on the worker
    /// thread (what pinned host output needs: each batch in page-locked memory). Stage outputs
    /// stay where the stage built them.
    pub fn set_pool_every_batch(&mut self, every_batch: bool) {
        self.pool_every_batch = every_batch;
    }

    /// Reads the machine's topology from `root` instead of `/sys` (a host's sysfs mounted
    /// elsewhere in a container, or a fake tree in tests); `None` restores `/sys`.
    pub fn set_sysfs_root(&mut self, root: Option<PathBuf>) {
        self.sysfs_root = root;
    }

    /// Sets how data files are read: memory-mapped (the default; Arrow IPC zero copy), through
    /// io_uring (with a fallback to `pread` where io_uring is unavailable), or with `pread`; with
    /// either of the last two, Arrow IPC record batches are read into owned memory, which is safe
    /// for files that may change while being read. `ZENITH_IO_BACKEND` in the environment
    /// overrides it.
    pub fn set_io_backend(&mut self, backend: IoBackend) {
        self.io.backend = backend;
    }

    /// Opens files with `O_DIRECT` (io_uring and pread): reads bypass the page cache.
    pub fn set_io_direct(&mut self, direct: bool) {
        self.io.direct = direct;
    }

    /// The I/O options.
    pub fn io(&self) -> IoOptions {
        self.io
    }

    /// Sets the CSV field delimiter (`None`: a tab for `.tsv` files, a comma otherwise). A
    /// newline, carriage return or double quote cannot delimit fields: an
    /// [`Error::InvalidArgument`].
    pub fn set_csv_delimiter(&mut self, delimiter: Option<u8>) -> Result<()> {
        if let Some(d @ (b'\n' | b'\r' | b'"')) = delimiter {
            return Err(Error::InvalidArgument(format!(
                "csv delimiter {:?} cannot separate fields (a newline, carriage return or quote)",
                d as char
            )));
        }
        self.csv.delimiter = delimiter;
        Ok(())
    }

    /// Says whether CSV files start with a header row (the default) or with data: columns are
    /// then named by the schema given with [`Self::set_schema`], else `f0`, `f1`, ...
    pub fn set_csv_header(&mut self, header: bool) {
        self.csv.header = header;
    }

    /// Parses CSV and JSON lines files with `schema` instead of inferring one (`None`: inferred
    /// from the first file). With a CSV header, the header must name the schema's fields in
    /// order. An empty schema is an [`Error::InvalidArgument`].
    pub fn set_schema(&mut self, schema: Option<SchemaRef>) -> Result<()> {
        if schema.as_ref().is_some_and(|s| s.fields().is_empty()) {
            return Err(Error::InvalidArgument(
                "schema must have at least one field".into(),
            ));
        }
        self.schema = schema;
        Ok(())
    }

    /// Appends a stage to the chain the workers run on each batch right after gathering it,
    /// before delivery (see [`crate::loader::stage`]). Stages change what a batch holds, never
    /// which rows it has, the order or the resume tokens; a stage that fails on a batch fails
    /// that batch with an [`Error::Stage`] (a later call builds it again).
    pub fn add_stage(&mut self, stage: Arc<dyn BatchStage>) {
        self.stages.push(stage);
    }

    /// Resumes from a token saved by [`crate::Loader::save_state`]: the loader delivers exactly the
    /// batches of that epoch not yet delivered. Checked against the dataset and options at open.
    pub fn set_resume_state(&mut self, token: &[u8]) -> Result<()> {
        self.resume = Some(ResumeState::decode(token)?);
        Ok(())
    }
}

/// The most worker threads a loader starts.
pub const MAX_WORKERS: usize = 256;

/// `rank < world_size`, `world_size >= 1`.
pub(crate) fn check_shard(rank: u32, world_size: u32) -> Result<()> {
    if world_size == 0 {
        return Err(Error::InvalidArgument(
            "world_size must be at least 1".into(),
        ));
    }
    if rank >= world_size {
        return Err(Error::InvalidArgument(format!(
            "rank {rank} is out of range for world_size {world_size} (ranks are 0..{world_size})"
        )));
    }
    Ok(())
}

/// Where a loader's rank and world size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardSource {
    /// Nothing set them: rank 0 of 1 (no option, and none of the environment variables below).
    None,
    /// The options ([`LoaderOptions::set_shard`], [`LoaderOptions::set_shard_none`]).
    Options,
    /// `RANK` / `WORLD_SIZE` in the environment (torchrun, torch.distributed).
    TorchEnv,
    /// `SLURM_PROCID` / `SLURM_NTASKS` in the environment (srun).
    SlurmEnv,
}

/// Rank and world size from the environment and where they came from: `RANK`/`WORLD_SIZE`
/// (torch.distributed), else `SLURM_PROCID`/`SLURM_NTASKS`, else 0 of 1.
pub(crate) fn shard_from_env(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(u32, u32, ShardSource)> {
    for (rank_var, world_var, source) in [
        ("RANK", "WORLD_SIZE", ShardSource::TorchEnv),
        ("SLURM_PROCID", "SLURM_NTASKS", ShardSource::SlurmEnv),
    ] {
        if let (Some(rank), Some(world)) = (lookup(rank_var), lookup(world_var)) {
            let parse = |name: &str, value: &str| {
                value.trim().parse::<u32>().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "environment variable {name}={value:?} is not a rank number"
                    ))
                })
            };
            let (rank, world) = (parse(rank_var, &rank)?, parse(world_var, &world)?);
            check_shard(rank, world).map_err(|e| {
                Error::InvalidArgument(format!(
                    "from {rank_var}/{world_var} in the environment: {e}"
                ))
            })?;
            return Ok((rank, world, source));
        }
    }
    Ok((0, 1, ShardSource::None))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::test_env::env;

    #[test]
    fn shard_defaults_follow_torch_then_slurm() {
        assert_eq!(shard_from_env(env(&[])).unwrap(), (0, 1, ShardSource::None));
        assert_eq!(
            shard_from_env(env(&[("RANK", "2"), ("WORLD_SIZE", "4")])).unwrap(),
            (2, 4, ShardSource::TorchEnv)
        );
        let both = env(&[
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "8"),
        ]);
        assert_eq!(shard_from_env(both).unwrap(), (1, 2, ShardSource::TorchEnv));
        assert_eq!(
            shard_from_env(env(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "8")])).unwrap(),
            (5, 8, ShardSource::SlurmEnv)
        );
        assert!(shard_from_env(env(&[("RANK", "4"), ("WORLD_SIZE", "4")])).is_err());
        assert!(shard_from_env(env(&[("RANK", "x"), ("WORLD_SIZE", "4")])).is_err());
    }

    #[test]
    fn explicit_shuffles_and_shards_are_remembered() {
        let mut o = LoaderOptions::default();
        assert_eq!(o.shuffle_request(), None, "automatic by default");
        o.set_shuffle(ShuffleMode::Global);
        assert_eq!(o.shuffle_request(), Some(ShuffleMode::Global));
        o.set_shuffle_auto();
        assert_eq!(o.shuffle_request(), None);
        assert_eq!(o.shard, None, "from the environment by default");
        o.set_shard_none();
        assert_eq!(o.shard, Some((0, 1)));
        o.set_shard_from_env();
        assert_eq!(o.shard, None);
    }

    #[test]
    fn setters_reject_out_of_domain_values() {
        let mut o = LoaderOptions::default();
        assert!(o.set_batch_size(0).is_err());
        assert!(o.set_prefetch(0).is_err());
        assert!(o.set_shard(3, 3).is_err());
        assert!(o.set_shard(0, 0).is_err());
        let empty = o.set_columns(Some(vec![])).unwrap_err();
        assert_eq!(
            empty.to_string(),
            "invalid argument: columns must not be empty"
        );
        assert!(o.set_memory_budget(Some(0)).is_err());
        assert!(o.set_num_workers(MAX_WORKERS + 1).is_err());
        assert!(o.set_numa_node(Some(MAX_NUMA_NODE + 1)).is_err());
        assert_eq!(o, LoaderOptions::default(), "failed setters change nothing");
    }

    #[test]
    fn the_last_numa_setter_wins() {
        let mut o = LoaderOptions::default();
        o.set_numa_node(Some(1)).unwrap();
        assert_eq!(o.numa, Some(NumaTarget::Node(1)));
        o.set_near_gpu(NumaTarget::GpuIndex(3));
        assert_eq!(o.numa, Some(NumaTarget::GpuIndex(3)));
        o.set_numa_node(None).unwrap();
        assert_eq!(o.numa, None);
    }
}
