/* Model-level fit (rank/model_fit.h): cells, recovery, bootstrap coverage,
 * components, anchor, errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "model_fit.h"
#include "rng.h"

static double sig(double x) { return 1 / (1 + exp(-x)); }

static void test_cells(void)
{
    const joust_model_outcome o[] = {
        {5, 0, 1, 0.8}, /* model 0 first */
        {5, 1, 0, 0.4}, /* model 1 first: P(0 > 1) = 0.6 */
        {5, 2, 2, 0.9}, /* same model: skipped */
        {2, 2, 1, 1.0},
        {5, 0, 1, 0.5},
    };
    joust_model_cell *c = NULL;
    size_t nc = 0;
    CHECK_RC(joust_model_cells(3, o, 5, &c, &nc));
    CHECK(nc == 2);
    CHECK(c[0].prompt == 2 && c[0].a == 1 && c[0].b == 2);
    CHECK_NEAR(c[0].wins_a, 0.0, 1e-12);
    CHECK_NEAR(c[0].count, 1.0, 0);
    CHECK(c[1].prompt == 5 && c[1].a == 0 && c[1].b == 1);
    CHECK_NEAR(c[1].wins_a, 0.8 + 0.6 + 0.5, 1e-12);
    CHECK_NEAR(c[1].count, 3.0, 0);
    free(c);
    joust_model_outcome bad = {1, 0, 3, 0.5};
    CHECK(joust_model_cells(3, &bad, 1, &c, &nc) == JOUST_EINVAL);
    bad = (joust_model_outcome){1, 0, 1, 1.5};
    CHECK(joust_model_cells(3, &bad, 1, &c, &nc) == JOUST_EINVAL);
    CHECK_RC(joust_model_cells(3, NULL, 0, &c, &nc));
    CHECK(c == NULL && nc == 0);
}

/* Many outcomes (the counting-sort path for dense prompt ids, the plain
 * sort for sparse ones): the cells come out strictly ordered by (prompt, a,
 * b), each with the sums of its outcomes (multiples of 1/8: exact in any
 * order), and the same for the same outcomes in another order. */
