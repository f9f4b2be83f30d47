#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "check.h"
#include "err.h"
#include "metrics.h"
#include "pairing.h"
#include "planner.h"
#include "prompt_fit.h"
#include "rng.h"

/* ---- independent references ------------------------------------------- */

/* Newman's iteration with the dummy-player prior (docs/ranking.md §1.3), run
 * straight over the edge list until max |d log pi| < 1e-13. */
static void ref_newman(uint32_t n, const joust_bt_edge *e, size_t m, double alpha, double clip,
                       double *theta)
{
    double *pi = malloc(n * sizeof *pi), *num = malloc(n * sizeof *num),
           *den = malloc(n * sizeof *den);
    for (uint32_t i = 0; i < n; i++)
        pi[i] = 1;
    for (int it = 0; it < 1000000; it++) {
        for (uint32_t i = 0; i < n; i++)
            num[i] = den[i] = 0.5 * alpha / (pi[i] + 1);
        for (size_t k = 0; k < m; k++) {
            double s = fmin(fmax(e[k].s, clip), 1 - clip), w = e[k].w;
            double pa = pi[e[k].a], pb = pi[e[k].b], r = 1 / (pa + pb);
            num[e[k].a] += w * s * pb * r;
            den[e[k].a] += w * (1 - s) * r;
            num[e[k].b] += w * (1 - s) * pa * r;
            den[e[k].b] += w * s * r;
        }
        double dmax = 0;
        for (uint32_t i = 0; i < n; i++) {
            double np = num[i] / den[i];
            dmax = fmax(dmax, fabs(log(np) - log(pi[i])));
            pi[i] = np;
        }
        if (dmax < 1e-13)
            break;
    }
    for (uint32_t i = 0; i < n; i++)
        theta[i] = log(pi[i]);
    free(pi);
    free(num);
    free(den);
}

static double sig(double x) { return 1 / (1 + exp(-x)); }

/* sqrt(diag(inverse negative Hessian)) by Gauss-Jordan on the edge list. */
static void ref_se(uint32_t n, const joust_bt_edge *e, size_t m, double alpha, const double *th,
                   double *se)
{
    double *A = calloc((size_t)n * 2 * n, sizeof *A);
    size_t w = 2 * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        A[i * w + i] = alpha * sig(th[i]) * (1 - sig(th[i]));
        A[i * w + n + i] = 1;
    }
    for (size_t k = 0; k < m; k++) {
        double p = sig(th[e[k].a] - th[e[k].b]), h = e[k].w * p * (1 - p);
        A[e[k].a * w + e[k].a] += h;
        A[e[k].b * w + e[k].b] += h;
        A[e[k].a * w + e[k].b] -= h;
        A[e[k].b * w + e[k].a] -= h;
    }
    for (uint32_t c = 0; c < n; c++) {
        double piv = A[c * w + c];
        for (size_t j = 0; j < w; j++)
            A[c * w + j] /= piv;
        for (uint32_t r = 0; r < n; r++) {
            if (r == c)
                continue;
            double f = A[r * w + c];
            for (size_t j = 0; j < w; j++)
                A[r * w + j] -= f * A[c * w + j];
        }
    }
    for (uint32_t i = 0; i < n; i++)
        se[i] = sqrt(A[i * w + n + i]);
    free(A);
}

static size_t random_edges(joust_rng_t *r, uint32_t n, size_t m, joust_bt_edge *e)
{
    for (size_t k = 0; k < m; k++) {
        uint32_t a = (uint32_t)joust_rng_below(r, n), b;
        do
            b = (uint32_t)joust_rng_below(r, n);
        while (b == a);
        double s = joust_rng_uniform(r);
        if (k % 7 == 0)
            s = (double)(k % 2); /* hard outcomes too */
        e[k] = (joust_bt_edge){a, b, s, 0.5 + 1.5 * joust_rng_uniform(r)};
    }
    return m;
}

static double max_abs_diff(size_t n, const double *x, const double *y)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs(x[i] - y[i]));
    return d;
}

/* ---- Bradley-Terry ------------------------------------------------------ */

