//! `zenith_scheduler`: the handle itself: create (or restore from a journal), free, one
//! scheduling pass, the next wakeup, stats.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::decisions::zenith_scheduler_decisions;
use super::metrics::Contribution;
use super::options::zenith_scheduler_options;
use super::{Failure, FfiResult};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_DONE, ZENITH_OK, zenith_status};
use ::zenith_scheduler::{Scheduler, SchedulerConfig};

/// A gang scheduler: a deterministic decision core with an injected clock.
///
/// Created by `zenith_scheduler_new`, freed by `zenith_scheduler_free`.
/// Thread safety: every call may come from any thread; calls on one scheduler are serialized by
/// an internal lock.
pub struct zenith_scheduler {
    state: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub(crate) core: Scheduler,
    metrics: Contribution,
    restored_records: u64,
}

impl Inner {
    /// Brings the Prometheus series up to date after a call that may have changed state.
    pub(crate) fn changed(&mut self) {
        self.metrics.update(&self.core);
    }
}

/// Locks the scheduler behind `s`.
///
/// # Safety
/// `s` is NULL or a live scheduler.
pub(crate) unsafe fn lock<'a>(s: *const zenith_scheduler) -> FfiResult<MutexGuard<'a, Inner>> {
    // SAFETY: forwarded to the caller.
    let s = unsafe { args::borrow(s, "scheduler") }?;
    // A panic inside a call leaves the core as consistent as a failed call (every call checks
    // before it applies), so a poisoned lock is taken over.
    Ok(s.state.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Applies `change` to the scheduler behind `s` under its lock, then brings its gauges up to
/// date: the shape of every call that changes the scheduler's state. A failed change changed
/// nothing (the core checks before it applies).
///
/// # Safety
/// `s` is NULL or a live scheduler.
pub(crate) unsafe fn apply<T>(
    s: *const zenith_scheduler,
    change: impl FnOnce(&mut Scheduler) -> Result<T, ::zenith_scheduler::Error>,
) -> FfiResult<T> {
    // SAFETY: forwarded to the caller.
    let mut inner = unsafe { lock(s) }?;
    let value = change(&mut inner.core)?;
    inner.changed();
    Ok(value)
}

/// Creates a scheduler from `opts` (NULL: the defaults). With a journal set
/// (`zenith_scheduler_options_set_journal`), a journal file that exists is replayed: the new
/// scheduler has exactly the state (and configuration) of the one that wrote it, no job lost; a
/// torn last record (a crash mid-write) is dropped. A file that does not exist is created.
///
/// Ownership: on success `*out` receives a scheduler the caller frees with
/// `zenith_scheduler_free`; `opts` stays the caller's.
/// On failure: an invalid configuration `ZENITH_ERR_INVALID_ARGUMENT`, a journal that cannot be
/// read or created `ZENITH_ERR_IO`, a corrupt one `ZENITH_ERR_FORMAT` (the message names the
/// line); `*out` is untouched.
/// NULL policy: `opts` and `err` may be NULL; `out` must not be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `opts` is NULL or live options; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_new(
    opts: *const zenith_scheduler_options,
    out: *mut *mut zenith_scheduler,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let out = args::out(out, "out")?;
        // SAFETY: per the contract above.
        let opts = unsafe { opts.as_ref() };
        let config = opts.map_or_else(SchedulerConfig::default, |o| o.config.clone());
        let (mut core, restored_records) = match opts.and_then(|o| o.journal.as_deref()) {
            None => (Scheduler::new(config)?, 0),
            Some(path) if path.exists() => {
                let (s, report) = Scheduler::open_journal(path)?;
                (s, report.records)
            }
            Some(path) => (Scheduler::create_journal(config, path)?, 0),
        };
        if opts.is_some_and(|o| o.journal_sync) {
            core.set_journal_sync(true);
        }
        let metrics = Contribution::new(&core);
        let handle = zenith_scheduler {
            state: Mutex::new(Inner {
                core,
                metrics,
                restored_records,
            }),
        };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(handle)) };
        Ok(ZENITH_OK)
    })
}

/// Frees a scheduler (its journal file is closed and kept). NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a live scheduler, not used afterwards (by any thread).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_free(s: *mut zenith_scheduler) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(s) }
    })
}

