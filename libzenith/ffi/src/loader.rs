//! `zenith_loader_options` and `zenith_loader`: open a dataset, pull batches, export streams.

use std::ffi::c_char;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;

use crate::args;
use crate::batch::zenith_batch;
use crate::error::zenith_error;
use crate::options::{
    ZENITH_SHUFFLE_AUTO, io_backend_to_c, shard_source_to_c, shuffle_to_c, zenith_io_backend,
    zenith_loader_options, zenith_shard_source, zenith_shuffle,
};
use crate::status::{ZENITH_DONE, ZENITH_OK, ZENITH_WOULD_BLOCK, zenith_status};
use zenith_core::Error;
use zenith_core::batch::{Batch, export_array, export_schema};
use zenith_core::loader::{Fetched, Loader};

/// Size in bytes of an encoded token (the largest a caller's buffer needs to be).
pub const ZENITH_RESUME_STATE_SIZE: usize = 96;
const _: () = assert!(ZENITH_RESUME_STATE_SIZE == zenith_core::loader::RESUME_STATE_SIZE);

/// A loader over one dataset: yields its batches in plan order.
///
/// Created by `zenith_loader_open`, freed by `zenith_loader_free`.
pub struct zenith_loader {
    inner: Loader,
    /// The device path when batches are delivered on a CUDA device (gpu.rs).
    device: Option<crate::gpu::CudaPath>,
    /// The device path's counters, read by `zenith_loader_stats` from any thread.
    device_totals: Option<zenith_gpu::device_feed::SharedTotals>,
    /// Whether `zenith_loader_export_device_stream` took the device path over.
    device_streamed: bool,
}

impl zenith_loader {
    fn new(inner: Loader, device: Option<crate::gpu::CudaPath>) -> Self {
        let device_totals = device.as_ref().map(|d| d.shared_totals());
        zenith_loader {
            inner,
            device,
            device_totals,
            device_streamed: false,
        }
    }

    /// The batches' schema.
    pub(crate) fn schema(&self) -> arrow_schema::SchemaRef {
        self.inner.schema()
    }

    /// A reader of the loader's batches (shares its state).
    pub(crate) fn reader(&self) -> zenith_core::loader::EpochReader {
        self.inner.reader()
    }

    /// Hands the device path (if any) to a device stream; the loader's own device deliveries
    /// are refused from then on. A second device stream of a loader on a device is refused.
    pub(crate) fn take_device_path_for_stream(
        &mut self,
    ) -> zenith_core::Result<Option<crate::gpu::CudaPath>> {
        if self.device_streamed {
            return Err(Error::InvalidArgument(
                "the loader's device batches already go to an ArrowDeviceArrayStream exported \
                 from it"
                    .into(),
            ));
        }
        let path = self.device.take();
        self.device_streamed = path.is_some();
        Ok(path)
    }

