/* Model-level BT with a prompt bootstrap (model_fit.h). */
#include "model_fit.h"

#include <math.h>
#include <pthread.h>
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

/* Stable insertion sort of c[n] by cmp_cell. */
static void insertion_sort(joust_model_cell *c, size_t n)
{
    for (size_t k = 1; k < n; k++) {
        joust_model_cell x = c[k];
        size_t t = k;
        for (; t > 0 && cmp_cell(&c[t - 1], &x) > 0; t--)
            c[t] = c[t - 1];
        c[t] = x;
    }
}

/* Model pairs up to which one prompt's cells are counting-sorted by pair. */
#define PAIR_SLOTS 4096

/* Sorts the cells of one prompt (c[n], all of the same prompt) by
 * cmp_cell, stably: few cells by insertion; more, when the models are few
 * (a pair table of at most PAIR_SLOTS), by a counting sort by pair and an
 * insertion sort of each pair's values (a dozen or so), which is what
 * qsort's stable merge sort gives, at a fraction of its cost (no compare
 * calls through a pointer, no allocation per call); else qsort. */
static void sort_prompt_cells(joust_model_cell *c, size_t n, joust_model_cell *tmp)
{
    if (n <= 32) {
        insertion_sort(c, n);
        return;
    }
    uint32_t m = 0;
    for (size_t k = 0; k < n; k++)
        m = c[k].b > m ? c[k].b : m; /* a < b: b is the larger */
    size_t slots = ((size_t)m + 1) * ((size_t)m + 1);
    if (slots > PAIR_SLOTS) {
        qsort(c, n, sizeof *c, cmp_cell);
        return;
    }
    uint32_t start[PAIR_SLOTS + 1];
    memset(start, 0, (slots + 1) * sizeof *start);
    for (size_t k = 0; k < n; k++)
        start[(size_t)c[k].a * (m + 1) + c[k].b + 1]++;
    for (size_t s = 0; s < slots; s++)
        start[s + 1] += start[s];
    for (size_t k = 0; k < n; k++)
        tmp[start[(size_t)c[k].a * (m + 1) + c[k].b]++] = c[k];
    memcpy(c, tmp, n * sizeof *c);
    for (size_t i = 0; i < n;) { /* each pair's run */
        size_t j = i + 1;
        while (j < n && c[j].a == c[i].a && c[j].b == c[i].b)
            j++;
        insertion_sort(c + i, j - i);
        i = j;
    }
}

/* Sorts c[n] by cmp_cell (a total order, so any correct sort gives the
 * same array). Prompts are usually dense indices or ids not far above n:
 * then a counting sort by prompt and a sort of each prompt's cells (a few
 * dozen: sort_prompt_cells) instead of one sort of millions. */
