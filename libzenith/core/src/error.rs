//! The one error type of the core, and the coarse [`ErrorKind`] every binding maps to its own
//! codes.
//!
//! Every fallible operation in the core returns [`Result`]; the C ABI crate turns an [`Error`]'s
//! [`ErrorKind`] into a `zenith_status` and keeps the message in a `zenith_error` object. The core
//! itself knows nothing of C status values.

use std::path::{Path, PathBuf};

use arrow_schema::ArrowError;

/// Shorthand for results whose error is the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: what a caller can do about it, without the details.
/// Bindings map each kind to their own code (the C ABI to a `ZENITH_ERR_*` status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A required pointer argument was NULL.
    NullArgument,
    /// An argument had a value outside its domain.
    InvalidArgument,
    /// A path that does not exist or holds no data.
    NotFound,
    /// Shards of one dataset whose schemas differ.
    SchemaMismatch,
    /// An operating-system I/O failure.
    Io,
    /// Data not in its claimed format, truncated or corrupt.
    Format,
    /// A caller's buffer is too small.
    BufferTooSmall,
    /// More memory than allowed (the memory budget) or than the allocator could give.
    OutOfMemory,
    /// A valid request this build or this data cannot serve.
    Unsupported,
    /// A caught panic.
    Panic,
    /// A broken invariant.
    Internal,
    /// No usable device: no GPU driver, no device, or the ordinal does not exist.
    NoDevice,
    /// A loader stage failed on a batch.
    Stage,
}

impl ErrorKind {
    /// The `zenith_status` the C ABI reports this kind as (`ZENITH_ERR_*` in `zenith.h`), which the
    /// CLI's exit codes follow too. Statuses are appended and never reused; a kind newer than the
    /// C ABI is reported as an internal error (-8) until the ABI gives it a status of its own.
    pub const fn abi_status(self) -> i32 {
        match self {
            ErrorKind::NullArgument => -1,
            ErrorKind::InvalidArgument => -2,
            ErrorKind::Io => -3,
            ErrorKind::NotFound => -4,
            ErrorKind::Format => -5,
            ErrorKind::Unsupported => -6,
            ErrorKind::Panic => -7,
            ErrorKind::Internal => -8,
            ErrorKind::SchemaMismatch => -9,
            ErrorKind::BufferTooSmall => -10,
            ErrorKind::OutOfMemory => -11,
            ErrorKind::NoDevice => -14,
            ErrorKind::Stage => -15,
        }
    }
}

/// Everything that can go wrong in Zenith, grouped by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required pointer argument was NULL (only produced by the FFI layer).
    #[error("argument `{0}` must not be NULL")]
    NullArgument(&'static str),

    /// An argument had a value outside its domain (zero batch size, bad UTF-8, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A path that does not exist, or that holds no data files.
    #[error("{}: {reason}", path.display())]
    NotFound {
        /// The path the user gave.
        path: PathBuf,
        /// What is missing ("no such file or directory", "no data files found").
        reason: String,
    },

    /// Shards of one dataset whose schemas differ.
    #[error("schema mismatch: {} has {first_schema}, but {} has {other_schema}", first.display(), other.display())]
    SchemaMismatch {
        /// The file whose schema the dataset uses.
        first: PathBuf,
        /// Its schema, rendered.
        first_schema: String,
        /// The file that differs.
        other: PathBuf,
        /// Its schema, rendered.
        other_schema: String,
    },

    /// An operating-system I/O failure on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file the operation was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A file that is not in the format it claims to be, or is truncated or corrupt.
    #[error("{}: {message}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A caller's buffer cannot hold the result; `needed` bytes are.
    #[error("buffer too small: {needed} bytes needed, {given} given")]
    BufferTooSmall {
        /// Bytes the result needs.
        needed: usize,
        /// Bytes the caller offered.
        given: usize,
    },

    /// Serving the request would take more memory than allowed: more than the memory budget, or
    /// more than the allocator could give (a size taken from a file that claims more rows,
    /// values or bytes than fit). Nothing was allocated for it.
    #[error("out of memory: {what} needs {needed} bytes, more than {limit}")]
    OutOfMemory {
        /// What needed the memory (names the file where there is one).
        what: String,
        /// Bytes it needed (at least).
        needed: u64,
        /// The limit it ran into: "the memory budget (N bytes)", "what the allocator could give".
        limit: String,
    },

    /// A valid request this build or this data cannot serve.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// A panic caught at the FFI boundary (a bug in Zenith; please report it).
    #[error("internal panic: {0}")]
    Panic(String),

    /// A broken invariant inside Zenith or one of its dependencies.
    #[error("internal error: {0}")]
    Internal(String),

    /// No usable device: the GPU driver library is absent (the message names what was searched),
    /// no device is visible, or the requested ordinal does not exist.
    #[error("no device: {0}")]
    NoDevice(String),

    /// A loader stage (see [`crate::loader::stage`]) failed on a batch; that batch only.
    #[error("stage `{stage}` failed on batch {batch}: {reason}")]
    Stage {
        /// The stage's name.
        stage: String,
        /// The batch's index in its epoch.
        batch: u64,
        /// What the stage said.
        reason: String,
    },
}

