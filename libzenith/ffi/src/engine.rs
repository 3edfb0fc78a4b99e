//! `zenith_engine`, `zenith_engine_options` and `zenith_stage`: the event engine's C ABI.
//!
//! Events are Arrow record batches (struct arrays) passed through the C Data Interface: publish
//! imports them without copying, poll exports them without copying. Stages are built from a C
//! callback or a WASM plugin file and shared by every engine they are added to.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use ::zenith_engine::stage::native::{CallbackStage, schema_is_released};
use ::zenith_engine::{Engine, EngineOptions, Pinning, PollOutcome, PublishError, Stage};
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use zenith_core::Error;
use zenith_core::batch::{export_array, export_schema};

use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_ERR_EVENT_FAILED, ZENITH_OK, ZENITH_WOULD_BLOCK, zenith_status};

/// Options for `zenith_engine_new`: queue bounds, workers and stages.
///
/// Created by `zenith_engine_options_new`, freed by `zenith_engine_options_free`.
pub struct zenith_engine_options {
    inner: EngineOptions,
}

/// An event engine. Created by `zenith_engine_new`, freed by `zenith_engine_free`.
pub struct zenith_engine {
    inner: Engine,
}

/// A transform stage, shared by every engine it is added to. Created by
/// `zenith_stage_new_native` or `zenith_stage_new_wasm`, freed by `zenith_stage_free`.
pub struct zenith_stage {
    inner: Arc<dyn Stage>,
}

impl zenith_stage {
    /// The same stage object, run by a loader's workers (`zenith_loader_options_add_stage`).
    pub(crate) fn loader_stage(&self) -> Arc<dyn zenith_core::loader::BatchStage> {
        Arc::new(::zenith_engine::stage::loader::LoaderStage::new(
            Arc::clone(&self.inner),
        ))
    }
}

/// A native stage's transform, called for each event, possibly from several threads at once.
///
/// `in_array`/`in_schema` hold the event (a struct array: one child per column). The callback may
/// move out of them (marking them released, per the C Data Interface); what it leaves, Zenith
/// releases after the call. On success it returns 0 and fills `out_array`/`out_schema` with the
/// transformed event (a struct array without top-level nulls), which Zenith then owns and
/// validates. On failure it returns nonzero, leaves the outputs alone and may write a
/// NUL-terminated message of at most `error_capacity` bytes to `error`; the event is reported
/// failed by `zenith_engine_poll`.
pub type zenith_stage_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        in_array: *mut FFI_ArrowArray,
        in_schema: *mut FFI_ArrowSchema,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        error: *mut c_char,
        error_capacity: usize,
    ) -> i32,
>;

/// Called once with a native stage's `user_data` when the stage is freed (after the last engine
/// using it is freed).
pub type zenith_stage_free_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Creates engine options with the defaults: 4096 events, 1 GiB, 2 workers, no stages.
///
/// Ownership: on success the caller owns `*out` and frees it with `zenith_engine_options_free`.
/// On failure: `*out` is left untouched.
/// NULL policy: `out == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`.
///
/// # Safety
/// `out` is NULL or points to writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_new(
    out: *mut *mut zenith_engine_options,
) -> zenith_status {
    ffi_boundary!(err: std::ptr::null_mut(), {
        let out = args::out(out, "out")?;
        let options = args::into_handle(zenith_engine_options {
            inner: EngineOptions::default(),
        });
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(options) };
        Ok(ZENITH_OK)
    })
}

/// Frees engine options (engines created from them are unaffected; stages added to them stay
/// alive as long as an engine uses them).
///
/// NULL policy: `zenith_engine_options_free(NULL)` does nothing.
///
/// # Safety
/// `opts` is NULL or live options, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_free(opts: *mut zenith_engine_options) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(opts) }
    })
}

/// Applies `change` to the options behind `opts`.
///
/// # Safety
/// `opts` is NULL or live options.
unsafe fn with_options(
    opts: *mut zenith_engine_options,
    change: impl FnOnce(&mut EngineOptions) -> zenith_core::Result<()>,
) -> zenith_core::Result<zenith_status> {
    // SAFETY: forwarded to the caller.
    let opts = unsafe { args::borrow_mut(opts, "opts") }?;
    let mut changed = opts.inner.clone();
    change(&mut changed)?;
    opts.inner = changed;
    Ok(ZENITH_OK)
}

