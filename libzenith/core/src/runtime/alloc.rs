//! Memory placed on a NUMA node, on hugepages where it can be: [`NumaAllocation`].
//!
//! An allocation is an anonymous private mapping (zero-filled), obtained in the first way that
//! works of:
//!
//! 1. explicit hugetlb pages (`MAP_HUGETLB`, the kernel's default hugepage size), when the
//!    request is at least one such page and the hugepage pool has enough free pages;
//! 2. transparent hugepages: a mapping aligned to the THP size and advised with
//!    `madvise(MADV_HUGEPAGE)`, when the request is at least one THP and THP is not disabled
//!    (`/sys/kernel/mm/transparent_hugepage/enabled` is not `[never]`);
//! 3. normal pages.
//!
//! Placement on node `n` uses `mbind` (`MPOL_PREFERRED`, or `MPOL_BIND` with
//! [`ALLOC_STRICT_NODE`]) before any page is touched. Where `mbind` is refused (no NUMA in the
//! kernel, a seccomp filter) and the calling thread is pinned inside node `n`'s CPUs, every page
//! is touched at once instead, so the kernel's first-touch policy puts it on `n`. What was
//! obtained is recorded: [`NumaAllocation::hugepages`] and [`NumaAllocation::placement`].
//!
//! [`NumaAllocation::buffer`] makes Arrow buffers over the memory: the allocation is unmapped
//! when the last buffer (and the last `Arc`) is dropped, e.g. by an exported array's `release`.

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use arrow_buffer::Buffer;

use crate::error::{Error, Result};
use crate::runtime::{affinity, topology};

/// Flag: normal pages only (no hugetlb, no THP advice).
pub const ALLOC_NO_HUGEPAGES: u32 = 1;
/// Flag: no explicit hugetlb pages (leave the reserved pool to others); THP is still used.
pub const ALLOC_NO_HUGETLB: u32 = 1 << 1;
/// Flag: place strictly on the node (`MPOL_BIND`) and fail when that is impossible, instead of
/// preferring it (`MPOL_PREFERRED`) and falling back.
pub const ALLOC_STRICT_NODE: u32 = 1 << 2;
/// Every flag this version knows.
pub const ALLOC_ALL_FLAGS: u32 = ALLOC_NO_HUGEPAGES | ALLOC_NO_HUGETLB | ALLOC_STRICT_NODE;

/// The largest NUMA node number accepted (the kernel's MAX_NUMNODES is at most 1024).
pub const MAX_NUMA_NODE: u32 = 1023;

/// Which pages back an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePages {
    /// Normal (base-size) pages.
    None,
    /// Transparent hugepages were requested (`MADV_HUGEPAGE` on a THP-aligned mapping); the
    /// kernel backs it with huge pages as it can (`AnonHugePages` in `/proc/self/smaps`).
    Transparent,
    /// Explicit hugetlb pages of the kernel's default hugepage size, reserved at mapping time.
    Explicit,
}

/// How an allocation was placed on its NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Not placed: no node was asked for, or placement was impossible (not strict).
    None,
    /// `mbind(MPOL_PREFERRED)`: pages come from the node while it has memory.
    Preferred,
    /// `mbind(MPOL_BIND)`: pages come only from the node.
    Bind,
    /// `mbind` was refused; the pages were touched by this thread, pinned inside the node's
    /// CPUs, so the kernel placed them on the node.
    FirstTouch,
}

static LIVE_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Allocations alive in this process and the bytes they map (for tests and telemetry).
pub fn live_allocations() -> (usize, usize) {
    (LIVE_ALLOCATIONS.load(Relaxed), LIVE_BYTES.load(Relaxed))
}

/// Zero-filled memory from its own mapping, placed and paged as the module docs describe.
/// Unmapped on drop.
#[derive(Debug)]
pub struct NumaAllocation {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
    hugepages: HugePages,
    placement: Placement,
    node: Option<u32>,
}

// SAFETY: the mapping is owned by this value alone; shared access hands out only `&[u8]` (or
// raw pointers whose use the caller justifies), so it may move and be shared across threads.
unsafe impl Send for NumaAllocation {}
// SAFETY: as above.
unsafe impl Sync for NumaAllocation {}

