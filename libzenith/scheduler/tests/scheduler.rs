//! The scheduler's behaviour through its public API: the state machine, gangs, backfill,
//! preemption, quotas, health, zombies, queries and errors. Invariants are checked after every
//! call.

use zenith_scheduler::*;

const S: u64 = 1000;

fn node(name: &str, gpus: u32, rack: &str) -> NodeSpec {
    NodeSpec::new(name, 128_000, 1024 * 1024)
        .with_gpus(gpus, "H100", 80 * 1024)
        .with_islands_of(4)
        .with_rack(rack)
}

fn sched(policy: Policy, nodes: &[(&str, u32, &str)]) -> Scheduler {
    let mut s = Scheduler::new(SchedulerConfig::with_policy(policy)).unwrap();
    for (n, g, r) in nodes {
        s.add_node(node(n, *g, r), 0).unwrap();
    }
    ok(&s);
    s
}

fn ok(s: &Scheduler) {
    if let Err(e) = s.check_invariants() {
        panic!("invariant broken: {e}\n{}", s.state_digest());
    }
}

fn job(id: u64, gpus: u32, gang: u32) -> JobSpec {
    JobSpec::new(id, format!("job-{id}"), Resources::gpus(gpus)).gang(gang, Locality::Any)
}

/// One pass; starts every started job (the executor confirms at once).
fn pass(s: &mut Scheduler, now: u64) -> Vec<Decision> {
    let d = s.schedule(now).unwrap();
    ok(s);
    for x in &d {
        if let Decision::Start { job, .. } = x {
            s.job_started(*job, now).unwrap();
            ok(s);
        }
    }
    d
}

fn started(d: &[Decision]) -> Vec<u64> {
    d.iter()
        .filter_map(|x| match x {
            Decision::Start { job, .. } => Some(job.0),
            _ => None,
        })
        .collect()
}

fn state(s: &Scheduler, id: u64) -> JobState {
    s.job(JobId(id)).unwrap().state
}

#[test]
fn a_job_walks_the_state_machine_and_illegal_calls_are_errors() {
    let mut s = sched(Policy::zenith(), &[("a", 8, "r0")]);
    s.submit(job(1, 2, 1), 0).unwrap();
    ok(&s);
    assert_eq!(state(&s, 1), JobState::Pending);
    assert_eq!(
        s.job_progress(JobId(1), 0),
        Err(Error::IllegalTransition {
            job: JobId(1),
            from: JobState::Pending,
            to: JobState::Running
        })
    );
    let d = s.schedule(S).unwrap();
    ok(&s);
    assert_eq!(started(&d), vec![1]);
    assert_eq!(state(&s, 1), JobState::Scheduled);
    let Decision::Start { members, .. } = &d[0] else {
        unreachable!()
    };
    assert_eq!(s.node_name(members[0].node), Some("a"));
    assert_eq!(members[0].gpus.len(), 2);
    s.job_started(JobId(1), S).unwrap();
    assert_eq!(state(&s, 1), JobState::Running);
    s.job_progress(JobId(1), 2 * S).unwrap();
    s.job_completed(JobId(1), 3 * S).unwrap();
    ok(&s);
    assert_eq!(state(&s, 1), JobState::Completed);
    assert_eq!(s.job(JobId(1)).unwrap().end_ms, Some(3 * S));
    assert!(s.job(JobId(1)).unwrap().members.is_empty());
    assert_eq!(
        s.cancel(JobId(1), 4 * S),
        Err(Error::JobFinished {
            job: JobId(1),
            state: JobState::Completed
        })
    );
    assert_eq!(
        s.submit(job(1, 1, 1), 4 * S),
        Err(Error::DuplicateJob(JobId(1)))
    );
    assert_eq!(s.cancel(JobId(9), 4 * S), Err(Error::UnknownJob(JobId(9))));
    assert_eq!(
        s.schedule(S),
        Err(Error::ClockWentBackwards {
            last: 3 * S,
            now: S
        })
    );
    assert_eq!(
        s.node_heartbeat("nope", 4 * S),
        Err(Error::UnknownNode("nope".into()))
    );
    assert!(matches!(
        s.add_node(node("a", 1, "r"), 4 * S),
        Err(Error::DuplicateNode(_))
    ));
    let mut bad = job(2, 1, 1);
    bad.member.gpu_milli = 1500;
    match s.submit(bad, 4 * S) {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "job.member.gpu_milli"),
        other => panic!("{other:?}"),
    }
    // Nothing of the failed calls stuck.
    assert_eq!(s.jobs().count(), 1);
    ok(&s);
    // Cancel works from every live state.
    s.submit(job(3, 1, 1), 5 * S).unwrap();
    s.cancel(JobId(3), 5 * S).unwrap();
    assert_eq!(state(&s, 3), JobState::Cancelled);
    s.submit(job(4, 1, 1), 5 * S).unwrap();
    pass(&mut s, 6 * S);
    s.cancel(JobId(4), 7 * S).unwrap();
    ok(&s);
    assert_eq!(s.node(NodeId(0)).unwrap().free_gpu_milli, &[1000; 8]);
}

