//! Parquet source: one chunk per row group, decoded on demand with arrow-rs's `parquet` reader,
//! in pieces of [`PIECE_ROWS`] rows that the loader uses as they are (see [`DecodedChunk`]).
//!
//! The footer is parsed once, at open, and kept: planning an epoch needs only row counts, and
//! every later read reuses the parsed metadata instead of reading the footer again.
//!
//! Bytes come through the dataset's I/O backend ([`crate::runtime::io`]). Decoding a row
//! group first fetches the byte ranges of the column chunks it needs (from the row-group
//! metadata; neighbouring chunks coalesced) in one call: one batched submission with io_uring,
//! positioned reads with pread, zero-copy slices of the mapped file with mmap. The decoder then
//! reads its pages as slices of those buffers. Worker threads decode different row groups of one
//! file at the same time.

use std::io::Read;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, RecordBatchReader};
use arrow_schema::{Schema, SchemaRef};
use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::basic::{Compression, Type as PhysicalType};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedPageReader;

use super::chunk::DecodedChunk;
use super::fixed_lists::{FixedListColumn, FixedListPlan};
use super::source::{PieceDecoder, Source};
use crate::error::{Error, Result};
use crate::runtime::io::{FileIdentity, IoBackend, IoContext, RangeRead, SequentialRead};

/// Rows decoded as one piece of a row group. Small enough that a piece's buffers stay in the CPU
/// caches while arrow-rs builds them (it grows level and value buffers by doubling; on a whole
/// 65,536-row group that growth is copied through memory), large enough that a batch of a
/// shuffled epoch does not read from thousands of pieces. Measured on the benchmark file
/// (`make bench-parquet`, CPU per row group): 2,048 rows 12.2 ms, 4,096 12.9, 8,192 13.6,
/// 16,384 14.3, a whole row group 16.8.
pub const PIECE_ROWS: usize = 8192;

/// Column chunks closer than this are fetched as one range (reading the gap costs less than
/// another request).
const COALESCE_GAP: u64 = 64 << 10;

/// A Parquet file whose row groups are the chunks.
#[derive(Debug)]
pub struct ParquetFile {
    path: PathBuf,
    /// The file, read through the dataset's I/O backend. With mmap, pages are zero-copy slices
    /// of the mapping; with io_uring and pread, slices of the buffers a row group's column
    /// chunks were read into. Reads past the end are errors, never allocations sized by corrupt
    /// metadata.
    reader: Arc<dyn RangeRead>,
    /// The parsed footer and the Arrow schema derived from it (with pyarrow's embedded
    /// `ARROW:schema` hint applied, so e.g. `int32` stays `int32`).
    metadata: ArrowReaderMetadata,
    rows: Vec<u64>,
    /// Estimated decoded bytes per row group and root column (see [`estimate_decoded_bytes`]).
    decoded_bytes: Vec<Vec<u64>>,
    /// The most bytes one row group, page or dictionary may take decoded (checked at open for
    /// row groups, before decoding for pages and dictionaries).
    budget: u64,
}

