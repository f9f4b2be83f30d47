#include "prompt_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

static int outcomes_ok(uint32_t n, const joust_outcome *o, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (o[k].first >= n || o[k].second >= n || o[k].first == o[k].second ||
            !isfinite(o[k].p_first) || o[k].p_first < 0 || o[k].p_first > 1)
            return 0;
    return 1;
}

int joust_outcomes_to_edges(uint32_t n, const joust_outcome *o, size_t m, joust_bt_edge *edges)
{
    if (!outcomes_ok(n, o, m))
        return JOUST_EINVAL;
    for (size_t k = 0; k < m; k++)
        edges[k] = (joust_bt_edge){o[k].first, o[k].second, o[k].p_first, 1.0};
    return 0;
}

int joust_outcome_tally(uint32_t n, const joust_outcome *o, size_t m, double *wins,
                        uint32_t *comparisons)
{
    if (!outcomes_ok(n, o, m))
        return JOUST_EINVAL;
    if (wins)
        memset(wins, 0, (size_t)n * sizeof *wins);
    if (comparisons)
        memset(comparisons, 0, (size_t)n * sizeof *comparisons);
    for (size_t k = 0; k < m; k++) {
        if (wins) {
            wins[o[k].first] += o[k].p_first;
            wins[o[k].second] += 1 - o[k].p_first;
        }
        if (comparisons) {
            comparisons[o[k].first]++;
            comparisons[o[k].second]++;
        }
    }
    return 0;
}

/* An outcome seen from the unordered pair lo < hi. */
typedef struct {
    uint32_t lo, hi;
    int lo_first;
    double p_lo; /* P(lo preferred over hi) */
} oriented;

static int cmp_oriented(const void *pa, const void *pb)
{
    const oriented *a = pa, *b = pb;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    return 0;
}

/* Items up to which a prompt's outcomes are counting-sorted by pair. */
#define PAIR_ITEMS 64

/* Sorts v[m] by (lo, hi), stably (the sums of a pair are taken in input
 * order): for prompts of up to PAIR_ITEMS items a counting sort by pair,
 * one pass and no compare calls, else qsort (a merge sort in glibc, stable
 * too). */
static void sort_oriented(oriented *v, size_t m, uint32_t n)
{
    if (n > PAIR_ITEMS || m < 2) {
        if (m)
            qsort(v, m, sizeof *v, cmp_oriented);
        return;
    }
    uint32_t start[PAIR_ITEMS * PAIR_ITEMS + 1];
    size_t slots = (size_t)n * n;
    memset(start, 0, (slots + 1) * sizeof *start);
    for (size_t k = 0; k < m; k++)
        start[(size_t)v[k].lo * n + v[k].hi + 1]++;
    for (size_t s = 0; s < slots; s++)
        start[s + 1] += start[s];
    oriented *t = xmalloc(m * sizeof *t);
    for (size_t k = 0; k < m; k++)
        t[start[(size_t)v[k].lo * n + v[k].hi]++] = v[k];
    memcpy(v, t, m * sizeof *v);
    free(t);
}

static int side(double p) { return (p > 0.5) - (p < 0.5); }

int joust_position_bias_summary(uint32_t n, const joust_outcome *o, size_t m,
                                joust_position_bias *out)
{
    if (!outcomes_ok(n, o, m))
        return JOUST_EINVAL;
    joust_position_bias r = {.outcomes = m, .mean_p_first = 0.5};
    oriented *v = xmalloc(m * sizeof *v);
    double sum = 0;
    for (size_t k = 0; k < m; k++) {
        int lf = o[k].first < o[k].second;
        sum += o[k].p_first;
        v[k] = (oriented){lf ? o[k].first : o[k].second, lf ? o[k].second : o[k].first, lf,
                          lf ? o[k].p_first : 1 - o[k].p_first};
    }
    if (m)
        r.mean_p_first = sum / (double)m;
    r.position_bias = r.mean_p_first - 0.5;
    sort_oriented(v, m, n);
    double delta_sum = 0;
    for (size_t a = 0, b; a < m; a = b) {
        double s[2] = {0, 0}; /* p_lo summed with lo shown second [0] / first [1] */
        size_t c[2] = {0, 0};
        for (b = a; b < m && v[b].lo == v[a].lo && v[b].hi == v[a].hi; b++) {
            s[v[b].lo_first] += v[b].p_lo;
            c[v[b].lo_first]++;
        }
        if (!c[0] || !c[1])
            continue;
        double p_lo_first = s[1] / (double)c[1], p_lo_second = s[0] / (double)c[0];
        r.both_order_pairs++;
        r.consistent_pairs += side(p_lo_first) == side(p_lo_second);
        /* p(first wins | lo first) - (1 - p(first wins | hi first)) */
        delta_sum += p_lo_first - p_lo_second;
    }
    if (r.both_order_pairs) {
        r.consistency = (double)r.consistent_pairs / (double)r.both_order_pairs;
        r.mean_delta = delta_sum / (double)r.both_order_pairs;
    }
    free(v);
    *out = r;
    return 0;
}

int joust_prompt_fit(uint32_t n, const joust_outcome *o, size_t m, const joust_bt_opts *opts,
                     double *theta, double *se, int *iters)
{
    joust_bt_edge *e = xmalloc(m * sizeof *e);
    int rc = joust_outcomes_to_edges(n, o, m, e);
    if (rc == 0)
        rc = joust_bt_fit(n, e, m, opts, 0, theta, se, iters);
    free(e);
    return rc;
}

