//! The slot ring's rules on the host copy engine: ordering, reuse of staging slots only after
//! their copy finished, reuse of device memory only after the consumer released it,
//! back-pressure and deadlines; submissions of staged and direct host ranges, the owners of
//! direct ranges kept until their copy finished, and buffers that grow for larger batches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zenith_gpu::ring::{
    HostCopyEngine, HostEvent, HostSource, RingConfig, RingError, SlotRing, SubmitRange, WaitingFor,
};

const SLOT: usize = 64;

fn ring(slots: usize, device_buffers: usize) -> SlotRing<HostCopyEngine> {
    let config = RingConfig {
        slots,
        slot_bytes: SLOT,
        staging_bytes: SLOT,
        device_buffers,
    };
    SlotRing::new(HostCopyEngine::new().unwrap(), config).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn past() -> Instant {
    Instant::now() + Duration::from_millis(20)
}

/// Fills a slot with `value` (len bytes) and submits it.
fn push(ring: &SlotRing<HostCopyEngine>, value: u8, len: usize) -> u64 {
    let mut slot = ring.acquire(soon()).unwrap();
    slot.bytes()[..len].fill(value);
    ring.submit(slot, len, soon()).unwrap()
}

#[test]
fn batches_arrive_in_submission_order_with_their_bytes() {
    let ring = ring(3, 3);
    for round in 0..10u8 {
        let seq = push(&ring, round, 10 + round as usize);
        assert_eq!(seq, round as u64);
        let batch = ring.next(soon()).unwrap();
        assert_eq!(batch.seq(), round as u64);
        assert_eq!(batch.len(), 10 + round as usize);
        assert!(
            batch.device().bytes()[..batch.len()]
                .iter()
                .all(|b| *b == round)
        );
    }
    let stats = ring.stats();
    assert_eq!(stats.copies, 10);
    assert_eq!(stats.bytes, (10..20).sum::<u64>());
    // Device buffers are reused, not reallocated: one was enough for one batch at a time.
    assert_eq!(stats.device_buffers_allocated, 1);
}

#[test]
fn several_batches_in_flight_keep_their_order() {
    let ring = ring(4, 4);
    for value in 1..=4u8 {
        push(&ring, value, SLOT);
    }
    let batches: Vec<_> = (0..4).map(|_| ring.next(soon()).unwrap()).collect();
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(batch.seq(), i as u64);
        assert!(batch.device().bytes().iter().all(|b| *b == i as u8 + 1));
    }
}

#[test]
fn a_staging_slot_is_reused_only_after_its_copy_finished() {
    let ring = ring(3, 3);
    let gate = ring.engine().gate();
    gate.close();
    for value in 1..=3u8 {
        push(&ring, value, SLOT);
    }
    // Every slot's copy is still in flight: no slot may be handed out.
    match ring.acquire(past()) {
        Err(RingError::Deadline(WaitingFor::StagingSlot)) => {}
        other => panic!("expected a staging-slot deadline, got {:?}", other.err()),
    }
    assert_eq!(ring.stats().staging_waits, 1);
    gate.open();
    // Once the copies finished, the slots come back and the data that landed is intact even
    // though the slot is overwritten now.
    let mut slot = ring.acquire(soon()).unwrap();
    slot.bytes().fill(0xEE);
    drop(slot);
    for value in 1..=3u8 {
        let batch = ring.next(soon()).unwrap();
        assert!(
            batch.device().bytes().iter().all(|b| *b == value),
            "batch {value}"
        );
    }
}

#[test]
fn device_memory_is_reused_only_after_the_consumer_released_it() {
    let ring = ring(3, 2);
    push(&ring, 1, SLOT);
    push(&ring, 2, SLOT);
    let first = ring.next(soon()).unwrap();
    let second = ring.next(soon()).unwrap();
    // Both device buffers are held by the consumer: the next submit must wait (back-pressure),
    // and on its deadline the staging slot goes back to the ring.
    let mut slot = ring.acquire(soon()).unwrap();
    slot.bytes().fill(3);
    match ring.submit(slot, SLOT, past()) {
        Err(RingError::Deadline(WaitingFor::DeviceMemory)) => {}
        other => panic!("expected a device-memory deadline, got {other:?}"),
    }
    assert_eq!(ring.stats().device_waits, 1);
    // What the consumer holds was not overwritten.
    assert!(first.device().bytes().iter().all(|b| *b == 1));
    assert!(second.device().bytes().iter().all(|b| *b == 2));
    // All three staging slots are free again (none leaked by the failed submit).
    let slots: Vec<_> = (0..3).map(|_| ring.acquire(soon()).unwrap()).collect();
    drop(slots);
    // Releasing one batch lets the next copy land, in the released buffer.
    drop(first);
    push(&ring, 3, SLOT);
    let third = ring.next(soon()).unwrap();
    assert!(third.device().bytes().iter().all(|b| *b == 3));
    assert!(second.device().bytes().iter().all(|b| *b == 2));
    assert_eq!(ring.stats().device_buffers_allocated, 2);
}

