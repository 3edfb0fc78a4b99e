//! The library version: compile-time constants that cbindgen copies into the header, and the
//! run-time queries to compare them with.
//!
//! A unit test checks these literals against `Cargo.toml`; the C tests check them against
//! `zenith_version()` at run time.

use std::ffi::c_char;

/// Major version of the library (the header this was generated with).
pub const ZENITH_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const ZENITH_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const ZENITH_VERSION_PATCH: u32 = 0;
/// `MAJOR * 10000 + MINOR * 100 + PATCH`, for `#if ZENITH_VERSION_NUMBER >= ...` checks.
pub const ZENITH_VERSION_NUMBER: u32 = 100;

/// The version as text, e.g. `"0.1.0"`.
const VERSION_TEXT: &std::ffi::CStr = c"0.1.0";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_cargo_toml() {
        let cargo = env!("CARGO_PKG_VERSION");
        let parts = [
            ZENITH_VERSION_MAJOR,
            ZENITH_VERSION_MINOR,
            ZENITH_VERSION_PATCH,
        ];
        let joined = parts.map(|p| p.to_string()).join(".");
        assert_eq!(joined, cargo);
        assert_eq!(VERSION_TEXT.to_str().unwrap(), cargo);
        assert_eq!(
            ZENITH_VERSION_NUMBER,
            ZENITH_VERSION_MAJOR * 10000 + ZENITH_VERSION_MINOR * 100 + ZENITH_VERSION_PATCH
        );
    }
}
