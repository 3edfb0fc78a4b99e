//! `zenith inspect PATH`: what a dataset holds and what the loader would do with it.
//!
//! Everything comes from metadata: the dataset as the loader opens it (files, schema, chunk row
//! counts, decoded-size estimates), Parquet footers (codecs, sizes, null counts from the column
//! statistics) and Arrow IPC message headers (body compression, null counts of each record
//! batch). No row group is decoded; CSV files are parsed, as the loader parses them at open.
//!
//! Remote datasets (`s3://bucket/prefix/`, `gs://`, `az://`, `http(s)://`) are inspected as the
//! loader opens them: listed, footers fetched by ranged GETs through the same readers, with the
//! storage options given by `--storage-option KEY=VALUE`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Field};
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaDataReader;
use serde_json::{Value, json};
use zenith_core::batch::dlpack::{
    DLDataType, TYPE_CODE_BOOL, TYPE_CODE_FLOAT, TYPE_CODE_INT, TYPE_CODE_UINT, export_column,
};
use zenith_core::dataset::{Dataset, DatasetOptions, Format, Source, SourceOptions};
use zenith_core::loader::{ShuffleMode, ShufflePlan, shuffle_plan};
use zenith_core::runtime::io::remote::{StorageOptions, is_remote};
use zenith_core::runtime::io::{IoContext, RangeRead};

use crate::exit::Failure;
use crate::output::{self, Table};

pub const EXAMPLES: &str = "\
Examples:
  zenith inspect data/train.parquet
  zenith inspect shards/ --columns features,label
  zenith inspect 'shards/*.arrow' --memory-budget 2G --json
  zenith inspect s3://bucket/train/ -o endpoint=http://127.0.0.1:9000 -o region=us-east-1";

/// Arguments of `zenith inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file, a directory of shards, or a glob (quote it: 'data/*.parquet'); or an object-store
    /// URL (s3://bucket/prefix/, gs://, az://, http(s)://).
    pub path: PathBuf,
    /// Only these columns, in this order (comma-separated), as the loader's `columns` option.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub columns: Option<Vec<String>>,
    /// Rows per batch, for the batches-per-epoch figure.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// Memory for shuffling (512M, 4G, ...); default: the loader's, half of MemAvailable.
    #[arg(long, value_parser = output::parse_bytes, value_name = "BYTES")]
    pub memory_budget: Option<u64>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// A storage option for remote paths (endpoint, region, access_key_id, ...; repeatable),
    /// as the loader's `storage_options`; credentials default to the environment's.
    #[arg(long = "storage-option", short = 'o', value_name = "KEY=VALUE")]
    pub storage_options: Vec<String>,
}

/// The storage options given as `KEY=VALUE` words, each checked as the loader checks it.
fn storage_options(words: &[String]) -> Result<StorageOptions, Failure> {
    let mut options = StorageOptions::new();
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(|| {
            zenith_core::Error::InvalidArgument(format!(
                "--storage-option {word:?}: expected KEY=VALUE"
            ))
        })?;
        options.set(key, value)?;
    }
    Ok(options)
}

/// Runs `zenith inspect`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let report = inspect(args)?;
    if args.json {
        output::print_json(&report)
    } else {
        output::print(&render(&report, output::color_stdout()))
    }
}

/// What one root column looks like across the files.
#[derive(Debug, Default)]
struct ColumnFacts {
    codecs: BTreeSet<String>,
    compressed_bytes: Option<u64>,
    uncompressed_bytes: Option<u64>,
    /// `None` once any file cannot tell.
    nulls: Option<u64>,
}

impl ColumnFacts {
    fn new() -> Self {
        ColumnFacts {
            nulls: Some(0),
            ..ColumnFacts::default()
        }
    }

    fn add_nulls(&mut self, nulls: Option<u64>) {
        self.nulls = self.nulls.zip(nulls).map(|(total, n)| total + n);
    }

    fn add_sizes(&mut self, compressed: u64, uncompressed: u64) {
        *self.compressed_bytes.get_or_insert(0) += compressed;
        *self.uncompressed_bytes.get_or_insert(0) += uncompressed;
    }
}

