//! `zenith_scheduler_options`: what `zenith_scheduler_new` builds a scheduler with (the policy,
//! its timeouts, the journal file).
//!
//! Every setter validates its argument and leaves the options unchanged on failure.

use std::ffi::c_char;
use std::path::PathBuf;

use super::{Failure, FfiResult, invalid, text};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_scheduler::{Policy, SchedulerConfig};

/// Options for `zenith_scheduler_new`: policy `zenith`, no journal, no heartbeat or zombie
/// deadlines, queues created on first use.
///
/// Created by `zenith_scheduler_options_new`, freed by `zenith_scheduler_options_free`. Not
/// thread-safe: one thread at a time may use an options object.
pub struct zenith_scheduler_options {
    pub(crate) config: SchedulerConfig,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) journal_sync: bool,
}

/// Creates options with the defaults (policy `zenith`, no journal).
///
/// Ownership: on success `*out` receives options the caller frees with
/// `zenith_scheduler_options_free`.
/// NULL policy: `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `out` is NULL or writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_new(
    out: *mut *mut zenith_scheduler_options,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let out = args::out(out, "out")?;
        let opts = zenith_scheduler_options {
            config: SchedulerConfig::default(),
            journal: None,
            journal_sync: false,
        };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(opts)) };
        Ok(ZENITH_OK)
    })
}

/// Frees options. NULL is a no-op.
///
/// # Safety
/// `opts` is NULL or live options from `zenith_scheduler_options_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_free(opts: *mut zenith_scheduler_options) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(opts) }
    })
}

/// Borrows the options mutably.
///
/// # Safety
/// `opts` is NULL or live options used by no other thread.
unsafe fn opts_mut<'a>(
    opts: *mut zenith_scheduler_options,
) -> FfiResult<&'a mut zenith_scheduler_options> {
    // SAFETY: forwarded to the caller.
    Ok(unsafe { args::borrow_mut(opts, "opts") }?)
}

/// Sets the policy by name: `"zenith"` (multifactor priority with fair share, EASY backfill,
/// topology and fragmentation-aware placement, preemption; the default), `"fifo"`,
/// `"first-fit"`, `"best-fit"` or `"sjf"` (shortest declared time limit first).
///
/// On failure (an unknown name) returns `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `opts` and `name` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live options; `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_set_policy(
    opts: *mut zenith_scheduler_options,
    name: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let opts = unsafe { opts_mut(opts) }?;
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "policy") }?;
        let policy = Policy::named(name).ok_or_else(|| {
            invalid(format!(
                "unknown policy {name:?}: expected zenith, fifo, first-fit, best-fit or sjf"
            ))
        })?;
        opts.config.policy = policy;
        Ok(ZENITH_OK)
    })
}

/// Journals every call to the file at `path`: `zenith_scheduler_new` restores the scheduler from
/// it when the file exists (with the configuration it was created with; the other options are
/// then ignored) and creates it otherwise. `sync` non-zero makes every record reach the disk
/// (`fsync`) before its call returns; without it a killed process loses nothing, a power cut may
/// lose the last records.
///
/// On failure (an empty path) returns `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `opts` and `path` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live options; `path` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_set_journal(
    opts: *mut zenith_scheduler_options,
    path: *const c_char,
    sync: i32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let opts = unsafe { opts_mut(opts) }?;
        // SAFETY: per the contract above.
        let path = unsafe { args::path(path, "path") }?;
        opts.journal = Some(path);
        opts.journal_sync = sync != 0;
        Ok(ZENITH_OK)
    })
}

/// Node health deadlines: a node whose last heartbeat (`zenith_scheduler_node_heartbeat`) is
/// older than `suspect_after_ms` takes no new work; older than `down_after_ms` it is down and
/// its jobs are requeued (restartable) or failed. `0, 0` (the default) turns heartbeats off.
///
/// On failure (only one of the two is 0, or `down_after_ms < suspect_after_ms`) returns
/// `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `opts` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live options; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_set_node_timeouts(
    opts: *mut zenith_scheduler_options,
    suspect_after_ms: u64,
    down_after_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let opts = unsafe { opts_mut(opts) }?;
        let mut config = opts.config.clone();
        match (suspect_after_ms, down_after_ms) {
            (0, 0) => {
                config.node_suspect_after_ms = None;
                config.node_down_after_ms = None;
            }
            (0, _) | (_, 0) => {
                return Err(invalid(
                    "node timeouts: give both (suspect <= down) or neither (0, 0)",
                ));
            }
            (s, d) => {
                config.node_suspect_after_ms = Some(s);
                config.node_down_after_ms = Some(d);
            }
        }
        config.validate()?;
        opts.config = config;
        Ok(ZENITH_OK)
    })
}

/// The default progress timeout of RUNNING jobs: a job whose last progress heartbeat
/// (`zenith_scheduler_job_progress`) is older is a zombie, requeued when restartable, else
/// failed. 0 (the default) turns zombie detection off except for jobs with their own timeout.
///
/// NULL policy: `opts` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live options; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_set_zombie_timeout(
    opts: *mut zenith_scheduler_options,
    timeout_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let opts = unsafe { opts_mut(opts) }?;
        let mut config = opts.config.clone();
        config.zombie_timeout_ms = (timeout_ms != 0).then_some(timeout_ms);
        config.validate()?;
        opts.config = config;
        Ok(ZENITH_OK)
    })
}

/// Whether a job may name a queue that was never configured (non-zero, the default: the queue
/// is created without a quota) or is refused with `ZENITH_ERR_NOT_FOUND` (0).
///
/// NULL policy: `opts` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live options; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_options_set_implicit_queues(
    opts: *mut zenith_scheduler_options,
    implicit: i32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let opts = unsafe { opts_mut(opts) }?;
        opts.config.implicit_queues = implicit != 0;
        Ok(ZENITH_OK)
    })
}