/// Sets the bound on events in flight (published and not yet polled): at most `events` events
/// and `bytes` bytes of them (their size when published). A publisher waits beyond either bound;
/// one event larger than `bytes` is still accepted when nothing else is in flight.
///
/// On failure: `events == 0` or `bytes == 0` returns `ZENITH_ERR_INVALID_ARGUMENT`; the options
/// are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live options; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_set_capacity(
    opts: *mut zenith_engine_options,
    events: usize,
    bytes: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        unsafe {
            with_options(opts, |o| {
                o.capacity_events = events;
                o.capacity_bytes = bytes;
                o.validate()
            })
        }
    })
}

/// Sets the number of worker threads that run the stages, in parallel across events (default 2).
///
/// On failure: 0 or more than 1024 returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are
/// unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live options; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_set_workers(
    opts: *mut zenith_engine_options,
    workers: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        unsafe {
            with_options(opts, |o| {
                o.workers = workers;
                o.validate()
            })
        }
    })
}

/// Pins the engine's workers to CPUs: each worker restricts itself, when it starts, to the
/// `count` CPUs at `cpus` (the kernel's numbers, as `zenith_topology` lists them); `count == 0`
/// removes the pinning (`cpus` may then be NULL). A worker the kernel does not let pin (a cpuset
/// without those CPUs) runs unpinned. Replaces a node set with
/// `zenith_engine_options_set_numa_node`.
///
/// On failure: a CPU number of 1024 or more returns `ZENITH_ERR_INVALID_ARGUMENT`; the options
/// are unchanged.
/// NULL policy: `opts` must not be NULL; `cpus` must not be NULL when `count > 0`; `err` may be
/// NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live options; `cpus` is NULL or points to `count` readable values; `err`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_set_cpus(
    opts: *mut zenith_engine_options,
    cpus: *const u32,
    count: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let pinning = match (count, cpus.is_null()) {
            (0, _) => None,
            (_, true) => return Err(Error::NullArgument("cpus")),
            // SAFETY: non-NULL and `count` values long per the contract.
            (_, false) => Some(Pinning::Cpus(unsafe { std::slice::from_raw_parts(cpus, count) }.to_vec())),
        };
        // SAFETY: per the contract above.
        unsafe { with_pinning(opts, pinning) }
    })
}

/// Pins the engine's workers to the online CPUs of NUMA node `node` (`-1`: no pinning).
/// Replaces CPUs set with `zenith_engine_options_set_cpus`.
///
/// On failure: a node this machine does not have (or without online CPUs) returns
/// `ZENITH_ERR_INVALID_ARGUMENT`; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live options; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_set_numa_node(
    opts: *mut zenith_engine_options,
    node: i32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let pinning = match node {
            -1 => None,
            node => Some(Pinning::NumaNode(u32::try_from(node).map_err(|_| {
                Error::InvalidArgument(format!("numa node {node} is negative (-1: no pinning)"))
            })?)),
        };
        // SAFETY: per the contract above.
        unsafe { with_pinning(opts, pinning) }
    })
}

/// Sets the workers' pinning after checking it resolves to CPUs.
///
/// # Safety
/// `opts` is NULL or live options.
unsafe fn with_pinning(
    opts: *mut zenith_engine_options,
    pinning: Option<Pinning>,
) -> zenith_core::Result<zenith_status> {
    // SAFETY: forwarded to the caller.
    unsafe {
        with_options(opts, |o| {
            if let Some(pinning) = &pinning {
                pinning.cpus()?;
            }
            o.pinning = pinning;
            Ok(())
        })
    }
}

/// Appends a stage to the chain every event runs through, in the order added.
///
/// Ownership: the options share the stage; the caller still frees its `stage` handle (the stage
/// lives as long as any options or engine use it). A stage may be added to several engines.
/// NULL policy: `opts` and `stage` must not be NULL; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live options; `stage` is NULL or a live stage; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_options_add_stage(
    opts: *mut zenith_engine_options,
    stage: *const zenith_stage,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let stage = unsafe { args::borrow(stage, "stage") }?;
        let shared = Arc::clone(&stage.inner);
        // SAFETY: per the contract above.
        unsafe {
            with_options(opts, |o| {
                o.stages.push(shared);
                Ok(())
            })
        }
    })
}

