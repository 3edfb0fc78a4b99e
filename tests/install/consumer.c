/*
 * consumer.c — a C program built against an *installed* libzenith (pkg-config or CMake), the way
 * a user builds one. It checks that the header and the library it runs with agree on the
 * version, reads basic.arrow through zenith_loader_next and through an ArrowArrayStream, and
 * checks the error path of a missing file.
 *
 * Usage: consumer [DATA_DIR]   (default: $ZENITH_TEST_DATA). Exit status 0 when every check passes.
 */

#include <zenith.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECTED_ROWS 10000
#define BATCH_SIZE 1000

static int failures = 0;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "consumer: check failed: %s: ", #cond);     \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            failures++;                                                 \
        }                                                               \
    } while (0)

/* Index of the child of a struct schema named `name`, or -1. */
static int64_t child_index(const struct ArrowSchema *schema, const char *name) {
    for (int64_t i = 0; i < schema->n_children; i++) {
        if (schema->children[i]->name != NULL && strcmp(schema->children[i]->name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Marks the ids of one batch in `seen`; returns the batch's row count. */
static int64_t mark_ids(const struct ArrowArray *batch, int64_t id_col, unsigned char *seen) {
    const struct ArrowArray *ids = batch->children[id_col];
    CHECK(ids->null_count == 0, "id column has %" PRId64 " nulls", ids->null_count);
    CHECK(ids->length == batch->length, "id length %" PRId64 " != batch length %" PRId64,
          ids->length, batch->length);
    const int64_t *values = (const int64_t *)ids->buffers[1];
    for (int64_t i = 0; i < ids->length; i++) {
        int64_t id = values[ids->offset + i];
        if (id < 0 || id >= EXPECTED_ROWS || seen[id]) {
            CHECK(0, "id %" PRId64 " out of range or delivered twice", id);
            break;
        }
        seen[id] = 1;
    }
    return batch->length;
}

static void check_all_seen(const unsigned char *seen, const char *how) {
    for (int64_t id = 0; id < EXPECTED_ROWS; id++) {
        if (!seen[id]) {
            CHECK(0, "%s: id %" PRId64 " never delivered", how, id);
            return;
        }
    }
}

static void check_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", ZENITH_VERSION_MAJOR, ZENITH_VERSION_MINOR,
             ZENITH_VERSION_PATCH);
    const char *version = zenith_version();
    CHECK(version != NULL && strcmp(version, expected) == 0, "zenith_version() = %s, header says %s",
          version ? version : "(null)", expected);
    CHECK(zenith_version_number() == ZENITH_VERSION_NUMBER, "zenith_version_number() = %u, header %u",
          (unsigned)zenith_version_number(), (unsigned)ZENITH_VERSION_NUMBER);
    CHECK(ZENITH_VERSION_NUMBER ==
              ZENITH_VERSION_MAJOR * 10000 + ZENITH_VERSION_MINOR * 100 + ZENITH_VERSION_PATCH,
          "ZENITH_VERSION_NUMBER does not encode the version macros");
    printf("consumer: libzenith %s (header %s)\n", version ? version : "(null)", expected);
}

static void check_status_strings(void) {
    const zenith_status codes[] = {ZENITH_OK, ZENITH_DONE, ZENITH_ERR_NULL_ARGUMENT,
                                   ZENITH_ERR_INVALID_ARGUMENT, ZENITH_ERR_IO,
                                   ZENITH_ERR_NOT_FOUND, ZENITH_ERR_FORMAT,
                                   ZENITH_ERR_UNSUPPORTED, ZENITH_ERR_PANIC, ZENITH_ERR_INTERNAL};
    const char *unknown = zenith_status_str(-12345);
    CHECK(unknown != NULL && strcmp(unknown, "unknown status code") == 0,
          "zenith_status_str(-12345) = %s", unknown ? unknown : "(null)");
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = zenith_status_str(codes[i]);
        CHECK(s != NULL && s[0] != '\0' && (unknown == NULL || strcmp(s, unknown) != 0),
              "zenith_status_str(%d) = %s", (int)codes[i], s ? s : "(null)");
    }
}

static void check_loader_next(const char *path) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;

    CHECK(zenith_loader_options_new(&opts) == ZENITH_OK && opts != NULL, "options_new");
    if (opts == NULL) return;
    zenith_status st = zenith_loader_options_set_batch_size(opts, BATCH_SIZE, &err);
    CHECK(st == ZENITH_OK, "set_batch_size: %s", zenith_error_message(err));
    zenith_error_free(err);
    err = NULL;

    st = zenith_loader_open(path, opts, &loader, &err);
    zenith_loader_options_free(opts);
    CHECK(st == ZENITH_OK && loader != NULL, "zenith_loader_open(%s): %s (%s)", path,
          zenith_status_str(st), zenith_error_message(err));
    zenith_error_free(err);
    err = NULL;
    if (loader == NULL) return;

    struct ArrowSchema schema;
    st = zenith_loader_schema(loader, &schema, &err);
    CHECK(st == ZENITH_OK, "zenith_loader_schema: %s", zenith_error_message(err));
    zenith_error_free(err);
    err = NULL;
    if (st != ZENITH_OK) {
        zenith_loader_free(loader);
        return;
    }
    CHECK(strcmp(schema.format, "+s") == 0, "schema format %s", schema.format);
    int64_t id_col = child_index(&schema, "id");
    CHECK(id_col >= 0 && strcmp(schema.children[id_col]->format, "l") == 0,
          "no int64 column \"id\"");
    schema.release(&schema);
    if (id_col < 0) {
        zenith_loader_free(loader);
        return;
    }

    unsigned char *seen = calloc(EXPECTED_ROWS, 1);
    int64_t rows = 0, batches = 0;
    for (;;) {
        struct ArrowArray array;
        st = zenith_loader_next(loader, &array, NULL, &err);
        if (st == ZENITH_DONE) break;
        if (st != ZENITH_OK) {
            CHECK(0, "zenith_loader_next: %s (%s)", zenith_status_str(st), zenith_error_message(err));
            zenith_error_free(err);
            break;
        }
        CHECK(array.length <= BATCH_SIZE, "batch of %" PRId64 " rows", array.length);
        rows += mark_ids(&array, id_col, seen);
        batches++;
        array.release(&array);
        CHECK(array.release == NULL, "release callback did not mark the array released");
    }
    zenith_loader_free(loader);
    CHECK(rows == EXPECTED_ROWS, "zenith_loader_next delivered %" PRId64 " rows", rows);
    check_all_seen(seen, "zenith_loader_next");
    free(seen);
    printf("consumer: zenith_loader_next: %" PRId64 " rows in %" PRId64 " batches\n", rows, batches);
}

