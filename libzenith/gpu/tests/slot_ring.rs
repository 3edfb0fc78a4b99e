//! The slot ring's rules on the host copy engine: ordering, reuse of staging slots only after
//! their copy finished, reuse of device memory only after the consumer released it,
//! back-pressure and deadlines.

use std::time::{Duration, Instant};

use zenith_gpu::ring::{HostCopyEngine, HostEvent, RingConfig, RingError, SlotRing, WaitingFor};

const SLOT: usize = 64;

fn ring(slots: usize, device_buffers: usize) -> SlotRing<HostCopyEngine> {
    let config = RingConfig {
        slots,
        slot_bytes: SLOT,
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
fn rings_refuse_too_few_slots_and_oversized_batches() {
    let engine = HostCopyEngine::new().unwrap();
    assert!(SlotRing::new(engine, RingConfig::new(2, SLOT)).is_err());
    let ring = ring(3, 3);
    let slot = ring.acquire(soon()).unwrap();
    assert!(matches!(
        ring.submit(slot, SLOT + 1, soon()),
        Err(RingError::Failed(_))
    ));
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
