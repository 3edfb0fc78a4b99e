/*
 * test_loader.c — the loader slice through the C ABI, against files pyarrow wrote
 * (tests/data/generate.py; every value there is a function of the row id). Run under valgrind by
 * tests/c/run.sh: zero errors and zero definite leaks are part of passing.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zenith.h>

#include "check.h"

#define BASIC_ROWS 10000
#define EMBEDDING_WIDTH 4

static const char *data_dir(void) {
    const char *dir = getenv("ZENITH_TEST_DATA");
    return dir ? dir : "tests/data/generated";
}

static const char *data_path(const char *name) {
    static char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s/%s", data_dir(), name);
    return buffer;
}

static int bit(const void *bitmap, int64_t index) {
    return (((const uint8_t *)bitmap)[index / 8] >> (index % 8)) & 1;
}

/* Checks every value of a batch of basic.arrow against its row id; with `first_id >= 0` the ids
 * must also be first_id, first_id + 1, ... (dataset order). Returns the number of mismatches. */
static int64_t verify_basic_batch(const struct ArrowArray *batch, int64_t first_id) {
    int64_t bad = 0;
    if (batch->n_children != 6) return 1;
    const struct ArrowArray *id = batch->children[0], *label = batch->children[1],
                            *value = batch->children[2], *name = batch->children[3],
                            *flag = batch->children[4], *emb = batch->children[5];
    const struct ArrowArray *emb_values = emb->children[0];
    const int64_t *ids = (const int64_t *)id->buffers[1] + id->offset;
    const int32_t *labels = (const int32_t *)label->buffers[1] + label->offset;
    const double *values = (const double *)value->buffers[1] + value->offset;
    const int32_t *name_offsets = (const int32_t *)name->buffers[1];
    const char *name_data = (const char *)name->buffers[2];
    const float *floats = (const float *)emb_values->buffers[1] + emb_values->offset;
    for (int64_t i = 0; i < batch->length; i++) {
        int64_t row = ids[i];
        if (first_id >= 0) bad += row != first_id + i;
        bad += labels[i] != (int32_t)(row % 10);
        bad += values[i] != (double)row * 0.5;
        bad += bit(flag->buffers[1], flag->offset + i) != (row % 3 == 0);
        int64_t name_index = name->offset + i;
        int valid = name->buffers[0] == NULL || bit(name->buffers[0], name_index);
        if (row % 7 == 3) {
            bad += valid;
        } else {
            char expected[32];
            int len = snprintf(expected, sizeof expected, "row-%lld", (long long)row);
            int32_t start = name_offsets[name_index], end = name_offsets[name_index + 1];
            bad += !valid || end - start != len || memcmp(name_data + start, expected, (size_t)len);
        }
        for (int k = 0; k < EMBEDDING_WIDTH; k++) {
            float got = floats[(emb->offset + i) * EMBEDDING_WIDTH + k];
            bad += got != (float)row + (float)k / EMBEDDING_WIDTH;
        }
    }
    return bad;
}

/* Opens `path` with `batch_size`; the loader or NULL (the failure is counted). */
static zenith_loader *open_loader(const char *path, size_t batch_size) {
    zenith_loader_options *opts = NULL;
    zenith_error *err = NULL;
    zenith_loader *loader = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, batch_size, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, &err), ZENITH_OK);
    zenith_status status = zenith_loader_open(path, opts, &loader, &err);
    zenith_loader_options_free(opts);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "  open %s: %s\n", path, zenith_error_message(err));
        zenith_error_free(err);
    }
    return loader;
}

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", ZENITH_VERSION_MAJOR, ZENITH_VERSION_MINOR,
             ZENITH_VERSION_PATCH);
    CHECK(strcmp(zenith_version(), expected) == 0);
    CHECK_EQ_INT(zenith_version_number(), ZENITH_VERSION_NUMBER);
    CHECK_EQ_INT(ZENITH_VERSION_NUMBER,
                 ZENITH_VERSION_MAJOR * 10000 + ZENITH_VERSION_MINOR * 100 + ZENITH_VERSION_PATCH);
}

