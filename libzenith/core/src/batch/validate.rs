//! Validation of decoded Arrow IPC record batches: the checks arrow-rs makes while decoding, with
//! the costly one — walking every offset of string, binary and list columns — done by a tight
//! loop instead of arrow's per-offset iterator chain.
//!
//! Why: a shuffled epoch's first batch takes rows from every record batch of the file, so the
//! first gather decodes them all; with arrow's validation that was ~90 % of the time to the first
//! batch (callgrind: ~43 M of ~48 M instructions for a 1 M-row file with a string column), almost
//! all of it in the offsets walk of `ArrayData::validate_values`. [`ValidatingIpcDecoder`]
//! decodes with arrow's validation off and then runs [`validate_batch`], which makes every check
//! arrow's decoder makes for the types it covers ([`fast_path_covers`]) — structure and buffer
//! sizes, null counts and child nullability, offsets (non-negative, monotonic, within their values
//! or children), UTF-8 of strings with every offset on a character boundary, dictionary keys in
//! range, column lengths and nullability against the schema. Other types decode with arrow's own
//! validation, as before.

use arrow_array::{Array, RecordBatch};
use arrow_buffer::{ArrowNativeType, Buffer};
use arrow_data::ArrayData;
use arrow_ipc::Block;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::{ArrowError, DataType, Schema};

/// Whether [`validate_batch`] makes every check arrow's decoder makes for columns of `data_type`
/// (recursively). View types, unions and run-end encoding are left to arrow.
pub fn fast_path_covers(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        | Float16 | Float32 | Float64 | Timestamp(..) | Date32 | Date64 | Time32(_) | Time64(_)
        | Duration(_) | Interval(_) | FixedSizeBinary(_) | Decimal32(..) | Decimal64(..)
        | Decimal128(..) | Decimal256(..) | Utf8 | LargeUtf8 | Binary | LargeBinary => true,
        List(field) | LargeList(field) | FixedSizeList(field, _) => {
            fast_path_covers(field.data_type())
        }
        Struct(fields) => fields.iter().all(|f| fast_path_covers(f.data_type())),
        Dictionary(key, value) => key.is_dictionary_key_type() && fast_path_covers(value),
        _ => false,
    }
}

/// Checks a batch decoded without arrow's validation as arrow's decoder would have: each column
/// as [`validate_array`], its length against the batch's row count, and no nulls in a column the
/// schema declares non-nullable.
pub fn validate_batch(batch: &RecordBatch) -> Result<(), ArrowError> {
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let fail = |reason: String| {
            ArrowError::InvalidArgumentError(format!("column `{}`: {reason}", field.name()))
        };
        if column.len() != batch.num_rows() {
            return Err(fail(format!(
                "{} rows in a batch of {}",
                column.len(),
                batch.num_rows()
            )));
        }
        if column.data_type() != field.data_type() {
            return Err(fail(format!(
                "type {} where the schema says {}",
                column.data_type(),
                field.data_type()
            )));
        }
        validate_array(&column.to_data()).map_err(|e| fail(e.to_string()))?;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(fail(format!(
                "{} nulls in a non-nullable column",
                column.null_count()
            )));
        }
    }
    Ok(())
}

/// Arrow's full validation of `data` and its children (`ArrayData::validate_full`), with the
/// offsets of strings, binaries and lists checked by [`check_offsets`]. A dictionary's values are
/// not walked again: the decoder validated them when it read the dictionary batch.
pub fn validate_array(data: &ArrayData) -> Result<(), ArrowError> {
    data.validate()?;
    data.validate_nulls()?;
    match data.data_type() {
        DataType::Utf8 => check_offsets::<i32>(data, values(data)?, true)?,
        DataType::LargeUtf8 => check_offsets::<i64>(data, values(data)?, true)?,
        DataType::Binary => check_offsets::<i32>(data, values(data)?, false)?,
        DataType::LargeBinary => check_offsets::<i64>(data, values(data)?, false)?,
        DataType::List(_) => check_offsets::<i32>(data, Limit::Len(child(data)?.len()), false)?,
        DataType::LargeList(_) => {
            check_offsets::<i64>(data, Limit::Len(child(data)?.len()), false)?
        }
        _ => data.validate_values()?,
    }
    if matches!(data.data_type(), DataType::Dictionary(..)) {
        return Ok(());
    }
    for (i, child) in data.child_data().iter().enumerate() {
        validate_array(child).map_err(|e| {
            ArrowError::InvalidArgumentError(format!("{} child #{i}: {e}", data.data_type()))
        })?;
    }
    Ok(())
}

/// What offsets point into.
enum Limit<'a> {
    /// The bytes of a string or binary column.
    Bytes(&'a [u8]),
    /// A list's child, of this many elements.
    Len(usize),
}

fn values(data: &ArrayData) -> Result<Limit<'_>, ArrowError> {
    data.buffers()
        .get(1)
        .map(|b: &Buffer| Limit::Bytes(b.as_slice()))
        .ok_or_else(|| ArrowError::InvalidArgumentError("no values buffer".into()))
}

