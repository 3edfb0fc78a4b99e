//! Dataset sources: what a path on disk holds, as an ordered list of chunks (IPC record batches,
//! Parquet row groups, CSV blocks) across one or more files sharing one schema, addressable by
//! global row number.
//!
//! Opening a dataset reads metadata only (row counts per chunk); chunk data is decoded on demand
//! through [`Dataset::read_chunk`]. Files that change after they were opened are reported, not
//! read (see [`Source::check_unchanged`]).

pub mod chunk;
pub mod compression;
pub mod csv;
pub mod discover;
mod fixed_lists;
pub mod ipc;
pub mod ipc_stream;
pub mod jsonl;
pub mod parquet;
pub mod registry;
pub mod source;
pub mod tar;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

pub use chunk::DecodedChunk;
pub use registry::{Format, SourceOptions, open_source};
pub use source::{PieceDecoder, Source};

use crate::error::{Error, Result};

/// Options that shape a dataset: which columns, how to parse files.
#[derive(Debug, Clone, Default)]
pub struct DatasetOptions {
    /// Columns to keep, in this order; `None` keeps all of them in file order.
    pub columns: Option<Vec<String>>,
    /// How files are read.
    pub source: SourceOptions,
}

/// Where one chunk of the dataset lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Index of the file in [`Dataset::sources`].
    pub source: usize,
    /// Index of the chunk within its file.
    pub index: usize,
    /// Global row number of the chunk's first row.
    pub start: u64,
    /// Rows in the chunk (never zero: empty chunks are left out).
    pub rows: u64,
}

/// A dataset opened for reading.
#[derive(Debug)]
pub struct Dataset {
    root: PathBuf,
    sources: Vec<Arc<dyn Source>>,
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    chunks: Vec<ChunkInfo>,
    num_rows: u64,
    fingerprint: u64,
}

impl Dataset {
    /// Opens the dataset at `path`: a file, a directory of shards or a glob (see
    /// [`discover::discover`]). Every shard must have the column names and types of the first;
    /// a column is nullable if it is in any shard (see [`Self::from_sources`]).
    pub fn open(path: &Path, options: &DatasetOptions) -> Result<Self> {
        // An object-store URL (`s3://...`) is listed remotely; a local path has `~` expanded and
        // `file://` made a path.
        if crate::runtime::io::remote::is_remote(path) {
            let discovery = discover::discover_remote(path, &options.source.io)?;
            return Self::open_discovered(path, discovery, options);
        }
        let path = &discover::local_path(path)?;
        let discovery = discover::discover_all(path)?;
        Self::open_discovered(path, discovery, options)
    }

    /// Opens the files of several paths as one dataset (see [`discover::discover_list`]): each
    /// path a file, a directory, a glob or an object-store URL, the files in the order of the
    /// paths.
    pub fn open_list(paths: &[PathBuf], options: &DatasetOptions) -> Result<Self> {
        let discovery = discover::discover_list(paths, &options.source.io)?;
        Self::open_discovered(Path::new(""), discovery, options)
    }

    fn open_discovered(
        path: &Path,
        discovery: discover::Discovery,
        options: &DatasetOptions,
    ) -> Result<Self> {
        // Skipped paths (special files, links back to an ancestor) are said, not silent.
        for note in discovery.summary() {
            options.source.io.stats.note(note);
        }
        let files = discovery.files;
        let mut source_options = options.source.clone();
        // Read /proc/meminfo once for the dataset, not once per file.
        let budget = source_options.budget();
        source_options.memory_budget = Some(budget);
        let mut sources: Vec<Arc<dyn Source>> = Vec::with_capacity(files.len());
        for file in &files {
            let source = open_source(&file.path, file.format, &source_options)?;
            // CSV shards are parsed with the schema of the first one, so inference cannot make
            // them disagree on a column that happens to hold only integers in one shard.
            if file.format == Format::Csv && source_options.csv_schema.is_none() {
                source_options.csv_schema = Some(source.schema().clone());
            }
            if file.format == Format::JsonLines && source_options.json_schema.is_none() {
                source_options.json_schema = Some(source.schema().clone());
            }
            sources.push(source);
        }
        let formats: Vec<Format> = files.iter().map(|f| f.format).collect();
        Self::from_sources(path, sources, &formats, options.columns.as_deref())
    }

