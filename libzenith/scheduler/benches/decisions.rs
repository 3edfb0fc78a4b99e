//! Decision latency and throughput at 1,000 nodes x 8 GPUs with 10,000 jobs queued (a
//! benchmark, not a test: `cargo bench -p zenith-scheduler --bench decisions`).
//!
//! The cluster (50 racks of 20 nodes, NVLink islands of 4) is filled completely by running
//! jobs (half the nodes by 8-GPU jobs, the rest by 1-, 2- and 4-GPU jobs), and 10,000 jobs of
//! mixed sizes (1 GPU to 8-node gangs) wait behind them. Then, per scenario:
//!
//! - `pass: gang of N x 8 GPUs`: N whole nodes are freed, a gang of N 8-GPU members with a
//!   higher priority is submitted, and one `schedule()` call places it: the latency of that
//!   call (the queue order, the placement search, the bookkeeping, the 10,000 other jobs
//!   skipped) is the decision latency. The gang then finishes and the next one comes.
//! - `search: gang of N x 8 GPUs`: the placement search alone (`test_only`) in the same state.
//! - `steady state`: a running job finishes, a new job of the same mix arrives, one pass runs;
//!   decisions per second of pass time over many rounds (the simulator's throughput measure).
//!
//! Latencies are on-CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`, less the cost
//! of reading it), so time the OS gives other processes on a loaded machine is not
//! counted; where that clock is missing, wall-clock time. Throughput is decisions per second of
//! that time.

use std::hint::black_box;
use std::time::Instant;

use zenith_scheduler::rng::Rng;
use zenith_scheduler::*;

const NODES: u32 = 1000;
const QUEUED: u64 = 10_000;
const S: u64 = 1000;

fn node(i: u32) -> NodeSpec {
    NodeSpec::new(format!("node-{i:04}"), 128_000, 2 * 1024 * 1024)
        .with_gpus(8, "H100", 80 * 1024)
        .with_islands_of(4)
        .with_rack(format!("rack-{:02}", i / 20))
}

fn job(id: u64, gpus: u32, gang: u32, priority: i32) -> JobSpec {
    let mut j = JobSpec::new(
        id,
        format!("j{id}"),
        Resources {
            cpu_milli: 4000 * gpus as u64,
            memory_mib: 32 * 1024 * gpus as u64,
            ..Resources::gpus(gpus)
        },
    )
    .gang(gang, Locality::Any)
    .priority(priority, false)
    .max_runtime_ms(10 * 86_400 * S);
    j.user = format!("user-{}", id % 32);
    j
}

/// A job of the queue's mix: 1, 2 or 4 GPUs, one node, or a gang of 2 to 8 nodes.
fn mixed(r: &mut Rng, id: u64) -> JobSpec {
    let (gpus, gang) = match r.below(10) {
        0..=3 => (1, 1),
        4..=5 => (2, 1),
        6 => (4, 1),
        7 => (8, 1),
        _ => (8, r.range(2, 8) as u32),
    };
    let mut j = job(id, gpus, gang, 0);
    j.max_runtime_ms = Some(r.range(600, 86_400) * S);
    j
}

fn act(s: &mut Scheduler, d: &[Decision], now: u64) -> usize {
    let mut started = 0;
    for x in d {
        if let Decision::Start { job, .. } = x {
            s.job_started(*job, now).unwrap();
            started += 1;
        }
    }
    started
}

/// The full cluster with the queue behind it; returns the ids of the 8-GPU fill jobs.
fn build() -> (Scheduler, Vec<JobId>, u64) {
    let mut s = Scheduler::new(SchedulerConfig::default()).unwrap();
    for i in 0..NODES {
        s.add_node(node(i), 0).unwrap();
    }
    let mut r = Rng::new(42);
    let mut id = 0u64;
    let mut whole = Vec::new();
    for _ in 0..NODES / 2 {
        id += 1;
        s.submit(job(id, 8, 1, 0), 0).unwrap();
        whole.push(JobId(id));
    }
    let mut gpus_left = (NODES / 2) * 8;
    while gpus_left > 0 {
        let g = [1u32, 2, 4][r.below(3) as usize].min(gpus_left);
        let g = if g == 3 { 2 } else { g };
        id += 1;
        s.submit(job(id, g, 1, 0), 0).unwrap();
        gpus_left -= g;
    }
    let d = s.schedule(0).unwrap();
    act(&mut s, &d, 0);
    assert_eq!(s.stats().gpu_free_milli, 0, "the fill leaves GPUs free");
    for _ in 0..QUEUED {
        id += 1;
        s.submit(mixed(&mut r, id), S).unwrap();
    }
    let d = s.schedule(S).unwrap();
    assert!(d.is_empty());
    assert_eq!(s.jobs_in(JobState::Queued).len() as u64, QUEUED);
    (s, whole, id)
}

/// `struct timespec` on 64-bit Linux.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
unsafe extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// The thread's on-CPU time in seconds (`CLOCK_THREAD_CPUTIME_ID`), where the platform has it.
fn thread_cpu_time() -> Option<f64> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid, writable timespec; clock_gettime only writes it.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
        if rc == 0 {
            return Some(t.sec as f64 + t.nsec as f64 * 1e-9);
        }
    }
    None
}

