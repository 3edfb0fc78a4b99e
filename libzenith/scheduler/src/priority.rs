//! Queue order: FIFO, shortest first, or multifactor priority with fair share.
//!
//! Multifactor (Slurm's multifactor plugin, simplified): jobs are ordered by their priority tier
//! ([`crate::JobSpec::priority`]) first, then by a score
//!
//! ```text
//! score = w_age * age + w_fair_share * fair_share + w_size * size + w_short * short
//! ```
//!
//! with every factor in `[0, 1]`:
//! - `age = min(1, waited / age_max)`;
//! - `fair_share = (F(user) + F(queue)) / 2`, `F(a) = 2^(-(usage(a) / total usage) / share(a))`,
//!   where usage is GPU-time decayed with a half-life and `share(a)` is the account's weight over
//!   the weights of all accounts of its kind (users have weight 1, queues their
//!   [`crate::QueueSpec::weight`]);
//! - `size = 1 - ln(1 + gpus) / ln(1 + cluster gpus)` (small jobs first);
//! - `short = 1 - ln(1 + limit_s) / ln(1 + runtime_ref_s)`, clamped at 0, from the job's
//!   declared time limit (no limit counts as `runtime_ref`).

use crate::util::FxHashMap;

/// Weights and scales of the multifactor score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorityWeights {
    /// Weight of the age factor.
    pub age: f64,
    /// Weight of the fair-share factor.
    pub fair_share: f64,
    /// Weight of the job-size factor (favours small jobs).
    pub size: f64,
    /// Weight of the short-time-limit factor (favours short declared limits).
    pub short: f64,
    /// Waiting time at which the age factor reaches 1, in ms.
    pub age_max_ms: u64,
    /// Time limit at which the short factor reaches 0, in ms.
    pub runtime_ref_ms: u64,
}

impl Default for PriorityWeights {
    fn default() -> Self {
        PriorityWeights {
            age: 1.0,
            fair_share: 0.5,
            size: 0.5,
            short: 2.0,
            age_max_ms: 24 * 3600 * 1000,
            runtime_ref_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// How the queue is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueOrder {
    /// Submission order.
    Fifo,
    /// Shortest declared time limit first (with oracle limits: SJF); then submission order.
    ShortestFirst,
    /// Priority tier, then the multifactor score, then submission order.
    Multifactor,
}

impl QueueOrder {
    /// The lower-case name (`fifo`, `shortest-first`, `multifactor`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOrder::Fifo => "fifo",
            QueueOrder::ShortestFirst => "shortest-first",
            QueueOrder::Multifactor => "multifactor",
        }
    }

    /// The inverse of [`QueueOrder::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "fifo" => QueueOrder::Fifo,
            "shortest-first" => QueueOrder::ShortestFirst,
            "multifactor" => QueueOrder::Multifactor,
            _ => return None,
        })
    }
}

/// One fair-share account: a user or a queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct Account {
    /// Decayed usage in GPU-equivalent milliseconds.
    pub usage: f64,
    /// Current consumption in milli-GPU-equivalents (integer, so it returns to 0 exactly).
    pub rate_milli: u64,
    pub weight: f64,
}

/// Decayed usage per account, advanced to each call's `now`.
#[derive(Debug, Clone)]
pub(crate) struct FairShare {
    pub accounts: Vec<Account>,
    index: FxHashMap<String, usize>,
    last_ms: u64,
    half_life_ms: f64,
}

impl FairShare {
    pub fn new(half_life_ms: u64) -> Self {
        FairShare {
            accounts: Vec::new(),
            index: FxHashMap::default(),
            last_ms: 0,
            half_life_ms: half_life_ms.max(1) as f64,
        }
    }

    pub fn account(&mut self, key: &str, weight: f64) -> usize {
        if let Some(&i) = self.index.get(key) {
            self.accounts[i].weight = weight;
            return i;
        }
        self.index.insert(key.to_owned(), self.accounts.len());
        self.accounts.push(Account {
            weight,
            ..Account::default()
        });
        self.accounts.len() - 1
    }