static void test_bt_matches_reference(void)
{
    joust_rng_t r;
    joust_rng_seed(&r, 1);
    struct { uint32_t n; size_t m; double alpha, clip; } cases[] = {
        {2, 3, 1.0, 1e-3}, {5, 12, 1.0, 0.0}, {8, 40, 2.5, 1e-3}, {12, 30, 0.3, 0.01}, {20, 300, 1.0, 1e-3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t n = cases[c].n;
        size_t m = cases[c].m;
        joust_bt_edge *e = malloc(m * sizeof *e);
        random_edges(&r, n, m, e);
        joust_bt_opts o;
        joust_bt_opts_defaults(&o);
        o.prior_games = cases[c].alpha;
        o.clip = cases[c].clip;
        double th[20], se[20], ref[20], rse[20];
        int iters = -1;
        CHECK_RC(joust_bt_fit(n, e, m, &o, 0, th, se, &iters));
        CHECK(iters >= 1 && iters < 30); /* Newton: a handful */
        ref_newman(n, e, m, o.prior_games, o.clip, ref);
        CHECK_NEAR(max_abs_diff(n, th, ref), 0, 1e-8);
        /* the reference SE sees the clipped s only through theta */
        ref_se(n, e, m, o.prior_games, th, rse);
        CHECK_NEAR(max_abs_diff(n, se, rse), 0, 1e-9);
        free(e);
    }
}

static void test_bt_edge_order(void)
{
    joust_rng_t r;
    joust_rng_seed(&r, 2);
    enum { N = 10, M = 60 };
    joust_bt_edge e[M], p[M];
    random_edges(&r, N, M, e);
    for (int k = 0; k < M / 2; k++) /* repeated pairs, so per-pair sums matter */
        e[M / 2 + k] = (joust_bt_edge){e[k].a, e[k].b, joust_rng_uniform(&r), 1.0};
    memcpy(p, e, sizeof e);
    for (int k = M - 1; k > 0; k--) {
        int j = (int)joust_rng_below(&r, (uint64_t)k + 1);
        joust_bt_edge t = p[k];
        p[k] = p[j];
        p[j] = t;
    }
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    double t1[N], t2[N], s1[N], s2[N];
    CHECK_RC(joust_bt_fit(N, e, M, &o, 0, t1, s1, NULL));
    CHECK_RC(joust_bt_fit(N, p, M, &o, 0, t2, s2, NULL));
    CHECK_NEAR(max_abs_diff(N, t1, t2), 0, 1e-12);
    CHECK(memcmp(t1, t2, sizeof t1) == 0 && memcmp(s1, s2, sizeof s1) == 0);
}

static void test_bt_disconnected_block(void)
{
    joust_rng_t r;
    joust_rng_seed(&r, 3);
    enum { NA = 6, MA = 20, NB = 5, MB = 15 };
    joust_bt_edge a[MA], b[MB], all[MA + MB];
    random_edges(&r, NA, MA, a);
    random_edges(&r, NB, MB, b);
    /* block B takes indices 0..NB-1 and A moves behind it; edges interleave */
    size_t k = 0;
    for (size_t i = 0; i < MA || i < MB; i++) {
        if (i < MA)
            all[k++] = (joust_bt_edge){a[i].a + NB, a[i].b + NB, a[i].s, a[i].w};
        if (i < MB)
            all[k++] = b[i];
    }
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    double ta[NA], sa[NA], t[NA + NB], s[NA + NB];
    CHECK_RC(joust_bt_fit(NA, a, MA, &o, 0, ta, sa, NULL));
    CHECK_RC(joust_bt_fit(NA + NB, all, MA + MB, &o, 0, t, s, NULL));
    CHECK_NEAR(max_abs_diff(NA, ta, t + NB), 0, 1e-9);
    CHECK_NEAR(max_abs_diff(NA, sa, s + NB), 0, 1e-9);
}

static void test_bt_extremes(void)
{
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    o.clip = 0; /* hard outcomes reach the fit unclipped */
    /* item 0 beats everyone with s = 1; item 4 has no edges */
    joust_bt_edge e[] = {{0, 1, 1, 1}, {2, 0, 0, 1}, {0, 3, 1, 1}, {1, 2, 1, 1},
                         {2, 3, 0.5, 1}, {3, 1, 0.2, 1}};
    size_t m = sizeof e / sizeof e[0];
    double th[5], se[5], ref[5];
    CHECK_RC(joust_bt_fit(5, e, m, &o, 0, th, se, NULL));
    int finite = 1, top = 1;
    for (int i = 0; i < 5; i++)
        finite &= isfinite(th[i]) && isfinite(se[i]) && se[i] > 0;
    for (int i = 1; i < 4; i++)
        top &= th[0] > th[i];
    CHECK(finite);
    CHECK(top);
    ref_newman(5, e, m, o.prior_games, 0, ref);
    CHECK_NEAR(max_abs_diff(5, th, ref), 0, 1e-8);
    CHECK(th[4] == 0.0);
    CHECK_NEAR(se[4], 2.0, 1e-15); /* prior alone: 1/sqrt(1 * 1/4) */

    /* warm start from the optimum: nothing left to do; stray values for the
     * isolated item go back to 0 */
    double w[5];
    memcpy(w, th, sizeof w);
    w[4] = 3;
    int iters = -1;
    CHECK_RC(joust_bt_fit(5, e, m, &o, 1, w, NULL, &iters));
    CHECK(iters <= 2);
    CHECK_NEAR(max_abs_diff(5, w, th), 0, 1e-12);

    /* no edges, and n == 0 */
    double z[3] = {5, 5, 5}, zs[3];
    CHECK_RC(joust_bt_fit(3, NULL, 0, &o, 0, z, zs, &iters));
    CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0 && iters == 0);
    o.prior_games = 4;
    CHECK_RC(joust_bt_fit(3, NULL, 0, &o, 0, z, zs, NULL));
    CHECK_NEAR(zs[1], 1.0, 1e-15);
    CHECK_RC(joust_bt_fit(0, NULL, 0, &o, 0, NULL, NULL, NULL));

    CHECK_NEAR(joust_bt_prob(1, 1), 0.5, 0);
    CHECK_NEAR(joust_bt_prob(800, 0), 1.0, 0);
    CHECK_NEAR(joust_bt_prob(0, 800), 0.0, 1e-300);
    CHECK_NEAR(joust_bt_prob(log(3), 0), 0.75, 1e-15);
}

