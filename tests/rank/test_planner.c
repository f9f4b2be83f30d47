/* Pairing planners (rank/planner.h): round-robin parity, budgets, seeds,
 * stopping, top-k, Swiss, k-regular, cross-model, errors and replay. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "metrics.h"
#include "pairing.h"
#include "planner.h"
#include "rng.h"

typedef struct {
    uint32_t n;
    const double *theta;
    double scale;    /* logit per unit of theta */
    int noisy;       /* add a deterministic per-ordered-pair logit noise */
    int fail_every;  /* report every k-th result as failed (0: never) */
    uint64_t seen;
} judge_t;

static double judge(judge_t *j, uint32_t a, uint32_t b)
{
    j->seen++;
    if (j->fail_every && j->seen % (uint64_t)j->fail_every == 0)
        return JOUST_PLANNER_FAILED;
    double d = (j->theta[a] - j->theta[b]) * j->scale;
    if (j->noisy) {
        joust_rng_t r;
        joust_rng_seed(&r, ((uint64_t)a << 32) ^ b ^ 0xabcdefull);
        d += joust_rng_normal(&r);
    }
    return 1 / (1 + exp(-d));
}

typedef struct {
    joust_pair *pairs; /* in issue order */
    size_t m, cap;
    uint32_t batches;  /* next() calls that returned something */
    size_t max_batch;  /* largest next() result */
} trace_t;

static void trace_push(trace_t *t, joust_pair p)
{
    if (t->m == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->pairs = realloc(t->pairs, t->cap * sizeof *t->pairs);
    }
    t->pairs[t->m++] = p;
}

/* Runs p to the end: takes up to `chunk` matches at a time until next()
 * returns 0, then reports the batch's results (in reverse order when
 * `reverse`). */
static void drive(joust_planner *p, judge_t *j, size_t chunk, int reverse, trace_t *t)
{
    joust_pair buf[4096];
    for (int guard = 0; guard < 100000 && !joust_planner_done(p); guard++) {
        size_t got = 0, k;
        while (got < sizeof buf / sizeof buf[0] &&
               (k = joust_planner_next(p, buf + got,
                                       chunk < sizeof buf / sizeof buf[0] - got
                                           ? chunk
                                           : sizeof buf / sizeof buf[0] - got)) > 0)
            got += k;
        if (got == 0) {
            CHECK(joust_planner_done(p)); /* waiting with nothing outstanding: a bug */
            break;
        }
        t->batches++;
        if (got > t->max_batch)
            t->max_batch = got;
        for (size_t x = 0; x < got; x++)
            trace_push(t, buf[x]);
        for (size_t x = 0; x < got; x++) {
            joust_pair q = buf[reverse ? got - 1 - x : x];
            CHECK_RC(joust_planner_observe(p, q.first, q.second, judge(j, q.first, q.second)));
        }
    }
}

static void normal_theta(uint64_t seed, uint32_t n, double *th)
{
    joust_rng_t r;
    joust_rng_seed(&r, seed);
    for (uint32_t i = 0; i < n; i++)
        th[i] = joust_rng_normal(&r);
}

/* No ordered pair twice, indices valid. */
static int no_repeats(uint32_t n, const trace_t *t)
{
    uint8_t *seen = calloc((size_t)n * n + 1, 1);
    int ok = 1;
    for (size_t k = 0; k < t->m; k++) {
        joust_pair q = t->pairs[k];
        if (q.first >= n || q.second >= n || q.first == q.second ||
            seen[(size_t)q.first * n + q.second]++)
            ok = 0;
    }
    free(seen);
    return ok;
}

static const joust_strategy all_strategies[] = {
    JOUST_STRATEGY_ROUND_ROBIN, JOUST_STRATEGY_K_REGULAR, JOUST_STRATEGY_SWISS,
    JOUST_STRATEGY_ADAPTIVE,    JOUST_STRATEGY_TOP_K,     JOUST_STRATEGY_CROSS_MODEL};
static const joust_order_policy all_orders[] = {JOUST_ORDER_BOTH, JOUST_ORDER_RANDOM,
                                                JOUST_ORDER_FIXED};

/* ---- round robin ---------------------------------------------------------- */

