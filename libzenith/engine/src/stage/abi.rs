//! Plugin ABI v1 (`docs/plugins.md`, `include/zenith_plugin.h`): the column descriptors the host
//! writes into guest memory, and the validation of those the plugin writes back.
//!
//! Everything here works on plain byte slices (a copy of guest memory's view), so it is the same
//! code whatever runs the guest, and the validation can be tested and fuzzed without wasmtime.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, make_array};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema};

use crate::event::FailureKind;
use crate::stage::StageError;

/// Size of one `zn_column` descriptor in guest memory.
pub const COLUMN_SIZE: usize = 56;
/// Size of the `zn_output` struct in guest memory.
pub const OUTPUT_SIZE: usize = 16;
/// Alignment of every buffer the host copies into guest memory.
pub const BUFFER_ALIGN: usize = 64;
/// Most output columns the host accepts.
pub const MAX_COLUMNS: u32 = 4096;
/// Longest column name the host accepts, in bytes.
pub const MAX_NAME: u32 = 4096;

/// Column type codes (`ZN_TYPE_*`).
pub mod type_code {
    /// int8
    pub const INT8: u32 = 1;
    /// int16
    pub const INT16: u32 = 2;
    /// int32
    pub const INT32: u32 = 3;
    /// int64
    pub const INT64: u32 = 4;
    /// uint8
    pub const UINT8: u32 = 5;
    /// uint16
    pub const UINT16: u32 = 6;
    /// uint32
    pub const UINT32: u32 = 7;
    /// uint64
    pub const UINT64: u32 = 8;
    /// float32
    pub const FLOAT32: u32 = 9;
    /// float64
    pub const FLOAT64: u32 = 10;
    /// utf8 (int32 offsets)
    pub const UTF8: u32 = 11;
    /// binary (int32 offsets)
    pub const BINARY: u32 = 12;
    /// fixed_size_binary (width = bytes per value)
    pub const FIXED_SIZE_BINARY: u32 = 13;
}

/// The Arrow type of a type code and width, if the ABI knows it.
pub fn data_type_of(code: u32, width: u32) -> Option<DataType> {
    use type_code::*;
    Some(match code {
        INT8 => DataType::Int8,
        INT16 => DataType::Int16,
        INT32 => DataType::Int32,
        INT64 => DataType::Int64,
        UINT8 => DataType::UInt8,
        UINT16 => DataType::UInt16,
        UINT32 => DataType::UInt32,
        UINT64 => DataType::UInt64,
        FLOAT32 => DataType::Float32,
        FLOAT64 => DataType::Float64,
        UTF8 => DataType::Utf8,
        BINARY => DataType::Binary,
        FIXED_SIZE_BINARY => {
            DataType::FixedSizeBinary(i32::try_from(width).ok().filter(|w| *w > 0)?)
        }
        _ => return None,
    })
}

/// The type code and width of an Arrow type, if the ABI carries it.
pub fn code_of(data_type: &DataType) -> Option<(u32, u32)> {
    use type_code::*;
    Some(match data_type {
        DataType::Int8 => (INT8, 0),
        DataType::Int16 => (INT16, 0),
        DataType::Int32 => (INT32, 0),
        DataType::Int64 => (INT64, 0),
        DataType::UInt8 => (UINT8, 0),
        DataType::UInt16 => (UINT16, 0),
        DataType::UInt32 => (UINT32, 0),
        DataType::UInt64 => (UINT64, 0),
        DataType::Float32 => (FLOAT32, 0),
        DataType::Float64 => (FLOAT64, 0),
        DataType::Utf8 => (UTF8, 0),
        DataType::Binary => (BINARY, 0),
        DataType::FixedSizeBinary(w) => (FIXED_SIZE_BINARY, u32::try_from(*w).ok()?),
        _ => return None,
    })
}

/// Bytes per value of a fixed-width type code (None for variable-width types).
fn value_width(code: u32, width: u32) -> Option<u64> {
    use type_code::*;
    match code {
        INT8 | UINT8 => Some(1),
        INT16 | UINT16 => Some(2),
        INT32 | UINT32 | FLOAT32 => Some(4),
        INT64 | UINT64 | FLOAT64 => Some(8),
        FIXED_SIZE_BINARY => Some(u64::from(width)),
        _ => None,
    }
}

