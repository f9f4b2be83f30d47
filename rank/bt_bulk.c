#include "bt_bulk.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "xalloc.h"

/* How it is fast: a 16-image prompt is a 16 x 16 Newton system, too small to
 * keep a core busy (a Cholesky factorisation is one long chain of dependent
 * sqrt/divide/multiply-add steps). So prompts of equal size are fitted
 * LANES at a time, one per lane of a vector type: every arithmetic step runs
 * on all lanes at once, and each lane computes exactly what it would alone
 * (lanes never mix), so a prompt's result does not depend on its batch mates. */

#define SMALL JOUST_BT_BULK_SMALL
#define LANES 4
/* Prompts handed to a thread per grab of the shared counter; batches are
 * formed inside a chunk, and chunk bounds do not depend on the thread
 * count, so neither do the results. */
#define CHUNK 256
/* Whole Newton step without evaluating the objective when
 * r = max(max_k |d_k|, max_ij |d_i - d_j|) <= SAFE_R. Every term of the
 * objective is -c log(1 + e^u) with u linear in theta, and |(log sigma')'| <= 1,
 * so along theta + t d the curvature is at most its value at t = 0 times
 * e^(r t). With the Newton decrement lambda^2 = g.d the gain at t = 1 is then
 * at least lambda^2 (1 - (e^r - 1 - r) / r^2) = 0.12 lambda^2 at r = 1.5: a
 * proven ascent that passes the Armijo test (c = 1e-4) of joust_bt_fit.
 * Larger steps try the same bound term by term (step_bound) before falling
 * back to backtracking on the objective. */
#define SAFE_R 1.5
/* Longest first trial step (in r); only pathological warm starts reach it.
 * It doubles after each whole capped step that the line search accepts. */
#define STEP_CAP 30.0
/* Shifted exponentials e^(theta - max) need the range of theta below this. */
#define EXP_RANGE 600.0

typedef double vd __attribute__((vector_size(LANES * sizeof(double))));
/* The batch kernel is compiled twice on x86-64 (GCC >= 11 or clang >= 14):
 * for AVX2 (x86-64-v3), picked at load time where the CPU has it, and for
 * the baseline. Both do the same IEEE operations in the same order (no FMA
 * contraction), so results do not depend on which clone runs. Every helper is
 * inlined into the two clones of fit_batch. */
