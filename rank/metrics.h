/* Rank-agreement metrics for evaluating scores against a reference.
 * Pure functions over caller-owned arrays; thread-safe; no errors (degenerate
 * inputs give the documented neutral value). Inputs must not hold NaN. */
#ifndef JOUST_METRICS_H
#define JOUST_METRICS_H
#include <stddef.h>
#include <stdint.h>

/* Kendall tau-b (ties in either argument reduce the denominator). O(n^2).
 * Returns 0 when undefined: n < 2 or every pair tied in x or in y. */
double joust_kendall_tau(size_t n, const double *x, const double *y);

/* 1 if the first argmax of score is an argmax of truth (ties in truth all
 * count as correct), else 0; 0 for n == 0. */
int joust_top1_match(size_t n, const double *score, const double *truth);
/* Same for the argmin: did the score find a worst item. */
int joust_bottom1_match(size_t n, const double *score, const double *truth);

/* rank_out[i] = 1-based position of item i by descending score; equal
 * scores are ranked by lower index first so the output is deterministic. */
void joust_rank_desc(size_t n, const double *score, uint32_t *rank_out);

/* pct_out[i] = the mid-rank percentile of score[i] among the finite scores:
 * 100 x (finite scores below it + half of those equal to it, itself
 * included) / their count, in (0, 100); NaN for an infinite score (-inf
 * marks an item without a score). O(n log n). */
void joust_percentiles(size_t n, const double *score, double *pct_out);

#endif
