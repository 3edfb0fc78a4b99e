//! The queue order kept between passes, without re-sorting the queue.
//!
//! A queued job's multifactor score is `w_age * age + w_fs * fair_share + w_size * size +
//! w_short * short`. Only two terms change with time: `age` grows at the same rate for every job
//! until it saturates at 1, and `fair_share` is the same for every job of one (user, queue)
//! pair. So the jobs are kept in groups (priority tier, user account, queue account, age
//! saturated or not), each group sorted once by the part of the score that never changes
//! (`static`); the score of a job is `offset(group) + static(job)`, and a pass walks the queue as
//! a merge of the groups (a heap of group heads). Refreshing the scores (every
//! [`crate::SchedulerConfig::priority_recalc_ms`], like Slurm's `PriorityCalcPeriod`) recomputes
//! one offset per group and moves the jobs whose age saturated since, instead of re-scoring and
//! re-sorting the whole queue. FIFO and shortest-first use one group with constant offsets.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use crate::cluster::MinReq;
use crate::util::FxHashMap;

/// A queued job's position key: tier, then score, then three tie-breakers (smaller first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderKey {
    pub tier: i64,
    /// Minus the score (smaller goes first).
    pub score: f64,
    pub a: u64,
    pub b: u64,
    pub c: u64,
}

impl Ord for OrderKey {
    fn cmp(&self, o: &OrderKey) -> std::cmp::Ordering {
        self.tier
            .cmp(&o.tier)
            .then(self.score.total_cmp(&o.score))
            .then(self.a.cmp(&o.a))
            .then(self.b.cmp(&o.b))
            .then(self.c.cmp(&o.c))
    }
}

impl PartialOrd for OrderKey {
    fn partial_cmp(&self, o: &OrderKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for OrderKey {
    fn eq(&self, o: &OrderKey) -> bool {
        self.cmp(o).is_eq()
    }
}

impl Eq for OrderKey {}

/// Which group a job is in: jobs of one group differ only in the time-invariant part of
/// their score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct GroupId {
    pub tier: i64,
    pub user: u32,
    pub queue: u32,
    /// The age factor reached 1 (the score no longer grows with time).
    pub saturated: bool,
}

/// A job's place in its group: its key with the static part of the score (the group's offset
/// is added when groups are merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub group: u32,
    pub key: OrderKey,
}

/// One group: the group's jobs in order, and the offset its scores get.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: GroupId,
    pub jobs: BTreeSet<(OrderKey, u32)>,
    /// Added to each job's static score (the age and fair-share terms at the last refresh).
    pub offset: f64,
}

/// The queue order kept between passes.
#[derive(Debug, Clone)]
pub(crate) struct OrderCache {
    pub groups: Vec<Group>,
    pub group_index: FxHashMap<GroupId, u32>,
    /// Multifactor jobs whose age has not saturated: (time it saturates, job index).
    pub ageing: BTreeSet<(u64, u32)>,
    /// When the offsets were last computed (the `now` the scores are as of).
    pub computed_at: Option<u64>,
    /// Something that orders jobs changed: rebuild at the next pass.
    pub dirty: bool,
    /// Jobs that entered the queue since the last pass.
    pub fresh: Vec<u32>,
    /// A lower bound of the entries' requests (exact after a full rebuild).
    pub smallest: MinReq,
    /// How many jobs the groups hold.
    pub len: usize,
}

impl Default for OrderCache {
    fn default() -> Self {
        OrderCache {
            groups: Vec::new(),
            group_index: FxHashMap::default(),
            ageing: BTreeSet::new(),
            computed_at: None,
            dirty: false,
            fresh: Vec::new(),
            smallest: MinReq::new(),
            len: 0,
        }
    }
}

impl OrderCache {
    /// The group of `id`, created empty (offset `offset`) when new.
    pub fn group(&mut self, id: GroupId, offset: f64) -> u32 {
        if let Some(&g) = self.group_index.get(&id) {
            return g;
        }
        let g = self.groups.len() as u32;
        self.groups.push(Group {
            id,
            jobs: BTreeSet::new(),
            offset,
        });
        self.group_index.insert(id, g);
        g
    }

    /// Files job `i` under `slot`.
    pub fn insert(&mut self, slot: Slot, i: u32) {
        if self.groups[slot.group as usize].jobs.insert((slot.key, i)) {
            self.len += 1;
        }
    }

    /// Removes job `i` filed under `slot`.
    pub fn remove(&mut self, slot: Slot, i: u32) {
        if self.groups[slot.group as usize].jobs.remove(&(slot.key, i)) {
            self.len -= 1;
        }
        if !self.ageing.is_empty() {
            // `c` holds the time the age saturates for multifactor jobs that age (see the
            // scheduler's `slot`); removing a pair that is not there is harmless.
            self.ageing.remove(&(slot.key.c, i));
        }
    }

    /// Empties every group (the groups themselves stay, offsets are recomputed later).
    pub fn clear(&mut self) {
        for g in &mut self.groups {
            g.jobs.clear();
        }
        self.ageing.clear();
        self.len = 0;
    }

    /// The merged key of an entry of group `g`.
    #[inline]
    pub fn merged(&self, g: u32, k: &OrderKey) -> OrderKey {
        OrderKey {
            score: k.score - self.groups[g as usize].offset,
            ..*k
        }
    }

    /// A walk over the whole queue in order.
    pub fn walk(&self) -> Walk {
        let mut heads = BinaryHeap::with_capacity(self.groups.len());
        for (g, grp) in self.groups.iter().enumerate() {
            if let Some(&(k, i)) = grp.jobs.first() {
                heads.push(Reverse(Head {
                    merged: self.merged(g as u32, &k),
                    i,
                    group: g as u32,
                    key: k,
                }));
            }
        }
        Walk { heads }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    merged: OrderKey,
    i: u32,
    group: u32,
    key: OrderKey,
}

/// A merge of the groups; jobs may leave the queue while it runs (each group's next job is
/// found from the last key seen, not from a stored position).
pub(crate) struct Walk {
    heads: BinaryHeap<Reverse<Head>>,
}

impl Walk {
    /// The next job in queue order.
    pub fn next(&mut self, order: &OrderCache) -> Option<u32> {
        let Reverse(h) = self.heads.pop()?;
        let grp = &order.groups[h.group as usize];
        if let Some(&(k, i)) = grp
            .jobs
            .range((
                std::ops::Bound::Excluded((h.key, h.i)),
                std::ops::Bound::Unbounded,
            ))
            .next()
        {
            self.heads.push(Reverse(Head {
                merged: order.merged(h.group, &k),
                i,
                group: h.group,
                key: k,
            }));
        }
        Some(h.i)
    }
}
