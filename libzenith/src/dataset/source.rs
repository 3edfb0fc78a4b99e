//! The contract every file format implements, and how a file's format is recognised.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::runtime::uring::IoContext;

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
    fn read_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch>;

    /// True when reading a chunk costs no decoding and no new memory (memory-mapped IPC files,
    /// materialised CSV): the loader then needs no cache for it.
    fn in_memory(&self) -> bool;
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
/// streams decoded over their mapping): reading a chunk is a projection of a held batch.
#[derive(Debug)]
pub struct HeldBatches {
    path: PathBuf,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: Vec<u64>,
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
        }
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

    fn read_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch> {
        held_chunk(&self.path, &self.batches, index, projection)
    }

    fn in_memory(&self) -> bool {
        true
    }
}

/// The file formats Zenith reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Arrow IPC file format (`ARROW1` magic at both ends), read through a memory map.
    ArrowIpcFile,
    /// Arrow IPC stream format (a sequence of messages, no footer).
    ArrowIpcStream,
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// Recognises a file's format: magic bytes first (they cannot lie), then the extension for
    /// formats without magic (CSV). `None` when neither tells.
    pub fn detect(path: &Path) -> Result<Option<Format>> {
        let head = read_head(path)?;
        if head.starts_with(b"ARROW1") {
            return Ok(Some(Format::ArrowIpcFile));
        }
        if head.starts_with(b"PAR1") {
            return Ok(Some(Format::Parquet));
        }
        // Streams start with the continuation marker 0xFFFFFFFF and a message length.
        if head.len() >= 8 && head[..4] == [0xff; 4] {
            return Ok(Some(Format::ArrowIpcStream));
        }
        Ok(Format::from_extension(path))
    }

    /// The format an extension names, for files whose content does not say.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "arrow" | "ipc" | "feather" => Some(Format::ArrowIpcFile),
            "arrows" => Some(Format::ArrowIpcStream),
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// A short lowercase name, for messages and fingerprints.
    pub fn name(self) -> &'static str {
        match self {
            Format::ArrowIpcFile => "arrow-ipc-file",
            Format::ArrowIpcStream => "arrow-ipc-stream",
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// Options that change how files are read (not which rows a batch holds).
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// The schema CSV files are parsed with; `None` infers it from the first CSV file.
    pub csv_schema: Option<SchemaRef>,
    /// How Parquet and CSV files are read (mmap, io_uring or pread), and the stats of those
    /// reads, shared by every file of the dataset. Arrow IPC files are always memory-mapped.
    pub io: IoContext,
    /// The most bytes reading one file may take at once, checked before anything is allocated:
    /// one decoded Parquet row group (and any one page or dictionary inside it), or the whole
    /// of a materialised CSV file. Over it, opening or reading is an [`Error::OutOfMemory`].
    /// `None`: [`default_memory_budget`].
    pub memory_budget: Option<u64>,
}

impl SourceOptions {
    /// The memory budget reads are checked against: the one set, else the default.
    pub fn budget(&self) -> u64 {
        self.memory_budget.unwrap_or_else(default_memory_budget)
    }
}

/// Half of the memory the kernel reports available (`MemAvailable`), else 4 GiB: the memory
/// budget of a loader or a dataset that sets none.
pub fn default_memory_budget() -> u64 {
    let available_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        });
    available_kib.map_or(4 << 30, |kib| kib * 1024 / 2)
}

/// Opens `path` as `format`.
pub fn open_source(
    path: &Path,
    format: Format,
    options: &SourceOptions,
) -> Result<Arc<dyn Source>> {
    Ok(match format {
        Format::ArrowIpcFile => Arc::new(super::ipc::IpcFile::open(path)?),
        Format::ArrowIpcStream => Arc::new(super::ipc_stream::IpcStreamFile::open(path)?),
        Format::Parquet => Arc::new(super::parquet::ParquetFile::open_with_budget(
            path,
            &options.io,
            options.budget(),
        )?),
        Format::Csv => Arc::new(super::csv::CsvFile::open_with_budget(
            path,
            options.csv_schema.clone(),
            &options.io,
            options.budget(),
        )?),
    })
}

/// The first bytes of a file (fewer when the file is shorter).
fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(8);
    File::open(path)
        .and_then(|file| file.take(8).read_to_end(&mut head))
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}
