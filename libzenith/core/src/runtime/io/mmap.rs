//! The `mmap` backend, and the one place the library maps files: [`map_file`] maps a whole file
//! copy-on-write; [`MmapReader`] serves ranges as zero-copy slices of it, and the Arrow IPC
//! sources decode in place from it through [`into_buffer`].
//!
//! A mapping is only as stable as its file: a page of a file truncated under it faults
//! (`SIGBUS`) when touched, and a page rewritten under it shows the new bytes. Readers therefore
//! keep the file's [`FileIdentity`] from the moment it was opened and check it before they touch
//! the mapping (see [`crate::dataset::Source`]); what remains is the window between such a check
//! and the access.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;
use bytes::Bytes;
use memmap2::{MmapMut, MmapOptions};

use super::file::open_regular;
use super::{FileIdentity, IoBackend, IoStats, RangeRead, check_ranges};

/// The file mapped into memory; ranges are zero-copy slices of the mapping.
#[derive(Debug)]
pub struct MmapReader {
    data: Bytes,
    identity: FileIdentity,
    stats: Arc<IoStats>,
}

impl MmapReader {
    /// Maps `path` (an empty file maps to nothing). Only regular files are mapped.
    pub fn open(path: &Path, stats: Arc<IoStats>) -> io::Result<Self> {
        let file = open_regular(path, 0)?;
        let identity = FileIdentity::of_file(&file)?;
        let data = if identity.len == 0 {
            Bytes::new()
        } else {
            Bytes::from_owner(map_file(&file, identity.len)?)
        };
        Ok(MmapReader {
            data,
            identity,
            stats,
        })
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

    fn identity(&self) -> Option<&FileIdentity> {
        Some(&self.identity)
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

/// Maps the first `len` bytes of `file` (its length when it was opened) private and writable:
/// copy-on-write.
///
/// Writes through the mapping (a consumer writing into a zero-copy tensor, which torch does for
/// in-place ops whatever the DLPack read-only flag says) copy the page they touch into memory of
/// this process: they never reach the file, never fault, and cost nothing until made. The
/// mapping does not reserve swap for those copies (`MAP_NORESERVE`), so mapping a file larger
/// than memory is no commitment of memory; under `vm.overcommit_memory=2` the kernel charges
/// the whole length anyway and a large file may be refused with `ENOMEM`.
///
/// Pages nobody wrote keep following the file: the caller checks the file's identity before
/// touching them (see the module docs).
pub fn map_file(file: &File, len: u64) -> io::Result<MmapMut> {
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
    // SAFETY: the mapping is private (writes stay in this process) and owned by the returned
    // value. The file changing underneath is the caller's to detect (module docs): the mapping
    // itself stays valid memory, a truncated page faults rather than being reused.
    unsafe { MmapOptions::new().len(len).no_reserve_swap().map_copy(file) }
}

/// Wraps a mapping in an Arrow buffer that owns it, so record batches decoded from the mapping
/// keep it alive for as long as any of them (or their C exports) lives.
pub fn into_buffer(mut mmap: MmapMut) -> Buffer {
    let len = mmap.len();
    let ptr = NonNull::new(mmap.as_mut_ptr()).unwrap_or(NonNull::dangling());
    // SAFETY: `ptr` is valid for `len` bytes for as long as the `MmapMut`, which the buffer owns
    // through the `Arc`, is alive; Rust never writes through it (consumers of zero-copy exports
    // may, into this process's private copy-on-write pages). An empty mapping yields an empty
    // buffer over a dangling, never-read pointer.
    unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(mmap)) }
}
