//! GPUs: `zenith_gpu_count`, `zenith_gpu_info` and friends (discovery through the CUDA driver and
//! NVML, loaded at run time), the device choice of loader options, and the Arrow C Device Data
//! Interface export of batches.
//!
//! Every function here works on machines without CUDA: without `libcuda.so` (or without a
//! visible device) they return `ZENITH_ERR_NO_DEVICE` with a message naming what was searched.

use std::ffi::c_char;

use arrow_schema::ffi::FFI_ArrowSchema;
use std::time::Duration;
use zenith_core::batch::export_schema;
use zenith_core::{Error, Result};
use zenith_gpu::device_array::export_cpu;
pub use zenith_gpu::device_array::{ArrowDeviceArray, ArrowDeviceArrayStream};
use zenith_gpu::device_export::{export_device_array, selected_columns};

use zenith_core::batch::dlpack::DLManagedTensorVersioned;
use zenith_core::loader::Loader;
use zenith_gpu::device_feed::DeviceFeed;
use zenith_gpu::device_path::{DeviceColumns, DevicePath};
use zenith_gpu::dlpack_stream::{self, TensorDevice};
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;
use zenith_gpu::{DeviceInfo, LinkKind};

use crate::args;
use crate::batch::{write_column_tensor, zenith_batch};
use crate::error::zenith_error;
use crate::options::zenith_loader_options;
use crate::status::{ZENITH_OK, zenith_status};

/// A kind of device for `zenith_loader_options_set_device` (one of the `ZENITH_DEVICE_*` values,
/// which equal DLPack's `DLDeviceType` and Arrow's `ArrowDeviceType`).
pub type zenith_device_type = i32;

/// Host memory: batches are delivered on the CPU (the default).
pub const ZENITH_DEVICE_CPU: zenith_device_type = 1;
/// A CUDA device: batches are delivered in its memory.
pub const ZENITH_DEVICE_CUDA: zenith_device_type = 2;

/// How two GPUs are connected (`zenith_gpu_link`; one of the `ZENITH_GPU_LINK_*` values), from
/// the closest to the farthest, as `nvidia-smi topo -m` names them.
pub type zenith_gpu_link_kind = i32;

/// The same device (`X`).
pub const ZENITH_GPU_LINK_SAME_DEVICE: zenith_gpu_link_kind = 0;
/// NVLink (`NV#`; the number of links is reported separately).
pub const ZENITH_GPU_LINK_NVLINK: zenith_gpu_link_kind = 1;
/// At most one PCIe switch (`PIX`).
pub const ZENITH_GPU_LINK_PCIE_SWITCH: zenith_gpu_link_kind = 2;
/// Several PCIe switches, no host bridge (`PXB`).
pub const ZENITH_GPU_LINK_PCIE_SWITCHES: zenith_gpu_link_kind = 3;
/// A PCIe host bridge (`PHB`).
pub const ZENITH_GPU_LINK_HOST_BRIDGE: zenith_gpu_link_kind = 4;
/// Host bridges within one NUMA node (`NODE`).
pub const ZENITH_GPU_LINK_NUMA_NODE: zenith_gpu_link_kind = 5;
/// Across NUMA nodes (`SYS`).
pub const ZENITH_GPU_LINK_SYSTEM: zenith_gpu_link_kind = 6;
/// Not known (NVML did not say).
pub const ZENITH_GPU_LINK_UNKNOWN: zenith_gpu_link_kind = 7;

/// The device a loader delivers batches to, as recorded by `zenith_loader_options_set_device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DeviceChoice {
    /// Host memory.
    #[default]
    Cpu,
    /// A CUDA device, by ordinal, with the slots of its ring.
    Cuda {
        /// The CUDA ordinal.
        ordinal: u32,
        /// Staging slots (and device buffers) of the ring.
        slots: usize,
    },
}

/// Staging slots of a device path unless `zenith_loader_options_set_device_slots` says otherwise:
/// one being filled, one copying, one held by the consumer, one spare.
pub const ZENITH_DEVICE_DEFAULT_SLOTS: usize = 4;

/// How long the device path waits for a slot, a copy or released device memory before it fails.
const DEVICE_PATH_DEADLINE: Duration = Duration::from_secs(60);