#[test]
fn a_blocked_submit_proceeds_when_the_consumer_releases_from_another_thread() {
    let ring = ring(3, 1);
    push(&ring, 1, SLOT);
    let held = ring.next(soon()).unwrap();
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| push(&ring, 2, SLOT));
        // The worker waits for device memory until the batch is released.
        std::thread::sleep(Duration::from_millis(30));
        drop(held);
        assert_eq!(worker.join().unwrap(), 1);
    });
    let batch = ring.next(soon()).unwrap();
    assert!(batch.device().bytes().iter().all(|b| *b == 2));
}

#[test]
fn the_consumer_waits_for_copies_and_times_out_with_a_deadline_error() {
    let ring = ring(3, 3);
    // Nothing submitted: a clear error, not a wait.
    assert!(matches!(ring.next(soon()), Err(RingError::Failed(_))));
    let gate = ring.engine().gate();
    gate.close();
    push(&ring, 5, 8);
    match ring.next(past()) {
        Err(RingError::Deadline(WaitingFor::Copy)) => {}
        other => panic!("expected a copy deadline, got {:?}", other.err()),
    }
    assert_eq!(ring.stats().copy_waits, 1);
    gate.open();
    let batch = ring.next(soon()).unwrap();
    assert_eq!(batch.seq(), 0);
    assert_eq!(&batch.device().bytes()[..8], &[5; 8]);
}

#[test]
fn workers_and_a_consumer_on_threads_deliver_every_batch_once_in_order() {
    let ring = ring(3, 3);
    const BATCHES: u64 = 200;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..BATCHES {
                let mut slot = ring.acquire(soon()).unwrap();
                slot.bytes().fill((i % 251) as u8);
                ring.submit(slot, SLOT, soon()).unwrap();
            }
        });
        for i in 0..BATCHES {
            let batch = loop {
                match ring.next(soon()) {
                    Ok(batch) => break batch,
                    // The producer has not submitted yet.
                    Err(RingError::Failed(_)) => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(batch.seq(), i);
            assert!(batch.device().bytes().iter().all(|b| *b == (i % 251) as u8));
        }
    });
    assert_eq!(ring.stats().copies, BATCHES);
}

#[test]
fn rings_refuse_too_few_slots_and_ranges_past_the_staging_memory() {
    let engine = HostCopyEngine::new().unwrap();
    assert!(SlotRing::new(engine, RingConfig::new(2, SLOT)).is_err());
    let ring = ring(3, 3);
    let slot = ring.acquire(soon()).unwrap();
    // The device buffer could grow, but the slot holds only SLOT staged bytes.
    match ring.submit(slot, SLOT + 1, soon()) {
        Err(RingError::Failed(error)) => {
            assert!(
                error.to_string().contains("does not fit its buffers"),
                "{error}"
            )
        }
        other => panic!("expected a refused range, got {other:?}"),
    }
    // The refused slot went back: all three can be taken.
    let slots: Vec<_> = (0..3).map(|_| ring.acquire(soon()).unwrap()).collect();
    assert_eq!(slots.len(), 3);
}

#[test]
fn released_device_memory_waits_for_the_consumers_release_marker() {
    let ring = ring(3, 1);
    push(&ring, 1, SLOT);
    let held = ring.next(soon()).unwrap();
    // The consumer released the batch, but its kernels (marker not complete) may still read it.
    let marker = HostEvent::pending();
    held.release_after(vec![marker.clone()]);
    let mut slot = ring.acquire(soon()).unwrap();
    slot.bytes().fill(2);
    match ring.submit(slot, SLOT, past()) {
        Err(RingError::Deadline(WaitingFor::DeviceMemory)) => {}
        other => panic!("expected a device-memory deadline, got {other:?}"),
    }
    // Once the consumer's stream passed the marker, the buffer is reused.
    marker.complete();
    push(&ring, 2, SLOT);
    let next = ring.next(soon()).unwrap();
    assert!(next.device().bytes().iter().all(|b| *b == 2));
    assert_eq!(ring.stats().device_buffers_allocated, 1);
}

