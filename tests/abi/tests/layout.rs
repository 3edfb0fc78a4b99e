//! Struct layouts: the C compiler (ground truth) == bindgen's types == the Rust types libzenith
//! passes across the boundary.

use std::collections::BTreeMap;
use std::mem::{align_of, size_of};

use zenith_abi_check::{LayoutRow, bindings, c_layout, header};

/// Rows keyed by `(type, what)`, so two tables compare entry by entry.
fn by_key(rows: &[LayoutRow]) -> BTreeMap<(&'static str, &'static str), usize> {
    let map: BTreeMap<_, _> = rows
        .iter()
        .map(|r| ((r.type_name, r.what), r.value))
        .collect();
    assert_eq!(map.len(), rows.len(), "duplicate layout rows in {rows:#?}");
    map
}

#[test]
fn c_helper_and_bindgen_agree_on_every_struct_and_field() {
    let c = by_key(&c_layout());
    let rust = by_key(header::LAYOUT);
    assert!(!rust.is_empty(), "bindgen saw no struct in zenith.h");

    let mut problems = Vec::new();
    for (key, rust_value) in &rust {
        match c.get(key) {
            Some(c_value) if c_value == rust_value => {}
            Some(c_value) => problems.push(format!(
                "{}.{}: C says {c_value}, bindgen's Rust type says {rust_value}",
                key.0, key.1
            )),
            None => problems.push(format!(
                "{}.{}: seen by bindgen but not reported by tests/abi/c/layout.c (add it there)",
                key.0, key.1
            )),
        }
    }
    for key in c.keys().filter(|k| !rust.contains_key(*k)) {
        problems.push(format!(
            "{}.{}: reported by tests/abi/c/layout.c but not in bindgen's view of zenith.h",
            key.0, key.1
        ));
    }
    assert!(
        problems.is_empty(),
        "layout mismatches:\n{}",
        problems.join("\n")
    );
}

/// The arrow FFI structs' fields are private, so only size and alignment are comparable; the
/// previous test already ties every field offset of the header's structs to the C compiler.
fn assert_same_size_align<Header, Used>(name: &str) {
    assert_eq!(
        (size_of::<Header>(), align_of::<Header>()),
        (size_of::<Used>(), align_of::<Used>()),
        "{name}: (size, align) of the header's struct vs {}",
        std::any::type_name::<Used>()
    );
}

#[test]
fn arrow_ffi_types_used_by_libzenith_match_the_header() {
    assert_same_size_align::<bindings::ArrowSchema, arrow_schema::ffi::FFI_ArrowSchema>(
        "ArrowSchema",
    );
    assert_same_size_align::<bindings::ArrowArray, arrow_data::ffi::FFI_ArrowArray>("ArrowArray");
    assert_same_size_align::<
        bindings::ArrowArrayStream,
        arrow_array::ffi_stream::FFI_ArrowArrayStream,
    >("ArrowArrayStream");
}

/// Compares one of libzenith's `#[repr(C)]` DLPack mirrors with the header's struct: size,
/// alignment and the offset of every field, and checks that the list of fields is the header's
/// (as bindgen saw it, in declaration order), so a field added to either side is noticed.
macro_rules! assert_same_layout {
    ($name:literal, $header:ty, $rust:ty, [$($field:ident),* $(,)?]) => {{
        assert_eq!(
            (size_of::<$header>(), align_of::<$header>()),
            (size_of::<$rust>(), align_of::<$rust>()),
            "{}: (size, align) of the header's struct vs {}",
            $name,
            std::any::type_name::<$rust>()
        );
        $(
            assert_eq!(
                std::mem::offset_of!($header, $field),
                std::mem::offset_of!($rust, $field),
                "{}.{}: offset in the header's struct vs {}",
                $name,
                stringify!($field),
                std::any::type_name::<$rust>()
            );
        )*
        let in_header: Vec<&str> = header::LAYOUT
            .iter()
            .filter(|r| r.type_name == $name && r.what != "sizeof" && r.what != "alignof")
            .map(|r| r.what)
            .collect();
        assert_eq!(in_header, [$(stringify!($field)),*], "{}: fields", $name);
    }};
}

#[test]
fn dlpack_types_of_libzenith_match_the_header() {
    use zenith_core::batch::dlpack as dl;
    assert_same_layout!(
        "DLPackVersion",
        bindings::DLPackVersion,
        dl::DLPackVersion,
        [major, minor]
    );
    assert_same_layout!(
        "DLDevice",
        bindings::DLDevice,
        dl::DLDevice,
        [device_type, device_id]
    );
    assert_same_layout!(
        "DLDataType",
        bindings::DLDataType,
        dl::DLDataType,
        [code, bits, lanes]
    );
    assert_same_layout!(
        "DLTensor",
        bindings::DLTensor,
        dl::DLTensor,
        [data, device, ndim, dtype, shape, strides, byte_offset]
    );
    assert_same_layout!(
        "DLManagedTensor",
        bindings::DLManagedTensor,
        dl::DLManagedTensor,
        [dl_tensor, manager_ctx, deleter]
    );
    assert_same_layout!(
        "DLManagedTensorVersioned",
        bindings::DLManagedTensorVersioned,
        dl::DLManagedTensorVersioned,
        [version, manager_ctx, deleter, flags, dl_tensor]
    );
}

