/* Global sparse Bradley-Terry (rank/bt_sparse.h): equal to the dense fit
 * (rank/bt.h) on small graphs to 1e-8, at its stopping rule's precision;
 * recovers known utilities on a simulated k-regular graph over the whole
 * set; the standard-error approximation against the dense Laplace one;
 * warm starts; errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "bt_sparse.h"
#include "check.h"
#include "err.h"
#include "metrics.h"
#include "rng.h"
#include "xalloc.h"

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

/* k random perfect matchings over n items (n even): every item meets k
 * opponents (repeats possible), as a k-regular pairing plan does. */
static joust_bt_edge *k_regular(joust_rng_t *g, uint32_t n, uint32_t k, const double *truth,
                                double noise, size_t *m)
{
    uint32_t *perm = xmalloc(n * sizeof *perm);
    joust_bt_edge *e = xmalloc((size_t)n / 2 * k * sizeof *e);
    *m = 0;
    for (uint32_t r = 0; r < k; r++) {
        for (uint32_t i = 0; i < n; i++)
            perm[i] = i;
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)joust_rng_below(g, i + 1), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        for (uint32_t i = 0; i + 1 < n; i += 2) {
            uint32_t a = perm[i], b = perm[i + 1];
            double s = sigmoid(truth[a] - truth[b] + noise * joust_rng_normal(g));
            e[(*m)++] = (joust_bt_edge){a, b, s, 1.0};
        }
    }
    free(perm);
    return e;
}

static void test_vs_dense(void)
{
    joust_rng_t g;
    joust_rng_seed(&g, 5);
    static const double priors[] = {1.0, 0.3, 4.0};
    double worst = 0, worst_se_ratio_hi = 0;
    for (int rep = 0; rep < 30; rep++) {
        uint32_t n = 5 + (uint32_t)joust_rng_below(&g, 60);
        size_t m = (size_t)joust_rng_below(&g, 4 * n);
        joust_bt_edge *e = xmalloc((m + 1) * sizeof *e);
        for (size_t k = 0; k < m; k++) {
            uint32_t a = (uint32_t)joust_rng_below(&g, n), b;
            do
                b = (uint32_t)joust_rng_below(&g, n);
            while (b == a);
            double u = joust_rng_uniform(&g);
            /* hard votes (clipped), soft outcomes, weights; pairs repeat and
             * appear in both orientations; several components */
            double s = u < 0.3 ? (u < 0.15 ? 0.0 : 1.0) : joust_rng_uniform(&g);
            e[k] = (joust_bt_edge){a, b, s, 0.5 + joust_rng_uniform(&g)};
        }
        joust_bt_opts od;
        joust_bt_opts_defaults(&od);
        od.prior_games = priors[rep % 3];
        od.tol = 1e-13;
        joust_bt_sparse_opts os;
        joust_bt_sparse_opts_defaults(&os);
        os.prior_games = od.prior_games;
        os.gtol = 1e-11;
        double *td = xmalloc(n * sizeof *td), *ts = xmalloc(n * sizeof *ts);
        double *sd = xmalloc(n * sizeof *sd), *ss = xmalloc(n * sizeof *ss);
        joust_bt_sparse_stats st;
        CHECK_RC(joust_bt_fit(n, e, m, &od, 0, td, sd, NULL));
        CHECK_RC(joust_bt_sparse_fit(n, e, m, &os, 0, ts, ss, &st));
        CHECK(st.grad_norm <= os.gtol);
        for (uint32_t i = 0; i < n; i++) {
            worst = fmax(worst, fabs(td[i] - ts[i]));
            /* the approximation is a lower bound of the Laplace se */
            worst_se_ratio_hi = fmax(worst_se_ratio_hi, ss[i] / sd[i]);
        }
        free(td);
        free(ts);
        free(sd);
        free(ss);
        free(e);
    }
    printf("sparse vs dense: max |delta theta| %.3g, max se ratio %.12f\n", worst,
           worst_se_ratio_hi);
    CHECK(worst <= 1e-8);
    CHECK(worst_se_ratio_hi <= 1 + 1e-9);
}

static void test_isolated(void)
{
    joust_bt_edge e[] = {{0, 1, 0.8, 1}};
    double th[3], se[3];
    joust_bt_sparse_opts o;
    joust_bt_sparse_opts_defaults(&o);
    o.prior_games = 2;
    CHECK_RC(joust_bt_sparse_fit(3, e, 1, &o, 0, th, se, NULL));
    CHECK(th[2] == 0);
    CHECK_NEAR(se[2], 2 / sqrt(2.0), 1e-15);
    CHECK(th[0] > 0 && th[1] < 0);
    CHECK_NEAR(th[0], -th[1], 1e-12); /* symmetric problem */
}