impl NumaAllocation {
    /// Maps `len` bytes (zero-filled), on `numa_node` when given, with the `ALLOC_*` `flags`.
    ///
    /// Fails with [`Error::InvalidArgument`] for `len == 0`, unknown flags, a node above
    /// [`MAX_NUMA_NODE`], or (strict only) a node the kernel does not have; with
    /// [`Error::Unsupported`] when strict placement is impossible because `mbind` is refused;
    /// with [`Error::Io`] when the kernel has no memory to map.
    pub fn new(len: usize, numa_node: Option<u32>, flags: u32) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidArgument(
                "an allocation needs at least one byte".into(),
            ));
        }
        if flags & !ALLOC_ALL_FLAGS != 0 {
            return Err(Error::InvalidArgument(format!(
                "unknown allocation flags {:#x}",
                flags & !ALLOC_ALL_FLAGS
            )));
        }
        if let Some(node) = numa_node.filter(|n| *n > MAX_NUMA_NODE) {
            return Err(Error::InvalidArgument(format!(
                "NUMA node {node} is out of range (at most {MAX_NUMA_NODE})"
            )));
        }
        if len > isize::MAX as usize / 2 {
            return Err(Error::InvalidArgument(format!(
                "{len} bytes cannot be mapped"
            )));
        }
        let strict = flags & ALLOC_STRICT_NODE != 0;
        let hugepages_ok = flags & ALLOC_NO_HUGEPAGES == 0;

        let (ptr, mapped, hugepages) = match hugetlb_size() {
            Some(huge)
                if hugepages_ok
                    && flags & ALLOC_NO_HUGETLB == 0
                    && len >= huge
                    && hugetlb_pool_has(huge, len.div_ceil(huge), numa_node.filter(|_| strict)) =>
            {
                let mapped = round_up(len, huge);
                match map(mapped, libc::MAP_HUGETLB) {
                    Ok(ptr) => (ptr, mapped, HugePages::Explicit),
                    Err(_) => map_transparent_or_normal(len, hugepages_ok)?,
                }
            }
            _ => map_transparent_or_normal(len, hugepages_ok)?,
        };
        let mut allocation = NumaAllocation {
            ptr,
            len,
            mapped,
            hugepages,
            placement: Placement::None,
            node: None,
        };
        LIVE_ALLOCATIONS.fetch_add(1, Relaxed);
        LIVE_BYTES.fetch_add(mapped, Relaxed);

        if let Some(node) = numa_node {
            // On failure `allocation` is dropped: the mapping goes with it.
            allocation.place(node, strict)?;
        }
        if allocation.hugepages == HugePages::Explicit {
            // Fault the reserved hugepages in now, under the placement just set, so a pool
            // shortfall cannot surface later as SIGBUS in someone's loop.
            allocation.touch(hugetlb_size().unwrap_or(page_size()));
        }
        Ok(allocation)
    }

    fn place(&mut self, node: u32, strict: bool) -> Result<()> {
        let mode = if strict {
            libc::MPOL_BIND
        } else {
            libc::MPOL_PREFERRED
        };
        match mbind(self.ptr.as_ptr(), self.mapped, mode, node) {
            Ok(()) => {
                self.placement = if strict {
                    Placement::Bind
                } else {
                    Placement::Preferred
                };
                self.node = Some(node);
                Ok(())
            }
            Err(errno) if strict => {
                let os = std::io::Error::from_raw_os_error(errno);
                Err(if errno == libc::EINVAL {
                    Error::InvalidArgument(format!(
                        "cannot bind memory to NUMA node {node}: no such node with memory ({os})"
                    ))
                } else {
                    Error::Unsupported(format!("cannot bind memory to NUMA node {node}: {os}"))
                })
            }
            Err(_) => {
                // First touch by this thread places the pages where it runs: on `node` when
                // every CPU it may use belongs to `node`.
                let node_cpus = node_cpus(Path::new(topology::DEFAULT_SYSFS_ROOT), node);
                let mine = affinity::current_thread_affinity().unwrap_or_default();
                if !node_cpus.is_empty()
                    && !mine.is_empty()
                    && mine.iter().all(|c| node_cpus.contains(c))
                {
                    self.touch(page_size());
                    self.placement = Placement::FirstTouch;
                    self.node = Some(node);
                }
                Ok(())
            }
        }
    }

    /// Writes a zero to each page (the memory is zero already), faulting it in.
    fn touch(&mut self, page: usize) {
        for offset in (0..self.mapped).step_by(page.max(1)) {
            // SAFETY: `offset < mapped`, inside the writable mapping this value owns.
            unsafe { self.ptr.as_ptr().add(offset).write_volatile(0) };
        }
    }

    /// The first byte (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes asked for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: allocations have at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes mapped (the request rounded up to whole pages of the kind obtained).
    pub fn mapped_len(&self) -> usize {
        self.mapped
    }

    /// Which pages back the allocation.
    pub fn hugepages(&self) -> HugePages {
        self.hugepages
    }

    /// How it was placed.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The node it was placed on, `None` when not placed.
    pub fn numa_node(&self) -> Option<u32> {
        self.node
    }

    /// The memory, read-only.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes of the mapping this value owns, initialised (zero or written).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The memory, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// An Arrow buffer over bytes `offset..offset + len` that keeps the allocation alive.
    ///
    /// Panics when the range is outside the allocation.
    pub fn buffer(this: &Arc<Self>, offset: usize, len: usize) -> Buffer {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= this.len),
            "buffer {offset}+{len} outside an allocation of {} bytes",
            this.len
        );
        // SAFETY: `offset <= len`, so the pointer is inside (or one past) the mapping.
        let ptr = unsafe { NonNull::new_unchecked(this.ptr.as_ptr().add(offset)) };
        // SAFETY: the range is inside the mapping, which lives as long as the `Arc` the buffer
        // holds; it is only read through `&` from now on (callers wrote it before sharing).
        unsafe { Buffer::from_custom_allocation(ptr, len, this.clone()) }
    }
}

