/*
 * test_dlpack.c — DLPack export of batch columns through the C ABI, against basic.arrow as
 * pyarrow wrote it (tests/data/generate.py: every value is a function of the row id). Run under
 * valgrind by tests/c/run.sh: zero errors and zero definite leaks are part of passing, which
 * also proves that each deleter frees what the export allocated.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zenith.h>

#include "check.h"

#define BASIC_ROWS 10000
#define EMBEDDING_WIDTH 4

static const char *data_path(const char *name) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/%s", dir ? dir : "tests/data/generated", name);
    return buffer;
}

static zenith_loader *open_loader(const char *name, size_t batch_size) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, batch_size, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, &err), ZENITH_OK);
    zenith_status status = zenith_loader_open(data_path(name), opts, &loader, &err);
    zenith_loader_options_free(opts);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "  open %s: %s\n", name, zenith_error_message(err));
        zenith_error_free(err);
        return NULL;
    }
    return loader;
}

/* The column as a tensor, or NULL (the failure is counted and reported). */
static DLManagedTensorVersioned *export_column(const zenith_batch *batch, const char *column) {
    DLManagedTensorVersioned *tensor = NULL;
    zenith_error *err = NULL;
    zenith_status status = zenith_batch_column_dlpack(batch, column, &tensor, &err);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "  export %s: %s\n", column, zenith_error_message(err));
        zenith_error_free(err);
        return NULL;
    }
    CHECK(err == NULL);
    CHECK(tensor != NULL);
    return tensor;
}

static void release(DLManagedTensorVersioned *tensor) {
    if (tensor) tensor->deleter(tensor);
}

/* What every tensor of ours carries: version, device, byte_offset 0, dense row-major strides,
 * a scalar dtype, and `ndim` extents equal to `shape`. Returns mismatches. */
static int64_t check_layout(const DLManagedTensorVersioned *t, int32_t ndim, const int64_t *shape,
                            uint8_t code, uint8_t bits) {
    int64_t bad = 0;
    bad += t->version.major != DLPACK_MAJOR_VERSION;
    bad += t->deleter == NULL;
    bad += t->dl_tensor.device.device_type != kDLCPU || t->dl_tensor.device.device_id != 0;
    bad += t->dl_tensor.byte_offset != 0;
    bad += t->dl_tensor.dtype.code != code || t->dl_tensor.dtype.bits != bits ||
           t->dl_tensor.dtype.lanes != 1;
    if (t->dl_tensor.ndim != ndim || t->dl_tensor.shape == NULL || t->dl_tensor.strides == NULL)
        return bad + 1;
    int64_t stride = 1;
    for (int32_t k = ndim - 1; k >= 0; k--) {
        bad += t->dl_tensor.shape[k] != shape[k];
        bad += t->dl_tensor.strides[k] != stride;
        stride *= shape[k];
    }
    bad += t->dl_tensor.data == NULL;
    return bad;
}

/* Checks the tensors of every supported column of a basic.arrow batch whose first row is
 * `first_id`; returns mismatches. */
static int64_t verify_basic_tensors(DLManagedTensorVersioned *id, DLManagedTensorVersioned *label,
                                    DLManagedTensorVersioned *value, DLManagedTensorVersioned *flag,
                                    DLManagedTensorVersioned *emb, int64_t first_id, int64_t rows) {
    if (!id || !label || !value || !flag || !emb) return 1;
    int64_t bad = 0;
    const int64_t shape[2] = {rows, EMBEDDING_WIDTH};
    bad += check_layout(id, 1, shape, kDLInt, 64);
    bad += check_layout(label, 1, shape, kDLInt, 32);
    bad += check_layout(value, 1, shape, kDLFloat, 64);
    bad += check_layout(flag, 1, shape, kDLBool, 8);
    bad += check_layout(emb, 2, shape, kDLFloat, 32);
    if (bad) return bad;
    /* Shared with the (possibly memory-mapped) file: read-only. Bools are a copy: writable. */
    bad += id->flags != DLPACK_FLAG_BITMASK_READ_ONLY;
    bad += emb->flags != DLPACK_FLAG_BITMASK_READ_ONLY;
    bad += flag->flags != DLPACK_FLAG_BITMASK_IS_COPIED;

    const int64_t *ids = (const int64_t *)id->dl_tensor.data;
    const int32_t *labels = (const int32_t *)label->dl_tensor.data;
    const double *values = (const double *)value->dl_tensor.data;
    const uint8_t *flags = (const uint8_t *)flag->dl_tensor.data;
    const float *floats = (const float *)emb->dl_tensor.data;
    const int64_t *strides = emb->dl_tensor.strides;
    for (int64_t i = 0; i < rows; i++) {
        int64_t row = first_id + i;
        bad += ids[i] != row;
        bad += labels[i] != (int32_t)(row % 10);
        bad += values[i] != (double)row * 0.5;
        bad += flags[i] != (row % 3 == 0);
        for (int64_t k = 0; k < EMBEDDING_WIDTH; k++) {
            bad += floats[i * strides[0] + k * strides[1]] != (float)row + (float)k / EMBEDDING_WIDTH;
        }
    }
    return bad;
}

