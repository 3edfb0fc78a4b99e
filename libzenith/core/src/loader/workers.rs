//! The worker pool: threads that build an epoch's batches ahead of the consumer.
//!
//! Workers claim batch indices in plan order, at most `prefetch` ahead of the consumer, build them
//! in parallel and publish them in a reorder ring (a slot per index); the consumer takes them
//! strictly in plan order. So the output is identical for any number of workers, and memory is
//! bounded by `prefetch` batches (plus the chunks the cache holds for them). Dropping the pool
//! stops the workers: they finish the batch in hand, see the cancel flag and exit; the drop joins
//! them.
//!
//! Test-only: `ZENITH_TEST_WORKER_DELAY_MS=N` in the environment when a pipeline starts makes each
//! worker wait N milliseconds before building each batch (cancellable: a stopped pipeline does
//! not wait for it). Tests use it to make the consumer wait (timeouts, Ctrl-C in the bindings);
//! it is not meant for anything else.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use crossbeam_utils::CachePadded;

use super::cache::ChunkCache;
use super::gather::{ChunkSource, FileChecks, gather_range, gather_rows};
use super::numa;
use super::plan::{BatchRows, EpochPlan};
use super::stage::Stages;
use super::stats::Counters;
use crate::batch::gather_kernel::HostPool;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::runtime::affinity;
use crate::runtime::ring;
use crate::runtime::ring::ReorderRing;
use crate::telemetry::Gauge;

/// The name the loader's hand-off rings carry in the ring telemetry.
const HANDOFF_RING: &str = "loader_handoff";

/// Test-only: milliseconds each worker waits before building a batch (see the module docs).
pub const TEST_WORKER_DELAY_ENV: &str = "ZENITH_TEST_WORKER_DELAY_MS";

fn test_worker_delay() -> Duration {
    std::env::var(TEST_WORKER_DELAY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_millis)
}

/// What [`Pipeline::next`] got.
#[derive(Debug)]
pub enum Next {
    /// Batch `index` of the plan.
    Batch(u64, RecordBatch),
    /// The epoch is delivered.
    Done,
    /// The batch was not published before the timeout; nothing was consumed.
    Pending,
}

/// A built batch and the mapped files it may hold views of (checked again on delivery: a
/// batch waiting in the ring while its file shrinks must not be handed over).
#[derive(Debug)]
struct Built {
    data: RecordBatch,
    /// Indices into the dataset's sources.
    mapped_files: Vec<usize>,
}

/// One epoch's work: the plan and what building a batch needs.
#[derive(Debug)]
pub struct EpochJob {
    dataset: Arc<Dataset>,
    plan: EpochPlan,
    /// `None` when the dataset serves chunks without decoding (nothing to cache).
    cache: Option<ChunkCache>,
    counters: Arc<Counters>,
    /// The NUMA node gathered batches are copied to (see [`numa`]).
    numa_node: Option<u32>,
    /// Run on each batch after gathering (and placement), before publication.
    stages: Stages,
    /// Where the gather kernel writes batches (on `numa_node` when there is one).
    pool: HostPool,
    /// Batches the kernel did not write are copied into `pool` too.
    pool_every_batch: bool,
}

impl EpochJob {
    /// Prepares the epoch `plan` over `dataset`, to be delivered from batch `first_batch` on;
    /// idle workers decode up to `read_ahead` chunks ahead of need; gathered batches are
    /// allocated on `numa_node` when given, in buffers from `pool`.
    pub fn new(
        dataset: Arc<Dataset>,
        plan: EpochPlan,
        first_batch: u64,
        read_ahead: usize,
        counters: Arc<Counters>,
        numa_node: Option<u32>,
        pool: HostPool,
    ) -> Self {
        let cache = (!dataset.in_memory()).then(|| {
            ChunkCache::new(
                dataset.clone(),
                counters.clone(),
                &plan,
                first_batch,
                read_ahead,
            )
        });
        EpochJob {
            dataset,
            plan,
            cache,
            counters,
            numa_node,
            stages: Stages::default(),
            pool,
            pool_every_batch: false,
        }
    }

