//! Decoded chunks shared by the batches of an epoch.
//!
//! * Each chunk is decoded at most once per epoch: by the first worker that needs it (others
//!   wait for that decode), or ahead of need by an idle worker ([`ChunkCache::read_ahead`]).
//! * A batch that needs many chunks (a shuffled batch reads from every row group) does not
//!   decode them alone: before it gathers, its worker decodes the chunks nobody has started
//!   ([`ChunkCache::decode_unclaimed`]) and skips those another worker is decoding, so the workers
//!   building the first batches of an epoch share their decoding instead of queueing behind one.
//! * Which batches use which chunk (for freeing) is worked out by a thread of its own for a
//!   shuffled epoch (that walk visits every row): the first batch waits only for its chunks.
//!   Chunks built batches release before the walk is done are counted once it is.
//! * A chunk is freed as soon as the last batch that reads it has been built.
//! * Read-ahead keeps at most `read_ahead_limit` decoded chunks resident, so decoding overlaps
//!   consumption without holding the dataset in memory.
//! * A decoded chunk is only ever served for the file it was decoded from, unchanged: the
//!   source checks its file's identity before and after decoding, and every batch checks each
//!   file it reads before it takes chunks from here (`gather::FileChecks`). A file that changed
//!   fails the batch; nothing decoded before the change is served after it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use super::gather::ChunkSource;
use super::plan::{ChunkUsage, EpochPlan, ShuffleMode};
use super::stats::Counters;
use crate::dataset::{Dataset, DecodedChunk};
use crate::error::{Error, Result};

type Decoded = OnceLock<std::result::Result<DecodedChunk, Arc<Error>>>;

/// Per-epoch cache of decoded chunks.
#[derive(Debug)]
pub struct ChunkCache {
    state: Arc<State>,
    /// The thread walking a shuffled epoch's plan for its chunk usage; joined on drop.
    usage_walker: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct State {
    dataset: Arc<Dataset>,
    counters: Arc<Counters>,
    slots: Vec<Slot>,
    /// Set once every slot's `remaining_uses` holds its count.
    usage_known: AtomicBool,
    /// Chunks released (one entry per batch and chunk) before the usage was known.
    early_releases: Mutex<Vec<usize>>,
    /// Chunks in the order the epoch first needs them (set with the usage), and how far
    /// read-ahead has got.
    first_use_order: OnceLock<Vec<usize>>,
    read_ahead_cursor: Mutex<usize>,
    /// Decoded chunks currently held.
    resident: AtomicUsize,
    read_ahead_limit: usize,
    /// The cache is dropped: the usage walk stops.
    dropped: AtomicBool,
}

#[derive(Debug)]
struct Slot {
    cell: Mutex<Option<Arc<Decoded>>>,
    /// Batches still to be built that read this chunk (0 until the usage is known).
    remaining_uses: AtomicU64,
}

impl ChunkCache {
    /// A cache for the batches `first_batch..` of the epoch `plan`; read-ahead stops while
    /// `read_ahead_limit` chunks are resident.
    pub fn new(
        dataset: Arc<Dataset>,
        counters: Arc<Counters>,
        plan: &EpochPlan,
        first_batch: u64,
        read_ahead_limit: usize,
    ) -> Self {
        let slots = (0..dataset.chunks().len())
            .map(|_| Slot {
                cell: Mutex::new(None),
                remaining_uses: AtomicU64::new(0),
            })
            .collect();
        let state = Arc::new(State {
            dataset,
            counters,
            slots,
            usage_known: AtomicBool::new(false),
            early_releases: Mutex::new(Vec::new()),
            first_use_order: OnceLock::new(),
            read_ahead_cursor: Mutex::new(0),
            resident: AtomicUsize::new(0),
            read_ahead_limit: read_ahead_limit.max(1),
            dropped: AtomicBool::new(false),
        });
        // In dataset order the walk visits each batch once (a range each): cheap. Shuffled, it
        // visits every row, which the first batch need not wait for.
        let usage_walker = if plan.params().shuffle == ShuffleMode::None {
            None
        } else {
            let walker_state = state.clone();
            let plan = plan.clone();
            std::thread::Builder::new()
                .name("zenith-chunk-usage".into())
                .spawn(move || walker_state.walk_usage(&plan, first_batch))
                .ok()
        };
        if usage_walker.is_none() {
            state.walk_usage(plan, first_batch);
        }
        ChunkCache {
            state,
            usage_walker,
        }
    }

    /// A batch that read `chunks` is built: chunks no later batch needs are freed.
    pub fn release(&self, chunks: &[usize]) {
        let state = &self.state;
        if !state.usage_known.load(Ordering::Acquire) {
            let mut early = lock(&state.early_releases);
            // Checked again under the lock the walk takes to publish the usage.
            if !state.usage_known.load(Ordering::Acquire) {
                early.extend_from_slice(chunks);
                return;
            }
        }
        state.release_counted(chunks);
    }

