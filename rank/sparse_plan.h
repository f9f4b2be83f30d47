/* A k-regular pairing plan over one large group (up to 2^32 - 1 images: a
 * caption corpus under `joust run --group all`), as a deterministic
 * stream, for groups over the dense planner's limit (planner.h,
 * JOUST_PLANNER_MAX_N), whose per-pair state would not fit.
 *
 * The plan: k rounds; round r is a random perfect matching of the group,
 * (perm_r[2i], perm_r[2i+1]) for a seeded Fisher-Yates permutation perm_r
 * (with n odd, perm_r[n-1] also meets perm_r[0]). The union of k random
 * matchings is a random k-regular multigraph: connected and an expander
 * with high probability, so a global Bradley-Terry fit (bt_sparse.h)
 * ranks the whole group. A pair may recur in two rounds (about k^2/4
 * times in the whole plan, whatever n), which the fit reads as one more
 * comparison. Orders per pair as joust_round_robin: both = (a,b) then
 * (b,a); random = a coin from a hash of (seed, round, pair); fixed =
 * lower index first. Any prefix of the stream keeps the degrees within
 * one round of each other.
 *
 * Determinism and resume: the i-th match depends on (n, k, order, seed)
 * and i only, so a planner created again after a crash and skipped to the
 * count issued before (joust_sparse_plan_skip) goes on with exactly the
 * matches that would have followed.
 *
 * Memory: one permutation (4 n bytes); O(n) time per round started (or
 * per skip). Threads: none; one plan per thread. xmalloc aborts on OOM. */
#ifndef JOUST_SPARSE_PLAN_H
#define JOUST_SPARSE_PLAN_H
#include <stddef.h>
#include <stdint.h>

#include "pairing.h"

typedef struct joust_sparse_plan joust_sparse_plan;

/* The degree k the plan uses: k when k > 0, else the smallest k that fills
 * cap calls (4 when cap is 0: no cap). Always >= 1. */
uint32_t joust_sparse_plan_degree(uint32_t n, uint32_t k, joust_order_policy pol, uint64_t cap);

/* A plan of n >= 2 images with degree joust_sparse_plan_degree(n, k, pol,
 * cap), cut at cap calls (0: no cap). NULL for an invalid order policy or
 * n < 2. */
joust_sparse_plan *joust_sparse_plan_new(uint32_t n, uint32_t k, joust_order_policy pol,
                                         uint64_t seed, uint64_t cap);
/* Frees it and NULLs *p_p; accepts NULL and *p_p == NULL. */
void joust_sparse_plan_destroy(joust_sparse_plan **p_p);

/* The adaptive plan (joust run --strategy adaptive or swiss on a group
 * over the dense planners' limit): the same rounds and degrees, but round
 * 1 only is random; each later round is planned when every result of the
 * round before is in, from a sparse Bradley-Terry fit (bt_sparse.h) of all
 * results so far: the images are sorted by a draw from its posterior,
 * theta_i + se_i z_i (z seeded by the round), and neighbours meet, so that
 * images of close (uncertain) scores are compared, a little differently in
 * each round. The fit reads the results in position order, so the plan
 * depends on the results, never on the order they arrived in. Costs one
 * sparse fit per round (seconds at a million images: the caller waits)
 * and 12 bytes per match (its pair and result) besides the static plan's
 * memory. No confidence stop: it plays its k rounds. */
joust_sparse_plan *joust_sparse_plan_new_adaptive(uint32_t n, uint32_t k, joust_order_policy pol,
                                                  uint64_t seed, uint64_t cap);

/* Writes the next up to max matches (indices into the group) to out.
 * @return how many; 0 once the plan is used up, or (adaptive) while it
 * waits for the results of the last round. */
size_t joust_sparse_plan_next(joust_sparse_plan *p, joust_pair *out, size_t max);

/* Adaptive: the result of an issued match (p_first in [0,1], NaN: failed
 * for good). @return 0, or JOUST_EINVAL (not adaptive, not outstanding, or
 * p_first finite outside [0,1]; nothing changes). */
int joust_sparse_plan_observe(joust_sparse_plan *p, uint32_t first, uint32_t second,
                              double p_first);
/* Adaptive, after a restart: records the stored match (first, second) as
 * the next issued one (its round planned from the results replayed so far,
 * as next() would), outstanding until observe(). Replaying the stored
 * matches in id order with their results rebuilds the plan's state.
 * @return 0, or JOUST_EINVAL (not adaptive, plan full, bad pair, or the
 * pair already outstanding). */
int joust_sparse_plan_replay(joust_sparse_plan *p, uint32_t first, uint32_t second);
/* Adaptive: issued matches without a result. */
uint64_t joust_sparse_plan_outstanding(const joust_sparse_plan *p);

/* Static plans: moves to position pos (matches already issued), at most
 * the total. @return 0 or JOUST_EINVAL (pos past the total, or an adaptive
 * plan: replay it instead; nothing changes). */
int joust_sparse_plan_skip(joust_sparse_plan *p, uint64_t pos);

/* Matches issued (the position), and the plan's total. */
uint64_t joust_sparse_plan_issued(const joust_sparse_plan *p);
uint64_t joust_sparse_plan_total(const joust_sparse_plan *p);

#endif
