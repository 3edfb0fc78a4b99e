//! `zenith_error`: the detailed error a fallible call writes to its last parameter.

use std::ffi::{CString, c_char};

use crate::args;
use crate::status::{ZENITH_OK, status_description, zenith_status};

/// A detailed error: a status code and a human-readable message.
///
/// Created by a failing call that was given a non-NULL `zenith_error **err`; owned by the caller,
/// who frees it with `zenith_error_free`.
pub struct zenith_error {
    code: zenith_status,
    message: CString,
}

impl zenith_error {
    /// A heap-allocated error object describing `error`, ready to hand to C.
    /// A heap-allocated error object with this status and message, ready to hand to C.
    pub(crate) fn from_parts(code: zenith_status, text: &str) -> *mut zenith_error {
        // Interior NULs would truncate the C string; they cannot carry meaning in a message.
        let text = text.replace('\0', "\u{FFFD}");
        let message = CString::new(text).expect("NULs were replaced");
        args::into_handle(zenith_error { code, message })
    }

    /// A heap-allocated error object with a status of the caller's choosing (a status no core
    /// error kind maps to, such as `ZENITH_ERR_EVENT_FAILED`).
    pub(crate) fn boxed_with_code(code: zenith_status, text: &str) -> *mut zenith_error {
        let message = CString::new(text.replace('\0', "\u{FFFD}")).expect("NULs were replaced");
        args::into_handle(zenith_error { code, message })
    }

    /// The status code.
    pub fn code(&self) -> zenith_status {
        self.code
    }

    /// The message (always valid UTF-8: it was made from a Rust string).
    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or_default()
    }
}

/// Returns the status code of `err`.
///
/// NULL policy: `err == NULL` returns `ZENITH_OK` (no error).
/// Thread safety: safe to call concurrently on the same error.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_error_code(err: *const zenith_error) -> zenith_status {
    ffi_boundary!(default: ZENITH_OK, {
        // SAFETY: per the contract above.
        unsafe { err.as_ref() }.map_or(ZENITH_OK, zenith_error::code)
    })
}

/// Returns the message of `err` as a NUL-terminated UTF-8 string.
///
/// Ownership: the string is borrowed from `err` and valid until `zenith_error_free(err)`.
/// NULL policy: `err == NULL` returns an empty string (never NULL).
/// Thread safety: safe to call concurrently on the same error.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_error_message(err: *const zenith_error) -> *const c_char {
    ffi_boundary!(default: c"".as_ptr(), {
        // SAFETY: per the contract above.
        unsafe { err.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// Frees an error returned through a `zenith_error **err` parameter.
///
/// NULL policy: `zenith_error_free(NULL)` does nothing.
///
/// # Safety
/// `err` is NULL or a live error returned by this library, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_error_free(err: *mut zenith_error) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(err) }
    })
}

/// Returns a static, NUL-terminated description of a status code ("not found", ...).
///
/// Unknown codes give "unknown status code". The string has static lifetime; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn zenith_status_str(status: zenith_status) -> *const c_char {
    ffi_boundary!(default: c"".as_ptr(), { status_description(status).as_ptr() })
}
