/*
 * hostile: a test plugin that misbehaves on request. The first value of the first column (a
 * float64) picks what it does with the event:
 *   -1  traps (unreachable)            -2  spins forever (until the time limit)
 *   -3  grows memory until refused, then traps      -4  returns status 7
 *   -5  describes an output buffer outside its memory (a malformed result)
 *   anything else: passes the event through unchanged.
 * Built by bindings/python/tests/test_engine.py with clang --target=wasm32 (no libc).
 */
#include "zenith_plugin.h"
#include "zn_alloc.h"

static volatile uint32_t sink;

ZN_EXPORT(zn_transform) int32_t zn_transform(zn_column *in, uint32_t n_in, zn_output *out) {
    double first = 0;
    if (n_in > 0 && in[0].type == ZN_TYPE_FLOAT64 && in[0].rows > 0) first = ZN_PTR(double, in[0].data)[0];
    if (first == -1) __builtin_trap();
    if (first == -2) for (;;) sink++;
    if (first == -3) for (;;) if (__builtin_wasm_memory_grow(0, 16) == (uintptr_t)-1) __builtin_trap();
    if (first == -4) return 7;
    if (first == -5) in[0].data.offset = 0xFFFFFF00u;
    out->n_columns = n_in;
    out->columns = (uint32_t)(uintptr_t)in;
    return 0;
}
