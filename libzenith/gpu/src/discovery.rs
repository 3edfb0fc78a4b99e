//! What GPUs this process can use: count, identity, memory, compute capability, where each sits
//! (NUMA node, nearby CPUs) and how pairs of them are linked.
//!
//! CUDA ordinals come from the driver (they honour `CUDA_VISIBLE_DEVICES`); NVML (whose indices
//! ignore it) is matched to them by PCI bus id. The NUMA node and the nearby CPUs are read from
//! sysfs through the PCI bus id, so they need neither NVML nor root. Without a driver every
//! function returns [`Error::NoDevice`].

use std::path::Path;

use cudarc::driver::{result, sys};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TopologyLevel;
use zenith_core::runtime::topology::{PciAddress, parse_cpu_list};
use zenith_core::{Error, Result};

use crate::driver::{driver, driver_failure};

/// The facts about one CUDA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The CUDA ordinal (after `CUDA_VISIBLE_DEVICES`).
    pub ordinal: u32,
    /// The product name, e.g. `NVIDIA H200`.
    pub name: String,
    /// The UUID as `nvidia-smi -L` prints it: `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub uuid: String,
    /// The PCI address, as sysfs spells it.
    pub pci_address: PciAddress,
    /// Device memory in bytes.
    pub memory_total_bytes: u64,
    /// Free device memory in bytes now, when NVML is available (`None` without it).
    pub memory_free_bytes: Option<u64>,
    /// Compute capability `(major, minor)`, e.g. `(9, 0)` for Hopper.
    pub compute_capability: (u32, u32),
    /// Streaming multiprocessors.
    pub sm_count: u32,
    /// The NUMA node the device is attached to (sysfs), `None` when the kernel does not know.
    pub numa_node: Option<u32>,
    /// The CPUs close to the device (sysfs `local_cpulist`), ascending; empty when unknown.
    pub cpu_affinity: Vec<u32>,
}

/// How two devices are connected, from the closest to the farthest, as `nvidia-smi topo -m`
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    /// The same device.
    SameDevice,
    /// Direct NVLink connections (`NV#`), with their number.
    NvLink(u32),
    /// Through at most one PCIe switch (`PIX`), or on one board.
    PcieSwitch,
    /// Through several PCIe switches, without a host bridge (`PXB`).
    PcieSwitches,
    /// Through a PCIe host bridge (`PHB`).
    HostBridge,
    /// Through the interconnect between host bridges of one NUMA node (`NODE`).
    NumaNode,
    /// Across NUMA nodes (`SYS`).
    System,
    /// Not known (NVML unavailable or silent).
    Unknown,
}

impl LinkKind {
    /// The `nvidia-smi topo -m` spelling (`X`, `NV4`, `PIX`, `PXB`, `PHB`, `NODE`, `SYS`, `?`).
    pub fn label(&self) -> String {
        match self {
            LinkKind::SameDevice => "X".into(),
            LinkKind::NvLink(n) => format!("NV{n}"),
            LinkKind::PcieSwitch => "PIX".into(),
            LinkKind::PcieSwitches => "PXB".into(),
            LinkKind::HostBridge => "PHB".into(),
            LinkKind::NumaNode => "NODE".into(),
            LinkKind::System => "SYS".into(),
            LinkKind::Unknown => "?".into(),
        }
    }
}

/// The number of CUDA devices visible to this process.
///
/// On failure: [`Error::NoDevice`] when the driver library is absent (naming what was searched)
/// or reports no device. A driver that loads and sees no device is `NoDevice` too: a count of
/// zero is never returned as success, so callers that need a GPU get one clear error.
pub fn device_count() -> Result<u32> {
    driver()?;
    let count = result::device::get_count().map_err(|e| driver_failure("cuDeviceGetCount", e))?;
    match u32::try_from(count) {
        Ok(0) | Err(_) => Err(Error::NoDevice(no_visible_device_message())),
        Ok(n) => Ok(n),
    }
}

