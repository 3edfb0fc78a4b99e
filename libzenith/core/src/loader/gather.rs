//! Building a batch from the rows the plan assigns to it.
//!
//! Contiguous rows inside one chunk's piece are a zero-copy slice; rows spread over chunks are
//! gathered by the gather kernel ([`crate::batch::gather_kernel`]) into pooled buffers, in one
//! pass over the chunks they come from (coalesced: each chunk is fetched once per batch, whatever
//! the number of rows taken from it). Chunks come as pieces ([`DecodedChunk`]); the kernel reads
//! every piece as a source of its own.
//!
//! Each file a batch reads is checked once, before its first chunk is fetched ([`FileChecks`]):
//! a file that changed since it was opened fails the batch instead of serving stale or faulting
//! pages, at the cost of one `stat` per file per batch, not per chunk.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use arrow_array::RecordBatch;
use arrow_select::concat::concat_batches;

use crate::batch::gather_kernel::{Gathered, HostPool, gather_batch};
use crate::dataset::{Dataset, DecodedChunk};
use crate::error::{Error, Result};

/// Where a batch's chunks come from: decoded on demand, possibly cached.
pub trait ChunkSource {
    /// The decoded chunk `chunk` (an index into [`Dataset::chunks`]). The caller has checked
    /// the chunk's file for this batch ([`FileChecks`]).
    fn chunk(&self, chunk: usize) -> Result<DecodedChunk>;

    /// At least the first `rows` rows of chunk `chunk` (possibly all of it): sources that decode
    /// a chunk piece by piece hand them over before the rest is decoded. The default is the
    /// whole chunk.
    fn chunk_prefix(&self, chunk: usize, rows: usize) -> Result<DecodedChunk> {
        let _ = rows;
        self.chunk(chunk)
    }
}

impl ChunkSource for Dataset {
    fn chunk(&self, chunk: usize) -> Result<DecodedChunk> {
        self.fetch_pieces(chunk)
    }
}

/// The files (indices into [`Dataset::sources`]) one batch has read, each checked once before
/// its first chunk was fetched.
#[derive(Debug, Default)]
pub struct FileChecks {
    /// Sorted.
    checked: Vec<usize>,
}

impl FileChecks {
    /// Chunk `chunk` from `chunks`, after checking its file unless this batch already did.
    pub fn fetch(
        &mut self,
        dataset: &Dataset,
        chunks: &dyn ChunkSource,
        chunk: usize,
    ) -> Result<DecodedChunk> {
        self.check(dataset, chunk)?;
        chunks.chunk(chunk)
    }

    /// At least the first `rows` rows of chunk `chunk` (see [`ChunkSource::chunk_prefix`]),
    /// after checking its file unless this batch already did.
    pub fn fetch_prefix(
        &mut self,
        dataset: &Dataset,
        chunks: &dyn ChunkSource,
        chunk: usize,
        rows: usize,
    ) -> Result<DecodedChunk> {
        self.check(dataset, chunk)?;
        chunks.chunk_prefix(chunk, rows)
    }

    /// Checks the file of chunk `chunk` unless this batch already did.
    fn check(&mut self, dataset: &Dataset, chunk: usize) -> Result<()> {
        let source = dataset.chunks()[chunk].source;
        if let Err(at) = self.checked.binary_search(&source) {
            dataset.check_source(source)?;
            self.checked.insert(at, source);
        }
        Ok(())
    }

    /// The files read so far, in index order.
    pub fn files(&self) -> &[usize] {
        &self.checked
    }
}

/// Rows `start..start + len` in dataset order (their files checked through `checks`).
pub fn gather_range(
    dataset: &Dataset,
    chunks: &dyn ChunkSource,
    checks: &mut FileChecks,
    start: u64,
    len: usize,
) -> Result<RecordBatch> {
    let end = start + len as u64;
    if len == 0 {
        return Ok(RecordBatch::new_empty(dataset.schema().clone()));
    }
    if end > dataset.num_rows() {
        return Err(Error::Internal(format!(
            "rows {start}..{end} outside {} rows",
            dataset.num_rows()
        )));
    }
    let mut pieces = Vec::new();
    let mut row = start;
    let mut chunk_index = dataset.chunk_of_row(start);
    while row < end {
        let info = dataset.chunks()[chunk_index];
        let take_end = end.min(info.start + info.rows);
        // Only the chunk's rows up to `take_end` need be decoded.
        let needed = (take_end - info.start) as usize;
        let chunk = checks.fetch_prefix(dataset, chunks, chunk_index, needed)?;
        pieces.extend(chunk.slices((row - info.start) as usize, (take_end - row) as usize)?);
        row = take_end;
        chunk_index += 1;
    }
    if pieces.len() == 1 {
        return Ok(pieces.pop().expect("one piece"));
    }
    Ok(concat_batches(dataset.schema(), &pieces)?)
}