#define INLINE inline __attribute__((always_inline))
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* GCC: -ffp-contract=off in rank/CMakeLists.txt */
#endif
#if !defined(JOUST_BT_BULK_NO_CLONES) && defined(__x86_64__) &&                               \
    ((defined(__clang__) && __clang_major__ >= 14) ||                                          \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define KERNEL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KERNEL_CLONES
#endif
typedef long long vl __attribute__((vector_size(LANES * sizeof(long long))));
typedef unsigned long long vu __attribute__((vector_size(LANES * sizeof(long long))));

typedef struct {
    double max_step;
    uint64_t iters_total;
    int iters_max;
    uint64_t fitted, capped, large, bad;
    uint32_t first_bad;
} acc_t;

static int opts_ok(const joust_bt_opts *o)
{
    return isfinite(o->prior_games) && o->prior_games > 0 && o->max_iter >= 1 &&
           isfinite(o->tol) && o->tol >= 0 && o->clip >= 0 && o->clip < 0.5;
}

static double sigmoid(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}

/* fmax/fmin are library calls without -ffast-math; inputs here are not NaN. */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static INLINE vd vsplat(double x)
{
    vd v;
    for (int l = 0; l < LANES; l++)
        v[l] = x;
    return v;
}

static INLINE vd vmax(vd a, vd b)
{
    vd r;
    for (int l = 0; l < LANES; l++)
        r[l] = a[l] > b[l] ? a[l] : b[l];
    return r;
}

static INLINE vd vmin(vd a, vd b)
{
    vd r;
    for (int l = 0; l < LANES; l++)
        r[l] = a[l] < b[l] ? a[l] : b[l];
    return r;
}

static INLINE vd vabs(vd a)
{
    vd r;
    for (int l = 0; l < LANES; l++)
        r[l] = fabs(a[l]);
    return r;
}

static INLINE vd vsqrt(vd a)
{
    vd r;
    for (int l = 0; l < LANES; l++)
        r[l] = sqrt(a[l]);
    return r;
}

/* e^x per lane without libm, so that it vectorises: x = k ln2 + r with
 * |r| <= ln2/2 (Cody-Waite split of ln2), e^r by its Taylor series to degree
 * 13 (truncation < 1e-17 relative), then 2^k as two powers of two so that
 * results between 2^-1075 and 2^1024 under- and overflow gracefully to 0
 * and inf. Relative error a few ulp; NaN stays NaN. */
static INLINE vd vexp(vd x)
{
    const double shifter = 0x1.8p52, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10, log2e = 1.4426950408889634;
    for (int l = 0; l < LANES; l++) /* NaN passes */
        x[l] = x[l] > 1000.0 ? 1000.0 : x[l] < -1000.0 ? -1000.0 : x[l];
    vd kd = x * log2e + shifter;
    vd k = kd - shifter; /* round to nearest integer */
    vd r = (x - k * ln2_hi) - k * ln2_lo;
    vd p = vsplat(1.0 / 6227020800.0); /* 1/13! */
    static const double c[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                 1.0 / 362880.0,    1.0 / 40320.0,    1.0 / 5040.0,
                                 1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,
                                 1.0 / 6.0,         0.5,              1.0,
                                 1.0};
    for (int i = 0; i < 13; i++)
        p = p * r + c[i];
    vd k1d = k * 0.5 + shifter; /* k = k1 + k2, each within the normal exponents */
    vd k1 = k1d - shifter, k2 = k - k1;
    vu i1 = (vu)k1d - (vu)vsplat(shifter), i2 = (vu)(k2 + shifter) - (vu)vsplat(shifter);
    vd s1 = (vd)((i1 + 1023) << 52), s2 = (vd)((i2 + 1023) << 52);
    return p * s1 * s2;
}

/* ---- one batch: LANES prompts of n images ----------------------------- */

/* Per thread, 64-byte aligned. Matrices are n x n row-major with a vector of
 * LANES values per entry. N = total comparison weight per pair (kept in the
 * strict lower triangle: N[i*n+j], i > j), ws = soft wins per item: the log-likelihood is
 * sum_i ws_i th_i - sum_{i<j} N_ij log(e^th_i + e^th_j), plus the prior.
 * H = negative Hessian; the factor U (H = U^T U) overwrites its upper
 * triangle and diagonal, the strict lower triangle keeps -N_ij q_ij q_ji.
 * pc = the prior's curvature per item, iu = 1 / diag(U). */
typedef struct {
    vd N[SMALL * SMALL], H[SMALL * SMALL];
    vd ws[SMALL], th[SMALL], g[SMALL], d[SMALL], tn[SMALL], ex[SMALL], pc[SMALL], iu[SMALL];
    vd acc1[SMALL], acc2[SMALL];
} work_t;

typedef struct {
    uint32_t p;  /* prompt */
    int live;    /* holds a valid prompt */
    int done;    /* stopped iterating */
    int iters;   /* Newton iterations so far */
    int stopped; /* on tol, stationarity or a failed line search (else capped) */
    int f_ok;    /* f is the objective at th */
    double step; /* last applied max |delta theta| */
    double cap, f;
    uint64_t used; /* items with edges */
} lane_t;

static INLINE double objective_lane(const work_t *w, uint32_t n, double ha, const vd *x, int l)
{
    double f = 0;
    for (uint32_t i = 0; i < n; i++) {
        double a = fabs(x[i][l]);
        f += w->ws[i][l] * x[i][l] + ha * (-a - 2 * log1p(exp(-a)));
    }
    for (uint32_t j = 1; j < n; j++) { /* N: lower triangle */
        const vd *Nj = w->N + (size_t)j * n;
        double xj = x[j][l];
        for (uint32_t i = 0; i < j; i++) {
            double c = Nj[i][l];
            if (c == 0)
                continue;
            double xi = x[i][l];
            f -= c * (MAX(xi, xj) + log1p(exp(-fabs(xi - xj))));
        }
    }
    return f;
}

/* g, H (full), pc at th. */
static INLINE void grad_hess(work_t *w, uint32_t n, double ha)
{
    vd hi = w->th[0], lo = w->th[0], *ex = w->ex, *gacc = w->acc1, *hacc = w->acc2;
    for (uint32_t k = 1; k < n; k++) {
        hi = vmax(hi, w->th[k]);
        lo = vmin(lo, w->th[k]);
    }
    vd E = vexp(-hi);
    int wide = 0;
    for (int l = 0; l < LANES; l++)
        wide |= !(hi[l] - lo[l] < EXP_RANGE) << l;
    /* sigma(th_i - th_j) = ex_i / (ex_i + ex_j): n exponentials, not n^2;
     * sigma(th_k) = ex_k / (ex_k + E), E may be 0 or inf */
    for (uint32_t k = 0; k < n; k++) {
        ex[k] = vexp(w->th[k] - hi);
        gacc[k] = hacc[k] = vsplat(0);
    }
    /* Each pair once (i < j), mirrored into both triangles of H. */
    for (uint32_t j = 1; j < n; j++) {
        const vd *Nj = w->N + (size_t)j * n;
        vd *Hj = w->H + (size_t)j * n, ej = ex[j], gj = vsplat(0), hj = vsplat(0);
        for (uint32_t i = 0; i < j; i++) {
            vd inv = 1.0 / (ex[i] + ej);
            vd qi = ex[i] * inv, qj = ej * inv; /* P(i beats j), P(j beats i) */
            vd nq = Nj[i] * qi, h = nq * qj;    /* N_ij q_ij, N_ij q_ij q_ji */
            Hj[i] = -h;
            w->H[(size_t)i * n + j] = -h;
            gacc[i] += nq;
            hacc[i] += h;
            gj += Nj[i] * qj;
            hj += h;
        }
        gacc[j] += gj;
        hacc[j] += hj;
    }
    for (uint32_t i = 0; i < n; i++) {
        vd p = ex[i] / (ex[i] + E);
        vd c = 2 * ha * p * (1 - p);
        w->pc[i] = c;
        w->g[i] = w->ws[i] - gacc[i] + ha * (1 - 2 * p);
        w->H[(size_t)i * n + i] = hacc[i] + c;
    }
    for (int l = 0; wide && l < LANES; l++) { /* very wide range: a sigmoid per pair */
        if (!(wide >> l & 1))
            continue;
        for (uint32_t i = 0; i < n; i++) {
            const vd *Ni = w->N + (size_t)i * n;
            vd *Hi = w->H + (size_t)i * n;
            double gi = 0, hd = 0, ti = w->th[i][l];
            for (uint32_t j = 0; j < n; j++) {
                double c = j < i ? Ni[j][l] : w->N[(size_t)j * n + i][l]; /* lower triangle */
                double q = sigmoid(ti - w->th[j][l]), nq = c * q, h = nq * (1 - q);
                Hi[j][l] = -h;
                gi += nq;
                hd += h;
            }
            double p = sigmoid(ti), c = 2 * ha * p * (1 - p);
            w->pc[i][l] = c;
            w->g[i][l] = w->ws[i][l] - gi + ha * (1 - 2 * p);
            Hi[i][l] = hd + c;
        }
    }
}

/* H = U^T U in place (upper triangle), right-looking, two columns per pass
 * over the trailing matrix (half the stores; the same operations in the same
 * order as one column at a time). The pivot floor is joust_bt_fit's: H is
 * positive definite in exact arithmetic (the prior). */
static INLINE void chol_col(work_t *w, uint32_t n, uint32_t j, const vd *dg)
{
    vd *Aj = w->H + (size_t)j * n;
    vd floor_ = 1e-14 * (vabs(dg[j]) + DBL_MIN);
    vd u = vsqrt(vmax(Aj[j], floor_)), iv = 1.0 / u;
    Aj[j] = u;
    w->iu[j] = iv;
    for (uint32_t k = j + 1; k < n; k++)
        Aj[k] *= iv;
}

static INLINE void cholesky(work_t *w, uint32_t n)
{
    vd *A = w->H, *dg = w->acc1;
    for (uint32_t k = 0; k < n; k++)
        dg[k] = A[(size_t)k * n + k];
    uint32_t j = 0;
    for (; j + 1 < n; j += 2) {
        vd *Aj = A + (size_t)j * n, *Aj1 = Aj + n;
        chol_col(w, n, j, dg);
        vd p1 = Aj[j + 1];
        for (uint32_t k = j + 1; k < n; k++)
            Aj1[k] -= p1 * Aj[k];
        chol_col(w, n, j + 1, dg);
        for (uint32_t i = j + 2; i < n; i++) {
            vd *Ai = A + (size_t)i * n, p = Aj[i], q = Aj1[i];
            for (uint32_t k = i; k < n; k++)
                Ai[k] = Ai[k] - p * Aj[k] - q * Aj1[k];
        }
    }
    if (j < n)
        chol_col(w, n, j, dg);
}

/* d = H^-1 g from the factor; no reductions, only multiply-subtracts. */
static INLINE void chol_solve(work_t *w, uint32_t n)
{
    const vd *U = w->H;
    vd *b = w->acc1, *x = w->d;
    memcpy(b, w->g, n * sizeof *b);
    for (uint32_t j = 0; j < n; j++) { /* U^T y = g, y in b */
        const vd *Uj = U + (size_t)j * n;
        vd y = b[j] * w->iu[j];
        b[j] = y;
        for (uint32_t k = j + 1; k < n; k++)
            b[k] -= Uj[k] * y;
    }
    for (uint32_t k = n; k-- > 0;) { /* U x = y, column by column */
        vd xk = b[k] * w->iu[k];
        x[k] = xk;
        for (uint32_t i = 0; i < k; i++)
            b[i] -= U[(size_t)i * n + k] * xk;
    }
}

/* out[i] = sqrt(diag(H^-1)_i) = |U^-T e_i|. */
static INLINE void chol_inv_diag_sqrt(work_t *w, uint32_t n, vd *out)
{
    const vd *U = w->H;
    vd *b = w->acc1;
    for (uint32_t i = 0; i < n; i++) {
        vd ss = vsplat(0);
        for (uint32_t k = i; k < n; k++)
            b[k] = vsplat(k == i);
        for (uint32_t j = i; j < n; j++) {
            const vd *Uj = U + (size_t)j * n;
            vd y = b[j] * w->iu[j];
            ss += y * y;
            for (uint32_t k = j + 1; k < n; k++)
                b[k] -= Uj[k] * y;
        }
        out[i] = vsqrt(ss);
    }
}

/* Upper bound on the loss of the quadratic model at the whole step d:
 * f(th) + g.d - f(th + d) <= sum over terms c sigma'(u) phi(|delta u|),
 * phi(x) = e^x - 1 - x, since each term's curvature grows at most like
 * e^|delta u| along the step. Uses the lower triangle and pc left by
 * grad_hess/cholesky; costs n exponentials, not the objective's n^2 logs.
 * Lanes with an infinite step give inf or NaN (never accepted). */
static INLINE vd step_bound(work_t *w, uint32_t n)
{
    vd *D = w->acc1, *Di = w->acc2, b = vsplat(0);
    for (uint32_t k = 0; k < n; k++) {
        D[k] = vexp(w->d[k]);
        Di[k] = 1.0 / D[k];
        b += w->pc[k] * (vmax(D[k], Di[k]) - 1 - vabs(w->d[k]));
    }
    for (uint32_t i = 1; i < n; i++) {
        const vd *Hi = w->H + (size_t)i * n;
        for (uint32_t j = 0; j < i; j++) {
            vd e = vmax(D[i] * Di[j], D[j] * Di[i]);
            b -= Hi[j] * (e - 1 - vabs(w->d[i] - w->d[j]));
        }
    }
    return b;
}

/* slope = g.d, amax = max |d_k|, rr = max(amax, max d - min d), one lane. */
static INLINE void lane_stats(const work_t *w, uint32_t n, int l, double *slope, double *amax, double *rr)
{
    double sl = 0, a = 0, hi = w->d[0][l], lo = hi;
    for (uint32_t k = 0; k < n; k++) {
        double x = w->d[k][l];
        sl += w->g[k][l] * x;
        a = MAX(a, fabs(x));
        hi = MAX(hi, x);
        lo = MIN(lo, x);
    }
    *slope = sl;
    *amax = a;
    *rr = MAX(a, hi - lo);
}

static INLINE void lane_scale_d(work_t *w, uint32_t n, int l, double c)
{
    for (uint32_t k = 0; k < n; k++)
        w->d[k][l] *= c;
}

/* After a whole Newton step d from theta (r = max over terms |delta u|,
 * slope = g.d = d'Hd), a bound on every component of the NEXT Newton step,
 * so that the iteration that would only confirm convergence can be skipped.
 * Each term's curvature changes by a factor within e^(+-r t) along the step,
 * so the new gradient has ||g+||_{H^-1} <= phi(r) sqrt(slope) with
 * phi(r) = (e^r - 1 - r) / r, the new Hessian is >= e^-r H, and
 * (H^-1)_ii <= 1 / pc_i because the pair part of H is positive semidefinite:
 * |d+_i| <= e^r phi(r) sqrt(slope) / sqrt(min_k pc_k). */
static double next_step_bound(double r, double slope, double pcmin)
{
    if (!(r > 0 && slope > 0 && pcmin > 0))
        return INFINITY;
    double phi = (expm1(r) - r) / r;
    return exp(r) * phi * sqrt(slope / pcmin) * (1 + 1e-6); /* margin for rounding */
}

enum { MODE_FROZEN = 0, MODE_WHOLE = 1, MODE_SEARCH = 2 };

/* Damped Newton on every live lane until each stops on tol (an applied step
 * with max |delta theta| < tol), on exact stationarity, on a failed line
 * search (no ascent left at double precision) or on max_iter. */
static INLINE void newton_batch(work_t *w, uint32_t n, double ha, const joust_bt_opts *o, lane_t *ln)
{
    for (int it = 1; it <= o->max_iter; it++) {
        int active = 0;
        for (int l = 0; l < LANES; l++)
            active |= !ln[l].done;
        if (!active)
            break;
        grad_hess(w, n, ha);
        cholesky(w, n);
        chol_solve(w, n);

        int mode[LANES], capped_dir[LANES], pure[LANES], need_bound = 0, need_search = 0;
        double slope[LANES], amax[LANES], rr[LANES];
        for (int l = 0; l < LANES; l++) {
            mode[l] = MODE_FROZEN;
            capped_dir[l] = 0;
            pure[l] = 1; /* d is the Newton step itself */
            slope[l] = amax[l] = rr[l] = 0;
            if (ln[l].done)
                continue;
            ln[l].iters = it;
            lane_stats(w, n, l, &slope[l], &amax[l], &rr[l]);
            if (!(isfinite(slope[l]) && slope[l] > 0 && isfinite(amax[l]))) {
                /* Saturated far from the optimum (a warm start at |theta| in
                 * the hundreds): the Hessian is numerically singular. Go
                 * uphill, with a long first trial since f is near linear. */
                for (uint32_t k = 0; k < n; k++)
                    w->d[k][l] = w->g[k][l];
                pure[l] = 0;
                lane_stats(w, n, l, &slope[l], &amax[l], &rr[l]);
                if (rr[l] > 0 && rr[l] < ln[l].cap) {
                    double c = ln[l].cap / rr[l];
                    lane_scale_d(w, n, l, c);
                    slope[l] *= c;
                    amax[l] *= c;
                    rr[l] = ln[l].cap;
                }
            }
            if (!(amax[l] > 0) || !isfinite(slope[l])) { /* exactly stationary */
                ln[l].step = 0;
                ln[l].done = ln[l].stopped = 1;
                continue;
            }
            capped_dir[l] = rr[l] >= ln[l].cap;
            if (rr[l] > ln[l].cap) { /* the line search starts from a sane length */
                pure[l] = 0;
                double c = ln[l].cap / rr[l];
                lane_scale_d(w, n, l, c);
                slope[l] *= c;
                amax[l] *= c;
                rr[l] = ln[l].cap;
            }
            mode[l] = rr[l] <= SAFE_R ? MODE_WHOLE : MODE_SEARCH;
            need_bound |= mode[l] == MODE_SEARCH;
        }
        if (need_bound) {
            vd b = step_bound(w, n);
            for (int l = 0; l < LANES; l++)
                if (mode[l] == MODE_SEARCH && b[l] <= 0.99 * slope[l])
                    mode[l] = MODE_WHOLE; /* gain >= 0.01 slope, proven */
        }

        double t[LANES];
        vl whole;
        for (int l = 0; l < LANES; l++) {
            t[l] = 1;
            whole[l] = mode[l] == MODE_WHOLE ? -1 : 0;
            need_search |= mode[l] == MODE_SEARCH;
        }
        for (uint32_t k = 0; k < n; k++) /* masked: other lanes' d may be inf */
            w->th[k] += (vd)((vl)w->d[k] & whole);
        for (int l = 0; l < LANES; l++)
            if (mode[l] == MODE_WHOLE) {
                ln[l].f_ok = 0;
                ln[l].cap = STEP_CAP;
            }

        if (need_search) { /* backtracking on the objective, joust_bt_fit's test */
            for (int l = 0; l < LANES; l++)
                if (mode[l] == MODE_SEARCH && !ln[l].f_ok)
                    ln[l].f = objective_lane(w, n, ha, w->th, l);
            for (int l = 0; l < LANES; l++) {
                if (mode[l] != MODE_SEARCH)
                    continue;
                double f = ln[l].f, slack = 1e-12 * (1 + fabs(f)), fn = f;
                int accepted = 0;
                for (int ls = 0; ls < 60; ls++, t[l] *= 0.5) {
                    for (uint32_t k = 0; k < n; k++)
                        w->tn[k][l] = w->th[k][l] + t[l] * w->d[k][l];
                    fn = objective_lane(w, n, ha, w->tn, l);
                    if (fn >= f + 1e-4 * t[l] * slope[l] - slack) {
                        accepted = 1;
                        break;
                    }
                }
                if (!accepted) { /* no ascent left at double precision */
                    ln[l].step = 0;
                    ln[l].done = ln[l].stopped = 1;
                    mode[l] = MODE_FROZEN;
                    continue;
                }
                for (uint32_t k = 0; k < n; k++)
                    w->th[k][l] = w->tn[k][l];
                ln[l].f = fn;
                ln[l].f_ok = 1;
                /* a whole capped step was accepted: the cap, not f, limited it */
                ln[l].cap = capped_dir[l] && t[l] == 1 ? 2 * ln[l].cap : STEP_CAP;
            }
        }
        vd pcmin = w->pc[0];
        for (uint32_t k = 1; k < n; k++)
            pcmin = vmin(pcmin, w->pc[k]);
        for (int l = 0; l < LANES; l++) {
            if (mode[l] == MODE_FROZEN)
                continue;
            ln[l].step = t[l] * amax[l];
            if (ln[l].step < o->tol) {
                ln[l].done = ln[l].stopped = 1;
            } else if (mode[l] == MODE_WHOLE && pure[l]) {
                double nb = next_step_bound(rr[l], slope[l], pcmin[l]);
                if (nb < o->tol) { /* the step that would come next is below tol */
                    ln[l].step = nb;
                    ln[l].done = ln[l].stopped = 1;
                }
            }
        }
    }
}

static void mark_bad(acc_t *acc, uint32_t p)
{
    acc->bad++;
    if (p < acc->first_bad)
        acc->first_bad = p;
}

typedef struct {
    const joust_bt_problem *pb;
    const joust_bt_opts *o;
    int warm;
    double *theta, *se;
    atomic_uint_fast64_t *next;
    acc_t acc;
} worker_t;

static INLINE void lane_clear(work_t *w, uint32_t n, int l)
{
    for (size_t k = 0; k < (size_t)n * n; k++)
        w->N[k][l] = 0;
    for (uint32_t k = 0; k < n; k++)
        w->ws[k][l] = w->th[k][l] = 0;
}

/* Sums lane l's edges into N and ws; 0, or -1 for a bad edge or warm theta. */
static INLINE int lane_load(const worker_t *wk, work_t *w, uint32_t n, int l, lane_t *ln)
{
    const joust_bt_problem *pb = wk->pb;
    const joust_bt_edge32 *e = pb->edges + pb->edge_off[ln->p];
    const float *wt = pb->w ? pb->w + pb->edge_off[ln->p] : NULL;
    uint64_t m = pb->edge_off[ln->p + 1] - pb->edge_off[ln->p];
    double clip = wk->o->clip, hi = 1 - wk->o->clip;
    uint64_t used = 0;
    vd *N = w->N, *ws = w->ws;
    /* N is kept in its lower triangle only (row max(a,b), column min). */
    if (!wt) { /* the common case, weight 1: no weight loads or products */
        for (uint64_t k = 0; k < m; k++) {
            uint32_t a = e[k].a, b = e[k].b;
            float sf = e[k].s;
            if ((a >= n) | (b >= n) | (a == b) | !(sf >= 0) | !(sf <= 1))
                return -1;
            double sd = sf; /* branch-free clip */
            sd = sd < clip ? clip : sd;
            sd = sd > hi ? hi : sd;
            uint32_t lo = a < b ? a : b, up = a ^ b ^ lo;
            N[(size_t)up * n + lo][l] += 1.0;
            ws[a][l] += sd;
            ws[b][l] += 1 - sd;
            used |= (1ull << a) | (1ull << b);
        }
    } else {
        for (uint64_t k = 0; k < m; k++) {
            uint32_t a = e[k].a, b = e[k].b;
            float sf = e[k].s, wf = wt[k];
            if ((a >= n) | (b >= n) | (a == b) | !(sf >= 0) | !(sf <= 1) | !(wf > 0) |
                !(wf <= FLT_MAX))
                return -1;
            double sd = sf, wd = wf;
            sd = sd < clip ? clip : sd;
            sd = sd > hi ? hi : sd;
            uint32_t lo = a < b ? a : b, up = a ^ b ^ lo;
            N[(size_t)up * n + lo][l] += wd;
            ws[a][l] += wd * sd;
            ws[b][l] += wd * (1 - sd);
            used |= (1ull << a) | (1ull << b);
        }
    }
    const double *th0 = wk->theta + pb->item_off[ln->p];
    for (uint32_t i = 0; wk->warm && i < n; i++)
        if (!isfinite(th0[i]))
            return -1;
    /* Items without edges stay exactly at 0: their gradient is exactly 0 and
     * their rows of H are zero off the diagonal, so the step leaves them. */
    for (uint32_t i = 0; i < n; i++)
        w->th[i][l] = wk->warm && (used >> i & 1) ? th0[i] : 0.0;
    ln->used = used;
    return 0;
}

/* Up to LANES prompts of n (2..SMALL) images each. */
KERNEL_CLONES static void fit_batch(worker_t *wk, work_t *w, const uint32_t *prompts, int cnt, uint32_t n)
{
    const joust_bt_opts *o = wk->o;
    double ha = 0.5 * o->prior_games;
    lane_t ln[LANES];
    memset(w->N, 0, (size_t)n * n * sizeof *w->N);
    memset(w->ws, 0, n * sizeof *w->ws);
    int live = 0;
    for (int l = 0; l < LANES; l++) {
        ln[l] = (lane_t){0, 0, 1, 0, 1, 0, 0, STEP_CAP, 0, 0};
        if (l >= cnt)
            continue;
        ln[l].p = prompts[l];
        if (lane_load(wk, w, n, l, &ln[l]) != 0) {
            mark_bad(&wk->acc, ln[l].p);
            lane_clear(w, n, l);
            continue;
        }
        ln[l].live = 1;
        ln[l].done = ln[l].stopped = !ln[l].used; /* no edges: theta 0, nothing to fit */
        live++;
    }
    for (int l = cnt; l < LANES; l++)
        lane_clear(w, n, l);
    if (!live)
        return;
    newton_batch(w, n, ha, o, ln);
    if (wk->warm) {
        /* A warm start far out in the saturated region (|theta| in the
         * hundreds) can crawl; lanes that hit max_iter start again from the
         * known-good cold start, counting the iterations of both runs. */
        int first[LANES], again = 0;
        for (int l = 0; l < LANES; l++) {
            first[l] = 0;
            if (!ln[l].live || ln[l].stopped)
                continue;
            first[l] = ln[l].iters;
            for (uint32_t i = 0; i < n; i++)
                w->th[i][l] = 0;
            ln[l].done = ln[l].f_ok = 0;
            ln[l].cap = STEP_CAP;
            again = 1;
        }
        if (again) {
            newton_batch(w, n, ha, o, ln);
            for (int l = 0; l < LANES; l++)
                ln[l].iters += first[l];
        }
    }

    vd *sev = w->tn;
    if (wk->se) { /* the factor at the returned theta */
        grad_hess(w, n, ha);
        cholesky(w, n);
        chol_inv_diag_sqrt(w, n, sev);
    }
    double se_alone = 2.0 / sqrt(o->prior_games);
    for (int l = 0; l < LANES; l++) {
        if (!ln[l].live)
            continue;
        uint64_t base = wk->pb->item_off[ln[l].p];
        for (uint32_t i = 0; i < n; i++)
            wk->theta[base + i] = w->th[i][l];
        if (wk->se)
            for (uint32_t i = 0; i < n; i++)
                wk->se[base + i] = ln[l].used >> i & 1 ? sev[i][l] : se_alone;
        acc_t *a = &wk->acc;
        a->fitted++;
        a->iters_total += (uint64_t)ln[l].iters;
        a->iters_max = MAX(a->iters_max, ln[l].iters);
        a->max_step = MAX(a->max_step, ln[l].step);
        a->capped += !ln[l].stopped;
    }
}

static void fit_tiny(worker_t *wk, uint32_t p, uint32_t n)
{
    /* n <= 1: no edge can be valid; theta 0 and the prior's se */
    const joust_bt_problem *pb = wk->pb;
    uint64_t base = pb->item_off[p];
    if (pb->edge_off[p + 1] > pb->edge_off[p] ||
        (wk->warm && n == 1 && !isfinite(wk->theta[base]))) {
        mark_bad(&wk->acc, p);
        return;
    }
    if (n == 1) {
        wk->theta[base] = 0;
        if (wk->se)
            wk->se[base] = 2.0 / sqrt(wk->o->prior_games);
    }
    wk->acc.fitted++;
}

static void fit_large(worker_t *wk, uint32_t p, uint64_t n, joust_bt_edge **buf, size_t *cap)
{
    const joust_bt_problem *pb = wk->pb;
    acc_t *acc = &wk->acc;
    uint64_t e0 = pb->edge_off[p], m = pb->edge_off[p + 1] - e0, base = pb->item_off[p];
    if (n > UINT32_MAX || m > SIZE_MAX / sizeof **buf) {
        mark_bad(acc, p);
        return;
    }
    xgrow((void **)buf, cap, (size_t)m, sizeof **buf);
    for (uint64_t k = 0; k < m; k++) {
        const joust_bt_edge32 *x = &pb->edges[e0 + k];
        (*buf)[k] = (joust_bt_edge){x->a, x->b, x->s, pb->w ? pb->w[e0 + k] : 1.0};
    }
    int it = 0;
    if (joust_bt_fit((uint32_t)n, *buf, (size_t)m, wk->o, wk->warm, wk->theta + base,
                     wk->se ? wk->se + base : NULL, &it) != 0) {
        mark_bad(acc, p);
        return;
    }
    acc->fitted++;
    acc->large++;
    acc->iters_total += (uint64_t)it;
    acc->iters_max = MAX(acc->iters_max, it);
    acc->capped += it >= wk->o->max_iter;
}

/* ---- threads ---------------------------------------------------------- */

static void *worker(void *arg)
{
    worker_t *wk = arg;
    const joust_bt_problem *pb = wk->pb;
    joust_bt_edge *buf = NULL;
    size_t cap = 0, wsize = (sizeof(work_t) + 63) / 64 * 64;
    work_t *w = aligned_alloc(64, wsize);
    if (!w)
        abort(); /* the xalloc policy */
    uint32_t ord[CHUNK], count[SMALL + 2];
    for (;;) {
        uint64_t c0 = atomic_fetch_add(wk->next, CHUNK);
        if (c0 >= pb->n_prompts)
            break;
        uint32_t c1 = (uint32_t)(c0 + CHUNK < pb->n_prompts ? c0 + CHUNK : pb->n_prompts);
        /* chunk's prompts by size (stable), so equal sizes share batches */
        memset(count, 0, sizeof count);
        for (uint32_t p = (uint32_t)c0; p < c1; p++) {
            uint64_t n = pb->item_off[p + 1] - pb->item_off[p];
            count[n > SMALL ? SMALL + 1 : n]++;
        }
        uint32_t start[SMALL + 2], s = 0;
        for (int k = 0; k < SMALL + 2; k++) {
            start[k] = s;
            s += count[k];
        }
        for (uint32_t p = (uint32_t)c0; p < c1; p++) {
            uint64_t n = pb->item_off[p + 1] - pb->item_off[p];
            ord[start[n > SMALL ? SMALL + 1 : n]++] = p;
        }
        uint32_t cnt = c1 - (uint32_t)c0;
        for (uint32_t i = 0; i < cnt;) {
            uint32_t p = ord[i];
            uint64_t n = pb->item_off[p + 1] - pb->item_off[p];
            if (n > SMALL) {
                fit_large(wk, p, n, &buf, &cap);
                i++;
            } else if (n <= 1) {
                fit_tiny(wk, p, (uint32_t)n);
                i++;
            } else {
                uint32_t j = i + 1;
                while (j < cnt && j - i < LANES &&
                       pb->item_off[ord[j] + 1] - pb->item_off[ord[j]] == n)
                    j++;
                fit_batch(wk, w, ord + i, (int)(j - i), (uint32_t)n);
                i = j;
            }
        }
    }
    free(w);
    free(buf);
    return NULL;
}

int joust_bt_fit_bulk(const joust_bt_problem *pb, const joust_bt_opts *o, int threads, int warm,
                      double *theta, double *se, joust_bt_bulk_stats *stats)
{
    int64_t t0 = joust_now_us();
    joust_bt_opts defaults;
    if (!o) {
        joust_bt_opts_defaults(&defaults);
        o = &defaults;
    }
    if (!pb || !opts_ok(o) || !pb->item_off || !pb->edge_off)
        return JOUST_EINVAL;
    for (uint32_t p = 0; p < pb->n_prompts; p++)
        if (pb->item_off[p + 1] < pb->item_off[p] || pb->edge_off[p + 1] < pb->edge_off[p])
            return JOUST_EINVAL;
    uint32_t np = pb->n_prompts;
    if ((pb->edge_off[np] > pb->edge_off[0] && !pb->edges) ||
        (pb->item_off[np] > pb->item_off[0] && !theta))
        return JOUST_EINVAL;

    uint64_t chunks = ((uint64_t)np + CHUNK - 1) / CHUNK;
    if (threads < 1)
        threads = 1;
    if ((uint64_t)threads > chunks)
        threads = chunks ? (int)chunks : 1;
    if (threads > 256)
        threads = 256;
    atomic_uint_fast64_t next = 0;
    worker_t *wk = xcalloc((size_t)threads, sizeof *wk);
    pthread_t *tid = xcalloc((size_t)threads, sizeof *tid);
    for (int t = 0; t < threads; t++)
        wk[t] = (worker_t){pb, o, warm, theta, se, &next, {0, 0, 0, 0, 0, 0, 0, UINT32_MAX}};
    int started = 1; /* worker 0 runs on the calling thread */
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, worker, &wk[t]) != 0)
            break; /* fewer threads: the counter hands their prompts to the rest */
        started++;
    }
    worker(&wk[0]);
    for (int t = 1; t < started; t++)
        pthread_join(tid[t], NULL);

    acc_t a = {0, 0, 0, 0, 0, 0, 0, UINT32_MAX};
    for (int t = 0; t < threads; t++) {
        acc_t *x = &wk[t].acc;
        a.max_step = MAX(a.max_step, x->max_step);
        a.iters_total += x->iters_total;
        a.iters_max = MAX(a.iters_max, x->iters_max);
        a.fitted += x->fitted;
        a.capped += x->capped;
        a.large += x->large;
        a.bad += x->bad;
        a.first_bad = MIN(a.first_bad, x->first_bad);
    }
    free(tid);
    free(wk);
    if (stats)
        *stats = (joust_bt_bulk_stats){a.max_step, a.iters_total, a.iters_max, a.fitted,
                                       a.capped, a.large, a.bad, a.first_bad,
                                       (double)(joust_now_us() - t0) * 1e-6};
    return a.bad ? JOUST_EINVAL : 0;
}