/// Per-file facts a format's metadata gives: codecs, sizes and null counts per root column.
type FileColumns = BTreeMap<String, ColumnFacts>;

fn inspect(args: &Args) -> Result<Value, Failure> {
    let io = IoContext::default().with_storage(storage_options(&args.storage_options)?);
    let options = DatasetOptions {
        columns: args.columns.clone(),
        source: SourceOptions {
            io: io.clone(),
            ..SourceOptions::default()
        },
    };
    let dataset = Dataset::open(&args.path, &options)?;
    let schema = dataset.schema().clone();

    let mut columns: BTreeMap<String, ColumnFacts> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), ColumnFacts::new()))
        .collect();
    let mut files = Vec::new();
    let mut formats = BTreeSet::new();
    let mut total_bytes = 0u64;
    let mut total_chunks = 0u64;
    for source in dataset.sources() {
        let path = source.path();
        // The file's bytes through the loader's readers: a local file, or a remote object whose
        // footer was fetched when it opened.
        let reader = io.open(path).map_err(|e| zenith_core::Error::io(path, e))?;
        let format = file_format(path, reader.as_ref())?;
        formats.insert(format.name());
        let bytes = reader.len();
        total_bytes += bytes;
        let chunk_rows = source.chunk_rows();
        total_chunks += chunk_rows.len() as u64;
        let facts = file_columns(source, format, reader.as_ref());
        let mut file_codecs = BTreeSet::new();
        for (name, column) in columns.iter_mut() {
            match facts.as_ref().and_then(|f| f.get(name)) {
                Some(fact) => {
                    column.codecs.extend(fact.codecs.iter().cloned());
                    file_codecs.extend(fact.codecs.iter().cloned());
                    if let (Some(c), Some(u)) = (fact.compressed_bytes, fact.uncompressed_bytes) {
                        column.add_sizes(c, u);
                    }
                    column.add_nulls(fact.nulls);
                }
                None => column.add_nulls(None),
            }
        }
        files.push(json!({
            "path": path.to_string_lossy(),
            "relative_path": relative(&args.path, path),
            "format": format.name(),
            "bytes": bytes,
            "rows": chunk_rows.iter().sum::<u64>(),
            "chunks": chunk_rows.len(),
            "compression": file_codecs.into_iter().collect::<Vec<_>>(),
        }));
    }

    let format = match formats.len() {
        1 => formats.iter().next().copied().unwrap_or("mixed"),
        _ => "mixed",
    };
    let chunk_kind = match format {
        "parquet" => "row_group",
        "arrow-ipc-file" | "arrow-ipc-stream" => "record_batch",
        "csv" => "block",
        _ => "chunk",
    };
    let sizes: Vec<u64> = dataset.chunks().iter().map(|c| c.rows).collect();
    let rows = dataset.num_rows();
    let schema_json: Vec<Value> = schema
        .fields()
        .iter()
        .map(|field| column_json(field, &columns[field.name()]))
        .collect();

    let global = shuffle_plan(&dataset, ShuffleMode::Global, args.memory_budget);
    let block = shuffle_plan(&dataset, ShuffleMode::Block, args.memory_budget);
    let chunks = dataset.chunks().len() as u64;
    Ok(json!({
        "path": args.path.to_string_lossy(),
        "format": format,
        "files": {"count": files.len(), "bytes": total_bytes, "list": files},
        "rows": rows,
        "chunks": {
            "kind": chunk_kind,
            "count": total_chunks,
            "min_rows": sizes.iter().min().copied().unwrap_or(0),
            "max_rows": sizes.iter().max().copied().unwrap_or(0),
        },
        "batch_size": args.batch_size,
        "batches_per_epoch": rows.div_ceil(args.batch_size),
        "schema": schema_json,
        "shuffle": {
            "memory_budget_bytes": global.memory_budget,
            "decoded_bytes": global.decoded_bytes,
            "in_memory": global.in_memory,
            "global": plan_json(&global, chunks),
            "block": plan_json(&block, chunks),
        },
    }))
}

