/* Global soft Bradley-Terry by preconditioned truncated Newton over an edge
 * list. See bt_sparse.h for the contract. */
#include "bt_sparse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

/* One comparison after clipping: soft wins of a over b and the weight
 * (wins of b = tot - win). */
typedef struct {
    uint32_t a, b;
    double win, tot;
} sedge_t;

typedef struct {
    uint32_t n;
    const sedge_t *e;
    size_t m;
    double half_alpha; /* prior_games / 2 */
    double *h;         /* m: the Hessian weight of each edge at the current theta */
    double *diag;      /* n: the diagonal of the negative Hessian */
} problem_t;

void joust_bt_sparse_opts_defaults(joust_bt_sparse_opts *o)
{
    o->prior_games = 1.0;
    o->clip = 1e-3;
    o->gtol = 1e-9;
    o->max_newton = 50;
    o->max_cg = 500;
}

/* sigma(x), from bt.h */
static double sigmoid(double x) { return joust_bt_prob(x, 0); }

/* At theta: the objective (returned), the gradient g, the edge Hessian
 * weights h and the diagonal of the negative Hessian, in one pass; *gmax =
 * max |g_i|. */
static double evaluate(problem_t *p, const double *th, double *g, double *gmax)
{
    double f = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        double s = sigmoid(th[i]);
        /* log sigma(t) + log sigma(-t) = -|t| - 2 log(1 + e^-|t|) */
        f -= p->half_alpha * (fabs(th[i]) + 2 * log1p(exp(-fabs(th[i]))));
        g[i] = p->half_alpha * (1 - 2 * s);
        p->diag[i] = 2 * p->half_alpha * s * (1 - s);
    }
    for (size_t k = 0; k < p->m; k++) {
        const sedge_t *e = &p->e[k];
        double d = th[e->a] - th[e->b];
        /* one exp gives sigma(d) and both log-sigmoids */
        double z = exp(-fabs(d)), l1 = log1p(z), q = d >= 0 ? 1 / (1 + z) : z / (1 + z);
        double ls_pos = d >= 0 ? -l1 : d - l1, ls_neg = d >= 0 ? -d - l1 : -l1;
        f += e->win * ls_pos + (e->tot - e->win) * ls_neg;
        double ga = e->win - e->tot * q, h = e->tot * q * (1 - q);
        g[e->a] += ga;
        g[e->b] -= ga;
        p->h[k] = h;
        p->diag[e->a] += h;
        p->diag[e->b] += h;
    }
    double m = 0;
    for (uint32_t i = 0; i < p->n; i++)
        m = fmax(m, fabs(g[i]));
    *gmax = m;
    return f;
}

/* out = L v, L the h-weighted Laplacian of the comparison graph (the
 * negative Hessian is L plus the prior's diagonal). */
static void hess_vec(const problem_t *p, const double *v, double *out)
{
    memset(out, 0, p->n * sizeof *out);
    for (size_t k = 0; k < p->m; k++) {
        const sedge_t *e = &p->e[k];
        double t = p->h[k] * (v[e->a] - v[e->b]);
        out[e->a] += t;
        out[e->b] -= t;
    }
}

static double dot(const double *x, const double *y, uint32_t n)
{
    double s0 = 0, s1 = 0;
    uint32_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += x[i] * y[i];
        s1 += x[i + 1] * y[i + 1];
    }
    if (i < n)
        s0 += x[i] * y[i];
    return s0 + s1;
}

/* Preconditioned CG for H x = g from x = 0, to ||r|| <= rtol ||g||.
 * prior[i] is the prior's share of the diagonal (the rest comes from
 * hess_vec's Laplacian). Scratch: r, z, q, hq (n each). Returns iterations. */
static int pcg(const problem_t *p, const double *prior, const double *g, double rtol, int max_it,
               double *x, double *r, double *z, double *q, double *hq)
{
    uint32_t n = p->n;
    memset(x, 0, n * sizeof *x);
    memcpy(r, g, n * sizeof *r);
    for (uint32_t i = 0; i < n; i++)
        z[i] = r[i] / p->diag[i];
    memcpy(q, z, n * sizeof *q);
    double rz = dot(r, z, n), target = rtol * sqrt(dot(g, g, n));
    int it = 0;
    while (it < max_it && sqrt(dot(r, r, n)) > target) {
        hess_vec(p, q, hq);
        for (uint32_t i = 0; i < n; i++)
            hq[i] += prior[i] * q[i];
        double qhq = dot(q, hq, n);
        if (!(qhq > 0))
            break;
        double alpha = rz / qhq;
        for (uint32_t i = 0; i < n; i++) {
            x[i] += alpha * q[i];
            r[i] -= alpha * hq[i];
            z[i] = r[i] / p->diag[i];
        }
        double rz_new = dot(r, z, n), beta = rz_new / rz;
        rz = rz_new;
        for (uint32_t i = 0; i < n; i++)
            q[i] = z[i] + beta * q[i];
        it++;
    }
    return it;
}

static int opts_ok(const joust_bt_sparse_opts *o)
{
    return isfinite(o->prior_games) && o->prior_games > 0 && o->clip >= 0 && o->clip < 0.5 &&
           isfinite(o->gtol) && o->gtol >= 0 && o->max_newton >= 1 && o->max_cg >= 1;
}