static void test_bt_invalid(void)
{
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    joust_bt_edge bad[] = {
        {0, 3, 0.5, 1}, {3, 0, 0.5, 1}, {1, 1, 0.5, 1},   {0, 1, NAN, 1},      {0, 1, -0.1, 1},
        {0, 1, 1.5, 1}, {0, 1, 0.5, 0}, {0, 1, 0.5, -1}, {0, 1, 0.5, INFINITY}, {0, 1, INFINITY, 1},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        joust_bt_edge e[3] = {{0, 1, 0.7, 1}, bad[k], {1, 2, 0.4, 1}};
        double th[3] = {7, 7, 7}, se[3] = {7, 7, 7};
        int iters = 7;
        CHECK(joust_bt_fit(3, e, 3, &o, 0, th, se, &iters) == JOUST_EINVAL);
        CHECK(th[0] == 7 && th[2] == 7 && se[1] == 7 && iters == 7);
    }
    joust_bt_edge ok = {0, 1, 0.7, 1};
    double th[2] = {0, 0};
    joust_bt_opts b = o;
    b.prior_games = 0;
    CHECK(joust_bt_fit(2, &ok, 1, &b, 0, th, NULL, NULL) == JOUST_EINVAL);
    b = o;
    b.max_iter = 0;
    CHECK(joust_bt_fit(2, &ok, 1, &b, 0, th, NULL, NULL) == JOUST_EINVAL);
    b = o;
    b.clip = 0.5;
    CHECK(joust_bt_fit(2, &ok, 1, &b, 0, th, NULL, NULL) == JOUST_EINVAL);
    th[1] = NAN;
    CHECK(joust_bt_fit(2, &ok, 1, &o, 1, th, NULL, NULL) == JOUST_EINVAL);
    CHECK_RC(joust_bt_fit(2, &ok, 1, &o, 0, th, NULL, NULL)); /* cold start ignores it */
}

