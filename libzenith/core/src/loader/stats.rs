//! Counters a loader keeps while it runs, shared by the consumer and the workers. Each update
//! also goes to the process-wide [`crate::telemetry`] registry, which adds up every loader.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::options::ShardSource;
use super::plan::ShuffleMode;
use crate::runtime::io::IoBackend;

/// Live counters (atomics: workers and the consumer update them without locks).
#[derive(Debug)]
pub struct Counters {
    opened: Instant,
    rows: AtomicU64,
    batches: AtomicU64,
    bytes: AtomicU64,
    first_batch_ns: AtomicU64,
    consumer_wait_ns: AtomicU64,
    worker_busy_ns: AtomicU64,
    decode_ns: AtomicU64,
    chunks_decoded: AtomicU64,
}

impl Counters {
    /// Counters starting now (time to first batch is measured from here).
    pub fn new(opened: Instant) -> Self {
        super::metrics::metrics().open.add(1.0);
        Counters {
            opened,
            rows: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            first_batch_ns: AtomicU64::new(u64::MAX),
            consumer_wait_ns: AtomicU64::new(0),
            worker_busy_ns: AtomicU64::new(0),
            decode_ns: AtomicU64::new(0),
            chunks_decoded: AtomicU64::new(0),
        }
    }

    /// A batch of `rows` rows and `bytes` bytes reached the consumer.
    pub fn delivered(&self, rows: usize, bytes: usize) {
        let global = &super::metrics::metrics();
        self.rows.fetch_add(rows as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        global.rows.inc_by(rows as u64);
        global.bytes.inc_by(bytes as u64);
        global.batches.inc();
        if self.batches.fetch_add(1, Relaxed) == 0 {
            let elapsed = self.opened.elapsed();
            self.first_batch_ns.store(nanos(elapsed), Relaxed);
            global.time_to_first_batch.observe_duration(elapsed);
        }
    }

    /// The consumer waited `elapsed` for a batch.
    pub fn consumer_waited(&self, elapsed: Duration) {
        self.consumer_wait_ns.fetch_add(nanos(elapsed), Relaxed);
        super::metrics::metrics()
            .consumer_wait
            .observe_duration(elapsed);
    }

    /// A worker (or the consumer, without workers) spent `elapsed` building a batch.
    pub fn worker_busy(&self, elapsed: Duration) {
        self.worker_busy_ns.fetch_add(nanos(elapsed), Relaxed);
        super::metrics::metrics().worker_busy.add_duration(elapsed);
    }

    /// A chunk was decoded, taking `elapsed`.
    pub fn chunk_decoded(&self, elapsed: Duration) {
        self.chunks_decoded.fetch_add(1, Relaxed);
        self.decode_ns.fetch_add(nanos(elapsed), Relaxed);
        let global = &super::metrics::metrics();
        global.chunks_decoded.inc();
        global.decode.add_duration(elapsed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let first = self.first_batch_ns.load(Relaxed);
        Snapshot {
            rows: self.rows.load(Relaxed),
            batches: self.batches.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            time_to_first_batch_ns: if first == u64::MAX { 0 } else { first },
            consumer_wait_ns: self.consumer_wait_ns.load(Relaxed),
            worker_busy_ns: self.worker_busy_ns.load(Relaxed),
            decode_ns: self.decode_ns.load(Relaxed),
            chunks_decoded: self.chunks_decoded.load(Relaxed),
            ..Snapshot::default()
        }
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        super::metrics::metrics().open.add(-1.0);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What [`crate::Loader::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Rows delivered since open.
    pub rows: u64,
    /// Batches delivered since open.
    pub batches: u64,
    /// Arrow buffer bytes of the delivered batches.
    pub bytes: u64,
    /// From open to the first delivered batch (0 before it).
    pub time_to_first_batch_ns: u64,
    /// Time the consumer spent blocked waiting for batches.
    pub consumer_wait_ns: u64,
    /// Time spent building batches (all workers together).
    pub worker_busy_ns: u64,
    /// Time spent decoding chunks (included in worker time).
    pub decode_ns: u64,
    /// Chunks (row groups, record batches) decoded.
    pub chunks_decoded: u64,
    /// Batches built and waiting for the consumer now.
    pub queue_depth: u64,
    /// The current epoch.
    pub epoch: u64,
    /// Batches per epoch for this rank.
    pub batches_per_epoch: u64,
    /// The order mode running (a global shuffle over budget runs as block).
    pub shuffle: ShuffleMode,
    /// Worker threads.
    pub num_workers: u32,
    /// The NUMA node workers run on and gathered batches are allocated on (`None`: none, also
    /// when the node or GPU asked for has no known node on this machine).
    pub numa_node: Option<u32>,
    /// Worker threads of the current epoch pinned to the node's CPUs.
    pub pinned_workers: u32,
    /// The I/O backend reading the files (`pread` when io_uring was asked for and unavailable).
    pub io_backend: IoBackend,
    /// The I/O backend the options asked for.
    pub io_backend_requested: IoBackend,
    /// Bytes read from the files (for mmap: bytes handed to the decoder).
    pub io_read_bytes: u64,
    /// Time spent in reads (0 for mmap: its reads are page faults, part of the decode time).
    pub io_read_ns: u64,
    /// This loader's rank.
    pub rank: u32,
    /// The number of ranks sharing each epoch.
    pub world_size: u32,
    /// Where rank and world size came from.
    pub shard_source: ShardSource,
    /// The shuffle the options asked for (`None`: automatic; compare with `shuffle` to see a
    /// downgrade to block).
    pub shuffle_requested: Option<ShuffleMode>,
    /// The memory budget that decided the shuffle, in bytes.
    pub memory_budget: u64,
    /// Estimated bytes of the dataset decoded, which a global shuffle holds (0 when the data is
    /// served without decoding: memory-mapped Arrow IPC, CSV).
    pub decoded_bytes: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            rows: 0,
            batches: 0,
            bytes: 0,
            time_to_first_batch_ns: 0,
            consumer_wait_ns: 0,
            worker_busy_ns: 0,
            decode_ns: 0,
            chunks_decoded: 0,
            queue_depth: 0,
            epoch: 0,
            batches_per_epoch: 0,
            shuffle: ShuffleMode::None,
            num_workers: 0,
            numa_node: None,
            pinned_workers: 0,
            io_backend: IoBackend::Mmap,
            io_backend_requested: IoBackend::Mmap,
            io_read_bytes: 0,
            io_read_ns: 0,
            rank: 0,
            world_size: 1,
            shard_source: ShardSource::None,
            shuffle_requested: None,
            memory_budget: 0,
            decoded_bytes: 0,
        }
    }
}
