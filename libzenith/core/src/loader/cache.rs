//! Decoded chunks shared by the batches of an epoch.
//!
//! * Each chunk is decoded at most once per epoch: by the workers that need it (one piece at a
//!   time, see below), or ahead of need by an idle worker ([`ChunkCache::read_ahead`]).
//! * A chunk's pieces ([`DecodedChunk`]) are published as they are decoded. A batch that reads
//!   only the chunk's first rows (dataset order) takes them as soon as the pieces holding them
//!   are decoded ([`ChunkSource::chunk_prefix`]); the worker that needs rows not decoded yet
//!   decodes the next piece, and the others wait for it. So the first batch of an epoch waits
//!   for one piece of a Parquet row group, not the whole group.
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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::gather::ChunkSource;
use super::plan::{ChunkUsage, EpochPlan, ShuffleMode};
use super::stats::Counters;
use arrow_array::RecordBatch;

use crate::dataset::{Dataset, DecodedChunk, PieceDecoder};
use crate::error::{Error, Result};

/// One chunk's decode, shared by the batches that read the chunk.
#[derive(Debug, Default)]
struct ChunkCell {
    progress: Mutex<Progress>,
    /// Signalled whenever `progress` changes (a piece published, the decoder put back, the
    /// decode finished or failed).
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Progress {
    /// The pieces decoded so far, in order, and their rows.
    pieces: Vec<RecordBatch>,
    rows: usize,
    decoder: DecoderState,
    /// Time spent decoding so far (counted once the chunk is done).
    decode_time: Duration,
}

#[derive(Default)]
enum DecoderState {
    /// Nobody has started decoding.
    #[default]
    NotStarted,
    /// Between pieces: whoever needs rows not decoded yet decodes the next piece.
    Idle(Box<dyn PieceDecoder>),
    /// A worker is decoding a piece (or opening the decoder); others wait for it.
    Busy,
    /// Every piece is decoded.
    Done(DecodedChunk),
    /// The decode failed (the slot forgets the cell, so a retry decodes again).
    Failed(Arc<Error>),
}

impl std::fmt::Debug for DecoderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecoderState::NotStarted => "NotStarted",
            DecoderState::Idle(_) => "Idle",
            DecoderState::Busy => "Busy",
            DecoderState::Done(_) => "Done",
            DecoderState::Failed(_) => "Failed",
        })
    }
}

