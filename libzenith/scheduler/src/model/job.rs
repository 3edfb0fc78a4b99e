//! Jobs: who asks, for what, as one gang.

use std::fmt;

use super::command::Command;
use super::limits::*;
use super::text::{check_name, check_range, check_text};
use crate::error::{Error, Problem, Result};

/// A job's id, chosen by the caller and unique for the scheduler's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What each member of a gang needs on its node.
///
/// - `gpus` whole GPUs, each of one of `gpu_types` (empty = any type);
/// - or, for a GPU-sharing task, `gpus = 1` and `gpu_milli < 1000`: that share of one GPU, which
///   other sharing tasks may use too (the GPU's shares never sum above 1000);
/// - `gpus = 0` (and `gpu_milli = 0`) for a CPU-only member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    /// GPUs per member.
    pub gpus: u32,
    /// Share of each GPU in milli-GPUs: 1000 for whole GPUs, `1..=999` for a share of one GPU,
    /// 0 when `gpus` is 0.
    pub gpu_milli: u32,
    /// Allowed GPU types; empty means any.
    pub gpu_types: Vec<String>,
    /// CPU per member, in milli-CPUs.
    pub cpu_milli: u64,
    /// Memory per member, in MiB.
    pub memory_mib: u64,
}

impl Resources {
    /// `gpus` whole GPUs of any type, no CPU or memory.
    pub fn gpus(gpus: u32) -> Self {
        Resources {
            gpus,
            gpu_milli: if gpus > 0 { 1000 } else { 0 },
            ..Resources::default()
        }
    }

    /// A share of one GPU (`milli` in `1..=1000`).
    pub fn gpu_share(milli: u32) -> Self {
        Resources {
            gpus: 1,
            gpu_milli: milli,
            ..Resources::default()
        }
    }

    /// This request's GPU demand in milli-GPUs (`gpus * gpu_milli`).
    pub fn gpu_demand_milli(&self) -> u64 {
        self.gpus as u64 * self.gpu_milli as u64
    }

    fn validate(&self) -> Result<()> {
        check_range(
            "job.member.gpus",
            self.gpus as u64,
            0,
            MAX_GPUS_PER_MEMBER as u64,
        )?;
        if self.gpus == 0 {
            if self.gpu_milli != 0 {
                return Err(Error::invalid(
                    "job.member.gpu_milli",
                    Problem::Inconsistent("gpu_milli must be 0 when gpus is 0"),
                ));
            }
            if !self.gpu_types.is_empty() {
                return Err(Error::invalid(
                    "job.member.gpu_types",
                    Problem::Inconsistent("GPU types given for a member without GPUs"),
                ));
            }
        } else {
            check_range("job.member.gpu_milli", self.gpu_milli as u64, 1, 1000)?;
            if self.gpu_milli < 1000 && self.gpus != 1 {
                return Err(Error::invalid(
                    "job.member.gpu_milli",
                    Problem::Inconsistent("a GPU share (gpu_milli < 1000) needs gpus = 1"),
                ));
            }
        }
        if self.gpu_types.len() > MAX_GPU_TYPES_PER_JOB {
            return Err(Error::invalid(
                "job.member.gpu_types",
                Problem::TooLong {
                    max: MAX_GPU_TYPES_PER_JOB,
                    len: self.gpu_types.len(),
                },
            ));
        }
        for (i, t) in self.gpu_types.iter().enumerate() {
            check_name(&format!("job.member.gpu_types[{i}]"), t, MAX_NAME_LEN)?;
            if self.gpu_types[..i].contains(t) {
                return Err(Error::invalid(
                    "job.member.gpu_types",
                    Problem::Duplicate(format!("the type {t}")),
                ));
            }
        }
        check_range("job.member.cpu_milli", self.cpu_milli, 0, MAX_CPU_MILLI)?;
        check_range("job.member.memory_mib", self.memory_mib, 0, MAX_MEMORY_MIB)?;
        if self.gpus == 0 && self.cpu_milli == 0 && self.memory_mib == 0 {
            return Err(Error::invalid(
                "job.member",
                Problem::Inconsistent("a member must ask for some GPU, CPU or memory"),
            ));
        }
        Ok(())
    }
}

