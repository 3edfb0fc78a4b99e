//! `zenith_loader_options`: the builder handle `zenith_loader_open` reads, with typed setters.
//!
//! Every setter validates its argument and leaves the options unchanged on failure.

use std::ffi::c_char;
use std::sync::Arc;

use arrow_schema::Schema;
use arrow_schema::ffi::FFI_ArrowSchema;

use crate::args;
use crate::engine::zenith_stage;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_core::Error;
use zenith_core::loader::{LoaderOptions, NumaTarget, ShardSource, ShuffleMode};
use zenith_core::runtime::io::IoBackend;
use zenith_core::runtime::topology::PciAddress;

/// The batch size a loader uses unless `zenith_loader_options_set_batch_size` says otherwise.
pub const ZENITH_DEFAULT_BATCH_SIZE: usize = 1024;
const _: () = assert!(ZENITH_DEFAULT_BATCH_SIZE == zenith_core::loader::DEFAULT_BATCH_SIZE);

/// The most worker threads a loader starts.
pub const ZENITH_MAX_WORKERS: usize = 256;
const _: () = assert!(ZENITH_MAX_WORKERS == zenith_core::loader::MAX_WORKERS);

/// A shuffle mode for `zenith_loader_options_set_shuffle` (one of the `ZENITH_SHUFFLE_*` values).
pub type zenith_shuffle = i32;

/// Rows in dataset order (zero-copy slices of memory-mapped files where possible).
pub const ZENITH_SHUFFLE_NONE: zenith_shuffle = 0;
/// One exact permutation of all rows per epoch (the default).
pub const ZENITH_SHUFFLE_GLOBAL: zenith_shuffle = 1;
/// Chunks (row groups) shuffled, then rows shuffled within windows of chunks that fit the memory
/// budget: for data larger than memory.
pub const ZENITH_SHUFFLE_BLOCK: zenith_shuffle = 2;
/// The default: `ZENITH_SHUFFLE_GLOBAL`, or `ZENITH_SHUFFLE_BLOCK` when the decoded data would
/// exceed the memory budget (`zenith_stats.shuffle_mode` says which runs). Never reported as the
/// mode running.
pub const ZENITH_SHUFFLE_AUTO: zenith_shuffle = 3;

/// Where a loader's rank and world size came from (`zenith_stats.shard_source`; one of the
/// `ZENITH_SHARD_FROM_*` values).
pub type zenith_shard_source = i32;

/// Nothing set them: rank 0 of 1 (no shard option, and none of the environment variables).
pub const ZENITH_SHARD_FROM_NONE: zenith_shard_source = 0;
/// The options: `zenith_loader_options_set_shard` or `zenith_loader_options_set_shard_none`.
pub const ZENITH_SHARD_FROM_OPTIONS: zenith_shard_source = 1;
/// `RANK` and `WORLD_SIZE` in the environment (torchrun, torch.distributed).
pub const ZENITH_SHARD_FROM_TORCH: zenith_shard_source = 2;
/// `SLURM_PROCID` and `SLURM_NTASKS` in the environment (srun).
pub const ZENITH_SHARD_FROM_SLURM: zenith_shard_source = 3;

/// The C value of a shard source.
pub(crate) fn shard_source_to_c(source: ShardSource) -> zenith_shard_source {
    match source {
        ShardSource::None => ZENITH_SHARD_FROM_NONE,
        ShardSource::Options => ZENITH_SHARD_FROM_OPTIONS,
        ShardSource::TorchEnv => ZENITH_SHARD_FROM_TORCH,
        ShardSource::SlurmEnv => ZENITH_SHARD_FROM_SLURM,
    }
}

/// An I/O backend for `zenith_loader_options_set_io_backend` (one of the `ZENITH_IO_*` values).
pub type zenith_io_backend = i32;