fn no_visible_device_message() -> String {
    match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(value) => {
            format!("the CUDA driver loaded but sees no device (CUDA_VISIBLE_DEVICES={value:?})")
        }
        Err(_) => "the CUDA driver loaded but sees no device".into(),
    }
}

/// The CUDA device handle of `ordinal`, after checking it exists.
pub(crate) fn device_handle(ordinal: u32) -> Result<sys::CUdevice> {
    let count = device_count()?;
    if ordinal >= count {
        return Err(Error::NoDevice(format!(
            "CUDA device {ordinal} does not exist ({count} visible)"
        )));
    }
    let ordinal_c =
        i32::try_from(ordinal).map_err(|_| Error::NoDevice(format!("ordinal {ordinal}")))?;
    result::device::get(ordinal_c).map_err(|e| driver_failure("cuDeviceGet", e))
}

/// The facts about CUDA device `ordinal`.
///
/// On failure: [`Error::NoDevice`] without a driver or when `ordinal` is not below
/// [`device_count`]; [`Error::Internal`] when the driver fails a query.
pub fn device_info(ordinal: u32) -> Result<DeviceInfo> {
    device_info_with_sysfs(ordinal, Path::new("/sys"))
}

/// [`device_info`] reading NUMA facts under `sysfs_root` instead of `/sys`.
pub fn device_info_with_sysfs(ordinal: u32, sysfs_root: &Path) -> Result<DeviceInfo> {
    let device = device_handle(ordinal)?;
    let name =
        result::device::get_name(device).map_err(|e| driver_failure("cuDeviceGetName", e))?;
    let uuid =
        result::device::get_uuid(device).map_err(|e| driver_failure("cuDeviceGetUuid", e))?;
    let uuid = format_uuid(&uuid.bytes.map(|b| b as u8));
    let pci_address = pci_bus_id(device)?;
    // SAFETY: `device` came from cuDeviceGet above.
    let memory_total_bytes = unsafe { result::device::total_mem(device) }
        .map_err(|e| driver_failure("cuDeviceTotalMem", e))? as u64;
    let attribute = |attribute: sys::CUdevice_attribute| -> Result<u32> {
        // SAFETY: `device` came from cuDeviceGet above; the attribute is a valid enum value.
        let value = unsafe { result::device::get_attribute(device, attribute) }
            .map_err(|e| driver_failure("cuDeviceGetAttribute", e))?;
        Ok(u32::try_from(value).unwrap_or(0))
    };
    use sys::CUdevice_attribute::*;
    let compute_capability = (
        attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
        attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
    );
    let sm_count = attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
    let memory_free_bytes = nvml().ok().and_then(|nvml| {
        let device = nvml.device_by_pci_bus_id(nvml_bus_id(&pci_address)).ok()?;
        device.memory_info().ok().map(|m| m.free)
    });
    let (numa_node, cpu_affinity) = pci_locality(sysfs_root, &pci_address)?;
    Ok(DeviceInfo {
        ordinal,
        name,
        uuid,
        pci_address,
        memory_total_bytes,
        memory_free_bytes,
        compute_capability,
        sm_count,
        numa_node,
        cpu_affinity,
    })
}

/// The PCI address of a device, from `cuDeviceGetPCIBusId`.
fn pci_bus_id(device: sys::CUdevice) -> Result<PciAddress> {
    let mut buffer = [0 as std::ffi::c_char; 64];
    // SAFETY: the buffer is writable for its length; `device` came from cuDeviceGet.
    unsafe { sys::cuDeviceGetPCIBusId(buffer.as_mut_ptr(), buffer.len() as i32, device) }
        .result()
        .map_err(|e| driver_failure("cuDeviceGetPCIBusId", e))?;
    let text: String = buffer
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8 as char)
        .collect();
    PciAddress::parse(&text)
        .ok_or_else(|| Error::Internal(format!("the driver gave a malformed PCI bus id {text:?}")))
}