static void sort_cells(joust_model_cell *c, size_t n)
{
    if (!n)
        return;
    uint64_t minp = c[0].prompt, maxp = 0;
    for (size_t k = 0; k < n; k++) {
        maxp = c[k].prompt > maxp ? c[k].prompt : maxp;
        minp = c[k].prompt < minp ? c[k].prompt : minp;
    }
    joust_model_cell *v = xmalloc(n * sizeof *v);
    if (minp == maxp) { /* one prompt: the scorer's case, prompt by prompt */
        sort_prompt_cells(c, n, v);
        free(v);
        return;
    }
    if (n < 1024 || maxp > 2 * (uint64_t)n) {
        free(v);
        qsort(c, n, sizeof *c, cmp_cell);
        return;
    }
    size_t *start = xcalloc((size_t)maxp + 2, sizeof *start);
    for (size_t k = 0; k < n; k++)
        start[c[k].prompt + 1]++;
    for (size_t p = 0; p <= maxp; p++)
        start[p + 1] += start[p];
    for (size_t k = 0; k < n; k++)
        v[start[c[k].prompt]++] = c[k];
    memcpy(c, v, n * sizeof *c);
    for (size_t i = 0; i < n;) { /* each prompt's run */
        size_t j = i + 1;
        while (j < n && c[j].prompt == c[i].prompt)
            j++;
        sort_prompt_cells(c + i, j - i, v);
        i = j;
    }
    free(v);
    free(start);
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
    sort_cells(c, nc);
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
    o->threads = 1;
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

/* One set of cells made ready for the fits: the live cells in their order
 * with clipped soft wins, their dense prompt index, the runs of cells of one
 * prompt, the model pairs numbered in order of first appearance, the
 * components. Read-only once built, so the bootstrap threads share it. */
typedef struct {
    uint32_t n;
    size_t ne;
    uint32_t *ea, *eb;       /* per live cell */
    double *cnt, *wins;      /* count, unclipped soft wins of a */
    double *s1;              /* clip(wins / count) */
    uint32_t *cell_prompt;   /* dense prompt index */
    size_t nruns;
    size_t *run_start;       /* nruns + 1 */
    uint32_t *run_prompt;
    size_t np;               /* dense prompts */
    uint32_t *pair_of;       /* per live cell: its pair, numbered by first appearance */
    size_t npairs;
    uint32_t *pair_a, *pair_b;
    uint32_t *comp, ncomp;
    double *comps;           /* comparisons per model */
    int64_t anchor;
    joust_bt_opts bo;
    double *theta;           /* the point fit, gauged */
} prep;

static void prep_free(prep *p)
{
    free(p->ea), free(p->eb), free(p->cnt), free(p->wins), free(p->s1);
    free(p->cell_prompt), free(p->run_start), free(p->run_prompt), free(p->pair_of);
    free(p->pair_a), free(p->pair_b), free(p->comp), free(p->comps), free(p->theta);
    memset(p, 0, sizeof *p);
}

/* Pairs of the live cells numbered by first appearance: a table when the
 * models are few, else a sort of the cells by pair. */
static void number_pairs(prep *p)
{
    size_t ne = p->ne, n = p->n;
    p->pair_of = xmalloc((ne ? ne : 1) * sizeof *p->pair_of);
    p->pair_a = xmalloc((ne ? ne : 1) * sizeof *p->pair_a);
    p->pair_b = xmalloc((ne ? ne : 1) * sizeof *p->pair_b);
    p->npairs = 0;
    if (n <= 1024) {
        uint32_t *tab = xmalloc((n * n + 1) * sizeof *tab);
        memset(tab, 0xff, n * n * sizeof *tab);
        for (size_t k = 0; k < ne; k++) {
            uint32_t *t = &tab[(size_t)p->ea[k] * n + p->eb[k]];
            if (*t == UINT32_MAX) {
                p->pair_a[p->npairs] = p->ea[k];
                p->pair_b[p->npairs] = p->eb[k];
                *t = (uint32_t)p->npairs++;
            }
            p->pair_of[k] = *t;
        }
        free(tab);
        return;
    }
    pair_key *ord = xmalloc((ne ? ne : 1) * sizeof *ord);
    for (size_t k = 0; k < ne; k++)
        ord[k] = (pair_key){p->ea[k], p->eb[k], (uint32_t)k};
    qsort(ord, ne, sizeof *ord, cmp_pair_key);
    /* the first cell of each group (lowest k: the sort's tie-break) names it */
    uint32_t *first = xmalloc((ne ? ne : 1) * sizeof *first);
    size_t ng = 0;
    for (size_t k = 0; k < ne; k++) {
        if (!k || ord[k].a != ord[k - 1].a || ord[k].b != ord[k - 1].b)
            first[ng++] = ord[k].k;
        p->pair_of[ord[k].k] = (uint32_t)(ng - 1);
    }
    /* renumber the groups by first appearance */
    uint32_t *renum = xmalloc((ng ? ng : 1) * sizeof *renum);
    memset(renum, 0xff, (ng ? ng : 1) * sizeof *renum);
    for (size_t k = 0; k < ne; k++) {
        uint32_t g = p->pair_of[k];
        if (renum[g] == UINT32_MAX) {
            p->pair_a[p->npairs] = p->ea[k];
            p->pair_b[p->npairs] = p->eb[k];
            renum[g] = (uint32_t)p->npairs++;
        }
        p->pair_of[k] = renum[g];
    }
    free(renum);
    free(first);
    free(ord);
}

/* Builds p from cells; dense_prompts: the cells' prompt fields already are
 * prompt indices < np (the paired fit), else they are numbered here in the
 * order of their ids. */
static void prep_build(prep *p, uint32_t n, const joust_model_cell *cells, size_t nc,
                       int64_t anchor, const joust_bt_opts *bo, int dense_prompts, size_t np)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->anchor = anchor;
    p->bo = *bo;
    size_t cap = nc ? nc : 1;
    p->ea = xmalloc(cap * sizeof *p->ea);
    p->eb = xmalloc(cap * sizeof *p->eb);
    p->cnt = xmalloc(cap * sizeof *p->cnt);
    p->wins = xmalloc(cap * sizeof *p->wins);
    p->s1 = xmalloc(cap * sizeof *p->s1);
    p->cell_prompt = xmalloc(cap * sizeof *p->cell_prompt);
    uint64_t *pid = xmalloc(cap * sizeof *pid);
    uint32_t *parent = xmalloc((n + 1) * sizeof *parent);
    p->comp = xmalloc((n + 1) * sizeof *p->comp);
    p->comps = xcalloc(n + 1, sizeof *p->comps);
    p->theta = xmalloc((n + 1) * sizeof *p->theta);
    for (uint32_t i = 0; i < n; i++)
        parent[i] = i;
    int sorted = 1;
    size_t ne = 0;
    for (size_t k = 0; k < nc; k++) {
        const joust_model_cell *c = &cells[k];
        if (c->count <= 0)
            continue;
        double s = c->wins_a / c->count;
        s = fmin(fmax(s, bo->clip), 1 - bo->clip);
        p->ea[ne] = c->a;
        p->eb[ne] = c->b;
        p->cnt[ne] = c->count;
        p->wins[ne] = c->wins_a;
        p->s1[ne] = s;
        pid[ne] = c->prompt;
        sorted &= !ne || pid[ne - 1] <= pid[ne];
        ne++;
        p->comps[c->a] += c->count;
        p->comps[c->b] += c->count;
        uint32_t ra = uf_find(parent, c->a), rb = uf_find(parent, c->b);
        if (ra != rb)
            parent[ra > rb ? ra : rb] = ra < rb ? ra : rb;
    }
    p->ne = ne;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, i);
        p->comp[i] = r == i ? p->ncomp++ : p->comp[r];
    }
    free(parent);
    /* dense prompt indices, in the order of the prompt ids */
    if (dense_prompts) {
        for (size_t k = 0; k < ne; k++)
            p->cell_prompt[k] = (uint32_t)pid[k];
        p->np = np;
    } else if (sorted) {
        for (size_t k = 0; k < ne; k++) {
            p->np += k == 0 || pid[k] != pid[k - 1];
            p->cell_prompt[k] = (uint32_t)(p->np - 1);
        }
    } else {
        uint64_t *prompts = xmalloc(cap * sizeof *prompts);
        memcpy(prompts, pid, ne * sizeof *prompts);
        qsort(prompts, ne, sizeof *prompts, cmp_u64);
        size_t m = 0;
        for (size_t k = 0; k < ne; k++)
            if (m == 0 || prompts[k] != prompts[m - 1])
                prompts[m++] = prompts[k];
        for (size_t k = 0; k < ne; k++) {
            uint64_t *hit = bsearch(&pid[k], prompts, m, sizeof *prompts, cmp_u64);
            p->cell_prompt[k] = (uint32_t)(hit - prompts);
        }
        p->np = m;
        free(prompts);
    }
    free(pid);
    /* runs of cells of one prompt */
    p->run_start = xmalloc((ne + 1) * sizeof *p->run_start);
    p->run_prompt = xmalloc(cap * sizeof *p->run_prompt);
    for (size_t k = 0; k < ne; k++)
        if (k == 0 || p->cell_prompt[k] != p->cell_prompt[k - 1]) {
            p->run_prompt[p->nruns] = p->cell_prompt[k];
            p->run_start[p->nruns++] = k;
        }
    p->run_start[p->nruns] = ne;
    number_pairs(p);
}