/// `path` relative to the directory the user named (itself for a file or a glob's match).
fn relative(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => path
            .file_name()
            .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
            .into_owned(),
    }
}

/// "1 row group", "3 row groups" (from the JSON kind `row_group`).
fn chunks_text(count: u64, kind: &str) -> String {
    let singular = kind.replace('_', " ");
    let noun = match (count, singular.as_str()) {
        (1, _) => singular,
        (_, "record batch") => "record batches".into(),
        _ => format!("{singular}s"),
    };
    format!("{} {noun}", output::count(count))
}

/// A shuffle plan as JSON: the mode that runs, its windows and the memory it holds.
fn plan_json(plan: &ShufflePlan, chunks: u64) -> Value {
    let average = plan.decoded_bytes.checked_div(chunks).unwrap_or(0);
    let (windows, window_bytes, needed) = match plan.mode {
        ShuffleMode::Block => {
            let window = plan.window_chunks as u64;
            let window_bytes = window * average;
            // The current window drains while the next one decodes.
            (
                Some(chunks.div_ceil(window.max(1))),
                Some(window_bytes),
                (2 * window_bytes).min(plan.decoded_bytes),
            )
        }
        _ => (None, None, plan.decoded_bytes),
    };
    json!({
        "requested": mode_name(plan.requested),
        "runs_as": mode_name(plan.mode),
        "window_chunks": (plan.mode == ShuffleMode::Block).then_some(plan.window_chunks),
        "windows": windows,
        "window_bytes": window_bytes,
        // Memory-mapped and materialised data is held already: shuffling decodes nothing more.
        "memory_needed_bytes": if plan.in_memory { 0 } else { needed },
    })
}

/// The name `--shuffle` and the JSON use for a mode.
pub fn mode_name(mode: ShuffleMode) -> &'static str {
    match mode {
        ShuffleMode::None => "none",
        ShuffleMode::Global => "global",
        ShuffleMode::Block => "block",
    }
}

fn column_json(field: &Field, facts: &ColumnFacts) -> Value {
    let arrow_format = FFI_ArrowSchema::try_from(field).map(|s| s.format().to_string());
    let (dlpack_ok, dtype, shape, mut reason) = match dlpack_form(field) {
        Ok((dtype, shape)) => (true, Some(dtype), Some(shape), None),
        Err(reason) => (false, None, None, Some(reason)),
    };
    let exportable = dlpack_ok && facts.nulls.is_none_or(|n| n == 0);
    if dlpack_ok {
        reason = match facts.nulls {
            Some(0) => None,
            Some(n) => Some(format!(
                "column `{}` holds {n} nulls: a tensor has no validity mask, so a batch with a \
                 null fails to export",
                field.name()
            )),
            None => Some(
                "null count unknown (no statistics): a batch with a null fails to export".into(),
            ),
        };
    }
    json!({
        "name": field.name(),
        "type": field.data_type().to_string(),
        "nullable": field.is_nullable(),
        "nulls": facts.nulls,
        "compression": facts.codecs.iter().collect::<Vec<_>>(),
        "compressed_bytes": facts.compressed_bytes,
        "uncompressed_bytes": facts.uncompressed_bytes,
        "arrow": {
            "exportable": arrow_format.is_ok(),
            "format": arrow_format.as_ref().ok(),
            "reason": arrow_format.as_ref().err().map(|e| e.to_string()),
        },
        "dlpack": {
            "exportable": exportable,
            "dtype": dtype,
            "shape": shape,
            "reason": reason,
        },
    })
}

/// The DLPack tensor a column becomes, by exporting an empty column of its type through the
/// library (the rules live there): its dtype and shape, `null` standing for the row count.
fn dlpack_form(field: &Field) -> Result<(String, Vec<Option<i64>>), String> {
    let empty = arrow_array::new_empty_array(field.data_type());
    let tensor = export_column(field.name(), empty.as_ref()).map_err(|e| e.to_string())?;
    let mut shape: Vec<Option<i64>> = tensor.shape().iter().map(|&d| Some(d)).collect();
    if let Some(rows) = shape.first_mut() {
        *rows = None;
    }
    Ok((dtype_name(tensor.dtype()), shape))
}

