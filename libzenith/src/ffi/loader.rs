//! `zenith_loader_options` and `zenith_loader`: open a dataset, pull batches, export streams.

use std::ffi::c_char;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;

use crate::batch::{Batch, export_array, export_schema};
use crate::ffi::args;
use crate::ffi::batch::zenith_batch;
use crate::ffi::error::zenith_error;
use crate::loader::{Loader, LoaderOptions};
use crate::status::{ZENITH_DONE, ZENITH_OK, zenith_status};

/// Options for `zenith_loader_open`: a builder handle with typed setters.
///
/// Created by `zenith_loader_options_new`, freed by `zenith_loader_options_free`.
pub struct zenith_loader_options {
    inner: LoaderOptions,
}

/// A loader over one dataset: yields its batches in plan order.
///
/// Created by `zenith_loader_open`, freed by `zenith_loader_free`.
pub struct zenith_loader {
    inner: Loader,
}

/// Creates loader options with the defaults (batch size 1024).
///
/// Ownership: on success `*out` receives a new options object the caller frees with
/// `zenith_loader_options_free`.
/// On failure: `*out` is left untouched.
/// NULL policy: `out == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`.
///
/// # Safety
/// `out` is NULL or points to writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_new(
    out: *mut *mut zenith_loader_options,
) -> zenith_status {
    ffi_boundary!(err: std::ptr::null_mut(), {
        let out = args::out(out, "out")?;
        let options = args::into_handle(zenith_loader_options { inner: LoaderOptions::default() });
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(options) };
        Ok(ZENITH_OK)
    })
}

/// Frees loader options. Loaders opened with them are unaffected (they keep a copy).
///
/// NULL policy: `zenith_loader_options_free(NULL)` does nothing.
///
/// # Safety
/// `opts` is NULL or a live options object, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_free(opts: *mut zenith_loader_options) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(opts) }
    })
}

/// Sets the number of rows per batch. Every batch of an epoch has exactly this many rows except
/// the last, which holds the remainder.
///
/// On failure: `batch_size == 0` returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_batch_size(
    opts: *mut zenith_loader_options,
    batch_size: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let opts = unsafe { args::borrow_mut(opts, "opts") }?;
        opts.inner.set_batch_size(batch_size)?;
        Ok(ZENITH_OK)
    })
}

/// Opens the dataset at `path` and prepares its first epoch.
///
/// `path` is a file, a directory (searched recursively; files in sorted path order; names that
/// start with `.` or `_`, such as `_SUCCESS`, skipped) or a glob pattern. Each file is an Arrow
/// IPC file or stream, Parquet, or CSV with a header row, recognised by its magic bytes or else
/// its extension; every file must have the first one's column names and types.
///
/// Arrow IPC files and streams are memory-mapped; batches are zero-copy views of their pages
/// wherever a batch lies within one record batch of the file. Parquet row groups are decoded as
/// they are needed; CSV files are parsed here. Files must not change while the loader is open.
///
/// Ownership: on success `*out` receives a new loader the caller frees with `zenith_loader_free`.
/// `opts` is only read (it may be freed right after this call).
/// On failure: returns `ZENITH_ERR_NOT_FOUND` (missing path, or no data file under it),
/// `ZENITH_ERR_FORMAT` (no known format, truncated, corrupt, malformed CSV; the message names the
/// file, and the line for CSV), `ZENITH_ERR_SCHEMA_MISMATCH` (files whose schemas differ; the
/// message names both), `ZENITH_ERR_IO`, `ZENITH_ERR_UNSUPPORTED` (e.g. a file of the other byte
/// order);
/// `*err` receives the details when `err` is not NULL; `*out` is left untouched.
/// NULL policy: `path` and `out` must not be NULL; `opts == NULL` means the defaults; `err` may be
/// NULL.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `opts` is NULL or live; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_open(
    path: *const c_char,
    opts: *const zenith_loader_options,
    out: *mut *mut zenith_loader,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let path = unsafe { args::path(path, "path") }?;
        let out = args::out(out, "out")?;
        let default_options = LoaderOptions::default();
        // SAFETY: per the contract above.
        let options = unsafe { opts.as_ref() }.map_or(&default_options, |o| &o.inner);
        let loader = Loader::open(&path, options)?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_loader { inner: loader })) };
        Ok(ZENITH_OK)
    })
}

