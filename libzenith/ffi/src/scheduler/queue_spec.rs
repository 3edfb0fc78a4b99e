//! `zenith_queue_spec`: the builder for a queue with a quota (Kueue's ClusterQueue semantics)
//! that `zenith_scheduler_set_queue` reads: nominal quota, borrowing and lending limits, cohort,
//! fair-share weight. Quantities are milli-GPUs, milli-CPUs and MiB.

use std::ffi::c_char;

use super::handle::{apply, zenith_scheduler};
use super::{Failure, FfiResult, text};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use ::zenith_scheduler::{Quantities, QueueSpec};

/// A queue being described.
///
/// Created by `zenith_queue_spec_new`, freed by `zenith_queue_spec_free`; the scheduler copies
/// it. Not thread-safe.
pub struct zenith_queue_spec {
    spec: QueueSpec,
}

/// Creates a spec for the queue `name`: no quota (limited by capacity only), no cohort, weight 1.
///
/// Ownership: on success `*out` receives a spec the caller frees with `zenith_queue_spec_free`.
/// On failure (`name` not UTF-8) returns `ZENITH_ERR_INVALID_ARGUMENT`; `*out` is untouched.
/// NULL policy: `name` and `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_queue_spec_new(
    name: *const c_char,
    out: *mut *mut zenith_queue_spec,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "queue.name") }?;
        let out = args::out(out, "out")?;
        let spec = QueueSpec::unlimited(name);
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_queue_spec { spec })) };
        Ok(ZENITH_OK)
    })
}

/// Frees a spec. NULL is a no-op.
///
/// # Safety
/// `spec` is NULL or a live spec from `zenith_queue_spec_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_queue_spec_free(spec: *mut zenith_queue_spec) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(spec) }
    })
}

/// # Safety
/// `spec` is NULL or a live spec used by no other thread.
unsafe fn spec_mut<'a>(spec: *mut zenith_queue_spec) -> FfiResult<&'a mut QueueSpec> {
    // SAFETY: forwarded to the caller.
    Ok(&mut unsafe { args::borrow_mut(spec, "spec") }?.spec)
}

/// Which limit `zenith_queue_spec_set_limit` sets (one of the `ZENITH_QUEUE_*` values).
pub type zenith_queue_limit = i32;
/// The guaranteed (nominal) quota.
pub const ZENITH_QUEUE_NOMINAL: zenith_queue_limit = 0;
/// How much above its nominal quota the queue may borrow from its cohort.
pub const ZENITH_QUEUE_BORROWING_LIMIT: zenith_queue_limit = 1;
/// How much of its nominal quota the queue may lend to its cohort.
pub const ZENITH_QUEUE_LENDING_LIMIT: zenith_queue_limit = 2;

/// Sets one of the queue's limits (`which`: a `ZENITH_QUEUE_*` value) to `gpu_milli`
/// milli-GPUs, `cpu_milli` milli-CPUs and `memory_mib` MiB. Unset limits mean: no quota, no
/// borrowing limit, lending all of the nominal quota.
///
/// On failure (an unknown `which`) returns `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_queue_spec_set_limit(
    spec: *mut zenith_queue_spec,
    which: zenith_queue_limit,
    gpu_milli: u64,
    cpu_milli: u64,
    memory_mib: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { spec_mut(spec) }?;
        let q = Some(Quantities {
            gpu_milli,
            cpu_milli,
            memory_mib,
        });
        match which {
            ZENITH_QUEUE_NOMINAL => spec.nominal = q,
            ZENITH_QUEUE_BORROWING_LIMIT => spec.borrowing_limit = q,
            ZENITH_QUEUE_LENDING_LIMIT => spec.lending_limit = q,
            other => return Err(super::invalid(format!("unknown queue limit {other}"))),
        }
        Ok(ZENITH_OK)
    })
}

/// Puts the queue in `cohort` (queues of a cohort lend and borrow unused nominal quota), and
/// sets its fair-share `weight` (1..=1,000,000, checked when the queue is set).
///
/// NULL policy: `spec` must not be NULL; `cohort` may be NULL (no cohort); `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `cohort` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_queue_spec_set_cohort(
    spec: *mut zenith_queue_spec,
    cohort: *const c_char,
    weight: u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { spec_mut(spec) }?;
        let cohort = if cohort.is_null() {
            None
        } else {
            // SAFETY: per the contract above.
            Some(unsafe { text(cohort, "cohort", "queue.cohort") }?.to_owned())
        };
        spec.cohort = cohort;
        spec.weight = weight;
        Ok(ZENITH_OK)
    })
}

/// Adds or replaces the queue described by `spec` (not journaled with a time: queues are
/// configuration).
///
/// On failure: an invalid spec `ZENITH_ERR_INVALID_ARGUMENT`; new limits below what the queue's
/// admitted jobs already use `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` and `spec` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `spec` is NULL or a live queue spec; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_set_queue(
    s: *mut zenith_scheduler,
    spec: *const zenith_queue_spec,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { args::borrow(spec, "spec") }?.spec.clone();
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.set_queue(spec)) }?;
        Ok(ZENITH_OK)
    })
}