/// Starts an engine with its worker threads.
///
/// Ownership: on success the caller owns `*out` and frees it with `zenith_engine_free`; `opts`
/// stays the caller's (the engine keeps a copy).
/// On failure: `*out` is left untouched.
/// NULL policy: `opts` and `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live options; `out` is NULL or writable storage for one pointer; `err` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_new(
    opts: *const zenith_engine_options,
    out: *mut *mut zenith_engine,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let opts = unsafe { args::borrow(opts, "opts") }?;
        let out = args::out(out, "out")?;
        let engine = Engine::new(opts.inner.clone())?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_engine { inner: engine })) };
        Ok(ZENITH_OK)
    })
}

/// Stops an engine and frees it: workers finish the event they hold, and every event published
/// and not yet polled is released (`zenith_engine_shutdown` reports how many).
///
/// NULL policy: `zenith_engine_free(NULL)` does nothing.
/// Thread safety: no other call may use `engine` during or after this one.
///
/// # Safety
/// `engine` is NULL or a live engine, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_free(engine: *mut zenith_engine) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(engine) }
    })
}

/// Stops an engine without freeing it: publishers are refused from now on, workers finish the
/// event they hold and exit, and every event not yet polled is released. Writes the number of
/// events released to `*out_released` (when not NULL). A second call releases nothing more.
///
/// NULL policy: `engine` must not be NULL; `out_released` and `err` may be NULL.
/// Thread safety: no other call may use `engine` during this one.
///
/// # Safety
/// `engine` is NULL or a live engine; `out_released` is NULL or writable; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_shutdown(
    engine: *mut zenith_engine,
    out_released: *mut u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let engine = unsafe { args::borrow_mut(engine, "engine") }?;
        let released = engine.inner.shutdown();
        if !out_released.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out_released.write(released) };
        }
        Ok(ZENITH_OK)
    })
}

/// Publishes one event: a record batch as a struct array (one child per column, no top-level
/// nulls), imported through the C Data Interface without copying.
///
/// Waits at most `timeout_ms` milliseconds for room (0: does not wait; `UINT64_MAX`: waits as
/// long as it takes). Returns `ZENITH_OK` and writes the event's sequence number (0, 1, 2, ... in
/// publish order) to `*out_sequence` when not NULL; or `ZENITH_WOULD_BLOCK` when the engine
/// stayed full: then `array`/`schema` hold the same event again (re-exported, zero copy) for a
/// retry, and the caller owns them as before.
/// Ownership: on `ZENITH_OK` and on errors other than `ZENITH_ERR_NULL_ARGUMENT` the engine takes
/// the event: both structs are marked released (moved, per the C Data Interface).
/// On failure: an array that is not a valid struct array without top-level nulls returns
/// `ZENITH_ERR_INVALID_ARGUMENT`; an engine shut down returns `ZENITH_ERR_INVALID_ARGUMENT`.
/// NULL policy: `engine`, `array` and `schema` must not be NULL (nor released); `out_sequence`
/// and `err` may be NULL.
/// Thread safety: any number of threads may publish to one engine at once (and poll meanwhile).
///
/// # Safety
/// `engine` is NULL or a live engine; `array`/`schema` are NULL or valid C Data Interface structs
/// the caller owns; `out_sequence` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_publish(
    engine: *const zenith_engine,
    array: *mut FFI_ArrowArray,
    schema: *mut FFI_ArrowSchema,
    timeout_ms: u64,
    out_sequence: *mut u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let engine = unsafe { args::borrow(engine, "engine") }?;
        // SAFETY: per the contract above.
        let array_ref = unsafe { args::borrow(array, "array") }?;
        // SAFETY: per the contract above.
        let schema_ref = unsafe { args::borrow(schema, "schema") }?;
        if array_ref.is_released() || schema_is_released(schema_ref) {
            return Err(Error::InvalidArgument(
                "the array or schema passed to zenith_engine_publish is already released".into(),
            ));
        }
        // SAFETY: both are valid, unreleased structs the caller owns; `from_raw` moves them out
        // and leaves them marked released.
        let (imported_array, imported_schema) =
            unsafe { (FFI_ArrowArray::from_raw(array), FFI_ArrowSchema::from_raw(schema)) };
        let batch = import_batch(imported_array, &imported_schema)?;
        match engine
            .inner
            .publish(batch, Duration::from_millis(timeout_ms))
        {
            Ok(sequence) => {
                if !out_sequence.is_null() {
                    // SAFETY: non-NULL and writable per the contract.
                    unsafe { out_sequence.write(sequence) };
                }
                Ok(ZENITH_OK)
            }
            Err(PublishError::WouldBlock(batch)) => {
                let exported_schema = export_schema(&batch.schema())?;
                // SAFETY: both structs were moved out above (released): writing over them leaks
                // nothing, and the caller owns the new exports as it owned the old.
                unsafe {
                    array.write(export_array(&batch));
                    schema.write(exported_schema);
                }
                Ok(ZENITH_WOULD_BLOCK)
            }
            Err(PublishError::Closed(_)) => Err(Error::InvalidArgument(
                "the engine is shut down; it takes no more events".into(),
            )),
        }
    })
}