/// Where a gang's members may go relative to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locality {
    /// Anywhere; placement still prefers one node, then one NVLink island, then one rack, then
    /// the fewest nodes.
    #[default]
    Any,
    /// All members on one node.
    SameNode,
    /// All members' GPUs inside one NVLink island of one node.
    SameIsland,
    /// All members on nodes of one rack (one node counts as one rack).
    SameRack,
    /// Every member on a different node (Ray's `STRICT_SPREAD`).
    Spread,
}

impl Locality {
    /// The lower-case name (`any`, `same-node`, `same-island`, `same-rack`, `spread`).
    pub fn as_str(self) -> &'static str {
        match self {
            Locality::Any => "any",
            Locality::SameNode => "same-node",
            Locality::SameIsland => "same-island",
            Locality::SameRack => "same-rack",
            Locality::Spread => "spread",
        }
    }

    /// The inverse of [`Locality::as_str`].
    pub fn parse(s: &str) -> Option<Locality> {
        Some(match s {
            "any" => Locality::Any,
            "same-node" => Locality::SameNode,
            "same-island" => Locality::SameIsland,
            "same-rack" => Locality::SameRack,
            "spread" => Locality::Spread,
            _ => return None,
        })
    }
}

/// A job as the caller submits it (the seeds' `JobDescriptor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Unique for the scheduler's lifetime.
    pub id: JobId,
    /// A human name (any text without NUL, 1..=253 bytes).
    pub name: String,
    /// The user it runs as; fair share is per user.
    pub user: String,
    /// The queue (Kueue's ClusterQueue): quotas and fair share per queue.
    pub queue: String,
    /// What each member needs.
    pub member: Resources,
    /// Members that start together or not at all (1 for a plain task).
    pub gang_size: u32,
    /// Where the members may go.
    pub locality: Locality,
    /// Priority tier: a higher tier is always considered first and may preempt lower tiers.
    pub priority: i32,
    /// Whether a higher-priority job may preempt (suspend and requeue) this one.
    pub preemptible: bool,
    /// Whether the job may be requeued when its node dies or it turns into a zombie (otherwise
    /// it fails).
    pub restartable: bool,
    /// Time limit in ms: the job fails when it runs longer; backfill relies on it. `None` means
    /// no limit (the job never backfills ahead of a reservation).
    pub max_runtime_ms: Option<u64>,
    /// A RUNNING job whose progress heartbeat is older than this is a zombie (`None`: the
    /// scheduler's default, see [`crate::SchedulerConfig::zombie_timeout_ms`]).
    pub progress_timeout_ms: Option<u64>,
    /// What to run (data; never executed by the scheduler).
    pub command: Option<Command>,
}

impl JobSpec {
    /// A one-member job of user `default` in queue `default`, priority 0, not preemptible,
    /// restartable, no time limit, asking for `member`.
    pub fn new(id: u64, name: impl Into<String>, member: Resources) -> Self {
        JobSpec {
            id: JobId(id),
            name: name.into(),
            user: "default".into(),
            queue: "default".into(),
            member,
            gang_size: 1,
            locality: Locality::Any,
            priority: 0,
            preemptible: false,
            restartable: true,
            max_runtime_ms: None,
            progress_timeout_ms: None,
            command: None,
        }
    }

    /// Sets the gang size and locality.
    pub fn gang(mut self, size: u32, locality: Locality) -> Self {
        self.gang_size = size;
        self.locality = locality;
        self
    }

    /// Sets the user and queue.
    pub fn owner(mut self, user: impl Into<String>, queue: impl Into<String>) -> Self {
        self.user = user.into();
        self.queue = queue.into();
        self
    }

    /// Sets priority and preemptibility.
    pub fn priority(mut self, priority: i32, preemptible: bool) -> Self {
        self.priority = priority;
        self.preemptible = preemptible;
        self
    }

