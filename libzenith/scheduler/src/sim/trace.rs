//! The Alibaba GPU cluster trace v2023 ("openb", the FGD paper's trace): two CSV files, read
//! with a small hand-written reader (the files are plain: no quoting, no embedded commas).
//!
//! - `openb_node_list_gpu_node.csv`: `sn, cpu_milli, memory_mib, gpu, model`;
//! - `openb_pod_list_default.csv`: `name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec,
//!   qos, pod_phase, creation_time, deletion_time, scheduled_time` (seconds).
//!
//! A pod becomes a one-member job: arrival = `creation_time`, runtime = `deletion_time -
//! scheduled_time` (at least 1 s). Pods the trace never scheduled have no runtime and are left
//! out (counted in [`Workload::skipped`]). QoS maps to priority tiers (Guaranteed 3, LS 2,
//! Burstable 1, BE 0; BE is preemptible). The trace has no time limits: each job declares
//! `runtime * estimate_factor`, rounded up to a minute (users overestimate; backfill and the
//! multifactor order see only this, never the runtime). A node's GPUs form one NVLink island;
//! the trace has no racks.

use std::path::Path;

use super::{SimJob, Workload};
use crate::error::{Error, Result};
use crate::model::{JobSpec, NodeSpec, Resources};

/// The trace's folder under the traces root.
pub const OPENB_DIR: &str = "alibaba-gpu-v2023";
/// The node list.
pub const NODES_CSV: &str = "openb_node_list_gpu_node.csv";
/// The pod list.
pub const PODS_CSV: &str = "openb_pod_list_default.csv";

/// How to turn the trace into a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceOptions {
    /// Arrival times are divided by this (1 = as recorded; larger = more load).
    pub time_scale: f64,
    /// Use only the first `n` pods (by the file's order, which is arrival order).
    pub max_jobs: Option<usize>,
    /// Keep every `k`-th node (1 = all), for a smaller cluster.
    pub node_stride: usize,
    /// Declared time limit = runtime * this.
    pub estimate_factor: f64,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            time_scale: 1.0,
            max_jobs: None,
            node_stride: 1,
            estimate_factor: 2.0,
        }
    }
}

/// Rows of a CSV file with the given header, as fields.
fn read_csv(path: &Path, header: &[&str]) -> Result<Vec<Vec<String>>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), &e))?;
    let mut lines = text.lines();
    let at = |line: usize| format!("{}:{line}", path.display());
    let head: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::Data {
            at: at(1),
            reason: "empty file".into(),
        })?
        .split(',')
        .map(str::trim)
        .collect();
    if head != header {
        return Err(Error::Data {
            at: at(1),
            reason: format!("header is {head:?}, expected {header:?}"),
        });
    }
    let mut rows = Vec::new();
    for (k, line) in lines.enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_owned()).collect();
        if fields.len() != header.len() {
            return Err(Error::Data {
                at: at(k + 2),
                reason: format!("{} fields, expected {}", fields.len(), header.len()),
            });
        }
        rows.push(fields);
    }
    Ok(rows)
}

fn num(path: &Path, line: usize, field: &str, v: &str) -> Result<u64> {
    v.parse().map_err(|_| Error::Data {
        at: format!("{}:{line}", path.display()),
        reason: format!("`{field}` is {v:?}, not a non-negative integer"),
    })
}

