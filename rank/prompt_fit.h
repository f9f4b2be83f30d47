/* From one prompt's judge outcomes to BT inputs and judge diagnostics
 * (docs/ranking.md §1.1, §2). Outcomes name images by their index in the
 * prompt's image list, in presentation order. Pure functions over
 * caller-owned arrays; thread-safe. Every function validates all outcomes first and returns
 * JOUST_EINVAL, outputs untouched, for a bad one (first or second >= n,
 * first == second, p_first not finite or outside [0,1]). */
#ifndef JOUST_PROMPT_FIT_H
#define JOUST_PROMPT_FIT_H
#include <stddef.h>
#include <stdint.h>

#include "bt.h"

typedef struct {
    uint32_t first, second; /* presentation order */
    double p_first;         /* judge's P(first preferred over second) */
} joust_outcome;

/* One edge per outcome: a = first, b = second, s = p_first, w = 1. With both
 * orders judged this equals averaging the two orders, since the likelihood
 * is linear in the soft wins. edges[m] is caller-allocated. */
int joust_outcomes_to_edges(uint32_t n, const joust_outcome *o, size_t m, joust_bt_edge *edges);

/* wins[i] = soft wins of image i (p_first as first, 1 - p_first as second);
 * comparisons[i] = outcomes involving i. Both arrays have n entries and are
 * overwritten; either may be NULL. */
int joust_outcome_tally(uint32_t n, const joust_outcome *o, size_t m, double *wins,
                        uint32_t *comparisons);

typedef struct {
    size_t outcomes;
    double mean_p_first;     /* 0.5 when there are no outcomes */
    double position_bias;    /* mean_p_first - 0.5: > 0 favours the first slot */
    size_t both_order_pairs; /* unordered pairs judged in both orders */
    size_t consistent_pairs; /* ... whose two orders pick the same winner */
    double consistency;      /* consistent / both_order_pairs; 0 when none */
    double mean_delta;       /* mean over those pairs of p(i first) - (1 - p(j first)),
                                the bias with item quality cancelled; 0 when none */
} joust_position_bias;

/* Several outcomes of one pair in the same order are averaged first. The
 * winner of an order is sign(p(i > j) - 0.5), so two exact ties agree. */
int joust_position_bias_summary(uint32_t n, const joust_outcome *o, size_t m,
                                joust_position_bias *out);

/* joust_outcomes_to_edges followed by joust_bt_fit (same outputs and
 * errors); scratch memory is freed before returning. */
int joust_prompt_fit(uint32_t n, const joust_outcome *o, size_t m, const joust_bt_opts *opts,
                     double *theta, double *se, int *iters);

#endif
