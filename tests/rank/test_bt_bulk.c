/* joust_bt_fit_bulk against joust_bt_fit per prompt, thread-count
 * determinism, warm start, errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "bt_bulk.h"
#include "check.h"
#include "err.h"
#include "rng.h"

typedef struct {
    uint32_t n_prompts;
    uint64_t *item_off, *edge_off;
    joust_bt_edge32 *e;
    float *w;
} prob_t;

static void prob_free(prob_t *p)
{
    free(p->item_off);
    free(p->edge_off);
    free(p->e);
    free(p->w);
}

static joust_bt_problem view(const prob_t *p, int with_w)
{
    return (joust_bt_problem){p->n_prompts, p->item_off, p->edge_off, p->e, with_w ? p->w : NULL};
}

/* Prompts of 0..max_n images (a few larger than JOUST_BT_BULK_SMALL when
 * big != 0): no edges, one connected blob, two disconnected blocks, isolated
 * items, repeated pairs, hard 0/1 outcomes, weights in [0.5, 2). */
static prob_t make_prob(uint64_t seed, uint32_t np, uint32_t max_n, int big)
{
    joust_rng_t r;
    joust_rng_seed(&r, seed);
    prob_t p = {np, calloc(np + 1, sizeof(uint64_t)), calloc(np + 1, sizeof(uint64_t)), NULL, NULL};
    size_t cap = 1024, m = 0;
    p.e = malloc(cap * sizeof *p.e);
    p.w = malloc(cap * sizeof *p.w);
    for (uint32_t q = 0; q < np; q++) {
        uint32_t n = (uint32_t)joust_rng_below(&r, max_n + 1);
        if (big && q % 50 == 7)
            n = JOUST_BT_BULK_SMALL + 1 + (uint32_t)joust_rng_below(&r, 40);
        int kind = (int)joust_rng_below(&r, 4); /* 0 none, 1 blob, 2 two blocks, 3 sparse */
        size_t me = 0;
        if (n >= 2 && kind != 0)
            me = kind == 3 ? n / 2 : (size_t)joust_rng_below(&r, 4 * n) + 1;
        uint32_t split = n >= 4 ? 1 + (uint32_t)joust_rng_below(&r, n - 2) : n;
        for (size_t k = 0; k < me; k++) {
            uint32_t lo = 0, hi = n;
            if (kind == 2 && split < n - 1 && split >= 2) {
                if (k % 2)
                    lo = split;
                else
                    hi = split;
            }
            uint32_t a = lo + (uint32_t)joust_rng_below(&r, hi - lo), b;
            do
                b = lo + (uint32_t)joust_rng_below(&r, hi - lo);
            while (b == a);
            float s = (float)joust_rng_uniform(&r);
            if (k % 9 == 4)
                s = (float)(k % 2);
            if (m == cap) {
                cap *= 2;
                p.e = realloc(p.e, cap * sizeof *p.e);
                p.w = realloc(p.w, cap * sizeof *p.w);
            }
            p.w[m] = (float)(0.5 + 1.5 * joust_rng_uniform(&r));
            p.e[m++] = (joust_bt_edge32){a, b, s};
        }
        p.item_off[q + 1] = p.item_off[q] + n;
        p.edge_off[q + 1] = m;
    }
    return p;
}

/* joust_bt_fit on every prompt separately. */
static void per_prompt(const prob_t *p, int with_w, const joust_bt_opts *o, double *th, double *se)
{
    for (uint32_t q = 0; q < p->n_prompts; q++) {
        uint64_t b = p->item_off[q], e0 = p->edge_off[q], m = p->edge_off[q + 1] - e0;
        joust_bt_edge *e = malloc((m + 1) * sizeof *e);
        for (uint64_t k = 0; k < m; k++)
            e[k] = (joust_bt_edge){p->e[e0 + k].a, p->e[e0 + k].b, p->e[e0 + k].s,
                                   with_w ? p->w[e0 + k] : 1.0};
        CHECK_RC(joust_bt_fit((uint32_t)(p->item_off[q + 1] - b), e, m, o, 0, th + b, se + b,
                              NULL));
        free(e);
    }
}

