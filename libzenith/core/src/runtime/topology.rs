//! The machine's topology, read from sysfs: NUMA nodes (CPUs, memory, distances, hugepage
//! pools), the online CPUs, and the GPUs and NICs on the PCI bus with their NUMA nodes.
//!
//! Discovery is pure parsing under a root directory (`/sys` normally), so tests point it at
//! fake trees. What it reads, relative to the root:
//!
//! | what | file |
//! | --- | --- |
//! | nodes | `devices/system/node/node<N>/` |
//! | a node's CPUs | `node<N>/cpulist` (`0-3,8-11`) |
//! | a node's memory | `node<N>/meminfo` (`Node 0 MemTotal: 16384 kB`, `MemFree`) |
//! | a node's distances | `node<N>/distance` (one row of the SLIT: `10 21`) |
//! | hugepage pools | `node<N>/hugepages/hugepages-<size>kB/{nr,free}_hugepages` |
//! | online CPUs | `devices/system/cpu/online` |
//! | PCI devices | `bus/pci/devices/<address>/{vendor,device,class,numa_node}`, `net/` |
//!
//! A missing file gives a default (no CPUs, 0 bytes, an empty distance row, empty pools, an
//! unknown NUMA node), never an error: containers and old kernels hide parts of sysfs. A kernel
//! without NUMA support has no `devices/system/node`; the topology then has one node 0 holding
//! every online CPU, with unknown (0) memory and the machine-wide hugepage pools
//! (`kernel/mm/hugepages`). Text that is present but malformed is [`Error::Format`], and so is a
//! file that cannot be a sysfs attribute: one that is not a regular file (a FIFO in a fake tree
//! would otherwise block the reader forever) or that holds more than 1 MiB (reads are bounded).

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::runtime::io::file::{not_regular, read_small_file, special_kind};

/// Where sysfs is mounted on a normal Linux system.
pub const DEFAULT_SYSFS_ROOT: &str = "/sys";

/// The largest CPU number a CPU list may name (guards against absurd ranges in broken trees).
pub const MAX_CPU_ID: u32 = (1 << 20) - 1;

/// PCI vendor id of NVIDIA.
pub const PCI_VENDOR_NVIDIA: u16 = 0x10de;
/// PCI vendor id of AMD (ATI) GPUs.
pub const PCI_VENDOR_AMD: u16 = 0x1002;

/// Size of the hugepages every x86-64 and most arm64 kernels offer: 2 MiB.
pub const HUGEPAGE_2M: u64 = 2 << 20;
/// Size of the gigantic pages: 1 GiB.
pub const HUGEPAGE_1G: u64 = 1 << 30;

/// One hugepage pool of a NUMA node: pages of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HugePagePool {
    /// Bytes per page (2 MiB, 1 GiB, ...).
    pub page_size_bytes: u64,
    /// Pages in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages not yet handed out (`free_hugepages`).
    pub free: u64,
}

/// A NUMA node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NumaNode {
    /// The kernel's node number (node ids may have gaps).
    pub id: u32,
    /// The CPUs of the node, ascending (empty for a memory-only node).
    pub cpus: Vec<u32>,
    /// Memory of the node in bytes (0 for a memory-less node, or when unknown).
    pub memory_total_bytes: u64,
    /// Free memory of the node in bytes at discovery.
    pub memory_free_bytes: u64,
    /// The node's row of the distance table, one entry per node in node-id order (10 = local).
    pub distances: Vec<u32>,
    /// Hugepage pools by ascending page size; the 2 MiB and 1 GiB pools are always listed
    /// (empty when the kernel has none).
    pub hugepages: Vec<HugePagePool>,
}

impl NumaNode {
    /// The pool of pages of `page_size_bytes`, if listed.
    pub fn hugepage_pool(&self, page_size_bytes: u64) -> Option<&HugePagePool> {
        self.hugepages
            .iter()
            .find(|p| p.page_size_bytes == page_size_bytes)
    }
}

/// A PCI address, `domain:bus:device.function`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// PCI segment (domain); 0 on most machines.
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub device: u8,
    /// Function number (0..8).
    pub function: u8,
}

