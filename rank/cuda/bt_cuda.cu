// Bulk soft Bradley-Terry on the GPU: one warp per prompt, lane i owns image
// i (prompts of 2..32 images). The algorithm is bt_bulk.c's, step for step:
// pair-weight matrix and soft wins from the edges, damped Newton with a dense
// Cholesky (rows spread over the lanes), whole steps proven by the
// self-concordance bounds or else Armijo backtracking, the next-step
// certificate, a cold restart for warm starts that hit max_iter. See
// bt_cuda.h for the contract and bt_bulk.c for the derivations.
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

extern "C" {
#include "bt.h"
#include "bt_bulk.h"
#include "bt_cuda.h"
#include "clock.h"
#include "err.h"
}

namespace {

constexpr unsigned FULL = 0xffffffffu;
constexpr int WARP = 32;
constexpr int LD = WARP + 1; // padded rows: no shared-memory bank conflicts
constexpr double SAFE_R = 1.5;
constexpr double STEP_CAP = 30.0;
constexpr double EXP_RANGE = 600.0;

enum : int { ST_OK = 0, ST_BAD = 1, ST_HOST = 2 };

struct KParams {
    double clip, ha, tol;
    int max_iter, warm, want_se;
};

__device__ __forceinline__ double wsum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(FULL, v, o);
    return v;
}