static void test_bt_recovery(void)
{
    joust_rng_t r;
    joust_rng_seed(&r, 4);
    for (uint32_t n = 4; n <= 64; n *= 2) {
        double u[64], th[64], th2[64];
        for (uint32_t i = 0; i < n; i++)
            u[i] = 1.5 * joust_rng_normal(&r);
        joust_pair *pairs = NULL;
        size_t np = joust_strategy_plan(JOUST_STRATEGY_ROUND_ROBIN, n, JOUST_ORDER_FIXED, NULL, &pairs);
        joust_bt_edge *e = malloc(np * sizeof *e);
        for (size_t k = 0; k < np; k++)
            e[k] = (joust_bt_edge){pairs[k].first, pairs[k].second,
                                   joust_bt_prob(u[pairs[k].first], u[pairs[k].second]), 1};
        joust_bt_opts o;
        joust_bt_opts_defaults(&o);
        CHECK_RC(joust_bt_fit(n, e, np, &o, 0, th, NULL, NULL));
        CHECK_NEAR(joust_kendall_tau(n, th, u), 1.0, 1e-15);
        free(e);
        free(pairs);

        /* both orders through the outcome path, with a position-biased judge */
        np = joust_strategy_plan(JOUST_STRATEGY_ROUND_ROBIN, n, JOUST_ORDER_BOTH, NULL, &pairs);
        joust_outcome *out = malloc(np * sizeof *out);
        for (size_t k = 0; k < np; k++)
            out[k] = (joust_outcome){pairs[k].first, pairs[k].second,
                                     joust_bt_prob(u[pairs[k].first] + 0.3, u[pairs[k].second])};
        CHECK_RC(joust_prompt_fit(n, out, np, &o, th2, NULL, NULL));
        CHECK_NEAR(joust_kendall_tau(n, th2, u), 1.0, 1e-15);
        free(out);
        free(pairs);
    }
}

/* Both orders as two edges == their average as one edge of weight 2. */
static void test_both_orders_average(void)
{
    joust_outcome o[] = {{0, 1, 0.8}, {1, 0, 0.3}, {1, 2, 0.6}, {2, 1, 0.55}, {0, 2, 0.9}, {2, 0, 0.2}};
    joust_bt_edge avg[] = {{0, 1, (0.8 + 0.7) / 2, 2}, {1, 2, (0.6 + 0.45) / 2, 2},
                           {0, 2, (0.9 + 0.8) / 2, 2}};
    joust_bt_opts opt;
    joust_bt_opts_defaults(&opt);
    opt.clip = 0;
    double t1[3], t2[3];
    CHECK_RC(joust_prompt_fit(3, o, 6, &opt, t1, NULL, NULL));
    CHECK_RC(joust_bt_fit(3, avg, 3, &opt, 0, t2, NULL, NULL));
    CHECK_NEAR(max_abs_diff(3, t1, t2), 0, 1e-12);
}

static void test_outcome_summaries(void)
{
    joust_outcome o[] = {{0, 1, 0.8}, {1, 0, 0.3}, {1, 2, 0.6}, {2, 1, 0.6}, {0, 2, 0.9}};
    double wins[3];
    uint32_t cmp[3];
    CHECK_RC(joust_outcome_tally(3, o, 5, wins, cmp));
    CHECK_NEAR(wins[0], 2.4, 1e-12);
    CHECK_NEAR(wins[1], 1.5, 1e-12);
    CHECK_NEAR(wins[2], 1.1, 1e-12);
    CHECK(cmp[0] == 3 && cmp[1] == 4 && cmp[2] == 3);

    joust_position_bias b;
    CHECK_RC(joust_position_bias_summary(3, o, 5, &b));
    CHECK(b.outcomes == 5 && b.both_order_pairs == 2 && b.consistent_pairs == 1);
    CHECK_NEAR(b.mean_p_first, 0.64, 1e-12);
    CHECK_NEAR(b.position_bias, 0.14, 1e-12);
    CHECK_NEAR(b.consistency, 0.5, 0);
    CHECK_NEAR(b.mean_delta, 0.15, 1e-12); /* (0.8-0.7 + 0.6-0.4) / 2 */

    CHECK_RC(joust_position_bias_summary(3, NULL, 0, &b));
    CHECK(b.outcomes == 0 && b.position_bias == 0 && b.both_order_pairs == 0 && b.consistency == 0);

    joust_outcome bad[] = {{0, 3, 0.5}, {2, 2, 0.5}, {0, 1, 1.01}, {0, 1, NAN}};
    for (size_t k = 0; k < 4; k++) {
        joust_bt_edge e[1] = {{9, 9, 9, 9}};
        double th[3] = {7, 7, 7};
        wins[0] = 7;
        CHECK(joust_outcomes_to_edges(3, &bad[k], 1, e) == JOUST_EINVAL && e[0].a == 9);
        CHECK(joust_outcome_tally(3, &bad[k], 1, wins, NULL) == JOUST_EINVAL && wins[0] == 7);
        CHECK(joust_position_bias_summary(3, &bad[k], 1, &b) == JOUST_EINVAL);
        CHECK(joust_prompt_fit(3, &bad[k], 1, NULL, th, NULL, NULL) == JOUST_EINVAL && th[0] == 7);
    }
}