/// Memory-map the files; pages are read by page faults, zero-copy (the default). See
/// `zenith_loader_open` for files that change while mapped.
pub const ZENITH_IO_MMAP: zenith_io_backend = 0;
/// io_uring: the byte ranges a Parquet row group needs are read in one batched submission.
/// Where io_uring is unavailable (ENOSYS, EPERM from seccomp or `kernel.io_uring_disabled`,
/// RLIMIT_MEMLOCK), files are read with `pread` and the stats say so.
pub const ZENITH_IO_URING: zenith_io_backend = 1;
/// Positioned reads (`pread`), one byte range after another. Every batch owns its memory: the
/// choice for files that may change while they are read.
pub const ZENITH_IO_PREAD: zenith_io_backend = 2;

/// The C value of an I/O backend.
pub(crate) fn io_backend_to_c(backend: IoBackend) -> zenith_io_backend {
    match backend {
        IoBackend::Mmap => ZENITH_IO_MMAP,
        IoBackend::IoUring => ZENITH_IO_URING,
        IoBackend::Pread => ZENITH_IO_PREAD,
    }
}

/// Options for `zenith_loader_open`: a builder handle with typed setters.
///
/// Created by `zenith_loader_options_new`, freed by `zenith_loader_options_free`.
pub struct zenith_loader_options {
    pub(crate) inner: LoaderOptions,
    /// Where batches are delivered (`zenith_loader_options_set_device`, in gpu.rs).
    pub(crate) device: crate::gpu::DeviceChoice,
}

/// The C value of a shuffle mode.
pub(crate) fn shuffle_to_c(mode: ShuffleMode) -> zenith_shuffle {
    match mode {
        ShuffleMode::None => ZENITH_SHUFFLE_NONE,
        ShuffleMode::Global => ZENITH_SHUFFLE_GLOBAL,
        ShuffleMode::Block => ZENITH_SHUFFLE_BLOCK,
    }
}

/// Applies `change` to the options behind `opts` (the shared body of every setter).
///
/// # Safety
/// `opts` is NULL or a live options object.
unsafe fn with_options(
    opts: *mut zenith_loader_options,
    change: impl FnOnce(&mut LoaderOptions) -> zenith_core::Result<()>,
) -> zenith_core::Result<zenith_status> {
    // SAFETY: forwarded to the caller.
    let opts = unsafe { args::borrow_mut(opts, "opts") }?;
    change(&mut opts.inner)?;
    Ok(ZENITH_OK)
}

/// Creates loader options with the defaults: batches of `ZENITH_DEFAULT_BATCH_SIZE` rows,
/// `ZENITH_SHUFFLE_AUTO` (global, or block over the memory budget) with seed 0, last batch kept,
/// one worker per core (at most 4), prefetch of twice the workers, rank and world size from
/// `RANK`/`WORLD_SIZE` or `SLURM_PROCID`/`SLURM_NTASKS` (else 0 of 1) with the remainder padded,
/// every column, a memory budget of half the available memory divided among the node's ranks
/// (see `zenith_loader_options_set_memory_budget`).
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
        let options = args::into_handle(zenith_loader_options {
            inner: LoaderOptions::default(),
            device: Default::default(),
        });
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
/// the last, which holds the remainder (or is dropped, see `zenith_loader_options_set_drop_last`).
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
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| o.set_batch_size(batch_size)) } })
}

/// Sets how each epoch orders rows: `ZENITH_SHUFFLE_AUTO` (default), `ZENITH_SHUFFLE_GLOBAL`,
/// `ZENITH_SHUFFLE_BLOCK` or `ZENITH_SHUFFLE_NONE`. The order is a pure function of the dataset,
/// seed, epoch, mode, batch size and shard, never of the number of workers.
///
/// `ZENITH_SHUFFLE_GLOBAL` is strict: when the decoded data (Parquet) would exceed the memory
/// budget, `zenith_loader_open` fails with `ZENITH_ERR_OUT_OF_MEMORY` naming the bytes needed and
/// the budget. `ZENITH_SHUFFLE_AUTO` runs a block shuffle there instead; `zenith_stats` reports
/// the mode that runs (`shuffle_mode`) beside the one asked for (`shuffle_requested`).
///
/// On failure: an unknown mode returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_shuffle(
    opts: *mut zenith_loader_options,
    mode: zenith_shuffle,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let mode = match mode {
            ZENITH_SHUFFLE_NONE => Some(ShuffleMode::None),
            ZENITH_SHUFFLE_GLOBAL => Some(ShuffleMode::Global),
            ZENITH_SHUFFLE_BLOCK => Some(ShuffleMode::Block),
            ZENITH_SHUFFLE_AUTO => None,
            other => return Err(Error::InvalidArgument(format!("unknown shuffle mode {other}"))),
        };
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| {
            match mode {
                Some(mode) => o.set_shuffle(mode),
                None => o.set_shuffle_auto(),
            }
            Ok(())
        }) }
    })
}

