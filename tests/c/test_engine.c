/* test_engine.c — zenith_engine from C under valgrind: events built by hand as Arrow struct
 * arrays, published from several threads through a native C stage and the normalize WASM
 * plugin; output in publish order, every event exactly once, a failing callback reported in its
 * event's place, back-pressure (ZENITH_WOULD_BLOCK gives the event back), events in flight
 * released at shutdown, and argument errors. The same stages as loader stages
 * (zenith_loader_options_add_stage) on basic.arrow: run on the loader's workers, in order, every
 * row once, a failing stage failing only its batch (then delivered by the retry). The plugin comes
 * from `make plugins` (build/plugins/normalize.wasm, or $ZENITH_TEST_PLUGINS/normalize.wasm). */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <zenith.h>

#include "check.h"

/* ---- A one-column (float64 "x") record batch as a struct array, built by hand ---- */

typedef struct {
    double *values;
    const void *child_buffers[2];
    const void *parent_buffers[1];
    struct ArrowArray child;
    struct ArrowArray *children[1];
} batch_memory;

static void release_child(struct ArrowArray *array) { array->release = NULL; }

static void release_batch(struct ArrowArray *array) {
    batch_memory *memory = array->private_data;
    if (memory->child.release) memory->child.release(&memory->child);
    free(memory->values);
    free(memory);
    array->release = NULL;
}

static void release_schema_child(struct ArrowSchema *schema) { schema->release = NULL; }

typedef struct {
    struct ArrowSchema child;
    struct ArrowSchema *children[1];
} schema_memory;

static void release_schema(struct ArrowSchema *schema) {
    schema_memory *memory = schema->private_data;
    if (memory->child.release) memory->child.release(&memory->child);
    free(memory);
    schema->release = NULL;
}

static void make_schema(struct ArrowSchema *out) {
    schema_memory *memory = calloc(1, sizeof *memory);
    memory->child = (struct ArrowSchema){.format = "g", .name = "x", .flags = 2,
                                         .release = release_schema_child};
    memory->children[0] = &memory->child;
    *out = (struct ArrowSchema){.format = "+s", .name = "", .n_children = 1,
                                .children = memory->children, .release = release_schema,
                                .private_data = memory};
}

static void make_batch(const double *values, int64_t rows, struct ArrowArray *out) {
    batch_memory *memory = calloc(1, sizeof *memory);
    memory->values = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    memcpy(memory->values, values, sizeof(double) * (size_t)rows);
    memory->child_buffers[0] = NULL;
    memory->child_buffers[1] = memory->values;
    memory->child = (struct ArrowArray){.length = rows, .n_buffers = 2,
                                        .buffers = memory->child_buffers,
                                        .release = release_child};
    memory->parent_buffers[0] = NULL;
    memory->children[0] = &memory->child;
    *out = (struct ArrowArray){.length = rows, .n_buffers = 1, .n_children = 1,
                               .buffers = memory->parent_buffers, .children = memory->children,
                               .release = release_batch, .private_data = memory};
}

static const double *values_of(const struct ArrowArray *array) {
    return (const double *)array->children[0]->buffers[1] + array->children[0]->offset;
}

/* ---- A native stage: x -> x * factor; fails events whose first value is negative ---- */

typedef struct {
    double factor;
    int freed;
} scale_data;

static int32_t scale(void *user_data, struct ArrowArray *in_array, struct ArrowSchema *in_schema,
                     struct ArrowArray *out_array, struct ArrowSchema *out_schema, char *error,
                     size_t error_capacity) {
    const scale_data *data = user_data;
    int64_t rows = in_array->length;
    const double *in = values_of(in_array);
    if (rows > 0 && in[0] < 0) {
        snprintf(error, error_capacity, "negative first value %g", in[0]);
        return 3;
    }
    double *scaled = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    for (int64_t i = 0; i < rows; i++) scaled[i] = in[i] * data->factor;
    make_batch(scaled, rows, out_array);
    free(scaled);
    /* Move the schema out of the input: the output has the same one. */
    *out_schema = *in_schema;
    in_schema->release = NULL;
    return 0;
}

static void free_scale(void *user_data) { ((scale_data *)user_data)->freed++; }

/* ---- Tests ---- */

/* sqrt and fabs without libm (run.sh links only libzenith). */
static double square_root(double v) {
    double r = v > 1 ? v : 1;
    for (int i = 0; i < 200; i++) r = 0.5 * (r + v / r);
    return r;
}

static double absolute(double v) { return v < 0 ? -v : v; }