static void test_round_robin_parity(void)
{
    for (uint32_t n = 0; n <= 9; n++)
        for (int pi = 0; pi < 3; pi++)
            for (uint64_t seed = 1; seed <= 3; seed++) {
                joust_order_policy pol = all_orders[pi];
                size_t cnt = joust_round_robin_count(n, pol);
                joust_pair *ref = malloc((cnt + 1) * sizeof *ref);
                joust_rng_t r;
                joust_rng_seed(&r, seed);
                CHECK(joust_round_robin(n, pol, &r, ref) == cnt);
                for (uint64_t budget = 0; budget <= cnt + 2; budget += cnt / 3 + 1) {
                    joust_plan_opts o;
                    joust_plan_opts_defaults(&o);
                    o.order = pol;
                    o.seed = seed;
                    o.budget_calls = budget;
                    joust_planner *p = joust_planner_new(JOUST_STRATEGY_ROUND_ROBIN, n, &o);
                    CHECK(p != NULL);
                    /* never waits: everything comes out before any result */
                    joust_pair buf[128];
                    size_t got = 0, k;
                    while ((k = joust_planner_next(p, buf + got, 5)) > 0)
                        got += k;
                    size_t want = budget && budget < cnt ? budget : cnt;
                    CHECK(got == want);
                    CHECK(memcmp(buf, ref, want * sizeof *ref) == 0);
                    CHECK(!joust_planner_done(p) == (want > 0));
                    for (size_t x = 0; x < got; x++)
                        CHECK_RC(joust_planner_observe(p, buf[x].first, buf[x].second, 0.5));
                    CHECK(joust_planner_done(p));
                    joust_planner_destroy(&p);
                    CHECK(p == NULL);
                }
                free(ref);
            }
}

/* ---- budgets -------------------------------------------------------------- */

static void test_budget_exact(void)
{
    enum { N = 10 };
    double th[N];
    normal_theta(7, N, th);
    uint32_t models[N];
    for (uint32_t i = 0; i < N; i++)
        models[i] = i % 3;
    const uint64_t budgets[] = {1, 2, 7, 19, 45, 60, 90};
    for (size_t si = 0; si < sizeof all_strategies / sizeof all_strategies[0]; si++)
        for (int pi = 0; pi < 3; pi++)
            for (size_t bi = 0; bi < sizeof budgets / sizeof budgets[0]; bi++) {
                joust_strategy s = all_strategies[si];
                joust_plan_opts o;
                joust_plan_opts_defaults(&o);
                o.order = all_orders[pi];
                o.seed = 11;
                o.budget_calls = budgets[bi];
                o.confidence = 1; /* never settle: the budget is the only stop */
                o.models = models;
                o.k = s == JOUST_STRATEGY_K_REGULAR ? 0 : o.k; /* k from the budget */
                joust_planner *p = joust_planner_new(s, N, &o);
                CHECK(p != NULL);
                judge_t j = {N, th, 1.0, 1, 5, 0}; /* every 5th result fails */
                trace_t t = {0};
                drive(p, &j, 3, 0, &t);
                joust_planner_stats st;
                joust_planner_stats_get(p, &st);
                CHECK(joust_planner_done(p));
                CHECK(st.issued == t.m && st.observed == t.m && st.outstanding == 0);
                CHECK(st.failed == t.m / 5);
                CHECK(st.budget == budgets[bi]);
                CHECK(t.m <= budgets[bi]);
                CHECK(no_repeats(N, &t));
                /* how many calls the strategy can make at most */
                uint64_t pairs = N * (N - 1) / 2, natural;
                if (s == JOUST_STRATEGY_CROSS_MODEL)
                    pairs = 3 * 3 + 3 * 4 + 3 * 4; /* models of 4, 3, 3 images */
                natural = o.order == JOUST_ORDER_FIXED ? pairs : 2 * pairs;
                if (s == JOUST_STRATEGY_SWISS || s == JOUST_STRATEGY_ROUND_ROBIN ||
                    s == JOUST_STRATEGY_CROSS_MODEL || s == JOUST_STRATEGY_K_REGULAR)
                    natural = o.order == JOUST_ORDER_BOTH ? 2 * pairs : pairs;
                uint64_t want = budgets[bi] < natural ? budgets[bi] : natural;
                if (s == JOUST_STRATEGY_K_REGULAR && t.m != want) {
                    /* a k-regular graph can fall short of the budget only when
                     * k = n-1 is reached */
                    CHECK(t.m == natural);
                } else {
                    CHECK(t.m == want);
                }
                if (t.m != want && s != JOUST_STRATEGY_K_REGULAR)
                    fprintf(stderr, "  strategy %s order %s budget %llu: %zu calls, want %llu\n",
                            joust_strategy_name(s), joust_order_policy_name(o.order),
                            (unsigned long long)budgets[bi], t.m, (unsigned long long)want);
                free(t.pairs);
                joust_planner_destroy(&p);
            }

    /* budget_per_image: floor(x * n), and the smaller of the two caps */
    joust_plan_opts o;
    joust_plan_opts_defaults(&o);
    o.budget_per_image = 2.55; /* floor(25.5) = 25 */
    o.confidence = 1;
    joust_planner *p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, N, &o);
    judge_t j = {N, th, 1.0, 1, 0, 0};
    trace_t t = {0};
    drive(p, &j, 1000, 0, &t);
    CHECK(t.m == 25);
    free(t.pairs);
    joust_planner_destroy(&p);
    o.budget_calls = 12;
    p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, N, &o);
    memset(&t, 0, sizeof t);
    drive(p, &j, 1000, 0, &t);
    CHECK(t.m == 12);
    free(t.pairs);
    joust_planner_destroy(&p);
}

