//! The engine: a bounded in-flight window, worker threads running the stage chain, and a reorder
//! buffer that hands events out in publish order.
//!
//! One mutex guards the whole state (queue, reorder buffer, counters); three condition variables
//! wake publishers (space), workers (work) and pollers (ready). Sequence numbers are assigned
//! under that lock, so publish order is sequence order and the reorder buffer only has to wait
//! for the next number.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use zenith_core::runtime::affinity;
use zenith_core::{Error, Result};

use crate::event::{EventFailure, FailureKind};
use crate::metrics::{StageMetrics, queue_changed};
use crate::options::{EngineOptions, Pinning};
use crate::stage::{Stage, StageError};

/// Why [`Engine::publish`] did not take an event.
#[derive(Debug)]
pub enum PublishError {
    /// The engine stayed full until the deadline; the event is handed back untouched.
    WouldBlock(RecordBatch),
    /// The engine is shutting down; the event is handed back.
    Closed(RecordBatch),
}

/// What [`Engine::poll`] returned.
#[derive(Debug)]
pub enum PollOutcome {
    /// The next event in publish order, transformed by every stage.
    Event {
        /// Its sequence number (what publish returned).
        sequence: u64,
        /// The transformed batch.
        batch: RecordBatch,
    },
    /// The next event in publish order failed in a stage: which, where and why.
    Failed(EventFailure),
    /// Nothing was ready before the deadline.
    WouldBlock,
}

/// Counters of one engine, from [`Engine::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Events accepted by publish.
    pub published: u64,
    /// Events polled out transformed.
    pub delivered: u64,
    /// Events polled out as failures.
    pub failed: u64,
    /// Events in flight (published, not yet polled).
    pub in_flight: u64,
    /// Bytes of the events in flight (their size when published).
    pub in_flight_bytes: u64,
    /// Events waiting for a worker.
    pub queued: u64,
    /// Events released undelivered when the engine shut down.
    pub released: u64,
}

/// One event between publish and poll.
struct Pending {
    sequence: u64,
    batch: RecordBatch,
    /// What publish charged to the in-flight bytes; poll gives it back.
    bytes: u64,
}

/// A finished event waiting in the reorder buffer for its turn.
type Finished = std::result::Result<RecordBatch, EventFailure>;

struct State {
    /// Events waiting for a worker, in sequence order.
    queue: VecDeque<Pending>,
    /// Finished events by sequence number, until every earlier one is polled.
    done: BTreeMap<u64, (Finished, u64)>,
    /// The sequence number publish gives next.
    next_sequence: u64,
    /// The sequence number poll hands out next.
    next_delivery: u64,
    in_flight: u64,
    in_flight_bytes: u64,
    closed: bool,
    stats: EngineStats,
}