impl Drop for NumaAllocation {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this address and length, and is unmapped
        // once, here.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
        LIVE_ALLOCATIONS.fetch_sub(1, Relaxed);
        LIVE_BYTES.fetch_sub(self.mapped, Relaxed);
    }
}

/// Maps THP-aligned memory advised for transparent hugepages when allowed and worthwhile, else
/// normal pages.
fn map_transparent_or_normal(
    len: usize,
    hugepages_ok: bool,
) -> Result<(NonNull<u8>, usize, HugePages)> {
    if let Some(thp) = thp_size().filter(|thp| hugepages_ok && len >= *thp) {
        let mapped = round_up(len, thp);
        // Over-map by one THP, then trim both ends to a THP-aligned range.
        let raw = map(mapped + thp, 0)?;
        let start = raw.as_ptr() as usize;
        let aligned = round_up(start, thp);
        // SAFETY: both trimmed ranges lie inside the mapping just made, page-aligned.
        unsafe {
            if aligned > start {
                libc::munmap(raw.as_ptr().cast(), aligned - start);
            }
            let tail = start + mapped + thp - (aligned + mapped);
            if tail > 0 {
                libc::munmap((aligned + mapped) as *mut libc::c_void, tail);
            }
        }
        let ptr = NonNull::new(aligned as *mut u8).expect("inside a mapping");
        // SAFETY: `ptr..ptr + mapped` is a mapping owned here.
        let advised = unsafe { libc::madvise(ptr.as_ptr().cast(), mapped, libc::MADV_HUGEPAGE) };
        let kind = if advised == 0 {
            HugePages::Transparent
        } else {
            HugePages::None
        };
        return Ok((ptr, mapped, kind));
    }
    let mapped = round_up(len, page_size());
    Ok((map(mapped, 0)?, mapped, HugePages::None))
}

/// An anonymous private read-write mapping of `len` bytes.
fn map(len: usize, extra_flags: libc::c_int) -> Result<NonNull<u8>> {
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(Error::Io {
            path: PathBuf::from(format!("anonymous mapping of {len} bytes")),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(NonNull::new(ptr.cast()).expect("mmap never returns NULL on success"))
}

/// `mbind(addr, len, mode, {node})`; the errno on failure.
fn mbind(addr: *mut u8, len: usize, mode: libc::c_int, node: u32) -> std::result::Result<(), i32> {
    let node = node as usize;
    let mut mask = vec![0u64; node / 64 + 1];
    mask[node / 64] |= 1 << (node % 64);
    // The kernel reads `maxnode - 1` bits (a historical off-by-one every caller follows).
    let maxnode = mask.len() * 64 + 1;
    // SAFETY: `addr..addr + len` is a mapping owned by the caller; `mask` holds `maxnode - 1`
    // readable bits.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr,
            len,
            mode,
            mask.as_ptr(),
            maxnode,
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    }
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// The base page size.
pub fn page_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
    })
}

