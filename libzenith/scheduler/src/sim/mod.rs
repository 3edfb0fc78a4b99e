//! The trace-driven simulator: replays a workload against the real [`Scheduler`] under each
//! policy, in simulated time, and measures what users feel (job completion time, wait) and what
//! operators pay for (allocation, GPUs left idle while GPU tasks wait).
//!
//! Discrete events: job arrivals, job completions, and the scheduler's own wakeups
//! ([`Scheduler::next_wakeup`]). At each event time the simulator applies completions, then
//! arrivals, then runs one pass and acts on its decisions like an executor: a `Start` runs the
//! job at once (`job_started`) and schedules its completion after its remaining runtime; a
//! `Preempt` stops it, keeping its progress (suspend and resume, plus
//! [`SimOptions::preempt_overhead_ms`]). Every policy sees the same workload; SJF alone is given
//! the true runtimes as its time limits (the oracle), the others see the declared limits.
//!
//! Workloads: [`trace`] (the Alibaba openb trace) and [`synthetic`] (multi-node gangs).

pub mod report;
pub mod synthetic;
pub mod trace;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::config::{Policy, SchedulerConfig};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::model::{JobId, JobSpec, NodeSpec};
use crate::scheduler::Scheduler;

/// One job of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SimJob {
    /// What is submitted (its `max_runtime_ms` is the declared limit).
    pub spec: JobSpec,
    /// When it is submitted (ms).
    pub arrival_ms: u64,
    /// How long it runs once started (ms); the scheduler never sees it (except SJF's oracle).
    pub runtime_ms: u64,
}

/// A cluster and the jobs that arrive at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// A label for reports.
    pub name: String,
    /// The nodes, all present from time 0.
    pub nodes: Vec<NodeSpec>,
    /// The jobs, by arrival time.
    pub jobs: Vec<SimJob>,
    /// Input records left out (see the workload's module).
    pub skipped: usize,
}

impl Workload {
    /// GPUs in the cluster.
    pub fn gpus(&self) -> u64 {
        self.nodes.iter().map(|n| n.gpus.len() as u64).sum()
    }
}

/// The policies the simulator compares, by name.
pub const POLICIES: [&str; 5] = ["fifo", "first-fit", "best-fit", "sjf", "zenith"];

/// Simulator switches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimOptions {
    /// Check every invariant after every event (slow; tests turn it on).
    pub check_invariants: bool,
    /// Extra runtime a preempted job pays when it resumes (a checkpoint restore), in ms.
    pub preempt_overhead_ms: u64,
}

/// One policy's results on one workload. Everything but `sched_wall_s` is a deterministic
/// function of the workload and the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// The policy's name.
    pub policy: String,
    /// Jobs submitted.
    pub jobs: usize,
    /// Jobs that never fit the empty cluster (not submitted).
    pub unplaceable: usize,
    /// Jobs completed.
    pub completed: usize,
    /// Jobs that failed (a time limit; should be 0).
    pub failed: usize,
    /// Jobs still waiting when nothing else could happen.
    pub unfinished: usize,
    /// Mean job completion time (completion − arrival), s.
    pub avg_jct_s: f64,
    /// Median JCT, s.
    pub p50_jct_s: f64,
    /// 99th percentile JCT, s.
    pub p99_jct_s: f64,
    /// Mean time not running (JCT − runtime), s.
    pub avg_wait_s: f64,
    /// Last completion − first arrival, s.
    pub makespan_s: f64,
    /// Time-averaged allocated GPU capacity over the makespan, 0..1.
    pub gpu_alloc_ratio: f64,
    /// Time-averaged unallocated GPUs (milli summed, in GPUs) while at least one GPU task waits.
    pub unalloc_gpus_while_waiting: f64,
    /// Share of the makespan during which some GPU task waited.
    pub waiting_time_share: f64,
    /// Preemptions.
    pub preemptions: u64,
    /// Decisions made.
    pub decisions: u64,
    /// Scheduling passes.
    pub passes: u64,
    /// Wall-clock seconds spent in `schedule` (not deterministic).
    pub sched_wall_s: f64,
}