    /// Copies every batch the gather kernel did not write into the pool (see
    /// [`crate::loader::LoaderOptions::set_pool_every_batch`]).
    pub fn with_pool_every_batch(mut self, every_batch: bool) -> Self {
        self.pool_every_batch = every_batch;
        self
    }

    /// Runs `stages` on each batch before it is published.
    pub fn with_stages(mut self, stages: Stages) -> Self {
        self.stages = stages;
        self
    }

    /// The plan.
    pub fn plan(&self) -> &EpochPlan {
        &self.plan
    }

    /// Decodes a chunk ahead of need, if any is worth it; whether it did.
    fn read_ahead(&self) -> bool {
        self.cache.as_ref().is_some_and(ChunkCache::read_ahead)
    }

    /// Builds batch `index`. A panic inside becomes [`Error::Panic`]: a worker never dies
    /// silently and leaves the consumer waiting.
    fn build(&self, index: u64) -> Result<Built> {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| self.build_inner(index)))
            .unwrap_or_else(|_| Err(Error::Panic(format!("building batch {index} panicked"))));
        self.counters.worker_busy(started.elapsed());
        result
    }

    fn build_inner(&self, index: u64) -> Result<Built> {
        let rows = self.plan.batch(index).ok_or_else(|| {
            Error::Internal(format!("batch {index} is past the end of the epoch"))
        })?;
        let source: &dyn ChunkSource = match &self.cache {
            Some(cache) => cache,
            None => self.dataset.as_ref(),
        };
        // A gathered batch first decodes the chunks it reads that no other worker is decoding,
        // so that workers whose batches share many chunks decode them side by side. A range
        // (dataset order) does not: it takes only the pieces of its chunks that hold its rows.
        let touched = match &self.cache {
            Some(cache) => {
                let touched = chunks_touched(&self.dataset, &rows);
                if matches!(rows, BatchRows::Rows(_)) {
                    cache.decode_unclaimed(&touched)?;
                }
                Some(touched)
            }
            None => None,
        };
        let mut checks = FileChecks::default();
        // `placed`: written by the kernel into the pool, which allocates on `numa_node`.
        let (batch, placed) = match &rows {
            BatchRows::Range { start, len } => (
                gather_range(&self.dataset, source, &mut checks, *start, *len)?,
                false,
            ),
            BatchRows::Rows(rows) => {
                let gathered =
                    gather_rows(&self.dataset, source, &mut checks, rows, &self.pool, index)?;
                (gathered.batch, gathered.pooled)
            }
        };
        if let (Some(cache), Some(touched)) = (&self.cache, &touched) {
            cache.release(touched);
        }
        let data = match self.numa_node {
            _ if self.pool_every_batch && !placed => {
                crate::batch::placement::copy_to_pool(&batch, &self.pool)?
            }
            Some(node) if !placed && numa::is_gathered(&self.dataset, &rows) => {
                crate::batch::placement::copy_to_node(&batch, node)?
            }
            _ => batch,
        };
        let data = self.stages.apply(data, index)?;
        let sources = self.dataset.sources();
        let mapped_files = checks
            .files()
            .iter()
            .copied()
            .filter(|&s| sources[s].maps_file())
            .collect();
        Ok(Built { data, mapped_files })
    }

    /// Checks, right before a batch built earlier is handed over, that the mapped files it may
    /// hold views of have not changed since (pages of a file that shrank fault when read).
    fn check_before_delivery(&self, built: &Built) -> Result<()> {
        built
            .mapped_files
            .iter()
            .try_for_each(|&s| self.dataset.check_source(s))
    }
}

