//! The job state machine.
//!
//! ```text
//! PENDING ──> QUEUED ──> SCHEDULED ──> RUNNING ──> COMPLETED | FAILED | CANCELLED
//!               │  ^          │           │
//!               │  └──────────┘ (unbind)  │
//!               v                         v
//!           SUSPENDED <───────────────────┘   (preemption, zombie, lost node, user hold)
//!               │
//!               └──> QUEUED (requeue)
//! ```
//!
//! Exactly the seeds' machine: PENDING → QUEUED → SCHEDULED → RUNNING → COMPLETED / FAILED /
//! CANCELLED; QUEUED or RUNNING → SUSPENDED; SUSPENDED → QUEUED. Around it, only what a caller
//! cannot do without:
//! - CANCELLED from every live state (a user cancels a job wherever it is);
//! - SCHEDULED → FAILED (the executor could not launch it, or its node died and the job is not
//!   restartable);
//! - SCHEDULED → QUEUED ("unbind"): the node of a job that was placed but had not started died;
//!   nothing ran, so the job goes back to the queue as it was.
//!
//! Every other transition is [`crate::Error::IllegalTransition`].

use std::fmt;

use crate::error::{Error, Result};
use crate::model::JobId;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Submitted; enters the queue at the next scheduling pass.
    Pending,
    /// Waiting for quota and a placement.
    Queued,
    /// Placed: resources are bound; the executor has not confirmed the start yet.
    Scheduled,
    /// Running.
    Running,
    /// Stopped by preemption, a lost node, a zombie check or the user; holds no resources.
    Suspended,
    /// Finished successfully (terminal).
    Completed,
    /// Finished with an error, hit its time limit, or was lost (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
}

impl JobState {
    /// Every state, in declaration order.
    pub const ALL: [JobState; 8] = [
        JobState::Pending,
        JobState::Queued,
        JobState::Scheduled,
        JobState::Running,
        JobState::Suspended,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The upper-case name (`PENDING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Queued => "QUEUED",
            JobState::Scheduled => "SCHEDULED",
            JobState::Running => "RUNNING",
            JobState::Suspended => "SUSPENDED",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
        }
    }

    /// The inverse of [`JobState::as_str`].
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the job has finished (COMPLETED, FAILED or CANCELLED).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether the job holds resources (SCHEDULED or RUNNING).
    pub fn holds_resources(self) -> bool {
        matches!(self, JobState::Scheduled | JobState::Running)
    }

    /// Whether the machine allows `self → to`.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Pending, Queued)
                | (Pending, Cancelled)
                | (Queued, Scheduled)
                | (Queued, Suspended)
                | (Queued, Cancelled)
                | (Scheduled, Running)
                | (Scheduled, Queued)
                | (Scheduled, Failed)
                | (Scheduled, Cancelled)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Running, Suspended)
                | (Suspended, Queued)
                | (Suspended, Cancelled)
        )
    }

    /// `Ok(to)` if the transition is allowed, else the error naming it.
    pub fn transition(self, job: JobId, to: JobState) -> Result<JobState> {
        if self.can_become(to) {
            Ok(to)
        } else if self.is_terminal() {
            Err(Error::JobFinished { job, state: self })
        } else {
            Err(Error::IllegalTransition {
                job,
                from: self,
                to,
            })
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::*;
    use super::*;

    #[test]
    fn the_transition_table_is_exactly_the_documented_one() {
        let allowed = [
            (Pending, Queued),
            (Pending, Cancelled),
            (Queued, Scheduled),
            (Queued, Suspended),
            (Queued, Cancelled),
            (Scheduled, Running),
            (Scheduled, Queued),
            (Scheduled, Failed),
            (Scheduled, Cancelled),
            (Running, Completed),
            (Running, Failed),
            (Running, Cancelled),
            (Running, Suspended),
            (Suspended, Queued),
            (Suspended, Cancelled),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                let expect = allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expect, "{from} -> {to}");
                let r = from.transition(JobId(9), to);
                if expect {
                    assert_eq!(r, Ok(to));
                } else if from.is_terminal() {
                    assert_eq!(
                        r,
                        Err(Error::JobFinished {
                            job: JobId(9),
                            state: from
                        })
                    );
                } else {
                    assert_eq!(
                        r,
                        Err(Error::IllegalTransition {
                            job: JobId(9),
                            from,
                            to
                        })
                    );
                }
            }
        }
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
    }
}
