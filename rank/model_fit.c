/* Model-level BT with a prompt bootstrap (model_fit.h). */
#include "model_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "err.h"
#include "rng.h"
#include "xalloc.h"

static int cmp_cell(const void *x, const void *y)
{
    const joust_model_cell *c = x, *d = y;
    if (c->prompt != d->prompt)
        return c->prompt < d->prompt ? -1 : 1;
    if (c->a != d->a)
        return c->a < d->a ? -1 : 1;
    if (c->b != d->b)
        return c->b < d->b ? -1 : 1;
    /* total order on the values too, so that the merged sums do not depend
     * on the input order */
    if (c->wins_a != d->wins_a)
        return c->wins_a < d->wins_a ? -1 : 1;
    return 0;
}

int joust_model_cells(uint32_t n_models, const joust_model_outcome *o, size_t m,
                      joust_model_cell **cells, size_t *n_cells)
{
    for (size_t k = 0; k < m; k++)
        if (o[k].model_first >= n_models || o[k].model_second >= n_models ||
            !isfinite(o[k].p_first) || o[k].p_first < 0 || o[k].p_first > 1)
            return JOUST_EINVAL;
    joust_model_cell *c = m ? xmalloc(m * sizeof *c) : NULL;
    size_t nc = 0;
    for (size_t k = 0; k < m; k++) {
        uint32_t f = o[k].model_first, s = o[k].model_second;
        if (f == s)
            continue;
        double pa = f < s ? o[k].p_first : 1 - o[k].p_first;
        c[nc++] = (joust_model_cell){o[k].prompt, f < s ? f : s, f < s ? s : f, pa, 1};
    }
    if (nc) /* qsort takes no NULL, even for 0 elements */
        qsort(c, nc, sizeof *c, cmp_cell);
    size_t w = 0;
    for (size_t k = 0; k < nc; k++) {
        if (w && c[w - 1].prompt == c[k].prompt && c[w - 1].a == c[k].a && c[w - 1].b == c[k].b) {
            c[w - 1].wins_a += c[k].wins_a;
            c[w - 1].count += c[k].count;
        } else {
            c[w++] = c[k];
        }
    }
    if (w == 0) {
        free(c);
        c = NULL;
    }
    *cells = c;
    *n_cells = w;
    return 0;
}

