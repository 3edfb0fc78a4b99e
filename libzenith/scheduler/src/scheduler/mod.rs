//! The [`Scheduler`]: state, the calls that change it, and the queries that read it.
//!
//! Time is injected: every call that can change state takes `now` (milliseconds on any clock the
//! caller likes, never decreasing). Given the same calls with the same arguments, two schedulers
//! make the same decisions; that is what the journal relies on.

mod order;
mod pass;
pub(crate) mod snapshot;

/// The order slot of a job filed in group `group` under `key` (for the invariant checks).
pub(crate) fn order_slot(group: u32, key: order::OrderKey) -> order::Slot {
    order::Slot { group, key }
}

use crate::cluster::{Cluster, Free, Health, Req, member_cap};
use crate::config::SchedulerConfig;
use crate::decision::{Decision, FailReason, MemberPlacement, RequeueReason};
use crate::error::{Error, Result};
use crate::fgd::ProfileLearner;
use crate::journal::{Journal, Op};
use crate::model::{JobId, JobSpec, Locality, NodeId, NodeSpec, NodeState, QueueSpec};
use crate::node_index::NodeIndex;
use crate::placement;
use crate::priority::FairShare;
use crate::quota::QuotaBook;
use crate::state::JobState;
use crate::util::{FxHashMap, FxHashSet};

/// Changes to a live job's policy fields (`None` leaves a field as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobUpdate {
    /// New priority tier.
    pub priority: Option<i32>,
    /// New preemptibility.
    pub preemptible: Option<bool>,
    /// New restartability.
    pub restartable: Option<bool>,
    /// New time limit in ms.
    pub max_runtime_ms: Option<u64>,
}

/// A job as the scheduler sees it now.
#[derive(Debug, Clone, Copy)]
pub struct JobView<'a> {
    /// The spec it was submitted with (with updates applied).
    pub spec: &'a JobSpec,
    /// Its state.
    pub state: JobState,
    /// When it was submitted (ms).
    pub submit_ms: u64,
    /// When its current or last run was placed (ms).
    pub start_ms: Option<u64>,
    /// When it reached a terminal state (ms).
    pub end_ms: Option<u64>,
    /// Its members' placements while SCHEDULED or RUNNING (empty otherwise).
    pub members: &'a [MemberPlacement],
    /// Why it failed, if it did.
    pub fail_reason: Option<FailReason>,
    /// How many times it was started.
    pub starts: u32,
    /// How many times it was preempted.
    pub preemptions: u32,
}

/// A node as the scheduler sees it now.
#[derive(Debug, Clone)]
pub struct NodeView<'a> {
    /// Its id.
    pub id: NodeId,
    /// Its spec.
    pub spec: &'a NodeSpec,
    /// Its state.
    pub state: NodeState,
    /// When it last heartbeat (ms).
    pub last_heartbeat_ms: u64,
    /// Free milli-GPUs per GPU, by index.
    pub free_gpu_milli: &'a [u16],
    /// Free CPU in milli-CPUs.
    pub free_cpu_milli: u64,
    /// Free memory in MiB.
    pub free_memory_mib: u64,
}

/// Counters and gauges for telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Jobs per state, in [`JobState::ALL`] order.
    pub jobs: [u64; 8],
    /// Jobs started (`Start` decisions).
    pub allocation_success_total: u64,
    /// Jobs preempted.
    pub preemptions_total: u64,
    /// Jobs requeued.
    pub requeues_total: u64,
    /// Scheduling passes.
    pub passes_total: u64,
    /// Decisions made.
    pub decisions_total: u64,
    /// GPUs on live nodes.
    pub gpus_total: u64,
    /// Free milli-GPUs on nodes that take work.
    pub gpu_free_milli: u64,
}

/// What a replayed or live call returned.
pub(crate) enum Outcome {
    Unit,
    Node(NodeId),
    Decisions(Vec<Decision>),
}

pub(crate) const PENDING: u8 = 0;
pub(crate) const QUEUED: u8 = 1;
pub(crate) const ACTIVE: u8 = 2;
pub(crate) const SUSPENDED: u8 = 3;
const NO_SET: u8 = u8::MAX;

/// A job's quota demand (GPU milli, CPU milli, memory MiB of the whole gang) and its
/// fair-share consumption while running (one GPU-equivalent per GPU; CPU-only work at 1/32 GPU
/// per CPU).
fn demand_of(spec: &JobSpec) -> ([u64; 3], u64) {
    let gang = spec.gang_size as u64;
    let demand = [
        spec.gpu_demand_milli(),
        spec.member.cpu_milli * gang,
        spec.member.memory_mib * gang,
    ];
    let billing_milli = if demand[0] > 0 {
        demand[0]
    } else {
        demand[1] / 32
    };
    (demand, billing_milli)
}

fn set_of(s: JobState) -> u8 {
    match s {
        JobState::Pending => PENDING,
        JobState::Queued => QUEUED,
        JobState::Scheduled | JobState::Running => ACTIVE,
        JobState::Suspended => SUSPENDED,
        _ => NO_SET,
    }
}

/// One job's record.
#[derive(Debug, Clone)]
pub(crate) struct JobEntry {
    pub spec: JobSpec,
    pub req: Req,
    pub state: JobState,
    set: u8,
    pos: u32,
    pub submit_ms: u64,
    pub start_ms: Option<u64>,
    pub run_start_ms: Option<u64>,
    pub last_progress_ms: u64,
    pub end_ms: Option<u64>,
    pub members: Vec<MemberPlacement>,
    /// Suspended by preemption: requeued by the next pass.
    pub auto_requeue: bool,
    pub fail_reason: Option<FailReason>,
    pub starts: u32,
    pub preemptions: u32,
    pub queue: usize,
    pub user_acct: usize,
    pub queue_acct: usize,
    /// Fair-share consumption while running, in milli-GPU-equivalents.
    pub billing_milli: u64,
    /// Quota demand: GPU milli, CPU milli, memory MiB of the whole gang.
    pub demand: [u64; 3],
    /// Its key in the cached queue order, while it is in it.
    pub order_key: Option<order::Slot>,
    /// Its key in `Scheduler::ends`.
    pub end_key: Option<u64>,
}

