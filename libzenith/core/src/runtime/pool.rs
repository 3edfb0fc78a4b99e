//! A pool of host memory blocks: [`BlockPool`] grows on demand and keeps what it allocated until
//! an explicit [`BlockPool::trim`], so a steady state (a loader's batches, a device's staging
//! slots) does not allocate. Blocks come in power-of-two size classes, so a freed block fits
//! later requests of a similar size; a block goes back to the pool when dropped — also when it
//! backs an Arrow buffer ([`PoolBlock::into_buffer`]) and the consumer releases that buffer.
//!
//! The pool is generic over a [`HostAllocator`]: the heap ([`HeapAllocator`]), or another kind of
//! memory another crate provides (the GPU runtime's pinned `cuMemHostAlloc` memory).

use std::collections::{BTreeMap, HashMap};
use std::panic::RefUnwindSafe;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow_buffer::Buffer;

use crate::error::{Error, Result};
use crate::runtime::alloc::NumaAllocation;

/// The smallest block the pool hands out; requests are rounded up to a power of two above it, so
/// freed blocks fit later requests of similar size.
pub const MIN_BLOCK_BYTES: usize = 4096;

/// Where the pool's memory comes from.
pub trait HostAllocator: Send + Sync + RefUnwindSafe + 'static {
    /// Allocates `bytes` bytes (a power of two, at least [`MIN_BLOCK_BYTES`]), aligned to at
    /// least 64 bytes (Arrow's alignment).
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

// SAFETY: the pointers are owned blocks of host memory, not tied to a thread.
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

/// A pool of host memory blocks. Cloning shares the pool.
pub struct BlockPool<A: HostAllocator> {
    shared: Arc<PoolShared<A>>,
}