static void check_stream(const char *path) {
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    zenith_status st = zenith_loader_open(path, NULL, &loader, &err);
    CHECK(st == ZENITH_OK, "zenith_loader_open(%s): %s", path, zenith_error_message(err));
    zenith_error_free(err);
    err = NULL;
    if (st != ZENITH_OK) return;

    struct ArrowArrayStream stream;
    st = zenith_loader_export_stream(loader, &stream, &err);
    zenith_loader_free(loader); /* the stream outlives the loader */
    CHECK(st == ZENITH_OK, "zenith_loader_export_stream: %s", zenith_error_message(err));
    zenith_error_free(err);
    if (st != ZENITH_OK) return;

    struct ArrowSchema schema;
    int rc = stream.get_schema(&stream, &schema);
    CHECK(rc == 0, "get_schema: %d", rc);
    int64_t id_col = rc == 0 ? child_index(&schema, "id") : -1;
    if (rc == 0) schema.release(&schema);
    CHECK(id_col >= 0, "stream schema has no \"id\"");

    unsigned char *seen = calloc(EXPECTED_ROWS, 1);
    int64_t rows = 0;
    while (id_col >= 0) {
        struct ArrowArray array;
        rc = stream.get_next(&stream, &array);
        if (rc != 0) {
            const char *msg = stream.get_last_error(&stream);
            CHECK(0, "get_next: %d (%s)", rc, msg ? msg : "");
            break;
        }
        if (array.release == NULL) break; /* end of stream */
        rows += mark_ids(&array, id_col, seen);
        array.release(&array);
    }
    stream.release(&stream);
    CHECK(rows == EXPECTED_ROWS, "stream delivered %" PRId64 " rows", rows);
    check_all_seen(seen, "stream");
    free(seen);
    printf("consumer: ArrowArrayStream: %" PRId64 " rows\n", rows);
}

static void check_missing(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/does-not-exist.arrow", dir);
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    zenith_status st = zenith_loader_open(path, NULL, &loader, &err);
    CHECK(st == ZENITH_ERR_NOT_FOUND, "missing path gave %d (%s)", (int)st, zenith_status_str(st));
    CHECK(loader == NULL, "*out written on failure");
    CHECK(err != NULL, "no error object");
    if (err != NULL) {
        CHECK(zenith_error_code(err) == ZENITH_ERR_NOT_FOUND, "zenith_error_code = %d",
              (int)zenith_error_code(err));
        const char *msg = zenith_error_message(err);
        CHECK(msg != NULL && msg[0] != '\0', "empty error message");
        printf("consumer: missing path: %s: %s\n", zenith_status_str(st), msg ? msg : "(null)");
        zenith_error_free(err);
    }
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("ZENITH_TEST_DATA");
    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "usage: %s DATA_DIR (or set ZENITH_TEST_DATA)\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/basic.arrow", dir);

    check_version();
    check_status_strings();
    check_loader_next(path);
    check_stream(path);
    check_missing(dir);

    if (failures != 0) {
        fprintf(stderr, "consumer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("consumer: all checks passed\n");
    return 0;
}