/* The reference for test_bias_sums: joust_position_bias_summary's
 * definition with a plain stable sort (insertion) by pair. */
static void bias_ref(const joust_outcome *o, size_t m, joust_position_bias *r)
{
    struct { uint32_t lo, hi; int lf; double p; } *v = malloc((m ? m : 1) * sizeof *v), x;
    double sum = 0, delta = 0;
    for (size_t k = 0; k < m; k++) {
        int lf = o[k].first < o[k].second;
        sum += o[k].p_first;
        v[k].lo = lf ? o[k].first : o[k].second, v[k].hi = lf ? o[k].second : o[k].first;
        v[k].lf = lf, v[k].p = lf ? o[k].p_first : 1 - o[k].p_first;
        x = v[k];
        size_t t = k;
        for (; t > 0 && (v[t - 1].lo > x.lo || (v[t - 1].lo == x.lo && v[t - 1].hi > x.hi)); t--)
            v[t] = v[t - 1];
        v[t] = x;
    }
    memset(r, 0, sizeof *r);
    r->outcomes = m;
    r->mean_p_first = m ? sum / (double)m : 0.5;
    r->position_bias = r->mean_p_first - 0.5;
    for (size_t a = 0, b; a < m; a = b) {
        double s[2] = {0, 0};
        size_t c[2] = {0, 0};
        for (b = a; b < m && v[b].lo == v[a].lo && v[b].hi == v[a].hi; b++)
            s[v[b].lf] += v[b].p, c[v[b].lf]++;
        if (!c[0] || !c[1])
            continue;
        double f = s[1] / (double)c[1], g = s[0] / (double)c[0];
        r->both_order_pairs++;
        r->consistent_pairs += ((f > 0.5) - (f < 0.5)) == ((g > 0.5) - (g < 0.5));
        delta += f - g;
    }
    if (r->both_order_pairs) {
        r->consistency = (double)r->consistent_pairs / (double)r->both_order_pairs;
        r->mean_delta = delta / (double)r->both_order_pairs;
    }
    free(v);
}

/* Pairs judged several times in both orders with arbitrary p (sums that
 * depend on their order), small prompts (the counting sort by pair) and
 * large ones (qsort): the summary is bitwise the reference's. */
static void test_bias_sums(void)
{
    enum { M = 2000 };
    joust_outcome *o = malloc(M * sizeof *o);
    joust_rng_t r;
    joust_rng_seed(&r, 5);
    const uint32_t ns[] = {2, 3, 16, 64, 65, 200};
    const size_t ms[] = {1, 2, 40, 300, M};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof ms / sizeof *ms; b++) {
            uint32_t n = ns[a];
            size_t m = ms[b];
            for (size_t k = 0; k < m; k++) {
                uint32_t f = (uint32_t)joust_rng_below(&r, n), g;
                do
                    g = (uint32_t)joust_rng_below(&r, n);
                while (g == f);
                o[k] = (joust_outcome){f, g, joust_rng_uniform(&r)};
            }
            joust_position_bias got, want;
            CHECK_RC(joust_position_bias_summary(n, o, m, &got));
            bias_ref(o, m, &want);
            CHECK(got.outcomes == want.outcomes && got.mean_p_first == want.mean_p_first &&
                  got.both_order_pairs == want.both_order_pairs &&
                  got.consistent_pairs == want.consistent_pairs &&
                  got.consistency == want.consistency && got.mean_delta == want.mean_delta);
            CHECK(n > 16 || m < 300 || got.both_order_pairs > 0);
        }
    free(o);
}

/* ---- metrics ------------------------------------------------------------ */

