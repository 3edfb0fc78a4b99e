//! The contract between the slot ring and what actually moves bytes: a copy engine.
//!
//! The ring decides when memory may be reused; the engine allocates it, starts copies and reports
//! their completion. CUDA (`cuMemcpyHtoDAsync` on a copy stream, one event per slot) and a host
//! engine (memcpy on a thread, flags as events, for machines without a GPU) implement it, so the
//! reuse rules are tested everywhere.

use std::time::Instant;

use zenith_core::Result;

/// Moves bytes from host staging memory to device memory asynchronously.
///
/// The ring guarantees: the source and destination of a submitted copy are neither written,
/// reused nor dropped before the copy's event reported completion.
pub trait CopyEngine: Send + Sync + 'static {
    /// Host memory one slot stages a batch in (pinned memory for CUDA).
    type Staging: Send;
    /// Device memory one batch lands in.
    type Device: Send;
    /// The completion of one copy.
    type Event: Clone + Send + Sync;

    /// Allocates staging memory of `bytes` bytes.
    fn alloc_staging(&self, bytes: usize) -> Result<Self::Staging>;
    /// The staging memory, for workers to gather a batch into.
    fn staging_bytes(staging: &mut Self::Staging) -> &mut [u8];
    /// Allocates device memory of `bytes` bytes.
    fn alloc_device(&self, bytes: usize) -> Result<Self::Device>;
    /// Starts copying the first `len` bytes of `src` to the start of `dst`; the returned event
    /// completes when the copy finished.
    fn submit(&self, src: &Self::Staging, dst: &Self::Device, len: usize) -> Result<Self::Event>;
    /// Whether the copy behind `event` finished (never blocks).
    fn query(&self, event: &Self::Event) -> Result<bool>;
    /// Waits until the copy behind `event` finished or `deadline` passed; `Ok(false)` on the
    /// deadline.
    fn wait(&self, event: &Self::Event, deadline: Instant) -> Result<bool>;
}
