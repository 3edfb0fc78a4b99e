/*
 * stream_batches.c — stream a dataset through libzenith, the way a C trainer would: shuffled,
 * built by worker threads, one epoch.
 *
 *   cc -std=c11 stream_batches.c $(pkg-config --cflags --libs zenith) \
 *      -Wl,-rpath,$(pkg-config --variable=libdir zenith) -o stream_batches
 *   ./stream_batches data/ 1024 global 2     # path, batch size, shuffle (none|global|block), workers
 *
 * (the rpath lets it find libzenith.so.0 in a prefix the dynamic loader does not search; see the
 * README). The path is an Arrow IPC / Parquet / CSV file, a directory of shards or a glob.
 * Each batch arrives as an Arrow C Data Interface struct array (one child per column) that this
 * program owns until it calls release(). Every failing call returns a negative zenith_status and,
 * when given a zenith_error **, an error object with a message.
 */
/* clock_gettime is POSIX, not ISO C. */
#define _POSIX_C_SOURCE 199309L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zenith.h>

/* Prints a failed call's status and message, frees the error, and returns the exit code. */
static int report(const char *what, zenith_status status, zenith_error *err) {
    fprintf(stderr, "%s failed: %s (%d): %s\n", what, zenith_status_str(status), (int)status,
            zenith_error_message(err));
    zenith_error_free(err);
    return EXIT_FAILURE;
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <path> [batch_size] [none|global|block] [workers]\n", argv[0]);
        return EXIT_FAILURE;
    }
    const char *path = argv[1];
    size_t batch_size = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : ZENITH_DEFAULT_BATCH_SIZE;
    const char *shuffle_name = argc > 3 ? argv[3] : "global";
    zenith_shuffle shuffle = strcmp(shuffle_name, "none") == 0    ? ZENITH_SHUFFLE_NONE
                             : strcmp(shuffle_name, "block") == 0 ? ZENITH_SHUFFLE_BLOCK
                                                                  : ZENITH_SHUFFLE_GLOBAL;
    size_t workers = argc > 4 ? (size_t)strtoull(argv[4], NULL, 10) : 2;
    printf("libzenith %s (header %d.%d.%d)\n", zenith_version(), ZENITH_VERSION_MAJOR,
           ZENITH_VERSION_MINOR, ZENITH_VERSION_PATCH);

    /* 1. Options: a builder handle with typed setters. */
    zenith_error *err = NULL;
    zenith_loader_options *opts = NULL;
    zenith_status status = zenith_loader_options_new(&opts);
    if (status != ZENITH_OK) return report("zenith_loader_options_new", status, NULL);
    if ((status = zenith_loader_options_set_batch_size(opts, batch_size, &err)) != ZENITH_OK ||
        (status = zenith_loader_options_set_shuffle(opts, shuffle, &err)) != ZENITH_OK ||
        (status = zenith_loader_options_set_seed(opts, 42, &err)) != ZENITH_OK ||
        (status = zenith_loader_options_set_num_workers(opts, workers, &err)) != ZENITH_OK) {
        zenith_loader_options_free(opts);
        return report("setting loader options", status, err);
    }

    /* 2. Open: the options are copied, so they can be freed right away. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    zenith_loader *loader = NULL;
    status = zenith_loader_open(path, opts, &loader, &err);
    zenith_loader_options_free(opts);
    if (status != ZENITH_OK) return report("zenith_loader_open", status, err);

    /* 3. The schema: a struct whose children are the columns. */
    struct ArrowSchema schema;
    status = zenith_loader_schema(loader, &schema, &err);
    if (status != ZENITH_OK) {
        zenith_loader_free(loader);
        return report("zenith_loader_schema", status, err);
    }
    printf("columns:");
    for (int64_t i = 0; i < schema.n_children; i++) {
        printf(" %s(%s)", schema.children[i]->name, schema.children[i]->format);
    }
    printf("\n");
    /* The first column is summed when it is int64, so the stream really touches the data. */
    int sum_first_column = schema.n_children > 0 && strcmp(schema.children[0]->format, "l") == 0;
    schema.release(&schema);

    /* 4. Iterate until ZENITH_DONE; release every batch. */
    uint64_t batches = 0, rows = 0;
    int64_t checksum = 0;
    double first_batch_seconds = -1.0;
    for (;;) {
        struct ArrowArray batch;
        status = zenith_loader_next(loader, &batch, NULL, &err);
        if (status == ZENITH_DONE) break;
        if (status != ZENITH_OK) {
            zenith_loader_free(loader);
            return report("zenith_loader_next", status, err);
        }
        if (first_batch_seconds < 0) first_batch_seconds = seconds_since(&start);
        if (sum_first_column) {
            const struct ArrowArray *column = batch.children[0];
            const int64_t *values = (const int64_t *)column->buffers[1] + column->offset;
            for (int64_t i = 0; i < column->length; i++) checksum += values[i];
        }
        batches++;
        rows += (uint64_t)batch.length;
        batch.release(&batch);
    }
    double elapsed = seconds_since(&start);

    /* 5. What the loader measured: where the time went. */
    zenith_stats stats;
    stats.struct_size = sizeof stats;
    status = zenith_loader_stats(loader, &stats, &err);
    zenith_loader_free(loader);
    if (status != ZENITH_OK) return report("zenith_loader_stats", status, err);

    const char *modes[] = {"none", "global", "block"};
    printf("streamed %" PRIu64 " batches, %" PRIu64 " rows in %.3f s: %.0f rows/s, %.2f GB/s\n",
           batches, rows, elapsed, elapsed > 0 ? (double)rows / elapsed : 0.0,
           elapsed > 0 ? (double)stats.bytes / elapsed / 1e9 : 0.0);
    printf("shuffle %s, %u workers; time to first batch %.3f ms; consumer waited %.3f s, "
           "workers busy %.3f s (decoding %.3f s, %" PRIu64 " chunks)\n",
           modes[stats.shuffle_mode], stats.num_workers, first_batch_seconds * 1e3,
           (double)stats.consumer_wait_ns * 1e-9, (double)stats.worker_busy_ns * 1e-9,
           (double)stats.decode_ns * 1e-9, stats.chunks_decoded);
    printf("checksum of the first column: %" PRId64 "\n", checksum);
    return EXIT_SUCCESS;
}
