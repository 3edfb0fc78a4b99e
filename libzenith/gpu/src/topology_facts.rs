//! NVML's view of the GPUs for the machine topology (`zenith_topology`, the loader's
//! `near_gpu`): PCI address, name, NUMA node and ideal CPU affinity of every GPU NVML sees,
//! in NVML's order. Without NVML (no driver, a CPU machine) there are no facts and the topology
//! is the sysfs view alone.

use std::ffi::c_ulong;

use zenith_core::runtime::topology::{GpuFacts, PciAddress};

use crate::discovery::nvml;

/// CPUs the affinity masks cover (NVML fills as many words as asked).
const MAX_CPUS: usize = 4096;
/// NUMA nodes the node masks cover.
const MAX_NODES: usize = 256;
/// `NVML_AFFINITY_SCOPE_NODE` (nvml.h): masks of NUMA nodes.
const AFFINITY_SCOPE_NODE: u32 = 0;

/// The set bits of a bitmask of `c_ulong` words (bit `b` of word `w` is `w * BITS + b`),
/// ascending.
pub fn mask_bits(words: &[c_ulong]) -> Vec<u32> {
    let bits = c_ulong::BITS;
    let mut out = Vec::new();
    for (w, &word) in words.iter().enumerate() {
        for b in 0..bits {
            if word & (1 << b) != 0 {
                out.push(w as u32 * bits + b);
            }
        }
    }
    out
}

/// The NUMA node of a node mask: the one node set, `None` for none or several.
pub fn single_node(words: &[c_ulong]) -> Option<u32> {
    match mask_bits(words).as_slice() {
        [node] => Some(*node),
        _ => None,
    }
}

/// What NVML reports about each GPU it sees; empty without NVML. A GPU whose PCI address NVML
/// does not give (or gives unparsed) is left out; a fact NVML does not support is left unknown.
pub fn gpu_facts() -> Vec<GpuFacts> {
    let Ok(nvml) = nvml() else {
        return Vec::new();
    };
    let count = nvml.device_count().unwrap_or(0);
    let words = |n: usize| n.div_ceil(c_ulong::BITS as usize);
    (0..count)
        .filter_map(|index| {
            let device = nvml.device_by_index(index).ok()?;
            let pci_address = PciAddress::parse(&device.pci_info().ok()?.bus_id)?;
            Some(GpuFacts {
                pci_address,
                name: device.name().unwrap_or_default(),
                numa_node: device
                    .memory_affinity(words(MAX_NODES), AFFINITY_SCOPE_NODE)
                    .ok()
                    .and_then(|mask| single_node(&mask)),
                cpu_affinity: device
                    .cpu_affinity(words(MAX_CPUS))
                    .map(|mask| mask_bits(&mask))
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_list_their_set_bits_across_words() {
        assert_eq!(mask_bits(&[0b1011, 0]), vec![0, 1, 3]);
        let bits = c_ulong::BITS;
        assert_eq!(mask_bits(&[0, 1]), vec![bits]);
        assert_eq!(mask_bits(&[]), Vec::<u32>::new());
    }

    #[test]
    fn a_node_mask_names_one_node_or_none() {
        assert_eq!(single_node(&[0b100]), Some(2));
        assert_eq!(single_node(&[0b110]), None);
        assert_eq!(single_node(&[0]), None);
    }
}
