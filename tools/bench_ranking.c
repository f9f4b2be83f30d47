/* `joust bench ranking` (bench_ranking.h): pairing strategies at equal
 * judge calls against a calibrated simulated judge. */
#include "bench_ranking.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "metrics.h"
#include "planner.h"
#include "prompt_fit.h"
#include "rng.h"
#include "xalloc.h"

enum { NM_CAL, NM_NOISY, NM_HARD, NM_COUNT };
static const char *const nm_name[NM_COUNT] = {"calibrated soft", "noisy soft", "hard 0/1"};

enum { ST_RR_BOTH, ST_RR_SINGLE, ST_RANDOM, ST_SWISS, ST_ADAPTIVE, ST_TOPK, ST_CURVES,
       ST_ADAPTIVE_STOP = ST_CURVES, ST_TOPK_STOP, ST_COUNT };
static const char *const st_name[ST_COUNT] = {
    "round robin, both orders", "round robin, one order", "random k-regular", "swiss",
    "adaptive", "top-k (k=1)", "adaptive, stop at 0.95", "top-k, stop at 0.95"};

#define NF 5
static const double fracs[NF] = {0.125, 0.25, 0.40, 0.50, 1.0};
static const char *const frac_name[NF] = {"12.5 %", "25 %", "40 %", "50 %", "100 %"};
enum { M_TAU, M_TOP, M_BOT, M_BOTH, M_CALLS, NMET };

#define TARGET_AGREE 0.65
#define MAX_SIZES 8

typedef struct {
    uint32_t sizes[MAX_SIZES];
    int reps[MAX_SIZES];
    int nsizes, threads, quick, check;
    uint64_t seed;
    double bias;
    double T[NM_COUNT];
} cfg_t;

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double u01(uint64_t h) { return ((double)(h >> 11) + 0.5) * 0x1.0p-53; }
static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

/* ---- calibration ---------------------------------------------------------- */

/* E over eps ~ N(0,1) of sigmoid(x + eps), by the trapezoid rule. */
static double noisy_agree(double x)
{
    double s = 0, h = 0.02;
    for (double e = -8; e <= 8; e += h)
        s += sigmoid(x + e) * exp(-0.5 * e * e);
    return s * h / sqrt(2 * M_PI);
}

/* P(a hard answer drawn from p agrees with the latent order) for random
 * pairs: delta ~ N(0, 2). */
static double agreement(int nm, double T)
{
    double s = 0, h = nm == NM_NOISY ? 0.05 : 0.005, sd = sqrt(2.0);
    for (double d = h / 2; d <= 8 * sd; d += h) {
        double a = nm == NM_NOISY ? noisy_agree(d / T) : sigmoid(d / T);
        s += 2 * a * exp(-0.5 * d * d / 2) / (sd * sqrt(2 * M_PI));
    }
    return s * h;
}

static double calibrate(int nm)
{
    double lo = 0.05, hi = 100;
    for (int it = 0; it < 60; it++) {
        double mid = sqrt(lo * hi);
        if (agreement(nm, mid) > TARGET_AGREE)
            lo = mid;
        else
            hi = mid;
    }
    return sqrt(lo * hi);
}

/* ---- the sim judge -------------------------------------------------------- */

typedef struct {
    const cfg_t *cfg;
    int nm;
    uint32_t n;
    const double *theta;
    uint64_t key; /* prompt */
} judge_t;

