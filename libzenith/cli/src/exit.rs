//! What a failed command exits with.
//!
//! | exit | meaning                                   | zenith_status                  |
//! | ---- | ----------------------------------------- | ------------------------------ |
//! | 0    | success                                   | `ZENITH_OK`                    |
//! | 1    | writing the output or a signal set-up failed (not a library error) | |
//! | 2    | usage: bad arguments (clap)               |                                |
//! | 3    | null argument                             | `ZENITH_ERR_NULL_ARGUMENT` -1  |
//! | 4    | invalid argument                          | `ZENITH_ERR_INVALID_ARGUMENT` -2 |
//! | 5    | I/O error                                 | `ZENITH_ERR_IO` -3             |
//! | 6    | not found (missing path, no data files)   | `ZENITH_ERR_NOT_FOUND` -4      |
//! | 7    | format (not the claimed format, corrupt)  | `ZENITH_ERR_FORMAT` -5         |
//! | 8    | unsupported                               | `ZENITH_ERR_UNSUPPORTED` -6    |
//! | 9    | internal panic                            | `ZENITH_ERR_PANIC` -7          |
//! | 10   | internal error                            | `ZENITH_ERR_INTERNAL` -8       |
//! | 11   | schema mismatch between shards            | `ZENITH_ERR_SCHEMA_MISMATCH` -9 |
//! | 12   | buffer too small                          | `ZENITH_ERR_BUFFER_TOO_SMALL` -10 |
//! | 13   | over the memory budget                    | `ZENITH_ERR_OUT_OF_MEMORY` -11 |
//! | 16   | no GPU driver or device                   | `ZENITH_ERR_NO_DEVICE` -14     |
//!
//! (-12 and -13, already-exists and invalid-state, come from the scheduler's C ABI; no subcommand
//! returns them.) A library error exits with `2 - zenith_status`, the status the C ABI returns for the same
//! [`ErrorKind`]: statuses are appended and never reused, so exit codes are stable too. A unit
//! test below checks the table against `include/zenith.h`.

use std::fmt;

use zenith_core::{Error, ErrorKind};

/// Writing the output failed, or a signal handler could not be installed.
pub const FAILURE: u8 = 1;

/// Why a subcommand failed.
#[derive(Debug)]
pub enum Failure {
    /// The library failed; the exit code comes from its kind.
    Core(Error),
    /// Standard output was closed by its reader (`zenith ... | head`): exit quietly.
    BrokenPipe,
    /// Anything else outside the library (writing stdout, installing signal handlers).
    Other(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Core(error) => exit_code_of(error.kind()),
            Failure::BrokenPipe => 0,
            Failure::Other(_) => FAILURE,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Core(error) => error.fmt(f),
            Failure::BrokenPipe => f.write_str("broken pipe"),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Core(error)
    }
}

/// The exit code for a library error of `kind`: `2 - zenith_status`.
pub fn exit_code_of(kind: ErrorKind) -> u8 {
    u8::try_from(2 - kind.abi_status()).unwrap_or(FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses above are the header's: `#define ZENITH_ERR_NOT_FOUND -4`, ...
    #[test]
    fn statuses_match_the_c_header() {
        let header = include_str!("../../../include/zenith.h");
        let define = |name: &str| -> i32 {
            let line = header
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("{name} is not in zenith.h"));
            line.split_whitespace()
                .nth(2)
                .and_then(|v| v.trim_matches(|c| c == '(' || c == ')').parse().ok())
                .unwrap_or_else(|| panic!("cannot read the value of {line:?}"))
        };
        for (kind, name) in [
            (ErrorKind::NullArgument, "ZENITH_ERR_NULL_ARGUMENT"),
            (ErrorKind::InvalidArgument, "ZENITH_ERR_INVALID_ARGUMENT"),
            (ErrorKind::Io, "ZENITH_ERR_IO"),
            (ErrorKind::NotFound, "ZENITH_ERR_NOT_FOUND"),
            (ErrorKind::Format, "ZENITH_ERR_FORMAT"),
            (ErrorKind::Unsupported, "ZENITH_ERR_UNSUPPORTED"),
            (ErrorKind::Panic, "ZENITH_ERR_PANIC"),
            (ErrorKind::Internal, "ZENITH_ERR_INTERNAL"),
            (ErrorKind::SchemaMismatch, "ZENITH_ERR_SCHEMA_MISMATCH"),
            (ErrorKind::BufferTooSmall, "ZENITH_ERR_BUFFER_TOO_SMALL"),
            (ErrorKind::OutOfMemory, "ZENITH_ERR_OUT_OF_MEMORY"),
            (ErrorKind::NoDevice, "ZENITH_ERR_NO_DEVICE"),
            (ErrorKind::Stage, "ZENITH_ERR_EVENT_FAILED"),
        ] {
            assert_eq!(kind.abi_status(), define(name), "{name}");
            assert_eq!(i32::from(exit_code_of(kind)), 2 - define(name), "{name}");
        }
    }

    #[test]
    fn exit_codes_are_distinct_and_clear_of_success_and_usage() {
        let codes: Vec<u8> = [
            ErrorKind::NullArgument,
            ErrorKind::InvalidArgument,
            ErrorKind::Io,
            ErrorKind::NotFound,
            ErrorKind::Format,
            ErrorKind::Unsupported,
            ErrorKind::Panic,
            ErrorKind::Internal,
            ErrorKind::SchemaMismatch,
            ErrorKind::BufferTooSmall,
        ]
        .map(exit_code_of)
        .to_vec();
        assert_eq!(codes, (3..=12).collect::<Vec<u8>>());
    }
}
