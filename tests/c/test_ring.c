/* test_ring.c — zenith_ring from C under valgrind: arguments and errors, FIFO order, full and
 * empty rings (ZENITH_WOULD_BLOCK), batches, rings freed with elements in them, and threads: an
 * SPSC ring between two threads and an MPMC ring between three producers and two consumers,
 * every element delivered exactly once and in order per producer. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <zenith.h>

#include "check.h"

/* An element with a layout of its own (12 bytes, no padding). */
typedef struct {
    uint32_t producer;
    uint32_t seq_lo;
    uint32_t seq_hi;
} element;

static element make(uint32_t producer, uint64_t seq) {
    element e = {producer, (uint32_t)seq, (uint32_t)(seq >> 32)};
    return e;
}

static uint64_t seq_of(element e) { return (uint64_t)e.seq_hi << 32 | e.seq_lo; }

static void expect_error(zenith_status status, zenith_error *err, zenith_status code,
                         const char *needle) {
    CHECK_EQ_INT(status, code);
    CHECK_EQ_INT(zenith_error_code(err), code);
    CHECK_STR_CONTAINS(zenith_error_message(err), needle);
    zenith_error_free(err);
}

/* Runs `call` (which reports into `err`) and checks it failed with `code` and a message that
 * contains `needle`. */
#define EXPECT_ERROR(call, code, needle)              \
    do {                                              \
        err = NULL;                                   \
        zenith_status status_ = (call);               \
        expect_error(status_, err, (code), (needle)); \
    } while (0)