/// `bytes` as a direct host source whose owner is an `Arc` the test can count.
fn host_source(bytes: &Arc<Vec<u8>>) -> HostSource {
    let owner = Arc::clone(bytes);
    // SAFETY: the vector is kept alive (and unchanged) by `owner`, which the source holds.
    unsafe { HostSource::new(owner.as_ptr(), owner.len(), Box::new(owner)) }
}

#[test]
fn direct_and_staged_ranges_land_together_and_direct_owners_live_until_the_copy_finished() {
    let ring = ring(3, 3);
    let gate = ring.engine().gate();
    gate.close();
    let direct = Arc::new(vec![7u8; 40]);
    let mut slot = ring.acquire(soon()).unwrap();
    slot.bytes()[..16].fill(9);
    let ranges = vec![
        SubmitRange::staged(0, 16, 0),
        SubmitRange::host(host_source(&direct), 256),
    ];
    ring.submit_ranges(slot, ranges, soon()).unwrap();
    // The copy has not run: the ring holds the direct range's owner.
    assert_eq!(Arc::strong_count(&direct), 2);
    gate.open();
    let batch = ring.next(soon()).unwrap();
    // Copied, and the owner went back once the copy finished.
    assert_eq!(Arc::strong_count(&direct), 1);
    assert_eq!(batch.len(), 296);
    let landed = batch.device().bytes();
    assert!(landed[..16].iter().all(|b| *b == 9));
    assert!(landed[256..296].iter().all(|b| *b == 7));
    let stats = ring.stats();
    assert_eq!((stats.direct_bytes, stats.staged_bytes), (40, 16));
    assert_eq!(stats.bytes, 56);
    // The batch was larger than the ring's buffers (SLOT bytes): its buffer was allocated at
    // its size.
    assert!(batch.device().bytes().len() >= 296);
}

#[test]
fn a_failed_submit_drops_the_direct_owners_and_frees_its_slot() {
    let ring = ring(3, 3);
    let direct = Arc::new(vec![1u8; 8]);
    let slot = ring.acquire(soon()).unwrap();
    let ranges = vec![
        SubmitRange::host(host_source(&direct), 0),
        // Past the slot's staging memory: refused by the engine before any copy.
        SubmitRange::staged(SLOT - 4, 8, 64),
    ];
    assert!(matches!(
        ring.submit_ranges(slot, ranges, soon()),
        Err(RingError::Failed(_))
    ));
    assert_eq!(Arc::strong_count(&direct), 1);
    let slots: Vec<_> = (0..3).map(|_| ring.acquire(soon()).unwrap()).collect();
    assert_eq!(slots.len(), 3);
    assert_eq!(ring.stats().copies, 0);
}

#[test]
fn device_buffers_grow_after_release_and_held_batches_keep_their_bytes() {
    let ring = ring(3, 2);
    push(&ring, 1, SLOT);
    let small = ring.next(soon()).unwrap();
    // A larger batch: the slot's staging memory grows, then a device buffer of its size.
    let mut slot = ring.acquire(soon()).unwrap();
    slot.reserve(3 * SLOT).unwrap();
    assert!(slot.bytes().len() >= 3 * SLOT);
    slot.bytes()[..3 * SLOT].fill(2);
    ring.submit(slot, 3 * SLOT, soon()).unwrap();
    let large = ring.next(soon()).unwrap();
    assert_eq!(large.len(), 3 * SLOT);
    assert!(large.device().bytes()[..3 * SLOT].iter().all(|b| *b == 2));
    assert!(small.device().bytes().iter().all(|b| *b == 1));
    let stats = ring.stats();
    assert_eq!(stats.staging_grown, 1);
    assert_eq!(stats.device_buffers_allocated, 2);
    // Both buffers held; release the small one: the next larger batch reuses it by growing it
    // (the held one is untouched), and the ring never holds more than two buffers.
    drop(small);
    let mut slot = ring.acquire(soon()).unwrap();
    slot.reserve(2 * SLOT).unwrap();
    slot.bytes()[..2 * SLOT].fill(3);
    ring.submit(slot, 2 * SLOT, soon()).unwrap();
    let grown = ring.next(soon()).unwrap();
    assert!(grown.device().bytes()[..2 * SLOT].iter().all(|b| *b == 3));
    assert!(large.device().bytes()[..3 * SLOT].iter().all(|b| *b == 2));
    let stats = ring.stats();
    assert_eq!(stats.device_buffers_grown, 1);
    assert_eq!(stats.device_buffers_allocated, 2);
    // A smaller batch after them fits the grown buffers without growing again.
    drop(grown);
    push(&ring, 4, 8);
    let last = ring.next(soon()).unwrap();
    assert_eq!(&last.device().bytes()[..8], &[4; 8]);
    assert_eq!(ring.stats().device_buffers_grown, 1);
}
