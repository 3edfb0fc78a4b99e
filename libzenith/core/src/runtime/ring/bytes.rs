//! [`ByteRing`]: a ring of fixed-size byte elements, SPSC or MPMC, shared by reference — the
//! ring behind the C API's `zenith_ring`.
//!
//! It runs the same index protocols as [`SpscRing`](super::SpscRing) and
//! [`MpmcRing`](super::MpmcRing) over untyped storage whose element size is chosen at run time.
//! An SPSC byte ring keeps both cursors in the one shared object (a C handle cannot be split in
//! two); each cursor is guarded by a flag, so a second thread pushing (or popping) while another
//! does is refused with an error instead of corrupting the ring.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicBool, AtomicUsize};

use crossbeam_utils::CachePadded;

use super::mpmc::{MpmcIndices, Stamps};
use super::spsc::{ConsumerCursor, ProducerCursor, SpscIndices};
use crate::error::{Error, Result};

/// Which protocol a [`ByteRing`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingKind {
    /// One pushing thread and one popping thread at a time.
    Spsc,
    /// Any threads push and pop concurrently.
    Mpmc,
}

/// A bounded ring of elements of `element_size` bytes each, copied in and out.
pub struct ByteRing {
    element_size: usize,
    capacity: usize,
    imp: Imp,
}

enum Imp {
    Spsc(SpscBytes),
    Mpmc(MpmcBytes),
}

// SAFETY: the element bytes are plain data owned by whoever claimed their slot (the MPMC
// protocol) or by the one thread holding a side's flag (SPSC), handed over with Release/Acquire
// pairs on the indices or stamps; a side's cursor is only touched under its flag.
unsafe impl Sync for ByteRing {}

impl ByteRing {
    /// A ring of at least `capacity` elements (rounded up to a power of two, at least
    /// [`MIN_CAPACITY`](super::MIN_CAPACITY)) of `element_size` bytes.
    ///
    /// Fails with [`Error::InvalidArgument`] when `capacity` or `element_size` is zero, or the
    /// ring would not fit in memory (the allocation is attempted, never aborts the process).
    pub fn new(kind: RingKind, capacity: usize, element_size: usize) -> Result<Self> {
        if element_size == 0 {
            return Err(Error::InvalidArgument(
                "a ring's element size must be at least 1 byte".into(),
            ));
        }
        let slots = super::slots_for(capacity).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "ring capacity {capacity} is out of range (1 to {})",
                usize::MAX / 2 + 1
            ))
        })?;
        let too_big = || {
            Error::InvalidArgument(format!(
                "a ring of {slots} elements of {element_size} bytes does not fit in memory"
            ))
        };
        let imp = match kind {
            RingKind::Spsc => {
                let bytes = slots.checked_mul(element_size).ok_or_else(too_big)?;
                Imp::Spsc(SpscBytes::new(slots, bytes).map_err(|_| too_big())?)
            }
            RingKind::Mpmc => {
                // One stamp word, then the element rounded up to whole words.
                let stride = element_size
                    .div_ceil(size_of::<usize>())
                    .checked_add(1)
                    .ok_or_else(too_big)?;
                let words = slots.checked_mul(stride).ok_or_else(too_big)?;
                Imp::Mpmc(MpmcBytes::new(slots, stride, words).map_err(|_| too_big())?)
            }
        };
        Ok(ByteRing {
            element_size,
            capacity: slots,
            imp,
        })
    }

    /// The protocol.
    pub fn kind(&self) -> RingKind {
        match self.imp {
            Imp::Spsc(_) => RingKind::Spsc,
            Imp::Mpmc(_) => RingKind::Mpmc,
        }
    }

    /// The capacity in elements (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The size of an element in bytes.
    pub fn element_size(&self) -> usize {
        self.element_size
    }

    /// The number of elements now (a snapshot: other threads may change it at once).
    pub fn len(&self) -> usize {
        match &self.imp {
            Imp::Spsc(ring) => ring.indices.len(self.capacity),
            Imp::Mpmc(ring) => ring.indices.len(),
        }
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of elements in `bytes`, which must be a whole number of them.
    fn count(&self, bytes: usize, what: &str) -> Result<usize> {
        if bytes % self.element_size != 0 {
            return Err(Error::InvalidArgument(format!(
                "{what} holds {bytes} bytes, not a whole number of {}-byte elements",
                self.element_size
            )));
        }
        Ok(bytes / self.element_size)
    }

    /// Pushes one element (`element.len()` must be the element size); `false` when the ring is
    /// full.
    pub fn push(&self, element: &[u8]) -> Result<bool> {
        if element.len() != self.element_size {
            return Err(Error::InvalidArgument(format!(
                "an element of this ring has {} bytes, not {}",
                self.element_size,
                element.len()
            )));
        }
        Ok(self.push_many(element)? == 1)
    }

    /// Pushes as many of the elements in `elements` (a whole number of them) as fit, in order;
    /// returns how many.
    pub fn push_many(&self, elements: &[u8]) -> Result<usize> {
        let n = self.count(elements.len(), "the elements to push")?;
        if n == 0 {
            return Ok(0);
        }
        Ok(match &self.imp {
            Imp::Spsc(ring) => ring.push(elements, n, self.element_size)?,
            Imp::Mpmc(ring) => ring.push(elements, n, self.element_size),
        })
    }

    /// Pops the oldest element into `out` (exactly the element size); `false` when the ring is
    /// empty (`out` untouched).
    pub fn pop(&self, out: &mut [MaybeUninit<u8>]) -> Result<bool> {
        if out.len() != self.element_size {
            return Err(Error::InvalidArgument(format!(
                "an element of this ring has {} bytes, not {}",
                self.element_size,
                out.len()
            )));
        }
        Ok(self.pop_many(out)? == 1)
    }

    /// Pops up to `out.len() / element_size` of the oldest elements into the front of `out` (a
    /// whole number of elements long), in order; returns how many.
    pub fn pop_many(&self, out: &mut [MaybeUninit<u8>]) -> Result<usize> {
        let n = self.count(out.len(), "the output buffer")?;
        if n == 0 {
            return Ok(0);
        }
        Ok(match &self.imp {
            Imp::Spsc(ring) => ring.pop(out, n, self.element_size)?,
            Imp::Mpmc(ring) => ring.pop(out, n, self.element_size),
        })
    }
}

