/*
 * test_batch_pool.c — gathered batches live in pooled buffers that return to the pool when the
 * consumer releases the exported Arrow array. Holding arrays across epochs and releasing them out
 * of order must never let the pool hand a buffer still in use to a new batch: every held array
 * keeps the values of its rows, and valgrind (tests/c/run.sh) sees no invalid access or leak.
 * Freed large decode buffers are kept by the library's block cache until trimmed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zenith.h>

#include "check.h"

#define ROWS 10000
#define HELD 64

static const char *basic_path(void) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/basic.arrow", dir ? dir : "tests/data/generated");
    return buffer;
}

static bool bit(const void *bitmap, int64_t i) {
    return bitmap == NULL || (((const uint8_t *)bitmap)[i >> 3] >> (i & 7)) & 1;
}

/* Whether every row of `array` (basic.arrow's columns) holds the values of its id. */
static bool rows_intact(const struct ArrowArray *array) {
    const struct ArrowArray *id = array->children[0];
    const struct ArrowArray *label = array->children[1];
    const struct ArrowArray *name = array->children[3];
    const int64_t *ids = (const int64_t *)id->buffers[1] + id->offset;
    const int32_t *labels = (const int32_t *)label->buffers[1] + label->offset;
    const int32_t *offsets = (const int32_t *)name->buffers[1] + name->offset;
    const char *chars = (const char *)name->buffers[2];
    for (int64_t i = 0; i < array->length; i++) {
        int64_t row = ids[i];
        if (row < 0 || row >= ROWS || labels[i] != row % 10) return false;
        bool valid = bit(name->buffers[0], name->offset + i);
        if (valid != (row % 7 != 3)) return false;
        if (valid) {
            char expected[32];
            int len = snprintf(expected, sizeof expected, "row-%lld", (long long)row);
            if (offsets[i + 1] - offsets[i] != len ||
                memcmp(chars + offsets[i], expected, (size_t)len) != 0) {
                return false;
            }
        }
    }
    return true;
}

static void test_held_arrays_survive_epochs_and_out_of_order_releases(void) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 97, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_GLOBAL, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_num_workers(opts, 2, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_OK);
    zenith_loader_options_free(opts);

    struct ArrowArray held[HELD];
    size_t count = 0;
    uint64_t state = 0x9e3779b97f4a7c15ull;
    int64_t broken = 0, delivered = 0;
    for (uint64_t epoch = 0; epoch < 3; epoch++) {
        CHECK_EQ_INT(zenith_loader_set_epoch(loader, epoch, &err), ZENITH_OK);
        struct ArrowArray array;
        while (zenith_loader_next(loader, &array, NULL, &err) == ZENITH_OK) {
            delivered += array.length;
            broken += !rows_intact(&array);
            if (count == HELD) {
                /* Full: release a pseudo-random held array (out of order). */
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                size_t victim = (size_t)(state >> 33) % HELD;
                held[victim].release(&held[victim]);
                held[victim] = held[--count];
            }
            held[count++] = array;
        }
        for (size_t i = 0; i < count; i++) broken += !rows_intact(&held[i]);
    }
    CHECK_EQ_INT(delivered, 3 * ROWS);
    /* The loader goes first; the arrays it delivered stay valid until released. */
    zenith_loader_free(loader);
    for (size_t i = 0; i < count; i++) {
        broken += !rows_intact(&held[i]);
        held[i].release(&held[i]);
    }
    CHECK_EQ_INT(broken, 0);
}

static const char *large_csv_path(void) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/large.csv", dir ? dir : "tests/data/generated");
    return buffer;
}

/* Streams large.csv (chunks decode into buffers of 128 KiB and more) and frees everything. */
static void stream_large_csv(void) {
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_open(large_csv_path(), NULL, &loader, &err), ZENITH_OK);
    struct ArrowArray array;
    int64_t rows = 0;
    while (zenith_loader_next(loader, &array, NULL, &err) == ZENITH_OK) {
        rows += array.length;
        array.release(&array);
    }
    CHECK(rows > 0);
    zenith_loader_free(loader);
}

static void test_freed_decode_buffers_are_kept_until_trimmed(void) {
    zenith_block_cache_trim();
    CHECK_EQ_INT(zenith_block_cache_bytes(), 0);
    stream_large_csv();
    size_t kept = zenith_block_cache_bytes();
    CHECK(kept >= 128 * 1024);
    CHECK_EQ_INT(zenith_block_cache_trim(), kept);
    CHECK_EQ_INT(zenith_block_cache_bytes(), 0);
    /* Limit 0: nothing is kept. */
    zenith_block_cache_set_limit(0);
    stream_large_csv();
    CHECK_EQ_INT(zenith_block_cache_bytes(), 0);
    zenith_block_cache_set_limit((size_t)512 << 20);
}

int main(void) {
    test_held_arrays_survive_epochs_and_out_of_order_releases();
    test_freed_decode_buffers_are_kept_until_trimmed();
    return check_summary("test_batch_pool");
}
