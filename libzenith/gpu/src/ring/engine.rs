//! The contract between the slot ring and what actually moves bytes: a copy engine.
//!
//! The ring decides when memory may be reused; the engine allocates it, starts copies and reports
//! their completion. CUDA (`cuMemcpyHtoDAsync` on a copy stream, one event per slot) and a host
//! engine (memcpy on a thread, flags as events, for machines without a GPU) implement it, so the
//! reuse rules are tested everywhere.

use std::time::Instant;

use zenith_core::Result;

use crate::dlpack_stream::ConsumerStream;

/// Where one copied range comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopySource {
    /// The submit's staging memory, from this byte offset.
    Staging {
        /// Byte offset in the staging memory.
        offset: usize,
    },
    /// Host memory outside the ring (a batch's own buffer), valid and unwritten until the
    /// copy's event completed: the ring keeps the owner alive until then.
    Host(*const u8),
}

/// One range of a copy: `len` bytes from `source` to `device_offset` in the device buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRange {
    /// Where the bytes come from.
    pub source: CopySource,
    /// Bytes.
    pub len: usize,
    /// Where they land, in bytes from the device buffer's start.
    pub device_offset: usize,
}

// SAFETY: a `CopySource::Host` pointer is only dereferenced by the engine while the ring keeps
// its owner alive (the contract of `CopyEngine::submit`).
unsafe impl Send for CopyRange {}

/// Moves bytes from host memory to device memory asynchronously.
///
/// The ring guarantees: the sources and destination of a submitted copy are neither written,
/// reused nor dropped before the copy's event reported completion.
pub trait CopyEngine: Send + Sync + 'static {
    /// Host memory one slot stages a batch in (pinned memory for CUDA), with the slot's
    /// completion event.
    type Staging: Send;
    /// Device memory one batch lands in.
    type Device: Send;
    /// The completion of one copy.
    type Event: Clone + Send + Sync;

    /// Allocates staging memory of `bytes` bytes (0: none yet, only the slot's event).
    fn alloc_staging(&self, bytes: usize) -> Result<Self::Staging>;
    /// Replaces `staging`'s memory by `bytes` bytes (its contents are not kept); the slot's
    /// event stays. Called only while no copy out of it is in flight.
    fn grow_staging(&self, staging: &mut Self::Staging, bytes: usize) -> Result<()>;
    /// The staging memory, for workers to gather a batch into.
    fn staging_bytes(staging: &mut Self::Staging) -> &mut [u8];
    /// Allocates device memory of `bytes` bytes.
    fn alloc_device(&self, bytes: usize) -> Result<Self::Device>;
    /// The size of `device` in bytes.
    fn device_len(device: &Self::Device) -> usize;
    /// Starts copying `ranges` into `dst` (staged ranges from `src`, host ranges from their
    /// pointers) in one submission; the returned event completes when every range landed.
    ///
    /// On failure nothing of the submission is still in flight (an engine that issued part of
    /// it waits for that part before it returns).
    fn submit(
        &self,
        src: &Self::Staging,
        dst: &Self::Device,
        ranges: &[CopyRange],
    ) -> Result<Self::Event>;
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

/// One range of a submission resolved to addresses: the source's first byte, the bytes, and
/// the offset in the device buffer.
pub type ResolvedRange = (*const u8, usize, usize);

/// Checks that every range of a submission stays inside the staging memory (`staging_len`
/// bytes at `staging`) and the device buffer (`device_len` bytes), and resolves each non-empty
/// range's source to an address: what every engine does before it copies.
///
/// On failure: [`zenith_core::Error::InvalidArgument`] naming the range.
pub fn resolve_ranges(
    staging: *const u8,
    staging_len: usize,
    device_len: usize,
    ranges: &[CopyRange],
) -> Result<Vec<ResolvedRange>> {
    let mut resolved = Vec::with_capacity(ranges.len());
    for range in ranges {
        let fits = |start: usize, limit: usize| {
            start.checked_add(range.len).is_some_and(|end| end <= limit)
        };
        let source = match range.source {
            CopySource::Staging { offset } if fits(offset, staging_len) => {
                Some(staging.wrapping_add(offset))
            }
            CopySource::Host(ptr) if !ptr.is_null() || range.len == 0 => Some(ptr),
            _ => None,
        };
        match source {
            Some(source) if fits(range.device_offset, device_len) => {
                if range.len > 0 {
                    resolved.push((source, range.len, range.device_offset));
                }
            }
            _ => {
                return Err(zenith_core::Error::InvalidArgument(format!(
                    "a copy range of {} bytes from {:?} to device offset {} does not fit its \
                     buffers ({staging_len} staging and {device_len} device bytes)",
                    range.len, range.source, range.device_offset
                )));
            }
        }
    }
    Ok(resolved)
}

/// Merges staged ranges that sit at the same distance in staging and device memory (columns
/// staged at their device offsets) into one range each: one copy instead of one per column.
pub fn coalesce(ranges: &[CopyRange]) -> Vec<CopyRange> {
    let mut merged: Vec<CopyRange> = Vec::with_capacity(ranges.len());
    for &range in ranges.iter().filter(|r| r.len > 0) {
        if let Some(last) = merged.last_mut() {
            if let (CopySource::Staging { offset: first }, CopySource::Staging { offset }) =
                (last.source, range.source)
            {
                let staged_gap = offset.checked_sub(first);
                let device_gap = range.device_offset.checked_sub(last.device_offset);
                if staged_gap.is_some_and(|gap| gap >= last.len) && staged_gap == device_gap {
                    last.len = range.device_offset + range.len - last.device_offset;
                    continue;
                }
            }
        }
        merged.push(range);
    }
    merged
}
