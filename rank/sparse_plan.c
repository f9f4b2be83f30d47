/* The k-regular stream of sparse_plan.h: k seeded random matchings. */
#include "sparse_plan.h"

#include <stdlib.h>

#include "err.h"
#include "rng.h"
#include "xalloc.h"

struct joust_sparse_plan {
    uint32_t n, k, round; /* round whose permutation perm holds; UINT32_MAX: none */
    joust_order_policy pol;
    uint64_t seed, pos, total, pairs; /* pairs per round */
    uint32_t *perm;
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

void joust_sparse_plan_destroy(joust_sparse_plan **p_p)
{
    if (!p_p || !*p_p)
        return;
    free((*p_p)->perm);
    free(*p_p);
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

size_t joust_sparse_plan_next(joust_sparse_plan *p, joust_pair *out, size_t max)
{
    uint64_t cpp = per_pair(p->pol);
    size_t got = 0;
    while (got < max && p->pos < p->total) {
        uint64_t pair = p->pos / cpp, sub = p->pos % cpp;
        uint32_t r = (uint32_t)(pair / p->pairs);
        uint64_t i = pair % p->pairs;
        load_round(p, r);
        uint32_t a = p->perm[2 * i], b = 2 * i + 1 < p->n ? p->perm[2 * i + 1] : p->perm[0];
        int swap;
        if (p->pol == JOUST_ORDER_BOTH)
            swap = sub == 1;
        else if (p->pol == JOUST_ORDER_FIXED)
            swap = a > b;
        else
            swap = (int)(mix(p->seed ^ mix(pair + 0x5851f42d4c957f2dull)) & 1);
        out[got++] = swap ? (joust_pair){b, a} : (joust_pair){a, b};
        p->pos++;
    }
    return got;
}

int joust_sparse_plan_skip(joust_sparse_plan *p, uint64_t pos)
{
    if (pos > p->total)
        return JOUST_EINVAL;
    p->pos = pos;
    return 0;
}

uint64_t joust_sparse_plan_issued(const joust_sparse_plan *p) { return p->pos; }
uint64_t joust_sparse_plan_total(const joust_sparse_plan *p) { return p->total; }
