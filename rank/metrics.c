#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include "xalloc.h"

static int cmp3(double a, double b) { return (a > b) - (a < b); }

double joust_kendall_tau(size_t n, const double *x, const double *y)
{
    /* Counts fit in doubles exactly up to 2^53 pairs. */
    double conc = 0, disc = 0, tx = 0, ty = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            int a = cmp3(x[i], x[j]), b = cmp3(y[i], y[j]);
            total++;
            tx += a == 0;
            ty += b == 0;
            if (a * b > 0)
                conc++;
            else if (a * b < 0)
                disc++;
        }
    }
    double den = sqrt((total - tx) * (total - ty));
    return den > 0 ? (conc - disc) / den : 0.0;
}

static size_t arg_best(size_t n, const double *v, int want_max)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (want_max ? v[i] > v[best] : v[i] < v[best])
            best = i;
    return best;
}

static int extreme_match(size_t n, const double *score, const double *truth, int want_max)
{
    if (n == 0)
        return 0;
    return truth[arg_best(n, score, want_max)] == truth[arg_best(n, truth, want_max)];
}

int joust_top1_match(size_t n, const double *score, const double *truth)
{
    return extreme_match(n, score, truth, 1);
}

int joust_bottom1_match(size_t n, const double *score, const double *truth)
{
    return extreme_match(n, score, truth, 0);
}

typedef struct {
    double v;
    size_t i;
} keyed;

static int cmp_desc(const void *pa, const void *pb)
{
    const keyed *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

void joust_rank_desc(size_t n, const double *score, uint32_t *rank_out)
{
    keyed *k = xmalloc(n * sizeof *k);
    for (size_t i = 0; i < n; i++)
        k[i] = (keyed){score[i], i};
    qsort(k, n, sizeof *k, cmp_desc);
    for (size_t r = 0; r < n; r++)
        rank_out[k[r].i] = (uint32_t)(r + 1);
    free(k);
}

void joust_percentiles(size_t n, const double *score, double *pct_out)
{
    keyed *k = xmalloc((n ? n : 1) * sizeof *k);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        pct_out[i] = NAN;
        if (isfinite(score[i]))
            k[m++] = (keyed){score[i], i};
    }
    qsort(k, m, sizeof *k, cmp_desc);
    for (size_t r = 0; r < m;) {
        size_t e = r; /* [r, e): equal scores; m - e of them are below */
        while (e < m && k[e].v == k[r].v)
            e++;
        double pct = 100.0 * ((double)(m - e) + (double)(e - r) / 2) / (double)m;
        for (; r < e; r++)
            pct_out[k[r].i] = pct;
    }
    free(k);
}