/* Per-thread scratch of the fits. */
typedef struct {
    double *wi, *wj, *rw, *rg, *gsum;
    uint32_t *gsize, *draws;
    joust_bt_edge *pe;
} scratch;

static void scratch_init(scratch *s, const prep *p, size_t np)
{
    size_t q = p->npairs ? p->npairs : 1;
    s->wi = xmalloc(q * sizeof *s->wi);
    s->wj = xmalloc(q * sizeof *s->wj);
    s->rw = xmalloc(q * sizeof *s->rw);
    s->rg = xmalloc(q * sizeof *s->rg);
    s->pe = xmalloc(q * sizeof *s->pe);
    s->gsum = xmalloc((p->ncomp ? p->ncomp : 1) * sizeof *s->gsum);
    s->gsize = xmalloc((p->ncomp ? p->ncomp : 1) * sizeof *s->gsize);
    s->draws = xmalloc((np ? np : 1) * sizeof *s->draws);
}

static void scratch_free(scratch *s)
{
    free(s->wi), free(s->wj), free(s->rw), free(s->rg), free(s->pe), free(s->gsum);
    free(s->gsize), free(s->draws);
}

static void sums_zero(const prep *p, int rates, scratch *s)
{
    memset(s->wi, 0, p->npairs * sizeof *s->wi);
    memset(s->wj, 0, p->npairs * sizeof *s->wj);
    if (rates) {
        memset(s->rw, 0, p->npairs * sizeof *s->rw);
        memset(s->rg, 0, p->npairs * sizeof *s->rg);
    }
}

