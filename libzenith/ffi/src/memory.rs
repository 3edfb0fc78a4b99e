//! `zenith_allocation`: memory placed on a NUMA node, on hugepages where it can be; and the
//! library allocator's cache of freed large blocks (`zenith_block_cache_*`).

use std::ffi::c_void;

use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_core::Error;
use zenith_core::runtime::alloc::{self, HugePages, NumaAllocation, Placement};
use zenith_core::runtime::block_cache;

/// Which pages back an allocation (one of the `ZENITH_HUGEPAGES_*` values).
pub type zenith_hugepages = i32;
/// Normal (base-size) pages.
pub const ZENITH_HUGEPAGES_NONE: zenith_hugepages = 0;
/// Transparent hugepages were requested (`madvise(MADV_HUGEPAGE)` on a THP-aligned mapping);
/// the kernel backs the memory with huge pages as it can.
pub const ZENITH_HUGEPAGES_TRANSPARENT: zenith_hugepages = 1;
/// Explicit hugetlb pages (the kernel's default hugepage size), reserved and faulted in.
pub const ZENITH_HUGEPAGES_EXPLICIT: zenith_hugepages = 2;

/// How an allocation was placed on its NUMA node (one of the `ZENITH_PLACEMENT_*` values).
pub type zenith_placement = i32;
/// Not placed: no node was asked for, or placement was impossible (without
/// `ZENITH_ALLOC_STRICT_NODE`).
pub const ZENITH_PLACEMENT_NONE: zenith_placement = 0;
/// `mbind(MPOL_PREFERRED)`: pages come from the node while it has free memory.
pub const ZENITH_PLACEMENT_PREFERRED: zenith_placement = 1;
/// `mbind(MPOL_BIND)`: pages come only from the node.
pub const ZENITH_PLACEMENT_BIND: zenith_placement = 2;
/// `mbind` was refused (no NUMA in the kernel, a seccomp filter); the calling thread, pinned
/// inside the node's CPUs, touched every page so the kernel placed them on the node.
pub const ZENITH_PLACEMENT_FIRST_TOUCH: zenith_placement = 3;

/// Flag for `zenith_numa_alloc`: normal pages only (no hugetlb, no transparent hugepages).
pub const ZENITH_ALLOC_NO_HUGEPAGES: u32 = 1;
/// Flag for `zenith_numa_alloc`: no explicit hugetlb pages (leave the reserved pool to others);
/// transparent hugepages are still used.
pub const ZENITH_ALLOC_NO_HUGETLB: u32 = 2;
/// Flag for `zenith_numa_alloc`: bind strictly to the node (`MPOL_BIND`) and fail when that is
/// impossible, instead of preferring it and falling back.
pub const ZENITH_ALLOC_STRICT_NODE: u32 = 4;

const _: () = assert!(
    ZENITH_ALLOC_NO_HUGEPAGES == alloc::ALLOC_NO_HUGEPAGES
        && ZENITH_ALLOC_NO_HUGETLB == alloc::ALLOC_NO_HUGETLB
        && ZENITH_ALLOC_STRICT_NODE == alloc::ALLOC_STRICT_NODE
);

/// Memory from `zenith_numa_alloc`: its own zero-filled mapping.
///
/// Freed by `zenith_allocation_free`, which unmaps the memory.
pub struct zenith_allocation {
    inner: NumaAllocation,
}

/// Allocates `bytes` bytes of zero-filled memory from its own mapping, on NUMA node
/// `numa_node` (-1: any node), using hugepages where it can: explicit hugetlb pages when the
/// request is at least one hugepage and the pool has them, else transparent hugepages when the
/// request is at least one and THP is not disabled, else normal pages. `flags` is 0 or a
/// combination of `ZENITH_ALLOC_*`.
///
/// Placement uses `mbind` (`MPOL_PREFERRED`, or `MPOL_BIND` with `ZENITH_ALLOC_STRICT_NODE`)
/// before any page is touched; where `mbind` is refused and the calling thread is pinned inside
/// the node's CPUs (`zenith_pin_current_thread`), the pages are touched at once so they land on
/// the node. Ask `zenith_allocation_hugepages` and `zenith_allocation_placement` what was
/// obtained. The memory is page-aligned.
///
/// Ownership: on success `*out` receives a new allocation the caller frees with
/// `zenith_allocation_free`.
/// On failure: `bytes == 0`, unknown flags, `numa_node < -1` or above 1023, or (strict only) a
/// node without memory returns `ZENITH_ERR_INVALID_ARGUMENT`; strict placement where `mbind` is
/// refused returns `ZENITH_ERR_UNSUPPORTED`; no memory returns `ZENITH_ERR_IO`. `*out` is left
/// untouched.
/// NULL policy: `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_numa_alloc(
    bytes: usize,
    numa_node: i32,
    flags: u32,
    out: *mut *mut zenith_allocation,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out = args::out(out, "out")?;
        let node = match numa_node {
            -1 => None,
            n => Some(u32::try_from(n).map_err(|_| {
                Error::InvalidArgument(format!("numa_node {n} is neither -1 nor a node number"))
            })?),
        };
        let allocation = NumaAllocation::new(bytes, node, flags)?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_allocation { inner: allocation })) };
        Ok(ZENITH_OK)
    })
}

