//! The bounded multi-producer multi-consumer ring: Dmitry Vyukov's array queue.
//!
//! Every slot carries a stamp: for position `p` (slot `p & mask`) the stamp is `p` while the slot
//! is free for `p`, `p + 1` once the element of `p` is in it, and `p + capacity` once it has been
//! popped (free for the next lap). A producer claims positions by moving the shared tail forward
//! with a compare-and-swap after seeing their stamps free, writes, and publishes each stamp with
//! `Release`; a consumer does the same with the head and the stamps `p + 1`. Producers contend
//! only on the tail, consumers only on the head, and each operation touches its slot's line.
//!
//! A batch claims a run of consecutive positions whose stamps are all ready with a single
//! compare-and-swap. The claim is safe because a stamp that says "free for `p`" (or "full for
//! `p`") can only be changed by whoever claims `p`, and the successful compare-and-swap makes
//! this thread that claimant.
//!
//! A push reports the ring full when the oldest element's pop is still in progress, and a pop
//! reports it empty while the next element's push is; both are momentary.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crossbeam_utils::{Backoff, CachePadded};

/// Storage that gives each slot a stamp.
///
/// # Safety
/// `stamp(i)` returns the same atomic for the same `i < capacity` for the storage's lifetime, a
/// distinct one for each slot.
pub(super) unsafe trait Stamps {
    /// The stamp of slot `slot`.
    ///
    /// # Safety
    /// `slot < capacity`.
    unsafe fn stamp(&self, slot: usize) -> &AtomicUsize;
}

/// The shared head and tail of an MPMC ring, and the claim protocol over a [`Stamps`] storage.
#[derive(Debug)]
pub(super) struct MpmcIndices {
    /// The next position to pop.
    head: CachePadded<AtomicUsize>,
    /// The next position to push.
    tail: CachePadded<AtomicUsize>,
    mask: usize,
}

impl MpmcIndices {
    /// Indices of an empty ring of `capacity` (a power of two ≥ 2) slots; slot `i` of the
    /// storage must start with stamp `i`.
    pub(super) fn new(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= super::MIN_CAPACITY);
        MpmcIndices {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            mask: capacity - 1,
        }
    }

    /// The capacity.
    pub(super) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The stamp of `position`.
    #[inline]
    fn stamp<'a, S: Stamps + ?Sized>(&self, slots: &'a S, position: usize) -> &'a AtomicUsize {
        // SAFETY: masked, so below the capacity.
        unsafe { slots.stamp(position & self.mask) }
    }

    /// Claims up to `max` (≥ 1) consecutive positions to write: the first and how many (0 when
    /// the ring is full). Each claimed slot is the caller's until [`Self::publish`].
    #[inline]
    pub(super) fn claim_push<S: Stamps + ?Sized>(&self, slots: &S, max: usize) -> (usize, usize) {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Relaxed);
        loop {
            // Acquire: the consumer's read of the last lap's element happens before our write.
            let stamp = self.stamp(slots, tail).load(Acquire);
            let lag = stamp.wrapping_sub(tail) as isize;
            if lag == 0 {
                let mut n = 1;
                while n < max {
                    let position = tail.wrapping_add(n);
                    if self.stamp(slots, position).load(Acquire) != position {
                        break;
                    }
                    n += 1;
                }
                match self
                    .tail
                    .compare_exchange_weak(tail, tail.wrapping_add(n), Relaxed, Relaxed)
                {
                    Ok(_) => return (tail, n),
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if lag < 0 {
                // The slot still holds (or is about to hold) the element of `tail - capacity`.
                return (tail, 0);
            } else {
                // Another producer claimed `tail` since we read it.
                backoff.spin();
                tail = self.tail.load(Relaxed);
            }
        }
    }

    /// Makes positions `first..first + n`, claimed by [`Self::claim_push`] and written, visible.
    #[inline]
    pub(super) fn publish<S: Stamps + ?Sized>(&self, slots: &S, first: usize, n: usize) {
        for i in 0..n {
            let position = first.wrapping_add(i);
            self.stamp(slots, position)
                .store(position.wrapping_add(1), Release);
        }
    }

    /// Claims up to `max` (≥ 1) consecutive positions to read: the first and how many (0 when the
    /// ring is empty). Each claimed slot is the caller's until [`Self::release`].
    #[inline]
    pub(super) fn claim_pop<S: Stamps + ?Sized>(&self, slots: &S, max: usize) -> (usize, usize) {
        let backoff = Backoff::new();
        let mut head = self.head.load(Relaxed);
        loop {
            // Acquire: the producer's write of the element happens before our read.
            let stamp = self.stamp(slots, head).load(Acquire);
            let lag = stamp.wrapping_sub(head.wrapping_add(1)) as isize;
            if lag == 0 {
                let mut n = 1;
                while n < max {
                    let position = head.wrapping_add(n);
                    if self.stamp(slots, position).load(Acquire) != position.wrapping_add(1) {
                        break;
                    }
                    n += 1;
                }
                match self
                    .head
                    .compare_exchange_weak(head, head.wrapping_add(n), Relaxed, Relaxed)
                {
                    Ok(_) => return (head, n),
                    Err(current) => {
                        head = current;
                        backoff.spin();
                    }
                }
            } else if lag < 0 {
                // Nothing published at `head` yet.
                return (head, 0);
            } else {
                // Another consumer claimed `head` since we read it.
                backoff.spin();
                head = self.head.load(Relaxed);
            }
        }
    }

    /// Hands positions `first..first + n`, claimed by [`Self::claim_pop`] and read, back to the
    /// producers of the next lap.
    #[inline]
    pub(super) fn release<S: Stamps + ?Sized>(&self, slots: &S, first: usize, n: usize) {
        for i in 0..n {
            let position = first.wrapping_add(i);
            self.stamp(slots, position)
                .store(position.wrapping_add(self.capacity()), Release);
        }
    }

    /// The number of elements now (a consistent snapshot of head and tail).
    pub(super) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Acquire);
            let head = self.head.load(Acquire);
            if self.tail.load(Acquire) == tail {
                return tail.wrapping_sub(head).min(self.capacity());
            }
        }
    }

    /// Head and tail, for a drop (`&mut`: no operation is in progress).
    pub(super) fn remaining(&mut self) -> (usize, usize) {
        (*self.head.get_mut(), *self.tail.get_mut())
    }
}

