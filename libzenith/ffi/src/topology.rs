//! `zenith_topology`: the machine's NUMA nodes, CPUs, memory, hugepage pools, GPUs and NICs,
//! read from sysfs; and pinning the calling thread to CPUs.

use std::ffi::c_char;

use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_core::Error;
use zenith_core::runtime::affinity;
use zenith_core::runtime::topology::{HUGEPAGE_1G, HUGEPAGE_2M, PciDevice, Topology};

/// The topology of a machine: NUMA nodes, online CPUs, GPUs and NICs with their NUMA nodes.
///
/// Created by `zenith_topology_discover` or `zenith_topology_discover_at`, freed by
/// `zenith_topology_free`. Immutable: a snapshot taken at discovery.
pub struct zenith_topology {
    inner: Topology,
}

/// One NUMA node, filled by `zenith_topology_node`.
///
/// Set `struct_size = sizeof(zenith_numa_node_info)` before the call: the library fills only the
/// fields that fit, so programs built against an older, shorter struct keep working.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct zenith_numa_node_info {
    /// Set by the caller: the size of the struct it allocated.
    pub struct_size: usize,
    /// The kernel's node number (ids may have gaps: use it, not the index, with the kernel).
    pub id: u32,
    /// CPUs of the node (0 for a memory-only node); list them with `zenith_topology_node_cpus`.
    pub num_cpus: u32,
    /// Memory of the node in bytes (0 for a memory-less node, or when unknown).
    pub memory_total_bytes: u64,
    /// Free memory of the node in bytes at discovery.
    pub memory_free_bytes: u64,
    /// 2 MiB hugepages in the node's pool.
    pub hugepages_2m_total: u64,
    /// 2 MiB hugepages of the pool not handed out.
    pub hugepages_2m_free: u64,
    /// 1 GiB hugepages in the node's pool.
    pub hugepages_1g_total: u64,
    /// 1 GiB hugepages of the pool not handed out.
    pub hugepages_1g_free: u64,
}

/// A GPU or NIC on the PCI bus, filled by `zenith_topology_gpu` and `zenith_topology_nic`.
///
/// Set `struct_size = sizeof(zenith_pci_device_info)` before the call (see
/// `zenith_numa_node_info`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct zenith_pci_device_info {
    /// Set by the caller: the size of the struct it allocated.
    pub struct_size: usize,
    /// The PCI address, NUL-terminated, as sysfs spells it: `"0000:3b:00.0"`.
    pub pci_address: [c_char; 32],
    /// PCI vendor id (`0x10de` NVIDIA, `0x1002` AMD, `0x15b3` Mellanox, ...).
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// PCI class code (`0x030200` 3D controller, `0x020000` Ethernet, `0x020700` InfiniBand).
    pub class_code: u32,
    /// The NUMA node the device is attached to; -1 when the kernel does not know.
    pub numa_node: i32,
}

impl zenith_pci_device_info {
    fn from_device(device: &PciDevice) -> Self {
        let mut pci_address = [0 as c_char; 32];
        let text = device.address.to_string();
        // At most 8 + 1 + 2 + 1 + 2 + 1 + 1 = 16 bytes: always fits with its NUL.
        for (slot, byte) in pci_address.iter_mut().zip(text.bytes().take(31)) {
            *slot = byte as c_char;
        }
        zenith_pci_device_info {
            struct_size: std::mem::size_of::<Self>(),
            pci_address,
            vendor_id: device.vendor,
            device_id: device.device,
            class_code: device.class,
            numa_node: node_to_c(device.numa_node),
        }
    }
}

fn node_to_c(node: Option<u32>) -> i32 {
    node.and_then(|n| i32::try_from(n).ok()).unwrap_or(-1)
}

fn write_topology(out: *mut *mut zenith_topology, topology: Topology) {
    // SAFETY: callers checked `out` (non-NULL, writable per their contracts).
    unsafe { out.write(args::into_handle(zenith_topology { inner: topology })) };
}