/// Sets the shuffle seed (default 0).
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_seed(
    opts: *mut zenith_loader_options,
    seed: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_seed(seed);
            Ok(())
        }) } })
}

/// Drops the last batch of each epoch when it is shorter than the batch size (default: kept).
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_drop_last(
    opts: *mut zenith_loader_options,
    drop_last: bool,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_drop_last(drop_last);
            Ok(())
        }) } })
}

/// Sets the number of worker threads that build batches ahead (0: batches are built by the thread
/// calling `zenith_loader_next`). Workers change speed only: content and order are the same for
/// any number.
///
/// On failure: more than 256 returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_num_workers(
    opts: *mut zenith_loader_options,
    num_workers: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| o.set_num_workers(num_workers)) } })
}

/// Sets how many batches workers may build ahead of the consumer (default: twice the workers).
/// It bounds the loader's memory: workers wait when that many batches are ready.
///
/// On failure: `prefetch == 0` returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_prefetch(
    opts: *mut zenith_loader_options,
    prefetch: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| o.set_prefetch(prefetch)) } })
}

/// Makes the loader rank `rank` of `world_size` ranks; the environment is then not consulted
/// (`zenith_stats.shard_source` is `ZENITH_SHARD_FROM_OPTIONS`). Each rank receives an
/// equal-sized share of every epoch, so the same number of batches on every rank: by default
/// `ceil(rows / world_size)` rows, the epoch's order padded by wrapping around to its first rows
/// as torch's `DistributedSampler` does (fewer than `world_size` rows are delivered twice); with
/// `zenith_loader_options_set_shard_drop_remainder`, `floor(rows / world_size)` rows, and the
/// `rows % world_size` rows left over are not delivered that epoch. A `world_size` larger than
/// the dataset's rows fails `zenith_loader_open` with `ZENITH_ERR_INVALID_ARGUMENT`.
///
/// Without this call (or `zenith_loader_options_set_shard_none`), rank and world size come from
/// `RANK`/`WORLD_SIZE`, else `SLURM_PROCID`/`SLURM_NTASKS`, else 0 of 1; `zenith_stats` reports
/// them and their source. `zenith_loader_options_set_shard(opts, 0, 1, err)` turns sharding off
/// like `zenith_loader_options_set_shard_none`.
///
/// On failure: `world_size == 0` or `rank >= world_size` returns `ZENITH_ERR_INVALID_ARGUMENT`;
/// the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_shard(
    opts: *mut zenith_loader_options,
    rank: u32,
    world_size: u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| o.set_shard(rank, world_size)) } })
}

/// Keeps only the named columns, in the given order. `(NULL, 0)` restores every column. Names
/// are copied; they are checked against the dataset by `zenith_loader_open` (an unknown name is
/// `ZENITH_ERR_INVALID_ARGUMENT` there).
///
/// On failure: an empty list (`count == 0` with `columns != NULL`: "columns must not be
/// empty"), a NULL name, a name that is not UTF-8, or a repeated name returns
/// `ZENITH_ERR_INVALID_ARGUMENT` (`ZENITH_ERR_NULL_ARGUMENT` for `columns == NULL` with
/// `count > 0`); the options are unchanged.
/// NULL policy: `opts` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live; `columns` is NULL or points to `count` pointers, each NULL or
/// NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_columns(
    opts: *mut zenith_loader_options,
    columns: *const *const c_char,
    count: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        if count == 0 && !columns.is_null() {
            return Err(Error::InvalidArgument("columns must not be empty".into()));
        }
        // SAFETY: per the contract above.
        let listed = unsafe { args::utf8_list(columns, count, "columns") }?;
        let names = match listed {
            None => None,
            Some(listed) => {
                let mut names: Vec<String> = Vec::with_capacity(listed.len());
                for name in listed {
                    if names.iter().any(|n| n == name) {
                        return Err(Error::InvalidArgument(format!(
                            "columns: {name:?} is listed twice"
                        )));
                    }
                    names.push(name.to_owned());
                }
                Some(names)
            }
        };
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| o.set_columns(names)) }
    })
}

