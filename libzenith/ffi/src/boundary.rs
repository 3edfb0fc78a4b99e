//! What [`ffi_boundary!`] expands to: panic capture and error reporting.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::zenith_error;
use crate::status::zenith_status;
use zenith_core::{Error, Result};

/// An error a fallible body may return: it knows its status and message, and how to carry a
/// caught panic. [`Error`] of the core is one; a domain with its own error type (the
/// scheduler) implements it too, so every exported function keeps the one boundary.
pub trait Reportable: Sized {
    /// The status the error is reported as.
    fn status(&self) -> zenith_status;
    /// The human-readable message.
    fn message(&self) -> String;
    /// The error for a caught panic with this message.
    fn from_panic(message: String) -> Self;
}

impl Reportable for Error {
    fn status(&self) -> zenith_status {
        crate::status::status_of(self)
    }
    fn message(&self) -> String {
        self.to_string()
    }
    fn from_panic(message: String) -> Self {
        Error::Panic(message)
    }
}

/// Runs a fallible body; errors and panics become a status, and a new error object in `err` when
/// the caller asked for one.
pub fn run_fallible<E: Reportable>(
    err: Option<&mut *mut zenith_error>,
    body: impl FnOnce() -> Result<zenith_status, E>,
) -> zenith_status {
    let outcome = catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(E::from_panic(panic_message(payload.as_ref()))));
    match outcome {
        Ok(status) => status,
        Err(error) => {
            let status = error.status();
            if let Some(slot) = err {
                *slot = zenith_error::from_parts(status, &error.message());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ZENITH_ERR_INVALID_ARGUMENT, ZENITH_ERR_PANIC, ZENITH_OK};

    fn take_error(err: *mut zenith_error) -> (zenith_status, String) {
        assert!(!err.is_null());
        // SAFETY: `err` was just produced by `run_fallible` and is freed here once.
        let boxed = unsafe { Box::from_raw(err) };
        (boxed.code(), boxed.message().to_string())
    }

    #[test]
    fn panics_become_zenith_err_panic_with_their_message() {
        let mut err = std::ptr::null_mut();
        let status = run_fallible::<Error>(Some(&mut err), || panic!("boom {}", 42));
        assert_eq!(status, ZENITH_ERR_PANIC);
        let (code, message) = take_error(err);
        assert_eq!(code, ZENITH_ERR_PANIC);
        assert!(message.contains("boom 42"), "{message}");
    }

    #[test]
    fn errors_are_reported_and_success_leaves_err_alone() {
        let mut err = std::ptr::null_mut();
        let status = run_fallible(Some(&mut err), || Err(Error::InvalidArgument("bad".into())));
        assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT);
        let (code, message) = take_error(err);
        assert_eq!(code, ZENITH_ERR_INVALID_ARGUMENT);
        assert_eq!(message, "invalid argument: bad");

        let mut err = std::ptr::null_mut();
        assert_eq!(
            run_fallible::<Error>(Some(&mut err), || Ok(ZENITH_OK)),
            ZENITH_OK
        );
        assert!(err.is_null());
        // A NULL err is allowed: only the status reports the failure.
        let status = run_fallible(None, || Err(Error::InvalidArgument("x".into())));
        assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT);
    }

    #[test]
    fn infallible_bodies_return_their_default_on_panic() {
        assert_eq!(run_infallible(7, || 3), 3);
        assert_eq!(run_infallible(7, || panic!("no")), 7);
    }
}
