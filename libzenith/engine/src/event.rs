//! What the engine reports for an event that could not be transformed.

use std::fmt;

/// Why a stage failed an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The stage returned an error of its own (a native stage's error, a plugin's status).
    Stage,
    /// A WASM plugin trapped (unreachable, out-of-bounds access, stack overflow, ...).
    Trap,
    /// The stage ran past its CPU time limit for one event.
    Timeout,
    /// The stage needed more memory than its limit.
    OutOfMemory,
    /// The stage's output broke the plugin ABI or the Arrow layout (bounds, overlap, lengths).
    Malformed,
    /// The stage's input is of a kind the stage cannot take (an unsupported column type).
    Unsupported,
    /// A native stage panicked; the panic was caught.
    Panic,
}

impl FailureKind {
    /// A short lower-case name ("trap", "timeout", ...), for messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Stage => "stage error",
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out of memory",
            FailureKind::Malformed => "malformed result",
            FailureKind::Unsupported => "unsupported input",
            FailureKind::Panic => "panic",
        }
    }
}

/// One event that was not delivered: which, where and why. Polled in the event's place, so
/// every published sequence number comes out exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFailure {
    /// The event's sequence number (what publish returned).
    pub sequence: u64,
    /// The index of the failing stage in the chain.
    pub stage_index: usize,
    /// The failing stage's name.
    pub stage: String,
    /// Why it failed.
    pub kind: FailureKind,
    /// The stage's message.
    pub message: String,
}

impl fmt::Display for EventFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} failed in stage {} '{}' ({}): {}",
            self.sequence,
            self.stage_index,
            self.stage,
            self.kind.as_str(),
            self.message
        )
    }
}

impl std::error::Error for EventFailure {}
