//! Topology discovery against fake sysfs trees (2 and 4 nodes, memory-less and CPU-less nodes,
//! split CPU lists, missing files, unknown device nodes, GPUs and NICs) and this machine's
//! real `/sys`.

mod fake_sysfs;

use fake_sysfs::FakeSysfs;
use zenith_core::Error;
use zenith_core::runtime::affinity;
use zenith_core::runtime::topology::{
    HUGEPAGE_1G, HUGEPAGE_2M, HugePagePool, PciAddress, PciKind, Topology, format_cpu_list,
};

const NVIDIA: u16 = 0x10de;
const AMD: u16 = 0x1002;
const MELLANOX: u16 = 0x15b3;

fn pool(page_size_bytes: u64, total: u64, free: u64) -> (u64, u64, u64) {
    (page_size_bytes, total, free)
}

fn pools(p: &[HugePagePool]) -> Vec<(u64, u64, u64)> {
    p.iter()
        .map(|p| (p.page_size_bytes, p.total, p.free))
        .collect()
}

fn json(topology: &Topology) -> serde_json::Value {
    serde_json::from_str(&topology.to_json()).expect("to_json writes valid JSON")
}

#[test]
fn two_nodes_with_split_cpu_lists_memory_distances_and_hugepages() {
    let fake = FakeSysfs::new();
    fake.online("0-15")
        .node(0, "0-3,8-11", 16 << 20, 12 << 20, "10 21")
        .node(1, "4-7,12-15", 8 << 20, 1 << 20, "21 10")
        .hugepages(0, 2048, 512, 500)
        .hugepages(0, 1048576, 2, 1)
        .hugepages(1, 2048, 0, 0);
    let t = Topology::discover_at(fake.root()).unwrap();

    assert_eq!(t.sysfs_root(), fake.root());
    assert_eq!(t.cpus_online(), (0..16).collect::<Vec<u32>>());
    let [n0, n1] = t.nodes() else {
        panic!("two nodes: {:?}", t.nodes())
    };
    assert_eq!((n0.id, n1.id), (0, 1));
    assert_eq!(n0.cpus, [0, 1, 2, 3, 8, 9, 10, 11]);
    assert_eq!(format_cpu_list(&n1.cpus), "4-7,12-15");
    assert_eq!(n0.memory_total_bytes, 16 << 30);
    assert_eq!(n0.memory_free_bytes, 12 << 30);
    assert_eq!(n1.memory_total_bytes, 8 << 30);
    assert_eq!(n1.memory_free_bytes, 1 << 30);
    assert_eq!(n0.distances, [10, 21]);
    assert_eq!(n1.distances, [21, 10]);
    assert_eq!(
        pools(&n0.hugepages),
        [pool(HUGEPAGE_2M, 512, 500), pool(HUGEPAGE_1G, 2, 1)]
    );
    // A missing 1 GiB pool is listed empty.
    assert_eq!(
        pools(&n1.hugepages),
        [pool(HUGEPAGE_2M, 0, 0), pool(HUGEPAGE_1G, 0, 0)]
    );
    assert_eq!(n0.hugepage_pool(HUGEPAGE_1G).unwrap().free, 1);
    assert_eq!(t.node(1), Some(n1));
    assert_eq!(t.node(2), None);
    assert!(t.gpus().is_empty() && t.nics().is_empty());

    let v = json(&t);
    assert_eq!(
        v["numa_nodes"][0]["cpus"],
        serde_json::json!([0, 1, 2, 3, 8, 9, 10, 11])
    );
    assert_eq!(v["numa_nodes"][1]["distances"], serde_json::json!([21, 10]));
    assert_eq!(
        v["numa_nodes"][0]["hugepages"][1],
        serde_json::json!({"page_size_bytes": 1u64 << 30, "total": 2, "free": 1})
    );
    assert_eq!(v["numa_nodes"][0]["memory_total_bytes"], 16u64 << 30);
    assert_eq!(v["cpus_online"].as_array().unwrap().len(), 16);
}

