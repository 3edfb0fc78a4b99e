//! Queue quotas with cohorts (Kueue's ClusterQueue semantics; see [`crate::QueueSpec`]).
//!
//! Usage counts the resources of admitted jobs (SCHEDULED or RUNNING). A job of queue `q` is
//! admitted when, for every resource:
//! - `usage(q) + demand <= nominal(q)` for a queue without cohort;
//! - in a cohort, `usage(q) + demand <= nominal(q) + borrowing_limit(q)`, and the cohort's pool
//!   still covers everyone's borrowing: the sum over the cohort of `max(0, usage - guaranteed)`
//!   stays at most the sum of what each queue lends, where `guaranteed = nominal -
//!   lending_limit` (0 without a lending limit) and a queue lends `nominal - guaranteed`.
//!
//! A queue without nominal quota is limited by capacity only.

use crate::error::{Error, Result};
use crate::model::QueueSpec;
use crate::util::FxHashMap;

#[derive(Debug, Clone)]
pub(crate) struct QueueEntry {
    pub spec: QueueSpec,
    pub usage: [u64; 3],
    pub cohort: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct QuotaBook {
    pub queues: Vec<QueueEntry>,
    by_name: FxHashMap<String, usize>,
    cohort_names: Vec<String>,
    /// Queues of each cohort.
    cohorts: Vec<Vec<usize>>,
}

const UNLIMITED: u64 = u64::MAX / 4;

fn guaranteed(spec: &QueueSpec, r: usize) -> u64 {
    match (&spec.nominal, &spec.lending_limit) {
        (Some(n), Some(l)) => n.as_array()[r] - l.as_array()[r],
        _ => 0,
    }
}

fn lendable(spec: &QueueSpec, r: usize) -> u64 {
    spec.nominal.map_or(0, |n| n.as_array()[r]) - guaranteed(spec, r)
}

impl QuotaBook {
    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The queue's index, creating an unlimited queue when `implicit`.
    pub fn resolve(&mut self, name: &str, implicit: bool) -> Result<usize> {
        if let Some(i) = self.index(name) {
            return Ok(i);
        }
        if !implicit {
            return Err(Error::UnknownQueue(name.to_owned()));
        }
        Ok(self.insert(QueueSpec::unlimited(name)))
    }

    fn insert(&mut self, spec: QueueSpec) -> usize {
        let i = self.queues.len();
        self.by_name.insert(spec.name.clone(), i);
        self.queues.push(QueueEntry {
            spec,
            usage: [0; 3],
            cohort: None,
        });
        self.relink(i);
        i
    }

    fn relink(&mut self, i: usize) {
        if let Some(c) = self.queues[i].cohort.take() {
            self.cohorts[c].retain(|&q| q != i);
        }
        if let Some(name) = self.queues[i].spec.cohort.clone() {
            let c = match self.cohort_names.iter().position(|x| *x == name) {
                Some(c) => c,
                None => {
                    self.cohort_names.push(name);
                    self.cohorts.push(Vec::new());
                    self.cohorts.len() - 1
                }
            };
            self.cohorts[c].push(i);
            self.cohorts[c].sort_unstable();
            self.queues[i].cohort = Some(c);
        }
    }

    /// Adds or replaces a queue (validated by the caller). Fails, changing nothing, when the
    /// queue's admitted jobs would exceed the new limits.
    pub fn set(&mut self, spec: QueueSpec) -> Result<()> {
        let name = spec.name.clone();
        let mut trial = self.clone();
        match trial.index(&name) {
            Some(i) => {
                trial.queues[i].spec = spec;
                trial.relink(i);
            }
            None => {
                trial.insert(spec);
            }
        }
        if trial.check().is_err() {
            return Err(Error::QuotaBelowUsage(name));
        }
        *self = trial;
        Ok(())
    }

    /// Whether queue `q` may admit `add` (see the module rules), with `released` usage
    /// (queue, amounts) given back first.
    pub fn admits(&self, q: usize, add: [u64; 3], released: &[(usize, [u64; 3])]) -> bool {
        let usage = |i: usize, r: usize| -> u64 {
            let mut u = self.queues[i].usage[r];
            for (j, amt) in released {
                if *j == i {
                    u -= amt[r];
                }
            }
            if i == q { u + add[r] } else { u }
        };
        let e = &self.queues[q];
        let Some(nominal) = e.spec.nominal else {
            return true;
        };
        let nominal = nominal.as_array();
        for r in 0..3 {
            if add[r] == 0 {
                continue;
            }
            let limit = match e.cohort {
                None => nominal[r],
                Some(_) => e
                    .spec
                    .borrowing_limit
                    .map_or(UNLIMITED * 2, |b| nominal[r] + b.as_array()[r]),
            };
            if usage(q, r) > limit {
                return false;
            }
            if let Some(c) = e.cohort {
                let mut borrowed = 0u64;
                let mut pool = 0u64;
                for &i in &self.cohorts[c] {
                    let s = &self.queues[i].spec;
                    borrowed += usage(i, r).saturating_sub(guaranteed(s, r));
                    pool += lendable(s, r);
                }
                if borrowed > pool {
                    return false;
                }
            }
        }
        true
    }