static void test_cells_many(void)
{
    enum { M = 20000, NM = 6 };
    joust_model_outcome *o = malloc(M * sizeof *o);
    double (*sum)[NM][NM] = calloc(1000, sizeof *sum), (*cnt)[NM][NM] = calloc(1000, sizeof *cnt);
    joust_rng_t r;
    joust_rng_seed(&r, 11);
    for (int sparse = 0; sparse < 2; sparse++) {
        memset(sum, 0, 1000 * sizeof *sum);
        memset(cnt, 0, 1000 * sizeof *cnt);
        for (size_t k = 0; k < M; k++) {
            uint64_t p = joust_rng_below(&r, 1000);
            uint32_t f = (uint32_t)joust_rng_below(&r, NM), g = (uint32_t)joust_rng_below(&r, NM);
            double pf = (double)joust_rng_below(&r, 9) / 8;
            o[k] = (joust_model_outcome){sparse ? p * 1000003 : p, f, g, pf};
            if (f != g) {
                sum[p][f < g ? f : g][f < g ? g : f] += f < g ? pf : 1 - pf;
                cnt[p][f < g ? f : g][f < g ? g : f] += 1;
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            if (pass) /* reversed input: the same cells */
                for (size_t k = 0; k < M / 2; k++) {
                    joust_model_outcome t = o[k];
                    o[k] = o[M - 1 - k], o[M - 1 - k] = t;
                }
            joust_model_cell *c = NULL;
            size_t nc = 0, want = 0, ok = 1;
            CHECK_RC(joust_model_cells(NM, o, M, &c, &nc));
            for (int p = 0; p < 1000; p++)
                for (int a = 0; a < NM; a++)
                    for (int b = a + 1; b < NM; b++)
                        want += cnt[p][a][b] > 0;
            for (size_t k = 0; k < nc; k++) {
                uint64_t p = sparse ? c[k].prompt / 1000003 : c[k].prompt;
                ok &= p < 1000 && c[k].a < c[k].b && c[k].wins_a == sum[p][c[k].a][c[k].b] &&
                      c[k].count == cnt[p][c[k].a][c[k].b];
                if (k)
                    ok &= c[k - 1].prompt < c[k].prompt ||
                          (c[k - 1].prompt == c[k].prompt &&
                           (c[k - 1].a < c[k].a || (c[k - 1].a == c[k].a && c[k - 1].b < c[k].b)));
            }
            CHECK(nc == want && ok);
            free(c);
        }
    }
    free(o), free(sum), free(cnt);
}

/* The reference for test_cells_sums: cells sorted by (prompt, a, b, value)
 * with qsort, then summed in that order. */
static int ref_cmp(const void *x, const void *y)
{
    const joust_model_cell *c = x, *d = y;
    if (c->prompt != d->prompt)
        return c->prompt < d->prompt ? -1 : 1;
    if (c->a != d->a)
        return c->a < d->a ? -1 : 1;
    if (c->b != d->b)
        return c->b < d->b ? -1 : 1;
    return c->wins_a < d->wins_a ? -1 : c->wins_a > d->wins_a;
}

/* Outcomes with arbitrary p (sums that depend on their order), one prompt
 * (the scorer's call: counting sort by pair for few models, qsort for
 * many) and several (the counting sort by prompt): the cells are bitwise
 * those of one sort by (prompt, a, b, p) summed in that order. */
static void test_cells_sums(void)
{
    enum { M = 3000 };
    joust_model_outcome *o = malloc(M * sizeof *o);
    joust_model_cell *ref = malloc(M * sizeof *ref);
    joust_rng_t r;
    joust_rng_seed(&r, 23);
    const uint32_t nms[] = {2, 4, 16, 64, 65, 300};
    const size_t ms[] = {1, 31, 33, 120, 1500, M};
    for (int multi = 0; multi < 2; multi++)
        for (size_t a = 0; a < sizeof nms / sizeof *nms; a++)
            for (size_t b = 0; b < sizeof ms / sizeof *ms; b++) {
                uint32_t nm = nms[a];
                size_t m = ms[b], nr = 0;
                for (size_t k = 0; k < m; k++) {
                    uint64_t p = multi ? 3 + joust_rng_below(&r, 1 + m / 100) : 7;
                    uint32_t f = (uint32_t)joust_rng_below(&r, nm);
                    uint32_t g = (uint32_t)joust_rng_below(&r, nm);
                    double pf = joust_rng_uniform(&r);
                    o[k] = (joust_model_outcome){p, f, g, pf};
                    if (f != g)
                        ref[nr++] = (joust_model_cell){p, f < g ? f : g, f < g ? g : f,
                                                       f < g ? pf : 1 - pf, 1};
                }
                qsort(ref, nr, sizeof *ref, ref_cmp);
                size_t w = 0;
                for (size_t k = 0; k < nr; k++)
                    if (w && ref[w - 1].prompt == ref[k].prompt && ref[w - 1].a == ref[k].a &&
                        ref[w - 1].b == ref[k].b) {
                        ref[w - 1].wins_a += ref[k].wins_a;
                        ref[w - 1].count += ref[k].count;
                    } else {
                        ref[w++] = ref[k];
                    }
                joust_model_cell *c = NULL;
                size_t nc = 0;
                CHECK_RC(joust_model_cells(nm, o, m, &c, &nc));
                CHECK(nc == w && (!w || memcmp(c, ref, w * sizeof *c) == 0));
                free(c);
            }
    free(o), free(ref);
}

/* A simulated cross-model run: nm models with true scores, P prompts, each
 * with a prompt-level perturbation of every model (clustered data), every
 * model pair compared `per` times per prompt with soft outcomes. */
static size_t simulate(joust_rng_t *r, uint32_t nm, const double *truth, int P, int per,
                       double prompt_sd, joust_model_outcome *o)
{
    size_t m = 0;
    double eff[16];
    for (int p = 0; p < P; p++) {
        for (uint32_t i = 0; i < nm; i++)
            eff[i] = truth[i] + prompt_sd * joust_rng_normal(r);
        for (uint32_t a = 0; a < nm; a++)
            for (uint32_t b = a + 1; b < nm; b++)
                for (int k = 0; k < per; k++) {
                    int flip = (int)(joust_rng_u64(r) >> 63);
                    uint32_t f = flip ? b : a, s = flip ? a : b;
                    double pf = sig(eff[f] - eff[s] + 0.7 * joust_rng_normal(r));
                    o[m++] = (joust_model_outcome){(uint64_t)p * 7919, f, s, pf};
                }
    }
    return m;
}

static void test_recovery_and_coverage(void)
{
    enum { NM = 5, P = 60, PER = 2 };
    const double truth[NM] = {-0.8, -0.3, 0.0, 0.4, 0.7}; /* mean 0: the default gauge */
    joust_model_outcome *o = malloc((size_t)P * NM * NM * PER * sizeof *o);
    joust_rng_t r;
    joust_rng_seed(&r, 42);
    int covered = 0, total = 0, sims = 40;
    double err_sum = 0;
    for (int sim = 0; sim < sims; sim++) {
        size_t m = simulate(&r, NM, truth, P, PER, 0.4, o);
        joust_model_cell *c;
        size_t nc;
        CHECK_RC(joust_model_cells(NM, o, m, &c, &nc));
        joust_model_fit_opts fo;
        joust_model_fit_opts_defaults(&fo);
        fo.seed = (uint64_t)sim + 1;
        fo.prior_games = 0.1;
        joust_model_score sc[NM];
        uint32_t ncomp = 0;
        CHECK_RC(joust_model_fit(NM, c, nc, &fo, sc, &ncomp));
        CHECK(ncomp == 1);
        for (int i = 0; i < NM; i++) {
            /* soft outcomes under logit noise flatten the scale a little;
             * compare the order and the coverage of the centred truth after
             * rescaling by the least-squares factor */
            err_sum += fabs(sc[i].theta - truth[i]);
            CHECK(sc[i].lo <= sc[i].theta + 1e-9 && sc[i].theta <= sc[i].hi + 1e-9);
            CHECK(sc[i].sd > 0 && sc[i].comparisons == (double)P * PER * (NM - 1));
        }
        double num = 0, den = 0;
        for (int i = 0; i < NM; i++) {
            num += sc[i].theta * truth[i];
            den += truth[i] * truth[i];
        }
        double scale = num / den; /* fitted = scale * truth */
        for (int i = 0; i < NM; i++) {
            double t = scale * truth[i];
            covered += sc[i].lo <= t && t <= sc[i].hi;
            total++;
        }
        free(c);
    }
    double coverage = (double)covered / total;
    printf("bootstrap 95%% interval coverage: %.3f over %d intervals; mean |err| %.3f\n", coverage,
           total, err_sum / total);
    CHECK(coverage >= 0.85 && coverage <= 0.995);
    CHECK(err_sum / total < 0.2);
    free(o);
}

/* Ignoring the prompt clusters (a bootstrap over single comparisons) would
 * undercover; the prompt bootstrap widens the intervals with prompt_sd. */
static void test_cluster_width(void)
{
    enum { NM = 3, P = 40, PER = 4 };
    const double truth[NM] = {-0.5, 0.0, 0.5};
    joust_model_outcome *o = malloc((size_t)P * NM * NM * PER * sizeof *o);
    double width[2];
    for (int k = 0; k < 2; k++) {
        joust_rng_t r;
        joust_rng_seed(&r, 3);
        size_t m = simulate(&r, NM, truth, P, PER, k ? 0.8 : 0.0, o);
        joust_model_cell *c;
        size_t nc;
        CHECK_RC(joust_model_cells(NM, o, m, &c, &nc));
        joust_model_score sc[NM];
        CHECK_RC(joust_model_fit(NM, c, nc, NULL, sc, NULL));
        width[k] = sc[2].hi - sc[2].lo;
        free(c);
    }
    CHECK(width[1] > 1.3 * width[0]);
    free(o);
}

static void test_components_and_anchor(void)
{
    /* models 0-1 and 2-3 compared within their pairs only, model 4 never */
    joust_model_cell c[] = {
        {1, 0, 1, 7.0, 10.0}, {2, 0, 1, 6.0, 10.0}, {3, 0, 1, 8.0, 10.0},
        {1, 2, 3, 2.0, 10.0}, {2, 2, 3, 3.0, 10.0}, {4, 2, 3, 4.0, 10.0},
        {5, 3, 4, 0.0, 0.0}, /* count 0: ignored */
    };
    joust_model_score sc[5];
    uint32_t ncomp = 0;
    joust_model_fit_opts fo;
    joust_model_fit_opts_defaults(&fo);
    CHECK_RC(joust_model_fit(5, c, 7, &fo, sc, &ncomp));
    CHECK(ncomp == 3);
    CHECK(sc[0].component == 0 && sc[1].component == 0);
    CHECK(sc[2].component == 1 && sc[3].component == 1);
    CHECK(sc[4].component == 2);
    CHECK_NEAR(sc[0].theta + sc[1].theta, 0, 1e-9); /* each component centred */
    CHECK_NEAR(sc[2].theta + sc[3].theta, 0, 1e-9);
    CHECK(sc[0].theta > 0 && sc[2].theta < 0);
    CHECK(sc[4].theta == 0 && isnan(sc[4].lo) && isnan(sc[4].hi) && sc[4].comparisons == 0);
    CHECK(sc[0].lo < sc[0].theta && sc[0].theta < sc[0].hi);

    /* anchor: model 1 at 0, its component shifted; the others untouched */
    joust_model_score an[5];
    fo.anchor = 1;
    CHECK_RC(joust_model_fit(5, c, 7, &fo, an, NULL));
    CHECK(an[1].theta == 0 && an[1].lo == 0 && an[1].hi == 0);
    CHECK_NEAR(an[0].theta, sc[0].theta - sc[1].theta, 1e-9);
    CHECK_NEAR(an[2].theta, sc[2].theta, 1e-12);

    /* same seed, same intervals; no rounds, no intervals */
    joust_model_score again[5];
    CHECK_RC(joust_model_fit(5, c, 7, &fo, again, NULL));
    int same = 1;
    for (int i = 0; i < 5; i++)
        same &= an[i].theta == again[i].theta && an[i].component == again[i].component &&
                (an[i].lo == again[i].lo || (isnan(an[i].lo) && isnan(again[i].lo))) &&
                (an[i].hi == again[i].hi || (isnan(an[i].hi) && isnan(again[i].hi)));
    CHECK(same);
    fo.rounds = 0;
    CHECK_RC(joust_model_fit(5, c, 7, &fo, again, NULL));
    CHECK(isnan(again[0].lo) && again[0].theta == an[0].theta);

    /* errors */
    joust_model_fit_opts_defaults(&fo);
    fo.anchor = 5;
    CHECK(joust_model_fit(5, c, 7, &fo, sc, NULL) == JOUST_EINVAL);
    fo.anchor = -1;
    fo.level = 1;
    CHECK(joust_model_fit(5, c, 7, &fo, sc, NULL) == JOUST_EINVAL);
    joust_model_cell bad = {1, 1, 0, 1, 2};
    CHECK(joust_model_fit(5, &bad, 1, NULL, sc, NULL) == JOUST_EINVAL);
    bad = (joust_model_cell){1, 0, 1, 3, 2};
    CHECK(joust_model_fit(5, &bad, 1, NULL, sc, NULL) == JOUST_EINVAL);
    CHECK_RC(joust_model_fit(0, NULL, 0, NULL, sc, &ncomp));
    CHECK(ncomp == 0);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Bit for bit, NaNs included; field by field, because the struct's tail
 * padding holds whatever the stack held. */
static int same_score(const joust_model_score *x, const joust_model_score *y, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!same_bits(x[i].theta, y[i].theta) || !same_bits(x[i].lo, y[i].lo) ||
            !same_bits(x[i].hi, y[i].hi) || !same_bits(x[i].sd, y[i].sd) ||
            !same_bits(x[i].comparisons, y[i].comparisons) || x[i].component != y[i].component)
            return 0;
    return 1;
}

/* Threads change the speed, not the numbers; the win-rate intervals are
 * percentile intervals of the same rounds (both orientations agree, they
 * hold the point rate); a paired fit of a
 * night against itself has no difference in any round, and each side is
 * joust_model_fit's fit. */
static void test_threads_rates_paired(void)
{
    enum { NM = 4, P = 50, PER = 2 };
    const double truth[NM] = {-0.6, -0.1, 0.2, 0.5};
    joust_model_outcome *o = malloc((size_t)P * NM * NM * PER * sizeof *o);
    joust_rng_t r;
    joust_rng_seed(&r, 11);
    size_t m = simulate(&r, NM, truth, P, PER, 0.6, o);
    for (size_t k = 0; k < m; k++)
        o[k].prompt /= 7919; /* dense 0..P-1, as the paired fit wants */
    joust_model_cell *c;
    size_t nc;
    CHECK_RC(joust_model_cells(NM, o, m, &c, &nc));
    joust_model_fit_opts fo;
    joust_model_fit_opts_defaults(&fo);
    fo.anchor = 0;
    fo.rounds = 150;
    joust_model_score one[NM], two[NM], three[NM];
    double lo[NM * NM], hi[NM * NM], lo3[NM * NM], hi3[NM * NM];
    CHECK_RC(joust_model_fit(NM, c, nc, &fo, one, NULL));
    fo.threads = 2;
    CHECK_RC(joust_model_fit_rates(NM, c, nc, &fo, two, NULL, lo, hi));
    fo.threads = 3;
    CHECK_RC(joust_model_fit_rates(NM, c, nc, &fo, three, NULL, lo3, hi3));
    CHECK(same_score(one, two, NM) && same_score(one, three, NM));
    CHECK(memcmp(lo, lo3, sizeof lo) == 0 && memcmp(hi, hi3, sizeof hi) == 0);
    double wins[NM * NM] = {0}, games[NM * NM] = {0};
    for (size_t k = 0; k < nc; k++) {
        wins[c[k].a * NM + c[k].b] += c[k].wins_a;
        wins[c[k].b * NM + c[k].a] += c[k].count - c[k].wins_a;
        games[c[k].a * NM + c[k].b] += c[k].count;
        games[c[k].b * NM + c[k].a] += c[k].count;
    }
    for (int a = 0; a < NM; a++)
        for (int b = 0; b < NM; b++) {
            if (a == b) {
                CHECK(isnan(lo[a * NM + b]) && isnan(hi[a * NM + b]));
                continue;
            }
            double rate = wins[a * NM + b] / games[a * NM + b];
            CHECK(lo[a * NM + b] < rate && rate < hi[a * NM + b]);
            CHECK(hi[a * NM + b] - lo[a * NM + b] < 0.3);
            CHECK_NEAR(lo[a * NM + b], 1 - hi[b * NM + a], 1e-12);
        }

    joust_model_score sx[NM], sy[NM];
    double *bx = malloc(sizeof *bx * 150 * NM), *by = malloc(sizeof *by * 150 * NM);
    joust_model_paired x = {NM, c, nc, 0, sx, bx}, y = {NM, c, nc, 0, sy, by};
    fo.anchor = -1; /* ignored: each side's own */
    CHECK_RC(joust_model_fit_paired(P, &x, &y, &fo));
    CHECK(memcmp(bx, by, sizeof *bx * 150 * NM) == 0);
    CHECK(same_score(sx, one, NM) && same_score(sy, one, NM)); /* same seed, same draws */
    c[0].prompt = P; /* outside the shared prompts */
    CHECK(joust_model_fit_paired(P, &x, &y, &fo) == JOUST_EINVAL);
    fo.threads = -1;
    CHECK(joust_model_fit(NM, c, nc, &fo, one, NULL) == JOUST_EINVAL);
    free(bx);
    free(by);
    free(c);
    free(o);
}

int main(void)
{
    test_cells_many();
    test_cells();
    test_cells_sums();
    test_recovery_and_coverage();
    test_cluster_width();
    test_components_and_anchor();
    test_threads_rates_paired();
    return test_report();
}