#[test]
fn gangs_start_whole_or_not_at_all() {
    let mut s = sched(Policy::zenith(), &[("a", 8, "r0"), ("b", 8, "r0")]);
    s.submit(job(1, 8, 3), 0).unwrap();
    assert!(started(&pass(&mut s, S)).is_empty());
    assert_eq!(s.stats().gpu_free_milli, 16_000);
    s.add_node(node("c", 8, "r1"), 2 * S).unwrap();
    let d = pass(&mut s, 2 * S);
    assert_eq!(started(&d), vec![1]);
    let Decision::Start { members, .. } = &d[0] else {
        unreachable!()
    };
    assert_eq!(members.len(), 3);
    let mut nodes: Vec<u32> = members.iter().map(|m| m.node.0).collect();
    nodes.sort();
    assert_eq!(nodes, vec![0, 1, 2]);
}

#[test]
fn easy_backfill_never_delays_the_head_job() {
    for (policy, expect_b, expect_c) in [
        (Policy::zenith(), false, true),
        (Policy::fifo(), false, false),
        (Policy::first_fit(), true, false),
    ] {
        let mut s = sched(policy, &[("a", 8, "r0"), ("b", 8, "r0")]);
        // A holds node a for 100 s.
        s.submit(job(1, 8, 1).max_runtime_ms(100 * S), 0).unwrap();
        assert_eq!(started(&pass(&mut s, 0)), vec![1]);
        // H needs both nodes: blocked until A ends (t = 100 s). A higher tier keeps it the
        // head under multifactor order too (FIFO orders ignore tiers).
        s.submit(job(2, 8, 2).max_runtime_ms(1000 * S).priority(1, false), S)
            .unwrap();
        // B would hold node b past 100 s; C ends before.
        s.submit(job(3, 8, 1).max_runtime_ms(200 * S), 2 * S)
            .unwrap();
        s.submit(job(4, 8, 1).max_runtime_ms(50 * S), 3 * S)
            .unwrap();
        let d = pass(&mut s, 3 * S);
        let st = started(&d);
        assert_eq!(st.contains(&3), expect_b, "{policy:?}: {st:?}");
        assert_eq!(st.contains(&4), expect_c, "{policy:?}: {st:?}");
        if policy == Policy::zenith() {
            assert_eq!(s.will_run_job(JobId(2)).unwrap(), Some(100 * S));
            // A and C end; H starts at 100 s as reserved.
            s.job_completed(JobId(4), 53 * S).unwrap();
            s.job_completed(JobId(1), 100 * S).unwrap();
            let d = pass(&mut s, 100 * S);
            assert_eq!(started(&d), vec![2]);
        }
    }
}

#[test]
fn preemption_takes_the_smallest_set_of_lower_priority_jobs() {
    let mut s = sched(Policy::zenith(), &[("a", 8, "r0")]);
    // Low-priority, preemptible: one 2-GPU job and six 1-GPU jobs.
    s.submit(job(1, 2, 1).priority(0, true), 0).unwrap();
    for id in 2..8 {
        s.submit(job(id, 1, 1).priority(0, true), 0).unwrap();
    }
    assert_eq!(started(&pass(&mut s, 0)).len(), 7);
    // Equal priority never preempts.
    s.submit(job(10, 2, 1).priority(0, false), S).unwrap();
    assert!(started(&pass(&mut s, S)).is_empty());
    s.cancel(JobId(10), S).unwrap();
    // A 2-GPU job of a higher tier: evicting the one 2-GPU job is the smallest set.
    s.submit(job(11, 2, 1).priority(5, false), 2 * S).unwrap();
    let d = pass(&mut s, 2 * S);
    assert_eq!(
        d,
        vec![
            Decision::Preempt {
                job: JobId(1),
                by: JobId(11)
            },
            d[1].clone()
        ]
    );
    assert_eq!(started(&d), vec![11]);
    assert_eq!(state(&s, 1), JobState::Suspended);
    // The next pass requeues it; it waits (no room, no lower tier to preempt).
    let d = pass(&mut s, 3 * S);
    assert_eq!(
        d,
        vec![Decision::Requeue {
            job: JobId(1),
            reason: RequeueReason::Preempted
        }]
    );
    assert_eq!(state(&s, 1), JobState::Queued);
    assert_eq!(s.job(JobId(1)).unwrap().preemptions, 1);
    // Non-preemptible jobs are never victims.
    let mut s = sched(Policy::zenith(), &[("a", 2, "r0")]);
    s.submit(job(1, 2, 1).priority(0, false), 0).unwrap();
    pass(&mut s, 0);
    s.submit(job(2, 1, 1).priority(9, false), S).unwrap();
    assert!(started(&pass(&mut s, S)).is_empty());
}

