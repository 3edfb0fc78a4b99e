//! The slot ring: batches staged in host slots, copied to device memory, handed to the consumer
//! in submission order.
//!
//! Two reuse rules keep it correct (the allocator-reuse race SPDL found in production):
//! - a staging slot is handed to a worker again only after the copy out of it finished (its
//!   event completed);
//! - device memory is reused only after the consumer released the batch that holds it
//!   ([`DeviceBatch`] dropped).
//!
//! A submission is a list of ranges into one device buffer: ranges staged in the slot, and ranges
//! copied straight from host memory the caller owns ([`HostSource`]: a batch's pinned buffers),
//! whose owners the ring keeps alive until the copy finished. Device buffers and staging memory
//! grow when a batch needs more than they have: a device buffer is reallocated only once the
//! consumer released it (and after the consumer's release markers), staging memory only while no
//! copy reads it.
//!
//! Everything that can wait takes a deadline: a worker waits for a free staging slot, a submit
//! waits for device memory (back-pressure from a slow consumer), the consumer waits for the next
//! copy to finish. A deadline that passes is [`RingError::Deadline`], and nothing changed.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use zenith_core::{Error, Result};

use super::engine::{CopyEngine, CopyRange, CopySource, coalesce};

/// The fewest slots a ring has: one being filled, one copying, one held by the consumer.
pub const MIN_SLOTS: usize = 3;

/// The shape of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Staging slots (at least [`MIN_SLOTS`]).
    pub slots: usize,
    /// Bytes per device buffer when allocated (the largest batch expected); a larger batch grows
    /// the buffer it lands in.
    pub slot_bytes: usize,
    /// Bytes of staging memory per slot allocated up front (0: allocated when a batch first
    /// stages bytes, with [`StagingSlot::reserve`]).
    pub staging_bytes: usize,
    /// Device buffers: batches copied or held by the consumer at once (at least 1).
    pub device_buffers: usize,
}

impl RingConfig {
    /// `slots` staging slots and as many device buffers, of `slot_bytes` each.
    pub fn new(slots: usize, slot_bytes: usize) -> Self {
        RingConfig {
            slots,
            slot_bytes,
            staging_bytes: slot_bytes,
            device_buffers: slots,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.slots < MIN_SLOTS {
            return Err(Error::InvalidArgument(format!(
                "a slot ring needs at least {MIN_SLOTS} slots, not {}",
                self.slots
            )));
        }
        if self.slot_bytes == 0 || self.device_buffers == 0 {
            return Err(Error::InvalidArgument(
                "a slot ring needs slots and device buffers of at least one byte".into(),
            ));
        }
        Ok(())
    }
}

/// What a call waited for when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    /// A staging slot whose copy finished.
    StagingSlot,
    /// Device memory the consumer has not released yet.
    DeviceMemory,
    /// The copy of the next batch.
    Copy,
}

/// A failure of a ring operation.
#[derive(Debug)]
pub enum RingError {
    /// The deadline passed while waiting; nothing changed (a staging slot passed to `submit` went
    /// back to the free slots).
    Deadline(WaitingFor),
    /// The engine failed, or no batch was submitted to wait for.
    Failed(Error),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Deadline(WaitingFor::StagingSlot) => {
                write!(
                    f,
                    "deadline passed waiting for a staging slot whose copy finished"
                )
            }
            RingError::Deadline(WaitingFor::DeviceMemory) => {
                write!(
                    f,
                    "deadline passed waiting for the consumer to release device memory"
                )
            }
            RingError::Deadline(WaitingFor::Copy) => {
                write!(f, "deadline passed waiting for a copy to the device")
            }
            RingError::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for RingError {}

impl From<Error> for RingError {
    fn from(error: Error) -> Self {
        RingError::Failed(error)
    }
}

/// Counters of a ring, for stats and telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Copies submitted.
    pub copies: u64,
    /// Bytes submitted for copying (direct and staged).
    pub bytes: u64,
    /// Bytes copied straight from the caller's host memory ([`HostSource`]).
    pub direct_bytes: u64,
    /// Bytes copied out of staging slots.
    pub staged_bytes: u64,
    /// Times a worker had to wait for a staging slot.
    pub staging_waits: u64,
    /// Times a submit had to wait for the consumer to release device memory.
    pub device_waits: u64,
    /// Times the consumer had to wait for a copy to finish (starvation).
    pub copy_waits: u64,
    /// Device buffers allocated so far (they are reused, never freed before the ring).
    pub device_buffers_allocated: u64,
    /// Device buffers reallocated larger for a batch that did not fit.
    pub device_buffers_grown: u64,
    /// Staging slots reallocated larger for a batch that did not fit.
    pub staging_grown: u64,
}

