//! The scheduler's configuration: the policy and its parameters. It is the first record of a
//! journal, so a restored scheduler runs with exactly the configuration it was created with.

use crate::error::{Error, Result};
use crate::placement::PlacementPolicy;
use crate::priority::{PriorityWeights, QueueOrder};

/// The scheduling policy: queue order, placement, backfill, preemption.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Order in which queued jobs are considered.
    pub order: QueueOrder,
    /// How nodes and GPUs are chosen.
    pub placement: PlacementPolicy,
    /// Stop at the first job that does not fit (strict FIFO); otherwise later jobs may start.
    pub head_of_line_blocking: bool,
    /// EASY backfill: the first job that does not fit gets a reservation (its earliest start,
    /// from running jobs' time limits) and later jobs start only if they do not delay it.
    pub backfill: bool,
    /// A job that does not fit may preempt the smallest set of lower-priority preemptible jobs
    /// that makes room (and a queue may reclaim its nominal quota from borrowers in its cohort).
    pub preemption: bool,
}

impl Policy {
    /// FIFO: submission order, head-of-line blocking, first-fit.
    pub fn fifo() -> Self {
        Policy {
            order: QueueOrder::Fifo,
            placement: PlacementPolicy::FirstFit,
            head_of_line_blocking: true,
            backfill: false,
            preemption: false,
        }
    }

    /// First-fit: submission order, every job that fits starts (no blocking), first-fit nodes.
    pub fn first_fit() -> Self {
        Policy {
            head_of_line_blocking: false,
            ..Policy::fifo()
        }
    }

    /// Best-fit: submission order, no blocking, the tightest nodes.
    pub fn best_fit() -> Self {
        Policy {
            placement: PlacementPolicy::BestFit,
            ..Policy::first_fit()
        }
    }

    /// SJF: shortest declared time limit first (give it oracle runtimes), no blocking, best-fit.
    pub fn sjf() -> Self {
        Policy {
            order: QueueOrder::ShortestFirst,
            ..Policy::best_fit()
        }
    }

    /// zenith: multifactor priority, EASY backfill, topology and FGD placement, preemption.
    pub fn zenith() -> Self {
        Policy {
            order: QueueOrder::Multifactor,
            placement: PlacementPolicy::Topology,
            head_of_line_blocking: false,
            backfill: true,
            preemption: true,
        }
    }

    /// The preset by name: `fifo`, `first-fit`, `best-fit`, `sjf`, `zenith`.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "fifo" => Policy::fifo(),
            "first-fit" => Policy::first_fit(),
            "best-fit" => Policy::best_fit(),
            "sjf" => Policy::sjf(),
            "zenith" => Policy::zenith(),
            _ => return None,
        })
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::zenith()
    }
}

/// Everything that tunes a [`crate::Scheduler`].
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// The policy.
    pub policy: Policy,
    /// Multifactor weights.
    pub weights: PriorityWeights,
    /// Half-life of fair-share usage, in ms.
    pub fair_share_half_life_ms: u64,
    /// A node whose last heartbeat is older than this becomes Suspect (`None`: heartbeats are
    /// not tracked and nodes stay Up).
    pub node_suspect_after_ms: Option<u64>,
    /// A node whose last heartbeat is older than this becomes Down and loses its jobs.
    pub node_down_after_ms: Option<u64>,
    /// Default progress timeout of RUNNING jobs (`None`: no zombie detection unless a job sets
    /// its own [`crate::JobSpec::progress_timeout_ms`]).
    pub zombie_timeout_ms: Option<u64>,
    /// Whether a job may name a queue that was not configured (it is created without quota).
    pub implicit_queues: bool,
    /// Half-life, in submitted tasks, of the workload profile FGD learns.
    pub profile_half_life: u32,
    /// How often the multifactor scores of the whole queue are recomputed, in ms (Slurm's
    /// `PriorityCalcPeriod`); between recomputations a job entering the queue is inserted with
    /// its current score. 0 recomputes at every pass.
    pub priority_recalc_ms: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            policy: Policy::zenith(),
            weights: PriorityWeights::default(),
            fair_share_half_life_ms: 7 * 24 * 3600 * 1000,
            node_suspect_after_ms: None,
            node_down_after_ms: None,
            zombie_timeout_ms: None,
            implicit_queues: true,
            profile_half_life: 2000,
            priority_recalc_ms: 60_000,
        }
    }
}