/// The device path of a loader opened on a CUDA device, with its telemetry (Prometheus series
/// labelled `device="cuda:N"`, counters in `zenith_stats`).
pub(crate) type CudaPath = DeviceFeed<CudaCopyEngine>;

/// A batch delivered in CUDA device memory.
pub(crate) type CudaColumns = DeviceColumns<CudaCopyEngine>;

impl DeviceChoice {
    /// Opens the chosen device's path (what `zenith_loader_open` does first): `None` for the
    /// CPU; [`Error::NoDevice`] when the CUDA device does not exist (no driver, no device, no
    /// such ordinal).
    pub(crate) fn open(&self) -> Result<Option<CudaPath>> {
        match *self {
            DeviceChoice::Cpu => Ok(None),
            DeviceChoice::Cuda { ordinal, slots } => {
                let engine = CudaCopyEngine::new(ordinal).map_err(|error| match error {
                    Error::NoDevice(reason) => Error::NoDevice(format!(
                        "the loader was asked to deliver batches to CUDA device {ordinal}, \
                         which is not available: {reason}"
                    )),
                    other => other,
                })?;
                let path = DevicePath::new(engine, ordinal, slots, DEVICE_PATH_DEADLINE)?;
                Ok(Some(DeviceFeed::new(path, &format!("cuda:{ordinal}"))))
            }
        }
    }
}

/// Lets the machine topology (`zenith_topology_discover`, the loader's `near_gpu_*`) see GPUs
/// through NVML: installs the NVML facts source once per process (a no-op after the first call;
/// without NVML the source reports nothing and the topology is sysfs alone).
pub(crate) fn install_topology_facts() {
    zenith_core::runtime::topology::install_gpu_facts_source(zenith_gpu::topology_facts::gpu_facts);
}

/// The next batch of a loader on the device path: keeps the ring's slots busy with the batches
/// ahead (their copies overlap the consumer's work) and hands out the oldest; `None` at the end
/// of the epoch.
pub(crate) fn next_device_batch(
    loader: &Loader,
    path: &mut CudaPath,
) -> Result<Option<zenith_batch>> {
    Ok(path
        .next(|| loader.next_batch())?
        .map(zenith_batch::on_device))
}

/// Facts about one CUDA device, filled by `zenith_gpu_info`.
///
/// Set `struct_size = sizeof(zenith_gpu_device_info)` before the call: the library fills only the
/// fields that fit, so programs built against an older, shorter struct keep working.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zenith_gpu_device_info {
    /// Set by the caller: the size of the struct it allocated.
    pub struct_size: usize,
    /// The CUDA ordinal (after `CUDA_VISIBLE_DEVICES`).
    pub ordinal: u32,
    /// Compute capability, major part (9 for Hopper).
    pub compute_capability_major: u32,
    /// Compute capability, minor part.
    pub compute_capability_minor: u32,
    /// Streaming multiprocessors.
    pub sm_count: u32,
    /// The product name, NUL-terminated (truncated to fit).
    pub name: [c_char; 256],
    /// The UUID as `nvidia-smi -L` prints it (`GPU-xxxxxxxx-...`), NUL-terminated.
    pub uuid: [c_char; 48],
    /// The PCI address as sysfs spells it (`0000:3b:00.0`), NUL-terminated.
    pub pci_address: [c_char; 32],
    /// Device memory in bytes.
    pub memory_total_bytes: u64,
    /// Free device memory in bytes at the call; `UINT64_MAX` when unknown (no NVML).
    pub memory_free_bytes: u64,
    /// The NUMA node the device is attached to; -1 when the kernel does not know.
    pub numa_node: i32,
    /// How many CPUs are close to the device (list them with `zenith_gpu_cpu_affinity`).
    pub num_affinity_cpus: u32,
}

fn copy_text<const N: usize>(text: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    for (slot, byte) in out.iter_mut().zip(text.bytes().take(N - 1)) {
        *slot = byte as c_char;
    }
    out
}

