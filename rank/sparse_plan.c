/* The k-regular stream of sparse_plan.h: k seeded random matchings. */
#include "sparse_plan.h"

#include <math.h>
#include <stdlib.h>

#include "bt_sparse.h"
#include "err.h"
#include "rng.h"
#include "u64map.h"
#include "xalloc.h"

struct joust_sparse_plan {
    uint32_t n, k, round; /* round whose permutation perm holds; UINT32_MAX: none */
    joust_order_policy pol;
    uint64_t seed, pos, total, pairs; /* pairs per round */
    uint32_t *perm;
    /* adaptive: every issued match and its result, by position */
    int adaptive;
    joust_pair *issued;
    float *res;             /* NaN: failed or not in yet */
    joust_u64map_t out;     /* outstanding (first, second) -> position + 1 */
    uint64_t outstanding;
    double *theta, *se;
};

static uint64_t per_pair(joust_order_policy pol) { return pol == JOUST_ORDER_BOTH ? 2 : 1; }

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint32_t joust_sparse_plan_degree(uint32_t n, uint32_t k, joust_order_policy pol, uint64_t cap)
{
    if (k > 0)
        return k;
    if (cap == 0 || n < 2)
        return 4;
    uint64_t per_round = (uint64_t)(n / 2 + n % 2) * per_pair(pol);
    uint64_t kk = (cap + per_round - 1) / per_round;
    return kk > UINT32_MAX ? UINT32_MAX : (uint32_t)(kk ? kk : 1);
}

joust_sparse_plan *joust_sparse_plan_new(uint32_t n, uint32_t k, joust_order_policy pol,
                                         uint64_t seed, uint64_t cap)
{
    if (n < 2 || (pol != JOUST_ORDER_BOTH && pol != JOUST_ORDER_RANDOM && pol != JOUST_ORDER_FIXED))
        return NULL;
    joust_sparse_plan *p = xcalloc(1, sizeof *p);
    p->n = n;
    p->k = joust_sparse_plan_degree(n, k, pol, cap);
    p->pol = pol;
    p->seed = seed;
    p->pairs = n / 2 + n % 2;
    p->total = (uint64_t)p->k * p->pairs * per_pair(pol);
    if (cap && cap < p->total)
        p->total = cap;
    p->round = UINT32_MAX;
    p->perm = xmalloc((size_t)n * sizeof *p->perm);
    return p;
}

joust_sparse_plan *joust_sparse_plan_new_adaptive(uint32_t n, uint32_t k, joust_order_policy pol,
                                                  uint64_t seed, uint64_t cap)
{
    joust_sparse_plan *p = joust_sparse_plan_new(n, k, pol, seed, cap);
    if (!p)
        return NULL;
    p->adaptive = 1;
    p->issued = xmalloc((size_t)p->total * sizeof *p->issued);
    p->res = xmalloc((size_t)p->total * sizeof *p->res);
    joust_u64map_init(&p->out);
    p->theta = xcalloc(n, sizeof *p->theta);
    p->se = xmalloc((size_t)n * sizeof *p->se);
    return p;
}

void joust_sparse_plan_destroy(joust_sparse_plan **p_p)
{
    if (!p_p || !*p_p)
        return;
    joust_sparse_plan *p = *p_p;
    free(p->perm);
    if (p->adaptive) {
        free(p->issued);
        free(p->res);
        joust_u64map_free(&p->out);
        free(p->theta);
        free(p->se);
    }
    free(p);
    *p_p = NULL;
}

/* perm = round r's permutation (seeded by the plan's seed and r alone). */
static void load_round(joust_sparse_plan *p, uint32_t r)
{
    if (p->round == r)
        return;
    joust_rng_t g;
    joust_rng_seed(&g, mix(p->seed ^ mix((uint64_t)r + 1)));
    for (uint32_t i = 0; i < p->n; i++)
        p->perm[i] = i;
    for (uint32_t i = p->n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)joust_rng_below(&g, (uint64_t)i + 1), t = p->perm[i];
        p->perm[i] = p->perm[j];
        p->perm[j] = t;
    }
    p->round = r;
}

/* The images sorted by a draw from the current fit's posterior
 * (theta + se z, z seeded by the round): neighbours are close in score
 * (an uncertain pair, the most informative) and differ from round to
 * round. The fit covers every result so far, in position order, so the
 * plan does not depend on the order in which results arrived. */
typedef struct {
    double key;
    uint32_t i;
} keyed_t;

