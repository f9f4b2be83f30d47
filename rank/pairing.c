#include "pairing.h"

#include <assert.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

int joust_order_policy_parse(const char *s, joust_order_policy *out)
{
    static const joust_order_policy all[] = {JOUST_ORDER_BOTH, JOUST_ORDER_RANDOM,
                                             JOUST_ORDER_FIXED};
    for (size_t k = 0; s && k < sizeof all / sizeof all[0]; k++) {
        if (strcmp(s, joust_order_policy_name(all[k])) == 0) {
            *out = all[k];
            return 0;
        }
    }
    return JOUST_EINVAL;
}

const char *joust_order_policy_name(joust_order_policy p)
{
    switch (p) {
    case JOUST_ORDER_BOTH: return "both";
    case JOUST_ORDER_RANDOM: return "random";
    case JOUST_ORDER_FIXED: return "fixed";
    }
    return "?";
}

size_t joust_round_robin_count(uint32_t n, joust_order_policy pol)
{
    size_t once = n < 2 ? 0 : (size_t)n * (n - 1) / 2;
    switch (pol) {
    case JOUST_ORDER_BOTH: return 2 * once;
    case JOUST_ORDER_RANDOM:
    case JOUST_ORDER_FIXED: return once;
    }
    return 0;
}

size_t joust_round_robin(uint32_t n, joust_order_policy pol, joust_rng_t *rng, joust_pair *out)
{
    if (joust_round_robin_count(n, pol) == 0)
        return 0;
    assert(pol != JOUST_ORDER_RANDOM || rng);
    size_t k = 0;
    for (uint32_t i = 0; i + 1 < n; i++) {
        /* Even runs end at (i, n-1) and odd runs start there; odd runs end at
         * (i, i+1) and the next run starts with i+1: no cache-cold switch. */
        for (uint32_t t = 0; t < n - 1 - i; t++) {
            uint32_t j = i % 2 == 0 ? i + 1 + t : n - 1 - t;
            joust_pair p = {i, j};
            if (pol == JOUST_ORDER_RANDOM && (joust_rng_u64(rng) >> 63))
                p = (joust_pair){j, i};
            out[k++] = p;
            if (pol == JOUST_ORDER_BOTH)
                out[k++] = (joust_pair){j, i};
        }
    }
    return k;
}

int joust_strategy_parse(const char *name, joust_strategy *out)
{
    if (name && (strcmp(name, "round_robin") == 0 || strcmp(name, "round-robin") == 0)) {
        *out = JOUST_STRATEGY_ROUND_ROBIN;
        return 0;
    }
    return JOUST_EINVAL;
}

const char *joust_strategy_name(joust_strategy s)
{
    switch (s) {
    case JOUST_STRATEGY_ROUND_ROBIN: return "round_robin";
    }
    return "?";
}

size_t joust_strategy_plan(joust_strategy s, uint32_t n, joust_order_policy pol, joust_rng_t *rng,
                           joust_pair **out)
{
    *out = NULL;
    switch (s) {
    case JOUST_STRATEGY_ROUND_ROBIN: {
        size_t cap = joust_round_robin_count(n, pol);
        if (cap == 0)
            return 0;
        *out = xmalloc(cap * sizeof **out);
        return joust_round_robin(n, pol, rng, *out);
    }
    }
    assert(!"unknown strategy");
    return 0;
}
