//! Decoded chunks shared by the batches of an epoch: each chunk is decoded at most once per
//! epoch, by the first worker that needs it (others wait for that decode), and freed once the
//! last batch that reads it has been built.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arrow_array::RecordBatch;

use super::gather::ChunkSource;
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
}

#[derive(Debug)]
struct Slot {
    cell: Mutex<Option<Arc<Decoded>>>,
    /// Batches still to be built that read this chunk.
    remaining_uses: AtomicU64,
}

impl ChunkCache {
    /// A cache for an epoch in which chunk `i` is read by `uses[i]` batches.
    pub fn new(dataset: Arc<Dataset>, counters: Arc<Counters>, uses: Vec<u64>) -> Self {
        let slots = uses
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
        }
    }

    /// A batch that read `chunks` is built: chunks no later batch needs are freed.
    pub fn release(&self, chunks: &[usize]) {
        for &chunk in chunks {
            let slot = &self.slots[chunk];
            if slot.remaining_uses.fetch_sub(1, Ordering::AcqRel) == 1 {
                *lock(&slot.cell) = None;
            }
        }
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
            let result = self.dataset.read_chunk(chunk).map_err(Arc::new);
            self.counters.chunk_decoded(started.elapsed());
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
    // The protected values stay consistent across a panic (a whole Option is swapped).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