static int by_key(const void *x, const void *y)
{
    const keyed_t *a = x, *b = y;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

static void plan_adaptive_round(joust_sparse_plan *p, uint32_t r)
{
    joust_bt_edge *e = xmalloc((size_t)(p->pos ? p->pos : 1) * sizeof *e);
    size_t m = 0;
    for (uint64_t i = 0; i < p->pos; i++)
        if (p->res[i] == p->res[i]) /* not NaN */
            e[m++] = (joust_bt_edge){p->issued[i].first, p->issued[i].second, p->res[i], 1.0};
    if (joust_bt_sparse_fit(p->n, e, m, NULL, 1, p->theta, p->se, NULL) != 0)
        for (uint32_t i = 0; i < p->n; i++) /* cannot happen: valid edges; plan at random */
            p->theta[i] = 0, p->se[i] = 1;
    free(e);
    joust_rng_t g;
    joust_rng_seed(&g, mix(p->seed ^ mix((uint64_t)r + 0x9e3779b97f4a7c15ull)));
    keyed_t *k = xmalloc((size_t)p->n * sizeof *k);
    for (uint32_t i = 0; i < p->n; i++)
        k[i] = (keyed_t){p->theta[i] + p->se[i] * joust_rng_normal(&g), i};
    qsort(k, p->n, sizeof *k, by_key);
    for (uint32_t i = 0; i < p->n; i++)
        p->perm[i] = k[i].i;
    free(k);
    p->round = r;
}

/* The match at position pos of the current round (perm). */
static joust_pair pair_at(joust_sparse_plan *p, uint64_t pos)
{
    uint64_t cpp = per_pair(p->pol), pair = pos / cpp, sub = pos % cpp, i = pair % p->pairs;
    uint32_t a = p->perm[2 * i], b = 2 * i + 1 < p->n ? p->perm[2 * i + 1] : p->perm[0];
    int swap;
    if (p->pol == JOUST_ORDER_BOTH)
        swap = sub == 1;
    else if (p->pol == JOUST_ORDER_FIXED)
        swap = a > b;
    else
        swap = (int)(mix(p->seed ^ mix(pair + 0x5851f42d4c957f2dull)) & 1);
    return swap ? (joust_pair){b, a} : (joust_pair){a, b};
}

static uint64_t pair_key(joust_pair q) { return (uint64_t)q.first << 32 | q.second; }

/* Adaptive: makes the round of position pos current; 0 when it must wait
 * for the results of the round before. */
static int adaptive_ready(joust_sparse_plan *p)
{
    uint32_t r = (uint32_t)(p->pos / per_pair(p->pol) / p->pairs);
    if (r == p->round)
        return 1;
    if (r == 0) {
        load_round(p, 0);
        return 1;
    }
    if (p->outstanding)
        return 0;
    plan_adaptive_round(p, r);
    return 1;
}

static void adaptive_issue(joust_sparse_plan *p, joust_pair q)
{
    p->issued[p->pos] = q;
    p->res[p->pos] = NAN;
    joust_u64map_put(&p->out, pair_key(q), p->pos + 1); /* first != second: key != 0 */
    p->outstanding++;
    p->pos++;
}

int joust_sparse_plan_observe(joust_sparse_plan *p, uint32_t first, uint32_t second, double p_first)
{
    uint64_t at;
    joust_pair q = {first, second};
    if (!p->adaptive || first == second || !joust_u64map_get(&p->out, pair_key(q), &at) ||
        (p_first == p_first && !(p_first >= 0 && p_first <= 1)))
        return JOUST_EINVAL;
    joust_u64map_del(&p->out, pair_key(q));
    p->res[at - 1] = (float)p_first; /* NaN stays NaN: failed */
    p->outstanding--;
    return 0;
}

int joust_sparse_plan_replay(joust_sparse_plan *p, uint32_t first, uint32_t second)
{
    if (!p->adaptive || p->pos >= p->total || first >= p->n || second >= p->n || first == second)
        return JOUST_EINVAL;
    uint64_t at;
    if (joust_u64map_get(&p->out, pair_key((joust_pair){first, second}), &at))
        return JOUST_EINVAL;
    uint64_t keep = p->outstanding;
    p->outstanding = 0; /* a round in the store was planned after the last one ended */
    adaptive_ready(p);
    p->outstanding = keep;
    adaptive_issue(p, (joust_pair){first, second});
    return 0;
}

uint64_t joust_sparse_plan_outstanding(const joust_sparse_plan *p) { return p->outstanding; }

size_t joust_sparse_plan_next(joust_sparse_plan *p, joust_pair *out, size_t max)
{
    uint64_t cpp = per_pair(p->pol);
    size_t got = 0;
    while (p->adaptive && got < max && p->pos < p->total && adaptive_ready(p)) {
        out[got] = pair_at(p, p->pos);
        adaptive_issue(p, out[got++]);
    }
    while (!p->adaptive && got < max && p->pos < p->total) {
        load_round(p, (uint32_t)(p->pos / cpp / p->pairs));
        out[got++] = pair_at(p, p->pos++);
    }
    return got;
}

int joust_sparse_plan_skip(joust_sparse_plan *p, uint64_t pos)
{
    if (pos > p->total || p->adaptive)
        return JOUST_EINVAL;
    p->pos = pos;
    return 0;
}

uint64_t joust_sparse_plan_issued(const joust_sparse_plan *p) { return p->pos; }
uint64_t joust_sparse_plan_total(const joust_sparse_plan *p) { return p->total; }