/// A 16-byte UUID as NVIDIA spells it: `GPU-` and the 8-4-4-4-12 hex groups.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

/// NVML's spelling of a PCI bus id: an 8-digit domain, upper case.
fn nvml_bus_id(address: &PciAddress) -> String {
    format!(
        "{:08X}:{:02X}:{:02X}.{:X}",
        address.domain, address.bus, address.device, address.function
    )
}

/// The NUMA node and nearby CPUs of a PCI device, from
/// `<sysfs_root>/bus/pci/devices/<address>/{numa_node,local_cpulist}`.
///
/// A missing file means unknown (`None`, no CPUs), as does a node of -1; text the kernel would not
/// write is [`Error::Format`].
pub fn pci_locality(sysfs_root: &Path, address: &PciAddress) -> Result<(Option<u32>, Vec<u32>)> {
    let dir = sysfs_root.join("bus/pci/devices").join(address.to_string());
    let read = |name: &str| -> Result<Option<String>> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    };
    let numa_node = match read("numa_node")? {
        None => None,
        Some(text) => {
            let value: i64 = text.trim().parse().map_err(|_| {
                Error::format(
                    &dir.join("numa_node"),
                    format!("not a node number: {text:?}"),
                )
            })?;
            u32::try_from(value).ok()
        }
    };
    let cpus = match read("local_cpulist")? {
        None => Vec::new(),
        Some(text) => {
            parse_cpu_list(&text).map_err(|m| Error::format(&dir.join("local_cpulist"), m))?
        }
    };
    Ok((numa_node, cpus))
}

/// NVML, initialised once per process.
///
/// On failure: [`Error::NoDevice`] naming the library (`libnvidia-ml.so`) and NVML's message.
pub fn nvml() -> Result<&'static Nvml> {
    static NVML: std::sync::OnceLock<std::result::Result<Nvml, String>> =
        std::sync::OnceLock::new();
    NVML.get_or_init(|| {
        Nvml::init().map_err(|e| format!("NVML (libnvidia-ml.so.1) could not be initialised: {e}"))
    })
    .as_ref()
    .map_err(|m| Error::NoDevice(m.clone()))
}

/// The link matrix between the visible CUDA devices, indexed by ordinal (like `nvidia-smi topo
/// -m`): NVLink where NVML reports active links between a pair, else the PCIe level of their
/// common ancestor.
///
/// On failure: [`Error::NoDevice`] without a driver or without NVML.
pub fn link_matrix() -> Result<Vec<Vec<LinkKind>>> {
    let count = device_count()?;
    let nvml = nvml()?;
    let mut addresses = Vec::with_capacity(count as usize);
    for ordinal in 0..count {
        addresses.push(pci_bus_id(device_handle(ordinal)?)?);
    }
    let devices: Vec<_> = addresses
        .iter()
        .map(|a| nvml.device_by_pci_bus_id(nvml_bus_id(a)).ok())
        .collect();
    let mut matrix = vec![vec![LinkKind::Unknown; count as usize]; count as usize];
    for (i, row) in matrix.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = if i == j {
                LinkKind::SameDevice
            } else {
                // NVML's topology query consumes the peer's handle: look it up again.
                let peer = nvml.device_by_pci_bus_id(nvml_bus_id(&addresses[j])).ok();
                match (&devices[i], peer) {
                    (Some(a), Some(b)) => {
                        let nvlinks = active_nvlinks_to(a, &addresses[j]);
                        if nvlinks > 0 {
                            LinkKind::NvLink(nvlinks)
                        } else {
                            a.topology_common_ancestor(b)
                                .map(pcie_level)
                                .unwrap_or(LinkKind::Unknown)
                        }
                    }
                    _ => LinkKind::Unknown,
                }
            };
        }
    }
    Ok(matrix)
}

