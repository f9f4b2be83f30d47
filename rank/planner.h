/* Incremental pairing planners: which matches of one prompt the judge sees
 * next, given the results so far (docs/ranking.md §3 compares them). One
 * planner per prompt; the coordinator asks for a batch, dispatches it,
 * reports every result (also the failed ones) and asks again.
 *
 *   joust_planner *p = joust_planner_new(JOUST_STRATEGY_ADAPTIVE, n, &opts);
 *   while (!joust_planner_done(p)) {
 *       size_t k = joust_planner_next(p, buf, cap); // 0: wait for results
 *       ... dispatch buf[0..k); for each result, in any order:
 *       joust_planner_observe(p, first, second, p_first); // NAN: failed
 *   }
 *
 * Strategies (pairing.h's joust_strategy):
 *   round_robin  exactly joust_round_robin(n, order, rng seeded with seed),
 *                cut to the budget. All at once, never waits.
 *   k_regular    a random simple graph where every image has exactly k
 *                opponents (one image k+1 when n*k is odd), issued as k
 *                (or k+1) matchings so that any budget cut keeps the degrees
 *                within one of each other. k = opts.k, or the smallest k
 *                that fills the budget when opts.k is 0 (4 without budget);
 *                clamped to n-1. Never waits.
 *   swiss        rounds; round 1 a random matching, then the images sorted
 *                by the current BT fit are paired with the nearest neighbour
 *                they have not met. An unordered pair meets once. Waits for
 *                each round's results.
 *   adaptive     batches of disjoint pairs chosen by expected information
 *                from the current BT posterior (Laplace: MAP theta of the
 *                results so far, covariance S = H^-1 scaled by the judge's
 *                dispersion, the Pearson chi^2 of the results shrunk towards
 *                1: soft outcomes scatter less than Bernoulli votes and
 *                carry more information). A candidate pair (i,j) is worth
 *                the variance it removes from every pair difference (k,l),
 *                weighted by phi(z_kl)/v_kl (close scores, large
 *                uncertainty): one quadratic form per candidate with
 *                G = S L S, L the Laplacian of those weights; O(n^3) per
 *                batch. Greedy by worth, each image at most once per batch.
 *                Refits (warm-started) when a batch's results are all in.
 *                Settled when the mean over all pairs of the posterior
 *                probability that the fitted order of the pair is wrong is
 *                at most 1 - confidence (the expected Kendall tau against
 *                the truth is then at least 2 confidence - 1); also done
 *                when the budget is spent or no pair is left.
 *   top_k        the same machinery with weight only on the pairs that
 *                decide the best k and the worst k images (a fitted top-k
 *                or bottom-k image against one outside), batches holding
 *                only pairs worth >= 30 % of the best one, an image in up
 *                to 4 of them: few contenders get many calls. Finds the
 *                best and worst images (e.g. for DPO pairs) with few calls.
 *                Settled when the probabilities that an outsider beats a
 *                top-k image sum to at most 1 - confidence, and likewise
 *                for the bottom k.
 *   cross_model  every pair of images of different generator models
 *                (opts.models), model pairs interleaved and image degrees
 *                balanced within each model pair, so a budget cut keeps
 *                every model pair equally covered. Never waits.
 *
 * Orders: round_robin and static strategies follow opts.order per pair as
 * joust_round_robin does (both: (i,j) then (j,i)). swiss, adaptive, top_k:
 * both = each chosen pair in both orders (2 calls); random = one call, order
 * drawn from the rng, and a later call of the same pair takes the other
 * order; fixed = one call per pair, lower index first.
 * No planner issues an ordered pair twice: a deterministic (temperature 0)
 * judge would answer the same again, and a failed pair is not retried here
 * (the coordinator retries attempts itself before it reports a failure).
 *
 * Budget: the cap is min(budget_calls, floor(budget_per_image * n)) calls
 * (a zero field means no cap from it). A planner never issues more; it
 * issues exactly that many unless it is done first (settled, pairs used
 * up, or a static plan shorter than the cap). A failed match counts: it was
 * issued. With order both the last pair may get one order only.
 *
 * Determinism: for the same strategy, n, opts and the same results, the
 * matches and their order are identical (across machines as far as libm's
 * exp/erfc agree to the last bit: the batch planners rank candidates by
 * floating-point worth, ties broken by a seeded hash). Batch planners
 * plan a new batch only when every result of the previous one is in, and
 * keep one result slot per ordered pair, so the order in which results
 * arrive does not matter either.
 *
 * State per planner (per prompt): the options, a state byte and a float
 * result per ordered pair (5 n^2 bytes; 1.3 KB at n = 16, 20 KB at
 * n = 64), the queue of planned but not yet handed-out matches (static
 * strategies: their whole plan, 8 bytes a match), n doubles of scores (the
 * warm start of the next fit) and n uint32 model ids for cross_model. The
 * batch planners use O(n^2) doubles of scratch during planning only.
 * n is limited to JOUST_PLANNER_MAX_N (JOUST_PLANNER_MAX_N_BATCH for the
 * batch planners).
 *
 * Threads: no global state; one planner must not be used by two threads at
 * once. Memory comes from xmalloc (aborts on out-of-memory). */
#ifndef JOUST_PLANNER_H
#define JOUST_PLANNER_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "pairing.h"

