//! Stress and property tests of the rings with many threads: every element is delivered exactly
//! once, in FIFO order per producer, across every capacity edge; elements left in a ring are
//! dropped with it. Each test runs its schedule several times with a seeded pseudo-random mix of
//! single and batched operations; the whole file stays well under ten seconds in release.

use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use zenith_core::runtime::ring::{ByteRing, MpmcRing, ReorderRing, RingKind, SpscRing};

/// A small deterministic generator (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Waits for the other side: a spin hint, and a yield now and then (the test machines have two
/// cores and more threads than that).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins % 16 == 0 {
        thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

#[test]
fn spsc_delivers_every_element_once_in_order_with_mixed_batches() {
    const N: u64 = 200_000;
    for (round, capacity) in [2, 3, 16, 1024].into_iter().enumerate() {
        let (mut producer, mut consumer) = SpscRing::<u64>::new(capacity);
        let writer = thread::spawn(move || {
            let mut rng = Rng::new(round as u64);
            let mut next = 0;
            let mut spins = 0;
            while next < N {
                let pushed = if rng.below(2) == 0 {
                    producer.push(next).is_ok() as u64
                } else {
                    let len = (rng.below(40) + 1).min(N - next);
                    let items: Vec<u64> = (next..next + len).collect();
                    producer.push_slice(&items) as u64
                };
                if pushed == 0 {
                    backoff(&mut spins);
                }
                next += pushed;
            }
        });
        let mut rng = Rng::new(100 + round as u64);
        let mut expected = 0;
        let mut buffer = [0u64; 37];
        let mut spins = 0;
        while expected < N {
            let got = match rng.below(3) {
                0 => consumer.pop().map(|v| vec![v]).unwrap_or_default(),
                1 => {
                    let n = consumer.pop_into(&mut buffer[..rng.below(37) as usize + 1]);
                    buffer[..n].to_vec()
                }
                _ => {
                    let mut out = Vec::new();
                    consumer.pop_many(&mut out, rng.below(50) as usize);
                    out
                }
            };
            if got.is_empty() {
                backoff(&mut spins);
            }
            for v in got {
                assert_eq!(v, expected, "capacity {capacity}");
                expected += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(consumer.pop(), None);
        assert!(consumer.is_abandoned());
    }
}

/// Counts its drops, so that a test can see every element dropped exactly once.
struct Tracked {
    value: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn spsc_moves_owned_elements_and_drops_the_rest_with_the_ring() {
    const N: u64 = 50_000;
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut producer, mut consumer) = SpscRing::<Tracked>::new(64);
    let made = drops.clone();
    let writer = thread::spawn(move || {
        let mut items = (0..N).map(|value| Tracked {
            value,
            drops: made.clone(),
        });
        let mut items = items.by_ref().peekable();
        let mut spins = 0;
        while items.peek().is_some() {
            if producer.push_iter(&mut items) == 0 {
                backoff(&mut spins);
            }
        }
        producer
    });
    // Take only part of the elements; the rest stay in the ring.
    let mut expected = 0;
    let mut out = Vec::new();
    let mut spins = 0;
    while expected < N - 40 {
        out.clear();
        if consumer.pop_many(&mut out, (N - 40 - expected) as usize) == 0 {
            backoff(&mut spins);
        }
        for item in &out {
            assert_eq!(item.value, expected);
            expected += 1;
        }
    }
    drop(out);
    let producer = writer.join().unwrap();
    assert_eq!(consumer.len(), 40);
    assert_eq!(drops.load(Ordering::Relaxed), (N - 40) as usize);
    drop(consumer);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        (N - 40) as usize,
        "the producer still holds it"
    );
    drop(producer);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        N as usize,
        "every element dropped once"
    );
}