/* ---- determinism ---------------------------------------------------------- */

static void test_determinism(void)
{
    enum { N = 12 };
    double th[N];
    normal_theta(3, N, th);
    uint32_t models[N];
    for (uint32_t i = 0; i < N; i++)
        models[i] = i % 4;
    for (size_t si = 0; si < sizeof all_strategies / sizeof all_strategies[0]; si++) {
        joust_strategy s = all_strategies[si];
        trace_t t[3] = {{0}, {0}, {0}};
        for (int run = 0; run < 3; run++) {
            joust_plan_opts o;
            joust_plan_opts_defaults(&o);
            o.order = JOUST_ORDER_RANDOM;
            o.seed = run == 2 ? 99 : 5;
            o.budget_calls = 50;
            o.models = models;
            joust_planner *p = joust_planner_new(s, N, &o);
            judge_t j = {N, th, 1.0, 1, 0, 0};
            /* run 1 takes matches one at a time and reports results in
             * reverse: the plan must not notice */
            drive(p, &j, run == 1 ? 1 : 1000, run == 1, &t[run]);
            joust_planner_destroy(&p);
        }
        CHECK(t[0].m == t[1].m && t[0].m > 0);
        CHECK(memcmp(t[0].pairs, t[1].pairs, t[0].m * sizeof *t[0].pairs) == 0);
        /* another seed plans differently (orders are random in all) */
        CHECK(t[2].m != t[0].m || memcmp(t[0].pairs, t[2].pairs, t[0].m * sizeof *t[0].pairs));
        for (int run = 0; run < 3; run++)
            free(t[run].pairs);
    }
}

/* A budget cut is the prefix of the uncut run (batch planners plan in
 * priority order); the benchmark relies on it. */
static void test_budget_prefix(void)
{
    enum { N = 9 };
    double th[N];
    normal_theta(4, N, th);
    const joust_strategy ss[] = {JOUST_STRATEGY_SWISS, JOUST_STRATEGY_ADAPTIVE,
                                 JOUST_STRATEGY_TOP_K};
    for (int si = 0; si < 3; si++) {
        joust_plan_opts o;
        joust_plan_opts_defaults(&o);
        o.order = JOUST_ORDER_RANDOM;
        o.confidence = 1;
        o.seed = 8;
        judge_t j = {N, th, 1.0, 1, 0, 0};
        trace_t full = {0};
        joust_planner *p = joust_planner_new(ss[si], N, &o);
        drive(p, &j, 1000, 0, &full);
        joust_planner_destroy(&p);
        for (uint64_t b = 1; b <= full.m; b += 5) {
            o.budget_calls = b;
            trace_t cut = {0};
            p = joust_planner_new(ss[si], N, &o);
            drive(p, &j, 1000, 0, &cut);
            joust_planner_destroy(&p);
            CHECK(cut.m == b);
            CHECK(memcmp(cut.pairs, full.pairs, cut.m * sizeof *cut.pairs) == 0);
            free(cut.pairs);
        }
        free(full.pairs);
    }
}

