//! Heap buffers aligned for `O_DIRECT`, shared by the `pread` and `io_uring` backends.

use std::alloc::Layout;
use std::fmt;
use std::io;

use super::too_large;

/// The alignment `O_DIRECT` reads use for offsets, lengths and memory (enough for every logical
/// block size up to 4 KiB).
pub(super) const DIRECT_ALIGN: u64 = 4096;

pub(super) fn align_down(value: u64, align: u64) -> u64 {
    value / align * align
}

pub(super) fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

/// Heap memory aligned for `O_DIRECT`.
pub(super) struct AlignedBuf {
    pub(super) ptr: *mut u8,
    pub(super) len: usize,
}

// SAFETY: a plain heap allocation owned by this value.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    pub(super) fn new(len: usize) -> io::Result<Self> {
        let layout = Self::layout(len)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        Ok(AlignedBuf { ptr, len })
    }

    fn layout(len: usize) -> io::Result<Layout> {
        Layout::from_size_align(len.max(1), DIRECT_ALIGN as usize).map_err(|_| too_large())
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, Self::layout(self.len).expect("valid layout")) };
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

// ---- io_uring -----------------------------------------------------------------------------------
