#include "bt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

/* Soft wins of i over j (wi) and of j over i (wj), i < j. */
typedef struct {
    uint32_t i, j;
    double wi, wj;
} pair_t;

void joust_bt_opts_defaults(joust_bt_opts *o)
{
    o->prior_games = 1.0;
    o->max_iter = 100;
    o->tol = 1e-10;
    o->clip = 1e-3;
}

static double sigmoid(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}

static double log_sigmoid(double x)
{
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

double joust_bt_prob(double ta, double tb) { return sigmoid(ta - tb); }

static int opts_ok(const joust_bt_opts *o)
{
    return isfinite(o->prior_games) && o->prior_games > 0 && o->max_iter >= 1 &&
           isfinite(o->tol) && o->tol >= 0 && o->clip >= 0 && o->clip < 0.5;
}

static int edge_ok(uint32_t n, const joust_bt_edge *e)
{
    return e->a < n && e->b < n && e->a != e->b && isfinite(e->s) && e->s >= 0 &&
           e->s <= 1 && isfinite(e->w) && e->w > 0;
}

/* Total order on every field: equal keys are equal values, so the merged
 * per-pair sums come out the same for any input permutation. */
static int cmp_pair(const void *pa, const void *pb)
{
    const pair_t *x = pa, *y = pb;
    if (x->i != y->i)
        return x->i < y->i ? -1 : 1;
    if (x->j != y->j)
        return x->j < y->j ? -1 : 1;
    if (x->wi != y->wi)
        return x->wi < y->wi ? -1 : 1;
    if (x->wj != y->wj)
        return x->wj < y->wj ? -1 : 1;
    return 0;
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static double objective(size_t c, const pair_t *p, size_t np, double half_alpha, const double *th)
{
    double f = 0;
    for (size_t k = 0; k < np; k++) {
        double d = th[p[k].i] - th[p[k].j];
        f += p[k].wi * log_sigmoid(d) + p[k].wj * log_sigmoid(-d);
    }
    for (size_t k = 0; k < c; k++)
        f += half_alpha * (log_sigmoid(th[k]) + log_sigmoid(-th[k]));
    return f;
}

/* Gradient g and negative Hessian H (c x c, row-major, full) of the objective. */
static void grad_hess(size_t c, const pair_t *p, size_t np, double half_alpha, const double *th,
                      double *g, double *H)
{
    memset(H, 0, c * c * sizeof *H);
    for (size_t k = 0; k < c; k++) {
        double s = sigmoid(th[k]);
        g[k] = half_alpha * (1 - 2 * s);
        H[k * c + k] = 2 * half_alpha * s * (1 - s);
    }
    for (size_t k = 0; k < np; k++) {
        size_t i = p[k].i, j = p[k].j;
        double q = sigmoid(th[i] - th[j]), nij = p[k].wi + p[k].wj;
        double gi = p[k].wi - nij * q, h = nij * q * (1 - q);
        g[i] += gi;
        g[j] -= gi;
        H[i * c + i] += h;
        H[j * c + j] += h;
        H[i * c + j] -= h;
        H[j * c + i] -= h;
    }
}

/* Four accumulators let the compiler keep several multiply-adds in flight
 * (a single running sum serialises on its add latency); the order is fixed,
 * so results stay deterministic. */
static double dot(const double *x, const double *y, size_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += x[k] * y[k];
        s1 += x[k + 1] * y[k + 1];
        s2 += x[k + 2] * y[k + 2];
        s3 += x[k + 3] * y[k + 3];
    }
    for (; k < n; k++)
        s0 += x[k] * y[k];
    return (s0 + s1) + (s2 + s3);
}

/* In-place Cholesky (lower triangle). H is positive definite in exact
 * arithmetic because of the prior; the pivot floor only guards against
 * sigma(1-sigma) rounding to 0 for extreme theta. */
static void cholesky(size_t c, double *L)
{
    for (size_t j = 0; j < c; j++) {
        double *rj = L + j * c;
        double s = rj[j] - dot(rj, rj, j);
        double floor_ = 1e-14 * (fabs(rj[j]) + DBL_MIN);
        rj[j] = sqrt(s > floor_ ? s : floor_);
        for (size_t i = j + 1; i < c; i++) {
            double *ri = L + i * c;
            ri[j] = (ri[j] - dot(ri, rj, j)) / rj[j];
        }
    }
}

/* Solves L L^T x = b. */
static void chol_solve(size_t c, const double *L, const double *b, double *x)
{
    for (size_t i = 0; i < c; i++)
        x[i] = (b[i] - dot(L + i * c, x, i)) / L[i * c + i];
    for (size_t i = c; i-- > 0;) {
        double t = x[i];
        for (size_t k = i + 1; k < c; k++)
            t -= L[k * c + i] * x[k];
        x[i] = t / L[i * c + i];
    }
}

/* diag(H^-1)_i = |L^-1 e_i|^2; forward substitution from row i on. */
static void chol_inv_diag_sqrt(size_t c, const double *L, double *x, double *out)
{
    for (size_t i = 0; i < c; i++) {
        double ss = 0;
        for (size_t r = i; r < c; r++) {
            x[r] = ((r == i ? 1.0 : 0.0) - dot(L + r * c + i, x + i, r - i)) / L[r * c + r];
            ss += x[r] * x[r];
        }
        out[i] = sqrt(ss);
    }
}

/* Damped Newton on one connected component with local indices. Returns the
 * number of steps taken; *stalled is set when the line search found no
 * ascent although the Newton decrement says the optimum is far (or the step
 * is not finite): far out in the saturated region sigma(1-sigma) underflows,
 * the Hessian is numerically singular and its "Newton step" is garbage. */
static int newton(size_t c, const pair_t *p, size_t np, const joust_bt_opts *o, double *th,
                  double *H, double *g, double *d, double *tn, int *stalled)
{
    double half_alpha = 0.5 * o->prior_games;
    double f = objective(c, p, np, half_alpha, th);
    int it = 0;
    *stalled = 0;
    while (it < o->max_iter) {
        it++;
        grad_hess(c, p, np, half_alpha, th, g, H);
        cholesky(c, H);
        chol_solve(c, H, g, d);
        double slope = 0, dmax = 0;
        for (size_t k = 0; k < c; k++) {
            slope += g[k] * d[k];
            dmax = fmax(dmax, fabs(d[k]));
        }
        /* Near the optimum the predicted gain is below the rounding noise
         * of f, so a strict Armijo test would reject the exact Newton step. */
        double slack = 1e-12 * (1 + fabs(f)), t = 1, fn = f;
        int accepted = 0;
        for (int ls = 0; ls < 60; ls++, t *= 0.5) {
            for (size_t k = 0; k < c; k++)
                tn[k] = th[k] + t * d[k];
            fn = objective(c, p, np, half_alpha, tn);
            if (fn >= f + 1e-4 * t * slope - slack) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) {
            /* At the optimum slope = g'H^-1 g is at rounding level; a large
             * or non-finite one means that the step, not th, is wrong.
             * Otherwise no ascent is left at double precision: th is the
             * optimum. */
            *stalled = !(isfinite(slope) && isfinite(dmax)) || slope > 1e-6 * (1 + fabs(f));
            break;
        }
        memcpy(th, tn, c * sizeof *th);
        f = fn;
        if (t * dmax < o->tol)
            break;
    }
    return it;
}

/* se = sqrt(diag(H^-1)) at th. */
static void std_errors(size_t c, const pair_t *p, size_t np, const joust_bt_opts *o,
                       const double *th, double *se, double *H, double *g, double *d)
{
    grad_hess(c, p, np, 0.5 * o->prior_games, th, g, H);
    cholesky(c, H);
    chol_inv_diag_sqrt(c, H, d, se);
}

/* Newton from th (the warm start, or zeros). A warm start that is worse
 * than 0 in the objective is replaced by 0: a far-off start such as
 * theta = +-900 sits where sigma(1-sigma) underflows and Newton cannot move
 * (it used to return there after one iteration). A warm run that stalls all
 * the same is redone from 0. The optimum is unique (strictly concave
 * objective), so only the iteration count depends on the start; the count
 * returned covers every run. */
static int solve_component(size_t c, const pair_t *p, size_t np, const joust_bt_opts *o,
                           int warm, double *th, double *H, double *g, double *d, double *tn)
{
    double half_alpha = 0.5 * o->prior_games;
    if (warm) {
        memset(tn, 0, c * sizeof *tn);
        if (!(objective(c, p, np, half_alpha, th) >= objective(c, p, np, half_alpha, tn))) {
            memset(th, 0, c * sizeof *th);
            warm = 0;
        }
    }
    int stalled, it = newton(c, p, np, o, th, H, g, d, tn, &stalled);
    if (stalled && warm) {
        memset(th, 0, c * sizeof *th);
        it += newton(c, p, np, o, th, H, g, d, tn, &stalled);
    }
    return it;
}

int joust_bt_fit(uint32_t n, const joust_bt_edge *e, size_t m, const joust_bt_opts *o, int warm,
                 double *theta, double *se, int *iters)
{
    joust_bt_opts defaults;
    if (!o) {
        joust_bt_opts_defaults(&defaults);
        o = &defaults;
    }
    if (!opts_ok(o))
        return JOUST_EINVAL;
    for (size_t k = 0; k < m; k++)
        if (!edge_ok(n, &e[k]))
            return JOUST_EINVAL;
    for (uint32_t i = 0; warm && i < n; i++)
        if (!isfinite(theta[i]))
            return JOUST_EINVAL;

    pair_t *pairs = xmalloc(m * sizeof *pairs);
    for (size_t k = 0; k < m; k++) {
        double s = fmin(fmax(e[k].s, o->clip), 1 - o->clip);
        double wa = e[k].w * s, wb = e[k].w * (1 - s);
        if (e[k].a < e[k].b)
            pairs[k] = (pair_t){e[k].a, e[k].b, wa, wb};
        else
            pairs[k] = (pair_t){e[k].b, e[k].a, wb, wa};
    }
    qsort(pairs, m, sizeof *pairs, cmp_pair);
    size_t np = 0;
    for (size_t k = 0; k < m; k++) {
        if (np && pairs[np - 1].i == pairs[k].i && pairs[np - 1].j == pairs[k].j) {
            pairs[np - 1].wi += pairs[k].wi;
            pairs[np - 1].wj += pairs[k].wj;
        } else {
            pairs[np++] = pairs[k];
        }
    }

    /* Components: root = smallest member, so numbering follows item order. */
    uint32_t *parent = xmalloc((size_t)n * sizeof *parent);
    for (uint32_t i = 0; i < n; i++)
        parent[i] = i;
    for (size_t k = 0; k < np; k++) {
        uint32_t ri = uf_find(parent, pairs[k].i), rj = uf_find(parent, pairs[k].j);
        if (ri != rj)
            parent[ri > rj ? ri : rj] = ri < rj ? ri : rj;
    }
    uint32_t *comp = xmalloc((size_t)n * sizeof *comp); /* item -> component */
    uint32_t *loc = xmalloc((size_t)n * sizeof *loc);   /* item -> local index */
    size_t *csize = xcalloc((size_t)n + 1, sizeof *csize);
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, i);
        comp[i] = r == i ? nc++ : comp[r];
        loc[i] = (uint32_t)csize[comp[i]]++;
    }
    /* Members and pairs grouped by component, keeping item / (i,j) order. */
    size_t *istart = xcalloc((size_t)nc + 1, sizeof *istart);
    size_t *pstart = xcalloc((size_t)nc + 1, sizeof *pstart);
    for (uint32_t c = 0; c < nc; c++)
        istart[c + 1] = istart[c] + csize[c];
    for (size_t k = 0; k < np; k++)
        pstart[comp[pairs[k].i] + 1]++;
    for (uint32_t c = 0; c < nc; c++)
        pstart[c + 1] += pstart[c];
    uint32_t *members = xmalloc((size_t)n * sizeof *members);
    for (uint32_t i = 0; i < n; i++)
        members[istart[comp[i]] + loc[i]] = i;
    pair_t *lp = xmalloc(np * sizeof *lp);
    size_t *pfill = xmalloc(((size_t)nc + 1) * sizeof *pfill);
    memcpy(pfill, pstart, ((size_t)nc + 1) * sizeof *pfill);
    size_t cmax = 0;
    for (uint32_t c = 0; c < nc; c++)
        cmax = csize[c] > cmax ? csize[c] : cmax;
    for (size_t k = 0; k < np; k++) {
        pair_t q = pairs[k];
        lp[pfill[comp[q.i]]++] = (pair_t){loc[q.i], loc[q.j], q.wi, q.wj};
    }

    double *H = xmalloc(cmax * cmax * sizeof *H);
    double *work = xmalloc(5 * cmax * sizeof *work);
    double *th = work, *g = work + cmax, *d = work + 2 * cmax, *tn = work + 3 * cmax,
           *lse = work + 4 * cmax;
    double se_alone = 2.0 / sqrt(o->prior_games); /* 1/sqrt(prior_games * 1/4) */
    int maxit = 0;
    for (uint32_t c = 0; c < nc; c++) {
        size_t cs = csize[c];
        const uint32_t *mem = members + istart[c];
        if (cs == 1) { /* the prior alone: optimum exactly 0 */
            theta[mem[0]] = 0;
            if (se)
                se[mem[0]] = se_alone;
            continue;
        }
        for (size_t k = 0; k < cs; k++)
            th[k] = warm ? theta[mem[k]] : 0.0;
        const pair_t *cp = lp + pstart[c];
        size_t cnp = pstart[c + 1] - pstart[c];
        int it = solve_component(cs, cp, cnp, o, warm, th, H, g, d, tn);
        if (se)
            std_errors(cs, cp, cnp, o, th, lse, H, g, d);
        maxit = it > maxit ? it : maxit;
        for (size_t k = 0; k < cs; k++) {
            theta[mem[k]] = th[k];
            if (se)
                se[mem[k]] = lse[k];
        }
    }
    if (iters)
        *iters = maxit;

    free(work);
    free(H);
    free(pfill);
    free(lp);
    free(members);
    free(pstart);
    free(istart);
    free(csize);
    free(loc);
    free(comp);
    free(parent);
    free(pairs);
    return 0;
}
