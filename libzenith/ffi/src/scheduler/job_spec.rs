//! `zenith_job_spec`: the builder for a job (the seeds' `JobDescriptor`) that
//! `zenith_scheduler_submit`, TEST_ONLY and WILL_RUN read.
//!
//! Setters check what they can alone (UTF-8, the locality value, list lengths) and leave the spec
//! unchanged on failure; the rules between fields (a GPU share needs one GPU, environment names,
//! path rules, lengths) are checked by `zenith_job_spec_validate` and by every call that reads
//! the spec, with an error that names the field (`job.member.gpu_milli`, `command.env[2].name`).

use std::ffi::c_char;

use super::{Failure, FfiResult, invalid, text};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_scheduler::model::limits::{MAX_ARGS, MAX_ENV, MAX_GPU_TYPES_PER_JOB};
use zenith_scheduler::{Command, JobSpec, Locality, Resources};

/// Where a gang's members may go relative to each other (one of the `ZENITH_LOCALITY_*` values).
pub type zenith_locality = i32;

/// Anywhere; placement still prefers one NVLink island, one node, one rack, the fewest nodes.
pub const ZENITH_LOCALITY_ANY: zenith_locality = 0;
/// All members on one node.
pub const ZENITH_LOCALITY_SAME_NODE: zenith_locality = 1;
/// All members' GPUs inside one NVLink island of one node.
pub const ZENITH_LOCALITY_SAME_ISLAND: zenith_locality = 2;
/// All members on nodes of one rack.
pub const ZENITH_LOCALITY_SAME_RACK: zenith_locality = 3;
/// Every member on a different node (Ray's STRICT_SPREAD).
pub const ZENITH_LOCALITY_SPREAD: zenith_locality = 4;

fn locality_from_c(value: zenith_locality) -> FfiResult<Locality> {
    Ok(match value {
        ZENITH_LOCALITY_ANY => Locality::Any,
        ZENITH_LOCALITY_SAME_NODE => Locality::SameNode,
        ZENITH_LOCALITY_SAME_ISLAND => Locality::SameIsland,
        ZENITH_LOCALITY_SAME_RACK => Locality::SameRack,
        ZENITH_LOCALITY_SPREAD => Locality::Spread,
        other => return Err(invalid(format!("unknown locality {other}"))),
    })
}

/// A job being described: id, name, owner, what each gang member needs, the gang, its policy
/// and its command.
///
/// Created by `zenith_job_spec_new`, freed by `zenith_job_spec_free`; the scheduler copies what
/// it needs, so a spec can be changed and submitted again (with another id). Not thread-safe.
pub struct zenith_job_spec {
    pub(crate) spec: JobSpec,
}

/// Creates a spec for job `id` named `name`: user and queue `default`, one member asking for
/// nothing yet (set GPUs, CPUs or memory), priority 0, not preemptible, restartable, no time
/// limit, no command.
///
/// Ownership: on success `*out` receives a spec the caller frees with `zenith_job_spec_free`.
/// On failure (`name` not UTF-8) returns `ZENITH_ERR_INVALID_ARGUMENT`; `*out` is untouched.
/// NULL policy: `name` and `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_new(
    id: u64,
    name: *const c_char,
    out: *mut *mut zenith_job_spec,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "job.name") }?;
        let out = args::out(out, "out")?;
        let spec = JobSpec::new(id, name, Resources::default());
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_job_spec { spec })) };
        Ok(ZENITH_OK)
    })
}

/// Frees a spec. NULL is a no-op.
///
/// # Safety
/// `spec` is NULL or a live spec from `zenith_job_spec_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_free(spec: *mut zenith_job_spec) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(spec) }
    })
}

/// Runs `change` on the spec behind `spec` (NULL is `ZENITH_ERR_NULL_ARGUMENT`).
///
/// # Safety
/// `spec` is NULL or a live spec used by no other thread.
unsafe fn edit(
    spec: *mut zenith_job_spec,
    change: impl FnOnce(&mut JobSpec) -> FfiResult<()>,
) -> FfiResult<zenith_status> {
    // SAFETY: forwarded to the caller.
    let handle = unsafe { args::borrow_mut(spec, "spec") }?;
    change(&mut handle.spec)?;
    Ok(ZENITH_OK)
}

