//! `zenith_ring`: a lock-free bounded queue of fixed-size elements for C programs (the rings of
//! `runtime::ring`, over bytes).

use std::ffi::c_void;
use std::mem::MaybeUninit;

use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, ZENITH_WOULD_BLOCK, zenith_status};
use zenith_core::runtime::ring::{ByteRing, RingKind};
use zenith_core::{Error, Result};

/// A ring protocol for `zenith_ring_new` (one of the `ZENITH_RING_*` values).
pub type zenith_ring_kind = i32;

/// Single producer, single consumer: at any moment at most one thread pushes and at most one
/// thread pops. The cheapest kind.
pub const ZENITH_RING_SPSC: zenith_ring_kind = 0;
/// Multiple producers, multiple consumers: any threads push and pop concurrently.
pub const ZENITH_RING_MPMC: zenith_ring_kind = 1;

/// A bounded, lock-free ring (FIFO queue) of fixed-size elements, copied in and out by value.
///
/// Created by `zenith_ring_new`, freed by `zenith_ring_free`. Push and pop never block: a full
/// ring (on push) or an empty ring (on pop) returns `ZENITH_WOULD_BLOCK`, and waiting is the
/// caller's choice.
pub struct zenith_ring {
    inner: ByteRing,
}

/// The ring kind of a C value.
fn kind_from_c(kind: zenith_ring_kind) -> Result<RingKind> {
    match kind {
        ZENITH_RING_SPSC => Ok(RingKind::Spsc),
        ZENITH_RING_MPMC => Ok(RingKind::Mpmc),
        other => Err(Error::InvalidArgument(format!(
            "unknown ring kind {other} (ZENITH_RING_SPSC = {ZENITH_RING_SPSC}, \
             ZENITH_RING_MPMC = {ZENITH_RING_MPMC})"
        ))),
    }
}

/// The byte length of `n` elements of `ring`, or an error when it overflows.
fn byte_len(ring: &ByteRing, n: usize) -> Result<usize> {
    n.checked_mul(ring.element_size())
        .filter(|&bytes| bytes <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{n} elements of {} bytes overflow the address space",
                ring.element_size()
            ))
        })
}

/// Creates a ring of at least `capacity` elements of `element_size` bytes each.
///
/// The capacity is rounded up to a power of two, at least 2 (`zenith_ring_capacity` reports it).
/// `kind` is `ZENITH_RING_SPSC` or `ZENITH_RING_MPMC`.
///
/// Ownership: on success `*out` receives a new ring the caller frees with `zenith_ring_free`.
/// On failure: returns `ZENITH_ERR_INVALID_ARGUMENT` when `capacity` or `element_size` is 0,
/// `kind` is unknown, or the ring does not fit in memory; `*out` is left untouched.
/// NULL policy: `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_new(
    capacity: usize,
    element_size: usize,
    kind: zenith_ring_kind,
    out: *mut *mut zenith_ring,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out = args::out(out, "out")?;
        let kind = kind_from_c(kind)?;
        let ring = ByteRing::new(kind, capacity, element_size)?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_ring { inner: ring })) };
        Ok(ZENITH_OK)
    })
}

/// Pushes one element: copies `element_size` bytes from `element` to the back of the ring.
///
/// Returns `ZENITH_OK` when pushed, `ZENITH_WOULD_BLOCK` when the ring is full (nothing copied;
/// an MPMC ring may also say so for the moment a pop of the oldest element is in progress).
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` when another thread is pushing to the same SPSC
/// ring at this moment (against its contract; the ring stays intact and nothing is copied).
/// NULL policy: `ring` and `element` must not be NULL; `err` may be NULL.
/// Thread safety: MPMC rings take any number of concurrent callers. SPSC rings take one pushing
/// thread at a time (which may run concurrently with one popping thread); a different thread
/// may push later if the caller orders the two (a mutex, a join, ...).
///
/// # Safety
/// `ring` is NULL or live; `element` is NULL or points to `element_size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_push(
    ring: *mut zenith_ring,
    element: *const c_void,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above (only shared access is needed).
        let ring = &unsafe { args::borrow(ring.cast_const(), "ring") }?.inner;
        if element.is_null() {
            return Err(Error::NullArgument("element"));
        }
        // SAFETY: `element` points to `element_size` readable bytes per the contract.
        let bytes = unsafe { std::slice::from_raw_parts(element.cast::<u8>(), ring.element_size()) };
        Ok(if ring.push(bytes)? {
            ZENITH_OK
        } else {
            ZENITH_WOULD_BLOCK
        })
    })
}

/// Pops one element: copies the oldest element's `element_size` bytes to `out_element`.
///
/// Returns `ZENITH_OK` when popped, `ZENITH_WOULD_BLOCK` when the ring is empty (`out_element`
/// untouched; an MPMC ring may also say so for the moment the next element's push is in
/// progress).
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` when another thread is popping from the same SPSC
/// ring at this moment (against its contract; nothing is copied).
/// NULL policy: `ring` and `out_element` must not be NULL; `err` may be NULL.
/// Thread safety: MPMC rings take any number of concurrent callers; SPSC rings take one popping
/// thread at a time, concurrently with one pushing thread.
///
/// # Safety
/// `ring` is NULL or live; `out_element` is NULL or points to `element_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_pop(
    ring: *mut zenith_ring,
    out_element: *mut c_void,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let ring = &unsafe { args::borrow(ring.cast_const(), "ring") }?.inner;
        let out = args::out(out_element, "out_element")?;
        // SAFETY: `out` points to `element_size` writable bytes per the contract; they are
        // treated as uninitialised.
        let out = unsafe {
            std::slice::from_raw_parts_mut(out.cast::<MaybeUninit<u8>>(), ring.element_size())
        };
        Ok(if ring.pop(out)? {
            ZENITH_OK
        } else {
            ZENITH_WOULD_BLOCK
        })
    })
}