static void test_metrics(void)
{
    /* scipy.stats.kendalltau docs example (tau-b with ties in both) */
    double x[] = {12, 2, 1, 12, 2}, y[] = {1, 4, 7, 1, 0};
    CHECK_NEAR(joust_kendall_tau(5, x, y), -0.47140452079103173, 1e-15);
    double a[] = {1, 1, 2, 3}, b[] = {1, 2, 2, 3}; /* 4 concordant, 1 tie each: 4/5 */
    CHECK_NEAR(joust_kendall_tau(4, a, b), 0.8, 1e-15);
    double up[] = {1, 2, 3, 4}, down[] = {9, 7, 5, 3}, flat[] = {2, 2, 2, 2};
    CHECK_NEAR(joust_kendall_tau(4, up, up), 1.0, 0);
    CHECK_NEAR(joust_kendall_tau(4, up, down), -1.0, 0);
    CHECK(joust_kendall_tau(4, up, flat) == 0.0);
    CHECK(joust_kendall_tau(1, up, down) == 0.0);
    CHECK(joust_kendall_tau(0, NULL, NULL) == 0.0);

    double s[] = {1, 3, 2}, t1[] = {0, 5, 1}, t2[] = {5, 5, 0};
    CHECK(joust_top1_match(3, s, t1) == 1);
    CHECK(joust_bottom1_match(3, s, t1) == 1);
    CHECK(joust_top1_match(3, s, t2) == 1); /* tied best in truth counts */
    CHECK(joust_bottom1_match(3, s, t2) == 0);
    CHECK(joust_top1_match(3, t1, s) == 1 && joust_top1_match(3, down, up) == 0);
    CHECK(joust_top1_match(0, NULL, NULL) == 0 && joust_bottom1_match(0, NULL, NULL) == 0);

    double sc[] = {0.5, 2, 0.5, -1};
    uint32_t rk[4];
    joust_rank_desc(4, sc, rk);
    CHECK(rk[0] == 2 && rk[1] == 1 && rk[2] == 3 && rk[3] == 4);
    joust_rank_desc(0, NULL, NULL);
}

/* ---- pairing ------------------------------------------------------------ */

static int shares_image(joust_pair p, joust_pair q)
{
    return p.first == q.first || p.first == q.second || p.second == q.first || p.second == q.second;
}

static void test_round_robin(void)
{
    CHECK(joust_round_robin_count(0, JOUST_ORDER_FIXED) == 0);
    CHECK(joust_round_robin_count(1, JOUST_ORDER_BOTH) == 0);
    CHECK(joust_round_robin_count(2, JOUST_ORDER_FIXED) == 1);
    CHECK(joust_round_robin_count(5, JOUST_ORDER_FIXED) == 10);
    CHECK(joust_round_robin_count(5, JOUST_ORDER_RANDOM) == 10);
    CHECK(joust_round_robin_count(5, JOUST_ORDER_BOTH) == 20);
    CHECK(joust_round_robin_count(5, (joust_order_policy)0) == 0);
    CHECK(joust_round_robin(1, JOUST_ORDER_FIXED, NULL, NULL) == 0);

    joust_order_policy pols[] = {JOUST_ORDER_FIXED, JOUST_ORDER_RANDOM, JOUST_ORDER_BOTH};
    for (uint32_t n = 2; n <= 12; n++) {
        for (int pi = 0; pi < 3; pi++) {
            joust_order_policy pol = pols[pi];
            joust_rng_t r;
            joust_rng_seed(&r, 100 + n);
            size_t cap = joust_round_robin_count(n, pol);
            joust_pair *p = malloc(cap * sizeof *p);
            size_t np = joust_round_robin(n, pol, &r, p);
            CHECK(np == cap);
            int cnt[12][12] = {{0}};
            int share = 1, grouped = 1, lower = 1, adjacent = 1, valid = 1;
            for (size_t k = 0; k < np; k++) {
                valid &= p[k].first < n && p[k].second < n && p[k].first != p[k].second;
                if (!valid)
                    break;
                cnt[p[k].first][p[k].second]++;
                uint32_t lo = p[k].first < p[k].second ? p[k].first : p[k].second;
                lower &= p[k].first < p[k].second;
                if (k) {
                    share &= shares_image(p[k - 1], p[k]);
                    uint32_t plo = p[k - 1].first < p[k - 1].second ? p[k - 1].first : p[k - 1].second;
                    grouped &= plo <= lo;
                }
                if (pol == JOUST_ORDER_BOTH && k % 2 == 1)
                    adjacent &= p[k].first == p[k - 1].second && p[k].second == p[k - 1].first;
            }
            CHECK(valid && share && grouped);
            if (pol == JOUST_ORDER_FIXED)
                CHECK(lower);
            if (pol == JOUST_ORDER_BOTH)
                CHECK(adjacent);
            int once = 1;
            for (uint32_t i = 0; valid && i < n; i++)
                for (uint32_t j = i + 1; j < n; j++)
                    once &= pol == JOUST_ORDER_BOTH ? cnt[i][j] == 1 && cnt[j][i] == 1
                                                    : cnt[i][j] + cnt[j][i] == 1;
            CHECK(once);
            free(p);
        }
    }

    /* random order: same seed, same plan; another seed differs */
    joust_pair p1[28], p2[28], p3[28];
    joust_rng_t r1, r2, r3;
    joust_rng_seed(&r1, 7);
    joust_rng_seed(&r2, 7);
    joust_rng_seed(&r3, 8);
    joust_round_robin(8, JOUST_ORDER_RANDOM, &r1, p1);
    joust_round_robin(8, JOUST_ORDER_RANDOM, &r2, p2);
    joust_round_robin(8, JOUST_ORDER_RANDOM, &r3, p3);
    CHECK(memcmp(p1, p2, sizeof p1) == 0);
    CHECK(memcmp(p1, p3, sizeof p1) != 0);
    int swapped = 0;
    for (int k = 0; k < 28; k++)
        swapped += p1[k].first > p1[k].second;
    CHECK(swapped > 4 && swapped < 24);
}

