/* `joust bench groups` (bench_groups.h). */
#include "bench_groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bt_bulk.h"
#include "clock.h"
#include "global_fit.h"
#include "metrics.h"
#include "rng.h"
#include "sparse_plan.h"
#include "xalloc.h"

static double rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0;
}

static double since_s(int64_t t0) { return (double)(joust_now_us() - t0) / 1e6; }

/* CPU seconds of this process: on a loaded machine the wall time is not
 * the cost. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One pass of the soft-BT gradient over the edges: the floor of any fit. */
static double gradient_pass(uint32_t n, const joust_bt_edge32 *e, size_t m, const double *th,
                            double *g)
{
    memset(g, 0, n * sizeof *g);
    for (size_t k = 0; k < m; k++) {
        double q = 1 / (1 + exp(th[e[k].b] - th[e[k].a])), d = (double)e[k].s - q;
        g[e[k].a] += d;
        g[e[k].b] -= d;
    }
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += g[i];
    return s;
}

int joust_bench_groups_main(int argc, char **argv)
{
    unsigned long long images = 1000000, k = 20, seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: joust bench groups [--images N] [--k K] [--seed S]\n"
                   "One large group (a caption corpus under --group all) without store or judge:\n"
                   "the k-regular plan of N images (default 1M, K default 20), soft outcomes from\n"
                   "latent utilities, the global sparse fit and percentiles, beside one gradient pass.\n");
            return 0;
        }
        unsigned long long *v = !strcmp(argv[i], "--images") ? &images
                                : !strcmp(argv[i], "--k")    ? &k
                                : !strcmp(argv[i], "--seed") ? &seed
                                                             : NULL;
        char *end;
        if (!v || i + 1 >= argc || (*v = strtoull(argv[++i], &end, 10), *end)) {
            fprintf(stderr, "usage: joust bench groups [--images N] [--k K] [--seed S]\n");
            return 2;
        }
    }
    if (images < 2 || images > UINT32_MAX || k < 1 || k > 1000) {
        fprintf(stderr, "joust bench groups: --images in 2..2^32-1, --k in 1..1000\n");
        return 2;
    }
    uint32_t n = (uint32_t)images;
    joust_rng_t g;
    joust_rng_seed(&g, seed);
    double *truth = xmalloc(n * sizeof *truth);
    for (uint32_t i = 0; i < n; i++)
        truth[i] = joust_rng_normal(&g);
    int64_t t0 = joust_now_us();
    joust_sparse_plan *plan = joust_sparse_plan_new(n, (uint32_t)k, JOUST_ORDER_FIXED, seed, 0);
    size_t m = (size_t)joust_sparse_plan_total(plan), got = 0, step;
    joust_pair *pairs = xmalloc(m * sizeof *pairs);
    while ((step = joust_sparse_plan_next(plan, pairs + got, 4096)) > 0)
        got += step;
    joust_sparse_plan_destroy(&plan);
    double plan_s = since_s(t0);
    joust_bt_edge32 *e = xmalloc(m * sizeof *e);
    for (size_t i = 0; i < m; i++) { /* the judge: 1 logit of noise */
        uint32_t a = pairs[i].first, b = pairs[i].second;
        double x = truth[a] - truth[b] + joust_rng_normal(&g);
        e[i] = (joust_bt_edge32){a, b, (float)(1 / (1 + exp(-x)))};
    }
    free(pairs);
    double *th = xcalloc(n, sizeof *th), *se = xmalloc(n * sizeof *se);
    double c0 = cpu_s();
    volatile double sink = gradient_pass(n, e, m, th, se);
    (void)sink;
    double pass_s = cpu_s() - c0;
    uint32_t *comp = xmalloc(n * sizeof *comp), ncomp = 0;
    double rss0 = rss_mib();
    t0 = joust_now_us();
    c0 = cpu_s();
    int rc = joust_global_fit(n, e, NULL, m, th, se, comp, &ncomp);
    double fit_s = since_s(t0), fit_cpu = cpu_s() - c0;
    double *pct = xmalloc(n * sizeof *pct);
    t0 = joust_now_us();
    joust_percentiles(n, th, pct);
    double pct_s = since_s(t0);
    uint32_t ns = n < 20000 ? n : 20000;
    double *xs = xmalloc(ns * sizeof *xs), *ys = xmalloc(ns * sizeof *ys);
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t j = ns == n ? i : (uint32_t)joust_rng_below(&g, n);
        xs[i] = th[j];
        ys[i] = truth[j];
    }
    double tau = joust_kendall_tau(ns, xs, ys);
    printf("groups: %u images in one group, k-regular k = %llu (order fixed): %zu soft comparisons\n",
           n, k, m);
    printf("plan %.2f s; fit %.2f s wall, %.2f s CPU (%s) = %.0f gradient passes of %.3f s CPU; "
           "%u components; percentiles %.2f s\n", plan_s, fit_s, fit_cpu,
           rc == 0 ? "converged" : "FAILED", pass_s > 0 ? fit_cpu / pass_s : 0, pass_s, ncomp, pct_s);
    printf("Kendall tau vs truth %.4f (%u-image sample); peak RSS %.0f MiB (%.0f before the fit)\n",
           tau, ns, rss_mib(), rss0);
    printf("| groups | %u | %zu | %.2f s | %.1f s | %.1f s | %.3f s | %.0f | %u | %.2f s | %.4f | %.0f MiB |\n",
           n, m, plan_s, fit_s, fit_cpu, pass_s, pass_s > 0 ? fit_cpu / pass_s : 0, ncomp, pct_s,
           tau, rss_mib());
    free(xs); free(ys); free(pct); free(comp); free(th); free(se); free(e); free(truth);
    return rc == 0 && tau > 0.5 ? 0 : 1;
}
