//! The single-producer single-consumer ring: [`SpscRing::new`] gives a [`Producer`] and a
//! [`Consumer`], each movable to its own thread.
//!
//! Each side owns its index (the producer the tail, the consumer the head) and keeps a cached
//! copy of the other side's; it reads the other side's cache line only when its copy says the
//! ring is full (producer) or empty (consumer). A push is then a slot write and one `Release`
//! store; a batch is one or two `memcpy`s and one `Release` store.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Release};

use crossbeam_utils::CachePadded;

/// The two shared positions of an SPSC ring; `tail - head` elements are in it.
#[derive(Debug)]
pub(super) struct SpscIndices {
    /// The next position to pop; stored only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// The next position to push; stored only by the producer.
    tail: CachePadded<AtomicUsize>,
}

impl SpscIndices {
    pub(super) fn new() -> Self {
        SpscIndices {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// The number of elements, from either side or a third thread (a snapshot).
    pub(super) fn len(&self, capacity: usize) -> usize {
        let head = self.head.load(Acquire);
        let tail = self.tail.load(Acquire);
        // Read in this order, tail can only be ahead of head; clamp a stale head.
        tail.wrapping_sub(head).min(capacity)
    }

    /// Positions still in the ring, for a drop (`&mut`: no side is running).
    pub(super) fn remaining(&mut self) -> (usize, usize) {
        (*self.head.get_mut(), *self.tail.get_mut())
    }
}

/// The producer's private state: its tail and the last head it saw.
#[derive(Debug)]
pub(super) struct ProducerCursor {
    tail: usize,
    cached_head: usize,
    capacity: usize,
}

impl ProducerCursor {
    pub(super) fn new(capacity: usize) -> Self {
        ProducerCursor {
            tail: 0,
            cached_head: 0,
            capacity,
        }
    }

    /// The position the next push writes.
    #[inline]
    pub(super) fn tail(&self) -> usize {
        self.tail
    }

    /// Free slots from the tail on. Reads the consumer's head (`Acquire`: its reads of the slots
    /// it released happen before our writes) only when the cached one shows fewer than `want`.
    #[inline]
    pub(super) fn free(&mut self, indices: &SpscIndices, want: usize) -> usize {
        let free = self.capacity - self.tail.wrapping_sub(self.cached_head);
        if free >= want {
            return free;
        }
        self.cached_head = indices.head.load(Acquire);
        self.capacity - self.tail.wrapping_sub(self.cached_head)
    }

    /// Makes the `n` slots written from the tail on visible to the consumer (`Release`).
    #[inline]
    pub(super) fn publish(&mut self, indices: &SpscIndices, n: usize) {
        self.tail = self.tail.wrapping_add(n);
        indices.tail.store(self.tail, Release);
    }
}

/// The consumer's private state: its head and the last tail it saw.
#[derive(Debug)]
pub(super) struct ConsumerCursor {
    head: usize,
    cached_tail: usize,
}

impl ConsumerCursor {
    pub(super) fn new() -> Self {
        ConsumerCursor {
            head: 0,
            cached_tail: 0,
        }
    }

    /// The position the next pop reads.
    #[inline]
    pub(super) fn head(&self) -> usize {
        self.head
    }

    /// Filled slots from the head on. Reads the producer's tail (`Acquire`: its writes of those
    /// slots happen before our reads) only when the cached one shows fewer than `want`.
    #[inline]
    pub(super) fn available(&mut self, indices: &SpscIndices, want: usize) -> usize {
        let available = self.cached_tail.wrapping_sub(self.head);
        if available >= want {
            return available;
        }
        self.cached_tail = indices.tail.load(Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Hands the `n` slots read from the head on back to the producer (`Release`).
    #[inline]
    pub(super) fn release(&mut self, indices: &SpscIndices, n: usize) {
        self.head = self.head.wrapping_add(n);
        indices.head.store(self.head, Release);
    }
}

/// A bounded single-producer single-consumer ring of `T`: the storage its two halves share.
///
/// Create one with [`SpscRing::new`], which returns the [`Producer`] and the [`Consumer`]; the
/// ring is freed, with the elements still in it, when both are dropped.
pub struct SpscRing<T> {
    indices: SpscIndices,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

impl<T> SpscRing<T> {
    /// A ring of at least `capacity` elements (rounded up to a power of two, at least
    /// [`MIN_CAPACITY`](super::MIN_CAPACITY)), split into its producer and consumer.
    ///
    /// # Panics
    /// When `capacity` is zero or its rounded value overflows `usize`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(capacity: usize) -> (Producer<T>, Consumer<T>) {
        let capacity = super::slots_or_panic(capacity);
        let slots = (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        let ring = Arc::new(SpscRing {
            indices: SpscIndices::new(),
            slots,
            mask: capacity - 1,
        });
        let producer = Producer {
            ring: ring.clone(),
            cursor: ProducerCursor::new(capacity),
        };
        let consumer = Consumer {
            ring,
            cursor: ConsumerCursor::new(),
        };
        (producer, consumer)
    }

    fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The slot of `position`. Writing or reading it is up to the side that owns it.
    #[inline]
    fn slot(&self, position: usize) -> *mut T {
        // SAFETY: `position & mask < capacity == slots.len()`. `UnsafeCell<MaybeUninit<T>>` has
        // the layout of `T`, and the cell makes writes through a shared borrow legitimate.
        unsafe { self.slots.as_ptr().add(position & self.mask) as *mut T }
    }

    /// Moves `n` elements from `src` into the slots from `position` on (wrapping once at most).
    ///
    /// # Safety
    /// The slots are free and owned by the caller; `src` holds `n <= capacity` elements whose
    /// ownership moves into the ring.
    #[inline]
    unsafe fn copy_in(&self, position: usize, src: *const T, n: usize) {
        let start = position & self.mask;
        let first = n.min(self.capacity() - start);
        // SAFETY: two disjoint runs inside the buffer, per the contract.
        unsafe {
            ptr::copy_nonoverlapping(src, self.slot(start), first);
            ptr::copy_nonoverlapping(src.add(first), self.slot(0), n - first);
        }
    }

    /// Moves `n` elements out of the slots from `position` on into `dst`.
    ///
    /// # Safety
    /// The slots hold elements owned by the caller, which afterwards treats them as moved out;
    /// `dst` has room for `n <= capacity` elements.
    #[inline]
    unsafe fn copy_out(&self, position: usize, dst: *mut T, n: usize) {
        let start = position & self.mask;
        let first = n.min(self.capacity() - start);
        // SAFETY: two disjoint runs inside the buffer, per the contract.
        unsafe {
            ptr::copy_nonoverlapping(self.slot(start), dst, first);
            ptr::copy_nonoverlapping(self.slot(0), dst.add(first), n - first);
        }
    }
}

impl<T> Drop for SpscRing<T> {
    fn drop(&mut self) {
        let (head, tail) = self.indices.remaining();
        let mut position = head;
        while position != tail {
            // SAFETY: positions head..tail hold elements nobody else owns (both halves are gone).
            unsafe { ptr::drop_in_place(self.slot(position)) };
            position = position.wrapping_add(1);
        }
    }
}

impl<T> fmt::Debug for SpscRing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscRing")
            .field("capacity", &self.capacity())
            .field("len", &self.indices.len(self.capacity()))
            .finish()
    }
}

/// The pushing half of an [`SpscRing`]. Move it to the producer thread; it is not `Clone`.
#[derive(Debug)]
pub struct Producer<T> {
    ring: Arc<SpscRing<T>>,
    cursor: ProducerCursor,
}

// SAFETY: the producer only writes slots the consumer has released, and hands elements (of a
// `Send` type) to the consumer through the Release/Acquire pair on the tail.
unsafe impl<T: Send> Send for Producer<T> {}

impl<T> Producer<T> {
    /// Pushes `value`, or hands it back when the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.cursor.free(&self.ring.indices, 1) == 0 {
            return Err(value);
        }
        // SAFETY: the slot at the tail is free (checked above) and only this producer writes it.
        unsafe { self.ring.slot(self.cursor.tail()).write(value) };
        self.cursor.publish(&self.ring.indices, 1);
        Ok(())
    }

    /// Pushes as many elements of `items` as fit (a prefix), with one publication; returns how
    /// many.
    #[inline]
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        let n = self
            .cursor
            .free(&self.ring.indices, items.len())
            .min(items.len());
        if n > 0 {
            // SAFETY: `n` free slots from the tail on; `T: Copy`, so copying leaves `items` valid.
            unsafe { self.ring.copy_in(self.cursor.tail(), items.as_ptr(), n) };
            self.cursor.publish(&self.ring.indices, n);
        }
        n
    }