/// Host memory a submission copies from directly, with what keeps it alive: the ring holds the
/// owner until the copy out of it finished.
pub struct HostSource {
    ptr: *const u8,
    len: usize,
    _owner: Box<dyn Send>,
}

// SAFETY: the pointer is into memory `_owner` keeps alive and nobody writes (the contract of
// `HostSource::new`); the owner itself is `Send`.
unsafe impl Send for HostSource {}

impl HostSource {
    /// `len` bytes at `ptr`, kept alive by `owner`.
    ///
    /// # Safety
    /// `ptr` is valid for reads of `len` bytes for as long as `owner` lives, and nothing writes
    /// them meanwhile. For the CUDA engine the memory is pinned (page-locked), so the
    /// asynchronous copy never reads memory the kernel could move.
    pub unsafe fn new(ptr: *const u8, len: usize, owner: Box<dyn Send>) -> Self {
        HostSource {
            ptr,
            len,
            _owner: owner,
        }
    }

    /// Bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One range of a submission: bytes staged in the slot, or straight from host memory, landing at
/// `device_offset` in the device buffer.
pub struct SubmitRange {
    source: SubmitSource,
    len: usize,
    device_offset: usize,
}

enum SubmitSource {
    Staged { offset: usize },
    Host(HostSource),
}

impl SubmitRange {
    /// `len` bytes from `offset` in the slot's staging memory.
    pub fn staged(offset: usize, len: usize, device_offset: usize) -> Self {
        SubmitRange {
            source: SubmitSource::Staged { offset },
            len,
            device_offset,
        }
    }

    /// The bytes of `source`, copied without staging.
    pub fn host(source: HostSource, device_offset: usize) -> Self {
        SubmitRange {
            len: source.len,
            source: SubmitSource::Host(source),
            device_offset,
        }
    }

    /// The end of the range in the device buffer.
    fn device_end(&self) -> Option<usize> {
        self.device_offset.checked_add(self.len)
    }
}

struct InFlight<E: CopyEngine> {
    seq: u64,
    /// The staging slot, until the copy finished and the slot went back to the free list.
    staging: Option<E::Staging>,
    /// The owners of the host memory copied directly, dropped with the staging slot.
    sources: Vec<HostSource>,
    device: E::Device,
    len: usize,
    event: E::Event,
}

struct State<E: CopyEngine> {
    free_staging: Vec<E::Staging>,
    in_flight: VecDeque<InFlight<E>>,
    /// Released device buffers, each with the consumer's release markers (events on the
    /// consumer's streams after its last use) the next copy into it must be ordered after.
    free_device: Vec<(E::Device, Vec<E::Event>)>,
    next_seq: u64,
    stats: RingStats,
}

struct Shared<E: CopyEngine> {
    // Declared first so it drops first: the engine finishes (or abandons) its copies before the
    // buffers they use are freed with `state`.
    engine: E,
    state: Mutex<State<E>>,
    /// Signalled when a staging slot or device buffer becomes free.
    freed: Condvar,
    /// One consumer at a time takes the oldest batch.
    consumer: Mutex<()>,
    config: RingConfig,
}

impl<E: CopyEngine> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the staging slots of finished copies back to the free list.
    fn reclaim_staging(&self, state: &mut State<E>) -> Result<()> {
        for entry in state.in_flight.iter_mut() {
            if entry.staging.is_some() && self.engine.query(&entry.event)? {
                let staging = entry.staging.take().expect("checked above");
                state.free_staging.push(staging);
                entry.sources.clear();
            }
        }
        Ok(())
    }

