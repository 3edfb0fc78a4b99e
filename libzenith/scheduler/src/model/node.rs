//! Nodes: GPUs (type, memory) grouped into NVLink islands, CPUs, memory, and topology labels.

use std::fmt;

use super::limits::*;
use super::text::{check_name, check_range};
use crate::error::{Error, Problem, Result};

/// The scheduler's handle for a node: a dense index assigned by
/// [`crate::Scheduler::add_node`], never reused (a node removed and added again under the same
/// name gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// One GPU of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuSpec {
    /// The GPU model, matched exactly against a job's allowed types (`A100-80G`, `V100M32`).
    pub gpu_type: String,
    /// Device memory in MiB (informational; 0 = unknown).
    pub memory_mib: u64,
}

/// Topology labels. Placement prefers a gang inside one rack; nodes without a rack label form no
/// rack (a [`crate::Locality::SameRack`] gang then fits only on one node).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeLabels {
    /// The rack.
    pub rack: Option<String>,
    /// The top-of-rack or leaf switch (informational).
    pub switch: Option<String>,
    /// The zone (informational).
    pub zone: Option<String>,
}

/// A node as the caller describes it.
///
/// GPUs are numbered by their position in `gpus` (the index an executor turns into
/// `CUDA_VISIBLE_DEVICES`). `nvlink_islands` groups GPU indices that share an NVLink/NVSwitch
/// domain; a GPU in no island is an island of its own; no GPU is in two islands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Unique among live nodes.
    pub name: String,
    /// The GPUs, by index.
    pub gpus: Vec<GpuSpec>,
    /// Groups of GPU indices connected by NVLink.
    pub nvlink_islands: Vec<Vec<u32>>,
    /// Allocatable CPU in milli-CPUs.
    pub cpu_milli: u64,
    /// Allocatable memory in MiB.
    pub memory_mib: u64,
    /// Rack, switch and zone.
    pub labels: NodeLabels,
}

impl NodeSpec {
    /// A node with CPUs and memory and no GPUs.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_mib: u64) -> Self {
        NodeSpec {
            name: name.into(),
            gpus: Vec::new(),
            nvlink_islands: Vec::new(),
            cpu_milli,
            memory_mib,
            labels: NodeLabels::default(),
        }
    }

    /// Adds `count` GPUs of one type.
    pub fn with_gpus(mut self, count: u32, gpu_type: &str, memory_mib: u64) -> Self {
        for _ in 0..count {
            self.gpus.push(GpuSpec {
                gpu_type: gpu_type.to_owned(),
                memory_mib,
            });
        }
        self
    }

    /// Splits the GPUs into NVLink islands of `size` consecutive indices (8 GPUs, size 4:
    /// `{0..3}`, `{4..7}`).
    pub fn with_islands_of(mut self, size: u32) -> Self {
        let n = self.gpus.len() as u32;
        self.nvlink_islands = (0..n)
            .step_by(size.max(1) as usize)
            .map(|start| (start..(start + size).min(n)).collect())
            .collect();
        self
    }

    /// Sets the rack label.
    pub fn with_rack(mut self, rack: impl Into<String>) -> Self {
        self.labels.rack = Some(rack.into());
        self
    }

    /// Checks names, limits and the island layout.
    pub fn validate(&self) -> Result<()> {
        check_name("node.name", &self.name, MAX_NAME_LEN)?;
        if self.gpus.len() > MAX_GPUS_PER_NODE {
            return Err(Error::invalid(
                "node.gpus",
                Problem::TooLong {
                    max: MAX_GPUS_PER_NODE,
                    len: self.gpus.len(),
                },
            ));
        }
        for (i, g) in self.gpus.iter().enumerate() {
            check_name(
                &format!("node.gpus[{i}].gpu_type"),
                &g.gpu_type,
                MAX_NAME_LEN,
            )?;
            check_range(
                &format!("node.gpus[{i}].memory_mib"),
                g.memory_mib,
                0,
                MAX_MEMORY_MIB,
            )?;
        }
        check_range("node.cpu_milli", self.cpu_milli, 0, MAX_CPU_MILLI)?;
        check_range("node.memory_mib", self.memory_mib, 0, MAX_MEMORY_MIB)?;
        let mut seen = vec![false; self.gpus.len()];
        for (i, island) in self.nvlink_islands.iter().enumerate() {
            let field = format!("node.nvlink_islands[{i}]");
            if island.is_empty() {
                return Err(Error::invalid(field, Problem::Empty));
            }
            for &g in island {
                if g as usize >= self.gpus.len() {
                    return Err(Error::invalid(
                        field,
                        Problem::OutOfRange {
                            min: 0,
                            max: self.gpus.len().saturating_sub(1) as u64,
                            value: g as u64,
                        },
                    ));
                }
                if std::mem::replace(&mut seen[g as usize], true) {
                    return Err(Error::invalid(
                        "node.nvlink_islands",
                        Problem::Duplicate(format!("GPU {g}")),
                    ));
                }
            }
        }
        for (field, v) in [
            ("node.labels.rack", &self.labels.rack),
            ("node.labels.switch", &self.labels.switch),
            ("node.labels.zone", &self.labels.zone),
        ] {
            if let Some(v) = v {
                check_name(field, v, MAX_LABEL_LEN)?;
            }
        }
        Ok(())
    }
}

/// A node's state as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Heartbeating and accepting work.
    Up,
    /// Missed its heartbeat deadline: no new work; its jobs keep their allocation for now.
    Suspect,
    /// Missed the down deadline (or was found dead): its jobs were requeued or failed.
    Down,
    /// Taking no new work at the operator's request; running jobs finish.
    Draining,
}

impl NodeState {
    /// The lower-case name (`up`, `suspect`, `down`, `draining`).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Suspect => "suspect",
            NodeState::Down => "down",
            NodeState::Draining => "draining",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn islands_and_labels_are_checked() {
        let ok = NodeSpec::new("n0", 64_000, 512 * 1024)
            .with_gpus(8, "H100", 80 * 1024)
            .with_islands_of(4)
            .with_rack("r1");
        ok.validate().unwrap();
        assert_eq!(ok.nvlink_islands, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);

        let mut dup = ok.clone();
        dup.nvlink_islands = vec![vec![0, 1], vec![1, 2]];
        assert!(matches!(
            dup.validate(),
            Err(Error::Invalid {
                problem: Problem::Duplicate(_),
                ..
            })
        ));
        let mut out = ok.clone();
        out.nvlink_islands = vec![vec![8]];
        assert!(out.validate().is_err());
        let mut empty = ok.clone();
        empty.nvlink_islands = vec![vec![]];
        assert!(empty.validate().is_err());
        let mut bad_rack = ok.clone();
        bad_rack.labels.rack = Some("has space".into());
        assert!(bad_rack.validate().is_err());
        let bad_type = NodeSpec::new("n1", 1, 1).with_gpus(1, "", 0);
        assert!(bad_type.validate().is_err());
        assert!(NodeSpec::new("", 1, 1).validate().is_err());
    }
}
