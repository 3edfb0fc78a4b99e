//! `zenith_scheduler_decisions`: what a scheduling pass (or a TEST_ONLY query) returns, read
//! with accessors: a decision's kind, job and reason, then for a START its members (node, GPU
//! indices and shares).

use std::ffi::{CString, c_char};

use super::{Failure, FfiResult, invalid};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_scheduler::{Decision, FailReason, MemberPlacement, RequeueReason, Scheduler};

/// The kind of a decision (one of the `ZENITH_DECISION_*` values).
pub type zenith_decision_kind = i32;
/// Start the job's members where given (QUEUED → SCHEDULED); confirm with
/// `zenith_scheduler_job_started` once they run.
pub const ZENITH_DECISION_START: zenith_decision_kind = 0;
/// Stop the job now (RUNNING → SUSPENDED): `by` needs its resources, already counted as free.
pub const ZENITH_DECISION_PREEMPT: zenith_decision_kind = 1;
/// The job is back in the queue; for `NODE_LOST` and `ZOMBIE`, stop whatever is left of it.
pub const ZENITH_DECISION_REQUEUE: zenith_decision_kind = 2;
/// The job failed; stop whatever is left of it.
pub const ZENITH_DECISION_FAIL: zenith_decision_kind = 3;

/// Why a job was requeued or failed (one of the `ZENITH_REASON_*` values).
pub type zenith_decision_reason = i32;
/// No reason (START and PREEMPT).
pub const ZENITH_REASON_NONE: zenith_decision_reason = 0;
/// Requeued after a preemption.
pub const ZENITH_REASON_PREEMPTED: zenith_decision_reason = 1;
/// A node it ran on (or was placed on) went down or was removed.
pub const ZENITH_REASON_NODE_LOST: zenith_decision_reason = 2;
/// Its progress heartbeat stopped (a zombie).
pub const ZENITH_REASON_ZOMBIE: zenith_decision_reason = 3;
/// It ran past its time limit.
pub const ZENITH_REASON_TIME_LIMIT: zenith_decision_reason = 4;
/// The executor reported a failure.
pub const ZENITH_REASON_REPORTED: zenith_decision_reason = 5;

/// One decision, as `zenith_scheduler_decisions_get` reports it.
///
/// Versioned: the caller sets `struct_size = sizeof(zenith_scheduler_decision)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct zenith_scheduler_decision {
    /// Set by the caller to `sizeof(zenith_scheduler_decision)`.
    pub struct_size: usize,
    /// `ZENITH_DECISION_*`.
    pub kind: zenith_decision_kind,
    /// `ZENITH_REASON_*` (REQUEUE and FAIL; `ZENITH_REASON_NONE` otherwise).
    pub reason: zenith_decision_reason,
    /// The job the decision is about.
    pub job: u64,
    /// For PREEMPT, the job it makes room for; 0 otherwise.
    pub by: u64,
    /// For START, the number of gang members (see `zenith_scheduler_decisions_member`); 0
    /// otherwise.
    pub members: usize,
}

/// Where one gang member of a START runs, as `zenith_scheduler_decisions_member` reports it.
///
/// Versioned: the caller sets `struct_size = sizeof(zenith_scheduler_member)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zenith_scheduler_member {
    /// Set by the caller to `sizeof(zenith_scheduler_member)`.
    pub struct_size: usize,
    /// The node's id (as `zenith_scheduler_node_add` returned it).
    pub node_id: u32,
    /// The node's name, NUL-terminated, borrowed from the decisions: valid until they are freed.
    pub node_name: *const c_char,
    /// GPUs granted to the member (0 for a CPU-only member); see
    /// `zenith_scheduler_decisions_member_gpu`.
    pub gpus: usize,
}

/// The decisions of one pass.
///
/// Created by `zenith_scheduler_schedule` or `zenith_scheduler_test_only`, freed by
/// `zenith_scheduler_decisions_free`. Immutable: any thread may read it.
pub struct zenith_scheduler_decisions {
    list: Vec<Decision>,
    /// Per decision, per member, the node's name (empty for decisions without members).
    names: Vec<Vec<CString>>,
}

impl zenith_scheduler_decisions {
    /// The decisions, with node names resolved while the scheduler is at hand.
    pub(crate) fn new(core: &Scheduler, list: Vec<Decision>) -> Self {
        let names = list
            .iter()
            .map(|d| match d {
                Decision::Start { members, .. } => {
                    members.iter().map(|m| name_of(core, m)).collect::<Vec<_>>()
                }
                _ => Vec::new(),
            })
            .collect();
        zenith_scheduler_decisions { list, names }
    }

    fn decision(&self, index: usize) -> FfiResult<&Decision> {
        self.list.get(index).ok_or_else(|| {
            invalid(format!(
                "decision index {index} out of range (there are {})",
                self.list.len()
            ))
        })
    }

    fn member(&self, index: usize, member: usize) -> FfiResult<&MemberPlacement> {
        match self.decision(index)? {
            Decision::Start { members, .. } => members.get(member).ok_or_else(|| {
                invalid(format!(
                    "member index {member} out of range (the gang has {})",
                    members.len()
                ))
            }),
            _ => Err(invalid(format!("decision {index} is not a START"))),
        }
    }
}

fn name_of(core: &Scheduler, m: &MemberPlacement) -> CString {
    // Node names are validated without NUL; a missing name cannot happen for a placement the
    // scheduler just made, and is reported as an empty string rather than a panic.
    let name = core.node_name(m.node).unwrap_or_default();
    CString::new(name).unwrap_or_default()
}

