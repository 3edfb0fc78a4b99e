//! One scheduling pass: health, requeues, then the queue in policy order with placement, EASY
//! backfill and preemption.

use super::order::{GroupId, OrderKey, Slot};
use super::{ACTIVE, PENDING, QUEUED, SUSPENDED, Scheduler};
use crate::cluster::{Free, Health, MinReq, Req, member_cap};
use crate::decision::{Decision, FailReason, MemberPlacement, RequeueReason};
use crate::fgd::Profile;
use crate::model::{JobId, Locality};
use crate::placement::{self, PlacementPolicy};
use crate::priority::{QueueOrder, short_factor, size_factor};
use crate::state::JobState;
use crate::util::FxHashSet;

/// Inputs of the multifactor score that are the same for every job of a pass.
struct KeyCtx {
    now: u64,
    users: Vec<f64>,
    queues: Vec<f64>,
    cluster_gpus: f64,
}

/// The head job's reservation: when it can start at the latest, and the free state without the
/// resources it will take then (what a job running past `shadow` may use).
struct Reservation {
    shadow: u64,
    masked: Free,
}

impl Scheduler {
    pub(crate) fn pass(&mut self, now: u64) -> Vec<Decision> {
        self.check_nodes(now);
        self.check_jobs(now);
        let mut out = std::mem::take(&mut self.outbox);
        let mut again: Vec<u32> = self.sets[SUSPENDED as usize]
            .iter()
            .copied()
            .filter(|&i| self.jobs[i as usize].auto_requeue)
            .collect();
        again.sort_unstable();
        for i in again {
            let i = i as usize;
            self.move_to(i, JobState::Queued);
            self.jobs[i].auto_requeue = false;
            self.stats.requeues_total += 1;
            out.push(Decision::Requeue {
                job: self.jobs[i].spec.id,
                reason: RequeueReason::Preempted,
            });
        }
        let mut pending = self.sets[PENDING as usize].clone();
        pending.sort_unstable();
        for i in pending {
            self.move_to(i as usize, JobState::Queued);
        }
        self.place_queue(now, &mut out);
        out
    }

    /// Heartbeat deadlines: Up → Suspect → Down (a Down node loses its jobs).
    fn check_nodes(&mut self, now: u64) {
        let Some(suspect) = self.cfg.node_suspect_after_ms else {
            return;
        };
        let down = self.cfg.node_down_after_ms;
        for n in 0..self.cluster.nodes.len() {
            let info = &self.cluster.nodes[n];
            if info.removed || info.health == Health::Down {
                continue;
            }
            let age = now.saturating_sub(info.last_heartbeat);
            if down.is_some_and(|d| age > d) {
                self.cluster.nodes[n].health = Health::Down;
                self.cluster.refresh_eligible(n);
                self.touch(n);
                self.lose_node(n);
            } else if age > suspect && info.health == Health::Up {
                self.cluster.nodes[n].health = Health::Suspect;
                self.cluster.refresh_eligible(n);
                self.touch(n);
            }
        }
    }

    /// Time limits and zombies of RUNNING jobs.
    fn check_jobs(&mut self, now: u64) {
        let zombie_default = self.cfg.zombie_timeout_ms;
        // (job index, over its limit) for every job to stop. Time limits come from the
        // end-time index (the jobs that end before now); zombies need a scan, done only when
        // some running job has a progress timeout.
        let mut hits: Vec<(u32, bool)> = Vec::new();
        for &(_, i) in self.ends.range(..(now, 0)) {
            let e = &self.jobs[i as usize];
            if let (JobState::Running, Some(limit), Some(s)) =
                (e.state, e.spec.max_runtime_ms, e.run_start_ms)
            {
                if now > s + limit {
                    hits.push((i, true));
                }
            }
        }
        if zombie_default.is_some() || self.watched > 0 {
            for &i in &self.sets[ACTIVE as usize] {
                let e = &self.jobs[i as usize];
                let zombie = e.state == JobState::Running
                    && e.spec
                        .progress_timeout_ms
                        .or(zombie_default)
                        .is_some_and(|z| now > e.last_progress_ms + z);
                if zombie {
                    hits.push((i, false));
                }
            }
        }
        hits.sort_unstable();
        hits.dedup_by_key(|h| h.0);
        for (i, over_limit) in hits {
            let i = i as usize;
            if over_limit {
                self.stop_job(i, false, RequeueReason::Zombie, FailReason::TimeLimit);
            } else {
                let restart = self.jobs[i].spec.restartable;
                self.stop_job(i, restart, RequeueReason::Zombie, FailReason::Zombie);
            }
        }
    }