impl zenith_gpu_device_info {
    fn from_info(info: &DeviceInfo) -> Self {
        zenith_gpu_device_info {
            struct_size: std::mem::size_of::<Self>(),
            ordinal: info.ordinal,
            compute_capability_major: info.compute_capability.0,
            compute_capability_minor: info.compute_capability.1,
            sm_count: info.sm_count,
            name: copy_text(&info.name),
            uuid: copy_text(&info.uuid),
            pci_address: copy_text(&info.pci_address.to_string()),
            memory_total_bytes: info.memory_total_bytes,
            memory_free_bytes: info.memory_free_bytes.unwrap_or(u64::MAX),
            numa_node: info
                .numa_node
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(-1),
            num_affinity_cpus: u32::try_from(info.cpu_affinity.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Writes the number of CUDA devices this process can use into `*out`.
///
/// On failure: `ZENITH_ERR_NO_DEVICE` when the CUDA driver library is absent (the message lists
/// the names searched), or when the driver sees no device (e.g. `CUDA_VISIBLE_DEVICES=""`): a
/// count of 0 is never reported as success. `*out` is left untouched.
/// NULL policy: `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `out` is NULL or writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_gpu_count(
    out: *mut u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out = args::out(out, "out")?;
        let count = zenith_gpu::device_count()?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(count) };
        Ok(ZENITH_OK)
    })
}

/// Fills `*out` with the facts about CUDA device `ordinal`.
///
/// On failure: `ZENITH_ERR_NO_DEVICE` without a driver or when `ordinal` is not below the count;
/// `ZENITH_ERR_INVALID_ARGUMENT` when `out->struct_size` is smaller than a `size_t`;
/// `ZENITH_ERR_INTERNAL` when the driver fails a query. `*out` is left untouched.
/// NULL policy: `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `out` is NULL or points to `out->struct_size` writable bytes; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_gpu_info(
    ordinal: u32,
    out: *mut zenith_gpu_device_info,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out = args::out(out, "out")?;
        let info = zenith_gpu::device_info(ordinal)?;
        // SAFETY: `out` is non-NULL and holds `struct_size` bytes per the contract.
        unsafe { args::write_sized(out, zenith_gpu_device_info::from_info(&info), "zenith_gpu_device_info") }?;
        Ok(ZENITH_OK)
    })
}

/// Writes the CPUs close to CUDA device `ordinal` (ascending kernel CPU numbers, from sysfs) into
/// `buf` and their count into `*out_len`.
///
/// On failure: `ZENITH_ERR_NO_DEVICE` as `zenith_gpu_info`; when `cap` is smaller than the count,
/// `ZENITH_ERR_BUFFER_TOO_SMALL` with the count in `*out_len` (so `buf == NULL, cap == 0` asks for
/// it) and nothing written to `buf`.
/// NULL policy: `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `buf` is NULL or points to `cap` writable `uint32_t`; `out_len` and `err` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_gpu_cpu_affinity(
    ordinal: u32,
    buf: *mut u32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        args::out(out_len, "out_len")?;
        let info = zenith_gpu::device_info(ordinal)?;
        // SAFETY: per the contract above.
        unsafe { args::write_list(&info.cpu_affinity, buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}

fn link_to_c(link: LinkKind) -> (zenith_gpu_link_kind, u32) {
    match link {
        LinkKind::SameDevice => (ZENITH_GPU_LINK_SAME_DEVICE, 0),
        LinkKind::NvLink(n) => (ZENITH_GPU_LINK_NVLINK, n),
        LinkKind::PcieSwitch => (ZENITH_GPU_LINK_PCIE_SWITCH, 0),
        LinkKind::PcieSwitches => (ZENITH_GPU_LINK_PCIE_SWITCHES, 0),
        LinkKind::HostBridge => (ZENITH_GPU_LINK_HOST_BRIDGE, 0),
        LinkKind::NumaNode => (ZENITH_GPU_LINK_NUMA_NODE, 0),
        LinkKind::System => (ZENITH_GPU_LINK_SYSTEM, 0),
        LinkKind::Unknown => (ZENITH_GPU_LINK_UNKNOWN, 0),
    }
}

/// Writes how CUDA devices `a` and `b` are connected into `*out_kind` (a `ZENITH_GPU_LINK_*`
/// value) and, when `out_nvlinks` is not NULL, the number of active NVLinks between them into
/// `*out_nvlinks` (0 unless the kind is `ZENITH_GPU_LINK_NVLINK`): one cell of `nvidia-smi topo
/// -m`.
///
/// On failure: `ZENITH_ERR_NO_DEVICE` without a driver, without NVML, or when an ordinal is not
/// below the count. Nothing is written.
/// NULL policy: `out_kind` must not be NULL; `out_nvlinks` and `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// The outputs are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_gpu_link(
    a: u32,
    b: u32,
    out_kind: *mut zenith_gpu_link_kind,
    out_nvlinks: *mut u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out_kind = args::out(out_kind, "out_kind")?;
        let matrix = zenith_gpu::link_matrix()?;
        let link = matrix
            .get(a as usize)
            .and_then(|row| row.get(b as usize))
            .copied()
            .ok_or_else(|| {
                Error::NoDevice(format!(
                    "CUDA device {} does not exist ({} visible)",
                    a.max(b),
                    matrix.len()
                ))
            })?;
        let (kind, nvlinks) = link_to_c(link);
        // SAFETY: `out_kind` is non-NULL and `out_nvlinks` NULL or writable per the contract.
        unsafe {
            out_kind.write(kind);
            if let Some(out) = out_nvlinks.as_mut() {
                *out = nvlinks;
            }
        }
        Ok(ZENITH_OK)
    })
}