impl JobEntry {
    /// A PENDING job submitted at `now`, in no set, charged to `[queue, user account, queue
    /// account]`.
    fn new(spec: JobSpec, req: Req, now: u64, accounts: [usize; 3]) -> JobEntry {
        let (demand, billing_milli) = demand_of(&spec);
        JobEntry {
            spec,
            req,
            state: JobState::Pending,
            set: NO_SET,
            pos: 0,
            submit_ms: now,
            start_ms: None,
            run_start_ms: None,
            last_progress_ms: now,
            end_ms: None,
            members: Vec::new(),
            auto_requeue: false,
            fail_reason: None,
            starts: 0,
            preemptions: 0,
            queue: accounts[0],
            user_acct: accounts[1],
            queue_acct: accounts[2],
            billing_milli,
            demand,
            order_key: None,
            end_key: None,
        }
    }
}

/// The gang scheduler: a deterministic decision core.
///
/// Build one with [`Scheduler::new`] (or [`Scheduler::create_journal`] /
/// [`Scheduler::open_journal`] for a journaled one), add nodes and queues, submit jobs, and call
/// [`Scheduler::schedule`] whenever something changed (and at [`Scheduler::next_wakeup`]); act on
/// the [`Decision`]s it returns and report back with [`Scheduler::job_started`],
/// [`Scheduler::job_progress`], [`Scheduler::job_completed`] and [`Scheduler::job_failed`].
pub struct Scheduler {
    pub(crate) cfg: SchedulerConfig,
    pub(crate) now: u64,
    pub(crate) cluster: Cluster,
    pub(crate) free: Free,
    /// The eligible nodes by free state (`free` and eligibility), for placement searches.
    pub(crate) index: NodeIndex,
    pub(crate) jobs: Vec<JobEntry>,
    pub(crate) job_index: FxHashMap<JobId, u32>,
    pub(crate) sets: [Vec<u32>; 4],
    pub(crate) quotas: QuotaBook,
    pub(crate) users: FairShare,
    pub(crate) queue_fs: FairShare,
    pub(crate) learner: ProfileLearner,
    pub(crate) outbox: Vec<Decision>,
    pub(crate) stats: SchedulerStats,
    pub(crate) journal: Option<Journal>,
    pub(crate) poisoned: bool,
    /// Request shapes that found no placement. Taking resources never makes them fit; when a
    /// node grows (a job released resources, a node joined or came back) each pass re-checks
    /// them against the grown nodes only.
    pub(crate) no_fit: FxHashSet<Req>,
    /// Nodes that grew since the last re-check, and a flag per node.
    pub(crate) grown: Vec<u32>,
    pub(crate) grown_flag: Vec<bool>,
    /// The queue order kept between passes.
    pub(crate) order: order::OrderCache,
    /// (time limit end, job) of SCHEDULED and RUNNING jobs with a time limit, in end order.
    pub(crate) ends: std::collections::BTreeSet<(u64, u32)>,
    /// Counts of the events that can make a failed preemption search succeed: capacity grew
    /// (resources released, a node joined, a quota changed), a preemptible job started.
    pub(crate) grow_epoch: u64,
    pub(crate) victim_epoch: u64,
    /// (shape, priority, queue) whose preemption search failed, with the epochs it failed at.
    pub(crate) no_preempt: FxHashMap<(Req, i32, usize), (u64, u64)>,
    /// Per request shape of QUEUED jobs: how many, and a lower bound of their time limits (a
    /// pass stops once every shape is known not to fit).
    pub(crate) queued_shapes: FxHashMap<Req, (u32, u64)>,
    /// (time limit, job) of QUEUED jobs (`u64::MAX` without a limit): behind a reservation, a
    /// pass looks up the few jobs short enough to backfill here instead of walking the queue.
    pub(crate) queued_by_limit: std::collections::BTreeSet<(u64, u32)>,
    /// SCHEDULED and RUNNING jobs with their own progress timeout (zombie checks scan only
    /// when there are some, or a default timeout).
    pub(crate) watched: u64,
    /// SCHEDULED and RUNNING jobs that are preemptible (no preemption search without one).
    pub(crate) preemptible_bound: u64,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("now", &self.now)
            .field("nodes", &self.cluster.nodes.len())
            .field("jobs", &self.jobs.len())
            .field("journaled", &self.journal.is_some())
            .finish()
    }
}