/// A record batch from an imported struct array, validated in full (the caller's bytes are not
/// trusted: stages read them).
fn import_batch(
    array: FFI_ArrowArray,
    schema: &FFI_ArrowSchema,
) -> zenith_core::Result<RecordBatch> {
    let invalid = |e: arrow_schema::ArrowError| {
        Error::InvalidArgument(format!("the event is not a valid Arrow struct array: {e}"))
    };
    // SAFETY: `array` and `schema` are C Data Interface structs from the caller, who promised
    // they are valid; the data is validated below before any use.
    let data = unsafe { arrow_array::ffi::from_ffi(array, schema) }.map_err(invalid)?;
    if !matches!(data.data_type(), arrow_schema::DataType::Struct(_)) {
        return Err(Error::InvalidArgument(format!(
            "an event must be a struct array (a record batch), got {}",
            data.data_type()
        )));
    }
    data.validate_full().map_err(invalid)?;
    let array = StructArray::from(data);
    if array.null_count() > 0 {
        return Err(Error::InvalidArgument(
            "an event's struct array must not have top-level nulls".into(),
        ));
    }
    Ok(RecordBatch::from(array))
}

/// Takes the next event in publish order, waiting at most `timeout_ms` milliseconds for it
/// (0: does not wait; `UINT64_MAX`: waits as long as it takes).
///
/// Returns `ZENITH_OK` with the transformed event in `*out_array` (a struct array) and, when
/// `out_schema` is not NULL, its schema; `ZENITH_WOULD_BLOCK` when the next event is not finished
/// in time (nothing written); or `ZENITH_ERR_EVENT_FAILED` when the next event failed in a stage:
/// nothing is written to the arrays, the error names the event, the stage and the reason, and the
/// engine goes on with the following events. In both `ZENITH_OK` and `ZENITH_ERR_EVENT_FAILED`
/// the event's sequence number goes to `*out_sequence` when not NULL: every published sequence
/// number comes out exactly once.
/// Ownership: on `ZENITH_OK` the caller owns the exported structs and calls their `release`.
/// NULL policy: `engine` and `out_array` must not be NULL; `out_schema`, `out_sequence` and `err`
/// may be NULL.
/// Thread safety: may be called from several threads (each event goes to one of them) and
/// concurrently with publish.
///
/// # Safety
/// `engine` is NULL or a live engine; `out_array`/`out_schema`/`out_sequence` are NULL or
/// writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_engine_poll(
    engine: *const zenith_engine,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_sequence: *mut u64,
    timeout_ms: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let engine = unsafe { args::borrow(engine, "engine") }?;
        let out_array = args::out(out_array, "out_array")?;
        let write_sequence = |sequence: u64| {
            if !out_sequence.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { out_sequence.write(sequence) };
            }
        };
        match engine.inner.poll(Duration::from_millis(timeout_ms)) {
            PollOutcome::Event { sequence, batch } => {
                // A schema that cannot be exported fails this event after it was taken: report
                // it in the event's place, like a stage failure.
                let schema = if out_schema.is_null() {
                    None
                } else {
                    match export_schema(&batch.schema()) {
                        Ok(schema) => Some(schema),
                        Err(error) => {
                            write_sequence(sequence);
                            report(err, &format!("event {sequence} cannot be exported: {error}"));
                            return Ok(ZENITH_ERR_EVENT_FAILED);
                        }
                    }
                };
                // SAFETY: `out_array` is non-NULL (checked), `out_schema` when Some; both
                // writable per the contract.
                unsafe {
                    out_array.write(export_array(&batch));
                    if let Some(schema) = schema {
                        out_schema.write(schema);
                    }
                }
                write_sequence(sequence);
                Ok(ZENITH_OK)
            }
            PollOutcome::Failed(failure) => {
                write_sequence(failure.sequence);
                report(err, &failure.to_string());
                Ok(ZENITH_ERR_EVENT_FAILED)
            }
            PollOutcome::WouldBlock => Ok(ZENITH_WOULD_BLOCK),
        }
    })
}

