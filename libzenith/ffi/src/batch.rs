//! `zenith_batch`: an owned batch handle, exported as Arrow or (column by column) as DLPack.

use std::ffi::c_char;

use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;

use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_core::batch::dlpack::DLManagedTensorVersioned;
use zenith_core::batch::{Batch, export_array, export_schema};

/// One batch delivered by `zenith_loader_next_batch`, owned by the caller.
///
/// Freed by `zenith_batch_free`; it stays valid after its loader is freed.
pub struct zenith_batch {
    pub(crate) inner: Batch,
    /// Its tensor columns in device memory, when its loader delivers on a CUDA device (gpu.rs).
    pub(crate) device: Option<crate::gpu::CudaColumns>,
}

impl zenith_batch {
    /// A batch in host memory.
    pub(crate) fn on_host(inner: Batch) -> Self {
        zenith_batch {
            inner,
            device: None,
        }
    }

    /// The column `column` as a tensor: in device memory for a consumer on `stream` when the
    /// batch is on a device, else the host export (`stream` was checked by the caller).
    pub(crate) fn column_tensor(
        &self,
        column: &str,
        stream: zenith_gpu::dlpack_stream::ConsumerStream,
    ) -> zenith_core::Result<zenith_core::batch::DlpackTensor> {
        match &self.device {
            Some(device) => device.column_dlpack(column, stream),
            None => self.inner.column_dlpack(column),
        }
    }

    /// A batch delivered on a CUDA device (its host form stays readable).
    pub(crate) fn on_device(device: crate::gpu::CudaColumns) -> Self {
        zenith_batch {
            inner: device.host().clone(),
            device: Some(device),
        }
    }
}

/// Returns the number of rows in `batch` (0 when `batch` is NULL).
///
/// Thread safety: a batch may be read from several threads at once.
///
/// # Safety
/// `batch` is NULL or a live batch.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_num_rows(batch: *const zenith_batch) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { batch.as_ref() }.map_or(0, |b| b.inner.num_rows())
    })
}

/// Exports `batch` as an Arrow C Data Interface struct array (one child per column) and, when
/// `out_schema` is not NULL, its schema. The batch itself is unchanged and may be exported again.
///
/// Ownership: on success the caller owns `*out_array` (and `*out_schema`) and calls `release`;
/// the export shares the batch's buffers (no copy) and keeps them alive after `zenith_batch_free`.
/// On failure: nothing is written.
/// NULL policy: `batch` and `out_array` must not be NULL; `out_schema` and `err` may be NULL.
/// Thread safety: may be called concurrently on the same batch.
///
/// # Safety
/// `batch` is NULL or live; the outputs are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_export_arrow(
    batch: *const zenith_batch,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let batch = unsafe { args::borrow(batch, "batch") }?;
        let out_array = args::out(out_array, "out_array")?;
        let schema = if out_schema.is_null() {
            None
        } else {
            Some(export_schema(&batch.inner.data.schema())?)
        };
        // SAFETY: the outputs are non-NULL where written and writable per the contract.
        unsafe {
            out_array.write(export_array(&batch.inner.data));
            if let Some(schema) = schema {
                out_schema.write(schema);
            }
        }
        Ok(ZENITH_OK)
    })
}

/// Exports the column named `column` of `batch` as a DLPack tensor (`DLManagedTensorVersioned`,
/// DLPack 1.x, on the CPU device `kDLCPU`, device id 0, with explicit row-major strides).
///
/// A column of integers (8 to 64 bits), floats (16, 32, 64 bits) or bools becomes a 1-D tensor
/// `[rows]` of that type (bools as one byte each, `kDLBool`); fixed-size binary of width `w`
/// becomes a 2-D uint8 tensor `[rows, w]`; a fixed-size list of length `n` adds a dimension
/// `n` to its values' tensor, so nested lists give N-D tensors (`[rows, n, m, ...]`). The
/// tensor shares the column's memory (zero copy, flag `DLPACK_FLAG_BITMASK_READ_ONLY`) unless the
/// elements are bit-packed (bool) or misaligned for their type; then it holds its own copy (flag
/// `DLPACK_FLAG_BITMASK_IS_COPIED`, writable). Shared memory may be a mapping of the file, which
/// is private and copy-on-write: a consumer that writes to a read-only tensor anyway (torch does
/// for in-place ops) neither crashes nor changes the file, but its write is seen by everything
/// else sharing those rows, later epochs of the loader included; copy the tensor to modify it.
/// With several columns of that name, the first one is exported.
///
/// Ownership: on success `*out` receives a tensor the caller owns; release it by calling
/// `(*out)->deleter(*out)` exactly once (from any thread), or hand it to a DLPack consumer that
/// will. The batch is only read: it may be exported again and freed independently.
/// On failure: returns `ZENITH_ERR_INVALID_ARGUMENT` when `column` is not UTF-8, when there is
/// no column of that name, or when the column has a null (in its rows or in its list values: a
/// tensor cannot represent nulls); `ZENITH_ERR_UNSUPPORTED` when its type has no tensor form
/// (strings, variable-size lists, structs, dictionaries, ...). The message names the column.
/// `*out` is left untouched.
/// NULL policy: `batch`, `column` and `out` must not be NULL (`ZENITH_ERR_NULL_ARGUMENT`); `err`
/// may be NULL.
/// Thread safety: may be called concurrently on the same batch.
/// Lifetime: `column` is only read during the call. The tensor stays valid until its deleter is
/// called, also after `zenith_batch_free` and `zenith_loader_free` (it keeps the memory it
/// points to alive, including the file mapping when it shares one).
///
/// # Safety
/// `batch` is NULL or live; `column` is NULL or NUL-terminated; `out` and `err` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_column_dlpack(
    batch: *const zenith_batch,
    column: *const c_char,
    out: *mut *mut DLManagedTensorVersioned,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // Without a stream: the legacy default stream waits for a device copy (DLPack's `None`).
        // SAFETY: per the contract above.
        unsafe { write_column_tensor(batch, column, None, out) }
    })
}

