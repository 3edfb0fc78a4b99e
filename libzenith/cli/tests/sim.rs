//! `zenith sim` on a small synthetic workload: the --json document parsed, every policy
//! reported, the run deterministic, bad arguments and a missing trace refused with their exit
//! codes.

mod common;

use common::{json, run};

const SMALL: &[&str] = &[
    "sim",
    "--workload",
    "synthetic",
    "--nodes",
    "4",
    "--jobs",
    "120",
    "--seed",
    "7",
];

#[test]
fn json_reports_every_policy_on_the_synthetic_workload() {
    let args = SMALL.to_vec();
    let doc = json(&args); // adds --json
    let workloads = doc["workloads"].as_array().expect("workloads array");
    assert_eq!(workloads.len(), 1);
    let w = &workloads[0];
    assert_eq!(w["nodes"], 4);
    assert_eq!(w["gpus"], 32);
    assert_eq!(w["jobs"], 120);
    let results = w["results"].as_array().unwrap();
    let policies: Vec<&str> = results
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["fifo", "first-fit", "best-fit", "sjf", "zenith"]);
    for r in results {
        assert_eq!(
            r["completed"].as_u64().unwrap()
                + r["failed"].as_u64().unwrap()
                + r["unfinished"].as_u64().unwrap()
                + r["unplaceable"].as_u64().unwrap(),
            120
        );
        let jct = r["avg_jct_s"].as_f64().unwrap();
        let wait = r["avg_wait_s"].as_f64().unwrap();
        assert!(jct > 0.0 && wait >= 0.0 && wait <= jct, "{r}");
        let alloc = r["gpu_alloc_ratio"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&alloc), "{r}");
    }
    // Deterministic: the same seed gives the same numbers (the wall-clock column aside).
    let again = json(&args);
    let strip = |d: &serde_json::Value| {
        let mut d = d.clone();
        for r in d["workloads"][0]["results"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("sched_wall_s");
        }
        d
    };
    assert_eq!(strip(&doc), strip(&again));
}

#[test]
fn table_and_csv() {
    let mut args = SMALL.to_vec();
    args.extend(["--policies", "fifo,zenith"]);
    let out = run(&args);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("fifo") && text.contains("zenith"), "{text}");
    args.push("--csv");
    let out = run(&args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "a header and two rows: {text}");
}

#[test]
fn bad_arguments_and_a_missing_trace_fail_with_their_codes() {
    let mut args = SMALL.to_vec();
    args.extend(["--policies", "lottery"]);
    assert_eq!(run(&args).status.code(), Some(4)); // invalid argument
    assert_eq!(run(&["sim", "--workload", "nope"]).status.code(), Some(2)); // usage
    let out = run(&[
        "sim",
        "--workload",
        "openb",
        "--traces",
        "/nonexistent/traces",
    ]);
    assert_eq!(out.status.code(), Some(6)); // not found
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZENITH_TRACES"));
}