fn dtype_name(dtype: DLDataType) -> String {
    let kind = match dtype.code {
        TYPE_CODE_INT => "int",
        TYPE_CODE_UINT => "uint",
        TYPE_CODE_FLOAT => "float",
        TYPE_CODE_BOOL => return "bool".into(),
        _ => "code",
    };
    format!("{kind}{}", dtype.bits)
}

/// A file's format: by its content for a local file; for a remote object by its extension, as
/// a listing knows it, else by its first bytes.
fn file_format(path: &Path, reader: &dyn RangeRead) -> Result<Format, Failure> {
    let format = if is_remote(path) {
        match Format::from_extension(path) {
            Some(format) => Some(format),
            None => Format::from_magic(
                &read_at(reader, 0, reader.len().min(8) as usize).ok_or_else(|| {
                    zenith_core::Error::format(path, "cannot read its first bytes")
                })?,
            ),
        }
    } else {
        Format::detect(path)?
    };
    let format = format.ok_or_else(|| zenith_core::Error::format(path, "format not recognised"))?;
    Ok(format)
}

/// What a file's metadata says about its columns; `None` when it cannot be read (the dataset
/// opened, so the loader can read it: this only leaves fields unknown).
fn file_columns(
    source: &Arc<dyn Source>,
    format: Format,
    reader: &dyn RangeRead,
) -> Option<FileColumns> {
    match format {
        Format::Parquet => parquet_columns(reader),
        Format::ArrowIpcFile => ipc_columns(source, ipc_file_batches(reader)?),
        // A stream's headers lie between its bodies: one small read each, a request each on a
        // remote object, so only local streams are walked.
        Format::ArrowIpcStream if is_remote(source.path()) => None,
        Format::ArrowIpcStream => ipc_columns(source, ipc_stream_batches(reader)?),
        Format::Csv | Format::JsonLines | Format::Tar => held_columns(source, reader),
    }
}

fn codec_name(compression: Compression) -> String {
    match compression {
        Compression::UNCOMPRESSED => "none".into(),
        Compression::SNAPPY => "snappy".into(),
        Compression::GZIP(_) => "gzip".into(),
        Compression::LZO => "lzo".into(),
        Compression::BROTLI(_) => "brotli".into(),
        Compression::LZ4 => "lz4".into(),
        Compression::ZSTD(_) => "zstd".into(),
        Compression::LZ4_RAW => "lz4_raw".into(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// Codecs, sizes and null counts (from statistics) of each root column over every row group,
/// from the footer (the file's last bytes: its length, then `PAR1`).
fn parquet_columns(reader: &dyn RangeRead) -> Option<FileColumns> {
    let len = reader.len();
    let tail = read_at(reader, len.checked_sub(8)?, 8)?;
    if tail[4..] != *b"PAR1" {
        return None;
    }
    let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().ok()?));
    let footer_start = len.checked_sub(8)?.checked_sub(footer_len)?;
    let footer = read_at(reader, footer_start, usize::try_from(footer_len).ok()?)?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).ok()?;
    let schema = metadata.file_metadata().schema_descr();
    let roots = schema.root_schema().get_fields();
    let mut columns = FileColumns::new();
    for root in roots {
        columns.insert(root.name().to_string(), ColumnFacts::new());
    }
    for row_group in metadata.row_groups() {
        for (leaf, chunk) in row_group.columns().iter().enumerate() {
            let root = &roots[schema.get_column_root_idx(leaf)];
            let Some(facts) = columns.get_mut(root.name()) else {
                continue;
            };
            facts.codecs.insert(codec_name(chunk.compression()));
            facts.add_sizes(
                chunk.compressed_size().max(0) as u64,
                chunk.uncompressed_size().max(0) as u64,
            );
            facts.add_nulls(chunk.statistics().and_then(|s| s.null_count_opt()));
        }
    }
    Some(columns)
}

