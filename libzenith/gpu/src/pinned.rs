//! Pinned host memory: the core's [`BlockPool`] over `cuMemHostAlloc` memory
//! ([`CudaHostAllocator`]: allocating pinned memory synchronises the device, so the pool keeps
//! what it allocated until an explicit trim), and registration of buffers the caller already has
//! (`cuMemHostRegister`).

use std::ffi::c_void;
use std::ptr::NonNull;

use cudarc::driver::{result, sys};
pub use zenith_core::runtime::pool::{
    BlockPool, HeapAllocator, HostAllocator, MIN_BLOCK_BYTES, PoolBlock, PoolStats, block_size,
};
use zenith_core::{Error, Result};

use std::sync::Arc;

use crate::discovery::device_handle;
use crate::driver::driver_failure;
use crate::pinned_ranges::{PinnedRanges, TrackedAllocator};

/// Pinned memory from `cuMemHostAlloc` (portable: usable from every context), in the primary
/// context of one device.
pub struct CudaHostAllocator {
    context: sys::CUcontext,
    device: sys::CUdevice,
}

// SAFETY: a retained primary context, made current before each use.
unsafe impl Send for CudaHostAllocator {}
// SAFETY: as above; the driver API is thread-safe.
unsafe impl Sync for CudaHostAllocator {}

impl CudaHostAllocator {
    /// The allocator in the primary context of device `ordinal`.
    ///
    /// On failure: [`Error::NoDevice`] without a driver or device.
    pub fn new(ordinal: u32) -> Result<Self> {
        let device = device_handle(ordinal)?;
        // SAFETY: `device` came from cuDeviceGet.
        let context = unsafe { result::primary_ctx::retain(device) }
            .map_err(|e| driver_failure("cuDevicePrimaryCtxRetain", e))?;
        Ok(CudaHostAllocator { context, device })
    }

    fn make_current(&self) -> Result<()> {
        // SAFETY: retained in `new`, released only on drop.
        unsafe { result::ctx::set_current(self.context) }
            .map_err(|e| driver_failure("cuCtxSetCurrent", e))
    }
}

impl Drop for CudaHostAllocator {
    fn drop(&mut self) {
        // SAFETY: retained in `new`.
        unsafe {
            let _ = result::primary_ctx::release(self.device);
        }
    }
}

impl HostAllocator for CudaHostAllocator {
    fn allocate(&self, bytes: usize) -> Result<NonNull<u8>> {
        self.make_current()?;
        // SAFETY: a plain allocation owned by the pool.
        let ptr = unsafe { result::malloc_host(bytes, sys::CU_MEMHOSTALLOC_PORTABLE) }
            .map_err(|e| driver_failure("cuMemHostAlloc", e))?;
        NonNull::new(ptr as *mut u8)
            .ok_or_else(|| Error::Internal("cuMemHostAlloc returned NULL".into()))
    }

    unsafe fn free(&self, ptr: NonNull<u8>, _bytes: usize) {
        if self.make_current().is_ok() {
            // SAFETY: per the trait's contract, from cuMemHostAlloc above.
            unsafe {
                let _ = result::free_host(ptr.as_ptr() as *mut c_void);
            }
        }
    }
}

/// Pinned memory of device `ordinal` for a loader's batch buffers
/// (`LoaderOptions::set_host_allocator`), with the list of its live blocks: batches gathered
/// into it can be copied to the device asynchronously, and the device path copies them straight
/// from there ([`crate::device_path::DevicePath::set_pinned_ranges`]).
///
/// On failure: [`Error::NoDevice`] without a driver or device.
pub fn pinned_batch_allocator(ordinal: u32) -> Result<(Arc<dyn HostAllocator>, Arc<PinnedRanges>)> {
    let allocator = TrackedAllocator::new(CudaHostAllocator::new(ordinal)?);
    let ranges = allocator.ranges();
    Ok((Arc::new(allocator), ranges))
}

/// Makes a loader opened with `options` gather its batches into the pinned memory of `path`'s
/// device ([`pinned_batch_allocator`]; batches the gather kernel does not write, such as
/// zero-copy views of mapped files, are copied there on the worker threads), and `path` copy
/// those columns straight from there.
///
/// On failure: [`Error::NoDevice`] without a driver or device; nothing changed.
pub fn gather_into_pinned<E: crate::ring::CopyEngine>(
    path: &mut crate::device_path::DevicePath<E>,
    options: &mut zenith_core::LoaderOptions,
) -> Result<()> {
    let (allocator, ranges) = pinned_batch_allocator(path.ordinal())?;
    options.set_host_allocator(Some(allocator));
    options.set_pool_every_batch(true);
    path.set_pinned_ranges(ranges);
    Ok(())
}

/// A caller's buffer page-locked with `cuMemHostRegister` (portable) until this value drops.
pub struct HostRegistration {
    ptr: *mut c_void,
    len: usize,
    _allocator: CudaHostAllocator,
}

impl HostRegistration {
    /// Page-locks `len` bytes at `ptr` for device `ordinal`'s copies.
    ///
    /// On failure: [`Error::NoDevice`] without a driver or device (checked before any driver
    /// call), [`Error::InvalidArgument`] for a NULL or empty range, the driver's error otherwise
    /// (e.g. a range already registered).
    ///
    /// # Safety
    /// `ptr` is valid for `len` bytes and stays allocated until this value drops.
    pub unsafe fn register(ptr: *mut u8, len: usize, ordinal: u32) -> Result<Self> {
        let allocator = CudaHostAllocator::new(ordinal)?;
        if ptr.is_null() || len == 0 {
            return Err(Error::InvalidArgument(
                "cannot register an empty or NULL range".into(),
            ));
        }
        allocator.make_current()?;
        // SAFETY: per the contract above.
        unsafe {
            sys::cuMemHostRegister_v2(ptr as *mut c_void, len, sys::CU_MEMHOSTREGISTER_PORTABLE)
        }
        .result()
        .map_err(|e| driver_failure("cuMemHostRegister", e))?;
        Ok(HostRegistration {
            ptr: ptr as *mut c_void,
            len,
            _allocator: allocator,
        })
    }

    /// The registered length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty (never: registration refuses empty ranges).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for HostRegistration {
    fn drop(&mut self) {
        if self._allocator.make_current().is_ok() {
            // SAFETY: registered in `register`.
            unsafe {
                let _ = sys::cuMemHostUnregister(self.ptr);
            }
        }
    }
}