/// A clock of the thread's on-CPU time in seconds (wall time where the platform has none).
struct CpuClock {
    /// The median cost of one reading pair, subtracted from each interval.
    overhead: f64,
    proc: bool,
    start: Instant,
}

impl CpuClock {
    fn new() -> CpuClock {
        let proc = thread_cpu_time().is_some();
        let mut c = CpuClock {
            overhead: 0.0,
            proc,
            start: Instant::now(),
        };
        let mut empty: Vec<f64> = (0..1000)
            .map(|_| {
                let t = c.now();
                c.now() - t
            })
            .collect();
        c.overhead = pct(&mut empty, 0.5);
        c
    }

    fn now(&self) -> f64 {
        match self.proc.then(thread_cpu_time).flatten() {
            Some(t) => t,
            None => self.start.elapsed().as_secs_f64(),
        }
    }

    /// Runs `f` and returns its result and its time.
    fn time<T>(&self, f: impl FnOnce() -> T) -> (T, f64) {
        let t = self.now();
        let out = f();
        let dt = self.now() - t;
        (out, (dt - self.overhead).max(0.0))
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn us(x: f64) -> String {
    format!("{:.1} us", x * 1e6)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this briefly.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--test" || a == "--quick");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|k| args.get(k + 1)?.parse().ok())
        .unwrap_or(if quick { 20 } else { 2000 });
    println!(
        "zenith-scheduler decisions: {NODES} nodes x 8 GPUs, {QUEUED} jobs queued, {rounds} rounds\n"
    );
    let clock = CpuClock::new();
    println!(
        "(latencies: {} time)\n",
        if clock.proc { "on-CPU" } else { "wall-clock" }
    );
    println!(
        "{:<34} {:>12} {:>12} {:>14}",
        "scenario", "p50", "p99", "decisions/s"
    );
    // `--only N`: the pass scenario with gangs of N members alone; `--only steady`: the steady
    // state alone (for profilers).
    let only: Option<&str> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|k| args.get(k + 1))
        .map(String::as_str);
    for members in [1u32, 4, 16] {
        if only.is_some_and(|m| m != members.to_string()) {
            continue;
        }
        let t0 = Instant::now();
        let (mut s, whole, mut id) = build();
        if members == 1 {
            eprintln!("(setup: {:.1} s)", t0.elapsed().as_secs_f64());
        }
        let mut now = 2 * S;
        // Free `members` whole nodes.
        for j in &whole[..members as usize] {
            s.job_completed(*j, now).unwrap();
        }
        let mut pass = Vec::with_capacity(rounds);
        let mut search = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            now += S;
            id += 1;
            let head = job(id, 8, members, 10);
            let (_, dt) = clock.time(|| black_box(s.test_only(&head).unwrap()));
            search.push(dt);
            s.submit(head, now).unwrap();
            let (d, dt) = clock.time(|| s.schedule(now).unwrap());
            pass.push(dt);
            assert_eq!(act(&mut s, &d, now), 1, "{d:?}");
            s.job_completed(JobId(id), now).unwrap();
        }
        let total: f64 = pass.iter().sum();
        println!(
            "{:<34} {:>12} {:>12} {:>14.0}",
            format!("pass: gang of {members} x 8 GPUs"),
            us(pct(&mut pass, 0.5)),
            us(pct(&mut pass, 0.99)),
            rounds as f64 / total
        );
        println!(
            "{:<34} {:>12} {:>12} {:>14}",
            format!("search: gang of {members} x 8 GPUs"),
            us(pct(&mut search, 0.5)),
            us(pct(&mut search, 0.99)),
            "-"
        );
    }
    if only.is_some_and(|m| m != "steady") {
        return;
    }
    // Steady state: one job ends, one arrives, one pass.
    let (mut s, _, mut id) = build();
    let mut r = Rng::new(7);
    let mut now = 2 * S;
    let mut running = s.jobs_in(JobState::Running);
    let (mut decisions, mut time) = (0u64, 0f64);
    let mut pass = Vec::new();
    for _ in 0..rounds * 5 {
        now += S;
        let k = r.below(running.len() as u64) as usize;
        let done = running.swap_remove(k);
        s.job_completed(done, now).unwrap();
        id += 1;
        s.submit(mixed(&mut r, id), now).unwrap();
        let (d, dt) = clock.time(|| s.schedule(now).unwrap());
        time += dt;
        pass.push(dt);
        decisions += d.len() as u64;
        for x in &d {
            match x {
                Decision::Start { job, .. } => {
                    s.job_started(*job, now).unwrap();
                    running.push(*job);
                }
                Decision::Fail { job, .. } => running.retain(|j| j != job),
                _ => {}
            }
        }
    }
    println!(
        "{:<34} {:>12} {:>12} {:>14.0}",
        "steady state (end, arrival, pass)",
        us(pct(&mut pass, 0.5)),
        us(pct(&mut pass, 0.99)),
        decisions as f64 / time
    );
    println!(
        "\nsteady state: {decisions} decisions in {} passes, {} jobs still queued",
        rounds * 5,
        s.jobs_in(JobState::Queued).len()
    );
}