    /// Sets the time limit.
    pub fn max_runtime_ms(mut self, ms: u64) -> Self {
        self.max_runtime_ms = Some(ms);
        self
    }

    /// Total GPU demand of the gang in milli-GPUs.
    pub fn gpu_demand_milli(&self) -> u64 {
        self.member.gpu_demand_milli() * self.gang_size as u64
    }

    /// Checks every field; the error names the first that breaks a rule.
    pub fn validate(&self) -> Result<()> {
        check_text("job.name", &self.name, MAX_NAME_LEN)?;
        check_name("job.user", &self.user, MAX_NAME_LEN)?;
        check_name("job.queue", &self.queue, MAX_NAME_LEN)?;
        self.member.validate()?;
        check_range(
            "job.gang_size",
            self.gang_size as u64,
            1,
            MAX_GANG_SIZE as u64,
        )?;
        if self.locality == Locality::SameIsland && self.member.gpus == 0 {
            return Err(Error::invalid(
                "job.locality",
                Problem::Inconsistent("same-island needs GPUs"),
            ));
        }
        if let Some(t) = self.max_runtime_ms {
            check_range("job.max_runtime_ms", t, 1, MAX_DURATION_MS)?;
        }
        if let Some(t) = self.progress_timeout_ms {
            check_range("job.progress_timeout_ms", t, 1, MAX_DURATION_MS)?;
        }
        if let Some(c) = &self.command {
            c.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<()>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn valid_specs_pass() {
        JobSpec::new(1, "train", Resources::gpus(8))
            .gang(4, Locality::SameRack)
            .validate()
            .unwrap();
        JobSpec::new(2, "infer", Resources::gpu_share(250))
            .validate()
            .unwrap();
        let cpu = Resources {
            cpu_milli: 500,
            ..Resources::default()
        };
        JobSpec::new(3, "etl", cpu).validate().unwrap();
    }

    #[test]
    fn every_rule_has_a_field() {
        let base = JobSpec::new(1, "j", Resources::gpus(1));
        let mut j = base.clone();
        j.name = String::new();
        assert_eq!(field_of(j.validate()), "job.name");
        let mut j = base.clone();
        j.user = "a b".into();
        assert_eq!(field_of(j.validate()), "job.user");
        let mut j = base.clone();
        j.queue = "q\0".into();
        assert_eq!(field_of(j.validate()), "job.queue");
        let mut j = base.clone();
        j.member.gpu_milli = 500;
        j.member.gpus = 2;
        assert_eq!(field_of(j.validate()), "job.member.gpu_milli");
        let mut j = base.clone();
        j.member.gpu_milli = 1001;
        assert_eq!(field_of(j.validate()), "job.member.gpu_milli");
        let mut j = base.clone();
        j.member = Resources::default();
        assert_eq!(field_of(j.validate()), "job.member");
        let mut j = base.clone();
        j.member.gpu_types = vec!["A100".into(), "A100".into()];
        assert_eq!(field_of(j.validate()), "job.member.gpu_types");
        let mut j = base.clone();
        j.gang_size = 0;
        assert_eq!(field_of(j.validate()), "job.gang_size");
        let mut j = base.clone();
        j.max_runtime_ms = Some(0);
        assert_eq!(field_of(j.validate()), "job.max_runtime_ms");
        let mut j = base.clone();
        j.member = Resources {
            cpu_milli: 1,
            ..Resources::default()
        };
        j.locality = Locality::SameIsland;
        assert_eq!(field_of(j.validate()), "job.locality");
        let mut j = base;
        j.command = Some(Command::new("x").env("=", ""));
        assert_eq!(field_of(j.validate()), "command.env[0].name");
    }

    #[test]
    fn locality_names_round_trip() {
        for l in [
            Locality::Any,
            Locality::SameNode,
            Locality::SameIsland,
            Locality::SameRack,
            Locality::Spread,
        ] {
            assert_eq!(Locality::parse(l.as_str()), Some(l));
        }
        assert_eq!(Locality::parse("nope"), None);
    }
}
