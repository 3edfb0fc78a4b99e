//! Queues with quotas, grouped in cohorts that lend and borrow (Kueue's ClusterQueue semantics).

use super::limits::*;
use super::text::check_name;
use crate::error::{Error, Problem, Result};

/// An amount of each resource a quota counts: GPUs in milli-GPUs (a whole GPU is 1000), CPU in
/// milli-CPUs, memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Quantities {
    /// GPU in milli-GPUs.
    pub gpu_milli: u64,
    /// CPU in milli-CPUs.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
}

impl Quantities {
    /// `gpus` whole GPUs; CPU and memory unlimited (a quarter of `u64::MAX`).
    pub fn gpus(gpus: u64) -> Self {
        Quantities {
            gpu_milli: gpus * 1000,
            cpu_milli: u64::MAX / 4,
            memory_mib: u64::MAX / 4,
        }
    }

    pub(crate) fn as_array(&self) -> [u64; 3] {
        [self.gpu_milli, self.cpu_milli, self.memory_mib]
    }

    /// Whether every field of `self` is at most the same field of `other`.
    pub fn le(&self, other: &Quantities) -> bool {
        self.gpu_milli <= other.gpu_milli
            && self.cpu_milli <= other.cpu_milli
            && self.memory_mib <= other.memory_mib
    }
}

/// A queue (Kueue's ClusterQueue).
///
/// - Without `nominal` the queue has no quota: its jobs are limited by capacity only.
/// - With `nominal` and no `cohort`, the queue's admitted jobs use at most `nominal`.
/// - In a cohort, unused nominal quota of one queue can be borrowed by the others: a queue uses
///   at most `nominal + borrowing_limit` (no limit when `None`), and lends at most
///   `lending_limit` of its nominal quota (all of it when `None`); the part of its nominal quota
///   it does not lend is always its own.
///
/// `weight` is the queue's fair-share weight (its share of the cluster relative to other queues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Unique name; jobs name it in [`crate::JobSpec::queue`].
    pub name: String,
    /// The cohort it lends to and borrows from.
    pub cohort: Option<String>,
    /// Its guaranteed quota; `None` = no quota.
    pub nominal: Option<Quantities>,
    /// How much above `nominal` it may borrow; `None` = no limit.
    pub borrowing_limit: Option<Quantities>,
    /// How much of `nominal` it may lend; `None` = all of it.
    pub lending_limit: Option<Quantities>,
    /// Fair-share weight (1..=1,000,000).
    pub weight: u32,
}

impl QueueSpec {
    /// A queue without quota, weight 1.
    pub fn unlimited(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            cohort: None,
            nominal: None,
            borrowing_limit: None,
            lending_limit: None,
            weight: 1,
        }
    }

    /// A queue with a nominal quota, weight 1.
    pub fn with_quota(name: impl Into<String>, nominal: Quantities) -> Self {
        QueueSpec {
            nominal: Some(nominal),
            ..QueueSpec::unlimited(name)
        }
    }

    /// Puts the queue in a cohort.
    pub fn in_cohort(mut self, cohort: impl Into<String>) -> Self {
        self.cohort = Some(cohort.into());
        self
    }

    /// Checks names and the consistency of the limits.
    pub fn validate(&self) -> Result<()> {
        check_name("queue.name", &self.name, MAX_NAME_LEN)?;
        if let Some(c) = &self.cohort {
            check_name("queue.cohort", c, MAX_NAME_LEN)?;
            if self.nominal.is_none() {
                return Err(Error::invalid(
                    "queue.nominal",
                    Problem::Inconsistent("a queue in a cohort needs a nominal quota"),
                ));
            }
        }
        if self.nominal.is_none()
            && (self.borrowing_limit.is_some() || self.lending_limit.is_some())
        {
            return Err(Error::invalid(
                "queue.nominal",
                Problem::Inconsistent("borrowing or lending limits need a nominal quota"),
            ));
        }
        if let (Some(n), Some(l)) = (&self.nominal, &self.lending_limit) {
            if !l.le(n) {
                return Err(Error::invalid(
                    "queue.lending_limit",
                    Problem::Inconsistent("the lending limit exceeds the nominal quota"),
                ));
            }
        }
        for (field, q) in [
            ("queue.nominal", &self.nominal),
            ("queue.borrowing_limit", &self.borrowing_limit),
            ("queue.lending_limit", &self.lending_limit),
        ] {
            if let Some(q) = q {
                // Keeps sums over a whole cohort far from overflow.
                for v in q.as_array() {
                    if v > u64::MAX / 4 {
                        return Err(Error::invalid(
                            field,
                            Problem::OutOfRange {
                                min: 0,
                                max: u64::MAX / 4,
                                value: v,
                            },
                        ));
                    }
                }
            }
        }
        if self.weight == 0 || self.weight > 1_000_000 {
            return Err(Error::invalid(
                "queue.weight",
                Problem::OutOfRange {
                    min: 1,
                    max: 1_000_000,
                    value: self.weight as u64,
                },
            ));
        }
        Ok(())
    }
}