/// Chooses where a loader opened with `opts` delivers its batches: `ZENITH_DEVICE_CPU` (host
/// memory, the default; `ordinal` must be 0) or `ZENITH_DEVICE_CUDA` with a CUDA ordinal.
///
/// The choice is only recorded here; `zenith_loader_open` checks it first: a CUDA device that
/// does not exist (no driver, no device, ordinal out of range) fails the open with
/// `ZENITH_ERR_NO_DEVICE`, worded "the loader was asked to deliver batches to CUDA device N,
/// which is not available: ...". On a CUDA device, `zenith_loader_next_batch` delivers batches
/// whose tensor columns are in device memory (`zenith_batch_column_dlpack_stream`): the
/// workers build each batch in the device's pinned memory and a ring of
/// `ZENITH_DEVICE_DEFAULT_SLOTS` slots (`zenith_loader_options_set_device_slots`) copies its
/// columns from there (a stage's output is staged in a pinned slot first); the other ways of
/// taking batches (`zenith_loader_next`, streams) stay on the host.
///
/// On failure: an unknown `device` value or a CPU ordinal other than 0 returns
/// `ZENITH_ERR_INVALID_ARGUMENT`; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_device(
    opts: *mut zenith_loader_options,
    device: zenith_device_type,
    ordinal: u32,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let opts = unsafe { args::borrow_mut(opts, "opts") }?;
        opts.device = match (device, ordinal) {
            (ZENITH_DEVICE_CPU, 0) => DeviceChoice::Cpu,
            (ZENITH_DEVICE_CPU, other) => {
                return Err(Error::InvalidArgument(format!(
                    "ZENITH_DEVICE_CPU takes ordinal 0, not {other}"
                )));
            }
            (ZENITH_DEVICE_CUDA, ordinal) => DeviceChoice::Cuda {
                ordinal,
                slots: match opts.device {
                    DeviceChoice::Cuda { slots, .. } => slots,
                    DeviceChoice::Cpu => ZENITH_DEVICE_DEFAULT_SLOTS,
                },
            },
            (other, _) => {
                return Err(Error::InvalidArgument(format!(
                    "{other} is not a ZENITH_DEVICE_* value"
                )));
            }
        };
        Ok(ZENITH_OK)
    })
}