/// One slot: its stamp and its element, side by side (one cache line for both).
struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: a slice of slots indexed directly.
unsafe impl<T> Stamps for [Slot<T>] {
    #[inline]
    unsafe fn stamp(&self, slot: usize) -> &AtomicUsize {
        // SAFETY: `slot < capacity == len` per the contract.
        unsafe { &self.get_unchecked(slot).stamp }
    }
}

/// A bounded multi-producer multi-consumer ring of `T`, shared by reference (`&self`) between
/// any number of threads (wrap it in an `Arc`).
pub struct MpmcRing<T> {
    indices: MpmcIndices,
    slots: Box<[Slot<T>]>,
}

// SAFETY: an element is owned by exactly one thread at a time: the producer that claimed its
// position, then (through the Release/Acquire pair on the stamp) the consumer that claimed it.
// Elements move between threads, so `T: Send` is required, and nothing more.
unsafe impl<T: Send> Sync for MpmcRing<T> {}

impl<T> MpmcRing<T> {
    /// A ring of at least `capacity` elements (rounded up to a power of two, at least
    /// [`MIN_CAPACITY`](super::MIN_CAPACITY)).
    ///
    /// # Panics
    /// When `capacity` is zero or its rounded value overflows `usize`.
    pub fn new(capacity: usize) -> Self {
        let capacity = super::slots_or_panic(capacity);
        let slots = (0..capacity)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        MpmcRing {
            indices: MpmcIndices::new(capacity),
            slots,
        }
    }

    /// The element of `position`, for its claimant.
    #[inline]
    fn value(&self, position: usize) -> *mut T {
        let index = position & self.indices.mask;
        // SAFETY: masked, so in bounds; the cell makes writes through `&self` legitimate.
        unsafe { self.slots.get_unchecked(index).value.get().cast() }
    }

    /// Pushes `value`, or hands it back when the ring is full.
    #[inline]
    pub fn push(&self, value: T) -> Result<(), T> {
        let (position, n) = self.indices.claim_push(&*self.slots, 1);
        if n == 0 {
            return Err(value);
        }
        // SAFETY: the claim makes the free slot of `position` ours until published.
        unsafe { self.value(position).write(value) };
        self.indices.publish(&*self.slots, position, 1);
        Ok(())
    }

