//! The CUDA paths on a real device: discovery, the slot ring on the CUDA copy engine (bytes that
//! land on the device are read back and compared), the pinned pool and host registration.
//!
//! Without a device each test prints why it is skipped (`SKIPPED: ...`) and passes, unless
//! `ZENITH_REQUIRE_GPU=1` is set (bench/gpu/run.sh sets it): then a missing device fails.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use cudarc::driver::result;
use zenith_gpu::pinned::{BlockPool, CudaHostAllocator, HostRegistration};
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;
use zenith_gpu::ring::{RingConfig, SlotRing};

/// `Some(reason)` when there is no device to test on (and skipping is allowed).
fn skip_reason(test: &str) -> Option<String> {
    match zenith_gpu::device_count() {
        Ok(_) => None,
        Err(error) => {
            if std::env::var("ZENITH_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("{test}: ZENITH_REQUIRE_GPU=1 but {error}");
            }
            let reason = format!("SKIPPED {test}: {error}");
            // Straight to the process's stderr, past the test harness's capture: a skip is
            // visible in every `cargo test` run, not only with --nocapture.
            let _ = writeln!(std::io::stderr(), "{reason}");
            Some(reason)
        }
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[test]
fn discovery_reports_every_visible_device() {
    if skip_reason("discovery_reports_every_visible_device").is_some() {
        return;
    }
    let count = zenith_gpu::device_count().unwrap();
    assert!(count > 0);
    for ordinal in 0..count {
        let info = zenith_gpu::device_info(ordinal).unwrap();
        println!("{info:?}");
        assert_eq!(info.ordinal, ordinal);
        assert!(!info.name.is_empty());
        assert!(info.uuid.starts_with("GPU-"), "{}", info.uuid);
        assert!(info.memory_total_bytes > 0);
        assert!(info.compute_capability.0 >= 3);
        assert!(info.sm_count > 0);
    }
    assert!(zenith_gpu::device_info(count).is_err());
    match zenith_gpu::link_matrix() {
        Ok(matrix) => {
            assert_eq!(matrix.len(), count as usize);
            for (i, row) in matrix.iter().enumerate() {
                println!("{:?}", row.iter().map(|l| l.label()).collect::<Vec<_>>());
                assert_eq!(row[i], zenith_gpu::LinkKind::SameDevice);
            }
        }
        Err(error) => println!("link matrix unavailable (NVML): {error}"),
    }
}

#[test]
fn the_slot_ring_lands_bytes_on_the_device() {
    if skip_reason("the_slot_ring_lands_bytes_on_the_device").is_some() {
        return;
    }
    const SLOT: usize = 1 << 20;
    let engine = CudaCopyEngine::new(0).unwrap();
    let ring = SlotRing::new(engine, RingConfig::new(3, SLOT)).unwrap();
    for round in 0..12u8 {
        let mut slot = ring.acquire(soon()).unwrap();
        slot.bytes().fill(round);
        ring.submit(slot, SLOT, soon()).unwrap();
        let batch = ring.next(soon()).unwrap();
        let mut back = vec![0u8; SLOT];
        // SAFETY: the device buffer holds SLOT bytes and its copy finished (next waited on it);
        // the engine's context is current on this thread after `next`.
        unsafe { result::memcpy_dtoh_sync(&mut back, batch.device().device_ptr()) }.unwrap();
        assert!(back.iter().all(|b| *b == round), "round {round}");
    }
    assert_eq!(ring.stats().copies, 12);
}

#[test]
fn pinned_pool_and_registration_work_on_the_device() {
    if skip_reason("pinned_pool_and_registration_work_on_the_device").is_some() {
        return;
    }
    let pool = BlockPool::new(CudaHostAllocator::new(0).unwrap());
    let mut block = pool.acquire(1 << 20).unwrap();
    block.bytes_mut().fill(1);
    drop(block);
    assert_eq!(pool.stats().allocations, 1);
    let _again = pool.acquire(1 << 20).unwrap();
    assert_eq!(pool.stats().reuses, 1);
    let mut buffer = vec![0u8; 1 << 20];
    // SAFETY: the buffer outlives the registration.
    let registration =
        unsafe { HostRegistration::register(buffer.as_mut_ptr(), buffer.len(), 0) }.unwrap();
    assert_eq!(registration.len(), 1 << 20);
    drop(registration);
}

/// A host batch of `rows` rows: `id` = index * 1000 + row (int64), `x` = row / 2 (float32).
fn host_batch(index: u64, rows: usize) -> zenith_core::batch::Batch {
    use std::sync::Arc;

    use arrow_array::{Float32Array, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float32, false),
    ]));
    let base = index as i64 * 1000;
    let ids = Int64Array::from_iter_values((0..rows as i64).map(|i| base + i));
    let xs = Float32Array::from_iter_values((0..rows).map(|i| i as f32 * 0.5));
    zenith_core::batch::Batch {
        data: RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(xs)]).unwrap(),
        epoch: 0,
        index,
    }
}

