//! libzenith's C ABI, and nothing else: thin functions over [`zenith_core`], one module per
//! handle family. This crate builds `libzenith.so` / `libzenith.a`; cbindgen reads this crate
//! alone to generate `include/zenith.h`, so every public constant and type here is C-facing.
//!
//! House rules (see DESIGN.md): every exported body runs inside [`ffi_boundary!`], which turns
//! panics and errors into a `zenith_status` plus an optional `zenith_error`; every pointer is
//! checked with the helpers in [`args`]; handles are opaque boxes created by `_new`/`_open` and
//! destroyed by `_free`.

// C names (`zenith_loader`, ...) are the ABI; Rust naming rules do not apply to them.
#![allow(non_camel_case_types)]

/// Runs the body of an exported function behind the panic boundary.
///
/// * `ffi_boundary!(err: err_ptr, { ...; Ok(status) })` — the body returns
///   `Result<zenith_status>`; an `Err` (or a panic, as `ZENITH_ERR_PANIC`) is stored in `*err_ptr`
///   when it is not NULL and its status is returned.
/// * `ffi_boundary!(err: err_ptr, error_type = E, { ... })` — the same for a body whose error
///   type is `E` (a [`boundary::Reportable`] other than the core's error, e.g. the scheduler's).
/// * `ffi_boundary!(default: value, { ... })` — an infallible body; a panic returns `value`.
macro_rules! ffi_boundary {
    (err: $err:expr, error_type = $ety:ty, $body:block) => {{
        let err_slot: *mut *mut $crate::error::zenith_error = $err;
        // SAFETY: every exported function documents `err` as NULL or writable storage for one
        // `zenith_error *`.
        let err_slot = unsafe { err_slot.as_mut() };
        $crate::boundary::run_fallible(
            err_slot,
            || -> ::std::result::Result<$crate::status::zenith_status, $ety> { $body },
        )
    }};
    (err: $err:expr, $body:block) => {{
        let err_slot: *mut *mut $crate::error::zenith_error = $err;
        // SAFETY: every exported function documents `err` as NULL or writable storage for one
        // `zenith_error *`.
        let err_slot = unsafe { err_slot.as_mut() };
        $crate::boundary::run_fallible(
            err_slot,
            || -> ::zenith_core::Result<$crate::status::zenith_status> { $body },
        )
    }};
    (default: $default:expr, $body:block) => {
        $crate::boundary::run_infallible($default, || $body)
    };
}

pub mod args;
pub mod batch;
pub mod boundary;
pub mod device_stream;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod loader;
pub mod memory;
pub mod options;
pub mod pinned;
pub mod ring;
pub mod scheduler;
pub mod status;
pub mod telemetry;
pub mod topology;
pub mod version;

/// Large freed blocks (decode buffers) are kept for reuse rather than faulting in fresh pages
/// chunk after chunk (see `zenith_core::runtime::block_cache`).
#[global_allocator]
static ALLOCATOR: zenith_core::runtime::block_cache::BlockCacheAllocator =
    zenith_core::runtime::block_cache::BlockCacheAllocator::new();
