//! Fake sysfs trees for the topology tests: the files the kernel writes, laid out as under
//! `/sys`, in a temporary directory.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use tempfile::TempDir;

/// A sysfs tree under a temporary directory, removed on drop.
pub struct FakeSysfs {
    dir: TempDir,
}

impl FakeSysfs {
    /// An empty tree (no file at all: every reader falls back to its defaults).
    pub fn new() -> Self {
        FakeSysfs {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The root to pass as `sysfs_root`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `relative` (parents created).
    pub fn file(&self, relative: &str, content: &str) -> &Self {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    /// A FIFO (named pipe) at `relative` (parents created, a file there replaced): opening it
    /// for reading blocks until a writer comes, which no sysfs reader may wait for.
    pub fn fifo(&self, relative: &str) -> &Self {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        let c_path = std::ffi::CString::new(path.into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
        self
    }

    /// An empty directory at `relative`.
    pub fn dir(&self, relative: &str) -> &Self {
        std::fs::create_dir_all(self.root().join(relative)).unwrap();
        self
    }

    /// `devices/system/cpu/online`.
    pub fn online(&self, cpus: &str) -> &Self {
        self.file("devices/system/cpu/online", &format!("{cpus}\n"))
    }

    /// Node `id` with its CPU list, memory (KiB) and distance row, as the kernel writes them.
    pub fn node(
        &self,
        id: u32,
        cpus: &str,
        total_kib: u64,
        free_kib: u64,
        distances: &str,
    ) -> &Self {
        let dir = format!("devices/system/node/node{id}");
        self.file(&format!("{dir}/cpulist"), &format!("{cpus}\n"));
        self.file(
            &format!("{dir}/meminfo"),
            &format!(
                "Node {id} MemTotal:       {total_kib} kB\n\
                 Node {id} MemFree:        {free_kib} kB\n\
                 Node {id} MemUsed:        {} kB\n\
                 Node {id} HugePages_Total:     0\n",
                total_kib - free_kib
            ),
        );
        self.file(&format!("{dir}/distance"), &format!("{distances}\n"))
    }

    /// A hugepage pool of node `id`: `size_kib` pages, `total` of them, `free` free.
    pub fn hugepages(&self, id: u32, size_kib: u64, total: u64, free: u64) -> &Self {
        let dir = format!("devices/system/node/node{id}/hugepages/hugepages-{size_kib}kB");
        self.file(&format!("{dir}/nr_hugepages"), &format!("{total}\n"));
        self.file(&format!("{dir}/free_hugepages"), &format!("{free}\n"))
    }

    /// A PCI device: its directory under `devices/pci0000:00/` and the `bus/pci/devices` symlink
    /// to it, as in a real sysfs. `numa_node` is written as given (`-1` for unknown) unless
    /// `None` (no file).
    pub fn pci(
        &self,
        address: &str,
        vendor: u16,
        device: u16,
        class: u32,
        numa_node: Option<i32>,
    ) -> &Self {
        let dir = format!("devices/pci0000:00/{address}");
        self.file(&format!("{dir}/vendor"), &format!("0x{vendor:04x}\n"));
        self.file(&format!("{dir}/device"), &format!("0x{device:04x}\n"));
        self.file(&format!("{dir}/class"), &format!("0x{class:06x}\n"));
        if let Some(node) = numa_node {
            self.file(&format!("{dir}/numa_node"), &format!("{node}\n"));
        }
        self.dir("bus/pci/devices");
        std::os::unix::fs::symlink(
            format!("../../../devices/pci0000:00/{address}"),
            self.root().join("bus/pci/devices").join(address),
        )
        .unwrap();
        self
    }

    /// A network interface of the PCI device at `address`.
    pub fn net(&self, address: &str, interface: &str) -> &Self {
        self.dir(&format!("devices/pci0000:00/{address}/net/{interface}"))
    }
}