static double max_abs_diff(size_t n, const double *x, const double *y)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs(x[i] - y[i]));
    return d;
}

static void test_matches_per_prompt(void)
{
    struct { uint64_t seed; uint32_t np, max_n; int big, with_w; double alpha, clip; } cases[] = {
        {11, 300, 40, 0, 0, 1.0, 1e-3}, {12, 300, 40, 1, 1, 1.0, 1e-3},
        {13, 200, 20, 0, 1, 0.3, 0.0},  {14, 200, 64, 1, 0, 4.0, 0.01},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        prob_t p = make_prob(cases[c].seed, cases[c].np, cases[c].max_n, cases[c].big);
        joust_bt_problem pb = view(&p, cases[c].with_w);
        size_t n = p.item_off[p.n_prompts];
        double *th = malloc(n * sizeof *th), *se = malloc(n * sizeof *se),
               *rt = malloc(n * sizeof *rt), *rs = malloc(n * sizeof *rs);
        joust_bt_opts o;
        joust_bt_opts_defaults(&o);
        o.prior_games = cases[c].alpha;
        o.clip = cases[c].clip;
        joust_bt_bulk_stats st;
        CHECK_RC(joust_bt_fit_bulk(&pb, &o, 2, 0, th, se, &st));
        per_prompt(&p, cases[c].with_w, &o, rt, rs);
        CHECK_NEAR(max_abs_diff(n, th, rt), 0, 1e-9);
        CHECK_NEAR(max_abs_diff(n, se, rs), 0, 1e-9);
        CHECK(st.prompts_fitted == p.n_prompts && st.prompts_bad == 0 &&
              st.first_bad == UINT32_MAX && st.prompts_capped == 0);
        CHECK(st.max_step < o.tol && st.iters_max >= 1 && st.iters_max < 40);
        CHECK(cases[c].big ? st.prompts_large > 0 : st.prompts_large == 0);
        CHECK(st.seconds > 0 && st.seconds < 60); /* measured, not left at 0 */
        /* every isolated item sits at exactly 0 with the prior's se */
        int isolated_ok = 1;
        for (uint32_t q = 0; q < p.n_prompts; q++)
            for (uint64_t i = p.item_off[q]; i < p.item_off[q + 1]; i++)
                if (rt[i] == 0 && rs[i] == 2 / sqrt(o.prior_games))
                    isolated_ok &= th[i] == 0 && se[i] == rs[i];
        CHECK(isolated_ok);
        free(th);
        free(se);
        free(rt);
        free(rs);
        prob_free(&p);
    }
}

static void test_threads_bit_identical(void)
{
    prob_t p = make_prob(21, 2000, 40, 1); /* 8 chunks of 256 prompts and change */
    joust_bt_problem pb = view(&p, 1);
    size_t n = p.item_off[p.n_prompts];
    int tc[] = {1, 2, 7};
    double *th[3], *se[3];
    joust_bt_bulk_stats st[3];
    for (int k = 0; k < 3; k++) {
        th[k] = malloc(n * sizeof **th);
        se[k] = malloc(n * sizeof **se);
        CHECK_RC(joust_bt_fit_bulk(&pb, NULL, tc[k], 0, th[k], se[k], &st[k]));
    }
    for (int k = 1; k < 3; k++) {
        CHECK(memcmp(th[0], th[k], n * sizeof **th) == 0);
        CHECK(memcmp(se[0], se[k], n * sizeof **se) == 0);
        CHECK(st[0].max_step == st[k].max_step && st[0].iters_total == st[k].iters_total &&
              st[0].iters_max == st[k].iters_max && st[0].prompts_large == st[k].prompts_large);
    }
    /* se is optional and does not change theta */
    double *t2 = malloc(n * sizeof *t2);
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 2, 0, t2, NULL, NULL));
    CHECK(memcmp(t2, th[0], n * sizeof *t2) == 0);
    free(t2);
    for (int k = 0; k < 3; k++) {
        free(th[k]);
        free(se[k]);
    }
    prob_free(&p);
}

