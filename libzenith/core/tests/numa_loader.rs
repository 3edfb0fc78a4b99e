//! A loader placed on a NUMA node (`numa_node`, `near_gpu`): its workers are pinned to the node's
//! CPUs, as `/proc/self/task/*/status` shows, and gathered batches live in NUMA allocations that
//! are freed with the batches. Its own test binary: it inspects the process's threads and live
//! allocations, which other tests would disturb; the tests here take turns.

mod common;
mod fake_sysfs;

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use common::{BASIC_ROWS, assert_basic_columns, data_file};
use fake_sysfs::FakeSysfs;
use zenith_core::loader::{NumaTarget, ShuffleMode};
use zenith_core::runtime::affinity;
use zenith_core::runtime::alloc::live_allocations;
use zenith_core::runtime::topology::{PciAddress, Topology, parse_cpu_list};
use zenith_core::{Error, Loader, LoaderOptions};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// `Cpus_allowed_list` of every live `zenith-worker-*` thread, parsed.
fn worker_affinities() -> Vec<Vec<u32>> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.starts_with("zenith-worker") {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue; // exited meanwhile
        };
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list in status");
        found.push(parse_cpu_list(list).unwrap());
    }
    found
}

fn options(workers: usize) -> LoaderOptions {
    let mut o = LoaderOptions::default();
    o.set_batch_size(100).unwrap();
    o.set_shuffle(ShuffleMode::Global);
    o.set_seed(7);
    o.set_num_workers(workers).unwrap();
    o.set_prefetch(4).unwrap();
    o
}

/// Waits (bounded) until `n` workers run and have pinned themselves; returns their affinities.
fn pinned_workers(loader: &Loader, n: u32) -> Vec<Vec<u32>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while loader.stats().pinned_workers < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(loader.stats().pinned_workers, n);
    worker_affinities()
}

/// Reads a whole epoch and checks every row appears once with its values.
fn read_epoch(loader: &Loader) {
    let mut ids = BTreeSet::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        let column = batch.data.column(0).as_primitive::<Int64Type>();
        for (i, id) in column.values().iter().enumerate() {
            assert!(ids.insert(*id));
            assert_basic_columns(&batch.data.slice(i, 1), *id);
        }
    }
    assert_eq!(ids.len() as u64, BASIC_ROWS);
}

/// The CPUs this process may use, and one of them to pin to in fake trees: the last one, so a
/// node made of it is narrower than the process's affinity wherever there are two CPUs.
fn process_cpus() -> (Vec<u32>, u32) {
    let allowed = std::thread::spawn(|| affinity::current_thread_affinity().unwrap())
        .join()
        .unwrap();
    let last = *allowed.last().unwrap();
    (allowed, last)
}

/// A fake tree with the real online CPUs, node 0 = {`cpu`}, node 1 = the others, and GPUs:
/// index 0 at 0000:3b:00.0 on node 0, index 1 at 0000:af:00.0 with an unknown node.
fn fake_machine(cpu: u32) -> FakeSysfs {
    let real = Topology::discover().unwrap();
    let online = zenith_core::runtime::topology::format_cpu_list(real.cpus_online());
    let others: Vec<u32> = real
        .cpus_online()
        .iter()
        .copied()
        .filter(|c| *c != cpu)
        .collect();
    let fake = FakeSysfs::new();
    fake.online(&online)
        .node(0, &cpu.to_string(), 1 << 20, 1 << 20, "10 20")
        .node(
            1,
            &zenith_core::runtime::topology::format_cpu_list(&others),
            1 << 20,
            1 << 20,
            "20 10",
        )
        .pci("0000:3b:00.0", 0x10de, 0x2330, 0x030200, Some(0))
        .pci("0000:af:00.0", 0x10de, 0x2330, 0x030200, Some(-1));
    fake
}

#[test]
fn numa_node_zero_pins_every_worker_to_node_zeros_cpus() {
    let _serial = serial();
    let topology = Topology::discover().unwrap();
    let node = &topology.nodes()[0];
    let expected: Vec<u32> = node
        .cpus
        .iter()
        .copied()
        .filter(|c| topology.cpus_online().contains(c))
        .collect();
    let mut o = options(3);
    o.set_numa_node(Some(node.id)).unwrap();
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    let stats = loader.stats();
    assert_eq!(stats.numa_node, Some(node.id));
    if expected.is_empty() {
        return; // a node without CPUs: nothing to pin to
    }
    let affinities = pinned_workers(&loader, 3);
    assert_eq!(affinities.len(), 3, "{affinities:?}");
    for a in &affinities {
        assert_eq!(a, &expected, "worker Cpus_allowed_list vs node {}", node.id);
    }
    read_epoch(&loader);

    // A new epoch starts new workers, pinned the same way.
    loader.set_epoch(1).unwrap();
    for a in pinned_workers(&loader, 3) {
        assert_eq!(a, expected);
    }
}

