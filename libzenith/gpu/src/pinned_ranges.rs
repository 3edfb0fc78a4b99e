//! Which host memory is pinned: [`TrackedAllocator`] wraps an allocator and records the blocks
//! it has handed out in a [`PinnedRanges`], so the device path can tell a batch buffer gathered
//! into the pinned pool (copied to the device straight, asynchronously) from any other memory
//! (a zero-copy slice of a mapped file, the heap: staged in a pinned slot first).

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use zenith_core::Result;
use zenith_core::runtime::pool::HostAllocator;

/// The live blocks of one allocator, by start address.
#[derive(Debug, Default)]
pub struct PinnedRanges {
    /// Start address → length in bytes.
    blocks: Mutex<BTreeMap<usize, usize>>,
}

impl PinnedRanges {
    /// No blocks yet.
    pub fn new() -> Self {
        PinnedRanges::default()
    }

    /// Whether the `len` bytes at `ptr` lie inside one live block.
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let start = ptr as usize;
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        blocks
            .range(..=start)
            .next_back()
            .is_some_and(|(&block, &block_len)| end <= block + block_len)
    }

    /// The number of live blocks.
    pub fn len(&self) -> usize {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no block is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, ptr: NonNull<u8>, len: usize) {
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ptr.as_ptr() as usize, len);
    }

    fn remove(&self, ptr: NonNull<u8>) {
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(ptr.as_ptr() as usize));
    }
}

/// An allocator whose live blocks are listed in a shared [`PinnedRanges`].
pub struct TrackedAllocator<A: HostAllocator> {
    inner: A,
    ranges: Arc<PinnedRanges>,
}

impl<A: HostAllocator> TrackedAllocator<A> {
    /// `inner`, with its blocks recorded in a new [`PinnedRanges`].
    pub fn new(inner: A) -> Self {
        TrackedAllocator {
            inner,
            ranges: Arc::new(PinnedRanges::new()),
        }
    }

    /// The blocks this allocator has handed out and not freed.
    pub fn ranges(&self) -> Arc<PinnedRanges> {
        Arc::clone(&self.ranges)
    }
}

impl<A: HostAllocator> HostAllocator for TrackedAllocator<A> {
    fn allocate(&self, bytes: usize) -> Result<NonNull<u8>> {
        let ptr = self.inner.allocate(bytes)?;
        self.ranges.insert(ptr, bytes);
        Ok(ptr)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, bytes: usize) {
        // Unlisted first: once freed, the address may be reused by other memory.
        self.ranges.remove(ptr);
        // SAFETY: forwarded under the same contract.
        unsafe { self.inner.free(ptr, bytes) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zenith_core::runtime::pool::{BlockPool, HeapAllocator};

    #[test]
    fn blocks_are_listed_while_live_and_ranges_must_fit_one_block() {
        let allocator = TrackedAllocator::new(HeapAllocator);
        let ranges = allocator.ranges();
        let pool = BlockPool::new(allocator);
        let block = pool.acquire(5000).unwrap();
        let start = block.bytes().as_ptr();
        assert!(ranges.contains(start, 5000));
        // SAFETY: only addresses are computed, nothing is read.
        let inside = unsafe { start.add(100) };
        assert!(ranges.contains(inside, 8000));
        assert!(!ranges.contains(inside, 8192));
        let elsewhere = [0u8; 64];
        assert!(!ranges.contains(elsewhere.as_ptr(), 64));
        drop(block);
        // Back in the pool, still allocated (and still pinned memory).
        assert!(ranges.contains(start, 5000));
        pool.trim();
        assert!(ranges.is_empty());
        assert!(!ranges.contains(start, 1));
    }
}