/// The most NVLinks one device has (`NVML_NVLINK_MAX_LINKS` in nvml.h).
const NVML_NVLINK_MAX_LINKS: u32 = 18;

/// Active NVLinks of `device` whose far end is the device at `peer`.
fn active_nvlinks_to(device: &nvml_wrapper::Device<'_>, peer: &PciAddress) -> u32 {
    (0..NVML_NVLINK_MAX_LINKS)
        .filter(|link| {
            let link = device.link_wrapper_for(*link);
            link.is_active().unwrap_or(false)
                && link
                    .remote_pci_info()
                    .ok()
                    .and_then(|info| PciAddress::parse(&info.bus_id))
                    .is_some_and(|remote| remote == *peer)
        })
        .count() as u32
}

fn pcie_level(level: TopologyLevel) -> LinkKind {
    match level {
        TopologyLevel::Internal | TopologyLevel::Single => LinkKind::PcieSwitch,
        TopologyLevel::Multiple => LinkKind::PcieSwitches,
        TopologyLevel::HostBridge => LinkKind::HostBridge,
        TopologyLevel::Node => LinkKind::NumaNode,
        TopologyLevel::System => LinkKind::System,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_spelled_like_nvidia_smi() {
        let bytes = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ];
        assert_eq!(
            format_uuid(&bytes),
            "GPU-12345678-9abc-def0-0123-456789abcdef"
        );
    }

    #[test]
    fn nvml_bus_ids_have_an_eight_digit_domain() {
        let address = PciAddress::parse("0000:3b:00.0").unwrap();
        assert_eq!(nvml_bus_id(&address), "00000000:3B:00.0");
        assert_eq!(PciAddress::parse(&nvml_bus_id(&address)), Some(address));
    }

    #[test]
    fn link_labels_match_nvidia_smi_topo() {
        let labels: Vec<String> = [
            LinkKind::SameDevice,
            LinkKind::NvLink(18),
            LinkKind::PcieSwitch,
            LinkKind::PcieSwitches,
            LinkKind::HostBridge,
            LinkKind::NumaNode,
            LinkKind::System,
            LinkKind::Unknown,
        ]
        .iter()
        .map(LinkKind::label)
        .collect();
        assert_eq!(
            labels,
            ["X", "NV18", "PIX", "PXB", "PHB", "NODE", "SYS", "?"]
        );
        assert!(LinkKind::NvLink(1) < LinkKind::PcieSwitch);
        assert!(LinkKind::NumaNode < LinkKind::System);
    }

    #[test]
    fn pci_locality_reads_the_node_and_cpus_from_sysfs() {
        let root = std::env::temp_dir().join(format!("zenith-gpu-sysfs-{}", std::process::id()));
        let address = PciAddress::parse("0000:3b:00.0").unwrap();
        let dir = root.join("bus/pci/devices/0000:3b:00.0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("numa_node"), "1\n").unwrap();
        std::fs::write(dir.join("local_cpulist"), "8-11,24\n").unwrap();
        assert_eq!(
            pci_locality(&root, &address).unwrap(),
            (Some(1), vec![8, 9, 10, 11, 24])
        );
        // -1: the kernel does not know the node.
        std::fs::write(dir.join("numa_node"), "-1\n").unwrap();
        std::fs::remove_file(dir.join("local_cpulist")).unwrap();
        assert_eq!(pci_locality(&root, &address).unwrap(), (None, vec![]));
        std::fs::write(dir.join("numa_node"), "one\n").unwrap();
        let error = pci_locality(&root, &address).unwrap_err();
        assert_eq!(error.kind(), zenith_core::ErrorKind::Format);
        // A device sysfs does not list: unknown, not an error.
        let other = PciAddress::parse("0000:af:00.0").unwrap();
        assert_eq!(pci_locality(&root, &other).unwrap(), (None, vec![]));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
