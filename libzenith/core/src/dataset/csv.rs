//! CSV source (also TSV, and either compressed with gzip or zstd): the file is parsed once, at
//! open, into chunks held in memory: 65,536 rows each, fewer when rows are wide (a chunk is sized
//! in bytes, see [`chunk_rows`]). A compressed file is decompressed as it is parsed.
//!
//! CSV has no index, so a chunk cannot be found without parsing every byte before it; parsing
//! the whole file up front gives the loader exact row counts to plan with and random access
//! afterwards, at the cost of holding the decoded file (Arrow columns are usually no larger than
//! the text they come from).

use std::io::{BufReader, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use super::compression::{Compression, Decompressed};
use super::source::HeldBatches;
use crate::error::{Error, Result};
use crate::runtime::io::IoContext;
use arrow_csv::reader::{Format as CsvFormat, ReaderBuilder};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

/// Rows per chunk at most: large enough that per-chunk overhead vanishes, small enough that the
/// parser's working set stays in cache and a shuffle still has many chunks to draw from. (Not
/// `pub`: cbindgen would copy a public constant into the C header.)
const CHUNK_ROWS: usize = 65_536;

/// Text bytes per chunk at most (as estimated from the first block, see [`chunk_rows`]).
const CHUNK_BYTES: usize = 16 << 20;

/// Fields (rows × columns) per chunk at most. The parser reserves offsets and data for a whole
/// chunk's fields (about 16 bytes a field) before it reads a row: 65,536 rows of a file with
/// 100,000 columns would reserve 100 GB for two rows of text.
const CHUNK_FIELDS: usize = 1 << 21;

/// Records read to infer column types when no schema is given (arrow-csv's sampling).
const INFER_RECORDS: usize = 1_000;

/// How CSV text is split: the options a user sets for every CSV file of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CsvOptions {
    /// The field delimiter; `None`: a tab for `.tsv` files (also compressed: `.tsv.gz`), a
    /// comma otherwise.
    pub delimiter: Option<u8>,
    /// Whether the first line names the columns (the default). Without a header and without a
    /// given schema, columns are named `f0`, `f1`, ... as pyarrow names them.
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            header: true,
        }
    }
}

impl CsvOptions {
    /// The delimiter used for `path`: the one set, else by the file's name.
    pub fn delimiter_for(&self, path: &Path) -> u8 {
        self.delimiter.unwrap_or_else(|| {
            let (_, inner) = Compression::from_name(path);
            let tsv = inner
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("tsv") || e.eq_ignore_ascii_case("tab"));
            if tsv { b'\t' } else { b',' }
        })
    }
}

/// A CSV file, materialised as Arrow record batches.
#[derive(Debug)]
pub struct CsvFile;

impl CsvFile {
    /// Parses `path`, whose first line names the columns.
    ///
    /// With `schema`, the header must name its fields in order and values are parsed as its
    /// types (this is how the shards of a dataset are held to the first shard's schema).
    /// Without, types are inferred from the first 1,000 records; a column with no value there is
    /// read as text, so later values are never dropped.
    ///
    /// Empty fields are nulls. A malformed row or a value that does not parse as its column's
    /// type is an [`Error::Format`] naming the file and, where arrow-csv reports it, the line.
    pub fn open(path: &Path, schema: Option<SchemaRef>) -> Result<HeldBatches> {
        Self::open_with(path, schema, &IoContext::default())
    }

    /// [`Self::open`], reading the file through the I/O backend of `io` (blocks of 4 MiB, each
    /// one batched read).
    pub fn open_with(
        path: &Path,
        schema: Option<SchemaRef>,
        io: &IoContext,
    ) -> Result<HeldBatches> {
        Self::open_with_budget(
            path,
            schema,
            io,
            crate::runtime::memory_budget::default_memory_budget(),
        )
    }