#define JOUST_PLANNER_MAX_N 4096u
/* swiss, adaptive, top_k: O(n^3) per batch, under a second at this size. */
#define JOUST_PLANNER_MAX_N_BATCH 512u
/* p_first value that reports a failed match to joust_planner_observe. */
#define JOUST_PLANNER_FAILED NAN

typedef struct {
    joust_order_policy order; /* default JOUST_ORDER_BOTH */
    uint64_t seed;            /* rng seed: orders, random pairings, tie breaks; default 0 */
    uint64_t budget_calls;    /* most calls for this prompt; 0 = no cap */
    double budget_per_image;  /* most calls per image: cap floor(x * n); 0 = no cap */
    double confidence;        /* adaptive, top_k: stop once settled at this level;
                                 >= 1 never stops early (spends the budget); default 0.95 */
    uint32_t k;               /* k_regular: opponents per image (0: from the budget);
                                 top_k: how many best and worst images (0: 1) */
    uint32_t batch;           /* swiss, adaptive, top_k: most calls per batch; 0 = n/2
                                 pairs (n calls with order both) */
    const uint32_t *models;   /* cross_model: generator model id of each image (n
                                 entries); copied by joust_planner_new */
    double prior_games;       /* BT dummy-player prior of the planner's fits; default 1 */
} joust_plan_opts;

typedef struct joust_planner joust_planner;

void joust_plan_opts_defaults(joust_plan_opts *o);

/* A planner for one prompt of n images. o NULL means the defaults.
 * @return NULL for an invalid strategy or opts (order policy, confidence not
 *   in (0, inf), budget_per_image negative or not finite, prior_games <= 0,
 *   cross_model without models, n over the limits above). n < 2 gives a
 *   planner that is done at once. */
joust_planner *joust_planner_new(joust_strategy s, uint32_t n, const joust_plan_opts *o);

/* Frees the planner and NULLs *p_p; accepts NULL and *p_p == NULL. */
void joust_planner_destroy(joust_planner **p_p);

/* Writes up to max matches to out (presentation order) and counts them as
 * issued. @return how many; 0 when the planner waits for results or is
 * done. Matches not taken stay queued for the next call. */
size_t joust_planner_next(joust_planner *p, joust_pair *out, size_t max);

/* Reports the result of an issued match: p_first = the judge's P(first
 * preferred over second) in [0,1], or JOUST_PLANNER_FAILED (any NaN) for a
 * match that failed for good. When the last outstanding result of a batch
 * arrives, the next batch is planned here (a BT refit: O(n^3)), so done()
 * is exact right after. A rejected result (JOUST_EINVAL) leaves the match
 * outstanding: report it again, as failed if need be.
 * @return 0, or JOUST_EINVAL (nothing changes) when (first, second) is not
 *   an outstanding match or p_first is finite but outside [0,1]. */
int joust_planner_observe(joust_planner *p, uint32_t first, uint32_t second, double p_first);

/* Records a match issued before this planner existed (e.g. read back from
 * the store after a restart) as issued and outstanding, as if next() had
 * returned it; report its result with observe() as usual. Replaying every
 * stored match and result in this way restores the budget accounting
 * exactly (the plan that follows may differ from the lost one). Batch
 * planners drop their unissued batch and plan nothing until the next call
 * of next(), so a replay costs one refit whatever the order of the
 * mark_issued and observe calls; done() is 0 until then.
 * @return 0, or JOUST_EINVAL when the pair is invalid, already issued, or the
 *   budget is spent. */
int joust_planner_mark_issued(joust_planner *p, uint32_t first, uint32_t second);

/* Plans the pairs of one prompt of n images up front into a new array *out
 * (xmalloc; the caller frees it; NULL when the count is 0).
 * round_robin: joust_round_robin(n, pol, rng) (rng may be NULL unless pol is
 * random). k_regular: joust_planner's plan with the default k (4, clamped to
 * n-1) and a seed drawn from rng (seed 0 when rng is NULL). Any other
 * strategy (adaptive ones, cross_model, invalid values) plans nothing: use
 * a joust_planner.
 * @return the number of pairs. */
size_t joust_strategy_plan(joust_strategy s, uint32_t n, joust_order_policy pol, joust_rng_t *rng,
                           joust_pair **out);

/* 1 when nothing is outstanding and nothing more will be issued. Exact at
 * all times, except after mark_issued: then 0 until next() is called. */
int joust_planner_done(const joust_planner *p);

typedef struct {
    uint64_t issued;      /* calls issued (including failed ones) */
    uint64_t observed;    /* results received */
    uint64_t failed;      /* of those, failures */
    uint64_t outstanding; /* issued, no result yet */
    uint64_t budget;      /* the cap; UINT64_MAX when none */
    uint32_t batches;     /* batches planned (static strategies: 1) */
    int settled;          /* adaptive/top_k stopped on confidence */
} joust_planner_stats;

void joust_planner_stats_get(const joust_planner *p, joust_planner_stats *out);

/* The planner's current fitted scores (n entries; borrowed, valid until the
 * next call on p). Batch planners: the fit made when the last batch was
 * planned; static strategies: all zero. */
const double *joust_planner_scores(const joust_planner *p);

#endif
