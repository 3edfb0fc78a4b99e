//! Pinned host memory for a loader's batches: `zenith_loader_options_set_pin_memory` (batches
//! delivered on the host land in page-locked memory, so a consumer's own `non_blocking` copies
//! are truly asynchronous), and the loader open on a CUDA device, whose batches are gathered
//! into the device's pinned memory and copied from there straight to the device.

use zenith_core::loader::{Loader, LoaderOptions};
use zenith_core::{Error, Result};
use zenith_gpu::pinned::{gather_into_pinned, pinned_batch_allocator};

use crate::args;
use crate::error::zenith_error;
use crate::gpu::CudaPath;
use crate::options::zenith_loader_options;
use crate::status::{ZENITH_OK, zenith_status};

/// Makes the batches of a loader opened with `opts` land in pinned (page-locked) host memory of
/// CUDA device `ordinal` (`enable == true`), or in ordinary memory again (`enable == false`, the
/// default).
///
/// Pinned memory is what lets a consumer's own host-to-device copy run asynchronously (torch's
/// `tensor.to("cuda", non_blocking=True)`); copies from pageable memory are staged by the driver
/// and block. The memory comes from a pool of `cuMemHostAlloc` blocks (portable: usable from
/// every context), reused as the consumer releases batches: keep a batch (its arrays or
/// tensors) until your asynchronous copy out of it finished (e.g. a CUDA event recorded after
/// the copy completed), or the loader may write the next batch into it.
///
/// Which batches land there: every batch the workers build. Gathered (shuffled) batches are
/// written there by the gather kernel; the others (zero-copy views of memory-mapped files with
/// `ZENITH_SHUFFLE_NONE`, batches spanning chunks) are copied there by the worker threads, so
/// they are no longer views of the file. Loader stages run after that: a stage that builds new
/// buffers delivers them where it allocated them. Pinned memory replaces a NUMA placement of
/// the batch pool (`zenith_loader_options_set_numa_node`); a loader on a CUDA device
/// (`zenith_loader_options_set_device`) uses its device's pinned memory for its batches whatever
/// this option says.
///
/// On failure: `ZENITH_ERR_NO_DEVICE` when `enable` is true and CUDA device `ordinal` is not
/// available (no driver: the message names the libraries searched; no device; no such ordinal);
/// the options are unchanged. Disabling needs no driver.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_pin_memory(
    opts: *mut zenith_loader_options,
    ordinal: u32,
    enable: bool,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let opts = unsafe { args::borrow_mut(opts, "opts") }?;
        if !enable {
            opts.inner.set_host_allocator(None);
            opts.inner.set_pool_every_batch(false);
            return Ok(ZENITH_OK);
        }
        let (allocator, _) = pinned_batch_allocator(ordinal).map_err(|error| match error {
            Error::NoDevice(reason) => Error::NoDevice(format!(
                "pin_memory needs CUDA device {ordinal}, which is not available: {reason}"
            )),
            other => other,
        })?;
        opts.inner.set_host_allocator(Some(allocator));
        opts.inner.set_pool_every_batch(true);
        Ok(ZENITH_OK)
    })
}

/// Opens a loader with `open` and the device path `opts` chooses. On a CUDA device the device
/// is checked first (`ZENITH_ERR_NO_DEVICE` before any file is read), the loader's workers
/// build every batch in the device's pinned memory (the device path copies their columns
/// straight from there, no staging copy on the consumer's thread), and the path's device
/// buffers are sized from the loader's schema and batch size.
pub(crate) fn open_loader(
    opts: Option<&zenith_loader_options>,
    open: impl FnOnce(&LoaderOptions) -> Result<Loader>,
) -> Result<(Loader, Option<CudaPath>)> {
    let Some(opts) = opts else {
        return Ok((open(&LoaderOptions::default())?, None));
    };
    let Some(mut path) = opts.device.open()? else {
        return Ok((open(&opts.inner)?, None));
    };
    let mut options = opts.inner.clone();
    gather_into_pinned(path.path_mut(), &mut options)?;
    let loader = open(&options)?;
    path.path_mut()
        .set_batch_shape(&loader.schema(), options.batch_size())?;
    Ok((loader, Some(path)))
}
