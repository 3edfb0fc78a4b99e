/*
 * test_epochs.c — the loader's options through the C ABI: shuffle, seed, workers, prefetch,
 * shards (padded or dropping the remainder, turned off, reported), columns, drop_last, epochs
 * (up to UINT64_MAX), resume tokens, stats, batch handles, bounded waits, the memory budget of a
 * global shuffle, and freeing a loader whose workers are mid-epoch. Run under valgrind by
 * tests/c/run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zenith.h>

#include "check.h"

#define ROWS 10000

static const char *data_path(const char *name) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/%s", dir ? dir : "tests/data/generated", name);
    return buffer;
}

static const char *basic_path(void) { return data_path("basic.arrow"); }

typedef struct {
    size_t batch_size;
    zenith_shuffle shuffle;
    uint64_t seed;
    size_t workers;
    uint32_t rank, world;
    bool drop_last;
    bool drop_remainder;
    const uint8_t *resume;
    size_t resume_len;
} config;

static config defaults(zenith_shuffle shuffle, size_t workers) {
    config c = {700, shuffle, 42, workers, 0, 1, false, false, NULL, 0};
    return c;
}

static zenith_loader *open_with(const config *c) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, c->batch_size, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, c->shuffle, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_seed(opts, c->seed, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_num_workers(opts, c->workers, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_prefetch(opts, 3, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shard(opts, c->rank, c->world, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_drop_last(opts, c->drop_last, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shard_drop_remainder(opts, c->drop_remainder, &err),
                 ZENITH_OK);
    if (c->resume) {
        CHECK_EQ_INT(zenith_loader_options_set_resume_state(opts, c->resume, c->resume_len, &err),
                     ZENITH_OK);
    }
    zenith_status status = zenith_loader_open(basic_path(), opts, &loader, &err);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "  open: %s\n", zenith_error_message(err));
        zenith_error_free(err);
    }
    zenith_loader_options_free(opts);
    return loader;
}

/* Reads the rest of the epoch through batch handles; writes the ids to ids[] (up to cap) and
 * returns how many. */
static size_t drain_ids(zenith_loader *loader, int64_t *ids, size_t cap) {
    size_t n = 0;
    zenith_error *err = NULL;
    zenith_batch *batch = NULL;
    while (zenith_loader_next_batch(loader, &batch, &err) == ZENITH_OK) {
        struct ArrowArray array;
        CHECK_EQ_INT(zenith_batch_export_arrow(batch, &array, NULL, &err), ZENITH_OK);
        CHECK_EQ_INT((int64_t)zenith_batch_num_rows(batch), array.length);
        zenith_batch_free(batch); /* the export outlives the handle */
        const struct ArrowArray *id = array.children[0];
        const int64_t *values = (const int64_t *)id->buffers[1] + id->offset;
        for (int64_t i = 0; i < id->length && n < cap; i++) ids[n++] = values[i];
        array.release(&array);
    }
    return n;
}