    pub fn charge(&mut self, q: usize, amt: [u64; 3]) {
        for (u, a) in self.queues[q].usage.iter_mut().zip(amt) {
            *u += a;
        }
    }

    pub fn release(&mut self, q: usize, amt: [u64; 3]) {
        for (u, a) in self.queues[q].usage.iter_mut().zip(amt) {
            *u -= a;
        }
    }

    /// Every queue within its limits and every cohort's pool covering its borrowing.
    pub fn check(&self) -> std::result::Result<(), String> {
        for e in &self.queues {
            let Some(nominal) = e.spec.nominal else {
                continue;
            };
            for (r, nom) in nominal.as_array().into_iter().enumerate() {
                let limit = match e.cohort {
                    None => nom,
                    Some(_) => e
                        .spec
                        .borrowing_limit
                        .map_or(u64::MAX, |b| nom + b.as_array()[r]),
                };
                if e.usage[r] > limit {
                    return Err(format!(
                        "queue {} uses {} of resource {r}, limit {limit}",
                        e.spec.name, e.usage[r]
                    ));
                }
            }
        }
        for (c, members) in self.cohorts.iter().enumerate() {
            for r in 0..3 {
                let borrowed: u64 = members
                    .iter()
                    .map(|&i| {
                        self.queues[i].usage[r].saturating_sub(guaranteed(&self.queues[i].spec, r))
                    })
                    .sum();
                let pool: u64 = members
                    .iter()
                    .map(|&i| lendable(&self.queues[i].spec, r))
                    .sum();
                if borrowed > pool {
                    return Err(format!(
                        "cohort {} borrows {borrowed} of resource {r}, its pool is {pool}",
                        self.cohort_names[c]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether queue `q` is using more than its nominal quota of some resource.
    pub fn borrowing(&self, q: usize) -> bool {
        let e = &self.queues[q];
        match e.spec.nominal {
            Some(n) => e.usage.iter().zip(n.as_array()).any(|(u, n)| *u > n),
            None => false,
        }
    }

    /// Whether queues `a` and `b` share a cohort.
    pub fn same_cohort(&self, a: usize, b: usize) -> bool {
        self.queues[a].cohort.is_some() && self.queues[a].cohort == self.queues[b].cohort
    }

    /// Whether `q` stays within its nominal quota after admitting `add`.
    pub fn within_nominal(&self, q: usize, add: [u64; 3]) -> bool {
        let e = &self.queues[q];
        match e.spec.nominal {
            Some(n) => (0..3).all(|r| e.usage[r] + add[r] <= n.as_array()[r]),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Quantities;

    fn q(name: &str, gpus: u64) -> QueueSpec {
        QueueSpec::with_quota(
            name,
            Quantities {
                gpu_milli: gpus * 1000,
                cpu_milli: 1_000_000,
                memory_mib: 1_000_000,
            },
        )
    }

    fn g(gpus: u64) -> [u64; 3] {
        [gpus * 1000, 0, 0]
    }

    #[test]
    fn a_queue_alone_stays_within_nominal() {
        let mut b = QuotaBook::default();
        b.set(q("a", 4)).unwrap();
        let a = b.index("a").unwrap();
        assert!(b.admits(a, g(4), &[]));
        assert!(!b.admits(a, g(5), &[]));
        b.charge(a, g(3));
        assert!(!b.admits(a, g(2), &[]));
        assert!(b.admits(a, g(2), &[(a, g(1))]));
        // Lowering the quota below usage is refused and changes nothing.
        assert_eq!(b.set(q("a", 2)), Err(Error::QuotaBelowUsage("a".into())));
        assert!(b.admits(a, g(1), &[]));
    }

    #[test]
    fn cohorts_lend_and_borrow_within_limits() {
        let mut b = QuotaBook::default();
        let mut qa = q("a", 10).in_cohort("c");
        qa.lending_limit = Some(Quantities {
            gpu_milli: 4000,
            cpu_milli: 1_000_000,
            memory_mib: 1_000_000,
        });
        let mut qb = q("b", 10).in_cohort("c");
        qb.borrowing_limit = Some(Quantities {
            gpu_milli: 3000,
            cpu_milli: 0,
            memory_mib: 0,
        });
        b.set(qa).unwrap();
        b.set(qb).unwrap();
        let (a, bb) = (b.index("a").unwrap(), b.index("b").unwrap());
        // b may borrow up to 3 GPUs (its borrowing limit), a lends at most 4.
        assert!(b.admits(bb, g(13), &[]));
        assert!(!b.admits(bb, g(14), &[]));
        b.charge(bb, g(13));
        assert!(b.borrowing(bb));
        // a keeps its 6 guaranteed GPUs, and 1 more of its lendable 4 (3 are lent).
        assert!(b.admits(a, g(7), &[]));
        assert!(!b.admits(a, g(8), &[]));
        // Reclaim: once b gives back what it borrowed, a gets all 10.
        assert!(b.admits(a, g(10), &[(bb, g(3))]));
        assert!(b.check().is_ok());
        // An unlimited queue admits anything.
        let u = b.resolve("free", true).unwrap();
        assert!(b.admits(u, g(1_000_000), &[]));
        assert_eq!(
            b.resolve("nope", false),
            Err(Error::UnknownQueue("nope".into()))
        );
    }
}
