/*
 * image_resize: bilinear resize of square RGB images (a fixed_size_binary column of
 * side * side * 3 bytes, HWC uint8) to ZN_RESIZE_SIDE x ZN_RESIZE_SIDE (default 32, set with
 * -DZN_RESIZE_SIDE=N when building). Half-pixel centres (src = (dst + 0.5) * in / out - 0.5,
 * clamped to the image), rounded to nearest. Other columns pass through; every
 * fixed_size_binary column must hold square RGB images (status 2 otherwise). Nulls stay null
 * (their pixels are resized too and mean nothing).
 */
#include "zenith_plugin.h"
#include "zn_alloc.h"

#ifndef ZN_RESIZE_SIDE
#define ZN_RESIZE_SIDE 32
#endif

static uint32_t side_of(uint32_t bytes) {
    uint32_t side = 0;
    while ((uint64_t)(side + 1) * (side + 1) * 3 <= bytes) side++;
    return (uint64_t)side * side * 3 == bytes ? side : 0;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static void resize(const uint8_t *src, uint32_t in, uint8_t *dst, uint32_t out) {
    float scale = (float)in / (float)out;
    for (uint32_t y = 0; y < out; y++) {
        float sy = clampf(((float)y + 0.5f) * scale - 0.5f, 0.0f, (float)(in - 1));
        uint32_t y0 = (uint32_t)sy, y1 = y0 + 1 < in ? y0 + 1 : y0;
        float fy = sy - (float)y0;
        for (uint32_t x = 0; x < out; x++) {
            float sx = clampf(((float)x + 0.5f) * scale - 0.5f, 0.0f, (float)(in - 1));
            uint32_t x0 = (uint32_t)sx, x1 = x0 + 1 < in ? x0 + 1 : x0;
            float fx = sx - (float)x0;
            for (uint32_t ch = 0; ch < 3; ch++) {
                float a = src[(y0 * in + x0) * 3 + ch], b = src[(y0 * in + x1) * 3 + ch];
                float c = src[(y1 * in + x0) * 3 + ch], d = src[(y1 * in + x1) * 3 + ch];
                float top = a + (b - a) * fx, bottom = c + (d - c) * fx;
                float v = top + (bottom - top) * fy;
                dst[(y * out + x) * 3 + ch] = (uint8_t)(clampf(v, 0.0f, 255.0f) + 0.5f);
            }
        }
    }
}

ZN_EXPORT(zn_transform) int32_t zn_transform(zn_column *in, uint32_t n_in, zn_output *out) {
    zn_column *cols = (zn_column *)(uintptr_t)zn_alloc(n_in * sizeof(zn_column), 8);
    if (n_in && !cols) return 1;
    const uint32_t side_out = ZN_RESIZE_SIDE, bytes_out = side_out * side_out * 3;
    for (uint32_t k = 0; k < n_in; k++) {
        cols[k] = in[k];
        if (in[k].type != ZN_TYPE_FIXED_SIZE_BINARY) continue;
        uint32_t side_in = side_of(in[k].width);
        if (side_in == 0) return 2;
        uint64_t total = in[k].rows * bytes_out;
        if (total > 0xffffffffu) return 1;
        uint8_t *dst = (uint8_t *)(uintptr_t)zn_alloc((uint32_t)total, 64);
        if (total && !dst) return 1;
        const uint8_t *src = ZN_PTR(const uint8_t, in[k].data);
        for (uint64_t r = 0; r < in[k].rows; r++)
            resize(src + r * in[k].width, side_in, dst + r * bytes_out, side_out);
        cols[k].width = bytes_out;
        cols[k].data.offset = (uint32_t)(uintptr_t)dst;
        cols[k].data.length = (uint32_t)total;
    }
    out->n_columns = n_in;
    out->columns = (uint32_t)(uintptr_t)cols;
    return 0;
}