/// Reads this machine's topology from `/sys`: NUMA nodes (CPUs, memory, distances, hugepage
/// pools), online CPUs, and the NVIDIA/AMD GPUs and the NICs on the PCI bus with their NUMA
/// nodes. Needs neither hwloc nor a GPU driver.
///
/// Missing sysfs files give defaults (no CPUs, 0 bytes, unknown node), not errors. A kernel
/// without NUMA support yields one node 0 holding every online CPU.
///
/// Where NVML (`libnvidia-ml.so.1`) is present, its GPUs are merged in: a GPU sysfs lists takes
/// NVML's name and ideal CPU affinity (in `zenith_topology_to_json`: `"name"`,
/// `"cpu_affinity"`, `"from_driver": true`) and NVML's NUMA node where sysfs has none; a GPU only
/// NVML sees (a container without the PCI tree) is added. Without NVML the view is sysfs alone.
/// The loader's `near_gpu_*` options resolve through the same merged view.
/// Ownership: on success `*out` receives a new topology the caller frees with
/// `zenith_topology_free`.
/// On failure: `ZENITH_ERR_NOT_FOUND` (no `/sys`), `ZENITH_ERR_FORMAT` (a file with text the
/// kernel would not write, or one that cannot be a sysfs attribute: not a regular file, such as
/// a FIFO, which is never opened for a blocking read; larger than 1 MiB), `ZENITH_ERR_IO`;
/// `*out` is left untouched.
/// NULL policy: `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `out` is NULL or writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_discover(
    out: *mut *mut zenith_topology,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let out = args::out(out, "out")?;
        crate::gpu::install_topology_facts();
        write_topology(out, Topology::discover()?);
        Ok(ZENITH_OK)
    })
}

/// Like `zenith_topology_discover`, reading the sysfs tree at `sysfs_root` instead of `/sys`
/// (a host's sysfs mounted elsewhere, or a fake tree in tests). Paths below it are those of
/// `/sys`: `devices/system/node/node0/cpulist`, `bus/pci/devices/0000:3b:00.0/numa_node`, ...
///
/// Ownership: on success `*out` receives a new topology the caller frees with
/// `zenith_topology_free`. `sysfs_root` is only read.
/// On failure: `ZENITH_ERR_NOT_FOUND` when `sysfs_root` is not a directory, else as
/// `zenith_topology_discover`; `*out` is left untouched.
/// NULL policy: `sysfs_root` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `sysfs_root` is NULL or NUL-terminated; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_discover_at(
    sysfs_root: *const c_char,
    out: *mut *mut zenith_topology,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let root = unsafe { args::path(sysfs_root, "sysfs_root") }?;
        let out = args::out(out, "out")?;
        write_topology(out, Topology::discover_at(&root)?);
        Ok(ZENITH_OK)
    })
}

/// Frees a topology.
///
/// NULL policy: `zenith_topology_free(NULL)` does nothing.
///
/// # Safety
/// `topo` is NULL or a live topology, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_free(topo: *mut zenith_topology) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(topo) }
    })
}

/// Returns the number of NUMA nodes (at least 1; 0 when `topo` is NULL). Nodes are indexed
/// `0..n` in ascending id order; `zenith_numa_node_info.id` gives each one's kernel id.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_num_nodes(topo: *const zenith_topology) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { topo.as_ref() }.map_or(0, |t| t.inner.nodes().len())
    })
}

/// Looks up node `index` (in `0..zenith_topology_num_nodes`), or fails with
/// `ZENITH_ERR_INVALID_ARGUMENT` naming the count.
fn node_at(
    topo: &zenith_topology,
    index: usize,
) -> zenith_core::Result<&zenith_core::runtime::topology::NumaNode> {
    let nodes = topo.inner.nodes();
    nodes.get(index).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "node index {index} is out of range (the topology has {} nodes)",
            nodes.len()
        ))
    })
}

/// Fills `*out` with node `index` (in `0..zenith_topology_num_nodes`): its id, CPU count,
/// memory and hugepage pools.
///
/// On failure: an index out of range, or `out->struct_size` smaller than a `size_t`, returns
/// `ZENITH_ERR_INVALID_ARGUMENT`; nothing is written.
/// NULL policy: `topo` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live; `out` is NULL or points to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_node(
    topo: *const zenith_topology,
    index: usize,
    out: *mut zenith_numa_node_info,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        let out = args::out(out, "out")?;
        let node = node_at(topo, index)?;
        let pool = |size| node.hugepage_pool(size).map_or((0, 0), |p| (p.total, p.free));
        let (h2_total, h2_free) = pool(HUGEPAGE_2M);
        let (h1_total, h1_free) = pool(HUGEPAGE_1G);
        let info = zenith_numa_node_info {
            struct_size: std::mem::size_of::<zenith_numa_node_info>(),
            id: node.id,
            num_cpus: u32::try_from(node.cpus.len()).unwrap_or(u32::MAX),
            memory_total_bytes: node.memory_total_bytes,
            memory_free_bytes: node.memory_free_bytes,
            hugepages_2m_total: h2_total,
            hugepages_2m_free: h2_free,
            hugepages_1g_total: h1_total,
            hugepages_1g_free: h1_free,
        };
        // SAFETY: `out` is non-NULL and holds `struct_size` bytes per the contract.
        unsafe { args::write_sized(out, info, "zenith_numa_node_info") }?;
        Ok(ZENITH_OK)
    })
}