    /// Pushes elements taken from `items` while there is room, with one publication; returns
    /// how many. Elements not taken stay in the iterator. If the iterator panics, the elements
    /// taken before are still pushed.
    pub fn push_iter(&mut self, items: &mut impl Iterator<Item = T>) -> usize {
        let free = self.cursor.free(&self.ring.indices, self.ring.capacity());
        /// Publishes what was written, also when the iterator unwinds.
        struct Publish<'a, T> {
            producer: &'a mut Producer<T>,
            written: usize,
        }
        impl<T> Drop for Publish<'_, T> {
            fn drop(&mut self) {
                let producer = &mut *self.producer;
                producer
                    .cursor
                    .publish(&producer.ring.indices, self.written);
            }
        }
        let mut batch = Publish {
            producer: self,
            written: 0,
        };
        while batch.written < free {
            let Some(value) = items.next() else { break };
            let position = batch.producer.cursor.tail().wrapping_add(batch.written);
            // SAFETY: one of the `free` slots after the tail, not yet published.
            unsafe { batch.producer.ring.slot(position).write(value) };
            batch.written += 1;
        }
        batch.written
    }

    /// The number of slots free now (the consumer may free more at any time).
    pub fn free(&mut self) -> usize {
        self.cursor.free(&self.ring.indices, self.ring.capacity())
    }

    /// The number of elements in the ring now.
    pub fn len(&self) -> usize {
        self.ring.indices.len(self.ring.capacity())
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Whether the consumer has been dropped (nothing pushed now will be read).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.ring) == 1
    }
}