void joust_model_fit_opts_defaults(joust_model_fit_opts *o)
{
    o->prior_games = 1.0;
    o->rounds = 200;
    o->level = 0.95;
    o->seed = 1;
    o->anchor = -1;
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Shifts theta so that each component's anchor (or mean) is 0. */
static void apply_gauge(uint32_t n, const uint32_t *comp, uint32_t ncomp, int64_t anchor,
                        double *sum, uint32_t *size, double *theta)
{
    memset(sum, 0, ncomp * sizeof *sum);
    memset(size, 0, ncomp * sizeof *size);
    for (uint32_t i = 0; i < n; i++) {
        sum[comp[i]] += theta[i];
        size[comp[i]]++;
    }
    for (uint32_t c = 0; c < ncomp; c++)
        sum[c] /= size[c];
    if (anchor >= 0)
        sum[comp[anchor]] = theta[anchor];
    for (uint32_t i = 0; i < n; i++)
        theta[i] -= sum[comp[i]];
}

/* Linear interpolation between order statistics (R type 7). */
static double quantile(const double *sorted, int n, double q)
{
    double h = (n - 1) * q;
    int lo = (int)floor(h);
    if (lo >= n - 1)
        return sorted[n - 1];
    return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

typedef struct {
    uint32_t a, b, k;
} pair_key;

static int cmp_pair_key(const void *x, const void *y)
{
    const pair_key *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return p->k < q->k ? -1 : p->k > q->k;
}

/* pair_of[k] = the index of edge k's model pair (edges have a < b);
 * returns the number of pairs. */
static size_t group_pairs(const joust_bt_edge *e, size_t ne, uint32_t *pair_of)
{
    pair_key *ord = xmalloc((ne ? ne : 1) * sizeof *ord);
    for (size_t k = 0; k < ne; k++)
        ord[k] = (pair_key){e[k].a, e[k].b, (uint32_t)k};
    qsort(ord, ne, sizeof *ord, cmp_pair_key);
    size_t np = 0;
    for (size_t k = 0; k < ne; k++) {
        if (k && (ord[k].a != ord[k - 1].a || ord[k].b != ord[k - 1].b))
            np++;
        pair_of[ord[k].k] = (uint32_t)np;
    }
    free(ord);
    return ne ? np + 1 : 0;
}

/* One edge per model pair: the cells' clipped soft wins summed with weight
 * cnt[k] (times draws[cell_prompt[k]] when draws is not NULL). Returns the
 * number of edges written to out (pairs with weight). */
static size_t pair_edges(const joust_bt_edge *e, const double *cnt, const uint32_t *draws,
                         const uint32_t *cell_prompt, size_t ne, const uint32_t *pair_of,
                         size_t npairs, double clip, double *wi, double *wj, joust_bt_edge *out)
{
    memset(wi, 0, npairs * sizeof *wi);
    memset(wj, 0, npairs * sizeof *wj);
    for (size_t k = 0; k < ne; k++) {
        double w = cnt[k] * (draws ? draws[cell_prompt[k]] : 1);
        if (w == 0)
            continue;
        double s = fmin(fmax(e[k].s, clip), 1 - clip);
        wi[pair_of[k]] += w * s;
        wj[pair_of[k]] += w * (1 - s);
    }
    size_t m = 0;
    for (size_t k = 0; k < ne; k++) { /* the first cell of each pair names it */
        uint32_t p = pair_of[k];
        double w = wi[p] + wj[p];
        if (w <= 0)
            continue;
        out[m++] = (joust_bt_edge){e[k].a, e[k].b, wi[p] / w, w};
        wi[p] = wj[p] = 0; /* once per pair */
    }
    return m;
}

int joust_model_fit(uint32_t n_models, const joust_model_cell *cells, size_t nc,
                    const joust_model_fit_opts *o, joust_model_score *out,
                    uint32_t *n_components)
{
    joust_model_fit_opts def;
    if (!o) {
        joust_model_fit_opts_defaults(&def);
        o = &def;
    }
    if (!(isfinite(o->prior_games) && o->prior_games > 0) || o->rounds < 0 ||
        !(o->level > 0 && o->level < 1) || o->anchor < -1 || o->anchor >= (int64_t)n_models)
        return JOUST_EINVAL;
    for (size_t k = 0; k < nc; k++) {
        const joust_model_cell *c = &cells[k];
        if (c->a >= c->b || c->b >= n_models || !isfinite(c->count) || c->count < 0 ||
            !isfinite(c->wins_a) || c->wins_a < 0 || c->wins_a > c->count)
            return JOUST_EINVAL;
    }
    uint32_t n = n_models;
    if (n == 0) {
        if (n_components)
            *n_components = 0;
        return 0;
    }

    /* live cells, their prompt index, components */
    joust_bt_edge *e = xmalloc((nc ? nc : 1) * sizeof *e);
    double *cnt = xmalloc((nc ? nc : 1) * sizeof *cnt);
    uint64_t *pid = xmalloc((nc ? nc : 1) * sizeof *pid);
    uint32_t *cell_prompt = xmalloc((nc ? nc : 1) * sizeof *cell_prompt);
    size_t ne = 0;
    uint32_t *parent = xmalloc(n * sizeof *parent), *comp = xmalloc(n * sizeof *comp);
    double *comps = xcalloc(n, sizeof *comps);
    for (uint32_t i = 0; i < n; i++)
        parent[i] = i;
    for (size_t k = 0; k < nc; k++) {
        const joust_model_cell *c = &cells[k];
        if (c->count <= 0)
            continue;
        e[ne] = (joust_bt_edge){c->a, c->b, c->wins_a / c->count, c->count};
        cnt[ne] = c->count;
        pid[ne] = c->prompt;
        ne++;
        comps[c->a] += c->count;
        comps[c->b] += c->count;
        uint32_t ra = uf_find(parent, c->a), rb = uf_find(parent, c->b);
        if (ra != rb)
            parent[ra > rb ? ra : rb] = ra < rb ? ra : rb;
    }
    uint32_t ncomp = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, i);
        comp[i] = r == i ? ncomp++ : comp[r];
    }
    /* dense prompt indices */
    uint64_t *prompts = xmalloc((ne ? ne : 1) * sizeof *prompts);
    memcpy(prompts, pid, ne * sizeof *prompts);
    qsort(prompts, ne, sizeof *prompts, cmp_u64);
    size_t np = 0;
    for (size_t k = 0; k < ne; k++)
        if (np == 0 || prompts[k] != prompts[np - 1])
            prompts[np++] = prompts[k];
    for (size_t k = 0; k < ne; k++) {
        uint64_t *hit = bsearch(&pid[k], prompts, np, sizeof *prompts, cmp_u64);
        cell_prompt[k] = (uint32_t)(hit - prompts);
    }

    joust_bt_opts bo;
    joust_bt_opts_defaults(&bo);
    bo.prior_games = o->prior_games;
    bo.tol = 1e-9;
    double *theta = xmalloc(n * sizeof *theta), *gsum = xmalloc(ncomp * sizeof *gsum);
    uint32_t *gsize = xmalloc(ncomp * sizeof *gsize);
    /* Every fit below sums the cells of a model pair first (what joust_bt_fit
     * would do after sorting them; with the clip applied per cell, as it
     * does), so a bootstrap round costs O(cells) instead of a sort. */
    uint32_t *pair_of = xmalloc((ne ? ne : 1) * sizeof *pair_of);
    size_t npairs = group_pairs(e, ne, pair_of);
    double *wi = xmalloc((npairs ? npairs : 1) * sizeof *wi);
    double *wj = xmalloc((npairs ? npairs : 1) * sizeof *wj);
    joust_bt_edge *pe = xmalloc((npairs ? npairs : 1) * sizeof *pe);
    size_t mp = pair_edges(e, cnt, NULL, NULL, ne, pair_of, npairs, bo.clip, wi, wj, pe);
    int rc = joust_bt_fit(n, pe, mp, &bo, 0, theta, NULL, NULL);
    if (rc == 0) {
        apply_gauge(n, comp, ncomp, o->anchor, gsum, gsize, theta);
        int R = ne ? o->rounds : 0;
        double *boot = xmalloc(((size_t)R * n + 1) * sizeof *boot);
        uint32_t *draws = xmalloc((np ? np : 1) * sizeof *draws);
        joust_rng_t rng;
        joust_rng_seed(&rng, o->seed);
        for (int r = 0; r < R; r++) {
            memset(draws, 0, np * sizeof *draws);
            for (size_t t = 0; t < np; t++)
                draws[joust_rng_below(&rng, np)]++;
            size_t m = pair_edges(e, cnt, draws, cell_prompt, ne, pair_of, npairs, bo.clip, wi,
                                  wj, pe);
            double *tb = boot + (size_t)r * n;
            memcpy(tb, theta, n * sizeof *tb); /* warm start */
            if (joust_bt_fit(n, pe, m, &bo, 1, tb, NULL, NULL) != 0)
                memset(tb, 0, n * sizeof *tb); /* unreachable: edges were checked */
            apply_gauge(n, comp, ncomp, o->anchor, gsum, gsize, tb);
        }
        double *col = xmalloc(((size_t)R + 1) * sizeof *col);
        double a = (1 - o->level) / 2;
        for (uint32_t i = 0; i < n; i++) {
            joust_model_score sc = {theta[i], NAN, NAN, NAN, comps[i], comp[i]};
            if (R > 0 && comps[i] > 0) {
                double mean = 0, ss = 0;
                for (int r = 0; r < R; r++) {
                    col[r] = boot[(size_t)r * n + i];
                    mean += col[r];
                }
                mean /= R;
                for (int r = 0; r < R; r++)
                    ss += (col[r] - mean) * (col[r] - mean);
                qsort(col, (size_t)R, sizeof *col, cmp_double);
                sc.lo = quantile(col, R, a);
                sc.hi = quantile(col, R, 1 - a);
                sc.sd = R > 1 ? sqrt(ss / (R - 1)) : 0;
            }
            out[i] = sc;
        }
        if (n_components)
            *n_components = ncomp;
        free(col);
        free(draws);
        free(boot);
    }
    free(pair_of);
    free(wi);
    free(wj);
    free(pe);
    free(theta);
    free(gsum);
    free(gsize);
    free(prompts);
    free(comps);
    free(comp);
    free(parent);
    free(cell_prompt);
    free(pid);
    free(cnt);
    free(e);
    return rc;
}