int joust_bt_sparse_fit(uint32_t n, const joust_bt_edge *e, size_t m,
                        const joust_bt_sparse_opts *o, int warm, double *theta, double *se,
                        joust_bt_sparse_stats *st)
{
    joust_bt_sparse_opts def;
    if (!o) {
        joust_bt_sparse_opts_defaults(&def);
        o = &def;
    }
    if (!opts_ok(o) || (!theta && n) || (!e && m))
        return JOUST_EINVAL;
    for (size_t k = 0; k < m; k++)
        if (e[k].a >= n || e[k].b >= n || e[k].a == e[k].b || !isfinite(e[k].s) || e[k].s < 0 ||
            e[k].s > 1 || !isfinite(e[k].w) || e[k].w <= 0)
            return JOUST_EINVAL;
    for (uint32_t i = 0; warm && i < n; i++)
        if (!isfinite(theta[i]))
            return JOUST_EINVAL;
    sedge_t *edges = xmalloc((m ? m : 1) * sizeof *edges);
    for (size_t k = 0; k < m; k++) {
        double s = fmin(fmax(e[k].s, o->clip), 1 - o->clip);
        edges[k] = (sedge_t){e[k].a, e[k].b, e[k].w * s, e[k].w};
    }
    problem_t p = {n, edges, m, 0.5 * o->prior_games, xmalloc((m ? m : 1) * sizeof(double)),
                   xmalloc(((size_t)n + 1) * sizeof(double))};
    size_t nn = (size_t)n + 1;
    double *g = xmalloc(nn * sizeof *g), *d = xmalloc(nn * sizeof *d);
    double *r = xmalloc(nn * sizeof *r), *z = xmalloc(nn * sizeof *z);
    double *q = xmalloc(nn * sizeof *q), *hq = xmalloc(nn * sizeof *hq);
    double *prior = xmalloc(nn * sizeof *prior), *trial = xmalloc(nn * sizeof *trial);
    if (!warm && n)
        memset(theta, 0, n * sizeof *theta);
    joust_bt_sparse_stats s = {0, 0, 0, 0};
    double f = evaluate(&p, theta, g, &s.grad_norm);
    while (s.grad_norm > o->gtol && s.newton < o->max_newton) {
        for (uint32_t i = 0; i < n; i++) {
            double sg = sigmoid(theta[i]);
            prior[i] = 2 * p.half_alpha * sg * (1 - sg);
        }
        /* forcing term: 0.1 far away, sqrt(|g|) near the optimum */
        double gn = sqrt(dot(g, g, n));
        s.cg += pcg(&p, prior, g, fmin(0.1, sqrt(gn)), o->max_cg, d, r, z, q, hq);
        double slope = dot(g, d, n), step = 1, fn = f, gmax = 0;
        /* Armijo backtracking; once the predicted gain is at the rounding
         * level of f, the objective cannot tell steps apart and the full
         * Newton step (quadratic region) is taken. Each trial evaluates
         * everything at once (g, h and diag are scratch until accepted:
         * the last trial is the accepted one). */
        int tiny = slope <= 1e-13 * (fabs(f) + 1);
        for (int bt = 0; bt < 40; bt++) {
            for (uint32_t i = 0; i < n; i++)
                trial[i] = theta[i] + step * d[i];
            fn = evaluate(&p, trial, hq, &gmax);
            if (tiny || fn >= f + 1e-4 * step * slope)
                break;
            step *= 0.5;
        }
        memcpy(theta, trial, n * sizeof *theta);
        memcpy(g, hq, n * sizeof *g);
        f = fn;
        s.newton++;
        s.grad_norm = gmax;
    }
    s.objective = f;
    if (se)
        for (uint32_t i = 0; i < n; i++)
            se[i] = 1 / sqrt(p.diag[i]);
    if (st)
        *st = s;
    free(edges);
    free(p.h);
    free(p.diag);
    free(g);
    free(d);
    free(r);
    free(z);
    free(q);
    free(hq);
    free(prior);
    free(trial);
    return 0;
}

/* ---- components ---- */

static uint32_t uf_find(uint32_t *up, uint32_t x)
{
    while (up[x] != x) {
        up[x] = up[up[x]]; /* path halving */
        x = up[x];
    }
    return x;
}

typedef struct {
    uint32_t root, size, first;
} comp_t;

static int by_size(const void *x, const void *y)
{
    const comp_t *a = x, *b = y;
    if (a->size != b->size)
        return a->size > b->size ? -1 : 1;
    return (a->first > b->first) - (a->first < b->first);
}

uint32_t joust_bt_components(uint32_t n, const joust_bt_edge *e, size_t m, uint32_t *comp)
{
    uint32_t *up = xmalloc((n ? n : 1) * sizeof *up);
    for (uint32_t i = 0; i < n; i++)
        up[i] = i;
    for (size_t k = 0; k < m; k++) {
        if (e[k].a >= n || e[k].b >= n)
            continue;
        uint32_t x = uf_find(up, e[k].a), y = uf_find(up, e[k].b);
        if (x != y) /* the smaller index becomes the root: deterministic */
            up[x > y ? x : y] = x < y ? x : y;
    }
    /* Roots are each component's smallest item, met first in index order. */
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = uf_find(up, i);
        if (r == i)
            comp[i] = nc++;
        else
            comp[i] = comp[r];
    }
    comp_t *c = xcalloc(nc ? nc : 1, sizeof *c);
    for (uint32_t i = 0; i < n; i++) {
        if (c[comp[i]].size++ == 0)
            c[comp[i]].first = i;
        c[comp[i]].root = comp[i];
    }
    qsort(c, nc, sizeof *c, by_size);
    for (uint32_t j = 0; j < nc; j++)
        up[c[j].root] = j; /* up is reused: provisional label -> final label */
    for (uint32_t i = 0; i < n; i++)
        comp[i] = up[comp[i]];
    free(c);
    free(up);
    return nc;
}