#[test]
fn quotas_hold_and_cohorts_lend_and_reclaim() {
    let mut s = sched(Policy::zenith(), &[("a", 8, "r0"), ("b", 8, "r0")]);
    let q = |name: &str, gpus: u64| QueueSpec::with_quota(name, Quantities::gpus(gpus));
    s.set_queue(q("solo", 2)).unwrap();
    for id in 1..=3 {
        s.submit(job(id, 1, 1).owner("u", "solo"), 0).unwrap();
    }
    assert_eq!(started(&pass(&mut s, 0)), vec![1, 2]);
    assert_eq!(state(&s, 3), JobState::Queued);
    assert_eq!(s.test_only_job(JobId(3)).unwrap(), None);
    // Lowering the quota below usage is refused.
    assert_eq!(
        s.set_queue(q("solo", 1)),
        Err(Error::QuotaBelowUsage("solo".into()))
    );
    // Cohort: x and y lend to each other.
    s.set_queue(q("x", 4).in_cohort("c")).unwrap();
    s.set_queue(q("y", 4).in_cohort("c")).unwrap();
    for id in 10..18 {
        s.submit(job(id, 1, 1).owner("u", "x").priority(0, true), S)
            .unwrap();
    }
    // x borrows all of y's idle quota: 8 GPUs.
    assert_eq!(started(&pass(&mut s, S)).len(), 8);
    s.submit(job(20, 1, 1).owner("u", "x"), 2 * S).unwrap();
    assert!(started(&pass(&mut s, 2 * S)).is_empty());
    // y wants its nominal quota back: reclaim from the borrower, even at equal priority.
    s.submit(job(30, 3, 1).owner("v", "y"), 3 * S).unwrap();
    let d = pass(&mut s, 3 * S);
    let pre: Vec<_> = d
        .iter()
        .filter(|x| matches!(x, Decision::Preempt { .. }))
        .collect();
    assert_eq!(pre.len(), 3, "{d:?}");
    assert!(started(&d).contains(&30));
}