fn child(data: &ArrayData) -> Result<&ArrayData, ArrowError> {
    data.child_data()
        .first()
        .ok_or_else(|| ArrowError::InvalidArgumentError("a list without its child".into()))
}

/// The offsets of `data` (its first buffer, from its offset, `len + 1` of them; none for an empty
/// array) are non-negative, monotonic and within `limit`; with `utf8`, the bytes they span are
/// UTF-8 and every offset falls on a character boundary.
fn check_offsets<O: ArrowNativeType + Into<i64>>(
    data: &ArrayData,
    limit: Limit<'_>,
    utf8: bool,
) -> Result<(), ArrowError> {
    let invalid = |m: String| Err(ArrowError::InvalidArgumentError(m));
    if data.is_empty() {
        return Ok(());
    }
    let Some(buffer) = data.buffers().first() else {
        return invalid("no offsets buffer".into());
    };
    let width = std::mem::size_of::<O>();
    if buffer.as_ptr().align_offset(width) != 0 {
        return invalid("misaligned offsets buffer".into());
    }
    // Whole offsets only: `typed_data` refuses a trailing partial one.
    let whole = buffer.slice_with_length(0, buffer.len() / width * width);
    let all: &[O] = whole.typed_data();
    let Some(offsets) = all.get(data.offset()..data.offset() + data.len() + 1) else {
        return invalid(format!(
            "offsets buffer of {} entries for {} + 1 from {}",
            all.len(),
            data.len(),
            data.offset()
        ));
    };
    let (end, bytes) = match limit {
        Limit::Bytes(bytes) => (bytes.len(), Some(bytes)),
        Limit::Len(len) => (len, None),
    };
    let end = i64::try_from(end).unwrap_or(i64::MAX);
    let first: i64 = offsets[0].into();
    let last: i64 = offsets[offsets.len() - 1].into();
    // One branch-free pass (it vectorises): monotonic offsets from a non-negative first to a last
    // within the limit are all within it. The position is looked for only on failure.
    let descending = offsets
        .iter()
        .zip(&offsets[1..])
        .fold(false, |bad, (a, b)| bad | (b < a));
    if descending || first < 0 || last > end {
        let mut previous = 0i64;
        for (i, &offset) in offsets.iter().enumerate() {
            let offset: i64 = offset.into();
            // `previous` starts at 0, so a negative first offset fails here too.
            if offset < previous || offset > end {
                return invalid(format!(
                    "offset at position {i} is {offset} (offsets must be non-negative, monotonic \
                     and at most {end})"
                ));
            }
            previous = offset;
        }
    }
    let (Some(bytes), true) = (bytes, utf8) else {
        return Ok(());
    };
    // 0 <= first <= last <= bytes.len(): the span and the indexes below are in bounds.
    let (first, last) = (first as usize, last as usize);
    let span = &bytes[first..last];
    // ASCII (checked a word at a time) is UTF-8 with a boundary at every byte.
    if span.is_ascii() {
        return Ok(());
    }
    if let Err(e) = std::str::from_utf8(span) {
        return invalid(format!("invalid UTF-8 in the values: {e}"));
    }
    // Inside a valid UTF-8 span a character boundary is any byte but a continuation byte
    // (0b10xxxxxx); the span's end is a boundary.
    let splits = offsets.iter().fold(false, |bad, &offset| {
        let at = offset.as_usize();
        bad | (at < last && (bytes[at] as i8) < -0x40)
    });
    if splits {
        let i = offsets
            .iter()
            .position(|&o| o.as_usize() < last && (bytes[o.as_usize()] as i8) < -0x40)
            .unwrap_or(0);
        return invalid(format!("offset at position {i} splits a UTF-8 character"));
    }
    Ok(())
}

/// An Arrow IPC file decoder that validates each record batch with [`validate_batch`] instead of
/// arrow's slower checks when [`fast_path_covers`] every column, and with arrow's own otherwise.
/// Dictionaries are read (and validated by arrow) before it is made.
pub struct ValidatingIpcDecoder {
    decoder: FileDecoder,
}

impl ValidatingIpcDecoder {
    /// Wraps `decoder`, whose dictionaries are already read, for batches of `schema`.
    pub fn new(decoder: FileDecoder, schema: &Schema) -> Self {
        if !schema
            .fields()
            .iter()
            .all(|f| fast_path_covers(f.data_type()))
        {
            return ValidatingIpcDecoder { decoder };
        }
        // SAFETY: arrow's checks are skipped only for batches `read_record_batch` below passes
        // through `validate_batch` before anyone sees them; it makes the same checks for every
        // type `fast_path_covers` accepts. The dictionaries were read (and validated) before.
        let decoder = unsafe { decoder.with_skip_validation(true) };
        ValidatingIpcDecoder { decoder }
    }

    /// Decodes the record batch of `block` from `data` (the block's bytes) and validates it.
    pub fn read_record_batch(
        &self,
        block: &Block,
        data: &Buffer,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let batch = self.decoder.read_record_batch(block, data)?;
        if let Some(batch) = &batch {
            validate_batch(batch)?;
        }
        Ok(batch)
    }
}