/// Writes an error with `ZENITH_ERR_EVENT_FAILED` to `err` when the caller asked for one.
fn report(err: *mut *mut zenith_error, message: &str) {
    if !err.is_null() {
        // SAFETY: `err` is NULL or writable per every caller's contract.
        unsafe {
            err.write(zenith_error::boxed_with_code(
                ZENITH_ERR_EVENT_FAILED,
                message,
            ))
        };
    }
}

/// Creates a native stage that calls `callback` with `user_data` for each event.
///
/// `name` (UTF-8) names the stage in failure reports. `free_user_data` (may be NULL) is called
/// once with `user_data` when the stage is freed: after `zenith_stage_free` and after every
/// engine and options object using the stage is freed.
/// Ownership: on success the caller owns `*out` and frees it with `zenith_stage_free`.
/// On failure: `*out` is left untouched and `free_user_data` is not called.
/// NULL policy: `name`, `callback` and `out` must not be NULL; `user_data`, `free_user_data` and
/// `err` may be NULL.
/// Thread safety: `callback` is called from the engine's worker threads, several at once.
///
/// # Safety
/// `callback` follows the contract of `zenith_stage_callback`; `user_data` stays valid until
/// `free_user_data` is called (or forever without it); the pointers are NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_stage_new_native(
    name: *const c_char,
    callback: zenith_stage_callback,
    user_data: *mut c_void,
    free_user_data: zenith_stage_free_callback,
    out: *mut *mut zenith_stage,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let name = unsafe { args::utf8(name, "name") }?;
        let callback = callback.ok_or(Error::NullArgument("callback"))?;
        let out = args::out(out, "out")?;
        // SAFETY: the caller promised the callback's contract and user data lifetime; the
        // signatures are the same C function types.
        let stage = unsafe { CallbackStage::new(name, callback, user_data, free_user_data) };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe {
            out.write(args::into_handle(zenith_stage {
                inner: Arc::new(stage),
            }))
        };
        Ok(ZENITH_OK)
    })
}

/// Creates a sandboxed WASM stage from a plugin file (plugin ABI v1, see docs/plugins.md and
/// zenith_plugin.h): compiled once per process and cached on disk under the user cache directory.
///
/// `memory_limit` caps each instance's linear memory in bytes (0: 256 MiB); `time_limit_ms` caps
/// the CPU time per event (0: 1000 ms). A plugin that traps, runs past the time limit, grows
/// memory past the limit or returns a malformed result fails that event only.
/// Ownership: on success the caller owns `*out` and frees it with `zenith_stage_free`.
/// On failure: a missing file returns `ZENITH_ERR_NOT_FOUND`; a module that is not valid WASM,
/// imports anything or lacks the ABI's exports returns `ZENITH_ERR_INVALID_ARGUMENT` with the
/// reason; `ZENITH_ERR_UNSUPPORTED` when this build has no WASM support. `*out` is untouched.
/// NULL policy: `path` and `out` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `out` is NULL or writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_stage_new_wasm(
    path: *const c_char,
    memory_limit: u64,
    time_limit_ms: u64,
    out: *mut *mut zenith_stage,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        unsafe { new_wasm(path, memory_limit, time_limit_ms, &[], out) }
    })
}