/// Caps the bytes of decoded data the loader holds to shuffle (0: the default). Data that must be
/// decoded (Parquet) and would exceed it is shuffled in blocks instead of globally with
/// `ZENITH_SHUFFLE_AUTO` (the default; `zenith_stats` reports the mode that runs), and fails to
/// open with `ZENITH_ERR_OUT_OF_MEMORY` with `ZENITH_SHUFFLE_GLOBAL` set explicitly.
///
/// The default budget is per node, not per loader: half of the memory available at open
/// (`MemAvailable`), divided by the ranks on this node: `LOCAL_WORLD_SIZE` (torchrun) when set,
/// else `SLURM_NTASKS_PER_NODE` (srun with `--ntasks-per-node`), else 1. `zenith_stats` reports the
/// budget applied (`memory_budget`) and the decoded size of the data (`decoded_bytes`).
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_memory_budget(
    opts: *mut zenith_loader_options,
    bytes: u64,
    err: *mut *mut zenith_error,
) -> zenith_status {
    let budget = (bytes != 0).then_some(bytes);
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| o.set_memory_budget(budget)) } })
}

/// Runs the loader's worker threads on NUMA node `numa_node` and allocates the batches they
/// gather there (-1: no placement, the default). Each worker pins itself to the node's online
/// CPUs when it starts; batches assembled from several chunks (a shuffled gather) are copied
/// into memory allocated on the node (`zenith_numa_alloc`: hugepages where possible), which is
/// freed when the last array exported from the batch is released. Batches that are zero-copy
/// slices of one chunk stay zero-copy. With no workers (`num_workers == 0`) nothing is pinned.
///
/// Replaces a GPU set with `zenith_loader_options_set_near_gpu_*` (the last call wins). A node
/// this machine does not have means no placement: the loader opens and runs unpinned, and
/// `zenith_stats.numa_node` is -1.
///
/// On failure: `numa_node < -1` or above 1023 returns `ZENITH_ERR_INVALID_ARGUMENT`; the options
/// are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_numa_node(
    opts: *mut zenith_loader_options,
    numa_node: i32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let node = match numa_node {
            -1 => None,
            n => Some(u32::try_from(n).map_err(|_| {
                Error::InvalidArgument(format!("numa_node {n} is neither -1 nor a node number"))
            })?),
        };
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| o.set_numa_node(node)) }
    })
}

/// Places the loader like `zenith_loader_options_set_numa_node`, on the NUMA node of GPU
/// `gpu_index`: the index among the GPUs on the PCI bus in PCI address order (as
/// `zenith_topology_gpu` and `nvidia-smi` number them; `CUDA_VISIBLE_DEVICES` is not applied).
/// The GPU is looked up in sysfs by `zenith_loader_open`, which fails with
/// `ZENITH_ERR_INVALID_ARGUMENT` when there is no such GPU; a GPU whose NUMA node the kernel
/// does not know means no placement (`zenith_stats.numa_node` is -1).
///
/// Replaces a node or GPU set before (the last call wins).
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_near_gpu_index(
    opts: *mut zenith_loader_options,
    gpu_index: u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_near_gpu(NumaTarget::GpuIndex(gpu_index));
            Ok(())
        }) } })
}