    /// Refuses deliveries of a loader whose device path went to a device stream.
    fn check_not_streamed(&self) -> zenith_core::Result<()> {
        if self.device_streamed {
            return Err(Error::InvalidArgument(
                "the loader's device batches go to the ArrowDeviceArrayStream exported from it \
                 (zenith_loader_export_device_stream): read them there"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Opens the dataset at `path` and prepares its first epoch.
///
/// `path` is a file, a directory (searched recursively; files in sorted path order; names that
/// start with `.` or `_`, such as `_SUCCESS`, skipped) or a glob pattern (`**` matches any number
/// of directories); a leading `~/` is the home directory (`$HOME`), a `file://` URL a local path,
/// and any other URL scheme (`s3://`, `hdfs://`, ...) is `ZENITH_ERR_UNSUPPORTED` naming it. Each
/// file is an Arrow IPC file or stream, Parquet, CSV or TSV (also gzip- or zstd-compressed:
/// `.csv.gz`, `.tsv.zst`; see `zenith_loader_options_set_csv_delimiter`, `_set_csv_header` and
/// `_set_schema`), JSON lines (`.jsonl`, `.ndjson`, also compressed), or a WebDataset tar shard
/// (`.tar`, `.tar.gz`, `.tgz`, `.tar.zst`: files grouped by key into rows, a `__key__` text column
/// and one binary column per extension), recognised by its magic bytes or else its extension;
/// every file must have the first one's column names and types. Compressed files are
/// decompressed as they are parsed, never past the memory budget (`ZENITH_ERR_OUT_OF_MEMORY`). Only regular files are read: a FIFO, socket or device met in a
/// directory or matched by a glob is skipped without being opened (and named in
/// `zenith_loader_io_fallback_reason`), and so is a symbolic link back to a directory that
/// contains it; walks stop with an error past 64 directory levels or 4,194,304 entries.
///
/// With the default I/O backend (`ZENITH_IO_MMAP`), Arrow IPC files and streams are
/// memory-mapped (private, copy-on-write: a consumer's write never reaches the file); batches are
/// zero-copy views of their pages wherever a batch lies within one record batch of the file.
/// With `ZENITH_IO_PREAD` or `ZENITH_IO_URING`, they are read into memory of their own instead.
/// Parquet row groups are decoded as they are needed; CSV files are parsed here.
///
/// Files that change while being read: each file's identity (device, inode, size, modification
/// time) is taken here and checked before each epoch, before each batch reads the file and, for
/// batches that share mapped pages, again when the batch is delivered. A file truncated,
/// rewritten or replaced fails that call with `ZENITH_ERR_IO` ("<path>: changed while being
/// read: ..."); no batch of a changed file is served from a cache. Two windows remain with
/// memory-mapped files, as with any reader of them: a file truncated between such a check and the
/// access of a mapped page still faults (`SIGBUS`); and batches, arrays and tensors a caller holds
/// keep pointing into the mapping after they were delivered (also after `zenith_loader_free`), so
/// reading them after the file shrank faults too. A rewrite that keeps the size within the file
/// system's timestamp granularity (a few milliseconds) can go unnoticed. Datasets whose files may
/// change while they are read should use `ZENITH_IO_PREAD`: every batch then owns its memory.
///
/// Ownership: on success `*out` receives a new loader the caller frees with `zenith_loader_free`.
/// `opts` is only read (it may be freed right after this call).
/// On failure: returns `ZENITH_ERR_NOT_FOUND` (missing path, or no data file under it),
/// `ZENITH_ERR_OUT_OF_MEMORY` (an explicit `ZENITH_SHUFFLE_GLOBAL` over the memory budget),
/// `ZENITH_ERR_FORMAT` (no known format, truncated, corrupt, malformed CSV; the message names the
/// file, and the line for CSV), `ZENITH_ERR_SCHEMA_MISMATCH` (files whose schemas differ; the
/// message names both), `ZENITH_ERR_IO`, `ZENITH_ERR_UNSUPPORTED` (e.g. a file of the other byte
/// order), `ZENITH_ERR_INVALID_ARGUMENT` (e.g. `path` names a FIFO, socket or device: "not a
/// regular file"; a walk deeper or longer than the limits above; a GPU set with
/// `zenith_loader_options_set_near_gpu_*` that is not on the PCI bus, or a world size larger
/// than the dataset's rows), `ZENITH_ERR_NO_DEVICE` (a CUDA device chosen with
/// `zenith_loader_options_set_device` that does not exist: no driver, no device, no such ordinal);
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
        // SAFETY: per the contract above.
        let opts = unsafe { opts.as_ref() };
        // `near_gpu` resolves through the topology merged with NVML's GPUs (gpu.rs).
        crate::gpu::install_topology_facts();
        // A device set with zenith_loader_options_set_device must exist (pinned.rs).
        let (loader, device) = crate::pinned::open_loader(opts, |o| Loader::open(&path, o))?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_loader::new(loader, device))) };
        Ok(ZENITH_OK)
    })
}

