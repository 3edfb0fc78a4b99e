//! Zenith's rings against what a Rust user would pick instead, in one harness and one run:
//! `rtrb` (SPSC) and crossbeam's `ArrayQueue` (MPMC, also usable as SPSC).
//!
//! Each trial moves `u64` elements through a ring of 1,024 slots: SPSC with one producer thread
//! and one consumer thread, MPMC with two of each. "single" pushes and pops one element per
//! call; "batch" moves up to 32 per call through each ring's batch API (Zenith `push_slice` /
//! `pop_into`, rtrb `push_partial_slice` / `pop_partial_slice`; `ArrayQueue` has none, so its
//! batch is a loop of single calls). Threads are pinned to distinct cores where the machine has
//! them. A thread that finds the ring full or empty spins for a fixed time, then yields (the same
//! policy for every ring, by time rather than by number of tries). The rate is elements per
//! second, each element one push and one pop; every trial checks the sum of what arrived. Cells
//! run round-robin, the median of the trials is
//! reported, with the ratios Zenith / other.
//!
//! Run: `make bench-rings` (or `cargo bench -p zenith-core --bench rings`); `--quick` runs fewer,
//! shorter trials.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use zenith_core::runtime::ring::{MpmcRing, SpscRing};

const CAPACITY: usize = 1024;
const BATCH: usize = 32;
const MPMC_THREADS: usize = 2;

/// Pins the calling thread to CPU `cpu` modulo the CPUs this process may use, so that a trial's
/// threads sit on fixed, distinct cores (as a loader's workers and consumer do) instead of
/// wherever the scheduler puts them: two threads time-sliced on one core hand off through the
/// cache for free and would make the rates bimodal.
fn pin(cpu: usize) {
    // SAFETY: plain libc calls on a zeroed cpu_set_t owned here.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.len() < 2 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[cpu % cpus.len()], &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Undoes [`pin`] for the main thread between trials.
fn unpin() {
    // SAFETY: as in `pin`.
    unsafe {
        let mut all: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(c, &mut all);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &all);
    }
}

/// Backs off after finding the ring full or empty: spins for up to `patience` since the first
/// failed try, then yields the core between tries. Time, not a count of tries, decides, so a ring
/// whose failed tries are quicker does not yield (and lose its core) sooner than another.
struct Waiter {
    patience: Duration,
    since: Option<Instant>,
    spins: u32,
}

impl Waiter {
    fn new(patience: Duration) -> Self {
        Waiter {
            patience,
            since: None,
            spins: 0,
        }
    }

    #[inline]
    fn wait(&mut self) {
        let since = *self.since.get_or_insert_with(Instant::now);
        self.spins += 1;
        if self.spins % 16 == 0 && since.elapsed() > self.patience {
            thread::yield_now();
        } else {
            spin_loop();
        }
    }

    #[inline]
    fn reset(&mut self) {
        self.since = None;
        self.spins = 0;
    }
}

/// SPSC trials have a core per thread: spin a while before yielding.
const SPSC_PATIENCE: Duration = Duration::from_micros(50);
/// MPMC trials may have more threads than cores: yield soon, or the thread being waited for may
/// not run.
const MPMC_PATIENCE: Duration = Duration::from_micros(2);