#[test]
fn zenith_structs_match_libzenith_field_by_field() {
    use std::mem::offset_of;
    use zenith::loader::zenith_stats as Rust;
    assert_same_size_align::<bindings::zenith_stats, Rust>("zenith_stats");
    macro_rules! same_offsets {
        ($($field:ident),*) => {$(
            assert_eq!(
                offset_of!(bindings::zenith_stats, $field),
                offset_of!(Rust, $field),
                concat!("zenith_stats.", stringify!($field))
            );
        )*};
    }
    same_offsets!(
        struct_size,
        rows,
        batches,
        bytes,
        time_to_first_batch_ns,
        consumer_wait_ns,
        worker_busy_ns,
        decode_ns,
        chunks_decoded,
        queue_depth,
        epoch,
        batches_per_epoch,
        shuffle_mode,
        num_workers,
        numa_node,
        pinned_workers,
        io_backend,
        io_backend_requested,
        io_read_bytes,
        io_read_ns,
        rank,
        world_size,
        shard_source,
        shuffle_requested,
        memory_budget,
        decoded_bytes,
        device_bytes_copied,
        device_copies,
        device_copy_ns,
        device_consumer_wait_ns,
        device_consumer_waits,
        device_staging_waits,
        device_memory_waits
    );
}

#[test]
fn topology_structs_match_libzenith_field_by_field() {
    use zenith::topology as t;
    assert_same_layout!(
        "zenith_numa_node_info",
        bindings::zenith_numa_node_info,
        t::zenith_numa_node_info,
        [
            struct_size,
            id,
            num_cpus,
            memory_total_bytes,
            memory_free_bytes,
            hugepages_2m_total,
            hugepages_2m_free,
            hugepages_1g_total,
            hugepages_1g_free
        ]
    );
    assert_same_layout!(
        "zenith_pci_device_info",
        bindings::zenith_pci_device_info,
        t::zenith_pci_device_info,
        [
            struct_size,
            pci_address,
            vendor_id,
            device_id,
            class_code,
            numa_node
        ]
    );
}

#[test]
fn scheduler_structs_match_libzenith_field_by_field() {
    use zenith::scheduler::{decisions as d, handle as h};
    assert_same_layout!(
        "zenith_scheduler_stats",
        bindings::zenith_scheduler_stats,
        h::zenith_scheduler_stats,
        [
            struct_size,
            jobs,
            allocation_success_total,
            preemptions_total,
            requeues_total,
            passes_total,
            decisions_total,
            gpus_total,
            gpu_free_milli,
            restored_records,
            now_ms
        ]
    );
    assert_same_layout!(
        "zenith_scheduler_decision",
        bindings::zenith_scheduler_decision,
        d::zenith_scheduler_decision,
        [struct_size, kind, reason, job, by, members]
    );
    assert_same_layout!(
        "zenith_scheduler_member",
        bindings::zenith_scheduler_member,
        d::zenith_scheduler_member,
        [struct_size, node_id, node_name, gpus]
    );
}

#[test]
fn gpu_and_arrow_device_structs_match_libzenith_field_by_field() {
    use zenith::gpu as g;
    assert_same_layout!(
        "zenith_gpu_device_info",
        bindings::zenith_gpu_device_info,
        g::zenith_gpu_device_info,
        [
            struct_size,
            ordinal,
            compute_capability_major,
            compute_capability_minor,
            sm_count,
            name,
            uuid,
            pci_address,
            memory_total_bytes,
            memory_free_bytes,
            numa_node,
            num_affinity_cpus
        ]
    );
    assert_same_layout!(
        "ArrowDeviceArray",
        bindings::ArrowDeviceArray,
        g::ArrowDeviceArray,
        [array, device_id, device_type, sync_event, reserved]
    );
    assert_same_layout!(
        "ArrowDeviceArrayStream",
        bindings::ArrowDeviceArrayStream,
        g::ArrowDeviceArrayStream,
        [
            device_type,
            get_schema,
            get_next,
            get_last_error,
            release,
            private_data
        ]
    );
}

#[test]
fn every_public_struct_is_checked_against_the_rust_side() {
    // The tests above name each struct by hand; fail when the header gains one they do not.
    let checked = [
        "ArrowArray",
        "ArrowArrayStream",
        "ArrowSchema",
        "zenith_stats",
        "zenith_numa_node_info",
        "zenith_pci_device_info",
        "zenith_scheduler_stats",
        "zenith_scheduler_decision",
        "zenith_scheduler_member",
        "zenith_gpu_device_info",
        "ArrowDeviceArray",
        "ArrowDeviceArrayStream",
        "DLDataType",
        "DLDevice",
        "DLManagedTensor",
        "DLManagedTensorVersioned",
        "DLPackVersion",
        "DLTensor",
    ];
    let in_header: Vec<_> = by_key(header::LAYOUT).keys().map(|k| k.0).collect();
    for name in in_header {
        assert!(
            checked.contains(&name),
            "struct {name} is in zenith.h but tests/abi/tests/layout.rs does not compare it \
             with the Rust type libzenith uses for it"
        );
    }
}
