//! Host-to-device bandwidth, pageable vs pinned (`zenith bench h2d`): what the slot ring's pinned
//! staging buys on this machine.
//!
//! Synchronous `cuMemcpyHtoD` of the same bytes from a pageable `Vec` and from pinned memory
//! (`cuMemHostAlloc`), per size, best of a few repetitions. Without a driver or device it fails
//! with [`Error::NoDevice`] before any other driver call.

use std::ffi::c_void;
use std::time::Instant;

use cudarc::driver::{result, sys};
use zenith_core::{Error, Result};

use crate::discovery::device_handle;
use crate::driver::driver_failure;

/// One measured size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H2dRow {
    /// Bytes per copy.
    pub bytes: usize,
    /// Best bandwidth from pageable host memory, bytes per second.
    pub pageable_bytes_per_s: f64,
    /// Best bandwidth from pinned host memory, bytes per second.
    pub pinned_bytes_per_s: f64,
}

/// The sizes `zenith bench h2d` measures unless told otherwise: 64 KiB to 256 MiB.
pub const DEFAULT_SIZES: [usize; 6] = [64 << 10, 1 << 20, 8 << 20, 32 << 20, 128 << 20, 256 << 20];

/// Frees what [`measure`] allocated, however it returns.
struct Buffers {
    pinned: *mut c_void,
    device: sys::CUdeviceptr,
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // SAFETY: both came from the allocations in `measure` (null / 0 when not made), and no
        // copy is in flight (the copies are synchronous).
        unsafe {
            if !self.pinned.is_null() {
                let _ = result::free_host(self.pinned);
            }
            if self.device != 0 {
                let _ = result::free_sync(self.device);
            }
        }
    }
}

fn best_rate(bytes: usize, repeats: u32, mut copy: impl FnMut() -> Result<()>) -> Result<f64> {
    copy()?; // warm-up: page faults, lazy driver set-up
    let mut best = f64::MAX;
    for _ in 0..repeats {
        let start = Instant::now();
        copy()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(bytes as f64 / best.max(1e-9))
}

/// Measures pageable and pinned host-to-device copies of each of `sizes` bytes on CUDA device
/// `ordinal`, `repeats` times each (the best counts).
///
/// On failure: [`Error::NoDevice`] without a driver or device; [`Error::InvalidArgument`] for no
/// sizes or a zero size; what the driver says when an allocation or copy fails.
pub fn measure(ordinal: u32, sizes: &[usize], repeats: u32) -> Result<Vec<H2dRow>> {
    let largest = sizes.iter().copied().max().unwrap_or(0);
    if sizes.contains(&0) || largest == 0 {
        return Err(Error::InvalidArgument(
            "h2d needs sizes of at least one byte".into(),
        ));
    }
    let device = device_handle(ordinal)?;
    // SAFETY: `device` came from cuDeviceGet; the context is released below.
    let context = unsafe { result::primary_ctx::retain(device) }
        .map_err(|e| driver_failure("cuDevicePrimaryCtxRetain", e))?;
    let rows = (|| {
        // SAFETY: just retained.
        unsafe { result::ctx::set_current(context) }
            .map_err(|e| driver_failure("cuCtxSetCurrent", e))?;
        let mut buffers = Buffers {
            pinned: std::ptr::null_mut(),
            device: 0,
        };
        // SAFETY: plain allocations owned by `buffers`.
        unsafe {
            buffers.pinned =
                result::malloc_host(largest, 0).map_err(|e| driver_failure("cuMemHostAlloc", e))?;
            buffers.device =
                result::malloc_sync(largest).map_err(|e| driver_failure("cuMemAlloc", e))?;
        }
        let mut pageable = Vec::new();
        pageable
            .try_reserve_exact(largest)
            .map_err(|_| Error::alloc_failed("the pageable h2d buffer", largest as u64))?;
        pageable.resize(largest, 1u8);
        // SAFETY: `pinned` holds `largest` bytes.
        unsafe { std::ptr::write_bytes(buffers.pinned as *mut u8, 1, largest) };
        let mut rows = Vec::with_capacity(sizes.len());
        for &bytes in sizes {
            let pageable_rate = best_rate(bytes, repeats, || {
                // SAFETY: the device buffer holds `largest >= bytes` bytes.
                unsafe { result::memcpy_htod_sync(buffers.device, &pageable[..bytes]) }
                    .map_err(|e| driver_failure("cuMemcpyHtoD (pageable)", e))
            })?;
            // SAFETY: `pinned` holds `largest >= bytes` initialised bytes, owned by `buffers`.
            let pinned = unsafe { std::slice::from_raw_parts(buffers.pinned as *const u8, bytes) };
            let pinned_rate = best_rate(bytes, repeats, || {
                // SAFETY: as above.
                unsafe { result::memcpy_htod_sync(buffers.device, pinned) }
                    .map_err(|e| driver_failure("cuMemcpyHtoD (pinned)", e))
            })?;
            rows.push(H2dRow {
                bytes,
                pageable_bytes_per_s: pageable_rate,
                pinned_bytes_per_s: pinned_rate,
            });
        }
        Ok(rows)
    })();
    // SAFETY: retained above; the buffers of this context are freed.
    unsafe {
        let _ = result::primary_ctx::release(device);
    }
    rows
}