/// One SPSC trial: `n` elements from a producer thread to this thread. `push` moves a prefix of
/// its slice into the ring and says how many; `pop` fills a prefix of its slice.
fn spsc_trial<P, C>(
    n: u64,
    batch: usize,
    (producer, consumer): (P, C),
    push: impl Fn(&mut P, &[u64]) -> usize + Send + 'static,
    pop: impl Fn(&mut C, &mut [u64]) -> usize,
) -> f64
where
    P: Send + 'static,
{
    let start = Arc::new(Barrier::new(2));
    let go = start.clone();
    let writer = thread::spawn(move || {
        pin(1);
        // Each thread's state on lines of its own, so no implementation gains or loses by where
        // its handles happen to be allocated next to the other thread's buffers.
        let mut producer = CachePadded::new(producer);
        let mut items = CachePadded::new([0u64; BATCH]);
        go.wait();
        let (mut next, mut waiter) = (0u64, Waiter::new(SPSC_PATIENCE));
        while next < n {
            let len = batch.min((n - next) as usize);
            for (i, item) in items[..len].iter_mut().enumerate() {
                *item = next + i as u64;
            }
            let pushed = push(&mut producer, &items[..len]);
            if pushed == 0 {
                waiter.wait();
            } else {
                waiter.reset();
            }
            next += pushed as u64;
        }
    });
    pin(0);
    let mut consumer = CachePadded::new(consumer);
    let mut out = CachePadded::new([0u64; BATCH]);
    start.wait();
    let began = Instant::now();
    let (mut got, mut sum, mut waiter) = (0u64, 0u64, Waiter::new(SPSC_PATIENCE));
    while got < n {
        let popped = pop(&mut consumer, &mut out[..batch]);
        if popped == 0 {
            waiter.wait();
        } else {
            waiter.reset();
        }
        sum = out[..popped].iter().fold(sum, |s, v| s.wrapping_add(*v));
        got += popped as u64;
    }
    let elapsed = began.elapsed().as_secs_f64();
    writer.join().unwrap();
    unpin();
    assert_eq!(sum, n * (n - 1) / 2, "elements lost or changed");
    n as f64 / elapsed
}