impl Error {
    /// The kind of this error (what bindings turn into a status code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NullArgument(_) => ErrorKind::NullArgument,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::SchemaMismatch { .. } => ErrorKind::SchemaMismatch,
            Error::Io { .. } => ErrorKind::Io,
            Error::Format { .. } => ErrorKind::Format,
            Error::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            Error::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Panic(_) => ErrorKind::Panic,
            Error::Internal(_) => ErrorKind::Internal,
            Error::NoDevice(_) => ErrorKind::NoDevice,
            Error::Stage { .. } => ErrorKind::Stage,
        }
    }

    /// Builds the error for an I/O failure on `path`, mapping "not found" to [`Error::NotFound`].
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            // An error with words of its own (a remote store's "404 Not Found: NoSuchBucket")
            // keeps them; the operating system's says what it always says.
            match source.get_ref() {
                Some(inner) => Error::not_found(path, inner.to_string()),
                None => Error::not_found(path, "no such file or directory"),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Builds a [`Error::NotFound`] for `path`.
    pub fn not_found(path: &Path, reason: impl Into<String>) -> Self {
        Error::NotFound {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// Builds a [`Error::Format`] for `path`.
    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// A copy of this error (the same variant, status and message), for errors that several
    /// consumers observe, such as a chunk whose decoding failed.
    pub fn replicate(&self) -> Error {
        match self {
            Error::NullArgument(name) => Error::NullArgument(name),
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::NotFound { path, reason } => Error::NotFound {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::SchemaMismatch {
                first,
                first_schema,
                other,
                other_schema,
            } => Error::SchemaMismatch {
                first: first.clone(),
                first_schema: first_schema.clone(),
                other: other.clone(),
                other_schema: other_schema.clone(),
            },
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Format { path, message } => Error::Format {
                path: path.clone(),
                message: message.clone(),
            },
            Error::BufferTooSmall { needed, given } => Error::BufferTooSmall {
                needed: *needed,
                given: *given,
            },
            Error::OutOfMemory {
                what,
                needed,
                limit,
            } => Error::OutOfMemory {
                what: what.clone(),
                needed: *needed,
                limit: limit.clone(),
            },
            Error::Unsupported(m) => Error::Unsupported(m.clone()),
            Error::Panic(m) => Error::Panic(m.clone()),
            Error::Internal(m) => Error::Internal(m.clone()),
            Error::NoDevice(m) => Error::NoDevice(m.clone()),
            Error::Stage {
                stage,
                batch,
                reason,
            } => Error::Stage {
                stage: stage.clone(),
                batch: *batch,
                reason: reason.clone(),
            },
        }
    }

    /// Wraps this error for APIs that speak [`ArrowError`] (record batch readers, C streams);
    /// the message is kept verbatim.
    ///
    /// The variant is chosen so that C stream consumers get a meaningful errno from
    /// `get_next`: I/O failures as `EIO`, bad data or arguments as `EINVAL`, unsupported
    /// requests as `ENOSYS`, out of memory as `ENOMEM`.
    pub fn into_arrow(self) -> ArrowError {
        match self {
            Error::Io { .. } | Error::NotFound { .. } => {
                let message = self.to_string();
                ArrowError::IoError(message.clone(), std::io::Error::other(message))
            }
            Error::Format { .. } | Error::SchemaMismatch { .. } => {
                ArrowError::ParseError(self.to_string())
            }
            Error::InvalidArgument(message) => ArrowError::InvalidArgumentError(message),
            Error::Unsupported(message) => ArrowError::NotYetImplemented(message),
            Error::OutOfMemory { .. } => ArrowError::MemoryError(self.to_string()),
            other => ArrowError::ExternalError(Box::new(other)),
        }
    }

    /// An [`Error::OutOfMemory`] for `what` needing `needed` bytes over a memory budget of
    /// `budget` bytes.
    pub fn over_budget(what: impl Into<String>, needed: u64, budget: u64) -> Self {
        Error::OutOfMemory {
            what: what.into(),
            needed,
            limit: format!("the memory budget ({budget} bytes)"),
        }
    }

    /// An [`Error::OutOfMemory`] for an allocation of `needed` bytes for `what` that the
    /// allocator refused (a failed `try_reserve`).
    pub fn alloc_failed(what: impl Into<String>, needed: u64) -> Self {
        Error::OutOfMemory {
            what: what.into(),
            needed,
            limit: "what the allocator could give".into(),
        }
    }

    /// Wraps an Arrow error met while decoding `path` as a format error.
    pub fn arrow_format(path: &Path, source: ArrowError) -> Self {
        Error::format(path, source.to_string())
    }
}

impl From<ArrowError> for Error {
    /// Arrow errors that escape without file context are invariant violations on our side:
    /// decoding paths attach the path themselves through [`Error::arrow_format`].
    fn from(source: ArrowError) -> Self {
        match source {
            ArrowError::IoError(message, _) => Error::Internal(format!("I/O: {message}")),
            ArrowError::InvalidArgumentError(message) => Error::InvalidArgument(message),
            ArrowError::NotYetImplemented(message) => Error::Unsupported(message),
            other => Error::Internal(other.to_string()),
        }
    }
}