impl PciAddress {
    /// Parses `dddd:bb:dd.f`, also with a domain of other widths (nvidia-smi prints 8 digits)
    /// or none (`bb:dd.f`, domain 0); hex digits in either case. `None` when malformed.
    pub fn parse(text: &str) -> Option<PciAddress> {
        let text = text.trim();
        let parts: Vec<&str> = text.split(':').collect();
        let (domain, bus, rest) = match parts.as_slice() {
            [bus, rest] => ("0", *bus, *rest),
            [domain, bus, rest] => (*domain, *bus, *rest),
            _ => return None,
        };
        let (device, function) = rest.split_once('.')?;
        let hex = |s: &str, max_len: usize| -> Option<u32> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(s, 16).ok()
        };
        let address = PciAddress {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device: u8::try_from(hex(device, 2)?).ok().filter(|d| *d < 32)?,
            function: u8::try_from(hex(function, 1)?).ok().filter(|f| *f < 8)?,
        };
        Some(address)
    }
}

impl fmt::Display for PciAddress {
    /// The sysfs spelling: `0000:3b:00.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// What a PCI device found on the bus is, for the topology's purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciKind {
    /// A display or 3D controller (class `0x03xxxx`) from NVIDIA or AMD.
    Gpu,
    /// A network controller (class `0x02xxxx`: Ethernet, InfiniBand, ...).
    Nic,
}

/// A GPU or NIC on the PCI bus.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PciDevice {
    /// Its address (the name of its directory under `bus/pci/devices`).
    pub address: PciAddress,
    /// GPU or NIC.
    pub kind: PciKind,
    /// PCI vendor id (`0x10de` NVIDIA, `0x1002` AMD, `0x15b3` Mellanox, ...).
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// PCI class code (`0x030200` a 3D controller, `0x020000` Ethernet, ...).
    pub class: u32,
    /// The NUMA node the device is attached to, `None` when the kernel does not know (`-1`).
    pub numa_node: Option<u32>,
    /// Network interfaces of a NIC (`net/`), sorted; empty for GPUs.
    pub interfaces: Vec<String>,
    /// For a GPU the driver (NVML) reported: its product name; empty otherwise.
    pub name: String,
    /// For a GPU the driver reported: the CPUs close to it (NVML's ideal CPU affinity),
    /// ascending; empty when no driver said.
    pub cpu_affinity: Vec<u32>,
    /// Whether a GPU driver (NVML) reported this GPU ([`Topology::with_gpu_facts`]); false for
    /// what sysfs alone shows.
    pub from_driver: bool,
}

/// What a GPU driver (NVML) knows about one GPU, merged into the sysfs view by
/// [`Topology::with_gpu_facts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuFacts {
    /// Its PCI address.
    pub pci_address: PciAddress,
    /// Its product name.
    pub name: String,
    /// The NUMA node the driver places it on, if it says.
    pub numa_node: Option<u32>,
    /// The CPUs close to it, ascending (empty when the driver does not say).
    pub cpu_affinity: Vec<u32>,
}

/// Where [`Topology::discover`] gets GPU facts from: installed once by the layer that can ask a
/// driver (the C library installs NVML); none means the sysfs view alone.
static GPU_FACTS_SOURCE: OnceLock<fn() -> Vec<GpuFacts>> = OnceLock::new();

/// Installs the source of GPU facts [`Topology::discover`] merges into the sysfs view (the first
/// installation wins). The source returns nothing when no driver is present.
pub fn install_gpu_facts_source(source: fn() -> Vec<GpuFacts>) {
    let _ = GPU_FACTS_SOURCE.set(source);
}

impl PciDevice {
    /// A short vendor name for the vendors Zenith knows ("nvidia", "amd"), else `None`.
    pub fn vendor_name(&self) -> Option<&'static str> {
        match self.vendor {
            PCI_VENDOR_NVIDIA => Some("nvidia"),
            PCI_VENDOR_AMD => Some("amd"),
            0x15b3 => Some("mellanox"),
            0x8086 => Some("intel"),
            0x14e4 => Some("broadcom"),
            0x1d0f => Some("amazon"),
            0x1af4 => Some("virtio"),
            _ => None,
        }
    }
}

/// The topology of a machine as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    sysfs_root: PathBuf,
    nodes: Vec<NumaNode>,
    cpus_online: Vec<u32>,
    gpus: Vec<PciDevice>,
    nics: Vec<PciDevice>,
}