#[test]
fn near_gpu_by_index_and_by_address_pins_to_the_gpus_node() {
    let _serial = serial();
    let (allowed, cpu) = process_cpus();
    let fake = fake_machine(cpu);
    for target in [
        NumaTarget::GpuIndex(0),
        NumaTarget::GpuAddress(PciAddress::parse("00000000:3B:00.0").unwrap()),
    ] {
        let mut o = options(2);
        o.set_sysfs_root(Some(fake.root().to_path_buf()));
        o.set_near_gpu(target.clone());
        let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
        assert_eq!(loader.stats().numa_node, Some(0), "{target:?}");
        let affinities = pinned_workers(&loader, 2);
        assert_eq!(affinities, [vec![cpu], vec![cpu]], "{target:?}");
        read_epoch(&loader);
        drop(loader);
        assert!(worker_affinities().is_empty());
    }
    // The test thread itself was never pinned.
    assert_eq!(process_cpus().0, allowed);
}

#[test]
fn unknown_nodes_and_gpus_without_a_node_mean_no_pinning() {
    let _serial = serial();
    let (allowed, cpu) = process_cpus();
    let fake = fake_machine(cpu);
    let mut gpu_without_node = options(2);
    gpu_without_node.set_sysfs_root(Some(fake.root().to_path_buf()));
    gpu_without_node.set_near_gpu(NumaTarget::GpuIndex(1));
    let mut absent_node = options(2);
    absent_node.set_sysfs_root(Some(fake.root().to_path_buf()));
    absent_node.set_numa_node(Some(9)).unwrap();
    for o in [gpu_without_node, absent_node] {
        let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
        let stats = loader.stats();
        assert_eq!((stats.numa_node, stats.pinned_workers), (None, 0));
        loader.next_batch().unwrap().unwrap();
        for a in worker_affinities() {
            assert_eq!(a, allowed, "unpinned workers keep the process's CPUs");
        }
        assert_eq!(loader.stats().pinned_workers, 0);
    }
}

#[test]
fn unknown_gpus_are_invalid_arguments_at_open() {
    let _serial = serial();
    let (_, cpu) = process_cpus();
    let fake = fake_machine(cpu);
    for target in [
        NumaTarget::GpuIndex(2),
        NumaTarget::GpuAddress(PciAddress::parse("0000:3c:00.0").unwrap()),
    ] {
        let mut o = options(1);
        o.set_sysfs_root(Some(fake.root().to_path_buf()));
        o.set_near_gpu(target.clone());
        let err = Loader::open(data_file("basic.arrow"), &o).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(
            err.to_string().contains("0: 0000:3b:00.0"),
            "lists the GPUs: {err}"
        );
    }
    // A sysfs root that does not exist is reported as such.
    let mut o = options(1);
    o.set_sysfs_root(Some(fake.root().join("missing")));
    o.set_numa_node(Some(0)).unwrap();
    let err = Loader::open(data_file("basic.arrow"), &o).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn gathered_batches_live_in_numa_allocations_freed_with_the_batches() {
    let _serial = serial();
    // Batches are copied onto the node only where there is more than one node: describe this
    // machine's first node, plus a second one, in a fake tree.
    let real = Topology::discover().unwrap();
    let cpus: Vec<String> = real.nodes()[0].cpus.iter().map(u32::to_string).collect();
    let fake = FakeSysfs::new();
    fake.online(&cpus.join(","))
        .node(0, &cpus.join(","), 1 << 20, 1 << 19, "10 20")
        .node(1, "", 1 << 20, 1 << 19, "20 10");
    let (baseline, _) = live_allocations();
    for workers in [0, 2] {
        let mut o = options(workers);
        o.set_sysfs_root(Some(fake.root().to_path_buf()));
        o.set_numa_node(Some(0)).unwrap();
        let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
        let mut held = Vec::new();
        while let Some(batch) = loader.next_batch().unwrap() {
            held.push(batch);
        }
        assert_eq!(held.len() as u64, BASIC_ROWS.div_ceil(100));
        // Gathered batches live in the loader's pool of node allocations (one per pool block,
        // so at least one per batch: a block per column buffer).
        let (live, bytes) = live_allocations();
        assert!(
            live - baseline >= held.len(),
            "{workers} workers: {live} live"
        );
        assert!(bytes > 0);
        drop(loader);
        // Exported arrays keep their blocks, and so the pool's allocations, alive; releasing
        // the last one frees them all.
        let exported: Vec<_> = held
            .iter()
            .map(|b| zenith_core::batch::export_array(&b.data))
            .collect();
        drop(held);
        assert!(live_allocations().0 > baseline, "{workers} workers");
        drop(exported);
        assert_eq!(live_allocations().0, baseline, "{workers} workers");
    }

    // Unshuffled batches inside one record batch stay zero-copy: no allocation.
    let mut o = options(2);
    o.set_shuffle(ShuffleMode::None);
    o.set_numa_node(Some(0)).unwrap();
    let loader = Loader::open(data_file("single_batch.arrow"), &o).unwrap();
    let first = loader.next_batch().unwrap().unwrap();
    assert_basic_columns(&first.data, 0);
    assert_eq!(live_allocations().0, baseline);
}