/// The distinct chunks a batch reads.
fn chunks_touched(dataset: &Dataset, rows: &BatchRows) -> Vec<usize> {
    match *rows {
        BatchRows::Range { len: 0, .. } => Vec::new(),
        BatchRows::Range { start, len } => {
            (dataset.chunk_of_row(start)..=dataset.chunk_of_row(start + len as u64 - 1)).collect()
        }
        BatchRows::Rows(ref rows) => {
            let mut chunks: Vec<usize> = rows.iter().map(|&r| dataset.chunk_of_row(r)).collect();
            chunks.sort_unstable();
            chunks.dedup();
            chunks
        }
    }
}

/// Delivers an epoch's batches in plan order, built by `num_workers` threads (or, with none, by
/// the calling thread on demand).
///
/// The hand-off is a [`ReorderRing`] with a slot per batch index modulo its capacity (at least
/// `prefetch`): a worker claims the next index with a compare-and-swap on a counter, allowed
/// while it is less than `prefetch` ahead of the consumer, builds the batch and publishes it at
/// its index; the consumer takes index after index. No lock is taken on the way. A thread with
/// nothing to do sleeps on a condition variable ([`Sleepers`]) after a short spin, and is woken
/// only by what it waits for: the consumer by the publication of the very batch it needs, a
/// worker by a slot freed by the consumer.
#[derive(Debug)]
pub struct Pipeline {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// `Shared::awaited` when the consumer is not asleep.
const NOBODY: u64 = u64::MAX;

/// Checks of the ring the consumer makes before it sleeps (a batch about to be published
/// arrives without a sleep and a wake-up); short, so it never competes with the workers for long.
const CONSUMER_SPINS: u32 = 64;

#[derive(Debug)]
struct Shared {
    job: EpochJob,
    num_batches: u64,
    prefetch: u64,
    /// Built batches (or their errors) by index, position = batch index.
    ring: ReorderRing<Result<Built>>,
    /// The next index a worker claims.
    next_to_claim: CachePadded<AtomicU64>,
    /// The next index the consumer delivers; stored by the consumer only.
    next_to_deliver: CachePadded<AtomicU64>,
    /// The index the consumer sleeps on, or [`NOBODY`].
    awaited: AtomicU64,
    /// The batch at `next_to_deliver` failed when it was delivered: the next call builds it
    /// again on the consumer's thread (its slot has been handed back to the workers).
    rebuild: AtomicBool,
    /// Batches (not errors) built and waiting in the ring.
    ready: AtomicU64,
    cancelled: AtomicBool,
    /// Where the consumer sleeps until its batch is published.
    batch_ready: Sleepers,
    /// Where idle workers sleep until the consumer frees a slot (or the epoch ends).
    slot_free: Sleepers,
    /// Workers that pinned themselves to the pipeline's CPUs.
    pinned_workers: AtomicU32,
    /// `zenith_ring_occupancy{ring="loader_handoff"}`: batches parked in hand-off rings.
    occupancy: Arc<Gauge>,
    /// Test-only wait before each batch a worker builds (see the module docs).
    test_delay: Duration,
}

impl Pipeline {
    /// Starts delivering `job` from batch `first_batch`, with `num_workers` threads keeping up to
    /// `prefetch` batches ahead; each thread pins itself to `cpus` when given.
    pub fn start(
        job: EpochJob,
        first_batch: u64,
        num_workers: usize,
        prefetch: usize,
        cpus: Option<Arc<[u32]>>,
    ) -> Result<Self> {
        let num_batches = job.plan.num_batches();
        // Ring positions are batch indices; the ring keeps them in the upper bits of a usize.
        if usize::try_from(num_batches).map_or(true, |n| n > usize::MAX / 4) {
            return Err(Error::Unsupported(format!(
                "an epoch of {num_batches} batches is more than this platform can index"
            )));
        }
        // The window never needs to reach past the end of the epoch; clamping it also bounds the
        // ring (a slot per batch of the window) for a prefetch as large as `usize::MAX`.
        let remaining = num_batches.saturating_sub(first_batch).max(1);
        let prefetch = u64::try_from(prefetch)
            .unwrap_or(u64::MAX)
            .clamp(1, remaining);
        let shared = Arc::new(Shared {
            job,
            num_batches,
            prefetch,
            ring: ReorderRing::new(prefetch as usize, first_batch as usize),
            next_to_claim: CachePadded::new(AtomicU64::new(first_batch)),
            next_to_deliver: CachePadded::new(AtomicU64::new(first_batch)),
            awaited: AtomicU64::new(NOBODY),
            rebuild: AtomicBool::new(false),
            ready: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            batch_ready: Sleepers::default(),
            slot_free: Sleepers::default(),
            pinned_workers: AtomicU32::new(0),
            occupancy: ring::metrics::occupancy(HANDOFF_RING),
            test_delay: test_worker_delay(),
        });
        ring::metrics::capacity(HANDOFF_RING).add(shared.ring.capacity() as f64);
        let mut pipeline = Pipeline {
            shared,
            workers: Vec::with_capacity(num_workers),
        };
        for worker in 0..num_workers {
            let shared = pipeline.shared.clone();
            let cpus = cpus.clone();
            let handle = std::thread::Builder::new()
                .name(format!("zenith-worker-{worker}"))
                .spawn(move || {
                    // A worker that cannot pin (a cpuset without those CPUs) runs unpinned; the
                    // count of pinned workers in the stats shows it.
                    if cpus.is_some_and(|cpus| affinity::pin_current_thread(&cpus).is_ok()) {
                        shared.pinned_workers.fetch_add(1, Relaxed);
                    }
                    shared.work()
                })
                .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?;
            // Pushed at once: on an error, dropping `pipeline` stops and joins those started.
            pipeline.workers.push(handle);
        }
        Ok(pipeline)
    }