    /// The group and in-group key of queued job `i` with scores as of `ctx.now` (see
    /// [`super::order`]), creating the group when new.
    fn slot(&mut self, i: usize, ctx: &KeyCtx) -> Slot {
        let e = &self.jobs[i];
        let (submit, id) = (e.submit_ms, e.spec.id.0);
        let (gid, key) = match self.cfg.policy.order {
            QueueOrder::Fifo => (
                GroupId::default(),
                OrderKey {
                    tier: 0,
                    score: 0.0,
                    a: submit,
                    b: id,
                    c: 0,
                },
            ),
            QueueOrder::ShortestFirst => (
                GroupId::default(),
                OrderKey {
                    tier: 0,
                    score: 0.0,
                    a: e.spec.max_runtime_ms.unwrap_or(u64::MAX),
                    b: submit,
                    c: id,
                },
            ),
            QueueOrder::Multifactor => {
                let w = &self.cfg.weights;
                let age_max = w.age_max_ms.max(1);
                let saturates = submit.saturating_add(age_max);
                let saturated = saturates <= ctx.now;
                let size = size_factor(e.demand[0] as f64 / 1000.0, ctx.cluster_gpus);
                let short = short_factor(e.spec.max_runtime_ms, w.runtime_ref_ms);
                // The part of the score that never changes; before saturation the age term is
                // `w_age * (now - submit) / age_max`, whose `now` part is the group's offset.
                let mut fixed = w.size * size + w.short * short;
                if !saturated {
                    fixed -= w.age * submit as f64 / age_max as f64;
                }
                let gid = GroupId {
                    tier: -(e.spec.priority as i64),
                    user: e.user_acct as u32,
                    queue: e.queue_acct as u32,
                    saturated,
                };
                (
                    gid,
                    OrderKey {
                        tier: gid.tier,
                        score: -fixed,
                        a: submit,
                        b: id,
                        // Not a tie-breaker (a and b are unique): when the age saturates.
                        c: if saturated { 0 } else { saturates },
                    },
                )
            }
        };
        let offset = self.group_offset(&gid, ctx);
        Slot {
            group: self.order.group(gid, offset),
            key,
        }
    }

    /// The time-dependent part of the scores of a group's jobs.
    fn group_offset(&self, g: &GroupId, ctx: &KeyCtx) -> f64 {
        if self.cfg.policy.order != QueueOrder::Multifactor {
            return 0.0;
        }
        let w = &self.cfg.weights;
        let fs = (ctx.users[g.user as usize] + ctx.queues[g.queue as usize]) / 2.0;
        let age = if g.saturated {
            w.age
        } else {
            w.age * ctx.now as f64 / w.age_max_ms.max(1) as f64
        };
        age + w.fair_share * fs
    }

    /// Files queued job `i` in the order.
    fn file(&mut self, i: usize, ctx: &KeyCtx) {
        let slot = self.slot(i, ctx);
        self.order.insert(slot, i as u32);
        if slot.key.c != 0 && self.cfg.policy.order == QueueOrder::Multifactor {
            self.order.ageing.insert((slot.key.c, i as u32));
        }
        self.order.smallest.add(&self.jobs[i].req);
        self.jobs[i].order_key = Some(slot);
    }