/// The popping half of an [`SpscRing`]. Move it to the consumer thread; it is not `Clone`.
#[derive(Debug)]
pub struct Consumer<T> {
    ring: Arc<SpscRing<T>>,
    cursor: ConsumerCursor,
}

// SAFETY: the consumer only reads slots the producer has published (Acquire on the tail) and
// takes ownership of their (`Send`) elements.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    /// Pops the oldest element, or `None` when the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.cursor.available(&self.ring.indices, 1) == 0 {
            return None;
        }
        // SAFETY: the slot at the head is published (checked above) and only this consumer
        // reads it; releasing it below makes it the producer's again.
        let value = unsafe { self.ring.slot(self.cursor.head()).read() };
        self.cursor.release(&self.ring.indices, 1);
        Some(value)
    }

    /// Pops up to `out.len()` of the oldest elements into the front of `out`, with one release;
    /// returns how many.
    #[inline]
    pub fn pop_into(&mut self, out: &mut [T]) -> usize
    where
        T: Copy,
    {
        let n = self
            .cursor
            .available(&self.ring.indices, out.len())
            .min(out.len());
        if n > 0 {
            // SAFETY: `n` published slots from the head on; `T: Copy` has no drop to skip.
            unsafe { self.ring.copy_out(self.cursor.head(), out.as_mut_ptr(), n) };
            self.cursor.release(&self.ring.indices, n);
        }
        n
    }

    /// Pops up to `max` of the oldest elements onto the end of `out`, with one release; returns
    /// how many.
    pub fn pop_many(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let n = self.cursor.available(&self.ring.indices, max).min(max);
        if n > 0 {
            out.reserve(n);
            // SAFETY: `n` published slots from the head on are moved into the reserved spare
            // capacity of `out` (a move is a bitwise copy); releasing them makes the slots
            // uninitialised from the ring's point of view.
            unsafe {
                self.ring
                    .copy_out(self.cursor.head(), out.as_mut_ptr().add(out.len()), n);
                out.set_len(out.len() + n);
            }
            self.cursor.release(&self.ring.indices, n);
        }
        n
    }

    /// The number of elements ready to pop now (the producer may add more at any time).
    pub fn available(&mut self) -> usize {
        self.cursor
            .available(&self.ring.indices, self.ring.capacity())
    }

    /// The number of elements in the ring now.
    pub fn len(&self) -> usize {
        self.ring.indices.len(self.ring.capacity())
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Whether the producer has been dropped (what is in the ring now is all there will be).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.ring) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn fifo_full_and_empty() {
        let (mut p, mut c) = SpscRing::new(3);
        assert_eq!(p.capacity(), 4);
        assert_eq!(c.pop(), None);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(4), Err(4));
        assert_eq!(p.len(), 4);
        assert_eq!(c.pop(), Some(0));
        p.push(4).unwrap();
        let mut got = Vec::new();
        while let Some(v) = c.pop() {
            got.push(v);
        }
        assert_eq!(got, [1, 2, 3, 4]);
        assert!(c.is_empty());
    }

    #[test]
    fn batches_wrap_around_the_end() {
        let (mut p, mut c) = SpscRing::<u32>::new(8);
        let mut next = 0u32;
        let mut expected = 0u32;
        for round in 0..100 {
            let items: Vec<u32> = (next..next + (round % 7) as u32 + 1).collect();
            let pushed = p.push_slice(&items);
            next += pushed as u32;
            let mut out = [0u32; 5];
            let popped = c.pop_into(&mut out[..(round % 5) + 1]);
            for &v in &out[..popped] {
                assert_eq!(v, expected);
                expected += 1;
            }
        }
        let mut rest = Vec::new();
        c.pop_many(&mut rest, usize::MAX);
        for v in rest {
            assert_eq!(v, expected);
            expected += 1;
        }
        assert_eq!(expected, next);
    }

    #[test]
    fn push_iter_takes_only_what_fits() {
        let (mut p, mut c) = SpscRing::new(4);
        let mut items = (0..10).map(|i| i.to_string());
        assert_eq!(p.push_iter(&mut items), 4);
        assert_eq!(items.next().as_deref(), Some("4"));
        let mut out = Vec::new();
        assert_eq!(c.pop_many(&mut out, 3), 3);
        assert_eq!(out, ["0", "1", "2"]);
        assert_eq!(p.push_iter(&mut items), 3);
        assert_eq!(c.pop_many(&mut out, 10), 4);
        assert_eq!(out, ["0", "1", "2", "3", "5", "6", "7"]);
    }

    #[test]
    fn a_panicking_iterator_still_publishes_what_it_gave() {
        let (mut p, mut c) = SpscRing::new(8);
        let mut items = (0..5).map(|i| if i == 3 { panic!("no {i}") } else { i });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.push_iter(&mut items);
        }));
        assert!(caught.is_err());
        let mut out = Vec::new();
        c.pop_many(&mut out, 8);
        assert_eq!(out, [0, 1, 2]);
    }

    #[test]
    fn dropping_frees_what_is_left() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Relaxed);
            }
        }
        let (mut p, mut c) = SpscRing::new(4);
        for _ in 0..4 {
            assert!(p.push(Counted).is_ok());
        }
        drop(c.pop());
        assert_eq!(DROPS.load(Relaxed), 1);
        assert!(p.push(Counted).is_ok()); // wraps
        drop(c);
        assert!(p.is_abandoned());
        assert_eq!(DROPS.load(Relaxed), 1);
        drop(p);
        assert_eq!(DROPS.load(Relaxed), 5);
    }

    #[test]
    fn zero_sized_elements() {
        let (mut p, mut c) = SpscRing::new(2);
        assert!(p.push(()).is_ok());
        assert!(p.push(()).is_ok());
        assert!(p.push(()).is_err());
        assert_eq!(p.push_slice(&[(); 3]), 0);
        let mut out = [(); 3];
        assert_eq!(c.pop_into(&mut out), 2);
        assert_eq!(c.pop(), None);
    }
}
