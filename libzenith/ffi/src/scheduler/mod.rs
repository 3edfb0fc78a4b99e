//! `zenith_scheduler_*`: the C ABI of the gang scheduler ([`zenith_scheduler`]), one file per
//! handle family.
//!
//! - [`options`]: `zenith_scheduler_options`, the policy and journal of a new scheduler;
//! - [`job_spec`], [`node_spec`]: builder handles for what is submitted and added;
//! - [`handle`]: `zenith_scheduler` itself (new, restore, free, schedule, stats);
//! - [`nodes`], [`jobs`]: the calls that change nodes and jobs, and the executor's reports;
//! - [`decisions`]: the `zenith_scheduler_decisions` a pass (or a TEST_ONLY query) returns,
//!   iterated with accessors;
//! - [`queries`]: job state, TEST_ONLY, WILL_RUN;
//! - [`queue_spec`]: queues with quotas (nominal, borrowing, lending, cohorts);
//! - [`metrics`]: the Prometheus series the handles feed.
//!
//! Time is injected: every call that depends on time takes `now_ms` (milliseconds on any clock
//! the caller likes, never decreasing), so the same calls give the same decisions and the
//! journal replays them.
//!
//! Errors of the scheduler map to statuses by kind: invalid specs and arguments
//! `ZENITH_ERR_INVALID_ARGUMENT`, unknown jobs, nodes and queues `ZENITH_ERR_NOT_FOUND`,
//! duplicates `ZENITH_ERR_ALREADY_EXISTS`, calls the state does not allow
//! `ZENITH_ERR_INVALID_STATE`, journal I/O `ZENITH_ERR_IO`, a corrupt journal
//! `ZENITH_ERR_FORMAT`. A failed call leaves the scheduler as it was.

pub mod decisions;
pub mod handle;
pub mod job_spec;
pub mod jobs;
pub mod metrics;
pub mod node_spec;
pub mod nodes;
pub mod options;
pub mod queries;
pub mod queue_spec;

use std::ffi::{CStr, c_char};

use crate::boundary::Reportable;
use crate::status::{
    ZENITH_ERR_ALREADY_EXISTS, ZENITH_ERR_FORMAT, ZENITH_ERR_INTERNAL, ZENITH_ERR_INVALID_ARGUMENT,
    ZENITH_ERR_INVALID_STATE, ZENITH_ERR_IO, ZENITH_ERR_NOT_FOUND, zenith_status,
};
use zenith_scheduler::ErrorKind;

/// What a scheduler call can fail with: an argument error of the C layer (NULL, bad UTF-8, a
/// small buffer) or an error of the scheduler.
#[derive(Debug)]
pub enum Failure {
    /// An error of the C layer.
    Core(zenith_core::Error),
    /// An error of the scheduler.
    Scheduler(zenith_scheduler::Error),
}

impl From<zenith_core::Error> for Failure {
    fn from(e: zenith_core::Error) -> Self {
        Failure::Core(e)
    }
}

impl From<zenith_scheduler::Error> for Failure {
    fn from(e: zenith_scheduler::Error) -> Self {
        Failure::Scheduler(e)
    }
}

/// The status a scheduler error is reported as.
pub fn scheduler_status(e: &zenith_scheduler::Error) -> zenith_status {
    match e.kind() {
        ErrorKind::InvalidArgument => ZENITH_ERR_INVALID_ARGUMENT,
        ErrorKind::NotFound => ZENITH_ERR_NOT_FOUND,
        ErrorKind::AlreadyExists => ZENITH_ERR_ALREADY_EXISTS,
        ErrorKind::InvalidState => ZENITH_ERR_INVALID_STATE,
        ErrorKind::Io => ZENITH_ERR_IO,
        ErrorKind::Format => ZENITH_ERR_FORMAT,
        // `Internal`, and kinds added to the scheduler after this ABI version.
        _ => ZENITH_ERR_INTERNAL,
    }
}

