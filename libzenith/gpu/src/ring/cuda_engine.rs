//! The CUDA copy engine: pinned staging slots (`cuMemHostAlloc`), one event per slot, copies with
//! `cuMemcpyHtoDAsync` on a per-device copy stream into device memory from the stream-ordered
//! pool (`cuMemAllocAsync`). One submission is several ranges: columns straight from a batch's
//! own pinned buffers, and columns staged in the slot.
//!
//! Compiled everywhere, exercised only where a device exists: [`CudaCopyEngine::new`] returns
//! [`zenith_core::Error::NoDevice`] without a driver before any other driver call.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::{result, sys};
use zenith_core::Result;

use super::engine::{CopyEngine, CopyRange, resolve_ranges};
use crate::discovery::device_handle;
use crate::dlpack_stream::ConsumerStream;
use crate::driver::driver_failure;

/// How long [`CopyEngine::wait`] sleeps between polls of an event (the driver's blocking wait
/// has no deadline).
const EVENT_POLL: Duration = Duration::from_micros(20);

/// The device's primary context and its copy stream, kept alive by the engine and by every
/// buffer that must be freed in that context.
struct CopyStream {
    device: sys::CUdevice,
    context: sys::CUcontext,
    stream: sys::CUstream,
}

// SAFETY: CUDA contexts and streams may be used from any thread once made current there, which
// `make_current` does before every use.
unsafe impl Send for CopyStream {}
// SAFETY: as above; the driver API is thread-safe.
unsafe impl Sync for CopyStream {}

impl CopyStream {
    fn make_current(&self) -> Result<()> {
        // SAFETY: the context was retained in `CudaCopyEngine::new` and is released only on drop.
        unsafe { result::ctx::set_current(self.context) }
            .map_err(|e| driver_failure("cuCtxSetCurrent", e))
    }
}

impl Drop for CopyStream {
    fn drop(&mut self) {
        if self.make_current().is_ok() {
            // SAFETY: the stream was created in `new` and nothing uses it after this drop (every
            // buffer holding it is gone).
            unsafe {
                let _ = result::stream::synchronize(self.stream);
                let _ = result::stream::destroy(self.stream);
                let _ = result::primary_ctx::release(self.device);
            }
        }
    }
}

/// A pinned staging slot (NULL until it first needs memory) and its event.
pub struct CudaStaging {
    /// Pinned memory of `len` bytes from `cuMemHostAlloc`, or NULL when `len` is 0.
    ptr: *mut u8,
    len: usize,
    event: sys::CUevent,
    stream: Arc<CopyStream>,
}

// SAFETY: pinned host memory and an event handle, owned by this value.
unsafe impl Send for CudaStaging {}

impl Drop for CudaStaging {
    fn drop(&mut self) {
        if self.stream.make_current().is_ok() {
            // SAFETY: allocated by cuMemHostAlloc / cuEventCreate in `alloc_staging`; the ring
            // drops a slot only after its copy finished.
            unsafe {
                let _ = result::event::destroy(self.event);
                free_pinned(self.ptr);
            }
        }
    }
}

/// `bytes` bytes of pinned host memory (portable: usable from every context; not write-combined:
/// workers may read back what they gathered), or NULL for 0 bytes. The context must be current.
fn alloc_pinned(bytes: usize) -> Result<*mut u8> {
    if bytes == 0 {
        return Ok(std::ptr::null_mut());
    }
    // SAFETY: a plain allocation; the pointer is owned by the caller.
    let ptr = unsafe { result::malloc_host(bytes, sys::CU_MEMHOSTALLOC_PORTABLE) }
        .map_err(|e| driver_failure("cuMemHostAlloc", e))?;
    Ok(ptr as *mut u8)
}

/// Frees memory from [`alloc_pinned`] (NULL does nothing).
///
/// # Safety
/// `ptr` is NULL or came from `alloc_pinned`, no copy reads it any more, and it is not used
/// afterwards; the context is current.
unsafe fn free_pinned(ptr: *mut u8) {
    if !ptr.is_null() {
        // SAFETY: per the contract above.
        let _ = unsafe { result::free_host(ptr as *mut c_void) };
    }
}

/// Device memory from the copy stream's pool.
pub struct CudaDevice {
    ptr: sys::CUdeviceptr,
    len: usize,
    stream: Arc<CopyStream>,
}

