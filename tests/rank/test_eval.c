/* Judge evaluation math (rank/eval.h): the protocols on hand-computed
 * cases (human ties, a single-image prompt, a judge tie, a failed pair),
 * bootstrap intervals, calibration metrics, margin deciles, order effects,
 * and the temperature fit recovering a known temperature and bias. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "err.h"
#include "eval.h"
#include "rng.h"

#define NONE JOUST_EVAL_NO_CATEGORY

/* Prompt 0: three images ranked 1, 2, 2 by the humans: (0,1) and (0,2)
 * favour image 0, (1,2) is a human tie. Prompt 1: two images ranked 2, 1,
 * plus a pair whose judge calls all failed. Prompt 2: a single image. */
static const joust_eval_pair hand[] = {
    {0, 0, 1.0, 0.8, 0.3},   /* P = (0.8 + 0.7)/2 = 0.75: right */
    {0, 0, 1.0, 0.5, 0.5},   /* P = 0.5: the judge ties, half right */
    {0, 1, 0.5, 0.9, 0.2},   /* human tie */
    {1, 1, 0.0, 0.9, NAN},   /* one order only: P = 0.9, humans prefer b: wrong */
    {1, 1, 0.0, NAN, NAN},   /* failed: left out */
};

static void test_protocols(void)
{
    joust_eval_sums s[3];
    size_t n = sizeof hand / sizeof *hand;
    CHECK_NEAR(joust_eval_pair_p(&hand[0]), 0.75, 1e-12);
    CHECK(isnan(joust_eval_pair_p(&hand[4])));
    CHECK(isnan(joust_eval_pair_score(&hand[2])));
    CHECK_NEAR(joust_eval_pair_score(&hand[1]), 0.5, 0);
    /* ImageReward: (1 + 0.5 + 0) / 3 pooled non-tied judged pairs. */
    joust_eval_sums_compute(JOUST_PROTOCOL_POOLED, hand, n, NONE, s, 3);
    CHECK_NEAR(joust_eval_combine(s, NULL, 3), 0.5, 1e-12);
    /* HPDv2: prompt 0 = 1 - 0.5/3 (the tie agrees), prompt 1 = 1 - 1/1,
     * prompt 2 has no pair: mean of 5/6 and 0. */
    joust_eval_sums_compute(JOUST_PROTOCOL_PER_PROMPT, hand, n, NONE, s, 3);
    CHECK_NEAR(s[0].num, 5.0 / 6.0, 1e-12);
    CHECK_NEAR(s[1].num, 0.0, 1e-12);
    CHECK(s[2].den == 0);
    CHECK_NEAR(joust_eval_combine(s, NULL, 3), 5.0 / 12.0, 1e-12);
    /* Category 1 only: pooled = 0 / 1 (the tie is left out). */
    joust_eval_sums_compute(JOUST_PROTOCOL_POOLED, hand, n, 1, s, 3);
    CHECK_NEAR(joust_eval_combine(s, NULL, 3), 0.0, 1e-12);
    /* Weights: prompt 0 twice, prompt 1 not at all: 3 / 4. */
    joust_eval_sums_compute(JOUST_PROTOCOL_POOLED, hand, n, NONE, s, 3);
    double w[3] = {2, 0, 1};
    CHECK_NEAR(joust_eval_combine(s, w, 3), 0.75, 1e-12);
    double zero[3] = {0, 0, 1};
    CHECK(isnan(joust_eval_combine(s, zero, 3)));
}

static void test_bootstrap(void)
{
    /* 300 prompts of 10 pairs, each right with probability 0.7. */
    enum { P = 300, K = 10 };
    joust_eval_pair *x = malloc(P * K * sizeof *x), *y = malloc(P * K * sizeof *y);
    joust_rng_t r;
    joust_rng_seed(&r, 7);
    for (int i = 0; i < P * K; i++) {
        int right = joust_rng_uniform(&r) < 0.7;
        x[i] = (joust_eval_pair){(uint32_t)(i / K), NONE, 1.0, right ? 0.9 : 0.1, NAN};
        y[i] = x[i];
    }
    joust_eval_sums s[P], t[P];
    joust_eval_sums_compute(JOUST_PROTOCOL_POOLED, x, P * K, NONE, s, P);
    double acc = joust_eval_combine(s, NULL, P), lo, hi;
    CHECK(fabs(acc - 0.7) < 0.03);
    joust_eval_bootstrap(s, NULL, P, 1000, 1, 0.95, &lo, &hi);
    CHECK(lo < acc && acc < hi);
    /* binomial sd sqrt(.21/3000) = 0.0084: a 95 % interval about 0.033 wide */
    CHECK(hi - lo > 0.02 && hi - lo < 0.05);
    /* Paired difference with itself: exactly zero in every round. */
    joust_eval_bootstrap(s, s, P, 200, 1, 0.95, &lo, &hi);
    CHECK(lo == 0 && hi == 0);
    /* A judge that is right on 50 more pairs: difference 50/3000. */
    for (int i = 0, moved = 0; i < P * K && moved < 50; i++)
        if (y[i].p_ab < 0.5) {
            y[i].p_ab = 0.9;
            moved++;
        }
    joust_eval_sums_compute(JOUST_PROTOCOL_POOLED, y, P * K, NONE, t, P);
    CHECK_NEAR(joust_eval_combine(t, NULL, P) - acc, 50.0 / 3000.0, 1e-12);
    joust_eval_bootstrap(t, s, P, 1000, 2, 0.95, &lo, &hi);
    CHECK(lo > 0 && lo < 50.0 / 3000.0 && hi > 50.0 / 3000.0);
    free(x);
    free(y);
}

