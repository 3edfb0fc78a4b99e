//! Decoded chunks shared by the batches of an epoch.
//!
//! * Each chunk is decoded at most once per epoch: by the first worker that needs it (others
//!   wait for that decode), or ahead of need by an idle worker ([`ChunkCache::read_ahead`]).
//! * A chunk is freed as soon as the last batch that reads it has been built.
//! * Read-ahead keeps at most `read_ahead_limit` decoded chunks resident, so decoding overlaps
//!   consumption without holding the dataset in memory.
//! * A decoded chunk is only ever served for the file it was decoded from, unchanged: the
//!   source checks its file's identity before and after decoding, and every batch checks each
//!   file it reads before it takes chunks from here (`gather::FileChecks`). A file that changed
//!   fails the batch; nothing decoded before the change is served after it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arrow_array::RecordBatch;

use super::gather::ChunkSource;
use super::plan::ChunkUsage;
use super::stats::Counters;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

type Decoded = OnceLock<std::result::Result<RecordBatch, Arc<Error>>>;

/// Per-epoch cache of decoded chunks.
#[derive(Debug)]
pub struct ChunkCache {
    dataset: Arc<Dataset>,
    counters: Arc<Counters>,
    slots: Vec<Slot>,
    /// Chunks in the order the epoch first needs them, and how far read-ahead has got.
    first_use_order: Vec<usize>,
    read_ahead_cursor: Mutex<usize>,
    /// Decoded chunks currently held.
    resident: AtomicUsize,
    read_ahead_limit: usize,
}

#[derive(Debug)]
struct Slot {
    cell: Mutex<Option<Arc<Decoded>>>,
    /// Batches still to be built that read this chunk.
    remaining_uses: AtomicU64,
}

impl ChunkCache {
    /// A cache for an epoch whose remaining batches use the chunks as `usage` says; read-ahead
    /// stops while `read_ahead_limit` chunks are resident.
    pub fn new(
        dataset: Arc<Dataset>,
        counters: Arc<Counters>,
        usage: ChunkUsage,
        read_ahead_limit: usize,
    ) -> Self {
        let slots = usage
            .uses
            .into_iter()
            .map(|n| Slot {
                cell: Mutex::new(None),
                remaining_uses: AtomicU64::new(n),
            })
            .collect();
        ChunkCache {
            dataset,
            counters,
            slots,
            first_use_order: usage.first_use_order,
            read_ahead_cursor: Mutex::new(0),
            resident: AtomicUsize::new(0),
            read_ahead_limit: read_ahead_limit.max(1),
        }
    }

    /// A batch that read `chunks` is built: chunks no later batch needs are freed.
    pub fn release(&self, chunks: &[usize]) {
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

    /// Decodes the next chunk the epoch will need that nobody has started, if fewer than the
    /// read-ahead limit are resident. Returns whether it did any work (idle workers call it
    /// instead of sleeping).
    pub fn read_ahead(&self) -> bool {
        let chunk = {
            let mut cursor = lock(&self.read_ahead_cursor);
            loop {
                if self.resident.load(Ordering::Acquire) >= self.read_ahead_limit {
                    return false;
                }
                let Some(&chunk) = self.first_use_order.get(*cursor) else {
                    return false;
                };
                *cursor += 1;
                let slot = &self.slots[chunk];
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

impl ChunkSource for ChunkCache {
    fn chunk(&self, chunk: usize) -> Result<RecordBatch> {
        let slot = &self.slots[chunk];
        let cell = lock(&slot.cell)
            .get_or_insert_with(|| Arc::new(OnceLock::new()))
            .clone();
        // Outside the slot lock: other chunks stay available while this one decodes; callers
        // wanting this chunk block in `get_or_init` until the one decode finishes.
        let decoded = cell.get_or_init(|| {
            let started = Instant::now();
            // The source checks its file around the decode (read-ahead has no batch to check it).
            let result = self.dataset.fetch_chunk(chunk).map_err(Arc::new);
            self.counters.chunk_decoded(started.elapsed());
            if result.is_ok() {
                self.resident.fetch_add(1, Ordering::AcqRel);
            }
            result
        });
        match decoded {
            Ok(batch) => Ok(batch.clone()),
            Err(error) => {
                // Forget the failure so that a retry of the batch reads the chunk again.
                let mut guard = lock(&slot.cell);
                if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                    *guard = None;
                }
                Err(error.replicate())
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The protected values stay consistent across a panic (a whole value is swapped).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