impl CudaDevice {
    /// The device address.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        if self.stream.make_current().is_ok() {
            // SAFETY: allocated with cuMemAllocAsync on this stream; freeing on the same stream
            // orders the free after every copy into it.
            unsafe {
                let _ = result::free_async(self.ptr, self.stream.stream);
            }
        }
    }
}

/// The event recorded after a slot's copy (a slot's one event; re-recorded when the slot is
/// reused, after this copy finished).
#[derive(Clone, Copy)]
pub struct CudaEvent(sys::CUevent);

// SAFETY: an event handle; the driver API is thread-safe.
unsafe impl Send for CudaEvent {}
// SAFETY: as above.
unsafe impl Sync for CudaEvent {}

impl CudaEvent {
    /// The raw `CUevent` (the Arrow device `sync_event` points at it).
    pub fn raw(&self) -> sys::CUevent {
        self.0
    }
}

/// The CUDA copy engine of one device.
pub struct CudaCopyEngine {
    stream: Arc<CopyStream>,
}

impl CudaCopyEngine {
    /// The engine of CUDA device `ordinal`, with a non-blocking copy stream of its own.
    ///
    /// On failure: [`zenith_core::Error::NoDevice`] without a driver or device (before any other driver
    /// call), [`zenith_core::Error::Internal`] when the driver refuses the context or the stream.
    pub fn new(ordinal: u32) -> Result<Self> {
        let device = device_handle(ordinal)?;
        // SAFETY: `device` came from cuDeviceGet.
        let context = unsafe { result::primary_ctx::retain(device) }
            .map_err(|e| driver_failure("cuDevicePrimaryCtxRetain", e))?;
        // SAFETY: just retained.
        unsafe { result::ctx::set_current(context) }
            .map_err(|e| driver_failure("cuCtxSetCurrent", e))?;
        let stream = result::stream::create(result::stream::StreamKind::NonBlocking)
            .map_err(|e| driver_failure("cuStreamCreate", e))?;
        Ok(CudaCopyEngine {
            stream: Arc::new(CopyStream {
                device,
                context,
                stream,
            }),
        })
    }

    /// The copy stream (consumers make their stream wait on a batch's event instead).
    pub fn stream(&self) -> sys::CUstream {
        self.stream.stream
    }
}

impl CopyEngine for CudaCopyEngine {
    type Staging = CudaStaging;
    type Device = CudaDevice;
    type Event = CudaEvent;