/// `zenith_stage_new_wasm` with configuration bytes for the plugin: each instance is handed
/// `config` (`config_len` bytes, opaque to Zenith; at most 16 MiB) once, through the plugin's
/// optional `zn_configure(ptr, len)` export, before its first event (docs/plugins.md). A plugin
/// whose `zn_configure` returns nonzero, or that has no `zn_configure` while `config_len > 0`, is
/// refused here with `ZENITH_ERR_INVALID_ARGUMENT` and the reason.
///
/// Ownership: `config` is copied; the caller keeps it. The rest as `zenith_stage_new_wasm`.
/// NULL policy: `path` and `out` must not be NULL; `config` may be NULL when `config_len` is 0;
/// `err` may be NULL.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `config` is NULL or points to `config_len` readable bytes;
/// `out` is NULL or writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_stage_new_wasm_config(
    path: *const c_char,
    memory_limit: u64,
    time_limit_ms: u64,
    config: *const u8,
    config_len: usize,
    out: *mut *mut zenith_stage,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let config: &[u8] = match (config.is_null(), config_len) {
            (_, 0) => &[],
            (true, _) => return Err(Error::NullArgument("config")),
            // SAFETY: non-NULL and `config_len` bytes long per the contract.
            (false, len) => unsafe { std::slice::from_raw_parts(config, len) },
        };
        // SAFETY: per the contract above.
        unsafe { new_wasm(path, memory_limit, time_limit_ms, config, out) }
    })
}

/// The WASM stage of both `zenith_stage_new_wasm*` calls, written to `*out`.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `out` is NULL or writable.
unsafe fn new_wasm(
    path: *const c_char,
    memory_limit: u64,
    time_limit_ms: u64,
    config: &[u8],
    out: *mut *mut zenith_stage,
) -> zenith_core::Result<zenith_status> {
    // SAFETY: forwarded to the caller.
    let path = unsafe { args::path(path, "path") }?;
    let out = args::out(out, "out")?;
    let stage = wasm_stage(&path, memory_limit, time_limit_ms, config)?;
    // SAFETY: `out` is non-NULL and writable per the contract.
    unsafe { out.write(args::into_handle(zenith_stage { inner: stage })) };
    Ok(ZENITH_OK)
}

#[cfg(feature = "wasm")]
fn wasm_stage(
    path: &std::path::Path,
    memory_limit: u64,
    time_limit_ms: u64,
    config: &[u8],
) -> zenith_core::Result<Arc<dyn Stage>> {
    use ::zenith_engine::stage::wasm::{WasmOptions, WasmStage};
    let defaults = WasmOptions::default();
    let memory_limit = match memory_limit {
        0 => defaults.memory_limit,
        bytes => usize::try_from(bytes)
            .map_err(|_| Error::InvalidArgument(format!("memory limit {bytes} is too large")))?,
    };
    let time_limit = match time_limit_ms {
        0 => defaults.time_limit,
        ms => Duration::from_millis(ms),
    };
    let options = WasmOptions {
        memory_limit,
        time_limit,
        config: config.to_vec(),
        ..defaults
    };
    Ok(Arc::new(WasmStage::load(path, options)?))
}

#[cfg(not(feature = "wasm"))]
fn wasm_stage(
    _path: &std::path::Path,
    _memory_limit: u64,
    _time_limit_ms: u64,
    _config: &[u8],
) -> zenith_core::Result<Arc<dyn Stage>> {
    Err(Error::Unsupported(
        "this libzenith was built without WASM stages (cargo feature `wasm`)".into(),
    ))
}

/// Frees a stage handle. Options and engines the stage was added to keep it alive; the stage
/// (and a native stage's `free_user_data`) goes when the last of them is freed.
///
/// NULL policy: `zenith_stage_free(NULL)` does nothing.
///
/// # Safety
/// `stage` is NULL or a live stage handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_stage_free(stage: *mut zenith_stage) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(stage) }
    })
}
