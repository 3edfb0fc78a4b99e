//! Pinned host memory: a pool that grows and keeps what it allocated until an explicit
//! [`PinnedPool::trim`] (allocating pinned memory synchronises the device, so steady state must
//! not allocate), and registration of buffers the caller already has (`cuMemHostRegister`).
//!
//! The pool is generic over a [`HostAllocator`]: CUDA's `cuMemHostAlloc` in production, plain
//! heap memory in tests on machines without a GPU.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{result, sys};
use zenith_core::{Error, Result};

use crate::discovery::device_handle;
use crate::driver::driver_failure;

/// The smallest block the pool hands out; requests are rounded up to a power of two above it, so
/// freed blocks fit later requests of similar size.
pub const MIN_BLOCK_BYTES: usize = 4096;

/// Where the pool's memory comes from.
pub trait HostAllocator: Send + Sync + 'static {
    /// Allocates `bytes` bytes (a multiple of [`MIN_BLOCK_BYTES`]).
    fn allocate(&self, bytes: usize) -> Result<NonNull<u8>>;
    /// Frees a block from [`HostAllocator::allocate`].
    ///
    /// # Safety
    /// `ptr` came from `allocate(bytes)` on this allocator and is not used afterwards.
    unsafe fn free(&self, ptr: NonNull<u8>, bytes: usize);
}

/// Counters of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes held from the allocator (in use plus free).
    pub reserved_bytes: u64,
    /// Bytes handed out now.
    pub in_use_bytes: u64,
    /// Calls to the allocator.
    pub allocations: u64,
    /// Requests served from freed blocks.
    pub reuses: u64,
    /// Bytes returned to the allocator by trims.
    pub trimmed_bytes: u64,
}

struct PoolState {
    /// Free blocks by size.
    free: BTreeMap<usize, Vec<NonNull<u8>>>,
    stats: PoolStats,
}

// SAFETY: the pointers are owned blocks of pinned or heap memory, not tied to a thread.
unsafe impl Send for PoolState {}

struct PoolShared<A: HostAllocator> {
    allocator: A,
    state: Mutex<PoolState>,
}

impl<A: HostAllocator> PoolShared<A> {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<A: HostAllocator> Drop for PoolShared<A> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for (bytes, blocks) in std::mem::take(&mut state.free) {
            for block in blocks {
                // SAFETY: every free block came from `allocate(bytes)`; the pool is going away.
                unsafe { self.allocator.free(block, bytes) };
            }
        }
    }
}

/// A pool of pinned host blocks. Cloning shares the pool.
pub struct PinnedPool<A: HostAllocator> {
    shared: Arc<PoolShared<A>>,
}