    fn alloc_staging(&self, bytes: usize) -> Result<CudaStaging> {
        self.stream.make_current()?;
        let ptr = alloc_pinned(bytes)?;
        let event =
            result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING).map_err(|e| {
                // SAFETY: allocated just above, not used anywhere else.
                unsafe { free_pinned(ptr) };
                driver_failure("cuEventCreate", e)
            })?;
        Ok(CudaStaging {
            ptr,
            len: bytes,
            event,
            stream: Arc::clone(&self.stream),
        })
    }

    fn grow_staging(&self, staging: &mut CudaStaging, bytes: usize) -> Result<()> {
        self.stream.make_current()?;
        let ptr = alloc_pinned(bytes)?;
        // SAFETY: the ring grows a slot only while no copy out of it is in flight; the old
        // memory is not used after this.
        unsafe { free_pinned(staging.ptr) };
        staging.ptr = ptr;
        staging.len = bytes;
        Ok(())
    }

    fn staging_bytes(staging: &mut CudaStaging) -> &mut [u8] {
        if staging.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: `ptr` is pinned host memory of `len` bytes owned by `staging`; the ring hands
        // out `&mut` only while no copy reads it.
        unsafe { std::slice::from_raw_parts_mut(staging.ptr, staging.len) }
    }

    fn alloc_device(&self, bytes: usize) -> Result<CudaDevice> {
        self.stream.make_current()?;
        // SAFETY: the stream is live; the memory is used only on this stream (copies) or after
        // its event completed (consumers).
        let ptr = unsafe { result::malloc_async(self.stream.stream, bytes) }
            .map_err(|e| driver_failure("cuMemAllocAsync", e))?;
        Ok(CudaDevice {
            ptr,
            len: bytes,
            stream: Arc::clone(&self.stream),
        })
    }

    fn device_len(device: &CudaDevice) -> usize {
        device.len
    }

    fn submit(
        &self,
        src: &CudaStaging,
        dst: &CudaDevice,
        ranges: &[CopyRange],
    ) -> Result<CudaEvent> {
        // Host sources are pinned memory of a batch the ring keeps alive until the event
        // completed (the device path sends pageable buffers through the staging memory instead,
        // so no asynchronous copy ever reads memory that could be freed or paged out).
        let copies = resolve_ranges(src.ptr, src.len, dst.len, ranges)?;
        self.stream.make_current()?;
        let stream = self.stream.stream;
        let mut issued = false;
        let mut outcome = Ok(());
        for (from, len, device_offset) in copies {
            // SAFETY: source and destination are valid for `len` bytes (checked above; host
            // sources per the ring's contract) and untouched until the event recorded below
            // completes.
            let copied = unsafe {
                sys::cuMemcpyHtoDAsync_v2(
                    dst.ptr + device_offset as u64,
                    from as *const c_void,
                    len,
                    stream,
                )
            }
            .result();
            if let Err(e) = copied {
                outcome = Err(driver_failure("cuMemcpyHtoDAsync", e));
                break;
            }
            issued = true;
        }
        let recorded = outcome.and_then(|()| {
            // SAFETY: the slot's event, live as long as the slot; the stream is live.
            unsafe { result::event::record(src.event, stream) }
                .map_err(|e| driver_failure("cuEventRecord", e))
        });
        match recorded {
            Ok(()) => Ok(CudaEvent(src.event)),
            Err(error) => {
                if issued {
                    // Part of the submission is queued and its memory goes back to the ring
                    // with the error: wait until it finished, so nothing reads or writes it
                    // afterwards.
                    // SAFETY: the engine's live stream.
                    unsafe {
                        let _ = result::stream::synchronize(stream);
                    }
                }
                Err(error)
            }
        }
    }

    fn query(&self, event: &CudaEvent) -> Result<bool> {
        self.stream.make_current()?;
        // SAFETY: the event lives as long as its slot, which outlives every copy it marks.
        match unsafe { result::event::query(event.0) } {
            Ok(()) => Ok(true),
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            Err(e) => Err(driver_failure("cuEventQuery", e)),
        }
    }

    fn wait(&self, event: &CudaEvent, deadline: Instant) -> Result<bool> {
        loop {
            if self.query(event)? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(EVENT_POLL);
        }
    }

    const DEVICE_TYPE: i32 = zenith_core::batch::dlpack::DEVICE_TYPE_CUDA;

    fn device_address(device: &CudaDevice) -> u64 {
        device.ptr
    }

    fn consumer_wait(&self, event: &CudaEvent, stream: ConsumerStream) -> Result<()> {
        let Some(stream) = stream.cu_stream_value() else {
            return Ok(());
        };
        self.stream.make_current()?;
        // SAFETY: the event lives as long as its slot; `stream` is the consumer's stream handle
        // (or CU_STREAM_LEGACY / CU_STREAM_PER_THREAD), which the consumer keeps alive per the
        // DLPack protocol.
        unsafe {
            result::stream::wait_event(
                stream as sys::CUstream,
                event.0,
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
        }
        .map_err(|e| driver_failure("cuStreamWaitEvent", e))
    }

    fn record_release(&self, stream: ConsumerStream) -> Result<Option<CudaEvent>> {
        let Some(stream) = stream.cu_stream_value() else {
            return Ok(None);
        };
        self.stream.make_current()?;
        let event = result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
            .map_err(|e| driver_failure("cuEventCreate", e))?;
        // SAFETY: a fresh event; the consumer's stream is live while it releases its tensor.
        if let Err(e) = unsafe { result::event::record(event, stream as sys::CUstream) } {
            // SAFETY: created above, used nowhere else.
            unsafe {
                let _ = result::event::destroy(event);
            }
            return Err(driver_failure("cuEventRecord", e));
        }
        Ok(Some(CudaEvent(event)))
    }

    fn reuse_after(&self, event: &CudaEvent, _deadline: Instant) -> Result<bool> {
        self.stream.make_current()?;
        // The copy stream waits on the device, the host does not block. The marker is destroyed
        // right after: the driver frees it once the wait no longer needs it.
        // SAFETY: `event` came from `record_release` and is used up here.
        unsafe {
            let waited = result::stream::wait_event(
                self.stream.stream,
                event.0,
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            );
            let _ = result::event::destroy(event.0);
            waited.map_err(|e| driver_failure("cuStreamWaitEvent", e))?;
        }
        Ok(true)
    }
}