/* ---- adaptive ------------------------------------------------------------- */

static void test_adaptive_settles(void)
{
    enum { N = 8 };
    double th[N];
    for (uint32_t i = 0; i < N; i++)
        th[i] = 1.5 * (double)((i * 5) % N); /* well separated, shuffled */
    joust_plan_opts o;
    joust_plan_opts_defaults(&o);
    o.order = JOUST_ORDER_RANDOM;
    o.confidence = 0.95;
    joust_planner *p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, N, &o);
    judge_t j = {N, th, 2.0, 0, 0, 0}; /* a decisive soft judge */
    trace_t t = {0};
    drive(p, &j, 1000, 0, &t);
    joust_planner_stats st;
    joust_planner_stats_get(p, &st);
    CHECK(joust_planner_done(p));
    CHECK(st.settled == 1);
    CHECK(t.m < N * (N - 1) / 2); /* well before every pair was judged once */
    CHECK(t.batches >= 2);
    CHECK(t.max_batch <= N / 2);  /* a matching per batch */
    CHECK(joust_kendall_tau(N, joust_planner_scores(p), th) > 0.99);
    free(t.pairs);
    joust_planner_destroy(&p);

    /* confidence >= 1 never settles: it runs until the pairs are used up */
    o.confidence = 1;
    p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, N, &o);
    memset(&t, 0, sizeof t);
    drive(p, &j, 1000, 0, &t);
    joust_planner_stats_get(p, &st);
    CHECK(st.settled == 0 && t.m == N * (N - 1));
    CHECK(no_repeats(N, &t));
    free(t.pairs);
    joust_planner_destroy(&p);
}

/* Orders per policy for the batch planners. */
static void test_batch_orders(void)
{
    enum { N = 7 };
    double th[N];
    normal_theta(9, N, th);
    const joust_strategy ss[] = {JOUST_STRATEGY_SWISS, JOUST_STRATEGY_ADAPTIVE,
                                 JOUST_STRATEGY_TOP_K};
    for (int si = 0; si < 3; si++)
        for (int pi = 0; pi < 3; pi++) {
            joust_plan_opts o;
            joust_plan_opts_defaults(&o);
            o.order = all_orders[pi];
            o.confidence = 1;
            joust_planner *p = joust_planner_new(ss[si], N, &o);
            judge_t j = {N, th, 1.0, 1, 0, 0};
            trace_t t = {0};
            drive(p, &j, 1000, 0, &t);
            CHECK(no_repeats(N, &t));
            int ok = 1;
            for (size_t k = 0; k < t.m; k++) {
                joust_pair q = t.pairs[k];
                if (o.order == JOUST_ORDER_FIXED && q.first > q.second)
                    ok = 0;
                if (o.order == JOUST_ORDER_BOTH && k % 2 == 1 &&
                    !(q.first == t.pairs[k - 1].second && q.second == t.pairs[k - 1].first))
                    ok = 0;
            }
            CHECK(ok);
            size_t pairs = N * (N - 1) / 2;
            if (ss[si] == JOUST_STRATEGY_SWISS)
                CHECK(t.m == (o.order == JOUST_ORDER_BOTH ? 2 * pairs : pairs));
            else
                CHECK(t.m == (o.order == JOUST_ORDER_FIXED ? pairs : 2 * pairs));
            free(t.pairs);
            joust_planner_destroy(&p);
        }
}

/* ---- top-k ---------------------------------------------------------------- */

