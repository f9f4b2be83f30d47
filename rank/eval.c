/* Judge agreement with human labels: protocols, bootstrap, calibration. */
#include "eval.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"
#include "xalloc.h"

#define P_CLIP 1e-6

double joust_eval_pair_p(const joust_eval_pair *x)
{
    int ab = !isnan(x->p_ab), ba = !isnan(x->p_ba);
    if (ab && ba)
        return 0.5 * (x->p_ab + 1.0 - x->p_ba);
    return ab ? x->p_ab : ba ? 1.0 - x->p_ba : NAN;
}

double joust_eval_pair_score(const joust_eval_pair *x)
{
    double p = joust_eval_pair_p(x);
    if (isnan(p) || x->human == 0.5)
        return NAN;
    if (p == 0.5)
        return 0.5;
    return (p > 0.5) == (x->human > 0.5) ? 1.0 : 0.0;
}

void joust_eval_sums_compute(joust_protocol proto, const joust_eval_pair *pairs, size_t n,
                             uint32_t category_only, joust_eval_sums *sums, size_t n_prompts)
{
    memset(sums, 0, n_prompts * sizeof *sums);
    /* PER_PROMPT: per prompt, agreeing pairs (num) over counted pairs (den)
     * first; turned into (accuracy, 1) below. */
    for (size_t i = 0; i < n; i++) {
        const joust_eval_pair *x = &pairs[i];
        assert(x->prompt < n_prompts);
        if (category_only != JOUST_EVAL_NO_CATEGORY && x->category != category_only)
            continue;
        double s = joust_eval_pair_score(x);
        joust_eval_sums *t = &sums[x->prompt];
        if (!isnan(s)) {
            t->num += s;
            t->den += 1;
        } else if (proto == JOUST_PROTOCOL_PER_PROMPT && x->human == 0.5) {
            t->num += 1; /* a human tie agrees with any judge (inversion score) */
            t->den += 1;
        }
    }
    if (proto == JOUST_PROTOCOL_PER_PROMPT)
        for (size_t k = 0; k < n_prompts; k++)
            if (sums[k].den > 0)
                sums[k] = (joust_eval_sums){sums[k].num / sums[k].den, 1};
}

double joust_eval_combine(const joust_eval_sums *sums, const double *w, size_t n_prompts)
{
    double num = 0, den = 0;
    for (size_t k = 0; k < n_prompts; k++) {
        double wk = w ? w[k] : 1.0;
        num += wk * sums[k].num;
        den += wk * sums[k].den;
    }
    return den > 0 ? num / den : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void joust_eval_bootstrap(const joust_eval_sums *a, const joust_eval_sums *b, size_t n_prompts,
                          unsigned rounds, uint64_t seed, double level, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (!n_prompts || !rounds)
        return;
    joust_rng_t rng;
    joust_rng_seed(&rng, seed);
    double *w = xmalloc(n_prompts * sizeof *w);
    double *stat = xmalloc(rounds * sizeof *stat);
    size_t m = 0;
    for (unsigned r = 0; r < rounds; r++) {
        memset(w, 0, n_prompts * sizeof *w);
        for (size_t k = 0; k < n_prompts; k++)
            w[joust_rng_below(&rng, n_prompts)] += 1;
        double v = joust_eval_combine(a, w, n_prompts);
        if (b)
            v -= joust_eval_combine(b, w, n_prompts);
        if (!isnan(v))
            stat[m++] = v;
    }
    if (m) {
        qsort(stat, m, sizeof *stat, cmp_double);
        double tail = (1.0 - level) / 2.0;
        size_t ilo = (size_t)floor(tail * (double)(m - 1) + 0.5);
        size_t ihi = (size_t)floor((1.0 - tail) * (double)(m - 1) + 0.5);
        *lo = stat[ilo];
        *hi = stat[ihi];
    }
    free(w);
    free(stat);
}

static double clip(double p)
{
    return p < P_CLIP ? P_CLIP : p > 1.0 - P_CLIP ? 1.0 - P_CLIP : p;
}

double joust_calibration_apply(const joust_calibration *c, double p_first)
{
    if (isnan(p_first))
        return NAN;
    double p = clip(p_first);
    double z = (log(p / (1.0 - p)) - c->first_bias) / c->temperature;
    return 1.0 / (1.0 + exp(-z));
}

/* The calibration samples of a pair: (p_first, y) per judged order. */
static int samples(const joust_eval_pair *x, double p[2], double y[2])
{
    int k = 0;
    if (x->human == 0.5)
        return 0;
    if (!isnan(x->p_ab)) {
        p[k] = x->p_ab;
        y[k++] = x->human;
    }
    if (!isnan(x->p_ba)) {
        p[k] = x->p_ba;
        y[k++] = 1.0 - x->human;
    }
    return k;
}

/* The samples of the accepted pairs into new arrays *p, *y (xmalloc). */
static size_t collect(const joust_eval_pair *pairs, size_t n,
                      int (*include)(const joust_eval_pair *x, void *arg), void *arg, double **p,
                      double **y)
{
    *p = xmalloc((2 * n + 1) * sizeof **p);
    *y = xmalloc((2 * n + 1) * sizeof **y);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!include || include(&pairs[i], arg))
            m += (size_t)samples(&pairs[i], *p + m, *y + m);
    return m;
}