    /// Builds a dataset from sources already open (`formats[i]` is the format of `sources[i]`,
    /// for the fingerprint). Every source must have the column names and types of the first
    /// (else [`Error::SchemaMismatch`], here at open). Shards may differ in a top-level column's
    /// nullability and in metadata: the dataset's column is nullable when any shard's is, and
    /// every batch, whichever shard it comes from, carries the dataset's schema.
    pub fn from_sources(
        root: &Path,
        sources: Vec<Arc<dyn Source>>,
        formats: &[Format],
        columns: Option<&[String]>,
    ) -> Result<Self> {
        let first = sources
            .first()
            .ok_or_else(|| Error::not_found(root, "no data files found"))?;
        for other in &sources[1..] {
            check_same_schema(first.as_ref(), other.as_ref())?;
        }
        let file_schema = unified_schema(&sources);
        let projection = columns
            .map(|c| resolve_columns(&file_schema, c))
            .transpose()?;
        let schema = match &projection {
            Some(indices) => Arc::new(file_schema.project(indices)?),
            None => file_schema,
        };
        let mut chunks = Vec::new();
        let mut num_rows = 0u64;
        for (source_index, source) in sources.iter().enumerate() {
            for (index, &rows) in source.chunk_rows().iter().enumerate() {
                if rows > 0 {
                    chunks.push(ChunkInfo {
                        source: source_index,
                        index,
                        start: num_rows,
                        rows,
                    });
                    // Row counts come from file metadata: a sum past u64 is a lie, not a wrap.
                    num_rows = num_rows.checked_add(rows).ok_or_else(|| {
                        Error::format(
                            source.path(),
                            format!(
                                "chunk {index} claims {rows} rows, which brings the dataset past \
                                 2^64 rows"
                            ),
                        )
                    })?;
                }
            }
        }
        let fingerprint = fingerprint(root, &sources, formats);
        Ok(Dataset {
            root: root.to_path_buf(),
            sources,
            schema,
            projection,
            chunks,
            num_rows,
            fingerprint,
        })
    }

    /// The schema of the batches (after the column projection).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Total number of rows.
    pub fn num_rows(&self) -> u64 {
        self.num_rows
    }

    /// The path the dataset was opened from.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The files of the dataset, in order.
    pub fn sources(&self) -> &[Arc<dyn Source>] {
        &self.sources
    }

    /// Every non-empty chunk, in dataset order.
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    /// The chunk holding global row `row` (which must be `< num_rows`).
    pub fn chunk_of_row(&self, row: u64) -> usize {
        self.chunks.partition_point(|c| c.start + c.rows <= row)
    }

    /// A stable 64-bit identity of the dataset's content layout: file names (relative to the
    /// opened path), formats, chunk row counts and schema. Resume tokens carry it so a token is
    /// not applied to another dataset.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// True when every file serves chunks without decoding (mmap'd IPC, materialised CSV).
    pub fn in_memory(&self) -> bool {
        self.sources.iter().all(|s| s.in_memory())
    }

    /// Estimated decoded bytes of chunk `chunk` with the dataset's projection.
    pub fn chunk_decoded_bytes(&self, chunk: usize) -> u64 {
        let info = self.chunks[chunk];
        self.sources[info.source].chunk_decoded_bytes(info.index, self.projection.as_deref())
    }

    /// Checks that no file has changed since it was opened (see [`Source::check_unchanged`]):
    /// what the loader does before each epoch.
    pub fn check_unchanged(&self) -> Result<()> {
        self.sources.iter().try_for_each(|s| s.check_unchanged())
    }