impl ParquetFile {
    /// Opens `path` and parses its footer: schema, row groups and their column chunks.
    ///
    /// A file without a valid footer (not Parquet, truncated, corrupt metadata) is an
    /// [`Error::Format`] naming the file. Corruption inside column chunks shows up later, as an
    /// [`Error::Format`] from [`Source::read_chunk`] for the row group that holds it.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &IoContext::default())
    }

    /// [`Self::open`], reading through the I/O backend of `io`.
    pub fn open_with(path: &Path, io: &IoContext) -> Result<Self> {
        Self::open_with_budget(
            path,
            io,
            crate::runtime::memory_budget::default_memory_budget(),
        )
    }

    /// [`Self::open_with`], holding the file to a memory budget: a row group whose decoded size
    /// (estimated from its metadata, see [`estimate_decoded_bytes`]) exceeds `budget` bytes is an
    /// [`Error::OutOfMemory`] here, and so is, when a row group is read, any page or dictionary
    /// whose header claims more.
    ///
    /// Every size the footer states is checked against the file before it is used: column
    /// chunks must lie inside the file, and a row group cannot claim more rows than its column
    /// chunks can physically hold (see [`check_row_groups`]); a lie is an [`Error::Format`].
    pub fn open_with_budget(path: &Path, io: &IoContext, budget: u64) -> Result<Self> {
        let reader = io.open(path).map_err(|e| Error::io(path, e))?;
        if reader.is_empty() {
            return Err(Error::format(path, "empty file (not Parquet)"));
        }
        check_footer(path, reader.as_ref())?;
        let data = RangeChunks {
            reader: reader.clone(),
            parts: Vec::new(),
        };
        // The metadata decoder is not written for hostile input: a panic on a corrupt footer is a
        // format error of this file, not a crash.
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            ArrowReaderMetadata::load(&data, ArrowReaderOptions::new())
        }));
        let metadata = match loaded {
            Ok(Ok(metadata)) => metadata,
            Ok(Err(e)) => {
                return Err(Error::format(
                    path,
                    format!("unreadable Parquet footer (truncated or corrupt file): {e}"),
                ));
            }
            Err(_) => {
                return Err(Error::format(
                    path,
                    "corrupt Parquet footer (the metadata decoder rejected it)",
                ));
            }
        };
        let root_columns = metadata.schema().fields().len();
        let (rows, decoded_bytes) = check_row_groups(
            path,
            metadata.metadata(),
            reader.len(),
            root_columns,
            budget,
        )?;
        Ok(ParquetFile {
            path: path.to_path_buf(),
            reader,
            metadata,
            rows,
            decoded_bytes,
            budget,
        })
    }

    /// Row group `index` of the requested columns (`projection`: indices into the schema, in
    /// the order wanted; `None`: all), ready to decode piece by piece. The column chunks' bytes
    /// are read and their page headers checked here; decoding happens in
    /// [`RowGroupPieces::next_piece`].
    fn row_group_pieces(
        &self,
        index: usize,
        projection: Option<&[usize]>,
    ) -> Result<RowGroupPieces> {
        if index >= self.rows.len() {
            return Err(Error::InvalidArgument(format!(
                "{}: row group {index} out of range (the file has {})",
                self.path.display(),
                self.rows.len()
            )));
        }
        let num_fields = self.schema().fields().len();
        let requested: Vec<usize> = match projection {
            Some(indices) => indices.to_vec(),
            None => (0..num_fields).collect(),
        };
        if let Some(&bad) = requested.iter().find(|&&c| c >= num_fields) {
            return Err(Error::InvalidArgument(format!(
                "{}: column {bad} out of range (the file has {num_fields})",
                self.path.display()
            )));
        }
        if requested.is_empty() {
            // No column to decode, but the row count still matters to the loader.
            let options = RecordBatchOptions::new().with_row_count(Some(self.rows[index] as usize));
            let rows_only =
                RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
                    .map_err(|e| Error::arrow_format(&self.path, e))?;
            return Ok(RowGroupPieces::ready(index, rows_only));
        }
        // The projection mask decodes columns in file order, once each; the requested order
        // (which may repeat or reorder columns) is restored piece by piece, by position.
        let mut columns = requested.clone();
        columns.sort_unstable();
        columns.dedup();
        let positions = (requested != columns).then(|| {
            requested
                .iter()
                .map(|c| {
                    columns
                        .binary_search(c)
                        .expect("every requested column is decoded")
                })
                .collect()
        });
        // Decoders are not written for hostile input: a panic on a corrupt row group is a format
        // error of that file, not a crash.
        let (schema, decoding) =
            catch_unwind(AssertUnwindSafe(|| self.open_row_group(index, &columns)))
                .unwrap_or_else(|_| Err(self.read_error(index, DECODER_PANIC)))?;
        Ok(RowGroupPieces {
            index,
            schema,
            decoding,
            positions,
            handed_out: false,
            rows_left: self.rows[index] as usize,
        })
    }

    /// The columns of `columns` (sorted root indices) that row group `index` lets skip arrow-rs's
    /// list reader (see [`fixed_lists`]): each with its position in `columns`.
    fn fixed_list_columns(&self, index: usize, columns: &[usize]) -> Vec<(usize, FixedListPlan)> {
        let parquet_schema = self.metadata.parquet_schema();
        let row_group = &self.metadata.metadata().row_groups()[index];
        let mut leaves_of_root = vec![Vec::new(); self.schema().fields().len()];
        for leaf in 0..parquet_schema.num_columns() {
            if let Some(leaves) = leaves_of_root.get_mut(parquet_schema.get_column_root_idx(leaf)) {
                leaves.push(leaf);
            }
        }
        columns
            .iter()
            .enumerate()
            .filter_map(|(position, &root)| match leaves_of_root[root].as_slice() {
                [leaf] => {
                    FixedListPlan::new(self.schema().field(root).data_type(), row_group, *leaf)
                        .map(|plan| (position, plan))
                }
                _ => None,
            })
            .collect()
    }

    /// The decoding of row group `index` with the root columns `columns` (sorted, distinct), in
    /// file order, in pieces of at most [`PIECE_ROWS`] rows, and the schema of its pieces:
    /// null-free fixed-size lists through [`fixed_lists`], every other column through arrow-rs's
    /// reader.
    fn open_row_group(&self, index: usize, columns: &[usize]) -> Result<(SchemaRef, Decoding)> {
        let rows = self.rows[index] as usize;
        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), columns.iter().copied());
        let ranges = self.column_chunk_ranges(index, &mask)?;
        // The file must be the one whose footer was parsed; a mapped one that shrank would fault.
        self.check_unchanged()?;
        let parts = match self.reader.read_ranges(&ranges) {
            Ok(parts) => parts,
            // A short read of a file that shrank says less than "it changed".
            Err(e) => {
                return Err(self
                    .check_unchanged()
                    .err()
                    .unwrap_or(Error::io(&self.path, e)));
            }
        };
        let chunks = RangeChunks {
            reader: self.reader.clone(),
            parts: ranges.iter().map(|r| r.start).zip(parts).collect(),
        };
        // The decoder sizes buffers from page headers (a dictionary of `num_values` entries, a
        // decompression buffer of `uncompressed_page_size` bytes): check them all first.
        self.check_pages(index, &mask, &chunks)?;
        let fixed_plans = self.fixed_list_columns(index, columns);
        let row_group = &self.metadata.metadata().row_groups()[index];
        let fixed: Vec<(usize, FixedListColumn)> = fixed_plans
            .iter()
            .map(|(position, plan)| {
                let column = &row_group.columns()[plan.leaf];
                let pages = SerializedPageReader::new(Arc::new(chunks.clone()), column, rows, None)
                    .map_err(|e| self.read_error(index, e))?;
                Ok((
                    *position,
                    plan.reader(column.column_descr_ptr(), Box::new(pages)),
                ))
            })
            .collect::<Result<_>>()?;
        let others: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(position, _)| !fixed.iter().any(|(p, _)| p == position))
            .map(|(_, &root)| root)
            .collect();
        let reader = if others.is_empty() {
            None
        } else {
            let mask =
                ProjectionMask::roots(self.metadata.parquet_schema(), others.iter().copied());
            Some(
                ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, self.metadata.clone())
                    .with_row_groups(vec![index])
                    .with_projection(mask)
                    // Pieces, not one batch per row group (see `PIECE_ROWS`). The decoder
                    // reserves buffers for a whole piece before it reads a page, so the file's
                    // row count never sizes an allocation beyond one piece.
                    .with_batch_size(rows.clamp(1, PIECE_ROWS))
                    .build()
                    .map_err(|e| self.read_error(index, e))?,
            )
        };
        let schema = match (&reader, fixed.is_empty()) {
            (Some(reader), true) => reader.schema(),
            _ => Arc::new(
                self.schema()
                    .project(columns)
                    .map_err(|e| Error::arrow_format(&self.path, e))?,
            ),
        };
        // The bytes were read above; with mmap the pages are read while decoding, and the file
        // is checked again after the last piece (see `RowGroupPieces::next_piece`).
        self.check_unchanged()?;
        Ok((schema, Decoding::Columns { reader, fixed }))
    }

    /// The byte ranges of the column chunks of row group `index` that `mask` selects, sorted,
    /// neighbours coalesced. A chunk outside the file is a format error (corrupt metadata).
    fn column_chunk_ranges(&self, index: usize, mask: &ProjectionMask) -> Result<Vec<Range<u64>>> {
        let row_group = &self.metadata.metadata().row_groups()[index];
        let file_len = self.reader.len();
        let mut ranges = Vec::new();
        for (leaf, column) in row_group.columns().iter().enumerate() {
            if !mask.leaf_included(leaf) {
                continue;
            }
            let range = chunk_range(column)
                .map(|(start, len)| start..start + len)
                .filter(|range| range.end <= file_len)
                .ok_or_else(|| {
                    self.read_error(
                        index,
                        format!(
                            "corrupt metadata: column chunk {leaf} lies outside the file \
                             ({file_len} bytes)"
                        ),
                    )
                })?;
            ranges.push(range);
        }
        Ok(coalesce(ranges, COALESCE_GAP))
    }

    /// Walks the page headers of the column chunks of row group `index` that `mask` selects, as
    /// the decoder will (one after another from the chunk's start: the page index, which could
    /// point it elsewhere, is not loaded), and rejects any whose sizes could not be honest or
    /// would not fit the budget (see [`check_page`]), before the decoder allocates from them.
    fn check_pages(&self, index: usize, mask: &ProjectionMask, chunks: &RangeChunks) -> Result<()> {
        let row_group = &self.metadata.metadata().row_groups()[index];
        for (leaf, column) in row_group.columns().iter().enumerate() {
            if !mask.leaf_included(leaf) {
                continue;
            }
            // In the file: checked at open.
            let (start, len) = chunk_range(column).expect("column chunk checked at open");
            let len = usize::try_from(len).map_err(|_| self.read_error(index, "huge chunk"))?;
            let bytes = chunks
                .get_bytes(start, len)
                .map_err(|e| self.read_error(index, e))?;
            let mut offset = 0;
            while offset < bytes.len() {
                let (header, header_len) =
                    thrift::parse_page_header(&bytes[offset..]).map_err(|why| {
                        self.read_error(
                            index,
                            format!("column {leaf}: corrupt page header at offset {offset}: {why}"),
                        )
                    })?;
                let page_len = check_page(&header, column, self.budget).map_err(|e| match e {
                    PageError::Format(why) => self.read_error(
                        index,
                        format!("column {leaf}: page at offset {offset}: {why}"),
                    ),
                    PageError::OverBudget(what, needed) => Error::over_budget(
                        format!(
                            "{}: row group {index}, column {leaf}: {what}",
                            self.path.display()
                        ),
                        needed,
                        self.budget,
                    ),
                })?;
                offset = header_len
                    .checked_add(page_len)
                    .and_then(|n| n.checked_add(offset))
                    .filter(|&end| end <= bytes.len())
                    .ok_or_else(|| {
                        self.read_error(
                            index,
                            format!(
                                "column {leaf}: page at offset {offset} runs past its column chunk"
                            ),
                        )
                    })?;
            }
        }
        Ok(())
    }

    /// A decoding failure in row group `index`, as a format error naming the file and the group.
    fn read_error(&self, index: usize, error: impl std::fmt::Display) -> Error {
        Error::format(&self.path, format!("row group {index}: {error}"))
    }
}