impl Reportable for Failure {
    fn status(&self) -> zenith_status {
        match self {
            Failure::Core(e) => e.status(),
            Failure::Scheduler(e) => scheduler_status(e),
        }
    }
    fn message(&self) -> String {
        match self {
            Failure::Core(e) => e.to_string(),
            Failure::Scheduler(e) => e.to_string(),
        }
    }
    fn from_panic(message: String) -> Self {
        Failure::Core(zenith_core::Error::Panic(message))
    }
}

/// Result of the scheduler's C functions.
pub type FfiResult<T> = std::result::Result<T, Failure>;

/// A NUL-terminated UTF-8 string for the field `field`: NULL is `ZENITH_ERR_NULL_ARGUMENT`
/// naming `arg`, bad UTF-8 is the scheduler's invalid-field error naming `field`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a` unchanged.
pub(crate) unsafe fn text<'a>(
    ptr: *const c_char,
    arg: &'static str,
    field: &str,
) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(zenith_core::Error::NullArgument(arg).into());
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    Ok(zenith_scheduler::model::text::utf8(field, bytes)?)
}

/// An `InvalidArgument` failure with this message.
pub(crate) fn invalid(message: impl Into<String>) -> Failure {
    Failure::Core(zenith_core::Error::InvalidArgument(message.into()))
}

/// A job's state as C sees it (one of the `ZENITH_JOB_*` values).
pub type zenith_job_state = i32;

/// Submitted; enters the queue at the next scheduling pass.
pub const ZENITH_JOB_PENDING: zenith_job_state = 0;
/// Waiting for quota and a placement.
pub const ZENITH_JOB_QUEUED: zenith_job_state = 1;
/// Placed; the executor has not confirmed the start (`zenith_scheduler_job_started`).
pub const ZENITH_JOB_SCHEDULED: zenith_job_state = 2;
/// Running.
pub const ZENITH_JOB_RUNNING: zenith_job_state = 3;
/// Stopped by preemption, a lost node, a zombie check or the user; holds no resources.
pub const ZENITH_JOB_SUSPENDED: zenith_job_state = 4;
/// Finished successfully.
pub const ZENITH_JOB_COMPLETED: zenith_job_state = 5;
/// Failed, hit its time limit, or was lost.
pub const ZENITH_JOB_FAILED: zenith_job_state = 6;
/// Cancelled.
pub const ZENITH_JOB_CANCELLED: zenith_job_state = 7;

/// The C value of a job state.
pub(crate) fn job_state_to_c(s: zenith_scheduler::JobState) -> zenith_job_state {
    use zenith_scheduler::JobState as S;
    match s {
        S::Pending => ZENITH_JOB_PENDING,
        S::Queued => ZENITH_JOB_QUEUED,
        S::Scheduled => ZENITH_JOB_SCHEDULED,
        S::Running => ZENITH_JOB_RUNNING,
        S::Suspended => ZENITH_JOB_SUSPENDED,
        S::Completed => ZENITH_JOB_COMPLETED,
        S::Failed => ZENITH_JOB_FAILED,
        S::Cancelled => ZENITH_JOB_CANCELLED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zenith_scheduler::JobState;

    #[test]
    fn job_states_match_the_core_order() {
        for (i, s) in JobState::ALL.into_iter().enumerate() {
            assert_eq!(job_state_to_c(s), i as i32, "{}", s.as_str());
        }
    }

    #[test]
    fn every_scheduler_error_kind_has_its_status() {
        use zenith_scheduler::{Error, JobId};
        assert_eq!(
            scheduler_status(&Error::DuplicateJob(JobId(1))),
            ZENITH_ERR_ALREADY_EXISTS
        );
        assert_eq!(
            scheduler_status(&Error::UnknownNode("n".into())),
            ZENITH_ERR_NOT_FOUND
        );
        assert_eq!(scheduler_status(&Error::Poisoned), ZENITH_ERR_INVALID_STATE);
    }
}
