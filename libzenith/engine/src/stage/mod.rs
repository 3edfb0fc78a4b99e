//! Transform stages: what runs on each event. A stage is shared by every worker and called
//! concurrently, one event per call.
//!
//! - [`native`]: a Rust closure, or a C callback taking and returning Arrow C Data structs.
//! - [`wasm`] (cargo feature `wasm`): a sandboxed WebAssembly plugin (plugin ABI v1,
//!   `docs/plugins.md`).
//!
//! [`abi`] is plugin ABI v1's descriptor layout and the validation of a plugin's output, plain
//! byte-slice code (also built without the `wasm` feature, for the fuzz target).
//!
//! [`loader::LoaderStage`] runs any of them as a loader stage, on the loader's workers.

pub mod abi;
pub mod loader;
pub mod native;
#[cfg(feature = "wasm")]
pub mod wasm;

use std::fmt;

use arrow_array::RecordBatch;

use crate::event::FailureKind;

/// Why a stage could not transform one event. Fails that event only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageError {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What happened, for the user.
    pub message: String,
}

impl StageError {
    /// A failure of the given kind.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A stage's own error ([`FailureKind::Stage`]).
    pub fn stage(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Stage, message)
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for StageError {}

/// A transform on events. Called from several worker threads at once.
pub trait Stage: Send + Sync {
    /// The stage's name, in failure reports and metrics.
    fn name(&self) -> &str;

    /// Transforms one event. An error fails this event only.
    fn process(&self, batch: RecordBatch) -> Result<RecordBatch, StageError>;
}