/// Checks every field of the spec, as submit does.
///
/// On failure returns `ZENITH_ERR_INVALID_ARGUMENT` with a message naming the first field that
/// breaks a rule.
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_validate(
    spec: *const zenith_job_spec,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let handle = unsafe { args::borrow(spec, "spec") }?;
        handle.spec.validate()?;
        Ok(ZENITH_OK)
    })
}

/// Sets the job id (unique for the scheduler's lifetime, also after the job finished).
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_id(
    spec: *mut zenith_job_spec,
    id: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.id = zenith_scheduler::JobId(id);
                Ok(())
            })
        }
    })
}

/// Sets the name (any UTF-8 text without NUL, 1..=253 bytes; checked at submit).
///
/// NULL policy: `spec` and `name` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `name` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_name(
    spec: *mut zenith_job_spec,
    name: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "job.name") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.name = name.to_owned();
                Ok(())
            })
        }
    })
}

/// Sets the user the job runs as (fair share is per user; a name without whitespace).
///
/// NULL policy: `spec` and `user` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `user` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_user(
    spec: *mut zenith_job_spec,
    user: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let user = unsafe { text(user, "user", "job.user") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.user = user.to_owned();
                Ok(())
            })
        }
    })
}

/// Sets the queue (quotas and fair share are per queue).
///
/// NULL policy: `spec` and `queue` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `queue` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_queue(
    spec: *mut zenith_job_spec,
    queue: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let queue = unsafe { text(queue, "queue", "job.queue") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.queue = queue.to_owned();
                Ok(())
            })
        }
    })
}

/// Each member asks for `gpus` whole GPUs (0 for a CPU-only member).
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_gpus(
    spec: *mut zenith_job_spec,
    gpus: u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.member.gpus = gpus;
                s.member.gpu_milli = if gpus > 0 { 1000 } else { 0 };
                Ok(())
            })
        }
    })
}

/// Each member asks for a share of one GPU, in milli-GPUs (`1..=1000`; 1000 is a whole GPU):
/// GPU-sharing tasks whose shares on one GPU never sum above 1000.
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_gpu_share(
    spec: *mut zenith_job_spec,
    milli: u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.member.gpus = 1;
                s.member.gpu_milli = milli;
                Ok(())
            })
        }
    })
}

/// Allows the GPU type `gpu_type` (matched exactly against the nodes' GPU types). With no type
/// added, any type is allowed. At most 64 types.
///
/// NULL policy: `spec` and `gpu_type` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `gpu_type` is NULL or NUL-terminated; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_add_gpu_type(
    spec: *mut zenith_job_spec,
    gpu_type: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let gpu_type = unsafe { text(gpu_type, "gpu_type", "job.member.gpu_types") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                if s.member.gpu_types.len() >= MAX_GPU_TYPES_PER_JOB {
                    return Err(invalid(format!(
                        "job.member.gpu_types: at most {MAX_GPU_TYPES_PER_JOB} types"
                    )));
                }
                s.member.gpu_types.push(gpu_type.to_owned());
                Ok(())
            })
        }
    })
}

/// Each member asks for `cpu_milli` milli-CPUs (1000 = one CPU).
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_cpus(
    spec: *mut zenith_job_spec,
    cpu_milli: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.member.cpu_milli = cpu_milli;
                Ok(())
            })
        }
    })
}

/// Each member asks for `memory_mib` MiB of memory.
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_memory(
    spec: *mut zenith_job_spec,
    memory_mib: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.member.memory_mib = memory_mib;
                Ok(())
            })
        }
    })
}

/// Sets the gang: `size` members that start together or not at all, placed by `locality` (a
/// `ZENITH_LOCALITY_*` value).
///
/// On failure (an unknown locality) returns `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_gang(
    spec: *mut zenith_job_spec,
    size: u32,
    locality: zenith_locality,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        let locality = locality_from_c(locality)?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.gang_size = size;
                s.locality = locality;
                Ok(())
            })
        }
    })
}

