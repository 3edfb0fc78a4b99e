//! # zenith-engine
//!
//! An event pipeline: callers publish Arrow record batches (events), a pool of worker threads
//! runs each event through a chain of transform [`stage`]s (native Rust or C callbacks, or
//! sandboxed WASM plugins), and consumers poll the results out in publish order.
//!
//! Guarantees ([`Engine`]): the number of events in flight (published, not yet polled) is bounded
//! by count and bytes, so a slow consumer slows publishers down (publish waits up to its
//! deadline, then gives the event back); every published event is polled exactly once, either
//! transformed or as an [`EventFailure`] naming the event, the stage and the reason; dropping the
//! engine with events in flight releases them and counts them.

pub mod engine;
pub mod event;
pub mod metrics;
pub mod options;
pub mod stage;

pub use engine::{Engine, EngineStats, PollOutcome, PublishError};
pub use event::{EventFailure, FailureKind};
pub use options::{EngineOptions, Pinning};
pub use stage::{Stage, StageError};