    /// Brings the cached queue order up to date. Multifactor scores are refreshed at most
    /// every [`crate::SchedulerConfig::priority_recalc_ms`] (Slurm's `PriorityCalcPeriod`): one
    /// offset per group, and the jobs whose age saturated move group; the whole queue is
    /// re-filed only when something that orders jobs changed (a queue, a node, a job update).
    /// Jobs entering the queue in between are filed with the scores of the last refresh (a
    /// job leaves the order as it leaves the queue, see `Scheduler::move_to`).
    fn ordered_queue(&mut self, now: u64) {
        let periodic = self.cfg.policy.order == QueueOrder::Multifactor
            && self
                .order
                .computed_at
                .is_none_or(|t| now >= t.saturating_add(self.cfg.priority_recalc_ms));
        let rebuild = self.order.dirty || self.order.computed_at.is_none();
        let at = if periodic || rebuild {
            now
        } else {
            self.order.computed_at.unwrap_or(now)
        };
        let ctx = KeyCtx {
            now: at,
            users: self.users.factors(),
            queues: self.queue_fs.factors(),
            cluster_gpus: self.cluster.total_gpus() as f64,
        };
        if rebuild {
            for g in 0..self.order.groups.len() {
                for &(_, i) in &self.order.groups[g].jobs {
                    self.jobs[i as usize].order_key = None;
                }
            }
            self.order.clear();
            self.order.smallest = MinReq::new();
            let mut queued = self.sets[QUEUED as usize].clone();
            queued.sort_unstable();
            for i in queued {
                self.file(i as usize, &ctx);
            }
            self.order.fresh.clear();
        } else if periodic {
            // Jobs whose age saturated move to their saturated group.
            while let Some(&(t, i)) = self.order.ageing.first() {
                if t > now {
                    break;
                }
                self.order.ageing.pop_first();
                if let Some(slot) = self.jobs[i as usize].order_key.take() {
                    self.order.remove(slot, i);
                    self.file(i as usize, &ctx);
                }
            }
        }
        if rebuild || periodic {
            for g in 0..self.order.groups.len() {
                let id = self.order.groups[g].id;
                self.order.groups[g].offset = self.group_offset(&id, &ctx);
            }
            self.order.computed_at = Some(now);
            self.order.dirty = false;
        }
        let fresh = std::mem::take(&mut self.order.fresh);
        for i in fresh {
            let e = &self.jobs[i as usize];
            if e.state != JobState::Queued || e.order_key.is_some() {
                continue;
            }
            self.file(i as usize, &ctx);
        }
    }

