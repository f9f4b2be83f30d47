/* Agreement of a judge with human labels (docs/judges.md, "Evaluating a
 * judge"): the published protocols' accuracies, bootstrap intervals over
 * prompts, calibration of the soft p, accuracy by margin, position bias,
 * and a temperature (+ first-position bias) fit. Pure math, no I/O.
 *
 * The unit is a labelled pair (a, b) of one prompt with the humans' verdict
 * (1: a preferred, 0: b preferred, 0.5: tie) and the judge's answers in
 * each order: p_ab = P(a wins | a shown first), p_ba = P(b wins | b shown
 * first); NAN for an order not judged (or failed). The pair's judge
 * probability is P(a > b) = (p_ab + 1 - p_ba) / 2 with both orders, the
 * one order's value otherwise.
 *
 * Protocols (each pair scored 1 when the judge's P(a > b) is on the
 * humans' side of 0.5, 0.5 when it is exactly 0.5 (a judge tie counts half
 * right), 0 otherwise; pairs without any judge answer are left out and
 * counted by the caller):
 *   POOLED   (ImageReward test, Pick-a-Pic, generic pairs): pairs the
 *            humans tied are left out; accuracy = sum of scores / pairs,
 *            pooled over the whole set (micro average).
 *   PER_PROMPT (HPDv2 test, inversion score): per prompt,
 *            1 - discordant / pairs, where every labelled pair of the prompt
 *            counts in `pairs` and a pair the humans tied counts as agreeing
 *            (as in HPSv2's inversion_score); discordant = sum of (1 - score)
 *            over the judged non-tied pairs; the mean over prompts with at
 *            least one pair (a prompt with a single image has none and is
 *            left out).
 * Both reduce to per-prompt sums (num, den) combined as sum(w num) /
 * sum(w den) with a weight w per prompt (1; multinomial counts in the
 * bootstrap), so intervals and paired differences cost O(prompts) a round.
 *
 * Threads: no global state. Memory from xmalloc. */
#ifndef JOUST_EVAL_H
#define JOUST_EVAL_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define JOUST_EVAL_NO_CATEGORY UINT32_MAX
#define JOUST_EVAL_BINS 10

typedef enum { JOUST_PROTOCOL_POOLED = 0, JOUST_PROTOCOL_PER_PROMPT = 1 } joust_protocol;

typedef struct {
    uint32_t prompt;   /* prompt index, < n_prompts: the bootstrap unit */
    uint32_t category; /* category index, or JOUST_EVAL_NO_CATEGORY */
    double human;      /* 1, 0 or 0.5 (tie) */
    double p_ab, p_ba; /* the judge's answers per order; NAN: none */
} joust_eval_pair;

/* Per-prompt sums of a protocol (see above). */
typedef struct {
    double num, den;
} joust_eval_sums;

/* The judge's P(a > b) from both orders (NAN when neither was judged). */
double joust_eval_pair_p(const joust_eval_pair *x);
/* The protocol score of one judged, non-tied pair: 1, 0.5 or 0; NAN when
 * the pair is tied by the humans or has no judge answer. */
double joust_eval_pair_score(const joust_eval_pair *x);

/* Fills sums[0..n_prompts) from the pairs (category: only pairs of that
 * category, JOUST_EVAL_NO_CATEGORY: all). Pairs whose prompt is out of
 * range are a programmer error. */
void joust_eval_sums_compute(joust_protocol proto, const joust_eval_pair *pairs, size_t n,
                             uint32_t category_only, joust_eval_sums *sums, size_t n_prompts);
/* sum(w num) / sum(w den) over prompts (w NULL: all 1); NAN when the
 * denominator is 0. */
double joust_eval_combine(const joust_eval_sums *sums, const double *w, size_t n_prompts);

/* Percentile bootstrap over prompts: `rounds` multinomial resamplings
 * (seeded), statistic = combine(a) or, with b, combine(a) - combine(b)
 * under the same weights (paired difference). [*lo, *hi] is the central
 * `level` interval (e.g. 0.95); NAN when no round had a defined value. */
void joust_eval_bootstrap(const joust_eval_sums *a, const joust_eval_sums *b, size_t n_prompts,
                          unsigned rounds, uint64_t seed, double level, double *lo, double *hi);

/* Calibration of judge calls against the humans over non-tied pairs: each
 * judged order is one sample (p = P(the image shown first wins), y = 1 when
 * the humans preferred it). With cal non-NULL the samples are first mapped
 * through joust_calibration_apply. Bins are equal-width on p (bin k holds
 * p in [k/10, (k+1)/10), p = 1 in the last). ECE = sum_k n_k/N |mean p_k -
 * mean y_k|; Brier = mean (p - y)^2; log loss = -mean log of the
 * probability given to the humans' choice, p clipped to [1e-6, 1 - 1e-6].
 * include(pair) NULL takes every pair; otherwise only those it accepts. */
typedef struct {
    uint64_t n;
    double ece, brier, log_loss;
    uint64_t bin_n[JOUST_EVAL_BINS];
    double bin_p[JOUST_EVAL_BINS], bin_y[JOUST_EVAL_BINS]; /* means; NAN when empty */
} joust_eval_calibration;

typedef struct {
    double temperature; /* T > 0 */
    double first_bias;  /* b: logit bias towards the first position */
} joust_calibration;

/* p' = sigmoid((logit p - b) / T), p clipped to [1e-6, 1 - 1e-6] first;
 * NAN stays NAN. */
double joust_calibration_apply(const joust_calibration *c, double p_first);

void joust_eval_calibrate(const joust_eval_pair *pairs, size_t n, const joust_calibration *cal,
                          int (*include)(const joust_eval_pair *x, void *arg), void *arg,
                          joust_eval_calibration *out);

/* Maximum-likelihood fit of T (and b when fit_bias, else b = 0) on the
 * same samples as joust_eval_calibrate (Newton on a = 1/T, c = b/T of the
 * logistic model y ~ sigmoid(a logit p - c)).
 * @return 0; JOUST_EINVAL when there are fewer than 2 samples, the samples
 *   do not determine a finite fit (all on one side, separable), or the fit
 *   gives a <= 0 (a judge that disagrees with the humans). */
int joust_eval_fit_temperature(const joust_eval_pair *pairs, size_t n, int fit_bias,
                               int (*include)(const joust_eval_pair *x, void *arg), void *arg,
                               joust_calibration *out);

/* Accuracy by judge margin |P(a > b) - 0.5|: the judged non-tied pairs
 * sorted by margin and cut into JOUST_EVAL_BINS groups of (nearly) equal
 * size; group k spans margins [lo, hi]. */
typedef struct {
    uint64_t n[JOUST_EVAL_BINS];
    double lo[JOUST_EVAL_BINS], hi[JOUST_EVAL_BINS], accuracy[JOUST_EVAL_BINS];
} joust_eval_margin;
void joust_eval_by_margin(const joust_eval_pair *pairs, size_t n, joust_eval_margin *out);

/* Position effects over pairs judged in both orders (human labels not
 * needed): consistent = both orders pick the same image (no tie in
 * either); delta = p_ab + p_ba - 1 (> 0: the first position is favoured),
 * its mean; first_wins = share of all judged calls whose p_first > 0.5. */
typedef struct {
    uint64_t both, consistent, calls;
    double consistency, mean_delta, first_wins;
} joust_eval_order;
void joust_eval_order_stats(const joust_eval_pair *pairs, size_t n, joust_eval_order *out);

#endif
