/*
 * test_device_array.c — the Arrow C Device Data Interface export through the C ABI:
 * zenith_batch_export_device_array and zenith_batch_export_device_array_columns on host batches
 * (ARROW_DEVICE_CPU; device batches need a GPU and are checked by bench/gpu/run.sh), against
 * basic.arrow (tests/data/generate.py: id = row, embedding[j] = row + j / 4), and
 * zenith_loader_export_device_stream (an ArrowDeviceArrayStream). Run under valgrind
 * by tests/c/run.sh: the releases free everything the exports allocated.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zenith.h>

#include "check.h"

static const char *data_path(const char *name) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/%s", dir ? dir : "tests/data/generated", name);
    return buffer;
}

static zenith_batch *first_batch(zenith_loader **loader, size_t batch_size) {
    zenith_loader_options *opts = NULL;
    zenith_batch *batch = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, batch_size, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, &err), ZENITH_OK);
    zenith_status status = zenith_loader_open(data_path("basic.arrow"), opts, loader, &err);
    zenith_loader_options_free(opts);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "  open: %s\n", zenith_error_message(err));
        zenith_error_free(err);
        return NULL;
    }
    CHECK_EQ_INT(zenith_loader_next_batch(*loader, &batch, &err), ZENITH_OK);
    return batch;
}

/* A subset of columns in the order asked: children are `embedding` (a fixed-size list whose
 * values child holds the floats) and `id`, the buffers outlive the batch and the loader. */
static void test_columns_subset(void) {
    zenith_loader *loader = NULL;
    zenith_batch *batch = first_batch(&loader, 100);
    if (!batch) return;
    const char *names[] = {"embedding", "id"};
    struct ArrowDeviceArray array;
    struct ArrowSchema schema;
    memset(&array, 0, sizeof array);
    memset(&schema, 0, sizeof schema);
    zenith_error *err = NULL;
    zenith_status status =
        zenith_batch_export_device_array_columns(batch, names, 2, -1, &array, &schema, &err);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "  export: %s\n", zenith_error_message(err));
        zenith_error_free(err);
        return;
    }
    zenith_batch_free(batch);
    zenith_loader_free(loader);
    CHECK_EQ_INT(array.device_type, ARROW_DEVICE_CPU);
    CHECK_EQ_INT(array.device_id, -1);
    CHECK(array.sync_event == NULL);
    CHECK_EQ_INT(array.array.length, 100);
    CHECK_EQ_INT(array.array.n_children, 2);
    CHECK_EQ_INT(schema.n_children, 2);
    CHECK(strcmp(schema.format, "+s") == 0);
    CHECK(strcmp(schema.children[0]->name, "embedding") == 0);
    CHECK(strcmp(schema.children[0]->format, "+w:4") == 0);
    CHECK(strcmp(schema.children[1]->name, "id") == 0);
    const struct ArrowArray *embedding = array.array.children[0];
    const struct ArrowArray *values = embedding->children[0];
    const float *floats = (const float *)values->buffers[1] + values->offset;
    CHECK_EQ_INT(values->length, 400);
    CHECK(floats[4 * 7 + 2] == 7.5f);
    const struct ArrowArray *id = array.array.children[1];
    const int64_t *ids = (const int64_t *)id->buffers[1] + id->offset;
    CHECK_EQ_INT(ids[99], 99);
    array.array.release(&array.array);
    CHECK(array.array.release == NULL);
    schema.release(&schema);
}

static void test_errors(void) {
    zenith_loader *loader = NULL;
    zenith_batch *batch = first_batch(&loader, 10);
    if (!batch) return;
    struct ArrowDeviceArray array;
    memset(&array, 0, sizeof array);
    zenith_error *err = NULL;
    const char *unknown[] = {"nope"};
    CHECK_EQ_INT(zenith_batch_export_device_array_columns(batch, unknown, 1, -1, &array, NULL, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "`nope`");
    zenith_error_free(err);
    err = NULL;
    const char *null_name[] = {NULL};
    CHECK_EQ_INT(zenith_batch_export_device_array_columns(batch, null_name, 1, -1, &array, NULL, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "columns[0] is NULL");
    zenith_error_free(err);
    err = NULL;
    /* A host batch takes no consumer stream. */
    CHECK_EQ_INT(zenith_batch_export_device_array_columns(batch, NULL, 0, 2, &array, NULL, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    CHECK(array.array.release == NULL);
    /* Every column, no schema: release alone. */
    CHECK_EQ_INT(zenith_batch_export_device_array_columns(batch, NULL, 0, -1, &array, NULL, NULL),
                 ZENITH_OK);
    CHECK_EQ_INT(array.array.n_children, 6);
    array.array.release(&array.array);
    zenith_batch_free(batch);
    zenith_loader_free(loader);
}

/* The device stream of a host loader: ARROW_DEVICE_CPU arrays of the batches not yet delivered,
 * ids in order, a released array at the end; the loader may be freed first. */
static void test_device_stream(void) {
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    zenith_batch *first = first_batch(&loader, 100);
    if (first == NULL) return;
    zenith_batch_free(first);
    struct ArrowDeviceArrayStream stream;
    CHECK_EQ_INT(zenith_loader_export_device_stream(loader, &stream, &err), ZENITH_OK);
    CHECK_EQ_INT(stream.device_type, ARROW_DEVICE_CPU);
    zenith_loader_free(loader);
    struct ArrowSchema schema;
    CHECK_EQ_INT(stream.get_schema(&stream, &schema), 0);
    CHECK(schema.n_children >= 2);
    schema.release(&schema);
    int64_t next_id = 100, arrays = 0;
    bool in_order = true;
    for (;;) {
        struct ArrowDeviceArray array;
        int rc = stream.get_next(&stream, &array);
        CHECK_EQ_INT(rc, 0);
        if (rc != 0 || array.array.release == NULL) break;
        CHECK_EQ_INT(array.device_type, ARROW_DEVICE_CPU);
        CHECK(array.sync_event == NULL);
        const struct ArrowArray *id = array.array.children[0];
        const int64_t *ids = (const int64_t *)id->buffers[1] + id->offset;
        for (int64_t i = 0; i < id->length; i++) in_order &= ids[i] == next_id++;
        arrays++;
        array.array.release(&array.array);
    }
    CHECK(in_order);
    CHECK_EQ_INT(next_id, 10000);
    CHECK_EQ_INT(arrays, 99);
    CHECK(stream.get_last_error(&stream) == NULL);
    stream.release(&stream);
    CHECK(stream.release == NULL);
}

int main(void) {
    test_columns_subset();
    test_errors();
    test_device_stream();
    return check_summary("test_device_array");
}
