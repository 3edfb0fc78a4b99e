//! The NUMA/hugepage allocator on this machine: what each allocation records is checked against
//! what the kernel says about the mapping (`/proc/self/smaps` VmFlags, `get_mempolicy`), not
//! against a fixed outcome, since hugepage pools and THP settings differ between machines. The
//! tests take turns: each one's expectations read the hugepage pool, which the others draw on.

use std::sync::{Mutex, MutexGuard};

use zenith_core::Error;
use zenith_core::runtime::alloc::{
    ALLOC_NO_HUGEPAGES, ALLOC_NO_HUGETLB, ALLOC_STRICT_NODE, HugePages, NumaAllocation, Placement,
    hugetlb_size, page_size, thp_size,
};
use zenith_core::runtime::topology::Topology;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The smaps entry of the mapping that contains `addr`: (KernelPageSize in bytes, VmFlags).
fn smaps_of(addr: usize) -> (usize, Vec<String>) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    let mut page = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                inside = start <= addr && addr < end;
                continue;
            }
        }
        if !inside {
            continue;
        }
        if let Some(kib) = line.strip_prefix("KernelPageSize:") {
            page = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .unwrap()
                * 1024;
        }
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            return (page, flags.split_whitespace().map(String::from).collect());
        }
    }
    panic!("no mapping holds {addr:#x}");
}

/// Asserts that the recorded page kind is what smaps shows: hugetlb mappings carry `ht` and the
/// hugepage size, THP-advised ones `hg`, plain ones neither.
fn assert_recorded_pages_match_smaps(a: &NumaAllocation) {
    let (kernel_page, flags) = smaps_of(a.as_ptr() as usize);
    let has = |f: &str| flags.iter().any(|x| x == f);
    match a.hugepages() {
        HugePages::Explicit => {
            assert!(has("ht"), "{flags:?}");
            assert_eq!(Some(kernel_page), hugetlb_size());
            assert_eq!(a.mapped_len() % kernel_page, 0);
        }
        HugePages::Transparent => {
            assert!(has("hg") && !has("ht"), "{flags:?}");
            assert!(thp_size().is_some(), "THP recorded while disabled");
            assert_eq!(a.as_ptr() as usize % thp_size().unwrap(), 0, "THP-aligned");
        }
        HugePages::None => {
            assert!(!has("hg") && !has("ht"), "{flags:?}");
            assert_eq!(kernel_page, page_size());
        }
    }
}

/// What the kernel's policy for the page at `addr` is: (mode, nodemask word 0).
fn mempolicy_of(addr: *mut u8) -> (i32, u64) {
    let mut mode: libc::c_int = -1;
    let mut mask = [0u64; 16];
    // SAFETY: writable outputs of the sizes passed; MPOL_F_ADDR reads the policy of `addr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode,
            mask.as_mut_ptr(),
            mask.len() * 64,
            addr,
            2 as libc::c_ulong, // MPOL_F_ADDR
        )
    };
    assert_eq!(rc, 0, "get_mempolicy: {}", std::io::Error::last_os_error());
    (mode, mask[0])
}

/// The node of the (faulted-in) page at `addr`.
fn node_of_page(addr: *mut u8) -> i32 {
    let mut node: libc::c_int = -1;
    // SAFETY: as above; MPOL_F_NODE | MPOL_F_ADDR returns the node of the page at `addr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut node,
            std::ptr::null_mut::<u64>(),
            0usize,
            addr,
            3 as libc::c_ulong,
        )
    };
    assert_eq!(rc, 0, "get_mempolicy: {}", std::io::Error::last_os_error());
    node
}

/// The hugepage kind the allocator must pick for `len` bytes with `flags`, from the machine's
/// settings (free pages in the hugetlb pool, THP mode).
fn expected_kind(len: usize, flags: u32) -> HugePages {
    if flags & ALLOC_NO_HUGEPAGES != 0 {
        return HugePages::None;
    }
    let pool_has_room = hugetlb_size().is_some_and(|size| {
        let free = std::fs::read_to_string(format!(
            "/sys/kernel/mm/hugepages/hugepages-{}kB/free_hugepages",
            size / 1024
        ))
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(0);
        len >= size && free >= len.div_ceil(size)
    });
    if flags & ALLOC_NO_HUGETLB == 0 && pool_has_room {
        HugePages::Explicit
    } else if thp_size().is_some_and(|thp| len >= thp) {
        HugePages::Transparent
    } else {
        HugePages::None
    }
}