impl Topology {
    /// Reads the topology of this machine from `/sys`, merged with what the installed GPU
    /// driver source ([`install_gpu_facts_source`]) reports; the sysfs view alone without one.
    pub fn discover() -> Result<Topology> {
        let topology = Self::discover_at(DEFAULT_SYSFS_ROOT)?;
        Ok(match GPU_FACTS_SOURCE.get() {
            Some(source) => topology.with_gpu_facts(&source()),
            None => topology,
        })
    }

    /// The topology with a GPU driver's facts merged in: a GPU sysfs lists at the same PCI
    /// address takes the driver's name and CPU affinity, and its NUMA node when sysfs does not
    /// know it (sysfs wins otherwise: it is what the kernel allocates by); a GPU only the driver
    /// reports (a container without the PCI tree) is added with the NVIDIA vendor id and class
    /// `0x030200`. GPUs stay in PCI address order.
    pub fn with_gpu_facts(mut self, facts: &[GpuFacts]) -> Topology {
        for fact in facts {
            match self.gpus.iter_mut().find(|g| g.address == fact.pci_address) {
                Some(gpu) => {
                    gpu.numa_node = gpu.numa_node.or(fact.numa_node);
                    gpu.name = fact.name.clone();
                    if !fact.cpu_affinity.is_empty() {
                        gpu.cpu_affinity = fact.cpu_affinity.clone();
                    }
                    gpu.from_driver = true;
                }
                None => self.gpus.push(PciDevice {
                    address: fact.pci_address,
                    kind: PciKind::Gpu,
                    vendor: PCI_VENDOR_NVIDIA,
                    device: 0,
                    class: 0x030200,
                    numa_node: fact.numa_node,
                    interfaces: Vec::new(),
                    name: fact.name.clone(),
                    cpu_affinity: fact.cpu_affinity.clone(),
                    from_driver: true,
                }),
            }
        }
        self.gpus.sort_by_key(|d| d.address);
        self
    }

