/*
 * The C compiler's view of the public structs of zenith.h: sizeof, _Alignof and the offsetof of
 * every field, as a table the Rust tests read (tests/abi/src/lib.rs, `c_layout`).
 *
 * The tests fail when bindgen sees a struct or field this table lacks, so a new public struct
 * in the header needs its rows added here: SIZE_ALIGN once, then FIELD for each field.
 */

#include <stddef.h>

#include "zenith.h"

/* One fact about one struct: `what` is "sizeof", "alignof" or a field name (its offset). Neither
 * keyword can be a field name, so the rows never collide. */
struct abi_layout_row {
    const char *type;
    const char *what;
    size_t value;
};

/* The Arrow structs are declared with tags only; name them like the typedef'd zenith_* structs
 * (cbindgen's style = "type") so one set of macros serves both. */
typedef struct ArrowSchema ArrowSchema;
typedef struct ArrowArray ArrowArray;
typedef struct ArrowArrayStream ArrowArrayStream;
typedef struct ArrowDeviceArray ArrowDeviceArray;
typedef struct ArrowDeviceArrayStream ArrowDeviceArrayStream;

#define SIZE_ALIGN(T) {#T, "sizeof", sizeof(T)}, {#T, "alignof", _Alignof(T)}
#define FIELD(T, f) {#T, #f, offsetof(T, f)}