impl fmt::Debug for ByteRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteRing")
            .field("kind", &self.kind())
            .field("capacity", &self.capacity)
            .field("element_size", &self.element_size)
            .field("len", &self.len())
            .finish()
    }
}

/// Zero-filled bytes, allocated without aborting on failure.
fn try_zeroed<T: Default>(len: usize) -> std::result::Result<Vec<T>, ()> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| ())?;
    v.resize_with(len, T::default);
    Ok(v)
}

/// One side of an SPSC byte ring: its cursor and the flag that makes its user exclusive.
struct Side<C> {
    busy: AtomicBool,
    cursor: UnsafeCell<C>,
}

impl<C> Side<C> {
    fn new(cursor: C) -> CachePadded<Self> {
        CachePadded::new(Side {
            busy: AtomicBool::new(false),
            cursor: UnsafeCell::new(cursor),
        })
    }

    /// Exclusive use of the cursor, or an error when another thread holds it.
    fn enter(&self, what: &str) -> Result<SideGuard<'_, C>> {
        // Acquire: the previous user's changes to the cursor happen before ours.
        if self.busy.swap(true, Acquire) {
            return Err(Error::InvalidArgument(format!(
                "two threads called {what} on the same single-producer single-consumer ring at \
                 once; an SPSC ring takes one pushing thread and one popping thread at a time \
                 (an MPMC ring takes any)"
            )));
        }
        Ok(SideGuard { side: self })
    }
}

struct SideGuard<'a, C> {
    side: &'a Side<C>,
}

impl<C> Deref for SideGuard<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        // SAFETY: the busy flag makes this guard the cursor's only user.
        unsafe { &*self.side.cursor.get() }
    }
}

impl<C> DerefMut for SideGuard<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        // SAFETY: the busy flag makes this guard the cursor's only user.
        unsafe { &mut *self.side.cursor.get() }
    }
}

impl<C> Drop for SideGuard<'_, C> {
    fn drop(&mut self) {
        self.side.busy.store(false, Release);
    }
}

