//! Lock-free rings: bounded queues over a power-of-two array of slots.
//!
//! | ring | who pushes | who pops | what it is for |
//! | --- | --- | --- | --- |
//! | [`SpscRing`] ([`spsc::Producer`], [`spsc::Consumer`]) | one thread | one thread | the cheapest hand-off between two threads |
//! | [`MpmcRing`] | any threads | any threads | a shared work or result queue |
//! | [`ReorderRing`] | any threads, each its own position | one thread, in position order | the loader's worker → consumer hand-off: batches built out of order, delivered in order |
//! | [`ByteRing`] | as its [`RingKind`] | as its [`RingKind`] | fixed-size byte elements: the ring behind the C API's `zenith_ring` |
//!
//! Common rules:
//!
//! * **Capacity** is rounded up to a power of two, at least [`MIN_CAPACITY`] (so a slot is found
//!   with a mask, and a slot's stamp can tell "free for this lap" from "full for the last one");
//!   zero is rejected. `capacity()` reports the rounded value.
//! * **Positions** are free-running `usize` counters (wrapping); position `p` lives in slot
//!   `p & (capacity - 1)`.
//! * **Indices** that several threads write or read (head, tail) sit on their own cache lines
//!   ([`crossbeam_utils::CachePadded`]), so producers and consumers do not invalidate each
//!   other's lines on every operation.
//! * **Ordering**: an element is written before the store (`Release`) that makes it visible, and
//!   read only after a load (`Acquire`) that saw that store; a slot is overwritten only after a
//!   load (`Acquire`) that saw the consumer's `Release` of it. Nothing stronger is needed on the
//!   fast paths.
//! * **Never blocking**: a push into a full ring hands the element back, a pop from an empty ring
//!   returns nothing. Waiting (spinning, parking, a condition variable) is the caller's choice;
//!   the loader parks on a condition variable.
//! * **Batches**: `push_slice` / `pop_into` (elements that are `Copy`), `push_iter` and
//!   `pop_many` move many elements with one publication of the index (SPSC) or one claim of a
//!   range of positions (MPMC).
//! * **Drop** drops the elements still in the ring.

mod bytes;
pub mod metrics;
mod mpmc;
mod reorder;
pub mod spsc;

pub use bytes::{ByteRing, RingKind};
pub use mpmc::MpmcRing;
pub use reorder::ReorderRing;
pub use spsc::SpscRing;

/// The smallest capacity of a ring: smaller requests are rounded up to it.
pub const MIN_CAPACITY: usize = 2;

/// The number of slots for a requested `capacity`: the next power of two, at least
/// [`MIN_CAPACITY`]; `None` for zero or when it does not fit in `usize`.
pub fn slots_for(capacity: usize) -> Option<usize> {
    if capacity == 0 {
        return None;
    }
    capacity.max(MIN_CAPACITY).checked_next_power_of_two()
}

/// [`slots_for`], or the panic the typed constructors document.
fn slots_or_panic(capacity: usize) -> usize {
    match slots_for(capacity) {
        Some(slots) => slots,
        None if capacity == 0 => panic!("a ring needs a capacity of at least 1"),
        None => panic!("ring capacity {capacity} overflows"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_round_up_to_powers_of_two_of_at_least_two() {
        assert_eq!(slots_for(0), None);
        assert_eq!(slots_for(1), Some(2));
        assert_eq!(slots_for(2), Some(2));
        assert_eq!(slots_for(3), Some(4));
        assert_eq!(slots_for(1000), Some(1024));
        assert_eq!(slots_for(1 << 20), Some(1 << 20));
        assert_eq!(slots_for(usize::MAX), None);
        assert_eq!(slots_for((usize::MAX >> 1) + 2), None);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn a_zero_capacity_panics() {
        let _ = MpmcRing::<u8>::new(0);
    }
}
