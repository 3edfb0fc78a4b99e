//! The gather kernel: a shuffled batch's rows written column by column straight into pooled
//! output buffers, instead of arrow's generic `interleave` (which builds each column through
//! per-type builders and growable buffers).
//!
//! Per column:
//! - fixed-width values (every type with a primitive width, fixed-size binary, fixed-size lists of
//!   such values without child nulls) are one indexed copy loop of `width`-byte rows; the widths
//!   1, 2, 4, 8, 16, 32, 64, 128, 256 and 512 are compiled as constant-size moves (wide rows as
//!   unrolled 32-byte moves), other widths copy with `memcpy`;
//! - variable-width values (utf8, binary and their large variants) take two passes: lengths into
//!   offsets (remembering where each row's bytes start), then the bytes into one buffer sized by
//!   the first pass; short values move as one 16-byte load and store where both sides have room;
//! - booleans and validity bitmaps are gathered bit by bit into 64-bit words written whole; the
//!   sources' bit offsets (sliced arrays) are honoured; a column none of whose sources has a null
//!   gets no validity and costs nothing;
//! - dictionaries gather their keys when every chunk shares one dictionary, which the output
//!   keeps;
//! - anything else (lists, structs, maps, unions, dictionaries that differ between chunks) falls
//!   back to arrow's `interleave`, column by column.
//!
//! The indices are checked once per batch ([`gather_batch`]); the copy loops then index without
//! bounds checks. A shuffled batch reads rows scattered over chunks far larger than the caches,
//! so each loop prefetches (x86-64) every cache line of the row [`PREFETCH_LINES`] lines ahead of
//! the copy, starting before its first row: the loop waits for memory as little as the core's
//! outstanding misses allow.
//!
//! Output buffers come from a [`HostPool`]: they return to it when the consumer releases the
//! batch (the last reference to the Arrow buffer drops), so a steady state allocates nothing, and
//! the pool's allocator decides where the batch lives (the heap, a NUMA node, pinned memory).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, GenericBinaryArray, GenericStringArray, OffsetSizeTrait, RecordBatch,
    RecordBatchOptions, downcast_primitive_array, make_array,
};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, Buffer, NullBuffer};
use arrow_data::ArrayData;
use arrow_schema::DataType;
use arrow_select::interleave::interleave;

use crate::error::{Error, Result};
use crate::runtime::pool::{BlockPool, HostAllocator};

/// The pool batch buffers come from, over any host allocator.
pub type HostPool = BlockPool<Arc<dyn HostAllocator>>;

/// How many cache lines of source rows are prefetched ahead of the copy: enough to keep the
/// core's miss buffers busy on rows scattered over memory, few enough to stay in the L1 cache.
pub const PREFETCH_LINES: usize = 32;

/// The cache line the prefetches step by.
const CACHE_LINE: usize = 64;

/// The most bytes a short variable-width value may have to move as one 16-byte load and store.
const SHORT_VALUE: usize = 16;

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
    // Checked once here, so the per-column loops can index without checks.
    let rows: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    if let Some((slot, row)) = indices
        .iter()
        .find(|&&(slot, row)| rows.get(slot).is_none_or(|&n| row >= n))
    {
        return Err(Error::Internal(format!(
            "gather index ({slot}, {row}) outside its source batches"
        )));
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
    // The sources are read through their typed arrays, not `to_data()`: an `ArrayData` clone
    // per chunk and column is most of a batch's fixed cost when it reads many chunks.
    let sources = arrays;
    let built = match data_type {
        DataType::Utf8 | DataType::Binary => gather_var_width::<i32>(sources, indices, pool)?,
        DataType::LargeUtf8 | DataType::LargeBinary => {
            gather_var_width::<i64>(sources, indices, pool)?
        }
        DataType::Boolean => gather_boolean(sources, indices, pool)?,
        DataType::FixedSizeBinary(width) => {
            let width = usize::try_from(*width).unwrap_or(0);
            gather_fixed_width(sources, indices, pool, width, data_type, Vec::new())?
        }
        DataType::FixedSizeList(_, size) => gather_fixed_size_list(sources, indices, pool, *size)?,
        DataType::Dictionary(key, _) => gather_dictionary(sources, indices, pool, key)?,
        other => match other.primitive_width() {
            Some(width) => {
                gather_fixed_width(sources, indices, pool, width, data_type, Vec::new())?
            }
            None => None,
        },
    };
    Ok(match built {
        Some(data) => (make_array(data), true),
        None => (interleave(arrays, indices)?, false),
    })
}