/// What a record batch message header says: its body codec and the null count of each field
/// node (depth first, as the schema's fields flatten).
struct BatchHeader {
    codec: String,
    nulls: Vec<u64>,
}

fn batch_header(message: &arrow_ipc::Message<'_>) -> Option<BatchHeader> {
    let batch = message.header_as_record_batch()?;
    let codec = match batch.compression() {
        None => "none".to_string(),
        Some(c) => match c.codec() {
            arrow_ipc::CompressionType::LZ4_FRAME => "lz4_frame".into(),
            arrow_ipc::CompressionType::ZSTD => "zstd".into(),
            other => format!("{other:?}").to_ascii_lowercase(),
        },
    };
    let nulls = batch
        .nodes()
        .map(|nodes| nodes.iter().map(|n| n.null_count().max(0) as u64).collect())
        .unwrap_or_default();
    Some(BatchHeader { codec, nulls })
}

/// Reads `len` bytes at `offset`; `None` past the end.
fn read_at(reader: &dyn RangeRead, offset: u64, len: usize) -> Option<Vec<u8>> {
    let end = offset.checked_add(len as u64)?;
    reader
        .read_range(offset..end)
        .ok()
        .map(|bytes| bytes.to_vec())
}

/// The flatbuffer of an encapsulated message (`0xFFFFFFFF`, length, flatbuffer; or the legacy
/// length, flatbuffer).
fn message_bytes(prefixed: &[u8]) -> Option<&[u8]> {
    let word = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = prefixed.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(i32::from_le_bytes(bytes)).ok()
    };
    let (start, len) = if prefixed.get(..4)? == [0xff; 4] {
        (8_usize, word(4)?)
    } else {
        (4, word(0)?)
    };
    prefixed.get(start..start.checked_add(len)?)
}

/// The record batch headers of an Arrow IPC file, through its footer's blocks.
fn ipc_file_batches(file: &dyn RangeRead) -> Option<Vec<BatchHeader>> {
    let len = file.len();
    let trailer = read_at(file, len.checked_sub(10)?, 10)?;
    let footer_len = u64::try_from(i32::from_le_bytes(trailer[..4].try_into().ok()?)).ok()?;
    let footer_start = len.checked_sub(10)?.checked_sub(footer_len)?;
    let footer_bytes = read_at(file, footer_start, usize::try_from(footer_len).ok()?)?;
    let footer = arrow_ipc::root_as_footer(&footer_bytes).ok()?;
    let mut headers = Vec::new();
    for block in footer.recordBatches()?.iter() {
        let offset = u64::try_from(block.offset()).ok()?;
        let meta_len = usize::try_from(block.metaDataLength()).ok()?;
        let prefixed = read_at(file, offset, meta_len)?;
        let message = arrow_ipc::root_as_message(message_bytes(&prefixed)?).ok()?;
        headers.push(batch_header(&message)?);
    }
    Some(headers)
}

/// The record batch headers of an Arrow IPC stream, message by message, skipping the bodies.
fn ipc_stream_batches(file: &dyn RangeRead) -> Option<Vec<BatchHeader>> {
    let len = file.len();
    let mut offset = 0u64;
    let mut headers = Vec::new();
    while offset + 4 <= len {
        let first = read_at(file, offset, 4)?;
        let (prefix, meta_len) = if first == [0xff; 4] {
            let word = read_at(file, offset + 4, 4)?;
            (8, i32::from_le_bytes(word[..].try_into().ok()?))
        } else {
            (4, i32::from_le_bytes(first[..].try_into().ok()?))
        };
        if meta_len == 0 {
            break; // end of stream
        }
        let meta_len = usize::try_from(meta_len).ok()?;
        let meta = read_at(file, offset + prefix, meta_len)?;
        let message = arrow_ipc::root_as_message(&meta).ok()?;
        if let Some(header) = batch_header(&message) {
            headers.push(header);
        }
        let body = u64::try_from(message.bodyLength()).ok()?;
        offset += prefix + meta_len as u64 + body;
    }
    Some(headers)
}

