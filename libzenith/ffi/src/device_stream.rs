//! `zenith_loader_export_device_stream`: a loader as an `ArrowDeviceArrayStream` (the Arrow C
//! Device Stream Interface). A loader delivering in host memory streams `ARROW_DEVICE_CPU` arrays;
//! a loader on a CUDA device (`zenith_loader_options_set_device`) streams its device batches as
//! `ARROW_DEVICE_CUDA` arrays whose `sync_event` is the copy's event. The stream takes the
//! loader's device path over: from then on the loader's own `zenith_loader_next_batch*` calls
//! are refused, so each batch goes one way.

use std::ffi::{CString, c_char, c_int};

use zenith_core::batch::export_schema;
use zenith_core::loader::EpochReader;
use zenith_core::{Error, Result};
use zenith_gpu::device_array::{
    ARROW_DEVICE_CPU, ArrowDeviceArray, ArrowDeviceArrayStream, export_cpu,
};
use zenith_gpu::device_export::export_device_array;
use zenith_gpu::dlpack_stream::ConsumerStream;
use zenith_gpu::ring::CopyEngine;
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;

use crate::args;
use crate::error::zenith_error;
use crate::gpu::CudaPath;
use crate::loader::zenith_loader;
use crate::status::{ZENITH_OK, zenith_status};

/// `EIO` and `EINVAL`: what the stream callbacks return on failure (the interface speaks errno).
const EIO: c_int = 5;
const EINVAL: c_int = 22;

/// What the stream owns: the loader's epoch reader, its device path when it has one, and the
/// last error's message.
struct StreamState {
    reader: EpochReader,
    path: Option<CudaPath>,
    last_error: Option<CString>,
}

impl StreamState {
    /// The next array (on the device, or on the CPU without a device path); `None` at the end
    /// of the epoch.
    fn next(&mut self) -> Result<Option<ArrowDeviceArray>> {
        let reader = &mut self.reader;
        match self.path.as_mut() {
            None => Ok(reader.next_batch()?.map(|batch| export_cpu(&batch.data))),
            Some(path) => {
                let Some(batch) = path.next(|| reader.next_batch())? else {
                    return Ok(None);
                };
                // The consumer waits on `sync_event` itself (the C Device interface's rule).
                let (array, _schema) = export_device_array(&batch, None, ConsumerStream::NoSync)?;
                Ok(Some(array))
            }
        }
    }

    fn fail(&mut self, error: &Error) -> c_int {
        self.last_error = CString::new(error.to_string().replace('\0', " ")).ok();
        match error {
            Error::InvalidArgument(_) | Error::Unsupported(_) => EINVAL,
            _ => EIO,
        }
    }
}

/// Runs a stream callback on the stream's state and the consumer's `out` storage: `EINVAL` for a
/// released stream or a NULL `out`.
///
/// # Safety
/// `stream` is NULL or a live stream made by `zenith_loader_export_device_stream`, not yet
/// released (the interface's rule for callbacks).
unsafe fn with_state<T>(
    stream: *mut ArrowDeviceArrayStream,
    out: *mut T,
    body: impl FnOnce(&mut StreamState, *mut T) -> c_int,
) -> c_int {
    // SAFETY: per the contract; `private_data` is the Box made at export, or NULL once released.
    let state = unsafe {
        stream
            .as_mut()
            .and_then(|s| s.private_data.cast::<StreamState>().as_mut())
    };
    match state {
        Some(state) if !out.is_null() => body(state, out),
        _ => EINVAL,
    }
}

unsafe extern "C" fn get_schema(
    stream: *mut ArrowDeviceArrayStream,
    out: *mut arrow_schema::ffi::FFI_ArrowSchema,
) -> c_int {
    ffi_boundary!(default: EIO, {
        let write_schema = |state: &mut StreamState, out: *mut arrow_schema::ffi::FFI_ArrowSchema| {
            match export_schema(&arrow_array::RecordBatchReader::schema(&state.reader)) {
                Ok(schema) => {
                    // SAFETY: `out` is non-NULL (checked by `with_state`) writable storage for
                    // one ArrowSchema (the interface's rule).
                    unsafe { out.write(schema) };
                    0
                }
                Err(error) => state.fail(&error),
            }
        };
        // SAFETY: the consumer passes the stream it was given, live.
        unsafe { with_state(stream, out, write_schema) }
    })
}

