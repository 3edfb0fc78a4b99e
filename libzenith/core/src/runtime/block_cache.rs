//! A global allocator that keeps large freed blocks for reuse: the decode buffers of Parquet row
//! groups, CSV and JSON chunks and read buffers come back at the same sizes chunk after chunk.
//!
//! Why: arrow-rs allocates every decoded chunk's buffers afresh (65,536-row buffers of several
//! MiB) and frees them when the chunk's batches are gone. glibc serves such sizes with `mmap` or
//! trims them from its arenas on free, so each chunk's buffers are new pages that fault in again
//! — about one minor fault per 4 KiB decoded (measured: ~80,000 faults per million rows of the
//! benchmark's Parquet file, against ~1,000 for pyarrow with its own pool). Caching freed large
//! blocks keeps their pages resident: the next chunk reuses them without faults and without
//! asking the kernel.
//!
//! How: allocations of at least [`MIN_CACHED_BYTES`] (and alignment up to a page) are rounded up
//! to a size class (four per power of two, so at most 25 % slack) and page-aligned; a freed block
//! goes onto its class's list (threaded through the freed blocks themselves, so caching allocates
//! nothing) unless the cache already holds [`cache_limit`] bytes, in which case it goes back to
//! the system. Smaller allocations go straight to the system allocator, whose arenas already reuse
//! them. [`trim`] hands every cached block back.
//!
//! The library (`libzenith.so`/`.a`) and the `zenith` command install it as their global
//! allocator; it only ever sees Rust's allocations (not the host program's `malloc`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Allocations from this size up are cached when freed.
pub const MIN_CACHED_BYTES: usize = 128 * 1024;

/// The cache's default limit: enough for several workers' decode buffers in flight.
pub const DEFAULT_CACHE_LIMIT: usize = 512 * 1024 * 1024;

/// Cached blocks are page-aligned (which satisfies Arrow's 64/128-byte alignment); requests for
/// larger alignments bypass the cache.
const BLOCK_ALIGN: usize = 4096;

/// Size classes per power of two.
const CLASSES_PER_OCTAVE: usize = 4;

/// The largest cached size is 2^MAX_CACHED_LOG2 bytes (64 GiB); larger requests bypass the cache.
const MAX_CACHED_LOG2: u32 = 36;

const MIN_CACHED_LOG2: u32 = MIN_CACHED_BYTES.trailing_zeros();

/// Class 0 is exactly [`MIN_CACHED_BYTES`]; then four classes per octave up to 2^MAX_CACHED_LOG2.
const CLASS_COUNT: usize = 1 + (MAX_CACHED_LOG2 - MIN_CACHED_LOG2) as usize * CLASSES_PER_OCTAVE;

const STEP_SHIFT: u32 = CLASSES_PER_OCTAVE.trailing_zeros();

/// The size class of `size` (at least [`MIN_CACHED_BYTES`]) and its block size, or `None` past
/// the largest class.
fn class_of(size: usize) -> Option<(usize, usize)> {
    if size <= MIN_CACHED_BYTES {
        return Some((0, MIN_CACHED_BYTES));
    }
    // `size` lies in (2^top, 2^(top+1)]: split that octave into CLASSES_PER_OCTAVE equal steps.
    let top = usize::BITS - 1 - (size - 1).leading_zeros();
    if top >= MAX_CACHED_LOG2 {
        return None;
    }
    let step = 1usize << (top - STEP_SHIFT);
    let steps = size.div_ceil(step) - CLASSES_PER_OCTAVE; // 1..=CLASSES_PER_OCTAVE
    let class = 1 + (top - MIN_CACHED_LOG2) as usize * CLASSES_PER_OCTAVE + steps - 1;
    Some((class, (CLASSES_PER_OCTAVE + steps) * step))
}

/// The block size of `class` (the inverse of [`class_of`]).
fn class_bytes(class: usize) -> usize {
    if class == 0 {
        return MIN_CACHED_BYTES;
    }
    let top = MIN_CACHED_LOG2 + ((class - 1) / CLASSES_PER_OCTAVE) as u32;
    let step = 1usize << (top - STEP_SHIFT);
    (CLASSES_PER_OCTAVE + (class - 1) % CLASSES_PER_OCTAVE + 1) * step
}

/// Whether allocations of `layout` go through the cache.
fn cached(layout: Layout) -> Option<(usize, usize)> {
    if layout.size() < MIN_CACHED_BYTES || layout.align() > BLOCK_ALIGN {
        return None;
    }
    class_of(layout.size())
}

/// The free lists: for each class the address of its first cached block (0: empty); each cached
/// block's first word holds the next one's.
struct FreeLists {
    heads: [usize; CLASS_COUNT],
    cached_bytes: usize,
}

static LISTS: Mutex<FreeLists> = Mutex::new(FreeLists {
    heads: [0; CLASS_COUNT],
    cached_bytes: 0,
});
static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_CACHE_LIMIT);
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

