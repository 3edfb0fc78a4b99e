//! Node calls on a `zenith_scheduler`: add, remove, heartbeat, drain.

use std::ffi::c_char;

use super::handle::{apply, zenith_scheduler};
use super::node_spec::zenith_node_spec;
use super::{Failure, text};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};

/// Adds the node described by `spec` at `now_ms` (its first heartbeat). Writes its id (dense,
/// never reused; decisions name nodes by id and name) into `*out_id` when `out_id` is not NULL.
///
/// Ownership: `spec` stays the caller's (the scheduler copies it).
/// On failure: an invalid spec `ZENITH_ERR_INVALID_ARGUMENT` (the message names the field), a
/// name already in use `ZENITH_ERR_ALREADY_EXISTS`, an earlier `now_ms` than seen
/// `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` and `spec` must not be NULL; `out_id` and `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `spec` is NULL or a live node spec; `out_id` and `err` are
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_node_add(
    s: *mut zenith_scheduler,
    spec: *const zenith_node_spec,
    now_ms: u64,
    out_id: *mut u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { args::borrow(spec, "spec") }?.spec.clone();
        // SAFETY: per the contract above.
        let id = unsafe { apply(s, |core| core.add_node(spec, now_ms)) }?;
        // SAFETY: NULL or writable per the contract.
        if let Some(out_id) = unsafe { out_id.as_mut() } {
            *out_id = id.0;
        }
        Ok(ZENITH_OK)
    })
}

/// Removes the node `name` at `now_ms`: its jobs are requeued (restartable) or failed by the
/// next pass. Its name may be added again later (as a new node id).
///
/// On failure: an unknown (or removed) node `ZENITH_ERR_NOT_FOUND`, an earlier `now_ms` than
/// seen `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` and `name` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_node_remove(
    s: *mut zenith_scheduler,
    name: *const c_char,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "node.name") }?;
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.remove_node(name, now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Records a heartbeat of the node `name` at `now_ms` (a Suspect node becomes Up again).
///
/// On failure: an unknown (or removed) node `ZENITH_ERR_NOT_FOUND`, an earlier `now_ms` than
/// seen `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` and `name` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_node_heartbeat(
    s: *mut zenith_scheduler,
    name: *const c_char,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "node.name") }?;
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.node_heartbeat(name, now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Drains the node `name` at `now_ms`: it takes no new work; running jobs finish.
///
/// On failure: an unknown (or removed) node `ZENITH_ERR_NOT_FOUND`, an earlier `now_ms` than
/// seen `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` and `name` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_node_drain(
    s: *mut zenith_scheduler,
    name: *const c_char,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "node.name") }?;
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.drain_node(name, now_ms)) }?;
        Ok(ZENITH_OK)
    })
}

/// Ends the draining of node `name` at `now_ms`: it takes new work again.
///
/// On failure: an unknown (or removed) node `ZENITH_ERR_NOT_FOUND`, an earlier `now_ms` than
/// seen `ZENITH_ERR_INVALID_STATE`; nothing changes.
/// NULL policy: `s` and `name` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_node_undrain(
    s: *mut zenith_scheduler,
    name: *const c_char,
    now_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "node.name") }?;
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.undrain_node(name, now_ms)) }?;
        Ok(ZENITH_OK)
    })
}