/* Deterministic per (prompt, ordered pair): asking again gives the same. */
static double judge(const judge_t *j, uint32_t f, uint32_t s)
{
    uint64_t h = mix64(j->key ^ ((uint64_t)f << 32 ^ s));
    double d = (j->theta[f] - j->theta[s]) / j->cfg->T[j->nm] + j->cfg->bias;
    switch (j->nm) {
    case NM_CAL: return sigmoid(d);
    case NM_NOISY: {
        double u1 = u01(h), u2 = u01(mix64(h));
        return sigmoid(d + sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
    }
    default: return u01(h) < sigmoid(d) ? 1.0 : 0.0;
    }
}

/* Runs a planner to the end with the sim judge answering each batch before
 * the next; rec gets the outcomes in issue order. Returns their count. */
static size_t run_planner(joust_strategy s, uint32_t n, const joust_plan_opts *o, const judge_t *j,
                          joust_outcome *rec, joust_pair *buf)
{
    joust_planner *p = joust_planner_new(s, n, o);
    size_t m = 0, cap = (size_t)n * (n - 1);
    while (!joust_planner_done(p)) {
        size_t k = joust_planner_next(p, buf, cap);
        if (k == 0)
            break; /* cannot happen: every result is in */
        for (size_t t = 0; t < k; t++) {
            double pf = judge(j, buf[t].first, buf[t].second);
            rec[m++] = (joust_outcome){buf[t].first, buf[t].second, pf};
            joust_planner_observe(p, buf[t].first, buf[t].second, pf);
        }
    }
    joust_planner_destroy(&p);
    return m;
}

static void evaluate(uint32_t n, const double *truth, const joust_outcome *rec, size_t m,
                     double full, double *th, double *out)
{
    if (joust_prompt_fit(n, rec, m, NULL, th, NULL, NULL) != 0)
        memset(th, 0, n * sizeof *th);
    out[M_TAU] = joust_kendall_tau(n, th, truth);
    out[M_TOP] = joust_top1_match(n, th, truth);
    out[M_BOT] = joust_bottom1_match(n, th, truth);
    out[M_BOTH] = out[M_TOP] * out[M_BOT];
    out[M_CALLS] = (double)m / full;
}

typedef struct {
    const cfg_t *cfg;
    int si;          /* size index */
    int tid, nthreads;
    double *res;     /* [rep][nm][st][f][met] */
} work_t;

static size_t res_index(int rep, int nm, int st, int f)
{
    return ((((size_t)rep * NM_COUNT + nm) * ST_COUNT + st) * NF + f) * NMET;
}

static void *worker(void *arg)
{
    work_t *w = arg;
    const cfg_t *c = w->cfg;
    uint32_t n = c->sizes[w->si];
    size_t full = (size_t)n * (n - 1), half = full / 2;
    double *theta = xmalloc(n * sizeof *theta), *th = xmalloc(n * sizeof *th);
    joust_outcome *rec = xmalloc(full * sizeof *rec);
    joust_pair *buf = xmalloc(full * sizeof *buf);
    size_t budget[NF];
    for (int f = 0; f < NF; f++) {
        budget[f] = (size_t)floor(fracs[f] * (double)full);
        if (budget[f] < 1)
            budget[f] = 1;
    }
    for (int rep = w->tid; rep < c->reps[w->si]; rep += w->nthreads) {
        joust_rng_t r;
        uint64_t pkey = mix64(c->seed ^ ((uint64_t)n << 40) ^ (uint64_t)rep);
        joust_rng_seed(&r, pkey);
        for (uint32_t i = 0; i < n; i++)
            theta[i] = joust_rng_normal(&r);
        for (int nm = 0; nm < NM_COUNT; nm++) {
            judge_t j = {c, nm, n, theta, mix64(pkey ^ (uint64_t)(nm + 1))};
            for (int st = 0; st < ST_COUNT; st++) {
                joust_plan_opts o;
                joust_plan_opts_defaults(&o);
                o.seed = mix64(pkey + (uint64_t)st);
                o.order = JOUST_ORDER_RANDOM;
                o.confidence = 1; /* never stop early: spend the budget */
                joust_strategy s = JOUST_STRATEGY_ADAPTIVE;
                int prefix = 1; /* one run at the largest budget, cut per fraction */
                switch (st) {
                case ST_RR_BOTH:
                    s = JOUST_STRATEGY_ROUND_ROBIN;
                    o.order = JOUST_ORDER_BOTH;
                    break;
                case ST_RR_SINGLE: s = JOUST_STRATEGY_ROUND_ROBIN; break;
                case ST_RANDOM: s = JOUST_STRATEGY_K_REGULAR; prefix = 0; break;
                case ST_SWISS: s = JOUST_STRATEGY_SWISS; break;
                case ST_ADAPTIVE: break;
                case ST_TOPK: s = JOUST_STRATEGY_TOP_K; break;
                case ST_ADAPTIVE_STOP: o.confidence = 0.95; prefix = 0; break;
                case ST_TOPK_STOP:
                    s = JOUST_STRATEGY_TOP_K;
                    o.confidence = 0.95;
                    prefix = 0;
                    break;
                }
                if (prefix) {
                    size_t m = run_planner(s, n, &o, &j, rec, buf);
                    for (int f = 0; f < NF; f++)
                        evaluate(n, theta, rec, m < budget[f] ? m : budget[f], (double)full, th,
                                 w->res + res_index(rep, nm, st, f));
                    continue;
                }
                for (int f = 0; f < NF; f++) {
                    if (st >= ST_CURVES && f != NF - 1)
                        continue; /* the stopping rules run at the full budget only */
                    joust_plan_opts of = o;
                    of.budget_calls = budget[f];
                    if (st == ST_RANDOM && budget[f] > half)
                        of.order = JOUST_ORDER_BOTH; /* more calls than pairs */
                    size_t m = run_planner(s, n, &of, &j, rec, buf);
                    evaluate(n, theta, rec, m, (double)full, th, w->res + res_index(rep, nm, st, f));
                }
            }
        }
    }
    free(theta);
    free(th);
    free(rec);
    free(buf);
    return NULL;
}

/* Mean and standard error over reps of one metric. */
static void mean_se(const double *res, int reps, int nm, int st, int f, int met, double *mean,
                    double *se)
{
    double s = 0, ss = 0;
    for (int r = 0; r < reps; r++)
        s += res[res_index(r, nm, st, f) + met];
    double mu = s / reps;
    for (int r = 0; r < reps; r++) {
        double d = res[res_index(r, nm, st, f) + met] - mu;
        ss += d * d;
    }
    *mean = mu;
    *se = reps > 1 ? sqrt(ss / (reps - 1) / reps) : 0;
}

/* Paired difference st1 - st2 (at fractions f1, f2). */
static void diff_se(const double *res, int reps, int nm, int st1, int f1, int st2, int f2,
                    int met, double *mean, double *se)
{
    double s = 0, ss = 0;
    for (int r = 0; r < reps; r++)
        s += res[res_index(r, nm, st1, f1) + met] - res[res_index(r, nm, st2, f2) + met];
    double mu = s / reps;
    for (int r = 0; r < reps; r++) {
        double d = res[res_index(r, nm, st1, f1) + met] - res[res_index(r, nm, st2, f2) + met] - mu;
        ss += d * d;
    }
    *mean = mu;
    *se = reps > 1 ? sqrt(ss / (reps - 1) / reps) : 0;
}

static double mean_of(const double *res, int reps, int nm, int st, int f, int met)
{
    double m, s;
    mean_se(res, reps, nm, st, f, met, &m, &s);
    return m;
}

static int parse_list_u32(const char *s, uint32_t *out, int max)
{
    int k = 0;
    while (*s && k < max) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v < 2 || v > 512)
            return -1;
        out[k++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return k;
}

static int usage(FILE *f)
{
    fprintf(f, "usage: joust bench ranking [--sizes 4,9,16,64] [--reps 2000,800,400,64]\n"
               "         [--threads 2] [--seed 1] [--bias 0.3] [--quick [--check]]\n"
               "Pairing strategies (round robin, random k-regular, swiss, adaptive, top-k)\n"
               "at 12.5..100 %% of the calls of a full round robin in both orders, against a\n"
               "simulated judge in three noise models that each agree with the latent order\n"
               "on 65 %% of random pairs. Prints markdown tables (docs/benchmarks.md, Pairing strategies).\n");
    return f == stdout ? 0 : 2;
}

int joust_bench_ranking_main(int argc, char **argv)
{
    cfg_t c;
    memset(&c, 0, sizeof c);
    static const uint32_t dsizes[] = {4, 9, 16, 64};
    static const int dreps[] = {2000, 800, 400, 64};
    c.nsizes = 4;
    for (int i = 0; i < 4; i++) {
        c.sizes[i] = dsizes[i];
        c.reps[i] = dreps[i];
    }
    c.threads = 2;
    c.seed = 1;
    int reps_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout);
        if (!strcmp(a, "--quick")) {
            c.quick = 1;
        } else if (!strcmp(a, "--check")) {
            c.check = 1;
        } else if (!strcmp(a, "--sizes") && v) {
            uint32_t tmp[MAX_SIZES];
            int k = parse_list_u32(v, tmp, MAX_SIZES);
            if (k <= 0)
                return usage(stderr);
            c.nsizes = k;
            for (int t = 0; t < k; t++) {
                c.sizes[t] = tmp[t];
                c.reps[t] = tmp[t] <= 4 ? 2000 : tmp[t] <= 9 ? 800 : tmp[t] <= 16 ? 400 : 64;
            }
            i++;
        } else if (!strcmp(a, "--reps") && v) {
            char *end;
            const char *s = v;
            int k = 0;
            while (*s && k < MAX_SIZES) {
                long r = strtol(s, &end, 10);
                if (end == s || r < 1)
                    return usage(stderr);
                c.reps[k++] = (int)r;
                s = *end == ',' ? end + 1 : end;
            }
            reps_given = k;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            c.threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            c.seed = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--bias") && v) {
            c.bias = atof(v);
            i++;
        } else {
            return usage(stderr);
        }
    }
    if (reps_given && reps_given != c.nsizes)
        return usage(stderr);
    if (c.threads < 1)
        c.threads = 1;
    if (c.quick)
        for (int s = 0; s < c.nsizes; s++)
            c.reps[s] = c.sizes[s] > 16 ? 2 : 24;
    for (int nm = 0; nm < NM_COUNT; nm++)
        c.T[nm] = calibrate(nm);

    int64_t t0 = joust_now_ms();
    double *res[MAX_SIZES];
    for (int s = 0; s < c.nsizes; s++) {
        res[s] = xcalloc(res_index(c.reps[s], 0, 0, 0), sizeof *res[s]);
        pthread_t tid[64];
        work_t wk[64];
        int nt = c.threads > 64 ? 64 : c.threads;
        for (int t = 0; t < nt; t++) {
            wk[t] = (work_t){&c, s, t, nt, res[s]};
            pthread_create(&tid[t], NULL, worker, &wk[t]);
        }
        for (int t = 0; t < nt; t++)
            pthread_join(tid[t], NULL);
    }
    double secs = (double)(joust_now_ms() - t0) / 1000;

    printf("# joust bench ranking: seed %" PRIu64 ", first-position bias %.2f logit, %.1f s\n\n",
           c.seed, c.bias, secs);
    printf("Judge temperatures (65 %% hard agreement on random pairs, theta ~ N(0,1)): "
           "calibrated T = %.3f, noisy T = %.3f, hard T = %.3f.\n",
           c.T[NM_CAL], c.T[NM_NOISY], c.T[NM_HARD]);
    printf("Budgets are fractions of a full round robin in both orders, n(n-1) calls.\n"
           "Prompts per size:");
    for (int s = 0; s < c.nsizes; s++)
        printf(" n=%u: %d%s", c.sizes[s], c.reps[s], s + 1 < c.nsizes ? "," : ".\n");

    for (int nm = 0; nm < NM_COUNT; nm++) {
        printf("\n### %s judge: Kendall tau-b (mean over prompts)\n\n| n | strategy |", nm_name[nm]);
        for (int f = 0; f < NF; f++)
            printf(" %s |", frac_name[f]);
        printf("\n|---|---|");
        for (int f = 0; f < NF; f++)
            printf("---|");
        printf("\n");
        for (int s = 0; s < c.nsizes; s++)
            for (int st = 0; st < ST_CURVES; st++) {
                printf("| %u | %s |", c.sizes[s], st_name[st]);
                for (int f = 0; f < NF; f++) {
                    double used = mean_of(res[s], c.reps[s], nm, st, f, M_CALLS);
                    double full = (double)c.sizes[s] * (c.sizes[s] - 1);
                    double b = floor(fracs[f] * full);
                    printf(" %.3f%s |", mean_of(res[s], c.reps[s], nm, st, f, M_TAU),
                           used < (b < 1 ? 1 : b) / full - 1e-9 ? "*" : "");
                }
                printf("\n");
            }
        printf("\n### %s judge: top-1 / bottom-1 accuracy\n\n| n | strategy |", nm_name[nm]);
        for (int f = 0; f < NF; f++)
            printf(" %s |", frac_name[f]);
        printf("\n|---|---|");
        for (int f = 0; f < NF; f++)
            printf("---|");
        printf("\n");
        for (int s = 0; s < c.nsizes; s++)
            for (int st = 0; st < ST_CURVES; st++) {
                printf("| %u | %s |", c.sizes[s], st_name[st]);
                for (int f = 0; f < NF; f++)
                    printf(" %.2f / %.2f |", mean_of(res[s], c.reps[s], nm, st, f, M_TOP),
                           mean_of(res[s], c.reps[s], nm, st, f, M_BOT));
                printf("\n");
            }
    }
    printf("\n\\* the strategy ran out of pairs before the budget (one order per pair: at most "
           "50 %%).\n");

    /* Targets. */
    printf("\n### Targets\n\n"
           "Adaptive vs the baselines at equal calls: the smallest paired difference in tau over "
           "the budgets 12.5-50 %% (adaptive minus random k-regular, and minus one-order round "
           "robin), with its standard error. Within 0.05: the smallest budget at which adaptive's "
           "tau is within 0.05 of full round robin in both orders. Top-k: best-and-worst both "
           "right at 40 %% vs full round robin in both orders (100 %%).\n\n"
           "| judge | n | min(adaptive - random) | min(adaptive - RR one order) | RR both tau | "
           "adaptive within 0.05 at | top-k best&worst at 25 %% / 40 %% | adaptive / random at 40 %% "
           "| RR both best&worst |\n"
           "|---|---|---|---|---|---|---|---|---|\n");
    int fail = 0;
    for (int nm = 0; nm < NM_COUNT; nm++)
        for (int s = 0; s < c.nsizes; s++) {
            const double *R = res[s];
            int reps = c.reps[s];
            double dmin[2] = {1e9, 1e9}, dse[2] = {0, 0};
            for (int f = 0; f <= 3; f++)
                for (int b = 0; b < 2; b++) {
                    double m, se;
                    diff_se(R, reps, nm, ST_ADAPTIVE, f, b ? ST_RR_SINGLE : ST_RANDOM, f, M_TAU, &m,
                            &se);
                    if (m < dmin[b]) {
                        dmin[b] = m;
                        dse[b] = se;
                    }
                }
            double ref = mean_of(R, reps, nm, ST_RR_BOTH, NF - 1, M_TAU);
            const char *within = "not reached";
            for (int f = 0; f < NF; f++)
                if (mean_of(R, reps, nm, ST_ADAPTIVE, f, M_TAU) >= ref - 0.05) {
                    within = frac_name[f];
                    break;
                }
            double tk25 = mean_of(R, reps, nm, ST_TOPK, 1, M_BOTH);
            double tk40 = mean_of(R, reps, nm, ST_TOPK, 2, M_BOTH);
            double rrb = mean_of(R, reps, nm, ST_RR_BOTH, NF - 1, M_BOTH);
            printf("| %s | %u | %+.3f ± %.3f | %+.3f ± %.3f | %.3f | %s | %.2f / %.2f | %.2f / %.2f "
                   "| %.2f |\n",
                   nm_name[nm], c.sizes[s], dmin[0], dse[0], dmin[1], dse[1], ref, within, tk25,
                   tk40, mean_of(R, reps, nm, ST_ADAPTIVE, 2, M_BOTH),
                   mean_of(R, reps, nm, ST_RANDOM, 2, M_BOTH), rrb);
            /* --check: the sanity of the machinery, not the targets */
            if (c.check && !(ref > 0.2 && dmin[0] > -0.25 && isfinite(tk40)))
                fail = 1;
        }

    printf("\n### Stopping at confidence 0.95 (budget 100 %%)\n\n"
           "| judge | n | adaptive: calls used | tau | top-k: calls used | best&worst right |\n"
           "|---|---|---|---|---|---|\n");
    for (int nm = 0; nm < NM_COUNT; nm++)
        for (int s = 0; s < c.nsizes; s++) {
            const double *R = res[s];
            int reps = c.reps[s];
            printf("| %s | %u | %.1f %% | %.3f | %.1f %% | %.2f |\n", nm_name[nm], c.sizes[s],
                   100 * mean_of(R, reps, nm, ST_ADAPTIVE_STOP, NF - 1, M_CALLS),
                   mean_of(R, reps, nm, ST_ADAPTIVE_STOP, NF - 1, M_TAU),
                   100 * mean_of(R, reps, nm, ST_TOPK_STOP, NF - 1, M_CALLS),
                   mean_of(R, reps, nm, ST_TOPK_STOP, NF - 1, M_BOTH));
        }
    for (int s = 0; s < c.nsizes; s++)
        free(res[s]);
    if (c.check)
        printf("\ncheck: %s\n", fail ? "FAILED" : "ok");
    return fail;
}
