//! Queries that change nothing: a job's state, and Slurm's TEST_ONLY (could it start now, and
//! where) and WILL_RUN (when could it start).

use super::decisions::zenith_scheduler_decisions;
use super::handle::{lock, zenith_scheduler};
use super::job_spec::zenith_job_spec;
use super::{Failure, job_state_to_c, zenith_job_state};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_DONE, ZENITH_OK, zenith_status};
use ::zenith_scheduler::{Decision, JobId, JobSpec};

/// Writes the state of job `job` (a `ZENITH_JOB_*` value) into `*out_state`.
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; nothing is written.
/// NULL policy: `s` and `out_state` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `out_state` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_job_state(
    s: *const zenith_scheduler,
    job: u64,
    out_state: *mut zenith_job_state,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let out_state = args::out(out_state, "out_state")?;
        // SAFETY: per the contract above.
        let inner = unsafe { lock(s) }?;
        let view = inner
            .core
            .job(JobId(job))
            .ok_or(::zenith_scheduler::Error::UnknownJob(JobId(job)))?;
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out_state.write(job_state_to_c(view.state)) };
        Ok(ZENITH_OK)
    })
}

/// The spec of a query: the one given, or the submitted job's.
enum Subject<'a> {
    Spec(&'a JobSpec),
    Job(JobId),
}

/// # Safety
/// `s` is NULL or a live scheduler; `out` and `err` are NULL or writable.
unsafe fn test_only(
    s: *const zenith_scheduler,
    subject: Subject<'_>,
    out: *mut *mut zenith_scheduler_decisions,
) -> Result<zenith_status, Failure> {
    let out = args::out(out, "out")?;
    // SAFETY: forwarded to the caller.
    let inner = unsafe { lock(s) }?;
    let (job, placement) = match subject {
        Subject::Spec(spec) => (spec.id, inner.core.test_only(spec)?),
        Subject::Job(job) => (job, inner.core.test_only_job(job)?),
    };
    let list = placement
        .map(|members| vec![Decision::Start { job, members }])
        .unwrap_or_default();
    let decisions = zenith_scheduler_decisions::new(&inner.core, list);
    // SAFETY: non-NULL and writable per the contract.
    unsafe { out.write(args::into_handle(decisions)) };
    Ok(ZENITH_OK)
}

/// TEST_ONLY: could the job described by `spec` start now? `*out` receives decisions holding one
/// START with a placement it could get on the free resources now (ignoring jobs queued ahead of
/// it; a pass may choose other GPUs), or no decision when it does not fit now or its queue's
/// quota does not admit it. Changes nothing; nothing is journaled.
///
/// Ownership: on success the caller frees `*out` with `zenith_scheduler_decisions_free`.
/// On failure: an invalid spec `ZENITH_ERR_INVALID_ARGUMENT`; `*out` is untouched.
/// NULL policy: `s`, `spec` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `spec` is NULL or a live job spec; `out` and `err` are NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_test_only(
    s: *const zenith_scheduler,
    spec: *const zenith_job_spec,
    out: *mut *mut zenith_scheduler_decisions,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = &unsafe { args::borrow(spec, "spec") }?.spec;
        // SAFETY: per the contract above.
        unsafe { test_only(s, Subject::Spec(spec), out) }
    })
}

/// TEST_ONLY for the submitted job `job` (see `zenith_scheduler_test_only`).
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; `*out` is untouched.
/// NULL policy: `s` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_test_only_job(
    s: *const zenith_scheduler,
    job: u64,
    out: *mut *mut zenith_scheduler_decisions,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { test_only(s, Subject::Job(JobId(job)), out) }
    })
}

/// # Safety
/// `s` is NULL or a live scheduler; `out_ms` is NULL or writable.
unsafe fn will_run(
    s: *const zenith_scheduler,
    subject: Subject<'_>,
    out_ms: *mut u64,
) -> Result<zenith_status, Failure> {
    let out_ms = args::out(out_ms, "out_ms")?;
    // SAFETY: forwarded to the caller.
    let inner = unsafe { lock(s) }?;
    let at = match subject {
        Subject::Spec(spec) => inner.core.will_run(spec)?,
        Subject::Job(job) => inner.core.will_run_job(job)?,
    };
    match at {
        Some(t) => {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out_ms.write(t) };
            Ok(ZENITH_OK)
        }
        None => Ok(ZENITH_DONE),
    }
}

/// WILL_RUN: writes into `*out_ms` the earliest time the job described by `spec` could start,
/// from the time limits of the running jobs (a lower bound: jobs queued ahead of it are not
/// counted; the current time when it fits now) and returns `ZENITH_OK`. Returns `ZENITH_DONE`
/// (nothing written) when it never fits on the current nodes, or running jobs without a time
/// limit hold what it needs. Changes nothing.
///
/// On failure: an invalid spec `ZENITH_ERR_INVALID_ARGUMENT`; nothing is written.
/// NULL policy: `s`, `spec` and `out_ms` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `spec` is NULL or a live job spec; `out_ms` and `err` are
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_will_run(
    s: *const zenith_scheduler,
    spec: *const zenith_job_spec,
    out_ms: *mut u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = &unsafe { args::borrow(spec, "spec") }?.spec;
        // SAFETY: per the contract above.
        unsafe { will_run(s, Subject::Spec(spec), out_ms) }
    })
}

/// WILL_RUN for the submitted job `job` (see `zenith_scheduler_will_run`).
///
/// On failure: an unknown job `ZENITH_ERR_NOT_FOUND`; nothing is written.
/// NULL policy: `s` and `out_ms` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `out_ms` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_will_run_job(
    s: *const zenith_scheduler,
    job: u64,
    out_ms: *mut u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { will_run(s, Subject::Job(JobId(job)), out_ms) }
    })
}
