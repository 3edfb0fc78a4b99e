//! Job calls on a `zenith_scheduler`: submit, cancel, update, suspend and resume, and the
//! executor's reports (started, progress, completed, failed).

use super::handle::{apply, zenith_scheduler};
use super::job_spec::zenith_job_spec;
use super::{Failure, invalid};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use ::zenith_scheduler::{JobId, JobUpdate};

/// Submits the job described by `spec` at `now_ms` (PENDING; it enters the queue at the next
/// pass).
///
/// Ownership: `spec` stays the caller's (the scheduler copies it).
/// On failure: an invalid spec `ZENITH_ERR_INVALID_ARGUMENT` (the message names the field), an
/// id already used `ZENITH_ERR_ALREADY_EXISTS`, an unknown queue (without implicit queues)
/// `ZENITH_ERR_NOT_FOUND`, an earlier `now_ms` than seen `ZENITH_ERR_INVALID_STATE`; nothing
/// changes.
/// NULL policy: `s` and `spec` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `spec` is NULL or a live job spec; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_submit(
    s: *mut zenith_scheduler,
    spec: *const zenith_job_spec,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { args::borrow(spec, "spec") }?.spec.clone();
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.submit(spec, now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Fields of `zenith_scheduler_update` to change (bits, or-ed together).
pub type zenith_job_update_fields = u32;
/// Change the priority tier.
pub const ZENITH_JOB_UPDATE_PRIORITY: zenith_job_update_fields = 1;
/// Change preemptibility.
pub const ZENITH_JOB_UPDATE_PREEMPTIBLE: zenith_job_update_fields = 2;
/// Change restartability.
pub const ZENITH_JOB_UPDATE_RESTARTABLE: zenith_job_update_fields = 4;
/// Change the time limit.
pub const ZENITH_JOB_UPDATE_MAX_RUNTIME: zenith_job_update_fields = 8;

/// Changes a live job's policy at `now_ms`: the fields named by the `fields` bits
/// (`ZENITH_JOB_UPDATE_*`) take the values given; the others are ignored. `max_runtime_ms` 0
/// is refused (a limit cannot be removed from a live job).
///
/// On failure: unknown bits or a value out of range `ZENITH_ERR_INVALID_ARGUMENT`, an unknown job
/// `ZENITH_ERR_NOT_FOUND`, a finished job `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn zenith_scheduler_update(
    s: *mut zenith_scheduler,
    job: u64,
    fields: zenith_job_update_fields,
    priority: i32,
    preemptible: i32,
    restartable: i32,
    max_runtime_ms: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        const ALL: u32 = ZENITH_JOB_UPDATE_PRIORITY
            | ZENITH_JOB_UPDATE_PREEMPTIBLE
            | ZENITH_JOB_UPDATE_RESTARTABLE
            | ZENITH_JOB_UPDATE_MAX_RUNTIME;
        if fields & !ALL != 0 {
            return Err(invalid(format!("unknown update fields {:#x}", fields & !ALL)));
        }
        let has = |bit: u32| fields & bit != 0;
        let update = JobUpdate {
            priority: has(ZENITH_JOB_UPDATE_PRIORITY).then_some(priority),
            preemptible: has(ZENITH_JOB_UPDATE_PREEMPTIBLE).then_some(preemptible != 0),
            restartable: has(ZENITH_JOB_UPDATE_RESTARTABLE).then_some(restartable != 0),
            max_runtime_ms: has(ZENITH_JOB_UPDATE_MAX_RUNTIME).then_some(max_runtime_ms),
        };
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.update(JobId(job), update, now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Cancels a live job at `now_ms` (→ CANCELLED), freeing what it holds; the executor stops
/// whatever runs of it. Cancelling a finished job is `ZENITH_ERR_INVALID_STATE`.
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_cancel(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.cancel(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// The executor started a SCHEDULED job at `now_ms` (→ RUNNING); also its first progress
/// heartbeat.
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_job_started(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.job_started(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// A RUNNING job's progress heartbeat at `now_ms` (zombie detection).
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_job_progress(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.job_progress(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// A RUNNING job finished successfully at `now_ms` (→ COMPLETED).
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_job_completed(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.job_completed(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// A SCHEDULED or RUNNING job failed at `now_ms` (→ FAILED): it could not be launched, or it
/// exited with an error.
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_job_failed(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.job_failed(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Holds a QUEUED or RUNNING job at `now_ms` (→ SUSPENDED, resources freed; the executor stops
/// it) until `zenith_scheduler_resume`.
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_suspend(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.suspend(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Puts a SUSPENDED job back in the queue at `now_ms` (→ QUEUED).
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; a transition the job's state does not
/// allow, or an earlier `now_ms` than seen, `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_resume(
    s: *mut zenith_scheduler,
    job: u64,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.resume(JobId(job), now_ms)) }?;
        Ok(ZENITH_OK)
    })
}