impl Scheduler {
    /// An empty scheduler without a journal.
    pub fn new(cfg: SchedulerConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Scheduler {
            users: FairShare::new(cfg.fair_share_half_life_ms),
            queue_fs: FairShare::new(cfg.fair_share_half_life_ms),
            learner: ProfileLearner::new(cfg.profile_half_life),
            cfg,
            now: 0,
            cluster: Cluster::default(),
            free: Free::empty(),
            index: NodeIndex::default(),
            jobs: Vec::new(),
            job_index: FxHashMap::default(),
            sets: Default::default(),
            quotas: QuotaBook::default(),
            outbox: Vec::new(),
            stats: SchedulerStats::default(),
            journal: None,
            poisoned: false,
            no_fit: FxHashSet::default(),
            grown: Vec::new(),
            grown_flag: Vec::new(),
            order: order::OrderCache::default(),
            ends: Default::default(),
            grow_epoch: 0,
            victim_epoch: 0,
            no_preempt: FxHashMap::default(),
            watched: 0,
            preemptible_bound: 0,
            queued_shapes: FxHashMap::default(),
            queued_by_limit: Default::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// The latest `now` the scheduler saw.
    pub fn now(&self) -> u64 {
        self.now
    }

    // ---- calls that change state -----------------------------------------------------------

    /// Adds or replaces a queue. Fails when its admitted jobs would exceed the new limits.
    pub fn set_queue(&mut self, spec: QueueSpec) -> Result<()> {
        self.call(Op::SetQueue { spec }).map(|_| ())
    }

    /// Adds a node (Up, everything free, heartbeat at `now`) and returns its id.
    pub fn add_node(&mut self, spec: NodeSpec, now: u64) -> Result<NodeId> {
        match self.call(Op::AddNode { spec, now })? {
            Outcome::Node(id) => Ok(id),
            _ => Err(Error::Internal("add_node returned no id".into())),
        }
    }

    /// Removes a node: its jobs are requeued (restartable) or failed, reported by the next
    /// [`Scheduler::schedule`].
    pub fn remove_node(&mut self, name: &str, now: u64) -> Result<()> {
        self.call(Op::RemoveNode {
            name: name.into(),
            now,
        })
        .map(|_| ())
    }

    /// Records a node's heartbeat; a Suspect or Down node comes back Up.
    pub fn node_heartbeat(&mut self, name: &str, now: u64) -> Result<()> {
        self.call(Op::Heartbeat {
            name: name.into(),
            now,
        })
        .map(|_| ())
    }

    /// Stops placing new work on a node; running jobs finish.
    pub fn drain_node(&mut self, name: &str, now: u64) -> Result<()> {
        self.call(Op::Drain {
            name: name.into(),
            now,
            on: true,
        })
        .map(|_| ())
    }

    /// Lets a drained node take work again.
    pub fn undrain_node(&mut self, name: &str, now: u64) -> Result<()> {
        self.call(Op::Drain {
            name: name.into(),
            now,
            on: false,
        })
        .map(|_| ())
    }

    /// Submits a job (PENDING; it enters the queue at the next pass).
    pub fn submit(&mut self, spec: JobSpec, now: u64) -> Result<()> {
        self.call(Op::Submit {
            spec: Box::new(spec),
            now,
        })
        .map(|_| ())
    }

    /// Cancels a live job (→ CANCELLED), freeing what it holds. Cancelling a finished job is
    /// [`Error::JobFinished`].
    pub fn cancel(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Cancel { job, now }).map(|_| ())
    }

    /// Changes a live job's priority, preemptibility, restartability or time limit.
    pub fn update(&mut self, job: JobId, update: JobUpdate, now: u64) -> Result<()> {
        self.call(Op::Update { job, update, now }).map(|_| ())
    }

    /// The executor started a SCHEDULED job (→ RUNNING); also its first progress heartbeat.
    pub fn job_started(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Started { job, now }).map(|_| ())
    }

