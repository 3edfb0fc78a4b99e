//! The reorder ring: producers publish elements at positions they were given, in any order; a
//! consumer takes them in position order.
//!
//! It is the MPMC ring with the positions handed out by the caller instead of claimed from a
//! shared tail: position `p` lives in slot `p & mask`, and the slot's state word says which
//! position it is for and whether it is free, being written, full or being read. Every
//! transition is a compare-and-swap on the expected state or a store by the thread that won
//! one, so a position published twice, or taken twice, or published while the slot still holds
//! the previous lap's element, is refused rather than racing.
//!
//! The loader uses it between its workers and the consumer: a worker that claimed batch `i`
//! (within `capacity` of the next batch to deliver) publishes it at position `i`, and the
//! consumer takes position after position, so batches come out in plan order whatever order they
//! were built in, and at most `capacity` of them are ever held.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// The low two bits of a slot's state; the rest is the position.
const FREE: usize = 0;
const WRITING: usize = 1;
const FULL: usize = 2;
const READING: usize = 3;
const PHASE: usize = 0b11;

/// The state word of `position` in `phase`.
#[inline]
fn state(position: usize, phase: usize) -> usize {
    (position << 2) | phase
}

struct Slot<T> {
    state: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A ring of `capacity` slots where the element of position `p` goes to slot `p % capacity`;
/// positions are published in any order and taken in any order the caller likes (the loader
/// takes them in order).
///
/// Positions must stay below `usize::MAX / 4` (the state word keeps the position in its upper
/// bits); the loader's batch indices do.
pub struct ReorderRing<T> {
    slots: Box<[Slot<T>]>,
    mask: usize,
}

// SAFETY: an element is owned by the one thread that won the slot's compare-and-swap (the
// publisher, then the taker), handed over by the Release store / Acquire CAS on the state.
unsafe impl<T: Send> Sync for ReorderRing<T> {}

impl<T> ReorderRing<T> {
    /// A ring of at least `capacity` slots (rounded up to a power of two, at least
    /// [`MIN_CAPACITY`](super::MIN_CAPACITY)) ready for positions `first..first + capacity`.
    ///
    /// # Panics
    /// When `capacity` is zero or its rounded value overflows `usize`.
    pub fn new(capacity: usize, first: usize) -> Self {
        let capacity = super::slots_or_panic(capacity);
        let mask = capacity - 1;
        let mut slots: Box<[Slot<T>]> = (0..capacity)
            .map(|_| Slot {
                state: AtomicUsize::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        for k in 0..capacity {
            let position = first.wrapping_add(k);
            *slots[position & mask].state.get_mut() = state(position, FREE);
        }
        ReorderRing { slots, mask }
    }

    /// The capacity (a power of two).
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn slot(&self, position: usize) -> &Slot<T> {
        // SAFETY: masked, so in bounds.
        unsafe { self.slots.get_unchecked(position & self.mask) }
    }

    /// Stores the element of `position`. Hands it back when the slot is not free for
    /// `position`: still holding position `position - capacity` (the consumer is behind), or
    /// `position` was published already.
    pub fn publish(&self, position: usize, value: T) -> Result<(), T> {
        let slot = self.slot(position);
        // Acquire: the taker's read of the previous lap's element happens before our write.
        if slot
            .state
            .compare_exchange(
                state(position, FREE),
                state(position, WRITING),
                Acquire,
                Relaxed,
            )
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: the compare-and-swap made this thread the slot's only writer.
        unsafe { slot.value.get().cast::<T>().write(value) };
        slot.state.store(state(position, FULL), Release);
        Ok(())
    }

    /// Takes the element of `position` if it has been published (and not taken); the slot is
    /// then free for `position + capacity`.
    pub fn take(&self, position: usize) -> Option<T> {
        let slot = self.slot(position);
        // Acquire: the publisher's write happens before our read.
        slot.state
            .compare_exchange(
                state(position, FULL),
                state(position, READING),
                Acquire,
                Relaxed,
            )
            .ok()?;
        // SAFETY: the compare-and-swap made this thread the element's only reader; the slot is
        // marked free below, so it is treated as moved out.
        let value = unsafe { slot.value.get().cast::<T>().read() };
        let next = position.wrapping_add(self.capacity());
        slot.state.store(state(next, FREE), Release);
        Some(value)
    }

    /// Whether the element of `position` is published and not taken.
    pub fn is_ready(&self, position: usize) -> bool {
        self.slot(position).state.load(Acquire) == state(position, FULL)
    }
}

impl<T> Drop for ReorderRing<T> {
    fn drop(&mut self) {
        for slot in self.slots.iter_mut() {
            if *slot.state.get_mut() & PHASE == FULL {
                // SAFETY: a full slot holds an element nobody else owns (`&mut self`).
                unsafe { ptr::drop_in_place(slot.value.get_mut().as_mut_ptr()) };
            }
        }
    }
}

impl<T> fmt::Debug for ReorderRing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self
            .slots
            .iter()
            .filter(|s| s.state.load(Relaxed) & PHASE == FULL)
            .count();
        f.debug_struct("ReorderRing")
            .field("capacity", &self.capacity())
            .field("full", &full)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn out_of_order_in_in_order_out() {
        let ring = ReorderRing::new(4, 10);
        assert_eq!(ring.capacity(), 4);
        assert_eq!(ring.take(10), None);
        ring.publish(12, "c").unwrap();
        ring.publish(11, "b").unwrap();
        assert!(!ring.is_ready(10));
        assert!(ring.is_ready(12));
        ring.publish(10, "a").unwrap();
        assert_eq!(ring.take(10), Some("a"));
        assert_eq!(ring.take(10), None, "taken once");
        assert_eq!(ring.publish(10, "again"), Err("again"), "that lap is over");
        ring.publish(14, "e").unwrap(); // slot of 10, next lap
        assert_eq!(ring.publish(15, "f"), Err("f"), "11 still there");
        assert_eq!(ring.publish(12, "dup"), Err("dup"), "published once");
        assert_eq!(ring.take(11), Some("b"));
        assert_eq!(ring.take(12), Some("c"));
        assert_eq!(ring.take(13), None);
        ring.publish(13, "d").unwrap();
        assert_eq!(ring.take(13), Some("d"));
        assert_eq!(ring.take(14), Some("e"));
    }

    #[test]
    fn dropping_frees_what_is_left() {
        let marker = Arc::new(());
        let ring = ReorderRing::new(8, 0);
        for p in [0, 3, 5, 6] {
            ring.publish(p, marker.clone()).unwrap();
        }
        drop(ring.take(0));
        assert_eq!(Arc::strong_count(&marker), 4);
        drop(ring);
        assert_eq!(Arc::strong_count(&marker), 1);
    }
}