/// Frees decisions. NULL is a no-op.
///
/// # Safety
/// `d` is NULL or live decisions, not used afterwards (nor the node names borrowed from them).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_decisions_free(d: *mut zenith_scheduler_decisions) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(d) }
    })
}

/// The number of decisions. NULL gives 0.
///
/// # Safety
/// `d` is NULL or live decisions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_decisions_len(
    d: *const zenith_scheduler_decisions,
) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { d.as_ref() }.map_or(0, |d| d.list.len())
    })
}

/// Writes decision `index` (0-based, in the order to act on them) into `*out`.
///
/// On failure: an index out of range, or `out->struct_size` smaller than a `size_t`,
/// `ZENITH_ERR_INVALID_ARGUMENT`.
/// NULL policy: `d` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `d` is NULL or live decisions; `out` is NULL or points to `out->struct_size` writable bytes;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_decisions_get(
    d: *const zenith_scheduler_decisions,
    index: usize,
    out: *mut zenith_scheduler_decision,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let d = unsafe { args::borrow(d, "decisions") }?;
        let out = args::out(out, "out")?;
        let mut v = zenith_scheduler_decision {
            struct_size: std::mem::size_of::<zenith_scheduler_decision>(),
            ..Default::default()
        };
        match d.decision(index)? {
            Decision::Start { job, members } => {
                v.kind = ZENITH_DECISION_START;
                v.job = job.0;
                v.members = members.len();
            }
            Decision::Preempt { job, by } => {
                v.kind = ZENITH_DECISION_PREEMPT;
                v.job = job.0;
                v.by = by.0;
            }
            Decision::Requeue { job, reason } => {
                v.kind = ZENITH_DECISION_REQUEUE;
                v.job = job.0;
                v.reason = match reason {
                    RequeueReason::Preempted => ZENITH_REASON_PREEMPTED,
                    RequeueReason::NodeLost => ZENITH_REASON_NODE_LOST,
                    RequeueReason::Zombie => ZENITH_REASON_ZOMBIE,
                };
            }
            Decision::Fail { job, reason } => {
                v.kind = ZENITH_DECISION_FAIL;
                v.job = job.0;
                v.reason = match reason {
                    FailReason::TimeLimit => ZENITH_REASON_TIME_LIMIT,
                    FailReason::NodeLost => ZENITH_REASON_NODE_LOST,
                    FailReason::Zombie => ZENITH_REASON_ZOMBIE,
                    FailReason::Reported => ZENITH_REASON_REPORTED,
                };
            }
        }
        // SAFETY: per the contract above.
        unsafe { args::write_sized(out, v, "zenith_scheduler_decision") }?;
        Ok(ZENITH_OK)
    })
}

/// Writes member `member` of the START decision `index` into `*out`.
///
/// Lifetime: `out->node_name` is borrowed from `d` and valid until `d` is freed.
/// On failure: an index out of range, a decision that is not a START, or `out->struct_size`
/// smaller than a `size_t`, `ZENITH_ERR_INVALID_ARGUMENT`.
/// NULL policy: `d` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `d` is NULL or live decisions; `out` is NULL or points to `out->struct_size` writable bytes;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_decisions_member(
    d: *const zenith_scheduler_decisions,
    index: usize,
    member: usize,
    out: *mut zenith_scheduler_member,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let d = unsafe { args::borrow(d, "decisions") }?;
        let out = args::out(out, "out")?;
        let m = d.member(index, member)?;
        let v = zenith_scheduler_member {
            struct_size: std::mem::size_of::<zenith_scheduler_member>(),
            node_id: m.node.0,
            node_name: d.names[index][member].as_ptr(),
            gpus: m.gpus.len(),
        };
        // SAFETY: per the contract above.
        unsafe { args::write_sized(out, v, "zenith_scheduler_member") }?;
        Ok(ZENITH_OK)
    })
}

/// Writes GPU `gpu` of member `member` of the START decision `index`: its index on the node
/// (what an executor puts in `CUDA_VISIBLE_DEVICES`) into `*out_index`, and the milli-GPUs
/// granted (1000 for a whole GPU, less for a share) into `*out_milli`.
///
/// On failure: an index out of range or a decision that is not a START,
/// `ZENITH_ERR_INVALID_ARGUMENT`; nothing is written.
/// NULL policy: `d`, `out_index` and `out_milli` must not be NULL; `err` may be NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `d` is NULL or live decisions; `out_index`, `out_milli` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_scheduler_decisions_member_gpu(
    d: *const zenith_scheduler_decisions,
    index: usize,
    member: usize,
    gpu: usize,
    out_index: *mut u32,
    out_milli: *mut u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let d = unsafe { args::borrow(d, "decisions") }?;
        let out_index = args::out(out_index, "out_index")?;
        let out_milli = args::out(out_milli, "out_milli")?;
        let m = d.member(index, member)?;
        let g = m.gpus.get(gpu).ok_or_else(|| {
            invalid(format!(
                "GPU index {gpu} out of range (the member has {})",
                m.gpus.len()
            ))
        })?;
        // SAFETY: both non-NULL and writable per the contract.
        unsafe {
            out_index.write(u32::from(g.index));
            out_milli.write(u32::from(g.milli));
        }
        Ok(ZENITH_OK)
    })
}