static const struct abi_layout_row ROWS[] = {
    SIZE_ALIGN(ArrowSchema),
    FIELD(ArrowSchema, format),
    FIELD(ArrowSchema, name),
    FIELD(ArrowSchema, metadata),
    FIELD(ArrowSchema, flags),
    FIELD(ArrowSchema, n_children),
    FIELD(ArrowSchema, children),
    FIELD(ArrowSchema, dictionary),
    FIELD(ArrowSchema, release),
    FIELD(ArrowSchema, private_data),

    SIZE_ALIGN(ArrowArray),
    FIELD(ArrowArray, length),
    FIELD(ArrowArray, null_count),
    FIELD(ArrowArray, offset),
    FIELD(ArrowArray, n_buffers),
    FIELD(ArrowArray, n_children),
    FIELD(ArrowArray, buffers),
    FIELD(ArrowArray, children),
    FIELD(ArrowArray, dictionary),
    FIELD(ArrowArray, release),
    FIELD(ArrowArray, private_data),

    SIZE_ALIGN(ArrowArrayStream),
    FIELD(ArrowArrayStream, get_schema),
    FIELD(ArrowArrayStream, get_next),
    FIELD(ArrowArrayStream, get_last_error),
    FIELD(ArrowArrayStream, release),
    FIELD(ArrowArrayStream, private_data),

    SIZE_ALIGN(zenith_stats),
    FIELD(zenith_stats, struct_size),
    FIELD(zenith_stats, rows),
    FIELD(zenith_stats, batches),
    FIELD(zenith_stats, bytes),
    FIELD(zenith_stats, time_to_first_batch_ns),
    FIELD(zenith_stats, consumer_wait_ns),
    FIELD(zenith_stats, worker_busy_ns),
    FIELD(zenith_stats, decode_ns),
    FIELD(zenith_stats, chunks_decoded),
    FIELD(zenith_stats, queue_depth),
    FIELD(zenith_stats, epoch),
    FIELD(zenith_stats, batches_per_epoch),
    FIELD(zenith_stats, shuffle_mode),
    FIELD(zenith_stats, num_workers),
    FIELD(zenith_stats, io_backend),
    FIELD(zenith_stats, io_backend_requested),
    FIELD(zenith_stats, io_read_bytes),
    FIELD(zenith_stats, io_read_ns),
    FIELD(zenith_stats, numa_node),
    FIELD(zenith_stats, pinned_workers),
    FIELD(zenith_stats, rank),
    FIELD(zenith_stats, world_size),
    FIELD(zenith_stats, shard_source),
    FIELD(zenith_stats, shuffle_requested),
    FIELD(zenith_stats, memory_budget),
    FIELD(zenith_stats, decoded_bytes),
    FIELD(zenith_stats, device_bytes_copied),
    FIELD(zenith_stats, device_copies),
    FIELD(zenith_stats, device_copy_ns),
    FIELD(zenith_stats, device_consumer_wait_ns),
    FIELD(zenith_stats, device_consumer_waits),
    FIELD(zenith_stats, device_staging_waits),
    FIELD(zenith_stats, device_memory_waits),

    SIZE_ALIGN(zenith_numa_node_info),
    FIELD(zenith_numa_node_info, struct_size),
    FIELD(zenith_numa_node_info, id),
    FIELD(zenith_numa_node_info, num_cpus),
    FIELD(zenith_numa_node_info, memory_total_bytes),
    FIELD(zenith_numa_node_info, memory_free_bytes),
    FIELD(zenith_numa_node_info, hugepages_2m_total),
    FIELD(zenith_numa_node_info, hugepages_2m_free),
    FIELD(zenith_numa_node_info, hugepages_1g_total),
    FIELD(zenith_numa_node_info, hugepages_1g_free),

    SIZE_ALIGN(zenith_pci_device_info),
    FIELD(zenith_pci_device_info, struct_size),
    FIELD(zenith_pci_device_info, pci_address),
    FIELD(zenith_pci_device_info, vendor_id),
    FIELD(zenith_pci_device_info, device_id),
    FIELD(zenith_pci_device_info, class_code),
    FIELD(zenith_pci_device_info, numa_node),
    SIZE_ALIGN(zenith_scheduler_stats),
    FIELD(zenith_scheduler_stats, struct_size),
    FIELD(zenith_scheduler_stats, jobs),
    FIELD(zenith_scheduler_stats, allocation_success_total),
    FIELD(zenith_scheduler_stats, preemptions_total),
    FIELD(zenith_scheduler_stats, requeues_total),
    FIELD(zenith_scheduler_stats, passes_total),
    FIELD(zenith_scheduler_stats, decisions_total),
    FIELD(zenith_scheduler_stats, gpus_total),
    FIELD(zenith_scheduler_stats, gpu_free_milli),
    FIELD(zenith_scheduler_stats, restored_records),
    FIELD(zenith_scheduler_stats, now_ms),

    SIZE_ALIGN(zenith_scheduler_decision),
    FIELD(zenith_scheduler_decision, struct_size),
    FIELD(zenith_scheduler_decision, kind),
    FIELD(zenith_scheduler_decision, reason),
    FIELD(zenith_scheduler_decision, job),
    FIELD(zenith_scheduler_decision, by),
    FIELD(zenith_scheduler_decision, members),

    SIZE_ALIGN(zenith_scheduler_member),
    FIELD(zenith_scheduler_member, struct_size),
    FIELD(zenith_scheduler_member, node_id),
    FIELD(zenith_scheduler_member, node_name),
    FIELD(zenith_scheduler_member, gpus),

    SIZE_ALIGN(zenith_gpu_device_info),
    FIELD(zenith_gpu_device_info, struct_size),
    FIELD(zenith_gpu_device_info, ordinal),
    FIELD(zenith_gpu_device_info, compute_capability_major),
    FIELD(zenith_gpu_device_info, compute_capability_minor),
    FIELD(zenith_gpu_device_info, sm_count),
    FIELD(zenith_gpu_device_info, name),
    FIELD(zenith_gpu_device_info, uuid),
    FIELD(zenith_gpu_device_info, pci_address),
    FIELD(zenith_gpu_device_info, memory_total_bytes),
    FIELD(zenith_gpu_device_info, memory_free_bytes),
    FIELD(zenith_gpu_device_info, numa_node),
    FIELD(zenith_gpu_device_info, num_affinity_cpus),

    SIZE_ALIGN(ArrowDeviceArray),
    FIELD(ArrowDeviceArray, array),
    FIELD(ArrowDeviceArray, device_id),
    FIELD(ArrowDeviceArray, device_type),
    FIELD(ArrowDeviceArray, sync_event),
    FIELD(ArrowDeviceArray, reserved),

    SIZE_ALIGN(ArrowDeviceArrayStream),
    FIELD(ArrowDeviceArrayStream, device_type),
    FIELD(ArrowDeviceArrayStream, get_schema),
    FIELD(ArrowDeviceArrayStream, get_next),
    FIELD(ArrowDeviceArrayStream, get_last_error),
    FIELD(ArrowDeviceArrayStream, release),
    FIELD(ArrowDeviceArrayStream, private_data),
    /* DLPack: typedef'd structs in the header, named as they are. */
    SIZE_ALIGN(DLPackVersion),
    FIELD(DLPackVersion, major),
    FIELD(DLPackVersion, minor),

    SIZE_ALIGN(DLDevice),
    FIELD(DLDevice, device_type),
    FIELD(DLDevice, device_id),

    SIZE_ALIGN(DLDataType),
    FIELD(DLDataType, code),
    FIELD(DLDataType, bits),
    FIELD(DLDataType, lanes),

    SIZE_ALIGN(DLTensor),
    FIELD(DLTensor, data),
    FIELD(DLTensor, device),
    FIELD(DLTensor, ndim),
    FIELD(DLTensor, dtype),
    FIELD(DLTensor, shape),
    FIELD(DLTensor, strides),
    FIELD(DLTensor, byte_offset),

    SIZE_ALIGN(DLManagedTensor),
    FIELD(DLManagedTensor, dl_tensor),
    FIELD(DLManagedTensor, manager_ctx),
    FIELD(DLManagedTensor, deleter),

    SIZE_ALIGN(DLManagedTensorVersioned),
    FIELD(DLManagedTensorVersioned, version),
    FIELD(DLManagedTensorVersioned, manager_ctx),
    FIELD(DLManagedTensorVersioned, deleter),
    FIELD(DLManagedTensorVersioned, flags),
    FIELD(DLManagedTensorVersioned, dl_tensor),
};

/* Returns the table and writes its length to *len. */
const struct abi_layout_row *abi_layout_rows(size_t *len) {
    *len = sizeof(ROWS) / sizeof(ROWS[0]);
    return ROWS;
}