/// Pushes up to `n` elements, stored back to back at `elements` (`n * element_size` bytes), in
/// order, as many as fit; `*pushed` receives how many (a prefix of the array).
///
/// Returns `ZENITH_OK` when at least one element was pushed or `n == 0`, and
/// `ZENITH_WOULD_BLOCK` when the ring is full (`*pushed == 0`). The elements of one call are
/// consecutive in the ring. A batch costs about as much as one push plus the copies.
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` when `n * element_size` overflows or another thread
/// is pushing to the same SPSC ring at this moment; `*pushed` is left untouched.
/// NULL policy: `ring` and `pushed` must not be NULL; `elements` may be NULL only when `n == 0`;
/// `err` may be NULL.
/// Thread safety: as `zenith_ring_push`.
///
/// # Safety
/// `ring` is NULL or live; `elements` is NULL or points to `n * element_size` readable bytes;
/// `pushed` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_push_many(
    ring: *mut zenith_ring,
    elements: *const c_void,
    n: usize,
    pushed: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let ring = &unsafe { args::borrow(ring.cast_const(), "ring") }?.inner;
        let pushed = args::out(pushed, "pushed")?;
        let count = if n == 0 {
            0
        } else {
            if elements.is_null() {
                return Err(Error::NullArgument("elements"));
            }
            let len = byte_len(ring, n)?;
            // SAFETY: `elements` points to `n * element_size` readable bytes per the contract.
            let bytes = unsafe { std::slice::from_raw_parts(elements.cast::<u8>(), len) };
            ring.push_many(bytes)?
        };
        // SAFETY: `pushed` is non-NULL and writable per the contract.
        unsafe { pushed.write(count) };
        Ok(if count == 0 && n > 0 {
            ZENITH_WOULD_BLOCK
        } else {
            ZENITH_OK
        })
    })
}

/// Pops up to `cap` of the oldest elements into `out`, back to back (`cap * element_size`
/// bytes of room), in order; `*popped` receives how many.
///
/// Returns `ZENITH_OK` when at least one element was popped or `cap == 0`, and
/// `ZENITH_WOULD_BLOCK` when the ring is empty (`*popped == 0`). Bytes of `out` past the popped
/// elements are untouched.
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` when `cap * element_size` overflows or another
/// thread is popping from the same SPSC ring at this moment; `*popped` is left untouched.
/// NULL policy: `ring` and `popped` must not be NULL; `out` may be NULL only when `cap == 0`;
/// `err` may be NULL.
/// Thread safety: as `zenith_ring_pop`.
///
/// # Safety
/// `ring` is NULL or live; `out` is NULL or points to `cap * element_size` writable bytes;
/// `popped` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_pop_many(
    ring: *mut zenith_ring,
    out: *mut c_void,
    cap: usize,
    popped: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let ring = &unsafe { args::borrow(ring.cast_const(), "ring") }?.inner;
        let popped = args::out(popped, "popped")?;
        let count = if cap == 0 {
            0
        } else {
            let out = args::out(out, "out")?;
            let len = byte_len(ring, cap)?;
            // SAFETY: `out` points to `cap * element_size` writable bytes per the contract;
            // they are treated as uninitialised.
            let out = unsafe { std::slice::from_raw_parts_mut(out.cast::<MaybeUninit<u8>>(), len) };
            ring.pop_many(out)?
        };
        // SAFETY: `popped` is non-NULL and writable per the contract.
        unsafe { popped.write(count) };
        Ok(if count == 0 && cap > 0 {
            ZENITH_WOULD_BLOCK
        } else {
            ZENITH_OK
        })
    })
}

/// Returns the number of elements in `ring` (0 when `ring` is NULL).
///
/// Thread safety: may be called from any thread at any time; with pushes or pops in flight the
/// answer is a snapshot that may already be stale.
///
/// # Safety
/// `ring` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_len(ring: *const zenith_ring) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { ring.as_ref() }.map_or(0, |r| r.inner.len())
    })
}

/// Returns the capacity of `ring` in elements: the requested capacity rounded up to a power of
/// two, at least 2 (0 when `ring` is NULL).
///
/// Thread safety: may be called from any thread at any time.
///
/// # Safety
/// `ring` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_capacity(ring: *const zenith_ring) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { ring.as_ref() }.map_or(0, |r| r.inner.capacity())
    })
}

/// Frees a ring and the elements still in it (plain bytes: nothing they point to is freed).
///
/// NULL policy: `zenith_ring_free(NULL)` does nothing.
/// Thread safety: no other call on `ring` may be in flight or follow.
///
/// # Safety
/// `ring` is NULL or a live ring, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_ring_free(ring: *mut zenith_ring) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(ring) }
    })
}
