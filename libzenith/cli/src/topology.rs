//! `zenith topology`: the machine as the loader sees it (sysfs), for placing workers and
//! choosing a NUMA node near a GPU.

use std::path::PathBuf;

use serde_json::Value;
use zenith_core::runtime::topology::{DEFAULT_SYSFS_ROOT, PciDevice, Topology, format_cpu_list};

use crate::exit::Failure;
use crate::output::{self, Table};

pub const EXAMPLES: &str = "\
Examples:
  zenith topology
  zenith topology --json | jq '.gpus[].numa_node'
  zenith topology --sysfs-root /host/sys      a host's sysfs mounted in a container

--json prints the same document as zenith_topology_to_json() in the C API.";

/// Arguments of `zenith topology`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read sysfs from here instead of /sys (a host's sysfs in a container, a fake tree).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SYSFS_ROOT)]
    pub sysfs_root: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `zenith topology`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let topology = Topology::discover_at(&args.sysfs_root)?;
    if args.json {
        let value: Value = serde_json::from_str(&topology.to_json())
            .map_err(|e| Failure::Other(format!("the topology's JSON does not parse: {e}")))?;
        output::print_json(&value)
    } else {
        output::print(&render(&topology, output::color_stdout()))
    }
}

fn node_of(device: &PciDevice) -> String {
    device
        .numa_node
        .map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

fn vendor(device: &PciDevice) -> String {
    match device.vendor_name() {
        Some(name) => name.to_string(),
        None => format!("{:#06x}", device.vendor),
    }
}

fn render(topology: &Topology, color: bool) -> String {
    let mut out = String::new();
    let cpus = topology.cpus_online();
    let nodes = topology.nodes();
    out.push_str(&format!(
        "{}  {}\n{}  {} online ({})\n{}  {}\n\n",
        output::bold("sysfs     ", color),
        topology.sysfs_root().display(),
        output::bold("cpus      ", color),
        cpus.len(),
        format_cpu_list(cpus),
        output::bold("numa nodes", color),
        nodes.len(),
    ));

    let mut table = Table::new(
        &[
            "node",
            "cpus",
            "memory free",
            "memory total",
            "hugepages (free/total)",
            "distances",
        ],
        &[true, false, true, true, false, false],
    );
    for node in nodes {
        let pools: Vec<String> = node
            .hugepages
            .iter()
            .map(|p| {
                format!(
                    "{}: {}/{}",
                    output::bytes(p.page_size_bytes).replace(".0 ", " "),
                    p.free,
                    p.total
                )
            })
            .collect();
        let distances: Vec<String> = node.distances.iter().map(u32::to_string).collect();
        let memory = |b: u64| {
            if b == 0 {
                "-".to_string()
            } else {
                output::bytes(b)
            }
        };
        table.row(vec![
            node.id.to_string(),
            format_cpu_list(&node.cpus),
            memory(node.memory_free_bytes),
            memory(node.memory_total_bytes),
            if pools.is_empty() {
                "-".into()
            } else {
                pools.join(", ")
            },
            distances.join(" "),
        ]);
    }
    out.push_str(&table.render(0, color));

    out.push('\n');
    let gpus = topology.gpus();
    if gpus.is_empty() {
        out.push_str(&format!(
            "{}: none (no NVIDIA or AMD display controller under {}/bus/pci/devices)\n",
            output::bold("gpus", color),
            topology.sysfs_root().display()
        ));
    } else {
        out.push_str(&format!("{}\n", output::bold("gpus", color)));
        let mut table = Table::new(
            &["index", "pci address", "vendor", "device", "numa node"],
            &[true, false, false, false, true],
        );
        for (index, gpu) in gpus.iter().enumerate() {
            table.row(vec![
                index.to_string(),
                gpu.address.to_string(),
                vendor(gpu),
                format!("{:#06x}", gpu.device),
                node_of(gpu),
            ]);
        }
        out.push_str(&table.render(2, color));
    }

    out.push('\n');
    let nics = topology.nics();
    if nics.is_empty() {
        out.push_str(&format!(
            "{}: none on the PCI bus\n",
            output::bold("nics", color)
        ));
    } else {
        out.push_str(&format!("{}\n", output::bold("nics", color)));
        let mut table = Table::new(
            &["pci address", "vendor", "device", "numa node", "interfaces"],
            &[false, false, false, true, false],
        );
        for nic in nics {
            table.row(vec![
                nic.address.to_string(),
                vendor(nic),
                format!("{:#06x}", nic.device),
                node_of(nic),
                if nic.interfaces.is_empty() {
                    "-".into()
                } else {
                    nic.interfaces.join(", ")
                },
            ]);
        }
        out.push_str(&table.render(2, color));
    }
    out
}