    /// Reads the topology from the sysfs tree at `root` (a real `/sys`, a host's sysfs mounted
    /// elsewhere, or a fake tree).
    ///
    /// Fails with [`Error::NotFound`] when `root` is not a directory, [`Error::Format`] when a
    /// file holds text that cannot be what the kernel writes there, [`Error::Io`] when a file
    /// exists but cannot be read. Missing files give defaults (see the module docs).
    pub fn discover_at(root: impl AsRef<Path>) -> Result<Topology> {
        let root = root.as_ref();
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(Error::not_found(root, "not a directory (a sysfs root)")),
            Err(e) => return Err(Error::io(root, e)),
        }
        let node_dir = root.join("devices/system/node");
        let mut nodes = Vec::new();
        for (id, path) in numbered_entries(&node_dir, "node")? {
            nodes.push(read_node(id, &path)?);
        }
        let cpus_online = match read_optional(&root.join("devices/system/cpu/online"))? {
            Some((path, text)) => parse_cpu_list(&text).map_err(|m| Error::format(&path, m))?,
            None => {
                let mut all: Vec<u32> = nodes.iter().flat_map(|n| n.cpus.iter().copied()).collect();
                all.sort_unstable();
                all.dedup();
                all
            }
        };
        if nodes.is_empty() {
            // A kernel without NUMA: the whole machine is node 0.
            nodes.push(NumaNode {
                id: 0,
                cpus: cpus_online.clone(),
                memory_total_bytes: 0,
                memory_free_bytes: 0,
                distances: vec![10],
                hugepages: read_hugepage_pools(&root.join("kernel/mm/hugepages"))?,
            });
        }
        let (gpus, nics) = read_pci_devices(&root.join("bus/pci/devices"))?;
        Ok(Topology {
            sysfs_root: root.to_path_buf(),
            nodes,
            cpus_online,
            gpus,
            nics,
        })
    }

    /// The sysfs root this topology was read from.
    pub fn sysfs_root(&self) -> &Path {
        &self.sysfs_root
    }

    /// The NUMA nodes, by ascending id (at least one).
    pub fn nodes(&self) -> &[NumaNode] {
        &self.nodes
    }

    /// The node with kernel id `id`.
    pub fn node(&self, id: u32) -> Option<&NumaNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The online CPUs, ascending.
    pub fn cpus_online(&self) -> &[u32] {
        &self.cpus_online
    }

    /// The GPUs (NVIDIA and AMD display/3D controllers) in PCI address order. That is the
    /// order of `nvidia-smi` and of CUDA with `CUDA_DEVICE_ORDER=PCI_BUS_ID`, and ignores
    /// `CUDA_VISIBLE_DEVICES`.
    pub fn gpus(&self) -> &[PciDevice] {
        &self.gpus
    }

    /// The network controllers in PCI address order.
    pub fn nics(&self) -> &[PciDevice] {
        &self.nics
    }

    /// The GPU at `address` (any spelling [`PciAddress::parse`] accepts) and its index.
    pub fn gpu_by_address(&self, address: &PciAddress) -> Option<(usize, &PciDevice)> {
        self.gpus
            .iter()
            .enumerate()
            .find(|(_, g)| g.address == *address)
    }

    /// The topology as a JSON object:
    ///
    /// ```json
    /// {"sysfs_root": "/sys",
    ///  "numa_nodes": [{"id": 0, "cpus": [0, 1], "memory_total_bytes": 1, "memory_free_bytes": 1,
    ///                  "distances": [10],
    ///                  "hugepages": [{"page_size_bytes": 2097152, "total": 0, "free": 0}, ...]}],
    ///  "cpus_online": [0, 1],
    ///  "gpus": [{"index": 0, "pci_address": "0000:3b:00.0", "vendor": 4318,
    ///            "vendor_name": "nvidia", "device": 8896, "class": 197120, "numa_node": 0,
    ///            "name": "NVIDIA H100", "cpu_affinity": [0, 1], "from_driver": true}],
    ///  "nics": [{..., "interfaces": ["eth0"]}]}
    /// ```
    ///
    /// An unknown NUMA node is `null`; an unknown vendor name is `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("{\"sysfs_root\":");
        json_string(&mut out, &self.sysfs_root.to_string_lossy());
        out.push_str(",\"numa_nodes\":[");
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"id\":{},\"cpus\":", node.id));
            json_numbers(&mut out, &node.cpus);
            out.push_str(&format!(
                ",\"memory_total_bytes\":{},\"memory_free_bytes\":{},\"distances\":",
                node.memory_total_bytes, node.memory_free_bytes
            ));
            json_numbers(&mut out, &node.distances);
            out.push_str(",\"hugepages\":[");
            for (j, pool) in node.hugepages.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&format!(
                    "{{\"page_size_bytes\":{},\"total\":{},\"free\":{}}}",
                    pool.page_size_bytes, pool.total, pool.free
                ));
            }
            out.push_str("]}");
        }
        out.push_str("],\"cpus_online\":");
        json_numbers(&mut out, &self.cpus_online);
        for (key, devices) in [("gpus", &self.gpus), ("nics", &self.nics)] {
            out.push_str(&format!(",\"{key}\":["));
            for (i, d) in devices.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!(
                    "{{\"index\":{i},\"pci_address\":\"{}\",\"vendor\":{},\"vendor_name\":",
                    d.address, d.vendor
                ));
                match d.vendor_name() {
                    Some(name) => json_string(&mut out, name),
                    None => out.push_str("null"),
                }
                out.push_str(&format!(
                    ",\"device\":{},\"class\":{},\"numa_node\":",
                    d.device, d.class
                ));
                match d.numa_node {
                    Some(node) => out.push_str(&node.to_string()),
                    None => out.push_str("null"),
                }
                if d.kind == PciKind::Gpu {
                    out.push_str(",\"name\":");
                    json_string(&mut out, &d.name);
                    out.push_str(",\"cpu_affinity\":");
                    json_numbers(&mut out, &d.cpu_affinity);
                    out.push_str(&format!(",\"from_driver\":{}", d.from_driver));
                }
                if d.kind == PciKind::Nic {
                    out.push_str(",\"interfaces\":[");
                    for (j, name) in d.interfaces.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        json_string(&mut out, name);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
        out
    }
}