/// Places the loader like `zenith_loader_options_set_numa_node`, on the NUMA node of the GPU at
/// PCI address `pci_address`: `"0000:3b:00.0"`, also nvidia-smi's `"00000000:3B:00.0"` or
/// `"3b:00.0"` (domain 0). The GPU is looked up by `zenith_loader_open`, which fails with
/// `ZENITH_ERR_INVALID_ARGUMENT` when no GPU has that address; a GPU whose NUMA node the kernel
/// does not know means no placement.
///
/// Replaces a node or GPU set before (the last call wins). The string is only read.
/// On failure: text that is not a PCI address returns `ZENITH_ERR_INVALID_ARGUMENT`; the options
/// are unchanged.
/// NULL policy: `opts` and `pci_address` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live; `pci_address` is NULL or NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_near_gpu_pci(
    opts: *mut zenith_loader_options,
    pci_address: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let text = unsafe { args::utf8(pci_address, "pci_address") }?;
        let address = PciAddress::parse(text).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "pci_address {text:?} is not a PCI address like \"0000:3b:00.0\""
            ))
        })?;
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| {
            o.set_near_gpu(NumaTarget::GpuAddress(address));
            Ok(())
        }) }
    })
}

/// Resumes from a token written by `zenith_loader_save_state`: the loader opens at the saved
/// epoch and delivers exactly the batches not yet delivered, with any number of workers. The
/// bytes are copied.
///
/// On failure: bytes that are not a valid token return `ZENITH_ERR_INVALID_ARGUMENT`; a valid
/// token for another dataset or for options that change the order (seed, batch size, shuffle,
/// drop_last, shard, columns) fails later, in `zenith_loader_open`, also with
/// `ZENITH_ERR_INVALID_ARGUMENT`.
/// NULL policy: `opts` and `state` must not be NULL; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live; `state` is NULL or points to `len` readable bytes; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_resume_state(
    opts: *mut zenith_loader_options,
    state: *const u8,
    len: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        if state.is_null() {
            return Err(Error::NullArgument("state"));
        }
        // SAFETY: non-NULL and `len` bytes long per the contract.
        let token = unsafe { std::slice::from_raw_parts(state, len) };
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| o.set_resume_state(token)) }
    })
}

/// Sets how files are read: `ZENITH_IO_MMAP` (default), `ZENITH_IO_URING` or
/// `ZENITH_IO_PREAD`. Batches are identical whichever backend reads them. With
/// `ZENITH_IO_URING`, files are read with `pread` where io_uring is unavailable;
/// `zenith_stats.io_backend` then says `ZENITH_IO_PREAD` and `zenith_loader_io_fallback_reason`
/// why. The environment variable `ZENITH_IO_BACKEND=mmap|io_uring|pread` overrides this setting
/// at `zenith_loader_open`.
///
/// Arrow IPC files and streams are memory-mapped with `ZENITH_IO_MMAP` (batches are zero-copy
/// views of the file's pages) and read into memory of their own with the other two (each record
/// batch of a file when it is needed; a stream whole, at open). A mapped file that is truncated
/// while a batch, array or tensor still points into it faults when that memory is read (see
/// `zenith_loader_open`: changes are detected before reads, not after delivery); with
/// `ZENITH_IO_PREAD` nothing delivered depends on the file, so use it for files that may change
/// while they are read.
///
/// On failure: an unknown backend returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are
/// unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_io_backend(
    opts: *mut zenith_loader_options,
    backend: zenith_io_backend,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let backend = match backend {
            ZENITH_IO_MMAP => IoBackend::Mmap,
            ZENITH_IO_URING => IoBackend::IoUring,
            ZENITH_IO_PREAD => IoBackend::Pread,
            other => return Err(Error::InvalidArgument(format!("unknown I/O backend {other}"))),
        };
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| {
            o.set_io_backend(backend);
            Ok(())
        }) }
    })
}

