/* Pairing strategies: which image pairs of one prompt go to the judge, and
 * in which presentation order. Deterministic for a given rng seed; no global
 * state (thread-safe with one rng per thread). Output arrays are caller-owned
 * except joust_strategy_plan's, which the caller frees with free().
 * New strategies (Swiss, adaptive, top-k, k-regular) get an enum value, a
 * name in joust_strategy_parse and a case in joust_strategy_plan. */
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

typedef enum { JOUST_STRATEGY_ROUND_ROBIN = 1 } joust_strategy;

/* "round_robin" (alias "round-robin"). @return 0 or JOUST_EINVAL. */
int joust_strategy_parse(const char *name, joust_strategy *out);
const char *joust_strategy_name(joust_strategy s);

/* Plans the pairs of one prompt of n images into a new array *out (xmalloc;
 * the caller frees it; NULL when the count is 0 or s is invalid).
 * @return the number of pairs. */
size_t joust_strategy_plan(joust_strategy s, uint32_t n, joust_order_policy pol, joust_rng_t *rng,
                           joust_pair **out);

#endif