/// Writes the CPUs of node `index` (ascending kernel CPU numbers) into `buf` and their count
/// into `*out_len`.
///
/// On failure: an index out of range returns `ZENITH_ERR_INVALID_ARGUMENT`; when `cap` is
/// smaller than the count, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with the count in `*out_len`
/// (so `buf == NULL, cap == 0` asks for it) and writes nothing to `buf`.
/// NULL policy: `topo` and `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err`
/// may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live; `buf` is NULL or points to `cap` writable `uint32_t`; `out_len` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_node_cpus(
    topo: *const zenith_topology,
    index: usize,
    buf: *mut u32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        let node = node_at(topo, index)?;
        // SAFETY: per the contract above.
        unsafe { args::write_list(&node.cpus, buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}

/// Writes node `index`'s row of the distance table (one entry per node, in node order; 10 is
/// local, larger is farther; empty when the kernel does not say) into `buf` and its length into
/// `*out_len`.
///
/// On failure and NULL policy: as `zenith_topology_node_cpus`.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// As `zenith_topology_node_cpus`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_node_distances(
    topo: *const zenith_topology,
    index: usize,
    buf: *mut u32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        let node = node_at(topo, index)?;
        // SAFETY: per the contract above.
        unsafe { args::write_list(&node.distances, buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}

/// Writes the online CPUs (ascending) into `buf` and their count into `*out_len`.
///
/// On failure: when `cap` is smaller than the count, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with
/// the count in `*out_len` and writes nothing to `buf`.
/// NULL policy: `topo` and `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err`
/// may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live; `buf` is NULL or points to `cap` writable `uint32_t`; `out_len` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_cpus_online(
    topo: *const zenith_topology,
    buf: *mut u32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        // SAFETY: per the contract above.
        unsafe { args::write_list(topo.inner.cpus_online(), buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}

/// Returns the number of GPUs (NVIDIA and AMD display/3D controllers on the PCI bus; 0 when
/// `topo` is NULL). GPU indices are positions in PCI address order: the order of `nvidia-smi`
/// and of CUDA with `CUDA_DEVICE_ORDER=PCI_BUS_ID`, before any `CUDA_VISIBLE_DEVICES`.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_num_gpus(topo: *const zenith_topology) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { topo.as_ref() }.map_or(0, |t| t.inner.gpus().len())
    })
}

/// Returns the number of network controllers on the PCI bus (0 when `topo` is NULL), indexed in
/// PCI address order.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_num_nics(topo: *const zenith_topology) -> usize {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { topo.as_ref() }.map_or(0, |t| t.inner.nics().len())
    })
}

/// Returns the NUMA node of GPU `index`, or -1 when the kernel does not know it, `index` is out
/// of range, or `topo` is NULL.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_gpu_numa_node(
    topo: *const zenith_topology,
    index: usize,
) -> i32 {
    ffi_boundary!(default: -1, {
        // SAFETY: per the contract above.
        unsafe { topo.as_ref() }
            .and_then(|t| t.inner.gpus().get(index))
            .map_or(-1, |g| node_to_c(g.numa_node))
    })
}

/// The shared body of `zenith_topology_gpu` and `zenith_topology_nic`.
///
/// # Safety
/// `out` is non-NULL and holds `out->struct_size` writable bytes.
unsafe fn write_device(
    devices: &[PciDevice],
    what: &str,
    index: usize,
    out: *mut zenith_pci_device_info,
) -> zenith_core::Result<zenith_status> {
    let device = devices.get(index).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{what} index {index} is out of range (the topology has {} {what}s)",
            devices.len()
        ))
    })?;
    let info = zenith_pci_device_info::from_device(device);
    // SAFETY: forwarded to the caller.
    unsafe { args::write_sized(out, info, "zenith_pci_device_info") }?;
    Ok(ZENITH_OK)
}

/// Fills `*out` with GPU `index` (in `0..zenith_topology_num_gpus`): PCI address, vendor,
/// device, class and NUMA node.
///
/// On failure: an index out of range, or `out->struct_size` smaller than a `size_t`, returns
/// `ZENITH_ERR_INVALID_ARGUMENT`; nothing is written.
/// NULL policy: `topo` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live; `out` is NULL or points to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_gpu(
    topo: *const zenith_topology,
    index: usize,
    out: *mut zenith_pci_device_info,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        let out = args::out(out, "out")?;
        // SAFETY: `out` is non-NULL and holds `struct_size` bytes per the contract.
        unsafe { write_device(topo.inner.gpus(), "GPU", index, out) }
    })
}

