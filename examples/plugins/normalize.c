/*
 * normalize: (x - mean) / std on every float32 and float64 column, in place; other columns pass
 * through. Mean and (population) standard deviation are over the valid values; nulls stay null.
 * A column whose values are all equal becomes NaN (0 / 0), as numpy's formula gives.
 *
 * Configuration (optional, zn_configure): two little-endian float64, a fixed mean and standard
 * deviation used for every batch instead of each batch's own (dataset statistics computed once).
 * Any other length, or a standard deviation that is not positive, is refused.
 */
#include "zenith_plugin.h"
#include "zn_alloc.h"

static int valid(const zn_column *c, uint64_t row) {
    if (c->null_count == 0) return 1;
    const uint8_t *bits = ZN_PTR(const uint8_t, c->validity);
    return (bits[row >> 3] >> (row & 7)) & 1;
}

static int fixed;               /* configured: use fixed_mean and fixed_std */
static double fixed_mean, fixed_std;

ZN_EXPORT(zn_configure) int32_t zn_configure(const uint8_t *config, uint32_t length) {
    if (length == 0) return 0; /* no configuration: each batch's own statistics */
    if (length != 2 * sizeof(double)) return 1;
    double values[2];
    __builtin_memcpy(values, config, sizeof values);
    if (!(values[1] > 0)) return 2; /* also refuses NaN */
    fixed = 1;
    fixed_mean = values[0];
    fixed_std = values[1];
    return 0;
}

#define NORMALIZE(T)                                                              \
    do {                                                                          \
        T *x = ZN_PTR(T, c->data);                                                \
        if (fixed) {                                                              \
            for (uint64_t i = 0; i < c->rows; i++)                                \
                if (valid(c, i)) x[i] = (T)((x[i] - fixed_mean) / fixed_std);     \
            break;                                                                \
        }                                                                         \
        double sum = 0, count = 0;                                                \
        for (uint64_t i = 0; i < c->rows; i++)                                    \
            if (valid(c, i)) { sum += x[i]; count += 1; }                         \
        if (count == 0) break;                                                    \
        double mean = sum / count, squares = 0;                                   \
        for (uint64_t i = 0; i < c->rows; i++)                                    \
            if (valid(c, i)) { double d = x[i] - mean; squares += d * d; }        \
        double std = __builtin_sqrt(squares / count);                             \
        for (uint64_t i = 0; i < c->rows; i++)                                    \
            if (valid(c, i)) x[i] = (T)((x[i] - mean) / std);                     \
    } while (0)

ZN_EXPORT(zn_transform) int32_t zn_transform(zn_column *in, uint32_t n_in, zn_output *out) {
    for (uint32_t k = 0; k < n_in; k++) {
        zn_column *c = &in[k];
        if (c->type == ZN_TYPE_FLOAT64) NORMALIZE(double);
        else if (c->type == ZN_TYPE_FLOAT32) NORMALIZE(float);
    }
    out->n_columns = n_in;
    out->columns = (uint32_t)(uintptr_t)in;
    return 0;
}