/// Sets the storage option `key` to `value`, for datasets at a URL (`s3://bucket/prefix/`,
/// `s3://bucket/prefix/part-*.parquet`, `gs://`, `az://` / `abfss://`, `http(s)://`). Without
/// options, credentials and settings come from the standard chains (the `AWS_*`, `GOOGLE_*`,
/// `AZURE_*` environment variables, then instance metadata).
///
/// Zenith's keys: `endpoint`, `region`, `path_style` (`true`/`false`), `allow_http`,
/// `access_key_id`, `secret_access_key`, `session_token`, `skip_signature`, `request_timeout`
/// and `connect_timeout` (seconds, or e.g. `500ms`), `retries` (default 10), `retry_timeout`
/// (the total deadline of one read with its retries, default 120 s), `concurrency` (ranged
/// requests in flight per read, default 8), `read_ahead_bytes` (default 64 MiB per process),
/// `cache_dir` and `cache_max_bytes` (a local cache of fetched ranges, least recently used
/// evicted past the cap, default 10 GiB). Any key `object_store` knows (`aws_*`, `google_*`,
/// `azure_*`) is passed to the store as it is. Setting a key again replaces its value.
///
/// A read that still fails after the retries returns `ZENITH_ERR_IO` naming the object and the
/// last HTTP status (a missing object or bucket: `ZENITH_ERR_NOT_FOUND`).
///
/// On failure: an unknown key or a value that does not parse returns
/// `ZENITH_ERR_INVALID_ARGUMENT` naming it; the options are unchanged.
/// NULL policy: `opts`, `key` or `value` NULL returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be
/// NULL. `key` and `value` must be UTF-8 (else `ZENITH_ERR_INVALID_ARGUMENT`); they are copied.
///
/// # Safety
/// `opts` is NULL or a live options object; `key` and `value` are NULL or NUL-terminated; `err`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_storage_option(
    opts: *mut zenith_loader_options,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let key = unsafe { args::utf8(key, "key") }?;
        // SAFETY: per the contract above.
        let value = unsafe { args::utf8(value, "value") }?;
        // SAFETY: per the contract above.
        unsafe { with_options(opts, |o| o.set_storage_option(key, value)) }
    })
}

/// Opens files with `O_DIRECT` (default: off) when the backend is `ZENITH_IO_URING` or
/// `ZENITH_IO_PREAD`: reads bypass the page cache, through 4 KiB-aligned buffers (registered
/// with io_uring). File systems that refuse `O_DIRECT` (tmpfs) are read through the page cache,
/// and `zenith_loader_io_fallback_reason` says so. No effect with `ZENITH_IO_MMAP`.
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_io_direct(
    opts: *mut zenith_loader_options,
    direct: bool,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_io_direct(direct);
            Ok(())
        }) } })
}

/// Turns sharding off: the loader reads every row of each epoch (rank 0 of 1), whatever
/// `RANK`/`WORLD_SIZE` or `SLURM_PROCID`/`SLURM_NTASKS` say, e.g. an evaluation loader on rank 0
/// of a `torchrun` job. The same as `zenith_loader_options_set_shard(opts, 0, 1, err)`;
/// `zenith_stats.shard_source` is `ZENITH_SHARD_FROM_OPTIONS`. Replaces a shard set before.
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_shard_none(
    opts: *mut zenith_loader_options,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_shard_none();
            Ok(())
        }) } })
}

/// Chooses what ranks get when the rows do not divide evenly across them (see
/// `zenith_loader_options_set_shard`): `false` (the default) pads each epoch's order by wrapping
/// around, so every rank gets `ceil(rows / world_size)` rows and every row is delivered; `true`
/// drops the last `rows % world_size` rows of each epoch's order, so every rank gets
/// `floor(rows / world_size)` rows and no row is delivered twice. Either way every rank gets the
/// same number of batches. A resume token remembers the choice.
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_shard_drop_remainder(
    opts: *mut zenith_loader_options,
    drop_remainder: bool,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_shard_drop_remainder(drop_remainder);
            Ok(())
        }) } })
}

/// Sets the field delimiter of CSV files, one byte (e.g. `'\t'`, `';'`, `'|'`); `0` restores
/// the default: a tab for `.tsv` files (also `.tsv.gz`, `.tsv.zst`), a comma otherwise.
///
/// On failure: `'\n'`, `'\r'` or `'"'` returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are
/// unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_csv_delimiter(
    opts: *mut zenith_loader_options,
    delimiter: u8,
    err: *mut *mut zenith_error,
) -> zenith_status {
    let delimiter = (delimiter != 0).then_some(delimiter);
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| o.set_csv_delimiter(delimiter)) } })
}

