//! `zenith sim`: the gang scheduler's trace-driven simulator (zenith-scheduler's `sim`, the logic
//! of the `zenith-sim` binary) compares FIFO, first-fit, best-fit, SJF and zenith on the Alibaba
//! openb trace and on a synthetic gang workload, and prints the policy table.

use std::path::PathBuf;

use zenith_core::Error;
use zenith_scheduler::sim::synthetic::{SyntheticOptions, generate};
use zenith_scheduler::sim::trace::{OPENB_DIR, TraceOptions, load_openb};
use zenith_scheduler::sim::{
    POLICIES, PolicyResult, SimOptions, Workload, report, run as simulate,
};

use crate::exit::Failure;
use crate::output;

pub const EXAMPLES: &str = "\
Examples:
  zenith sim --workload synthetic --seed 1 --load 0.9
  zenith sim --workload openb --time-scale 1000 --node-stride 4
  zenith sim --workload synthetic --jobs 200 --nodes 8 --json
  zenith sim --policies fifo,zenith --csv

The trace is read from --traces, $ZENITH_TRACES, or ../shared/traces next to the repository (the
folder holding alibaba-gpu-v2023/); it is data, not part of Zenith. --json prints one document:
{\"workloads\": [{\"workload\", \"nodes\", \"gpus\", \"jobs\", \"skipped\", \"results\": [{\"policy\",
\"avg_jct_s\", \"p50_jct_s\", \"p99_jct_s\", \"avg_wait_s\", \"makespan_s\", \"gpu_alloc_ratio\",
\"unalloc_gpus_while_waiting\", \"preemptions\", ...}]}]}.";

/// Which workloads to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadChoice {
    /// The Alibaba openb GPU trace.
    Openb,
    /// Multi-node gangs with heavy-tailed sizes and Poisson arrivals.
    Synthetic,
    /// Both, openb first.
    Both,
}

/// Arguments of `zenith sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workload(s) to replay.
    #[arg(long, value_enum, default_value = "both")]
    pub workload: WorkloadChoice,
    /// Comma-separated policies, from fifo, first-fit, best-fit, sjf, zenith.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fifo,first-fit,best-fit,sjf,zenith"
    )]
    pub policies: Vec<String>,
    /// One JSON document instead of the table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV (one header, a row per workload and policy) instead of the table.
    #[arg(long)]
    pub csv: bool,
    /// Check every invariant after every simulated event (slow).
    #[arg(long)]
    pub check: bool,
    /// Seconds a preempted job pays when it resumes.
    #[arg(long, default_value_t = 0)]
    pub preempt_overhead: u64,
    /// Traces root holding alibaba-gpu-v2023/ (default $ZENITH_TRACES, else ../shared/traces).
    #[arg(long)]
    pub traces: Option<PathBuf>,
    /// openb: divide arrival times by this factor to raise the load.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// openb: keep every K-th node.
    #[arg(long, default_value_t = 1)]
    pub node_stride: usize,
    /// openb: only the first N pods.
    #[arg(long)]
    pub max_jobs: Option<usize>,
    /// openb: declared time limit = runtime x this factor.
    #[arg(long, default_value_t = 2.0)]
    pub estimate_factor: f64,
    /// synthetic: random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// synthetic: nodes of 8 GPUs.
    #[arg(long, default_value_t = 64)]
    pub nodes: u32,
    /// synthetic: jobs.
    #[arg(long, default_value_t = 3000)]
    pub jobs: u32,
    /// synthetic: offered load (1.0 = the cluster's capacity).
    #[arg(long, default_value_t = 0.9)]
    pub load: f64,
    /// synthetic: fraction of jobs that ask for a share of one GPU.
    #[arg(long, default_value_t = 0.15)]
    pub share_fraction: f64,
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::Core(Error::InvalidArgument(message.into()))
}

fn traces_root(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("ZENITH_TRACES").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"))
}

/// Runs `zenith sim`.
pub fn run(args: &Args) -> Result<(), Failure> {
    for p in &args.policies {
        if !POLICIES.contains(&p.as_str()) {
            return Err(invalid(format!(
                "unknown policy {p:?}: expected {}",
                POLICIES.join(", ")
            )));
        }
    }
    if args.estimate_factor < 1.0
        || !(args.load > 0.0 && args.load.is_finite())
        || args.nodes == 0
        || !(args.time_scale > 0.0 && args.time_scale.is_finite())
        || args.node_stride == 0
        || !(0.0..=1.0).contains(&args.share_fraction)
    {
        return Err(invalid(
            "--estimate-factor must be >= 1, --load and --time-scale > 0, --nodes and \
             --node-stride > 0, --share-fraction in 0..=1",
        ));
    }
    let sim = SimOptions {
        check_invariants: args.check,
        preempt_overhead_ms: args.preempt_overhead.saturating_mul(1000),
    };
    let mut workloads: Vec<Workload> = Vec::new();
    if args.workload != WorkloadChoice::Synthetic {
        let trace = TraceOptions {
            time_scale: args.time_scale,
            max_jobs: args.max_jobs,
            node_stride: args.node_stride,
            estimate_factor: args.estimate_factor,
        };
        let dir = traces_root(args.traces.clone()).join(OPENB_DIR);
        let w = load_openb(&dir, &trace).map_err(|e| {
            Failure::Core(Error::not_found(
                &dir,
                format!(
                    "cannot read the openb trace ({e}); give --traces DIR or set ZENITH_TRACES"
                ),
            ))
        })?;
        workloads.push(w);
    }
    if args.workload != WorkloadChoice::Openb {
        workloads.push(generate(&SyntheticOptions {
            seed: args.seed,
            nodes: args.nodes,
            jobs: args.jobs,
            load: args.load,
            share_fraction: args.share_fraction,
        }));
    }
    let mut json_parts = Vec::new();
    let mut text = String::new();
    for (k, w) in workloads.iter().enumerate() {
        let mut results: Vec<PolicyResult> = Vec::new();
        for p in &args.policies {
            let r = simulate(w, p, &sim)
                .map_err(|e| Failure::Core(Error::Internal(format!("{p} on {}: {e}", w.name))))?;
            results.push(r);
        }
        if args.json {
            let part: serde_json::Value = serde_json::from_str(&report::json(w, &results))
                .map_err(|e| Failure::Core(Error::Internal(format!("simulator JSON: {e}"))))?;
            json_parts.push(part);
        } else if args.csv {
            text.push_str(&report::csv(w, &results, k == 0));
        } else {
            if k > 0 {
                text.push('\n');
            }
            text.push_str(&report::table(w, &results));
        }
    }
    if args.json {
        output::print_json(&serde_json::json!({ "workloads": json_parts }))
    } else {
        output::print(&text)
    }
}