/// Fills `*out` with network controller `index` (in `0..zenith_topology_num_nics`).
///
/// On failure and NULL policy: as `zenith_topology_gpu`.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// As `zenith_topology_gpu`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_nic(
    topo: *const zenith_topology,
    index: usize,
    out: *mut zenith_pci_device_info,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        let out = args::out(out, "out")?;
        // SAFETY: `out` is non-NULL and holds `struct_size` bytes per the contract.
        unsafe { write_device(topo.inner.nics(), "NIC", index, out) }
    })
}

/// Writes the topology as a NUL-terminated UTF-8 JSON object into `buf` and the length of the
/// text (without the NUL) into `*out_len`, like `snprintf`. Keys: `"sysfs_root"`,
/// `"numa_nodes"` (each: `"id"`, `"cpus"`, `"memory_total_bytes"`, `"memory_free_bytes"`,
/// `"distances"`, `"hugepages"`: a list of `{"page_size_bytes", "total", "free"}`),
/// `"cpus_online"`, `"gpus"` and `"nics"` (each: `"index"`, `"pci_address"`, `"vendor"`,
/// `"vendor_name"`, `"device"`, `"class"`, `"numa_node"` (`null` when unknown); NICs also
/// `"interfaces"`).
///
/// On failure: when `cap < *out_len + 1`, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with the text's
/// length in `*out_len` (so `buf == NULL, cap == 0` asks for it: allocate `*out_len + 1`) and
/// writes nothing to `buf`.
/// NULL policy: `topo` and `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err`
/// may be NULL.
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `topo` is NULL or live; `buf` is NULL or points to `cap` writable bytes; `out_len` and `err`
/// are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_topology_to_json(
    topo: *const zenith_topology,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let topo = unsafe { args::borrow(topo, "topo") }?;
        let out_len = args::out(out_len, "out_len")?;
        let json = topo.inner.to_json();
        // SAFETY: `out_len` is non-NULL and writable per the contract.
        unsafe { out_len.write(json.len()) };
        if cap <= json.len() {
            return Err(Error::BufferTooSmall { needed: json.len() + 1, given: cap });
        }
        let buf = args::out(buf, "buf")?;
        // SAFETY: `buf` holds `cap > json.len()` writable bytes per the contract.
        unsafe {
            std::ptr::copy_nonoverlapping(json.as_ptr(), buf.cast::<u8>(), json.len());
            buf.add(json.len()).write(0);
        }
        Ok(ZENITH_OK)
    })
}

/// Restricts the calling thread to the `n` CPUs in `cpus` (kernel CPU numbers, e.g. from
/// `zenith_topology_node_cpus`): the kernel schedules it only there from now on.
///
/// On failure: `n == 0`, a CPU number of 1024 or more, or a set with no CPU that is online and
/// allowed to this process returns `ZENITH_ERR_INVALID_ARGUMENT`; the affinity is unchanged.
/// NULL policy: `cpus` may be NULL only when `n == 0` (which fails as above); `err` may be NULL.
/// Thread safety: affects only the calling thread.
///
/// # Safety
/// `cpus` is NULL or points to `n` readable `uint32_t`; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_pin_current_thread(
    cpus: *const u32,
    n: usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let cpus = if n == 0 {
            &[][..]
        } else {
            if cpus.is_null() {
                return Err(Error::NullArgument("cpus"));
            }
            // SAFETY: non-NULL and `n` long per the contract.
            unsafe { std::slice::from_raw_parts(cpus, n) }
        };
        affinity::pin_current_thread(cpus)?;
        Ok(ZENITH_OK)
    })
}

/// Writes the CPUs the calling thread may run on (ascending) into `buf` and their count into
/// `*out_len`.
///
/// On failure: when `cap` is smaller than the count, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with
/// the count in `*out_len` and writes nothing to `buf`.
/// NULL policy: `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err` may be NULL.
/// Thread safety: reads only the calling thread's affinity.
///
/// # Safety
/// `buf` is NULL or points to `cap` writable `uint32_t`; `out_len` and `err` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_current_thread_affinity(
    buf: *mut u32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        let cpus = affinity::current_thread_affinity()?;
        // SAFETY: per the contract above.
        unsafe { args::write_list(&cpus, buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}
