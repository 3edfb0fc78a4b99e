//! A synthetic gang workload: multi-node jobs with heavy-tailed sizes and runtimes, Poisson
//! arrivals at a target load, a seed.
//!
//! - Cluster: `nodes` nodes of 8 GPUs (two NVLink islands of 4), 128 CPUs, 1 TiB, 8 nodes a
//!   rack.
//! - Size (GPUs): 1, 2, 4, 8, 16, 32, 64 with weights 40, 15, 12, 12, 9, 7, 5 (a heavy tail of
//!   multi-node gangs); jobs of 16 and more are gangs of 8-GPU members (`Any` locality, 1 in 5
//!   `SameRack`). A `share_fraction` of jobs are GPU-sharing tasks of 250, 500 or 750 milli.
//! - Runtime: log-normal with a median of 30 min and sigma 1.6, clamped to [1 min, 2 days]
//!   (a common wall-time limit);
//!   declared limit = runtime times U(1.2, 3), rounded up to 5 min.
//! - Arrivals: Poisson with the rate that offers `load` times the cluster's GPU capacity.
//! - Priority: 10% tier 2 (not preemptible), 60% tier 1, 30% tier 0 (preemptible); 16 users
//!   (Zipf-like), two queues.

use super::{SimJob, Workload};
use crate::model::{JobSpec, Locality, NodeSpec, Resources};
use crate::rng::Rng;

/// Parameters of the synthetic workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticOptions {
    /// PRNG seed: the whole workload is a function of it and the other fields.
    pub seed: u64,
    /// Nodes (8 GPUs each).
    pub nodes: u32,
    /// Jobs.
    pub jobs: u32,
    /// Offered GPU load relative to capacity (1.0 = exactly full on average).
    pub load: f64,
    /// Share of jobs that are GPU-sharing tasks.
    pub share_fraction: f64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions {
            seed: 1,
            nodes: 64,
            jobs: 3000,
            load: 0.9,
            share_fraction: 0.15,
        }
    }
}

/// Generates the workload.
pub fn generate(o: &SyntheticOptions) -> Workload {
    let mut r = Rng::new(o.seed);
    let nodes: Vec<NodeSpec> = (0..o.nodes)
        .map(|i| {
            NodeSpec::new(format!("node-{i:04}"), 128_000, 1024 * 1024)
                .with_gpus(8, "H100", 80 * 1024)
                .with_islands_of(4)
                .with_rack(format!("rack-{:02}", i / 8))
        })
        .collect();
    let sizes = [1u32, 2, 4, 8, 16, 32, 64];
    let weights = [40.0, 15.0, 12.0, 12.0, 9.0, 7.0, 5.0];
    let user_w: Vec<f64> = (1..=16).map(|k| 1.0 / k as f64).collect();
    let max_gpus = o.nodes * 8;
    let mut jobs = Vec::with_capacity(o.jobs as usize);
    let mut demand = 0.0; // GPU-seconds
    for id in 1..=o.jobs as u64 {
        let runtime_s = r
            .lognormal((1800f64).ln(), 1.6)
            .clamp(60.0, 2.0 * 86_400.0)
            .round();
        let (member, gang, locality) = if r.chance(o.share_fraction) {
            let milli = [250, 500, 750][r.below(3) as usize];
            let m = Resources {
                cpu_milli: 2000,
                memory_mib: 8 * 1024,
                ..Resources::gpu_share(milli)
            };
            demand += runtime_s * milli as f64 / 1000.0;
            (m, 1, Locality::Any)
        } else {
            let mut g = sizes[r.weighted(&weights)];
            g = g.min(max_gpus.max(1));
            let per = g.min(8);
            let gang = g.div_ceil(8);
            let m = Resources {
                cpu_milli: 8000 * per as u64,
                memory_mib: 64 * 1024 * per as u64,
                ..Resources::gpus(per)
            };
            demand += runtime_s * (per * gang) as f64;
            let loc = if gang > 1 && r.chance(0.2) {
                Locality::SameRack
            } else {
                Locality::Any
            };
            (m, gang, loc)
        };
        let limit_s =
            ((runtime_s * (1.2 + 1.8 * r.next_f64()) / 300.0).ceil() * 300.0).max(runtime_s);
        let tier = r.weighted(&[0.3, 0.6, 0.1]) as i32;
        let mut spec = JobSpec::new(id, format!("syn-{id}"), member)
            .gang(gang, locality)
            .priority(tier, tier == 0)
            .max_runtime_ms(limit_s as u64 * 1000);
        spec.user = format!("user-{:02}", r.weighted(&user_w));
        spec.queue = if r.chance(0.3) { "prod" } else { "research" }.into();
        jobs.push(SimJob {
            spec,
            arrival_ms: 0,
            runtime_ms: runtime_s as u64 * 1000,
        });
    }
    // Poisson arrivals at the rate that offers `load` of the capacity.
    let capacity = (o.nodes * 8) as f64;
    let mean_demand = demand / o.jobs.max(1) as f64;
    let mean_gap_s = mean_demand / (o.load.max(1e-6) * capacity);
    let mut t = 0.0;
    for j in &mut jobs {
        t += r.exp(mean_gap_s);
        j.arrival_ms = (t * 1000.0).round() as u64;
    }
    Workload {
        name: format!(
            "synthetic seed={} nodes={} jobs={} load={}",
            o.seed, o.nodes, o.jobs, o.load
        ),
        nodes,
        jobs,
        skipped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_a_function_of_its_options() {
        let o = SyntheticOptions {
            jobs: 500,
            ..SyntheticOptions::default()
        };
        let a = generate(&o);
        let b = generate(&o);
        assert_eq!(a.jobs.len(), 500);
        assert!(a.jobs.iter().zip(&b.jobs).all(|(x, y)| x.spec == y.spec
            && x.arrival_ms == y.arrival_ms
            && x.runtime_ms == y.runtime_ms));
        let c = generate(&SyntheticOptions { seed: 2, ..o });
        assert_ne!(a.jobs[0].runtime_ms, c.jobs[0].runtime_ms);
        assert!(a.jobs.iter().any(|j| j.spec.gang_size >= 4));
        assert!(a.jobs.iter().any(|j| j.spec.member.gpu_milli < 1000));
        for j in &a.jobs {
            j.spec.validate().unwrap();
            assert!(j.spec.max_runtime_ms.unwrap() >= j.runtime_ms);
        }
        assert!(
            a.jobs
                .windows(2)
                .all(|w| w[0].arrival_ms <= w[1].arrival_ms)
        );
    }
}