/// Parses a kernel CPU list (`0-3,8-11`, `5`, or empty) into ascending, distinct CPU numbers.
///
/// The error names what is wrong; callers add the path.
pub fn parse_cpu_list(text: &str) -> std::result::Result<Vec<u32>, String> {
    let text = text.trim();
    let mut cpus = Vec::new();
    if text.is_empty() {
        return Ok(cpus);
    }
    let number = |s: &str| -> std::result::Result<u32, String> {
        let s = s.trim();
        let n: u32 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a CPU number in CPU list {text:?}"))?;
        if n > MAX_CPU_ID {
            return Err(format!("CPU {n} is out of range in CPU list {text:?}"));
        }
        Ok(n)
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return Err(format!("range {part:?} runs backwards in {text:?}"));
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(number(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPU numbers the way the kernel does (`0-3,8-11`); the input need not be sorted.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// The largest sysfs attribute read (they are a page or two; a larger file is not one).
const MAX_ATTRIBUTE_BYTES: u64 = 1 << 20;

/// Reads a file that may be missing: `None` when it (or its directory) does not exist.
///
/// Only a regular file of at most [`MAX_ATTRIBUTE_BYTES`] is read: anything else (a FIFO, which
/// would block the reader forever; a device; a huge file) cannot be what the kernel puts there
/// and is an [`Error::Format`].
fn read_optional(path: &Path) -> Result<Option<(PathBuf, String)>> {
    let missing =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory);
    match std::fs::metadata(path) {
        Ok(meta) => {
            if let Some(kind) = special_kind(&meta) {
                return Err(Error::format(path, not_regular(kind).to_string()));
            }
        }
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    }
    match read_small_file(path, MAX_ATTRIBUTE_BYTES) {
        Ok(bytes) => Ok(Some((
            path.to_path_buf(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ))),
        Err(e) if missing(&e) => Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => Err(Error::format(path, e.to_string())),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads one unsigned integer (decimal, or hex with `0x`) from a file that may be missing.
fn read_number(path: &Path) -> Result<Option<u64>> {
    let Some((path, text)) = read_optional(path)? else {
        return Ok(None);
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed
        .map(Some)
        .map_err(|_| Error::format(&path, format!("{text:?} is not a number")))
}

/// Entries of `dir` named `<prefix><number>`, sorted by number; empty when `dir` is missing.
fn numbered_entries(dir: &Path, prefix: &str) -> Result<Vec<(u32, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        found.push((number, entry.path()));
    }
    found.sort_unstable();
    Ok(found)
}

fn read_node(id: u32, dir: &Path) -> Result<NumaNode> {
    let cpus = match read_optional(&dir.join("cpulist"))? {
        Some((path, text)) => parse_cpu_list(&text).map_err(|m| Error::format(&path, m))?,
        None => Vec::new(),
    };
    let (mut memory_total_bytes, mut memory_free_bytes) = (0, 0);
    if let Some((path, text)) = read_optional(&dir.join("meminfo"))? {
        for line in text.lines() {
            // "Node 0 MemTotal:       16314788 kB"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, _, key, value, rest @ ..] = fields.as_slice() else {
                continue;
            };
            let slot = match *key {
                "MemTotal:" => &mut memory_total_bytes,
                "MemFree:" => &mut memory_free_bytes,
                _ => continue,
            };
            let value: u64 = value
                .parse()
                .map_err(|_| Error::format(&path, format!("bad value in line {line:?}")))?;
            let unit = if rest.first() == Some(&"kB") { 1024 } else { 1 };
            *slot = value.saturating_mul(unit);
        }
    }
    let distances = match read_optional(&dir.join("distance"))? {
        Some((path, text)) => text
            .split_whitespace()
            .map(|d| {
                d.parse::<u32>()
                    .map_err(|_| Error::format(&path, format!("{d:?} is not a distance")))
            })
            .collect::<Result<Vec<u32>>>()?,
        None => Vec::new(),
    };
    Ok(NumaNode {
        id,
        cpus,
        memory_total_bytes,
        memory_free_bytes,
        distances,
        hugepages: read_hugepage_pools(&dir.join("hugepages"))?,
    })
}

/// The pools under a `hugepages/` directory (`hugepages-2048kB/...`); the 2 MiB and 1 GiB pools
/// are always present, empty when missing.
fn read_hugepage_pools(dir: &Path) -> Result<Vec<HugePagePool>> {
    let mut pools: Vec<HugePagePool> = [HUGEPAGE_2M, HUGEPAGE_1G]
        .into_iter()
        .map(|page_size_bytes| HugePagePool {
            page_size_bytes,
            total: 0,
            free: 0,
        })
        .collect();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(pools);
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Some(kib) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("hugepages-"))
            .and_then(|n| n.strip_suffix("kB"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let pool = HugePagePool {
            page_size_bytes: kib.saturating_mul(1024),
            total: read_number(&entry.path().join("nr_hugepages"))?.unwrap_or(0),
            free: read_number(&entry.path().join("free_hugepages"))?.unwrap_or(0),
        };
        match pools
            .iter_mut()
            .find(|p| p.page_size_bytes == pool.page_size_bytes)
        {
            Some(slot) => *slot = pool,
            None => pools.push(pool),
        }
    }
    pools.sort_by_key(|p| p.page_size_bytes);
    Ok(pools)
}

/// The GPUs and NICs under `bus/pci/devices`, each in PCI address order. Entries whose name is
/// not a PCI address, or that lack a `class`, are skipped.
fn read_pci_devices(dir: &Path) -> Result<(Vec<PciDevice>, Vec<PciDevice>)> {
    let (mut gpus, mut nics) = (Vec::new(), Vec::new());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok((gpus, nics));
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Some(address) = entry.file_name().to_str().and_then(PciAddress::parse) else {
            continue;
        };
        let path = entry.path();
        let Some(class) = read_number(&path.join("class"))? else {
            continue;
        };
        let class = u32::try_from(class)
            .map_err(|_| Error::format(&path.join("class"), "class code out of range"))?;
        let id = |name: &str| -> Result<u16> {
            let file = path.join(name);
            let value = read_number(&file)?.unwrap_or(0);
            u16::try_from(value).map_err(|_| Error::format(&file, "PCI id out of range"))
        };
        let vendor = id("vendor")?;
        let kind = match class >> 16 {
            0x03 if matches!(vendor, PCI_VENDOR_NVIDIA | PCI_VENDOR_AMD) => PciKind::Gpu,
            0x02 => PciKind::Nic,
            _ => continue,
        };
        let numa_node = match read_optional(&path.join("numa_node"))? {
            Some((file, text)) => {
                let value: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| Error::format(&file, format!("{text:?} is not a node")))?;
                u32::try_from(value).ok()
            }
            None => None,
        };
        let mut interfaces = Vec::new();
        if kind == PciKind::Nic {
            if let Ok(names) = std::fs::read_dir(path.join("net")) {
                interfaces = names
                    .filter_map(|n| n.ok())
                    .map(|n| n.file_name().to_string_lossy().into_owned())
                    .collect();
                interfaces.sort();
            }
        }
        let device = PciDevice {
            address,
            kind,
            vendor,
            device: id("device")?,
            class,
            numa_node,
            interfaces,
            name: String::new(),
            cpu_affinity: Vec::new(),
            from_driver: false,
        };
        match kind {
            PciKind::Gpu => gpus.push(device),
            PciKind::Nic => nics.push(device),
        }
    }
    gpus.sort_by_key(|d| d.address);
    nics.sort_by_key(|d| d.address);
    Ok((gpus, nics))
}

/// Appends `[1,2,3]`.
fn json_numbers(out: &mut String, values: &[u32]) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v.to_string());
    }
    out.push(']');
}

