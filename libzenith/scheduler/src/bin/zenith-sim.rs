//! `zenith-sim`: replays the Alibaba openb trace and a synthetic gang workload under FIFO,
//! first-fit, best-fit, SJF and zenith, and prints the policy table (or CSV / JSON).
//!
//! The trace is data, not part of the project: give its root with `--traces DIR` or
//! `ZENITH_TRACES` (the folder holding `alibaba-gpu-v2023/`); the default is `../shared/traces`
//! next to the repository.

use std::path::PathBuf;
use std::process::ExitCode;

use zenith_scheduler::sim::synthetic::{SyntheticOptions, generate};
use zenith_scheduler::sim::trace::{OPENB_DIR, TraceOptions, load_openb};
use zenith_scheduler::sim::{POLICIES, PolicyResult, SimOptions, Workload, report, run};

const USAGE: &str = "\
zenith-sim: compare scheduling policies on the Alibaba openb trace and a synthetic gang workload

usage: zenith-sim [options]

  --workload W          openb | synthetic | both (default both)
  --policies LIST       comma-separated, from fifo,first-fit,best-fit,sjf,zenith (default all)
  --csv | --json        machine-readable output instead of the table
  --check               check every invariant after every simulated event (slow)
  --preempt-overhead S  seconds a preempted job pays when it resumes (default 0)

  openb:
  --traces DIR          traces root holding alibaba-gpu-v2023/ (default $ZENITH_TRACES, else
                        ../shared/traces next to the repository)
  --time-scale X        divide arrival times by X to raise the load (default 1)
  --node-stride K       keep every K-th node (default 1)
  --max-jobs N          only the first N pods
  --estimate-factor F   declared time limit = runtime * F (default 2)

  synthetic:
  --seed S --nodes N --jobs N --load L --share-fraction F
                        (defaults 1, 64, 3000, 0.9, 0.15)
";

struct Args {
    workload: String,
    policies: Vec<String>,
    format: &'static str,
    sim: SimOptions,
    traces: Option<PathBuf>,
    trace: TraceOptions,
    syn: SyntheticOptions,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        workload: "both".into(),
        policies: POLICIES.iter().map(|s| s.to_string()).collect(),
        format: "table",
        sim: SimOptions::default(),
        traces: None,
        trace: TraceOptions::default(),
        syn: SyntheticOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
        }
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--workload" => a.workload = value(&flag)?,
            "--policies" => {
                a.policies = value(&flag)?
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect();
                for p in &a.policies {
                    if !POLICIES.contains(&p.as_str()) {
                        return Err(format!("unknown policy {p:?}"));
                    }
                }
            }
            "--csv" => a.format = "csv",
            "--json" => a.format = "json",
            "--check" => a.sim.check_invariants = true,
            "--preempt-overhead" => {
                a.sim.preempt_overhead_ms = num::<u64>(&flag, value(&flag)?)? * 1000
            }
            "--traces" => a.traces = Some(PathBuf::from(value(&flag)?)),
            "--time-scale" => a.trace.time_scale = num(&flag, value(&flag)?)?,
            "--node-stride" => a.trace.node_stride = num(&flag, value(&flag)?)?,
            "--max-jobs" => a.trace.max_jobs = Some(num(&flag, value(&flag)?)?),
            "--estimate-factor" => a.trace.estimate_factor = num(&flag, value(&flag)?)?,
            "--seed" => a.syn.seed = num(&flag, value(&flag)?)?,
            "--nodes" => a.syn.nodes = num(&flag, value(&flag)?)?,
            "--jobs" => a.syn.jobs = num(&flag, value(&flag)?)?,
            "--load" => a.syn.load = num(&flag, value(&flag)?)?,
            "--share-fraction" => a.syn.share_fraction = num(&flag, value(&flag)?)?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if !["openb", "synthetic", "both"].contains(&a.workload.as_str()) {
        return Err(format!("unknown workload {:?}", a.workload));
    }
    if a.trace.estimate_factor < 1.0 || a.syn.load.is_nan() || a.syn.load <= 0.0 || a.syn.nodes == 0
    {
        return Err("--estimate-factor must be >= 1, --load > 0, --nodes > 0".into());
    }
    Ok(a)
}

fn traces_root(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("ZENITH_TRACES").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("zenith-sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut workloads: Vec<Workload> = Vec::new();
    if args.workload != "synthetic" {
        let dir = traces_root(args.traces.clone()).join(OPENB_DIR);
        match load_openb(&dir, &args.trace) {
            Ok(w) => workloads.push(w),
            Err(e) => {
                eprintln!(
                    "zenith-sim: cannot read the openb trace in {}: {e}\n(give --traces DIR or set ZENITH_TRACES)",
                    dir.display()
                );
                return ExitCode::from(1);
            }
        }
    }
    if args.workload != "openb" {
        workloads.push(generate(&args.syn));
    }
    let mut json_parts = Vec::new();
    for (k, w) in workloads.iter().enumerate() {
        let mut results: Vec<PolicyResult> = Vec::new();
        for p in &args.policies {
            match run(w, p, &args.sim) {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("zenith-sim: {p} on {}: {e}", w.name);
                    return ExitCode::from(1);
                }
            }
        }
        match args.format {
            "csv" => print!("{}", report::csv(w, &results, k == 0)),
            "json" => json_parts.push(report::json(w, &results)),
            _ => {
                if k > 0 {
                    println!();
                }
                print!("{}", report::table(w, &results));
            }
        }
    }
    if args.format == "json" {
        println!("[{}]", json_parts.join(","));
    }
    ExitCode::SUCCESS
}
