/* check.h — the few assertion helpers the C tests share. A failed check prints where and why and
 * counts as a failure; the test's main returns the failure count's exit status. */
#ifndef ZENITH_TEST_CHECK_H
#define ZENITH_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(actual, expected)                                                         \
    do {                                                                                       \
        long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);            \
        check_count++;                                                                         \
        if (check_a_ != check_e_) {                                                            \
            check_failures++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,        \
                    __LINE__, #actual, #expected, check_a_, check_e_);                         \
        }                                                                                      \
    } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                   \
    do {                                                                                       \
        const char *check_h_ = (haystack);                                                     \
        check_count++;                                                                         \
        if (check_h_ == NULL || strstr(check_h_, (needle)) == NULL) {                          \
            check_failures++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n", __FILE__, \
                    __LINE__, check_h_ ? check_h_ : "(null)", (needle));                       \
        }                                                                                      \
    } while (0)

/* Ends a test program: prints a summary and returns the exit status. */
static int check_summary(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* ZENITH_TEST_CHECK_H */
