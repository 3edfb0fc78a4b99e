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
        let mut w = Walk {
            heads: BinaryHeap::with_capacity(self.groups.len()),
            bufs: vec![Vec::new(); self.groups.len()],
            pos: vec![0; self.groups.len()],
            want: vec![0; self.groups.len()],
        };
        for g in 0..self.groups.len() {
            w.refill(self, g, None);
        }
        w
    }
}

/// How many entries of a group a walk copies at most at a time (one B-tree search per chunk);
/// chunks start at 2 and double, so short walks copy little.
const CHUNK: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    merged: OrderKey,
    i: u32,
    group: u32,
    key: OrderKey,
}

/// A merge of the groups. Jobs may leave the queue while it runs (a pass starts them): each
/// group is read in chunks copied from the B-tree, so a walk may return a job that has left
/// since (callers check the job's state); no job enters the queue during a pass.
pub(crate) struct Walk {
    heads: BinaryHeap<Reverse<Head>>,
    /// Per group: the chunk copied last, and the position of the group's head in it.
    bufs: Vec<Vec<(OrderKey, u32)>>,
    pos: Vec<usize>,
    /// The size asked for the chunk in `bufs` (a shorter chunk is the group's end).
    want: Vec<usize>,
}

impl Walk {
    /// Copies group `g`'s next chunk (after `after`, or from its start) and pushes its head.
    fn refill(&mut self, order: &OrderCache, g: usize, after: Option<(OrderKey, u32)>) {
        let grp = &order.groups[g];
        let buf = &mut self.bufs[g];
        let want = match after {
            None => 2,
            Some(_) => (buf.len() * 2).min(CHUNK),
        };
        buf.clear();
        match after {
            None => buf.extend(grp.jobs.iter().take(want).copied()),
            Some(k) => buf.extend(
                grp.jobs
                    .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                    .take(want)
                    .copied(),
            ),
        }
        self.want[g] = want;
        self.pos[g] = 0;
        self.push_head(order, g);
    }

    fn push_head(&mut self, order: &OrderCache, g: usize) {
        if let Some(&(k, i)) = self.bufs[g].get(self.pos[g]) {
            self.heads.push(Reverse(Head {
                merged: order.merged(g as u32, &k),
                i,
                group: g as u32,
                key: k,
            }));
        }
    }

    /// The next job in queue order.
    pub fn next(&mut self, order: &OrderCache) -> Option<u32> {
        let Reverse(h) = self.heads.pop()?;
        let g = h.group as usize;
        self.pos[g] += 1;
        if self.pos[g] < self.bufs[g].len() {
            self.push_head(order, g);
        } else if self.bufs[g].len() == self.want[g] {
            self.refill(order, g, Some((h.key, h.i)));
        }
        Some(h.i)
    }
}