impl SchedulerConfig {
    /// The default configuration with another policy.
    pub fn with_policy(policy: Policy) -> Self {
        SchedulerConfig {
            policy,
            ..SchedulerConfig::default()
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let w = &self.weights;
        for (name, v) in [
            ("weights.age", w.age),
            ("weights.fair_share", w.fair_share),
            ("weights.size", w.size),
            ("weights.short", w.short),
        ] {
            if !v.is_finite() || !(0.0..=1e6).contains(&v) {
                return Err(Error::invalid(
                    format!("config.{name}"),
                    crate::error::Problem::Inconsistent("a weight must be finite, in 0..=1e6"),
                ));
            }
        }
        if let (Some(s), Some(d)) = (self.node_suspect_after_ms, self.node_down_after_ms) {
            if d < s {
                return Err(Error::invalid(
                    "config.node_down_after_ms",
                    crate::error::Problem::Inconsistent(
                        "the down deadline must not be shorter than the suspect deadline",
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `key=value` pairs, one per field (floats as exact bit patterns).
    pub(crate) fn to_fields(&self) -> Vec<(&'static str, String)> {
        let p = &self.policy;
        let w = &self.weights;
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |x| x.to_string());
        let f = |v: f64| format!("{:016x}", v.to_bits());
        vec![
            ("order", p.order.as_str().into()),
            ("placement", p.placement.as_str().into()),
            ("hol", (p.head_of_line_blocking as u8).to_string()),
            ("backfill", (p.backfill as u8).to_string()),
            ("preemption", (p.preemption as u8).to_string()),
            ("w_age", f(w.age)),
            ("w_fs", f(w.fair_share)),
            ("w_size", f(w.size)),
            ("w_short", f(w.short)),
            ("age_max", w.age_max_ms.to_string()),
            ("runtime_ref", w.runtime_ref_ms.to_string()),
            ("fs_half_life", self.fair_share_half_life_ms.to_string()),
            ("suspect_after", opt(self.node_suspect_after_ms)),
            ("down_after", opt(self.node_down_after_ms)),
            ("zombie_timeout", opt(self.zombie_timeout_ms)),
            ("implicit_queues", (self.implicit_queues as u8).to_string()),
            ("profile_half_life", self.profile_half_life.to_string()),
            ("priority_recalc", self.priority_recalc_ms.to_string()),
        ]
    }

    /// The inverse of [`SchedulerConfig::to_fields`]; every field must be present.
    pub(crate) fn from_fields(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, String> {
        let s = |k: &str| get(k).ok_or_else(|| format!("config lacks `{k}`"));
        let u = |k: &str| -> std::result::Result<u64, String> {
            s(k)?
                .parse()
                .map_err(|_| format!("config `{k}` is not a number"))
        };
        let b = |k: &str| -> std::result::Result<bool, String> {
            match s(k)?.as_str() {
                "0" => Ok(false),
                "1" => Ok(true),
                _ => Err(format!("config `{k}` is not 0 or 1")),
            }
        };
        let f = |k: &str| -> std::result::Result<f64, String> {
            u64::from_str_radix(&s(k)?, 16)
                .map(f64::from_bits)
                .map_err(|_| format!("config `{k}` is not a float bit pattern"))
        };
        let opt = |k: &str| -> std::result::Result<Option<u64>, String> {
            let v = s(k)?;
            if v == "-" {
                Ok(None)
            } else {
                v.parse()
                    .map(Some)
                    .map_err(|_| format!("config `{k}` is not a number"))
            }
        };
        Ok(SchedulerConfig {
            policy: Policy {
                order: QueueOrder::parse(&s("order")?).ok_or("config `order` is unknown")?,
                placement: PlacementPolicy::parse(&s("placement")?)
                    .ok_or("config `placement` is unknown")?,
                head_of_line_blocking: b("hol")?,
                backfill: b("backfill")?,
                preemption: b("preemption")?,
            },
            weights: PriorityWeights {
                age: f("w_age")?,
                fair_share: f("w_fs")?,
                size: f("w_size")?,
                short: f("w_short")?,
                age_max_ms: u("age_max")?,
                runtime_ref_ms: u("runtime_ref")?,
            },
            fair_share_half_life_ms: u("fs_half_life")?,
            node_suspect_after_ms: opt("suspect_after")?,
            node_down_after_ms: opt("down_after")?,
            zombie_timeout_ms: opt("zombie_timeout")?,
            implicit_queues: b("implicit_queues")?,
            profile_half_life: u("profile_half_life")? as u32,
            priority_recalc_ms: u("priority_recalc")?,
        })
    }
}