    /// [`Self::open_with`], holding the decoded file to `budget` bytes: a file whose decoded
    /// chunks exceed it is an [`Error::OutOfMemory`] (reported as soon as they do, before the
    /// rest is parsed).
    pub fn open_with_budget(
        path: &Path,
        schema: Option<SchemaRef>,
        io: &IoContext,
        budget: u64,
    ) -> Result<HeldBatches> {
        Self::open_with_options(path, schema, &CsvOptions::default(), io, budget)
    }

    /// [`Self::open_with_budget`] with the delimiter and header of `options`. A gzip- or
    /// zstd-compressed file (`.csv.gz`, `.tsv.zst`; told by its magic bytes) is decompressed as
    /// it is parsed; more than `budget` decompressed bytes is an [`Error::OutOfMemory`].
    pub fn open_with_options(
        path: &Path,
        schema: Option<SchemaRef>,
        options: &CsvOptions,
        io: &IoContext,
        budget: u64,
    ) -> Result<HeldBatches> {
        let text = Decompressed::open(path, io, budget)?;
        let delimiter = options.delimiter_for(path);
        let schema = match schema {
            Some(schema) => schema,
            None => infer_schema(path, text.sample(), delimiter, options.header)?,
        };
        if schema.fields().is_empty() {
            let what = if options.header {
                "no header row"
            } else {
                "no rows"
            };
            return Err(Error::format(path, format!("empty CSV file ({what})")));
        }
        let rows = chunk_rows(text.head(), schema.fields().len());
        let failure = text.failure_slot();
        let reader = ReaderBuilder::new(schema.clone())
            .with_header(options.header)
            .with_header_validation(options.header)
            .with_delimiter(delimiter)
            .with_batch_size(rows)
            .build(text.into_reader())
            .map_err(|e| csv_error(path, e))?;
        // The parser is not written for hostile input: a panic is a format error of this file.
        let batches = catch_unwind(AssertUnwindSafe(|| {
            let mut batches = Vec::new();
            let mut held = 0u64;
            for batch in reader {
                // A decompression failure (bomb, corrupt data) reaches the parser as an I/O
                // error: report what it was.
                let batch =
                    batch.map_err(|e| failure.take().unwrap_or_else(|| csv_error(path, e)))?;
                held = held.saturating_add(batch.get_array_memory_size() as u64);
                if held > budget {
                    return Err(Error::over_budget(
                        format!("{}: the decoded CSV file", path.display()),
                        held,
                        budget,
                    ));
                }
                batches
                    .try_reserve(1)
                    .map_err(|_| Error::alloc_failed("the list of CSV chunks", 8))?;
                batches.push(batch);
            }
            Ok(batches)
        }))
        .unwrap_or_else(|_| {
            Err(Error::format(
                path,
                "malformed CSV (the parser rejected it)",
            ))
        })?;
        Ok(HeldBatches::new(path, schema, batches))
    }
}

/// Rows per chunk for a file of `columns` columns whose first block is `head`: as many as fit
/// [`CHUNK_BYTES`] of text (the average line of the first block standing for every line, and a
/// row taking at least a byte per field) and [`CHUNK_FIELDS`] fields, at most [`CHUNK_ROWS`],
/// at least one.
pub(crate) fn chunk_rows(head: &[u8], columns: usize) -> usize {
    let lines = head.iter().filter(|&&b| b == b'\n').count().max(1);
    let row_bytes = (head.len() / lines).max(columns).max(1);
    (CHUNK_BYTES / row_bytes)
        .min(CHUNK_FIELDS / columns.max(1))
        .clamp(1, CHUNK_ROWS)
}