struct SpscBytes {
    indices: SpscIndices,
    producer: CachePadded<Side<ProducerCursor>>,
    consumer: CachePadded<Side<ConsumerCursor>>,
    data: Box<[UnsafeCell<u8>]>,
    mask: usize,
}

impl SpscBytes {
    fn new(slots: usize, bytes: usize) -> std::result::Result<Self, ()> {
        let data = try_zeroed::<u8>(bytes)?
            .into_iter()
            .map(UnsafeCell::new)
            .collect();
        Ok(SpscBytes {
            indices: SpscIndices::new(),
            producer: Side::new(ProducerCursor::new(slots)),
            consumer: Side::new(ConsumerCursor::new()),
            data,
            mask: slots - 1,
        })
    }

    /// The bytes of the slot of `position`.
    fn at(&self, position: usize, size: usize) -> *mut u8 {
        // SAFETY: `(position & mask) * size` is below `capacity * size == data.len()`; the
        // cells make writes through `&self` legitimate.
        unsafe { UnsafeCell::raw_get(self.data.as_ptr()).add((position & self.mask) * size) }
    }

    fn push(&self, src: &[u8], n: usize, size: usize) -> Result<usize> {
        let mut producer = self.producer.enter("push")?;
        let n = producer.free(&self.indices, n).min(n);
        if n > 0 {
            let start = producer.tail();
            let first = n.min(self.mask + 1 - (start & self.mask));
            // SAFETY: `n` free slots from the tail on, in at most two contiguous runs; `src`
            // holds `n` elements.
            unsafe {
                ptr::copy_nonoverlapping(src.as_ptr(), self.at(start, size), first * size);
                ptr::copy_nonoverlapping(
                    src.as_ptr().add(first * size),
                    self.at(0, size),
                    (n - first) * size,
                );
            }
            producer.publish(&self.indices, n);
        }
        Ok(n)
    }

    fn pop(&self, out: &mut [MaybeUninit<u8>], n: usize, size: usize) -> Result<usize> {
        let mut consumer = self.consumer.enter("pop")?;
        let n = consumer.available(&self.indices, n).min(n);
        if n > 0 {
            let start = consumer.head();
            let first = n.min(self.mask + 1 - (start & self.mask));
            let dst = out.as_mut_ptr().cast::<u8>();
            // SAFETY: `n` published slots from the head on, in at most two runs; `out` has room.
            unsafe {
                ptr::copy_nonoverlapping(self.at(start, size), dst, first * size);
                ptr::copy_nonoverlapping(
                    self.at(0, size),
                    dst.add(first * size),
                    (n - first) * size,
                );
            }
            consumer.release(&self.indices, n);
        }
        Ok(n)
    }
}

/// Slots of `stride` words: a stamp, then the element's bytes.
struct Words {
    words: Box<[AtomicUsize]>,
    stride: usize,
}

// SAFETY: slot `i`'s stamp is word `i * stride`, distinct per slot and in bounds for
// `i < capacity` (`words.len() == capacity * stride`).
unsafe impl Stamps for Words {
    #[inline]
    unsafe fn stamp(&self, slot: usize) -> &AtomicUsize {
        // SAFETY: per the contract, `slot < capacity`.
        unsafe { self.words.get_unchecked(slot * self.stride) }
    }
}

struct MpmcBytes {
    indices: MpmcIndices,
    slots: Words,
}

impl MpmcBytes {
    fn new(slots: usize, stride: usize, words: usize) -> std::result::Result<Self, ()> {
        let mut storage = try_zeroed::<AtomicUsize>(words)?;
        for slot in 0..slots {
            *storage[slot * stride].get_mut() = slot;
        }
        Ok(MpmcBytes {
            indices: MpmcIndices::new(slots),
            slots: Words {
                words: storage.into_boxed_slice(),
                stride,
            },
        })
    }

    /// The element bytes of the slot of `position` (the words after its stamp).
    fn at(&self, position: usize) -> *mut u8 {
        let slot = position & (self.indices.capacity() - 1);
        // SAFETY: inside the slot's words. These words are only ever accessed through such
        // pointers (never atomically), by the thread that claimed the slot; `AtomicUsize` is an
        // `UnsafeCell`, so writing through a pointer derived from `&self` is legitimate.
        unsafe {
            self.slots
                .words
                .as_ptr()
                .add(slot * self.slots.stride + 1)
                .cast::<u8>()
                .cast_mut()
        }
    }