/// The body of `zenith_batch_column_dlpack` and `zenith_batch_column_dlpack_stream`: checks the
/// arguments and writes the named column of `batch` to `*out` as a tensor for a consumer on
/// `stream` (DLPack's `stream` argument of `__dlpack__`, interpreted for the batch's device).
///
/// # Safety
/// As the two functions: `batch` NULL or live, `column` NULL or NUL-terminated, `out` NULL or
/// writable.
pub(crate) unsafe fn write_column_tensor(
    batch: *const zenith_batch,
    column: *const c_char,
    stream: Option<i64>,
    out: *mut *mut DLManagedTensorVersioned,
) -> zenith_core::Result<zenith_status> {
    // SAFETY: per the contract above.
    let batch = unsafe { args::borrow(batch, "batch") }?;
    // SAFETY: per the contract above.
    let column = unsafe { args::utf8(column, "column") }?;
    let out = args::out(out, "out")?;
    let device = if batch.device.is_some() {
        zenith_gpu::dlpack_stream::TensorDevice::Cuda
    } else {
        zenith_gpu::dlpack_stream::TensorDevice::Cpu
    };
    let stream = zenith_gpu::dlpack_stream::consumer_stream(device, stream)?;
    let tensor = batch.column_tensor(column, stream)?;
    // SAFETY: `out` is non-NULL and writable per the contract.
    unsafe { out.write(tensor.into_raw()) };
    Ok(ZENITH_OK)
}

/// Exports the column at position `index` (0-based, in schema order) of `batch` as a DLPack
/// tensor, exactly as `zenith_batch_column_dlpack` does for a named column.
///
/// Ownership: on success the caller owns `*out` and calls `(*out)->deleter(*out)` exactly once.
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` when `index` is not below the number of columns or
/// the column has a null, `ZENITH_ERR_UNSUPPORTED` for a type without a tensor form; `*out` is
/// left untouched.
/// NULL policy: `batch` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called concurrently on the same batch.
/// Lifetime: the tensor stays valid until its deleter is called, also after `zenith_batch_free`
/// and `zenith_loader_free`.
///
/// # Safety
/// `batch` is NULL or live; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_column_dlpack_by_index(
    batch: *const zenith_batch,
    index: usize,
    out: *mut *mut DLManagedTensorVersioned,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let batch = unsafe { args::borrow(batch, "batch") }?;
        let out = args::out(out, "out")?;
        let tensor = match &batch.device {
            Some(device) => {
                let schema = batch.inner.data.schema();
                let field = schema.fields().get(index).ok_or_else(|| {
                    zenith_core::Error::InvalidArgument(format!(
                        "column index {index} is out of range: the batch has {} columns",
                        schema.fields().len()
                    ))
                })?;
                device.column_dlpack(field.name(), zenith_gpu::dlpack_stream::ConsumerStream::LegacyDefault)?
            }
            None => batch.inner.column_dlpack_by_index(index)?,
        };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(tensor.into_raw()) };
        Ok(ZENITH_OK)
    })
}

/// Frees a batch. Exports made from it (Arrow arrays, DLPack tensors) stay valid until released.
///
/// NULL policy: `zenith_batch_free(NULL)` does nothing.
///
/// # Safety
/// `batch` is NULL or a live batch, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_free(batch: *mut zenith_batch) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(batch) }
    })
}