/// Opens the files of several paths as one dataset, like `zenith_loader_open` for each (a file,
/// a directory of shards or a glob; `~` and `file://` as there), the files in the order of the
/// paths (each path's own files sorted). Shuffling, sharding and resume treat them as one
/// dataset.
///
/// Ownership: on success `*out` receives a new loader the caller frees with `zenith_loader_free`.
/// `paths` and `opts` are only read.
/// On failure: as `zenith_loader_open`; also `ZENITH_ERR_INVALID_ARGUMENT` for a NULL or empty
/// entry or a file named twice, and `ZENITH_ERR_NOT_FOUND` for `count == 0`. `*out` is left
/// untouched.
/// NULL policy: `paths` (unless `count == 0`) and `out` must not be NULL; `opts == NULL` means
/// the defaults; `err` may be NULL.
///
/// # Safety
/// `paths` is NULL or points to `count` pointers, each NULL or NUL-terminated; `opts` is NULL or
/// live; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_open_paths(
    paths: *const *const c_char,
    count: usize,
    opts: *const zenith_loader_options,
    out: *mut *mut zenith_loader,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out = args::out(out, "out")?;
        let pointers: &[*const c_char] = if count == 0 {
            &[]
        } else if paths.is_null() {
            return Err(zenith_core::Error::NullArgument("paths"));
        } else {
            // SAFETY: non-NULL and `count` long per the contract.
            unsafe { std::slice::from_raw_parts(paths, count) }
        };
        let mut list = Vec::with_capacity(pointers.len());
        for (i, &pointer) in pointers.iter().enumerate() {
            if pointer.is_null() {
                return Err(zenith_core::Error::InvalidArgument(format!("paths[{i}] is NULL")));
            }
            // SAFETY: non-NULL and NUL-terminated per the contract.
            list.push(unsafe { args::path(pointer, "paths[i]") }?);
        }
        // SAFETY: per the contract above.
        let opts = unsafe { opts.as_ref() };
        // `near_gpu` resolves through the topology merged with NVML's GPUs (gpu.rs).
        crate::gpu::install_topology_facts();
        let (loader, device) = crate::pinned::open_loader(opts, |o| Loader::open_list(&list, o))?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_loader::new(loader, device))) };
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
/// whose pages are corrupt, or `ZENITH_ERR_IO` for a file that changed since
/// `zenith_loader_open` ("changed while being read").
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
            out_array.write(export_array(&batch.data));
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
        loader.check_not_streamed()?;
        let batch = match loader.device.as_mut() {
            Some(path) => crate::gpu::next_device_batch(&loader.inner, path)?,
            None => loader.inner.next_batch()?.map(zenith_batch::on_host),
        };
        let Some(batch) = batch else {
            return Ok(ZENITH_DONE);
        };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(batch)) };
        Ok(ZENITH_OK)
    })
}

/// Waits at most `timeout_ms` milliseconds for the next batch; the rest like `zenith_loader_next`.
///
/// Returns `ZENITH_OK` with a batch, `ZENITH_DONE` at the end of the epoch, or
/// `ZENITH_WOULD_BLOCK` when the workers did not finish the batch in time: nothing is written
/// or consumed, and the loader stays as it was (a later call delivers that batch). A timeout of 0
/// only looks; `UINT64_MAX` waits like `zenith_loader_next`. Interpreters call it in short slices
/// (Python: 100 ms) so that signal handlers (Ctrl-C) run between calls. With
/// `num_workers == 0` the calling thread builds the batch, which the timeout does not interrupt.
/// Ownership, failure, NULL policy and thread safety: as `zenith_loader_next`.
///
/// # Safety
/// `loader` is NULL or live; `out_array`/`out_schema` are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_next_timeout(
    loader: *mut zenith_loader,
    timeout_ms: u64,
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
        let batch = match fetch(&loader.inner, timeout_ms)? {
            Ok(batch) => batch,
            Err(status) => return Ok(status),
        };
        // SAFETY: both outputs are non-NULL (checked) and writable per the contract.
        unsafe {
            out_array.write(export_array(&batch.data));
            if let Some(schema) = schema {
                out_schema.write(schema);
            }
        }
        Ok(ZENITH_OK)
    })
}

/// Waits at most `timeout_ms` milliseconds for the next batch; the rest like
/// `zenith_loader_next_batch`.
///
/// Returns `ZENITH_OK` with a batch in `*out`, `ZENITH_DONE` at the end of the epoch, or
/// `ZENITH_WOULD_BLOCK` when the workers did not finish the batch in time: nothing is written
/// or consumed, and the loader stays as it was (a later call delivers that batch). A timeout of 0
/// only looks; `UINT64_MAX` waits like `zenith_loader_next_batch`. With `num_workers == 0` the
/// calling thread builds the batch, which the timeout does not interrupt.
/// Ownership, failure, NULL policy and thread safety: as `zenith_loader_next_batch`.
///
/// # Safety
/// `loader` is NULL or live; `out` is NULL or points to writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_next_batch_timeout(
    loader: *mut zenith_loader,
    timeout_ms: u64,
    out: *mut *mut zenith_batch,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow_mut(loader, "loader") }?;
        let out = args::out(out, "out")?;
        loader.check_not_streamed()?;
        if let Some(path) = loader.device.as_mut() {
            // The device path waits on its own deadlines (slots, copies), not `timeout_ms`.
            let Some(batch) = crate::gpu::next_device_batch(&loader.inner, path)? else {
                return Ok(ZENITH_DONE);
            };
            // SAFETY: `out` is non-NULL and writable per the contract.
            unsafe { out.write(args::into_handle(batch)) };
            return Ok(ZENITH_OK);
        }
        let batch = match fetch(&loader.inner, timeout_ms)? {
            Ok(batch) => batch,
            Err(status) => return Ok(status),
        };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_batch::on_host(batch))) };
        Ok(ZENITH_OK)
    })
}