/// Runs one scheduling pass at `now_ms`: node health, zombies and time limits, requeues, then
/// the queue in policy order (placement, backfill, preemption). Call it after anything changed
/// and at `zenith_scheduler_next_wakeup`.
///
/// Ownership: on success `*out` receives the decisions, in the order to act on them (a PREEMPT
/// comes before the START it makes room for), which the caller frees with
/// `zenith_scheduler_decisions_free`.
/// On failure: a `now_ms` earlier than a previous call's is `ZENITH_ERR_INVALID_STATE`; a
/// journal write failure `ZENITH_ERR_IO` (the scheduler then refuses further changes; restore
/// it from its journal); `*out` is untouched.
/// NULL policy: `s` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_schedule(
    s: *mut zenith_scheduler,
    now_ms: u64,
    out: *mut *mut zenith_scheduler_decisions,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let out = args::out(out, "out")?;
        // SAFETY: per the contract above.
        let mut inner = unsafe { lock(s) }?;
        let started = Instant::now();
        let result = inner.core.schedule(now_ms);
        inner.metrics.pass(started.elapsed());
        inner.changed();
        let decisions = zenith_scheduler_decisions::new(&inner.core, result?);
        drop(inner);
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(decisions)) };
        Ok(ZENITH_OK)
    })
}

/// Writes into `*out_ms` the earliest time at which a pass could do something new (a requeue, a
/// time limit, a node or zombie deadline) and returns `ZENITH_OK`; returns `ZENITH_DONE` (and
/// writes nothing) when only new calls can change anything.
///
/// NULL policy: `s` and `out_ms` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `out_ms` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_next_wakeup(
    s: *const zenith_scheduler,
    out_ms: *mut u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let out_ms = args::out(out_ms, "out_ms")?;
        // SAFETY: per the contract above.
        let inner = unsafe { lock(s) }?;
        match inner.core.next_wakeup() {
            Some(t) => {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { out_ms.write(t) };
                Ok(ZENITH_OK)
            }
            None => Ok(ZENITH_DONE),
        }
    })
}

/// Compacts the scheduler's journal file: the whole state is written to `<journal>.snapshot`
/// (a temporary file, `fsync`ed, renamed over the old snapshot), then the journal is replaced
/// the same way by a short one that starts from that snapshot, and later calls append there. A
/// crash at any point leaves a journal that `zenith_scheduler_new` restores to the same state,
/// no job lost. Call it now and then on a long-running scheduler (e.g. every few thousand
/// calls) so restoring stays fast and the journal does not grow without bound.
///
/// On failure: a scheduler without a journal file `ZENITH_ERR_INVALID_STATE`; an I/O failure
/// `ZENITH_ERR_IO` (before the journal was replaced the old one stays in use; if the new one
/// cannot be reopened the scheduler refuses further changes: restore it from its journal).
/// NULL policy: `s` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_compact_journal(
    s: *mut zenith_scheduler,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe { apply(s, |core| core.compact_journal()) }?;
        Ok(ZENITH_OK)
    })
}

/// Counters and gauges of one scheduler (`zenith_scheduler_stats`).
///
/// Versioned: the caller sets `struct_size = sizeof(zenith_scheduler_stats)`; fields appended in
/// later versions are not written for a caller built against an older, shorter struct.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct zenith_scheduler_stats {
    /// Set by the caller to `sizeof(zenith_scheduler_stats)`.
    pub struct_size: usize,
    /// Jobs per state, indexed by the `ZENITH_JOB_*` values.
    pub jobs: [u64; 8],
    /// Jobs started (START decisions), over the scheduler's whole life (journal included).
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
    /// The journal's last record number when the scheduler was restored (the records replayed;
    /// after a compaction, the snapshot's record plus those after it); 0 for a new one.
    pub restored_records: u64,
    /// The latest `now_ms` the scheduler saw.
    pub now_ms: u64,
}

/// Writes the scheduler's counters and gauges into `*out`.
///
/// On failure (`out->struct_size` smaller than a `size_t`) returns
/// `ZENITH_ERR_INVALID_ARGUMENT`.
/// NULL policy: `s` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a live scheduler; `out` is NULL or points to `out->struct_size` writable bytes;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_get_stats(
    s: *const zenith_scheduler,
    out: *mut zenith_scheduler_stats,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let out = args::out(out, "out")?;
        // SAFETY: per the contract above.
        let inner = unsafe { lock(s) }?;
        let st = inner.core.stats();
        let value = zenith_scheduler_stats {
            struct_size: std::mem::size_of::<zenith_scheduler_stats>(),
            jobs: st.jobs,
            allocation_success_total: st.allocation_success_total,
            preemptions_total: st.preemptions_total,
            requeues_total: st.requeues_total,
            passes_total: st.passes_total,
            decisions_total: st.decisions_total,
            gpus_total: st.gpus_total,
            gpu_free_milli: st.gpu_free_milli,
            restored_records: inner.restored_records,
            now_ms: inner.core.now(),
        };
        // SAFETY: per the contract above.
        unsafe { args::write_sized(out, value, "zenith_scheduler_stats") }?;
        Ok(ZENITH_OK)
    })
}