/* Adds the cells of runs [r0, r1) to each pair's sums: clipped soft wins
 * weighted by count (times draws[prompt] when draws is not NULL); with
 * rates also the unclipped soft wins of a and the comparisons. Runs of a
 * prompt drawn 0 times are skipped. The cells are added in their order, so
 * splitting the runs into consecutive ranges gives the same sums. */
static void sums_add(const prep *p, const uint32_t *draws, int rates, size_t r0, size_t r1,
                     scratch *s)
{
    for (size_t r = r0; r < r1; r++) {
        uint32_t d = draws ? draws[p->run_prompt[r]] : 1;
        if (d == 0)
            continue;
        for (size_t k = p->run_start[r]; k < p->run_start[r + 1]; k++) {
            double w = p->cnt[k] * d, s1 = p->s1[k];
            uint32_t q = p->pair_of[k];
            s->wi[q] += w * s1;
            s->wj[q] += w * (1 - s1);
            if (rates) {
                s->rw[q] += p->wins[k] * d;
                s->rg[q] += w;
            }
        }
    }
}

/* One edge per model pair from the sums, in the order of the pairs' first
 * cells: what joust_bt_fit would make of the cells after sorting them (with
 * the clip applied per cell, as it does). Returns the number of edges in
 * s->pe (pairs with weight). */
static size_t sums_edges(const prep *p, scratch *s)
{
    size_t m = 0;
    for (size_t q = 0; q < p->npairs; q++) {
        double w = s->wi[q] + s->wj[q];
        if (w > 0)
            s->pe[m++] = (joust_bt_edge){p->pair_a[q], p->pair_b[q], s->wi[q] / w, w};
    }
    return m;
}

/* The point fit of p into p->theta (gauged). */
static int prep_fit(prep *p, scratch *s)
{
    sums_zero(p, 0, s);
    sums_add(p, NULL, 0, 0, p->nruns, s);
    size_t m = sums_edges(p, s);
    int rc = joust_bt_fit(p->n, s->pe, m, &p->bo, 0, p->theta, NULL, NULL);
    if (rc == 0)
        apply_gauge(p->n, p->comp, p->ncomp, p->anchor, s->gsum, s->gsize, p->theta);
    return rc;
}

