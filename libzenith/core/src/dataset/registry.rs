//! The format registry: how a file's format is recognised, and which [`Source`] opens it.
//! Format files depend on the [`Source`] contract (`source.rs`); only this file knows them all.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::SchemaRef;

use super::compression::Compression;
use super::csv::CsvOptions;
use super::source::Source;
use crate::error::{Error, Result};
use crate::runtime::io::IoContext;
use crate::runtime::io::file::open_regular;
use crate::runtime::memory_budget::default_memory_budget;

/// The file formats Zenith reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Arrow IPC file format (`ARROW1` magic at both ends), read through a memory map (or, with
    /// the `pread` and `io_uring` backends, into memory).
    ArrowIpcFile,
    /// Arrow IPC stream format (a sequence of messages, no footer).
    ArrowIpcStream,
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values (also tab-separated: `.tsv`), with or without a header row,
    /// possibly gzip- or zstd-compressed (`.csv.gz`, `.tsv.zst`).
    Csv,
    /// JSON lines (`.jsonl`, `.ndjson`), possibly gzip- or zstd-compressed.
    JsonLines,
    /// A tar shard in the WebDataset layout (`.tar`, `.tar.gz`, `.tgz`, `.tar.zst`).
    Tar,
}

impl Format {
    /// Recognises a file's format: magic bytes first (they cannot lie), then the extension for
    /// formats without magic (CSV, JSON lines, tar) and for compressed files (the extension
    /// beneath `.gz` / `.zst`). `None` when neither tells.
    pub fn detect(path: &Path) -> Result<Option<Format>> {
        let head = read_head(path)?;
        if Compression::from_magic(&head) != Compression::None {
            return Ok(Format::from_extension(path).filter(|f| f.may_be_compressed()));
        }
        Ok(Format::from_magic(&head).or_else(|| Format::from_extension(path)))
    }

    /// The format a file's first bytes (up to 8) name, for formats with magic bytes.
    pub fn from_magic(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"ARROW1") {
            return Some(Format::ArrowIpcFile);
        }
        if head.starts_with(b"PAR1") {
            return Some(Format::Parquet);
        }
        // Streams start with the continuation marker 0xFFFFFFFF and a message length.
        if head.len() >= 8 && head[..4] == [0xff; 4] {
            return Some(Format::ArrowIpcStream);
        }
        None
    }

    /// The format an extension names, for files whose content does not say.
    /// A compression extension (`.gz`, `.zst`) is looked through: `x.csv.gz` is CSV, `x.tgz`
    /// tar; compressed Arrow or Parquet files are not a format (`None`).
    pub fn from_extension(path: &Path) -> Option<Format> {
        let (codec, inner) = Compression::from_name(path);
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if ext == "tgz" {
            return Some(Format::Tar);
        }
        let ext = inner.extension()?.to_str()?.to_ascii_lowercase();
        let format = match ext.as_str() {
            "arrow" | "ipc" | "feather" => Format::ArrowIpcFile,
            "arrows" => Format::ArrowIpcStream,
            "parquet" | "pq" => Format::Parquet,
            "csv" | "tsv" | "tab" => Format::Csv,
            "jsonl" | "ndjson" => Format::JsonLines,
            "tar" => Format::Tar,
            _ => return None,
        };
        (codec == Compression::None || format.may_be_compressed()).then_some(format)
    }

    /// True for the formats read as a stream, which may be gzip- or zstd-compressed whole.
    pub fn may_be_compressed(self) -> bool {
        matches!(self, Format::Csv | Format::JsonLines | Format::Tar)
    }

    /// A short lowercase name, for messages and fingerprints.
    pub fn name(self) -> &'static str {
        match self {
            Format::ArrowIpcFile => "arrow-ipc-file",
            Format::ArrowIpcStream => "arrow-ipc-stream",
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Tar => "tar",
        }
    }
}

/// Options that change how files are read (not which rows a batch holds).
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// The schema CSV files are parsed with; `None` infers it from the first CSV file.
    pub csv_schema: Option<SchemaRef>,
    /// How CSV text is split (delimiter, header row).
    pub csv: CsvOptions,
    /// The schema JSON lines files are parsed with; `None` infers it from the first one.
    pub json_schema: Option<SchemaRef>,
    /// How files are read (mmap, io_uring or pread), and the stats of those reads, shared by
    /// every file of the dataset. With mmap, Arrow IPC files and streams are mapped and batches
    /// are views of the mapping; otherwise they are read into memory of their own.
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

/// Opens `path` as `format`.
pub fn open_source(
    path: &Path,
    format: Format,
    options: &SourceOptions,
) -> Result<Arc<dyn Source>> {
    Ok(match format {
        Format::ArrowIpcFile => Arc::new(super::ipc::IpcFile::open_with(path, &options.io)?),
        Format::ArrowIpcStream => Arc::new(super::ipc_stream::IpcStreamFile::open_with(
            path,
            &options.io,
        )?),
        Format::Parquet => Arc::new(super::parquet::ParquetFile::open_with_budget(
            path,
            &options.io,
            options.budget(),
        )?),
        Format::Csv => Arc::new(super::csv::CsvFile::open_with_options(
            path,
            options.csv_schema.clone(),
            &options.csv,
            &options.io,
            options.budget(),
        )?),
        Format::JsonLines => Arc::new(super::jsonl::JsonLinesFile::open_with_budget(
            path,
            options.json_schema.clone(),
            &options.io,
            options.budget(),
        )?),
        Format::Tar => Arc::new(super::tar::TarFile::open_with_budget(
            path,
            &options.io,
            options.budget(),
        )?),
    })
}

/// The first bytes of a file (fewer when the file is shorter). Only a regular file is read: a
/// FIFO or a device is an error, without waiting for a writer.
fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(8);
    open_regular(path, 0)
        .and_then(|file| file.take(8).read_to_end(&mut head))
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}
