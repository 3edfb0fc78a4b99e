//! The loader's device path on the host copy engine: batches staged into slots land in "device"
//! memory in order, column by column at aligned offsets, tensors carry the engine's device and
//! keep the memory until released.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use zenith_core::batch::Batch;
use zenith_core::batch::dlpack::DEVICE_TYPE_CPU;
use zenith_gpu::device_path::{COLUMN_ALIGN, DevicePath, StagedColumn};
use zenith_gpu::dlpack_stream::ConsumerStream;
use zenith_gpu::ring::HostCopyEngine;

fn batch(index: u64, rows: usize) -> Batch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float32, false),
        Field::new("name", DataType::Utf8, false),
    ]));
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

fn path(slots: usize) -> DevicePath<HostCopyEngine> {
    DevicePath::new(
        HostCopyEngine::new().unwrap(),
        0,
        slots,
        Duration::from_secs(10),
    )
    .unwrap()
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
    let mut path = path(3);
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
    let mut path = path(3);
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
fn a_batch_larger_than_the_first_is_refused_with_its_reason() {
    let mut path = path(3);
    path.push(batch(0, 4)).unwrap();
    let error = path.push(batch(1, 400)).unwrap_err().to_string();
    assert!(error.contains("does not fit its device slot"), "{error}");
    assert!(DevicePath::new(HostCopyEngine::new().unwrap(), 0, 2, Duration::from_secs(1)).is_err());
}
