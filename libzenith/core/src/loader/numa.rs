//! NUMA placement of a loader: which node its workers run on, and batches copied into memory
//! allocated on that node.
//!
//! At open, the options' [`NumaTarget`] is resolved through the discovered topology to a node
//! and its online CPUs ([`NumaPlacement`]). Workers pin themselves to those CPUs when they
//! start. A batch the workers assembled from rows of several chunks (a shuffled gather, or a
//! range across chunks) is then copied into one [`NumaAllocation`] on the node (hugepages where
//! possible), and its Arrow buffers are views of that allocation, which is unmapped when the
//! last of them is released. Arrow's `interleave`/`concat` allocate from the global allocator,
//! so this costs one extra copy of each gathered batch, made by the pinned worker; batches that
//! are zero-copy slices of a single chunk (dataset order) stay zero-copy and are not copied.

use std::path::Path;
use std::sync::Arc;

use super::options::NumaTarget;
use super::plan::BatchRows;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::runtime::topology::{Topology, format_cpu_list};

/// Where a loader runs: the node, and the CPUs its workers pin to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumaPlacement {
    /// The node batches are allocated on; `None`: no placement.
    pub node: Option<u32>,
    /// The node's online CPUs (empty for a node without CPUs, or no placement).
    pub cpus: Arc<[u32]>,
    /// Whether gathered batches are copied into memory on the node: only on machines with more
    /// than one node. On a single-node machine every allocation is already node-local, and the
    /// copy would only halve throughput.
    pub copy_batches: bool,
}

impl NumaPlacement {
    /// Resolves `target` through the topology under `sysfs_root` (`/sys` when `None`).
    ///
    /// An unknown GPU is [`Error::InvalidArgument`]; a node the machine lacks, or a GPU whose
    /// node is unknown, resolves to no placement.
    pub fn resolve(target: Option<&NumaTarget>, sysfs_root: Option<&Path>) -> Result<Self> {
        let Some(target) = target else {
            return Ok(NumaPlacement::default());
        };
        // This machine's topology merges what a GPU driver reports (NVML through the C
        // library); a given sysfs root is read as it is.
        let topology = match sysfs_root {
            Some(root) => Topology::discover_at(root)?,
            None => Topology::discover()?,
        };
        Self::resolve_in(target, &topology)
    }

    /// Resolves `target` through `topology` (for tests: a fake sysfs tree merged with injected
    /// GPU facts), as [`NumaPlacement::resolve`] does through this machine's.
    ///
    /// On failure: [`Error::InvalidArgument`] for a GPU the topology does not have.
    pub fn resolve_in(target: &NumaTarget, topology: &Topology) -> Result<Self> {
        let known_gpus = || {
            let list: Vec<String> = topology
                .gpus()
                .iter()
                .enumerate()
                .map(|(i, g)| format!("{i}: {}", g.address))
                .collect();
            if list.is_empty() {
                "no GPU was found on the PCI bus".to_string()
            } else {
                format!("GPUs found: {}", list.join(", "))
            }
        };
        let node = match target {
            NumaTarget::Node(node) => Some(*node),
            NumaTarget::GpuIndex(index) => {
                let gpu = topology.gpus().get(*index as usize).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "near_gpu: there is no GPU with index {index} ({})",
                        known_gpus()
                    ))
                })?;
                gpu.numa_node
            }
            NumaTarget::GpuAddress(address) => {
                let (_, gpu) = topology.gpu_by_address(address).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "near_gpu: there is no GPU at PCI address {address} ({})",
                        known_gpus()
                    ))
                })?;
                gpu.numa_node
            }
        };
        let Some(node) = node.and_then(|id| topology.node(id)) else {
            return Ok(NumaPlacement::default());
        };
        let cpus: Vec<u32> = node
            .cpus
            .iter()
            .copied()
            .filter(|c| topology.cpus_online().contains(c))
            .collect();
        Ok(NumaPlacement {
            node: Some(node.id),
            cpus: cpus.into(),
            copy_batches: topology.nodes().len() > 1,
        })
    }

    /// The node gathered batches are copied to, `None` when they stay where they were built.
    pub fn batch_node(&self) -> Option<u32> {
        self.node.filter(|_| self.copy_batches)
    }

    /// The CPUs workers pin to, `None` when they do not pin.
    pub fn worker_cpus(&self) -> Option<Arc<[u32]>> {
        (!self.cpus.is_empty()).then(|| self.cpus.clone())
    }

    /// Describes the placement for messages ("node 1 (CPUs 8-15)", "none").
    pub fn describe(&self) -> String {
        match self.node {
            Some(node) => format!("node {node} (CPUs {})", format_cpu_list(&self.cpus)),
            None => "none".to_string(),
        }
    }
}

/// Whether the batch of `rows` was assembled by the gather (fresh memory worth placing) rather
/// than sliced zero-copy out of one chunk.
pub fn is_gathered(dataset: &Dataset, rows: &BatchRows) -> bool {
    match *rows {
        BatchRows::Range { len: 0, .. } => false,
        BatchRows::Range { start, len } => {
            dataset.chunk_of_row(start) != dataset.chunk_of_row(start + len as u64 - 1)
        }
        BatchRows::Rows(ref rows) => !rows.is_empty(),
    }
}
