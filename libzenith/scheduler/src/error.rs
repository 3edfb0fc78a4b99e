//! The scheduler's one error type, and the coarse [`ErrorKind`] a binding maps to its status codes.
//!
//! Every fallible call returns [`Result`]. A call that fails leaves the scheduler exactly as it
//! was (nothing half-applied, nothing journaled), with one exception stated on
//! [`Error::JournalWrite`].

use std::fmt;

use crate::model::JobId;
use crate::state::JobState;

/// Shorthand for results whose error is the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is, without the details: what a caller can do about it.
/// The C ABI maps each kind to one `ZENITH_ERR_*` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value outside its domain: a job or node spec, a name, a limit, a command.
    InvalidArgument,
    /// A job, node or queue the scheduler does not know.
    NotFound,
    /// A job id, node name or queue name already in use.
    AlreadyExists,
    /// A call that the job's or node's current state does not allow (an illegal job transition,
    /// cancelling a finished job, a clock that went backwards, a quota below its usage).
    InvalidState,
    /// Reading or writing the journal failed at the operating-system level.
    Io,
    /// A journal that is not in the format, is corrupt, or does not replay to the same decisions.
    Format,
    /// A broken invariant of the scheduler itself (a bug).
    Internal,
}

/// Which rule a rejected value broke (see [`Error::Invalid`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Empty where a value is required.
    Empty,
    /// Longer than allowed (lengths in bytes, counts in items).
    TooLong {
        /// The limit.
        max: usize,
        /// What was given.
        len: usize,
    },
    /// Contains a NUL byte.
    ContainsNul,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Contains a character the field does not allow.
    InvalidChar(char),
    /// A number outside its range.
    OutOfRange {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// What was given.
        value: u64,
    },
    /// A path that breaks the path rules (see [`crate::model::Command`]).
    BadPath(&'static str),
    /// The same name or index twice.
    Duplicate(String),
    /// Fields that contradict each other.
    Inconsistent(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong { max, len } => write!(f, "is {len} long, the limit is {max}"),
            Problem::ContainsNul => f.write_str("contains a NUL byte"),
            Problem::InvalidUtf8 => f.write_str("is not valid UTF-8"),
            Problem::InvalidChar(c) => write!(f, "contains the character {c:?}, not allowed here"),
            Problem::OutOfRange { min, max, value } => {
                write!(f, "is {value}, outside {min}..={max}")
            }
            Problem::BadPath(why) => write!(f, "is not an acceptable path: {why}"),
            Problem::Duplicate(what) => write!(f, "holds {what} twice"),
            Problem::Inconsistent(why) => f.write_str(why),
        }
    }
}

