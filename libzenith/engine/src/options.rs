//! What an [`Engine`](crate::Engine) is built from: queue bounds, workers (and where they run)
//! and its stages.

use std::sync::Arc;

use zenith_core::loader::NumaTarget;
use zenith_core::loader::numa::NumaPlacement;
use zenith_core::runtime::affinity;
use zenith_core::{Error, Result};

use crate::stage::Stage;

/// Options of an [`Engine`](crate::Engine): checked by [`EngineOptions::validate`] when the
/// engine starts.
#[derive(Clone)]
pub struct EngineOptions {
    /// Most events in flight (published and not yet polled); publishers wait beyond it.
    pub capacity_events: usize,
    /// Most bytes of published events in flight; one event larger than this is still accepted
    /// when nothing else is in flight, so no event can block forever.
    pub capacity_bytes: u64,
    /// Worker threads running the stage chain, in parallel across events.
    pub workers: usize,
    /// The stages every event runs through, in order.
    pub stages: Vec<Arc<dyn Stage>>,
    /// Where the workers run: each pins itself to these CPUs when it starts (`None`: anywhere).
    pub pinning: Option<Pinning>,
}

/// CPUs an engine's workers are pinned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinning {
    /// These CPUs (the kernel's numbers).
    Cpus(Vec<u32>),
    /// The online CPUs of this NUMA node (a node the machine lacks fails the engine's start).
    NumaNode(u32),
}

impl Pinning {
    /// The CPUs this pinning names, resolved through the machine's topology for a node.
    pub fn cpus(&self) -> Result<Arc<[u32]>> {
        match self {
            Pinning::Cpus(cpus) => {
                if cpus.is_empty() {
                    return Err(Error::InvalidArgument(
                        "engine CPU pinning needs at least one CPU".into(),
                    ));
                }
                if let Some(cpu) = cpus.iter().find(|&&c| c >= affinity::MAX_CPUS) {
                    return Err(Error::InvalidArgument(format!(
                        "CPU {cpu} is out of range (at most {} CPUs can be named)",
                        affinity::MAX_CPUS
                    )));
                }
                Ok(cpus.as_slice().into())
            }
            Pinning::NumaNode(node) => {
                let placement = NumaPlacement::resolve(Some(&NumaTarget::Node(*node)), None)?;
                placement.worker_cpus().ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "NUMA node {node}: this machine has no such node with online CPUs"
                    ))
                })
            }
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            capacity_events: 4096,
            capacity_bytes: 1 << 30,
            workers: 2,
            stages: Vec::new(),
            pinning: None,
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.stages.iter().map(|s| s.name()).collect();
        f.debug_struct("EngineOptions")
            .field("capacity_events", &self.capacity_events)
            .field("capacity_bytes", &self.capacity_bytes)
            .field("workers", &self.workers)
            .field("stages", &names)
            .field("pinning", &self.pinning)
            .finish()
    }
}

/// The most worker threads an engine starts.
pub const MAX_WORKERS: usize = 1024;

impl EngineOptions {
    /// Checks every bound: capacities and workers must be positive, workers at most
    /// [`MAX_WORKERS`].
    pub fn validate(&self) -> Result<()> {
        if self.capacity_events == 0 {
            return Err(Error::InvalidArgument(
                "engine capacity in events must be at least 1".into(),
            ));
        }
        if self.capacity_bytes == 0 {
            return Err(Error::InvalidArgument(
                "engine capacity in bytes must be at least 1".into(),
            ));
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return Err(Error::InvalidArgument(format!(
                "engine workers must be between 1 and {MAX_WORKERS}, got {}",
                self.workers
            )));
        }
        Ok(())
    }
}