/// One MPMC trial: `n` elements from `MPMC_THREADS` producers to as many consumers through a
/// shared queue.
fn mpmc_trial<Q: Send + Sync + 'static>(
    n: u64,
    batch: usize,
    queue: Q,
    push: fn(&Q, &[u64]) -> usize,
    pop: fn(&Q, &mut [u64]) -> usize,
) -> f64 {
    let queue = Arc::new(queue);
    let start = Arc::new(Barrier::new(2 * MPMC_THREADS + 1));
    let producers_done = Arc::new(AtomicBool::new(false));
    let per_producer = n / MPMC_THREADS as u64;
    let producers: Vec<_> = (0..MPMC_THREADS as u64)
        .map(|p| {
            let (queue, start) = (queue.clone(), start.clone());
            thread::spawn(move || {
                pin(p as usize);
                let mut items = CachePadded::new([0u64; BATCH]);
                start.wait();
                let (first, last) = (p * per_producer, (p + 1) * per_producer);
                let (mut next, mut waiter) = (first, Waiter::new(MPMC_PATIENCE));
                while next < last {
                    let len = batch.min((last - next) as usize);
                    for (i, item) in items[..len].iter_mut().enumerate() {
                        *item = next + i as u64;
                    }
                    let pushed = push(&queue, &items[..len]);
                    if pushed == 0 {
                        waiter.wait();
                    } else {
                        waiter.reset();
                    }
                    next += pushed as u64;
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..MPMC_THREADS)
        .map(|c| {
            let (queue, start, done) = (queue.clone(), start.clone(), producers_done.clone());
            thread::spawn(move || {
                pin(c + 1);
                let mut out = CachePadded::new([0u64; BATCH]);
                start.wait();
                let (mut got, mut sum, mut waiter) = (0u64, 0u64, Waiter::new(MPMC_PATIENCE));
                loop {
                    // Empty although every producer had finished before we looked: the end.
                    let finished = done.load(Ordering::Acquire);
                    let popped = pop(&queue, &mut out[..batch]);
                    if popped == 0 {
                        if finished {
                            return (got, sum);
                        }
                        waiter.wait();
                        continue;
                    }
                    waiter.reset();
                    sum = out[..popped].iter().fold(sum, |s, v| s.wrapping_add(*v));
                    got += popped as u64;
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for p in producers {
        p.join().unwrap();
    }
    producers_done.store(true, Ordering::Release);
    let (mut got, mut sum) = (0u64, 0u64);
    for c in consumers {
        let (g, s) = c.join().unwrap();
        got += g;
        sum = sum.wrapping_add(s);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let total = per_producer * MPMC_THREADS as u64;
    assert_eq!(got, total, "elements lost or duplicated");
    assert_eq!(sum, total * (total - 1) / 2, "elements changed");
    total as f64 / elapsed
}

/// The cells of the table, each a closure running one trial.
struct Cell {
    scenario: &'static str,
    ring: &'static str,
    run: Box<dyn Fn() -> f64>,
    rates: Vec<f64>,
}

fn cells(spsc_n: u64, mpmc_n: u64) -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut add = |scenario, ring, run: Box<dyn Fn() -> f64>| {
        cells.push(Cell {
            scenario,
            ring,
            run,
            rates: Vec::new(),
        })
    };
    // SPSC, one element per call.
    add(
        "SPSC single",
        "zenith",
        Box::new(move || {
            spsc_trial(
                spsc_n,
                1,
                SpscRing::new(CAPACITY),
                |p, items| p.push(items[0]).is_ok() as usize,
                |c, out| c.pop().map(|v| out[0] = v).is_some() as usize,
            )
        }),
    );
    add(
        "SPSC single",
        "rtrb",
        Box::new(move || {
            spsc_trial(
                spsc_n,
                1,
                rtrb::RingBuffer::new(CAPACITY),
                |p, items| p.push(items[0]).is_ok() as usize,
                |c, out| c.pop().map(|v| out[0] = v).is_ok() as usize,
            )
        }),
    );
    add(
        "SPSC single",
        "ArrayQueue",
        Box::new(move || {
            let q = Arc::new(ArrayQueue::new(CAPACITY));
            spsc_trial(
                spsc_n,
                1,
                (q.clone(), q),
                |q, items| q.push(items[0]).is_ok() as usize,
                |q, out| q.pop().map(|v| out[0] = v).is_some() as usize,
            )
        }),
    );
    // SPSC, batches.
    add(
        "SPSC batch 32",
        "zenith",
        Box::new(move || {
            spsc_trial(
                spsc_n,
                BATCH,
                SpscRing::new(CAPACITY),
                |p, items| p.push_slice(items),
                |c, out| c.pop_into(out),
            )
        }),
    );
    add(
        "SPSC batch 32",
        "rtrb",
        Box::new(move || {
            spsc_trial(
                spsc_n,
                BATCH,
                rtrb::RingBuffer::new(CAPACITY),
                |p, items| items.len() - p.push_partial_slice(items).1.len(),
                |c, out| {
                    let len = out.len();
                    len - c.pop_partial_slice(out).1.len()
                },
            )
        }),
    );
    add(
        "SPSC batch 32",
        "ArrayQueue",
        Box::new(move || {
            let q = Arc::new(ArrayQueue::new(CAPACITY));
            spsc_trial(
                spsc_n,
                BATCH,
                (q.clone(), q),
                |q, items| items.iter().take_while(|&&v| q.push(v).is_ok()).count(),
                |q, out| array_queue_pop_loop(q, out),
            )
        }),
    );
    // MPMC.
    add(
        "MPMC single",
        "zenith",
        Box::new(move || {
            mpmc_trial(
                mpmc_n,
                1,
                MpmcRing::new(CAPACITY),
                |q, items| q.push(items[0]).is_ok() as usize,
                |q, out| q.pop().map(|v| out[0] = v).is_some() as usize,
            )
        }),
    );
    add(
        "MPMC single",
        "ArrayQueue",
        Box::new(move || {
            mpmc_trial(
                mpmc_n,
                1,
                ArrayQueue::new(CAPACITY),
                |q, items| q.push(items[0]).is_ok() as usize,
                |q, out| q.pop().map(|v| out[0] = v).is_some() as usize,
            )
        }),
    );
    add(
        "MPMC batch 32",
        "zenith",
        Box::new(move || {
            mpmc_trial(
                mpmc_n,
                BATCH,
                MpmcRing::new(CAPACITY),
                |q, items| q.push_slice(items),
                |q, out| q.pop_into(out),
            )
        }),
    );
    add(
        "MPMC batch 32",
        "ArrayQueue",
        Box::new(move || {
            mpmc_trial(
                mpmc_n,
                BATCH,
                ArrayQueue::new(CAPACITY),
                |q, items| items.iter().take_while(|&&v| q.push(v).is_ok()).count(),
                array_queue_pop_loop,
            )
        }),
    );
    cells
}

/// `ArrayQueue` has no batch pop: pop one at a time until the slice is full or the queue empty.
fn array_queue_pop_loop(q: &ArrayQueue<u64>, out: &mut [u64]) -> usize {
    let mut n = 0;
    while n < out.len() {
        match q.pop() {
            Some(v) => out[n] = v,
            None => break,
        }
        n += 1;
    }
    n
}

/// The `q`-quantile (0 to 1) of `values`, nearest rank.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; we read `--quick`, `--trials N` and `--only TEXT` (run the
    // scenarios whose name contains TEXT) and ignore the rest.
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let quick = args.iter().any(|a| a == "--quick");
    let (trials, spsc_n, mpmc_n) = if quick {
        (3, 1_000_000, 400_000)
    } else {
        (11, 5_000_000, 2_000_000)
    };
    let trials = value("--trials").map_or(trials, |t| t.parse().expect("--trials N"));
    let only = value("--only").unwrap_or_default();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "rings: {trials} trials per cell (median shown), {spsc_n} elements per SPSC trial, \
         {mpmc_n} per MPMC trial ({MPMC_THREADS} producers + {MPMC_THREADS} consumers), \
         capacity {CAPACITY}, batches of {BATCH}, {cores} cores"
    );
    let mut cells = cells(spsc_n, mpmc_n);
    cells.retain(|c| c.scenario.contains(only.as_str()));
    for _ in 0..trials {
        for cell in &mut cells {
            let rate = (cell.run)();
            if std::env::var_os("RINGS_VERBOSE").is_some() {
                eprintln!("{} {}: {:.1}M", cell.scenario, cell.ring, rate / 1e6);
            }
            cell.rates.push(rate);
        }
    }
    println!();
    println!(
        "{:<14} {:>22} {:>22} {:>22} {:>8} {:>8}",
        "scenario", "zenith el/s", "rtrb el/s", "ArrayQueue el/s", "vs rtrb", "vs AQ"
    );
    let mut scenarios: Vec<&str> = cells.iter().map(|c| c.scenario).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let rates = |ring: &str| {
            cells
                .iter()
                .find(|c| c.scenario == scenario && c.ring == ring)
                .map(|c| c.rates.as_slice())
        };
        let (zenith, rtrb, aq) = (rates("zenith"), rates("rtrb"), rates("ArrayQueue"));
        // Median, and the middle half of the trials in brackets.
        let show = |r: Option<&[f64]>| {
            r.map_or("n/a".to_string(), |r| {
                format!(
                    "{:.1}M ({:.1}-{:.1})",
                    quantile(r, 0.5) / 1e6,
                    quantile(r, 0.25) / 1e6,
                    quantile(r, 0.75) / 1e6
                )
            })
        };
        let ratio = |other: Option<&[f64]>| match (zenith, other) {
            (Some(z), Some(o)) => format!("{:.2}x", quantile(z, 0.5) / quantile(o, 0.5)),
            _ => "n/a".to_string(),
        };
        println!(
            "{:<14} {:>22} {:>22} {:>22} {:>8} {:>8}",
            scenario,
            show(zenith),
            show(rtrb),
            show(aq),
            ratio(rtrb),
            ratio(aq)
        );
    }
    println!();
    println!(
        "median (quartiles) of the trials; ratios of medians. rtrb is SPSC only (n/a for MPMC); \
         ArrayQueue has no batch API (its batch rows loop single calls)."
    );
}