void joust_eval_calibrate(const joust_eval_pair *pairs, size_t n, const joust_calibration *cal,
                          int (*include)(const joust_eval_pair *x, void *arg), void *arg,
                          joust_eval_calibration *out)
{
    memset(out, 0, sizeof *out);
    double sp[JOUST_EVAL_BINS] = {0}, sy[JOUST_EVAL_BINS] = {0}, brier = 0, ll = 0;
    double *p, *y;
    size_t m = collect(pairs, n, include, arg, &p, &y);
    for (size_t j = 0; j < m; j++) {
        double q = cal ? joust_calibration_apply(cal, p[j]) : p[j];
        int bin = (int)(q * JOUST_EVAL_BINS);
        bin = bin < 0 ? 0 : bin >= JOUST_EVAL_BINS ? JOUST_EVAL_BINS - 1 : bin;
        out->bin_n[bin]++;
        sp[bin] += q;
        sy[bin] += y[j];
        brier += (q - y[j]) * (q - y[j]);
        ll -= log(y[j] > 0.5 ? clip(q) : 1.0 - clip(q));
    }
    free(p);
    free(y);
    out->n = m;
    for (int b = 0; b < JOUST_EVAL_BINS; b++) {
        out->bin_p[b] = out->bin_n[b] ? sp[b] / (double)out->bin_n[b] : NAN;
        out->bin_y[b] = out->bin_n[b] ? sy[b] / (double)out->bin_n[b] : NAN;
        if (out->bin_n[b])
            out->ece += (double)out->bin_n[b] * fabs(out->bin_p[b] - out->bin_y[b]);
    }
    double nn = (double)out->n;
    out->ece = out->n ? out->ece / nn : NAN;
    out->brier = out->n ? brier / nn : NAN;
    out->log_loss = out->n ? ll / nn : NAN;
}

