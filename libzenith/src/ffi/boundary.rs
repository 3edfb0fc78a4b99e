//! What [`ffi_boundary!`] expands to: panic capture and error reporting.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result};
use crate::ffi::error::zenith_error;
use crate::status::zenith_status;

/// Runs a fallible body; errors and panics become a status, and an error object in `*err`.
pub fn run_fallible(
    err: *mut *mut zenith_error,
    body: impl FnOnce() -> Result<zenith_status>,
) -> zenith_status {
    let outcome = catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Error::Panic(panic_message(payload.as_ref()))));
    match outcome {
        Ok(status) => status,
        Err(error) => {
            let status = error.status();
            if !err.is_null() {
                // SAFETY: the caller passes either NULL or a pointer to writable storage for one
                // `zenith_error *` (documented on every function taking `err`).
                unsafe { err.write(zenith_error::boxed(&error)) };
            }
            status
        }
    }
}

/// Runs an infallible body; a panic returns `default` instead of unwinding into C.
pub fn run_infallible<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