static void test_calibration(void)
{
    /* Samples (p_first, y): (0.8, 1), (0.8, 0), (0.3, 0). */
    const joust_eval_pair c[] = {
        {0, NONE, 1.0, 0.8, NAN},
        {0, NONE, 0.0, 0.8, NAN},
        {0, NONE, 1.0, NAN, 0.3}, /* b first, b loses: (0.3, 0) */
        {0, NONE, 0.5, 0.9, 0.9}, /* human tie: no sample */
    };
    joust_eval_calibration k;
    joust_eval_calibrate(c, 4, NULL, NULL, NULL, &k);
    CHECK(k.n == 3);
    CHECK(k.bin_n[8] == 2 && k.bin_n[3] == 1);
    CHECK_NEAR(k.bin_y[8], 0.5, 1e-12);
    CHECK(isnan(k.bin_p[0]));
    CHECK_NEAR(k.ece, (2 * 0.3 + 0.3) / 3, 1e-12);
    CHECK_NEAR(k.brier, (0.04 + 0.64 + 0.09) / 3, 1e-12);
    CHECK_NEAR(k.log_loss, -(log(0.8) + log(0.2) + log(0.7)) / 3, 1e-12);
    /* Identity calibration changes nothing; T = 2 halves the logit. */
    joust_calibration id = {1, 0}, t2 = {2, 0};
    CHECK_NEAR(joust_calibration_apply(&id, 0.8), 0.8, 1e-12);
    CHECK_NEAR(joust_calibration_apply(&t2, 0.8), 1 / (1 + exp(-log(4.0) / 2)), 1e-12);
    CHECK(isnan(joust_calibration_apply(&t2, NAN)));
    CHECK(joust_calibration_apply(&t2, 1.0) < 1.0);
}

/* A judge whose logit is T0 times the truth plus a first-position bias. */
static void test_temperature(void)
{
    enum { N = 20000 };
    const double T0 = 2.5, B0 = 0.4;
    joust_eval_pair *x = malloc(N * sizeof *x);
    joust_rng_t r;
    joust_rng_seed(&r, 11);
    for (int i = 0; i < N; i++) {
        double z = 1.5 * joust_rng_normal(&r); /* true logit of a over b */
        double human = joust_rng_uniform(&r) < 1 / (1 + exp(-z)) ? 1.0 : 0.0;
        double pab = 1 / (1 + exp(-(T0 * z + B0))), pba = 1 / (1 + exp(-(-T0 * z + B0)));
        x[i] = (joust_eval_pair){(uint32_t)i, NONE, human, pab, pba};
    }
    joust_calibration c;
    CHECK_RC(joust_eval_fit_temperature(x, N, 1, NULL, NULL, &c));
    CHECK(fabs(c.temperature - T0) < 0.15);
    CHECK(fabs(c.first_bias - B0) < 0.1);
    joust_eval_calibration before, after;
    joust_eval_calibrate(x, N, NULL, NULL, NULL, &before);
    joust_eval_calibrate(x, N, &c, NULL, NULL, &after);
    CHECK(after.ece < before.ece && after.ece < 0.02);
    CHECK(after.log_loss < before.log_loss);
    joust_calibration t;
    CHECK_RC(joust_eval_fit_temperature(x, N, 0, NULL, NULL, &t));
    CHECK(fabs(t.temperature - T0) < 0.2 && t.first_bias == 0);
    /* Too few samples; a judge that always disagrees. */
    CHECK(joust_eval_fit_temperature(x, 0, 1, NULL, NULL, &t) == JOUST_EINVAL);
    for (int i = 0; i < N; i++) {
        x[i].p_ab = 1 - x[i].p_ab;
        x[i].p_ba = 1 - x[i].p_ba;
    }
    CHECK(joust_eval_fit_temperature(x, N, 0, NULL, NULL, &t) == JOUST_EINVAL);
    free(x);
}

static void test_margin_order(void)
{
    joust_eval_pair x[20];
    for (int i = 0; i < 20; i++) /* margins 0.0125 .. 0.25; the 5 smallest wrong */
        x[i] = (joust_eval_pair){0, NONE, i < 5 ? 0.0 : 1.0, 0.5 + 0.0125 * (i + 1), NAN};
    joust_eval_margin m;
    joust_eval_by_margin(x, 20, &m);
    CHECK(m.n[0] == 2 && m.n[9] == 2);
    CHECK_NEAR(m.accuracy[0], 0, 0);
    CHECK_NEAR(m.accuracy[2], 0.5, 0);
    CHECK_NEAR(m.accuracy[9], 1, 0);
    CHECK_NEAR(m.lo[0], 0.0125, 1e-12);
    joust_eval_order o;
    joust_eval_order_stats(hand, sizeof hand / sizeof *hand, &o);
    /* both orders: pairs 0 and 2 consistent, 1 (a judge tie) not */
    CHECK(o.both == 3 && o.consistent == 2 && o.calls == 7);
    CHECK_NEAR(o.mean_delta, (0.1 + 0.0 + 0.1) / 3, 1e-12);
    CHECK_NEAR(o.first_wins, 3.0 / 7.0, 1e-12); /* 0.8, 0.9, 0.9 */
}

int main(void)
{
    test_protocols();
    test_bootstrap();
    test_calibration();
    test_temperature();
    test_margin_order();
    return test_report();
}