    /// Orders reuse of a device buffer after every release marker; false on the deadline.
    fn order_after_release(&self, markers: &[E::Event], deadline: Instant) -> Result<bool> {
        for marker in markers {
            if !self.engine.reuse_after(marker, deadline)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Waits on `freed` until `deadline`; false when it passed.
    fn wait_freed<'a>(
        &self,
        guard: MutexGuard<'a, State<E>>,
        deadline: Instant,
    ) -> (MutexGuard<'a, State<E>>, bool) {
        let now = Instant::now();
        if now >= deadline {
            return (guard, false);
        }
        let (guard, _) = self
            .freed
            .wait_timeout(guard, deadline - now)
            .unwrap_or_else(|p| p.into_inner());
        (guard, true)
    }
}

/// The ring. Workers call [`SlotRing::acquire`] and [`SlotRing::submit`]; the consumer calls
/// [`SlotRing::next`]. All methods may be called from any thread.
pub struct SlotRing<E: CopyEngine> {
    shared: Arc<Shared<E>>,
}

impl<E: CopyEngine> SlotRing<E> {
    /// A ring of `config.slots` staging slots allocated now; device buffers are allocated on
    /// first use, up to `config.device_buffers`, and then reused (allocation can synchronise the
    /// device, so it never happens in steady state).
    pub fn new(engine: E, config: RingConfig) -> Result<Self> {
        config.validate()?;
        let mut free_staging = Vec::with_capacity(config.slots);
        for _ in 0..config.slots {
            free_staging.push(engine.alloc_staging(config.staging_bytes)?);
        }
        Ok(SlotRing {
            shared: Arc::new(Shared {
                engine,
                state: Mutex::new(State {
                    free_staging,
                    in_flight: VecDeque::new(),
                    free_device: Vec::new(),
                    next_seq: 0,
                    stats: RingStats::default(),
                }),
                freed: Condvar::new(),
                consumer: Mutex::new(()),
                config,
            }),
        })
    }

    /// The ring's shape.
    pub fn config(&self) -> RingConfig {
        self.shared.config
    }

    /// The engine (for tests and for engine-specific queries).
    pub fn engine(&self) -> &E {
        &self.shared.engine
    }

    /// The counters so far.
    pub fn stats(&self) -> RingStats {
        self.shared.lock().stats
    }

    /// Takes a staging slot to gather a batch into, waiting until `deadline` for one whose copy
    /// finished.
    pub fn acquire(&self, deadline: Instant) -> Result<StagingSlot<E>, RingError> {
        let shared = &self.shared;
        let mut state = shared.lock();
        let mut counted = false;
        loop {
            if let Some(staging) = state.free_staging.pop() {
                return Ok(StagingSlot {
                    staging: Some(staging),
                    shared: Arc::clone(shared),
                });
            }
            shared.reclaim_staging(&mut state)?;
            if !state.free_staging.is_empty() {
                continue;
            }
            if !counted {
                state.stats.staging_waits += 1;
                counted = true;
            }
            // Wait for the oldest copy still holding a slot, or for a slot dropped unsubmitted.
            let oldest = state
                .in_flight
                .iter()
                .find(|e| e.staging.is_some())
                .map(|e| e.event.clone());
            match oldest {
                Some(event) => {
                    drop(state);
                    let finished = shared.engine.wait(&event, deadline)?;
                    state = shared.lock();
                    if !finished {
                        shared.reclaim_staging(&mut state)?;
                        if let Some(staging) = state.free_staging.pop() {
                            return Ok(StagingSlot {
                                staging: Some(staging),
                                shared: Arc::clone(shared),
                            });
                        }
                        return Err(RingError::Deadline(WaitingFor::StagingSlot));
                    }
                }
                None => {
                    let (guard, in_time) = shared.wait_freed(state, deadline);
                    state = guard;
                    if !in_time && state.free_staging.is_empty() {
                        return Err(RingError::Deadline(WaitingFor::StagingSlot));
                    }
                }
            }
        }
    }

    /// Starts copying the first `len` bytes of `slot` to the start of a device buffer: a
    /// submission of one staged range ([`SlotRing::submit_ranges`]).
    pub fn submit(
        &self,
        slot: StagingSlot<E>,
        len: usize,
        deadline: Instant,
    ) -> Result<u64, RingError> {
        self.submit_ranges(slot, vec![SubmitRange::staged(0, len, 0)], deadline)
    }