impl<A: HostAllocator> Clone for PinnedPool<A> {
    fn clone(&self) -> Self {
        PinnedPool {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The block size a request of `bytes` gets.
pub fn block_size(bytes: usize) -> Option<usize> {
    bytes.max(MIN_BLOCK_BYTES).checked_next_power_of_two()
}

impl<A: HostAllocator> PinnedPool<A> {
    /// An empty pool over `allocator`.
    pub fn new(allocator: A) -> Self {
        PinnedPool {
            shared: Arc::new(PoolShared {
                allocator,
                state: Mutex::new(PoolState {
                    free: BTreeMap::new(),
                    stats: PoolStats::default(),
                }),
            }),
        }
    }

    /// A block of at least `bytes` bytes: a freed block of its size class, else a new one.
    pub fn acquire(&self, bytes: usize) -> Result<PinnedBlock<A>> {
        let size = block_size(bytes).ok_or_else(|| {
            Error::InvalidArgument(format!("a pinned block of {bytes} bytes is too large"))
        })?;
        let mut state = self.shared.lock();
        let reused = state.free.get_mut(&size).and_then(Vec::pop);
        let ptr = match reused {
            Some(ptr) => {
                state.stats.reuses += 1;
                ptr
            }
            None => {
                let ptr = self.shared.allocator.allocate(size)?;
                state.stats.allocations += 1;
                state.stats.reserved_bytes += size as u64;
                ptr
            }
        };
        state.stats.in_use_bytes += size as u64;
        Ok(PinnedBlock {
            ptr,
            size,
            len: bytes,
            pool: Arc::clone(&self.shared),
        })
    }

    /// Returns every free block to the allocator; blocks in use are kept. Returns the bytes
    /// freed.
    pub fn trim(&self) -> u64 {
        let blocks = {
            let mut state = self.shared.lock();
            let blocks = std::mem::take(&mut state.free);
            let freed: u64 = blocks
                .iter()
                .map(|(size, v)| (*size * v.len()) as u64)
                .sum();
            state.stats.reserved_bytes -= freed;
            state.stats.trimmed_bytes += freed;
            blocks
        };
        let mut freed = 0u64;
        for (size, list) in blocks {
            for block in list {
                // SAFETY: a free block from `allocate(size)`, no longer listed anywhere.
                unsafe { self.shared.allocator.free(block, size) };
                freed += size as u64;
            }
        }
        freed
    }

    /// The counters now.
    pub fn stats(&self) -> PoolStats {
        self.shared.lock().stats
    }
}

/// A block from a [`PinnedPool`]; dropping it returns it to the pool (not to the allocator).
pub struct PinnedBlock<A: HostAllocator> {
    ptr: NonNull<u8>,
    size: usize,
    len: usize,
    pool: Arc<PoolShared<A>>,
}

// SAFETY: the block is owned memory; access goes through `&`/`&mut self`.
unsafe impl<A: HostAllocator> Send for PinnedBlock<A> {}
// SAFETY: as above: shared access is read-only.
unsafe impl<A: HostAllocator> Sync for PinnedBlock<A> {}

impl<A: HostAllocator> PinnedBlock<A> {
    /// The requested bytes of the block.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the block holds at least `len` bytes, initialised by `allocate`'s contract
        // (zeroed or written before use) and owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The requested bytes of the block, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The size of the block behind it (its size class).
    pub fn capacity(&self) -> usize {
        self.size
    }
}

impl<A: HostAllocator> Drop for PinnedBlock<A> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        state.stats.in_use_bytes -= self.size as u64;
        state.free.entry(self.size).or_default().push(self.ptr);
    }
}

/// Zeroed heap memory: the allocator of tests and of machines without a GPU.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeapAllocator;

impl HostAllocator for HeapAllocator {
    fn allocate(&self, bytes: usize) -> Result<NonNull<u8>> {
        let layout = std::alloc::Layout::from_size_align(bytes, MIN_BLOCK_BYTES)
            .map_err(|e| Error::InvalidArgument(format!("block of {bytes} bytes: {e}")))?;
        // SAFETY: the layout has a non-zero size (at least MIN_BLOCK_BYTES).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        NonNull::new(ptr).ok_or_else(|| Error::alloc_failed("a host block", bytes as u64))
    }

    unsafe fn free(&self, ptr: NonNull<u8>, bytes: usize) {
        let layout = std::alloc::Layout::from_size_align(bytes, MIN_BLOCK_BYTES)
            .expect("the layout was valid at allocation");
        // SAFETY: per the trait's contract, allocated above with this layout.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_up_to_power_of_two_size_classes() {
        assert_eq!(block_size(1), Some(MIN_BLOCK_BYTES));
        assert_eq!(block_size(4097), Some(8192));
        assert_eq!(block_size(1 << 20), Some(1 << 20));
        assert_eq!(block_size(usize::MAX), None);
    }

    #[test]
    fn the_pool_grows_reuses_and_shrinks_only_on_trim() {
        let pool = PinnedPool::new(HeapAllocator);
        let mut a = pool.acquire(5000).unwrap();
        a.bytes_mut().fill(7);
        assert_eq!(a.bytes().len(), 5000);
        assert_eq!(a.capacity(), 8192);
        let b = pool.acquire(100).unwrap();
        let stats = pool.stats();
        assert_eq!((stats.allocations, stats.reuses), (2, 0));
        assert_eq!(stats.reserved_bytes, 8192 + 4096);
        assert_eq!(stats.in_use_bytes, 8192 + 4096);
        drop(a);
        drop(b);
        // Freed blocks stay reserved: no shrink without a trim.
        let stats = pool.stats();
        assert_eq!((stats.reserved_bytes, stats.in_use_bytes), (8192 + 4096, 0));
        let c = pool.acquire(6000).unwrap();
        assert_eq!(pool.stats().reuses, 1);
        assert_eq!(pool.stats().allocations, 2);
        // Trim frees the free block (4096) but keeps the one in use.
        assert_eq!(pool.trim(), 4096);
        let stats = pool.stats();
        assert_eq!((stats.reserved_bytes, stats.trimmed_bytes), (8192, 4096));
        drop(c);
        assert_eq!(pool.trim(), 8192);
        assert_eq!(pool.stats().reserved_bytes, 0);
    }

    #[test]
    fn too_large_requests_are_refused_before_allocating() {
        let pool = PinnedPool::new(HeapAllocator);
        let error = pool.acquire(usize::MAX).err().unwrap();
        assert_eq!(error.kind(), zenith_core::ErrorKind::InvalidArgument);
        assert_eq!(pool.stats().allocations, 0);
    }
}
