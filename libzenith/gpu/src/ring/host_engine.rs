//! A copy engine without a GPU: "device" memory is host memory, copies are `memcpy` on one copy
//! thread in submission order, events are completion flags. It runs the slot ring's reuse rules
//! in CI; a gate lets tests hold copies in flight.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use zenith_core::{Error, Result};

use super::engine::{CopyEngine, CopyRange, resolve_ranges};
use crate::dlpack_stream::ConsumerStream;

/// Heap memory the copy thread reads or writes through a raw pointer while the ring owns it.
pub struct HostBuffer {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is plain heap memory owned by this value; concurrent access is ruled out by
// the ring's contract (no access while a copy using it is in flight).
unsafe impl Send for HostBuffer {}

impl HostBuffer {
    fn new(len: usize) -> Result<Self> {
        let mut storage = Vec::new();
        storage
            .try_reserve_exact(len)
            .map_err(|_| Error::alloc_failed("a host copy engine buffer", len as u64))?;
        storage.resize(len, 0u8);
        let ptr = Box::into_raw(storage.into_boxed_slice()) as *mut u8;
        Ok(HostBuffer { ptr, len })
    }

    /// The bytes of the buffer (for tests reading what landed on the "device").
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` owns `len` initialised bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from `Box::into_raw` of a boxed slice of `len` bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
    }
}

/// A completion flag: set by the copy thread when its copy finished.
#[derive(Clone, Default)]
pub struct HostEvent {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl HostEvent {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An event that has not completed (tests use it as a consumer's release marker).
    pub fn pending() -> Self {
        HostEvent::default()
    }

    /// Whether it completed.
    pub fn is_complete(&self) -> bool {
        *self.lock()
    }

    /// Completes the event and wakes its waiters.
    pub fn complete(&self) {
        *self.lock() = true;
        self.inner.1.notify_all();
    }
}

/// Holds copies back while closed (for tests of copies in flight).
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    closed: bool,
    shutdown: bool,
}

/// A handle that opens and closes the host engine's gate: while closed, the copy thread starts
/// no copy.
#[derive(Clone)]
pub struct GateHandle {
    gate: Arc<Gate>,
}

impl GateHandle {
    /// Holds every copy not yet started until [`GateHandle::open`].
    pub fn close(&self) {
        self.gate
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
    }

    /// Lets copies run again.
    pub fn open(&self) {
        self.gate
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = false;
        self.gate.changed.notify_all();
    }
}

/// One submission: its ranges as (source, destination, bytes), copied in order.
struct Job {
    copies: Vec<(*const u8, *mut u8, usize)>,
    event: HostEvent,
}

// SAFETY: the pointers stay valid and unaliased until the job's event completes (the ring's
// contract on `CopyEngine::submit`).
unsafe impl Send for Job {}

/// The host copy engine.
pub struct HostCopyEngine {
    jobs: Mutex<Option<Sender<Job>>>,
    gate: Arc<Gate>,
    thread: Option<JoinHandle<()>>,
}

impl HostCopyEngine {
    /// Starts the engine and its copy thread.
    pub fn new() -> Result<Self> {
        let (sender, receiver) = channel::<Job>();
        let gate = Arc::new(Gate::default());
        let thread_gate = Arc::clone(&gate);
        let thread = std::thread::Builder::new()
            .name("zenith-host-copy".into())
            .spawn(move || {
                for job in receiver {
                    let mut state = thread_gate.state.lock().unwrap_or_else(|p| p.into_inner());
                    while state.closed && !state.shutdown {
                        state = thread_gate
                            .changed
                            .wait(state)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                    let shutdown = state.shutdown;
                    drop(state);
                    if !shutdown {
                        for &(src, dst, len) in &job.copies {
                            // SAFETY: per `Job`'s contract both ranges are valid for `len` bytes
                            // and distinct allocations.
                            unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
                        }
                    }
                    job.event.complete();
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the host copy thread: {e}")))?;
        Ok(HostCopyEngine {
            jobs: Mutex::new(Some(sender)),
            gate,
            thread: Some(thread),
        })
    }

    /// The handle tests use to hold copies in flight.
    pub fn gate(&self) -> GateHandle {
        GateHandle {
            gate: Arc::clone(&self.gate),
        }
    }
}

impl Drop for HostCopyEngine {
    fn drop(&mut self) {
        {
            let mut state = self.gate.state.lock().unwrap_or_else(|p| p.into_inner());
            state.shutdown = true;
        }
        self.gate.changed.notify_all();
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl CopyEngine for HostCopyEngine {
    type Staging = HostBuffer;
    type Device = HostBuffer;
    type Event = HostEvent;

    fn alloc_staging(&self, bytes: usize) -> Result<HostBuffer> {
        HostBuffer::new(bytes)
    }

    fn grow_staging(&self, staging: &mut HostBuffer, bytes: usize) -> Result<()> {
        *staging = HostBuffer::new(bytes)?;
        Ok(())
    }

    fn staging_bytes(staging: &mut HostBuffer) -> &mut [u8] {
        staging.bytes_mut()
    }

    fn alloc_device(&self, bytes: usize) -> Result<HostBuffer> {
        HostBuffer::new(bytes)
    }

    fn device_len(device: &HostBuffer) -> usize {
        device.len
    }

    fn submit(
        &self,
        src: &HostBuffer,
        dst: &HostBuffer,
        ranges: &[CopyRange],
    ) -> Result<HostEvent> {
        let copies = resolve_ranges(src.ptr, src.len, dst.len, ranges)?
            .into_iter()
            .map(|(from, len, offset)| (from, dst.ptr.wrapping_add(offset), len))
            .collect();
        let event = HostEvent::default();
        let job = Job {
            copies,
            event: event.clone(),
        };
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.as_ref()
            .and_then(|sender| sender.send(job).ok())
            .ok_or_else(|| Error::Internal("the host copy thread has stopped".into()))?;
        Ok(event)
    }

    fn query(&self, event: &HostEvent) -> Result<bool> {
        Ok(*event.lock())
    }

    fn wait(&self, event: &HostEvent, deadline: Instant) -> Result<bool> {
        let mut done = event.lock();
        while !*done {
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            done = event
                .inner
                .1
                .wait_timeout(done, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(true)
    }

    const DEVICE_TYPE: i32 = zenith_core::batch::dlpack::DEVICE_TYPE_CPU;

    fn device_address(device: &HostBuffer) -> u64 {
        device.ptr as u64
    }

    fn consumer_wait(&self, event: &HostEvent, stream: ConsumerStream) -> Result<()> {
        if stream == ConsumerStream::NoSync {
            return Ok(());
        }
        // The host consumer's "stream" is its own thread: it waits for the copy here. The ring
        // hands out only batches whose copy finished, so this returns at once.
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        if self.wait(event, deadline)? {
            Ok(())
        } else {
            Err(Error::Internal(
                "a host copy did not finish within 60 s".into(),
            ))
        }
    }

    fn record_release(&self, _stream: ConsumerStream) -> Result<Option<HostEvent>> {
        // A host consumer has finished reading when it releases the batch.
        Ok(None)
    }

    fn reuse_after(&self, event: &HostEvent, deadline: Instant) -> Result<bool> {
        self.wait(event, deadline)
    }
}