    /// Decodes, one after another, those of `chunks` that no worker has started, and skips those
    /// being decoded by others (the caller waits for them when it takes them). Stops at the first
    /// failure, which is the batch's: the chunk forgets it, and a retry decodes it again.
    pub fn decode_unclaimed(&self, chunks: &[usize]) -> Result<()> {
        for &chunk in chunks {
            let (cell, claimed) = self.state.cell(chunk);
            if claimed {
                self.state.decode(chunk, &cell)?;
            }
        }
        Ok(())
    }

    /// Decodes the next chunk the epoch will need that nobody has started, if fewer than the
    /// read-ahead limit are resident. Returns whether it did any work (idle workers call it
    /// instead of sleeping).
    pub fn read_ahead(&self) -> bool {
        let state = &self.state;
        // Before the usage is known there is no order to read ahead in.
        let Some(first_use_order) = state.first_use_order.get() else {
            return false;
        };
        let chunk = {
            let mut cursor = lock(&state.read_ahead_cursor);
            loop {
                if state.resident.load(Ordering::Acquire) >= state.read_ahead_limit {
                    return false;
                }
                let Some(&chunk) = first_use_order.get(*cursor) else {
                    return false;
                };
                *cursor += 1;
                let slot = &state.slots[chunk];
                // Skip chunks already decoding, decoded, or no longer needed. (A chunk whose last
                // use is released between this check and its decode stays resident until the
                // epoch ends: at most one chunk per worker, never a leak.)
                if slot.remaining_uses.load(Ordering::Acquire) > 0 && lock(&slot.cell).is_none() {
                    break chunk;
                }
            }
        };
        // A failure is not lost: the slot forgets it and the batch that needs the chunk reports it.
        let _ = self.chunk(chunk);
        true
    }
}

impl Drop for ChunkCache {
    fn drop(&mut self) {
        self.state.dropped.store(true, Ordering::Release);
        if let Some(walker) = self.usage_walker.take() {
            // The walk asks for `dropped` once per batch; a panic in it has nothing to clean up.
            let _ = walker.join();
        }
    }
}

impl State {
    /// Works out which batches from `first_batch` on use which chunks, then counts the releases
    /// made meanwhile. Gives up when the cache is dropped.
    fn walk_usage(&self, plan: &EpochPlan, first_batch: u64) {
        let stop = || self.dropped.load(Ordering::Acquire);
        let Some(ChunkUsage {
            uses,
            first_use_order,
        }) = plan.chunk_usage_until(self.dataset.chunks(), first_batch, &stop)
        else {
            return;
        };
        let early = {
            let mut early = lock(&self.early_releases);
            for (slot, uses) in self.slots.iter().zip(uses) {
                slot.remaining_uses.store(uses, Ordering::Release);
            }
            let _ = self.first_use_order.set(first_use_order);
            self.usage_known.store(true, Ordering::Release);
            std::mem::take(&mut *early)
        };
        self.release_counted(&early);
    }

    /// [`ChunkCache::release`] once the usage is known.
    fn release_counted(&self, chunks: &[usize]) {
        for &chunk in chunks {
            let slot = &self.slots[chunk];
            if slot.remaining_uses.fetch_sub(1, Ordering::AcqRel) == 1 {
                let evicted = lock(&slot.cell).take();
                if evicted.is_some_and(|cell| matches!(cell.get(), Some(Ok(_)))) {
                    self.resident.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// The cell of chunk `chunk`, and whether this call created it (and so is to decode it).
    fn cell(&self, chunk: usize) -> (Arc<Decoded>, bool) {
        let mut guard = lock(&self.slots[chunk].cell);
        match &*guard {
            Some(cell) => (cell.clone(), false),
            None => {
                let cell = Arc::new(OnceLock::new());
                *guard = Some(cell.clone());
                (cell, true)
            }
        }
    }

    /// Chunk `chunk` from its cell: decoded by this call unless another has done it or is
    /// doing it (then this call waits for that decode).
    fn decode(&self, chunk: usize, cell: &Arc<Decoded>) -> Result<DecodedChunk> {
        // Outside the slot lock: other chunks stay available while this one decodes; callers
        // wanting this chunk block in `get_or_init` until the one decode finishes.
        let decoded = cell.get_or_init(|| {
            let started = Instant::now();
            // The source checks its file around the decode (read-ahead has no batch to check it).
            let result = self.dataset.fetch_pieces(chunk).map_err(Arc::new);
            self.counters.chunk_decoded(started.elapsed());
            if result.is_ok() {
                self.resident.fetch_add(1, Ordering::AcqRel);
            }
            result
        });
        match decoded {
            Ok(decoded) => Ok(decoded.clone()),
            Err(error) => {
                // Forget the failure so that a retry of the batch reads the chunk again.
                let mut guard = lock(&self.slots[chunk].cell);
                if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, cell)) {
                    *guard = None;
                }
                Err(error.replicate())
            }
        }
    }
}

impl ChunkSource for ChunkCache {
    fn chunk(&self, chunk: usize) -> Result<DecodedChunk> {
        let (cell, _) = self.state.cell(chunk);
        self.state.decode(chunk, &cell)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The protected values stay consistent across a panic (a whole value is swapped).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