/* Prompts are fitted several at a time (one per vector lane), but a prompt's
 * result never depends on its batch mates: each prompt alone gives the same
 * bits. Sizes cycle so that batches are full, partial and mixed. */
static void test_batch_independent(void)
{
    prob_t p = make_prob(23, 300, 12, 0);
    joust_bt_problem pb = view(&p, 1);
    size_t n = p.item_off[p.n_prompts];
    double *th = malloc(n * sizeof *th), *se = malloc(n * sizeof *se),
           *t1 = malloc(n * sizeof *t1), *s1 = malloc(n * sizeof *s1);
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 2, 0, th, se, NULL));
    int same = 1;
    for (uint32_t q = 0; q < p.n_prompts; q++) {
        joust_bt_problem one = pb;
        one.n_prompts = 1;
        one.item_off = p.item_off + q;
        one.edge_off = p.edge_off + q;
        if (joust_bt_fit_bulk(&one, NULL, 1, 0, t1, s1, NULL) != 0) {
            same = 0;
            continue;
        }
        size_t b = p.item_off[q], k = p.item_off[q + 1] - b;
        same &= memcmp(t1 + b, th + b, k * sizeof *t1) == 0 &&
                memcmp(s1 + b, se + b, k * sizeof *s1) == 0;
    }
    CHECK(same);
    free(th);
    free(se);
    free(t1);
    free(s1);
    prob_free(&p);
}

static void test_warm_start(void)
{
    prob_t p = make_prob(31, 400, 40, 1);
    joust_bt_problem pb = view(&p, 0);
    size_t n = p.item_off[p.n_prompts];
    double *th = malloc(n * sizeof *th), *w = malloc(n * sizeof *w), *se = malloc(n * sizeof *se),
           *se2 = malloc(n * sizeof *se2);
    joust_bt_bulk_stats st;
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 2, 0, th, se, &st));
    int cold_max = st.iters_max;
    memcpy(w, th, n * sizeof *w);
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 2, 1, w, se2, &st));
    CHECK(st.iters_max <= 2 && st.iters_max >= 1);
    CHECK(st.iters_total <= 2 * (uint64_t)p.n_prompts);
    CHECK_NEAR(max_abs_diff(n, w, th), 0, 1e-9); /* both within tol of the optimum */
    CHECK_NEAR(max_abs_diff(n, se, se2), 0, 1e-9); /* se within tol of the optimum */

    /* earlier scores for part of the data: fewer iterations than cold */
    joust_rng_t r;
    joust_rng_seed(&r, 32);
    for (size_t i = 0; i < n; i++)
        w[i] = th[i] + 0.05 * joust_rng_normal(&r);
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 2, 1, w, NULL, &st));
    CHECK(st.iters_max <= cold_max);
    CHECK_NEAR(max_abs_diff(n, w, th), 0, 1e-9);

    /* far-off and very wide warm starts (shifted exponentials cannot span
     * them; the Hessian underflows) still reach the same optimum on the
     * fast path (joust_bt_fit, used for large prompts, does not: it stops
     * after one iteration, so this part uses small prompts only) */
    prob_t ps = make_prob(33, 400, 40, 0);
    joust_bt_problem pbs = view(&ps, 1);
    size_t ns = ps.item_off[ps.n_prompts];
    double *ts = malloc(ns * sizeof *ts), *ws = malloc(ns * sizeof *ws);
    CHECK_RC(joust_bt_fit_bulk(&pbs, NULL, 2, 0, ts, NULL, &st));
    for (size_t i = 0; i < ns; i++)
        ws[i] = (i % 3 == 0 ? 900.0 : i % 3 == 1 ? -900.0 : 40.0);
    CHECK_RC(joust_bt_fit_bulk(&pbs, NULL, 2, 1, ws, NULL, &st));
    CHECK(st.prompts_capped == 0);
    CHECK_NEAR(max_abs_diff(ns, ws, ts), 0, 1e-9);
    free(ts);
    free(ws);
    prob_free(&ps);
    free(th);
    free(w);
    free(se);
    free(se2);
    prob_free(&p);
}