static int compare_ids(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t ids_a[ROWS], ids_b[ROWS];

static void test_order_independent_of_workers(void) {
    const zenith_shuffle modes[] = {ZENITH_SHUFFLE_NONE, ZENITH_SHUFFLE_GLOBAL, ZENITH_SHUFFLE_BLOCK};
    for (int m = 0; m < 3; m++) {
        config c = defaults(modes[m], 0);
        zenith_loader *loader = open_with(&c);
        size_t n = drain_ids(loader, ids_a, ROWS);
        zenith_loader_free(loader);
        CHECK_EQ_INT(n, ROWS);
        c.workers = 3;
        loader = open_with(&c);
        CHECK_EQ_INT(drain_ids(loader, ids_b, ROWS), ROWS);
        zenith_loader_free(loader);
        CHECK(memcmp(ids_a, ids_b, sizeof ids_a) == 0);
        /* Every row exactly once. */
        qsort(ids_b, ROWS, sizeof ids_b[0], compare_ids);
        int64_t bad = 0;
        for (int64_t i = 0; i < ROWS; i++) bad += ids_b[i] != i;
        CHECK_EQ_INT(bad, 0);
    }
}

static void test_epochs_change_the_order(void) {
    config c = defaults(ZENITH_SHUFFLE_GLOBAL, 2);
    zenith_loader *loader = open_with(&c);
    zenith_error *err = NULL;
    drain_ids(loader, ids_a, ROWS);
    CHECK_EQ_INT(zenith_loader_set_epoch(loader, 1, &err), ZENITH_OK);
    CHECK_EQ_INT(drain_ids(loader, ids_b, ROWS), ROWS);
    CHECK(memcmp(ids_a, ids_b, sizeof ids_a) != 0);
    CHECK_EQ_INT(zenith_loader_set_epoch(loader, 0, &err), ZENITH_OK);
    CHECK_EQ_INT(drain_ids(loader, ids_b, ROWS), ROWS);
    CHECK(memcmp(ids_a, ids_b, sizeof ids_a) == 0);
    CHECK_EQ_INT(zenith_loader_set_epoch(NULL, 0, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    zenith_loader_free(loader);
}

static void test_shards(void) {
    /* Dropping the remainder: disjoint ranks of floor(rows / world) rows. */
    static unsigned char seen[ROWS];
    memset(seen, 0, sizeof seen);
    uint64_t batches = 0;
    for (uint32_t rank = 0; rank < 3; rank++) {
        config c = defaults(ZENITH_SHUFFLE_GLOBAL, 1);
        c.rank = rank;
        c.world = 3;
        c.drop_remainder = true;
        zenith_loader *loader = open_with(&c);
        uint64_t per_epoch = zenith_loader_num_batches(loader);
        if (rank == 0) batches = per_epoch;
        CHECK_EQ_INT(per_epoch, batches);
        size_t n = drain_ids(loader, ids_a, ROWS);
        CHECK_EQ_INT(n, ROWS / 3);
        for (size_t i = 0; i < n; i++) CHECK(seen[ids_a[i]]++ == 0);
        zenith_loader_free(loader);
    }
    /* By default the order is padded by wrapping around: ceil(rows / world) rows per rank, every
     * row delivered, only the (world - rows % world) padding rows twice. */
    memset(seen, 0, sizeof seen);
    size_t twice = 0;
    for (uint32_t rank = 0; rank < 3; rank++) {
        config c = defaults(ZENITH_SHUFFLE_GLOBAL, 1);
        c.rank = rank;
        c.world = 3;
        zenith_loader *loader = open_with(&c);
        CHECK_EQ_INT(zenith_loader_num_batches(loader), (ROWS / 3 + 1 + 699) / 700);
        size_t n = drain_ids(loader, ids_a, ROWS);
        CHECK_EQ_INT(n, ROWS / 3 + 1);
        for (size_t i = 0; i < n; i++) twice += seen[ids_a[i]]++ > 0;
        zenith_loader_free(loader);
    }
    CHECK_EQ_INT(twice, 2);
    for (size_t i = 0; i < ROWS; i++) CHECK(seen[i] > 0);
    zenith_loader_options *opts = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shard(opts, 3, 3, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "rank");
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, 7, &err), ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_prefetch(opts, 0, &err), ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    zenith_loader_options_free(opts);
}

static void test_resume(void) {
    config c = defaults(ZENITH_SHUFFLE_BLOCK, 2);
    zenith_loader *loader = open_with(&c);
    size_t full = drain_ids(loader, ids_a, ROWS);
    zenith_loader_free(loader);

    loader = open_with(&c);
    zenith_error *err = NULL;
    zenith_batch *batch = NULL;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(zenith_loader_next_batch(loader, &batch, &err), ZENITH_OK);
        zenith_batch_free(batch);
    }
    size_t len = 0;
    CHECK_EQ_INT(zenith_loader_save_state(loader, NULL, 0, &len, &err), ZENITH_ERR_BUFFER_TOO_SMALL);
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(len, ZENITH_RESUME_STATE_SIZE);
    uint8_t token[ZENITH_RESUME_STATE_SIZE];
    CHECK_EQ_INT(zenith_loader_save_state(loader, token, sizeof token, &len, &err), ZENITH_OK);
    zenith_loader_free(loader);

    c.workers = 0; /* another worker count resumes identically */
    c.resume = token;
    c.resume_len = len;
    loader = open_with(&c);
    size_t rest = drain_ids(loader, ids_b, ROWS);
    zenith_loader_free(loader);
    CHECK_EQ_INT(rest, full - 4 * 700);
    CHECK(memcmp(ids_a + 4 * 700, ids_b, rest * sizeof ids_b[0]) == 0);

    /* A damaged token is refused at the setter; a token for other options at open. */
    zenith_loader_options *opts = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    token[10] ^= 1;
    CHECK_EQ_INT(zenith_loader_options_set_resume_state(opts, token, len, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    err = NULL;
    token[10] ^= 1;
    CHECK_EQ_INT(zenith_loader_options_set_resume_state(opts, token, len, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 64, &err), ZENITH_OK);
    zenith_loader *other = NULL;
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &other, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "does not match");
    CHECK(other == NULL);
    zenith_error_free(err);
    zenith_loader_options_free(opts);
}

static void test_columns_and_stats(void) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    const char *columns[] = {"value", "id"};
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_columns(opts, columns, 2, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_drop_last(opts, true, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 3000, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_OK);
    struct ArrowSchema schema;
    CHECK_EQ_INT(zenith_loader_schema(loader, &schema, &err), ZENITH_OK);
    CHECK_EQ_INT(schema.n_children, 2);
    CHECK(strcmp(schema.children[0]->name, "value") == 0);
    CHECK(strcmp(schema.children[1]->name, "id") == 0);
    schema.release(&schema);
    struct ArrowArray array;
    int64_t rows = 0;
    while (zenith_loader_next(loader, &array, NULL, &err) == ZENITH_OK) {
        CHECK_EQ_INT(array.length, 3000);
        const int64_t *ids = (const int64_t *)array.children[1]->buffers[1] + array.children[1]->offset;
        const double *values = (const double *)array.children[0]->buffers[1] + array.children[0]->offset;
        for (int64_t i = 0; i < array.length; i++) CHECK(values[i] == (double)ids[i] * 0.5);
        rows += array.length;
        array.release(&array);
    }
    CHECK_EQ_INT(rows, 9000);
    zenith_stats stats;
    memset(&stats, 0xff, sizeof stats);
    stats.struct_size = sizeof stats;
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_OK);
    CHECK_EQ_INT(stats.struct_size, sizeof stats);
    CHECK_EQ_INT(stats.rows, 9000);
    CHECK_EQ_INT(stats.batches, 3);
    CHECK_EQ_INT(stats.batches_per_epoch, 3);
    CHECK_EQ_INT(stats.shuffle_mode, ZENITH_SHUFFLE_GLOBAL);
    CHECK(stats.time_to_first_batch_ns > 0);
    CHECK(stats.bytes >= 9000 * 16);
    /* An older, shorter struct gets only the fields it has. */
    struct {
        size_t struct_size;
        uint64_t rows;
        uint64_t guard;
    } old = {sizeof(size_t) + sizeof(uint64_t), 0, 0xabcdef};
    CHECK_EQ_INT(zenith_loader_stats(loader, (zenith_stats *)(void *)&old, &err), ZENITH_OK);
    CHECK_EQ_INT(old.rows, 9000);
    CHECK_EQ_INT(old.guard, 0xabcdef);
    stats.struct_size = 0;
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    zenith_loader_free(loader);

    /* An unknown column fails at open, naming it. */
    err = NULL;
    const char *unknown[] = {"id", "missing_column"};
    CHECK_EQ_INT(zenith_loader_options_set_columns(opts, unknown, 2, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "missing_column");
    zenith_error_free(err);
    err = NULL;
    const char *twice[] = {"id", "id"};
    CHECK_EQ_INT(zenith_loader_options_set_columns(opts, twice, 2, &err), ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    zenith_loader_options_free(opts);
}

/* Sharding is reported (rank, world size, where they came from) and can be turned off; a world
 * larger than the dataset is refused at open. */
static void test_shard_source_and_limits(void) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    zenith_stats stats;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_OK);
    stats.struct_size = sizeof stats;
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_OK);
    /* tests/c/run.sh sets none of RANK, WORLD_SIZE, SLURM_PROCID, SLURM_NTASKS. */
    CHECK_EQ_INT(stats.rank, 0);
    CHECK_EQ_INT(stats.world_size, 1);
    CHECK_EQ_INT(stats.shard_source, ZENITH_SHARD_FROM_NONE);
    CHECK_EQ_INT(stats.shuffle_requested, ZENITH_SHUFFLE_AUTO);
    CHECK_EQ_INT(stats.shuffle_mode, ZENITH_SHUFFLE_GLOBAL);
    CHECK(stats.memory_budget > 0);
    CHECK_EQ_INT(stats.decoded_bytes, 0); /* memory-mapped IPC: nothing to decode */
    zenith_loader_free(loader);

    CHECK_EQ_INT(zenith_loader_options_set_shard(opts, 2, 5, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_OK);
    CHECK_EQ_INT(stats.rank, 2);
    CHECK_EQ_INT(stats.world_size, 5);
    CHECK_EQ_INT(stats.shard_source, ZENITH_SHARD_FROM_OPTIONS);
    zenith_loader_free(loader);

    CHECK_EQ_INT(zenith_loader_options_set_shard_none(opts, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_OK);
    CHECK_EQ_INT(stats.world_size, 1);
    CHECK_EQ_INT(stats.shard_source, ZENITH_SHARD_FROM_OPTIONS);
    zenith_loader_free(loader);
    CHECK_EQ_INT(zenith_loader_options_set_shard_none(NULL, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    err = NULL;

    loader = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_shard(opts, 0, ROWS + 1, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "larger than the dataset");
    CHECK(loader == NULL);
    zenith_error_free(err);
    zenith_loader_options_free(opts);
}

/* An empty column list is an error; (NULL, 0) restores every column. */
static void test_empty_columns(void) {
    zenith_loader_options *opts = NULL;
    zenith_error *err = NULL;
    const char *columns[] = {"id"};
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_columns(opts, columns, 0, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "columns must not be empty");
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_columns(opts, NULL, 0, &err), ZENITH_OK);
    zenith_loader *loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(basic_path(), opts, &loader, &err), ZENITH_OK);
    struct ArrowSchema schema;
    CHECK_EQ_INT(zenith_loader_schema(loader, &schema, &err), ZENITH_OK);
    CHECK(schema.n_children > 1);
    schema.release(&schema);
    zenith_loader_free(loader);
    zenith_loader_options_free(opts);
}

/* The last epoch number runs, and its resume token loads. */
static void test_largest_epoch(void) {
    config c = defaults(ZENITH_SHUFFLE_GLOBAL, 1);
    zenith_loader *loader = open_with(&c);
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_set_epoch(loader, UINT64_MAX, &err), ZENITH_OK);
    zenith_batch *batch = NULL;
    CHECK_EQ_INT(zenith_loader_next_batch(loader, &batch, &err), ZENITH_OK);
    zenith_batch_free(batch);
    uint8_t token[ZENITH_RESUME_STATE_SIZE];
    size_t len = 0;
    CHECK_EQ_INT(zenith_loader_save_state(loader, token, sizeof token, &len, &err), ZENITH_OK);
    size_t rest = drain_ids(loader, ids_a, ROWS);
    zenith_loader_free(loader);
    c.resume = token;
    c.resume_len = len;
    loader = open_with(&c);
    zenith_stats stats;
    stats.struct_size = sizeof stats;
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_OK);
    CHECK(stats.epoch == UINT64_MAX);
    CHECK_EQ_INT(drain_ids(loader, ids_b, ROWS), rest);
    CHECK(memcmp(ids_a, ids_b, rest * sizeof ids_a[0]) == 0);
    zenith_loader_free(loader);
}

