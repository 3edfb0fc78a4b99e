//! Status codes returned by every fallible C function.
//!
//! A plain `int32_t` with `#define`d values rather than a C enum: cbindgen ≥ 0.29.3 emits C23 typed
//! enums, which cgo and cffi cannot read. Values are appended and never reused.

use std::ffi::CStr;

use zenith_core::Error;

/// The status every fallible function returns: `ZENITH_OK`, another non-negative outcome
/// (`ZENITH_DONE`, `ZENITH_WOULD_BLOCK`), or a negative error.
#[allow(non_camel_case_types)]
pub type zenith_status = i32;

/// Success.
pub const ZENITH_OK: zenith_status = 0;
/// The end of a stream or an epoch. Not an error: nothing was written to the outputs.
pub const ZENITH_DONE: zenith_status = 1;
/// The operation cannot proceed now without waiting: a ring is full (on push) or empty (on pop),
/// or no batch was ready within a `zenith_loader_next*_timeout` call's timeout.
/// Not an error: nothing was transferred; try again later.
pub const ZENITH_WOULD_BLOCK: zenith_status = 2;
/// A required pointer argument was NULL.
pub const ZENITH_ERR_NULL_ARGUMENT: zenith_status = -1;
/// An argument had a value outside its domain (zero batch size, invalid UTF-8, ...).
pub const ZENITH_ERR_INVALID_ARGUMENT: zenith_status = -2;
/// The operating system reported an I/O failure.
pub const ZENITH_ERR_IO: zenith_status = -3;
/// A path does not exist.
pub const ZENITH_ERR_NOT_FOUND: zenith_status = -4;
/// A file is not in the expected format, or is truncated or corrupt.
pub const ZENITH_ERR_FORMAT: zenith_status = -5;
/// The request is valid but this build or this data cannot serve it.
pub const ZENITH_ERR_UNSUPPORTED: zenith_status = -6;
/// A panic inside Zenith was caught at the C boundary (a bug: please report it).
pub const ZENITH_ERR_PANIC: zenith_status = -7;
/// An internal invariant was broken (a bug: please report it).
pub const ZENITH_ERR_INTERNAL: zenith_status = -8;

/// Shards of one dataset have different schemas (the message names both files).
pub const ZENITH_ERR_SCHEMA_MISMATCH: zenith_status = -9;

/// A caller's buffer is too small; the call reported the size it needs.
pub const ZENITH_ERR_BUFFER_TOO_SMALL: zenith_status = -10;

/// Reading the data would take more memory than the loader may use (its memory budget) or than
/// the allocator could give: a file whose metadata claims more rows, values or bytes than fit.
pub const ZENITH_ERR_OUT_OF_MEMORY: zenith_status = -11;

/// A scheduler call named a job id, node name or queue that already exists.
pub const ZENITH_ERR_ALREADY_EXISTS: zenith_status = -12;

/// A scheduler call that the job's or node's current state does not allow: an illegal job
/// transition, cancelling a finished job, a clock that went backwards, a quota below its usage,
/// or a scheduler whose journal failed earlier.
pub const ZENITH_ERR_INVALID_STATE: zenith_status = -13;

/// No usable device: the GPU driver library (`libcuda.so`) is absent (the message names the
/// names searched), no device is visible, or the requested device ordinal does not exist.
pub const ZENITH_ERR_NO_DEVICE: zenith_status = -14;

/// An engine event failed in one of its stages (a native stage's error, a WASM plugin's trap,
/// timeout, out-of-memory or malformed result): `zenith_engine_poll` reports it in the event's
/// place, with the event's sequence number, and the message names the stage and the reason. The
/// engine goes on. A loader batch that fails in a loader stage (`zenith_loader_options_add_stage`)
/// is reported with this status too, by the call that would have delivered it; the message names
/// the stage, the batch and the reason.
pub const ZENITH_ERR_EVENT_FAILED: zenith_status = -15;

/// The fixed, static description of a status code, for messages and logs.
pub fn status_description(status: zenith_status) -> &'static CStr {
    match status {
        ZENITH_OK => c"ok",
        ZENITH_DONE => c"done (end of stream or epoch)",
        ZENITH_WOULD_BLOCK => c"would block (ring full or empty, or no batch ready in time)",
        ZENITH_ERR_NULL_ARGUMENT => c"null argument",
        ZENITH_ERR_INVALID_ARGUMENT => c"invalid argument",
        ZENITH_ERR_IO => c"I/O error",
        ZENITH_ERR_NOT_FOUND => c"not found",
        ZENITH_ERR_FORMAT => c"invalid or corrupt data format",
        ZENITH_ERR_UNSUPPORTED => c"unsupported",
        ZENITH_ERR_PANIC => c"internal panic",
        ZENITH_ERR_INTERNAL => c"internal error",
        ZENITH_ERR_SCHEMA_MISMATCH => c"schema mismatch between shards",
        ZENITH_ERR_BUFFER_TOO_SMALL => c"buffer too small",
        ZENITH_ERR_OUT_OF_MEMORY => {
            c"out of memory (over the memory budget or the allocator's limit)"
        }
        ZENITH_ERR_ALREADY_EXISTS => c"already exists",
        ZENITH_ERR_INVALID_STATE => c"not allowed in the current state",
        ZENITH_ERR_NO_DEVICE => c"no device (no GPU driver, no device, or no such ordinal)",
        ZENITH_ERR_EVENT_FAILED => c"an engine event or a loader batch failed in a stage",
        _ => c"unknown status code",
    }
}

/// The status an [`Error`] of the core is reported as (the core's [`zenith_core::ErrorKind::abi_status`]; a
/// test below checks it against the constants above).
pub fn status_of(error: &Error) -> zenith_status {
    error.kind().abi_status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zenith_core::ErrorKind;

    #[test]
    fn each_error_kind_reports_its_named_status() {
        for (kind, status) in [
            (ErrorKind::NullArgument, ZENITH_ERR_NULL_ARGUMENT),
            (ErrorKind::InvalidArgument, ZENITH_ERR_INVALID_ARGUMENT),
            (ErrorKind::Io, ZENITH_ERR_IO),
            (ErrorKind::NotFound, ZENITH_ERR_NOT_FOUND),
            (ErrorKind::Format, ZENITH_ERR_FORMAT),
            (ErrorKind::Unsupported, ZENITH_ERR_UNSUPPORTED),
            (ErrorKind::Panic, ZENITH_ERR_PANIC),
            (ErrorKind::Internal, ZENITH_ERR_INTERNAL),
            (ErrorKind::SchemaMismatch, ZENITH_ERR_SCHEMA_MISMATCH),
            (ErrorKind::BufferTooSmall, ZENITH_ERR_BUFFER_TOO_SMALL),
            (ErrorKind::OutOfMemory, ZENITH_ERR_OUT_OF_MEMORY),
            (ErrorKind::NoDevice, ZENITH_ERR_NO_DEVICE),
            (ErrorKind::Stage, ZENITH_ERR_EVENT_FAILED),
        ] {
            assert_eq!(kind.abi_status(), status, "{kind:?}");
        }
    }
}