#[test]
fn each_size_and_flag_records_the_pages_the_kernel_shows() {
    let cases: [(usize, u32); 6] = [
        (1, 0),
        (100_000, 0),
        (8 << 20, 0),
        ((8 << 20) + 1, 0),
        (8 << 20, ALLOC_NO_HUGETLB),
        (8 << 20, ALLOC_NO_HUGEPAGES),
    ];
    let _serial = serial();
    for (len, flags) in cases {
        let expected = expected_kind(len, flags);
        let mut a = NumaAllocation::new(len, None, flags).unwrap();
        eprintln!(
            "{len} bytes, flags {flags:#x}: {:?}, {} mapped",
            a.hugepages(),
            a.mapped_len()
        );
        assert!(a.mapped_len() >= len);
        assert_eq!(a.len(), len);
        assert_eq!(a.hugepages(), expected, "{len} bytes, flags {flags:#x}");
        assert_recorded_pages_match_smaps(&a);
        // Zeroed, and every byte writable.
        let bytes = a.as_mut_slice();
        assert!(bytes.iter().all(|b| *b == 0));
        bytes.fill(0xab);
        assert_eq!(bytes[len - 1], 0xab);
    }
}

#[test]
fn placement_on_node_zero_is_what_get_mempolicy_reports() {
    let _serial = serial();
    let topology = Topology::discover().unwrap();
    let Some(node) = topology.nodes().first().map(|n| n.id) else {
        return;
    };
    for (flags, expected_mode) in [
        (0, libc::MPOL_PREFERRED),
        (ALLOC_STRICT_NODE, libc::MPOL_BIND),
    ] {
        let mut a = match NumaAllocation::new(4 << 20, Some(node), flags) {
            Ok(a) => a,
            // Strict placement where the kernel refuses mbind (seccomp, no NUMA): said clearly.
            Err(Error::Unsupported(m)) if flags & ALLOC_STRICT_NODE != 0 => {
                eprintln!("strict placement unsupported here: {m}");
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        eprintln!(
            "flags {flags:#x}: {:?} on {:?}",
            a.placement(),
            a.numa_node()
        );
        let (mode, mask) = mempolicy_of(a.as_ptr());
        match a.placement() {
            Placement::Preferred | Placement::Bind => {
                assert_eq!(mode, expected_mode);
                assert_eq!(mask, 1 << node, "nodemask");
                assert_eq!(a.numa_node(), Some(node));
            }
            Placement::FirstTouch => {
                assert_eq!(mode, libc::MPOL_DEFAULT, "mbind was refused");
                assert_eq!(a.numa_node(), Some(node));
            }
            Placement::None => {
                assert_eq!(mode, libc::MPOL_DEFAULT);
                assert_eq!(a.numa_node(), None);
            }
        }
        a.as_mut_slice().fill(1);
        if a.numa_node().is_some() {
            assert_eq!(
                node_of_page(a.as_ptr()),
                node as i32,
                "the page is on the node"
            );
        }
        assert_recorded_pages_match_smaps(&a);
    }
}

#[test]
fn nodes_the_machine_lacks_are_refused_when_strict_and_skipped_otherwise() {
    let _serial = serial();
    let topology = Topology::discover().unwrap();
    let absent = (0..1000).find(|n| topology.node(*n).is_none()).unwrap();
    let a = NumaAllocation::new(1 << 16, Some(absent), 0).unwrap();
    assert_eq!(a.placement(), Placement::None);
    assert_eq!(a.numa_node(), None);
    let err = NumaAllocation::new(1 << 16, Some(absent), ALLOC_STRICT_NODE).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_) | Error::Unsupported(_)),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("node {absent}")), "{err}");
}