static void test_status_strings(void) {
    const zenith_status codes[] = {ZENITH_OK, ZENITH_DONE, ZENITH_WOULD_BLOCK,
                                   ZENITH_ERR_NULL_ARGUMENT, ZENITH_ERR_INVALID_ARGUMENT,
                                   ZENITH_ERR_IO, ZENITH_ERR_NOT_FOUND, ZENITH_ERR_FORMAT,
                                   ZENITH_ERR_UNSUPPORTED, ZENITH_ERR_PANIC, ZENITH_ERR_INTERNAL,
                                   ZENITH_ERR_SCHEMA_MISMATCH, ZENITH_ERR_BUFFER_TOO_SMALL};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *text = zenith_status_str(codes[i]);
        CHECK(text != NULL && text[0] != '\0');
        CHECK(strcmp(text, "unknown status code") != 0);
        for (size_t j = 0; j < i; j++) CHECK(strcmp(text, zenith_status_str(codes[j])) != 0);
    }
    CHECK(strcmp(zenith_status_str(-9999), "unknown status code") == 0);
    CHECK_EQ_INT(zenith_error_code(NULL), ZENITH_OK);
    CHECK(strcmp(zenith_error_message(NULL), "") == 0);
}

static void test_options_errors(void) {
    zenith_error *err = NULL;
    zenith_loader_options *opts = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(NULL, 10, &err), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "opts");
    zenith_error_free(err);
    err = NULL;

    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 0, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "batch_size");
    zenith_error_free(err);
    /* A NULL err is allowed: the status alone reports the failure. */
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 0, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    zenith_loader_options_free(opts);

    zenith_loader_options_free(NULL);
    zenith_loader_free(NULL);
    zenith_error_free(NULL);
}

/* Every batch is exactly batch_size rows but the last; values are right; DONE repeats. */
static void test_batches(const char *file, size_t batch_size) {
    zenith_loader *loader = open_loader(data_path(file), batch_size);
    if (!loader) return;
    int64_t rows = 0, batches = 0, bad = 0;
    int64_t expected_batches = (BASIC_ROWS + (int64_t)batch_size - 1) / (int64_t)batch_size;
    zenith_error *err = NULL;
    for (;;) {
        struct ArrowArray batch;
        struct ArrowSchema schema;
        zenith_status status = zenith_loader_next(loader, &batch, &schema, &err);
        if (status == ZENITH_DONE) break;
        CHECK_EQ_INT(status, ZENITH_OK);
        if (status != ZENITH_OK) break;
        batches++;
        int64_t expected_len = batches < expected_batches
                                   ? (int64_t)batch_size
                                   : BASIC_ROWS - (expected_batches - 1) * (int64_t)batch_size;
        CHECK_EQ_INT(batch.length, expected_len);
        CHECK(strcmp(schema.format, "+s") == 0);
        CHECK_EQ_INT(schema.n_children, 6);
        bad += verify_basic_batch(&batch, rows);
        rows += batch.length;
        schema.release(&schema);
        batch.release(&batch);
        CHECK(batch.release == NULL);
    }
    CHECK_EQ_INT(rows, BASIC_ROWS);
    CHECK_EQ_INT(batches, expected_batches);
    CHECK_EQ_INT(bad, 0);
    struct ArrowArray after;
    CHECK_EQ_INT(zenith_loader_next(loader, &after, NULL, &err), ZENITH_DONE);
    zenith_loader_free(loader);
}