/// Says whether CSV files start with a header row naming the columns (`true`, the default) or
/// with data (`false`): the columns are then named by the schema set with
/// `zenith_loader_options_set_schema`, else `f0`, `f1`, ... (as pyarrow names them).
///
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or a live options object; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_csv_header(
    opts: *mut zenith_loader_options,
    header: bool,
    err: *mut *mut zenith_error,
) -> zenith_status {
    // SAFETY: per the contract above.
    ffi_boundary!(err: err, { unsafe { with_options(opts, |o| {
            o.set_csv_header(header);
            Ok(())
        }) } })
}

/// Parses CSV and JSON lines files with `schema` (an Arrow C Data Interface struct schema, format
/// `+s`, one child per column, as `pyarrow.Schema._export_to_c` or nanoarrow write it) instead
/// of inferring one from the first file; `NULL` restores inference. With a CSV header row, the
/// header must name the schema's fields in order (else `zenith_loader_open` fails with
/// `ZENITH_ERR_FORMAT`); without one (`zenith_loader_options_set_csv_header(opts, false, err)`)
/// the schema names the columns. Values that do not parse as their column's type fail
/// `zenith_loader_open` with `ZENITH_ERR_FORMAT`. Other formats carry their own schema and
/// ignore this one.
///
/// Ownership: `schema` is only read (copied); the caller still owns it and releases it.
/// On failure: a released schema (`release == NULL`), one that is not a struct, has no fields,
/// or holds a type Arrow cannot import returns `ZENITH_ERR_INVALID_ARGUMENT`; the options are
/// unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `schema == NULL` resets;
/// `err` may be NULL.
///
/// # Safety
/// `opts` is NULL or live; `schema` is NULL or points to a valid `struct ArrowSchema`; `err` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_schema(
    opts: *mut zenith_loader_options,
    schema: *const FFI_ArrowSchema,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: NULL or a valid ArrowSchema per the contract.
        let c_schema = unsafe { schema.as_ref() };
        // SAFETY: per the contract above (`opts` is checked before `schema` is parsed).
        unsafe { with_options(opts, |o| {
            let schema = match c_schema {
                None => None,
                Some(c_schema) => {
                    if c_schema.release().is_none() {
                        return Err(Error::InvalidArgument(
                            "schema has been released (its release callback is NULL)".into(),
                        ));
                    }
                    let schema = Schema::try_from(c_schema)
                        .map_err(|e| Error::InvalidArgument(format!("schema: {e}")))?;
                    Some(Arc::new(schema))
                }
            };
            o.set_schema(schema)
        }) }
    })
}

/// Appends `stage` (a native or WASM stage, as the engine runs them) to the stages the loader's
/// workers run on each batch right after gathering it, before delivery: preprocessing in
/// parallel on native threads. Stages run in the order added, each on the previous one's output.
/// The rows of each batch, the order, sharding and resume tokens do not change (a resumed loader
/// needs the same stages added again). The loader's schema is what the stages make of an empty
/// batch (the dataset's when they refuse one).
///
/// A batch a stage fails is reported by the call that would have delivered it with
/// `ZENITH_ERR_EVENT_FAILED`, the message naming the stage, the batch and the reason (a plugin's
/// trap, timeout, out-of-memory or malformed result, a callback's error); the position stays at
/// that batch, and the next call builds it again.
///
/// Ownership: the options (and loaders opened with them) share the stage; the caller still frees
/// `stage` with `zenith_stage_free`, at any time.
/// NULL policy: `opts` and `stage` must not be NULL; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`. A native stage's
/// callback is called from several worker threads at once.
///
/// # Safety
/// `opts` is NULL or live options; `stage` is NULL or a live stage; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_add_stage(
    opts: *mut zenith_loader_options,
    stage: *const zenith_stage,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let stage = unsafe { args::borrow(stage, "stage") }?.loader_stage();
        // SAFETY: per the contract above.
        unsafe {
            with_options(opts, |o| {
                o.add_stage(stage);
                Ok(())
            })
        }
    })
}
