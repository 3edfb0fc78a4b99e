//! Without a usable CUDA driver every device entry point fails cleanly with `NoDevice`, naming
//! what was searched, and nothing panics (cudarc would panic on a driver call without
//! libcuda.so).
//!
//! This binary hides every device with `CUDA_VISIBLE_DEVICES=""` before the driver is touched:
//! on a machine without `libcuda.so` the library search fails, on a GPU machine the driver loads
//! and sees no device. Both must be `NoDevice`. One test only: the variable must be set before
//! the first driver call of the process.

use zenith_core::ErrorKind;
use zenith_gpu::pinned::{CudaHostAllocator, HostRegistration};
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;

#[test]
fn every_device_entry_point_reports_no_device() {
    // SAFETY: the only test of this binary, run before any other thread reads the environment.
    unsafe { std::env::set_var("CUDA_VISIBLE_DEVICES", "") };

    let error = zenith_gpu::device_count().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoDevice, "{error}");
    let message = error.to_string();
    println!("device_count: {message}");
    assert!(message.starts_with("no device: "), "{message}");
    let library_missing = message.contains("libcuda.so");
    let none_visible =
        message.contains("sees no device") || message.contains("CUDA_ERROR_NO_DEVICE");
    assert!(
        library_missing || none_visible,
        "the message says why: {message}"
    );
    if library_missing {
        // The names searched are listed.
        assert!(message.contains("libcuda.so.1"), "{message}");
    }

    for result in [
        zenith_gpu::device_info(0).map(|_| ()),
        zenith_gpu::link_matrix().map(|_| ()),
        CudaCopyEngine::new(0).map(|_| ()),
        CudaHostAllocator::new(0).map(|_| ()),
        zenith_gpu::pinned::pinned_batch_allocator(0).map(|_| ()),
    ] {
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NoDevice, "{error}");
    }
    let mut buffer = vec![0u8; 4096];
    // SAFETY: the buffer outlives the (failed) registration.
    let error = unsafe { HostRegistration::register(buffer.as_mut_ptr(), buffer.len(), 0) }
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::NoDevice, "{error}");
    // pin_memory's allocator and the device path's pinned batches: NoDevice, nothing changed.
    let mut options = zenith_core::LoaderOptions::default();
    let mut path = zenith_gpu::device_path::DevicePath::new(
        zenith_gpu::ring::HostCopyEngine::new().unwrap(),
        0,
        3,
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    let error = zenith_gpu::pinned::gather_into_pinned(&mut path, &mut options).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoDevice, "{error}");
    assert_eq!(options, zenith_core::LoaderOptions::default());
    // The answer is stable: the second call does not retry into a panic.
    assert_eq!(
        zenith_gpu::device_count().unwrap_err().kind(),
        ErrorKind::NoDevice
    );
}
