//! The gather kernel: a shuffled batch's rows written column by column straight into pooled
//! output buffers, instead of arrow's generic `interleave` (which builds each column through
//! per-type builders and growable buffers).
//!
//! Per column:
//! - fixed-width values (every type with a primitive width, fixed-size binary, fixed-size lists of
//!   such values without child nulls) are one indexed copy loop of `width`-byte rows, with the
//!   common widths compiled as constant-size moves;
//! - variable-width values (utf8, binary and their large variants) take two passes: lengths into
//!   offsets, then the bytes;
//! - booleans and validity bitmaps are gathered bit by bit into 64-bit words written whole; the
//!   sources' bit offsets (sliced arrays) are honoured;
//! - dictionaries gather their keys when every chunk shares one dictionary, which the output
//!   keeps;
//! - anything else (lists, structs, maps, unions, dictionaries that differ between chunks) falls
//!   back to arrow's `interleave`, column by column.
//!
//! Source rows are prefetched [`PREFETCH_AHEAD`] rows ahead of the copy (x86-64), since a
//! shuffled batch reads rows scattered over chunks far larger than the caches.
//!
//! Output buffers come from a [`HostPool`]: they return to it when the consumer releases the
//! batch (the last reference to the Arrow buffer drops), so a steady state allocates nothing, and
//! the pool's allocator decides where the batch lives (the heap, a NUMA node, pinned memory).

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, OffsetSizeTrait, RecordBatch, RecordBatchOptions, make_array};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, Buffer, NullBuffer};
use arrow_data::ArrayData;
use arrow_schema::DataType;
use arrow_select::interleave::interleave;

use crate::error::{Error, Result};
use crate::runtime::pool::{BlockPool, HostAllocator};

/// The pool batch buffers come from, over any host allocator.
pub type HostPool = BlockPool<Arc<dyn HostAllocator>>;

/// How many rows ahead of the copy the source rows are prefetched.
pub const PREFETCH_AHEAD: usize = 16;

/// What [`gather_batch`] built.
#[derive(Debug)]
pub struct Gathered {
    /// The rows, in the order asked for.
    pub batch: RecordBatch,
    /// Every column's buffers came from the pool (none fell back to `interleave`): the batch
    /// lives where the pool's allocator puts it.
    pub pooled: bool,
}