    /// The plan being delivered.
    pub fn plan(&self) -> &EpochPlan {
        self.shared.job.plan()
    }

    /// Batches delivered so far in this epoch (including those skipped by a resume).
    pub fn delivered(&self) -> u64 {
        self.shared.next_to_deliver.load(Relaxed)
    }

    /// Worker threads that pinned themselves to the pipeline's CPUs so far.
    pub fn pinned_workers(&self) -> u32 {
        self.shared.pinned_workers.load(Relaxed)
    }

    /// Batches built and waiting for the consumer.
    pub fn queue_depth(&self) -> u64 {
        self.shared.ready.load(Relaxed)
    }

    /// The next batch in plan order with its index, [`Next::Done`] at the end of the epoch, or
    /// [`Next::Pending`] when the workers did not publish it within `timeout` (`Duration::MAX`:
    /// no limit; without workers the calling thread builds it, whatever the timeout). A failed
    /// batch is reported once and then rebuilt by the next call: nothing is skipped.
    ///
    /// Calls must not overlap (the loader serialises them).
    pub fn next(&self, counters: &Counters, timeout: Duration) -> Result<Next> {
        let shared = &*self.shared;
        let index = shared.next_to_deliver.load(Relaxed);
        if index >= shared.num_batches || shared.cancelled.load(Relaxed) {
            return Ok(Next::Done);
        }
        if self.workers.is_empty() {
            // Built on this thread just now: its files were checked as it was built.
            let built = shared.job.build(index)?;
            shared.advance(index);
            return Ok(Next::Batch(index, built.data));
        }
        let waiting_since = Instant::now();
        let result = if shared.rebuild.load(Relaxed) {
            // The retry of a failure just reported; no worker will build this index again.
            let result = shared.job.build(index);
            shared.rebuild.store(result.is_err(), Relaxed);
            result
        } else {
            let Some(result) = shared.take(index, waiting_since.checked_add(timeout)) else {
                counters.consumer_waited(waiting_since.elapsed());
                return Ok(Next::Pending);
            };
            if result.is_ok() {
                shared.ready.fetch_sub(1, Relaxed);
                super::metrics::metrics().queue_depth.add(-1.0);
                shared.occupancy.add(-1.0);
            }
            // Built a while ago: its mapped files may have changed while it waited.
            let result = result.and_then(|built| {
                shared.job.check_before_delivery(&built)?;
                Ok(built)
            });
            if result.is_err() {
                shared.rebuild.store(true, Relaxed);
            }
            result
        };
        counters.consumer_waited(waiting_since.elapsed());
        let built = result?;
        shared.advance(index);
        Ok(Next::Batch(index, built.data))
    }
}

impl Shared {
    /// The consumer's side: takes batch `index` from the ring, waiting until it is published or
    /// `deadline` passes (`None`: no deadline; then it returns `None`, and the batch stays for a
    /// later call).
    fn take(&self, index: u64, deadline: Option<Instant>) -> Option<Result<Built>> {
        let position = index as usize;
        for _ in 0..CONSUMER_SPINS {
            if self.ring.is_ready(position) {
                if let Some(result) = self.ring.take(position) {
                    return Some(result);
                }
            }
            std::hint::spin_loop();
        }
        self.awaited.store(index, Relaxed);
        let result = self
            .batch_ready
            .wait_until_deadline(|| self.ring.take(position), deadline);
        self.awaited.store(NOBODY, Relaxed);
        result
    }