    /// Starts copying `ranges` (staged in `slot`, or straight from host memory) into one device
    /// buffer, waiting until `deadline` for a device buffer the consumer released; the batch is
    /// as long as the end of its last range. Batches are delivered in the order of their
    /// submits. Returns the batch's sequence number.
    ///
    /// A batch larger than the device buffer it gets grows that buffer (after the consumer's
    /// release markers, so its kernels finished reading it). The owners of host ranges are kept
    /// until the copy finished.
    ///
    /// On a deadline the slot goes back to the free slots and nothing was submitted. A staged
    /// range past the slot's memory is [`RingError::Failed`] with [`Error::InvalidArgument`].
    pub fn submit_ranges(
        &self,
        mut slot: StagingSlot<E>,
        ranges: Vec<SubmitRange>,
        deadline: Instant,
    ) -> Result<u64, RingError> {
        let shared = &self.shared;
        let mut len = 0usize;
        for range in &ranges {
            let end = range.device_end().ok_or_else(|| {
                RingError::Failed(Error::InvalidArgument("a copy range overflows".into()))
            })?;
            len = len.max(end);
        }
        let mut state = shared.lock();
        let mut counted = false;
        let device = loop {
            if let Some((device, markers)) = state.free_device.pop() {
                // Not reused (nor freed to grow) while the consumer's kernels may still read it.
                match shared.order_after_release(&markers, deadline) {
                    Ok(true) => {}
                    Ok(false) => {
                        state.free_device.push((device, markers));
                        return Err(RingError::Deadline(WaitingFor::DeviceMemory));
                    }
                    Err(error) => {
                        state.free_device.push((device, markers));
                        return Err(error.into());
                    }
                }
                if E::device_len(&device) >= len {
                    break device;
                }
                // Too small for this batch: freed (ordered after its last use) and replaced.
                drop(device);
                let device = shared
                    .engine
                    .alloc_device(len.max(shared.config.slot_bytes));
                let device = match device {
                    Ok(device) => device,
                    Err(error) => {
                        state.stats.device_buffers_allocated -= 1;
                        return Err(error.into());
                    }
                };
                state.stats.device_buffers_grown += 1;
                break device;
            }
            let allocated = state.stats.device_buffers_allocated;
            if allocated < shared.config.device_buffers as u64 {
                let device = shared
                    .engine
                    .alloc_device(len.max(shared.config.slot_bytes))?;
                state.stats.device_buffers_allocated += 1;
                break device;
            }
            if !counted {
                state.stats.device_waits += 1;
                counted = true;
            }
            let (guard, in_time) = shared.wait_freed(state, deadline);
            state = guard;
            if !in_time && state.free_device.is_empty() {
                // `slot` drops here and returns to the free slots.
                return Err(RingError::Deadline(WaitingFor::DeviceMemory));
            }
        };
        let staging = slot
            .staging
            .take()
            .expect("a slot holds its staging memory until used");
        let (mut direct, mut staged) = (0u64, 0u64);
        let mut copies = Vec::with_capacity(ranges.len());
        let mut sources = Vec::new();
        for range in ranges {
            let source = match range.source {
                SubmitSource::Staged { offset } => {
                    staged += range.len as u64;
                    CopySource::Staging { offset }
                }
                SubmitSource::Host(host) => {
                    direct += range.len as u64;
                    let ptr = host.ptr;
                    sources.push(host);
                    CopySource::Host(ptr)
                }
            };
            copies.push(CopyRange {
                source,
                len: range.len,
                device_offset: range.device_offset,
            });
        }
        let event = match shared.engine.submit(&staging, &device, &coalesce(&copies)) {
            Ok(event) => event,
            Err(error) => {
                // The engine left nothing in flight: the slot, the buffer and the sources are
                // free again.
                state.free_staging.push(staging);
                state.free_device.push((device, Vec::new()));
                drop(state);
                drop(sources);
                shared.freed.notify_all();
                return Err(error.into());
            }
        };
        let seq = state.next_seq;
        state.next_seq += 1;
        state.stats.copies += 1;
        state.stats.bytes += direct + staged;
        state.stats.direct_bytes += direct;
        state.stats.staged_bytes += staged;
        state.in_flight.push_back(InFlight {
            seq,
            staging: Some(staging),
            sources,
            device,
            len,
            event,
        });
        Ok(seq)
    }