    fn push(&self, src: &[u8], n: usize, size: usize) -> usize {
        let (first, n) = self.indices.claim_push(&self.slots, n);
        for i in 0..n {
            // SAFETY: a claimed free slot, ours until published; `src` holds `n` elements.
            unsafe {
                ptr::copy_nonoverlapping(
                    src.as_ptr().add(i * size),
                    self.at(first.wrapping_add(i)),
                    size,
                )
            };
        }
        self.indices.publish(&self.slots, first, n);
        n
    }

    fn pop(&self, out: &mut [MaybeUninit<u8>], n: usize, size: usize) -> usize {
        let (first, n) = self.indices.claim_pop(&self.slots, n);
        let dst = out.as_mut_ptr().cast::<u8>();
        for i in 0..n {
            // SAFETY: a claimed published slot, ours until released; `out` has room.
            unsafe {
                ptr::copy_nonoverlapping(self.at(first.wrapping_add(i)), dst.add(i * size), size)
            };
        }
        self.indices.release(&self.slots, first, n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uninit(n: usize) -> Vec<MaybeUninit<u8>> {
        vec![MaybeUninit::uninit(); n]
    }

    fn bytes(out: &[MaybeUninit<u8>]) -> Vec<u8> {
        // SAFETY: callers pass only the part the ring wrote.
        out.iter().map(|b| unsafe { b.assume_init() }).collect()
    }

    #[test]
    fn both_kinds_are_fifo_with_odd_element_sizes() {
        for kind in [RingKind::Spsc, RingKind::Mpmc] {
            let ring = ByteRing::new(kind, 3, 3).unwrap();
            assert_eq!(
                (ring.kind(), ring.capacity(), ring.element_size()),
                (kind, 4, 3)
            );
            let mut out = uninit(3);
            assert!(!ring.pop(&mut out).unwrap());
            assert!(ring.push(b"abc").unwrap());
            assert_eq!(ring.push_many(b"defghijkl").unwrap(), 3);
            assert!(!ring.push(b"mno").unwrap(), "full");
            assert_eq!(ring.len(), 4);
            assert!(ring.pop(&mut out).unwrap());
            assert_eq!(bytes(&out), b"abc");
            assert_eq!(ring.push_many(b"mnopqr").unwrap(), 1, "wraps");
            let mut many = uninit(15);
            assert_eq!(ring.pop_many(&mut many).unwrap(), 4);
            assert_eq!(bytes(&many[..12]), b"defghijklmno");
            assert!(ring.is_empty());
            assert_eq!(ring.pop_many(&mut many).unwrap(), 0);
            assert_eq!(ring.push_many(b"").unwrap(), 0);
        }
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let ring = ByteRing::new(RingKind::Mpmc, 4, 8).unwrap();
        assert!(matches!(
            ring.push(b"short"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            ring.push_many(&[0; 12]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            ring.pop_many(&mut uninit(9)),
            Err(Error::InvalidArgument(_))
        ));
        for (capacity, size) in [(0, 8), (4, 0), (usize::MAX, 1), (1 << 40, 1 << 40)] {
            for kind in [RingKind::Spsc, RingKind::Mpmc] {
                let error = ByteRing::new(kind, capacity, size).unwrap_err();
                assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
            }
        }
    }

    #[test]
    fn an_spsc_side_used_by_two_threads_at_once_is_refused() {
        let ring = ByteRing::new(RingKind::Spsc, 4, 1).unwrap();
        let Imp::Spsc(spsc) = &ring.imp else {
            unreachable!()
        };
        let held = spsc.producer.enter("push").unwrap();
        let error = ring.push(b"x").unwrap_err();
        assert!(
            error.to_string().contains("called push on the same"),
            "{error}"
        );
        assert!(ring.pop(&mut uninit(1)).is_ok(), "the other side is free");
        drop(held);
        assert!(ring.push(b"x").unwrap());
    }
}