static void test_top_k_planted(void)
{
    enum { N = 16 };
    int found = 0, trials = 0;
    uint64_t calls = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        double th[N];
        normal_theta(100 + seed, N, th);
        for (uint32_t i = 0; i < N; i++)
            th[i] *= 0.3;
        uint32_t best = (uint32_t)(seed % N), worst = (uint32_t)((seed * 7 + 3) % N);
        if (worst == best)
            worst = (best + 1) % N;
        th[best] = 2.0;
        th[worst] = -2.0;
        joust_plan_opts o;
        joust_plan_opts_defaults(&o);
        o.order = JOUST_ORDER_RANDOM;
        o.seed = seed;
        o.confidence = 0.95;
        joust_planner *p = joust_planner_new(JOUST_STRATEGY_TOP_K, N, &o);
        judge_t j = {N, th, 1.5, 1, 0, 0};
        trace_t t = {0};
        drive(p, &j, 1000, 0, &t);
        const double *sc = joust_planner_scores(p);
        /* the planner's fit is from before its last (empty) batch; refit
         * from its own trace is what a caller does, but its scores suffice */
        found += joust_top1_match(N, sc, th) && joust_bottom1_match(N, sc, th);
        trials++;
        calls += t.m;
        joust_planner_stats st;
        joust_planner_stats_get(p, &st);
        CHECK(st.settled == 1);
        CHECK(no_repeats(N, &t));
        free(t.pairs);
        joust_planner_destroy(&p);
    }
    CHECK(found == trials);
    /* far fewer calls than a full round robin in both orders */
    CHECK(calls < (uint64_t)trials * N * (N - 1) / 3);
}

/* ---- swiss ---------------------------------------------------------------- */

static void test_swiss(void)
{
    for (uint32_t n = 2; n <= 13; n++) {
        double th[16];
        normal_theta(n, n, th);
        joust_plan_opts o;
        joust_plan_opts_defaults(&o);
        o.order = JOUST_ORDER_RANDOM;
        o.seed = n;
        joust_planner *p = joust_planner_new(JOUST_STRATEGY_SWISS, n, &o);
        judge_t j = {n, th, 1.0, 1, 0, 0};
        trace_t t = {0};
        drive(p, &j, 1000, 0, &t);
        /* no unordered pair twice, and it plays until every pair met */
        uint8_t met[16 * 16] = {0};
        int ok = 1;
        for (size_t k = 0; k < t.m; k++) {
            uint32_t a = t.pairs[k].first, b = t.pairs[k].second;
            uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
            if (met[lo * 16 + hi]++)
                ok = 0;
        }
        CHECK(ok);
        CHECK(t.m == (size_t)n * (n - 1) / 2);
        CHECK(t.max_batch <= n / 2); /* a round is a matching */
        free(t.pairs);
        joust_planner_destroy(&p);
    }
}

/* ---- k-regular ------------------------------------------------------------ */