/* The end of one bootstrap round of p whose sums are in s: the gauged
 * refit (warm started at the point fit) into tb, the pairs' win rates into
 * rate (NULL: none; NaN for a pair without comparisons in the round). */
static void round_fit(const prep *p, scratch *s, double *tb, double *rate)
{
    size_t m = sums_edges(p, s);
    memcpy(tb, p->theta, p->n * sizeof *tb);
    if (joust_bt_fit(p->n, s->pe, m, &p->bo, 1, tb, NULL, NULL) != 0)
        memset(tb, 0, p->n * sizeof *tb); /* unreachable: edges were checked */
    apply_gauge(p->n, p->comp, p->ncomp, p->anchor, s->gsum, s->gsize, tb);
    for (size_t q = 0; rate && q < p->npairs; q++)
        rate[q] = s->rg[q] > 0 ? s->rw[q] / s->rg[q] : NAN;
}

/* The bootstrap: rounds [r0, r1) of one or two cell sets under the same
 * draws; every round's generator state is fixed beforehand (states[r]), so
 * the rounds come out the same in any number of threads. Rounds go in
 * blocks of BLOCK: the cells are read once per block, and each cell is added
 * to the BLOCK rounds' sums at once (laid out round-minor, [pair][round], so
 * that the adds are one vector loop). A round that did not draw the cell's
 * prompt adds +0 there, which leaves its sums exactly as skipping the cell
 * would: the sums are bit for bit those of one round at a time. */
enum { BLOCK = 16 };

/* The sums of a block of rounds, [pair * BLOCK + round]. */
typedef struct {
    double *wi, *wj, *rw, *rg;
} block_sums;

/* Two doubles, added and multiplied lane by lane (GCC and Clang vector
 * extension; plain SSE2 on x86-64): the same IEEE operations per lane as
 * the scalar code, two rounds at a time. */
typedef double v2d __attribute__((vector_size(16)));

/* Adds every cell of p, weighted by each round's draws of its prompt
 * (draws[b], b < nb), to bs: the same sums as sums_add of each round. */
static void block_add(const prep *p, uint32_t *const *draws, int nb, int rates, block_sums *bs)
{
    size_t q = p->npairs ? p->npairs : 1;
    memset(bs->wi, 0, q * BLOCK * sizeof *bs->wi);
    memset(bs->wj, 0, q * BLOCK * sizeof *bs->wj);
    if (rates) {
        memset(bs->rw, 0, q * BLOCK * sizeof *bs->rw);
        memset(bs->rg, 0, q * BLOCK * sizeof *bs->rg);
    }
    enum { V = BLOCK / 2 };
    v2d d[V];
    for (size_t r = 0; r < p->nruns; r++) {
        uint32_t any = 0;
        for (int v = 0; v < V; v++) {
            uint32_t x0 = 2 * v < nb ? draws[2 * v][p->run_prompt[r]] : 0;
            uint32_t x1 = 2 * v + 1 < nb ? draws[2 * v + 1][p->run_prompt[r]] : 0;
            d[v] = (v2d){(double)x0, (double)x1};
            any |= x0 | x1;
        }
        if (!any)
            continue;
        for (size_t k = p->run_start[r]; k < p->run_start[r + 1]; k++) {
            double s1 = p->s1[k];
            v2d c = {p->cnt[k], p->cnt[k]}, a = {s1, s1}, na = {1 - s1, 1 - s1};
            size_t at = (size_t)p->pair_of[k] * BLOCK;
            v2d *wi = (v2d *)(bs->wi + at), *wj = (v2d *)(bs->wj + at);
            for (int v = 0; v < V; v++) {
                v2d w = c * d[v];
                wi[v] += w * a;
                wj[v] += w * na;
            }
            if (rates) {
                v2d wins = {p->wins[k], p->wins[k]};
                v2d *rw = (v2d *)(bs->rw + at), *rg = (v2d *)(bs->rg + at);
                for (int v = 0; v < V; v++) {
                    rw[v] += wins * d[v];
                    rg[v] += c * d[v];
                }
            }
        }
    }
}