/* Bounded waits: ZENITH_WOULD_BLOCK writes and consumes nothing; polling delivers the same
 * batches in the same order. */
static void test_next_timeout(void) {
    config c = defaults(ZENITH_SHUFFLE_GLOBAL, 2);
    zenith_loader *loader = open_with(&c);
    size_t full = drain_ids(loader, ids_a, ROWS);
    zenith_loader_free(loader);

    loader = open_with(&c);
    zenith_error *err = NULL;
    size_t n = 0;
    for (;;) {
        struct ArrowArray array;
        memset(&array, 0xab, sizeof array);
        zenith_status status = zenith_loader_next_timeout(loader, 0, &array, NULL, &err);
        if (status == ZENITH_WOULD_BLOCK) {
            unsigned char untouched[sizeof array];
            memset(untouched, 0xab, sizeof untouched);
            CHECK(memcmp(&array, untouched, sizeof array) == 0);
            continue;
        }
        if (status == ZENITH_DONE) break;
        CHECK_EQ_INT(status, ZENITH_OK);
        if (status != ZENITH_OK) break;
        const struct ArrowArray *id = array.children[0];
        const int64_t *values = (const int64_t *)id->buffers[1] + id->offset;
        for (int64_t i = 0; i < id->length; i++) CHECK(n < ROWS && values[i] == ids_a[n++]);
        array.release(&array);
    }
    CHECK_EQ_INT(n, full);
    zenith_batch *batch = NULL;
    CHECK_EQ_INT(zenith_loader_next_batch_timeout(loader, 100, &batch, &err), ZENITH_DONE);
    CHECK(batch == NULL);
    CHECK_EQ_INT(zenith_loader_set_epoch(loader, 0, &err), ZENITH_OK);
    zenith_status status;
    while ((status = zenith_loader_next_batch_timeout(loader, 1, &batch, &err)) == ZENITH_WOULD_BLOCK) {
    }
    CHECK_EQ_INT(status, ZENITH_OK);
    CHECK_EQ_INT(zenith_batch_num_rows(batch), 700);
    zenith_batch_free(batch);
    CHECK_EQ_INT(zenith_loader_next_batch_timeout(NULL, 1, &batch, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    zenith_loader_free(loader);
    CHECK(strcmp(zenith_status_str(ZENITH_WOULD_BLOCK),
                 "would block (ring full or empty, or no batch ready in time)") == 0);
}

/* A global shuffle asked for explicitly is strict about the memory budget; the default falls
 * back to a block shuffle and says so in the stats. */
static void test_global_shuffle_budget(void) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_memory_budget(opts, 200000, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(data_path("parquet/basic.snappy.parquet"), opts, &loader, &err), ZENITH_OK);
    zenith_stats stats;
    stats.struct_size = sizeof stats;
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, &err), ZENITH_OK);
    CHECK_EQ_INT(stats.shuffle_requested, ZENITH_SHUFFLE_AUTO);
    CHECK_EQ_INT(stats.shuffle_mode, ZENITH_SHUFFLE_BLOCK);
    CHECK_EQ_INT(stats.memory_budget, 200000);
    CHECK(stats.decoded_bytes > 200000);
    zenith_loader_free(loader);

    loader = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_GLOBAL, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(data_path("parquet/basic.snappy.parquet"), opts, &loader, &err),
                 ZENITH_ERR_OUT_OF_MEMORY);
    CHECK(loader == NULL);
    CHECK_STR_CONTAINS(zenith_error_message(err), "memory budget (200000 bytes)");
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_OUT_OF_MEMORY);
    zenith_error_free(err);
    CHECK_STR_CONTAINS(zenith_status_str(ZENITH_ERR_OUT_OF_MEMORY), "out of memory");
    err = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_AUTO, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(data_path("parquet/basic.snappy.parquet"), opts, &loader, &err), ZENITH_OK);
    zenith_loader_free(loader);
    zenith_loader_options_free(opts);
}

/* Freeing a loader whose workers are building batches ahead must stop them and leak nothing
 * (valgrind checks the leak part). */
static void test_free_mid_epoch(void) {
    config c = defaults(ZENITH_SHUFFLE_GLOBAL, 4);
    c.batch_size = 10;
    zenith_loader *loader = open_with(&c);
    struct ArrowArray array;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_next(loader, &array, NULL, &err), ZENITH_OK);
    zenith_loader_free(loader);
    CHECK_EQ_INT(array.length, 10);
    array.release(&array);
    /* And one freed before any batch was asked for. */
    zenith_loader_free(open_with(&c));
}

int main(void) {
    test_order_independent_of_workers();
    test_epochs_change_the_order();
    test_shards();
    test_resume();
    test_columns_and_stats();
    test_shard_source_and_limits();
    test_empty_columns();
    test_largest_epoch();
    test_next_timeout();
    test_global_shuffle_budget();
    test_free_mid_epoch();
    return check_summary("test_epochs");
}