impl ChunkCell {
    /// Whether every piece is decoded.
    fn is_done(&self) -> bool {
        matches!(lock(&self.progress).decoder, DecoderState::Done(_))
    }
}

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
    cell: Mutex<Option<Arc<ChunkCell>>>,
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
                self.state.take(chunk, &cell, None)?;
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
                if evicted.is_some_and(|cell| cell.is_done()) {
                    self.resident.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// The cell of chunk `chunk`, and whether this call created it (and so is to decode it).
    fn cell(&self, chunk: usize) -> (Arc<ChunkCell>, bool) {
        let mut guard = lock(&self.slots[chunk].cell);
        match &*guard {
            Some(cell) => (cell.clone(), false),
            None => {
                let cell = Arc::new(ChunkCell::default());
                *guard = Some(cell.clone());
                (cell, true)
            }
        }
    }

    /// Chunk `chunk` from its cell, whole (`rows_needed` `None`) or at least its first
    /// `rows_needed` rows: pieces another worker has decoded are taken as they are, and the
    /// pieces still missing are decoded by this call, one at a time, unless another worker is
    /// decoding one (then this call waits for it).
    fn take(
        &self,
        chunk: usize,
        cell: &Arc<ChunkCell>,
        rows_needed: Option<usize>,
    ) -> Result<DecodedChunk> {
        // Once every row is decoded the decoder is asked once more, for its end (where it checks
        // the file and the row count), so the chunk counts as decoded and resident.
        let chunk_rows = self.dataset.chunks()[chunk].rows as usize;
        let satisfied = |progress: &Progress| {
            rows_needed.is_some_and(|rows| rows > 0 && progress.rows >= rows)
                && progress.rows < chunk_rows
        };
        let mut progress = lock(&cell.progress);
        // The decoder while this call drives it (the cell says `Busy` meanwhile): a call keeps
        // decoding until it has what it needs, so that a chunk's pieces are decoded one after
        // another on one thread rather than passed between workers (the decoder's buffers
        // would move between caches with it).
        let mut held: Option<Box<dyn PieceDecoder>> = None;
        loop {
            match held.take() {
                Some(decoder) if satisfied(&progress) => {
                    progress.decoder = DecoderState::Idle(decoder);
                    cell.changed.notify_all();
                    return DecodedChunk::try_from_pieces(progress.pieces.clone());
                }
                Some(decoder) => held = Some(decoder),
                None => {
                    if let DecoderState::Done(decoded) = &progress.decoder {
                        return Ok(decoded.clone());
                    }
                    // Rows decoded before a later piece failed are still good.
                    if satisfied(&progress) {
                        return DecodedChunk::try_from_pieces(progress.pieces.clone());
                    }
                    match std::mem::replace(&mut progress.decoder, DecoderState::Busy) {
                        DecoderState::Idle(decoder) => held = Some(decoder),
                        DecoderState::NotStarted => {}
                        DecoderState::Failed(error) => {
                            let replica = error.replicate();
                            progress.decoder = DecoderState::Failed(error);
                            return Err(replica);
                        }
                        other => {
                            // Busy (another call decodes) or Done (handled above): wait.
                            progress.decoder = other;
                            progress = cell
                                .changed
                                .wait(progress)
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                            continue;
                        }
                    }
                }
            }
            // Decode the next piece (or open the decoder) outside the lock: others take the
            // pieces published so far meanwhile.
            drop(progress);
            let started = Instant::now();
            let step = catch_unwind(AssertUnwindSafe(|| match held.take() {
                Some(mut decoder) => decoder
                    .next_piece()
                    .map(|piece| Step::Piece(decoder, piece)),
                // The source checks its file around the decode (read-ahead has no batch to
                // check it).
                None => self.dataset.piece_decoder(chunk).map(Step::Opened),
            }))
            .unwrap_or_else(|_| Err(Error::Panic(format!("decoding chunk {chunk} panicked"))));
            progress = lock(&cell.progress);
            progress.decode_time += started.elapsed();
            match step {
                Ok(Step::Opened(decoder)) => held = Some(decoder),
                Ok(Step::Piece(decoder, Some(piece))) => {
                    progress.rows += piece.num_rows();
                    progress.pieces.push(piece);
                    held = Some(decoder);
                }
                Ok(Step::Piece(_, None)) => {
                    progress.decoder =
                        match DecodedChunk::try_from_pieces(std::mem::take(&mut progress.pieces)) {
                            Ok(decoded) => {
                                self.counters.chunk_decoded(progress.decode_time);
                                self.resident.fetch_add(1, Ordering::AcqRel);
                                DecoderState::Done(decoded)
                            }
                            Err(error) => self.failed(chunk, cell, error),
                        };
                }
                Err(error) => progress.decoder = self.failed(chunk, cell, error),
            }
            // A piece published, or the decode ended: waiting calls look again.
            cell.changed.notify_all();
        }
    }

    /// The state of a cell whose decode failed with `error`. The slot forgets the cell, so that
    /// a retry of the batch decodes the chunk again.
    fn failed(&self, chunk: usize, cell: &Arc<ChunkCell>, error: Error) -> DecoderState {
        let mut guard = lock(&self.slots[chunk].cell);
        if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, cell)) {
            *guard = None;
        }
        DecoderState::Failed(Arc::new(error))
    }
}

/// What one decoding step of [`State::take`] produced.
enum Step {
    /// The chunk's decoder, opened.
    Opened(Box<dyn PieceDecoder>),
    /// The decoder and the piece it decoded (`None`: no piece left).
    Piece(Box<dyn PieceDecoder>, Option<RecordBatch>),
}

impl ChunkSource for ChunkCache {
    fn chunk(&self, chunk: usize) -> Result<DecodedChunk> {
        let (cell, _) = self.state.cell(chunk);
        self.state.take(chunk, &cell, None)
    }

    fn chunk_prefix(&self, chunk: usize, rows: usize) -> Result<DecodedChunk> {
        let (cell, _) = self.state.cell(chunk);
        self.state.take(chunk, &cell, Some(rows))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The protected values stay consistent across a panic (a whole value is swapped).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