/// Fixed-width rows (primitive arrays, fixed-size binary): `width` bytes each; the output is of
/// `data_type` with `child_data` (a dictionary's values).
fn gather_fixed_width(
    sources: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
    width: usize,
    data_type: &DataType,
    child_data: Vec<ArrayData>,
) -> Result<Option<ArrayData>> {
    let Some(bases) = sources
        .iter()
        .map(|a| fixed_row_zero(*a))
        .collect::<Option<Vec<*const u8>>>()
    else {
        return Ok(None);
    };
    if width == 0 {
        return Ok(None);
    }
    let values = gather_rows_bytes(&bases, indices, pool, width)?;
    let nulls = gather_nulls(sources, indices, pool)?;
    build(data_type, indices.len(), vec![values], child_data, nulls)
}

/// Where row 0 of a primitive or fixed-size binary array's values is (its slice offset
/// applied); `None` for other arrays.
fn fixed_row_zero(array: &dyn Array) -> Option<*const u8> {
    if let Some(binary) = array.as_fixed_size_binary_opt() {
        return Some(binary.value_data().as_ptr());
    }
    downcast_primitive_array!(
        array => Some(array.values().as_ptr().cast::<u8>()),
        _ => None
    )
}

/// Fixed-size lists of fixed-width values without child nulls: rows `size` values wide.
fn gather_fixed_size_list(
    sources: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
    size: i32,
) -> Result<Option<ArrayData>> {
    let size = usize::try_from(size).unwrap_or(0);
    let Some(lists) = sources
        .iter()
        .map(|a| a.as_fixed_size_list_opt())
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let child_type = lists[0].value_type();
    let Some(child_width) = child_type.primitive_width() else {
        return Ok(None);
    };
    if size == 0 || lists.iter().any(|l| l.values().null_count() != 0) {
        return Ok(None);
    }
    // A list's values are sliced with it: row 0's values are the child's row 0.
    let Some(bases) = lists
        .iter()
        .map(|l| fixed_row_zero(l.values().as_ref()))
        .collect::<Option<Vec<*const u8>>>()
    else {
        return Ok(None);
    };
    let values = gather_rows_bytes(&bases, indices, pool, child_width * size)?;
    // SAFETY: `values` holds `len * size` values of the child's type, no nulls.
    let child = unsafe {
        ArrayData::builder(child_type)
            .len(indices.len() * size)
            .add_buffer(values)
            .build_unchecked()
    };
    let nulls = gather_nulls(sources, indices, pool)?;
    build(
        sources[0].data_type(),
        indices.len(),
        Vec::new(),
        vec![child],
        nulls,
    )
}

/// Dictionary keys, when every source shares one dictionary (the output keeps it).
fn gather_dictionary(
    sources: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
    key: &DataType,
) -> Result<Option<ArrayData>> {
    let Some(dictionaries) = sources
        .iter()
        .map(|a| a.as_any_dictionary_opt())
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let values = dictionaries[0].values().to_data();
    let shared = dictionaries
        .iter()
        .all(|d| d.values().to_data().ptr_eq(&values));
    let keys: Vec<&dyn Array> = dictionaries.iter().map(|d| d.keys()).collect();
    match key.primitive_width() {
        Some(width) if shared => gather_fixed_width(
            &keys,
            indices,
            pool,
            width,
            sources[0].data_type(),
            vec![values],
        ),
        _ => Ok(None),
    }
}

