#include "bench_bt.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bt.h"
#include "bt_bulk.h"
#include "clock.h"
#include "metrics.h"
#include "rng.h"
#include "xalloc.h"

typedef struct {
    uint64_t images, per_prompt, comparisons, seed;
    int threads, se, repeat, warm, check;
    double noise, tol;
} cfg_t;

typedef struct {
    const cfg_t *cfg;
    uint32_t n_prompts;
    uint64_t *item_off, *edge_off;
    joust_bt_edge32 *edges;
    double *latent;
} data_t;

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* One stream per prompt (and per purpose), so the data do not depend on how
 * prompts are split over threads. */
static void prompt_rng(joust_rng_t *r, uint64_t seed, uint64_t stream, uint32_t p)
{
    joust_rng_seed(r, seed ^ (stream * 0xd1b54a32d192ed03ull) ^ ((uint64_t)p << 1));
}

static float judge(joust_rng_t *r, double ta, double tb, double noise)
{
    return (float)sigmoid(ta - tb + noise * joust_rng_normal(r));
}

static void gen_prompt(const data_t *d, uint32_t p)
{
    joust_rng_t r;
    prompt_rng(&r, d->cfg->seed, 1, p);
    uint64_t base = d->item_off[p], n = d->item_off[p + 1] - base;
    double *lat = d->latent + base;
    for (uint64_t i = 0; i < n; i++)
        lat[i] = joust_rng_normal(&r);
    for (uint64_t k = d->edge_off[p]; k < d->edge_off[p + 1]; k++) {
        uint32_t a = (uint32_t)joust_rng_below(&r, n), b = (uint32_t)joust_rng_below(&r, n - 1);
        b += b >= a;
        d->edges[k] = (joust_bt_edge32){a, b, judge(&r, lat[a], lat[b], d->cfg->noise)};
    }
}

/* New judge outcomes for every 10th comparison (by global index). */
static void rejudge_prompt(const data_t *d, uint32_t p)
{
    joust_rng_t r;
    prompt_rng(&r, d->cfg->seed, 2, p);
    const double *lat = d->latent + d->item_off[p];
    uint64_t k = (d->edge_off[p] + 9) / 10 * 10;
    for (; k < d->edge_off[p + 1]; k += 10) {
        joust_bt_edge32 *e = &d->edges[k];
        e->s = judge(&r, lat[e->a], lat[e->b], d->cfg->noise);
    }
}

typedef struct {
    const data_t *d;
    uint32_t p0, p1;
    int rejudge;
} gen_job;

static void *gen_worker(void *arg)
{
    gen_job *j = arg;
    for (uint32_t p = j->p0; p < j->p1; p++)
        (j->rejudge ? rejudge_prompt : gen_prompt)(j->d, p);
    return NULL;
}