#[derive(Clone, Copy)]
struct Run {
    epoch: u32,
    since: Option<u64>,
    remaining: u64,
    end: Option<u64>,
    gpu_milli: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

fn sim_err(e: Error) -> Error {
    Error::Internal(format!("simulator: {e}"))
}

/// Replays `w` under the named policy (one of [`POLICIES`]).
pub fn run(w: &Workload, policy_name: &str, opts: &SimOptions) -> Result<PolicyResult> {
    let policy = Policy::named(policy_name).ok_or_else(|| Error::Data {
        at: "policy".into(),
        reason: format!(
            "unknown policy {policy_name:?}; known: {}",
            POLICIES.join(", ")
        ),
    })?;
    let oracle = policy_name == "sjf";
    let mut s = Scheduler::new(SchedulerConfig::with_policy(policy))?;
    for n in &w.nodes {
        s.add_node(n.clone(), 0)?;
    }
    let total_milli = w.gpus() * 1000;
    let mut index: HashMap<JobId, usize> = HashMap::with_capacity(w.jobs.len());
    let mut runs: Vec<Run> = Vec::with_capacity(w.jobs.len());
    let mut feasible = Vec::with_capacity(w.jobs.len());
    for (i, j) in w.jobs.iter().enumerate() {
        index.insert(j.spec.id, i);
        runs.push(Run {
            epoch: 0,
            since: None,
            remaining: j.runtime_ms,
            end: None,
            gpu_milli: j.spec.gpu_demand_milli(),
        });
        feasible.push(s.test_only(&j.spec)?.is_some());
    }
    let unplaceable = feasible.iter().filter(|f| !**f).count();
    let mut order: Vec<usize> = (0..w.jobs.len()).filter(|&i| feasible[i]).collect();
    order.sort_by_key(|&i| (w.jobs[i].arrival_ms, w.jobs[i].spec.id));

    let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mut ai = 0usize;
    let mut alloc = 0u64; // milli-GPUs allocated
    let mut waiting_gpu = 0u64; // GPU jobs submitted and not running
    let (mut alloc_int, mut unalloc_int, mut wait_time) = (0f64, 0f64, 0f64);
    let first = order.first().map_or(0, |&i| w.jobs[i].arrival_ms);
    let mut t_last = first;
    let (mut preemptions, mut decisions, mut passes, mut failed) = (0u64, 0u64, 0u64, 0usize);
    let mut wall = 0f64;
    let mut last_end = first;
    loop {
        let next_arr = order.get(ai).map(|&i| w.jobs[i].arrival_ms);
        let next_done = heap.peek().map(|x| x.0.0);
        let wake = s.next_wakeup();
        let Some(t) = [next_arr, next_done, wake].into_iter().flatten().min() else {
            break;
        };
        let t = t.max(t_last);
        let dt = (t - t_last) as f64;
        alloc_int += alloc as f64 * dt;
        if waiting_gpu > 0 {
            wait_time += dt;
            unalloc_int += (total_milli - alloc) as f64 * dt;
        }
        t_last = t;
        while heap.peek().is_some_and(|x| x.0.0 <= t) {
            let Reverse((_, id, epoch)) = heap.pop().unwrap_or(Reverse((0, 0, 0)));
            let i = index[&JobId(id)];
            if runs[i].epoch != epoch {
                continue;
            }
            s.job_completed(JobId(id), t).map_err(sim_err)?;
            runs[i].end = Some(t);
            runs[i].since = None;
            alloc -= runs[i].gpu_milli;
            last_end = last_end.max(t);
        }
        while ai < order.len() && w.jobs[order[ai]].arrival_ms <= t {
            let j = &w.jobs[order[ai]];
            let mut spec = j.spec.clone();
            if oracle {
                spec.max_runtime_ms = Some(j.runtime_ms);
            }
            s.submit(spec, t).map_err(sim_err)?;
            if runs[order[ai]].gpu_milli > 0 {
                waiting_gpu += 1;
            }
            ai += 1;
        }
        let clock = Instant::now();
        let ds = s.schedule(t).map_err(sim_err)?;
        wall += clock.elapsed().as_secs_f64();
        passes += 1;
        decisions += ds.len() as u64;
        for d in ds {
            match d {
                Decision::Start { job, .. } => {
                    s.job_started(job, t).map_err(sim_err)?;
                    let i = index[&job];
                    let r = &mut runs[i];
                    r.epoch += 1;
                    r.since = Some(t);
                    heap.push(Reverse((t + r.remaining, job.0, r.epoch)));
                    alloc += r.gpu_milli;
                    if r.gpu_milli > 0 {
                        waiting_gpu -= 1;
                    }
                }
                Decision::Preempt { job, .. } => {
                    let r = &mut runs[index[&job]];
                    let ran = t - r.since.take().unwrap_or(t);
                    r.remaining = r.remaining.saturating_sub(ran) + opts.preempt_overhead_ms;
                    r.epoch += 1;
                    alloc -= r.gpu_milli;
                    if r.gpu_milli > 0 {
                        waiting_gpu += 1;
                    }
                    preemptions += 1;
                }
                Decision::Requeue { .. } => {}
                Decision::Fail { job, .. } => {
                    let r = &mut runs[index[&job]];
                    if r.since.take().is_some() {
                        alloc -= r.gpu_milli;
                    } else if r.gpu_milli > 0 {
                        waiting_gpu -= 1;
                    }
                    r.epoch += 1;
                    failed += 1;
                }
            }
        }
        if opts.check_invariants {
            s.check_invariants().map_err(|e| {
                Error::Internal(format!(
                    "invariant broken at t={t} under {policy_name}: {e}"
                ))
            })?;
        }
    }
    let mut jct = Vec::new();
    let mut wait_sum = 0f64;
    for &i in &order {
        if let Some(end) = runs[i].end {
            let j = &w.jobs[i];
            let c = (end - j.arrival_ms) as f64 / 1000.0;
            jct.push(c);
            wait_sum += c - j.runtime_ms as f64 / 1000.0;
        }
    }
    let completed = jct.len();
    let avg = |x: f64| {
        if completed > 0 {
            x / completed as f64
        } else {
            0.0
        }
    };
    let avg_jct = avg(jct.iter().sum());
    jct.sort_by(f64::total_cmp);
    let makespan = last_end.saturating_sub(first) as f64;
    Ok(PolicyResult {
        policy: policy_name.to_owned(),
        jobs: order.len(),
        unplaceable,
        completed,
        failed,
        unfinished: order.len() - completed - failed,
        avg_jct_s: avg_jct,
        p50_jct_s: percentile(&jct, 0.5),
        p99_jct_s: percentile(&jct, 0.99),
        avg_wait_s: avg(wait_sum),
        makespan_s: makespan / 1000.0,
        gpu_alloc_ratio: if makespan > 0.0 && total_milli > 0 {
            alloc_int / (makespan * total_milli as f64)
        } else {
            0.0
        },
        unalloc_gpus_while_waiting: if wait_time > 0.0 {
            unalloc_int / wait_time / 1000.0
        } else {
            0.0
        },
        waiting_time_share: if makespan > 0.0 {
            wait_time / makespan
        } else {
            0.0
        },
        preemptions,
        decisions,
        passes,
        sched_wall_s: wall,
    })
}
