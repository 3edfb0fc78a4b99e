//! The header's `ZENITH_*` macros == the constants of the C ABI crate they were generated
//! from.

use std::collections::BTreeMap;

use zenith::scheduler::{decisions, job_spec, jobs, queue_spec};
use zenith::{gpu, loader, memory, options, ring, scheduler, status, version};
use zenith_abi_check::{bindings, header};

// Compile-time check that the status type crosses the boundary unchanged (int32_t both sides).
const _: fn(status::zenith_status) -> bindings::zenith_status = |s| s;
const _: fn(options::zenith_io_backend) -> bindings::zenith_io_backend = |b| b;
const _: fn(options::zenith_shard_source) -> bindings::zenith_shard_source = |s| s;

/// The Rust value of every macro the header is expected to carry. Rust has no reflection over a
/// module's constants, so a new one is added here by hand; the test fails until it is.
fn rust_constants() -> BTreeMap<&'static str, i64> {
    BTreeMap::from([
        ("ZENITH_OK", status::ZENITH_OK.into()),
        ("ZENITH_DONE", status::ZENITH_DONE.into()),
        ("ZENITH_WOULD_BLOCK", status::ZENITH_WOULD_BLOCK.into()),
        (
            "ZENITH_ERR_NULL_ARGUMENT",
            status::ZENITH_ERR_NULL_ARGUMENT.into(),
        ),
        (
            "ZENITH_ERR_INVALID_ARGUMENT",
            status::ZENITH_ERR_INVALID_ARGUMENT.into(),
        ),
        ("ZENITH_ERR_IO", status::ZENITH_ERR_IO.into()),
        ("ZENITH_ERR_NOT_FOUND", status::ZENITH_ERR_NOT_FOUND.into()),
        ("ZENITH_ERR_FORMAT", status::ZENITH_ERR_FORMAT.into()),
        (
            "ZENITH_ERR_UNSUPPORTED",
            status::ZENITH_ERR_UNSUPPORTED.into(),
        ),
        ("ZENITH_ERR_PANIC", status::ZENITH_ERR_PANIC.into()),
        ("ZENITH_ERR_INTERNAL", status::ZENITH_ERR_INTERNAL.into()),
        (
            "ZENITH_ERR_SCHEMA_MISMATCH",
            status::ZENITH_ERR_SCHEMA_MISMATCH.into(),
        ),
        ("ZENITH_VERSION_MAJOR", version::ZENITH_VERSION_MAJOR.into()),
        ("ZENITH_VERSION_MINOR", version::ZENITH_VERSION_MINOR.into()),
        ("ZENITH_VERSION_PATCH", version::ZENITH_VERSION_PATCH.into()),
        (
            "ZENITH_VERSION_NUMBER",
            version::ZENITH_VERSION_NUMBER.into(),
        ),
        (
            "ZENITH_DEFAULT_BATCH_SIZE",
            i64::try_from(options::ZENITH_DEFAULT_BATCH_SIZE).unwrap(),
        ),
        (
            "ZENITH_ERR_BUFFER_TOO_SMALL",
            status::ZENITH_ERR_BUFFER_TOO_SMALL.into(),
        ),
        (
            "ZENITH_RESUME_STATE_SIZE",
            i64::try_from(loader::ZENITH_RESUME_STATE_SIZE).unwrap(),
        ),
        (
            "ZENITH_MAX_WORKERS",
            i64::try_from(options::ZENITH_MAX_WORKERS).unwrap(),
        ),
        ("ZENITH_SHUFFLE_NONE", options::ZENITH_SHUFFLE_NONE.into()),
        (
            "ZENITH_SHUFFLE_GLOBAL",
            options::ZENITH_SHUFFLE_GLOBAL.into(),
        ),
        ("ZENITH_SHUFFLE_BLOCK", options::ZENITH_SHUFFLE_BLOCK.into()),
        ("ZENITH_SHUFFLE_AUTO", options::ZENITH_SHUFFLE_AUTO.into()),
        (
            "ZENITH_SHARD_FROM_NONE",
            options::ZENITH_SHARD_FROM_NONE.into(),
        ),
        (
            "ZENITH_SHARD_FROM_OPTIONS",
            options::ZENITH_SHARD_FROM_OPTIONS.into(),
        ),
        (
            "ZENITH_SHARD_FROM_TORCH",
            options::ZENITH_SHARD_FROM_TORCH.into(),
        ),
        (
            "ZENITH_SHARD_FROM_SLURM",
            options::ZENITH_SHARD_FROM_SLURM.into(),
        ),
        (
            "ZENITH_ERR_OUT_OF_MEMORY",
            status::ZENITH_ERR_OUT_OF_MEMORY.into(),
        ),
        (
            "ZENITH_ERR_EVENT_FAILED",
            status::ZENITH_ERR_EVENT_FAILED.into(),
        ),
        (
            "ZENITH_ALLOC_NO_HUGEPAGES",
            memory::ZENITH_ALLOC_NO_HUGEPAGES.into(),
        ),
        (
            "ZENITH_ALLOC_NO_HUGETLB",
            memory::ZENITH_ALLOC_NO_HUGETLB.into(),
        ),
        (
            "ZENITH_ALLOC_STRICT_NODE",
            memory::ZENITH_ALLOC_STRICT_NODE.into(),
        ),
        (
            "ZENITH_HUGEPAGES_NONE",
            memory::ZENITH_HUGEPAGES_NONE.into(),
        ),
        (
            "ZENITH_HUGEPAGES_TRANSPARENT",
            memory::ZENITH_HUGEPAGES_TRANSPARENT.into(),
        ),
        (
            "ZENITH_HUGEPAGES_EXPLICIT",
            memory::ZENITH_HUGEPAGES_EXPLICIT.into(),
        ),
        (
            "ZENITH_PLACEMENT_NONE",
            memory::ZENITH_PLACEMENT_NONE.into(),
        ),
        (
            "ZENITH_PLACEMENT_PREFERRED",
            memory::ZENITH_PLACEMENT_PREFERRED.into(),
        ),
        (
            "ZENITH_PLACEMENT_BIND",
            memory::ZENITH_PLACEMENT_BIND.into(),
        ),
        (
            "ZENITH_PLACEMENT_FIRST_TOUCH",
            memory::ZENITH_PLACEMENT_FIRST_TOUCH.into(),
        ),
        ("ZENITH_RING_SPSC", ring::ZENITH_RING_SPSC.into()),
        ("ZENITH_RING_MPMC", ring::ZENITH_RING_MPMC.into()),
        ("ZENITH_IO_MMAP", options::ZENITH_IO_MMAP.into()),
        ("ZENITH_IO_URING", options::ZENITH_IO_URING.into()),
        ("ZENITH_IO_PREAD", options::ZENITH_IO_PREAD.into()),
        // GPUs (libzenith/ffi/src/gpu.rs)
        ("ZENITH_ERR_NO_DEVICE", status::ZENITH_ERR_NO_DEVICE.into()),
        ("ZENITH_DEVICE_CPU", gpu::ZENITH_DEVICE_CPU.into()),
        ("ZENITH_DEVICE_CUDA", gpu::ZENITH_DEVICE_CUDA.into()),
        (
            "ZENITH_DEVICE_DEFAULT_SLOTS",
            i64::try_from(gpu::ZENITH_DEVICE_DEFAULT_SLOTS).unwrap(),
        ),
        (
            "ZENITH_GPU_LINK_SAME_DEVICE",
            gpu::ZENITH_GPU_LINK_SAME_DEVICE.into(),
        ),
        ("ZENITH_GPU_LINK_NVLINK", gpu::ZENITH_GPU_LINK_NVLINK.into()),
        (
            "ZENITH_GPU_LINK_PCIE_SWITCH",
            gpu::ZENITH_GPU_LINK_PCIE_SWITCH.into(),
        ),
        (
            "ZENITH_GPU_LINK_PCIE_SWITCHES",
            gpu::ZENITH_GPU_LINK_PCIE_SWITCHES.into(),
        ),
        (
            "ZENITH_GPU_LINK_HOST_BRIDGE",
            gpu::ZENITH_GPU_LINK_HOST_BRIDGE.into(),
        ),
        (
            "ZENITH_GPU_LINK_NUMA_NODE",
            gpu::ZENITH_GPU_LINK_NUMA_NODE.into(),
        ),
        ("ZENITH_GPU_LINK_SYSTEM", gpu::ZENITH_GPU_LINK_SYSTEM.into()),
        (
            "ZENITH_GPU_LINK_UNKNOWN",
            gpu::ZENITH_GPU_LINK_UNKNOWN.into(),
        ),
        // the gang scheduler (libzenith/ffi/src/scheduler)
        (
            "ZENITH_ERR_ALREADY_EXISTS",
            status::ZENITH_ERR_ALREADY_EXISTS.into(),
        ),
        (
            "ZENITH_ERR_INVALID_STATE",
            status::ZENITH_ERR_INVALID_STATE.into(),
        ),
        ("ZENITH_JOB_PENDING", scheduler::ZENITH_JOB_PENDING.into()),
        ("ZENITH_JOB_QUEUED", scheduler::ZENITH_JOB_QUEUED.into()),
        (
            "ZENITH_JOB_SCHEDULED",
            scheduler::ZENITH_JOB_SCHEDULED.into(),
        ),
        ("ZENITH_JOB_RUNNING", scheduler::ZENITH_JOB_RUNNING.into()),
        (
            "ZENITH_JOB_SUSPENDED",
            scheduler::ZENITH_JOB_SUSPENDED.into(),
        ),
        (
            "ZENITH_JOB_COMPLETED",
            scheduler::ZENITH_JOB_COMPLETED.into(),
        ),
        ("ZENITH_JOB_FAILED", scheduler::ZENITH_JOB_FAILED.into()),
        (
            "ZENITH_JOB_CANCELLED",
            scheduler::ZENITH_JOB_CANCELLED.into(),
        ),
        (
            "ZENITH_DECISION_START",
            decisions::ZENITH_DECISION_START.into(),
        ),
        (
            "ZENITH_DECISION_PREEMPT",
            decisions::ZENITH_DECISION_PREEMPT.into(),
        ),
        (
            "ZENITH_DECISION_REQUEUE",
            decisions::ZENITH_DECISION_REQUEUE.into(),
        ),
        (
            "ZENITH_DECISION_FAIL",
            decisions::ZENITH_DECISION_FAIL.into(),
        ),
        ("ZENITH_REASON_NONE", decisions::ZENITH_REASON_NONE.into()),
        (
            "ZENITH_REASON_PREEMPTED",
            decisions::ZENITH_REASON_PREEMPTED.into(),
        ),
        (
            "ZENITH_REASON_NODE_LOST",
            decisions::ZENITH_REASON_NODE_LOST.into(),
        ),
        (
            "ZENITH_REASON_ZOMBIE",
            decisions::ZENITH_REASON_ZOMBIE.into(),
        ),
        (
            "ZENITH_REASON_TIME_LIMIT",
            decisions::ZENITH_REASON_TIME_LIMIT.into(),
        ),
        (
            "ZENITH_REASON_REPORTED",
            decisions::ZENITH_REASON_REPORTED.into(),
        ),
        ("ZENITH_LOCALITY_ANY", job_spec::ZENITH_LOCALITY_ANY.into()),
        (
            "ZENITH_LOCALITY_SAME_NODE",
            job_spec::ZENITH_LOCALITY_SAME_NODE.into(),
        ),
        (
            "ZENITH_LOCALITY_SAME_ISLAND",
            job_spec::ZENITH_LOCALITY_SAME_ISLAND.into(),
        ),
        (
            "ZENITH_LOCALITY_SAME_RACK",
            job_spec::ZENITH_LOCALITY_SAME_RACK.into(),
        ),
        (
            "ZENITH_LOCALITY_SPREAD",
            job_spec::ZENITH_LOCALITY_SPREAD.into(),
        ),
        (
            "ZENITH_JOB_UPDATE_PRIORITY",
            jobs::ZENITH_JOB_UPDATE_PRIORITY.into(),
        ),
        (
            "ZENITH_JOB_UPDATE_PREEMPTIBLE",
            jobs::ZENITH_JOB_UPDATE_PREEMPTIBLE.into(),
        ),
        (
            "ZENITH_JOB_UPDATE_RESTARTABLE",
            jobs::ZENITH_JOB_UPDATE_RESTARTABLE.into(),
        ),
        (
            "ZENITH_JOB_UPDATE_MAX_RUNTIME",
            jobs::ZENITH_JOB_UPDATE_MAX_RUNTIME.into(),
        ),
        (
            "ZENITH_QUEUE_NOMINAL",
            queue_spec::ZENITH_QUEUE_NOMINAL.into(),
        ),
        (
            "ZENITH_QUEUE_BORROWING_LIMIT",
            queue_spec::ZENITH_QUEUE_BORROWING_LIMIT.into(),
        ),
        (
            "ZENITH_QUEUE_LENDING_LIMIT",
            queue_spec::ZENITH_QUEUE_LENDING_LIMIT.into(),
        ),
    ])
}