/// A 64-bit FNV-1a fingerprint of a schema's field names and types: plugins compare it to
/// recognise a schema they have seen before.
pub fn schema_fingerprint(schema: &Schema) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in schema.fields() {
        let text = format!("{}:{};", field.name(), field.data_type());
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// One input column ready to copy into guest memory: each buffer already rebased to offset 0.
pub struct InputColumn {
    /// Type code.
    pub code: u32,
    /// Width for fixed_size_binary.
    pub width: u32,
    /// Rows.
    pub rows: u64,
    /// Nulls.
    pub null_count: u64,
    /// Validity bitmap bytes (empty without nulls).
    pub validity: Buffer,
    /// Offsets (int32, starting at 0) for utf8/binary, else empty.
    pub offsets: Vec<u8>,
    /// Value bytes.
    pub data: Buffer,
    /// Field name.
    pub name: String,
}

fn unsupported(message: String) -> StageError {
    StageError::new(FailureKind::Unsupported, message)
}

/// The input columns of a batch, each buffer sliced (and bit- or offset-rebased) once.
pub fn input_columns(batch: &RecordBatch) -> Result<Vec<InputColumn>, StageError> {
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let (code, width) = code_of(field.data_type()).ok_or_else(|| {
            unsupported(format!(
                "column '{}' has type {}, which plugin ABI v1 does not carry",
                field.name(),
                field.data_type()
            ))
        })?;
        let data = array.to_data();
        let (offset, rows) = (data.offset(), data.len());
        let validity = match data.nulls() {
            Some(nulls) if nulls.null_count() > 0 => {
                // bit_slice rounds an unaligned slice up to whole words: trim to the bitmap.
                let bits = nulls.inner().inner().bit_slice(nulls.offset(), rows);
                bits.slice_with_length(0, rows.div_ceil(8))
            }
            _ => Buffer::from_vec(Vec::<u8>::new()),
        };
        let (offsets, values) = if let Some(size) = value_width(code, width) {
            let size = size as usize;
            let values = data.buffers()[0].slice_with_length(offset * size, rows * size);
            (Vec::new(), values)
        } else {
            let raw: &[i32] = data.buffers()[0].typed_data();
            let window = &raw[offset..offset + rows + 1];
            let first = window[0];
            let mut rebased = Vec::with_capacity(window.len() * 4);
            for value in window {
                rebased.extend_from_slice(&(value - first).to_le_bytes());
            }
            let start = first as usize;
            let end = window[rows] as usize;
            (
                rebased,
                data.buffers()[1].slice_with_length(start, end - start),
            )
        };
        columns.push(InputColumn {
            code,
            width,
            rows: rows as u64,
            null_count: data.null_count() as u64,
            validity,
            offsets,
            data: values,
            name: field.name().clone(),
        });
    }
    Ok(columns)
}

/// Where each piece of the input lies in the one block the host allocates in guest memory.
pub struct InputLayout {
    /// Total bytes to allocate (64-byte aligned).
    pub total: usize,
    /// Offset of the descriptor array in the block.
    pub columns_at: usize,
    /// Offset of the `zn_output` struct in the block.
    pub output_at: usize,
    /// Per column: block offsets of validity, offsets, data and name.
    pub pieces: Vec<[usize; 4]>,
}

fn round_up(value: usize, align: usize) -> Option<usize> {
    value.checked_add(align - 1).map(|v| v / align * align)
}

/// Lays out the descriptors, the output struct, every buffer and every name in one block.
pub fn layout(columns: &[InputColumn]) -> Option<InputLayout> {
    let columns_at = 0;
    let output_at = columns.len().checked_mul(COLUMN_SIZE)?;
    let mut at = round_up(output_at + OUTPUT_SIZE, BUFFER_ALIGN)?;
    let mut pieces = Vec::with_capacity(columns.len());
    for column in columns {
        let mut piece = [0usize; 4];
        for (slot, len) in [
            column.validity.len(),
            column.offsets.len(),
            column.data.len(),
            column.name.len(),
        ]
        .into_iter()
        .enumerate()
        {
            piece[slot] = at;
            at = round_up(at.checked_add(len)?, BUFFER_ALIGN)?;
        }
        pieces.push(piece);
    }
    Some(InputLayout {
        total: at.max(BUFFER_ALIGN),
        columns_at,
        output_at,
        pieces,
    })
}