impl Source for ParquetFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }

    fn chunk_rows(&self) -> &[u64] {
        &self.rows
    }

    fn chunk_decoded_bytes(&self, index: usize, projection: Option<&[usize]>) -> u64 {
        let Some(columns) = self.decoded_bytes.get(index) else {
            return 0;
        };
        match projection {
            None => columns.iter().sum(),
            Some(indices) => indices.iter().filter_map(|&c| columns.get(c)).sum(),
        }
    }

    fn fetch_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch> {
        self.fetch_pieces(index, projection)?.to_batch()
    }

    fn fetch_pieces(&self, index: usize, projection: Option<&[usize]>) -> Result<DecodedChunk> {
        let mut row_group = self.row_group_pieces(index, projection)?;
        let mut pieces = Vec::new();
        while let Some(piece) = row_group.next_piece(self)? {
            pieces.push(piece);
        }
        DecodedChunk::try_from_pieces(pieces)
    }

    fn piece_decoder(
        self: Arc<Self>,
        index: usize,
        projection: Option<&[usize]>,
    ) -> Result<Box<dyn PieceDecoder>> {
        let row_group = self.row_group_pieces(index, projection)?;
        Ok(Box::new(ParquetPieces {
            file: self,
            row_group,
        }))
    }

    fn in_memory(&self) -> bool {
        false
    }

    fn identity(&self) -> Option<&FileIdentity> {
        self.reader.identity()
    }

    fn maps_file(&self) -> bool {
        // Decoded columns are copies, except view types, which may keep page buffers: slices
        // of the mapping.
        self.reader.backend() == IoBackend::Mmap
    }
}

/// The message of a decoder panic on a corrupt row group.
const DECODER_PANIC: &str = "corrupt column data (the decoder rejected it)";

/// One row group being decoded piece by piece ([`ParquetFile::row_group_pieces`]).
struct RowGroupPieces {
    index: usize,
    /// The decoded columns' schema (in file order), for the empty piece of an empty row group.
    schema: SchemaRef,
    decoding: Decoding,
    /// Restores the requested column order in each piece; `None`: already in order.
    positions: Option<Vec<usize>>,
    /// A piece has been handed out.
    handed_out: bool,
    /// Rows of the row group not decoded yet.
    rows_left: usize,
}

enum Decoding {
    /// Still decoding: arrow-rs's reader for some columns (`None`: every column is in `fixed`),
    /// and the fixed-size-list columns read without it, each at its position in the piece.
    Columns {
        reader: Option<ParquetRecordBatchReader>,
        fixed: Vec<(usize, FixedListColumn)>,
    },
    /// One piece ready to hand out (no column requested: the row count alone), or none left.
    Ready(Option<RecordBatch>),
}