/// The schema of `file` from its header and first records; columns without evidence are text.
/// Without a header, columns are named `f0`, `f1`, ... (pyarrow's names).
fn infer_schema(path: &Path, file: impl Read, delimiter: u8, header: bool) -> Result<SchemaRef> {
    let inferred = catch_unwind(AssertUnwindSafe(|| {
        CsvFormat::default()
            .with_header(header)
            .with_delimiter(delimiter)
            .infer_schema(BufReader::new(file), Some(INFER_RECORDS))
    }))
    .unwrap_or_else(|_| {
        Err(ArrowError::CsvError(
            "malformed CSV (the parser rejected it)".into(),
        ))
    });
    let (schema, _) = inferred.map_err(|e| csv_error(path, e))?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let field = match field.data_type() {
                // An all-empty sample says nothing; arrow-csv would read such a column as Null
                // and discard whatever values come later.
                DataType::Null => field.as_ref().clone().with_data_type(DataType::Utf8),
                _ => field.as_ref().clone(),
            };
            if header {
                field
            } else {
                field.with_name(format!("f{i}"))
            }
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// A CSV error met while reading `path`, as a format error naming the file (and the line, in
/// the file's own 1-based numbering).
fn csv_error(path: &Path, error: ArrowError) -> Error {
    if let ArrowError::ParseError(message) = &error {
        if let Some(fixed) = value_error_with_file_line(message) {
            return Error::format(path, ArrowError::ParseError(fixed).to_string());
        }
    }
    Error::arrow_format(path, error)
}

/// arrow-csv 60 numbers lines from 0 (the header) in value errors ("Error while parsing value
/// ... at line N."), but from 1 in malformed-row errors and in the `csv` crate's positions, as
/// editors do. Renumbers a value error's line so that every message points at the line a user
/// opens; `None` when the message is not of that form.
fn value_error_with_file_line(message: &str) -> Option<String> {
    const MARKER: &str = " at line ";
    if !message.starts_with("Error while parsing value") {
        return None;
    }
    // The line number is the one followed by the row dump; the value before it (quoted in the
    // message) could itself contain the marker.
    message.match_indices(MARKER).find_map(|(at, _)| {
        let start = at + MARKER.len();
        let rest = &message[start..];
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if !rest[digits..].starts_with(". Row data: ") {
            return None;
        }
        let line: u64 = rest[..digits].parse().ok()?;
        Some(format!(
            "{}{}{}",
            &message[..start],
            line + 1,
            &rest[digits..]
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_ROWS, chunk_rows, value_error_with_file_line};

    #[test]
    fn chunks_are_sized_in_bytes_and_fields_not_only_rows() {
        // Narrow rows: the row cap.
        let narrow = b"id,label\n1,2\n3,4\n".repeat(100);
        assert_eq!(chunk_rows(&narrow, 2), CHUNK_ROWS);
        // 100,000 columns: 20 rows (2^21 fields), not 65,536 rows of 100,000 fields.
        assert_eq!(chunk_rows(b"a,b\n", 100_000), 20);
        // Long lines: 16 MiB of text.
        let long = [vec![b'x'; 1 << 20], b"\n".to_vec()].concat();
        assert_eq!(chunk_rows(&long, 1), 15);
        // At least one row, whatever the width.
        assert_eq!(chunk_rows(b"", 10_000_000), 1);
        assert_eq!(chunk_rows(b"", 0), CHUNK_ROWS);
    }

    #[test]
    fn value_errors_are_renumbered_from_one_and_other_messages_kept() {
        let arrow = "Error while parsing value 'x' as type 'Int64' for column 1 at line 1501. \
                     Row data: '[1500,x]'";
        assert_eq!(
            value_error_with_file_line(arrow).unwrap(),
            "Error while parsing value 'x' as type 'Int64' for column 1 at line 1502. \
             Row data: '[1500,x]'"
        );
        let tricky = "Error while parsing value 'a at line 7' as type 'Int64' for column 0 at \
                      line 9. Row data: '[a at line 7]'";
        assert!(
            value_error_with_file_line(tricky)
                .unwrap()
                .contains("at line 10. Row")
        );
        assert_eq!(
            value_error_with_file_line("incorrect number of fields for line 3"),
            None
        );
    }
}
