/*
 * A bump allocator for plugins built without a libc: zn_alloc hands out blocks from the end of
 * the module's data (__heap_base, placed by wasm-ld), growing memory as needed; zn_reset (called
 * by the host after each event) starts over. Include it in exactly one .c file.
 */
#ifndef ZN_ALLOC_H
#define ZN_ALLOC_H

#include "zenith_plugin.h"

extern unsigned char __heap_base;
static uintptr_t zn_heap_top;

ZN_EXPORT(zn_alloc) uint32_t zn_alloc(uint32_t size, uint32_t align) {
    if (align == 0 || (align & (align - 1)) != 0) return 0;
    if (zn_heap_top == 0) zn_heap_top = (uintptr_t)&__heap_base;
    uintptr_t start = (zn_heap_top + align - 1) & ~(uintptr_t)(align - 1);
    if (start < zn_heap_top || start + size < start) return 0;
    uintptr_t end = start + size;
    uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        uintptr_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (uintptr_t)-1) return 0;
    }
    zn_heap_top = end;
    return (uint32_t)start;
}

ZN_EXPORT(zn_reset) void zn_reset(void) { zn_heap_top = (uintptr_t)&__heap_base; }

#endif
