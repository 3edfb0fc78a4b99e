//! The loader's device path on the host copy engine: batches land in "device" memory in order,
//! column by column at aligned offsets, tensors carry the engine's device and keep the memory
//! until released; columns in pinned blocks are copied straight from the batch, the others
//! staged; buffers are sized from the schema, or grow for a larger batch.

mod common;
use common::host_path;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Float32Array, Int64Array, RecordBatch, StringArray, make_array};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use zenith_core::batch::Batch;
use zenith_core::batch::dlpack::{DEVICE_TYPE_CPU, tensor_row_bytes};
use zenith_core::loader::{Loader, LoaderOptions, ShuffleMode};
use zenith_core::runtime::pool::{BlockPool, HeapAllocator, HostAllocator};
use zenith_gpu::device_path::{COLUMN_ALIGN, DevicePath, StagedColumn, batch_bound, staged_size};
use zenith_gpu::dlpack_stream::ConsumerStream;
use zenith_gpu::pinned_ranges::TrackedAllocator;
use zenith_gpu::ring::HostCopyEngine;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float32, false),
        Field::new("name", DataType::Utf8, false),
    ]))
}

fn batch(index: u64, rows: usize) -> Batch {
    let schema = schema();
    let base = index as i64 * 1000;
    let ids = Int64Array::from_iter_values((0..rows as i64).map(|i| base + i));
    let xs = Float32Array::from_iter_values((0..rows).map(|i| i as f32 * 0.5));
    let names = StringArray::from_iter_values((0..rows).map(|i| format!("r{i}")));
    let data =
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(xs), Arc::new(names)]).unwrap();
    Batch {
        data,
        epoch: 0,
        index,
    }
}