    /// Takes the oldest submitted batch once its copy finished, waiting until `deadline`.
    ///
    /// On failure: [`RingError::Failed`] with [`Error::InvalidArgument`] when nothing was
    /// submitted; [`RingError::Deadline`] (`Copy`) when the copy did not finish in time.
    pub fn next(&self, deadline: Instant) -> Result<DeviceBatch<E>, RingError> {
        let shared = &self.shared;
        let _consumer = shared.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let event = {
            let state = shared.lock();
            match state.in_flight.front() {
                Some(entry) => entry.event.clone(),
                None => {
                    return Err(RingError::Failed(Error::InvalidArgument(
                        "no batch was submitted to the ring".into(),
                    )));
                }
            }
        };
        if !shared.engine.query(&event)? {
            shared.lock().stats.copy_waits += 1;
            if !shared.engine.wait(&event, deadline)? {
                return Err(RingError::Deadline(WaitingFor::Copy));
            }
        }
        let mut state = shared.lock();
        // Only consumers pop, and they are serialised: the front is still the entry waited on.
        let entry = state
            .in_flight
            .pop_front()
            .expect("the front entry is still there");
        if let Some(staging) = entry.staging {
            state.free_staging.push(staging);
        }
        drop(state);
        // The copy finished: the host memory it read may go.
        drop(entry.sources);
        shared.freed.notify_all();
        Ok(DeviceBatch {
            device: Some(entry.device),
            len: entry.len,
            seq: entry.seq,
            event: entry.event,
            shared: Arc::clone(shared),
        })
    }
}

/// A staging slot held by a worker. Dropping it unsubmitted returns it to the ring.
pub struct StagingSlot<E: CopyEngine> {
    staging: Option<E::Staging>,
    shared: Arc<Shared<E>>,
}

impl<E: CopyEngine> StagingSlot<E> {
    /// The slot's memory, to gather a batch into (at least [`RingConfig::staging_bytes`], or
    /// what [`StagingSlot::reserve`] made it).
    pub fn bytes(&mut self) -> &mut [u8] {
        E::staging_bytes(self.staging.as_mut().expect("held until submitted"))
    }

    /// Makes the slot's memory at least `bytes` long, reallocating it (contents not kept) when
    /// it is shorter: no copy reads a slot a worker holds.
    pub fn reserve(&mut self, bytes: usize) -> Result<()> {
        let staging = self.staging.as_mut().expect("held until submitted");
        if E::staging_bytes(staging).len() >= bytes {
            return Ok(());
        }
        self.shared.engine.grow_staging(staging, bytes)?;
        self.shared.lock().stats.staging_grown += 1;
        Ok(())
    }
}

impl<E: CopyEngine> Drop for StagingSlot<E> {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            self.shared.lock().free_staging.push(staging);
            self.shared.freed.notify_all();
        }
    }
}

/// A batch in device memory, held by the consumer. Dropping it releases the memory for reuse.
pub struct DeviceBatch<E: CopyEngine> {
    device: Option<E::Device>,
    len: usize,
    seq: u64,
    event: E::Event,
    shared: Arc<Shared<E>>,
}

impl<E: CopyEngine> DeviceBatch<E> {
    /// The device memory holding the batch (its first [`DeviceBatch::len`] bytes).
    pub fn device(&self) -> &E::Device {
        self.device.as_ref().expect("held until drop")
    }

    /// Bytes of the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its position in submission order (0-based).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The event of its copy (a consumer stream waits on it: the Arrow device `sync_event`).
    pub fn event(&self) -> &E::Event {
        &self.event
    }

    /// The engine that copied it (for stream waits and release markers).
    pub fn engine(&self) -> &E {
        &self.shared.engine
    }

    /// Releases the batch like dropping it, but the next copy into its device memory is ordered
    /// after `markers` (events recorded on the consumer's streams after their last use of it):
    /// the memory is not overwritten while the consumer's kernels may still read it.
    pub fn release_after(mut self, markers: Vec<E::Event>) {
        self.give_back(markers);
    }

    fn give_back(&mut self, markers: Vec<E::Event>) {
        if let Some(device) = self.device.take() {
            self.shared.lock().free_device.push((device, markers));
            self.shared.freed.notify_all();
        }
    }
}

impl<E: CopyEngine> Drop for DeviceBatch<E> {
    fn drop(&mut self) {
        self.give_back(Vec::new());
    }
}
