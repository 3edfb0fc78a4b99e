//! The simulator's output: the policy table for people, CSV and JSON for tools.

use std::fmt::Write as _;

use super::{PolicyResult, Workload};

/// A duration in the largest unit that keeps it readable.
pub fn human_duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0}s")
    } else if s < 2.0 * 3600.0 {
        format!("{:.1}m", s / 60.0)
    } else if s < 2.0 * 86_400.0 {
        format!("{:.1}h", s / 3600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

/// The header line for a workload.
pub fn describe(w: &Workload) -> String {
    let gpu_jobs = w.jobs.iter().filter(|j| j.spec.member.gpus > 0).count();
    let gangs = w.jobs.iter().filter(|j| j.spec.gang_size > 1).count();
    let shares = w
        .jobs
        .iter()
        .filter(|j| j.spec.member.gpus == 1 && j.spec.member.gpu_milli < 1000)
        .count();
    format!(
        "{}: {} nodes, {} GPUs; {} jobs ({} GPU, {} GPU-sharing, {} multi-member gangs){}",
        w.name,
        w.nodes.len(),
        w.gpus(),
        w.jobs.len(),
        gpu_jobs,
        shares,
        gangs,
        if w.skipped > 0 {
            format!("; {} records skipped", w.skipped)
        } else {
            String::new()
        }
    )
}

/// The table: one row per policy, and each policy's change against the first row (FIFO when
/// the default policy list is used).
pub fn table(w: &Workload, results: &[PolicyResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", describe(w));
    let head = [
        "policy",
        "done",
        "avg JCT",
        "p50 JCT",
        "p99 JCT",
        "avg wait",
        "makespan",
        "GPU alloc",
        "idle GPUs while waiting",
        "preempt",
        "decisions/s",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in results {
        rows.push(vec![
            r.policy.clone(),
            format!("{}/{}", r.completed, r.jobs),
            human_duration(r.avg_jct_s),
            human_duration(r.p50_jct_s),
            human_duration(r.p99_jct_s),
            human_duration(r.avg_wait_s),
            human_duration(r.makespan_s),
            format!("{:.1}%", r.gpu_alloc_ratio * 100.0),
            format!(
                "{:.1} ({:.1}% of time)",
                r.unalloc_gpus_while_waiting,
                r.waiting_time_share * 100.0
            ),
            r.preemptions.to_string(),
            if r.sched_wall_s > 0.0 {
                format!("{:.0}", r.decisions as f64 / r.sched_wall_s)
            } else {
                "-".into()
            },
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (k, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c == 0 {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  "));
        if k == 0 {
            let _ = writeln!(
                out,
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
    if let Some(base) = results.first() {
        for r in &results[1..] {
            let pct = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:+.0}%", (a - b) / b * 100.0)
                } else {
                    "n/a".into()
                }
            };
            let _ = writeln!(
                out,
                "{} vs {}: avg JCT {}, avg wait {}, idle GPUs while waiting {}",
                r.policy,
                base.policy,
                pct(r.avg_jct_s, base.avg_jct_s),
                pct(r.avg_wait_s, base.avg_wait_s),
                pct(
                    r.unalloc_gpus_while_waiting,
                    base.unalloc_gpus_while_waiting
                )
            );
        }
    }
    out
}

const CSV_HEAD: &str = "workload,policy,jobs,unplaceable,completed,failed,unfinished,avg_jct_s,p50_jct_s,p99_jct_s,avg_wait_s,makespan_s,gpu_alloc_ratio,unalloc_gpus_while_waiting,waiting_time_share,preemptions,decisions,passes,sched_wall_s";

/// CSV: a header (when `header`) and one line per policy.
pub fn csv(w: &Workload, results: &[PolicyResult], header: bool) -> String {
    let mut out = String::new();
    if header {
        let _ = writeln!(out, "{CSV_HEAD}");
    }
    for r in results {
        let _ = writeln!(
            out,
            "\"{}\",{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.6},{:.3},{:.6},{},{},{},{:.6}",
            w.name.replace('"', "'"),
            r.policy,
            r.jobs,
            r.unplaceable,
            r.completed,
            r.failed,
            r.unfinished,
            r.avg_jct_s,
            r.p50_jct_s,
            r.p99_jct_s,
            r.avg_wait_s,
            r.makespan_s,
            r.gpu_alloc_ratio,
            r.unalloc_gpus_while_waiting,
            r.waiting_time_share,
            r.preemptions,
            r.decisions,
            r.passes,
            r.sched_wall_s
        );
    }
    out
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// JSON: `{"workload", "nodes", "gpus", "jobs", "skipped", "results": [...]}`.
pub fn json(w: &Workload, results: &[PolicyResult]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"workload\":{},\"nodes\":{},\"gpus\":{},\"jobs\":{},\"skipped\":{},\"results\":[",
        json_str(&w.name),
        w.nodes.len(),
        w.gpus(),
        w.jobs.len(),
        w.skipped
    );
    for (k, r) in results.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"policy\":{},\"jobs\":{},\"unplaceable\":{},\"completed\":{},\"failed\":{},\"unfinished\":{},\"avg_jct_s\":{},\"p50_jct_s\":{},\"p99_jct_s\":{},\"avg_wait_s\":{},\"makespan_s\":{},\"gpu_alloc_ratio\":{},\"unalloc_gpus_while_waiting\":{},\"waiting_time_share\":{},\"preemptions\":{},\"decisions\":{},\"passes\":{},\"sched_wall_s\":{}}}",
            json_str(&r.policy),
            r.jobs,
            r.unplaceable,
            r.completed,
            r.failed,
            r.unfinished,
            json_num(r.avg_jct_s),
            json_num(r.p50_jct_s),
            json_num(r.p99_jct_s),
            json_num(r.avg_wait_s),
            json_num(r.makespan_s),
            json_num(r.gpu_alloc_ratio),
            json_num(r.unalloc_gpus_while_waiting),
            json_num(r.waiting_time_share),
            r.preemptions,
            r.decisions,
            r.passes,
            json_num(r.sched_wall_s)
        );
    }
    out.push_str("]}");
    out
}