static void test_schema(void) {
    zenith_loader *loader = open_loader(data_path("basic.arrow"), 100);
    if (!loader) return;
    struct ArrowSchema schema;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_schema(loader, &schema, &err), ZENITH_OK);
    const char *names[] = {"id", "label", "value", "name", "flag", "embedding"};
    const char *formats[] = {"l", "i", "g", "u", "b", "+w:4"};
    CHECK(strcmp(schema.format, "+s") == 0);
    CHECK_EQ_INT(schema.n_children, 6);
    for (int i = 0; i < 6 && i < schema.n_children; i++) {
        CHECK(strcmp(schema.children[i]->name, names[i]) == 0);
        CHECK(strcmp(schema.children[i]->format, formats[i]) == 0);
    }
    CHECK(strcmp(schema.children[5]->children[0]->format, "f") == 0);
    schema.release(&schema);
    CHECK_EQ_INT(zenith_loader_schema(NULL, &schema, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_loader_schema(loader, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    zenith_loader_free(loader);
}

/* A batch is a view of the mapped file; it must outlive the loader until released. */
static void test_batch_outlives_loader(void) {
    zenith_loader *loader = open_loader(data_path("single_batch.arrow"), 4096);
    if (!loader) return;
    struct ArrowArray first, second;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_next(loader, &first, NULL, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_next(loader, &second, NULL, &err), ZENITH_OK);
    zenith_loader_free(loader);
    CHECK_EQ_INT(verify_basic_batch(&first, 0), 0);
    CHECK_EQ_INT(verify_basic_batch(&second, 4096), 0);
    first.release(&first);
    CHECK_EQ_INT(verify_basic_batch(&second, 4096), 0);
    second.release(&second);
}

static void test_stream(void) {
    zenith_loader *loader = open_loader(data_path("basic.arrow"), 1000);
    if (!loader) return;
    zenith_error *err = NULL;
    /* The stream continues where the loader stands. */
    struct ArrowArray taken;
    CHECK_EQ_INT(zenith_loader_next(loader, &taken, NULL, &err), ZENITH_OK);
    taken.release(&taken);

    struct ArrowArrayStream stream;
    CHECK_EQ_INT(zenith_loader_export_stream(loader, &stream, &err), ZENITH_OK);
    zenith_loader_free(loader); /* the stream is independent of the loader's lifetime */

    struct ArrowSchema schema;
    CHECK_EQ_INT(stream.get_schema(&stream, &schema), 0);
    CHECK_EQ_INT(schema.n_children, 6);
    schema.release(&schema);
    int64_t rows = 1000, bad = 0, batches = 0;
    for (;;) {
        struct ArrowArray batch;
        CHECK_EQ_INT(stream.get_next(&stream, &batch), 0);
        if (batch.release == NULL) break; /* end of stream */
        bad += verify_basic_batch(&batch, rows);
        rows += batch.length;
        batches++;
        batch.release(&batch);
    }
    CHECK_EQ_INT(rows, BASIC_ROWS);
    CHECK_EQ_INT(batches, 9);
    CHECK_EQ_INT(bad, 0);
    stream.release(&stream);
    CHECK(stream.release == NULL);
}

static void test_empty_and_dictionary(void) {
    zenith_error *err = NULL;
    zenith_loader *loader = open_loader(data_path("empty.arrow"), 10);
    if (loader) {
        struct ArrowArray batch;
        struct ArrowSchema schema;
        CHECK_EQ_INT(zenith_loader_schema(loader, &schema, &err), ZENITH_OK);
        CHECK_EQ_INT(schema.n_children, 6);
        schema.release(&schema);
        CHECK_EQ_INT(zenith_loader_next(loader, &batch, NULL, &err), ZENITH_DONE);
        zenith_loader_free(loader);
    }
    loader = open_loader(data_path("dictionary.arrow"), 64);
    if (loader) {
        struct ArrowArray batch;
        struct ArrowSchema schema;
        int64_t rows = 0;
        while (zenith_loader_next(loader, &batch, &schema, &err) == ZENITH_OK) {
            CHECK(schema.children[1]->dictionary != NULL);
            CHECK(batch.children[1]->dictionary != NULL);
            rows += batch.length;
            batch.release(&batch);
            schema.release(&schema);
        }
        CHECK_EQ_INT(rows, 100);
        zenith_loader_free(loader);
    }
}

/* basic.parquet: the first 100 rows of basic.arrow, in one row group (pyarrow's defaults). */
static void test_basic_parquet(void) {
    zenith_loader *loader = open_loader(data_path("basic.parquet"), 64);
    if (!loader) return;
    zenith_error *err = NULL;
    int64_t rows = 0, bad = 0;
    struct ArrowArray batch;
    while (zenith_loader_next(loader, &batch, NULL, &err) == ZENITH_OK) {
        CHECK_EQ_INT(batch.length, rows == 0 ? 64 : 36);
        bad += verify_basic_batch(&batch, rows);
        rows += batch.length;
        batch.release(&batch);
    }
    CHECK(err == NULL);
    CHECK_EQ_INT(rows, 100);
    CHECK_EQ_INT(bad, 0);
    zenith_loader_free(loader);
}

/* A corrupt row group fails the call with a format error naming the file; nothing is written. */
static void test_corrupt_parquet_row_group(void) {
    zenith_loader *loader = open_loader(data_path("corrupt.parquet"), 100);
    if (!loader) return;
    zenith_error *err = NULL;
    struct ArrowArray batch;
    batch.release = NULL;
    CHECK_EQ_INT(zenith_loader_next(loader, &batch, NULL, &err), ZENITH_ERR_FORMAT);
    CHECK(batch.release == NULL);
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_FORMAT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "corrupt.parquet");
    zenith_error_free(err);
    zenith_loader_free(loader);
}

/* A failing open returns its status and message and leaves *out untouched. */
static void expect_open_error(const char *path, zenith_status expected, const char *in_message) {
    zenith_loader *const sentinel = (zenith_loader *)(uintptr_t)0x5a5a;
    zenith_loader *loader = sentinel;
    zenith_error *err = NULL;
    zenith_status status = zenith_loader_open(path, NULL, &loader, &err);
    CHECK_EQ_INT(status, expected);
    CHECK(loader == sentinel);
    CHECK(err != NULL);
    CHECK_EQ_INT(zenith_error_code(err), expected);
    if (in_message) CHECK_STR_CONTAINS(zenith_error_message(err), in_message);
    zenith_error_free(err);
}

static void test_open_errors(void) {
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/does-not-exist.arrow", data_dir());
    expect_open_error(missing, ZENITH_ERR_NOT_FOUND, "does-not-exist.arrow");
    expect_open_error(data_path("truncated.arrow"), ZENITH_ERR_FORMAT, "truncated");
    expect_open_error(data_path("corrupt_footer.arrow"), ZENITH_ERR_FORMAT, "corrupt_footer.arrow");
    expect_open_error(data_path("not_a_dataset.bin"), ZENITH_ERR_FORMAT, "not_a_dataset.bin");
    expect_open_error(data_path("zero_bytes.arrow"), ZENITH_ERR_FORMAT, "zero_bytes.arrow");
    expect_open_error(data_path("truncated.parquet"), ZENITH_ERR_FORMAT, "truncated.parquet");
    expect_open_error(data_path("truncated.arrows"), ZENITH_ERR_FORMAT, "truncated.arrows");
    expect_open_error(data_path("malformed.csv"), ZENITH_ERR_FORMAT, "line 5");
    expect_open_error(data_path("mixed_shards"), ZENITH_ERR_SCHEMA_MISMATCH, "part-1.parquet");
    expect_open_error(data_path("empty_dir"), ZENITH_ERR_NOT_FOUND, "no data files");
    expect_open_error("", ZENITH_ERR_INVALID_ARGUMENT, "path");
    expect_open_error(NULL, ZENITH_ERR_NULL_ARGUMENT, "path");

    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), NULL, NULL, &err),
                 ZENITH_ERR_NULL_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "out");
    zenith_error_free(err);
    /* Without an error object, the status still tells. */
    zenith_loader *loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(missing, NULL, &loader, NULL), ZENITH_ERR_NOT_FOUND);
    CHECK(loader == NULL);
}