/* A prompt of exactly JOUST_BT_BULK_SMALL images, every pair, hard outcomes
 * with clip 0 (large theta), next to the same prompt one image larger (the
 * joust_bt_fit path). */
static void test_boundary_sizes(void)
{
    enum { S = JOUST_BT_BULK_SMALL };
    size_t mp = (size_t)S * (S - 1) / 2 + (size_t)(S + 1) * S / 2;
    joust_bt_edge32 *e = malloc(mp * sizeof *e);
    uint64_t item_off[3] = {0, S, 2 * S + 1}, edge_off[3] = {0, 0, 0};
    size_t m = 0;
    for (int q = 0; q < 2; q++) {
        uint32_t n = S + (uint32_t)q;
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = i + 1; j < n; j++)
                e[m++] = (joust_bt_edge32){i, j, (i * 7 + j) % 5 == 0 ? 0.0f : 1.0f};
        edge_off[q + 1] = m;
    }
    joust_bt_problem pb = {2, item_off, edge_off, e, NULL};
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    o.clip = 0;
    double th[2 * S + 1], se[2 * S + 1], rt[2 * S + 1], rs[2 * S + 1];
    joust_bt_bulk_stats st;
    CHECK_RC(joust_bt_fit_bulk(&pb, &o, 2, 0, th, se, &st));
    CHECK(st.prompts_large == 1 && st.prompts_fitted == 2);
    for (int q = 0; q < 2; q++) {
        size_t me = edge_off[q + 1] - edge_off[q];
        joust_bt_edge *x = malloc(me * sizeof *x);
        for (size_t k = 0; k < me; k++) {
            joust_bt_edge32 y = e[edge_off[q] + k];
            x[k] = (joust_bt_edge){y.a, y.b, y.s, 1};
        }
        CHECK_RC(joust_bt_fit((uint32_t)(item_off[q + 1] - item_off[q]), x, me, &o, 0,
                              rt + item_off[q], rs + item_off[q], NULL));
        free(x);
    }
    CHECK_NEAR(max_abs_diff(2 * S + 1, th, rt), 0, 1e-9);
    CHECK_NEAR(max_abs_diff(2 * S + 1, se, rs), 0, 1e-9);
    free(e);
}