/// Utf8/binary rows with offsets of type `O`: the lengths into offsets, then the bytes. `None`
/// when the bytes overflow `O` (the fallback reports it).
fn gather_var_width<O: OffsetSizeTrait>(
    sources: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Option<ArrayData>> {
    // Each source's offsets from its first row, and its values buffer.
    let Some(parts) = sources
        .iter()
        .map(|a| byte_parts::<O>(*a))
        .collect::<Option<Vec<(*const O, &[u8])>>>()
    else {
        return Ok(None);
    };
    let (offsets, values): (Vec<*const O>, Vec<&[u8]>) = parts.into_iter().unzip();
    let n = indices.len();
    // Pass 1: lengths into offsets, and each row's move for pass 2.
    let mut moves: Vec<ValueMove> = Vec::with_capacity(n);
    let mut total = 0usize;
    let out_offsets = pooled::<O>(pool, n + 1, |out| {
        let row_offsets = |i: usize| {
            // SAFETY: called with `i < n`; `indices` were checked against the sources' lengths
            // (`gather_batch`): `slot` names a source, whose offsets hold `row + 1` (a valid
            // array has `len + 1` offsets from its offset).
            unsafe {
                let (slot, row) = *indices.get_unchecked(i);
                (slot, offsets.get_unchecked(slot).add(row))
            }
        };
        let moves = moves.spare_capacity_mut();
        out[0] = O::usize_as(0);
        pipelined(
            n,
            rows_ahead(2 * size_of::<O>()),
            |i| prefetch_span(row_offsets(i).1.cast(), 2 * size_of::<O>()),
            |i| {
                let (slot, at) = row_offsets(i);
                // SAFETY: `at` and `at + 1` are offsets of source `slot` (above), which point
                // into its values (a valid array), at most one past their end; `i < n` and
                // `moves` has room for `n`, `out` for `n + 1`.
                unsafe {
                    let (start, end) = ((*at).as_usize(), (*at.add(1)).as_usize());
                    let source = values.get_unchecked(slot);
                    let len = end - start;
                    moves.get_unchecked_mut(i).write(ValueMove {
                        from: source.as_ptr().add(start),
                        len,
                        short: len <= SHORT_VALUE && start + SHORT_VALUE <= source.len(),
                    });
                    total += len;
                    // A sum past `O::MAX` wraps here and is refused after the loop.
                    *out.get_unchecked_mut(i + 1) = O::usize_as(total);
                }
            },
        );
    })?;
    if O::from_usize(total).is_none() {
        return Ok(None);
    }
    // SAFETY: pass 1 wrote all `n` moves.
    unsafe { moves.set_len(n) };
    // Pass 2: the bytes, into a buffer with room for a short value's 16-byte store at its end.
    let out_bytes = pooled::<u8>(pool, total + SHORT_VALUE, |out| {
        let out = out.as_mut_ptr();
        let mut at = 0usize;
        pipelined(
            n,
            rows_ahead(SHORT_VALUE),
            // SAFETY: `i < n`, and `moves` holds `n`.
            |i| prefetch(unsafe { moves.get_unchecked(i) }.from),
            |i| {
                // SAFETY: `i < n`; a move's `len` bytes lie in its source's values (pass 1 read
                // them from valid offsets), and a short move's 16 bytes too (checked in pass 1);
                // `out` holds `total + 16` bytes and the rows before this one filled `at` of
                // the `total`, so `at + len <= total` and `at + 16 <= total + 16`.
                unsafe {
                    let value = moves.get_unchecked(i);
                    let to = out.add(at);
                    if value.short {
                        copy_16(value.from, to);
                    } else {
                        std::ptr::copy_nonoverlapping(value.from, to, value.len);
                    }
                    at += value.len;
                }
            },
        );
    })?;
    let out_bytes = out_bytes.slice_with_length(0, total);
    let nulls = gather_nulls(sources, indices, pool)?;
    build(
        sources[0].data_type(),
        indices.len(),
        vec![out_offsets, out_bytes],
        Vec::new(),
        nulls,
    )
}

/// A utf8 or binary array's offsets (from its first row) and values buffer; `None` for other
/// arrays.
fn byte_parts<O: OffsetSizeTrait>(array: &dyn Array) -> Option<(*const O, &[u8])> {
    let any = array.as_any();
    if let Some(strings) = any.downcast_ref::<GenericStringArray<O>>() {
        return Some((
            strings.value_offsets().as_ptr(),
            strings.values().as_slice(),
        ));
    }
    any.downcast_ref::<GenericBinaryArray<O>>()
        .map(|binary| (binary.value_offsets().as_ptr(), binary.values().as_slice()))
}

/// One variable-width value's bytes to move (pass 2 of [`gather_var_width`]).
struct ValueMove {
    /// Where its bytes start in the source's values.
    from: *const u8,
    /// Its length in bytes.
    len: usize,
    /// At most 16 bytes, with 16 readable from `from`: moved as one 16-byte load and store.
    short: bool,
}

/// Copies 16 bytes as one unaligned load and store (not a `memcpy` call).
///
/// # Safety
/// `src` readable and `dst` writable for 16 bytes, not overlapping.
#[inline(always)]
unsafe fn copy_16(src: *const u8, dst: *mut u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract; SSE2 is part of x86-64.
    unsafe {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
        _mm_storeu_si128(
            dst.cast::<__m128i>(),
            _mm_loadu_si128(src.cast::<__m128i>()),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's contract.
    unsafe {
        std::ptr::copy_nonoverlapping(src, dst, 16);
    }
}

/// Boolean values: the value bits gathered like a validity bitmap.
fn gather_boolean(
    sources: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Option<ArrayData>> {
    let Some(bits) = sources
        .iter()
        .map(|a| {
            a.as_boolean_opt()
                .map(|b| BitSource::Bitmap(b.values().values().as_ptr(), b.values().offset()))
        })
        .collect::<Option<Vec<BitSource>>>()
    else {
        return Ok(None);
    };
    let (values, _) = gather_bits(&bits, indices, pool)?;
    let nulls = gather_nulls(sources, indices, pool)?;
    build(
        sources[0].data_type(),
        indices.len(),
        vec![values],
        Vec::new(),
        nulls,
    )
}

/// The output validity: `None` when no source has a null (as `interleave` does).
fn gather_nulls(
    sources: &[&dyn Array],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<Option<NullBuffer>> {
    if sources.iter().all(|a| a.null_count() == 0) {
        return Ok(None);
    }
    let bits: Vec<BitSource> = sources
        .iter()
        .map(|d| match d.nulls().filter(|n| n.null_count() > 0) {
            Some(n) => BitSource::Bitmap(n.buffer().as_ptr(), n.offset()),
            None => BitSource::AllSet,
        })
        .collect();
    let (buffer, set) = gather_bits(&bits, indices, pool)?;
    let len = indices.len();
    // SAFETY: `set` is the number of valid bits among the first `len` of `buffer`.
    Ok(Some(unsafe {
        NullBuffer::new_unchecked(BooleanBuffer::new(buffer, 0, len), len - set)
    }))
}

/// Where one source's bits come from.
#[derive(Clone, Copy)]
enum BitSource {
    /// Every bit set (a source without nulls).
    AllSet,
    /// A bitmap and the bit its row 0 is at.
    Bitmap(*const u8, usize),
}

/// Bits gathered into 64-bit words written whole; the bits past the last row are zero. Returns
/// the buffer and the number of set bits.
fn gather_bits(
    bits: &[BitSource],
    indices: &[(usize, usize)],
    pool: &HostPool,
) -> Result<(Buffer, usize)> {
    let mut set = 0usize;
    let n = indices.len();
    let words = n.div_ceil(64);
    let bit_at = |i: usize| {
        // SAFETY: called with `i < n`; `indices` were checked (`gather_batch`): `slot` names a
        // source.
        let source = unsafe {
            let (slot, row) = *indices.get_unchecked(i);
            (*bits.get_unchecked(slot), row)
        };
        match source {
            (BitSource::AllSet, _) => None,
            (BitSource::Bitmap(bitmap, offset), row) => Some((bitmap, offset + row)),
        }
    };
    let buffer = pooled::<u64>(pool, words, |out| {
        let mut word = 0u64;
        pipelined(
            n,
            PREFETCH_LINES,
            |i| {
                if let Some((bitmap, at)) = bit_at(i) {
                    prefetch(bitmap.wrapping_add(at >> 3));
                }
            },
            |i| {
                let value = match bit_at(i) {
                    None => 1,
                    Some((bitmap, at)) => {
                        // SAFETY: a valid array's bitmap covers bit `offset + row` of each of
                        // its rows.
                        let byte = unsafe { *bitmap.add(at >> 3) };
                        u64::from((byte >> (at & 7)) & 1)
                    }
                };
                word |= value << (i & 63);
                if i & 63 == 63 || i + 1 == n {
                    set += word.count_ones() as usize;
                    // SAFETY: `i / 64 < words`.
                    unsafe { *out.get_unchecked_mut(i / 64) = word.to_le() };
                    word = 0;
                }
            },
        );
    })?;
    Ok((buffer, set))
}

/// Rows of `width` bytes (`bases[slot] + row * width`) copied in index order into a pooled
/// buffer.
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
    pooled::<u8>(pool, bytes, |out| {
        let out = out.as_mut_ptr();
        // SAFETY: `bases[slot]` points at row 0 of a valid array whose buffer holds its rows
        // of `width` bytes, and every `(slot, row)` is in bounds (`gather_batch`); `out` holds
        // `indices.len() * width` bytes.
        unsafe {
            match width {
                1 => copy_rows::<1>(bases, indices, out),
                2 => copy_rows::<2>(bases, indices, out),
                4 => copy_rows::<4>(bases, indices, out),
                8 => copy_rows::<8>(bases, indices, out),
                16 => copy_rows::<16>(bases, indices, out),
                32 => copy_rows::<32>(bases, indices, out),
                64 => copy_wide_rows::<64>(bases, indices, out),
                128 => copy_wide_rows::<128>(bases, indices, out),
                256 => copy_wide_rows::<256>(bases, indices, out),
                512 => copy_wide_rows::<512>(bases, indices, out),
                _ => copy_rows_of(bases, indices, out, width),
            }
        }
    })
}

/// [`gather_rows_bytes`] for a width known at compile time: constant-size moves.
///
/// # Safety
/// As [`copy_rows_with`], with `W` for `width`.
#[inline(always)]
unsafe fn copy_rows<const W: usize>(bases: &[*const u8], indices: &[(usize, usize)], out: *mut u8) {
    // SAFETY: the caller's contract; `copy_rows_with` hands `copy_const` `W` readable and `W`
    // writable bytes.
    unsafe {
        copy_rows_with(bases, indices, out, W, |from, to| copy_const::<W>(from, to));
    }
}

/// The copy loop of [`gather_rows_bytes`]: each row `i`'s `width` bytes, from
/// `bases[slot] + row * width`, moved by `copy` to `out + i * width`, every line of a row
/// prefetched [`PREFETCH_LINES`] lines ahead.
///
/// # Safety
/// Every `(slot, row)` of `indices` has `slot < bases.len()` and `width` readable bytes at
/// `bases[slot] + row * width`; `out` is writable for `indices.len() * width` bytes; `copy`
/// moves at most `width` bytes.
#[inline(always)]
unsafe fn copy_rows_with(
    bases: &[*const u8],
    indices: &[(usize, usize)],
    out: *mut u8,
    width: usize,
    copy: impl Fn(*const u8, *mut u8),
) {
    // SAFETY: the caller's contract, for `i < indices.len()`.
    let source = |i: usize| unsafe {
        let (slot, row) = *indices.get_unchecked(i);
        bases.get_unchecked(slot).add(row * width)
    };
    pipelined(
        indices.len(),
        rows_ahead(width),
        |i| prefetch_span(source(i), width),
        // SAFETY: as above; row `i` of `out` is in bounds.
        |i| copy(source(i), unsafe { out.add(i * width) }),
    );
}

/// [`copy_rows`] for rows of a line or more: with 32-byte AVX2 moves where the CPU has them
/// (half the instructions of the 16-byte moves x86-64 guarantees).
///
/// # Safety
/// As [`copy_rows_with`], with `W` for `width`.
#[inline(always)]
unsafe fn copy_wide_rows<const W: usize>(
    bases: &[*const u8],
    indices: &[(usize, usize)],
    out: *mut u8,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (just checked); the rest is the caller's contract.
        return unsafe { copy_rows_avx2::<W>(bases, indices, out) };
    }
    // SAFETY: the caller's contract.
    unsafe { copy_rows::<W>(bases, indices, out) }
}

/// [`copy_rows`] compiled for AVX2.
///
/// # Safety
/// As [`copy_rows_with`], with `W` for `width`, on a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_rows_avx2<const W: usize>(
    bases: &[*const u8],
    indices: &[(usize, usize)],
    out: *mut u8,
) {
    // SAFETY: the caller's contract.
    unsafe { copy_rows::<W>(bases, indices, out) }
}

/// [`gather_rows_bytes`] for any width: `memcpy` per row.
///
/// # Safety
/// As [`copy_rows_with`].
unsafe fn copy_rows_of(
    bases: &[*const u8],
    indices: &[(usize, usize)],
    out: *mut u8,
    width: usize,
) {
    // SAFETY: the caller's contract; `copy_rows_with` hands the copy `width` readable and
    // `width` writable bytes.
    unsafe {
        copy_rows_with(bases, indices, out, width, |from, to| {
            std::ptr::copy_nonoverlapping(from, to, width)
        });
    }
}

/// Copies `W` bytes; past 32 bytes as unrolled 32-byte moves (a constant `copy_nonoverlapping`
/// that large would be a `memcpy` call).
///
/// # Safety
/// `src` readable and `dst` writable for `W` bytes, not overlapping.
#[inline(always)]
unsafe fn copy_const<const W: usize>(src: *const u8, dst: *mut u8) {
    // SAFETY: the caller's contract; every move stays within the `W` bytes.
    unsafe {
        if W <= 32 {
            std::ptr::copy_nonoverlapping(src, dst, W);
            return;
        }
        let mut at = 0;
        while at + 32 <= W {
            let chunk = src.add(at).cast::<[u8; 32]>().read_unaligned();
            dst.add(at).cast::<[u8; 32]>().write_unaligned(chunk);
            at += 32;
        }
        if at < W {
            std::ptr::copy_nonoverlapping(src.add(at), dst.add(at), W - at);
        }
    }
}

/// Runs `copy(i)` for each `i` in `0..n` in order, with `fetch(i + ahead)` just before (and
/// `fetch` of the first `ahead` rows up front), so each row's memory is on its way `ahead` rows
/// before it is copied. Neither is called with `i >= n`.
#[inline(always)]
fn pipelined(n: usize, ahead: usize, mut fetch: impl FnMut(usize), mut copy: impl FnMut(usize)) {
    let ahead = ahead.min(n);
    for i in 0..ahead {
        fetch(i);
    }
    let steady = n - ahead;
    for i in 0..steady {
        fetch(i + ahead);
        copy(i);
    }
    for i in steady..n {
        copy(i);
    }
}

/// How many rows of `width` bytes make [`PREFETCH_LINES`] cache lines.
#[inline(always)]
const fn rows_ahead(width: usize) -> usize {
    let lines = width.div_ceil(CACHE_LINE);
    if lines >= PREFETCH_LINES {
        1
    } else {
        PREFETCH_LINES / if lines == 0 { 1 } else { lines }
    }
}

/// Prefetches every cache line of the `len` bytes at `at`.
#[inline(always)]
fn prefetch_span(at: *const u8, len: usize) {
    let mut line = 0;
    while line < len {
        prefetch(at.wrapping_add(line));
        line += CACHE_LINE;
    }
    // The last line, where the span may cross one more line than its length covers (a row of
    // a power-of-two width, at an address aligned to it or to a line, never does).
    if !len.is_power_of_two() {
        prefetch(at.wrapping_add(len - 1));
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

/// The gathered array of `data_type`.
fn build(
    data_type: &DataType,
    len: usize,
    buffers: Vec<Buffer>,
    child_data: Vec<ArrayData>,
    nulls: Option<NullBuffer>,
) -> Result<Option<ArrayData>> {
    let builder = ArrayData::builder(data_type.clone())
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

    /// `count` pseudo-random `(slot, row)` pairs into `batches`, then the last row and the first
    /// row of each (the values nearest the ends of their buffers).
    fn random_indices(batches: &[RecordBatch], count: usize, seed: u64) -> Vec<(usize, usize)> {
        let mut state = seed;
        let mut indices: Vec<(usize, usize)> = (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let slot = (state >> 33) as usize % batches.len();
                (slot, (state >> 40) as usize % batches[slot].num_rows())
            })
            .collect();
        for (slot, batch) in batches.iter().enumerate() {
            indices.push((slot, batch.num_rows() - 1));
            indices.push((slot, 0));
        }
        indices
    }

    /// The kernel's batch equals `interleave`'s, every array is valid, and `pooled` is as
    /// expected; the pool gets every block back.
    fn assert_matches_interleave(
        batches: &[RecordBatch],
        indices: &[(usize, usize)],
        pooled: bool,
    ) {
        let pool = pool();
        let gathered = gather_batch(batches, indices, &pool).unwrap();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let expected = interleave_record_batch(&refs, indices).unwrap();
        assert_eq!(gathered.batch, expected);
        assert_eq!(gathered.pooled, pooled);
        for column in gathered.batch.columns() {
            column.to_data().validate_full().unwrap();
        }
        drop(gathered);
        assert_eq!(pool.stats().in_use_bytes, 0);
    }

    /// One column `name` of `array`, sliced by `offset` rows.
    fn single(name: &str, array: ArrayRef, offset: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            name,
            array.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![array]).unwrap();
        batch.slice(offset, batch.num_rows() - offset)
    }

    #[test]
    fn every_fixed_width_and_wide_row_matches_interleave() {
        // Fixed-size binary of every specialised width and a few others (the `memcpy` path),
        // with and without nulls, sliced and not.
        for width in [
            1usize, 2, 3, 4, 7, 8, 12, 16, 32, 40, 64, 100, 128, 256, 512, 1000,
        ] {
            for with_nulls in [false, true] {
                let batches: Vec<RecordBatch> = (0..5)
                    .map(|c| {
                        let values = (0..40usize).map(|i| {
                            (!with_nulls || i % 5 != 2).then(|| {
                                (0..width)
                                    .map(|b| (i * 31 + b * 7 + c * 13) as u8)
                                    .collect::<Vec<u8>>()
                            })
                        });
                        let array =
                            arrow_array::FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                                values,
                                width as i32,
                            )
                            .unwrap();
                        single("b", Arc::new(array), c % 3)
                    })
                    .collect();
                let indices = random_indices(&batches, 300, width as u64);
                assert_matches_interleave(&batches, &indices, true);
            }
        }
    }

    #[test]
    fn every_primitive_width_matches_interleave() {
        use arrow_array::{
            Decimal128Array, Float64Array, Int8Array, Int16Array, Int32Array, UInt64Array,
        };
        let arrays: Vec<Box<dyn Fn(usize) -> ArrayRef>> = vec![
            Box::new(|c| {
                Arc::new(Int8Array::from_iter(
                    (0..70).map(|i| (i % 4 != 1).then_some((i + c) as i8)),
                ))
            }),
            Box::new(|c| {
                Arc::new(Int16Array::from_iter_values(
                    (0..70).map(|i| (i * c) as i16),
                ))
            }),
            Box::new(|c| {
                Arc::new(Int32Array::from_iter(
                    (0..70).map(|i| (i % 9 != 0).then_some((i * 3 + c) as i32)),
                ))
            }),
            Box::new(|c| {
                Arc::new(UInt64Array::from_iter_values(
                    (0..70).map(|i| (i * c) as u64),
                ))
            }),
            Box::new(|c| {
                Arc::new(Float64Array::from_iter(
                    (0..70).map(|i| (i % 2 == 0).then_some(i as f64 / (c + 1) as f64)),
                ))
            }),
            Box::new(|c| {
                Arc::new(
                    Decimal128Array::from_iter(
                        (0..70).map(|i| (i % 3 != 0).then_some(i * c as i128)),
                    )
                    .with_precision_and_scale(30, 2)
                    .unwrap(),
                )
            }),
        ];
        for make in &arrays {
            let batches: Vec<RecordBatch> = (0..7).map(|c| single("p", make(c), c % 4)).collect();
            let indices = random_indices(&batches, 500, 99);
            assert_matches_interleave(&batches, &indices, true);
        }
    }

    #[test]
    fn wide_rows_copy_the_same_with_and_without_avx2() {
        fn check<const W: usize>() {
            let source: Vec<u8> = (0..W * 9).map(|b| (b * 7 + b / W) as u8).collect();
            let bases = [source.as_ptr(), source[W..].as_ptr()];
            let indices = [(1, 3), (0, 0), (0, 8), (1, 7), (0, 5)];
            let mut plain = vec![0u8; indices.len() * W];
            let mut wide = vec![1u8; indices.len() * W];
            // SAFETY: rows 0..=8 of source 0 and 0..=7 of source 1 lie in `source`; the outputs
            // hold five rows.
            unsafe {
                copy_rows::<W>(&bases, &indices, plain.as_mut_ptr());
                copy_wide_rows::<W>(&bases, &indices, wide.as_mut_ptr());
            }
            let expected: Vec<u8> = indices
                .iter()
                .flat_map(|&(slot, row)| source[(slot + row) * W..][..W].iter().copied())
                .collect();
            assert_eq!(plain, expected);
            assert_eq!(wide, expected);
        }
        check::<64>();
        check::<128>();
        check::<256>();
        check::<512>();
    }

    #[test]
    fn wide_fixed_size_lists_match_interleave() {
        use arrow_array::types::{Float32Type, Int64Type, UInt8Type};
        // 256-byte rows (64 float32), 512-byte rows (64 int64), 3-byte rows (3 uint8); list
        // nulls in some; the lists sliced, so their children start mid-buffer.
        let batches = |make: &dyn Fn(usize) -> ArrayRef| -> Vec<RecordBatch> {
            (0..6).map(|c| single("f", make(c), c % 3)).collect()
        };
        let f32s = batches(&|c| {
            // List nulls over a child without nulls (as pyarrow builds them from arrays and a
            // mask).
            let values =
                arrow_array::Float32Array::from_iter_values((0..50 * 64).map(|v| (v + c) as f32));
            let nulls = NullBuffer::from_iter((0..50).map(|i| i % 7 != 3));
            let field = Arc::new(Field::new_list_field(DataType::Float32, true));
            Arc::new(FixedSizeListArray::new(
                field,
                64,
                Arc::new(values),
                Some(nulls),
            ))
        });
        let i64s = batches(&|c| {
            Arc::new(FixedSizeListArray::from_iter_primitive::<Int64Type, _, _>(
                (0..50).map(|i| {
                    Some(
                        (0..64)
                            .map(|v| Some((v + i * c) as i64))
                            .collect::<Vec<_>>(),
                    )
                }),
                64,
            ))
        });
        let u8s = batches(&|c| {
            Arc::new(FixedSizeListArray::from_iter_primitive::<UInt8Type, _, _>(
                (0..50).map(|i| Some(vec![Some(i as u8), Some(c as u8), Some(7)])),
                3,
            ))
        });
        for batches in [f32s, i64s, u8s] {
            let indices = random_indices(&batches, 400, 5);
            assert_matches_interleave(&batches, &indices, true);
        }
        // Child nulls (arrow-rs's builders put a null child row under each null list): the
        // fallback.
        let with_child_nulls: Vec<RecordBatch> = (0..3)
            .map(|c| {
                let array = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
                    (0..20).map(|i| Some(vec![Some(i as f32), None])),
                    2,
                );
                single("f", Arc::new(array), c)
            })
            .collect();
        let indices = random_indices(&with_child_nulls, 50, 6);
        assert_matches_interleave(&with_child_nulls, &indices, false);
    }

    #[test]
    fn variable_width_values_of_every_length_match_interleave() {
        use arrow_array::{BinaryArray, LargeBinaryArray};
        // Lengths 0..40 (both sides of the 16-byte short move), empty strings, nulls, and values
        // at the very end of their buffers (the last rows, where a 16-byte load would overrun).
        let text = |c: usize| {
            StringArray::from_iter((0..90).map(|i| {
                (i % 11 != 4).then(|| {
                    let len = (i * 7 + c) % 41;
                    (0..len)
                        .map(|b| (b'a' + ((b + i) % 26) as u8) as char)
                        .collect::<String>()
                })
            }))
        };
        let strings: Vec<RecordBatch> = (0..9)
            .map(|c| single("s", Arc::new(text(c)), c % 5))
            .collect();
        let large: Vec<RecordBatch> = (0..9)
            .map(|c| {
                let values: Vec<Option<Vec<u8>>> = (0..60)
                    .map(|i| (i % 6 != 0).then(|| vec![i as u8; (i + c) % 20]))
                    .collect();
                let array = LargeBinaryArray::from_iter(values.iter().map(|v| v.as_deref()));
                single("l", Arc::new(array), c % 2)
            })
            .collect();
        let binary: Vec<RecordBatch> = (0..4)
            .map(|c| {
                // Only short values, the last one ending its buffer.
                let array = BinaryArray::from_iter_values((0..30).map(|i| vec![c as u8; i % 3]));
                single("b", Arc::new(array), c)
            })
            .collect();
        for batches in [strings, large, binary] {
            let indices = random_indices(&batches, 700, 17);
            assert_matches_interleave(&batches, &indices, true);
        }
    }

    #[test]
    fn booleans_and_bitmaps_at_every_bit_offset_match_interleave() {
        for offset in 0..9 {
            let batches: Vec<RecordBatch> = (0..4)
                .map(|c| {
                    let values = BooleanArray::from_iter(
                        (0..150).map(|i| (i % (c + 3) != 0).then_some((i * 7 + c) % 3 == 0)),
                    );
                    single("b", Arc::new(values), offset)
                })
                .collect();
            // 64-row words, a last partial word.
            let indices = random_indices(&batches, 64 * 5 + 13, offset as u64);
            assert_matches_interleave(&batches, &indices, true);
        }
        // Some sources with nulls, some without: the ones without count as all valid.
        let mixed = vec![
            single("i", Arc::new(Int64Array::from_iter_values(0..40)), 1),
            single(
                "i",
                Arc::new(Int64Array::from_iter(
                    (0..40).map(|i| (i % 3 == 0).then_some(i)),
                )),
                2,
            ),
        ];
        let indices = random_indices(&mixed, 100, 3);
        assert_matches_interleave(&mixed, &indices, true);
    }

    #[test]
    fn empty_batches_and_batches_over_many_chunks_match_interleave() {
        let batches: Vec<RecordBatch> = (0..40)
            .map(|c| chunk(c as i64 * 100, 7 + c % 5, c % 4))
            .collect();
        assert_matches_interleave(&batches, &[], false);
        // Rows from every chunk, in shuffled order, each chunk visited many times.
        let indices = random_indices(&batches, 3000, 77);
        assert_matches_interleave(&batches, &indices, false);
        // The columns the kernel takes (the fixed-size lists there have child nulls, the
        // dictionaries differ per chunk and the lists are nested: those fall back).
        let kernel_only: Vec<RecordBatch> = batches
            .iter()
            .map(|b| b.project(&[0, 1, 2, 3]).unwrap())
            .collect();
        assert_matches_interleave(&kernel_only, &[], true);
        assert_matches_interleave(&kernel_only, &indices, true);
    }

    #[test]
    fn nested_lists_fall_back_with_the_same_rows() {
        let inner = ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..30).map(|i| (i % 4 != 0).then(|| vec![Some(i as i32); i % 3])),
        );
        let offsets = arrow_buffer::OffsetBuffer::from_lengths((0..10).map(|i| i % 4));
        let field = Arc::new(Field::new_list_field(inner.data_type().clone(), true));
        let nested = ListArray::new(field, offsets, Arc::new(inner.slice(0, 18)), None);
        let batches: Vec<RecordBatch> = (0..3)
            .map(|c| single("n", Arc::new(nested.clone()), c))
            .collect();
        let indices = random_indices(&batches, 40, 8);
        assert_matches_interleave(&batches, &indices, false);
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