impl Decoding {
    /// The next piece of at most `rows_left` rows with `schema`, or `None` at the end (an error
    /// if rows are still missing then).
    fn next_columns(
        reader: &mut Option<ParquetRecordBatchReader>,
        fixed: &mut [(usize, FixedListColumn)],
        schema: &SchemaRef,
        rows_left: usize,
    ) -> std::result::Result<Option<RecordBatch>, String> {
        let from_reader = match reader {
            Some(reader) => match reader.next() {
                Some(piece) => Some(piece.map_err(|e| e.to_string())?),
                None => None,
            },
            None => None,
        };
        if fixed.is_empty() {
            return Ok(from_reader);
        }
        let rows = match (&from_reader, reader.is_some()) {
            (Some(piece), _) => piece.num_rows(),
            (None, true) => 0,
            (None, false) => rows_left.min(PIECE_ROWS),
        };
        if rows == 0 {
            return match rows_left {
                0 => Ok(None),
                missing => Err(format!(
                    "{missing} rows missing at the end of the row group"
                )),
            };
        }
        if rows > rows_left {
            return Err(format!("{rows} rows decoded where {rows_left} were left"));
        }
        let mut from_reader = from_reader.map(|piece| piece.columns().to_vec().into_iter());
        let mut columns = Vec::with_capacity(schema.fields().len());
        for position in 0..schema.fields().len() {
            match fixed.iter_mut().find(|(p, _)| *p == position) {
                Some((_, column)) => columns.push(column.read(rows)?),
                None => columns.push(
                    from_reader
                        .as_mut()
                        .and_then(Iterator::next)
                        .ok_or_else(|| "a column is missing from the decoded piece".to_string())?,
                ),
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

impl RowGroupPieces {
    /// A row group whose one piece is `batch`.
    fn ready(index: usize, batch: RecordBatch) -> Self {
        RowGroupPieces {
            index,
            schema: batch.schema(),
            decoding: Decoding::Ready(Some(batch)),
            positions: None,
            handed_out: false,
            rows_left: 0,
        }
    }

    /// Decodes the next piece of the row group, read from `file`; `None` after the last. After
    /// the last piece the file is checked again: a row group decoded while the file changed is
    /// a mix of two files, an error.
    fn next_piece(&mut self, file: &ParquetFile) -> Result<Option<RecordBatch>> {
        let piece = match &mut self.decoding {
            Decoding::Ready(piece) => piece.take(),
            Decoding::Columns { reader, fixed } => {
                // Decoders are not written for hostile input (see `row_group_pieces`).
                let (schema, rows_left) = (&self.schema, self.rows_left);
                let next = catch_unwind(AssertUnwindSafe(|| {
                    Decoding::next_columns(reader, fixed, schema, rows_left)
                }))
                .unwrap_or_else(|_| Err(DECODER_PANIC.to_string()));
                match next {
                    Ok(Some(piece)) => {
                        self.rows_left = self.rows_left.saturating_sub(piece.num_rows());
                        Some(piece)
                    }
                    Err(why) => {
                        self.decoding = Decoding::Ready(None);
                        return Err(file.read_error(self.index, why));
                    }
                    Ok(None) => {
                        self.decoding = Decoding::Ready(None);
                        file.check_unchanged()?;
                        // A chunk has at least one piece.
                        (!self.handed_out).then(|| RecordBatch::new_empty(self.schema.clone()))
                    }
                }
            }
        };
        let Some(piece) = piece else {
            return Ok(None);
        };
        self.handed_out = true;
        match &self.positions {
            None => Ok(Some(piece)),
            Some(positions) => piece
                .project(positions)
                .map(Some)
                .map_err(|e| Error::arrow_format(&file.path, e)),
        }
    }
}

/// [`Source::piece_decoder`] of a Parquet file: one row group's pieces.
struct ParquetPieces {
    file: Arc<ParquetFile>,
    row_group: RowGroupPieces,
}

impl PieceDecoder for ParquetPieces {
    fn next_piece(&mut self) -> Result<Option<RecordBatch>> {
        self.row_group.next_piece(&self.file)
    }
}

/// Walks the footer (the Thrift FileMetaData before its length and the trailing `PAR1`) for
/// what arrow-rs 60 would take minutes to skip (see [`thrift::check_footer`]). A file too short
/// or whose length field does not fit is left to arrow-rs, which reports it.
fn check_footer(path: &Path, reader: &dyn RangeRead) -> Result<()> {
    let len = reader.len();
    if len < 12 {
        return Ok(());
    }
    let tail = reader
        .read_range(len - 8..len)
        .map_err(|e| Error::io(path, e))?;
    let footer_len = u32::from_le_bytes(tail[..4].try_into().expect("four bytes")) as u64;
    if &tail[4..] != b"PAR1" || footer_len > len - 8 {
        return Ok(());
    }
    let footer = reader
        .read_range(len - 8 - footer_len..len - 8)
        .map_err(|e| Error::io(path, e))?;
    thrift::check_footer(&footer).map_err(|why| {
        Error::format(
            path,
            format!("unreadable Parquet footer (truncated or corrupt file): {why}"),
        )
    })
}

/// Sorts `ranges` and merges those that overlap or lie within `gap` bytes of each other.
fn coalesce(mut ranges: Vec<Range<u64>>, gap: u64) -> Vec<Range<u64>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// What the Parquet decoder reads from: byte ranges fetched ahead (sorted, disjoint), served as
/// zero-copy slices, and the file's reader for anything outside them (the footer, at open).
#[derive(Debug, Clone)]
struct RangeChunks {
    reader: Arc<dyn RangeRead>,
    parts: Vec<(u64, Bytes)>,
}

impl RangeChunks {
    /// The fetched bytes from `start` to the end of the part holding it.
    fn tail(&self, start: u64) -> Option<Bytes> {
        let i = self
            .parts
            .partition_point(|(s, _)| *s <= start)
            .checked_sub(1)?;
        let (part_start, bytes) = &self.parts[i];
        let offset = usize::try_from(start - part_start).ok()?;
        (offset < bytes.len()).then(|| bytes.slice(offset..))
    }
}

impl Length for RangeChunks {
    fn len(&self) -> u64 {
        self.reader.len()
    }
}

/// A reader from some offset on: fetched bytes, or reads through the file's reader.
enum ChunkRead {
    Fetched(bytes::buf::Reader<Bytes>),
    File(SequentialRead),
}

impl Read for ChunkRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ChunkRead::Fetched(reader) => reader.read(buf),
            ChunkRead::File(reader) => reader.read(buf),
        }
    }
}

impl ChunkReader for RangeChunks {
    type T = ChunkRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<ChunkRead> {
        Ok(match self.tail(start) {
            // Page headers are read from here; the page bodies then come from `get_bytes`.
            Some(bytes) => ChunkRead::Fetched(bytes.reader()),
            None => ChunkRead::File(SequentialRead::new(self.reader.clone(), start, 64 << 10)),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        if let Some(tail) = self.tail(start) {
            if tail.len() >= length {
                return Ok(tail.slice(..length));
            }
        }
        let end = start
            .checked_add(length as u64)
            .filter(|&end| end <= self.reader.len())
            .ok_or_else(|| {
                ParquetError::EOF(format!(
                    "{length} bytes at offset {start} lie past the end of the file ({} bytes)",
                    self.reader.len()
                ))
            })?;
        self.reader
            .read_range(start..end)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

/// Estimated decoded Arrow bytes of each root column of a row group.
///
/// The starting point is each column chunk's uncompressed size (its encoded pages before
/// compression). Dictionary and run-length encodings make that far smaller than the Arrow arrays
/// they decode to (a column of ten distinct labels encodes to a few bits a value), so each leaf
/// is also floored at its value count (at least the row group's rows: every row has a value or
/// a null in every leaf) times the width of its physical type as the decoder holds it (booleans
/// a byte each, before they are packed into a bitmap). Sums saturate: the sizes come from the
/// file.
fn estimate_decoded_bytes(row_group: &RowGroupMetaData, root_columns: usize) -> Vec<u64> {
    let mut per_root = vec![0u64; root_columns];
    let schema = row_group.schema_descr();
    let rows = row_group.num_rows().max(0) as u64;
    for (leaf, column) in row_group.columns().iter().enumerate() {
        let values = (column.num_values().max(0) as u64).max(rows);
        let width = match column.column_type() {
            PhysicalType::BOOLEAN => 1,
            PhysicalType::INT32 | PhysicalType::FLOAT => 4,
            PhysicalType::INT64 | PhysicalType::DOUBLE | PhysicalType::INT96 => 8,
            // Offsets; the bytes themselves are in the uncompressed size.
            PhysicalType::BYTE_ARRAY => 4,
            PhysicalType::FIXED_LEN_BYTE_ARRAY => column.column_descr().type_length().max(0) as u64,
        };
        let estimate = values
            .saturating_mul(width)
            .max(column.uncompressed_size().max(0) as u64);
        if let Some(slot) = per_root.get_mut(schema.get_column_root_idx(leaf)) {
            *slot = slot.saturating_add(estimate);
        }
    }
    per_root
}

/// The byte range (start, length) of a column chunk, as arrow-rs's
/// `ColumnChunkMetaData::byte_range` reads it, without its panics: `None` when the metadata's
/// numbers are negative or overflow.
fn chunk_range(column: &ColumnChunkMetaData) -> Option<(u64, u64)> {
    let start = column
        .dictionary_page_offset()
        .unwrap_or_else(|| column.data_page_offset());
    let start = u64::try_from(start).ok()?;
    let len = u64::try_from(column.compressed_size()).ok()?;
    start.checked_add(len)?;
    Some((start, len))
}

/// The most values one page can hold: a page header states its `num_values` as an i32.
const MAX_PAGE_VALUES: u64 = i32::MAX as u64;

/// The fewest bytes a data page takes in a column chunk. Its Thrift (compact protocol) header
/// alone needs: the page type, uncompressed and compressed sizes (a field header byte and at
/// least one varint byte each: 6 bytes); the data page header struct (a field header byte, then
/// `num_values` — 6 bytes when it is near `MAX_PAGE_VALUES`, fewer bytes mean fewer values —
/// three encodings of 2 bytes each, and a stop byte: 14 bytes); and the header's stop byte.
/// A v2 data page header has more required fields, so more bytes. Dictionary and index pages
/// hold no rows.
const MIN_DATA_PAGE_BYTES: u64 = 21;

/// The most values (levels: nulls count) a column chunk of `len` bytes can hold:
/// `MAX_PAGE_VALUES` per page, one page per `MIN_DATA_PAGE_BYTES` at the most.
///
/// This is the only bound on rows per byte that holds for every valid file: run-length encoded
/// levels and dictionary indices store a run of `2^31 - 1` equal values (all nulls, or one
/// repeated value) in a few bytes, so a sound bound cannot be the usual "one bit per value".
fn max_values_in(len: u64) -> u64 {
    (len / MIN_DATA_PAGE_BYTES).saturating_mul(MAX_PAGE_VALUES)
}

/// Checks the row groups of a parsed footer against the file (`file_len` bytes) and the memory
/// budget, and returns each row group's rows and estimated decoded bytes per root column.
///
/// Row counts drive the epoch plan (whose set-up walks every row of a dataset that must be
/// decoded) and the decoder's buffers (sized for a whole row group), so a footer that claims
/// 2^40 rows in a 4 KB file must be refused here, not believed. A row group's rows are bounded by
/// what its column chunks can physically hold: every row has at least one value (or null) in
/// every leaf column, so `rows <= num_values` of each column chunk, and a chunk of `len` bytes
/// holds at most [`max_values_in`]`(len)` values; the chunks of one leaf column are disjoint
/// parts of the file, so the file's rows are bounded by [`max_values_in`]`(file_len)` too. A row
/// group with rows but no column chunk has nothing to hold them. Sums are checked for overflow.
/// Then a row group whose estimated decoded size exceeds `budget` cannot be decoded within it:
/// [`Error::OutOfMemory`].
fn check_row_groups(
    path: &Path,
    metadata: &ParquetMetaData,
    file_len: u64,
    root_columns: usize,
    budget: u64,
) -> Result<(Vec<u64>, Vec<Vec<u64>>)> {
    let corrupt =
        |message: String| Error::format(path, format!("corrupt Parquet footer: {message}"));
    let mut rows = Vec::new();
    let mut decoded_bytes = Vec::new();
    let mut total = 0u64;
    for (index, row_group) in metadata.row_groups().iter().enumerate() {
        let count = u64::try_from(row_group.num_rows()).map_err(|_| {
            corrupt(format!(
                "row group {index} has {} rows",
                row_group.num_rows()
            ))
        })?;
        if count > 0 && row_group.columns().is_empty() {
            return Err(corrupt(format!(
                "row group {index} claims {count} rows but has no column to hold them"
            )));
        }
        for (leaf, column) in row_group.columns().iter().enumerate() {
            let (start, len) = chunk_range(column)
                .filter(|&(start, len)| start + len <= file_len)
                .ok_or_else(|| {
                    corrupt(format!(
                        "row group {index}: column chunk {leaf} (offset {}, {} bytes) lies \
                         outside the file ({file_len} bytes)",
                        column
                            .dictionary_page_offset()
                            .unwrap_or_else(|| column.data_page_offset()),
                        column.compressed_size()
                    ))
                })?;
            let values = u64::try_from(column.num_values()).map_err(|_| {
                corrupt(format!(
                    "row group {index}: column chunk {leaf} has {} values",
                    column.num_values()
                ))
            })?;
            if values > max_values_in(len) {
                return Err(corrupt(format!(
                    "row group {index}: column chunk {leaf} claims {values} values in {len} \
                     bytes at offset {start}, more than that many bytes of pages can hold"
                )));
            }
            if count > values {
                return Err(corrupt(format!(
                    "row group {index} claims {count} rows, but its column chunk {leaf} holds \
                     only {values} values"
                )));
            }
        }
        total = total
            .checked_add(count)
            .filter(|&total| total <= max_values_in(file_len))
            .ok_or_else(|| {
                corrupt(format!(
                    "row group {index} claims {count} rows, which brings the file past what \
                     {file_len} bytes can hold"
                ))
            })?;
        let estimate = estimate_decoded_bytes(row_group, root_columns);
        let needed = estimate.iter().fold(0u64, |sum, &b| sum.saturating_add(b));
        if needed > budget {
            return Err(Error::over_budget(
                format!(
                    "{}: row group {index} ({count} rows) decoded",
                    path.display()
                ),
                needed,
                budget,
            ));
        }
        rows.push(count);
        decoded_bytes.push(estimate);
    }
    Ok((rows, decoded_bytes))
}

/// Why a page header is refused.
enum PageError {
    /// Its sizes cannot be honest.
    Format(String),
    /// It would take (what, bytes) more than the memory budget.
    OverBudget(String, u64),
}

/// How far one byte of each codec's output can expand: the ratio of its densest encoding.
/// Snappy: a 3-byte copy element emits at most 64 bytes. Deflate (gzip): 1032:1. LZ4: each
/// extra match-length byte adds at most 255 bytes. Zstd: a 4-byte RLE block emits a whole
/// 128 KiB block. Doubled for margin; `None` for codecs this build cannot decode (the decoder
/// refuses those pages itself).
fn max_expansion(codec: Compression) -> Option<u64> {
    match codec {
        Compression::UNCOMPRESSED => Some(1),
        Compression::SNAPPY => Some(2 * 22),
        Compression::GZIP(_) => Some(2 * 1032),
        Compression::LZ4 | Compression::LZ4_RAW => Some(2 * 255),
        Compression::ZSTD(_) => Some(2 * 32_768),
        _ => None,
    }
}

/// Checks one page header of `column` before the decoder reads it, and returns the length of
/// the page's body (after the header).
///
/// * Sizes are not negative.
/// * A page the decoder decompresses gets a buffer of `uncompressed_page_size` bytes: that must
///   fit the budget and be no more than the codec can expand the compressed bytes to.
/// * A dictionary page of `num_values` entries makes the decoder allocate that many values
///   before reading any: its PLAIN-encoded entries must fit the page (each takes at least its
///   type's width: a bit for booleans, 4 bytes for a byte array's length), and the decoded
///   dictionary the budget.
fn check_page(
    header: &thrift::PageHeader,
    column: &ColumnChunkMetaData,
    budget: u64,
) -> std::result::Result<usize, PageError> {
    let format = |s: String| PageError::Format(s);
    let compressed = u64::try_from(header.compressed_page_size)
        .map_err(|_| format(format!("compressed size {}", header.compressed_page_size)))?;
    let codec = column.compression();
    let decompresses = codec != Compression::UNCOMPRESSED && header.v2_is_compressed != Some(false);
    // The bytes the decoder reads values from.
    let held = if decompresses {
        let uncompressed = u64::try_from(header.uncompressed_page_size).map_err(|_| {
            format(format!(
                "uncompressed size {}",
                header.uncompressed_page_size
            ))
        })?;
        if uncompressed > budget {
            return Err(PageError::OverBudget(
                "a page's decompression buffer".into(),
                uncompressed,
            ));
        }
        if let Some(ratio) = max_expansion(codec) {
            if uncompressed > compressed.saturating_mul(ratio).saturating_add(64) {
                return Err(format(format!(
                    "claims {uncompressed} bytes uncompressed from {compressed} bytes of \
                     {codec:?}, more than that codec can expand to"
                )));
            }
        }
        uncompressed
    } else {
        compressed
    };
    if let Some(num_values) = header.dictionary_values {
        let n = u64::try_from(num_values)
            .map_err(|_| format(format!("dictionary of {num_values} values")))?;
        let type_length = column.column_descr().type_length().max(1) as u64;
        // (bits each entry takes in the page at least, bytes each takes decoded)
        let (plain_bits, decoded) = match column.column_type() {
            PhysicalType::BOOLEAN => (1, 1),
            PhysicalType::INT32 | PhysicalType::FLOAT => (32, 4),
            PhysicalType::INT64 | PhysicalType::DOUBLE => (64, 8),
            PhysicalType::INT96 => (96, 12),
            PhysicalType::BYTE_ARRAY => (32, 4),
            PhysicalType::FIXED_LEN_BYTE_ARRAY => (8 * type_length, type_length),
        };
        if n.saturating_mul(plain_bits) > held.saturating_mul(8) {
            return Err(format(format!(
                "dictionary claims {n} values in {held} bytes, more than fit"
            )));
        }
        let needed = n.saturating_mul(decoded);
        if needed > budget {
            return Err(PageError::OverBudget(
                format!("a dictionary of {n} values"),
                needed,
            ));
        }
    }
    if let Some(num_values) = header.data_values {
        if num_values < 0 {
            return Err(format(format!("data page of {num_values} values")));
        }
    }
    usize::try_from(compressed).map_err(|_| format(format!("compressed size {compressed}")))
}

/// Reads Thrift (compact protocol) as arrow-rs 60 does, allocating nothing.
///
/// [`parse_page_header`](thrift::parse_page_header) reads page headers exactly as arrow-rs's
/// decoder will, so that the sizes [`check_page`] checks are the ones it uses: fields it knows
/// are read by their schema type whatever type the field header declares, integers are
/// truncated as it truncates them, repeated fields overwrite, unknown fields are skipped by
/// their declared type, nested at most 64 deep.
///
/// [`check_footer`](thrift::check_footer) walks a footer before arrow-rs parses it, for one
/// flaw of arrow-rs 60's skipping: it skips the elements of a list (or set, or map) of booleans
/// one by one while taking no byte for each, so a 9-byte unknown field claiming 2^31 - 1 of
/// them costs it seconds (minutes under a sanitizer), and a footer can hold hundreds of them.
/// A valid writer spends a byte on each element: such a list longer than the bytes left is
/// refused here, whatever the depth.
mod thrift {
    /// The fields of a page header the checks need.
    #[derive(Debug, Default)]
    pub(super) struct PageHeader {
        pub uncompressed_page_size: i32,
        pub compressed_page_size: i32,
        /// `num_values` of a dictionary page.
        pub dictionary_values: Option<i32>,
        /// `num_values` of a data page (v1 or v2).
        pub data_values: Option<i32>,
        /// `is_compressed` of a v2 data page.
        pub v2_is_compressed: Option<bool>,
    }

    /// Field types of the compact protocol.
    const BOOL_TRUE: u8 = 1;
    const BOOL_FALSE: u8 = 2;
    const BYTE: u8 = 3;
    const I16: u8 = 4;
    const I32: u8 = 5;
    const I64: u8 = 6;
    const DOUBLE: u8 = 7;
    const BINARY: u8 = 8;
    const LIST: u8 = 9;
    const SET: u8 = 10;
    const MAP: u8 = 11;
    const STRUCT: u8 = 12;
    const UUID: u8 = 13;

    const MAX_DEPTH: u32 = 64;

    struct Cursor<'a> {
        bytes: &'a [u8],
        pos: usize,
        /// Elements skipped that took no byte (booleans in lists).
        free_elements: u64,
    }

    type Parsed<T> = std::result::Result<T, String>;

    impl Cursor<'_> {
        fn byte(&mut self) -> Parsed<u8> {
            let b = *self.bytes.get(self.pos).ok_or("truncated")?;
            self.pos += 1;
            Ok(b)
        }

        fn skip(&mut self, n: u64) -> Parsed<()> {
            let end = usize::try_from(n)
                .ok()
                .and_then(|n| self.pos.checked_add(n))
                .filter(|&end| end <= self.bytes.len())
                .ok_or("truncated")?;
            self.pos = end;
            Ok(())
        }

        /// ULEB128, as arrow-rs reads it (bits past 64 dropped).
        fn varint(&mut self) -> Parsed<u64> {
            let mut value = 0u64;
            let mut shift = 0u32;
            loop {
                let b = self.byte()?;
                value |= ((b & 0x7f) as u64).wrapping_shl(shift);
                if b & 0x80 == 0 {
                    return Ok(value);
                }
                shift = shift.wrapping_add(7);
            }
        }

        fn zigzag(&mut self) -> Parsed<i64> {
            let v = self.varint()?;
            Ok((v >> 1) as i64 ^ -((v & 1) as i64))
        }

        fn i32(&mut self) -> Parsed<i32> {
            Ok(self.zigzag()? as i32)
        }

        /// (field type, field id), or `None` at the struct's stop byte.
        fn field(&mut self, last: i16) -> Parsed<Option<(u8, i16)>> {
            let b = self.byte()?;
            let kind = b & 0x0f;
            if kind == 0 {
                return Ok(None);
            }
            if kind > UUID {
                return Err(format!("field type {kind}"));
            }
            let delta = b >> 4;
            let id = if delta != 0 {
                last.checked_add(delta as i16).ok_or("field id overflow")?
            } else {
                self.zigzag()? as i16
            };
            Ok(Some((kind, id)))
        }

        fn bool_field(kind: u8) -> Parsed<bool> {
            match kind {
                BOOL_TRUE => Ok(true),
                BOOL_FALSE => Ok(false),
                other => Err(format!("boolean field of type {other}")),
            }
        }

        /// (element type, size) of a list or set.
        fn list_begin(&mut self) -> Parsed<(u8, u64)> {
            let b = self.byte()?;
            if b == 0 {
                return Ok((BYTE, 0));
            }
            let element = element_type(b & 0x0f)?;
            let size = match b >> 4 {
                15 => {
                    let n = self.varint()?;
                    i32::try_from(n).map_err(|_| format!("list of {n} elements"))? as u64
                }
                n => n as u64,
            };
            Ok((element, size))
        }

        /// Skips a value of type `kind`, as arrow-rs's `skip_till_depth`.
        fn skip_value(&mut self, kind: u8, depth: u32) -> Parsed<()> {
            if depth == 0 {
                return Err("nested too deep".into());
            }
            match kind {
                BOOL_TRUE | BOOL_FALSE => Ok(()),
                BYTE => self.skip(1),
                I16 | I32 | I64 => self.varint().map(|_| ()),
                DOUBLE => self.skip(8),
                BINARY => {
                    let n = self.varint()?;
                    self.skip(n)
                }
                STRUCT => {
                    while let Some((kind, _)) = self.field(0)? {
                        self.skip_value(kind, depth - 1)?;
                    }
                    Ok(())
                }
                LIST | SET => {
                    let (element, size) = self.list_begin()?;
                    self.skip_elements(&[element], size, depth)
                }
                MAP => {
                    let n = self.varint()?;
                    let size = i32::try_from(n).map_err(|_| format!("map of {n} entries"))?;
                    if size > 0 {
                        let kv = self.byte()?;
                        let types = [element_type(kv >> 4)?, element_type(kv & 0x0f)?];
                        self.skip_elements(&types, size as u64, depth)?;
                    }
                    Ok(())
                }
                UUID => self.skip(16),
                other => Err(format!("field type {other}")),
            }
        }

        /// Skips `size` elements, each of the types `types`. Elements that take no byte
        /// (booleans, as arrow-rs skips them) are not walked one by one; a list of them longer
        /// than the bytes left cannot have been written by a valid writer (which spends a
        /// byte on each).
        fn skip_elements(&mut self, types: &[u8], size: u64, depth: u32) -> Parsed<()> {
            if types.iter().all(|&t| t == BOOL_TRUE) {
                // arrow-rs spends an iteration on each: at most one per byte of the whole input,
                // as a valid writer spends a byte on each.
                self.free_elements = self.free_elements.saturating_add(size);
                if self.free_elements > self.bytes.len() as u64 {
                    return Err(format!(
                        "{size} booleans in a list, more than {} bytes can hold",
                        self.bytes.len()
                    ));
                }
                return Ok(());
            }
            for _ in 0..size {
                for &t in types {
                    self.skip_value(t, depth - 1)?;
                }
            }
            Ok(())
        }
    }

    /// The field type a list's element type stands for (booleans: `BOOL_TRUE`).
    fn element_type(code: u8) -> Parsed<u8> {
        match code {
            1 | 2 => Ok(BOOL_TRUE),
            3..=13 => Ok(code),
            other => Err(format!("element type {other}")),
        }
    }

    /// Walks the Thrift struct at the start of `footer` (a Parquet FileMetaData) by the types its
    /// field headers declare, refusing lists, sets and maps of booleans that claim more elements
    /// than bytes are left. Honest footers declare the types arrow-rs reads them as, so it walks
    /// them as arrow-rs will.
    pub(super) fn check_footer(footer: &[u8]) -> Parsed<()> {
        Cursor {
            bytes: footer,
            pos: 0,
            free_elements: 0,
        }
        .skip_value(STRUCT, MAX_DEPTH)
    }

    /// Reads the page header at the start of `bytes`: the header and its length in bytes.
    pub(super) fn parse_page_header(bytes: &[u8]) -> Parsed<(PageHeader, usize)> {
        let mut c = Cursor {
            bytes,
            pos: 0,
            free_elements: 0,
        };
        let mut header = PageHeader::default();
        let (mut kind, mut uncompressed, mut compressed) = (None, None, None);
        let (mut v1_values, mut v2_values) = (None, None);
        let mut last = 0i16;
        while let Some((field_type, id)) = c.field(last)? {
            match id {
                1 => kind = Some(c.i32()?),
                2 => uncompressed = Some(c.i32()?),
                3 => compressed = Some(c.i32()?),
                4 => {
                    c.i32()?;
                }
                5 => v1_values = Some(data_page(&mut c, false, &mut header)?),
                // An index page header is an empty struct: read as one whatever the field says.
                6 => c.skip_value(STRUCT, MAX_DEPTH)?,
                7 => header.dictionary_values = Some(dictionary_page(&mut c)?),
                8 => v2_values = Some(data_page(&mut c, true, &mut header)?),
                _ => c.skip_value(field_type, MAX_DEPTH)?,
            }
            last = id;
        }
        let kind = kind.ok_or("no page type")?;
        header.uncompressed_page_size = uncompressed.ok_or("no uncompressed size")?;
        header.compressed_page_size = compressed.ok_or("no compressed size")?;
        // The decoder reads the sub-header the page type names, and ignores the others.
        match kind {
            0 => {
                header.data_values = v1_values;
                header.dictionary_values = None;
                header.v2_is_compressed = None;
            }
            1 => {
                header.dictionary_values = None;
                header.v2_is_compressed = None;
            }
            2 => header.v2_is_compressed = None,
            3 => {
                header.data_values = v2_values;
                header.dictionary_values = None;
            }
            other => return Err(format!("page type {other}")),
        }
        Ok((header, c.pos))
    }

    /// A data page header (v1, or v2 with `v2`): its `num_values`.
    fn data_page(c: &mut Cursor<'_>, v2: bool, header: &mut PageHeader) -> Parsed<i32> {
        let mut num_values = None;
        let mut last = 0i16;
        if v2 {
            header.v2_is_compressed = None;
        }
        while let Some((field_type, id)) = c.field(last)? {
            match (v2, id) {
                (_, 1) => num_values = Some(c.i32()?),
                (false, 2..=4) | (true, 2..=6) => {
                    c.i32()?;
                }
                (true, 7) => header.v2_is_compressed = Some(Cursor::bool_field(field_type)?),
                _ => c.skip_value(field_type, MAX_DEPTH)?,
            }
            last = id;
        }
        num_values.ok_or_else(|| "data page header without num_values".into())
    }

    /// A dictionary page header: its `num_values`.
    fn dictionary_page(c: &mut Cursor<'_>) -> Parsed<i32> {
        let mut num_values = None;
        let mut last = 0i16;
        while let Some((field_type, id)) = c.field(last)? {
            match id {
                1 => num_values = Some(c.i32()?),
                2 => {
                    c.i32()?;
                }
                3 => {
                    Cursor::bool_field(field_type)?;
                }
                _ => c.skip_value(field_type, MAX_DEPTH)?,
            }
            last = id;
        }
        num_values.ok_or_else(|| "dictionary page header without num_values".into())
    }
}