static void test_errors(void)
{
    prob_t p = make_prob(41, 50, 12, 0);
    size_t n = p.item_off[p.n_prompts];
    double *th = malloc(n * sizeof *th), *ok = malloc(n * sizeof *ok);
    joust_bt_problem pb = view(&p, 1);
    CHECK_RC(joust_bt_fit_bulk(&pb, NULL, 1, 0, ok, NULL, NULL));

    /* one bad edge per kind in prompts 9 and 30: those stay untouched */
    uint32_t bad_q[2] = {0, 0};
    int found = 0;
    for (uint32_t q = 5; q < p.n_prompts && found < 2; q++)
        if (p.edge_off[q + 1] > p.edge_off[q] && (found == 0 ? q >= 9 : q >= 30))
            bad_q[found++] = q;
    CHECK(found == 2);
    for (int kind = 0; kind < 8; kind++) {
        prob_t c = p;
        c.e = malloc(p.edge_off[p.n_prompts] * sizeof *c.e);
        c.w = malloc(p.edge_off[p.n_prompts] * sizeof *c.w);
        memcpy(c.e, p.e, p.edge_off[p.n_prompts] * sizeof *c.e);
        memcpy(c.w, p.w, p.edge_off[p.n_prompts] * sizeof *c.w);
        for (int b = 0; b < 2; b++) {
            uint32_t q = bad_q[b];
            uint64_t k = p.edge_off[q + 1] - 1;
            uint32_t nq = (uint32_t)(p.item_off[q + 1] - p.item_off[q]);
            switch (kind) {
            case 0: c.e[k].a = nq; break;
            case 1: c.e[k].b = nq + 5; break;
            case 2: c.e[k].b = c.e[k].a; break;
            case 3: c.e[k].s = NAN; break;
            case 4: c.e[k].s = 1.5f; break;
            case 5: c.e[k].s = -0.25f; break;
            case 6: c.w[k] = 0; break;
            default: c.w[k] = INFINITY; break;
            }
        }
        joust_bt_problem cb = view(&c, 1);
        for (size_t i = 0; i < n; i++)
            th[i] = 7;
        joust_bt_bulk_stats st;
        CHECK(joust_bt_fit_bulk(&cb, NULL, 2, 0, th, NULL, &st) == JOUST_EINVAL);
        CHECK(st.prompts_bad == 2 && st.first_bad == bad_q[0] &&
              st.prompts_fitted == p.n_prompts - 2);
        int untouched = 1, rest = 1;
        for (uint32_t q = 0; q < p.n_prompts; q++)
            for (uint64_t i = p.item_off[q]; i < p.item_off[q + 1]; i++) {
                if (q == bad_q[0] || q == bad_q[1])
                    untouched &= th[i] == 7;
                else
                    rest &= th[i] == ok[i];
            }
        CHECK(untouched && rest);
        free(c.e);
        free(c.w);
    }

    /* a non-finite warm theta makes only its prompt bad */
    memcpy(th, ok, n * sizeof *th);
    uint64_t i0 = p.item_off[bad_q[0]];
    th[i0] = NAN;
    joust_bt_bulk_stats st;
    CHECK(joust_bt_fit_bulk(&pb, NULL, 2, 1, th, NULL, &st) == JOUST_EINVAL);
    CHECK(st.prompts_bad == 1 && st.first_bad == bad_q[0] && isnan(th[i0]));

    /* whole-call errors touch nothing */
    for (size_t i = 0; i < n; i++)
        th[i] = 7;
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    o.prior_games = 0;
    CHECK(joust_bt_fit_bulk(&pb, &o, 2, 0, th, NULL, NULL) == JOUST_EINVAL);
    joust_bt_opts_defaults(&o);
    o.clip = 0.5;
    CHECK(joust_bt_fit_bulk(&pb, &o, 2, 0, th, NULL, NULL) == JOUST_EINVAL);
    CHECK(joust_bt_fit_bulk(NULL, NULL, 2, 0, th, NULL, NULL) == JOUST_EINVAL);
    CHECK(joust_bt_fit_bulk(&pb, NULL, 2, 0, NULL, NULL, NULL) == JOUST_EINVAL);
    uint64_t saved = p.item_off[3];
    p.item_off[3] = p.item_off[4] + 1; /* decreasing */
    CHECK(joust_bt_fit_bulk(&pb, NULL, 2, 0, th, NULL, NULL) == JOUST_EINVAL);
    p.item_off[3] = saved;
    joust_bt_problem noedges = pb;
    noedges.edges = NULL;
    CHECK(joust_bt_fit_bulk(&noedges, NULL, 2, 0, th, NULL, NULL) == JOUST_EINVAL);
    int all7 = 1;
    for (size_t i = 0; i < n; i++)
        all7 &= th[i] == 7;
    CHECK(all7);

    /* empty problems and threads < 1 */
    uint64_t zero[1] = {0};
    joust_bt_problem empty = {0, zero, zero, NULL, NULL};
    CHECK_RC(joust_bt_fit_bulk(&empty, NULL, 0, 0, NULL, NULL, &st));
    CHECK(st.prompts_fitted == 0 && st.iters_total == 0 && st.max_step == 0);
    free(th);
    free(ok);
    prob_free(&p);
}

int main(void)
{
    test_matches_per_prompt();
    test_threads_bit_identical();
    test_batch_independent();
    test_warm_start();
    test_boundary_sizes();
    test_errors();
    return test_report();
}