struct Shared {
    state: Mutex<State>,
    /// Publishers wait here for room.
    space: Condvar,
    /// Workers wait here for events.
    work: Condvar,
    /// Pollers wait here for the next event in order.
    ready: Condvar,
    capacity_events: u64,
    capacity_bytes: u64,
    stages: Vec<Arc<dyn Stage>>,
    /// Each stage's series, in chain order.
    stage_metrics: Vec<StageMetrics>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held (stages run unlocked), so a poisoned lock
        // still guards consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An event pipeline. See the crate documentation for its guarantees.
pub struct Engine {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Workers that pinned themselves to the options' CPUs.
    pinned_workers: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.workers.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// The bytes an event counts for in the in-flight bound.
fn event_bytes(batch: &RecordBatch) -> u64 {
    batch.get_array_memory_size() as u64
}

/// `now + timeout`, or None when that is beyond what an `Instant` holds (wait forever).
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl Engine {
    /// Starts an engine: checks the options and spawns the workers.
    pub fn new(options: EngineOptions) -> Result<Self> {
        options.validate()?;
        let cpus = options.pinning.as_ref().map(Pinning::cpus).transpose()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                done: BTreeMap::new(),
                next_sequence: 0,
                next_delivery: 0,
                in_flight: 0,
                in_flight_bytes: 0,
                closed: false,
                stats: EngineStats::default(),
            }),
            space: Condvar::new(),
            work: Condvar::new(),
            ready: Condvar::new(),
            capacity_events: options.capacity_events as u64,
            capacity_bytes: options.capacity_bytes,
            stage_metrics: options
                .stages
                .iter()
                .map(|s| StageMetrics::new(s.name()))
                .collect(),
            stages: options.stages,
        });
        let mut engine = Engine {
            shared,
            workers: Vec::with_capacity(options.workers),
            pinned_workers: Arc::new(AtomicUsize::new(0)),
        };
        for index in 0..options.workers {
            let shared = Arc::clone(&engine.shared);
            let (cpus, pinned) = (cpus.clone(), Arc::clone(&engine.pinned_workers));
            let handle = std::thread::Builder::new()
                .name(format!("zenith-engine-{index}"))
                .spawn(move || {
                    // A worker that cannot pin (a cpuset without those CPUs) runs unpinned;
                    // `pinned_workers` shows it.
                    if cpus.is_some_and(|cpus| affinity::pin_current_thread(&cpus).is_ok()) {
                        pinned.fetch_add(1, Ordering::Relaxed);
                    }
                    worker_loop(&shared)
                })
                .map_err(|e| Error::Internal(format!("spawn engine worker: {e}")))?;
            engine.workers.push(handle);
        }
        Ok(engine)
    }

    /// Workers that pinned themselves to the CPUs of [`EngineOptions::pinning`] so far.
    pub fn pinned_workers(&self) -> usize {
        self.pinned_workers.load(Ordering::Relaxed)
    }

    /// Publishes one event; returns its sequence number. Waits up to `timeout` for room in the
    /// in-flight window; a zero timeout never waits. On [`PublishError`] the event comes back.
    pub fn publish(
        &self,
        batch: RecordBatch,
        timeout: Duration,
    ) -> std::result::Result<u64, PublishError> {
        let bytes = event_bytes(&batch);
        let deadline = deadline_after(timeout);
        let shared = &*self.shared;
        let mut state = shared.lock();
        loop {
            if state.closed {
                return Err(PublishError::Closed(batch));
            }
            let fits = state.in_flight < shared.capacity_events
                && (state.in_flight == 0
                    || state.in_flight_bytes.saturating_add(bytes) <= shared.capacity_bytes);
            if fits {
                break;
            }
            state = match deadline {
                None => shared.space.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(PublishError::WouldBlock(batch));
                    }
                    shared
                        .space
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        state.in_flight += 1;
        state.in_flight_bytes += bytes;
        state.stats.published += 1;
        queue_changed(if shared.stages.is_empty() { 0.0 } else { 1.0 }, 1.0);
        if shared.stages.is_empty() {
            // Nothing to run: the event is finished already.
            state.done.insert(sequence, (Ok(batch), bytes));
            if sequence == state.next_delivery {
                shared.ready.notify_one();
            }
        } else {
            state.queue.push_back(Pending {
                sequence,
                batch,
                bytes,
            });
            shared.work.notify_one();
        }
        Ok(sequence)
    }

    /// Takes the next event in publish order, waiting up to `timeout` for it to finish.
    pub fn poll(&self, timeout: Duration) -> PollOutcome {
        let deadline = deadline_after(timeout);
        let shared = &*self.shared;
        let mut state = shared.lock();
        loop {
            let next = state.next_delivery;
            if let Some((finished, bytes)) = state.done.remove(&next) {
                state.next_delivery += 1;
                state.in_flight -= 1;
                queue_changed(0.0, -1.0);
                state.in_flight_bytes -= bytes;
                // Wake every publisher: the freed bytes may fit several small events.
                shared.space.notify_all();
                if state.done.contains_key(&state.next_delivery) {
                    shared.ready.notify_one();
                }
                return match finished {
                    Ok(batch) => {
                        state.stats.delivered += 1;
                        PollOutcome::Event {
                            sequence: next,
                            batch,
                        }
                    }
                    Err(failure) => {
                        state.stats.failed += 1;
                        PollOutcome::Failed(failure)
                    }
                };
            }
            state = match deadline {
                None => shared.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return PollOutcome::WouldBlock;
                    }
                    shared
                        .ready
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// The engine's counters now.
    pub fn stats(&self) -> EngineStats {
        let state = self.shared.lock();
        let mut stats = state.stats;
        stats.in_flight = state.in_flight;
        stats.in_flight_bytes = state.in_flight_bytes;
        stats.queued = state.queue.len() as u64;
        stats
    }

    /// Stops the engine: publishers and pollers are refused from now on, workers finish the
    /// event they hold and exit, and every event not yet polled is released. Returns how many
    /// were released (also in [`EngineStats::released`]). Calling it again returns 0.
    pub fn shutdown(&mut self) -> u64 {
        {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.work.notify_all();
            self.shared.space.notify_all();
            self.shared.ready.notify_all();
        }
        for handle in self.workers.drain(..) {
            // A worker never panics (stages run under catch_unwind); nothing to report if it did.
            let _ = handle.join();
        }
        let mut state = self.shared.lock();
        let released = state.queue.len() as u64 + state.done.len() as u64;
        queue_changed(-(state.queue.len() as f64), -(released as f64));
        state.queue.clear();
        state.done.clear();
        state.in_flight = 0;
        state.in_flight_bytes = 0;
        state.stats.released += released;
        released
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A worker: takes events in sequence order, runs the chain, files the result for delivery.
fn worker_loop(shared: &Shared) {
    loop {
        let pending = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    return;
                }
                if let Some(pending) = state.queue.pop_front() {
                    queue_changed(-1.0, 0.0);
                    break pending;
                }
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let (sequence, bytes) = (pending.sequence, pending.bytes);
        let finished = run_chain(shared, sequence, pending.batch);
        let mut state = shared.lock();
        state.done.insert(sequence, (finished, bytes));
        if sequence == state.next_delivery {
            shared.ready.notify_all();
        }
    }
}

/// Runs every stage in order on one event; the first failure ends the chain.
fn run_chain(shared: &Shared, sequence: u64, mut batch: RecordBatch) -> Finished {
    for (index, (stage, metrics)) in shared.stages.iter().zip(&shared.stage_metrics).enumerate() {
        batch = run_stage(stage.as_ref(), metrics, batch).map_err(|error| EventFailure {
            sequence,
            stage_index: index,
            stage: stage.name().to_string(),
            kind: error.kind,
            message: error.message,
        })?;
    }
    Ok(batch)
}

/// Runs one stage on one batch, recorded in its series; a panic is caught and becomes a
/// [`FailureKind::Panic`] error with the panic's message.
pub(crate) fn run_stage(
    stage: &dyn Stage,
    metrics: &StageMetrics,
    batch: RecordBatch,
) -> std::result::Result<RecordBatch, StageError> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| stage.process(batch)));
    metrics.record(
        started.elapsed(),
        match &outcome {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(error.kind),
            Err(_) => Some(FailureKind::Panic),
        },
    );
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_string());
        Err(StageError::new(FailureKind::Panic, message))
    })
}
