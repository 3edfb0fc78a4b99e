//! Parquet source: one chunk per row group, decoded on demand with arrow-rs's `parquet` reader.
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
use arrow_select::concat::concat_batches;
use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Type as PhysicalType;
use parquet::errors::ParquetError;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::reader::{ChunkReader, Length};

use super::source::Source;
use crate::error::{Error, Result};
use crate::runtime::io::{FileIdentity, IoBackend, IoContext, RangeRead, SequentialRead};

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
        let reader = io.open(path).map_err(|e| Error::io(path, e))?;
        if reader.is_empty() {
            return Err(Error::format(path, "empty file (not Parquet)"));
        }
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
        let mut rows = Vec::new();
        let mut decoded_bytes = Vec::new();
        for (index, row_group) in metadata.metadata().row_groups().iter().enumerate() {
            let count = u64::try_from(row_group.num_rows()).map_err(|_| {
                Error::format(
                    path,
                    format!(
                        "corrupt Parquet footer: row group {index} has {} rows",
                        row_group.num_rows()
                    ),
                )
            })?;
            rows.push(count);
            decoded_bytes.push(estimate_decoded_bytes(row_group, root_columns));
        }
        Ok(ParquetFile {
            path: path.to_path_buf(),
            reader,
            metadata,
            rows,
            decoded_bytes,
        })
    }

    /// Decodes row group `index` with the root columns `columns` (sorted, distinct), in file
    /// order, as one batch.
    fn decode_row_group(&self, index: usize, columns: &[usize]) -> Result<RecordBatch> {
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
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, self.metadata.clone())
                .with_row_groups(vec![index])
                .with_projection(mask)
                // One batch for the whole row group: the chunk is the unit the loader caches
                // and slices, and splitting it would only add a concat.
                .with_batch_size(rows.max(1))
                .build()
                .map_err(|e| self.read_error(index, e))?;
        let schema = reader.schema();
        let mut batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.read_error(index, e))?;
        let batch = match batches.len() {
            0 => RecordBatch::new_empty(schema),
            1 => batches.pop().expect("one batch"),
            // The reader promises batches of at most `batch_size` rows, not exactly one.
            _ => concat_batches(&schema, &batches).map_err(|e| self.read_error(index, e))?,
        };
        // Decoded while the file changed: a mix of two files, not a row group of either.
        self.check_unchanged()?;
        Ok(batch)
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
            // As arrow-rs's `ColumnChunkMetaData::byte_range`, without its panic.
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let len = column.compressed_size();
            let range = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(start, len)| Some(start..start.checked_add(len)?))
                .filter(|range| range.end <= file_len)
                .ok_or_else(|| {
                    self.read_error(
                        index,
                        format!(
                            "corrupt metadata: column chunk {leaf} at offset {start}, length \
                             {len}, lies outside the file ({file_len} bytes)"
                        ),
                    )
                })?;
            ranges.push(range);
        }
        Ok(coalesce(ranges, COALESCE_GAP))
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
            return RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
                .map_err(|e| Error::arrow_format(&self.path, e));
        }
        // The projection mask decodes columns in file order, once each; the requested order
        // (which may repeat or reorder columns) is restored afterwards by position.
        let mut columns = requested.clone();
        columns.sort_unstable();
        columns.dedup();
        // Decoders are not written for hostile input: a panic on a corrupt row group is a format
        // error of that file, not a crash.
        let decoded = catch_unwind(AssertUnwindSafe(|| self.decode_row_group(index, &columns)))
            .unwrap_or_else(|_| {
                Err(self.read_error(index, "corrupt column data (the decoder rejected it)"))
            })?;
        if requested == columns {
            return Ok(decoded);
        }
        let positions: Vec<usize> = requested
            .iter()
            .map(|c| {
                columns
                    .binary_search(c)
                    .expect("every requested column was decoded")
            })
            .collect();
        decoded
            .project(&positions)
            .map_err(|e| Error::arrow_format(&self.path, e))
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
#[derive(Debug)]
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
/// is also floored at its value count times the Arrow width of its physical type.
fn estimate_decoded_bytes(row_group: &RowGroupMetaData, root_columns: usize) -> Vec<u64> {
    let mut per_root = vec![0u64; root_columns];
    let schema = row_group.schema_descr();
    for (leaf, column) in row_group.columns().iter().enumerate() {
        let values = column.num_values().max(0) as u64;
        let fixed = match column.column_type() {
            PhysicalType::BOOLEAN => values.div_ceil(8),
            PhysicalType::INT32 | PhysicalType::FLOAT => values * 4,
            PhysicalType::INT64 | PhysicalType::DOUBLE | PhysicalType::INT96 => values * 8,
            // Offsets; the bytes themselves are in the uncompressed size.
            PhysicalType::BYTE_ARRAY => values * 4,
            PhysicalType::FIXED_LEN_BYTE_ARRAY => {
                values * column.column_descr().type_length().max(0) as u64
            }
        };
        let estimate = fixed.max(column.uncompressed_size().max(0) as u64);
        if let Some(slot) = per_root.get_mut(schema.get_column_root_idx(leaf)) {
            *slot += estimate;
        }
    }
    per_root
}