/// The rows `indices` (`(batch, row)` pairs into `batches`, which share one schema), in that
/// order, written into buffers from `pool`.
pub fn gather_batch(
    batches: &[RecordBatch],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Gathered> {
    let Some(first) = batches.first() else {
        return Err(Error::Internal("a gather without source batches".into()));
    };
    // Checked once here, so the per-column loops can trust every index.
    for &(slot, row) in indices {
        if batches.get(slot).is_none_or(|b| row >= b.num_rows()) {
            return Err(Error::Internal(format!(
                "gather index ({slot}, {row}) outside its source batches"
            )));
        }
    }
    let schema = first.schema();
    let mut pooled = true;
    let mut columns = Vec::with_capacity(schema.fields().len());
    for column in 0..schema.fields().len() {
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
        let (array, kernel) = gather_column(&arrays, indices, pool)?;
        pooled &= kernel;
        columns.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(indices.len()));
    let batch = RecordBatch::try_new_with_options(schema, columns, &options)?;
    Ok(Gathered { batch, pooled })
}

/// One column of [`gather_batch`]: the gathered array, and whether the kernel built it (rather
/// than the `interleave` fallback). The indices are in bounds.
fn gather_column(
    arrays: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<(ArrayRef, bool)> {
    let data_type = arrays[0].data_type();
    if arrays.iter().any(|a| a.data_type() != data_type) {
        return Ok((interleave(arrays, indices)?, false));
    }
    let sources: Vec<ArrayData> = arrays.iter().map(|a| a.to_data()).collect();
    let built = match data_type {
        DataType::Utf8 | DataType::Binary => gather_var_width::<i32>(&sources, indices, pool)?,
        DataType::LargeUtf8 | DataType::LargeBinary => {
            gather_var_width::<i64>(&sources, indices, pool)?
        }
        DataType::Boolean => gather_boolean(&sources, indices, pool)?,
        DataType::FixedSizeBinary(width) => {
            let width = usize::try_from(*width).unwrap_or(0);
            gather_fixed_width(&sources, indices, pool, width, Vec::new())?
        }
        DataType::FixedSizeList(_, size) => gather_fixed_size_list(&sources, indices, pool, *size)?,
        DataType::Dictionary(key, _) => gather_dictionary(&sources, indices, pool, key)?,
        other => match other.primitive_width() {
            Some(width) => gather_fixed_width(&sources, indices, pool, width, Vec::new())?,
            None => None,
        },
    };
    Ok(match built {
        Some(data) => (make_array(data), true),
        None => (interleave(arrays, indices)?, false),
    })
}

/// Fixed-width rows: `width` bytes each, starting `offset * width` bytes into the first buffer.
fn gather_fixed_width(
    sources: &[ArrayData],
    indices: &[(usize, usize)],
    pool: &HostPool,
    width: usize,
    child_data: Vec<ArrayData>,
) -> Result<Option<ArrayData>> {
    if width == 0 || sources.iter().any(|d| d.buffers().is_empty()) {
        return Ok(None);
    }
    let bases: Vec<*const u8> = sources
        .iter()
        .map(|d| d.buffers()[0].as_ptr().wrapping_add(d.offset() * width))
        .collect();
    let values = gather_rows_bytes(&bases, indices, pool, width)?;
    let nulls = gather_nulls(sources, indices, pool)?;
    build(sources, indices.len(), vec![values], child_data, nulls)
}

/// Fixed-size lists of fixed-width values without child nulls: rows `size` values wide.
fn gather_fixed_size_list(
    sources: &[ArrayData],
    indices: &[(usize, usize)],
    pool: &HostPool,
    size: i32,
) -> Result<Option<ArrayData>> {
    let size = usize::try_from(size).unwrap_or(0);
    let children: Vec<&ArrayData> = sources
        .iter()
        .filter_map(|d| d.child_data().first())
        .collect();
    let Some(child_type) = children.first().map(|c| c.data_type().clone()) else {
        return Ok(None);
    };
    let Some(child_width) = child_type.primitive_width() else {
        return Ok(None);
    };
    if size == 0
        || children.len() != sources.len()
        || children
            .iter()
            .any(|c| c.null_count() != 0 || c.buffers().is_empty())
    {
        return Ok(None);
    }
    let width = child_width * size;
    let bases: Vec<*const u8> = sources
        .iter()
        .zip(&children)
        .map(|(d, c)| {
            let first_value = c.offset() + d.offset() * size;
            c.buffers()[0]
                .as_ptr()
                .wrapping_add(first_value * child_width)
        })
        .collect();
    let values = gather_rows_bytes(&bases, indices, pool, width)?;
    // SAFETY: `values` holds `len * size` values of the child's type, no nulls.
    let child = unsafe {
        ArrayData::builder(child_type)
            .len(indices.len() * size)
            .add_buffer(values)
            .build_unchecked()
    };
    let nulls = gather_nulls(sources, indices, pool)?;
    build(sources, indices.len(), Vec::new(), vec![child], nulls)
}

/// Dictionary keys, when every source shares one dictionary (the output keeps it).
fn gather_dictionary(
    sources: &[ArrayData],
    indices: &[(usize, usize)],
    pool: &HostPool,
    key: &DataType,
) -> Result<Option<ArrayData>> {
    let Some(values) = sources[0].child_data().first() else {
        return Ok(None);
    };
    let shared = sources
        .iter()
        .all(|d| d.child_data().first().is_some_and(|v| v.ptr_eq(values)));
    match key.primitive_width() {
        Some(width) if shared => {
            gather_fixed_width(sources, indices, pool, width, vec![values.clone()])
        }
        _ => Ok(None),
    }
}

/// Utf8/binary rows with offsets of type `O`: the lengths into offsets, then the bytes. `None`
/// when the bytes overflow `O` (the fallback reports it).
fn gather_var_width<O: OffsetSizeTrait>(
    sources: &[ArrayData],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Option<ArrayData>> {
    if sources.iter().any(|d| d.buffers().len() < 2) {
        return Ok(None);
    }
    let offsets: Vec<&[O]> = sources
        .iter()
        .map(|d| &d.buffers()[0].typed_data::<O>()[d.offset()..])
        .collect();
    let bytes: Vec<*const u8> = sources.iter().map(|d| d.buffers()[1].as_ptr()).collect();
    // Pass 1: lengths into offsets.
    let mut total = 0usize;
    let mut overflow = false;
    let out_offsets = pooled::<O>(pool, indices.len() + 1, |out| {
        out[0] = O::usize_as(0);
        for (i, &(slot, row)) in indices.iter().enumerate() {
            if let Some(&(ahead_slot, ahead_row)) = indices.get(i + PREFETCH_AHEAD) {
                prefetch(
                    offsets[ahead_slot]
                        .as_ptr()
                        .wrapping_add(ahead_row)
                        .cast::<u8>(),
                );
            }
            let source = offsets[slot];
            total += source[row + 1].as_usize() - source[row].as_usize();
            match O::from_usize(total) {
                Some(end) => out[i + 1] = end,
                None => {
                    overflow = true;
                    break;
                }
            }
        }
    })?;
    if overflow {
        return Ok(None);
    }
    // Pass 2: the bytes.
    let out_bytes = pooled::<u8>(pool, total, |out| {
        let mut at = 0usize;
        for (i, &(slot, row)) in indices.iter().enumerate() {
            if let Some(&(ahead_slot, ahead_row)) = indices.get(i + PREFETCH_AHEAD) {
                let start = offsets[ahead_slot][ahead_row].as_usize();
                prefetch(bytes[ahead_slot].wrapping_add(start));
            }
            let source = offsets[slot];
            let start = source[row].as_usize();
            let len = source[row + 1].as_usize() - start;
            // SAFETY: the source offsets are valid for its values buffer (a valid array);
            // pass 1 sized `out` to the sum of these lengths, so `at + len <= out.len()`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes[slot].add(start),
                    out.as_mut_ptr().add(at),
                    len,
                );
            }
            at += len;
        }
    })?;
    let nulls = gather_nulls(sources, indices, pool)?;
    build(
        sources,
        indices.len(),
        vec![out_offsets, out_bytes],
        Vec::new(),
        nulls,
    )
}

/// Boolean values: the value bits gathered like a validity bitmap.
fn gather_boolean(
    sources: &[ArrayData],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Option<ArrayData>> {
    if sources.iter().any(|d| d.buffers().is_empty()) {
        return Ok(None);
    }
    let bits: Vec<Option<(*const u8, usize)>> = sources
        .iter()
        .map(|d| Some((d.buffers()[0].as_ptr(), d.offset())))
        .collect();
    let (values, _) = gather_bits(&bits, indices, pool)?;
    let nulls = gather_nulls(sources, indices, pool)?;
    build(sources, indices.len(), vec![values], Vec::new(), nulls)
}

/// The output validity: `None` when no source has a null (as `interleave` does).
fn gather_nulls(
    sources: &[ArrayData],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Option<NullBuffer>> {
    if sources.iter().all(|d| d.null_count() == 0) {
        return Ok(None);
    }
    let bits: Vec<Option<(*const u8, usize)>> = sources
        .iter()
        .map(|d| {
            d.nulls()
                .filter(|n| n.null_count() > 0)
                .map(|n| (n.buffer().as_ptr(), n.offset()))
        })
        .collect();
    let (buffer, set) = gather_bits(&bits, indices, pool)?;
    let len = indices.len();
    // SAFETY: `set` is the number of valid bits among the first `len` of `buffer`.
    Ok(Some(unsafe {
        NullBuffer::new_unchecked(BooleanBuffer::new(buffer, 0, len), len - set)
    }))
}

/// Bits (`(bitmap, bit offset)` per source, `None`: all set) gathered into 64-bit words written
/// whole; the bits past the last row are zero. Returns the buffer and the number of set bits.
fn gather_bits(
    bits: &[Option<(*const u8, usize)>],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<(Buffer, usize)> {
    let mut set = 0usize;
    let words = indices.len().div_ceil(64);
    let buffer = pooled::<u64>(pool, words, |out| {
        for (word_index, rows) in indices.chunks(64).enumerate() {
            let mut word = 0u64;
            for (bit, &(slot, row)) in rows.iter().enumerate() {
                let value = match bits[slot] {
                    None => 1,
                    Some((bitmap, offset)) => {
                        let at = offset + row;
                        // SAFETY: a valid array's bitmap covers bit `offset + row` for each of
                        // its rows, and `row` is in bounds.
                        u64::from((unsafe { *bitmap.add(at >> 3) } >> (at & 7)) & 1)
                    }
                };
                word |= value << bit;
            }
            set += word.count_ones() as usize;
            out[word_index] = word.to_le();
        }
    })?;
    Ok((buffer, set))
}

/// Rows of `width` bytes (`bases[slot] + row * width`) copied in index order into a pooled
/// buffer; the common widths are constant-size moves.
fn gather_rows_bytes(
    bases: &[*const u8],
    indices: &[(usize, usize)],
    pool: &HostPool,
    width: usize,
) -> Result<Buffer> {
    let bytes = indices
        .len()
        .checked_mul(width)
        .ok_or_else(|| Error::Internal("a gathered column's size overflows".into()))?;
    pooled::<u8>(pool, bytes, |out| match width {
        1 => copy_rows::<1>(bases, indices, out),
        2 => copy_rows::<2>(bases, indices, out),
        4 => copy_rows::<4>(bases, indices, out),
        8 => copy_rows::<8>(bases, indices, out),
        16 => copy_rows::<16>(bases, indices, out),
        32 => copy_rows::<32>(bases, indices, out),
        _ => copy_rows_of(bases, indices, out, width),
    })
}

/// [`gather_rows_bytes`] for a width known at compile time.
#[inline(always)]
fn copy_rows<const W: usize>(bases: &[*const u8], indices: &[(usize, usize)], out: &mut [u8]) {
    copy_rows_of(bases, indices, out, W);
}

#[inline(always)]
fn copy_rows_of(bases: &[*const u8], indices: &[(usize, usize)], out: &mut [u8], width: usize) {
    debug_assert!(out.len() >= indices.len() * width);
    let out = out.as_mut_ptr();
    for (i, &(slot, row)) in indices.iter().enumerate() {
        if let Some(&(ahead_slot, ahead_row)) = indices.get(i + PREFETCH_AHEAD) {
            prefetch(bases[ahead_slot].wrapping_add(ahead_row * width));
        }
        // SAFETY: `bases[slot]` points at row 0 of a valid array whose buffer holds its rows of
        // `width` bytes and `row` is in bounds (checked by `gather_batch`); `out` holds
        // `indices.len() * width` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bases[slot].add(row * width), out.add(i * width), width);
        }
    }
}

/// A hint to load the cache line at `at`.
#[inline(always)]
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A pooled buffer of `len` values of `T`, filled by `fill` (which must write every value).
fn pooled<T: ArrowNativeType>(
    pool: &HostPool,
    len: usize,
    fill: impl FnOnce(&mut [T]),
) -> Result<Buffer> {
    let bytes = len
        .checked_mul(size_of::<T>())
        .ok_or_else(|| Error::Internal("a gathered buffer's size overflows".into()))?;
    let mut block = pool.acquire(bytes)?;
    let out = block.bytes_mut();
    // SAFETY: pool blocks are aligned to at least 64 bytes (`HostAllocator`'s contract), enough
    // for any native type; the block holds `len * size_of::<T>()` bytes; every bit pattern is a
    // valid `T`.
    let typed = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<T>(), len) };
    fill(typed);
    Ok(block.into_buffer())
}

/// The gathered array of the sources' type.
fn build(
    sources: &[ArrayData],
    len: usize,
    buffers: Vec<Buffer>,
    child_data: Vec<ArrayData>,
    nulls: Option<NullBuffer>,
) -> Result<Option<ArrayData>> {
    let builder = ArrayData::builder(sources[0].data_type().clone())
        .len(len)
        .buffers(buffers)
        .child_data(child_data)
        .nulls(nulls);
    // SAFETY: the buffers were copied row by row from valid arrays of this type: offsets are
    // monotonic and end at the values' length, utf8 rows are whole (valid) strings, dictionary
    // keys index the dictionary they came with, and the validity covers `len` rows.
    Ok(Some(unsafe { builder.build_unchecked() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::{
        BooleanArray, DictionaryArray, FixedSizeListArray, Int64Array, LargeStringArray, ListArray,
        StringArray,
    };
    use arrow_schema::{Field, Schema};
    use arrow_select::interleave::interleave_record_batch;

    use crate::runtime::pool::HeapAllocator;

    fn pool() -> HostPool {
        BlockPool::new(Arc::new(HeapAllocator) as Arc<dyn HostAllocator>)
    }

    fn chunk(base: i64, len: usize, offset: usize) -> RecordBatch {
        let n = len + offset;
        let ints = Int64Array::from_iter((0..n).map(|i| (i % 3 != 0).then_some(base + i as i64)));
        let strings = StringArray::from_iter(
            (0..n).map(|i| (i % 5 != 1).then(|| format!("s{}", base as usize + i).repeat(i % 4))),
        );
        let large = LargeStringArray::from_iter_values((0..n).map(|i| format!("L{i}")));
        let bools = BooleanArray::from_iter((0..n).map(|i| (i % 7 != 2).then_some(i % 2 == 0)));
        let fsl = FixedSizeListArray::from_iter_primitive::<arrow_array::types::Float32Type, _, _>(
            (0..n).map(|i| (i % 4 != 3).then(|| vec![Some(i as f32), Some(base as f32)])),
            2,
        );
        let dict: DictionaryArray<Int32Type> = (0..n)
            .map(|i| ["a", "b", "c"][i % 3])
            .collect::<DictionaryArray<Int32Type>>();
        let list = ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(
            (0..n).map(|i| (i % 6 != 0).then(|| vec![Some(i as i32); i % 3])),
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("l", DataType::LargeUtf8, false),
            Field::new("b", DataType::Boolean, true),
            Field::new("f", fsl.data_type().clone(), true),
            Field::new("d", dict.data_type().clone(), false),
            Field::new("list", list.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(ints),
                Arc::new(strings),
                Arc::new(large),
                Arc::new(bools),
                Arc::new(fsl),
                Arc::new(dict),
                Arc::new(list),
            ],
        )
        .unwrap();
        // Sliced: every column has a non-zero offset (bit offsets not a multiple of 8).
        batch.slice(offset, len)
    }

    #[test]
    fn the_kernel_matches_interleave_on_every_covered_type() {
        let batches = vec![chunk(0, 300, 3), chunk(1000, 200, 5), chunk(5000, 150, 0)];
        let mut indices = Vec::new();
        let mut state = 12345u64;
        for _ in 0..1000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let slot = (state >> 33) as usize % 3;
            let row = (state >> 40) as usize % batches[slot].num_rows();
            indices.push((slot, row));
        }
        let pool = pool();
        let gathered = gather_batch(&batches, &indices, &pool).unwrap();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let expected = interleave_record_batch(&refs, &indices).unwrap();
        assert_eq!(gathered.batch, expected);
        // The list column fell back; the dictionaries differ per chunk (built separately).
        assert!(!gathered.pooled);
        for column in gathered.batch.columns() {
            column.to_data().validate_full().unwrap();
        }
        assert!(pool.stats().in_use_bytes > 0);
        drop(gathered);
        assert_eq!(pool.stats().in_use_bytes, 0);
    }

    #[test]
    fn a_shared_dictionary_is_kept_and_its_keys_gathered() {
        let dict: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("y"), Some("x")]
            .into_iter()
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "d",
            dict.data_type().clone(),
            true,
        )]));
        let whole = RecordBatch::try_new(schema, vec![Arc::new(dict)]).unwrap();
        let batches = vec![whole.slice(0, 2), whole.slice(1, 3)];
        let indices = [(1, 2), (0, 1), (0, 0), (1, 1)];
        let gathered = gather_batch(&batches, &indices, &pool()).unwrap();
        assert!(gathered.pooled);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        assert_eq!(
            gathered.batch,
            interleave_record_batch(&refs, &indices).unwrap()
        );
        let column = gathered.batch.column(0).as_dictionary::<Int32Type>();
        assert_eq!(column.values().len(), 2);
    }

    #[test]
    fn out_of_bounds_indices_are_refused() {
        let batches = vec![chunk(0, 10, 0)];
        let error = gather_batch(&batches, &[(0, 10)], &pool()).unwrap_err();
        assert!(error.to_string().contains("outside"), "{error}");
        let error = gather_batch(&batches, &[(1, 0)], &pool()).unwrap_err();
        assert!(error.to_string().contains("outside"), "{error}");
    }
}
