//! The `mmap` backend, and the one place the library maps files: [`map_file`] maps a whole file
//! read-only; [`MmapReader`] serves ranges as zero-copy slices of it, and the Arrow IPC sources
//! decode in place from it through [`into_buffer`].

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;
use bytes::Bytes;
use memmap2::Mmap;

use super::{IoBackend, IoStats, RangeRead, check_ranges};

/// The file mapped into memory; ranges are zero-copy slices of the mapping.
#[derive(Debug)]
pub struct MmapReader {
    data: Bytes,
    stats: Arc<IoStats>,
}

impl MmapReader {
    /// Maps `path` (an empty file maps to nothing).
    pub fn open(path: &Path, stats: Arc<IoStats>) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let data = if len == 0 {
            Bytes::new()
        } else {
            Bytes::from_owner(map_file(&file)?)
        };
        Ok(MmapReader { data, stats })
    }

    /// The whole mapping.
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }
}

impl RangeRead for MmapReader {
    fn backend(&self) -> IoBackend {
        IoBackend::Mmap
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        let total = check_ranges(ranges, self.len())?;
        self.stats.record(IoBackend::Mmap, total as u64, None);
        Ok(ranges
            .iter()
            .map(|r| self.data.slice(r.start as usize..r.end as usize))
            .collect())
    }
}

/// Maps the whole of `file` read-only.
///
/// Like every memory-mapped reader (pyarrow's included), a file truncated by another process
/// while mapped faults on access; `zenith_loader_open` documents that datasets must not change
/// while loaders read them.
pub fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only and owned by the returned value; the rule above (the file
    // is not truncated while mapped) is the caller's documented contract.
    unsafe { Mmap::map(file) }
}

/// Wraps a mapping in an Arrow buffer that owns it, so record batches decoded from the mapping
/// keep it alive for as long as any of them (or their C exports) lives.
pub fn into_buffer(mmap: Mmap) -> Buffer {
    let len = mmap.len();
    let ptr = NonNull::new(mmap.as_ptr() as *mut u8).unwrap_or(NonNull::dangling());
    // SAFETY: `ptr` is valid for `len` bytes for as long as the `Mmap`, which the buffer owns
    // through the `Arc`, is alive; the mapping is never written through. An empty mapping
    // yields an empty buffer over a dangling, never-read pointer.
    unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(mmap)) }
}