/// Every `ZENITH_*` macro of the header must be listed in [`rust_constants`] and compared.
fn must_be_checked(name: &str) -> bool {
    name.starts_with("ZENITH_")
}

#[test]
fn header_macros_equal_rust_constants() {
    let rust = rust_constants();
    let header: BTreeMap<&str, i64> = header::MACROS.iter().copied().collect();

    let mut problems = Vec::new();
    for (name, value) in &header {
        match rust.get(name) {
            Some(expected) if expected == value => {}
            Some(expected) => {
                problems.push(format!("{name}: header says {value}, Rust says {expected}"))
            }
            None if must_be_checked(name) => problems.push(format!(
                "{name}: in zenith.h but not listed in tests/abi/tests/constants.rs"
            )),
            None => {}
        }
    }
    for name in rust.keys().filter(|n| !header.contains_key(*n)) {
        problems.push(format!("{name}: a Rust constant missing from zenith.h"));
    }
    assert!(
        problems.is_empty(),
        "macro mismatches:\n{}",
        problems.join("\n")
    );
}

/// The DLPack values libzenith writes into its tensors == the header's canonical macros and
/// enumerators (bindgen names an enumerator `<enum type>_<name>`).
#[test]
fn dlpack_constants_equal_the_headers() {
    use zenith_core::batch::dlpack as dl;
    assert_eq!(bindings::DLPACK_MAJOR_VERSION, dl::DLPACK_MAJOR_VERSION);
    assert_eq!(bindings::DLPACK_MINOR_VERSION, dl::DLPACK_MINOR_VERSION);
    let flags = [
        (
            bindings::DLPACK_FLAG_BITMASK_READ_ONLY,
            dl::DLPACK_FLAG_BITMASK_READ_ONLY,
        ),
        (
            bindings::DLPACK_FLAG_BITMASK_IS_COPIED,
            dl::DLPACK_FLAG_BITMASK_IS_COPIED,
        ),
        (
            bindings::DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED,
            dl::DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED,
        ),
    ];
    for (header, rust) in flags {
        assert_eq!(u64::from(header), rust);
    }
    assert_eq!(
        i64::from(bindings::DLDeviceType_kDLCPU),
        i64::from(dl::DEVICE_TYPE_CPU)
    );
    let codes = [
        (bindings::DLDataTypeCode_kDLInt, dl::TYPE_CODE_INT),
        (bindings::DLDataTypeCode_kDLUInt, dl::TYPE_CODE_UINT),
        (bindings::DLDataTypeCode_kDLFloat, dl::TYPE_CODE_FLOAT),
        (bindings::DLDataTypeCode_kDLBool, dl::TYPE_CODE_BOOL),
    ];
    for (header, rust) in codes {
        assert_eq!(header, u32::from(rust));
    }
}