#[test]
fn four_nodes_in_numeric_order_with_a_full_distance_table() {
    let fake = FakeSysfs::new();
    let rows = ["10 16 32 32", "16 10 32 32", "32 32 10 16", "32 32 16 10"];
    // Created out of order, and with a two-digit sibling name that must sort after node3.
    for id in [3, 1, 0, 2] {
        let first = id * 8;
        fake.node(
            id,
            &format!("{first}-{}", first + 7),
            4 << 20,
            2 << 20,
            rows[id as usize],
        );
    }
    fake.online("0-31");
    fake.dir("devices/system/node/possible_not_a_node");
    let t = Topology::discover_at(fake.root()).unwrap();
    let ids: Vec<u32> = t.nodes().iter().map(|n| n.id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    for node in t.nodes() {
        assert_eq!(node.cpus.len(), 8);
        assert_eq!(node.cpus[0], node.id * 8);
        assert_eq!(node.distances.len(), 4);
        assert_eq!(node.distances[node.id as usize], 10);
    }
    assert_eq!(t.node(2).unwrap().distances, [32, 32, 10, 16]);
    assert_eq!(json(&t)["numa_nodes"].as_array().unwrap().len(), 4);
}

#[test]
fn memory_less_and_cpu_less_nodes_and_sparse_node_ids() {
    let fake = FakeSysfs::new();
    fake.online("0-7")
        .node(0, "0-7", 32 << 20, 30 << 20, "10 20 40")
        // A memory-only node (CXL or HBM): memory, no CPUs.
        .node(2, "", 64 << 20, 64 << 20, "20 10 40")
        // A memory-less node: CPUs may be listed elsewhere, memory 0.
        .node(5, "", 0, 0, "40 40 10");
    let t = Topology::discover_at(fake.root()).unwrap();
    let ids: Vec<u32> = t.nodes().iter().map(|n| n.id).collect();
    assert_eq!(ids, [0, 2, 5]);
    let memory_only = t.node(2).unwrap();
    assert!(memory_only.cpus.is_empty());
    assert_eq!(memory_only.memory_total_bytes, 64 << 30);
    let memory_less = t.node(5).unwrap();
    assert_eq!(
        (
            memory_less.memory_total_bytes,
            memory_less.memory_free_bytes
        ),
        (0, 0)
    );
    let v = json(&t);
    assert_eq!(v["numa_nodes"][1]["cpus"], serde_json::json!([]));
    assert_eq!(v["numa_nodes"][2]["id"], 5);
}

#[test]
fn missing_files_give_defaults_not_errors() {
    // Nodes whose directories are empty, no cpu/online (the union of node CPUs is used), no
    // PCI bus.
    let fake = FakeSysfs::new();
    fake.dir("devices/system/node/node0")
        .dir("devices/system/node/node1")
        .file("devices/system/node/node1/cpulist", "2-3\n");
    let t = Topology::discover_at(fake.root()).unwrap();
    assert_eq!(t.nodes().len(), 2);
    let n0 = &t.nodes()[0];
    assert!(n0.cpus.is_empty() && n0.distances.is_empty());
    assert_eq!((n0.memory_total_bytes, n0.memory_free_bytes), (0, 0));
    assert_eq!(
        pools(&n0.hugepages),
        [pool(HUGEPAGE_2M, 0, 0), pool(HUGEPAGE_1G, 0, 0)]
    );
    assert_eq!(t.cpus_online(), [2, 3]);
    assert!(t.gpus().is_empty() && t.nics().is_empty());

    // No node directory at all (a kernel without NUMA): one node 0 with every online CPU and
    // the machine-wide hugepage pools.
    let flat = FakeSysfs::new();
    flat.online("0-3")
        .file("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "16\n")
        .file("kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "9\n");
    let t = Topology::discover_at(flat.root()).unwrap();
    let [node] = t.nodes() else {
        panic!("{:?}", t.nodes())
    };
    assert_eq!((node.id, node.cpus.as_slice()), (0, &[0, 1, 2, 3][..]));
    assert_eq!(node.distances, [10]);
    assert_eq!(node.hugepage_pool(HUGEPAGE_2M).unwrap().total, 16);
    assert_eq!(node.hugepage_pool(HUGEPAGE_2M).unwrap().free, 9);

    // An empty root: one node 0 without CPUs.
    let empty = FakeSysfs::new();
    let t = Topology::discover_at(empty.root()).unwrap();
    assert_eq!(t.nodes().len(), 1);
    assert!(t.cpus_online().is_empty());
    json(&t);
}

#[test]
fn gpus_and_nics_on_the_pci_bus_with_their_nodes() {
    let fake = FakeSysfs::new();
    fake.online("0-7")
        .node(0, "0-3", 1 << 20, 1 << 20, "10 21")
        .node(1, "4-7", 1 << 20, 1 << 20, "21 10")
        // Added out of address order.
        .pci("0000:af:00.0", NVIDIA, 0x2330, 0x030200, Some(1))
        .pci("0000:3b:00.0", NVIDIA, 0x2330, 0x030200, Some(0))
        .pci("0000:5e:00.0", AMD, 0x740f, 0x038000, Some(-1))
        // Display controllers that are not GPUs Zenith counts: an emulated VGA, an iGPU.
        .pci("0000:00:02.0", 0x1234, 0x1111, 0x030000, Some(-1))
        .pci("0000:00:03.0", 0x8086, 0x9a49, 0x030000, Some(0))
        // NICs: InfiniBand with an interface, Ethernet without a numa_node file.
        .pci("0000:18:00.0", MELLANOX, 0x101b, 0x020700, Some(0))
        .net("0000:18:00.0", "ib0")
        .pci("0000:00:04.0", 0x1af4, 0x1000, 0x020000, None)
        .net("0000:00:04.0", "eth1")
        .net("0000:00:04.0", "eth0")
        // A bridge, a device without a class, and a name that is not an address: skipped.
        .pci("0000:00:01.0", 0x8086, 0x7000, 0x060400, Some(0))
        .file("bus/pci/devices/0000:00:05.0/vendor", "0x10de\n")
        .dir("bus/pci/devices/not-an-address");
    let t = Topology::discover_at(fake.root()).unwrap();

    let gpus: Vec<(String, u16, Option<u32>)> = t
        .gpus()
        .iter()
        .map(|g| (g.address.to_string(), g.vendor, g.numa_node))
        .collect();
    assert_eq!(
        gpus,
        [
            ("0000:3b:00.0".to_string(), NVIDIA, Some(0)),
            ("0000:5e:00.0".to_string(), AMD, None),
            ("0000:af:00.0".to_string(), NVIDIA, Some(1)),
        ]
    );
    assert!(t.gpus().iter().all(|g| g.kind == PciKind::Gpu));
    assert_eq!(t.gpus()[0].class, 0x030200);
    assert_eq!(t.gpus()[0].device, 0x2330);
    assert_eq!(t.gpus()[0].vendor_name(), Some("nvidia"));
    let nics: Vec<(String, Option<u32>, Vec<String>)> = t
        .nics()
        .iter()
        .map(|n| (n.address.to_string(), n.numa_node, n.interfaces.clone()))
        .collect();
    assert_eq!(
        nics,
        [
            (
                "0000:00:04.0".to_string(),
                None,
                vec!["eth0".into(), "eth1".into()]
            ),
            ("0000:18:00.0".to_string(), Some(0), vec!["ib0".into()]),
        ]
    );
    let nvsmi = PciAddress::parse("00000000:AF:00.0").unwrap();
    let (index, gpu) = t.gpu_by_address(&nvsmi).unwrap();
    assert_eq!((index, gpu.numa_node), (2, Some(1)));
    assert!(
        t.gpu_by_address(&PciAddress::parse("18:00.0").unwrap())
            .is_none()
    );

    let v = json(&t);
    let first = &v["gpus"][0];
    assert_eq!(first["pci_address"], "0000:3b:00.0");
    assert_eq!(first["vendor"], NVIDIA);
    assert_eq!(first["vendor_name"], "nvidia");
    assert_eq!(first["numa_node"], 0);
    assert_eq!(first["index"], 0);
    assert!(v["gpus"][1]["numa_node"].is_null(), "-1 is null");
    assert_eq!(
        v["nics"][0]["interfaces"],
        serde_json::json!(["eth0", "eth1"])
    );
    assert!(
        v["nics"][0]["numa_node"].is_null(),
        "a missing numa_node is null"
    );
    assert_eq!(v["nics"][1]["vendor_name"], "mellanox");
}

#[test]
fn text_the_kernel_would_not_write_is_a_format_error_naming_the_file() {
    let cases: [(&str, &str); 4] = [
        ("devices/system/node/node0/cpulist", "zero-three\n"),
        ("devices/system/node/node0/distance", "10 far\n"),
        ("devices/system/cpu/online", "3-1\n"),
        ("bus/pci/devices/0000:3b:00.0/numa_node", "x\n"),
    ];
    for (file, content) in cases {
        let fake = FakeSysfs::new();
        fake.file(file, content);
        if file.starts_with("bus/") {
            fake.file("bus/pci/devices/0000:3b:00.0/class", "0x030200\n")
                .file("bus/pci/devices/0000:3b:00.0/vendor", "0x10de\n");
        }
        let err = Topology::discover_at(fake.root()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{file}: {err}");
        assert!(err.to_string().contains(file), "{err}");
    }
}

#[test]
fn a_missing_root_is_not_found() {
    let fake = FakeSysfs::new();
    let missing = fake.root().join("nope");
    let err = Topology::discover_at(&missing).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    fake.file("plain", "x");
    let err = Topology::discover_at(fake.root().join("plain")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn json_escapes_what_it_quotes() {
    let fake = FakeSysfs::new();
    fake.pci("0000:00:04.0", 0x1af4, 0x1000, 0x020000, Some(0))
        .net("0000:00:04.0", "we\"ird\\name\t");
    let t = Topology::discover_at(fake.root()).unwrap();
    let v = json(&t);
    assert_eq!(v["nics"][0]["interfaces"][0], "we\"ird\\name\t");
    assert_eq!(v["sysfs_root"], fake.root().to_str().unwrap());
}

#[test]
fn this_machines_sysfs_parses() {
    let t = Topology::discover().unwrap();
    assert!(!t.nodes().is_empty());
    assert!(!t.cpus_online().is_empty(), "{t:?}");
    // Every CPU this thread may use is online, and belongs to a node (unless NUMA is off).
    let mine = affinity::current_thread_affinity().unwrap();
    for cpu in &mine {
        assert!(t.cpus_online().contains(cpu), "CPU {cpu} of {mine:?}");
        assert!(
            t.nodes().iter().any(|n| n.cpus.contains(cpu)),
            "CPU {cpu} in no node: {t:?}"
        );
    }
    for node in t.nodes() {
        assert!(
            node.memory_free_bytes <= node.memory_total_bytes,
            "{node:?}"
        );
        assert!(node.hugepage_pool(HUGEPAGE_2M).is_some());
    }
    for gpu in t.gpus() {
        assert!(gpu.numa_node.is_none_or(|n| t.node(n).is_some()), "{gpu:?}");
    }
    let v = json(&t);
    for key in ["numa_nodes", "cpus_online", "gpus", "nics"] {
        assert!(v[key].is_array(), "{key} in {v}");
    }
    eprintln!("this machine: {}", t.to_json());
}

#[test]
fn gpu_driver_facts_merge_into_the_sysfs_view_and_steer_near_gpu() {
    use zenith_core::loader::NumaTarget;
    use zenith_core::loader::numa::NumaPlacement;
    use zenith_core::runtime::topology::GpuFacts;

    let fake = FakeSysfs::new();
    fake.online("0-7")
        .node(0, "0-3", 1 << 20, 1 << 20, "10 21")
        .node(1, "4-7", 1 << 20, 1 << 20, "21 10")
        .pci("0000:3b:00.0", NVIDIA, 0x2330, 0x030200, Some(0))
        // sysfs does not know this GPU's node (a VM): the driver does.
        .pci("0000:af:00.0", NVIDIA, 0x2330, 0x030200, Some(-1));
    let sysfs = Topology::discover_at(fake.root()).unwrap();
    let fact = |address: &str, node: Option<u32>, cpus: Vec<u32>| GpuFacts {
        pci_address: PciAddress::parse(address).unwrap(),
        name: format!("GPU at {address}"),
        numa_node: node,
        cpu_affinity: cpus,
    };
    // Without facts: the sysfs view, unchanged.
    assert_eq!(sysfs.clone().with_gpu_facts(&[]), sysfs);
    assert!(
        sysfs
            .gpus()
            .iter()
            .all(|g| !g.from_driver && g.name.is_empty())
    );
    let before = NumaPlacement::resolve_in(&NumaTarget::GpuIndex(1), &sysfs).unwrap();
    assert_eq!(before.node, None, "sysfs alone: no node for the second GPU");

    let merged = sysfs.clone().with_gpu_facts(&[
        fact("00000000:AF:00.0", Some(1), vec![4, 5, 6, 7]),
        // sysfs knows this node: it wins over the driver's.
        fact("00000000:3B:00.0", Some(1), vec![0, 1, 2, 3]),
        // Only the driver sees this one (a container without its PCI directory).
        fact("00000000:DB:00.0", Some(1), vec![]),
    ]);
    let gpus: Vec<(String, Option<u32>, Vec<u32>, bool)> = merged
        .gpus()
        .iter()
        .map(|g| {
            (
                g.address.to_string(),
                g.numa_node,
                g.cpu_affinity.clone(),
                g.from_driver,
            )
        })
        .collect();
    assert_eq!(
        gpus,
        [
            ("0000:3b:00.0".to_string(), Some(0), vec![0, 1, 2, 3], true),
            ("0000:af:00.0".to_string(), Some(1), vec![4, 5, 6, 7], true),
            ("0000:db:00.0".to_string(), Some(1), vec![], true),
        ]
    );
    assert_eq!(merged.gpus()[2].vendor, NVIDIA);
    assert_eq!(merged.gpus()[1].device, 0x2330, "sysfs facts stay");
    let v = json(&merged);
    assert_eq!(v["gpus"][1]["name"], "GPU at 00000000:AF:00.0");
    assert_eq!(
        v["gpus"][1]["cpu_affinity"],
        serde_json::json!([4, 5, 6, 7])
    );
    assert_eq!(v["gpus"][1]["from_driver"], true);
    assert_eq!(json(&sysfs)["gpus"][0]["from_driver"], false);

    // near_gpu resolves through the merged view: the second GPU is now near node 1.
    let after = NumaPlacement::resolve_in(&NumaTarget::GpuIndex(1), &merged).unwrap();
    assert_eq!(after.node, Some(1));
    assert_eq!(after.worker_cpus().unwrap().to_vec(), vec![4, 5, 6, 7]);
    let by_address = NumaTarget::GpuAddress(PciAddress::parse("db:00.0").unwrap());
    assert_eq!(
        NumaPlacement::resolve_in(&by_address, &merged)
            .unwrap()
            .node,
        Some(1)
    );
}