    /// Checks the file at `source` (an index into [`Self::sources`]).
    pub fn check_source(&self, source: usize) -> Result<()> {
        self.sources[source].check_unchanged()
    }

    /// Decodes chunk `chunk` (an index into [`Self::chunks`]) with the dataset's projection,
    /// after checking that its file has not changed.
    pub fn read_chunk(&self, chunk: usize) -> Result<RecordBatch> {
        self.check_source(self.chunks[chunk].source)?;
        self.fetch_chunk(chunk)
    }

    /// [`Self::read_chunk`] without its first check of the file (see [`Source::fetch_chunk`]):
    /// for callers that have just checked it.
    pub fn fetch_chunk(&self, chunk: usize) -> Result<RecordBatch> {
        self.fetch_pieces(chunk)?.to_batch()
    }

    /// [`Self::fetch_chunk`] as the loader takes it: the chunk's rows as the pieces its source
    /// decoded them in (see [`DecodedChunk`]), not concatenated.
    pub fn fetch_pieces(&self, chunk: usize) -> Result<DecodedChunk> {
        let info = self.chunks[chunk];
        let source = &self.sources[info.source];
        let decoded = source.fetch_pieces(info.index, self.projection.as_deref())?;
        if decoded.num_rows() as u64 != info.rows {
            return Err(self.row_count_mismatch(chunk, decoded.num_rows() as u64));
        }
        let schema = decoded.schema();
        if self.has_schema(&schema) {
            return Ok(decoded);
        }
        decoded.try_map(|piece| self.with_schema(chunk, piece))
    }

    /// [`Self::fetch_pieces`] one piece at a time (see [`Source::piece_decoder`]): each piece
    /// carries the dataset's schema, and pieces that do not add up to the rows the chunk's
    /// metadata promised are an [`Error::Format`] (found as soon as they exceed it, or at the
    /// end).
    pub fn piece_decoder(self: &Arc<Self>, chunk: usize) -> Result<Box<dyn PieceDecoder>> {
        let info = self.chunks[chunk];
        let pieces = self.sources[info.source]
            .clone()
            .piece_decoder(info.index, self.projection.as_deref())?;
        Ok(Box::new(DatasetPieces {
            dataset: self.clone(),
            chunk,
            pieces,
            rows: 0,
        }))
    }

    /// Whether `schema` is the dataset's. The pointer check skips the deep comparison whenever a
    /// source hands back the dataset's own schema (this runs for every chunk a batch reads).
    fn has_schema(&self, schema: &SchemaRef) -> bool {
        Arc::ptr_eq(schema, &self.schema) || *schema == self.schema
    }

    /// `piece` of chunk `chunk` with the dataset's schema: shards may differ in field
    /// nullability or metadata, and batches carry the dataset's schema.
    fn with_schema(&self, chunk: usize, piece: &RecordBatch) -> Result<RecordBatch> {
        if self.has_schema(&piece.schema()) {
            return Ok(piece.clone());
        }
        let path = self.sources[self.chunks[chunk].source].path();
        RecordBatch::try_new(self.schema.clone(), piece.columns().to_vec())
            .map_err(|e| Error::arrow_format(path, e))
    }

    /// Chunk `chunk` decoded to `rows` rows, which its metadata does not promise.
    fn row_count_mismatch(&self, chunk: usize, rows: u64) -> Error {
        let info = self.chunks[chunk];
        Error::format(
            self.sources[info.source].path(),
            format!(
                "chunk {} decoded to {rows} rows, its metadata says {}",
                info.index, info.rows
            ),
        )
    }
}

/// [`Dataset::piece_decoder`]: a source's pieces, checked and given the dataset's schema.
struct DatasetPieces {
    dataset: Arc<Dataset>,
    chunk: usize,
    pieces: Box<dyn PieceDecoder>,
    /// Rows handed out so far.
    rows: u64,
}

