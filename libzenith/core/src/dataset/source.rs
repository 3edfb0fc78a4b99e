//! The contract every file format implements ([`Source`]), and the helpers sources share. It
//! knows no format: the formats implement it, and [`super::registry`] picks one per file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::chunk::DecodedChunk;
use crate::error::{Error, Result};
use crate::runtime::io::FileIdentity;

/// One file of a dataset, split into chunks (IPC record batches, Parquet row groups, CSV blocks)
/// whose row counts are known once the file is open, so the epoch plan can be made before any
/// data is decoded.
pub trait Source: Send + Sync + fmt::Debug {
    /// The file this source reads.
    fn path(&self) -> &Path;

    /// The file's schema, before any projection.
    fn schema(&self) -> &SchemaRef;

    /// Rows in each chunk, in file order.
    fn chunk_rows(&self) -> &[u64];

    /// Estimated bytes chunk `index` occupies once decoded with `projection` (for the memory
    /// budget). Sources that hold their data already (mmap, materialised) may return the size of
    /// the views, which costs no extra memory.
    fn chunk_decoded_bytes(&self, index: usize, projection: Option<&[usize]>) -> u64;

    /// Decodes chunk `index`, keeping the columns of `projection` (indices into [`Self::schema`])
    /// in that order; `None` keeps every column. Safe to call from several threads at once.
    ///
    /// First checks that the file has not changed since it was opened
    /// ([`Self::check_unchanged`]); a file that did is an [`Error::Io`] ("changed while being
    /// read").
    fn read_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch> {
        self.check_unchanged()?;
        self.fetch_chunk(index, projection)
    }

    /// [`Self::read_chunk`] without its first check of the file, for callers that have just made
    /// it (the loader checks each file once per batch, not once per chunk). A source still
    /// checks the file itself before it reads or decodes anything from it.
    fn fetch_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch>;

    /// [`Self::fetch_chunk`] as the loader takes it: the chunk's rows as pieces, in order, which
    /// sources that decode in pieces (Parquet) hand over without concatenating them. The default
    /// is the one batch of [`Self::fetch_chunk`].
    fn fetch_pieces(&self, index: usize, projection: Option<&[usize]>) -> Result<DecodedChunk> {
        self.fetch_chunk(index, projection)
            .map(DecodedChunk::single)
    }

    /// [`Self::fetch_pieces`] one piece at a time, each decoded when it is asked for: the loader
    /// hands out a chunk's first rows before the rest is decoded. Sources that decode in pieces
    /// (Parquet) override it; the default decodes the whole chunk up front.
    fn piece_decoder(
        self: Arc<Self>,
        index: usize,
        projection: Option<&[usize]>,
    ) -> Result<Box<dyn PieceDecoder>> {
        let decoded = self.fetch_pieces(index, projection)?;
        Ok(Box::new(DecodedPieces(
            decoded.pieces().to_vec().into_iter(),
        )))
    }

    /// True when reading a chunk costs no decoding and no new memory (memory-mapped IPC files,
    /// materialised CSV): the loader then needs no cache for it.
    fn in_memory(&self) -> bool;

    /// The identity the file had when the source opened it, for sources whose chunks still need
    /// the file's bytes after open (mapped or read on demand); `None` for sources that hold
    /// everything they serve in memory of their own (CSV, streams read at open).
    fn identity(&self) -> Option<&FileIdentity> {
        None
    }

    /// True when the chunks this source serves may be views of a memory mapping of the file:
    /// such pages fault (`SIGBUS`) when the file shrinks under them, so the loader checks the
    /// file again right before it hands such a batch over.
    fn maps_file(&self) -> bool {
        false
    }

    /// Checks that the file is still the one opened, unchanged (see [`Self::identity`]): an
    /// [`Error::Io`] saying "changed while being read" otherwise.
    fn check_unchanged(&self) -> Result<()> {
        match self.identity() {
            Some(identity) => identity.check(self.path()),
            None => Ok(()),
        }
    }
}