__device__ __forceinline__ double wmax(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmax(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

__device__ __forceinline__ double wmin(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmin(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

__device__ __forceinline__ double dsigmoid(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}

struct Warp {
    int n, i;
    double *N, *H, *th, *tn, *ex, *b, *d, *iu;
    double ws; // soft wins of image i
};

// Row i of g and the negative Hessian H at th; returns g_i, sets *pc.
__device__ double grad_hess(const Warp &w, double ha, double *pc)
{
    int n = w.n, i = w.i;
    bool act = i < n;
    double ti = act ? w.th[i] : 0;
    double hi = wmax(act ? ti : -INFINITY), lo = wmin(act ? ti : INFINITY);
    double g = 0, c = 0;
    __syncwarp(); // every lane is done reading ex and H from the last pass
    if (hi - lo < EXP_RANGE) {
        double exi = exp(ti - hi);
        if (act)
            w.ex[i] = exi;
        __syncwarp();
        if (act) {
            double E = exp(-hi), gacc = 0, hd = 0;
            for (int j = 0; j < n; j++) {
                double inv = 1.0 / (exi + w.ex[j]);
                double nq = w.N[i * LD + j] * exi * inv, h = nq * w.ex[j] * inv;
                w.H[i * LD + j] = -h;
                gacc += nq;
                hd += h;
            }
            double p = exi / (exi + E);
            c = 2 * ha * p * (1 - p);
            g = w.ws - gacc + ha * (1 - 2 * p);
            w.H[i * LD + i] = hd + c;
        }
    } else if (act) { // very wide range: a sigmoid per pair
        double gacc = 0, hd = 0;
        for (int j = 0; j < n; j++) {
            double q = dsigmoid(ti - w.th[j]), nq = w.N[i * LD + j] * q, h = nq * (1 - q);
            w.H[i * LD + j] = -h;
            gacc += nq;
            hd += h;
        }
        double p = dsigmoid(ti);
        c = 2 * ha * p * (1 - p);
        g = w.ws - gacc + ha * (1 - 2 * p);
        w.H[i * LD + i] = hd + c;
    }
    __syncwarp();
    *pc = c;
    return g;
}

// H = U^T U in the upper triangle; the strict lower triangle keeps H.
__device__ void cholesky(const Warp &w)
{
    int n = w.n, i = w.i;
    double dg = i < n ? w.H[i * LD + i] : 0;
    for (int j = 0; j < n; j++) {
        if (i == j) {
            double fl = 1e-14 * (fabs(dg) + DBL_MIN), v = w.H[j * LD + j];
            double u = sqrt(v > fl ? v : fl);
            w.H[j * LD + j] = u;
            w.iu[j] = 1.0 / u;
        }
        __syncwarp();
        if (i > j && i < n)
            w.H[j * LD + i] *= w.iu[j];
        __syncwarp();
        if (i > j && i < n) {
            double p = w.H[j * LD + i];
            for (int k = i; k < n; k++)
                w.H[i * LD + k] -= p * w.H[j * LD + k];
        }
        __syncwarp();
    }
}

// d = H^-1 g (g_i given per lane); returns d_i.
__device__ double solve(const Warp &w, double gi)
{
    int n = w.n, i = w.i;
    if (i < n)
        w.b[i] = gi;
    __syncwarp();
    for (int j = 0; j < n; j++) {
        if (i == j)
            w.b[j] *= w.iu[j];
        __syncwarp();
        if (i > j && i < n)
            w.b[i] -= w.H[j * LD + i] * w.b[j];
        __syncwarp();
    }
    for (int k = n - 1; k >= 0; k--) {
        if (i == k)
            w.d[k] = w.b[k] * w.iu[k];
        __syncwarp();
        if (i < k)
            w.b[i] -= w.H[i * LD + k] * w.d[k];
        __syncwarp();
    }
    return i < n ? w.d[i] : 0;
}

__device__ double objective(const Warp &w, const double *x, double ha)
{
    int n = w.n, i = w.i;
    double f = 0;
    if (i < n) {
        double xi = x[i], a = fabs(xi);
        f = w.ws * xi + ha * (-a - 2 * log1p(exp(-a)));
        for (int j = 0; j < i; j++) {
            double c = w.N[i * LD + j];
            if (c != 0)
                f -= c * (fmax(xi, x[j]) + log1p(exp(-fabs(xi - x[j]))));
        }
    }
    return wsum(f);
}

// Upper bound on f(th) + g.d - f(th + d) (bt_bulk.c step_bound).
__device__ double step_bound(const Warp &w, double di, double pci)
{
    int n = w.n, i = w.i;
    double bsum = 0;
    if (i < n) {
        double a = fabs(di);
        bsum = pci * (expm1(a) - a);
        for (int j = 0; j < i; j++) {
            double x = fabs(di - w.d[j]);
            bsum -= w.H[i * LD + j] * (expm1(x) - x);
        }
    }
    return wsum(bsum);
}

struct Result {
    int iters, stopped;
    double step;
};

// Damped Newton from th; the whole warp returns the same Result.
__device__ Result newton(const Warp &w, const KParams &P)
{
    int n = w.n, i = w.i;
    bool act = i < n;
    Result r = {0, 0, 0};
    double f = 0, cap = STEP_CAP;
    bool f_ok = false;
    for (int it = 1; it <= P.max_iter; it++) {
        r.iters = it;
        double pc, g = grad_hess(w, P.ha, &pc);
        cholesky(w);
        double d = solve(w, g);
        bool pure = true;
        double slope = wsum(act ? g * d : 0), amax = wmax(act ? fabs(d) : 0);
        double dhi = wmax(act ? d : -INFINITY), dlo = wmin(act ? d : INFINITY);
        double rr = fmax(amax, dhi - dlo);
        if (!(isfinite(slope) && slope > 0 && isfinite(amax))) { // saturated: uphill
            d = act ? g : 0;
            pure = false;
            slope = wsum(act ? g * d : 0);
            amax = wmax(act ? fabs(d) : 0);
            dhi = wmax(act ? d : -INFINITY);
            dlo = wmin(act ? d : INFINITY);
            rr = fmax(amax, dhi - dlo);
            if (rr > 0 && rr < cap) {
                double c = cap / rr;
                d *= c, slope *= c, amax *= c, rr = cap;
            }
        }
        if (!(amax > 0) || !isfinite(slope)) { // exactly stationary
            r.step = 0;
            r.stopped = 1;
            break;
        }
        bool capped_dir = rr >= cap;
        if (rr > cap) {
            double c = cap / rr;
            d *= c, slope *= c, amax *= c, rr = cap;
            pure = false;
        }
        if (act)
            w.d[i] = d;
        __syncwarp();
        bool whole = rr <= SAFE_R || step_bound(w, d, pc) <= 0.99 * slope;
        double t = 1;
        if (whole) {
            if (act)
                w.th[i] += d;
            f_ok = false;
            cap = STEP_CAP;
        } else {
            if (!f_ok)
                f = objective(w, w.th, P.ha);
            double slack = 1e-12 * (1 + fabs(f)), fn = f;
            bool accepted = false;
            for (int ls = 0; ls < 60; ls++, t *= 0.5) {
                __syncwarp(); // every lane is done reading tn
                if (act)
                    w.tn[i] = w.th[i] + t * d;
                __syncwarp();
                fn = objective(w, w.tn, P.ha);
                if (fn >= f + 1e-4 * t * slope - slack) {
                    accepted = true;
                    break;
                }
            }
            if (!accepted) {
                r.step = 0;
                r.stopped = 1;
                break;
            }
            if (act)
                w.th[i] = w.tn[i];
            f = fn;
            f_ok = true;
            cap = capped_dir && t == 1 ? 2 * cap : STEP_CAP;
        }
        __syncwarp();
        r.step = t * amax;
        if (r.step < P.tol) {
            r.stopped = 1;
            break;
        }
        if (whole && pure) { // bt_bulk.c next_step_bound
            double pcmin = wmin(act ? pc : INFINITY);
            if (rr > 0 && slope > 0 && pcmin > 0) {
                double nb = exp(rr) * ((expm1(rr) - rr) / rr) * sqrt(slope / pcmin) * (1 + 1e-6);
                if (nb < P.tol) {
                    r.step = nb;
                    r.stopped = 1;
                    break;
                }
            }
        }
    }
    return r;
}

__global__ void __launch_bounds__(WARP)
bt_warp_kernel(uint64_t p0, uint32_t np, const uint64_t *item_off, const uint64_t *edge_off,
               const joust_bt_edge32 *edges, const float *wts, KParams P, double *theta,
               double *se, int *iters, double *step, int *status, int *capped)
{
    __shared__ double N[WARP * LD], H[WARP * LD];
    __shared__ double th[WARP], tn[WARP], ex[WARP], bb[WARP], dd[WARP], iu[WARP];
    uint64_t p = p0 + blockIdx.x;
    if (p >= np)
        return;
    int i = threadIdx.x;
    uint64_t base = item_off[p], nn = item_off[p + 1] - base;
    if (nn < 2 || nn > WARP) {
        if (i == 0)
            status[p] = ST_HOST;
        return;
    }
    int n = (int)nn;
    bool act = i < n;
    Warp w = {n, i, N, H, th, tn, ex, bb, dd, iu, 0};

    // Lane i sums the edges of image i into row i (every lane reads every
    // edge, a broadcast): deterministic, no atomics.
    if (act)
        for (int k = 0; k < n; k++)
            N[i * LD + k] = 0;
    int bad = 0;
    double clip = P.clip, hic = 1 - P.clip;
    for (uint64_t k = edge_off[p]; k < edge_off[p + 1]; k++) {
        joust_bt_edge32 e = edges[k];
        float wf = wts ? wts[k] : 1.0f;
        if (e.a >= (uint32_t)n || e.b >= (uint32_t)n || e.a == e.b || !(e.s >= 0 && e.s <= 1) ||
            !(wf > 0 && wf <= FLT_MAX)) {
            bad = 1;
            break;
        }
        double sd = e.s, wd = wf;
        sd = sd < clip ? clip : sd > hic ? hic : sd;
        if ((int)e.a == i) {
            N[i * LD + e.b] += wd;
            w.ws += wd * sd;
        } else if ((int)e.b == i) {
            N[i * LD + e.a] += wd;
            w.ws += wd * (1 - sd);
        }
    }
    bool used = false;
    if (act)
        for (int k = 0; k < n; k++)
            used |= N[i * LD + k] > 0;
    double t0 = 0;
    if (act && P.warm) {
        t0 = theta[base + i];
        bad |= !isfinite(t0);
    }
    if (__any_sync(FULL, bad)) {
        if (i == 0)
            status[p] = ST_BAD;
        return;
    }
    if (act)
        th[i] = P.warm && used ? t0 : 0.0;
    __syncwarp();

    Result r = {0, 1, 0};
    if (__any_sync(FULL, used)) {
        r = newton(w, P);
        if (P.warm && !r.stopped) { // far-off warm start: the cold start
            int first = r.iters;
            if (act)
                th[i] = 0;
            __syncwarp();
            r = newton(w, P);
            r.iters += first;
        }
    }
    if (act)
        theta[base + i] = used ? th[i] : 0.0;
    if (P.want_se) {
        double pc;
        grad_hess(w, P.ha, &pc);
        cholesky(w);
        double mine = 0; // se of image i, found on the i-th pass
        for (int c = 0; c < n; c++) { // |U^-T e_c|
            __syncwarp();
            if (i >= c && i < n)
                bb[i] = i == c;
            __syncwarp();
            double ss = 0;
            for (int j = c; j < n; j++) {
                if (i == j)
                    bb[j] *= iu[j];
                __syncwarp();
                double y = bb[j];
                ss += y * y;
                if (i > j && i < n)
                    bb[i] -= H[j * LD + i] * y;
                __syncwarp();
            }
            if (i == c)
                mine = sqrt(ss);
        }
        if (act)
            se[base + i] = used ? mine : 2.0 / sqrt(2 * P.ha);
    }
    if (i == 0) {
        status[p] = ST_OK;
        iters[p] = r.iters;
        step[p] = r.step;
        capped[p] = !r.stopped;
    }
}

struct Dev {
    std::vector<void *> ptrs;
    ~Dev()
    {
        for (void *p : ptrs)
            cudaFree(p);
    }
    template <class T> T *alloc(size_t n)
    {
        void *p = nullptr;
        if (cudaMalloc(&p, n ? n * sizeof(T) : 1) != cudaSuccess)
            return nullptr;
        ptrs.push_back(p);
        return static_cast<T *>(p);
    }
};

int opts_ok(const joust_bt_opts *o)
{
    return std::isfinite(o->prior_games) && o->prior_games > 0 && o->max_iter >= 1 &&
           std::isfinite(o->tol) && o->tol >= 0 && o->clip >= 0 && o->clip < 0.5;
}

} // namespace

extern "C" int joust_bt_cuda_available(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return count > 0;
}

extern "C" int joust_bt_fit_bulk_cuda(const joust_bt_problem *pb, const joust_bt_opts *o,
                                      int warm, double *theta, double *se,
                                      joust_bt_bulk_stats *stats)
{
    int64_t t_start = joust_now_us();
    joust_bt_opts defaults;
    if (!o) {
        joust_bt_opts_defaults(&defaults);
        o = &defaults;
    }
    if (!pb || !opts_ok(o) || !pb->item_off || !pb->edge_off)
        return JOUST_EINVAL;
    uint32_t np = pb->n_prompts;
    for (uint32_t p = 0; p < np; p++)
        if (pb->item_off[p + 1] < pb->item_off[p] || pb->edge_off[p + 1] < pb->edge_off[p])
            return JOUST_EINVAL;
    if ((pb->edge_off[np] > pb->edge_off[0] && !pb->edges) ||
        (pb->item_off[np] > pb->item_off[0] && !theta))
        return JOUST_EINVAL;
    if (!joust_bt_cuda_available())
        return JOUST_EUNSUPPORTED;

    size_t ni = (size_t)pb->item_off[np], ne = (size_t)pb->edge_off[np];
    Dev dev;
    uint64_t *d_io = dev.alloc<uint64_t>(np + 1), *d_eo = dev.alloc<uint64_t>(np + 1);
    joust_bt_edge32 *d_e = dev.alloc<joust_bt_edge32>(ne);
    float *d_w = pb->w ? dev.alloc<float>(ne) : nullptr;
    double *d_th = dev.alloc<double>(ni), *d_se = se ? dev.alloc<double>(ni) : nullptr;
    int *d_it = dev.alloc<int>(np), *d_st = dev.alloc<int>(np), *d_cap = dev.alloc<int>(np);
    double *d_step = dev.alloc<double>(np);
    if (!d_io || !d_eo || !d_e || (pb->w && !d_w) || !d_th || (se && !d_se) || !d_it || !d_st ||
        !d_cap || !d_step)
        return JOUST_EIO;
#define CK(call)                                                                               \
    do {                                                                                       \
        if ((call) != cudaSuccess) {                                                           \
            cudaGetLastError();                                                                \
            return JOUST_EIO;                                                                  \
        }                                                                                      \
    } while (0)
    CK(cudaMemcpy(d_io, pb->item_off, (np + 1) * sizeof(uint64_t), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_eo, pb->edge_off, (np + 1) * sizeof(uint64_t), cudaMemcpyHostToDevice));
    if (ne) {
        CK(cudaMemcpy(d_e, pb->edges, ne * sizeof *pb->edges, cudaMemcpyHostToDevice));
        if (pb->w)
            CK(cudaMemcpy(d_w, pb->w, ne * sizeof(float), cudaMemcpyHostToDevice));
    }
    // Bad prompts keep their values: the device starts from the caller's.
    if (ni) {
        CK(cudaMemcpy(d_th, theta, ni * sizeof(double), cudaMemcpyHostToDevice));
        if (se)
            CK(cudaMemcpy(d_se, se, ni * sizeof(double), cudaMemcpyHostToDevice));
    }
    KParams P = {o->clip, 0.5 * o->prior_games, o->tol, o->max_iter, warm != 0, se != nullptr};
    const uint64_t per_launch = 1u << 30;
    for (uint64_t p0 = 0; p0 < np; p0 += per_launch) {
        uint64_t cnt = np - p0 < per_launch ? np - p0 : per_launch;
        bt_warp_kernel<<<(unsigned)cnt, WARP>>>(p0, np, d_io, d_eo, d_e, d_w, P, d_th, d_se, d_it,
                                                 d_step, d_st, d_cap);
        CK(cudaGetLastError());
    }
    CK(cudaDeviceSynchronize());
    std::vector<int> it(np), st(np), cap(np);
    std::vector<double> step(np);
    if (np) {
        CK(cudaMemcpy(it.data(), d_it, np * sizeof(int), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(st.data(), d_st, np * sizeof(int), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(cap.data(), d_cap, np * sizeof(int), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(step.data(), d_step, np * sizeof(double), cudaMemcpyDeviceToHost));
    }
    if (ni) {
        CK(cudaMemcpy(theta, d_th, ni * sizeof(double), cudaMemcpyDeviceToHost));
        if (se)
            CK(cudaMemcpy(se, d_se, ni * sizeof(double), cudaMemcpyDeviceToHost));
    }
#undef CK

    joust_bt_bulk_stats s = {0, 0, 0, 0, 0, 0, 0, UINT32_MAX, 0};
    std::vector<joust_bt_edge> buf;
    for (uint32_t p = 0; p < np; p++) {
        int its = 0;
        bool ok = true;
        if (st[p] == ST_HOST) { // n < 2 or n > 32: joust_bt_fit on the CPU
            uint64_t e0 = pb->edge_off[p], m = pb->edge_off[p + 1] - e0;
            uint64_t n = pb->item_off[p + 1] - pb->item_off[p];
            buf.resize((size_t)m);
            for (uint64_t k = 0; k < m; k++) {
                const joust_bt_edge32 &x = pb->edges[e0 + k];
                buf[(size_t)k] = joust_bt_edge{x.a, x.b, x.s, pb->w ? pb->w[e0 + k] : 1.0};
            }
            ok = n <= UINT32_MAX &&
                 joust_bt_fit((uint32_t)n, buf.data(), (size_t)m, o, warm,
                              theta + pb->item_off[p], se ? se + pb->item_off[p] : nullptr,
                              &its) == 0;
            if (ok) {
                s.prompts_large += n > JOUST_BT_BULK_SMALL;
                s.prompts_capped += its >= o->max_iter;
            }
        } else if (st[p] == ST_BAD) {
            ok = false;
        } else {
            its = it[p];
            s.max_step = step[p] > s.max_step ? step[p] : s.max_step;
            s.prompts_capped += cap[p] != 0;
        }
        if (!ok) {
            s.prompts_bad++;
            s.first_bad = p < s.first_bad ? p : s.first_bad;
            continue;
        }
        s.prompts_fitted++;
        s.iters_total += (uint64_t)its;
        s.iters_max = its > s.iters_max ? its : s.iters_max;
    }
    s.seconds = (double)(joust_now_us() - t_start) * 1e-6;
    if (stats)
        *stats = s;
    return s.prompts_bad ? JOUST_EINVAL : 0;
}