/// The rows `rows` (global row numbers), in that order (their files checked through `checks`),
/// written into buffers from `pool`. `batch_index` (the batch's place in the epoch) decides
/// where in the batch's chunks the fetching starts; see [`fetch_start`].
pub fn gather_rows(
    dataset: &Dataset,
    chunks: &dyn ChunkSource,
    checks: &mut FileChecks,
    rows: &[u64],
    pool: &HostPool,
    batch_index: u64,
) -> Result<Gathered> {
    if rows.is_empty() {
        return Ok(Gathered {
            batch: RecordBatch::new_empty(dataset.schema().clone()),
            pooled: false,
        });
    }
    // First the distinct chunks the rows touch (each gets an entry) and each row's chunk entry
    // and row within the chunk; nothing is fetched yet.
    let mut entry_of_chunk: HashMap<usize, usize, BuildHasherDefault<ChunkIndexHasher>> =
        HashMap::default();
    let mut touched: Vec<usize> = Vec::new();
    let mut located: Vec<(usize, usize)> = Vec::with_capacity(rows.len());
    // Rows are often sorted within runs: the last chunk and its entry are tried before the map.
    let mut last: Option<(usize, usize)> = None;
    for &row in rows {
        if row >= dataset.num_rows() {
            return Err(Error::Internal(format!(
                "row {row} outside {} rows",
                dataset.num_rows()
            )));
        }
        let chunk = match last {
            Some((c, _))
                if dataset.chunks()[c].start <= row
                    && row < dataset.chunks()[c].start + dataset.chunks()[c].rows =>
            {
                c
            }
            _ => dataset.chunk_of_row(row),
        };
        let entry = match last {
            Some((c, entry)) if c == chunk => entry,
            _ => *entry_of_chunk.entry(chunk).or_insert_with(|| {
                touched.push(chunk);
                touched.len() - 1
            }),
        };
        last = Some((chunk, entry));
        located.push((entry, (row - dataset.chunks()[chunk].start) as usize));
    }
    // Then each chunk is fetched once, in chunk order from `fetch_start`; its pieces take
    // consecutive slots in `batches`.
    let mut order: Vec<usize> = (0..touched.len()).collect();
    order.sort_unstable_by_key(|&entry| touched[entry]);
    let start = fetch_start(batch_index, order.len());
    order.rotate_left(start);
    let mut fetched: Vec<Option<(DecodedChunk, usize)>> = vec![None; touched.len()];
    let mut batches: Vec<RecordBatch> = Vec::new();
    for entry in order {
        let decoded = checks.fetch(dataset, chunks, touched[entry])?;
        batches.extend_from_slice(decoded.pieces());
        let first_slot = batches.len() - decoded.pieces().len();
        fetched[entry] = Some((decoded, first_slot));
    }
    let mut indices = Vec::with_capacity(rows.len());
    for (entry, row) in located {
        let (decoded, first_slot) = fetched[entry].as_ref().expect("every entry was fetched");
        let (piece, at) = decoded.locate(row);
        indices.push((first_slot + piece, at));
    }
    gather_batch(&batches, &indices, pool)
}

/// Where in its (sorted) chunks batch `batch_index` starts fetching: the batch's place in the van
/// der Corput sequence (0, 1/2, 1/4, 3/4, 1/8, ...) times `chunks`.
///
/// Why: the batches a loader's workers build at the same moment (consecutive indices) each
/// read rows from nearly every chunk, and a chunk's first read may cost work (an IPC record
/// batch is validated, a Parquet row group decoded) that a concurrent reader of the same chunk
/// waits for. Starting each batch at a different place spreads that first work over the
/// workers, and the first batch of an epoch waits for a share of it instead of all of it.
fn fetch_start(batch_index: u64, chunks: usize) -> usize {
    ((u128::from(batch_index.reverse_bits()) * chunks as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::fetch_start;

    #[test]
    fn consecutive_batches_start_fetching_far_apart() {
        let starts: Vec<usize> = (0..8).map(|b| fetch_start(b, 16)).collect();
        assert_eq!(starts, [0, 8, 4, 12, 2, 10, 6, 14]);
        assert_eq!(fetch_start(3, 1), 0);
        assert_eq!(fetch_start(u64::MAX, 7), 6, "always inside the chunks");
    }
}

/// Hashes a chunk index for [`gather_rows`]'s chunk-to-slot map with one multiplication: a
/// shuffled batch looks a chunk up for almost every row, and the default (DoS-resistant) hasher
/// costs more than the row's copy. Chunk indices are the dataset's own, not an attacker's.
#[derive(Default)]
struct ChunkIndexHasher(u64);

impl Hasher for ChunkIndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte) ^ self.0.rotate_left(8));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // An odd multiplier: distinct small indices keep distinct low bits and spread the high
        // bits (which the map also uses).
        self.0 = (n ^ (n >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