unsafe extern "C" fn get_next(
    stream: *mut ArrowDeviceArrayStream,
    out: *mut ArrowDeviceArray,
) -> c_int {
    ffi_boundary!(default: EIO, {
        let write_next = |state: &mut StreamState, out: *mut ArrowDeviceArray| {
            let array = match state.next() {
                // The end: a released array (NULL release callback).
                Ok(None) => ArrowDeviceArray {
                    array: arrow_data::ffi::FFI_ArrowArray::empty(),
                    device_id: -1,
                    device_type: ARROW_DEVICE_CPU,
                    sync_event: std::ptr::null_mut(),
                    reserved: [0; 3],
                },
                Ok(Some(array)) => array,
                Err(error) => return state.fail(&error),
            };
            // SAFETY: `out` is non-NULL (checked by `with_state`) writable storage for one
            // ArrowDeviceArray (the interface's rule).
            unsafe { out.write(array) };
            0
        };
        // SAFETY: the consumer passes the stream it was given, live.
        unsafe { with_state(stream, out, write_next) }
    })
}

unsafe extern "C" fn get_last_error(stream: *mut ArrowDeviceArrayStream) -> *const c_char {
    ffi_boundary!(default: std::ptr::null(), {
        // SAFETY: the consumer passes the stream it was given, live; `private_data` is the Box
        // made at export.
        unsafe { stream.as_ref().and_then(|s| s.private_data.cast::<StreamState>().as_ref()) }
            .and_then(|s| s.last_error.as_ref())
            .map_or(std::ptr::null(), |m| m.as_ptr())
    })
}

unsafe extern "C" fn release(stream: *mut ArrowDeviceArrayStream) {
    ffi_boundary!(default: (), {
        // SAFETY: the consumer releases a live stream once.
        let Some(stream) = (unsafe { stream.as_mut() }) else {
            return;
        };
        if !stream.private_data.is_null() {
            // SAFETY: made by `Box::into_raw` at export, freed only here.
            drop(unsafe { Box::from_raw(stream.private_data.cast::<StreamState>()) });
        }
        stream.private_data = std::ptr::null_mut();
        stream.release = None;
    })
}

/// Exports the loader's batches from here to the end of the epoch as an `ArrowDeviceArrayStream`
/// (the Arrow C Device Stream Interface).
///
/// A loader delivering in host memory streams `ARROW_DEVICE_CPU` arrays (device id -1, no
/// event): the same batches as `zenith_loader_export_stream`. A loader on a CUDA device
/// (`zenith_loader_options_set_device`) streams `ARROW_DEVICE_CUDA` arrays of its device
/// batches: each array's `sync_event` points to the `CUevent` of its copy, which the consumer
/// makes its stream wait on before reading; the device memory is reused only after the array is
/// released. Such a stream takes the loader's device path over: `zenith_loader_next_batch` and
/// `_next_batch_timeout` on the loader are refused afterwards (`ZENITH_ERR_INVALID_ARGUMENT`), so
/// every batch is delivered once. Every column of a device stream must be on the device (numbers
/// and fixed-size lists without nulls); `get_next` fails with `EINVAL` and a message naming the
/// others (select columns with `zenith_loader_options_set_columns`).
///
/// The stream's callbacks may be called from any one thread at a time; `get_last_error`'s
/// message lives until the next call on the stream. The stream keeps the loader's state alive:
/// `zenith_loader_free` may come before the stream's release.
///
/// Ownership: `*out` receives a stream the caller releases with its `release` callback.
/// On failure: a schema without an Arrow C form returns `ZENITH_ERR_UNSUPPORTED`; a second
/// device stream of one loader `ZENITH_ERR_INVALID_ARGUMENT`. `*out` is left untouched.
/// NULL policy: `loader` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: not concurrently with other calls on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `out` is NULL or points to writable `struct ArrowDeviceArrayStream`
/// storage; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_export_device_stream(
    loader: *mut zenith_loader,
    out: *mut ArrowDeviceArrayStream,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow_mut(loader, "loader") }?;
        let out = args::out(out, "out")?;
        // The schema must export: the stream's get_schema may not fail later.
        export_schema(&loader.schema())?;
        let path = loader.take_device_path_for_stream()?;
        let device_type = if path.is_some() {
            CudaCopyEngine::DEVICE_TYPE
        } else {
            ARROW_DEVICE_CPU
        };
        let state = Box::new(StreamState {
            reader: loader.reader(),
            path,
            last_error: None,
        });
        let stream = ArrowDeviceArrayStream {
            device_type,
            get_schema: Some(get_schema),
            get_next: Some(get_next),
            get_last_error: Some(get_last_error),
            release: Some(release),
            private_data: Box::into_raw(state).cast(),
        };
        // SAFETY: `out` is non-NULL and writable; it is not read (it may hold garbage).
        unsafe { out.write(stream) };
        Ok(ZENITH_OK)
    })
}