/* Every batch of an epoch, every supported column, for a few batch sizes (batches straddle the
 * file's record batches, which are 1000, 777, 1500 and 123 rows long). */
static void test_every_batch(size_t batch_size) {
    zenith_loader *loader = open_loader("basic.arrow", batch_size);
    if (!loader) return;
    int64_t rows = 0, bad = 0;
    for (;;) {
        zenith_batch *batch = NULL;
        zenith_error *err = NULL;
        zenith_status status = zenith_loader_next_batch(loader, &batch, &err);
        if (status == ZENITH_DONE) break;
        CHECK_EQ_INT(status, ZENITH_OK);
        if (status != ZENITH_OK) {
            zenith_error_free(err);
            break;
        }
        int64_t len = (int64_t)zenith_batch_num_rows(batch);
        DLManagedTensorVersioned *id = export_column(batch, "id");
        DLManagedTensorVersioned *label = export_column(batch, "label");
        DLManagedTensorVersioned *value = export_column(batch, "value");
        DLManagedTensorVersioned *flag = export_column(batch, "flag");
        DLManagedTensorVersioned *emb = export_column(batch, "embedding");
        bad += verify_basic_tensors(id, label, value, flag, emb, rows, len);
        release(id);
        release(label);
        release(value);
        release(flag);
        release(emb);
        zenith_batch_free(batch);
        rows += len;
    }
    CHECK_EQ_INT(rows, BASIC_ROWS);
    CHECK_EQ_INT(bad, 0);
    zenith_loader_free(loader);
}

/* Tensors stay valid after their batch and loader are freed, in any release order, and one
 * column exported twice gives two independent tensors. */
static void test_tensors_outlive_batch_and_loader(const char *file) {
    zenith_loader *loader = open_loader(file, 2500);
    if (!loader) return;
    zenith_batch *first = NULL, *second = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_next_batch(loader, &first, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_next_batch(loader, &second, &err), ZENITH_OK);
    if (!first || !second) {
        zenith_batch_free(first);
        zenith_batch_free(second);
        zenith_loader_free(loader);
        return;
    }
    DLManagedTensorVersioned *a[5], *b[5], *again;
    const char *columns[5] = {"id", "label", "value", "flag", "embedding"};
    for (int c = 0; c < 5; c++) {
        a[c] = export_column(first, columns[c]);
        b[c] = export_column(second, columns[c]);
    }
    again = export_column(first, "embedding");
    zenith_batch_free(first);
    zenith_loader_free(loader);
    zenith_batch_free(second);

    CHECK_EQ_INT(verify_basic_tensors(a[0], a[1], a[2], a[3], a[4], 0, 2500), 0);
    CHECK_EQ_INT(verify_basic_tensors(b[0], b[1], b[2], b[3], b[4], 2500, 2500), 0);
    CHECK(again != NULL && again != a[4]);
    release(a[4]);
    /* The second export of the column is unaffected by releasing the first. */
    CHECK_EQ_INT(verify_basic_tensors(a[0], a[1], a[2], a[3], again, 0, 2500), 0);
    for (int c = 4; c >= 0; c--) release(b[c]);
    for (int c = 0; c < 4; c++) release(a[c]);
    release(again);
}