/// Sets how many slots (and device buffers, sized from the schema and batch size) the
/// device path of a loader opened with `opts` uses: at least 3 (one being filled, one copying,
/// one held by the consumer); more let more copies run ahead of the consumer.
///
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` when `slots < 3` or no CUDA device was chosen with
/// `zenith_loader_options_set_device` first; the options are unchanged.
/// NULL policy: `opts == NULL` returns `ZENITH_ERR_NULL_ARGUMENT`; `err` may be NULL.
/// Thread safety: do not call concurrently with other uses of the same `opts`.
///
/// # Safety
/// `opts` is NULL or live; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_loader_options_set_device_slots(
    opts: *mut zenith_loader_options,
    slots: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let opts = unsafe { args::borrow_mut(opts, "opts") }?;
        let DeviceChoice::Cuda { ordinal, .. } = opts.device else {
            return Err(Error::InvalidArgument(
                "device slots need a CUDA device: call zenith_loader_options_set_device first"
                    .into(),
            ));
        };
        if slots < zenith_gpu::ring::MIN_SLOTS {
            return Err(Error::InvalidArgument(format!(
                "the device path needs at least {} slots, not {slots}",
                zenith_gpu::ring::MIN_SLOTS
            )));
        }
        opts.device = DeviceChoice::Cuda { ordinal, slots };
        Ok(ZENITH_OK)
    })
}

/// Exports the column `column` of `batch` as a DLPack tensor for a consumer working on
/// `consumer_stream`, following the array-API DLPack stream rules.
///
/// For a batch in CUDA memory (a loader on a CUDA device) the tensor is `kDLCUDA` and the
/// consumer's stream is made to wait on the batch's copy (`cuStreamWaitEvent`; the call does not
/// block): `-1` = no synchronisation (the consumer synchronises itself), `1` = the legacy default
/// stream, `2` = the per-thread default stream, any value above 2 = a `CUstream` /
/// `cudaStream_t`; `0` is ambiguous and refused. When the consumer calls the tensor's deleter,
/// an event is recorded on that stream, and the device memory is reused only after it (not
/// while the consumer's kernels may still read it). For a batch in host memory only `-1` is
/// valid and the call is `zenith_batch_column_dlpack`.
///
/// Ownership: on success the caller owns `*out` and calls its deleter exactly once; the tensor
/// stays valid after `zenith_batch_free` and `zenith_loader_free`.
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` for a stream value the rules refuse, an unknown
/// column or one without a tensor form (the message says why); `ZENITH_ERR_INTERNAL` when the
/// driver refuses the wait. `*out` is left untouched.
/// NULL policy: `batch`, `column` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called concurrently on the same batch.
///
/// # Safety
/// `batch` is NULL or live; `column` is NULL or NUL-terminated; `consumer_stream` is one of the
/// values above and a live stream of the batch's device when it is a handle; `out` and `err` are
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_column_dlpack_stream(
    batch: *const zenith_batch,
    column: *const c_char,
    consumer_stream: i64,
    out: *mut *mut DLManagedTensorVersioned,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        unsafe { write_column_tensor(batch, column, Some(consumer_stream), out) }
    })
}

/// Exports `batch` through the Arrow C Device Data Interface: a struct array (one child per
/// column) and, when `out_schema` is not NULL, its schema. The batch is unchanged and may be
/// exported again.
///
/// A batch in host memory exports on `ARROW_DEVICE_CPU` (device id -1, `sync_event` NULL),
/// sharing the batch's buffers. A batch in CUDA memory (a loader on a CUDA device) exports on
/// `ARROW_DEVICE_CUDA` with the CUDA ordinal as device id: each child's data buffer points into
/// the batch's device memory at the column's offset, its validity buffer is NULL (columns with
/// nulls never reach the device), and `sync_event` points to a `CUevent` recorded after the copy:
/// the consumer makes its stream wait on it (`cuStreamWaitEvent`) before reading, and releases
/// the array only once its work on the data finished. This is
/// `zenith_batch_export_device_array_columns(batch, NULL, 0, -1, out, out_schema, err)`.
///
/// Ownership: on success the caller owns `*out` (and `*out_schema`) and calls
/// `out->array.release(&out->array)`; the export keeps the buffers (host or device) alive after
/// `zenith_batch_free`, and device memory is reused for later batches only after the release.
/// On failure: `ZENITH_ERR_UNSUPPORTED` for a batch in CUDA memory with columns that are not on
/// the device (strings, columns with nulls, ...) or bools (one byte per value on the device):
/// the message names each of them; export the others with
/// `zenith_batch_export_device_array_columns`. Nothing is written.
/// NULL policy: `batch` and `out` must not be NULL; `out_schema` and `err` may be NULL.
/// Thread safety: may be called concurrently on the same batch.
///
/// # Safety
/// `batch` is NULL or live; the outputs are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_export_device_array(
    batch: *const zenith_batch,
    out: *mut ArrowDeviceArray,
    out_schema: *mut FFI_ArrowSchema,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        unsafe { write_device_array(batch, None, -1, out, out_schema) }
    })
}