/// The kernel's default hugetlb page size (`Hugepagesize` in `/proc/meminfo`), if any.
pub fn hugetlb_size() -> Option<usize> {
    static SIZE: OnceLock<Option<usize>> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("Hugepagesize:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        (kib > 0).then_some(kib * 1024)
    })
}

/// The THP size (`hpage_pmd_size`) when transparent hugepages are not disabled.
pub fn thp_size() -> Option<usize> {
    static SIZE: OnceLock<Option<usize>> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let dir = Path::new(topology::DEFAULT_SYSFS_ROOT).join("kernel/mm/transparent_hugepage");
        let enabled = std::fs::read_to_string(dir.join("enabled")).ok()?;
        if enabled.contains("[never]") {
            return None;
        }
        let size = std::fs::read_to_string(dir.join("hpage_pmd_size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(2 << 20);
        Some(size)
    })
}

/// Whether the hugetlb pool of `size` pages has `pages` free: the node's pool for a strict
/// node (the kernel takes pages only from there), else the machine's (reservations are
/// machine-wide and mmap itself fails cleanly when they cannot be made).
fn hugetlb_pool_has(size: usize, pages: usize, strict_node: Option<u32>) -> bool {
    let kib = size / 1024;
    let sys = Path::new(topology::DEFAULT_SYSFS_ROOT);
    let file = match strict_node {
        Some(node) => sys.join(format!(
            "devices/system/node/node{node}/hugepages/hugepages-{kib}kB/free_hugepages"
        )),
        None => sys.join(format!(
            "kernel/mm/hugepages/hugepages-{kib}kB/free_hugepages"
        )),
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .is_some_and(|free| free >= pages)
}

/// The CPUs of `node` under the sysfs root `sys` (empty when unknown).
fn node_cpus(sys: &Path, node: u32) -> Vec<u32> {
    std::fs::read_to_string(sys.join(format!("devices/system/node/node{node}/cpulist")))
        .ok()
        .and_then(|text| topology::parse_cpu_list(&text).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_allocations_use_normal_pages_and_are_zeroed() {
        let mut a = NumaAllocation::new(100, None, 0).unwrap();
        assert_eq!(a.len(), 100);
        assert_eq!(a.mapped_len(), page_size());
        assert_eq!(a.hugepages(), HugePages::None);
        assert_eq!(a.placement(), Placement::None);
        assert_eq!(a.numa_node(), None);
        assert!(a.as_slice().iter().all(|b| *b == 0));
        a.as_mut_slice()[99] = 7;
        assert_eq!(a.as_slice()[99], 7);
        assert_eq!(a.as_ptr() as usize % page_size(), 0);
    }

    #[test]
    fn arguments_out_of_domain_are_refused() {
        assert!(matches!(
            NumaAllocation::new(0, None, 0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            NumaAllocation::new(10, None, 1 << 10),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            NumaAllocation::new(10, Some(MAX_NUMA_NODE + 1), 0),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn no_hugepages_flag_gives_normal_pages() {
        let a = NumaAllocation::new(8 << 20, None, ALLOC_NO_HUGEPAGES).unwrap();
        assert_eq!(a.hugepages(), HugePages::None);
        assert_eq!(a.mapped_len(), 8 << 20);
    }

    #[test]
    fn buffers_keep_the_allocation_alive() {
        let mut a = NumaAllocation::new(64, None, 0).unwrap();
        a.as_mut_slice()[..4].copy_from_slice(&[1, 2, 3, 4]);
        let a = Arc::new(a);
        let buffer = NumaAllocation::buffer(&a, 1, 3);
        drop(a);
        assert_eq!(buffer.as_slice(), &[2, 3, 4]);
    }
}