static void run_gen(const data_t *d, int threads, int rejudge)
{
    gen_job *jobs = xcalloc((size_t)threads, sizeof *jobs);
    pthread_t *tid = xcalloc((size_t)threads, sizeof *tid);
    for (int t = 0; t < threads; t++)
        jobs[t] = (gen_job){d, (uint32_t)((uint64_t)d->n_prompts * (uint64_t)t / (uint64_t)threads),
                            (uint32_t)((uint64_t)d->n_prompts * (uint64_t)(t + 1) /
                                       (uint64_t)threads),
                            rejudge};
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, gen_worker, &jobs[t]) != 0)
            break;
        started = t;
    }
    gen_worker(&jobs[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    for (int t = started + 1; t < threads; t++) /* threads that did not start */
        gen_worker(&jobs[t]);
    free(tid);
    free(jobs);
}

static void data_make(data_t *d, const cfg_t *c)
{
    uint64_t np = (c->images + c->per_prompt - 1) / c->per_prompt;
    d->cfg = c;
    d->n_prompts = (uint32_t)np;
    d->item_off = xmalloc((np + 1) * sizeof *d->item_off);
    d->edge_off = xmalloc((np + 1) * sizeof *d->edge_off);
    d->item_off[0] = d->edge_off[0] = 0;
    for (uint64_t p = 0; p < np; p++) {
        uint64_t n = p + 1 < np ? c->per_prompt : c->images - p * c->per_prompt;
        /* an even share of the comparisons; prompts of one image get none */
        uint64_t share = (uint64_t)(((unsigned __int128)c->comparisons * (p + 1)) / np -
                                    ((unsigned __int128)c->comparisons * p) / np);
        d->item_off[p + 1] = d->item_off[p] + n;
        d->edge_off[p + 1] = d->edge_off[p] + (n >= 2 ? share : 0);
    }
    d->edges = xmalloc(d->edge_off[np] * sizeof *d->edges + 1);
    d->latent = xmalloc(c->images * sizeof *d->latent + 1);
    run_gen(d, c->threads, 0);
}

static void data_free(data_t *d)
{
    free(d->item_off);
    free(d->edge_off);
    free(d->edges);
    free(d->latent);
}

static joust_bt_problem problem(const data_t *d)
{
    return (joust_bt_problem){d->n_prompts, d->item_off, d->edge_off, d->edges, NULL};
}

/* Mean within-prompt Kendall tau of theta vs the latent scores over at most
 * 10,000 evenly spaced prompts of two or more images. */
static double mean_tau(const data_t *d, const double *theta)
{
    uint32_t stride = d->n_prompts > 10000 ? d->n_prompts / 10000 : 1;
    double sum = 0;
    uint64_t cnt = 0;
    for (uint32_t p = 0; p < d->n_prompts; p += stride) {
        uint64_t b = d->item_off[p], n = d->item_off[p + 1] - b;
        if (n < 2)
            continue;
        sum += joust_kendall_tau((size_t)n, theta + b, d->latent + b);
        cnt++;
    }
    return cnt ? sum / (double)cnt : 0;
}

/* FNV-1a over the bytes of theta: equal across thread counts, and across
 * builds and CPUs when the fit's arithmetic is identical. */
static uint64_t checksum(const double *x, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof *x; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* User + system CPU seconds of the whole process so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Counts: integers, 1e7 notation, or k / M / G suffixes (10M = 10,000,000). */
static int parse_count(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1e6, end++;
    else if (*end == 'G' || *end == 'g')
        v *= 1e9, end++;
    if (*end || !(v >= 0 && v < 1.8e19) || v != floor(v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: joust bench bt [--images N] [--per-prompt K] [--comparisons M]\n"
                    "       [--threads T] [--seed S] [--noise X] [--tol X] [--se] [--repeat R]\n"
                    "       [--warm] [--check]\n");
}

static int parse_args(int argc, char **argv, cfg_t *c)
{
    *c = (cfg_t){10000000, 16, 100000000, 1, 2, 0, 1, 0, 0, 1.0, 1e-6};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u = 0;
        char *end = NULL;
        if (!strcmp(a, "--se")) {
            c->se = 1;
            continue;
        }
        if (!strcmp(a, "--warm")) {
            c->warm = 1;
            continue;
        }
        if (!strcmp(a, "--check")) {
            c->check = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1; /* asked for: usage on stdout, exit 0 */
        static const char *const valued[] = {"--images", "--per-prompt", "--comparisons",
                                              "--threads", "--seed", "--repeat", "--noise",
                                              "--tol"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
            known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, "bench bt: unknown option %s\n", a);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "bench bt: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--noise") || !strcmp(a, "--tol")) {
            double x = strtod(v, &end);
            if (*end || !(x >= 0 && isfinite(x))) {
                fprintf(stderr, "bench bt: bad %s '%s'\n", a, v);
                return -1;
            }
            *(a[2] == 'n' ? &c->noise : &c->tol) = x;
            continue;
        }
        if (parse_count(v, &u) != 0) {
            fprintf(stderr, "bench bt: bad %s '%s'\n", a, v);
            return -1;
        }
        if (!strcmp(a, "--images"))
            c->images = u;
        else if (!strcmp(a, "--per-prompt"))
            c->per_prompt = u;
        else if (!strcmp(a, "--comparisons"))
            c->comparisons = u;
        else if (!strcmp(a, "--seed"))
            c->seed = u;
        else if (!strcmp(a, "--threads") && u >= 1 && u <= 256)
            c->threads = (int)u;
        else if (!strcmp(a, "--repeat") && u >= 1 && u <= 1000)
            c->repeat = (int)u;
        else {
            fprintf(stderr, "bench bt: unknown option or bad value: %s %s\n", a, v);
            return -1;
        }
    }
    if (c->images < 1 || c->per_prompt < 1 || c->per_prompt > UINT32_MAX ||
        (c->images + c->per_prompt - 1) / c->per_prompt >= UINT32_MAX) {
        fprintf(stderr, "bench bt: need images >= 1 and 1 <= per-prompt, < 2^32 prompts\n");
        return -1;
    }
    return 0;
}

static int check_fail(const char *what)
{
    fprintf(stderr, "bench bt check: FAILED: %s\n", what);
    return 1;
}

/* Small self-test for ctest: determinism across thread counts, agreement
 * with joust_bt_fit, sane recovery and a working warm start. */
static int run_check(cfg_t c)
{
    c.images = 4000;
    c.per_prompt = 16;
    c.comparisons = 40000;
    c.tol = 1e-10;
    data_t d;
    data_make(&d, &c);
    joust_bt_problem pb = problem(&d);
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    o.tol = c.tol;
    size_t n = (size_t)c.images;
    double *t1 = xmalloc(n * sizeof *t1), *t3 = xmalloc(n * sizeof *t3),
           *s1 = xmalloc(n * sizeof *s1), *s3 = xmalloc(n * sizeof *s3);
    joust_bt_bulk_stats st1, st3;
    int fails = 0;
    if (joust_bt_fit_bulk(&pb, &o, 1, 0, t1, s1, &st1) != 0 ||
        joust_bt_fit_bulk(&pb, &o, 3, 0, t3, s3, &st3) != 0)
        fails += check_fail("fit returned an error");
    if (memcmp(t1, t3, n * sizeof *t1) || memcmp(s1, s3, n * sizeof *s1))
        fails += check_fail("1 and 3 threads differ");
    if (!(st1.max_step < c.tol) || st1.prompts_capped || st1.prompts_fitted != d.n_prompts)
        fails += check_fail("not converged");
    double worst = 0, worst_se = 0;
    for (uint32_t p = 0; p < d.n_prompts; p += 7) {
        uint64_t b = d.item_off[p], e0 = d.edge_off[p], m = d.edge_off[p + 1] - e0;
        uint32_t np = (uint32_t)(d.item_off[p + 1] - b);
        joust_bt_edge *e = xmalloc((size_t)m * sizeof *e + 1);
        for (uint64_t k = 0; k < m; k++)
            e[k] = (joust_bt_edge){d.edges[e0 + k].a, d.edges[e0 + k].b, d.edges[e0 + k].s, 1};
        double th[64], se[64];
        if (np > 64 || joust_bt_fit(np, e, (size_t)m, &o, 0, th, se, NULL) != 0) {
            fails += check_fail("joust_bt_fit reference");
            free(e);
            break;
        }
        for (uint32_t i = 0; i < np; i++) {
            worst = fmax(worst, fabs(th[i] - t1[b + i]));
            worst_se = fmax(worst_se, fabs(se[i] - s1[b + i]));
        }
        free(e);
    }
    if (!(worst < 1e-9 && worst_se < 1e-9))
        fails += check_fail("bulk differs from joust_bt_fit");
    double tau = mean_tau(&d, t1);
    if (!(tau > 0.6))
        fails += check_fail("kendall tau too low");
    run_gen(&d, c.threads, 1);
    joust_bt_bulk_stats sw;
    if (joust_bt_fit_bulk(&pb, &o, 2, 1, t1, NULL, &sw) != 0 || !(sw.max_step < c.tol) ||
        sw.iters_total >= st1.iters_total)
        fails += check_fail("warm start");
    printf("bench bt check: %u prompts, |bulk - joust_bt_fit| %.2g (se %.2g), tau %.3f, "
           "iterations cold %" PRIu64 " warm %" PRIu64 ": %s\n",
           d.n_prompts, worst, worst_se, tau, st1.iters_total, sw.iters_total,
           fails ? "FAILED" : "ok");
    free(t1);
    free(t3);
    free(s1);
    free(s3);
    data_free(&d);
    return fails ? 1 : 0;
}

int joust_bench_bt_main(int argc, char **argv)
{
    cfg_t c;
    int parsed = parse_args(argc, argv, &c);
    if (parsed != 0) {
        usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : 2;
    }
    if (c.check)
        return run_check(c);

    int64_t g0 = joust_now_us();
    data_t d;
    data_make(&d, &c);
    double gen_s = (double)(joust_now_us() - g0) * 1e-6;
    uint64_t m = d.edge_off[d.n_prompts];
    printf("bench bt: %" PRIu64 " images, %u prompts of <= %" PRIu64 ", %" PRIu64
           " comparisons (%.1f MiB of edges), generated in %.2f s\n",
           c.images, d.n_prompts, c.per_prompt, m,
           (double)(m * sizeof *d.edges) / (1024.0 * 1024.0), gen_s);

    joust_bt_problem pb = problem(&d);
    joust_bt_opts o;
    joust_bt_opts_defaults(&o);
    o.tol = c.tol;
    size_t n = (size_t)c.images;
    double *theta = xmalloc(n * sizeof *theta), *se = c.se ? xmalloc(n * sizeof *se) : NULL;
    double *times = xmalloc((size_t)c.repeat * sizeof *times), cpu_best = INFINITY;
    joust_bt_bulk_stats st = {0};
    for (int r = 0; r < c.repeat; r++) {
        double c0 = cpu_seconds();
        int64_t t0 = joust_now_us();
        int rc = joust_bt_fit_bulk(&pb, &o, c.threads, 0, theta, se, &st);
        times[r] = (double)(joust_now_us() - t0) * 1e-6;
        double cpu = cpu_seconds() - c0;
        cpu_best = cpu < cpu_best ? cpu : cpu_best;
        if (rc != 0) {
            fprintf(stderr, "bench bt: fit failed (%d bad prompts)\n", (int)st.prompts_bad);
            return 1;
        }
        printf("  fit %d: %.3f s wall, %.3f s CPU\n", r + 1, times[r], cpu);
    }
    qsort(times, (size_t)c.repeat, sizeof *times, cmp_double);
    double best = times[0], median = (c.repeat % 2) ? times[c.repeat / 2]
                                                    : 0.5 * (times[c.repeat / 2 - 1] + times[c.repeat / 2]);
    double tau = mean_tau(&d, theta);
    double mean_it = st.prompts_fitted ? (double)st.iters_total / (double)st.prompts_fitted : 0;
    /* prompts over JOUST_BT_BULK_SMALL images go through joust_bt_fit, which
     * does not report its final step */
    char step_col[32];
    if (st.prompts_large < st.prompts_fitted)
        snprintf(step_col, sizeof step_col, "%.3g", st.max_step);
    else
        snprintf(step_col, sizeof step_col, "-");
    printf("bench bt: fit best %.3f s, median %.3f s of %d (least CPU %.3f s); max final step %s "
           "(tol %.0e); Newton iterations mean %.2f, max %d; capped %" PRIu64 "; via "
           "joust_bt_fit %" PRIu64 "; mean within-prompt Kendall tau %.4f; theta checksum "
           "%016" PRIx64 "\n",
           best, median, c.repeat, cpu_best, step_col, c.tol, mean_it, st.iters_max,
           st.prompts_capped, st.prompts_large, tau, checksum(theta, n));

    double warm_s = -1, warm_it = 0, warm_step = 0;
    if (c.warm) {
        run_gen(&d, c.threads, 1);
        joust_bt_bulk_stats sw;
        int64_t t0 = joust_now_us();
        if (joust_bt_fit_bulk(&pb, &o, c.threads, 1, theta, se, &sw) != 0) {
            fprintf(stderr, "bench bt: warm fit failed\n");
            return 1;
        }
        warm_s = (double)(joust_now_us() - t0) * 1e-6;
        warm_it = sw.prompts_fitted ? (double)sw.iters_total / (double)sw.prompts_fitted : 0;
        warm_step = sw.max_step;
        printf("bench bt: warm refit after re-judging 10%% of comparisons: %.3f s, max final "
               "step %.3g, Newton iterations mean %.2f, max %d\n",
               warm_s, warm_step, warm_it, sw.iters_max);
    }
    double rss = peak_rss_mib();
    printf("bench bt: peak RSS %.0f MiB\n\n", rss);
    printf("| images | prompts | comparisons | threads | se | fit s (best / median of %d) | "
           "max step | Newton it. mean / max | warm refit s (it. mean) | tau | peak RSS MiB |\n",
           c.repeat);
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    char warm_col[64];
    if (c.warm)
        snprintf(warm_col, sizeof warm_col, "%.3f (%.2f)", warm_s, warm_it);
    else
        snprintf(warm_col, sizeof warm_col, "-");
    printf("| %" PRIu64 " | %u | %" PRIu64 " | %d | %s | %.3f / %.3f | %s | %.2f / %d | %s | "
           "%.4f | %.0f |\n",
           c.images, d.n_prompts, m, c.threads, c.se ? "yes" : "no", best, median, step_col,
           mean_it, st.iters_max, warm_col, tau, rss);
    free(times);
    free(theta);
    free(se);
    data_free(&d);
    return 0;
}
