/*
 * test_telemetry.c — the I/O backends and the telemetry through the C ABI: Parquet read with
 * ZENITH_IO_MMAP, ZENITH_IO_URING and ZENITH_IO_PREAD gives the same rows and the stats name the
 * backend; zenith_telemetry_prometheus follows the caller-buffer protocol; a server started with
 * zenith_telemetry_serve answers GET /metrics over loopback and stops when freed. Run under
 * valgrind by tests/c/run.sh: zero errors and zero definite leaks are part of passing.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zenith.h>

#include "check.h"

#define BASIC_ROWS 10000

static const char *data_path(const char *name) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/%s", dir ? dir : "tests/data/generated", name);
    return buffer;
}

/* Reads one epoch of `path` in dataset order with `backend`; returns the sum of the ids (or -1),
 * and fills `stats`. */
static int64_t read_ids(const char *path, zenith_io_backend backend, zenith_stats *stats,
                        char *reason, size_t reason_cap) {
    zenith_loader_options *opts = NULL;
    zenith_loader *loader = NULL;
    zenith_error *err = NULL;
    int64_t sum = 0;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_num_workers(opts, 2, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_io_backend(opts, backend, NULL), ZENITH_OK);
    zenith_status status = zenith_loader_open(path, opts, &loader, &err);
    zenith_loader_options_free(opts);
    CHECK_EQ_INT(status, ZENITH_OK);
    if (status != ZENITH_OK) {
        fprintf(stderr, "open: %s\n", zenith_error_message(err));
        zenith_error_free(err);
        return -1;
    }
    int64_t next_id = 0;
    for (;;) {
        struct ArrowArray array;
        status = zenith_loader_next(loader, &array, NULL, NULL);
        if (status != ZENITH_OK) break;
        const struct ArrowArray *ids = array.children[0];
        const int64_t *values = (const int64_t *)ids->buffers[1] + ids->offset;
        for (int64_t i = 0; i < ids->length; i++) {
            if (values[i] != next_id) sum = -1 - BASIC_ROWS * (int64_t)BASIC_ROWS;
            sum += values[i];
            next_id++;
        }
        array.release(&array);
    }
    CHECK_EQ_INT(status, ZENITH_DONE);
    CHECK_EQ_INT(next_id, BASIC_ROWS);
    stats->struct_size = sizeof *stats;
    CHECK_EQ_INT(zenith_loader_stats(loader, stats, NULL), ZENITH_OK);
    size_t len = 0;
    CHECK_EQ_INT(zenith_loader_io_fallback_reason(loader, reason, reason_cap, &len, NULL),
                 ZENITH_OK);
    CHECK_EQ_INT(strlen(reason), len);
    zenith_loader_free(loader);
    return sum;
}

/* Valgrind runs its client with its preload libraries. Memcheck cannot see the kernel fill
 * buffers through io_uring (the writes happen outside any system call it intercepts), so every
 * byte read that way looks uninitialised to it: io_uring is left to the Rust and Python tests
 * there. */
static int under_valgrind(void) {
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static void test_backends_deliver_the_same_rows(void) {
    const int64_t expected = (int64_t)BASIC_ROWS * (BASIC_ROWS - 1) / 2;
    const zenith_io_backend backends[] = {ZENITH_IO_MMAP, ZENITH_IO_URING, ZENITH_IO_PREAD};
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        if (backends[b] == ZENITH_IO_URING && under_valgrind()) {
            printf("test_telemetry: ZENITH_IO_URING skipped under valgrind (memcheck cannot see "
                   "io_uring's kernel writes)\n");
            continue;
        }
        zenith_stats stats;
        char reason[512];
        memset(&stats, 0, sizeof stats);
        CHECK_EQ_INT(read_ids(data_path("parquet/basic.zstd.parquet"), backends[b], &stats, reason,
                              sizeof reason),
                     expected);
        CHECK_EQ_INT(stats.io_backend_requested, backends[b]);
        CHECK(stats.io_read_bytes > 0);
        if (backends[b] == ZENITH_IO_URING) {
            /* io_uring where the kernel allows it; otherwise pread, with the reason. */
            CHECK(stats.io_backend == ZENITH_IO_URING || stats.io_backend == ZENITH_IO_PREAD);
            CHECK(stats.io_backend == ZENITH_IO_URING || strlen(reason) > 0);
            printf("test_telemetry: io_uring request ran on %s%s%s\n",
                   stats.io_backend == ZENITH_IO_URING ? "io_uring" : "pread",
                   reason[0] ? ": " : "", reason);
        } else {
            CHECK_EQ_INT(stats.io_backend, backends[b]);
            CHECK_EQ_INT(strlen(reason), 0);
        }
        if (backends[b] != ZENITH_IO_MMAP) CHECK(stats.io_read_ns > 0);
    }
}

