//! The worker pool: threads that build an epoch's batches ahead of the consumer.
//!
//! Workers claim batch indices in plan order, at most `prefetch` ahead of the consumer, build them
//! in parallel and park them in a reorder buffer; the consumer takes them strictly in plan order.
//! So the output is identical for any number of workers, and memory is bounded by `prefetch`
//! batches (plus the chunks the cache holds for them). Dropping the pool stops the workers: they
//! finish the batch in hand, see the cancel flag and exit; the drop joins them.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use arrow_array::RecordBatch;

use super::cache::ChunkCache;
use super::gather::{ChunkSource, gather_range, gather_rows};
use super::plan::{BatchRows, EpochPlan};
use super::stats::Counters;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::telemetry::registry;

/// One epoch's work: the plan and what building a batch needs.
#[derive(Debug)]
pub struct EpochJob {
    dataset: Arc<Dataset>,
    plan: EpochPlan,
    /// `None` when the dataset serves chunks without decoding (nothing to cache).
    cache: Option<ChunkCache>,
    counters: Arc<Counters>,
}

impl EpochJob {
    /// Prepares the epoch `plan` over `dataset`, to be delivered from batch `first_batch` on;
    /// idle workers decode up to `read_ahead` chunks ahead of need.
    pub fn new(
        dataset: Arc<Dataset>,
        plan: EpochPlan,
        first_batch: u64,
        read_ahead: usize,
        counters: Arc<Counters>,
    ) -> Self {
        let cache = (!dataset.in_memory()).then(|| {
            let usage = plan.chunk_usage(dataset.chunks(), first_batch);
            ChunkCache::new(dataset.clone(), counters.clone(), usage, read_ahead)
        });
        EpochJob {
            dataset,
            plan,
            cache,
            counters,
        }
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
    fn build(&self, index: u64) -> Result<RecordBatch> {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| self.build_inner(index)))
            .unwrap_or_else(|_| Err(Error::Panic(format!("building batch {index} panicked"))));
        self.counters.worker_busy(started.elapsed());
        result
    }

    fn build_inner(&self, index: u64) -> Result<RecordBatch> {
        let rows = self.plan.batch(index).ok_or_else(|| {
            Error::Internal(format!("batch {index} is past the end of the epoch"))
        })?;
        let source: &dyn ChunkSource = match &self.cache {
            Some(cache) => cache,
            None => self.dataset.as_ref(),
        };
        let batch = match &rows {
            BatchRows::Range { start, len } => gather_range(&self.dataset, source, *start, *len)?,
            BatchRows::Rows(rows) => gather_rows(&self.dataset, source, rows)?,
        };
        if let Some(cache) = &self.cache {
            cache.release(&chunks_touched(&self.dataset, &rows));
        }
        Ok(batch)
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
#[derive(Debug)]
pub struct Pipeline {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    job: EpochJob,
    prefetch: u64,
    state: Mutex<State>,
    batch_ready: Condvar,
    slot_free: Condvar,
}

#[derive(Debug)]
struct State {
    next_to_claim: u64,
    next_to_deliver: u64,
    /// Batches whose failure was delivered; a worker builds them again.
    retry: Vec<u64>,
    ready: BTreeMap<u64, Result<RecordBatch>>,
    cancelled: bool,
}

impl Pipeline {
    /// Starts delivering `job` from batch `first_batch`, with `num_workers` threads keeping up to
    /// `prefetch` batches ahead.
    pub fn start(
        job: EpochJob,
        first_batch: u64,
        num_workers: usize,
        prefetch: usize,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            job,
            prefetch: prefetch.max(1) as u64,
            state: Mutex::new(State {
                next_to_claim: first_batch,
                next_to_deliver: first_batch,
                retry: Vec::new(),
                ready: BTreeMap::new(),
                cancelled: false,
            }),
            batch_ready: Condvar::new(),
            slot_free: Condvar::new(),
        });
        let mut pipeline = Pipeline {
            shared,
            workers: Vec::with_capacity(num_workers),
        };
        for worker in 0..num_workers {
            let shared = pipeline.shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("zenith-worker-{worker}"))
                .spawn(move || shared.work())
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
        self.shared.lock().next_to_deliver
    }

    /// Batches built and waiting for the consumer.
    pub fn queue_depth(&self) -> u64 {
        self.shared
            .lock()
            .ready
            .values()
            .filter(|r| r.is_ok())
            .count() as u64
    }

    /// The next batch in plan order with its index, `None` at the end of the epoch. A failed
    /// batch is reported once and then rebuilt by the next call: nothing is skipped.
    pub fn next(&self, counters: &Counters) -> Result<Option<(u64, RecordBatch)>> {
        let shared = &self.shared;
        let num_batches = shared.job.plan.num_batches();
        if self.workers.is_empty() {
            let (index, cancelled) = {
                let state = shared.lock();
                (state.next_to_deliver, state.cancelled)
            };
            if index >= num_batches || cancelled {
                return Ok(None);
            }
            let batch = shared.job.build(index)?;
            shared.lock().next_to_deliver += 1;
            return Ok(Some((index, batch)));
        }
        let mut state = shared.lock();
        let index = state.next_to_deliver;
        if index >= num_batches || state.cancelled {
            return Ok(None);
        }
        let waiting_since = Instant::now();
        let result = loop {
            if let Some(result) = state.ready.remove(&index) {
                break result;
            }
            state = shared
                .batch_ready
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        };
        counters.consumer_waited(waiting_since.elapsed());
        match result {
            Ok(batch) => {
                registry().loader.queue_depth.add(-1.0);
                state.next_to_deliver += 1;
                shared.slot_free.notify_all();
                Ok(Some((index, batch)))
            }
            Err(error) => {
                state.retry.push(index);
                shared.slot_free.notify_all();
                Err(error)
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // State changes are single assignments: consistent even after a panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker's life: claim the next index the window allows, build it, park it; when the
    /// window is full, decode a chunk ahead instead of sleeping; until the epoch is delivered or
    /// the pipeline is dropped.
    fn work(&self) {
        let num_batches = self.job.plan.num_batches();
        let mut read_ahead_idle = false;
        loop {
            let claimed = {
                let mut state = self.lock();
                loop {
                    if state.cancelled || state.next_to_deliver >= num_batches {
                        return;
                    }
                    if let Some(index) = state.retry.pop() {
                        break Some(index);
                    }
                    if state.next_to_claim < num_batches
                        && state.next_to_claim < state.next_to_deliver + self.prefetch
                    {
                        state.next_to_claim += 1;
                        break Some(state.next_to_claim - 1);
                    }
                    if !read_ahead_idle {
                        break None; // try read-ahead, without the lock
                    }
                    state = self
                        .slot_free
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(index) = claimed else {
                // Nothing decoded ahead means nothing to do: sleep until a slot frees up (the
                // condition is re-checked under the lock first, so no wake-up is missed).
                read_ahead_idle = !self.job.read_ahead();
                continue;
            };
            read_ahead_idle = false;
            let result = self.job.build(index);
            let mut state = self.lock();
            if state.cancelled {
                return;
            }
            if result.is_ok() {
                registry().loader.queue_depth.add(1.0);
            }
            state.ready.insert(index, result);
            self.batch_ready.notify_all();
        }
    }
}

impl Pipeline {
    /// Stops the workers and waits for them; no batch is delivered afterwards. Idempotent.
    pub fn stop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.cancelled = true;
            // Batches built and never to be delivered leave the queue now.
            let discarded = state.ready.values().filter(|r| r.is_ok()).count();
            registry().loader.queue_depth.add(-(discarded as f64));
            state.ready.clear();
        }
        self.shared.slot_free.notify_all();
        self.shared.batch_ready.notify_all();
        for worker in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = worker.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}