#[test]
fn the_device_path_hands_out_kdlcuda_tensors_with_the_right_bytes() {
    use zenith_gpu::device_path::DevicePath;
    use zenith_gpu::dlpack_stream::ConsumerStream;
    if skip_reason("the_device_path_hands_out_kdlcuda_tensors_with_the_right_bytes").is_some() {
        return;
    }
    let engine = CudaCopyEngine::new(0).unwrap();
    let mut path = DevicePath::new(engine, 0, 3, Duration::from_secs(30)).unwrap();
    let mut pushed = 0u64;
    for index in 0..12u64 {
        while path.in_flight() < path.depth() {
            path.push(host_batch(pushed, 4096)).unwrap();
            pushed += 1;
        }
        let batch = path.pop().unwrap().unwrap();
        assert_eq!(batch.host().index, index);
        // The legacy default stream waits for the copy; a synchronous read-back follows it.
        let tensor = batch
            .column_dlpack("id", ConsumerStream::LegacyDefault)
            .unwrap();
        assert_eq!(tensor.device().device_type, 2, "kDLCUDA");
        let mut back = vec![0i64; 4096];
        // SAFETY: the tensor holds 4096 int64 in device memory, alive while `tensor` lives.
        unsafe { result::memcpy_dtoh_sync(&mut back, tensor.as_dl_tensor().data as u64).unwrap() };
        assert_eq!(back[0], index as i64 * 1000);
        assert_eq!(back[4095], index as i64 * 1000 + 4095);
        // Release with a marker on the legacy stream: the memory returns after it.
        drop(tensor);
        drop(batch);
    }
    let stats = path.stats();
    println!("device path: {stats:?}");
    assert!(stats.device_buffers_allocated <= 3);
}

#[test]
fn a_consumer_stream_handle_waits_on_the_copy() {
    use zenith_gpu::device_path::DevicePath;
    use zenith_gpu::dlpack_stream::ConsumerStream;
    if skip_reason("a_consumer_stream_handle_waits_on_the_copy").is_some() {
        return;
    }
    let engine = CudaCopyEngine::new(0).unwrap();
    // The consumer's own non-blocking stream, in the engine's (primary) context.
    let stream = result::stream::create(result::stream::StreamKind::NonBlocking).unwrap();
    let mut path = DevicePath::new(engine, 0, 3, Duration::from_secs(30)).unwrap();
    path.push(host_batch(7, 1 << 16)).unwrap();
    let batch = path.pop().unwrap().unwrap();
    let tensor = batch
        .column_dlpack("x", ConsumerStream::Handle(stream as u64))
        .unwrap();
    let mut back = vec![0f32; 1 << 16];
    // SAFETY: a live stream and device memory of 65536 float32 held by `tensor`.
    unsafe {
        result::memcpy_dtoh_async(&mut back, tensor.as_dl_tensor().data as u64, stream).unwrap();
        result::stream::synchronize(stream).unwrap();
    }
    assert_eq!(back[3], 1.5);
    drop(tensor);
    drop(batch);
    // SAFETY: nothing uses the stream any more (the release marker was recorded on it).
    unsafe { result::stream::synchronize(stream).unwrap() };
}

#[test]
fn device_batches_export_as_arrow_device_arrays_on_cuda() {
    use zenith_gpu::device_array::ARROW_DEVICE_CUDA;
    use zenith_gpu::device_export::export_device_array;
    use zenith_gpu::device_path::DevicePath;
    use zenith_gpu::dlpack_stream::ConsumerStream;
    if skip_reason("device_batches_export_as_arrow_device_arrays_on_cuda").is_some() {
        return;
    }
    let engine = CudaCopyEngine::new(0).unwrap();
    let stream = result::stream::create(result::stream::StreamKind::NonBlocking).unwrap();
    let mut path = DevicePath::new(engine, 0, 3, Duration::from_secs(30)).unwrap();
    path.push(host_batch(3, 1 << 12)).unwrap();
    let batch = path.pop().unwrap().unwrap();
    let (array, _schema) = export_device_array(&batch, None, ConsumerStream::NoSync).unwrap();
    assert_eq!(array.device_type, ARROW_DEVICE_CUDA);
    assert_eq!(array.device_id, 0);
    assert!(!array.sync_event.is_null(), "a CUevent to wait on");
    // The consumer's side of the protocol: its stream waits on *sync_event, then reads.
    // SAFETY: sync_event points to a live CUevent while the array is not released.
    let event = unsafe { *(array.sync_event as *const cudarc::driver::sys::CUevent) };
    let id = array.array.child(0).buffer(1) as u64;
    let mut back = vec![0i64; 1 << 12];
    // SAFETY: a live stream and event; the id child holds 4096 int64 on the device.
    unsafe {
        result::stream::wait_event(
            stream,
            event,
            cudarc::driver::sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
        )
        .unwrap();
        result::memcpy_dtoh_async(&mut back, id, stream).unwrap();
        result::stream::synchronize(stream).unwrap();
    }
    assert_eq!(back[0], 3000);
    assert_eq!(back[4095], 3000 + 4095);
    drop(batch);
    // Dropping the FFI array calls its release: the device memory goes back to the ring.
    drop(array);
    // SAFETY: nothing uses the stream any more.
    unsafe { result::stream::synchronize(stream).unwrap() };
}