/* A caption corpus: one connected component over the whole set. */
static void test_k_regular(void)
{
    joust_rng_t g;
    joust_rng_seed(&g, 9);
    uint32_t n = 20000, k = 10;
    double *truth = xmalloc(n * sizeof *truth);
    for (uint32_t i = 0; i < n; i++)
        truth[i] = joust_rng_normal(&g);
    size_t m;
    joust_bt_edge *e = k_regular(&g, n, k, truth, 1.0, &m);
    double *th = xmalloc(n * sizeof *th), *se = xmalloc(n * sizeof *se);
    joust_bt_sparse_stats st;
    CHECK_RC(joust_bt_sparse_fit(n, e, m, NULL, 0, th, se, &st));
    double tau = joust_kendall_tau(n, th, truth);
    printf("k-regular n %u k %u: tau %.4f, %d Newton steps, %ld CG iterations, |g| %.2g\n", n, k,
           tau, st.newton, st.cg, st.grad_norm);
    CHECK(st.grad_norm <= 1e-9);
    CHECK(st.newton < 20);
    CHECK(tau > 0.75); /* 10 soft comparisons per image, judge noise 1 logit */
    /* Warm start from the optimum: no step needed, the same theta. */
    double *th2 = xmalloc(n * sizeof *th2);
    memcpy(th2, th, n * sizeof *th2);
    CHECK_RC(joust_bt_sparse_fit(n, e, m, NULL, 1, th2, NULL, &st));
    CHECK(st.newton == 0 && memcmp(th, th2, n * sizeof *th) == 0);
    free(th2);
    free(e);
    free(th);
    free(se);

    /* se approximation against the dense Laplace se on a smaller graph */
    n = 400;
    e = k_regular(&g, n, k, truth, 1.0, &m);
    th = xmalloc(n * sizeof *th), se = xmalloc(n * sizeof *se);
    double *td = xmalloc(n * sizeof *td), *sd = xmalloc(n * sizeof *sd);
    CHECK_RC(joust_bt_sparse_fit(n, e, m, NULL, 0, th, se, NULL));
    CHECK_RC(joust_bt_fit(n, e, m, NULL, 0, td, sd, NULL));
    double lo = 1, diff = 0;
    for (uint32_t i = 0; i < n; i++) {
        lo = fmin(lo, se[i] / sd[i]);
        diff = fmax(diff, fabs(th[i] - td[i]));
    }
    printf("k-regular n %u: se approximation / Laplace se >= %.3f, |delta theta| %.2g\n", n, lo,
           diff);
    CHECK(lo > 0.9);
    CHECK(diff <= 1e-8);
    free(td);
    free(sd);
    free(th);
    free(se);
    free(e);
    free(truth);
}

static void test_errors(void)
{
    joust_bt_edge e[] = {{0, 1, 0.5, 1}};
    double th[2] = {0, 0};
    joust_bt_sparse_opts o;
    joust_bt_sparse_opts_defaults(&o);
    o.prior_games = 0;
    CHECK(joust_bt_sparse_fit(2, e, 1, &o, 0, th, NULL, NULL) == JOUST_EINVAL);
    joust_bt_sparse_opts_defaults(&o);
    o.clip = 0.5;
    CHECK(joust_bt_sparse_fit(2, e, 1, &o, 0, th, NULL, NULL) == JOUST_EINVAL);
    joust_bt_edge bad[] = {{0, 0, 0.5, 1}, {0, 2, 0.5, 1}, {0, 1, 1.5, 1}, {0, 1, NAN, 1},
                           {0, 1, 0.5, 0}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        th[0] = 7;
        CHECK(joust_bt_sparse_fit(2, &bad[k], 1, NULL, 0, th, NULL, NULL) == JOUST_EINVAL);
        CHECK(th[0] == 7); /* untouched */
    }
    th[1] = INFINITY;
    CHECK(joust_bt_sparse_fit(2, e, 1, NULL, 1, th, NULL, NULL) == JOUST_EINVAL);
    CHECK(joust_bt_sparse_fit(2, NULL, 1, NULL, 0, th, NULL, NULL) == JOUST_EINVAL);
    CHECK_RC(joust_bt_sparse_fit(0, NULL, 0, NULL, 0, NULL, NULL, NULL));
}

int main(void)
{
    test_vs_dense();
    test_isolated();
    test_k_regular();
    test_errors();
    return test_report();
}