static void test_k_regular(void)
{
    for (uint32_t n = 2; n <= 21; n++)
        for (uint32_t k = 1; k < n; k++)
            for (uint64_t seed = 1; seed <= 2; seed++) {
                joust_plan_opts o;
                joust_plan_opts_defaults(&o);
                o.order = JOUST_ORDER_FIXED;
                o.k = k;
                o.seed = seed;
                joust_planner *p = joust_planner_new(JOUST_STRATEGY_K_REGULAR, n, &o);
                joust_pair buf[512];
                size_t m = joust_planner_next(p, buf, 512);
                CHECK(joust_planner_next(p, buf + m, 512 - m) == 0);
                uint32_t deg[32] = {0};
                uint8_t adj[32 * 32] = {0};
                int simple = 1;
                for (size_t e = 0; e < m; e++) {
                    uint32_t a = buf[e].first, b = buf[e].second;
                    if (a >= b || adj[a * 32 + b]++)
                        simple = 0;
                    deg[a]++;
                    deg[b]++;
                }
                CHECK(simple);
                uint32_t at_k = 0, at_k1 = 0;
                for (uint32_t i = 0; i < n; i++) {
                    at_k += deg[i] == k;
                    at_k1 += deg[i] == k + 1;
                }
                if ((n * k) % 2 == 0)
                    CHECK(at_k == n);
                else
                    CHECK(at_k == n - 1 && at_k1 == 1);
                CHECK(m == (size_t)(n * k + 1) / 2);
                joust_planner_destroy(&p);
            }
    /* both orders: each edge twice, adjacent; the seed changes the graph */
    joust_plan_opts o;
    joust_plan_opts_defaults(&o);
    o.k = 3;
    o.seed = 1;
    joust_planner *p = joust_planner_new(JOUST_STRATEGY_K_REGULAR, 10, &o);
    joust_pair a[64], b[64];
    size_t ma = joust_planner_next(p, a, 64);
    joust_planner_destroy(&p);
    CHECK(ma == 30);
    for (size_t e = 0; e + 1 < ma; e += 2)
        CHECK(a[e].first == a[e + 1].second && a[e].second == a[e + 1].first);
    o.seed = 2;
    p = joust_planner_new(JOUST_STRATEGY_K_REGULAR, 10, &o);
    size_t mb = joust_planner_next(p, b, 64);
    joust_planner_destroy(&p);
    CHECK(mb == ma && memcmp(a, b, ma * sizeof *a) != 0);
    /* a budget cut keeps degrees within one of each other (rounds) */
    o.order = JOUST_ORDER_RANDOM;
    o.k = 5;
    o.budget_calls = 17;
    p = joust_planner_new(JOUST_STRATEGY_K_REGULAR, 12, &o);
    size_t mc = joust_planner_next(p, a, 64);
    joust_planner_destroy(&p);
    CHECK(mc == 17);
    uint32_t deg[12] = {0}, lo = 99, hi = 0;
    for (size_t e = 0; e < mc; e++) {
        deg[a[e].first]++;
        deg[a[e].second]++;
    }
    for (int i = 0; i < 12; i++) {
        lo = deg[i] < lo ? deg[i] : lo;
        hi = deg[i] > hi ? deg[i] : hi;
    }
    CHECK(hi - lo <= 1);
    /* the static joust_strategy_plan runs the same planner */
    joust_pair *plan = NULL;
    size_t np = joust_strategy_plan(JOUST_STRATEGY_K_REGULAR, 9, JOUST_ORDER_FIXED, NULL, &plan);
    CHECK(np == 18 && plan != NULL); /* default k = 4 */
    free(plan);
    CHECK(joust_strategy_plan(JOUST_STRATEGY_ADAPTIVE, 9, JOUST_ORDER_BOTH, NULL, &plan) == 0 &&
          plan == NULL);
}

/* ---- cross-model ---------------------------------------------------------- */

static void test_cross_model(void)
{
    enum { N = 11 };
    uint32_t models[N] = {7, 3, 7, 9, 3, 7, 9, 7, 3, 9, 7}; /* 7: 5, 3: 3, 9: 3 */
    joust_plan_opts o;
    joust_plan_opts_defaults(&o);
    o.order = JOUST_ORDER_FIXED;
    o.models = models;
    joust_planner *p = joust_planner_new(JOUST_STRATEGY_CROSS_MODEL, N, &o);
    joust_pair buf[256];
    size_t m = joust_planner_next(p, buf, 256);
    joust_planner_destroy(&p);
    CHECK(m == 5 * 3 + 5 * 3 + 3 * 3);
    int across = 1;
    uint8_t seen[N * N] = {0};
    for (size_t e = 0; e < m; e++) {
        uint32_t a = buf[e].first, b = buf[e].second;
        if (models[a] == models[b] || seen[a * N + b]++ || seen[b * N + a])
            across = 0;
    }
    CHECK(across);
    /* budget cuts: the model pairs take turns, so a prefix covers them
     * equally while each has pairs left */
    o.budget_calls = 12;
    o.order = JOUST_ORDER_RANDOM;
    p = joust_planner_new(JOUST_STRATEGY_CROSS_MODEL, N, &o);
    m = joust_planner_next(p, buf, 256);
    joust_planner_destroy(&p);
    CHECK(m == 12);
    int per[3] = {0, 0, 0}; /* (3,7), (3,9), (7,9) */
    for (size_t e = 0; e < m; e++) {
        uint32_t x = models[buf[e].first], y = models[buf[e].second];
        uint32_t lo = x < y ? x : y, hi = x < y ? y : x;
        per[lo == 3 && hi == 7 ? 0 : lo == 3 ? 1 : 2]++;
    }
    CHECK(per[0] == 4 && per[1] == 4 && per[2] == 4);
    /* one model only: nothing to plan */
    uint32_t same[4] = {1, 1, 1, 1};
    o.models = same;
    o.budget_calls = 0;
    p = joust_planner_new(JOUST_STRATEGY_CROSS_MODEL, 4, &o);
    CHECK(joust_planner_next(p, buf, 256) == 0 && joust_planner_done(p));
    joust_planner_destroy(&p);
    o.models = NULL;
    CHECK(joust_planner_new(JOUST_STRATEGY_CROSS_MODEL, 4, &o) == NULL);
}