int joust_eval_fit_temperature(const joust_eval_pair *pairs, size_t n, int fit_bias,
                               int (*include)(const joust_eval_pair *x, void *arg), void *arg,
                               joust_calibration *out)
{
    /* Model y ~ sigmoid(a z - c), z = logit p. Newton on the concave
     * log-likelihood, steps bounded to 1 in each coordinate. */
    double *z, *y;
    size_t m = collect(pairs, n, include, arg, &z, &y);
    for (size_t j = 0; j < m; j++) {
        double q = clip(z[j]);
        z[j] = log(q / (1.0 - q));
    }
    double a = 1.0, c = 0.0;
    int rc = m < 2 ? JOUST_EINVAL : 0;
    for (int it = 0; it < 200 && rc == 0; it++) {
        double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
        for (size_t j = 0; j < m; j++) {
            double s = 1.0 / (1.0 + exp(-(a * z[j] - c)));
            double r = y[j] - s, v = s * (1.0 - s);
            g0 += r * z[j];
            g1 -= r;
            h00 += v * z[j] * z[j];
            h01 -= v * z[j];
            h11 += v;
        }
        double da, dc = 0, det = h00 * h11 - h01 * h01;
        if (fit_bias ? !(det > 1e-12) : !(h00 > 1e-12)) {
            rc = JOUST_EINVAL;
            break;
        }
        da = fit_bias ? (h11 * g0 - h01 * g1) / det : g0 / h00;
        dc = fit_bias ? (h00 * g1 - h01 * g0) / det : 0;
        /* Bounded steps: a separable set diverges slowly and is caught by
         * the bound below instead of overflowing. */
        double big = fabs(da) > fabs(dc) ? fabs(da) : fabs(dc);
        if (big > 1.0) {
            da /= big;
            dc /= big;
        }
        a += da;
        c += dc;
        if (!(fabs(a) < 1e4 && fabs(c) < 1e5))
            rc = JOUST_EINVAL;
        if (fabs(da) < 1e-10 && fabs(dc) < 1e-10)
            break;
    }
    free(z);
    free(y);
    if (rc == 0 && !(a > 0))
        rc = JOUST_EINVAL;
    if (rc == 0) {
        out->temperature = 1.0 / a;
        out->first_bias = c / a;
    }
    return rc;
}

typedef struct {
    double margin, score;
} margin_item;

static int cmp_margin(const void *x, const void *y)
{
    return cmp_double(&((const margin_item *)x)->margin, &((const margin_item *)y)->margin);
}

void joust_eval_by_margin(const joust_eval_pair *pairs, size_t n, joust_eval_margin *out)
{
    memset(out, 0, sizeof *out);
    margin_item *it = xmalloc((n ? n : 1) * sizeof *it);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double s = joust_eval_pair_score(&pairs[i]);
        if (!isnan(s))
            it[m++] = (margin_item){fabs(joust_eval_pair_p(&pairs[i]) - 0.5), s};
    }
    qsort(it, m, sizeof *it, cmp_margin);
    for (int b = 0; b < JOUST_EVAL_BINS; b++) {
        size_t from = m * (size_t)b / JOUST_EVAL_BINS, to = m * (size_t)(b + 1) / JOUST_EVAL_BINS;
        double sum = 0;
        for (size_t i = from; i < to; i++)
            sum += it[i].score;
        out->n[b] = to - from;
        out->lo[b] = to > from ? it[from].margin : NAN;
        out->hi[b] = to > from ? it[to - 1].margin : NAN;
        out->accuracy[b] = to > from ? sum / (double)(to - from) : NAN;
    }
    free(it);
}

void joust_eval_order_stats(const joust_eval_pair *pairs, size_t n, joust_eval_order *out)
{
    memset(out, 0, sizeof *out);
    double delta = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        const joust_eval_pair *x = &pairs[i];
        int ab = !isnan(x->p_ab), ba = !isnan(x->p_ba);
        out->calls += (uint64_t)ab + (uint64_t)ba;
        first += (ab && x->p_ab > 0.5) + (ba && x->p_ba > 0.5);
        if (!ab || !ba)
            continue;
        out->both++;
        delta += x->p_ab + x->p_ba - 1.0;
        /* a picked in the first order and a picked in the second */
        if ((x->p_ab > 0.5 && x->p_ba < 0.5) || (x->p_ab < 0.5 && x->p_ba > 0.5))
            out->consistent++;
    }
    out->consistency = out->both ? (double)out->consistent / (double)out->both : NAN;
    out->mean_delta = out->both ? delta / (double)out->both : NAN;
    out->first_wins = out->calls ? first / (double)out->calls : NAN;
}
