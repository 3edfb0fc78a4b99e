//! `zenith_batch`: an owned batch handle, exported as Arrow or (column by column) as DLPack.

use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;

use crate::batch::{Batch, export_array, export_schema};
use crate::ffi::args;
use crate::ffi::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};

/// One batch delivered by `zenith_loader_next_batch`, owned by the caller.
///
/// Freed by `zenith_batch_free`; it stays valid after its loader is freed.
pub struct zenith_batch {
    pub(crate) inner: Batch,
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

/// Frees a batch. Exports made from it stay valid until released.
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