/// The next batch within `timeout_ms`, or the status to return without one (`ZENITH_DONE`,
/// `ZENITH_WOULD_BLOCK`).
fn fetch(loader: &Loader, timeout_ms: u64) -> zenith_core::Result<Result<Batch, zenith_status>> {
    Ok(
        match loader.next_batch_timeout(std::time::Duration::from_millis(timeout_ms))? {
            Fetched::Batch(batch) => Ok(batch),
            Fetched::Done => Err(ZENITH_DONE),
            Fetched::Pending => Err(ZENITH_WOULD_BLOCK),
        },
    )
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

/// Counters and configuration of a running loader, filled by `zenith_loader_stats`.
///
/// Set `struct_size = sizeof(zenith_stats)` before the call: the library fills only the
/// fields that fit, so programs built against an older, shorter struct keep working.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct zenith_stats {
    /// Set by the caller: the size of the struct it allocated.
    pub struct_size: usize,
    /// Rows delivered since open.
    pub rows: u64,
    /// Batches delivered since open.
    pub batches: u64,
    /// Bytes of Arrow buffers in the delivered batches (each batch's share of shared buffers).
    pub bytes: u64,
    /// Nanoseconds from open to the first delivered batch (0 before it).
    pub time_to_first_batch_ns: u64,
    /// Nanoseconds the consumer spent blocked in `zenith_loader_next*` waiting for workers.
    pub consumer_wait_ns: u64,
    /// Nanoseconds spent building batches, summed over workers.
    pub worker_busy_ns: u64,
    /// Nanoseconds spent decoding chunks (part of the worker time).
    pub decode_ns: u64,
    /// Chunks (Parquet row groups) decoded; at most once per chunk and epoch.
    pub chunks_decoded: u64,
    /// Batches built and waiting for the consumer now.
    pub queue_depth: u64,
    /// The current epoch.
    pub epoch: u64,
    /// Batches per epoch for this rank.
    pub batches_per_epoch: u64,
    /// The shuffle mode running (`ZENITH_SHUFFLE_*`): a global shuffle whose decoded data would
    /// exceed the memory budget runs as `ZENITH_SHUFFLE_BLOCK`.
    pub shuffle_mode: zenith_shuffle,
    /// Worker threads.
    pub num_workers: u32,
    /// The NUMA node the workers run on and gathered batches are allocated on
    /// (`zenith_loader_options_set_numa_node` / `_near_gpu_*`); -1 when there is no placement,
    /// also when the node or GPU asked for has no known node on this machine.
    pub numa_node: i32,
    /// Worker threads of the current epoch pinned to the node's CPUs (fewer than `num_workers`
    /// when the node has no CPUs this process may use, or while workers are starting).
    pub pinned_workers: u32,
    /// The I/O backend reading the files (`ZENITH_IO_*`): `ZENITH_IO_PREAD` when io_uring was
    /// asked for and is unavailable (see `zenith_loader_io_fallback_reason`).
    pub io_backend: zenith_io_backend,
    /// The I/O backend the options asked for (`zenith_loader_options_set_io_backend`).
    pub io_backend_requested: zenith_io_backend,
    /// Bytes read from the files (for `ZENITH_IO_MMAP`: bytes of the column chunks handed to
    /// the decoder, whose reads are page faults).
    pub io_read_bytes: u64,
    /// Nanoseconds spent reading (part of `decode_ns`; 0 for `ZENITH_IO_MMAP`).
    pub io_read_ns: u64,
    /// This loader's rank (`zenith_loader_options_set_shard`, or from the environment).
    pub rank: u32,
    /// The number of ranks sharing each epoch.
    pub world_size: u32,
    /// Where `rank` and `world_size` came from (`ZENITH_SHARD_FROM_*`): the options, `RANK`/
    /// `WORLD_SIZE`, `SLURM_PROCID`/`SLURM_NTASKS`, or nothing (0 of 1).
    pub shard_source: zenith_shard_source,
    /// The shuffle the options asked for (`ZENITH_SHUFFLE_*`; `ZENITH_SHUFFLE_AUTO` by default).
    /// `ZENITH_SHUFFLE_AUTO` here with `shuffle_mode == ZENITH_SHUFFLE_BLOCK` means the data
    /// exceeded the memory budget and runs as a block shuffle.
    pub shuffle_requested: zenith_shuffle,
    /// The memory budget that decided the shuffle, in bytes (the option, or the default share of
    /// this node's memory).
    pub memory_budget: u64,
    /// Estimated bytes of the dataset decoded, which a global shuffle holds (0 when the data is
    /// served without decoding: memory-mapped Arrow IPC, CSV).
    pub decoded_bytes: u64,
    /// Bytes the device path copied to the device (`zenith_loader_options_set_device`; all the
    /// `device_*` fields are 0 for a loader delivering in host memory).
    pub device_bytes_copied: u64,
    /// Batches the device path copied.
    pub device_copies: u64,
    /// Nanoseconds from each copy's submission until the loader saw it finished (exact when the
    /// consumer waited for it, else an upper bound).
    pub device_copy_ns: u64,
    /// Nanoseconds the consumer spent waiting for batches to land on the device (GPU
    /// starvation; the wait for workers is `consumer_wait_ns`).
    pub device_consumer_wait_ns: u64,
    /// Batches whose copy had not finished when the consumer asked for them.
    pub device_consumer_waits: u64,
    /// Times a worker waited for a pinned staging slot whose copy had not finished.
    pub device_staging_waits: u64,
    /// Times a copy waited for device memory the consumer still held.
    pub device_memory_waits: u64,
}