    fn place_queue(&mut self, now: u64, out: &mut Vec<Decision>) {
        if self.sets[QUEUED as usize].is_empty() {
            return;
        }
        self.ordered_queue(now);
        let policy = self.cfg.policy;
        let profile: Option<Profile> =
            (policy.placement == PlacementPolicy::Topology).then(|| self.learner.profile().clone());
        self.recheck_no_fit();
        let mut bounds = self.index.bounds();
        let smallest = self.order.smallest;
        let blocked_now = |s: &Scheduler| -> FxHashSet<Req> {
            s.queued_shapes
                .keys()
                .filter(|r| s.no_fit.contains(*r))
                .copied()
                .collect()
        };
        // Queued shapes known not to fit: no placement, or behind the reservation only the
        // masked state and no job of the shape ends before it.
        let mut blocked = blocked_now(self);
        let mut resv: Option<Reservation> = None;
        // Jobs that did not fit while no reservation was made, in queue order: the first of
        // them with an earliest start gets the reservation. Computing it waits until something
        // needs it (a later job that fits, or a preemption), which many passes never reach; the
        // free state does not change in between, so the reservation is the same.
        let mut pending: Vec<Req> = Vec::new();
        // Shapes that did not fit the reservation-masked state in this pass (it only shrinks).
        let mut masked_no_fit: FxHashSet<Req> = Default::default();
        // Starts and preemptions only remove jobs from the cached order: merge its groups.
        let mut walk = self.order.walk();
        // Behind a reservation, once every shape still open is one whose jobs fit only by
        // ending before the reservation, only the queued jobs with a short enough time limit
        // can start: the rest of the pass takes them from `queued_by_limit`, in queue order,
        // instead of walking the whole queue.
        let mut shortlist: Option<std::vec::IntoIter<u32>> = None;
        let mut last: Option<OrderKey> = None;
        loop {
            if shortlist.is_none() {
                if let Some(r) = &resv {
                    if self
                        .queued_shapes
                        .keys()
                        .all(|q| blocked.contains(q) || masked_no_fit.contains(q))
                    {
                        shortlist = Some(self.short_jobs(r.shadow.saturating_sub(now), last));
                    }
                }
            }
            let next = match shortlist.as_mut() {
                Some(it) => it.next(),
                None => walk.next(&self.order),
            };
            let Some(i) = next else {
                break;
            };
            let i = i as usize;
            if self.jobs[i].state != JobState::Queued {
                continue;
            }
            last = self.jobs[i]
                .order_key
                .map(|s| self.order.merged(s.group, &s.key));
            // Nothing left in the queue can fit (and no job may still preempt): stop.
            if (resv.is_some() || !self.may_preempt())
                && (!bounds.any_may_fit(&smallest) || blocked.len() >= self.queued_shapes.len())
            {
                break;
            }
            let (req, queue, demand) = (self.jobs[i].req, self.jobs[i].queue, self.jobs[i].demand);
            // Behind a reservation, a job that runs past it can only use the masked state.
            if let Some(r) = &resv {
                let ends_before = self.jobs[i]
                    .spec
                    .max_runtime_ms
                    .is_some_and(|t| now + t <= r.shadow);
                if !ends_before && masked_no_fit.contains(&req) {
                    continue;
                }
            }
            let quota_ok = self.quotas.admits(queue, demand, &[]);
            let live = if !quota_ok || self.no_fit.contains(&req) {
                None
            } else if !bounds.may_fit(&req) {
                // Above what any node has free: it does not fit (and will not, until a node
                // grows).
                self.no_fit.insert(req);
                blocked.insert(req);
                None
            } else {
                let p = placement::place(
                    &self.cluster,
                    &self.free,
                    &req,
                    policy.placement,
                    profile.as_ref(),
                    Some(&self.index),
                );
                if p.is_none() {
                    self.no_fit.insert(req);
                    blocked.insert(req);
                }
                p
            };
            if let Some(p) = live {
                if !pending.is_empty() {
                    resv = self.reservation(&mut pending, now);
                }
                let before = out.len();
                match resv.as_mut() {
                    None => self.start(i, p, now, out, None),
                    Some(r) => {
                        let ends_before = self.jobs[i]
                            .spec
                            .max_runtime_ms
                            .is_some_and(|t| now + t <= r.shadow);
                        if ends_before {
                            self.start(i, p, now, out, Some(r));
                        } else if !masked_no_fit.contains(&req) {
                            // The masked state only lost resources: the index's candidates
                            // still cover it.
                            match placement::place(
                                &self.cluster,
                                &r.masked,
                                &req,
                                policy.placement,
                                profile.as_ref(),
                                Some(&self.index),
                            ) {
                                Some(p2) => self.start(i, p2, now, out, Some(r)),
                                None => {
                                    masked_no_fit.insert(req);
                                    let min_limit =
                                        self.queued_shapes.get(&req).map_or(u64::MAX, |x| x.1);
                                    if now.saturating_add(min_limit) > r.shadow {
                                        blocked.insert(req);
                                    }
                                }
                            }
                        }
                    }
                }
                if out.len() > before {
                    bounds = self.index.bounds();
                }
                continue;
            }
            let pkey = (req, self.jobs[i].spec.priority, queue);
            let epochs = (self.grow_epoch, self.victim_epoch);
            if resv.is_none()
                && !pending.is_empty()
                && self.may_preempt()
                && self.no_preempt.get(&pkey) != Some(&epochs)
            {
                resv = self.reservation(&mut pending, now);
            }
            if resv.is_none() && self.may_preempt() && self.no_preempt.get(&pkey) != Some(&epochs) {
                let found = self.find_preemption(i, profile.as_ref());
                if found.is_none() {
                    self.no_preempt.insert(pkey, epochs);
                }
                if let Some((victims, p)) = found {
                    let by = self.jobs[i].spec.id;
                    for v in victims {
                        self.preempt(v, by, out);
                    }
                    self.recheck_no_fit();
                    blocked = blocked_now(self);
                    masked_no_fit.clear();
                    bounds = self.index.bounds();
                    self.start(i, p, now, out, None);
                    continue;
                }
            }
            if !quota_ok {
                continue;
            }
            if policy.head_of_line_blocking {
                break;
            }
            if policy.backfill && resv.is_none() {
                pending.push(req);
            }
        }
    }