/// Runs `producers` threads pushing `(producer, seq)` for `seq in 0..per_producer` and
/// `consumers` threads popping, with mixed single and batched calls, and checks that every
/// element arrives exactly once and that each consumer sees each producer's elements in order.
fn mpmc_round(capacity: usize, producers: u64, consumers: u64, per_producer: u64, seed: u64) {
    let ring = Arc::new(MpmcRing::<u64>::new(capacity));
    let total = producers * per_producer;
    let popped = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new((producers + consumers) as usize));
    let encode = |producer: u64, seq: u64| (producer << 40) | seq;
    let mut threads = Vec::new();
    for p in 0..producers {
        let (ring, start) = (ring.clone(), start.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng::new(seed * 1000 + p);
            start.wait();
            let mut seq = 0;
            let mut spins = 0;
            while seq < per_producer {
                let pushed = if rng.below(2) == 0 {
                    ring.push(encode(p, seq)).is_ok() as u64
                } else {
                    let len = (rng.below(16) + 1).min(per_producer - seq);
                    let items: Vec<u64> = (seq..seq + len).map(|s| encode(p, s)).collect();
                    ring.push_slice(&items) as u64
                };
                if pushed == 0 {
                    backoff(&mut spins);
                }
                seq += pushed;
            }
            Vec::new()
        }));
    }
    for c in 0..consumers {
        let (ring, start, popped) = (ring.clone(), start.clone(), popped.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng::new(seed * 1000 + 500 + c);
            let mut got = Vec::new();
            let mut buffer = [0u64; 16];
            start.wait();
            let mut spins = 0;
            while popped.load(Ordering::Relaxed) < total {
                let before = got.len();
                match rng.below(3) {
                    0 => got.extend(ring.pop()),
                    1 => {
                        let n = ring.pop_into(&mut buffer[..rng.below(16) as usize + 1]);
                        got.extend_from_slice(&buffer[..n]);
                    }
                    _ => {
                        ring.pop_many(&mut got, rng.below(20) as usize + 1);
                    }
                }
                let n = (got.len() - before) as u64;
                if n == 0 {
                    backoff(&mut spins);
                } else {
                    popped.fetch_add(n, Ordering::Relaxed);
                }
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    for thread in threads {
        let got = thread.join().unwrap();
        let mut last = vec![None; producers as usize];
        for v in got {
            let (p, seq) = (v >> 40, v & ((1 << 40) - 1));
            assert!(
                p < producers && seq < per_producer,
                "invented element {v:#x}"
            );
            if let Some(previous) = last[p as usize] {
                assert!(
                    seq > previous,
                    "producer {p}: {seq} popped after {previous}"
                );
            }
            last[p as usize] = Some(seq);
            assert!(seen.insert(v), "element {v:#x} delivered twice");
        }
    }
    assert_eq!(seen.len() as u64, total, "every element delivered");
    assert!(ring.is_empty());
}

#[test]
fn mpmc_delivers_every_element_once_fifo_per_producer() {
    for (seed, (capacity, producers, consumers)) in
        [(2, 4, 4), (8, 3, 5), (64, 6, 2), (1024, 2, 6), (5, 1, 1)]
            .into_iter()
            .enumerate()
    {
        mpmc_round(capacity, producers, consumers, 30_000, seed as u64);
    }
}

#[test]
fn mpmc_drops_what_is_left_after_concurrent_use() {
    let drops = Arc::new(AtomicUsize::new(0));
    let ring = Arc::new(MpmcRing::<Tracked>::new(32));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (ring, drops) = (ring.clone(), drops.clone());
            thread::spawn(move || {
                for i in 0..5_000 {
                    let item = Tracked {
                        value: i,
                        drops: drops.clone(),
                    };
                    if t % 2 == 0 {
                        drop(ring.push(item)); // dropped here when full
                    } else {
                        drop(item);
                        drop(ring.pop());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let left = ring.len();
    assert_eq!(drops.load(Ordering::Relaxed), 20_000 - left);
    drop(ring);
    assert_eq!(drops.load(Ordering::Relaxed), 20_000);
}

/// Byte elements: 4 bytes of producer, 8 of sequence number.
fn element(producer: u32, seq: u64) -> [u8; 12] {
    let mut e = [0; 12];
    e[..4].copy_from_slice(&producer.to_le_bytes());
    e[4..].copy_from_slice(&seq.to_le_bytes());
    e
}

fn decode(bytes: &[MaybeUninit<u8>]) -> (u32, u64) {
    // SAFETY: the ring wrote these bytes.
    let b: Vec<u8> = bytes.iter().map(|b| unsafe { b.assume_init() }).collect();
    (
        u32::from_le_bytes(b[..4].try_into().unwrap()),
        u64::from_le_bytes(b[4..].try_into().unwrap()),
    )
}

#[test]
fn byte_rings_deliver_every_element_once_in_order_per_producer() {
    const PER_PRODUCER: u64 = 20_000;
    for (kind, producers, consumers) in [(RingKind::Spsc, 1, 1), (RingKind::Mpmc, 3, 3)] {
        let ring = Arc::new(ByteRing::new(kind, 16, 12).unwrap());
        let total = PER_PRODUCER * producers as u64;
        let popped = Arc::new(AtomicU64::new(0));
        let mut writers = Vec::new();
        for p in 0..producers {
            let ring = ring.clone();
            writers.push(thread::spawn(move || {
                let mut rng = Rng::new(p as u64 + 7);
                let mut seq = 0;
                let mut spins = 0;
                while seq < PER_PRODUCER {
                    let len = (rng.below(8) + 1).min(PER_PRODUCER - seq);
                    let bytes: Vec<u8> = (seq..seq + len).flat_map(|s| element(p, s)).collect();
                    let pushed = if len == 1 {
                        ring.push(&bytes).unwrap() as u64
                    } else {
                        ring.push_many(&bytes).unwrap() as u64
                    };
                    if pushed == 0 {
                        backoff(&mut spins);
                    }
                    seq += pushed;
                }
            }));
        }
        let readers: Vec<_> = (0..consumers)
            .map(|c| {
                let (ring, popped) = (ring.clone(), popped.clone());
                thread::spawn(move || {
                    let mut rng = Rng::new(c as u64 + 70);
                    let mut out = [MaybeUninit::uninit(); 12 * 8];
                    let mut got = Vec::new();
                    let mut spins = 0;
                    while popped.load(Ordering::Relaxed) < total {
                        let want = rng.below(8) as usize + 1;
                        let n = if want == 1 {
                            ring.pop(&mut out[..12]).unwrap() as usize
                        } else {
                            ring.pop_many(&mut out[..12 * want]).unwrap()
                        };
                        if n == 0 {
                            backoff(&mut spins);
                        }
                        popped.fetch_add(n as u64, Ordering::Relaxed);
                        got.extend(out[..12 * n].chunks(12).map(decode));
                    }
                    got
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let mut seen = HashSet::new();
        for r in readers {
            let mut last = vec![None; producers as usize];
            for (p, seq) in r.join().unwrap() {
                assert!(seq < PER_PRODUCER && p < producers);
                if let Some(previous) = last[p as usize] {
                    assert!(
                        seq > previous,
                        "{kind:?}: producer {p}: {seq} after {previous}"
                    );
                }
                last[p as usize] = Some(seq);
                assert!(seen.insert((p, seq)), "{kind:?}: ({p}, {seq}) twice");
            }
        }
        assert_eq!(seen.len() as u64, total, "{kind:?}");
    }
}

#[test]
fn an_spsc_byte_ring_refuses_a_second_concurrent_producer_without_corruption() {
    // Two threads push at once against the contract: some calls are refused, none corrupts.
    let ring = Arc::new(ByteRing::new(RingKind::Spsc, 1024, 8).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let pushers: Vec<_> = (0..2u64)
        .map(|t| {
            let (ring, refused, stop) = (ring.clone(), refused.clone(), stop.clone());
            thread::spawn(move || {
                let mut accepted = 0u64;
                while !stop.load(Ordering::Relaxed) && accepted < 5_000 {
                    match ring.push(&((t << 32) | accepted).to_le_bytes()) {
                        Ok(true) => accepted += 1,
                        Ok(false) => thread::yield_now(),
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut out = [MaybeUninit::uninit(); 8];
    let mut spins = 0;
    while seen.len() < 10_000 {
        if ring.pop(&mut out).unwrap() {
            // SAFETY: written by the ring.
            let v = u64::from_le_bytes(out.map(|b| unsafe { b.assume_init() }));
            assert!(seen.insert(v), "{v:#x} twice");
        } else {
            backoff(&mut spins);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let accepted: u64 = pushers.into_iter().map(|p| p.join().unwrap()).sum();
    assert_eq!(accepted, 10_000);
    assert!(ring.is_empty());
}

#[test]
fn reorder_ring_turns_out_of_order_publication_into_in_order_delivery() {
    const N: usize = 100_000;
    for (capacity, workers) in [(2, 3), (8, 4), (64, 2)] {
        let ring = Arc::new(ReorderRing::<Box<usize>>::new(capacity, 5));
        let window = ring.capacity();
        let next_claim = Arc::new(AtomicUsize::new(5));
        let delivered = Arc::new(AtomicUsize::new(5));
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (ring, next_claim, delivered) =
                    (ring.clone(), next_claim.clone(), delivered.clone());
                thread::spawn(move || {
                    let mut rng = Rng::new(w as u64);
                    let mut spins = 0;
                    loop {
                        let claim = next_claim.load(Ordering::Relaxed);
                        if claim >= N + 5 {
                            return;
                        }
                        if claim >= delivered.load(Ordering::Acquire) + window {
                            backoff(&mut spins);
                            continue;
                        }
                        if next_claim
                            .compare_exchange(
                                claim,
                                claim + 1,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            )
                            .is_err()
                        {
                            continue;
                        }
                        for _ in 0..rng.below(50) {
                            std::hint::spin_loop(); // "build" for a while
                        }
                        ring.publish(claim, Box::new(claim))
                            .expect("the window keeps the slot free");
                        assert!(
                            ring.publish(claim, Box::new(0)).is_err(),
                            "a position is published once"
                        );
                    }
                })
            })
            .collect();
        let mut spins = 0;
        for position in 5..N + 5 {
            let value = loop {
                if let Some(v) = ring.take(position) {
                    break v;
                }
                backoff(&mut spins);
            };
            assert_eq!(*value, position);
            delivered.store(position + 1, Ordering::Release);
        }
        for h in handles {
            h.join().unwrap();
        }
    }
}

mod common;

/// The loader's hand-off (workers → reorder ring → consumer) delivers the plan's order for any
/// worker count and any prefetch, including one past the end of the epoch.
#[test]
fn the_loader_hand_off_keeps_plan_order_for_any_workers_and_prefetch() {
    use zenith_core::loader::ShuffleMode;
    use zenith_core::{Loader, LoaderOptions};

    let ids = |workers: usize, prefetch: usize| {
        let mut o = LoaderOptions::default();
        o.set_batch_size(7).unwrap();
        o.set_shuffle(ShuffleMode::Global);
        o.set_num_workers(workers).unwrap();
        o.set_prefetch(prefetch).unwrap();
        let loader = Loader::open(common::data_file("basic.arrow"), &o).unwrap();
        let mut ids = Vec::new();
        while let Some(batch) = loader.next_batch().unwrap() {
            let column = batch.data.column(0);
            let column = column
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            ids.extend(column.values().iter().copied());
        }
        ids
    };
    let expected = ids(0, 1);
    assert_eq!(expected.len() as u64, common::BASIC_ROWS);
    for (workers, prefetch) in [(1, 1), (3, 2), (4, 5), (2, 64), (3, usize::MAX)] {
        assert_eq!(
            ids(workers, prefetch),
            expected,
            "{workers} workers, prefetch {prefetch}"
        );
    }
}