static void test_option_values_are_checked(void) {
    zenith_loader_options *opts = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_io_backend(opts, 3, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "unknown I/O backend 3");
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_loader_options_set_io_backend(NULL, ZENITH_IO_PREAD, NULL),
                 ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_loader_options_set_io_direct(opts, true, NULL), ZENITH_OK);
    zenith_loader_options_free(opts);
}

static void test_prometheus_text_buffer_protocol(void) {
    size_t len = 0;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_telemetry_prometheus(NULL, 0, &len, &err), ZENITH_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_BUFFER_TOO_SMALL);
    zenith_error_free(err);
    CHECK(len > 0);
    CHECK_EQ_INT(zenith_telemetry_prometheus(NULL, 0, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);

    size_t cap = len + 4096; /* the text may grow between two calls */
    char *text = malloc(cap);
    CHECK_EQ_INT(zenith_telemetry_prometheus(text, cap, &len, NULL), ZENITH_OK);
    CHECK_EQ_INT(strlen(text), len);
    CHECK_STR_CONTAINS(text, "# TYPE zenith_loader_rows_total counter\n");
    CHECK_STR_CONTAINS(text, "zenith_io_read_bytes_total{backend=\"pread\"} ");
    CHECK_STR_CONTAINS(text, "zenith_io_read_seconds_bucket{backend=\"mmap\",le=\"+Inf\"} ");
    /* Three loaders per backend test ran before this one: rows are counted. */
    CHECK(strstr(text, "\nzenith_loader_rows_total 0\n") == NULL);
    free(text);
}

/* Sends `request` to 127.0.0.1:port and reads the whole response into `out` (until the server
 * closes: the server keeps HTTP/1.1 connections alive, so requests say `Connection: close`). */
static size_t http(uint16_t port, const char *request, char *out, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        write(fd, request, strlen(request)) == (ssize_t)strlen(request)) {
        ssize_t n;
        while (got + 1 < cap && (n = read(fd, out + got, cap - 1 - got)) > 0) got += (size_t)n;
    }
    out[got] = '\0';
    close(fd);
    return got;
}

static void test_metrics_endpoint_over_loopback(void) {
    zenith_telemetry_server *server = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_telemetry_serve("127.0.0.1:0", &server, &err), ZENITH_OK);
    uint16_t port = zenith_telemetry_server_port(server);
    CHECK(port != 0);
    CHECK_EQ_INT(zenith_telemetry_server_port(NULL), 0);

    static char response[1 << 20];
    http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", response,
         sizeof response);
    CHECK_STR_CONTAINS(response, "HTTP/1.1 200 OK\r\n");
    CHECK_STR_CONTAINS(response, "Content-Type: text/plain; version=0.0.4");
    CHECK_STR_CONTAINS(response, "# TYPE zenith_loader_consumer_wait_seconds histogram\n");
    http(port, "GET /other HTTP/1.1\r\nConnection: close\r\n\r\n", response, sizeof response);
    CHECK_STR_CONTAINS(response, "HTTP/1.1 404 Not Found\r\n");

    /* The port is taken while the server runs. */
    char addr[32];
    zenith_telemetry_server *second = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    CHECK_EQ_INT(zenith_telemetry_serve(addr, &second, &err), ZENITH_ERR_IO);
    CHECK(second == NULL);
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_telemetry_serve("no port here", &second, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_telemetry_serve(NULL, &second, NULL), ZENITH_ERR_NULL_ARGUMENT);

    zenith_telemetry_server_free(server);
    zenith_telemetry_server_free(NULL);
    /* Stopped: nothing answers any more. */
    CHECK_EQ_INT(
        http(port, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", response, sizeof response),
        0);
}

int main(void) {
    test_backends_deliver_the_same_rows();
    test_option_values_are_checked();
    test_prometheus_text_buffer_protocol();
    test_metrics_endpoint_over_loopback();
    return check_summary("test_telemetry");
}