#define FOREVER UINT64_MAX

static zenith_status publish_values(zenith_engine *engine, const double *values, int64_t rows,
                                    uint64_t timeout_ms, uint64_t *sequence) {
    struct ArrowArray array;
    struct ArrowSchema schema;
    make_batch(values, rows, &array);
    make_schema(&schema);
    zenith_status status = zenith_engine_publish(engine, &array, &schema, timeout_ms, sequence, NULL);
    if (status == ZENITH_OK) {
        CHECK(array.release == NULL && schema.release == NULL);
    } else {
        /* Given back (WOULD_BLOCK) or never taken: ours to release. */
        if (array.release) array.release(&array);
        if (schema.release) schema.release(&schema);
    }
    return status;
}

typedef struct {
    zenith_engine *engine;
    int publisher;
    int count;
} publisher_args;

static void *publisher(void *arg) {
    publisher_args *args = arg;
    for (int i = 0; i < args->count; i++) {
        double values[3] = {args->publisher * 1000.0 + i, 1.0, 2.0};
        uint64_t sequence = 0;
        CHECK_EQ_INT(publish_values(args->engine, values, 3, FOREVER, &sequence), ZENITH_OK);
    }
    return NULL;
}

static void test_native_stage_order_failures_and_threads(void) {
    scale_data data = {.factor = 2.0, .freed = 0};
    zenith_stage *stage = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_stage_new_native("scale", scale, &data, free_scale, &stage, &err), ZENITH_OK);
    zenith_engine_options *opts = NULL;
    CHECK_EQ_INT(zenith_engine_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_options_set_workers(opts, 3, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_options_set_capacity(opts, 8, 1 << 20, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_options_add_stage(opts, stage, NULL), ZENITH_OK);
    zenith_engine *engine = NULL;
    CHECK_EQ_INT(zenith_engine_new(opts, &engine, &err), ZENITH_OK);
    zenith_engine_options_free(opts);
    zenith_stage_free(stage);
    CHECK_EQ_INT(data.freed, 0); /* the engine still uses it */

    enum { PUBLISHERS = 4, EACH = 50 };
    pthread_t threads[PUBLISHERS];
    publisher_args args[PUBLISHERS];
    for (int p = 0; p < PUBLISHERS; p++) {
        args[p] = (publisher_args){engine, p, EACH};
        pthread_create(&threads[p], NULL, publisher, &args[p]);
    }
    int seen[PUBLISHERS][EACH] = {{0}};
    int last[PUBLISHERS] = {-1, -1, -1, -1};
    for (uint64_t expected = 0; expected < PUBLISHERS * EACH; expected++) {
        struct ArrowArray array;
        struct ArrowSchema schema;
        uint64_t sequence = UINT64_MAX;
        CHECK_EQ_INT(zenith_engine_poll(engine, &array, &schema, &sequence, FOREVER, NULL), ZENITH_OK);
        CHECK_EQ_INT(sequence, expected);
        CHECK_EQ_INT(array.length, 3);
        CHECK(strcmp(schema.children[0]->name, "x") == 0);
        const double *values = values_of(&array);
        int p = (int)(values[0] / 2.0 / 1000.0), i = (int)(values[0] / 2.0) % 1000;
        CHECK(p >= 0 && p < PUBLISHERS && i >= 0 && i < EACH);
        if (p >= 0 && p < PUBLISHERS && i >= 0 && i < EACH) {
            seen[p][i]++;
            CHECK(i > last[p]); /* each publisher's events in its order */
            last[p] = i;
        }
        CHECK(values[1] == 2.0 && values[2] == 4.0);
        array.release(&array);
        schema.release(&schema);
    }
    for (int p = 0; p < PUBLISHERS; p++) {
        pthread_join(threads[p], NULL);
        for (int i = 0; i < EACH; i++) CHECK_EQ_INT(seen[p][i], 1);
    }

    /* A failing event is reported in its place; the next one comes through. */
    double bad[1] = {-1.0}, good[1] = {5.0};
    uint64_t sequence = 0;
    CHECK_EQ_INT(publish_values(engine, bad, 1, FOREVER, &sequence), ZENITH_OK);
    CHECK_EQ_INT(sequence, PUBLISHERS * EACH);
    CHECK_EQ_INT(publish_values(engine, good, 1, FOREVER, NULL), ZENITH_OK);
    struct ArrowArray array;
    struct ArrowSchema schema;
    err = NULL;
    sequence = 0;
    CHECK_EQ_INT(zenith_engine_poll(engine, &array, &schema, &sequence, FOREVER, &err),
                 ZENITH_ERR_EVENT_FAILED);
    CHECK_EQ_INT(sequence, PUBLISHERS * EACH);
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_EVENT_FAILED);
    CHECK_STR_CONTAINS(zenith_error_message(err), "stage 0 'scale'");
    CHECK_STR_CONTAINS(zenith_error_message(err), "negative first value -1");
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_engine_poll(engine, &array, NULL, &sequence, FOREVER, NULL), ZENITH_OK);
    CHECK_EQ_INT(sequence, PUBLISHERS * EACH + 1);
    CHECK(values_of(&array)[0] == 10.0);
    array.release(&array);
    CHECK_EQ_INT(zenith_engine_poll(engine, &array, NULL, NULL, 0, NULL), ZENITH_WOULD_BLOCK);
    zenith_engine_free(engine);
    CHECK_EQ_INT(data.freed, 1);
}

