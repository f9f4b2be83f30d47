/* joust_bt_fit from far-off warm starts: it used to return rc 0 after one
 * iteration with theta unchanged at +-900 (sigma(1-sigma) underflowed, the
 * Hessian was numerically singular and the line search gave up). */
#include <math.h>
#include <stdint.h>

#include "bt.h"
#include "bt_bulk.h"
#include "check.h"

static double max_diff(int n, const double *x, const double *y)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs(x[i] - y[i]));
    return d;
}

static void test_far_warm_start(void)
{
    const joust_bt_edge e[] = {{0, 1, 0.7, 1}, {1, 2, 0.6, 1}, {0, 2, 0.8, 1}, {2, 0, 0.3, 1},
                               {3, 1, 0.2, 2}};
    double cold[4], cse[4];
    int it = 0;
    CHECK_RC(joust_bt_fit(4, e, 5, NULL, 0, cold, cse, &it));
    const double starts[][4] = {
        {900, -900, 900, -900}, {-900, 900, -900, 900}, {900, 900, 900, 900}, {1e6, -1e6, 0, 5},
        {40, -40, 40, -40},     {0.3, -0.1, 0.2, 0.0},
    };
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        double th[4], se[4];
        for (int i = 0; i < 4; i++)
            th[i] = starts[s][i];
        it = 0;
        CHECK_RC(joust_bt_fit(4, e, 5, NULL, 1, th, se, &it));
        CHECK_NEAR(max_diff(4, th, cold), 0, 1e-8);
        CHECK_NEAR(max_diff(4, se, cse), 0, 1e-8);
        CHECK(it >= 1 && it < 100);
    }
}

/* A warm start that beats 0 in the objective but sits in the saturated
 * region: hard outcomes without clipping and a heavy edge. The first run
 * stalls and the cold restart finds the optimum. */
static void test_stalled_warm_start(void)
{
    const joust_bt_edge e[] = {{0, 1, 1.0, 10000}};
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    o.clip = 0;
    double cold[2], th[2] = {900, -900};
    int itc = 0, itw = 0;
    CHECK_RC(joust_bt_fit(2, e, 1, &o, 0, cold, NULL, &itc));
    CHECK_RC(joust_bt_fit(2, e, 1, &o, 1, th, NULL, &itw));
    CHECK_NEAR(max_diff(2, th, cold), 0, 1e-8);
    CHECK(cold[0] > 4 && cold[0] < 6);
    CHECK(itw > itc); /* the stalled run's steps are counted too */
}

/* The bulk fit already restarts such starts; it agrees. */
static void test_bulk_agrees(void)
{
    const joust_bt_edge32 e[] = {{0, 1, 0.7f}, {1, 2, 0.6f}, {0, 2, 0.8f}, {2, 0, 0.3f}};
    joust_bt_edge d[4];
    for (int k = 0; k < 4; k++)
        d[k] = (joust_bt_edge){e[k].a, e[k].b, e[k].s, 1};
    uint64_t ioff[2] = {0, 3}, eoff[2] = {0, 4};
    joust_bt_problem pb = {1, ioff, eoff, e, NULL};
    double bulk[3] = {900, -900, 900}, ref[3];
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 1, 1, bulk, NULL, NULL));
    CHECK_RC(joust_bt_fit(3, d, 4, NULL, 0, ref, NULL, NULL));
    CHECK_NEAR(max_diff(3, bulk, ref), 0, 1e-5);
}

int main(void)
{
    test_far_warm_start();
    test_stalled_warm_start();
    test_bulk_agrees();
    return test_report();
}