impl std::fmt::Debug for ValidatingIpcDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatingIpcDecoder")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BinaryArray, DictionaryArray, Int32Array, LargeStringArray, ListArray,
        StringArray, types::Int32Type,
    };
    use arrow_buffer::{OffsetBuffer, ScalarBuffer};
    use arrow_schema::Field;

    /// `data` with its buffer `index` replaced by `bytes` (no validation).
    fn with_buffer(data: &ArrayData, index: usize, bytes: Vec<u8>) -> ArrayData {
        let mut buffers = data.buffers().to_vec();
        buffers[index] = Buffer::from_vec(bytes);
        let builder = data.clone().into_builder().buffers(buffers);
        // SAFETY: only validated below, never read as an array.
        unsafe { builder.build_unchecked() }
    }

    fn offsets_bytes(offsets: &[i32]) -> Vec<u8> {
        offsets.iter().flat_map(|o| o.to_le_bytes()).collect()
    }

    /// Our verdict equals arrow's `validate_full` on the same data.
    fn agrees(data: &ArrayData) -> bool {
        let ours = validate_array(data).is_ok();
        let arrows = data.validate_full().is_ok();
        assert_eq!(ours, arrows, "{data:?}: ours {ours}, arrow's {arrows}");
        ours
    }

    #[test]
    fn valid_arrays_pass() {
        let strings = StringArray::from(vec![Some("héllo"), None, Some(""), Some("wörld")]);
        assert!(agrees(&strings.to_data()));
        assert!(agrees(&strings.slice(1, 2).to_data()));
        assert!(agrees(
            &StringArray::from(vec!["ascii", "", "only"]).to_data()
        ));
        let large = LargeStringArray::from(vec!["a", "ßü", ""]);
        assert!(agrees(&large.to_data()));
        let binary = BinaryArray::from(vec![&b"\xff\x00"[..], b"", b"x"]);
        assert!(agrees(&binary.to_data()));
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]);
        assert!(agrees(&list.to_data()));
        assert!(agrees(&list.slice(1, 2).to_data()));
        let dictionary: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        assert!(agrees(&dictionary.to_data()));
        assert!(agrees(&StringArray::from(Vec::<&str>::new()).to_data()));
    }

    #[test]
    fn corrupt_offsets_and_bytes_fail_as_arrow_says() {
        let strings = StringArray::from(vec!["ab", "ü", "cd"]).to_data(); // bytes "abücd"
        for offsets in [
            vec![0, 2, 1, 6],  // not monotonic
            vec![0, 2, 4, 7],  // past the values
            vec![-1, 2, 4, 6], // negative
            vec![0, 3, 4, 6],  // splits "ü"
            vec![0, 2, 4, 6],  // valid
            vec![2, 2, 4, 4],  // a valid sub-span
        ] {
            let data = with_buffer(&strings, 0, offsets_bytes(&offsets));
            agrees(&data);
        }
        let bad_utf8 = with_buffer(&strings, 1, b"ab\xc3\x28cd".to_vec());
        assert!(!agrees(&bad_utf8));
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int32, true)),
            OffsetBuffer::new(ScalarBuffer::from(vec![0, 1, 3])),
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            None,
        )
        .to_data();
        assert!(!agrees(&with_buffer(&list, 0, offsets_bytes(&[0, 1, 4]))));
        assert!(!agrees(&with_buffer(&list, 0, offsets_bytes(&[0, 2, 1]))));
    }

    #[test]
    fn random_corruptions_get_arrows_verdict() {
        let strings = StringArray::from(vec![
            Some("zenith"),
            Some("ñandú"),
            None,
            Some("日本"),
            Some(""),
            Some("x"),
        ])
        .to_data();
        let mut state = 0x2545f4914f6cdd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut failures = 0;
        for _ in 0..2000 {
            let buffer_index = (next() % 2) as usize;
            let mut bytes = strings.buffers()[buffer_index].as_slice().to_vec();
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
            let data = with_buffer(&strings, buffer_index, bytes);
            failures += usize::from(!agrees(&data));
        }
        assert!(
            failures > 100,
            "the corruptions exercised the failure paths"
        );
    }

    #[test]
    fn batches_check_lengths_and_nullability() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        let column: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
        // SAFETY: validated below, never read.
        let batch = unsafe { RecordBatch::new_unchecked(schema.clone(), vec![column], 2) };
        assert!(
            validate_batch(&batch).is_err(),
            "a null in a non-nullable column"
        );
        let column: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        // SAFETY: as above.
        let batch = unsafe { RecordBatch::new_unchecked(schema.clone(), vec![column], 3) };
        assert!(
            validate_batch(&batch).is_err(),
            "a column shorter than the batch"
        );
        let column: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        let batch = RecordBatch::try_new(schema, vec![column]).unwrap();
        assert!(validate_batch(&batch).is_ok());
    }

    #[test]
    fn view_types_and_unions_are_left_to_arrow() {
        assert!(!fast_path_covers(&DataType::Utf8View));
        assert!(!fast_path_covers(&DataType::List(Arc::new(
            Field::new_list_field(DataType::BinaryView, true)
        ))));
        assert!(fast_path_covers(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8)
        )));
    }
}