static void test_arguments(void) {
    zenith_ring *ring = NULL;
    zenith_error *err = NULL;
    const zenith_status invalid = ZENITH_ERR_INVALID_ARGUMENT, null = ZENITH_ERR_NULL_ARGUMENT;
    EXPECT_ERROR(zenith_ring_new(0, 8, ZENITH_RING_SPSC, &ring, &err), invalid, "capacity");
    EXPECT_ERROR(zenith_ring_new(8, 0, ZENITH_RING_MPMC, &ring, &err), invalid, "element size");
    EXPECT_ERROR(zenith_ring_new(8, 8, 7, &ring, &err), invalid, "unknown ring kind 7");
    const size_t huge = (size_t)1 << 40;
    EXPECT_ERROR(zenith_ring_new(huge, huge, ZENITH_RING_MPMC, &ring, &err), invalid,
                 "does not fit");
    CHECK(ring == NULL); /* untouched on failure */
    CHECK_EQ_INT(zenith_ring_new(8, 8, ZENITH_RING_SPSC, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);

    CHECK_EQ_INT(zenith_ring_len(NULL), 0);
    CHECK_EQ_INT(zenith_ring_capacity(NULL), 0);
    zenith_ring_free(NULL);
    CHECK(strcmp(zenith_status_str(ZENITH_WOULD_BLOCK), "would block (ring full or empty, or no batch ready in time)") == 0);

    CHECK_EQ_INT(zenith_ring_new(1, sizeof(element), ZENITH_RING_MPMC, &ring, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_ring_capacity(ring), 2);
    element e = make(1, 2);
    size_t count = 99;
    EXPECT_ERROR(zenith_ring_push(NULL, &e, &err), null, "`ring`");
    EXPECT_ERROR(zenith_ring_push(ring, NULL, &err), null, "`element`");
    EXPECT_ERROR(zenith_ring_pop(ring, NULL, &err), null, "`out_element`");
    EXPECT_ERROR(zenith_ring_push_many(ring, &e, 1, NULL, &err), null, "`pushed`");
    EXPECT_ERROR(zenith_ring_push_many(ring, NULL, 1, &count, &err), null, "`elements`");
    EXPECT_ERROR(zenith_ring_pop_many(ring, NULL, 1, &count, &err), null, "`out`");
    EXPECT_ERROR(zenith_ring_pop_many(ring, &e, 1, NULL, &err), null, "`popped`");
    EXPECT_ERROR(zenith_ring_push_many(ring, &e, SIZE_MAX / 2, &count, &err), invalid, "overflow");
    CHECK_EQ_INT(count, 99); /* untouched on failure */
    /* (NULL, 0) is an empty batch. */
    CHECK_EQ_INT(zenith_ring_push_many(ring, NULL, 0, &count, NULL), ZENITH_OK);
    CHECK_EQ_INT(count, 0);
    count = 99;
    CHECK_EQ_INT(zenith_ring_pop_many(ring, NULL, 0, &count, NULL), ZENITH_OK);
    CHECK_EQ_INT(count, 0);
    zenith_ring_free(ring);
}

static void test_fifo(zenith_ring_kind kind) {
    zenith_ring *ring = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_ring_new(5, sizeof(element), kind, &ring, &err), ZENITH_OK);
    CHECK_EQ_INT(zenith_ring_capacity(ring), 8);
    element out = make(0, 0);
    CHECK_EQ_INT(zenith_ring_pop(ring, &out, &err), ZENITH_WOULD_BLOCK);
    CHECK(err == NULL); /* not an error */
    for (uint64_t i = 0; i < 8; i++) {
        element e = make(7, i);
        CHECK_EQ_INT(zenith_ring_push(ring, &e, &err), ZENITH_OK);
    }
    element extra = make(7, 8);
    CHECK_EQ_INT(zenith_ring_push(ring, &extra, &err), ZENITH_WOULD_BLOCK);
    CHECK_EQ_INT(zenith_ring_len(ring), 8);

    size_t count = 99;
    CHECK_EQ_INT(zenith_ring_push_many(ring, &extra, 1, &count, &err), ZENITH_WOULD_BLOCK);
    CHECK_EQ_INT(count, 0);
    element three[3];
    CHECK_EQ_INT(zenith_ring_pop_many(ring, three, 3, &count, &err), ZENITH_OK);
    CHECK_EQ_INT(count, 3);
    for (uint64_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(three[i].producer, 7);
        CHECK_EQ_INT(seq_of(three[i]), i);
    }
    /* A batch larger than the free room pushes a prefix, wrapping around the end. */
    element batch[5];
    for (uint64_t i = 0; i < 5; i++) batch[i] = make(7, 8 + i);
    CHECK_EQ_INT(zenith_ring_push_many(ring, batch, 5, &count, &err), ZENITH_OK);
    CHECK_EQ_INT(count, 3);
    element all[10];
    CHECK_EQ_INT(zenith_ring_pop_many(ring, all, 10, &count, &err), ZENITH_OK);
    CHECK_EQ_INT(count, 8);
    for (uint64_t i = 0; i < 8; i++) CHECK_EQ_INT(seq_of(all[i]), 3 + i);
    CHECK_EQ_INT(zenith_ring_pop_many(ring, all, 10, &count, &err), ZENITH_WOULD_BLOCK);
    CHECK_EQ_INT(count, 0);
    CHECK_EQ_INT(zenith_ring_len(ring), 0);

    /* Freed with elements in it: nothing leaks (valgrind). */
    CHECK_EQ_INT(zenith_ring_push_many(ring, batch, 5, &count, &err), ZENITH_OK);
    CHECK_EQ_INT(count, 5);
    zenith_ring_free(ring);
}

/* ---- threads ------------------------------------------------------------------------------ */

enum { PRODUCERS = 3, CONSUMERS = 2, PER_PRODUCER = 3000, SPSC_COUNT = 10000 };

typedef struct {
    zenith_ring *ring;
    uint32_t producer;
    uint64_t count;
    int failures;
} producer_args;

static void *produce(void *arg) {
    producer_args *a = arg;
    uint64_t seq = 0;
    while (seq < a->count) {
        /* Alternate single pushes and batches of up to 7. */
        element batch[7];
        size_t want = (seq % 3 == 0) ? 1 : (size_t)(1 + seq % 7);
        if (want > a->count - seq) want = (size_t)(a->count - seq);
        for (size_t i = 0; i < want; i++) batch[i] = make(a->producer, seq + i);
        size_t pushed = 0;
        zenith_status status;
        if (want == 1) {
            status = zenith_ring_push(a->ring, batch, NULL);
            pushed = status == ZENITH_OK;
        } else {
            status = zenith_ring_push_many(a->ring, batch, want, &pushed, NULL);
        }
        if (status != ZENITH_OK && status != ZENITH_WOULD_BLOCK) a->failures++;
        if (pushed == 0) sched_yield();
        seq += pushed;
    }
    return NULL;
}

typedef struct {
    zenith_ring *ring;
    uint64_t total;
    /* Shared by the consumers: how many elements all of them have popped. */
    uint64_t *popped;
    pthread_mutex_t *lock;
    unsigned char *seen; /* PRODUCERS * PER_PRODUCER flags, under lock */
    int failures;
} consumer_args;

static void *consume(void *arg) {
    consumer_args *a = arg;
    int64_t last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) last[p] = -1;
    for (;;) {
        pthread_mutex_lock(a->lock);
        int finished = *a->popped >= a->total;
        pthread_mutex_unlock(a->lock);
        if (finished) break;
        element got[5];
        size_t n = 0;
        zenith_status status = zenith_ring_pop_many(a->ring, got, 5, &n, NULL);
        if (status != ZENITH_OK && status != ZENITH_WOULD_BLOCK) a->failures++;
        if (n == 0) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(a->lock);
        for (size_t i = 0; i < n; i++) {
            uint32_t p = got[i].producer;
            uint64_t seq = seq_of(got[i]);
            if (p >= PRODUCERS || seq >= PER_PRODUCER || (int64_t)seq <= last[p]) {
                a->failures++; /* invented, or out of order for its producer */
                continue;
            }
            last[p] = (int64_t)seq;
            if (a->seen[p * PER_PRODUCER + seq]++) a->failures++; /* delivered twice */
        }
        *a->popped += n;
        pthread_mutex_unlock(a->lock);
    }
    return NULL;
}

