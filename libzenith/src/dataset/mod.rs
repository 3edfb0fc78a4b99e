//! Dataset sources: what a path on disk holds, as an ordered list of Arrow record batches
//! ("chunks") sharing one schema, addressable by global row number.

pub mod ipc;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;

use crate::error::{Error, Result};

/// A dataset opened for reading: its schema and its rows as chunks in a fixed order.
#[derive(Debug)]
pub struct Dataset {
    path: PathBuf,
    schema: SchemaRef,
    chunks: Vec<RecordBatch>,
    /// `chunk_starts[i]` is the global row number of the first row of `chunks[i]`; one more entry
    /// holds the total, so chunk `i` covers `chunk_starts[i]..chunk_starts[i + 1]`.
    chunk_starts: Vec<u64>,
}

impl Dataset {
    /// Opens the dataset at `path`, recognising its format from its leading bytes.
    pub fn open(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if metadata.is_dir() {
            return Err(Error::Unsupported(format!(
                "{}: is a directory; this build reads single Arrow IPC files",
                path.display()
            )));
        }
        let format = sniff_format(path)?;
        match format {
            Format::ArrowIpcFile => {
                let file = ipc::IpcFile::open(path)?;
                Ok(Self::from_batches(
                    path,
                    file.schema().clone(),
                    file.batches().to_vec(),
                ))
            }
            Format::Parquet => Err(Error::Unsupported(format!(
                "{}: Parquet is not supported by this build yet",
                path.display()
            ))),
            Format::Unknown => Err(Error::format(
                path,
                "not a recognised dataset file (expected an Arrow IPC file starting with ARROW1)",
            )),
        }
    }

    /// Builds a dataset from batches already in memory (used by tests and future sources).
    pub fn from_batches(path: &Path, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        // Empty chunks carry no rows and would only complicate lookups.
        let chunks: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        let mut chunk_starts = Vec::with_capacity(chunks.len() + 1);
        let mut total = 0u64;
        chunk_starts.push(0);
        for chunk in &chunks {
            total += chunk.num_rows() as u64;
            chunk_starts.push(total);
        }
        Dataset {
            path: path.to_path_buf(),
            schema,
            chunks,
            chunk_starts,
        }
    }

    /// The schema every batch of this dataset has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Total number of rows.
    pub fn num_rows(&self) -> u64 {
        *self
            .chunk_starts
            .last()
            .expect("chunk_starts always holds the total")
    }

    /// The path the dataset was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows `start..start + len` as one record batch.
    ///
    /// Zero-copy (a slice sharing the source's buffers) when the range lies inside one chunk; rows
    /// spanning chunks are concatenated into new buffers.
    pub fn slice_rows(&self, start: u64, len: usize) -> Result<RecordBatch> {
        let end = start
            .checked_add(len as u64)
            .filter(|&end| end <= self.num_rows())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "row range {start}+{len} outside a dataset of {} rows",
                    self.num_rows()
                ))
            })?;
        if len == 0 {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        // The chunk holding `start`: the last one whose first row is <= start.
        let first = self.chunk_starts.partition_point(|&s| s <= start) - 1;
        let mut pieces = Vec::new();
        let mut row = start;
        let mut chunk = first;
        while row < end {
            let chunk_start = self.chunk_starts[chunk];
            let chunk_end = self.chunk_starts[chunk + 1];
            let take_end = end.min(chunk_end);
            pieces.push(
                self.chunks[chunk].slice((row - chunk_start) as usize, (take_end - row) as usize),
            );
            row = take_end;
            chunk += 1;
        }
        if pieces.len() == 1 {
            return Ok(pieces.pop().expect("one piece"));
        }
        Ok(concat_batches(&self.schema, &pieces)?)
    }
}

/// File formats recognised by their leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    ArrowIpcFile,
    Parquet,
    Unknown,
}

/// Reads the first bytes of `path` to tell its format.
fn sniff_format(path: &Path) -> Result<Format> {
    let mut head = [0u8; 6];
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let head = &head[..filled];
    Ok(if head.starts_with(ipc::ARROW_FILE_MAGIC) {
        Format::ArrowIpcFile
    } else if head.starts_with(b"PAR1") {
        Format::Parquet
    } else {
        Format::Unknown
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn chunked(sizes: &[usize]) -> Dataset {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let mut next = 0i64;
        let batches = sizes
            .iter()
            .map(|&n| {
                let values: Vec<i64> = (next..next + n as i64).collect();
                next += n as i64;
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
                    .unwrap()
            })
            .collect();
        Dataset::from_batches(Path::new("mem"), schema, batches)
    }

    fn ids(batch: &RecordBatch) -> Vec<i64> {
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        col.values().to_vec()
    }

    #[test]
    fn slices_within_one_chunk_share_buffers() {
        let ds = chunked(&[10, 10]);
        let batch = ds.slice_rows(12, 5).unwrap();
        assert_eq!(ids(&batch), vec![12, 13, 14, 15, 16]);
        let source = ds.chunks[1].column(0).to_data();
        assert_eq!(
            batch.column(0).to_data().buffers()[0].data_ptr(),
            source.buffers()[0].data_ptr()
        );
    }

    #[test]
    fn slices_across_chunks_and_skips_empty_ones() {
        let ds = chunked(&[3, 0, 4, 5]);
        assert_eq!(ds.num_rows(), 12);
        assert_eq!(
            ids(&ds.slice_rows(1, 9).unwrap()),
            (1..10).collect::<Vec<_>>()
        );
        assert_eq!(
            ids(&ds.slice_rows(0, 12).unwrap()),
            (0..12).collect::<Vec<_>>()
        );
        assert_eq!(ds.slice_rows(12, 0).unwrap().num_rows(), 0);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let ds = chunked(&[3]);
        assert!(matches!(ds.slice_rows(2, 2), Err(Error::Internal(_))));
        assert!(matches!(
            ds.slice_rows(u64::MAX, 2),
            Err(Error::Internal(_))
        ));
    }
}
