//! Property tests: random event sequences from a seeded PRNG, many seeds, every policy. After
//! every event the invariants hold (no GPU or share over-allocated, gangs whole, quotas kept,
//! node capacity respected); a call that fails leaves the state exactly as it was; and a journal
//! of the run restores to the identical state.

use std::io::Write;
use std::sync::{Arc, Mutex};

use zenith_scheduler::rng::Rng;
use zenith_scheduler::*;

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn random_node(r: &mut Rng, k: u64) -> NodeSpec {
    let gpus = [0, 1, 2, 4, 8][r.below(5) as usize];
    let mut spec = NodeSpec::new(
        format!("node-{k}"),
        r.range(4, 64) * 1000,
        r.range(16, 512) * 1024,
    )
    .with_gpus(gpus, ["A100", "H100"][r.below(2) as usize], 80 * 1024);
    if r.chance(0.3) {
        spec = spec.with_gpus(r.below(3) as u32, "T4", 16 * 1024);
    }
    spec = spec.with_islands_of([1, 2, 4][r.below(3) as usize]);
    if r.chance(0.8) {
        spec = spec.with_rack(format!("rack-{}", r.below(3)));
    }
    spec
}

fn random_job(r: &mut Rng, id: u64) -> JobSpec {
    let member = match r.below(10) {
        0 => Resources {
            cpu_milli: r.range(100, 8000),
            memory_mib: r.range(0, 4096),
            ..Resources::default()
        },
        1..=3 => Resources {
            cpu_milli: r.range(0, 4000),
            ..Resources::gpu_share(r.range(1, 999) as u32)
        },
        _ => Resources {
            cpu_milli: r.range(0, 16_000),
            memory_mib: r.range(0, 64 * 1024),
            ..Resources::gpus([1, 1, 2, 4, 8][r.below(5) as usize])
        },
    };
    let mut spec = JobSpec::new(id, format!("j{id}"), member);
    if spec.member.gpus > 0 && r.chance(0.15) {
        spec.member.gpu_types = vec![["A100", "H100", "T4"][r.below(3) as usize].into()];
    }
    spec.gang_size = if r.chance(0.6) {
        1
    } else {
        r.range(2, 5) as u32
    };
    spec.locality = [
        Locality::Any,
        Locality::Any,
        Locality::SameNode,
        Locality::SameRack,
        Locality::Spread,
        Locality::SameIsland,
    ][r.below(6) as usize];
    if spec.locality == Locality::SameIsland && spec.member.gpus == 0 {
        spec.locality = Locality::Any;
    }
    spec.user = format!("user{}", r.below(4));
    spec.queue = ["default", "qa", "qb", "qc"][r.below(4) as usize].into();
    spec.priority = r.below(4) as i32;
    spec.preemptible = r.chance(0.5);
    spec.restartable = r.chance(0.7);
    if r.chance(0.8) {
        spec.max_runtime_ms = Some(r.range(1, 120) * 1000);
    }
    if r.chance(0.2) {
        spec.progress_timeout_ms = Some(r.range(5, 60) * 1000);
    }
    spec
}

fn random_queue(r: &mut Rng) -> QueueSpec {
    let name = ["qa", "qb", "qc"][r.below(3) as usize];
    let q = |r: &mut Rng| Quantities {
        gpu_milli: r.range(0, 24) * 1000,
        cpu_milli: r.range(0, 200) * 1000,
        memory_mib: r.range(0, 2048) * 1024,
    };
    let mut spec = QueueSpec::with_quota(name, q(r));
    if name != "qc" {
        spec.cohort = Some("cohort".into());
        if r.chance(0.5) {
            spec.borrowing_limit = Some(q(r));
        }
        if r.chance(0.5) {
            let n = spec.nominal.unwrap();
            spec.lending_limit = Some(Quantities {
                gpu_milli: n.gpu_milli / 2,
                cpu_milli: n.cpu_milli / 2,
                memory_mib: n.memory_mib / 2,
            });
        }
    }
    spec.weight = r.range(1, 4) as u32;
    spec
}

fn pick(r: &mut Rng, v: &[JobId]) -> Option<JobId> {
    (!v.is_empty()).then(|| v[r.below(v.len() as u64) as usize])
}