/// Field nodes a column of `data_type` takes in a record batch message.
fn field_nodes(data_type: &DataType) -> usize {
    match data_type {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => 1 + field_nodes(f.data_type()),
        DataType::Struct(fields) => {
            1 + fields
                .iter()
                .map(|f| field_nodes(f.data_type()))
                .sum::<usize>()
        }
        DataType::Union(fields, _) => {
            1 + fields
                .iter()
                .map(|(_, f)| field_nodes(f.data_type()))
                .sum::<usize>()
        }
        DataType::RunEndEncoded(ends, values) => {
            1 + field_nodes(ends.data_type()) + field_nodes(values.data_type())
        }
        _ => 1,
    }
}

/// Codecs and null counts (at any nesting level) of each root column, from batch headers.
fn ipc_columns(source: &Arc<dyn Source>, batches: Vec<BatchHeader>) -> Option<FileColumns> {
    let schema = source.schema();
    let mut columns = FileColumns::new();
    for field in schema.fields() {
        columns.insert(field.name().clone(), ColumnFacts::new());
    }
    for batch in &batches {
        let mut node = 0;
        for field in schema.fields() {
            let count = field_nodes(field.data_type());
            let nulls: u64 = batch.nulls.get(node..node + count)?.iter().sum();
            node += count;
            let facts = columns.get_mut(field.name())?;
            facts.codecs.insert(batch.codec.clone());
            facts.add_nulls(Some(nulls));
        }
    }
    Some(columns)
}

/// CSV files are parsed at open (the loader holds their blocks): null counts from the arrays.
fn held_columns(source: &Arc<dyn Source>, reader: &dyn RangeRead) -> Option<FileColumns> {
    let schema = source.schema();
    // Text and tar files compressed whole name their codec (gzip, zstd) for every column.
    let head = read_at(reader, 0, reader.len().min(4) as usize)?;
    let codec = zenith_core::dataset::compression::Compression::from_magic(&head).name();
    let mut columns = FileColumns::new();
    for field in schema.fields() {
        let mut facts = ColumnFacts::new();
        facts.codecs.insert(codec.into());
        columns.insert(field.name().clone(), facts);
    }
    for chunk in 0..source.chunk_rows().len() {
        let batch = source.read_chunk(chunk, None).ok()?;
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            columns
                .get_mut(field.name())?
                .add_nulls(Some(array.null_count() as u64));
        }
    }
    Some(columns)
}