fn ids(tensor: &zenith_core::batch::DlpackTensor) -> Vec<i64> {
    tensor
        .bytes()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn batches_land_in_order_with_their_columns_at_aligned_offsets() {
    let mut path = host_path(3);
    for index in 0..2 {
        path.push(batch(index, 10)).unwrap();
    }
    assert_eq!(path.in_flight(), 2);
    for index in 0..2u64 {
        let delivered = path.pop().unwrap().unwrap();
        assert_eq!(delivered.host().index, index);
        let id = delivered
            .column_dlpack("id", ConsumerStream::NoSync)
            .unwrap();
        assert_eq!(id.device().device_type, DEVICE_TYPE_CPU);
        assert_eq!(id.shape(), &[10]);
        assert_eq!(
            ids(&id),
            (0..10).map(|i| index as i64 * 1000 + i).collect::<Vec<_>>()
        );
        let x = delivered
            .column_dlpack("x", ConsumerStream::LegacyDefault)
            .unwrap();
        let xs: Vec<f32> = x
            .bytes()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(xs[3], 1.5);
        let base = id.as_dl_tensor().data as usize;
        assert_eq!((x.as_dl_tensor().data as usize - base) % COLUMN_ALIGN, 0);
        // A string column has no tensor form: a clear error naming it.
        let error = delivered
            .column_dlpack("name", ConsumerStream::NoSync)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`name` is not on the device"), "{error}");
        assert!(matches!(
            delivered.columns()[2],
            StagedColumn::NotATensor { .. }
        ));
        let error = delivered
            .column_dlpack("nope", ConsumerStream::NoSync)
            .unwrap_err()
            .to_string();
        assert!(error.contains("its columns: id, x, name"), "{error}");
    }
    assert!(path.pop().unwrap().is_none());
    assert_eq!(path.stats().copies, 2);
}

#[test]
fn a_tensor_keeps_its_device_memory_after_the_batch_is_gone() {
    // Three slots, three device buffers: the consumer holds the first batch's tensor while more
    // batches stream through; its bytes are not overwritten.
    let mut path = host_path(3);
    path.push(batch(0, 8)).unwrap();
    let first = path.pop().unwrap().unwrap();
    let tensor = first.column_dlpack("id", ConsumerStream::NoSync).unwrap();
    drop(first);
    for index in 1..6 {
        path.push(batch(index, 8)).unwrap();
        let delivered = path.pop().unwrap().unwrap();
        let id = delivered
            .column_dlpack("id", ConsumerStream::NoSync)
            .unwrap();
        assert_eq!(ids(&id)[0], index as i64 * 1000);
    }
    assert_eq!(ids(&tensor), (0..8).collect::<Vec<_>>());
    // Two buffers cycled for the later batches while the held one stayed put.
    assert!(path.stats().device_buffers_allocated <= 3);
}

#[test]
fn a_consumer_holding_every_buffer_gets_a_clear_error_not_a_hang() {
    let mut path = DevicePath::new(
        HostCopyEngine::new().unwrap(),
        0,
        3,
        Duration::from_millis(50),
    )
    .unwrap();
    let mut held = Vec::new();
    for index in 0..3 {
        path.push(batch(index, 4)).unwrap();
        held.push(path.pop().unwrap().unwrap());
    }
    let error = path.push(batch(3, 4)).unwrap_err().to_string();
    assert!(error.contains("release device memory"), "{error}");
    held.clear();
    path.push(batch(4, 4)).unwrap();
    assert_eq!(path.pop().unwrap().unwrap().host().index, 4);
}

#[test]
fn a_last_smaller_then_later_larger_batch_grows_the_buffers_in_order() {
    // No shape given: the first batch sizes the ring; a smaller one fits, a larger one grows
    // the buffer it lands in (released ones only), and every batch's bytes are right.
    let mut path = host_path(3);
    let sizes = [4usize, 4, 2, 400, 3, 1000, 400];
    let mut held = Vec::new();
    for (index, &rows) in sizes.iter().enumerate() {
        path.push(batch(index as u64, rows)).unwrap();
        let delivered = path.pop().unwrap().unwrap();
        let id = delivered
            .column_dlpack("id", ConsumerStream::NoSync)
            .unwrap();
        assert_eq!(id.shape(), &[rows as i64]);
        assert_eq!(
            ids(&id),
            (0..rows as i64)
                .map(|i| index as i64 * 1000 + i)
                .collect::<Vec<_>>()
        );
        // The consumer keeps the 400-row batch's tensor while later batches stream through.
        if rows == 400 && held.is_empty() {
            held.push(id);
        }
    }
    assert_eq!(ids(&held[0])[399], 3 * 1000 + 399);
    let stats = path.stats();
    assert_eq!(stats.copies, sizes.len() as u64);
    assert!(stats.device_buffers_grown >= 2, "{stats:?}");
    assert!(stats.device_buffers_allocated <= 3, "{stats:?}");
    assert!(DevicePath::new(HostCopyEngine::new().unwrap(), 0, 2, Duration::from_secs(1)).is_err());
}

#[test]
fn a_shape_sizes_the_buffers_exactly_so_full_and_last_batches_never_grow() {
    let schema = schema();
    let bound = batch_bound(&schema, 100).unwrap();
    // id: 800 bytes at 0, x: 400 bytes at 1024; the string column takes no device bytes.
    assert_eq!(bound, 1024 + 512);
    assert_eq!(staged_size(&batch(0, 100)).unwrap(), bound);
    assert_eq!(tensor_row_bytes(&DataType::Utf8), None);
    let mut path = host_path(3);
    path.set_batch_shape(&schema, 100).unwrap();
    for (index, rows) in [100usize, 100, 37].into_iter().enumerate() {
        path.push(batch(index as u64, rows)).unwrap();
        let delivered = path.pop().unwrap().unwrap();
        assert_eq!(delivered.host().data.num_rows(), rows);
    }
    assert_eq!(path.ring_config().unwrap().slot_bytes, bound);
    let stats = path.stats();
    assert_eq!((stats.device_buffers_grown, stats.staging_grown), (0, 0));
    // A batch past the shape (a stage that adds rows) still lands: its buffer grows.
    path.push(batch(3, 150)).unwrap();
    let delivered = path.pop().unwrap().unwrap();
    let id = delivered
        .column_dlpack("id", ConsumerStream::NoSync)
        .unwrap();
    assert_eq!(ids(&id)[149], 3149);
    assert_eq!(path.stats().device_buffers_grown, 1);
    // The shape is fixed once the ring exists.
    assert!(path.set_batch_shape(&schema, 10).is_err());
}

#[test]
fn tensor_row_bytes_match_what_the_export_copies() {
    let fixed = DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float16, false)), 3);
    assert_eq!(tensor_row_bytes(&fixed), Some(6));
    assert_eq!(tensor_row_bytes(&DataType::FixedSizeBinary(5)), Some(5));
    assert_eq!(tensor_row_bytes(&DataType::Boolean), Some(1));
    assert_eq!(tensor_row_bytes(&DataType::Float64), Some(8));
    let data = batch(0, 7);
    for (i, field) in data.data.schema().fields().iter().enumerate() {
        let exported =
            zenith_core::batch::export_column(field.name(), data.data.column(i).as_ref());
        match (tensor_row_bytes(field.data_type()), exported) {
            (Some(per_row), Ok(tensor)) => assert_eq!(tensor.bytes().len(), 7 * per_row),
            (None, Err(_)) => {}
            (bytes, exported) => panic!("{}: {bytes:?} vs {:?}", field.name(), exported.is_ok()),
        }
    }
}

