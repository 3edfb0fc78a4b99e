//! `zenith_node_spec`: the builder for a node that `zenith_scheduler_node_add` reads: GPUs (type,
//! memory), NVLink islands, CPUs, memory and topology labels.
//!
//! Setters check what they can alone and leave the spec unchanged on failure; the layout rules
//! (no GPU in two islands, indices in range, name characters) are checked when the node is added.

use std::ffi::c_char;

use super::{Failure, FfiResult, invalid, text};
use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_scheduler::model::limits::MAX_GPUS_PER_NODE;
use zenith_scheduler::{GpuSpec, NodeSpec};

/// A node being described.
///
/// Created by `zenith_node_spec_new`, freed by `zenith_node_spec_free`; the scheduler copies
/// it. Not thread-safe.
pub struct zenith_node_spec {
    pub(crate) spec: NodeSpec,
}

/// Creates a spec for the node `name` (unique among live nodes; no whitespace) with
/// `cpu_milli` allocatable milli-CPUs, `memory_mib` MiB of memory, no GPUs and no labels.
///
/// Ownership: on success `*out` receives a spec the caller frees with `zenith_node_spec_free`.
/// On failure (`name` not UTF-8) returns `ZENITH_ERR_INVALID_ARGUMENT`; `*out` is untouched.
/// NULL policy: `name` and `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_node_spec_new(
    name: *const c_char,
    cpu_milli: u64,
    memory_mib: u64,
    out: *mut *mut zenith_node_spec,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let name = unsafe { text(name, "name", "node.name") }?;
        let out = args::out(out, "out")?;
        let spec = NodeSpec::new(name, cpu_milli, memory_mib);
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_node_spec { spec })) };
        Ok(ZENITH_OK)
    })
}

/// Frees a spec. NULL is a no-op.
///
/// # Safety
/// `spec` is NULL or a live spec from `zenith_node_spec_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_node_spec_free(spec: *mut zenith_node_spec) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(spec) }
    })
}

/// Borrows the spec behind `spec` mutably.
///
/// # Safety
/// `spec` is NULL or a live spec used by no other thread.
unsafe fn spec_mut<'a>(spec: *mut zenith_node_spec) -> FfiResult<&'a mut NodeSpec> {
    // SAFETY: forwarded to the caller.
    Ok(&mut unsafe { args::borrow_mut(spec, "spec") }?.spec)
}

/// Appends `count` GPUs of type `gpu_type` with `memory_mib` MiB each (0 = unknown). GPUs are
/// numbered in the order they are added: the index a decision names and an executor turns into
/// `CUDA_VISIBLE_DEVICES`. At most 256 GPUs per node.
///
/// On failure (too many GPUs, a type that is not UTF-8) returns `ZENITH_ERR_INVALID_ARGUMENT`
/// and changes nothing.
/// NULL policy: `spec` and `gpu_type` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `gpu_type` is NULL or NUL-terminated; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_node_spec_add_gpus(
    spec: *mut zenith_node_spec,
    count: u32,
    gpu_type: *const c_char,
    memory_mib: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { spec_mut(spec) }?;
        // SAFETY: per the contract above.
        let gpu_type = unsafe { text(gpu_type, "gpu_type", "node.gpus.gpu_type") }?;
        if spec.gpus.len() + count as usize > MAX_GPUS_PER_NODE {
            return Err(invalid(format!(
                "node.gpus: {} + {count} GPUs is more than {MAX_GPUS_PER_NODE}",
                spec.gpus.len()
            )));
        }
        for _ in 0..count {
            spec.gpus.push(GpuSpec {
                gpu_type: gpu_type.to_owned(),
                memory_mib,
            });
        }
        Ok(ZENITH_OK)
    })
}

/// Adds an NVLink island: the GPU indices in `indices[0..len]` share an NVLink/NVSwitch domain.
/// A GPU in no island is an island of its own.
///
/// On failure (more than 256 indices) returns `ZENITH_ERR_INVALID_ARGUMENT` and changes nothing.
/// NULL policy: `spec` must not be NULL; `indices` may be NULL only when `len` is 0; `err` may be
/// NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `indices` is NULL or points to `len` readable values; `err` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_node_spec_add_nvlink_island(
    spec: *mut zenith_node_spec,
    indices: *const u32,
    len: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { spec_mut(spec) }?;
        if len > MAX_GPUS_PER_NODE {
            return Err(invalid(format!(
                "node.nvlink_islands: an island of {len} GPUs, more than {MAX_GPUS_PER_NODE}"
            )));
        }
        if spec.nvlink_islands.len() >= MAX_GPUS_PER_NODE {
            return Err(invalid(format!(
                "node.nvlink_islands: at most {MAX_GPUS_PER_NODE} islands"
            )));
        }
        let island = if len == 0 {
            Vec::new()
        } else {
            let indices = args::out(indices.cast_mut(), "indices")?;
            // SAFETY: non-NULL and `len` readable values per the contract.
            unsafe { std::slice::from_raw_parts(indices, len) }.to_vec()
        };
        spec.nvlink_islands.push(island);
        Ok(ZENITH_OK)
    })
}

/// Sets a topology label: `key` is `"rack"` (placement prefers a gang inside one rack),
/// `"switch"` or `"zone"`.
///
/// On failure (another key, a value that is not UTF-8) returns `ZENITH_ERR_INVALID_ARGUMENT` and
/// changes nothing.
/// NULL policy: `spec`, `key` and `value` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `spec` is NULL or a live spec; `key` and `value` are NULL or NUL-terminated; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_node_spec_set_label(
    spec: *mut zenith_node_spec,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, error_type = Failure, {
        // SAFETY: per the contract above.
        let spec = unsafe { spec_mut(spec) }?;
        // SAFETY: per the contract above.
        let key = unsafe { text(key, "key", "node.labels") }?;
        // SAFETY: per the contract above.
        let value = unsafe { text(value, "value", "node.labels.value") }?.to_owned();
        match key {
            "rack" => spec.labels.rack = Some(value),
            "switch" => spec.labels.switch = Some(value),
            "zone" => spec.labels.zone = Some(value),
            other => {
                return Err(invalid(format!(
                    "unknown node label {other:?}: expected rack, switch or zone"
                )));
            }
        }
        Ok(ZENITH_OK)
    })
}