    /// QUEUED jobs with a time limit of at most `horizon` that come after `after` in the queue
    /// order, in that order.
    fn short_jobs(&self, horizon: u64, after: Option<OrderKey>) -> std::vec::IntoIter<u32> {
        let mut c: Vec<(OrderKey, u32)> = self
            .queued_by_limit
            .range(..=(horizon, u32::MAX))
            .filter_map(|&(_, j)| {
                let s = self.jobs[j as usize].order_key?;
                let k = self.order.merged(s.group, &s.key);
                after.is_none_or(|a| k > a).then_some((k, j))
            })
            .collect();
        c.sort_unstable();
        c.into_iter()
            .map(|(_, j)| j)
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Whether a preemption could happen now: the policy preempts and some job holding
    /// resources is preemptible (no victim, no preemption).
    fn may_preempt(&self) -> bool {
        self.cfg.policy.preemption && self.preemptible_bound > 0
    }

    /// The EASY reservation of the first of `pending` (blocked jobs in queue order) that has an
    /// earliest start; empties `pending`.
    fn reservation(&self, pending: &mut Vec<Req>, now: u64) -> Option<Reservation> {
        let mut out = None;
        for req in pending.drain(..) {
            if let Some((shadow, p)) = self.earliest_start(&req, now) {
                let mut masked = self.free.clone();
                for m in &p {
                    mask_out(&self.cluster, &mut masked, m, &req);
                }
                out = Some(Reservation { shadow, masked });
                break;
            }
        }
        pending.clear();
        out
    }

    fn start(
        &mut self,
        i: usize,
        members: Vec<MemberPlacement>,
        now: u64,
        out: &mut Vec<Decision>,
        resv: Option<&mut Reservation>,
    ) {
        let req = self.jobs[i].req;
        if let Some(r) = resv {
            for m in &members {
                r.masked.take_saturating(&self.cluster, m, &req);
            }
        }
        self.bind(i, members.clone());
        self.move_to(i, JobState::Scheduled);
        let e = &mut self.jobs[i];
        e.start_ms = Some(now);
        e.run_start_ms = None;
        e.starts += 1;
        let job = e.spec.id;
        // A start in a cohort can make its queue a borrower, whose running preemptible jobs
        // become reclaim candidates.
        if e.spec.preemptible || self.quotas.queues[e.queue].cohort.is_some() {
            self.victim_epoch += 1;
        }
        self.stats.allocation_success_total += 1;
        self.refresh_end(i);
        out.push(Decision::Start { job, members });
    }

    fn preempt(&mut self, v: usize, by: JobId, out: &mut Vec<Decision>) {
        self.unbind(v);
        self.move_to(v, JobState::Suspended);
        let e = &mut self.jobs[v];
        e.auto_requeue = true;
        e.preemptions += 1;
        self.stats.preemptions_total += 1;
        out.push(Decision::Preempt { job: e.spec.id, by });
    }

    /// The smallest set of preemptible jobs (found greedily, then pruned) whose resources let job
    /// `i` start, and the placement it gets. Victims are RUNNING jobs of a lower priority tier;
    /// also, when job `i`'s queue stays within its nominal quota, jobs of queues in its cohort
    /// that borrow (Kueue's reclaim). Lowest priority first, then the largest (fewer victims),
    /// then the most recently started (least work lost).
    fn find_preemption(
        &self,
        i: usize,
        profile: Option<&Profile>,
    ) -> Option<(Vec<usize>, Vec<MemberPlacement>)> {
        let e = &self.jobs[i];
        let (prio, q, req, demand) = (e.spec.priority, e.queue, e.req, e.demand);
        let reclaim = self.quotas.within_nominal(q, demand);
        let mut cands: Vec<usize> = self.sets[ACTIVE as usize]
            .iter()
            .map(|&v| v as usize)
            .filter(|&v| {
                let x = &self.jobs[v];
                x.state == JobState::Running
                    && x.spec.preemptible
                    && (x.spec.priority < prio
                        || (reclaim
                            && x.queue != q
                            && self.quotas.same_cohort(q, x.queue)
                            && self.quotas.borrowing(x.queue)))
            })
            .collect();
        if cands.is_empty() {
            return None;
        }
        cands.sort_unstable_by_key(|&v| {
            let x = &self.jobs[v];
            (
                x.spec.priority,
                std::cmp::Reverse(x.demand[0]),
                std::cmp::Reverse(x.start_ms.unwrap_or(0)),
                x.spec.id,
            )
        });
        let quota_ok = |chosen: &[usize]| {
            let released: Vec<(usize, [u64; 3])> = chosen
                .iter()
                .map(|&v| (self.jobs[v].queue, self.jobs[v].demand))
                .collect();
            self.quotas.admits(q, demand, &released)
        };
        let give = |f: &mut Free, v: usize| {
            let x = &self.jobs[v];
            for m in &x.members {
                f.give(&self.cluster, m, &x.req);
            }
        };
        let take = |f: &mut Free, v: usize| {
            let x = &self.jobs[v];
            for m in &x.members {
                f.take(&self.cluster, m, &x.req);
            }
        };
        let pol = self.cfg.policy.placement;
        let single_node =
            req.gang == 1 || matches!(req.locality, Locality::SameNode | Locality::SameIsland);
        let mut scratch = self.free.clone();
        let chosen: Vec<usize> = if single_node {
            let fits_on = |f: &Free, n: usize| {
                member_cap(&self.cluster, f, n, &req, req.gang) >= req.gang
                    && (req.locality != Locality::SameIsland
                        || placement::island_fits(&self.cluster, f, n, &req, req.gang))
            };
            // Victims per node, in candidate order.
            let mut by_node: Vec<(u32, usize)> = Vec::new();
            for (rank, &v) in cands.iter().enumerate() {
                let mut nodes: Vec<u32> = self.jobs[v].members.iter().map(|m| m.node.0).collect();
                nodes.sort_unstable();
                nodes.dedup();
                for n in nodes {
                    if self.cluster.eligible[n as usize] {
                        by_node.push((n, rank));
                    }
                }
            }
            by_node.sort_unstable();
            // (victims, highest victim priority, victim GPUs, node) and the victims.
            type Best = ((usize, i32, u64, u32), Vec<usize>);
            let mut best: Option<Best> = None;
            let mut k = 0;
            while k < by_node.len() {
                let n = by_node[k].0;
                let mut end = k;
                while end < by_node.len() && by_node[end].0 == n {
                    end += 1;
                }
                let list: Vec<usize> = by_node[k..end].iter().map(|x| cands[x.1]).collect();
                k = end;
                let mut set: Vec<usize> = Vec::new();
                let mut ok = false;
                for &v in &list {
                    give(&mut scratch, v);
                    set.push(v);
                    if fits_on(&scratch, n as usize) && quota_ok(&set) {
                        ok = true;
                        break;
                    }
                }
                if ok {
                    for pos in (0..set.len()).rev() {
                        let v = set[pos];
                        take(&mut scratch, v);
                        let mut without = set.clone();
                        without.remove(pos);
                        if fits_on(&scratch, n as usize) && quota_ok(&without) {
                            set = without;
                        } else {
                            give(&mut scratch, v);
                        }
                    }
                    let key = (
                        set.len(),
                        set.iter()
                            .map(|&v| self.jobs[v].spec.priority)
                            .max()
                            .unwrap_or(0),
                        set.iter().map(|&v| self.jobs[v].demand[0]).sum(),
                        n,
                    );
                    if best.as_ref().is_none_or(|b| key < b.0) {
                        best = Some((key, set.clone()));
                    }
                }
                for &v in &set {
                    take(&mut scratch, v);
                }
            }
            best?.1
        } else {
            // Bisection over the candidate prefix, then pruning.
            let after = |k: usize| {
                let mut f = self.free.clone();
                for &v in &cands[..k] {
                    give(&mut f, v);
                }
                f
            };
            let ok = |k: usize| {
                quota_ok(&cands[..k])
                    && placement::place(&self.cluster, &after(k), &req, pol, profile, None)
                        .is_some()
            };
            if !ok(cands.len()) {
                return None;
            }
            let (mut lo, mut hi) = (0usize, cands.len());
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if ok(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            let mut set: Vec<usize> = cands[..hi].to_vec();
            scratch = after(hi);
            for pos in (0..set.len()).rev() {
                let v = set[pos];
                take(&mut scratch, v);
                let mut without = set.clone();
                without.remove(pos);
                if quota_ok(&without)
                    && placement::place(&self.cluster, &scratch, &req, pol, profile, None).is_some()
                {
                    set = without;
                } else {
                    give(&mut scratch, v);
                }
            }
            set
        };
        let mut f = self.free.clone();
        for &v in &chosen {
            give(&mut f, v);
        }
        if !quota_ok(&chosen) {
            return None;
        }
        let p = placement::place(&self.cluster, &f, &req, pol, profile, None)?;
        let mut chosen = chosen;
        chosen.sort_unstable_by_key(|&v| self.jobs[v].spec.id);
        Some((chosen, p))
    }
}

/// Removes what a reserved member will take from a free state: its GPUs entirely, its CPU and
/// memory from what is free now (conservative: more may be free at the reserved time).
fn mask_out(cl: &crate::cluster::Cluster, f: &mut Free, m: &MemberPlacement, req: &Req) {
    let n = m.node.0 as usize;
    let off = cl.nodes[n].gpu_off;
    for g in &m.gpus {
        f.zero_gpu(n, off + g.index as usize);
    }
    f.cpu[n] = f.cpu[n].saturating_sub(req.cpu);
    f.mem[n] = f.mem[n].saturating_sub(req.mem);
}