/* Round b's sums of bs into s (what round_fit reads). */
static void block_take(const prep *p, const block_sums *bs, int b, int rates, scratch *s)
{
    for (size_t q = 0; q < p->npairs; q++) {
        s->wi[q] = bs->wi[q * BLOCK + (size_t)b];
        s->wj[q] = bs->wj[q * BLOCK + (size_t)b];
        if (rates) {
            s->rw[q] = bs->rw[q * BLOCK + (size_t)b];
            s->rg[q] = bs->rg[q * BLOCK + (size_t)b];
        }
    }
}

typedef struct {
    const prep *set[2];
    size_t nsets, np;
    const joust_rng_t *states;
    int r0, r1;
    double *boot[2];         /* [rounds * n] */
    double *rates;           /* [rounds * npairs] of set 0, or NULL */
} boot_job;

static void *boot_run(void *arg)
{
    boot_job *j = arg;
    scratch *s = xmalloc(sizeof *s * BLOCK * j->nsets); /* s[t * BLOCK + b] */
    for (size_t t = 0; t < j->nsets; t++)
        for (int b = 0; b < BLOCK; b++)
            scratch_init(&s[t * BLOCK + b], j->set[t], j->np);
    size_t q = 1;
    for (size_t t = 0; t < j->nsets; t++)
        q = j->set[t]->npairs > q ? j->set[t]->npairs : q;
    block_sums bs = {xmalloc(q * BLOCK * sizeof(double)), xmalloc(q * BLOCK * sizeof(double)),
                     xmalloc(q * BLOCK * sizeof(double)), xmalloc(q * BLOCK * sizeof(double))};
    uint32_t *draws[BLOCK];
    for (int b = 0; b < BLOCK; b++)
        draws[b] = s[b].draws;
    for (int r0 = j->r0; r0 < j->r1; r0 += BLOCK) {
        int nb = j->r1 - r0 < BLOCK ? j->r1 - r0 : BLOCK;
        for (int b = 0; b < nb; b++) {
            joust_rng_t rng = j->states[r0 + b];
            uint32_t *d = s[b].draws;
            memset(d, 0, j->np * sizeof *d);
            for (size_t t = 0; t < j->np; t++)
                d[joust_rng_below(&rng, j->np)]++;
        }
        for (size_t t = 0; t < j->nsets; t++) {
            const prep *p = j->set[t];
            int rates = t == 0 && j->rates;
            block_add(p, draws, nb, rates, &bs);
            for (int b = 0; b < nb; b++) {
                block_take(p, &bs, b, rates, &s[t * BLOCK + b]);
                round_fit(p, &s[t * BLOCK + b], j->boot[t] + (size_t)(r0 + b) * p->n,
                          rates ? j->rates + (size_t)(r0 + b) * p->npairs : NULL);
            }
        }
    }
    free(bs.wi), free(bs.wj), free(bs.rw), free(bs.rg);
    for (size_t t = 0; t < j->nsets * BLOCK; t++)
        scratch_free(&s[t]);
    free(s);
    return NULL;
}