/// Exports the schema of the loader's batches (a struct schema, format `+s`, one child per
/// column).
///
/// Ownership: on success the caller owns `*out` and must call `out->release(out)`.
/// On failure: `*out` is left untouched.
/// NULL policy: `loader` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called concurrently with other calls on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `out` is NULL or points to writable `struct ArrowSchema` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_schema(
    loader: *const zenith_loader,
    out: *mut FFI_ArrowSchema,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow(loader, "loader") }?;
        let out = args::out(out, "out")?;
        let schema = export_schema(&loader.inner.schema())?;
        // SAFETY: `out` is non-NULL and writable; it is not read (it may hold garbage).
        unsafe { out.write(schema) };
        Ok(ZENITH_OK)
    })
}

/// Delivers the next batch of the epoch as an Arrow C Data Interface struct array.
///
/// Returns `ZENITH_OK` with a batch, or `ZENITH_DONE` at the end of the epoch (nothing written).
/// Ownership: on `ZENITH_OK` the caller owns `*out_array` (and `*out_schema` when given) and must
/// call their `release` callbacks. The array stays valid after the loader is freed: it keeps the
/// memory-mapped file pages it shares alive until released.
/// On failure: nothing is written and the batch is not consumed (a later call retries it). Data
/// decoded on demand fails here, e.g. `ZENITH_ERR_FORMAT` naming a Parquet file and row group
/// whose pages are corrupt.
/// NULL policy: `loader` and `out_array` must not be NULL; `out_schema` may be NULL (the schema is
/// also available from `zenith_loader_schema`); `err` may be NULL.
/// Thread safety: do not call concurrently on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `out_array`/`out_schema` are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_next(
    loader: *mut zenith_loader,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow_mut(loader, "loader") }?;
        let out_array = args::out(out_array, "out_array")?;
        // Export the schema before taking the batch, so a failure consumes nothing.
        let schema = if out_schema.is_null() {
            None
        } else {
            Some(export_schema(&loader.inner.schema())?)
        };
        let Some(batch) = loader.inner.next_batch()? else {
            return Ok(ZENITH_DONE);
        };
        // SAFETY: both outputs are non-NULL (checked) and writable per the contract.
        unsafe {
            out_array.write(export_array(&batch));
            if let Some(schema) = schema {
                out_schema.write(schema);
            }
        }
        Ok(ZENITH_OK)
    })
}

/// Delivers the next batch of the epoch as an owned `zenith_batch` handle (for DLPack export, or
/// to export as Arrow later or more than once).
///
/// Returns `ZENITH_OK` with a batch, or `ZENITH_DONE` at the end of the epoch (nothing written).
/// Ownership: on `ZENITH_OK` the caller owns `*out` and frees it with `zenith_batch_free`; it stays
/// valid after the loader is freed.
/// On failure: nothing is written and the batch is not consumed.
/// NULL policy: `loader` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: do not call concurrently on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `out` is NULL or points to writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_next_batch(
    loader: *mut zenith_loader,
    out: *mut *mut zenith_batch,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow_mut(loader, "loader") }?;
        let out = args::out(out, "out")?;
        let Some(data) = loader.inner.next_batch()? else {
            return Ok(ZENITH_DONE);
        };
        let batch = Batch { data, epoch: 0, index: 0 };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_batch { inner: batch })) };
        Ok(ZENITH_OK)
    })
}

/// Exports the rest of the current epoch as an Arrow C Stream Interface stream.
///
/// The stream continues from where the loader stands; batches it yields are consumed and
/// `zenith_loader_next` will not return them. The stream is independent of the loader's lifetime:
/// it may outlive `zenith_loader_free`. Its `get_next` yields a released (NULL `release`) array at
/// the end of the epoch; errors are reported through `get_last_error`.
/// Ownership: on success the caller owns `*out` and must call `out->release(out)`.
/// On failure: `*out` is left untouched.
/// NULL policy: `loader` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: the stream must be used from one thread at a time, as the C Stream Interface
/// requires; do not call it concurrently with `zenith_loader_next` on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `out` is NULL or points to writable `struct ArrowArrayStream` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_export_stream(
    loader: *mut zenith_loader,
    out: *mut FFI_ArrowArrayStream,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow_mut(loader, "loader") }?;
        let out = args::out(out, "out")?;
        // Check up front that the schema can be exported: the stream's get_schema must not fail.
        export_schema(&loader.inner.schema())?;
        let stream = FFI_ArrowArrayStream::new(Box::new(loader.inner.reader()));
        // SAFETY: `out` is non-NULL and writable; it is not read (it may hold garbage).
        unsafe { out.write(stream) };
        Ok(ZENITH_OK)
    })
}

/// Frees a loader. Arrays and streams exported from it stay valid until they are released.
///
/// NULL policy: `zenith_loader_free(NULL)` does nothing.
///
/// # Safety
/// `loader` is NULL or a live loader, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_free(loader: *mut zenith_loader) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(loader) }
    })
}