/// Appends `text` as a JSON string literal (quotes, backslashes and control characters escaped).
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_format_like_the_kernel() {
        assert_eq!(
            parse_cpu_list("0-3,8-11\n").unwrap(),
            [0, 1, 2, 3, 8, 9, 10, 11]
        );
        assert_eq!(parse_cpu_list("5").unwrap(), [5]);
        assert_eq!(parse_cpu_list("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("3,1,2-2").unwrap(), [1, 2, 3]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("0-").is_err());
        assert!(parse_cpu_list("0,,1").is_err());
        assert!(parse_cpu_list(&format!("0-{}", MAX_CPU_ID + 1)).is_err());
        assert_eq!(format_cpu_list(&[8, 9, 10, 11, 0, 1, 2, 3]), "0-3,8-11");
        assert_eq!(format_cpu_list(&[0, 2, 4]), "0,2,4");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn pci_addresses_parse_in_every_common_spelling() {
        let a = PciAddress::parse("0000:3b:00.0").unwrap();
        assert_eq!(a.to_string(), "0000:3b:00.0");
        assert_eq!(PciAddress::parse("00000000:3B:00.0"), Some(a));
        assert_eq!(PciAddress::parse("3b:00.0"), Some(a));
        assert_eq!(
            PciAddress::parse("10000:e1:1f.7").unwrap().to_string(),
            "10000:e1:1f.7"
        );
        for bad in [
            "",
            "3b",
            "0000:3b:00",
            "0000:3b:20.0",
            "0000:3b:00.8",
            "g:00:00.0",
            "1:2:3:4.0",
        ] {
            assert_eq!(PciAddress::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