static void test_null_arguments_to_next(void) {
    zenith_error *err = NULL;
    struct ArrowArray batch;
    struct ArrowArrayStream stream;
    CHECK_EQ_INT(zenith_loader_next(NULL, &batch, NULL, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_export_stream(NULL, &stream, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    err = NULL;
    /* Default options (NULL): shuffled batches of ZENITH_DEFAULT_BATCH_SIZE rows. */
    zenith_loader *loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), NULL, &loader, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_next(loader, NULL, NULL, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_export_stream(loader, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    /* The failed calls consumed nothing: all batches of the epoch are still there. */
    int64_t rows = 0, batches = 0;
    while (zenith_loader_next(loader, &batch, NULL, &err) == ZENITH_OK) {
        if (batches == 0) CHECK_EQ_INT(batch.length, ZENITH_DEFAULT_BATCH_SIZE);
        CHECK_EQ_INT(verify_basic_batch(&batch, -1), 0);
        rows += batch.length;
        batches++;
        batch.release(&batch);
    }
    CHECK_EQ_INT(rows, BASIC_ROWS);
    zenith_loader_free(loader);
}

int main(void) {
    test_version();
    test_status_strings();
    test_options_errors();
    const size_t sizes[] = {1, 7, 777, 1000, 1024, 3000, 9999, 10000, 20000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        test_batches("basic.arrow", sizes[i]);
        test_batches("single_batch.arrow", sizes[i]);
    }
    /* The same rows from the other formats: Parquet (a file, a directory of shards) and an IPC
     * stream. Parquet row groups are decoded per batch, so fewer sizes keep valgrind quick. */
    const char *others[] = {"parquet/basic.zstd.parquet", "shards", "basic.arrows"};
    const size_t other_sizes[] = {1000, 1024, 3000};
    for (size_t f = 0; f < sizeof others / sizeof others[0]; f++) {
        for (size_t i = 0; i < sizeof other_sizes / sizeof other_sizes[0]; i++) {
            test_batches(others[f], other_sizes[i]);
        }
    }
    test_basic_parquet();
    test_corrupt_parquet_row_group();
    test_schema();
    test_batch_outlives_loader();
    test_stream();
    test_empty_and_dictionary();
    test_open_errors();
    test_null_arguments_to_next();
    return check_summary("test_loader");
}