impl PieceDecoder for DatasetPieces {
    fn next_piece(&mut self) -> Result<Option<RecordBatch>> {
        let promised = self.dataset.chunks[self.chunk].rows;
        match self.pieces.next_piece()? {
            Some(piece) => {
                self.rows += piece.num_rows() as u64;
                if self.rows > promised {
                    return Err(self.dataset.row_count_mismatch(self.chunk, self.rows));
                }
                self.dataset.with_schema(self.chunk, &piece).map(Some)
            }
            None if self.rows != promised => {
                Err(self.dataset.row_count_mismatch(self.chunk, self.rows))
            }
            None => Ok(None),
        }
    }
}

/// Column names → indices into `schema`, in the order given. Unknown or repeated names are errors.
fn resolve_columns(schema: &Schema, columns: &[String]) -> Result<Vec<usize>> {
    if columns.is_empty() {
        return Err(Error::InvalidArgument("columns must not be empty".into()));
    }
    let mut indices = Vec::with_capacity(columns.len());
    for name in columns {
        let index = schema.index_of(name).map_err(|_| {
            let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::InvalidArgument(format!(
                "columns: no column named {name:?} (the dataset has: {})",
                available.join(", ")
            ))
        })?;
        if indices.contains(&index) {
            return Err(Error::InvalidArgument(format!(
                "columns: {name:?} is listed twice"
            )));
        }
        indices.push(index);
    }
    Ok(indices)
}

/// The first source's schema, with each column nullable when it is in any source (nullable
/// wins). The sources agree on names and types ([`check_same_schema`]).
fn unified_schema(sources: &[Arc<dyn Source>]) -> SchemaRef {
    let first = sources[0].schema();
    let nullable = |i: usize| sources.iter().any(|s| s.schema().field(i).is_nullable());
    if (0..first.fields().len()).all(|i| first.field(i).is_nullable() == nullable(i)) {
        return first.clone();
    }
    let fields: Vec<arrow_schema::Field> = first
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| f.as_ref().clone().with_nullable(nullable(i)))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, first.metadata().clone()))
}

/// Shards must agree on column names and types (nullability and metadata may differ).
fn check_same_schema(first: &dyn Source, other: &dyn Source) -> Result<()> {
    let shape = |s: &Schema| -> Vec<(String, arrow_schema::DataType)> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    if shape(first.schema()) == shape(other.schema()) {
        return Ok(());
    }
    let render = |s: &Schema| {
        let fields: Vec<String> = s
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        format!("[{}]", fields.join(", "))
    };
    Err(Error::SchemaMismatch {
        first: first.path().to_path_buf(),
        first_schema: render(first.schema()),
        other: other.path().to_path_buf(),
        other_schema: render(other.schema()),
    })
}

/// FNV-1a: a stable hash (std's hasher may change between Rust releases; tokens must not).
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Mixes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Mixes an integer in (little endian).
    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

fn fingerprint(root: &Path, sources: &[Arc<dyn Source>], formats: &[Format]) -> u64 {
    let mut hash = Fnv64::default();
    for (source, format) in sources.iter().zip(formats) {
        // Relative names, so a dataset copied or mounted elsewhere keeps its identity.
        let path = source.path();
        let name = match path.strip_prefix(root) {
            Ok(relative) if !relative.as_os_str().is_empty() => relative,
            _ => path.file_name().map(Path::new).unwrap_or(path),
        };
        hash.write(name.as_os_str().as_encoded_bytes());
        hash.write(format.name().as_bytes());
        hash.write_u64(source.chunk_rows().len() as u64);
        for &rows in source.chunk_rows() {
            hash.write_u64(rows);
        }
    }
    for field in sources[0].schema().fields() {
        hash.write(field.name().as_bytes());
        hash.write(field.data_type().to_string().as_bytes());
    }
    hash.finish()
}
