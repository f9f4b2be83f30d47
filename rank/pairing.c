#include "pairing.h"

#include <assert.h>
#include <string.h>

#include "err.h"

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

static const struct {
    const char *name;
    joust_strategy s;
} strategy_names[] = {
    {"round_robin", JOUST_STRATEGY_ROUND_ROBIN}, {"round-robin", JOUST_STRATEGY_ROUND_ROBIN},
    {"k_regular", JOUST_STRATEGY_K_REGULAR},     {"k-regular", JOUST_STRATEGY_K_REGULAR},
    {"random", JOUST_STRATEGY_K_REGULAR},        {"swiss", JOUST_STRATEGY_SWISS},
    {"adaptive", JOUST_STRATEGY_ADAPTIVE},       {"top_k", JOUST_STRATEGY_TOP_K},
    {"top-k", JOUST_STRATEGY_TOP_K},             {"cross_model", JOUST_STRATEGY_CROSS_MODEL},
    {"cross-model", JOUST_STRATEGY_CROSS_MODEL},
};

int joust_strategy_parse(const char *name, joust_strategy *out)
{
    for (size_t k = 0; name && k < sizeof strategy_names / sizeof strategy_names[0]; k++) {
        if (strcmp(name, strategy_names[k].name) == 0) {
            *out = strategy_names[k].s;
            return 0;
        }
    }
    return JOUST_EINVAL;
}

const char *joust_strategy_name(joust_strategy s)
{
    switch (s) {
    case JOUST_STRATEGY_ROUND_ROBIN: return "round_robin";
    case JOUST_STRATEGY_K_REGULAR: return "k_regular";
    case JOUST_STRATEGY_SWISS: return "swiss";
    case JOUST_STRATEGY_ADAPTIVE: return "adaptive";
    case JOUST_STRATEGY_TOP_K: return "top_k";
    case JOUST_STRATEGY_CROSS_MODEL: return "cross_model";
    }
    return "?";
}

int joust_strategy_is_adaptive(joust_strategy s)
{
    return s == JOUST_STRATEGY_SWISS || s == JOUST_STRATEGY_ADAPTIVE || s == JOUST_STRATEGY_TOP_K;
}