fn lists() -> std::sync::MutexGuard<'static, FreeLists> {
    LISTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The allocator: [`System`], with large freed blocks kept for reuse (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct BlockCacheAllocator;

impl BlockCacheAllocator {
    /// The allocator (a unit: the cache is process-wide).
    pub const fn new() -> Self {
        BlockCacheAllocator
    }
}

fn block_layout(block_bytes: usize) -> Layout {
    // Every class size is a multiple of the page size and far below isize::MAX.
    Layout::from_size_align(block_bytes, BLOCK_ALIGN).unwrap_or(Layout::new::<u8>())
}

/// A cached block of `class`, taken off its list.
fn take(class: usize, block_bytes: usize) -> Option<*mut u8> {
    let mut lists = lists();
    let head = lists.heads[class];
    if head == 0 {
        return None;
    }
    // SAFETY: `head` is a cached block of at least MIN_CACHED_BYTES whose first word `give`
    // wrote; nobody else owns it while it is on the list.
    let next = unsafe { (head as *const usize).read() };
    lists.heads[class] = next;
    lists.cached_bytes -= block_bytes;
    Some(head as *mut u8)
}

/// Puts a freed block of `class` on its list; false (the caller frees it) when the cache is full.
fn give(ptr: *mut u8, class: usize, block_bytes: usize) -> bool {
    let mut lists = lists();
    if lists.cached_bytes + block_bytes > LIMIT.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: `ptr` is a block of `block_bytes` (>= one word, page-aligned) the caller no longer
    // uses; its first word links the list.
    unsafe { (ptr as *mut usize).write(lists.heads[class]) };
    lists.heads[class] = ptr as usize;
    lists.cached_bytes += block_bytes;
    true
}

// SAFETY: every block handed out is at least `layout.size()` bytes with at least
// `layout.align()` alignment (a class block of BLOCK_ALIGN, or the system's own); a block is
// returned to the list it came from because the class depends on the layout alone, which
// `dealloc` and `realloc` receive unchanged from the caller.
unsafe impl GlobalAlloc for BlockCacheAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((class, block_bytes)) = cached(layout) else {
            // SAFETY: forwarded unchanged.
            return unsafe { System.alloc(layout) };
        };
        if let Some(block) = take(class, block_bytes) {
            HITS.fetch_add(1, Ordering::Relaxed);
            return block;
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: a non-zero size.
        unsafe { System.alloc(block_layout(block_bytes)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some((class, block_bytes)) = cached(layout) else {
            // SAFETY: forwarded unchanged.
            return unsafe { System.alloc_zeroed(layout) };
        };
        if let Some(block) = take(class, block_bytes) {
            HITS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the block holds at least `layout.size()` bytes.
            unsafe { block.write_bytes(0, layout.size()) };
            return block;
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: a non-zero size.
        unsafe { System.alloc_zeroed(block_layout(block_bytes)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match cached(layout) {
            None => {
                // SAFETY: allocated by `System` with this layout (see `alloc`).
                unsafe { System.dealloc(ptr, layout) }
            }
            Some((class, block_bytes)) => {
                if !give(ptr, class, block_bytes) {
                    // SAFETY: a class block, allocated with `block_layout(block_bytes)`.
                    unsafe { System.dealloc(ptr, block_layout(block_bytes)) }
                }
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = cached(layout);
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = cached(new_layout);
        match (old, new) {
            // Both outside the cache: the system's realloc (mremap for its large blocks).
            (None, None) => {
                // SAFETY: forwarded unchanged.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
            // The same class: the block already has room.
            (Some((a, _)), Some((b, _))) if a == b => ptr,
            _ => {
                // SAFETY: `new_layout` is valid (see above).
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    // SAFETY: both blocks hold at least the copied bytes and do not overlap.
                    unsafe {
                        moved.copy_from_nonoverlapping(ptr, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

/// The bytes the cache may hold (default [`DEFAULT_CACHE_LIMIT`]).
pub fn cache_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Sets how many bytes of freed blocks the cache may hold; lowering it trims down to the new
/// limit. 0 turns caching off.
pub fn set_cache_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
    trim_to(bytes);
}

/// Hands every cached block back to the system; returns the bytes released.
pub fn trim() -> usize {
    trim_to(0)
}

fn trim_to(limit: usize) -> usize {
    let mut released = 0;
    loop {
        let victim = {
            let mut lists = lists();
            if lists.cached_bytes <= limit {
                return released;
            }
            // Largest classes first: the fewest blocks free the most memory.
            let Some(class) = (0..CLASS_COUNT).rev().find(|&c| lists.heads[c] != 0) else {
                return released;
            };
            let block_bytes = class_bytes(class);
            let head = lists.heads[class];
            // SAFETY: a cached block; its first word links the list (see `give`).
            lists.heads[class] = unsafe { (head as *const usize).read() };
            lists.cached_bytes -= block_bytes;
            (head as *mut u8, block_bytes)
        };
        // SAFETY: a class block taken off its list, allocated with `block_layout`. Freed outside
        // the lock: the system allocator may take its own.
        unsafe { System.dealloc(victim.0, block_layout(victim.1)) };
        released += victim.1;
    }
}

/// The cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockCacheStats {
    /// Bytes of freed blocks held for reuse now.
    pub cached_bytes: usize,
    /// Large allocations served from the cache.
    pub hits: u64,
    /// Large allocations that asked the system (nothing cached of their class).
    pub misses: u64,
}

/// The cache's counters now (process-wide; only meaningful where this allocator is the global
/// one).
pub fn stats() -> BlockCacheStats {
    BlockCacheStats {
        cached_bytes: lists().cached_bytes,
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_each_size_with_at_most_a_quarter_of_slack() {
        let mut previous = (0, 0);
        for size in (MIN_CACHED_BYTES..64 << 20).step_by(4093) {
            let (class, bytes) = class_of(size).unwrap();
            assert!(bytes >= size, "{size} -> {bytes}");
            assert!(bytes - size <= size / 4 + BLOCK_ALIGN, "{size} -> {bytes}");
            assert_eq!(bytes % BLOCK_ALIGN, 0);
            assert_eq!(class_bytes(class), bytes, "class {class}");
            assert!(class >= previous.0 && bytes >= previous.1);
            previous = (class, bytes);
        }
        assert_eq!(class_of(MIN_CACHED_BYTES), Some((0, MIN_CACHED_BYTES)));
        assert_eq!(
            class_of(MIN_CACHED_BYTES + 1),
            Some((1, MIN_CACHED_BYTES / 4 * 5))
        );
        assert_eq!(
            class_of(1 << MAX_CACHED_LOG2),
            Some((CLASS_COUNT - 1, 1 << MAX_CACHED_LOG2))
        );
        assert_eq!(class_of((1 << MAX_CACHED_LOG2) + 1), None);
        for class in 0..CLASS_COUNT {
            assert_eq!(class_of(class_bytes(class)).unwrap().0, class);
        }
    }

    /// Exercises the allocator directly (the tests' global allocator is the system's): one test,
    /// as the lists and the limit are process-wide.
    #[test]
    fn freed_blocks_are_reused_realloc_keeps_contents_and_trim_releases() {
        let alloc = BlockCacheAllocator::new();
        let size = 3 << 20; // 3 MiB: its own class
        let layout = Layout::from_size_align(size, 128).unwrap();
        // SAFETY: valid layouts; every block is written within its size and freed once.
        unsafe {
            let a = alloc.alloc(layout);
            assert!(!a.is_null());
            assert_eq!(a as usize % BLOCK_ALIGN, 0);
            a.write_bytes(7, size);
            alloc.dealloc(a, layout);
            let before = stats();
            assert!(before.cached_bytes >= size);
            // A slightly different size of the same class gets the same block back.
            let layout_b = Layout::from_size_align(size - 1000, 64).unwrap();
            let b = alloc.alloc(layout_b);
            assert_eq!(b, a);
            assert!(stats().hits > before.hits);
            // Zeroed allocations of a reused block are zeroed.
            alloc.dealloc(b, layout_b);
            let z = alloc.alloc_zeroed(layout);
            assert_eq!(z, a);
            assert!(std::slice::from_raw_parts(z, size).iter().all(|&v| v == 0));
            // Resizing within the class keeps the block; growing past it moves the contents.
            z.write_bytes(9, size);
            let same = alloc.realloc(z, layout, size - 4096);
            assert_eq!(same, z);
            let kept_layout = Layout::from_size_align(size - 4096, 128).unwrap();
            let moved = alloc.realloc(same, kept_layout, 9 << 20);
            assert!(!moved.is_null());
            assert!(
                std::slice::from_raw_parts(moved, size - 4096)
                    .iter()
                    .all(|&v| v == 9)
            );
            // Shrinking below the cache's sizes goes back to the system.
            let small = alloc.realloc(moved, Layout::from_size_align(9 << 20, 128).unwrap(), 100);
            assert!(
                std::slice::from_raw_parts(small, 100)
                    .iter()
                    .all(|&v| v == 9)
            );
            alloc.dealloc(small, Layout::from_size_align(100, 128).unwrap());
        }
        assert!(trim() > 0);
        assert_eq!(stats().cached_bytes, 0);

        // Large alignments bypass the cache; a full cache frees instead of keeping.
        // SAFETY: valid layouts, freed once.
        unsafe {
            let layout = Layout::from_size_align(1 << 20, 8192).unwrap();
            assert!(cached(layout).is_none());
            let p = alloc.alloc(layout);
            assert_eq!(p as usize % 8192, 0);
            alloc.dealloc(p, layout);
        }
        set_cache_limit(0);
        // SAFETY: valid layout, freed once.
        unsafe {
            let layout = Layout::from_size_align(5 << 20, 64).unwrap();
            let p = alloc.alloc(layout);
            alloc.dealloc(p, layout);
        }
        assert_eq!(stats().cached_bytes, 0);
        set_cache_limit(DEFAULT_CACHE_LIMIT);
    }
}