/// The pieces of one chunk, decoded one at a time as they are asked for
/// ([`Source::piece_decoder`]).
pub trait PieceDecoder: Send {
    /// Decodes the next piece; `None` once every piece has been handed out. A chunk has at least
    /// one piece (possibly empty).
    fn next_piece(&mut self) -> Result<Option<RecordBatch>>;
}

/// The [`PieceDecoder`] of a chunk decoded up front.
struct DecodedPieces(std::vec::IntoIter<RecordBatch>);

impl PieceDecoder for DecodedPieces {
    fn next_piece(&mut self) -> Result<Option<RecordBatch>> {
        Ok(self.0.next())
    }
}

/// Applies a projection to a batch that holds every column of the source schema.
pub fn project_batch(
    path: &Path,
    batch: &RecordBatch,
    projection: Option<&[usize]>,
) -> Result<RecordBatch> {
    match projection {
        None => Ok(batch.clone()),
        Some(indices) => batch
            .project(indices)
            .map_err(|e| Error::arrow_format(path, e)),
    }
}

/// Bytes the columns of `projection` (all when `None`) of a decoded batch occupy: the
/// [`Source::chunk_decoded_bytes`] of sources that hold their chunks already. Indices past the
/// batch's columns count nothing.
pub fn batch_bytes(batch: &RecordBatch, projection: Option<&[usize]>) -> u64 {
    let column_bytes = |c: usize| -> u64 {
        if c < batch.num_columns() {
            batch.column(c).get_array_memory_size() as u64
        } else {
            0
        }
    };
    match projection {
        Some(indices) => indices.iter().map(|&c| column_bytes(c)).sum(),
        None => (0..batch.num_columns()).map(column_bytes).sum(),
    }
}

/// Chunk `index` of a source that holds its chunks decoded (`batches`), projected: the
/// [`Source::read_chunk`] of in-memory sources. An index out of range is an error, not a panic.
pub fn held_chunk(
    path: &Path,
    batches: &[RecordBatch],
    index: usize,
    projection: Option<&[usize]>,
) -> Result<RecordBatch> {
    let batch = batches.get(index).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: chunk {index} out of range (the file has {})",
            path.display(),
            batches.len()
        ))
    })?;
    project_batch(path, batch, projection)
}

/// A source whose chunks are decoded once, at open, and held (CSV parsed into blocks, Arrow IPC
/// streams decoded over their mapping or read into memory): reading a chunk is a projection of a
/// held batch.
#[derive(Debug)]
pub struct HeldBatches {
    path: PathBuf,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: Vec<u64>,
    /// The identity of the mapped file the batches are views of; `None` when they own their
    /// memory.
    mapped: Option<FileIdentity>,
}

impl HeldBatches {
    /// Holds `batches` (all with `schema`) as the chunks of the file at `path`.
    pub fn new(path: &Path, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let rows = batches.iter().map(|b| b.num_rows() as u64).collect();
        HeldBatches {
            path: path.to_path_buf(),
            schema,
            batches,
            rows,
            mapped: None,
        }
    }

    /// Says that the batches are views of a mapping of the file, which had `identity` when it
    /// was mapped: reads then check the file first.
    pub fn mapped_from(mut self, identity: FileIdentity) -> Self {
        self.mapped = Some(identity);
        self
    }
}

impl Source for HeldBatches {
    fn path(&self) -> &Path {
        &self.path
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn chunk_rows(&self) -> &[u64] {
        &self.rows
    }

    fn chunk_decoded_bytes(&self, index: usize, projection: Option<&[usize]>) -> u64 {
        self.batches
            .get(index)
            .map_or(0, |batch| batch_bytes(batch, projection))
    }

    fn fetch_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch> {
        held_chunk(&self.path, &self.batches, index, projection)
    }

    fn in_memory(&self) -> bool {
        true
    }

    fn identity(&self) -> Option<&FileIdentity> {
        self.mapped.as_ref()
    }

    fn maps_file(&self) -> bool {
        self.mapped.is_some()
    }
}