/// Runs `steps` random events; returns the final digest, the journal bytes and the stats.
fn run(seed: u64, policy: Policy, steps: usize) -> (String, Vec<u8>, SchedulerStats) {
    let mut r = Rng::new(seed);
    let cfg = SchedulerConfig {
        node_suspect_after_ms: r.chance(0.5).then_some(20_000),
        node_down_after_ms: Some(40_000),
        zombie_timeout_ms: r.chance(0.3).then_some(30_000),
        ..SchedulerConfig::with_policy(policy)
    };
    let buf = SharedBuf::default();
    let mut s = Scheduler::with_journal(cfg, Box::new(buf.clone())).unwrap();
    let mut now = 0u64;
    let mut next_id = 1u64;
    let mut next_node = 0u64;
    for _ in 0..3 {
        s.add_node(random_node(&mut r, next_node), 0).unwrap();
        next_node += 1;
    }
    for step in 0..steps {
        now += r.range(0, 3000);
        let before = s.state_digest();
        let live_nodes: Vec<String> = s.nodes().map(|n| n.spec.name.clone()).collect();
        let any_node = |r: &mut Rng| {
            if live_nodes.is_empty() || r.chance(0.05) {
                "ghost".to_string()
            } else {
                live_nodes[r.below(live_nodes.len() as u64) as usize].clone()
            }
        };
        let result: Result<()> = match r.below(100) {
            0..=3 => {
                next_node += 1;
                s.add_node(random_node(&mut r, next_node), now).map(|_| ())
            }
            4 => s.remove_node(&any_node(&mut r), now),
            5..=14 => {
                // Heartbeats from most live nodes.
                let mut res = Ok(());
                for n in &live_nodes {
                    if r.chance(0.8) {
                        res = res.and(s.node_heartbeat(n, now));
                    }
                }
                res
            }
            15 => s.drain_node(&any_node(&mut r), now),
            16 => s.undrain_node(&any_node(&mut r), now),
            17 => s.set_queue(random_queue(&mut r)),
            18..=37 => {
                let id = if r.chance(0.03) { 1 } else { next_id };
                next_id += 1;
                let mut spec = random_job(&mut r, id);
                if r.chance(0.03) {
                    spec.name = String::new();
                }
                s.submit(spec, now)
            }
            38..=40 => {
                let all: Vec<JobId> = s.jobs().map(|j| j.spec.id).collect();
                match pick(&mut r, &all) {
                    Some(j) => s.cancel(j, now),
                    None => Ok(()),
                }
            }
            41..=55 => {
                let v = s.jobs_in(JobState::Scheduled);
                let mut res = Ok(());
                for j in v {
                    if r.chance(0.9) {
                        res = res.and(s.job_started(j, now));
                    }
                }
                res
            }
            56..=62 => {
                let v = s.jobs_in(JobState::Running);
                match pick(&mut r, &v) {
                    Some(j) if r.chance(0.8) => s.job_completed(j, now),
                    Some(j) => s.job_failed(j, now),
                    None => Ok(()),
                }
            }
            63..=67 => {
                let v = s.jobs_in(JobState::Running);
                let mut res = Ok(());
                for j in v {
                    if r.chance(0.7) {
                        res = res.and(s.job_progress(j, now));
                    }
                }
                res
            }
            68 => {
                let all: Vec<JobId> = s.jobs().map(|j| j.spec.id).collect();
                match pick(&mut r, &all) {
                    Some(j) => s.suspend(j, now),
                    None => Ok(()),
                }
            }
            69..=70 => {
                let v = s.jobs_in(JobState::Suspended);
                match pick(&mut r, &v) {
                    Some(j) => s.resume(j, now),
                    None => Ok(()),
                }
            }
            71 => {
                let all: Vec<JobId> = s.jobs().map(|j| j.spec.id).collect();
                match pick(&mut r, &all) {
                    Some(j) => s.update(
                        j,
                        JobUpdate {
                            priority: Some(r.below(5) as i32),
                            preemptible: Some(r.chance(0.5)),
                            ..JobUpdate::default()
                        },
                        now,
                    ),
                    None => Ok(()),
                }
            }
            72 => {
                // Queries change nothing.
                let probe = random_job(&mut r, u64::MAX);
                let _ = s.test_only(&probe).unwrap();
                let _ = s.will_run(&probe).unwrap();
                assert_eq!(
                    s.state_digest(),
                    before,
                    "seed {seed} step {step}: a query changed state"
                );
                Ok(())
            }
            73 => s.schedule(now.saturating_sub(5000)).map(|_| ()),
            _ => s.schedule(now).map(|_| {
                // Greedy policies leave no queued job that fits (the search caches must never
                // hide a placement).
                if !policy.head_of_line_blocking && !policy.backfill {
                    for j in s.jobs_in(JobState::Queued) {
                        assert_eq!(
                            s.test_only_job(j).unwrap(),
                            None,
                            "seed {seed} step {step}: job {j} fits but was not started"
                        );
                    }
                }
            }),
        };
        if let Err(e) = &result {
            assert_ne!(
                e.kind(),
                ErrorKind::Internal,
                "seed {seed} step {step}: {e}"
            );
            assert_eq!(
                s.state_digest(),
                before,
                "seed {seed} step {step}: the failed call {e} changed state"
            );
        }
        if let Err(e) = s.check_invariants() {
            panic!("seed {seed} step {step} ({policy:?}): {e}");
        }
    }
    let digest = s.state_digest();
    let bytes = buf.0.lock().unwrap().clone();
    (digest, bytes, s.stats())
}

#[test]
fn invariants_hold_after_every_random_event_and_the_journal_restores_the_state() {
    let policies = [
        Policy::zenith(),
        Policy::fifo(),
        Policy::first_fit(),
        Policy::best_fit(),
        Policy::sjf(),
    ];
    let mut total = SchedulerStats::default();
    for seed in 0..200u64 {
        let policy = policies[(seed % policies.len() as u64) as usize];
        let (digest, journal, stats) = run(seed, policy, 400);
        total.allocation_success_total += stats.allocation_success_total;
        total.preemptions_total += stats.preemptions_total;
        total.requeues_total += stats.requeues_total;
        for (t, x) in total.jobs.iter_mut().zip(stats.jobs) {
            *t += x;
        }
        let (restored, report) = Scheduler::restore(&journal[..]).unwrap();
        assert!(!report.torn_tail);
        assert_eq!(
            restored.state_digest(),
            digest,
            "seed {seed}: restore differs"
        );
        restored.check_invariants().unwrap();
        // Same seed, same run.
        if seed < 5 {
            assert_eq!(
                run(seed, policy, 400).0,
                digest,
                "seed {seed}: not deterministic"
            );
        }
    }
    // The runs exercise what they test (the test would be vacuous otherwise).
    assert!(total.allocation_success_total > 5000, "{total:?}");
    assert!(total.preemptions_total > 50, "{total:?}");
    assert!(total.requeues_total > 50, "{total:?}");
    for st in JobState::ALL {
        assert!(total.jobs[st as usize] > 10, "few jobs end {st}: {total:?}");
    }
}
