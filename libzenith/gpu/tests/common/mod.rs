//! What the device path's test binaries share: a loader over batches held in memory, the ids a
//! delivered batch holds on the host, and a device path on the host copy engine.

// Each test binary that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch};
use zenith_core::dataset::source::HeldBatches;
use zenith_core::dataset::{Dataset, Format, Source};
use zenith_core::loader::{Loader, LoaderOptions};
use zenith_gpu::device_path::DeviceColumns;
use zenith_gpu::device_path::DevicePath;
use zenith_gpu::ring::CopyEngine;
use zenith_gpu::ring::host_engine::HostCopyEngine;

/// A loader over `chunks` (same schema) held in memory: heap buffers, which the loader serves as
/// zero-copy views like a mapped file's.
pub fn held_loader(chunks: Vec<RecordBatch>, options: &LoaderOptions) -> Loader {
    let schema = chunks[0].schema();
    let held: Arc<dyn Source> = Arc::new(HeldBatches::new(Path::new("held.arrow"), schema, chunks));
    let dataset = Dataset::from_sources(
        Path::new("held.arrow"),
        vec![held],
        &[Format::ArrowIpcFile],
        None,
    )
    .unwrap();
    Loader::from_dataset(Arc::new(dataset), options).unwrap()
}

/// The first column (int64 ids) of a delivered batch, as the host has it.
pub fn host_ids<E: CopyEngine>(batch: &DeviceColumns<E>) -> Vec<i64> {
    batch
        .host()
        .data
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

/// A device path of `slots` slots on the host copy engine (device 0, 10 s deadlines).
pub fn host_path(slots: usize) -> DevicePath<HostCopyEngine> {
    DevicePath::new(
        HostCopyEngine::new().unwrap(),
        0,
        slots,
        std::time::Duration::from_secs(10),
    )
    .unwrap()
}