    /// Decays every account to `now` and adds what each consumed since the last call:
    /// `usage(now) = usage * d + rate * h / ln 2 * (1 - d)`, `d = 2^(-dt / h)`.
    pub fn advance(&mut self, now: u64) {
        if now <= self.last_ms {
            return;
        }
        let dt = (now - self.last_ms) as f64;
        self.last_ms = now;
        let d = (-dt / self.half_life_ms).exp2();
        let gain = self.half_life_ms / std::f64::consts::LN_2 * (1.0 - d);
        for a in &mut self.accounts {
            a.usage = a.usage * d + (a.rate_milli as f64 / 1000.0) * gain;
        }
    }

    /// The accounts in index order as (name, weight, decayed usage), and the time usage is
    /// decayed to (for snapshots; rates come back as jobs are bound again).
    pub fn dump(&self) -> (Vec<(String, f64, f64)>, u64) {
        let mut names = vec![String::new(); self.accounts.len()];
        for (k, &i) in &self.index {
            names[i] = k.clone();
        }
        let v = names
            .into_iter()
            .zip(&self.accounts)
            .map(|(n, a)| (n, a.weight, a.usage))
            .collect();
        (v, self.last_ms)
    }

    /// The inverse of [`FairShare::dump`] on a new instance (rates 0).
    pub fn load(&mut self, accounts: Vec<(String, f64, f64)>, last_ms: u64) {
        for (name, weight, usage) in accounts {
            let i = self.account(&name, weight);
            self.accounts[i].usage = usage;
        }
        self.last_ms = last_ms;
    }

    /// `F(a)` for every account.
    pub fn factors(&self) -> Vec<f64> {
        let total_usage: f64 = self.accounts.iter().map(|a| a.usage).sum();
        let total_weight: f64 = self.accounts.iter().map(|a| a.weight).sum();
        self.accounts
            .iter()
            .map(|a| {
                if total_usage <= 0.0 || total_weight <= 0.0 {
                    return 1.0;
                }
                let share = a.weight / total_weight;
                (-(a.usage / total_usage) / share).exp2()
            })
            .collect()
    }
}

/// The size factor.
pub(crate) fn size_factor(gpus: f64, cluster_gpus: f64) -> f64 {
    if cluster_gpus <= 0.0 {
        return 1.0;
    }
    (1.0 - (1.0 + gpus).ln() / (1.0 + cluster_gpus).ln()).clamp(0.0, 1.0)
}

/// The short-limit factor.
pub(crate) fn short_factor(limit_ms: Option<u64>, ref_ms: u64) -> f64 {
    let r = (ref_ms.max(1000) / 1000) as f64;
    let l = limit_ms.map_or(r, |x| (x / 1000) as f64);
    (1.0 - (1.0 + l).ln() / (1.0 + r).ln()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_decays_with_the_half_life_and_factors_favour_light_users() {
        let mut fs = FairShare::new(1000);
        let a = fs.account("a", 1.0);
        let b = fs.account("b", 1.0);
        fs.accounts[a].rate_milli = 1000;
        fs.advance(1000);
        let after_one = fs.accounts[a].usage;
        // Running one GPU for one half-life accrues h / ln2 * (1 - 1/2) = 721.3 GPU-ms.
        assert!((after_one - 1000.0 / std::f64::consts::LN_2 * 0.5).abs() < 1e-6);
        fs.accounts[a].rate_milli = 0;
        fs.advance(2000);
        assert!((fs.accounts[a].usage - after_one / 2.0).abs() < 1e-6);
        let f = fs.factors();
        assert!(f[b] > f[a], "{f:?}");
        assert_eq!(f[b], 1.0);
        assert!(size_factor(1.0, 64.0) > size_factor(32.0, 64.0));
        assert!(short_factor(Some(60_000), 7 * 86_400_000) > short_factor(None, 7 * 86_400_000));
        assert_eq!(short_factor(None, 7 * 86_400_000), 0.0);
    }
}