/* R rounds of the sets over np prompts in `threads` threads. */
static void bootstrap(const prep *const *set, size_t nsets, size_t np, int R, uint64_t seed,
                      int threads, double **boot, double *rates)
{
    if (R <= 0)
        return;
    joust_rng_t *states = xmalloc((size_t)R * sizeof *states), rng;
    joust_rng_seed(&rng, seed);
    for (int r = 0; r < R; r++) {
        states[r] = rng;
        for (size_t t = 0; t < np; t++)
            (void)joust_rng_below(&rng, np);
    }
    if (threads < 1)
        threads = 1;
    if (threads > R)
        threads = R;
    boot_job *jobs = xcalloc((size_t)threads, sizeof *jobs);
    pthread_t *th = xcalloc((size_t)threads, sizeof *th);
    int *started = xcalloc((size_t)threads, sizeof *started);
    for (int t = 0; t < threads; t++) {
        boot_job *j = &jobs[t];
        j->nsets = nsets;
        j->np = np;
        j->states = states;
        j->r0 = (int)((int64_t)R * t / threads);
        j->r1 = (int)((int64_t)R * (t + 1) / threads);
        j->rates = rates;
        for (size_t k = 0; k < nsets; k++) {
            j->set[k] = set[k];
            j->boot[k] = boot[k];
        }
        started[t] = t > 0 && pthread_create(&th[t], NULL, boot_run, j) == 0;
    }
    for (int t = 0; t < threads; t++) /* the caller's share, and any thread that did not start */
        if (!started[t])
            boot_run(&jobs[t]);
    for (int t = 1; t < threads; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    free(started);
    free(th);
    free(jobs);
    free(states);
}

/* Percentile interval and standard deviation of column i of R rounds of n. */
static void interval(const double *boot, int R, size_t n, size_t i, double level, double *col,
                     double *lo, double *hi, double *sd)
{
    double mean = 0, ss = 0;
    int m = 0;
    for (int r = 0; r < R; r++) {
        double v = boot[(size_t)r * n + i];
        if (isnan(v))
            continue;
        col[m++] = v;
        mean += v;
    }
    if (m == 0) {
        *lo = *hi = NAN;
        if (sd)
            *sd = NAN;
        return;
    }
    mean /= m;
    for (int r = 0; r < m; r++)
        ss += (col[r] - mean) * (col[r] - mean);
    qsort(col, (size_t)m, sizeof *col, cmp_double);
    double a = (1 - level) / 2;
    *lo = quantile(col, m, a);
    *hi = quantile(col, m, 1 - a);
    if (sd)
        *sd = m > 1 ? sqrt(ss / (m - 1)) : 0;
}

static int check_opts(const joust_model_fit_opts *o, uint32_t n_models)
{
    if (!(isfinite(o->prior_games) && o->prior_games > 0) || o->rounds < 0 ||
        !(o->level > 0 && o->level < 1) || o->anchor < -1 || o->anchor >= (int64_t)n_models ||
        o->threads < 0)
        return JOUST_EINVAL;
    return 0;
}

static int check_cells(uint32_t n_models, const joust_model_cell *cells, size_t nc,
                       uint64_t n_prompts)
{
    for (size_t k = 0; k < nc; k++) {
        const joust_model_cell *c = &cells[k];
        if (c->a >= c->b || c->b >= n_models || !isfinite(c->count) || c->count < 0 ||
            !isfinite(c->wins_a) || c->wins_a < 0 || c->wins_a > c->count ||
            c->prompt >= n_prompts)
            return JOUST_EINVAL;
    }
    return 0;
}

static void bt_opts_for(const joust_model_fit_opts *o, joust_bt_opts *bo)
{
    joust_bt_opts_defaults(bo);
    bo->prior_games = o->prior_games;
    bo->tol = 1e-9;
}

/* Scores from the point fit and the rounds of p. */
static void scores_of(const prep *p, const double *boot, int R, double level,
                      joust_model_score *out)
{
    double *col = xmalloc(((size_t)R + 1) * sizeof *col);
    for (uint32_t i = 0; i < p->n; i++) {
        joust_model_score sc = {p->theta[i], NAN, NAN, NAN, p->comps[i], p->comp[i]};
        if (R > 0 && p->comps[i] > 0)
            interval(boot, R, p->n, i, level, col, &sc.lo, &sc.hi, &sc.sd);
        out[i] = sc;
    }
    free(col);
}

int joust_model_fit_rates(uint32_t n_models, const joust_model_cell *cells, size_t nc,
                          const joust_model_fit_opts *o, joust_model_score *out,
                          uint32_t *n_components, double *rate_lo, double *rate_hi)
{
    joust_model_fit_opts def;
    if (!o) {
        joust_model_fit_opts_defaults(&def);
        o = &def;
    }
    if (check_opts(o, n_models) < 0 || check_cells(n_models, cells, nc, UINT64_MAX) < 0)
        return JOUST_EINVAL;
    uint32_t n = n_models;
    if (n == 0) {
        if (n_components)
            *n_components = 0;
        return 0;
    }
    joust_bt_opts bo;
    bt_opts_for(o, &bo);
    prep p;
    prep_build(&p, n, cells, nc, o->anchor, &bo, 0, 0);
    scratch s;
    scratch_init(&s, &p, 0);
    int rc = prep_fit(&p, &s);
    scratch_free(&s);
    if (rc == 0) {
        int R = p.ne ? o->rounds : 0;
        int want_rates = rate_lo && rate_hi;
        double *boot = xmalloc(((size_t)R * n + 1) * sizeof *boot);
        double *rates = want_rates ? xmalloc(((size_t)R * p.npairs + 1) * sizeof *rates) : NULL;
        const prep *set = &p;
        bootstrap(&set, 1, p.np, R, o->seed, o->threads, &boot, rates);
        scores_of(&p, boot, R, o->level, out);
        if (want_rates) {
            for (size_t k = 0; k < (size_t)n * n; k++)
                rate_lo[k] = rate_hi[k] = NAN;
            double *col = xmalloc(((size_t)R + 1) * sizeof *col);
            for (size_t q = 0; q < p.npairs && R > 0; q++) {
                double lo, hi;
                interval(rates, R, p.npairs, q, o->level, col, &lo, &hi, NULL);
                size_t a = p.pair_a[q], b = p.pair_b[q];
                rate_lo[a * n + b] = lo;
                rate_hi[a * n + b] = hi;
                rate_lo[b * n + a] = 1 - hi;
                rate_hi[b * n + a] = 1 - lo;
            }
            free(col);
        }
        if (n_components)
            *n_components = p.ncomp;
        free(rates);
        free(boot);
    }
    prep_free(&p);
    return rc;
}

int joust_model_fit(uint32_t n_models, const joust_model_cell *cells, size_t nc,
                    const joust_model_fit_opts *o, joust_model_score *out,
                    uint32_t *n_components)
{
    return joust_model_fit_rates(n_models, cells, nc, o, out, n_components, NULL, NULL);
}

int joust_model_fit_paired(uint32_t n_prompts, joust_model_paired *x, joust_model_paired *y,
                           const joust_model_fit_opts *o)
{
    joust_model_fit_opts def;
    if (!o) {
        joust_model_fit_opts_defaults(&def);
        o = &def;
    }
    joust_model_paired *sets[2] = {x, y};
    for (int t = 0; t < 2; t++) {
        joust_model_fit_opts ot = *o;
        ot.anchor = sets[t]->anchor;
        if (check_opts(&ot, sets[t]->n_models) < 0 ||
            check_cells(sets[t]->n_models, sets[t]->cells, sets[t]->n_cells, n_prompts) < 0)
            return JOUST_EINVAL;
    }
    joust_bt_opts bo;
    bt_opts_for(o, &bo);
    prep p[2];
    int rc = 0;
    for (int t = 0; t < 2; t++) {
        prep_build(&p[t], sets[t]->n_models, sets[t]->cells, sets[t]->n_cells, sets[t]->anchor,
                   &bo, 1, n_prompts);
        scratch s;
        scratch_init(&s, &p[t], 0);
        if (rc == 0 && p[t].n)
            rc = prep_fit(&p[t], &s);
        scratch_free(&s);
    }
    int R = rc == 0 && n_prompts && (p[0].ne || p[1].ne) ? o->rounds : 0;
    double *boot[2];
    for (int t = 0; t < 2; t++)
        boot[t] = sets[t]->boot ? sets[t]->boot : xmalloc(((size_t)R * p[t].n + 1) * sizeof(double));
    if (rc == 0) {
        const prep *set[2] = {&p[0], &p[1]};
        bootstrap(set, 2, n_prompts, R, o->seed, o->threads, boot, NULL);
        for (int t = 0; t < 2; t++)
            scores_of(&p[t], boot[t], R, o->level, sets[t]->score);
    }
    for (int t = 0; t < 2; t++) {
        if (!sets[t]->boot)
            free(boot[t]);
        prep_free(&p[t]);
    }
    return rc;
}