fn put_u32(memory: &mut [u8], at: usize, value: u32) {
    memory[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(memory: &mut [u8], at: usize, value: u64) {
    memory[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Writes the input into `block` (guest memory from the block's start `base`, `layout.total`
/// bytes long): buffers, names and descriptors holding guest addresses. `base + total` must fit
/// in 32 bits (the caller checked the block against guest memory).
pub fn write_input(
    block: &mut [u8],
    base: u32,
    layout: &InputLayout,
    columns: &[InputColumn],
    fingerprint: u64,
) {
    let guest = |at: usize| base + at as u32;
    for (index, (column, piece)) in columns.iter().zip(&layout.pieces).enumerate() {
        let bytes: [&[u8]; 4] = [
            column.validity.as_slice(),
            &column.offsets,
            column.data.as_slice(),
            column.name.as_bytes(),
        ];
        for (at, source) in piece.iter().zip(bytes) {
            block[*at..*at + source.len()].copy_from_slice(source);
        }
        let d = layout.columns_at + index * COLUMN_SIZE;
        put_u32(block, d, column.code);
        put_u32(block, d + 4, column.width);
        put_u64(block, d + 8, column.rows);
        put_u64(block, d + 16, column.null_count);
        for (slot, source) in bytes.iter().enumerate() {
            put_u32(block, d + 24 + slot * 8, guest(piece[slot]));
            put_u32(block, d + 28 + slot * 8, source.len() as u32);
        }
    }
    put_u64(block, layout.output_at, fingerprint);
    put_u32(block, layout.output_at + 8, 0);
    put_u32(block, layout.output_at + 12, 0);
}

fn malformed(message: String) -> StageError {
    StageError::new(FailureKind::Malformed, message)
}

fn get_u32(memory: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(memory[at..at + 4].try_into().unwrap_or([0; 4]))
}

fn get_u64(memory: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(memory[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// A checked region of guest memory.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    len: usize,
}

/// Checks `(offset, length)` against guest memory of `size` bytes.
fn region(offset: u32, length: u32, size: usize, what: &str) -> Result<Region, StageError> {
    let end = u64::from(offset) + u64::from(length);
    if end > size as u64 {
        return Err(malformed(format!(
            "{what} [{offset}, {end}) lies outside guest memory of {size} bytes"
        )));
    }
    Ok(Region {
        start: offset as usize,
        len: length as usize,
    })
}

/// Reads the plugin's output described by the `zn_output` struct at `output_at` in `memory`
/// (all of guest memory), checks every descriptor against memory bounds and the Arrow layout,
/// and copies the result out as a record batch.
pub fn read_output(memory: &[u8], output_at: usize) -> Result<RecordBatch, StageError> {
    let size = memory.len();
    let n_columns = get_u32(memory, output_at + 8);
    let columns_at = get_u32(memory, output_at + 12);
    if n_columns > MAX_COLUMNS {
        return Err(malformed(format!(
            "output has {n_columns} columns, more than the limit of {MAX_COLUMNS}"
        )));
    }
    let table = region(
        columns_at,
        n_columns * COLUMN_SIZE as u32,
        size,
        "output descriptor array",
    )?;
    let mut rows: Option<u64> = None;
    let mut buffers: Vec<(Region, String)> = Vec::new();
    let mut fields = Vec::with_capacity(n_columns as usize);
    let mut specs = Vec::with_capacity(n_columns as usize);
    for index in 0..n_columns as usize {
        let d = table.start + index * COLUMN_SIZE;
        let (code, width) = (get_u32(memory, d), get_u32(memory, d + 4));
        let (column_rows, null_count) = (get_u64(memory, d + 8), get_u64(memory, d + 16));
        let piece = |slot: usize, what: &str| {
            region(
                get_u32(memory, d + 24 + slot * 8),
                get_u32(memory, d + 28 + slot * 8),
                size,
                &format!("column {index} {what}"),
            )
        };
        let (validity, offsets, data, name) = (
            piece(0, "validity")?,
            piece(1, "offsets")?,
            piece(2, "data")?,
            piece(3, "name")?,
        );
        let data_type = data_type_of(code, width).ok_or_else(|| {
            malformed(format!(
                "column {index} has unknown type code {code} (width {width})"
            ))
        })?;
        match rows {
            None => rows = Some(column_rows),
            Some(expected) if expected != column_rows => {
                return Err(malformed(format!(
                    "column {index} has {column_rows} rows, column 0 has {expected}"
                )));
            }
            Some(_) => {}
        }
        if column_rows > i32::MAX as u64 {
            return Err(malformed(format!(
                "column {index} claims {column_rows} rows"
            )));
        }
        if null_count > column_rows {
            return Err(malformed(format!(
                "column {index} claims {null_count} nulls in {column_rows} rows"
            )));
        }
        if name.len > MAX_NAME as usize {
            return Err(malformed(format!("column {index} name is too long")));
        }
        let name = std::str::from_utf8(&memory[name.start..name.start + name.len])
            .map_err(|_| malformed(format!("column {index} name is not UTF-8")))?
            .to_string();
        let bitmap_len = column_rows.div_ceil(8) as usize;
        if null_count > 0 && validity.len != bitmap_len {
            return Err(malformed(format!(
                "column {index} has {null_count} nulls and a validity bitmap of {} bytes; {column_rows} rows need {bitmap_len}",
                validity.len
            )));
        }
        if null_count == 0 && validity.len != 0 {
            return Err(malformed(format!(
                "column {index} has no nulls but a validity bitmap of {} bytes",
                validity.len
            )));
        }
        match value_width(code, width) {
            Some(each) => {
                let expected = column_rows * each;
                if data.len as u64 != expected || offsets.len != 0 {
                    return Err(malformed(format!(
                        "column {index} ({data_type}) has {column_rows} rows: data must be {expected} bytes and offsets empty, got {} and {}",
                        data.len, offsets.len
                    )));
                }
            }
            None => {
                let expected = (column_rows + 1) * 4;
                if offsets.len as u64 != expected {
                    return Err(malformed(format!(
                        "column {index} ({data_type}) has {column_rows} rows: offsets must be {expected} bytes, got {}",
                        offsets.len
                    )));
                }
            }
        }
        for (region, what) in [(validity, "validity"), (offsets, "offsets"), (data, "data")] {
            if region.len > 0 {
                buffers.push((region, format!("column {index} {what}")));
            }
        }
        fields.push(Field::new(name, data_type.clone(), true));
        specs.push((data_type, column_rows, null_count, validity, offsets, data));
    }
    check_no_overlap(&mut buffers)?;
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(specs.len());
    for (index, (data_type, column_rows, null_count, validity, offsets, data)) in
        specs.into_iter().enumerate()
    {
        let copy = |r: Region| Buffer::from(&memory[r.start..r.start + r.len]);
        let mut value_buffers = Vec::with_capacity(2);
        if offsets.len > 0 {
            value_buffers.push(copy(offsets));
        }
        value_buffers.push(copy(data));
        let nulls = (null_count > 0).then(|| copy(validity));
        let array = ArrayData::try_new(
            data_type,
            column_rows as usize,
            nulls,
            0,
            value_buffers,
            Vec::new(),
        )
        .map_err(|e| malformed(format!("column {index}: {e}")))?;
        if array.null_count() as u64 != null_count {
            return Err(malformed(format!(
                "column {index} claims {null_count} nulls, its bitmap has {}",
                array.null_count()
            )));
        }
        arrays.push(make_array(array));
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.unwrap_or(0) as usize));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| malformed(format!("output batch: {e}")))
}

/// Fails when two non-empty output buffers share a byte.
fn check_no_overlap(buffers: &mut [(Region, String)]) -> Result<(), StageError> {
    buffers.sort_by_key(|(r, _)| r.start);
    for pair in buffers.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.0.start < a.0.start + a.0.len {
            return Err(malformed(format!("{} overlaps {}", a.1, b.1)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, StringArray};

    fn round_trip(batch: &RecordBatch) -> Result<RecordBatch, StageError> {
        // Acts as an identity plugin: the output struct points at the input descriptors.
        let columns = input_columns(batch)?;
        let layout = layout(&columns).unwrap();
        let base = 128u32;
        let mut memory = vec![0u8; base as usize + layout.total];
        let fingerprint = schema_fingerprint(&batch.schema());
        write_input(
            &mut memory[base as usize..],
            base,
            &layout,
            &columns,
            fingerprint,
        );
        let output_at = base as usize + layout.output_at;
        put_u32(&mut memory, output_at + 8, columns.len() as u32);
        put_u32(&mut memory, output_at + 12, base + layout.columns_at as u32);
        read_output(&memory, output_at)
    }

    #[test]
    fn sliced_columns_with_nulls_round_trip_through_the_descriptors() {
        let floats = Float64Array::from(vec![Some(1.0), None, Some(3.0), Some(4.0), None]);
        let names = StringArray::from(vec![Some("a"), Some("bb"), None, Some("dddd"), Some("")]);
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(floats) as ArrayRef),
            ("s", Arc::new(names) as ArrayRef),
        ])
        .unwrap()
        .slice(1, 4);
        let out = round_trip(&batch).unwrap();
        assert_eq!(out.num_rows(), 4);
        assert_eq!(out.column(0).to_data(), batch.column(0).to_data());
        assert_eq!(
            out.column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            vec![Some("bb"), None, Some("dddd"), Some("")]
        );
    }

    /// What the `descriptors` fuzz target checks, over deterministic mutations of a valid output
    /// (a few bytes of the descriptors and the output struct overwritten): no panic, every
    /// refusal `Malformed`, every acceptance a valid batch.
    #[test]
    fn mutated_descriptors_are_refused_or_valid() {
        let floats = Float64Array::from(vec![Some(1.0), None, Some(3.0)]);
        let names = StringArray::from(vec![Some("a"), None, Some("ccc")]);
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(floats) as ArrayRef),
            ("s", Arc::new(names) as ArrayRef),
        ])
        .unwrap();
        let columns = input_columns(&batch).unwrap();
        let layout = layout(&columns).unwrap();
        let mut image = vec![0u8; 16 + layout.total];
        write_input(&mut image[16..], 16, &layout, &columns, 0);
        put_u32(&mut image, 8, columns.len() as u32);
        put_u32(&mut image, 12, 16 + layout.columns_at as u32);
        assert!(read_output(&image, 0).is_ok());
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let descriptors = 16 + layout.columns_at;
        let hot = descriptors..descriptors + columns.len() * COLUMN_SIZE;
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut memory = image.clone();
            for _ in 0..1 + next() % 3 {
                // Mostly the descriptors and the output struct, sometimes anywhere.
                let at = match next() % 4 {
                    0 => next() as usize % memory.len(),
                    1 => 8 + next() as usize % 8,
                    _ => hot.start + next() as usize % hot.len(),
                };
                memory[at] = next() as u8;
            }
            match read_output(&memory, 0) {
                Ok(out) => {
                    accepted += 1;
                    for column in out.columns() {
                        column.to_data().validate_full().unwrap();
                    }
                }
                Err(error) => {
                    refused += 1;
                    assert_eq!(error.kind, FailureKind::Malformed, "{error}");
                }
            }
        }
        assert!(
            accepted > 0 && refused > 0,
            "{accepted} accepted, {refused} refused"
        );
    }

    #[test]
    fn descriptors_outside_memory_or_overlapping_are_refused() {
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
        )])
        .unwrap();
        let mut memory = vec![0u8; 4096];
        // Output struct at 0, one descriptor at 64 whose data lies past the end.
        put_u32(&mut memory, 8, 1);
        put_u32(&mut memory, 12, 64);
        put_u32(&mut memory, 64, type_code::FLOAT64);
        put_u64(&mut memory, 64 + 8, 2);
        put_u32(&mut memory, 64 + 40, 4090);
        put_u32(&mut memory, 64 + 44, 16);
        let error = read_output(&memory, 0).unwrap_err();
        assert_eq!(error.kind, FailureKind::Malformed);
        assert!(error.message.contains("outside guest memory"), "{error}");
        // A second column whose data overlaps the first's.
        put_u32(&mut memory, 8, 2);
        put_u32(&mut memory, 64 + 40, 1024);
        let d = 64 + COLUMN_SIZE;
        put_u32(&mut memory, d, type_code::FLOAT64);
        put_u64(&mut memory, d + 8, 2);
        put_u32(&mut memory, d + 40, 1032);
        put_u32(&mut memory, d + 44, 16);
        let error = read_output(&memory, 0).unwrap_err();
        assert!(error.message.contains("overlaps"), "{error}");
        // Wrong row count for the data length.
        put_u32(&mut memory, 8, 1);
        put_u64(&mut memory, 64 + 8, 3);
        let error = read_output(&memory, 0).unwrap_err();
        assert!(error.message.contains("must be 24 bytes"), "{error}");
        drop(batch);
    }
}
