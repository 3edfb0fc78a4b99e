//! What a scheduling pass tells the executor to do.

use std::fmt;

use crate::model::{JobId, NodeId};

/// One GPU, or a share of one, granted to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpuGrant {
    /// The GPU's index on its node (its position in [`crate::NodeSpec::gpus`]).
    pub index: u16,
    /// Milli-GPUs granted: 1000 for a whole GPU, less for a share.
    pub milli: u16,
}

/// Where one gang member runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberPlacement {
    /// The node ([`crate::Scheduler::node_name`] gives its name).
    pub node: NodeId,
    /// Its GPUs (empty for a CPU-only member), by index.
    pub gpus: Vec<GpuGrant>,
}

/// Why a job was requeued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequeueReason {
    /// It was preempted earlier and now waits again.
    Preempted,
    /// A node it ran on (or was placed on) went down or was removed.
    NodeLost,
    /// Its progress heartbeat stopped (a zombie).
    Zombie,
}

impl RequeueReason {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequeueReason::Preempted => "preempted",
            RequeueReason::NodeLost => "node-lost",
            RequeueReason::Zombie => "zombie",
        }
    }
}

/// Why a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// It ran past its time limit.
    TimeLimit,
    /// A node it ran on went down or was removed, and it is not restartable.
    NodeLost,
    /// Its progress heartbeat stopped, and it is not restartable.
    Zombie,
    /// The executor reported a failure ([`crate::Scheduler::job_failed`]).
    Reported,
}

impl FailReason {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::TimeLimit => "time-limit",
            FailReason::NodeLost => "node-lost",
            FailReason::Zombie => "zombie",
            FailReason::Reported => "reported",
        }
    }
}

/// One decision of a scheduling pass. Act on them in order: a `Preempt` comes before the `Start`
/// that uses the resources it frees.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Start the job's members where given (QUEUED → SCHEDULED). Confirm with
    /// [`crate::Scheduler::job_started`] once they run.
    Start {
        /// The job.
        job: JobId,
        /// One entry per gang member, in member order.
        members: Vec<MemberPlacement>,
    },
    /// Stop the job now (RUNNING → SUSPENDED): a higher-priority job needs its resources, which
    /// are already counted as free. It is requeued by a later pass (a `Requeue` decision).
    Preempt {
        /// The job to stop.
        job: JobId,
        /// The job it makes room for.
        by: JobId,
    },
    /// The job is back in the queue (SUSPENDED → QUEUED, or SCHEDULED → QUEUED when its node
    /// was lost before it started). For `NodeLost` and `Zombie`, stop whatever is left of it.
    Requeue {
        /// The job.
        job: JobId,
        /// Why.
        reason: RequeueReason,
    },
    /// The job failed (→ FAILED); stop whatever is left of it.
    Fail {
        /// The job.
        job: JobId,
        /// Why.
        reason: FailReason,
    },
}

impl Decision {
    /// The job the decision is about.
    pub fn job(&self) -> JobId {
        match self {
            Decision::Start { job, .. }
            | Decision::Preempt { job, .. }
            | Decision::Requeue { job, .. }
            | Decision::Fail { job, .. } => *job,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Start { job, members } => {
                write!(f, "start {job}")?;
                for m in members {
                    write!(f, " {}:", m.node.0)?;
                    for (i, g) in m.gpus.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        if g.milli == 1000 {
                            write!(f, "{}", g.index)?;
                        } else {
                            write!(f, "{}@{}", g.index, g.milli)?;
                        }
                    }
                }
                Ok(())
            }
            Decision::Preempt { job, by } => write!(f, "preempt {job} by {by}"),
            Decision::Requeue { job, reason } => write!(f, "requeue {job} {}", reason.as_str()),
            Decision::Fail { job, reason } => write!(f, "fail {job} {}", reason.as_str()),
        }
    }
}