    /// Test-only: waits `test_delay` before a build, or less when the pipeline is stopped.
    fn test_delay(&self) {
        let until = Instant::now() + self.test_delay;
        while !self.cancelled.load(Acquire) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(10)));
        }
    }

    /// The consumer's side: batch `index` is delivered; the window moves on by one slot.
    fn advance(&self, index: u64) {
        // Release: our take of the batch's slot happens before a worker's reuse of it.
        self.next_to_deliver.store(index + 1, Release);
        // One slot freed: one worker can use it. At the end, every worker is to exit.
        self.slot_free.notify(index + 1 >= self.num_batches);
    }

    /// Whether workers have nothing left to do.
    fn finished(&self) -> bool {
        self.cancelled.load(Acquire) || self.next_to_deliver.load(Acquire) >= self.num_batches
    }

    /// Whether a claim could succeed now.
    fn claimable(&self) -> bool {
        let next = self.next_to_claim.load(Relaxed);
        next < self.num_batches && next < self.next_to_deliver.load(Acquire) + self.prefetch
    }

    /// Claims the next index to build, if the window allows one.
    fn claim(&self) -> Option<u64> {
        let mut next = self.next_to_claim.load(Relaxed);
        loop {
            // Acquire: the consumer's take of index `next - capacity` (which `next` replaces in
            // its slot) happens before our publication.
            let delivered = self.next_to_deliver.load(Acquire);
            if next >= self.num_batches || next >= delivered + self.prefetch {
                return None;
            }
            match self
                .next_to_claim
                .compare_exchange_weak(next, next + 1, Relaxed, Relaxed)
            {
                Ok(_) => return Some(next),
                Err(current) => next = current,
            }
        }
    }

    /// A worker's life: claim the next index the window allows, build it, publish it; when the
    /// window is full, decode a chunk ahead instead of sleeping; until the epoch is delivered or
    /// the pipeline is dropped.
    fn work(&self) {
        let mut read_ahead_idle = false;
        loop {
            if self.finished() {
                return;
            }
            if let Some(index) = self.claim() {
                read_ahead_idle = false;
                if !self.test_delay.is_zero() {
                    self.test_delay();
                }
                let result = self.job.build(index);
                if self.cancelled.load(Acquire) {
                    return;
                }
                if result.is_ok() {
                    // Counted before publication, so the consumer's decrement never underflows.
                    self.ready.fetch_add(1, Relaxed);
                    super::metrics::metrics().queue_depth.add(1.0);
                    self.occupancy.add(1.0);
                }
                // The claim window keeps the slot free for `index` (its previous lap,
                // `index - capacity`, is below the consumer's position), and only this worker
                // claimed `index`.
                let published = self.ring.publish(index as usize, result);
                debug_assert!(published.is_ok(), "slot of batch {index} not free");
                self.batch_ready
                    .notify_if(|| self.awaited.load(Relaxed) == index);
                continue;
            }
            if !read_ahead_idle {
                // Nothing decoded ahead means nothing to do: sleep until a slot frees up.
                read_ahead_idle = !self.job.read_ahead();
                continue;
            }
            self.slot_free
                .wait_until(|| (self.finished() || self.claimable()).then_some(()));
        }
    }
}