#[test]
fn node_health_suspect_down_and_back() {
    let cfg = SchedulerConfig {
        node_suspect_after_ms: Some(10 * S),
        node_down_after_ms: Some(30 * S),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(cfg).unwrap();
    s.add_node(node("a", 8, "r0"), 0).unwrap();
    s.add_node(node("b", 8, "r0"), 0).unwrap();
    s.submit(job(1, 8, 1), 0).unwrap();
    let mut fragile = job(2, 8, 1);
    fragile.restartable = false;
    s.submit(fragile, 0).unwrap();
    assert_eq!(started(&pass(&mut s, 0)).len(), 2);
    // b keeps beating, a does not.
    s.node_heartbeat("b", 9 * S).unwrap();
    pass(&mut s, 15 * S);
    assert_eq!(s.node(NodeId(0)).unwrap().state, NodeState::Suspect);
    assert_eq!(s.node(NodeId(1)).unwrap().state, NodeState::Up);
    let on_a = s
        .jobs()
        .find(|j| j.members.first().is_some_and(|m| m.node == NodeId(0)))
        .unwrap()
        .spec
        .id;
    // Suspect: its job keeps running; nothing new goes there.
    assert_eq!(s.job(on_a).unwrap().state, JobState::Running);
    s.node_heartbeat("b", 30 * S).unwrap();
    let d = pass(&mut s, 35 * S);
    assert_eq!(s.node(NodeId(0)).unwrap().state, NodeState::Down);
    let expect = if on_a == JobId(1) {
        Decision::Requeue {
            job: JobId(1),
            reason: RequeueReason::NodeLost,
        }
    } else {
        Decision::Fail {
            job: JobId(2),
            reason: FailReason::NodeLost,
        }
    };
    assert_eq!(d[0], expect);
    // The node comes back empty; a requeued job starts there again.
    s.node_heartbeat("a", 36 * S).unwrap();
    s.node_heartbeat("b", 36 * S).unwrap();
    assert_eq!(s.node(NodeId(0)).unwrap().state, NodeState::Up);
    let d = pass(&mut s, 36 * S);
    if on_a == JobId(1) {
        assert_eq!(started(&d), vec![1]);
    }
}

#[test]
fn zombies_time_limits_drain_and_removal() {
    let mut s = sched(Policy::zenith(), &[("a", 8, "r0"), ("b", 8, "r1")]);
    let mut z = job(1, 1, 1);
    z.progress_timeout_ms = Some(5 * S);
    s.submit(z, 0).unwrap();
    s.submit(job(2, 1, 1).max_runtime_ms(10 * S), 0).unwrap();
    pass(&mut s, 0);
    s.job_progress(JobId(1), 3 * S).unwrap();
    assert_eq!(pass(&mut s, 8 * S), vec![]);
    let d = s.schedule(9 * S).unwrap();
    ok(&s);
    assert_eq!(
        d[0],
        Decision::Requeue {
            job: JobId(1),
            reason: RequeueReason::Zombie
        }
    );
    // Requeued and placed again in the same pass.
    assert_eq!(started(&d), vec![1]);
    s.job_started(JobId(1), 9 * S).unwrap();
    let d = pass(&mut s, 11 * S);
    assert_eq!(
        d,
        vec![Decision::Fail {
            job: JobId(2),
            reason: FailReason::TimeLimit
        }]
    );
    assert_eq!(
        s.job(JobId(2)).unwrap().fail_reason,
        Some(FailReason::TimeLimit)
    );
    // Drain both nodes: nothing new starts, running work stays.
    s.drain_node("a", 12 * S).unwrap();
    s.drain_node("b", 12 * S).unwrap();
    s.submit(job(3, 1, 1), 12 * S).unwrap();
    assert!(started(&pass(&mut s, 12 * S)).is_empty());
    assert_eq!(s.node(NodeId(0)).unwrap().state, NodeState::Draining);
    assert_eq!(state(&s, 1), JobState::Running);
    s.undrain_node("b", 13 * S).unwrap();
    assert_eq!(started(&pass(&mut s, 13 * S)), vec![3]);
    // Removing a node requeues what ran there; the next pass reports it.
    let host = s
        .node_name(s.job(JobId(1)).unwrap().members[0].node)
        .unwrap()
        .to_owned();
    s.remove_node(&host, 14 * S).unwrap();
    ok(&s);
    assert_eq!(s.node_id(&host), None);
    let d = s.schedule(14 * S).unwrap();
    assert_eq!(
        d[0],
        Decision::Requeue {
            job: JobId(1),
            reason: RequeueReason::NodeLost
        }
    );
    // A node can join again under the same name (with a new id).
    let id = s.add_node(node(&host, 8, "r0"), 15 * S).unwrap();
    assert!(id.0 >= 2);
    ok(&s);
}

#[test]
fn test_only_and_will_run_answer_without_changing_anything() {
    let mut s = sched(Policy::zenith(), &[("a", 8, "r0")]);
    s.submit(job(1, 6, 1).max_runtime_ms(100 * S), 0).unwrap();
    pass(&mut s, 0);
    let before = s.state_digest();
    let probe = job(99, 4, 1);
    assert_eq!(s.test_only(&probe).unwrap(), None);
    assert_eq!(s.will_run(&probe).unwrap(), Some(100 * S));
    let small = job(98, 2, 1);
    assert!(s.test_only(&small).unwrap().is_some());
    assert_eq!(s.will_run(&small).unwrap(), Some(0));
    let huge = job(97, 16, 1);
    assert_eq!(s.will_run(&huge).unwrap(), None);
    let mut typed = job(96, 1, 1);
    typed.member.gpu_types = vec!["B200".into()];
    assert_eq!(s.test_only(&typed).unwrap(), None);
    assert_eq!(s.state_digest(), before);
}

#[test]
fn gpu_shares_pack_onto_one_gpu() {
    for policy in [Policy::zenith(), Policy::best_fit()] {
        let mut s = sched(policy, &[("a", 4, "r0")]);
        for id in 1..=4 {
            s.submit(JobSpec::new(id, "share", Resources::gpu_share(250)), 0)
                .unwrap();
        }
        assert_eq!(started(&pass(&mut s, 0)).len(), 4);
        let free = s.node(NodeId(0)).unwrap().free_gpu_milli.to_vec();
        assert_eq!(
            free.iter().filter(|&&f| f == 1000).count(),
            3,
            "{policy:?} {free:?}"
        );
        // Whole GPUs still fit: 3 of them.
        s.submit(job(10, 3, 1), S).unwrap();
        assert_eq!(started(&pass(&mut s, S)), vec![10]);
    }
}

#[test]
fn suspend_resume_and_update() {
    let mut s = sched(Policy::zenith(), &[("a", 1, "r0")]);
    s.submit(job(1, 1, 1), 0).unwrap();
    pass(&mut s, 0);
    s.suspend(JobId(1), S).unwrap();
    ok(&s);
    assert_eq!(state(&s, 1), JobState::Suspended);
    // A user hold is not requeued by a pass.
    assert_eq!(pass(&mut s, 2 * S), vec![]);
    assert_eq!(state(&s, 1), JobState::Suspended);
    s.resume(JobId(1), 3 * S).unwrap();
    assert_eq!(started(&pass(&mut s, 3 * S)), vec![1]);
    assert!(matches!(
        s.resume(JobId(1), 4 * S),
        Err(Error::IllegalTransition { .. })
    ));
    s.update(
        JobId(1),
        JobUpdate {
            priority: Some(7),
            ..JobUpdate::default()
        },
        4 * S,
    )
    .unwrap();
    assert_eq!(s.job(JobId(1)).unwrap().spec.priority, 7);
    s.job_failed(JobId(1), 5 * S).unwrap();
    assert_eq!(
        s.job(JobId(1)).unwrap().fail_reason,
        Some(FailReason::Reported)
    );
    assert!(matches!(
        s.update(JobId(1), JobUpdate::default(), 6 * S),
        Err(Error::JobFinished { .. })
    ));
    let st = s.stats();
    assert_eq!(st.jobs[JobState::Failed as usize], 1);
    assert_eq!(st.allocation_success_total, 2);
}

#[test]
fn unknown_queues_are_refused_without_implicit_queues() {
    let cfg = SchedulerConfig {
        implicit_queues: false,
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(cfg).unwrap();
    assert_eq!(
        s.submit(job(1, 1, 1).owner("u", "nope"), 0),
        Err(Error::UnknownQueue("nope".into()))
    );
    s.set_queue(QueueSpec::unlimited("nope")).unwrap();
    s.submit(job(1, 1, 1).owner("u", "nope"), 0).unwrap();
}

#[test]
fn will_run_counts_the_jobs_queued_ahead() {
    for policy in [Policy::zenith(), Policy::fifo()] {
        let mut s = sched(policy, &[("a", 8, "r0")]);
        // Job 1 holds the node until 100 s; job 2 (tier 1, 50 s) waits for it, then job 3.
        s.submit(job(1, 8, 1).max_runtime_ms(100 * S), 0).unwrap();
        pass(&mut s, 0);
        s.submit(job(2, 8, 1).max_runtime_ms(50 * S).priority(1, false), S)
            .unwrap();
        s.submit(job(3, 8, 1).max_runtime_ms(10 * S), 2 * S)
            .unwrap();
        pass(&mut s, 2 * S);
        let before = s.state_digest();
        assert_eq!(
            s.will_run_job(JobId(2)).unwrap(),
            Some(100 * S),
            "{policy:?}"
        );
        // Job 3 waits for job 2's run too.
        assert_eq!(
            s.will_run_job(JobId(3)).unwrap(),
            Some(150 * S),
            "{policy:?}"
        );
        // A new job of tier 0 queues behind both; one of a higher tier only behind job 1
        // (under multifactor order; FIFO puts every new job last).
        let probe = job(99, 8, 1).max_runtime_ms(S);
        assert_eq!(s.will_run(&probe).unwrap(), Some(160 * S), "{policy:?}");
        let urgent = job(98, 8, 1).max_runtime_ms(S).priority(5, false);
        let expect = if policy == Policy::zenith() { 100 } else { 160 };
        assert_eq!(s.will_run(&urgent).unwrap(), Some(expect * S), "{policy:?}");
        // A job ahead without a time limit holds the node for good: never.
        s.submit(job(4, 8, 1).priority(9, false), 3 * S).unwrap();
        pass(&mut s, 3 * S);
        if policy == Policy::zenith() {
            assert_eq!(s.will_run(&urgent).unwrap(), None);
        }
        assert_ne!(s.state_digest(), before);
        let now = s.state_digest();
        let _ = s.will_run(&probe).unwrap();
        assert_eq!(s.state_digest(), now, "WILL_RUN changes nothing");
    }
}