/// Exports the columns `columns[0..num_columns]` of `batch`, in that order (`(NULL, 0)`: every
/// column), as `zenith_batch_export_device_array` does, for a consumer on `consumer_stream`.
///
/// This is how a batch in CUDA memory with columns that are not on the device is exported: name
/// the device columns. `consumer_stream` follows the DLPack stream rules of
/// `zenith_batch_column_dlpack_stream`: `-1` leaves synchronisation to the consumer (through
/// `sync_event`, releasing the array only after its work on the data finished); `1`, `2` or a
/// `CUstream` makes that stream wait on the copy now, and the device memory is reused only after
/// the point on that stream where the array is released. A batch in host memory takes only `-1`.
///
/// Ownership: as `zenith_batch_export_device_array`.
/// On failure: `ZENITH_ERR_INVALID_ARGUMENT` for an unknown column name (the message lists the
/// batch's columns), a NULL or non-UTF-8 name, or a stream value the rules refuse;
/// `ZENITH_ERR_UNSUPPORTED` as `zenith_batch_export_device_array` for the selected columns.
/// Nothing is written.
/// NULL policy: `batch` and `out` must not be NULL; `columns` may be NULL only with
/// `num_columns == 0`; `out_schema` and `err` may be NULL.
/// Thread safety: may be called concurrently on the same batch.
/// Lifetime: the names are only read during the call.
///
/// # Safety
/// `batch` is NULL or live; `columns` is NULL or points to `num_columns` pointers, each NULL or
/// NUL-terminated; `consumer_stream` is a live stream of the batch's device when it is a handle;
/// the outputs are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_batch_export_device_array_columns(
    batch: *const zenith_batch,
    columns: *const *const c_char,
    num_columns: usize,
    consumer_stream: i64,
    out: *mut ArrowDeviceArray,
    out_schema: *mut FFI_ArrowSchema,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let columns = unsafe { args::utf8_list(columns, num_columns, "columns") }?;
        // SAFETY: per the contract above.
        unsafe { write_device_array(batch, columns.as_deref(), consumer_stream, out, out_schema) }
    })
}

/// The body of the two Arrow device exports.
///
/// # Safety
/// `batch` is NULL or live; `out` and `out_schema` are NULL or writable.
unsafe fn write_device_array(
    batch: *const zenith_batch,
    columns: Option<&[&str]>,
    consumer_stream: i64,
    out: *mut ArrowDeviceArray,
    out_schema: *mut FFI_ArrowSchema,
) -> Result<zenith_status> {
    // SAFETY: per the contract above.
    let batch = unsafe { args::borrow(batch, "batch") }?;
    let out = args::out(out, "out")?;
    let (array, schema) = match &batch.device {
        Some(device) => {
            let stream = dlpack_stream::consumer_stream(TensorDevice::Cuda, Some(consumer_stream))?;
            export_device_array(device, columns, stream)?
        }
        None => {
            dlpack_stream::consumer_stream(TensorDevice::Cpu, Some(consumer_stream))?;
            let data = &batch.inner.data;
            let data = match columns {
                None => data.clone(),
                Some(names) => data
                    .project(&selected_columns(&data.schema(), Some(names))?)
                    .map_err(|e| Error::Internal(format!("projecting the batch: {e}")))?,
            };
            (export_cpu(&data), export_schema(&data.schema())?)
        }
    };
    // SAFETY: the outputs are non-NULL where written and writable per the contract.
    unsafe {
        out.write(array);
        if !out_schema.is_null() {
            out_schema.write(schema);
        }
    }
    Ok(ZENITH_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values_equal_dlpack_and_arrow_device_types() {
        assert_eq!(
            ZENITH_DEVICE_CPU,
            zenith_gpu::device_array::ARROW_DEVICE_CPU
        );
        assert_eq!(
            ZENITH_DEVICE_CUDA,
            zenith_gpu::device_array::ARROW_DEVICE_CUDA
        );
    }

    #[test]
    fn gpu_info_texts_are_nul_terminated_and_truncated() {
        let text: [c_char; 8] = copy_text("0123456789");
        assert_eq!(text[7], 0);
        assert_eq!(text[6], b'6' as c_char);
    }
}