/// Sets the priority tier (a higher tier is considered first and may preempt lower tiers) and
/// whether higher tiers may preempt this job (`preemptible` non-zero).
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_priority(
    spec: *mut zenith_job_spec,
    priority: i32,
    preemptible: i32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.priority = priority;
                s.preemptible = preemptible != 0;
                Ok(())
            })
        }
    })
}

/// Whether the job is requeued (non-zero, the default) or failed (0) when its node dies or it
/// turns into a zombie.
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_restartable(
    spec: *mut zenith_job_spec,
    restartable: i32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.restartable = restartable != 0;
                Ok(())
            })
        }
    })
}

/// Sets the time limit in ms (the job fails when it runs longer; backfill relies on it); 0
/// removes it.
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_max_runtime(
    spec: *mut zenith_job_spec,
    max_runtime_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.max_runtime_ms = (max_runtime_ms != 0).then_some(max_runtime_ms);
                Ok(())
            })
        }
    })
}

/// Sets the job's own progress timeout in ms (a RUNNING job without a progress heartbeat for
/// longer is a zombie); 0 uses the scheduler's default.
///
/// NULL policy: `spec` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_progress_timeout(
    spec: *mut zenith_job_spec,
    timeout_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                s.progress_timeout_ms = (timeout_ms != 0).then_some(timeout_ms);
                Ok(())
            })
        }
    })
}

/// Sets the command's program (data for the executor; the scheduler never runs it). Keeps the
/// arguments, environment and working directory given so far.
///
/// NULL policy: `spec` and `program` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `program` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_command(
    spec: *mut zenith_job_spec,
    program: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let program = unsafe { text(program, "program", "command.program") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                match &mut s.command {
                    Some(c) => c.program = program.to_owned(),
                    None => s.command = Some(Command::new(program)),
                }
                Ok(())
            })
        }
    })
}

/// The command of a spec, which `zenith_job_spec_set_command` must have set first.
fn command_of(s: &mut JobSpec) -> FfiResult<&mut Command> {
    s.command
        .as_mut()
        .ok_or_else(|| invalid("set the command (zenith_job_spec_set_command) first"))
}

/// Appends an argument to the command (at most 4096).
///
/// On failure (no command set, too many arguments, not UTF-8) returns
/// `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `spec` and `arg` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `arg` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_add_arg(
    spec: *mut zenith_job_spec,
    arg: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let arg = unsafe { text(arg, "arg", "command.args") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                let c = command_of(s)?;
                if c.args.len() >= MAX_ARGS {
                    return Err(invalid(format!("command.args: at most {MAX_ARGS} arguments")));
                }
                c.args.push(arg.to_owned());
                Ok(())
            })
        }
    })
}

/// Appends an environment variable `name=value` to the command (names `[A-Za-z_][A-Za-z0-9_]*`,
/// checked at submit; at most 4096 variables).
///
/// On failure (no command set, too many variables, not UTF-8) returns
/// `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `spec`, `name` and `value` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `name` and `value` are NULL or NUL-terminated; `err` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_add_env(
    spec: *mut zenith_job_spec,
    name: *const c_char,
    value: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "command.env.name") }?;
        // SAFETY: per the contract above.
        let value = unsafe { text(value, "value", "command.env.value") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                let c = command_of(s)?;
                if c.env.len() >= MAX_ENV {
                    return Err(invalid(format!("command.env: at most {MAX_ENV} variables")));
                }
                c.env.push((name.to_owned(), value.to_owned()));
                Ok(())
            })
        }
    })
}

/// Sets the command's working directory (an absolute path, checked at submit).
///
/// NULL policy: `spec` and `dir` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `dir` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_job_spec_set_workdir(
    spec: *mut zenith_job_spec,
    dir: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let dir = unsafe { text(dir, "dir", "command.workdir") }?;
        // SAFETY: per the contract above.
        unsafe {
            edit(spec, |s| {
                command_of(s)?.workdir = Some(dir.to_owned());
                Ok(())
            })
        }
    })
}
