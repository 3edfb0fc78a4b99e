//! JSON lines source (`.jsonl`, `.ndjson`, also compressed: `.jsonl.gz`, `.jsonl.zst`): one JSON
//! object per line, parsed once at open by arrow-json into chunks held in memory, sized like CSV
//! chunks (see [`super::csv::chunk_rows`]).

use std::io::{BufReader, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use arrow_json::ReaderBuilder;
use arrow_json::reader::infer_json_schema;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use super::compression::Decompressed;
use super::csv::chunk_rows;
use super::source::HeldBatches;
use crate::error::{Error, Result};
use crate::runtime::io::IoContext;

/// Lines read to infer the schema when none is given.
const INFER_RECORDS: usize = 1_000;

/// A JSON lines file, materialised as Arrow record batches.
#[derive(Debug)]
pub struct JsonLinesFile;

impl JsonLinesFile {
    /// Parses `path` through `io`, holding the decoded file to `budget` bytes (and, for a
    /// compressed file, the decompressed text too: past it, an [`Error::OutOfMemory`]).
    ///
    /// With `schema`, values are parsed as its types and keys it does not name are ignored.
    /// Without, the schema is inferred from the first 1,000 lines (arrow-json's inference:
    /// nested objects are structs, arrays lists); a key with only nulls there is read as text.
    /// Keys missing from a line are nulls; numbers and booleans in a text column are read as
    /// their text. A line that is not JSON, or a value that does not fit its column's type, is an
    /// [`Error::Format`] naming the file.
    pub fn open_with_budget(
        path: &Path,
        schema: Option<SchemaRef>,
        io: &IoContext,
        budget: u64,
    ) -> Result<HeldBatches> {
        let text = Decompressed::open(path, io, budget)?;
        let schema = match schema {
            Some(schema) => schema,
            None => infer_schema(path, &text)?,
        };
        if schema.fields().is_empty() {
            return Err(Error::format(
                path,
                "empty JSON lines file (no object with a key in its first lines)",
            ));
        }
        let rows = chunk_rows(text.head(), schema.fields().len());
        let failure = text.failure_slot();
        let reader = ReaderBuilder::new(schema.clone())
            .with_batch_size(rows)
            // Columns inferred as text from nulls alone may meet numbers later.
            .with_coerce_primitive(true)
            .build(BufReader::new(text.into_reader()))
            .map_err(|e| Error::arrow_format(path, e))?;
        let batches = catch_unwind(AssertUnwindSafe(|| {
            let mut batches = Vec::new();
            let mut held = 0u64;
            for batch in reader {
                let batch = batch.map_err(|e| {
                    failure.take().unwrap_or_else(|| {
                        Error::format(path, format!("malformed JSON lines: {e}"))
                    })
                })?;
                held = held.saturating_add(batch.get_array_memory_size() as u64);
                if held > budget {
                    return Err(Error::over_budget(
                        format!("{}: the decoded JSON lines file", path.display()),
                        held,
                        budget,
                    ));
                }
                batches
                    .try_reserve(1)
                    .map_err(|_| Error::alloc_failed("the list of JSON lines chunks", 8))?;
                batches.push(batch);
            }
            Ok(batches)
        }))
        .unwrap_or_else(|_| {
            Err(Error::format(
                path,
                "malformed JSON lines (the parser rejected it)",
            ))
        })?;
        Ok(HeldBatches::new(path, schema, batches))
    }
}

/// The schema of the first lines; top-level keys without evidence (only nulls) are text. Columns
/// come in the order their keys first appear (arrow-json sorts them by name; pyarrow and users
/// expect the file's order).
fn infer_schema(path: &Path, text: &Decompressed) -> Result<SchemaRef> {
    let inferred = catch_unwind(AssertUnwindSafe(|| {
        infer_json_schema(BufReader::new(text.sample()), Some(INFER_RECORDS))
    }))
    .unwrap_or_else(|_| {
        Err(ArrowError::JsonError(
            "malformed JSON (the parser rejected it)".into(),
        ))
    });
    let (schema, _) =
        inferred.map_err(|e| Error::format(path, format!("malformed JSON lines: {e}")))?;
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Null => field.as_ref().clone().with_data_type(DataType::Utf8),
            _ => field.as_ref().clone(),
        })
        .collect();
    let order = key_order(text.sample());
    let rank = |name: &str| order.iter().position(|k| k == name).unwrap_or(usize::MAX);
    fields.sort_by_key(|f| rank(f.name()));
    Ok(Arc::new(Schema::new(fields)))
}

/// The top-level keys of the first lines' objects, in the order they first appear (values are
/// skipped unparsed; a line that is not an object adds nothing, inference reports it).
fn key_order(sample: impl Read) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let lines = serde_json::Deserializer::from_reader(BufReader::new(sample)).into_iter::<Keys>();
    for keys in lines.take(INFER_RECORDS) {
        let Ok(Keys(keys)) = keys else { break };
        for key in keys {
            if !order.contains(&key) {
                order.push(key);
            }
        }
    }
    order
}

/// An object's keys in order (its values ignored).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Keys, M::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    // Bounded: a sample is at most 4 MiB of text.
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}