/// An Int64 column of `values` whose buffer is a block of `pool`.
fn pooled_ids<A: HostAllocator>(pool: &BlockPool<A>, values: &[i64]) -> Arc<dyn Array> {
    let mut block = pool.acquire(values.len() * 8).unwrap();
    for (chunk, value) in block.bytes_mut().chunks_exact_mut(8).zip(values) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    let data = ArrayData::builder(DataType::Int64)
        .len(values.len())
        .add_buffer(block.into_buffer())
        .build()
        .unwrap();
    make_array(data)
}

#[test]
fn pinned_columns_are_copied_straight_and_the_others_staged() {
    let allocator = TrackedAllocator::new(HeapAllocator);
    let ranges = allocator.ranges();
    let pool = BlockPool::new(allocator);
    let mut path = host_path(3);
    path.set_pinned_ranges(ranges);
    // A batch on the heap is staged.
    path.push(batch(0, 1)).unwrap();
    drop(path.pop().unwrap().unwrap());
    let stats = path.stats();
    assert_eq!((stats.direct_bytes, stats.staged_bytes), (0, 8 + 4));
    // A batch whose `id` is in a pinned block and whose `x` is on the heap: one of each.
    let values: Vec<i64> = (0..50).map(|i| i * 3).collect();
    let xs = Float32Array::from_iter_values((0..50).map(|i| i as f32));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float32, false),
    ]));
    let data =
        RecordBatch::try_new(schema, vec![pooled_ids(&pool, &values), Arc::new(xs)]).unwrap();
    path.push(Batch {
        data,
        epoch: 0,
        index: 1,
    })
    .unwrap();
    let delivered = path.pop().unwrap().unwrap();
    let id = delivered
        .column_dlpack("id", ConsumerStream::NoSync)
        .unwrap();
    assert_eq!(ids(&id), values);
    let x = delivered
        .column_dlpack("x", ConsumerStream::NoSync)
        .unwrap();
    assert_eq!(&x.bytes()[4..8], &1f32.to_le_bytes());
    let stats = path.stats();
    assert_eq!(stats.direct_bytes, 400);
    assert_eq!(stats.staged_bytes, 12 + 200);
    assert_eq!(stats.bytes, stats.direct_bytes + stats.staged_bytes);
}

/// Every batch of one epoch through `path`; the ids delivered, in order.
fn drain(loader: &Loader, path: &mut DevicePath<HostCopyEngine>) -> Vec<i64> {
    let mut delivered = Vec::new();
    loop {
        path.fill(|| loader.next_batch()).unwrap();
        let Some(batch) = path.pop().unwrap() else {
            return delivered;
        };
        let expected = common::host_ids(&batch);
        let id = batch.column_dlpack("id", ConsumerStream::NoSync).unwrap();
        assert_eq!(ids(&id), expected);
        delivered.extend(expected);
    }
}

#[test]
fn a_loader_on_a_pinned_pool_delivers_its_batches_without_staging_and_views_staged() {
    // (order, every batch copied into the pool by the workers, copied straight to the device)
    for (shuffle, every_batch, direct) in [
        (ShuffleMode::Global, false, true),
        (ShuffleMode::None, false, false),
        (ShuffleMode::None, true, true),
    ] {
        let allocator = TrackedAllocator::new(HeapAllocator);
        let ranges = allocator.ranges();
        let mut options = LoaderOptions::default();
        options.set_pool_every_batch(every_batch);
        options.set_batch_size(48).unwrap();
        options.set_shuffle(shuffle);
        options.set_num_workers(2).unwrap();
        options.set_host_allocator(Some(Arc::new(allocator) as Arc<dyn HostAllocator>));
        let chunks = (0..4).map(|i| batch(i, 64).data).collect();
        let loader = common::held_loader(chunks, &options);
        let mut path = host_path(3);
        path.set_pinned_ranges(ranges);
        path.set_batch_shape(&loader.schema(), 48).unwrap();
        let mut ids = drain(&loader, &mut path);
        assert_eq!(ids.len(), 256);
        ids.sort_unstable();
        let mut expected: Vec<i64> = (0..4)
            .flat_map(|c| (0..64).map(move |i| c * 1000 + i))
            .collect();
        expected.sort_unstable();
        assert_eq!(ids, expected, "{shuffle:?}");
        let stats = path.stats();
        // 256 rows of id (8 bytes) and x (4 bytes).
        assert_eq!(stats.bytes, 256 * 12, "{shuffle:?}");
        if direct {
            // Gathered (or copied by the workers) into the pinned pool: nothing staged.
            assert_eq!((stats.direct_bytes, stats.staged_bytes), (256 * 12, 0));
            assert_eq!(stats.staging_grown, 0);
        } else {
            // Zero-copy views of the held (heap) chunks: every byte staged on the way.
            assert_eq!((stats.direct_bytes, stats.staged_bytes), (0, 256 * 12));
        }
        assert_eq!(stats.device_buffers_grown, 0, "{shuffle:?}");
    }
}