/* ---- errors, replay ------------------------------------------------------- */

static void test_errors_and_replay(void)
{
    joust_plan_opts o;
    joust_plan_opts_defaults(&o);
    CHECK(joust_planner_new((joust_strategy)0, 5, &o) == NULL);
    CHECK(joust_planner_new((joust_strategy)7, 5, &o) == NULL);
    o.order = (joust_order_policy)0;
    CHECK(joust_planner_new(JOUST_STRATEGY_ROUND_ROBIN, 5, &o) == NULL);
    joust_plan_opts_defaults(&o);
    o.confidence = 0;
    CHECK(joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 5, &o) == NULL);
    joust_plan_opts_defaults(&o);
    o.budget_per_image = -1;
    CHECK(joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 5, &o) == NULL);
    joust_plan_opts_defaults(&o);
    o.prior_games = 0;
    CHECK(joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 5, &o) == NULL);
    CHECK(joust_planner_new(JOUST_STRATEGY_ADAPTIVE, JOUST_PLANNER_MAX_N_BATCH + 1, NULL) == NULL);
    CHECK(joust_planner_new(JOUST_STRATEGY_ROUND_ROBIN, JOUST_PLANNER_MAX_N + 1, NULL) == NULL);
    joust_planner_destroy(NULL);

    /* n < 2: done at once */
    for (uint32_t n = 0; n < 2; n++) {
        joust_planner *p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, n, NULL);
        joust_pair buf[4];
        CHECK(p && joust_planner_done(p) && joust_planner_next(p, buf, 4) == 0);
        CHECK(joust_planner_observe(p, 0, 1, 0.5) == JOUST_EINVAL);
        joust_planner_destroy(&p);
    }

    joust_planner *p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 6, NULL);
    joust_pair buf[64];
    size_t m = joust_planner_next(p, buf, 64);
    CHECK(m == 6); /* n/2 pairs, both orders */
    CHECK(joust_planner_next(p, buf + m, 64) == 0); /* waits for results */
    CHECK(!joust_planner_done(p));
    CHECK(joust_planner_observe(p, buf[0].first, buf[0].second, 1.5) == JOUST_EINVAL);
    CHECK(joust_planner_observe(p, buf[0].first, buf[0].second, -0.1) == JOUST_EINVAL);
    CHECK(joust_planner_observe(p, 6, 0, 0.5) == JOUST_EINVAL);
    CHECK(joust_planner_observe(p, 2, 2, 0.5) == JOUST_EINVAL);
    CHECK_RC(joust_planner_observe(p, buf[0].first, buf[0].second, 0.7));
    CHECK(joust_planner_observe(p, buf[0].first, buf[0].second, 0.7) == JOUST_EINVAL); /* twice */
    CHECK_RC(joust_planner_observe(p, buf[1].first, buf[1].second, JOUST_PLANNER_FAILED));
    joust_planner_stats st;
    joust_planner_stats_get(p, &st);
    CHECK(st.issued == 6 && st.observed == 2 && st.failed == 1 && st.outstanding == 4);
    joust_planner_destroy(&p);

    /* replay after a restart: the stored matches are marked issued, their
     * results observed; the budget counts them exactly */
    double th[8];
    normal_theta(5, 8, th);
    o = (joust_plan_opts){0};
    joust_plan_opts_defaults(&o);
    o.budget_calls = 20;
    o.order = JOUST_ORDER_RANDOM;
    o.confidence = 1;
    p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 8, &o);
    judge_t j = {8, th, 1.0, 1, 0, 0};
    m = joust_planner_next(p, buf, 64); /* first batch: 4 */
    for (size_t x = 0; x < 2; x++)      /* two results reached the store */
        CHECK_RC(joust_planner_observe(p, buf[x].first, buf[x].second,
                                       judge(&j, buf[x].first, buf[x].second)));
    joust_planner_destroy(&p); /* crash */
    p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 8, &o);
    for (size_t x = 0; x < m; x++)
        CHECK_RC(joust_planner_mark_issued(p, buf[x].first, buf[x].second));
    CHECK(joust_planner_mark_issued(p, buf[0].first, buf[0].second) == JOUST_EINVAL);
    CHECK(joust_planner_next(p, buf + m, 64) == 0); /* waits for the replayed ones */
    for (size_t x = 0; x < m; x++)
        CHECK_RC(joust_planner_observe(p, buf[x].first, buf[x].second,
                                       judge(&j, buf[x].first, buf[x].second)));
    trace_t t = {0};
    drive(p, &j, 1000, 0, &t);
    joust_planner_stats_get(p, &st);
    CHECK(st.issued == 20 && t.m == 16 && joust_planner_done(p));
    int refused = 1; /* the budget is spent: nothing more can be marked */
    for (uint32_t a = 0; a < 8; a++)
        for (uint32_t b = 0; b < 8; b++)
            refused &= joust_planner_mark_issued(p, a, b) == JOUST_EINVAL;
    CHECK(refused);
    free(t.pairs);
    joust_planner_destroy(&p);

    /* interleaved replay (mark, observe, mark, observe...) plans once, in
     * the next call of next() */
    p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 8, &o);
    joust_pair first[8];
    m = joust_planner_next(p, first, 8);
    for (size_t x = 0; x < m; x++)
        CHECK_RC(joust_planner_observe(p, first[x].first, first[x].second,
                                       judge(&j, first[x].first, first[x].second)));
    joust_planner_destroy(&p);
    p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, 8, &o);
    joust_planner_stats_get(p, &st);
    uint32_t b0 = st.batches;
    for (size_t x = 0; x < m; x++) {
        CHECK_RC(joust_planner_mark_issued(p, first[x].first, first[x].second));
        CHECK_RC(joust_planner_observe(p, first[x].first, first[x].second,
                                       judge(&j, first[x].first, first[x].second)));
        CHECK(!joust_planner_done(p));
    }
    joust_planner_stats_get(p, &st);
    CHECK(st.batches == b0 && st.issued == m && st.outstanding == 0);
    CHECK(joust_planner_next(p, buf, 64) > 0);
    joust_planner_stats_get(p, &st);
    CHECK(st.batches == b0 + 1);
    joust_planner_destroy(&p);
}