impl Pipeline {
    /// Stops the workers and waits for them; no batch is delivered afterwards. Idempotent.
    pub fn stop(&mut self) {
        self.shared.cancelled.store(true, Release);
        self.shared.slot_free.notify(true);
        self.shared.batch_ready.notify(true);
        for worker in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = worker.join();
        }
        // Batches built and never to be delivered leave the process-wide queue gauge (once:
        // `stop` may run again from drop).
        let discarded = self.shared.ready.swap(0, Relaxed);
        super::metrics::metrics()
            .queue_depth
            .add(-(discarded as f64));
        self.shared.occupancy.add(-(discarded as f64));
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Threads sleeping until a condition holds: a condition variable behind a count of sleepers,
/// so that a notification nobody waits for costs a fence and a load, not a lock.
///
/// A waiter registers, then polls; a notifier changes the state, then looks for waiters (both
/// with a `SeqCst` fence in between). So either the notifier sees the waiter, or the waiter's
/// poll sees the change: no wake-up is lost. The notifier takes the lock before notifying, so a
/// waiter between its poll and its wait cannot miss it.
#[derive(Debug, Default)]
struct Sleepers {
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Sleepers {
    /// Sleeps until `poll` returns something, and returns it.
    fn wait_until<R>(&self, poll: impl FnMut() -> Option<R>) -> R {
        self.wait_until_deadline(poll, None)
            .expect("a wait without a deadline ends with a result")
    }

    /// Sleeps until `poll` returns something, and returns it, or until `deadline` (`None`: no
    /// deadline) passes: then `None`.
    fn wait_until_deadline<R>(
        &self,
        mut poll: impl FnMut() -> Option<R>,
        deadline: Option<Instant>,
    ) -> Option<R> {
        // Poisoning cannot leave `()` inconsistent.
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.sleeping.fetch_add(1, SeqCst);
        fence(SeqCst);
        let out = loop {
            if let Some(out) = poll() {
                break Some(out);
            }
            guard = match deadline {
                None => self
                    .wake
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    self.wake
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        };
        self.sleeping.fetch_sub(1, Relaxed);
        out
    }

    /// Wakes one sleeper (or all) after a change that may satisfy them.
    fn notify(&self, all: bool) {
        self.notify_if_inner(all, || true);
    }

    /// Wakes the sleepers if `wanted` says the change is what they wait for.
    fn notify_if(&self, wanted: impl FnOnce() -> bool) {
        self.notify_if_inner(true, wanted);
    }

    fn notify_if_inner(&self, all: bool, wanted: impl FnOnce() -> bool) {
        fence(SeqCst);
        if self.sleeping.load(Relaxed) == 0 || !wanted() {
            return;
        }
        drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
        if all {
            self.wake.notify_all();
        } else {
            self.wake.notify_one();
        }
    }
}

impl Drop for Shared {
    /// The last owner is gone (workers joined, consumer done): the ring leaves the capacity
    /// gauge it joined at start.
    fn drop(&mut self) {
        ring::metrics::capacity(HANDOFF_RING).add(-(self.ring.capacity() as f64));
    }
}
