//! Run-time version queries, to compare with the `ZENITH_VERSION_*` macros a program was built with.

use std::ffi::c_char;

use crate::version::{VERSION_TEXT, ZENITH_VERSION_NUMBER};

/// Returns the library version as a static NUL-terminated string, e.g. `"0.1.0"`.
///
/// The string has static lifetime; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn zenith_version() -> *const c_char {
    ffi_boundary!(default: c"".as_ptr(), { VERSION_TEXT.as_ptr() })
}

/// Returns the library version as `MAJOR * 10000 + MINOR * 100 + PATCH`, the same encoding as
/// `ZENITH_VERSION_NUMBER`: a program can check that the library it runs with matches the header
/// it was compiled with.
#[unsafe(no_mangle)]
pub extern "C" fn zenith_version_number() -> u32 {
    ffi_boundary!(default: 0, { ZENITH_VERSION_NUMBER })
}