static void test_names(void)
{
    static const struct {
        const char *name;
        joust_strategy s;
    } names[] = {{"round_robin", JOUST_STRATEGY_ROUND_ROBIN}, {"k-regular", JOUST_STRATEGY_K_REGULAR},
                 {"random", JOUST_STRATEGY_K_REGULAR},        {"swiss", JOUST_STRATEGY_SWISS},
                 {"adaptive", JOUST_STRATEGY_ADAPTIVE},       {"top-k", JOUST_STRATEGY_TOP_K},
                 {"top_k", JOUST_STRATEGY_TOP_K},             {"cross-model", JOUST_STRATEGY_CROSS_MODEL}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        joust_strategy s = (joust_strategy)0;
        CHECK_RC(joust_strategy_parse(names[k].name, &s));
        CHECK(s == names[k].s);
        joust_strategy back = (joust_strategy)0;
        CHECK_RC(joust_strategy_parse(joust_strategy_name(s), &back));
        CHECK(back == s);
    }
    CHECK(joust_strategy_is_adaptive(JOUST_STRATEGY_ADAPTIVE) &&
          joust_strategy_is_adaptive(JOUST_STRATEGY_SWISS) &&
          joust_strategy_is_adaptive(JOUST_STRATEGY_TOP_K) &&
          !joust_strategy_is_adaptive(JOUST_STRATEGY_ROUND_ROBIN) &&
          !joust_strategy_is_adaptive(JOUST_STRATEGY_CROSS_MODEL));
    CHECK(strcmp(joust_strategy_name((joust_strategy)42), "?") == 0);
}

int main(void)
{
    test_round_robin_parity();
    test_budget_exact();
    test_determinism();
    test_budget_prefix();
    test_adaptive_settles();
    test_batch_orders();
    test_top_k_planted();
    test_swiss();
    test_k_regular();
    test_cross_model();
    test_errors_and_replay();
    test_names();
    return test_report();
}