static void test_spsc_threads(void) {
    zenith_ring *ring = NULL;
    CHECK_EQ_INT(zenith_ring_new(16, sizeof(element), ZENITH_RING_SPSC, &ring, NULL), ZENITH_OK);
    producer_args producer = {ring, 0, SPSC_COUNT, 0};
    pthread_t thread;
    CHECK_EQ_INT(pthread_create(&thread, NULL, produce, &producer), 0);
    uint64_t expected = 0;
    while (expected < SPSC_COUNT) {
        element got[9];
        size_t n = 0;
        zenith_status status;
        if (expected % 2 == 0) {
            status = zenith_ring_pop(ring, got, NULL);
            n = status == ZENITH_OK;
        } else {
            status = zenith_ring_pop_many(ring, got, 9, &n, NULL);
        }
        CHECK(status == ZENITH_OK || status == ZENITH_WOULD_BLOCK);
        if (n == 0) sched_yield();
        for (size_t i = 0; i < n; i++) {
            if (seq_of(got[i]) != expected) {
                CHECK_EQ_INT(seq_of(got[i]), expected);
                expected = SPSC_COUNT; /* stop at the first mismatch */
                break;
            }
            expected++;
        }
    }
    CHECK_EQ_INT(pthread_join(thread, NULL), 0);
    CHECK_EQ_INT(producer.failures, 0);
    CHECK_EQ_INT(zenith_ring_len(ring), 0);
    zenith_ring_free(ring);
}

static void test_mpmc_threads(void) {
    zenith_ring *ring = NULL;
    CHECK_EQ_INT(zenith_ring_new(8, sizeof(element), ZENITH_RING_MPMC, &ring, NULL), ZENITH_OK);
    static unsigned char seen[PRODUCERS * PER_PRODUCER];
    uint64_t popped = 0;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    producer_args producers[PRODUCERS];
    consumer_args consumers[CONSUMERS];
    pthread_t threads[PRODUCERS + CONSUMERS];
    for (int p = 0; p < PRODUCERS; p++) {
        producers[p] = (producer_args){ring, (uint32_t)p, PER_PRODUCER, 0};
        CHECK_EQ_INT(pthread_create(&threads[p], NULL, produce, &producers[p]), 0);
    }
    for (int c = 0; c < CONSUMERS; c++) {
        consumers[c] = (consumer_args){ring, PRODUCERS * PER_PRODUCER, &popped, &lock, seen, 0};
        CHECK_EQ_INT(pthread_create(&threads[PRODUCERS + c], NULL, consume, &consumers[c]), 0);
    }
    for (int t = 0; t < PRODUCERS + CONSUMERS; t++) CHECK_EQ_INT(pthread_join(threads[t], NULL), 0);
    for (int p = 0; p < PRODUCERS; p++) CHECK_EQ_INT(producers[p].failures, 0);
    for (int c = 0; c < CONSUMERS; c++) CHECK_EQ_INT(consumers[c].failures, 0);
    CHECK_EQ_INT(popped, PRODUCERS * PER_PRODUCER);
    size_t delivered = 0;
    for (size_t i = 0; i < sizeof seen; i++) delivered += seen[i] == 1;
    CHECK_EQ_INT(delivered, PRODUCERS * PER_PRODUCER); /* every element exactly once */
    CHECK_EQ_INT(zenith_ring_len(ring), 0);
    zenith_ring_free(ring);
}

int main(void) {
    test_arguments();
    test_fifo(ZENITH_RING_SPSC);
    test_fifo(ZENITH_RING_MPMC);
    test_spsc_threads();
    test_mpmc_threads();
    return check_summary("test_ring");
}
