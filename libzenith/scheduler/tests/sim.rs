//! The simulator on a small synthetic workload and on a small slice of the openb trace: every
//! invariant holds after every simulated event, every job finishes, and the results are a
//! deterministic function of the workload (no timing thresholds).

use std::path::PathBuf;

use zenith_scheduler::sim::synthetic::{SyntheticOptions, generate};
use zenith_scheduler::sim::trace::{OPENB_DIR, TraceOptions, load_openb};
use zenith_scheduler::sim::{POLICIES, PolicyResult, SimOptions, Workload, report, run};

fn checked() -> SimOptions {
    SimOptions {
        check_invariants: true,
        ..SimOptions::default()
    }
}

/// The deterministic part of a result (everything but the wall clock).
fn det(r: &PolicyResult) -> PolicyResult {
    PolicyResult {
        sched_wall_s: 0.0,
        ..r.clone()
    }
}

fn run_all(w: &Workload) -> Vec<PolicyResult> {
    POLICIES
        .iter()
        .map(|p| run(w, p, &checked()).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect()
}

#[test]
fn synthetic_gangs_keep_every_invariant_and_replay_identically() {
    let o = SyntheticOptions {
        seed: 7,
        nodes: 16,
        jobs: 300,
        load: 1.2,
        share_fraction: 0.2,
    };
    let w = generate(&o);
    let a = run_all(&w);
    for r in &a {
        assert_eq!(r.completed, r.jobs, "{}: {r:?}", r.policy);
        assert_eq!((r.failed, r.unfinished), (0, 0), "{}", r.policy);
        assert!(r.gpu_alloc_ratio > 0.0 && r.gpu_alloc_ratio <= 1.0);
        assert!(r.avg_wait_s >= 0.0 && r.p99_jct_s >= r.p50_jct_s);
    }
    // The same seed is the same workload and the same results.
    let b = run_all(&generate(&o));
    assert_eq!(
        a.iter().map(det).collect::<Vec<_>>(),
        b.iter().map(det).collect::<Vec<_>>()
    );
    // Another seed is another run.
    let c = run(
        &generate(&SyntheticOptions { seed: 8, ..o }),
        "zenith",
        &checked(),
    )
    .unwrap();
    assert_ne!(det(&a[4]), det(&c));
    // Only zenith preempts; only it and FIFO's order differ from greedy list scheduling.
    assert!(
        a.iter()
            .filter(|r| r.policy != "zenith")
            .all(|r| r.preemptions == 0)
    );

    let table = report::table(&w, &a);
    for p in POLICIES {
        assert!(table.contains(p), "{table}");
    }
    let csv = report::csv(&w, &a, true);
    assert_eq!(csv.lines().count(), POLICIES.len() + 1);
    assert!(csv.starts_with("workload,policy,"));
    let json = report::json(&w, &a);
    assert!(json.starts_with('{') && json.ends_with('}'));
    assert_eq!(json.matches("\"policy\":").count(), POLICIES.len());
}

/// The traces root: `$ZENITH_TRACES`, else `shared/traces` beside the repository (where the
/// workplace and CI put it). Missing data fails the test: a skipped replay would look like a
/// passing one.
fn traces_root() -> PathBuf {
    let root = std::env::var_os("ZENITH_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces")
        });
    assert!(
        root.join(OPENB_DIR).is_dir(),
        "the openb trace is not at {}: set ZENITH_TRACES to the traces root",
        root.join(OPENB_DIR).display()
    );
    root
}

#[test]
fn a_slice_of_the_openb_trace_keeps_every_invariant_and_replays_identically() {
    let root = traces_root();
    let opts = TraceOptions {
        time_scale: 2000.0,
        max_jobs: Some(600),
        node_stride: 40,
        estimate_factor: 2.0,
    };
    let w = load_openb(&root.join(OPENB_DIR), &opts).unwrap();
    assert!(
        w.jobs.len() > 400 && w.nodes.len() > 20,
        "{}",
        report::describe(&w)
    );
    let a = run_all(&w);
    for r in &a {
        assert_eq!(r.completed, r.jobs, "{r:?}");
        assert_eq!(r.failed, 0);
    }
    // Contention exists in this slice (otherwise the comparison says nothing).
    assert!(a[0].avg_wait_s > 0.0, "{a:?}");
    let b = run_all(&w);
    assert_eq!(
        a.iter().map(det).collect::<Vec<_>>(),
        b.iter().map(det).collect::<Vec<_>>()
    );
}