/// The human report.
fn render(report: &Value, color: bool) -> String {
    let mut out = String::new();
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let files = &report["files"];
    let chunks = &report["chunks"];
    let head = |out: &mut String, key: &str, value: String| {
        out.push_str(&format!(
            "{}  {value}\n",
            output::bold(&format!("{key:<9}"), color)
        ));
    };
    head(
        &mut out,
        "path",
        report["path"].as_str().unwrap_or("").into(),
    );
    head(
        &mut out,
        "format",
        report["format"].as_str().unwrap_or("").into(),
    );
    head(
        &mut out,
        "files",
        format!(
            "{} ({})",
            output::count(u(&files["count"])),
            output::bytes(u(&files["bytes"]))
        ),
    );
    head(&mut out, "rows", output::count(u(&report["rows"])));
    let (min, max) = (u(&chunks["min_rows"]), u(&chunks["max_rows"]));
    let kind = chunks["kind"].as_str().unwrap_or("chunk");
    let spread = if u(&chunks["count"]) == 1 {
        format!("{} rows", output::count(min))
    } else if min == max {
        format!("{} rows each", output::count(min))
    } else {
        format!("{}..{} rows", output::count(min), output::count(max))
    };
    head(
        &mut out,
        "chunks",
        format!("{} ({spread})", chunks_text(u(&chunks["count"]), kind)),
    );
    head(
        &mut out,
        "batches",
        format!(
            "{} per epoch at batch size {}",
            output::count(u(&report["batches_per_epoch"])),
            output::count(u(&report["batch_size"]))
        ),
    );

    let list = files["list"].as_array().cloned().unwrap_or_default();
    if list.len() > 1 {
        const SHOWN: usize = 20;
        out.push('\n');
        let mut table = Table::new(
            &["file", "format", "size", "rows", "chunks", "compression"],
            &[false, false, true, true, true, false],
        );
        for file in list.iter().take(SHOWN) {
            table.row(vec![
                file["relative_path"].as_str().unwrap_or("").into(),
                file["format"].as_str().unwrap_or("").into(),
                output::bytes(u(&file["bytes"])),
                output::count(u(&file["rows"])),
                output::count(u(&file["chunks"])),
                join(&file["compression"]),
            ]);
        }
        out.push_str(&table.render(0, color));
        if list.len() > SHOWN {
            out.push_str(&format!("... and {} more files\n", list.len() - SHOWN));
        }
    }

    out.push('\n');
    let mut table = Table::new(
        &["column", "type", "nulls", "compression", "arrow", "dlpack"],
        &[false, false, true, false, false, false],
    );
    for column in report["schema"].as_array().into_iter().flatten() {
        let nulls = match column["nulls"].as_u64() {
            Some(n) => output::count(n),
            None => "?".into(),
        };
        let mut compression = join(&column["compression"]);
        if let (Some(c), Some(u)) = (
            column["compressed_bytes"].as_u64(),
            column["uncompressed_bytes"].as_u64(),
        ) {
            if c > 0 && compression != "none" {
                compression.push_str(&format!(" {:.1}x", u as f64 / c as f64));
            }
        }
        let dlpack = &column["dlpack"];
        let tensor = match dlpack["dtype"].as_str() {
            Some(dtype) => {
                let dims: Vec<String> = dlpack["shape"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| d.as_i64().map_or("rows".into(), |d| d.to_string()))
                    .collect();
                let form = format!("{dtype} [{}]", dims.join(", "));
                match column["nulls"].as_u64() {
                    Some(0) => form,
                    Some(_) => format!("no: nulls ({form} without them)"),
                    None => format!("{form} if no nulls"),
                }
            }
            None => "no: no tensor form".into(),
        };
        table.row(vec![
            column["name"].as_str().unwrap_or("").into(),
            column["type"].as_str().unwrap_or("").into(),
            nulls,
            compression,
            column["arrow"]["format"].as_str().unwrap_or("-").into(),
            tensor,
        ]);
    }
    out.push_str(&table.render(0, color));

    let shuffle = &report["shuffle"];
    out.push('\n');
    out.push_str(&format!(
        "{} (memory budget {}, decoded size {}{})\n",
        output::bold("shuffle", color),
        output::bytes(u(&shuffle["memory_budget_bytes"])),
        output::bytes(u(&shuffle["decoded_bytes"])),
        if shuffle["in_memory"].as_bool() == Some(true) {
            "; held already: memory-mapped or parsed at open"
        } else {
            ""
        }
    ));
    let in_memory = shuffle["in_memory"].as_bool() == Some(true);
    for mode in ["global", "block"] {
        let plan = &shuffle[mode];
        let bytes = output::bytes(u(&plan["memory_needed_bytes"]));
        let (holds, holds_up_to) = if in_memory {
            let none = "needs no memory beyond the data held".to_string();
            (none.clone(), none)
        } else {
            (format!("holds {bytes}"), format!("holds up to {bytes}"))
        };
        let line = match plan["runs_as"].as_str() {
            Some("global") => format!(
                "one exact permutation of {} rows; {holds}",
                output::count(u(&report["rows"]))
            ),
            _ => {
                let windows = u(&plan["windows"]);
                let fallback = if mode == "global" {
                    "runs as block (the decoded data exceeds the budget): "
                } else {
                    ""
                };
                format!(
                    "{fallback}windows of {} (~{} each, {} window{}); {holds_up_to}",
                    chunks_text(u(&plan["window_chunks"]), kind),
                    output::bytes(u(&plan["window_bytes"])),
                    output::count(windows),
                    if windows == 1 { "" } else { "s" }
                )
            }
        };
        out.push_str(&format!("  {mode:<7} {line}\n"));
    }
    out
}

fn join(list: &Value) -> String {
    let items: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}