/// Fills `*out` with the loader's counters and configuration.
///
/// On failure: `out->struct_size` smaller than a `size_t` returns `ZENITH_ERR_INVALID_ARGUMENT`;
/// nothing is written.
/// NULL policy: `loader` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread while another consumes batches.
///
/// # Safety
/// `loader` is NULL or live; `out` is NULL or points to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_stats(
    loader: *const zenith_loader,
    out: *mut zenith_stats,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow(loader, "loader") }?;
        let out = args::out(out, "out")?;
        // SAFETY: the caller owns at least `struct_size` bytes, which starts with a size_t.
        let caller_size = unsafe { out.cast::<usize>().read() };
        if caller_size < std::mem::size_of::<usize>() {
            return Err(Error::InvalidArgument(format!(
                "out->struct_size is {caller_size}; set it to sizeof(zenith_stats)"
            )));
        }
        let s = loader.inner.stats();
        let d = loader
            .device_totals
            .as_ref()
            .map(|t| t.snapshot())
            .unwrap_or_default();
        let stats = zenith_stats {
            struct_size: caller_size,
            rows: s.rows,
            batches: s.batches,
            bytes: s.bytes,
            time_to_first_batch_ns: s.time_to_first_batch_ns,
            consumer_wait_ns: s.consumer_wait_ns,
            worker_busy_ns: s.worker_busy_ns,
            decode_ns: s.decode_ns,
            chunks_decoded: s.chunks_decoded,
            queue_depth: s.queue_depth,
            epoch: s.epoch,
            batches_per_epoch: s.batches_per_epoch,
            shuffle_mode: shuffle_to_c(s.shuffle),
            num_workers: s.num_workers,
            numa_node: s.numa_node.and_then(|n| i32::try_from(n).ok()).unwrap_or(-1),
            pinned_workers: s.pinned_workers,
            io_backend: io_backend_to_c(s.io_backend),
            io_backend_requested: io_backend_to_c(s.io_backend_requested),
            io_read_bytes: s.io_read_bytes,
            io_read_ns: s.io_read_ns,
            rank: s.rank,
            world_size: s.world_size,
            shard_source: shard_source_to_c(s.shard_source),
            shuffle_requested: s.shuffle_requested.map_or(ZENITH_SHUFFLE_AUTO, shuffle_to_c),
            memory_budget: s.memory_budget,
            decoded_bytes: s.decoded_bytes,
            device_bytes_copied: d.bytes_copied,
            device_copies: d.copies,
            device_copy_ns: d.copy_ns,
            device_consumer_wait_ns: d.consumer_wait_ns,
            device_consumer_waits: d.consumer_waits,
            device_staging_waits: d.staging_waits,
            device_memory_waits: d.device_waits,
        };
        let len = caller_size.min(std::mem::size_of::<zenith_stats>());
        // SAFETY: `len` bytes fit both the local struct and the caller's (per the contract).
        unsafe { std::ptr::copy_nonoverlapping((&raw const stats).cast::<u8>(), out.cast::<u8>(), len) };
        Ok(ZENITH_OK)
    })
}

