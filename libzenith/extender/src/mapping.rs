//! How Kubernetes objects become zenith jobs and nodes.
//!
//! A pod is a member of a gang when it carries `zenith.io/gang` (an annotation, or a label of
//! the same key); the gang has `zenith.io/gang-size` members (default 1), and its key is
//! `namespace/gang`. A pod without it is a gang of one, keyed by its own name, when it asks for
//! GPUs; otherwise the extender leaves it alone. A member's request is the sum of its
//! containers' requests (limits where a request is missing): `nvidia.com/gpu` (or the
//! `zenith.io/gpus` annotation), `cpu`, `memory`. Also read: `zenith.io/gpu-type`,
//! `zenith.io/queue` (default: the namespace), `zenith.io/preemptible` (`true`/`false`), and
//! `zenith.io/locality` (`any`, `same-node`, `same-island`, `same-rack`, `spread`); the priority
//! is the pod's `spec.priority`.
//!
//! A node's resources are its allocatable `nvidia.com/gpu`, `cpu` and `memory` (capacity where
//! allocatable is missing); its GPU type the label `nvidia.com/gpu.product` (else `gpu`); its
//! rack the label `zenith.io/rack`, its NVLink island size `zenith.io/nvlink-island-size`.

use std::collections::BTreeMap;

use zenith_scheduler::{Locality, NodeSpec, Resources};

use crate::quantity;
use crate::wire::{Node, Pod};

/// The GPU resource name.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Gang name.
pub const GANG: &str = "zenith.io/gang";
/// Gang size.
pub const GANG_SIZE: &str = "zenith.io/gang-size";
/// GPUs per member (overrides the containers' requests).
pub const GPUS: &str = "zenith.io/gpus";
/// Allowed GPU type.
pub const GPU_TYPE: &str = "zenith.io/gpu-type";
/// Queue.
pub const QUEUE: &str = "zenith.io/queue";
/// Preemptible.
pub const PREEMPTIBLE: &str = "zenith.io/preemptible";
/// Locality.
pub const LOCALITY: &str = "zenith.io/locality";
/// A node's rack.
pub const RACK: &str = "zenith.io/rack";
/// A node's NVLink island size.
pub const ISLAND_SIZE: &str = "zenith.io/nvlink-island-size";
/// A node's GPU model.
pub const GPU_PRODUCT: &str = "nvidia.com/gpu.product";

/// What a pod asks for, as a member of its gang.
#[derive(Debug, Clone, PartialEq)]
pub struct GangRequest {
    /// `namespace/gang`.
    pub key: String,
    /// Members.
    pub size: u32,
    /// One member's resources.
    pub member: Resources,
    /// Locality of the members.
    pub locality: Locality,
    /// Priority tier.
    pub priority: i32,
    /// Whether lower tiers may be preempted for it... and whether it may be preempted.
    pub preemptible: bool,
    /// Queue.
    pub queue: String,
}

fn meta<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .get(key)
        .or_else(|| pod.metadata.labels.get(key))
        .map(String::as_str)
}

fn sum(pod: &Pod, name: &str) -> Result<f64, String> {
    let mut total = 0.0;
    for c in &pod.spec.containers {
        let r = &c.resources;
        if let Some(v) = r.requests.get(name).or_else(|| r.limits.get(name)) {
            total += quantity::parse(v).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(total)
}

/// The gang request of a pod; `Ok(None)` for a pod that is not zenith's (no gang, no GPUs).
pub fn gang_request(pod: &Pod) -> Result<Option<GangRequest>, String> {
    let gpus = match meta(pod, GPUS) {
        Some(g) => g
            .parse::<u32>()
            .map_err(|_| format!("{GPUS}: not a GPU count: {g:?}"))?,
        None => {
            let g = sum(pod, GPU_RESOURCE)?;
            if g.fract() != 0.0 || g > u32::MAX as f64 {
                return Err(format!("{GPU_RESOURCE}: not a whole GPU count: {g}"));
            }
            g as u32
        }
    };
    let gang = meta(pod, GANG);
    if gang.is_none() && gpus == 0 {
        return Ok(None);
    }
    let ns = if pod.metadata.namespace.is_empty() {
        "default"
    } else {
        &pod.metadata.namespace
    };
    let key = format!("{ns}/{}", gang.unwrap_or(&pod.metadata.name));
    let size = match meta(pod, GANG_SIZE) {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("{GANG_SIZE}: not a member count: {s:?}"))?,
        None => 1,
    };
    let locality = match meta(pod, LOCALITY) {
        Some(l) => Locality::parse(l).ok_or_else(|| format!("{LOCALITY}: unknown: {l:?}"))?,
        None => Locality::Any,
    };
    let preemptible = match meta(pod, PREEMPTIBLE) {
        None | Some("false") => false,
        Some("true") => true,
        Some(x) => return Err(format!("{PREEMPTIBLE}: not true or false: {x:?}")),
    };
    let cpu = sum(pod, "cpu")?;
    let mem = sum(pod, "memory")?;
    let member = Resources {
        cpu_milli: (cpu * 1000.0).ceil() as u64,
        memory_mib: (mem / (1024.0 * 1024.0)).ceil() as u64,
        gpu_types: meta(pod, GPU_TYPE)
            .map(|t| vec![t.to_owned()])
            .unwrap_or_default(),
        ..Resources::gpus(gpus)
    };
    Ok(Some(GangRequest {
        key,
        size,
        member,
        locality,
        priority: pod.spec.priority.unwrap_or(0),
        preemptible,
        queue: meta(pod, QUEUE).unwrap_or(ns).to_owned(),
    }))
}

fn node_quantity(
    alloc: &BTreeMap<String, serde_json::Value>,
    cap: &BTreeMap<String, serde_json::Value>,
    name: &str,
) -> Result<f64, String> {
    match alloc.get(name).or_else(|| cap.get(name)) {
        Some(v) => quantity::parse(v).map_err(|e| format!("{name}: {e}")),
        None => Ok(0.0),
    }
}

/// The zenith node of a Kubernetes node.
pub fn node_spec(node: &Node) -> Result<NodeSpec, String> {
    let (a, c) = (&node.status.allocatable, &node.status.capacity);
    let gpus = node_quantity(a, c, GPU_RESOURCE)?;
    let cpu = node_quantity(a, c, "cpu")?;
    let mem = node_quantity(a, c, "memory")?;
    let labels = &node.metadata.labels;
    let gpu_type = labels.get(GPU_PRODUCT).map(String::as_str).unwrap_or("gpu");
    let mut spec = NodeSpec::new(
        node.metadata.name.clone(),
        (cpu * 1000.0).floor() as u64,
        (mem / (1024.0 * 1024.0)).floor() as u64,
    )
    .with_gpus(gpus.floor().min(1024.0) as u32, gpu_type, 0);
    if let Some(k) = labels.get(ISLAND_SIZE) {
        let k: u32 = k
            .parse()
            .map_err(|_| format!("{ISLAND_SIZE}: not a size: {k:?}"))?;
        spec = spec.with_islands_of(k);
    }
    if let Some(r) = labels.get(RACK) {
        spec = spec.with_rack(r.clone());
    }
    spec.labels.zone = labels.get("topology.kubernetes.io/zone").cloned();
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}