/// Reads the trace in `dir` (the folder holding the two CSV files).
pub fn load_openb(dir: &Path, opts: &TraceOptions) -> Result<Workload> {
    if !(opts.time_scale > 0.0 && opts.time_scale.is_finite()) {
        return Err(Error::Data {
            at: "time scale".into(),
            reason: "must be a positive number".into(),
        });
    }
    let np = dir.join(NODES_CSV);
    let rows = read_csv(&np, &["sn", "cpu_milli", "memory_mib", "gpu", "model"])?;
    let mut nodes = Vec::new();
    for (k, r) in rows.iter().enumerate() {
        if k % opts.node_stride.max(1) != 0 {
            continue;
        }
        let line = k + 2;
        let gpus = num(&np, line, "gpu", &r[3])? as u32;
        let mut spec = NodeSpec::new(
            r[0].clone(),
            num(&np, line, "cpu_milli", &r[1])?,
            num(&np, line, "memory_mib", &r[2])?,
        )
        .with_gpus(gpus, &r[4], 0);
        if gpus > 0 {
            spec = spec.with_islands_of(gpus);
        }
        spec.validate().map_err(|e| Error::Data {
            at: format!("{}:{line}", np.display()),
            reason: e.to_string(),
        })?;
        nodes.push(spec);
    }
    let pp = dir.join(PODS_CSV);
    let rows = read_csv(
        &pp,
        &[
            "name",
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "gpu_spec",
            "qos",
            "pod_phase",
            "creation_time",
            "deletion_time",
            "scheduled_time",
        ],
    )?;
    let mut jobs = Vec::new();
    let mut skipped = 0usize;
    for (k, r) in rows.iter().enumerate() {
        if opts.max_jobs.is_some_and(|m| k >= m) {
            break;
        }
        let line = k + 2;
        if r[10].is_empty() {
            skipped += 1;
            continue;
        }
        let created = num(&pp, line, "creation_time", &r[8])?;
        let deleted = num(&pp, line, "deletion_time", &r[9])?;
        let scheduled = num(&pp, line, "scheduled_time", &r[10])?;
        let runtime_s = deleted.saturating_sub(scheduled).max(1);
        let num_gpu = num(&pp, line, "num_gpu", &r[3])? as u32;
        let gpu_milli = num(&pp, line, "gpu_milli", &r[4])? as u32;
        let member = Resources {
            gpus: num_gpu,
            gpu_milli: if num_gpu == 0 {
                0
            } else {
                gpu_milli.clamp(1, 1000)
            },
            gpu_types: r[5]
                .split('|')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            cpu_milli: num(&pp, line, "cpu_milli", &r[1])?,
            memory_mib: num(&pp, line, "memory_mib", &r[2])?,
        };
        let (priority, preemptible) = match r[6].as_str() {
            "Guaranteed" => (3, false),
            "LS" => (2, false),
            "Burstable" => (1, false),
            _ => (0, true),
        };
        let estimate_s = ((runtime_s as f64 * opts.estimate_factor / 60.0).ceil() * 60.0) as u64;
        let mut spec = JobSpec::new(jobs.len() as u64 + 1, r[0].clone(), member)
            .priority(priority, preemptible)
            .max_runtime_ms(estimate_s.max(runtime_s) * 1000);
        spec.user = "trace".into();
        spec.validate().map_err(|e| Error::Data {
            at: format!("{}:{line}", pp.display()),
            reason: e.to_string(),
        })?;
        jobs.push(SimJob {
            spec,
            arrival_ms: (created as f64 * 1000.0 / opts.time_scale).round() as u64,
            runtime_ms: runtime_s * 1000,
        });
    }
    jobs.sort_by_key(|j| (j.arrival_ms, j.spec.id));
    Ok(Workload {
        name: format!("openb x{}", opts.time_scale),
        nodes,
        jobs,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_trace_in_the_same_format() {
        let dir = std::env::temp_dir().join(format!("zenith-openb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(NODES_CSV),
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,96000,786432,8,G2\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(PODS_CSV),
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
             p0,12000,16384,1,1000,,LS,Running,0,100,0\n\
             p1,6000,12288,1,460,G2|T4,BE,Failed,10,70,40\n\
             p2,1000,1000,1,1000,,BE,Pending,20,30,\n\
             p3,8000,30517,0,0,,Burstable,Running,30,30,30\n",
        )
        .unwrap();
        let w = load_openb(&dir, &TraceOptions::default()).unwrap();
        assert_eq!(w.nodes.len(), 2);
        assert_eq!(w.nodes[1].gpus.len(), 8);
        assert_eq!(w.skipped, 1);
        assert_eq!(w.jobs.len(), 3);
        let p1 = &w.jobs[1];
        assert_eq!((p1.arrival_ms, p1.runtime_ms), (10_000, 30_000));
        assert_eq!(p1.spec.member.gpu_milli, 460);
        assert_eq!(p1.spec.member.gpu_types, vec!["G2", "T4"]);
        assert!(p1.spec.preemptible);
        assert_eq!(p1.spec.max_runtime_ms, Some(60_000));
        assert_eq!(w.jobs[2].runtime_ms, 1000);
        let scaled = load_openb(
            &dir,
            &TraceOptions {
                time_scale: 10.0,
                node_stride: 2,
                max_jobs: Some(2),
                ..TraceOptions::default()
            },
        )
        .unwrap();
        assert_eq!(scaled.nodes.len(), 1);
        assert_eq!(scaled.jobs.len(), 2);
        assert_eq!(scaled.jobs[1].arrival_ms, 1000);
        std::fs::write(dir.join(PODS_CSV), "name,oops\n").unwrap();
        assert!(matches!(
            load_openb(&dir, &TraceOptions::default()),
            Err(Error::Data { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