/// Writes why the loader does not read its files as the options asked, as NUL-terminated UTF-8
/// text, into `buf`, and its length (without the NUL) into `*out_len`. The text is empty when
/// everything is read as asked; otherwise it names the cause, e.g. "io_uring unavailable:
/// io_uring_setup failed with EPERM (a seccomp filter or security module denies it); reading
/// with pread", "O_DIRECT refused by the file system (EINVAL): buffered reads", or
/// "ZENITH_IO_BACKEND=pread overrides the loader option (io_uring)". It also names the paths
/// skipped while listing the dataset, e.g. "skipped data/pipe: not a regular file (a FIFO)" or
/// "skipped data/self: a directory that loops back to data".
///
/// On failure: when `cap < *out_len + 1`, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with the length
/// in `*out_len` (so `buf == NULL, cap == 0` asks for it) and writes nothing to `buf`.
/// NULL policy: `loader` and `out_len` must not be NULL; `buf` may be NULL when `cap == 0`;
/// `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `loader` is NULL or live; `buf` is NULL or points to `cap` writable bytes; `out_len` is NULL
/// or writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_io_fallback_reason(
    loader: *const zenith_loader,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow(loader, "loader") }?;
        let reason = loader.inner.io_fallback_reason().unwrap_or_default();
        // SAFETY: per the contract above.
        unsafe { args::write_text(&reason, buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}

/// Returns the number of batches this rank receives per epoch (0 when `loader` is NULL).
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `loader` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_num_batches(loader: *const zenith_loader) -> u64 {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { loader.as_ref() }.map_or(0, |l| l.inner.num_batches())
    })
}

/// Starts epoch `epoch` from its first batch; its order depends on the epoch number (call it with
/// 0, 1, 2, ... as training proceeds). Batches of the current epoch not yet taken are discarded.
/// Every value is an epoch, `UINT64_MAX` included (its resume token round-trips); a caller that
/// counts epochs stops there rather than wrapping to 0 (the bindings raise an error).
///
/// On failure: `ZENITH_ERR_IO` when a file of the dataset changed since `zenith_loader_open`
/// ("changed while being read"); the current epoch is then left as it was.
/// NULL policy: `loader == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other calls on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_set_epoch(
    loader: *mut zenith_loader,
    epoch: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow_mut(loader, "loader") }?;
        loader.inner.set_epoch(epoch)?;
        Ok(ZENITH_OK)
    })
}

/// Writes the loader's resume token (at most `ZENITH_RESUME_STATE_SIZE` bytes: dataset
/// fingerprint, options that decide the order, epoch and batches delivered; no data) into `buf`
/// and its length into `*out_len`. Pass it to `zenith_loader_options_set_resume_state` to open a
/// loader that delivers exactly the batches not yet delivered.
///
/// On failure: when `cap` is smaller than the token, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with
/// the size needed in `*out_len` (so `buf == NULL, cap == 0` asks for the size) and writes nothing
/// to `buf`.
/// NULL policy: `loader` and `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err`
/// may be NULL.
/// Thread safety: do not call concurrently with other calls on the same loader.
///
/// # Safety
/// `loader` is NULL or live; `buf` is NULL or points to `cap` writable bytes; `out_len` is NULL or
/// writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_save_state(
    loader: *const zenith_loader,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let loader = unsafe { args::borrow(loader, "loader") }?;
        let out_len = args::out(out_len, "out_len")?;
        let token = loader.inner.save_state();
        // SAFETY: `out_len` is non-NULL and writable per the contract.
        unsafe { out_len.write(token.len()) };
        if cap < token.len() {
            return Err(Error::BufferTooSmall { needed: token.len(), given: cap });
        }
        let buf = args::out(buf, "buf")?;
        // SAFETY: `buf` holds `cap >= token.len()` writable bytes per the contract.
        unsafe { std::ptr::copy_nonoverlapping(token.as_ptr(), buf, token.len()) };
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