    /// A RUNNING job's progress heartbeat.
    pub fn job_progress(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Progress { job, now }).map(|_| ())
    }

    /// A RUNNING job finished successfully (→ COMPLETED).
    pub fn job_completed(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Completed { job, now }).map(|_| ())
    }

    /// A SCHEDULED or RUNNING job failed (→ FAILED, reason `Reported`).
    pub fn job_failed(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Failed { job, now }).map(|_| ())
    }

    /// Holds a QUEUED or RUNNING job (→ SUSPENDED, resources freed) until
    /// [`Scheduler::resume`].
    pub fn suspend(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Suspend { job, now }).map(|_| ())
    }

    /// Puts a SUSPENDED job back in the queue (→ QUEUED).
    pub fn resume(&mut self, job: JobId, now: u64) -> Result<()> {
        self.call(Op::Resume { job, now }).map(|_| ())
    }

    /// One scheduling pass at `now`: node health, zombies and time limits, requeues, then the
    /// queue in policy order (placement, backfill, preemption). Returns the decisions, in the
    /// order to act on them.
    pub fn schedule(&mut self, now: u64) -> Result<Vec<Decision>> {
        match self.call(Op::Schedule { now, digest: None })? {
            Outcome::Decisions(d) => Ok(d),
            _ => Err(Error::Internal("schedule returned no decisions".into())),
        }
    }

    /// Runs one call: checks, applies, journals.
    fn call(&mut self, op: Op) -> Result<Outcome> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let out = self.exec(&op)?;
        if let Some(j) = self.journal.as_mut() {
            let digest = match &out {
                Outcome::Decisions(d) => Some(crate::journal::decisions_digest(d)),
                _ => None,
            };
            if let Err(e) = j.append(&op, digest) {
                self.poisoned = true;
                return Err(Error::JournalWrite {
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
        Ok(out)
    }

    fn clock(&mut self, now: u64) -> Result<()> {
        if now < self.now {
            return Err(Error::ClockWentBackwards {
                last: self.now,
                now,
            });
        }
        Ok(())
    }

    fn advance(&mut self, now: u64) {
        self.now = now;
        self.users.advance(now);
        self.queue_fs.advance(now);
    }

    pub(crate) fn idx(&self, job: JobId) -> Result<usize> {
        self.job_index
            .get(&job)
            .map(|&i| i as usize)
            .ok_or(Error::UnknownJob(job))
    }

    /// Applies one call to the state (the journal's replay runs exactly this).
    pub(crate) fn exec(&mut self, op: &Op) -> Result<Outcome> {
        if let Some(now) = op.now() {
            self.clock(now)?;
        }
        match op {
            Op::SetQueue { spec } => {
                spec.validate()?;
                self.quotas.set(spec.clone())?;
                self.order.dirty = true;
                self.grow_epoch += 1;
                self.queue_fs.account(&spec.name, spec.weight as f64);
                Ok(Outcome::Unit)
            }
            Op::AddNode { spec, now } => {
                spec.validate()?;
                if self.cluster.id_of(&spec.name).is_ok() {
                    return Err(Error::DuplicateNode(spec.name.clone()));
                }
                self.advance(*now);
                let id = self.cluster.add(spec.clone(), *now, &mut self.free)?;
                self.touch(id.0 as usize);
                self.grown_flag.push(false);
                self.mark_grown(id.0 as usize);
                self.order.dirty = true;
                Ok(Outcome::Node(id))
            }
            Op::RemoveNode { name, now } => {
                let id = self.cluster.id_of(name)?;
                self.advance(*now);
                self.lose_node(id.0 as usize);
                self.order.dirty = true;
                let n = id.0 as usize;
                self.cluster.nodes[n].removed = true;
                self.cluster.by_name.remove(name);
                let info = &self.cluster.nodes[n];
                for g in info.gpu_off..info.gpu_off + info.ngpu {
                    self.free.zero_gpu(n, g);
                }
                self.free.cpu[n] = 0;
                self.free.mem[n] = 0;
                self.cluster.refresh_eligible(n);
                self.touch(n);
                Ok(Outcome::Unit)
            }
            Op::Heartbeat { name, now } => {
                let id = self.cluster.id_of(name)?;
                self.advance(*now);
                let info = &mut self.cluster.nodes[id.0 as usize];
                info.last_heartbeat = *now;
                let back = info.health != Health::Up;
                info.health = Health::Up;
                self.cluster.refresh_eligible(id.0 as usize);
                self.touch(id.0 as usize);
                if back {
                    self.mark_grown(id.0 as usize);
                }
                Ok(Outcome::Unit)
            }
            Op::Drain { name, now, on } => {
                let id = self.cluster.id_of(name)?;
                self.advance(*now);
                self.cluster.nodes[id.0 as usize].draining = *on;
                self.cluster.refresh_eligible(id.0 as usize);
                self.touch(id.0 as usize);
                if !*on {
                    self.mark_grown(id.0 as usize);
                }
                Ok(Outcome::Unit)
            }
            Op::Submit { spec, now } => {
                self.submit_inner(spec, *now)?;
                Ok(Outcome::Unit)
            }
            Op::Cancel { job, now } => {
                let i = self.idx(*job)?;
                let st = self.jobs[i].state;
                st.transition(*job, JobState::Cancelled)?;
                self.advance(*now);
                if st.holds_resources() {
                    self.unbind(i);
                }
                self.finish(i, JobState::Cancelled, None);
                Ok(Outcome::Unit)
            }
            Op::Update { job, update, now } => {
                let i = self.idx(*job)?;
                let st = self.jobs[i].state;
                if st.is_terminal() {
                    return Err(Error::JobFinished {
                        job: *job,
                        state: st,
                    });
                }
                if let Some(t) = update.max_runtime_ms {
                    crate::model::text::check_range(
                        "job.max_runtime_ms",
                        t,
                        1,
                        crate::model::limits::MAX_DURATION_MS,
                    )?;
                }
                self.advance(*now);
                let s = &mut self.jobs[i].spec;
                if let Some(p) = update.priority {
                    s.priority = p;
                }
                if let Some(p) = update.preemptible {
                    if st.holds_resources() && s.preemptible != p {
                        if p {
                            self.preemptible_bound += 1;
                        } else {
                            self.preemptible_bound -= 1;
                        }
                    }
                    s.preemptible = p;
                }
                if let Some(r) = update.restartable {
                    s.restartable = r;
                }
                if let Some(t) = update.max_runtime_ms {
                    let old = s.max_runtime_ms.unwrap_or(u64::MAX);
                    s.max_runtime_ms = Some(t);
                    if st == JobState::Queued {
                        self.queued_by_limit.remove(&(old, i as u32));
                        self.queued_by_limit.insert((t, i as u32));
                    }
                    let req = self.jobs[i].req;
                    if let Some(x) = self.queued_shapes.get_mut(&req) {
                        x.1 = x.1.min(t);
                    }
                }
                self.order.dirty = true;
                self.victim_epoch += 1;
                self.refresh_end(i);
                Ok(Outcome::Unit)
            }
            Op::Started { job, now } => {
                let i = self.idx(*job)?;
                self.jobs[i].state.transition(*job, JobState::Running)?;
                self.advance(*now);
                self.move_to(i, JobState::Running);
                let e = &mut self.jobs[i];
                e.run_start_ms = Some(*now);
                e.last_progress_ms = *now;
                // A running preemptible job is a new preemption candidate.
                if e.spec.preemptible {
                    self.victim_epoch += 1;
                }
                self.refresh_end(i);
                Ok(Outcome::Unit)
            }
            Op::Progress { job, now } => {
                let i = self.idx(*job)?;
                let st = self.jobs[i].state;
                if st != JobState::Running {
                    return Err(if st.is_terminal() {
                        Error::JobFinished {
                            job: *job,
                            state: st,
                        }
                    } else {
                        Error::IllegalTransition {
                            job: *job,
                            from: st,
                            to: JobState::Running,
                        }
                    });
                }
                self.advance(*now);
                self.jobs[i].last_progress_ms = *now;
                Ok(Outcome::Unit)
            }
            Op::Completed { job, now } => {
                let i = self.idx(*job)?;
                self.jobs[i].state.transition(*job, JobState::Completed)?;
                self.advance(*now);
                self.unbind(i);
                self.finish(i, JobState::Completed, None);
                Ok(Outcome::Unit)
            }
            Op::Failed { job, now } => {
                let i = self.idx(*job)?;
                self.jobs[i].state.transition(*job, JobState::Failed)?;
                self.advance(*now);
                self.unbind(i);
                self.finish(i, JobState::Failed, Some(FailReason::Reported));
                Ok(Outcome::Unit)
            }
            Op::Suspend { job, now } => {
                let i = self.idx(*job)?;
                let st = self.jobs[i].state;
                st.transition(*job, JobState::Suspended)?;
                self.advance(*now);
                if st.holds_resources() {
                    self.unbind(i);
                }
                self.move_to(i, JobState::Suspended);
                self.jobs[i].auto_requeue = false;
                Ok(Outcome::Unit)
            }
            Op::Resume { job, now } => {
                let i = self.idx(*job)?;
                self.jobs[i].state.transition(*job, JobState::Queued)?;
                self.advance(*now);
                self.move_to(i, JobState::Queued);
                Ok(Outcome::Unit)
            }
            Op::Schedule { now, .. } => {
                self.advance(*now);
                let d = self.pass(*now);
                self.stats.passes_total += 1;
                self.stats.decisions_total += d.len() as u64;
                Ok(Outcome::Decisions(d))
            }
        }
    }

    fn submit_inner(&mut self, spec: &JobSpec, now: u64) -> Result<()> {
        spec.validate()?;
        if self.job_index.contains_key(&spec.id) {
            return Err(Error::DuplicateJob(spec.id));
        }
        if self.quotas.index(&spec.queue).is_none() && !self.cfg.implicit_queues {
            return Err(Error::UnknownQueue(spec.queue.clone()));
        }
        let req = self
            .cluster
            .compile(&spec.member, spec.gang_size, spec.locality)?;
        self.advance(now);
        let queue = self.quotas.resolve(&spec.queue, true)?;
        let qweight = self.quotas.queues[queue].spec.weight as f64;
        let user_acct = self.users.account(&spec.user, 1.0);
        let queue_acct = self.queue_fs.account(&spec.queue, qweight);
        self.learner.observe(&req, spec.gang_size);
        let idx = self.jobs.len();
        self.jobs.push(JobEntry::new(
            spec.clone(),
            req,
            now,
            [queue, user_acct, queue_acct],
        ));
        self.job_index.insert(spec.id, idx as u32);
        self.set_insert(idx, PENDING);
        Ok(())
    }

    // ---- set bookkeeping ---------------------------------------------------------------------

    fn set_insert(&mut self, i: usize, set: u8) {
        if set == NO_SET {
            self.jobs[i].set = NO_SET;
            return;
        }
        let list = &mut self.sets[set as usize];
        self.jobs[i].set = set;
        self.jobs[i].pos = list.len() as u32;
        list.push(i as u32);
    }

    fn set_remove(&mut self, i: usize) {
        let set = self.jobs[i].set;
        if set == NO_SET {
            return;
        }
        let pos = self.jobs[i].pos as usize;
        let list = &mut self.sets[set as usize];
        list.swap_remove(pos);
        if pos < list.len() {
            let moved = list[pos] as usize;
            self.jobs[moved].pos = pos as u32;
        }
        self.jobs[i].set = NO_SET;
    }

    /// Sets a job's state (already checked against the machine) and its set membership.
    pub(crate) fn move_to(&mut self, i: usize, to: JobState) {
        let from_set = self.jobs[i].set;
        let to_set = set_of(to);
        let from = self.jobs[i].state;
        self.jobs[i].state = to;
        let req = self.jobs[i].req;
        if from != JobState::Queued && to == JobState::Queued {
            let limit = self.jobs[i].spec.max_runtime_ms.unwrap_or(u64::MAX);
            let e = self.queued_shapes.entry(req).or_insert((0, u64::MAX));
            e.0 += 1;
            e.1 = e.1.min(limit);
            self.queued_by_limit.insert((limit, i as u32));
        } else if from == JobState::Queued && to != JobState::Queued {
            let limit = self.jobs[i].spec.max_runtime_ms.unwrap_or(u64::MAX);
            self.queued_by_limit.remove(&(limit, i as u32));
            if let Some(c) = self.queued_shapes.get_mut(&req) {
                c.0 -= 1;
                if c.0 == 0 {
                    self.queued_shapes.remove(&req);
                }
            }
        }
        if to == JobState::Queued {
            self.order.fresh.push(i as u32);
        } else if let Some(k) = self.jobs[i].order_key.take() {
            self.order.remove(k, i as u32);
        }
        if from_set != to_set {
            self.set_remove(i);
            self.set_insert(i, to_set);
        }
    }

    fn finish(&mut self, i: usize, to: JobState, reason: Option<FailReason>) {
        self.move_to(i, to);
        let now = self.now;
        let e = &mut self.jobs[i];
        e.end_ms = Some(now);
        e.fail_reason = reason;
    }

    // ---- resources -----------------------------------------------------------------------------

    /// Takes a placement's resources for job `i` (quota, fair-share rate, free state).
    pub(crate) fn bind(&mut self, i: usize, members: Vec<MemberPlacement>) {
        let req = self.jobs[i].req;
        for m in &members {
            self.free.take(&self.cluster, m, &req);
            self.touch(m.node.0 as usize);
        }
        let e = &mut self.jobs[i];
        e.members = members;
        if e.spec.progress_timeout_ms.is_some() {
            self.watched += 1;
        }
        if e.spec.preemptible {
            self.preemptible_bound += 1;
        }
        let (q, d, b, ua, qa) = (
            e.queue,
            e.demand,
            e.billing_milli,
            e.user_acct,
            e.queue_acct,
        );
        self.quotas.charge(q, d);
        self.users.accounts[ua].rate_milli += b;
        self.queue_fs.accounts[qa].rate_milli += b;
    }

    /// Gives back what job `i` holds.
    pub(crate) fn unbind(&mut self, i: usize) {
        if let Some(t) = self.jobs[i].end_key.take() {
            self.ends.remove(&(t, i as u32));
        }
        let members = std::mem::take(&mut self.jobs[i].members);
        if self.jobs[i].spec.progress_timeout_ms.is_some() {
            self.watched -= 1;
        }
        if self.jobs[i].spec.preemptible {
            self.preemptible_bound -= 1;
        }
        let req = self.jobs[i].req;
        for m in &members {
            let n = m.node.0 as usize;
            if !self.cluster.nodes[n].removed {
                self.free.give(&self.cluster, m, &req);
                self.touch(n);
                self.mark_grown(n);
            }
        }
        let e = &self.jobs[i];
        let (q, d, b, ua, qa) = (
            e.queue,
            e.demand,
            e.billing_milli,
            e.user_acct,
            e.queue_acct,
        );
        self.quotas.release(q, d);
        self.users.accounts[ua].rate_milli -= b;
        self.queue_fs.accounts[qa].rate_milli -= b;
    }

    /// Re-files job `i` in `ends` after its start or limit changed.
    pub(crate) fn refresh_end(&mut self, i: usize) {
        if let Some(t) = self.jobs[i].end_key.take() {
            self.ends.remove(&(t, i as u32));
        }
        let e = &self.jobs[i];
        if !e.state.holds_resources() {
            return;
        }
        if let (Some(limit), Some(start)) = (e.spec.max_runtime_ms, e.run_start_ms.or(e.start_ms)) {
            let t = start.saturating_add(limit);
            self.ends.insert((t, i as u32));
            self.jobs[i].end_key = Some(t);
        }
    }

    /// Brings node `n`'s place in the node index up to date after its free state or its
    /// eligibility changed.
    pub(crate) fn touch(&mut self, n: usize) {
        self.index.touch(&self.cluster, &self.free, n);
    }

    fn mark_grown(&mut self, n: usize) {
        self.grow_epoch += 1;
        if !self.grown_flag[n] {
            self.grown_flag[n] = true;
            self.grown.push(n as u32);
        }
    }

    /// Drops the no-fit shapes that a grown node might now hold (all multi-node shapes when any
    /// node grew).
    pub(crate) fn recheck_no_fit(&mut self) {
        if self.grown.is_empty() {
            return;
        }
        let grown = std::mem::take(&mut self.grown);
        for &n in &grown {
            self.grown_flag[n as usize] = false;
        }
        let (cl, free) = (&self.cluster, &self.free);
        self.no_fit.retain(|req| {
            let one_node =
                req.gang == 1 || matches!(req.locality, Locality::SameNode | Locality::SameIsland);
            one_node
                && grown
                    .iter()
                    .all(|&n| member_cap(cl, free, n as usize, req, req.gang) < req.gang)
        });
    }

    /// Requeues or fails every job with a member on node `n` (the node is lost).
    pub(crate) fn lose_node(&mut self, n: usize) {
        let victims: Vec<usize> = self.sets[ACTIVE as usize]
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| self.jobs[i].members.iter().any(|m| m.node.0 as usize == n))
            .collect();
        let mut victims = victims;
        victims.sort_unstable();
        for i in victims {
            let restart = self.jobs[i].spec.restartable;
            self.stop_job(i, restart, RequeueReason::NodeLost, FailReason::NodeLost);
        }
    }

    /// Stops a SCHEDULED or RUNNING job that died: back to the queue when `restart`, else
    /// failed. Records the decision in the outbox.
    pub(crate) fn stop_job(&mut self, i: usize, restart: bool, rq: RequeueReason, fr: FailReason) {
        let job = self.jobs[i].spec.id;
        let st = self.jobs[i].state;
        self.unbind(i);
        if restart {
            if st == JobState::Running {
                self.move_to(i, JobState::Suspended);
            }
            self.move_to(i, JobState::Queued);
            self.jobs[i].auto_requeue = false;
            self.stats.requeues_total += 1;
            self.outbox.push(Decision::Requeue { job, reason: rq });
        } else {
            self.finish(i, JobState::Failed, Some(fr));
            self.outbox.push(Decision::Fail { job, reason: fr });
        }
    }

    // ---- queries -------------------------------------------------------------------------------

    /// A job's current view.
    pub fn job(&self, job: JobId) -> Option<JobView<'_>> {
        let i = *self.job_index.get(&job)? as usize;
        Some(self.view(i))
    }

    fn view(&self, i: usize) -> JobView<'_> {
        let e = &self.jobs[i];
        JobView {
            spec: &e.spec,
            state: e.state,
            submit_ms: e.submit_ms,
            start_ms: e.start_ms,
            end_ms: e.end_ms,
            members: &e.members,
            fail_reason: e.fail_reason,
            starts: e.starts,
            preemptions: e.preemptions,
        }
    }

    /// Every job ever submitted, in submission order.
    pub fn jobs(&self) -> impl Iterator<Item = JobView<'_>> {
        (0..self.jobs.len()).map(|i| self.view(i))
    }

    /// The jobs in one state, in submission order.
    pub fn jobs_in(&self, state: JobState) -> Vec<JobId> {
        let set = set_of(state);
        let mut v: Vec<u32> = if set == NO_SET {
            (0..self.jobs.len() as u32)
                .filter(|&i| self.jobs[i as usize].state == state)
                .collect()
        } else {
            self.sets[set as usize]
                .iter()
                .copied()
                .filter(|&i| self.jobs[i as usize].state == state)
                .collect()
        };
        v.sort_unstable();
        v.into_iter()
            .map(|i| self.jobs[i as usize].spec.id)
            .collect()
    }

    /// A live node's id.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.cluster.id_of(name).ok()
    }

    /// A node's name (also of a removed node).
    pub fn node_name(&self, id: NodeId) -> Option<&str> {
        self.cluster
            .nodes
            .get(id.0 as usize)
            .map(|n| n.spec.name.as_str())
    }

    /// A live node's view.
    pub fn node(&self, id: NodeId) -> Option<NodeView<'_>> {
        let n = id.0 as usize;
        let info = self.cluster.nodes.get(n)?;
        if info.removed {
            return None;
        }
        Some(NodeView {
            id,
            spec: &info.spec,
            state: info.state(),
            last_heartbeat_ms: info.last_heartbeat,
            free_gpu_milli: &self.free.gpu[info.gpu_off..info.gpu_off + info.ngpu],
            free_cpu_milli: self.free.cpu[n],
            free_memory_mib: self.free.mem[n],
        })
    }

    /// Every live node, by id.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        (0..self.cluster.nodes.len()).filter_map(|n| self.node(NodeId(n as u32)))
    }

    /// Counters and gauges.
    pub fn stats(&self) -> SchedulerStats {
        let mut s = self.stats;
        s.jobs = [0; 8];
        for e in &self.jobs {
            s.jobs[e.state as usize] += 1;
        }
        s.gpus_total = self.cluster.total_gpus();
        s.gpu_free_milli = (0..self.cluster.nodes.len())
            .filter(|&n| self.cluster.eligible[n])
            .map(|n| self.free.node_gpu_milli(n))
            .sum();
        s
    }

    /// TEST_ONLY: could `spec` start now? A placement it could get on the current free
    /// resources (ignoring the jobs queued ahead of it; a pass may choose other GPUs, e.g. by
    /// FGD), or `None` when it does not fit now or its queue's quota does not admit it. Changes
    /// nothing.
    pub fn test_only(&self, spec: &JobSpec) -> Result<Option<Vec<MemberPlacement>>> {
        spec.validate()?;
        let Some(req) = self.lookup_req(spec) else {
            return Ok(None);
        };
        if let Some(q) = self.quotas.index(&spec.queue) {
            let gang = spec.gang_size as u64;
            let demand = [
                spec.gpu_demand_milli(),
                spec.member.cpu_milli * gang,
                spec.member.memory_mib * gang,
            ];
            if !self.quotas.admits(q, demand, &[]) {
                return Ok(None);
            }
        } else if !self.cfg.implicit_queues {
            return Err(Error::UnknownQueue(spec.queue.clone()));
        }
        Ok(placement::place(
            &self.cluster,
            &self.free,
            &req,
            self.cfg.policy.placement,
            None,
            Some(&self.index),
        ))
    }

    /// WILL_RUN: when `spec` would start if it were queued now, or `None` when it never fits
    /// on the current nodes (or jobs without a time limit hold what it needs for good).
    ///
    /// The estimate plans the queue: running jobs end at their time limits, the queued jobs
    /// ahead of `spec` start first, in queue order, each as early as it fits after the one
    /// before it (and ends at its own limit), and then `spec` does. Ahead of a new job are the
    /// queued jobs of its priority tier or above (multifactor; a new job's age is 0), all of
    /// them (FIFO), or those with a time limit no longer than its own (shortest first). EASY
    /// backfill can start a job before this time, never later than it for the same calls.
    /// `Some(now)` when it would start at once. Changes nothing; the cost grows with the queue
    /// ahead times the running jobs' end times.
    pub fn will_run(&self, spec: &JobSpec) -> Result<Option<u64>> {
        spec.validate()?;
        let Some(req) = self.lookup_req(spec) else {
            return Ok(None);
        };
        let limit = spec.max_runtime_ms.unwrap_or(u64::MAX);
        let ahead: Vec<u32> = self
            .queue_in_order()
            .into_iter()
            .filter(|&i| {
                let e = &self.jobs[i as usize];
                match self.cfg.policy.order {
                    crate::priority::QueueOrder::Fifo => true,
                    crate::priority::QueueOrder::ShortestFirst => {
                        e.spec.max_runtime_ms.unwrap_or(u64::MAX) <= limit
                    }
                    crate::priority::QueueOrder::Multifactor => e.spec.priority >= spec.priority,
                }
            })
            .collect();
        Ok(self.plan_start(&ahead, &req, self.now))
    }

    /// The QUEUED jobs in queue order (as of the last pass; jobs queued since come last).
    fn queue_in_order(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.sets[QUEUED as usize].len());
        let mut walk = self.order.walk();
        while let Some(i) = walk.next(&self.order) {
            out.push(i);
        }
        let mut fresh: Vec<u32> = self.sets[QUEUED as usize]
            .iter()
            .copied()
            .filter(|&i| self.jobs[i as usize].order_key.is_none())
            .collect();
        fresh.sort_unstable();
        out.extend(fresh);
        out
    }

    /// When `req` starts if the jobs `ahead` (queued, in order) start before it, one after the
    /// other, each as soon as it fits (see [`Scheduler::will_run`]).
    fn plan_start(&self, ahead: &[u32], req: &Req, now: u64) -> Option<u64> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        /// A planned job's members and request, released at its end.
        type Planned = (Vec<MemberPlacement>, Req);
        #[derive(Clone)]
        struct Sim {
            free: Free,
            /// (time, event): events below `running` are `ends` entries, the rest planned jobs.
            events: BinaryHeap<Reverse<(u64, usize)>>,
            t: u64,
        }
        let pol = self.cfg.policy.placement;
        let running: Vec<u32> = self.ends.iter().map(|&(_, i)| i).collect();
        let mut planned: Vec<Planned> = Vec::new();
        let mut sim = Sim {
            free: self.free.clone(),
            events: self
                .ends
                .iter()
                .enumerate()
                .map(|(k, &(t, _))| Reverse((t.max(now), k)))
                .collect(),
            t: now,
        };
        let release = |sim: &mut Sim, planned: &[Planned], ev: usize| {
            if ev < running.len() {
                let e = &self.jobs[running[ev] as usize];
                for m in &e.members {
                    sim.free.give(&self.cluster, m, &e.req);
                }
            } else {
                let (members, r) = &planned[ev - running.len()];
                for m in members {
                    sim.free.give(&self.cluster, m, r);
                }
            }
        };
        // The earliest time (>= sim.t) `r` fits, releasing ends as time advances.
        let fit = |sim: &mut Sim, planned: &[Planned], r: &Req| -> Option<Vec<MemberPlacement>> {
            loop {
                if let Some(p) = placement::place(&self.cluster, &sim.free, r, pol, None, None) {
                    return Some(p);
                }
                let Reverse((t, _)) = *sim.events.peek()?;
                while let Some(&Reverse((u, ev))) = sim.events.peek() {
                    if u != t {
                        break;
                    }
                    sim.events.pop();
                    release(sim, planned, ev);
                }
                sim.t = sim.t.max(t);
            }
        };
        for &i in ahead {
            let e = &self.jobs[i as usize];
            // A job that never fits is passed over: plan it on a copy.
            let mut trial = sim.clone();
            let Some(p) = fit(&mut trial, &planned, &e.req) else {
                continue;
            };
            sim = trial;
            for m in &p {
                sim.free.take(&self.cluster, m, &e.req);
            }
            if let Some(limit) = e.spec.max_runtime_ms {
                let ev = running.len() + planned.len();
                sim.events.push(Reverse((sim.t.saturating_add(limit), ev)));
                planned.push((p, e.req));
            }
        }
        fit(&mut sim, &planned, req).map(|_| sim.t)
    }

    /// TEST_ONLY for a submitted job (see [`Scheduler::test_only`]).
    pub fn test_only_job(&self, job: JobId) -> Result<Option<Vec<MemberPlacement>>> {
        let i = self.idx(job)?;
        self.test_only(&self.jobs[i].spec)
    }

    /// WILL_RUN for a submitted job (see [`Scheduler::will_run`]): its start time when it
    /// holds resources; for a QUEUED job, the jobs ahead of it are those before it in the
    /// queue order.
    pub fn will_run_job(&self, job: JobId) -> Result<Option<u64>> {
        let i = self.idx(job)?;
        let e = &self.jobs[i];
        if e.state.holds_resources() {
            return Ok(e.start_ms);
        }
        if e.state.is_terminal() {
            return Err(Error::JobFinished {
                job,
                state: e.state,
            });
        }
        if e.state == JobState::Queued {
            let order = self.queue_in_order();
            if let Some(pos) = order.iter().position(|&x| x as usize == i) {
                return Ok(self.plan_start(&order[..pos], &e.req, self.now));
            }
        }
        self.will_run(&e.spec)
    }

    fn lookup_req(&self, spec: &JobSpec) -> Option<Req> {
        let mut mask = 0u64;
        for t in &spec.member.gpu_types {
            if let Some(i) = self.cluster.types.iter().position(|x| x == t) {
                mask |= 1u64 << i;
            }
        }
        if !spec.member.gpu_types.is_empty() && mask == 0 {
            return None;
        }
        Some(Req {
            gpus: spec.member.gpus,
            milli: spec.member.gpu_milli,
            type_mask: mask,
            cpu: spec.member.cpu_milli,
            mem: spec.member.memory_mib,
            gang: spec.gang_size,
            locality: spec.locality,
        })
    }

    /// The earliest time running jobs' time limits free enough for `req`, and the placement it
    /// would get then.
    pub(crate) fn earliest_start(
        &self,
        req: &Req,
        now: u64,
    ) -> Option<(u64, Vec<MemberPlacement>)> {
        let pol = self.cfg.policy.placement;
        if let Some(p) =
            placement::place(&self.cluster, &self.free, req, pol, None, Some(&self.index))
        {
            return Some((now, p));
        }
        // Already in end order; a job past its limit counts as ending now.
        let ends: Vec<(u64, u32)> = self.ends.iter().map(|&(t, i)| (t.max(now), i)).collect();
        if ends.is_empty() {
            return None;
        }
        // Release the running jobs in the order they end, tracking how many members fit on
        // each node; run the full placement only when the capacities allow it, once per end
        // time.
        let single =
            req.gang == 1 || matches!(req.locality, Locality::SameNode | Locality::SameIsland);
        let spread = req.locality == Locality::Spread && req.gang > 1;
        let mut f = self.free.clone();
        let nn = self.cluster.nodes.len();
        // Nodes outside the index's candidates hold no member now.
        let mut caps: Vec<u32> = vec![0; nn];
        let (mut sum, mut max, mut nonzero) = (0u64, 0u32, 0u64);
        for n in self.index.candidates(req).iter() {
            let c = member_cap(&self.cluster, &f, n, req, req.gang);
            caps[n] = c;
            sum += c as u64;
            max = max.max(c);
            nonzero += (c > 0) as u64;
        }
        for k in 0..ends.len() {
            let e = &self.jobs[ends[k].1 as usize];
            for m in &e.members {
                let n = m.node.0 as usize;
                f.give(&self.cluster, m, &e.req);
                let c = member_cap(&self.cluster, &f, n, req, req.gang);
                sum = sum - caps[n] as u64 + c as u64;
                if caps[n] == 0 && c > 0 {
                    nonzero += 1;
                }
                caps[n] = c;
                max = max.max(c);
            }
            if k + 1 < ends.len() && ends[k + 1].0 == ends[k].0 {
                continue;
            }
            let possible = if single {
                max >= req.gang
            } else if spread {
                nonzero >= req.gang as u64
            } else {
                sum >= req.gang as u64
            };
            if possible {
                if let Some(p) = placement::place(&self.cluster, &f, req, pol, None, None) {
                    return Some((ends[k].0, p));
                }
            }
        }
        None
    }

    /// The earliest time at which a pass could do something new (a requeue, a time limit, a
    /// node or zombie deadline); `None` when only new calls can change anything. A simulator or
    /// event loop calls [`Scheduler::schedule`] then.
    pub fn next_wakeup(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut at = |x: u64| t = Some(t.map_or(x, |y: u64| y.min(x)));
        if !self.outbox.is_empty() || !self.sets[PENDING as usize].is_empty() {
            at(self.now);
        }
        for &i in &self.sets[SUSPENDED as usize] {
            if self.jobs[i as usize].auto_requeue {
                at(self.now);
                break;
            }
        }
        for &i in &self.sets[ACTIVE as usize] {
            let e = &self.jobs[i as usize];
            if e.state != JobState::Running {
                continue;
            }
            if let (Some(limit), Some(s)) = (e.spec.max_runtime_ms, e.run_start_ms) {
                at(s + limit + 1);
            }
            if let Some(z) = e.spec.progress_timeout_ms.or(self.cfg.zombie_timeout_ms) {
                at(e.last_progress_ms + z + 1);
            }
        }
        if let Some(s) = self.cfg.node_suspect_after_ms {
            for n in &self.cluster.nodes {
                if n.removed || n.health == Health::Down {
                    continue;
                }
                if n.health == Health::Up {
                    at(n.last_heartbeat + s + 1);
                }
                if let Some(d) = self.cfg.node_down_after_ms {
                    at(n.last_heartbeat + d + 1);
                }
            }
        }
        t
    }

    /// Checks every invariant (see [`crate::invariants`]); `Err` describes the first broken one.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        crate::invariants::check(self)
    }

    /// A canonical text of the whole state (jobs, nodes, free resources, quotas, fair share),
    /// equal for two schedulers exactly when their state is equal. Tests compare a restored
    /// scheduler with the original through it.
    pub fn state_digest(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "now {}", self.now);
        for e in &self.jobs {
            let _ = writeln!(
                s,
                "job {} {} submit={} start={:?} run={:?} end={:?} fail={:?} starts={} pre={} auto={} members={:?} prio={} pe={} rs={} limit={:?}",
                e.spec.id,
                e.state,
                e.submit_ms,
                e.start_ms,
                e.run_start_ms,
                e.end_ms,
                e.fail_reason,
                e.starts,
                e.preemptions,
                e.auto_requeue,
                e.members,
                e.spec.priority,
                e.spec.preemptible,
                e.spec.restartable,
                e.spec.max_runtime_ms
            );
        }
        for (i, n) in self.cluster.nodes.iter().enumerate() {
            let _ = writeln!(
                s,
                "node {} {} removed={} state={} hb={} cpu={} mem={}",
                i,
                n.spec.name,
                n.removed,
                n.state(),
                n.last_heartbeat,
                self.free.cpu[i],
                self.free.mem[i]
            );
        }
        let _ = writeln!(s, "gpus {:?}", self.free.gpu);
        for q in &self.quotas.queues {
            let _ = writeln!(s, "queue {} {:?}", q.spec.name, q.usage);
        }
        for a in self.users.accounts.iter().chain(&self.queue_fs.accounts) {
            let _ = writeln!(s, "acct {:016x} {}", a.usage.to_bits(), a.rate_milli);
        }
        let _ = writeln!(s, "outbox {:?}", self.outbox);
        let _ = writeln!(s, "stats {:?}", self.stats);
        s
    }
}
