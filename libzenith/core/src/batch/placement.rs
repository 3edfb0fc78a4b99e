//! Placing a delivered batch's memory: a copy of a batch whose buffers all live in one
//! allocation on a NUMA node (the loader's workers place gathered batches this way), or in one
//! block of the loader's batch pool (pinned memory: batches the gather kernel did not write).

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, make_array};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow_data::ArrayData;

use crate::batch::gather_kernel::HostPool;
use crate::error::{Error, Result};
use crate::runtime::alloc::NumaAllocation;

/// Offsets of buffers inside a batch's allocation are multiples of this (Arrow's alignment).
const ALIGNMENT: usize = 64;

/// A copy of `batch` whose buffers all live in one allocation on `node`.
pub fn copy_to_node(batch: &RecordBatch, node: u32) -> Result<RecordBatch> {
    copy_into(batch, &format!("NUMA node {node}"), |total, fill| {
        let mut allocation = NumaAllocation::new(total, Some(node), 0)?;
        fill(allocation.as_mut_slice());
        Ok(NumaAllocation::buffer(&Arc::new(allocation), 0, total))
    })
}

/// A copy of `batch` whose buffers all live in one block of `pool` (returned to the pool when
/// the last of them drops).
pub fn copy_to_pool(batch: &RecordBatch, pool: &HostPool) -> Result<RecordBatch> {
    copy_into(batch, "the batch pool", |total, fill| {
        let mut block = pool.acquire(total)?;
        fill(block.bytes_mut());
        Ok(block.into_buffer())
    })
}

/// A copy of `batch` in one piece of memory (`place` names it for errors): `allocate(total,
/// fill)` gets `total` bytes, lets `fill` write the buffers into them and returns a buffer over
/// all of them, which the copy's buffers are slices of.
fn copy_into(
    batch: &RecordBatch,
    place: &str,
    allocate: impl FnOnce(usize, &mut dyn FnMut(&mut [u8])) -> Result<Buffer>,
) -> Result<RecordBatch> {
    let columns: Vec<ArrayData> = batch.columns().iter().map(|c| c.to_data()).collect();
    let mut pieces: Vec<&[u8]> = Vec::new();
    for data in &columns {
        collect_buffers(data, &mut pieces);
    }
    let total: usize = pieces
        .iter()
        .map(|p| p.len().next_multiple_of(ALIGNMENT))
        .sum();
    if total == 0 {
        return Ok(batch.clone());
    }
    let mut spans = Vec::with_capacity(pieces.len());
    let whole = allocate(total, &mut |memory: &mut [u8]| {
        let mut offset = 0;
        for piece in &pieces {
            memory[offset..offset + piece.len()].copy_from_slice(piece);
            spans.push((offset, piece.len()));
            offset += piece.len().next_multiple_of(ALIGNMENT);
        }
    })?;
    let mut spans = spans.into_iter();
    let mut next_buffer = || {
        let (offset, len) = spans.next().expect("one span per buffer collected");
        whole.slice_with_length(offset, len)
    };
    let arrays = columns
        .iter()
        .map(|data| make_array(rebuild(data, &mut next_buffer)))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(batch.schema(), arrays, &options)
        .map_err(|e| Error::Internal(format!("rebuilding a batch in {place}: {e}")))
}

/// The bytes of every buffer of `data` and its children, in the order [`rebuild`] takes them:
/// validity bitmap, buffers, then children.
fn collect_buffers<'a>(data: &'a ArrayData, out: &mut Vec<&'a [u8]>) {
    if let Some(nulls) = data.nulls() {
        out.push(nulls.buffer().as_slice());
    }
    for buffer in data.buffers() {
        out.push(buffer.as_slice());
    }
    for child in data.child_data() {
        collect_buffers(child, out);
    }
}

/// `data` with each buffer replaced by the next one `next_buffer` yields (same bytes).
fn rebuild(data: &ArrayData, next_buffer: &mut impl FnMut() -> Buffer) -> ArrayData {
    let nulls = data.nulls().map(|nulls| {
        let bits = BooleanBuffer::new(next_buffer(), nulls.offset(), nulls.len());
        // SAFETY: the same bits as `nulls`, whose null count is therefore right.
        unsafe { NullBuffer::new_unchecked(bits, nulls.null_count()) }
    });
    let buffers = data.buffers().iter().map(|_| next_buffer()).collect();
    let children = data
        .child_data()
        .iter()
        .map(|child| rebuild(child, next_buffer))
        .collect();
    let builder = ArrayData::builder(data.data_type().clone())
        .len(data.len())
        .offset(data.offset())
        .nulls(nulls)
        .buffers(buffers)
        .child_data(children);
    // SAFETY: a byte-for-byte copy of valid `data` with the same type, length, offset and
    // layout; the buffers are 64-byte aligned.
    unsafe { builder.build_unchecked() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Int64Array, ListArray, StringArray, StructArray, types::Int32Type,
    };
    use arrow_schema::{DataType, Field};

    #[test]
    fn a_copied_batch_equals_the_original_and_lives_in_one_allocation() {
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("bc"), None]));
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]));
        let nested: ArrayRef = Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![7, 8, 9])) as ArrayRef,
        )]));
        let batch = RecordBatch::try_from_iter([
            ("id", ids),
            ("name", names),
            ("list", lists),
            ("nested", nested),
        ])
        .unwrap()
        .slice(1, 2);
        let copy = copy_to_node(&batch, 0).unwrap();
        assert_eq!(copy, batch);
        for column in copy.columns() {
            for buffer in column.to_data().buffers() {
                assert_eq!(buffer.as_ptr() as usize % ALIGNMENT, 0);
            }
        }
        copy.columns()
            .iter()
            .for_each(|c| c.to_data().validate_full().unwrap());
    }

    #[test]
    fn a_batch_copied_into_the_pool_lives_in_one_block_until_released() {
        use crate::runtime::pool::{BlockPool, HeapAllocator, HostAllocator};
        let pool: HostPool = BlockPool::new(Arc::new(HeapAllocator) as Arc<dyn HostAllocator>);
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)]));
        let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "bc", "", "d"]));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)])
            .unwrap()
            .slice(1, 3);
        let copy = copy_to_pool(&batch, &pool).unwrap();
        assert_eq!(copy, batch);
        copy.columns()
            .iter()
            .for_each(|c| c.to_data().validate_full().unwrap());
        let stats = pool.stats();
        assert_eq!((stats.allocations, stats.in_use_bytes), (1, 4096));
        drop(copy);
        assert_eq!(pool.stats().in_use_bytes, 0);
    }

    #[test]
    fn batches_without_bytes_are_returned_as_they_are() {
        let batch = RecordBatch::try_new_with_options(
            Arc::new(arrow_schema::Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(5)),
        )
        .unwrap();
        assert_eq!(copy_to_node(&batch, 0).unwrap().num_rows(), 5);
    }
}
