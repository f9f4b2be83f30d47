/* The vocabulary of pairing: presentation-order policies, the strategy
 * names, and the round-robin plan (every pair of a prompt). Deterministic
 * for a given rng seed; no global state (thread-safe with one rng per
 * thread); output arrays are caller-owned. Depends on nothing in rank/: the
 * planners (planner.h) build on it, never the other way round. The
 * strategies themselves are explained in docs/ranking.md. */
#ifndef JOUST_PAIRING_H
#define JOUST_PAIRING_H
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

typedef enum { JOUST_ORDER_BOTH = 1, JOUST_ORDER_RANDOM = 2, JOUST_ORDER_FIXED = 3 } joust_order_policy;

/* "both" | "random" | "fixed". @return 0 or JOUST_EINVAL (out untouched). */
int joust_order_policy_parse(const char *s, joust_order_policy *out);
/* Static string; "?" for an invalid value. */
const char *joust_order_policy_name(joust_order_policy p);

/* Indices into the prompt's image list, in presentation order. */
typedef struct {
    uint32_t first, second;
} joust_pair;

/* Every unordered pair once (fixed: lower index first; random: order drawn
 * from rng) or twice (both: (i,j) then (j,i) adjacent). Pairs of item 0 come
 * first, then item 1's remaining pairs, ..., each item's run alternating
 * direction (0-1,0-2,0-3, 1-3,1-2, 2-3) so that every consecutive pair shares
 * an image: a VLM server reuses an image's encoding while it is cached.
 * rng may be NULL unless pol is JOUST_ORDER_RANDOM. An invalid pol yields 0.
 * @return the count written to out (capacity joust_round_robin_count). */
size_t joust_round_robin_count(uint32_t n, joust_order_policy pol);
size_t joust_round_robin(uint32_t n, joust_order_policy pol, joust_rng_t *rng, joust_pair *out);

/* The strategies of planner.h (which describes each; joust_strategy_plan
 * there plans the static ones up front). round_robin and
 * k_regular are static (the whole plan is known up front); cross_model is
 * static but needs each image's model; swiss, adaptive and top_k depend on
 * the results, so only joust_planner can run them. */
typedef enum {
    JOUST_STRATEGY_ROUND_ROBIN = 1,
    JOUST_STRATEGY_K_REGULAR = 2,
    JOUST_STRATEGY_SWISS = 3,
    JOUST_STRATEGY_ADAPTIVE = 4,
    JOUST_STRATEGY_TOP_K = 5,
    JOUST_STRATEGY_CROSS_MODEL = 6
} joust_strategy;

/* "round_robin" (alias "round-robin"), "k_regular" ("k-regular", "random"),
 * "swiss", "adaptive", "top_k" ("top-k"), "cross_model" ("cross-model").
 * @return 0 or JOUST_EINVAL (out untouched). */
int joust_strategy_parse(const char *name, joust_strategy *out);
/* Static string (the first name above); "?" for an invalid value. */
const char *joust_strategy_name(joust_strategy s);
/* 1 when the pairs depend on results (swiss, adaptive, top_k): only
 * joust_planner can plan them. 0 otherwise, also for an invalid value. */
int joust_strategy_is_adaptive(joust_strategy s);

#endif