static void test_registry(void)
{
    joust_order_policy pol = JOUST_ORDER_FIXED;
    CHECK_RC(joust_order_policy_parse("both", &pol));
    CHECK(pol == JOUST_ORDER_BOTH);
    CHECK_RC(joust_order_policy_parse("random", &pol));
    CHECK(pol == JOUST_ORDER_RANDOM);
    CHECK_RC(joust_order_policy_parse("fixed", &pol));
    CHECK(pol == JOUST_ORDER_FIXED);
    CHECK(joust_order_policy_parse("Both", &pol) == JOUST_EINVAL && pol == JOUST_ORDER_FIXED);
    CHECK(joust_order_policy_parse("", &pol) == JOUST_EINVAL);
    CHECK(joust_order_policy_parse(NULL, &pol) == JOUST_EINVAL);
    CHECK(strcmp(joust_order_policy_name(JOUST_ORDER_RANDOM), "random") == 0);
    CHECK(strcmp(joust_order_policy_name((joust_order_policy)9), "?") == 0);

    joust_strategy s = (joust_strategy)0;
    CHECK_RC(joust_strategy_parse("round_robin", &s));
    CHECK(s == JOUST_STRATEGY_ROUND_ROBIN);
    CHECK(strcmp(joust_strategy_name(s), "round_robin") == 0);
    CHECK(joust_strategy_parse("round-robin", &s) == 0 && s == JOUST_STRATEGY_ROUND_ROBIN);
    CHECK(joust_strategy_parse("swiss-cheese", &s) == JOUST_EINVAL);
    CHECK(joust_strategy_parse(NULL, &s) == JOUST_EINVAL && s == JOUST_STRATEGY_ROUND_ROBIN);

    joust_pair dummy, *p = &dummy, direct[20];
    CHECK(joust_strategy_plan(s, 1, JOUST_ORDER_BOTH, NULL, &p) == 0 && p == NULL);
    size_t np = joust_strategy_plan(s, 5, JOUST_ORDER_BOTH, NULL, &p);
    CHECK(np == 20 && joust_round_robin(5, JOUST_ORDER_BOTH, NULL, direct) == 20);
    CHECK(memcmp(p, direct, sizeof direct) == 0);
    free(p);
}

int main(void)
{
    test_bt_matches_reference();
    test_bt_edge_order();
    test_bt_disconnected_block();
    test_bt_extremes();
    test_bt_invalid();
    test_bt_recovery();
    test_both_orders_average();
    test_outcome_summaries();
    test_bias_sums();
    test_metrics();
    test_round_robin();
    test_registry();
    return test_report();
}
