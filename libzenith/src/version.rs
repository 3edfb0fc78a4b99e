//! The library version, as compile-time constants that cbindgen copies into the header.
//!
//! A unit test checks these literals against `Cargo.toml`; the C tests check them against
//! `zenith_version()` at run time.

/// Major version of the library (the header this was generated with).
pub const ZENITH_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const ZENITH_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const ZENITH_VERSION_PATCH: u32 = 0;
/// `MAJOR * 10000 + MINOR * 100 + PATCH`, for `#if ZENITH_VERSION_NUMBER >= ...` checks.
pub const ZENITH_VERSION_NUMBER: u32 = 100;

/// The version as text, e.g. `"0.1.0"`.
pub const VERSION_TEXT: &std::ffi::CStr = c"0.1.0";

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