static void test_back_pressure_and_release_at_shutdown(void) {
    zenith_engine_options *opts = NULL;
    zenith_engine *engine = NULL;
    CHECK_EQ_INT(zenith_engine_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_options_set_capacity(opts, 2, 1 << 20, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_new(opts, &engine, NULL), ZENITH_OK);
    zenith_engine_options_free(opts);
    double values[2] = {1.0, 2.0};
    CHECK_EQ_INT(publish_values(engine, values, 2, 0, NULL), ZENITH_OK);
    CHECK_EQ_INT(publish_values(engine, values, 2, 0, NULL), ZENITH_OK);
    /* Full: the event comes back, still valid (publish_values releases it). */
    struct ArrowArray array;
    struct ArrowSchema schema;
    make_batch(values, 2, &array);
    make_schema(&schema);
    CHECK_EQ_INT(zenith_engine_publish(engine, &array, &schema, 10, NULL, NULL), ZENITH_WOULD_BLOCK);
    CHECK(array.release != NULL && schema.release != NULL);
    CHECK_EQ_INT(array.length, 2);
    CHECK(values_of(&array)[1] == 2.0);
    array.release(&array);
    schema.release(&schema);
    uint64_t released = 0;
    CHECK_EQ_INT(zenith_engine_shutdown(engine, &released, NULL), ZENITH_OK);
    CHECK_EQ_INT(released, 2);
    zenith_error *err = NULL;
    CHECK_EQ_INT(publish_values(engine, values, 2, 0, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_engine_shutdown(engine, &released, &err), ZENITH_OK);
    CHECK_EQ_INT(released, 0);
    zenith_engine_free(engine);
    /* Events in flight at free are released too (valgrind checks nothing leaks). */
    CHECK_EQ_INT(zenith_engine_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_new(opts, &engine, NULL), ZENITH_OK);
    zenith_engine_options_free(opts);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(publish_values(engine, values, 2, FOREVER, NULL), ZENITH_OK);
    zenith_engine_free(engine);
}

static void test_wasm_normalize(void) {
    const char *dir = getenv("ZENITH_TEST_PLUGINS");
    char path[4096];
    snprintf(path, sizeof path, "%s/normalize.wasm", dir && *dir ? dir : "build/plugins");
    zenith_stage *stage = NULL;
    zenith_error *err = NULL;
    zenith_status status = zenith_stage_new_wasm(path, 0, 0, &stage, &err);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "cannot load %s (run `make plugins`): %s\n", path, zenith_error_message(err));
        zenith_error_free(err);
        return;
    }
    zenith_engine_options *opts = NULL;
    zenith_engine *engine = NULL;
    CHECK_EQ_INT(zenith_engine_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_options_add_stage(opts, stage, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_engine_new(opts, &engine, NULL), ZENITH_OK);
    zenith_engine_options_free(opts);
    zenith_stage_free(stage);
    double values[4] = {1.0, 2.0, 3.0, 4.0};
    for (int i = 0; i < 8; i++) {
        values[0] = i;
        CHECK_EQ_INT(publish_values(engine, values, 4, FOREVER, NULL), ZENITH_OK);
    }
    for (int i = 0; i < 8; i++) {
        struct ArrowArray array;
        struct ArrowSchema schema;
        uint64_t sequence = 0;
        CHECK_EQ_INT(zenith_engine_poll(engine, &array, &schema, &sequence, FOREVER, NULL), ZENITH_OK);
        CHECK_EQ_INT(sequence, i);
        double x[4] = {i, 2.0, 3.0, 4.0}, mean = (x[0] + 9.0) / 4, var = 0;
        for (int k = 0; k < 4; k++) var += (x[k] - mean) * (x[k] - mean);
        double std = square_root(var / 4);
        for (int k = 0; k < 4; k++) CHECK(absolute(values_of(&array)[k] - (x[k] - mean) / std) < 1e-12);
        array.release(&array);
        schema.release(&schema);
    }
    zenith_engine_free(engine);
}

/* ---- Loader stages ---- */

#define BASIC_ROWS 10000

/* A pass-through stage that fails a batch holding `*rejected` the first time it sees it. */
typedef struct {
    double rejected;
    int failures;
} reject_data;

static int32_t reject_once(void *user_data, struct ArrowArray *in_array,
                           struct ArrowSchema *in_schema, struct ArrowArray *out_array,
                           struct ArrowSchema *out_schema, char *error, size_t error_capacity) {
    reject_data *data = user_data;
    const double *in = values_of(in_array);
    for (int64_t i = 0; i < in_array->length; i++) {
        /* Only one worker sees the batch holding the value: no race on `failures`. */
        if (in[i] == data->rejected && data->failures++ == 0) {
            snprintf(error, error_capacity, "value %g rejected", data->rejected);
            return 5;
        }
    }
    *out_array = *in_array;
    in_array->release = NULL;
    *out_schema = *in_schema;
    in_schema->release = NULL;
    return 0;
}

/* basic.arrow's "value" column (row * 0.5), `workers` workers, batches of 1000, seed 3. */
static zenith_loader *open_values(const zenith_stage *const *stages, int n_stages, int shuffle,
                                  size_t workers) {
    const char *dir = getenv("ZENITH_TEST_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/basic.arrow", dir && *dir ? dir : "tests/data/generated");
    const char *columns[1] = {"value"};
    zenith_loader_options *opts = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 1000, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, shuffle, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_seed(opts, 3, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_num_workers(opts, workers, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shard_none(opts, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_columns(opts, columns, 1, NULL), ZENITH_OK);
    for (int i = 0; i < n_stages; i++)
        CHECK_EQ_INT(zenith_loader_options_add_stage(opts, stages[i], NULL), ZENITH_OK);
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    zenith_status status = zenith_loader_open(path, opts, &loader, &err);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) fprintf(stderr, "open %s: %s\n", path, zenith_error_message(err));
    zenith_error_free(err);
    zenith_loader_options_free(opts);
    return loader;
}

static void test_loader_stages_native(void) {
    scale_data triple = {3.0, 0};
    reject_data reject = {7500.0, 0}; /* row 5000, tripled */
    zenith_stage *stages[2] = {NULL, NULL};
    CHECK_EQ_INT(zenith_stage_new_native("triple", scale, &triple, free_scale, &stages[0], NULL),
                 ZENITH_OK);
    CHECK_EQ_INT(zenith_stage_new_native("reject_once", reject_once, &reject, NULL, &stages[1], NULL),
                 ZENITH_OK);
    zenith_loader *loader = open_values((const zenith_stage *const *)stages, 2, ZENITH_SHUFFLE_NONE, 4);
    /* The options and the loader share the stages: freeing the handles now changes nothing. */
    zenith_stage_free(stages[0]);
    zenith_stage_free(stages[1]);
    CHECK_EQ_INT(triple.freed, 0);
    int64_t next_row = 0, failures = 0;
    for (;;) {
        struct ArrowArray array;
        struct ArrowSchema schema;
        zenith_error *err = NULL;
        zenith_status status = zenith_loader_next(loader, &array, &schema, &err);
        if (status == ZENITH_DONE) break;
        if (status == ZENITH_ERR_EVENT_FAILED) {
            failures++;
            CHECK_STR_CONTAINS(zenith_error_message(err), "stage `reject_once` failed on batch 5");
            CHECK_STR_CONTAINS(zenith_error_message(err), "value 7500 rejected");
            zenith_error_free(err);
            continue;
        }
        CHECK_EQ_INT(status, ZENITH_OK);
        if (status != ZENITH_OK) {
            zenith_error_free(err);
            break;
        }
        CHECK_EQ_INT(array.length, 1000);
        int64_t bad = 0;
        for (int64_t i = 0; i < array.length; i++)
            bad += values_of(&array)[i] != (double)(next_row + i) * 0.5 * 3.0;
        CHECK_EQ_INT(bad, 0);
        next_row += array.length;
        array.release(&array);
        schema.release(&schema);
    }
    CHECK_EQ_INT(failures, 1);
    CHECK_EQ_INT(next_row, BASIC_ROWS);
    zenith_loader_free(loader);
    CHECK_EQ_INT(triple.freed, 1);
}

static void test_loader_stages_wasm_normalize(void) {
    const char *dir = getenv("ZENITH_TEST_PLUGINS");
    char path[4096];
    snprintf(path, sizeof path, "%s/normalize.wasm", dir && *dir ? dir : "build/plugins");
    zenith_stage *stage = NULL;
    CHECK_EQ_INT(zenith_stage_new_wasm(path, 0, 0, &stage, NULL), ZENITH_OK);
    if (stage == NULL) return;
    zenith_loader *plain = open_values(NULL, 0, ZENITH_SHUFFLE_GLOBAL, 2);
    zenith_loader *loader = open_values((const zenith_stage *const *)&stage, 1, ZENITH_SHUFFLE_GLOBAL, 3);
    zenith_stage_free(stage);
    int64_t batches = 0;
    for (;;) {
        struct ArrowArray a, b;
        struct ArrowSchema sa, sb;
        zenith_status status = zenith_loader_next(plain, &a, &sa, NULL);
        CHECK_EQ_INT(zenith_loader_next(loader, &b, &sb, NULL), status);
        if (status != ZENITH_OK) break;
        const double *x = values_of(&a), *y = values_of(&b);
        double mean = 0, var = 0;
        for (int64_t i = 0; i < a.length; i++) mean += x[i];
        mean /= (double)a.length;
        for (int64_t i = 0; i < a.length; i++) var += (x[i] - mean) * (x[i] - mean);
        double std = square_root(var / (double)a.length);
        int64_t bad = 0;
        for (int64_t i = 0; i < a.length; i++) bad += absolute(y[i] - (x[i] - mean) / std) > 1e-12;
        CHECK_EQ_INT(bad, 0);
        batches++;
        a.release(&a);
        sa.release(&sa);
        b.release(&b);
        sb.release(&sb);
    }
    CHECK_EQ_INT(batches, BASIC_ROWS / 1000);
    zenith_loader_free(plain);
    zenith_loader_free(loader);
}

static void test_arguments(void) {
    zenith_error *err = NULL;
    zenith_stage *stage = NULL;
    CHECK_EQ_INT(zenith_stage_new_wasm("/nonexistent/plugin.wasm", 0, 0, &stage, &err),
                 ZENITH_ERR_NOT_FOUND);
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_stage_new_native("x", NULL, NULL, NULL, &stage, &err), ZENITH_ERR_NULL_ARGUMENT);
    zenith_error_free(err);
    zenith_engine_options *opts = NULL;
    CHECK_EQ_INT(zenith_engine_options_new(&opts), ZENITH_OK);
    err = NULL;
    CHECK_EQ_INT(zenith_engine_options_set_workers(opts, 0, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "workers");
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_engine_options_set_capacity(opts, 0, 1, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_engine_options_add_stage(opts, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    zenith_engine *engine = NULL;
    CHECK_EQ_INT(zenith_engine_new(opts, &engine, NULL), ZENITH_OK);
    zenith_engine_options_free(opts);
    CHECK_EQ_INT(zenith_engine_publish(engine, NULL, NULL, 0, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_engine_poll(engine, NULL, NULL, NULL, 0, NULL), ZENITH_ERR_NULL_ARGUMENT);
    /* An invalid struct array (longer than its column) is refused, and consumed. */
    struct ArrowArray array;
    struct ArrowSchema schema;
    double values[1] = {1.0};
    make_batch(values, 1, &array);
    make_schema(&schema);
    array.length = 5;
    err = NULL;
    CHECK_EQ_INT(zenith_engine_publish(engine, &array, &schema, 0, NULL, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK(array.release == NULL && schema.release == NULL);
    zenith_error_free(err);
    zenith_engine_free(engine);
    zenith_engine_free(NULL);
    zenith_stage_free(NULL);
    zenith_engine_options_free(NULL);
    zenith_loader_options *loader_opts = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&loader_opts), ZENITH_OK);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_options_add_stage(loader_opts, NULL, &err), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "stage");
    zenith_error_free(err);
    zenith_loader_options_free(loader_opts);
}

int main(void) {
    test_native_stage_order_failures_and_threads();
    test_back_pressure_and_release_at_shutdown();
    test_wasm_normalize();
    test_loader_stages_native();
    test_loader_stages_wasm_normalize();
    test_arguments();
    return check_summary("test_engine");
}
