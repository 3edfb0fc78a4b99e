//! The contract between the slot ring and what actually moves bytes: a copy engine.
//!
//! The ring decides when memory may be reused; the engine allocates it, starts copies and reports
//! their completion. CUDA (`cuMemcpyHtoDAsync` on a copy stream, one event per slot) and a host
//! engine (memcpy on a thread, flags as events, for machines without a GPU) implement it, so the
//! reuse rules are tested everywhere.

use std::time::Instant;

use zenith_core::Result;

use crate::dlpack_stream::ConsumerStream;

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

    /// The DLPack / Arrow device type of the engine's device memory (`kDLCUDA` for CUDA; the
    /// host engine's "device" memory is host memory, `kDLCPU`, so tests can read it).
    const DEVICE_TYPE: i32;

    /// The address of `device`'s first byte, as a consumer sees it (a `CUdeviceptr` for CUDA).
    fn device_address(device: &Self::Device) -> u64;

    /// Makes work the consumer queues on `stream` from now on wait for the copy behind `event`
    /// (`cuStreamWaitEvent`), without blocking the calling thread where the engine can.
    /// [`ConsumerStream::NoSync`] does nothing: the consumer synchronises itself.
    fn consumer_wait(&self, event: &Self::Event, stream: ConsumerStream) -> Result<()>;

    /// Marks the point on `stream` after the work the consumer queued so far (its kernels that
    /// may still read a released batch): an event recorded on the consumer's stream. `None`
    /// when the stream needs no marker ([`ConsumerStream::NoSync`], or an engine whose consumer
    /// is synchronous).
    fn record_release(&self, stream: ConsumerStream) -> Result<Option<Self::Event>>;

    /// Orders the next copy into a device buffer after the consumer's release marker `event`
    /// (from [`CopyEngine::record_release`]), waiting until `deadline` where the engine must
    /// block; `Ok(false)` on the deadline. The marker is used up by this call.
    fn reuse_after(&self, event: &Self::Event, deadline: Instant) -> Result<bool>;
}