/// Everything that can go wrong in the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A field of a spec or an argument broke a rule. `field` names it the way a user wrote it
    /// (`job.member.gpu_milli`, `command.env[2].name`, `node.nvlink_islands[1]`).
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// The rule it broke.
        problem: Problem,
    },
    /// A job id that is already known (ids are never reused, also after a job finished).
    DuplicateJob(JobId),
    /// A job id the scheduler does not know.
    UnknownJob(JobId),
    /// A node name already in use by a node that was not removed.
    DuplicateNode(String),
    /// A node name the scheduler does not know (or a removed node).
    UnknownNode(String),
    /// A queue name that is not configured while implicit queues are off, or a cohort loop.
    UnknownQueue(String),
    /// A job transition the state machine does not allow.
    IllegalTransition {
        /// The job.
        job: JobId,
        /// Its state.
        from: JobState,
        /// The state the call asked for.
        to: JobState,
    },
    /// A call that needs a live job on a job that already finished.
    JobFinished {
        /// The job.
        job: JobId,
        /// Its terminal state.
        state: JobState,
    },
    /// A call whose `now` is earlier than the latest `now` the scheduler saw.
    ClockWentBackwards {
        /// The latest time seen, in ms.
        last: u64,
        /// The time given, in ms.
        now: u64,
    },
    /// A queue's new limits are below what its admitted jobs already use.
    QuotaBelowUsage(String),
    /// More distinct GPU types than the scheduler tracks (64).
    TooManyGpuTypes,
    /// A journal write failed. The call's change is already applied in memory but not on disk:
    /// the scheduler refuses every further state-changing call ([`Error::Poisoned`]); restore
    /// from the journal to continue.
    JournalWrite {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// A scheduler whose journal failed earlier: restore from the journal.
    Poisoned,
    /// A journal that cannot be replayed.
    Journal {
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A snapshot line is corrupt, or the snapshot does not restore to the state it recorded.
    Snapshot {
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading a file failed.
    Io {
        /// What was being read.
        what: String,
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// Malformed input data for the simulator (trace CSV, command line).
    Data {
        /// Where (file:line, or the option).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// Compaction needs a journal file (see [`crate::Scheduler::open_journal`]).
    NoJournalFile,
    /// A broken internal invariant (a bug in the scheduler; please report it).
    Internal(String),
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } | Error::TooManyGpuTypes | Error::Data { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::UnknownJob(_) | Error::UnknownNode(_) | Error::UnknownQueue(_) => {
                ErrorKind::NotFound
            }
            Error::DuplicateJob(_) | Error::DuplicateNode(_) => ErrorKind::AlreadyExists,
            Error::IllegalTransition { .. }
            | Error::JobFinished { .. }
            | Error::ClockWentBackwards { .. }
            | Error::QuotaBelowUsage(_)
            | Error::Poisoned
            | Error::NoJournalFile => ErrorKind::InvalidState,
            Error::JournalWrite { .. } | Error::Io { .. } => ErrorKind::Io,
            Error::Journal { .. } | Error::Snapshot { .. } => ErrorKind::Format,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: Problem) -> Error {
        Error::Invalid {
            field: field.into(),
            problem,
        }
    }

    pub(crate) fn io(what: impl Into<String>, e: &std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { field, problem } => write!(f, "invalid {field}: {problem}"),
            Error::DuplicateJob(id) => write!(f, "job {id} already exists"),
            Error::UnknownJob(id) => write!(f, "unknown job {id}"),
            Error::DuplicateNode(name) => write!(f, "node {name:?} already exists"),
            Error::UnknownNode(name) => write!(f, "unknown node {name:?}"),
            Error::UnknownQueue(name) => write!(f, "unknown queue {name:?}"),
            Error::IllegalTransition { job, from, to } => {
                write!(f, "job {job}: illegal transition {from} -> {to}")
            }
            Error::JobFinished { job, state } => write!(f, "job {job} already finished ({state})"),
            Error::ClockWentBackwards { last, now } => write!(
                f,
                "clock went backwards: now = {now} ms, but the scheduler already saw {last} ms"
            ),
            Error::QuotaBelowUsage(q) => {
                write!(f, "queue {q:?}: the new limits are below its current usage")
            }
            Error::TooManyGpuTypes => f.write_str("more than 64 distinct GPU types"),
            Error::JournalWrite { message, .. } => write!(
                f,
                "journal write failed ({message}); the scheduler is poisoned, restore it from the journal"
            ),
            Error::Poisoned => {
                f.write_str("the scheduler's journal failed earlier; restore it from the journal")
            }
            Error::Journal { line, reason } => write!(f, "journal line {line}: {reason}"),
            Error::Snapshot { line, reason } => write!(f, "snapshot line {line}: {reason}"),
            Error::NoJournalFile => write!(
                f,
                "this scheduler has no journal file to compact (create_journal / open_journal)"
            ),
            Error::Io { what, message, .. } => write!(f, "{what}: {message}"),
            Error::Data { at, reason } => write!(f, "{at}: {reason}"),
            Error::Internal(what) => write!(f, "internal error (a bug): {what}"),
        }
    }
}

impl std::error::Error for Error {}