/* By index, in schema order: id, label, value, name, flag, embedding. */
static void test_by_index(void) {
    zenith_loader *loader = open_loader("single_batch.arrow", 100);
    if (!loader) return;
    zenith_batch *batch = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_next_batch(loader, &batch, &err), ZENITH_OK);
    DLManagedTensorVersioned *t[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    for (size_t i = 0; i < 6; i++) {
        zenith_status status = zenith_batch_column_dlpack_by_index(batch, i, &t[i], NULL);
        CHECK_EQ_INT(status, i == 3 ? ZENITH_ERR_UNSUPPORTED : ZENITH_OK);
    }
    CHECK(t[3] == NULL);
    CHECK_EQ_INT(verify_basic_tensors(t[0], t[1], t[2], t[4], t[5], 0, 100), 0);

    DLManagedTensorVersioned *const sentinel = (DLManagedTensorVersioned *)(uintptr_t)0x5a5a;
    DLManagedTensorVersioned *out = sentinel;
    CHECK_EQ_INT(zenith_batch_column_dlpack_by_index(batch, 6, &out, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    CHECK(out == sentinel);
    CHECK_STR_CONTAINS(zenith_error_message(err), "6");
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_batch_column_dlpack_by_index(NULL, 0, &out, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_batch_column_dlpack_by_index(batch, 0, NULL, NULL),
                 ZENITH_ERR_NULL_ARGUMENT);
    for (int i = 0; i < 6; i++) release(t[i]);
    zenith_batch_free(batch);
    zenith_loader_free(loader);
}

/* A failing export returns its status and a message naming the problem; *out is untouched. */
static void expect_export_error(const zenith_batch *batch, const char *column,
                                zenith_status expected, const char *in_message) {
    DLManagedTensorVersioned *const sentinel = (DLManagedTensorVersioned *)(uintptr_t)0x5a5a;
    DLManagedTensorVersioned *out = sentinel;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_batch_column_dlpack(batch, column, &out, &err), expected);
    CHECK(out == sentinel);
    CHECK_EQ_INT(zenith_error_code(err), expected);
    CHECK_STR_CONTAINS(zenith_error_message(err), in_message);
    zenith_error_free(err);
    /* Without an error object, the status still tells. */
    CHECK_EQ_INT(zenith_batch_column_dlpack(batch, column, &out, NULL), expected);
    CHECK(out == sentinel);
}

static void test_errors(void) {
    zenith_loader *loader = open_loader("basic.arrow", 64);
    if (!loader) return;
    zenith_batch *batch = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_next_batch(loader, &batch, &err), ZENITH_OK);

    /* utf8 with nulls: the type is what is unsupported. */
    expect_export_error(batch, "name", ZENITH_ERR_UNSUPPORTED, "`name`");
    expect_export_error(batch, "name", ZENITH_ERR_UNSUPPORTED, "Utf8");
    expect_export_error(batch, "no_such_column", ZENITH_ERR_INVALID_ARGUMENT, "`no_such_column`");
    expect_export_error(batch, "no_such_column", ZENITH_ERR_INVALID_ARGUMENT, "embedding");
    expect_export_error(batch, "ID", ZENITH_ERR_INVALID_ARGUMENT, "`ID`");
    expect_export_error(batch, "", ZENITH_ERR_INVALID_ARGUMENT, "no column");
    expect_export_error(batch, "bad \xff utf-8", ZENITH_ERR_INVALID_ARGUMENT, "UTF-8");
    expect_export_error(NULL, "id", ZENITH_ERR_NULL_ARGUMENT, "batch");
    expect_export_error(batch, NULL, ZENITH_ERR_NULL_ARGUMENT, "column");
    CHECK_EQ_INT(zenith_batch_column_dlpack(batch, "id", NULL, &err), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "out");
    zenith_error_free(err);

    /* The failed calls changed nothing: the batch still exports. */
    DLManagedTensorVersioned *id = export_column(batch, "id");
    if (id) {
        CHECK_EQ_INT(id->dl_tensor.shape[0], 64);
        CHECK_EQ_INT(((const int64_t *)id->dl_tensor.data)[63], 63);
    }
    release(id);
    zenith_batch_free(batch);
    zenith_loader_free(loader);
}

int main(void) {
    const size_t sizes[] = {7, 777, 1000, 4096, 20000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) test_every_batch(sizes[i]);
    test_tensors_outlive_batch_and_loader("basic.arrow");
    test_tensors_outlive_batch_and_loader("single_batch.arrow");
    test_by_index();
    test_errors();
    return check_summary("test_dlpack");
}
