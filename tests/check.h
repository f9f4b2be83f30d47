/* A tiny test helper: CHECK records a failure with file:line and carries on;
 * test_report() prints "N passed, N failed" and returns the exit status. */
#ifndef JOUST_TEST_CHECK_H
#define JOUST_TEST_CHECK_H
#include <math.h>
#include <stdio.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            test_passed++;                                                   \
        } else {                                                             \
            test_failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

#define CHECK_RC(expr)                                                       \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ == 0) {                                                      \
            test_passed++;                                                   \
        } else {                                                             \
            test_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s returned %d\n", __FILE__, __LINE__, #expr, rc_); \
        }                                                                    \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                \
    do {                                                                     \
        double a_ = (a), b_ = (b);                                           \
        if (fabs(a_ - b_) <= (tol)) {                                        \
            test_passed++;                                                   \
        } else {                                                             \
            test_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s = %.12g, expected %.12g (tol %g)\n", __FILE__, \
                    __LINE__, #a, a_, b_, (double)(tol));                    \
        }                                                                    \
    } while (0)

static inline int test_report(void)
{
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

#endif