/// Returns the first byte of the allocation (page-aligned; NULL when `a` is NULL). The caller
/// may read and write `zenith_allocation_size(a)` bytes from there.
///
/// Lifetime: valid until `zenith_allocation_free(a)`.
/// Thread safety: may be called from any thread; synchronising access to the bytes is the
/// caller's business.
///
/// # Safety
/// `a` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_allocation_data(a: *const zenith_allocation) -> *mut c_void {
    ffi_boundary!(default: std::ptr::null_mut(), {
        // SAFETY: per the contract above.
        unsafe { a.as_ref() }.map_or(std::ptr::null_mut(), |a| a.inner.as_ptr().cast())
    })
}

/// Returns the size in bytes asked for (0 when `a` is NULL).
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `a` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_allocation_size(a: *const zenith_allocation) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { a.as_ref() }.map_or(0, |a| a.inner.len())
    })
}

/// Returns which pages back the allocation: `ZENITH_HUGEPAGES_NONE` (also when `a` is NULL),
/// `ZENITH_HUGEPAGES_TRANSPARENT` or `ZENITH_HUGEPAGES_EXPLICIT`.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `a` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_allocation_hugepages(
    a: *const zenith_allocation,
) -> zenith_hugepages {
    ffi_boundary!(default: ZENITH_HUGEPAGES_NONE, {
        // SAFETY: per the contract above.
        unsafe { a.as_ref() }.map_or(ZENITH_HUGEPAGES_NONE, |a| match a.inner.hugepages() {
            HugePages::None => ZENITH_HUGEPAGES_NONE,
            HugePages::Transparent => ZENITH_HUGEPAGES_TRANSPARENT,
            HugePages::Explicit => ZENITH_HUGEPAGES_EXPLICIT,
        })
    })
}

/// Returns the NUMA node the allocation was placed on, or -1 when it was not placed (no node
/// asked for, placement impossible, or `a` NULL).
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `a` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_allocation_numa_node(a: *const zenith_allocation) -> i32 {
    ffi_boundary!(default: -1, {
        // SAFETY: per the contract above.
        unsafe { a.as_ref() }
            .and_then(|a| a.inner.numa_node())
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(-1)
    })
}

/// Returns how the allocation was placed: `ZENITH_PLACEMENT_NONE` (also when `a` is NULL),
/// `ZENITH_PLACEMENT_PREFERRED`, `ZENITH_PLACEMENT_BIND` or `ZENITH_PLACEMENT_FIRST_TOUCH`.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `a` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_allocation_placement(
    a: *const zenith_allocation,
) -> zenith_placement {
    ffi_boundary!(default: ZENITH_PLACEMENT_NONE, {
        // SAFETY: per the contract above.
        unsafe { a.as_ref() }.map_or(ZENITH_PLACEMENT_NONE, |a| match a.inner.placement() {
            Placement::None => ZENITH_PLACEMENT_NONE,
            Placement::Preferred => ZENITH_PLACEMENT_PREFERRED,
            Placement::Bind => ZENITH_PLACEMENT_BIND,
            Placement::FirstTouch => ZENITH_PLACEMENT_FIRST_TOUCH,
        })
    })
}

/// Frees an allocation: its memory is unmapped.
///
/// NULL policy: `zenith_allocation_free(NULL)` does nothing.
///
/// # Safety
/// `a` is NULL or a live allocation, not used afterwards (nor its memory).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_allocation_free(a: *mut zenith_allocation) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(a) }
    })
}

/// Returns the bytes of freed large blocks the library holds for reuse now.
///
/// The library's allocator keeps freed blocks of 128 KiB and more (the decode buffers of Parquet
/// row groups and CSV/JSON chunks, read buffers) up to a limit (512 MiB unless
/// `zenith_block_cache_set_limit` changed it), so the next chunk reuses resident pages instead of
/// faulting in new ones. This memory stays in the process after the loaders are gone until
/// `zenith_block_cache_trim`.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zenith_block_cache_bytes() -> usize {
    ffi_boundary!(default: 0, { block_cache::stats().cached_bytes })
}

/// Hands every freed block the library holds for reuse back to the system (for example after
/// the last loader closed, or before a memory-hungry phase of the program); returns the bytes
/// released.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zenith_block_cache_trim() -> usize {
    ffi_boundary!(default: 0, { block_cache::trim() })
}

/// Sets how many bytes of freed large blocks the library may hold for reuse (default 512 MiB);
/// lowering it releases what is above the new limit at once; 0 turns the reuse off.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zenith_block_cache_set_limit(bytes: usize) {
    ffi_boundary!(default: (), { block_cache::set_cache_limit(bytes) })
}
