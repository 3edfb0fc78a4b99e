//! `zenith topology` on fake sysfs trees (the files the kernel writes, laid out as under /sys;
//! the minimal pieces of libzenith/core/tests/fake_sysfs).

mod common;

use std::path::Path;

use common::{arg, fails_with, json, stdout_ok};
use serde_json::json;
use tempfile::TempDir;

/// A sysfs tree in a temporary directory.
struct FakeSysfs(TempDir);

impl FakeSysfs {
    fn new() -> Self {
        FakeSysfs(tempfile::tempdir().unwrap())
    }

    fn root(&self) -> &Path {
        self.0.path()
    }

    fn file(&self, relative: &str, content: &str) -> &Self {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    fn node(&self, id: u32, cpus: &str, total_kib: u64, free_kib: u64, distances: &str) -> &Self {
        let dir = format!("devices/system/node/node{id}");
        self.file(&format!("{dir}/cpulist"), &format!("{cpus}\n"));
        self.file(
            &format!("{dir}/meminfo"),
            &format!(
                "Node {id} MemTotal:       {total_kib} kB\nNode {id} MemFree:        {free_kib} kB\n"
            ),
        );
        self.file(&format!("{dir}/distance"), &format!("{distances}\n"))
    }

    fn hugepages(&self, id: u32, size_kib: u64, total: u64, free: u64) -> &Self {
        let dir = format!("devices/system/node/node{id}/hugepages/hugepages-{size_kib}kB");
        self.file(&format!("{dir}/nr_hugepages"), &format!("{total}\n"));
        self.file(&format!("{dir}/free_hugepages"), &format!("{free}\n"))
    }

    /// A PCI device under devices/pci0000:00 and its bus/pci/devices symlink.
    fn pci(&self, address: &str, vendor: u16, device: u16, class: u32, node: i32) -> &Self {
        let dir = format!("devices/pci0000:00/{address}");
        self.file(&format!("{dir}/vendor"), &format!("0x{vendor:04x}\n"));
        self.file(&format!("{dir}/device"), &format!("0x{device:04x}\n"));
        self.file(&format!("{dir}/class"), &format!("0x{class:06x}\n"));
        self.file(&format!("{dir}/numa_node"), &format!("{node}\n"));
        std::fs::create_dir_all(self.root().join("bus/pci/devices")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../../devices/pci0000:00/{address}"),
            self.root().join("bus/pci/devices").join(address),
        )
        .unwrap();
        self
    }

    fn net(&self, address: &str, interface: &str) -> &Self {
        let dir = self
            .root()
            .join(format!("devices/pci0000:00/{address}/net/{interface}"));
        std::fs::create_dir_all(dir).unwrap();
        self
    }
}

/// Two nodes, hugepages, two NVIDIA GPUs (one on each node), a Mellanox NIC on node 0.
fn two_node_machine() -> FakeSysfs {
    let fake = FakeSysfs::new();
    fake.file("devices/system/cpu/online", "0-15\n")
        .node(0, "0-3,8-11", 16 << 20, 12 << 20, "10 21")
        .node(1, "4-7,12-15", 8 << 20, 1 << 20, "21 10")
        .hugepages(0, 2048, 512, 500)
        .hugepages(0, 1048576, 2, 1)
        .pci("0000:3b:00.0", 0x10de, 0x2330, 0x030200, 0)
        .pci("0000:d8:00.0", 0x10de, 0x2330, 0x030200, 1)
        .pci("0000:5e:00.0", 0x15b3, 0x1017, 0x020000, 0)
        .net("0000:5e:00.0", "ib0");
    fake
}

#[test]
fn json_describes_nodes_gpus_and_nics_with_their_nodes() {
    let fake = two_node_machine();
    let t = json(&["topology", "--sysfs-root", arg(fake.root())]);
    assert_eq!(t["sysfs_root"], arg(fake.root()));
    assert_eq!(t["cpus_online"].as_array().unwrap().len(), 16);
    let nodes = t["numa_nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["cpus"], json!([0, 1, 2, 3, 8, 9, 10, 11]));
    assert_eq!(nodes[0]["memory_total_bytes"], 16u64 << 30);
    assert_eq!(nodes[1]["memory_free_bytes"], 1u64 << 30);
    assert_eq!(nodes[1]["distances"], json!([21, 10]));
    assert_eq!(
        nodes[0]["hugepages"][0],
        json!({"page_size_bytes": 2u64 << 20, "total": 512, "free": 500})
    );
    let gpus = t["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0]["pci_address"], "0000:3b:00.0");
    assert_eq!(gpus[0]["vendor_name"], "nvidia");
    assert_eq!(gpus[0]["numa_node"], 0);
    assert_eq!(gpus[1]["numa_node"], 1);
    let nics = t["nics"].as_array().unwrap();
    assert_eq!(nics.len(), 1);
    assert_eq!(nics[0]["interfaces"], json!(["ib0"]));
    assert_eq!(nics[0]["numa_node"], 0);
}

#[test]
fn the_table_lists_nodes_gpus_and_nics() {
    let fake = two_node_machine();
    let text = stdout_ok(&["topology", "--sysfs-root", arg(fake.root())]);
    for needle in [
        "16 online (0-15)",
        "numa nodes  2",
        "0-3,8-11",
        "12.0 GiB",
        "2 MiB: 500/512",
        "1 GiB: 1/2",
        "0000:3b:00.0  nvidia",
        "0000:d8:00.0",
        "0000:5e:00.0  mellanox",
        "ib0",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn a_machine_without_gpus_says_so_plainly() {
    let fake = FakeSysfs::new();
    fake.file("devices/system/cpu/online", "0-3\n")
        .node(0, "0-3", 4 << 20, 2 << 20, "10");
    let text = stdout_ok(&["topology", "--sysfs-root", arg(fake.root())]);
    assert!(text.contains("gpus: none"), "{text}");
    assert!(text.contains("nics: none"), "{text}");
    let t = json(&["topology", "--sysfs-root", arg(fake.root())]);
    assert_eq!(t["gpus"], json!([]));
}

#[test]
fn a_missing_or_malformed_tree_exits_with_its_code() {
    let fake = FakeSysfs::new();
    fails_with(
        &["topology", "--sysfs-root", arg(&fake.root().join("nope"))],
        6,
    );
    fake.file("devices/system/cpu/online", "zero-three\n");
    let stderr = fails_with(&["topology", "--sysfs-root", arg(fake.root())], 7);
    assert!(stderr.contains("cpu/online"), "{stderr}");
}

#[test]
fn this_machine_has_at_least_one_node_and_cpu() {
    let t = json(&["topology"]);
    assert!(!t["numa_nodes"].as_array().unwrap().is_empty());
    assert!(!t["cpus_online"].as_array().unwrap().is_empty());
}