    /// Pushes as many elements of `items` as fit (a prefix) with one claim; returns how many.
    /// The pushed elements are consecutive in the ring.
    pub fn push_slice(&self, items: &[T]) -> usize
    where
        T: Copy,
    {
        if items.is_empty() {
            return 0;
        }
        let (first, n) = self.indices.claim_push(&*self.slots, items.len());
        for (i, item) in items[..n].iter().enumerate() {
            // SAFETY: claimed free slots, ours until published.
            unsafe { self.value(first.wrapping_add(i)).write(*item) };
        }
        self.indices.publish(&*self.slots, first, n);
        n
    }

    /// Pops the oldest element, or `None` when the ring is empty.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        let (position, n) = self.indices.claim_pop(&*self.slots, 1);
        if n == 0 {
            return None;
        }
        // SAFETY: the claim makes the published element of `position` ours; releasing the slot
        // below treats it as moved out.
        let value = unsafe { self.value(position).read() };
        self.indices.release(&*self.slots, position, 1);
        Some(value)
    }

    /// Pops up to `out.len()` of the oldest elements into the front of `out` with one claim;
    /// returns how many.
    pub fn pop_into(&self, out: &mut [T]) -> usize
    where
        T: Copy,
    {
        if out.is_empty() {
            return 0;
        }
        let (first, n) = self.indices.claim_pop(&*self.slots, out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            // SAFETY: claimed published elements, ours until released.
            *slot = unsafe { self.value(first.wrapping_add(i)).read() };
        }
        self.indices.release(&*self.slots, first, n);
        n
    }

    /// Pops up to `max` of the oldest elements onto the end of `out` with one claim; returns how
    /// many.
    pub fn pop_many(&self, out: &mut Vec<T>, max: usize) -> usize {
        if max == 0 {
            return 0;
        }
        // Reserve first: an allocation failure must not strand claimed elements.
        out.reserve(max.min(self.capacity()));
        let (first, n) = self
            .indices
            .claim_pop(&*self.slots, max.min(self.capacity()));
        for i in 0..n {
            // SAFETY: claimed published elements, moved out once; `out` has the capacity.
            unsafe {
                let value = self.value(first.wrapping_add(i)).read();
                out.as_mut_ptr().add(out.len()).write(value);
                out.set_len(out.len() + 1);
            }
        }
        self.indices.release(&*self.slots, first, n);
        n
    }

    /// The number of elements now.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.indices.capacity()
    }
}

impl<T> Drop for MpmcRing<T> {
    fn drop(&mut self) {
        let (head, tail) = self.indices.remaining();
        let mut position = head;
        while position != tail {
            // SAFETY: no operation is in progress (`&mut self`), so every position between head
            // and tail holds a published element that nobody else owns.
            unsafe { ptr::drop_in_place(self.value(position)) };
            position = position.wrapping_add(1);
        }
    }
}

impl<T> fmt::Debug for MpmcRing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpmcRing")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_and_empty() {
        let ring = MpmcRing::new(2);
        assert_eq!(ring.capacity(), 2);
        assert_eq!(ring.pop(), None);
        ring.push("a").unwrap();
        ring.push("b").unwrap();
        assert_eq!(ring.push("c"), Err("c"));
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.pop(), Some("a"));
        ring.push("c").unwrap();
        assert_eq!(ring.pop(), Some("b"));
        assert_eq!(ring.pop(), Some("c"));
        assert!(ring.is_empty());
    }

    #[test]
    fn batches_take_what_is_there() {
        let ring = MpmcRing::<u16>::new(8);
        assert_eq!(ring.push_slice(&[]), 0);
        assert_eq!(ring.push_slice(&[1, 2, 3, 4, 5]), 5);
        assert_eq!(ring.push_slice(&[6, 7, 8, 9, 10]), 3);
        let mut out = [0; 3];
        assert_eq!(ring.pop_into(&mut out), 3);
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(ring.push_slice(&[9, 10, 11, 12]), 3); // wraps
        let mut rest = Vec::new();
        assert_eq!(ring.pop_many(&mut rest, 100), 8);
        assert_eq!(rest, [4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(ring.pop_into(&mut out), 0);
        assert_eq!(ring.pop_many(&mut rest, 0), 0);
    }

    #[test]
    fn dropping_frees_what_is_left() {
        use std::sync::Arc;
        let marker = Arc::new(());
        let ring = MpmcRing::new(4);
        for _ in 0..4 {
            ring.push(marker.clone()).unwrap();
        }
        drop(ring.pop());
        ring.push(marker.clone()).unwrap();
        assert_eq!(Arc::strong_count(&marker), 5);
        drop(ring);
        assert_eq!(Arc::strong_count(&marker), 1);
    }
}