#[test]
fn a_loader_on_the_pinned_pool_is_copied_to_the_device_without_staging() {
    use zenith_core::loader::{LoaderOptions, ShuffleMode};
    use zenith_gpu::device_path::DevicePath;
    use zenith_gpu::dlpack_stream::ConsumerStream;
    if skip_reason("a_loader_on_the_pinned_pool_is_copied_to_the_device_without_staging").is_some()
    {
        return;
    }
    for shuffle in [ShuffleMode::Global, ShuffleMode::None] {
        let mut options = LoaderOptions::default();
        options.set_batch_size(4096).unwrap();
        options.set_shuffle(shuffle);
        let mut path = DevicePath::new(
            CudaCopyEngine::new(0).unwrap(),
            0,
            4,
            Duration::from_secs(30),
        )
        .unwrap();
        zenith_gpu::pinned::gather_into_pinned(&mut path, &mut options).unwrap();
        let chunks = (0..4).map(|i| host_batch(i, 5000).data).collect();
        let loader = common::held_loader(chunks, &options);
        path.set_batch_shape(&loader.schema(), 4096).unwrap();
        let mut rows = 0usize;
        loop {
            path.fill(|| loader.next_batch()).unwrap();
            let Some(batch) = path.pop().unwrap() else {
                break;
            };
            let expected = common::host_ids(&batch);
            let tensor = batch
                .column_dlpack("id", ConsumerStream::LegacyDefault)
                .unwrap();
            let mut back = vec![0i64; expected.len()];
            // SAFETY: the tensor holds that many int64 in device memory while it lives.
            unsafe {
                result::memcpy_dtoh_sync(&mut back, tensor.as_dl_tensor().data as u64).unwrap()
            };
            assert_eq!(back, expected, "{shuffle:?}");
            rows += expected.len();
        }
        assert_eq!(rows, 20_000);
        let stats = path.stats();
        println!("{shuffle:?}: {stats:?}");
        // Every batch was built in pinned memory (gathered, or copied there by the workers).
        assert_eq!(stats.staged_bytes, 0, "{shuffle:?}");
        assert_eq!(stats.direct_bytes, 20_000 * 12, "{shuffle:?}");
        assert_eq!(stats.device_buffers_grown, 0, "{shuffle:?}");
    }
}

#[test]
fn device_buffers_grow_for_a_later_larger_batch_on_the_device() {
    use zenith_gpu::device_path::DevicePath;
    use zenith_gpu::dlpack_stream::ConsumerStream;
    if skip_reason("device_buffers_grow_for_a_later_larger_batch_on_the_device").is_some() {
        return;
    }
    let engine = CudaCopyEngine::new(0).unwrap();
    let mut path = DevicePath::new(engine, 0, 3, Duration::from_secs(30)).unwrap();
    for (index, rows) in [1000usize, 300, 8000, 10, 8000].into_iter().enumerate() {
        path.push(host_batch(index as u64, rows)).unwrap();
        let batch = path.pop().unwrap().unwrap();
        let tensor = batch
            .column_dlpack("id", ConsumerStream::LegacyDefault)
            .unwrap();
        let mut back = vec![0i64; rows];
        // SAFETY: the tensor holds `rows` int64 in device memory while it lives.
        unsafe { result::memcpy_dtoh_sync(&mut back, tensor.as_dl_tensor().data as u64).unwrap() };
        assert_eq!(back[rows - 1], index as i64 * 1000 + rows as i64 - 1);
    }
    let stats = path.stats();
    println!("growth: {stats:?}");
    assert!(stats.device_buffers_grown >= 1);
    assert_eq!(stats.direct_bytes, 0);
}
