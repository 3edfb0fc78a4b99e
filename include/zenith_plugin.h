/*
 * zenith_plugin.h - plugin ABI v1 for Zenith's sandboxed WASM stages.
 *
 * A plugin is a WebAssembly module (wasm32) that imports nothing and exports:
 *
 *   memory                                   its linear memory
 *   uint32_t zn_alloc(uint32_t size, uint32_t align)
 *                                            a block of `size` bytes aligned to `align` (a power
 *                                            of two, 64 for the host's input block), or 0 when
 *                                            out of memory
 *   int32_t zn_transform(const zn_column *in, uint32_t n_in, zn_output *out)
 *                                            transforms one event; 0 on success, any other value
 *                                            fails the event with that status
 *   void zn_reset(void)                      optional: called after each successful event, so a
 *                                            bump allocator can start over
 *   int32_t zn_configure(const uint8_t *config, uint32_t length)
 *                                            optional: called once per instance, before its
 *                                            first event, with the stage's configuration bytes
 *                                            (opaque to the host; NULL and 0 when none was
 *                                            given); 0 accepts them, any other value refuses
 *                                            them and the stage fails to load. The bytes live in
 *                                            a block from zn_alloc that zn_reset frees right
 *                                            after the call: copy what you keep. A plugin
 *                                            without it cannot be given a configuration.
 *
 * Per event the host calls zn_alloc once for one block holding the input descriptors, the
 * zn_output struct, each input buffer (copied once, 64-byte aligned) and each column name; then
 * zn_transform. The plugin may transform buffers in place and return the input descriptors, or
 * allocate new buffers (zn_alloc or its own allocator) and describe them in descriptors of its
 * own. The host checks every output descriptor against guest memory bounds and the Arrow layout
 * (see docs/plugins.md) and copies the output out; a plugin cannot make it read outside its
 * memory or build an invalid array. A trap, running past the time limit, growing memory past the
 * limit or a malformed result fails that event only.
 *
 * Build with clang: clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -Wl,--export-dynamic
 * (see examples/plugins/build.sh).
 */
#ifndef ZENITH_PLUGIN_H
#define ZENITH_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The plugin ABI version this header describes. */
#define ZN_ABI_VERSION 1

/** Column type codes (zn_column.type). */
#define ZN_TYPE_INT8 1
#define ZN_TYPE_INT16 2
#define ZN_TYPE_INT32 3
#define ZN_TYPE_INT64 4
#define ZN_TYPE_UINT8 5
#define ZN_TYPE_UINT16 6
#define ZN_TYPE_UINT32 7
#define ZN_TYPE_UINT64 8
#define ZN_TYPE_FLOAT32 9
#define ZN_TYPE_FLOAT64 10
/** utf8 and binary: int32 offsets, (rows + 1) of them, starting at 0, ending at data_length. */
#define ZN_TYPE_UTF8 11
#define ZN_TYPE_BINARY 12
/** fixed_size_binary: `width` bytes per value. */
#define ZN_TYPE_FIXED_SIZE_BINARY 13

/** A buffer in guest memory: byte offset (a wasm32 address) and length in bytes. */
typedef struct zn_buffer {
    uint32_t offset;
    uint32_t length;
} zn_buffer;

/**
 * One column (56 bytes, little-endian, the same layout on the host and in wasm32).
 *
 * validity: the Arrow validity bitmap (bit i set = row i valid, least significant bit first),
 *           exactly ceil(rows / 8) bytes when null_count > 0, empty (length 0) when it is 0.
 * offsets:  utf8/binary only: (rows + 1) int32 offsets; empty otherwise.
 * data:     values: rows * width bytes for fixed-width types; the bytes the offsets index for
 *           utf8/binary.
 * name:     the field name, UTF-8, not NUL-terminated (at most 4096 bytes).
 */
typedef struct zn_column {
    uint32_t type;
    uint32_t width;
    uint64_t rows;
    uint64_t null_count;
    zn_buffer validity;
    zn_buffer offsets;
    zn_buffer data;
    zn_buffer name;
} zn_column;

/**
 * The output of zn_transform (16 bytes). The host sets schema_fingerprint (a 64-bit hash of the
 * input's field names and types: equal fingerprints, equal schemas) and zeroes the rest; the
 * plugin sets n_columns and columns (the guest address of its zn_column array; it may be the
 * input array). Every output column must have the same number of rows; at most 4096 columns.
 */
typedef struct zn_output {
    uint64_t schema_fingerprint;
    uint32_t n_columns;
    uint32_t columns;
} zn_output;

#if defined(__wasm32__)
_Static_assert(sizeof(zn_column) == 56, "zn_column is 56 bytes");
_Static_assert(sizeof(zn_output) == 16, "zn_output is 16 bytes");
/** A guest pointer from a zn_buffer offset. */
#define ZN_PTR(type, buffer) ((type *)(uintptr_t)(buffer).offset)
/** Marks a function as a module export. */
#define ZN_EXPORT(name) __attribute__((export_name(#name)))
#endif

#ifdef __cplusplus
}
#endif

#endif /* ZENITH_PLUGIN_H */
