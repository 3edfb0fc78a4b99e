//! Arrow C Device export of batches delivered on the host copy engine: the struct array's
//! children point into the "device" memory at the columns' offsets, non-device columns are
//! refused by name, and the memory stays untouched until the array is released.

mod common;
use common::host_path;

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{
    Array, BooleanArray, FixedSizeBinaryArray, Float32Array, Int64Array, RecordBatch, StringArray,
    StructArray,
};
use zenith_core::Error;
use zenith_core::batch::Batch;
use zenith_gpu::device_array::{ARROW_DEVICE_CPU, ArrowDeviceArray};
use zenith_gpu::device_export::export_device_array;
use zenith_gpu::dlpack_stream::ConsumerStream;

fn batch(index: u64, rows: usize) -> Batch {
    let base = index as i64 * 1000;
    let ids = Int64Array::from_iter_values((0..rows as i64).map(|i| base + i));
    let xs = Float32Array::from_iter_values((0..rows).map(|i| i as f32 * 0.5));
    let mut vectors = FixedSizeListBuilder::new(Float32Builder::new(), 3);
    for i in 0..rows {
        for j in 0..3 {
            vectors.values().append_value((i * 3 + j) as f32);
        }
        vectors.append(true);
    }
    let vectors = vectors.finish();
    let keys = FixedSizeBinaryArray::try_from_iter((0..rows).map(|i| [i as u8, 0xab])).unwrap();
    let names = StringArray::from_iter_values((0..rows).map(|i| format!("r{i}")));
    let flags = BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0)));
    let data = RecordBatch::try_from_iter([
        ("id", Arc::new(ids) as _),
        ("x", Arc::new(xs) as _),
        ("vec", Arc::new(vectors) as _),
        ("key", Arc::new(keys) as _),
        ("name", Arc::new(names) as _),
        ("flag", Arc::new(flags) as _),
    ])
    .unwrap();
    Batch {
        data,
        epoch: 0,
        index,
    }
}

/// Imports the exported array the way a C Data Interface consumer does.
fn import(exported: ArrowDeviceArray, schema: &arrow_schema::ffi::FFI_ArrowSchema) -> StructArray {
    // SAFETY: an array and its schema just exported; `from_ffi` takes the array.
    let data = unsafe { arrow_array::ffi::from_ffi(exported.array, schema) }.unwrap();
    StructArray::from(data)
}

const TENSOR_COLUMNS: [&str; 4] = ["id", "x", "vec", "key"];

#[test]
fn tensor_columns_export_as_children_pointing_into_device_memory() {
    let mut path = host_path(3);
    path.push(batch(0, 10)).unwrap();
    let delivered = path.pop().unwrap().unwrap();
    let (exported, schema) =
        export_device_array(&delivered, Some(&TENSOR_COLUMNS), ConsumerStream::NoSync).unwrap();
    assert_eq!(exported.device_type, ARROW_DEVICE_CPU);
    assert_eq!(exported.device_id, 0);
    assert!(exported.sync_event.is_null(), "the host engine waited");
    assert_eq!(exported.reserved, [0; 3]);
    assert_eq!(exported.array.len(), 10);
    assert_eq!(exported.array.num_children(), 4);
    // The id child's data buffer is the id tensor's device address (buffer 1; 0 = validity).
    let id_tensor = delivered
        .column_dlpack("id", ConsumerStream::NoSync)
        .unwrap();
    let id_child = exported.array.child(0);
    assert!(id_child.buffer(0).is_null(), "no validity buffer");
    assert_eq!(
        id_child.buffer(1) as usize,
        id_tensor.bytes().as_ptr() as usize
    );
    let host = batch(0, 10).data;
    let imported = import(exported, &schema);
    assert_eq!(imported.num_columns(), 4);
    for (i, name) in TENSOR_COLUMNS.iter().enumerate() {
        let expected = host.column_by_name(name).unwrap();
        assert_eq!(imported.column(i).to_data(), expected.to_data(), "{name}");
    }
    assert_eq!(imported.fields()[2].data_type(), host.column(2).data_type());
}

#[test]
fn columns_not_on_the_device_are_refused_by_name() {
    let mut path = host_path(3);
    path.push(batch(0, 4)).unwrap();
    let delivered = path.pop().unwrap().unwrap();
    let error = export_device_array(&delivered, None, ConsumerStream::NoSync).unwrap_err();
    let Error::Unsupported(message) = error else {
        panic!("{error:?}");
    };
    assert!(message.contains("`name` (not on the device"), "{message}");
    assert!(message.contains("`flag` (bools are one byte"), "{message}");
    assert!(!message.contains("`id`"), "{message}");
    let error =
        export_device_array(&delivered, Some(&["id", "nope"]), ConsumerStream::NoSync).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument(m) if m.contains("`nope`") && m.contains("id, x")),
        "{error:?}"
    );
    // An empty selection is a struct of rows without columns.
    let (exported, _schema) =
        export_device_array(&delivered, Some(&[]), ConsumerStream::NoSync).unwrap();
    assert_eq!(exported.array.len(), 4);
    assert_eq!(exported.array.num_children(), 0);
}

#[test]
fn device_memory_is_reused_only_after_the_array_is_released() {
    let mut path = host_path(3);
    path.push(batch(0, 64)).unwrap();
    let delivered = path.pop().unwrap().unwrap();
    let (exported, schema) =
        export_device_array(&delivered, Some(&["id"]), ConsumerStream::LegacyDefault).unwrap();
    drop(delivered);
    let imported = import(exported, &schema);
    // Many more batches go through the ring while the imported array holds batch 0's memory.
    for index in 1..8 {
        path.push(batch(index, 64)).unwrap();
        let next = path.pop().unwrap().unwrap();
        assert_eq!(next.host().index, index);
    }
    let ids = imported
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(ids.values().to_vec(), (0..64).collect::<Vec<i64>>());
    let allocated = path.stats().device_buffers_allocated;
    drop(imported);
    // Released: the ring reuses the memory instead of allocating more.
    for index in 8..12 {
        path.push(batch(index, 64)).unwrap();
        drop(path.pop().unwrap().unwrap());
    }
    assert_eq!(path.stats().device_buffers_allocated, allocated);
}