impl<A: HostAllocator> Clone for BlockPool<A> {
    fn clone(&self) -> Self {
        BlockPool {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A: HostAllocator> std::fmt::Debug for BlockPool<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockPool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The block size a request of `bytes` gets.
pub fn block_size(bytes: usize) -> Option<usize> {
    bytes.max(MIN_BLOCK_BYTES).checked_next_power_of_two()
}

impl<A: HostAllocator> BlockPool<A> {
    /// An empty pool over `allocator`.
    pub fn new(allocator: A) -> Self {
        BlockPool {
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
    pub fn acquire(&self, bytes: usize) -> Result<PoolBlock<A>> {
        let size = block_size(bytes).ok_or_else(|| {
            Error::InvalidArgument(format!("a pooled block of {bytes} bytes is too large"))
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
        Ok(PoolBlock {
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

/// A block from a [`BlockPool`]; dropping it returns it to the pool (not to the allocator).
pub struct PoolBlock<A: HostAllocator> {
    ptr: NonNull<u8>,
    size: usize,
    len: usize,
    pool: Arc<PoolShared<A>>,
}

// SAFETY: the block is owned memory; access goes through `&`/`&mut self`.
unsafe impl<A: HostAllocator> Send for PoolBlock<A> {}
// SAFETY: as above: shared access is read-only.
unsafe impl<A: HostAllocator> Sync for PoolBlock<A> {}

impl<A: HostAllocator> PoolBlock<A> {
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

impl<A: HostAllocator> Drop for PoolBlock<A> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        state.stats.in_use_bytes -= self.size as u64;
        state.free.entry(self.size).or_default().push(self.ptr);
    }
}

impl<A: HostAllocator + ?Sized> HostAllocator for Arc<A> {
    fn allocate(&self, bytes: usize) -> Result<NonNull<u8>> {
        (**self).allocate(bytes)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, bytes: usize) {
        // SAFETY: forwarded under the same contract.
        unsafe { (**self).free(ptr, bytes) }
    }
}

impl<A: HostAllocator> PoolBlock<A> {
    /// An Arrow buffer over the block's requested bytes; the block returns to its pool when the
    /// last clone of the buffer drops (e.g. an exported array's `release`).
    pub fn into_buffer(self) -> Buffer {
        let (ptr, len) = (self.ptr, self.len);
        // SAFETY: `ptr` is valid for `len` initialised bytes (zeroed or written by the owner)
        // for as long as the block lives, and the block is kept alive by the buffer.
        unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(self)) }
    }
}

/// A shared allocator as an option value: compared by identity (the same allocator object).
#[derive(Clone)]
pub struct SharedAllocator(pub Arc<dyn HostAllocator>);

impl std::fmt::Debug for SharedAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedAllocator({:p})", Arc::as_ptr(&self.0))
    }
}

impl PartialEq for SharedAllocator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedAllocator {}

/// Blocks placed on a NUMA node, on hugepages where they can be ([`NumaAllocation`]: each block
/// its own zero-filled mapping, page-aligned). The pool keeps blocks, so the mappings are made
/// once per steady state, not per batch.
#[derive(Debug)]
pub struct NumaAllocator {
    node: Option<u32>,
    flags: u32,
    /// The live blocks by address: freeing one unmaps it.
    live: Mutex<HashMap<usize, NumaAllocation>>,
}

impl NumaAllocator {
    /// Blocks on `node` (`None`: not placed) with the [`NumaAllocation::new`] `flags`.
    pub fn new(node: Option<u32>, flags: u32) -> Self {
        NumaAllocator {
            node,
            flags,
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl HostAllocator for NumaAllocator {
    fn allocate(&self, bytes: usize) -> Result<NonNull<u8>> {
        let allocation = NumaAllocation::new(bytes, self.node, self.flags)?;
        let ptr = NonNull::new(allocation.as_ptr())
            .ok_or_else(|| Error::alloc_failed("a NUMA block", bytes as u64))?;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ptr.as_ptr() as usize, allocation);
        Ok(ptr)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, _bytes: usize) {
        // Dropping the allocation unmaps it.
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(ptr.as_ptr() as usize));
    }
}

/// Zeroed heap memory aligned to its block size: the default allocator, and the stand-in for
/// pinned memory in tests on machines without a GPU.
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
        let pool = BlockPool::new(HeapAllocator);
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
    fn a_block_as_an_arrow_buffer_returns_to_the_pool_when_released() {
        let pool = BlockPool::new(HeapAllocator);
        let mut block = pool.acquire(1000).unwrap();
        block.bytes_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
        let buffer = block.into_buffer();
        assert_eq!(buffer.len(), 1000);
        assert_eq!(&buffer.as_slice()[..4], &[1, 2, 3, 4]);
        assert_eq!(buffer.as_ptr() as usize % 64, 0);
        let clone = buffer.clone();
        drop(buffer);
        assert_eq!(pool.stats().in_use_bytes, 4096);
        drop(clone);
        assert_eq!(pool.stats().in_use_bytes, 0);
        let _again = pool.acquire(1000).unwrap();
        assert_eq!(pool.stats().reuses, 1);
    }

    #[test]
    fn numa_blocks_are_page_aligned_zeroed_and_unmapped_on_trim() {
        let pool = BlockPool::new(NumaAllocator::new(None, 0));
        let mut block = pool.acquire(10_000).unwrap();
        assert_eq!(block.bytes_mut().as_ptr() as usize % 4096, 0);
        assert!(block.bytes().iter().all(|&b| b == 0));
        block.bytes_mut().fill(3);
        drop(block);
        assert_eq!(pool.trim(), 16384);
        assert!(pool.shared.allocator.live.lock().unwrap().is_empty());
    }

    #[test]
    fn too_large_requests_are_refused_before_allocating() {
        let pool = BlockPool::new(HeapAllocator);
        let error = pool.acquire(usize::MAX).err().unwrap();
        assert_eq!(error.kind(), crate::error::ErrorKind::InvalidArgument);
        assert_eq!(pool.stats().allocations, 0);
    }
}
