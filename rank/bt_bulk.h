/* Bulk soft Bradley-Terry: many independent prompts (docs/ranking.md §1.5,
 * per-prompt separability) fitted in one call, in parallel over prompts.
 * Promises: the objective, prior and clip semantics are those of joust_bt_fit
 * (bt.h), so each prompt's theta equals joust_bt_fit on that prompt's edges to
 * within the Newton tolerance. A prompt's result depends only on its own
 * edges (and warm theta): bit-identical for any thread count and any company
 * in the call. The AVX2 and baseline code paths (picked by the CPU) do the
 * same IEEE operations; only the rare line searches and extreme theta ranges
 * call libm's exp/log1p, whose last bits may vary between libm builds.
 * Ownership: the caller owns every array; nothing is retained after a call.
 * Threads: the call starts and joins its own pthreads; it is reentrant and has
 * no global state. Errors: 0 or JOUST_EINVAL (err.h); scratch memory comes
 * from xmalloc/aligned_alloc (aborts on out-of-memory). */
#ifndef JOUST_BT_BULK_H
#define JOUST_BT_BULK_H
#include <stddef.h>
#include <stdint.h>

#include "bt.h"

/* Prompts of at most this many images take the fast stack-only Newton; larger
 * ones go through joust_bt_fit. */
#define JOUST_BT_BULK_SMALL 64

/* One comparison, 12 bytes: a, b are indices local to the prompt, s is
 * P(a preferred over b) in [0,1]. */
typedef struct {
    uint32_t a, b;
    float s;
} joust_bt_edge32;

/* Prompts in CSR layout. Prompt p owns the global items
 * [item_off[p], item_off[p+1]) (theta/se are indexed by global item) and the
 * edges [edge_off[p], edge_off[p+1]), whose a, b are local (0-based within
 * the prompt). Both offset arrays have n_prompts + 1 non-decreasing entries;
 * item_off[0] and edge_off[0] need not be 0. w is nullable: per-edge weights
 * (finite, > 0) indexed like edges; NULL means weight 1. Edges of a prompt may
 * come in any order; keeping the prompts' ranges in prompt order (the natural
 * layout) streams memory sequentially. */
typedef struct {
    uint32_t n_prompts;
    const uint64_t *item_off;
    const uint64_t *edge_off;
    const joust_bt_edge32 *edges;
    const float *w;
} joust_bt_problem;

typedef struct {
    double max_step;         /* over prompts of <= JOUST_BT_BULK_SMALL images, the largest
                                final step: the last |delta theta| or the proven bound
                                on the next one, whichever stopped it (< tol unless
                                capped) */
    uint64_t iters_total;    /* Newton iterations summed over prompts */
    int iters_max;           /* ... of the slowest prompt */
    uint64_t prompts_fitted; /* prompts whose outputs were written */
    uint64_t prompts_capped; /* stopped on max_iter with the last step >= tol */
    uint64_t prompts_large;  /* went through joust_bt_fit (> JOUST_BT_BULK_SMALL images);
                                not in max_step, capped when iters == max_iter */
    uint64_t prompts_bad;    /* rejected: bad edge, weight or warm theta */
    uint32_t first_bad;      /* lowest bad prompt index; UINT32_MAX when none */
    double seconds;          /* wall time of the call */
} joust_bt_bulk_stats;

/* Fits every prompt of pb independently (o NULL means the defaults of
 * joust_bt_opts_defaults) on max(threads, 1) threads.
 * theta: indexed by global item (item_off[n_prompts] entries); out, and when
 *   warm != 0 also the starting point (earlier scores; new items at 0).
 * se: out, nullable; sqrt(diag of the inverse negative Hessian) at the
 *   returned theta; an item without edges gets theta 0 and se
 *   2/sqrt(prior_games), as in joust_bt_fit.
 * stats: out, nullable.
 * Per-prompt solver, for 2..JOUST_BT_BULK_SMALL images: the edges are summed
 * into an n x n pair-weight matrix and per-item soft wins, then damped Newton
 * with a dense Cholesky over all n items (disconnected components are
 * independent blocks of the same system; items without edges stay at
 * exactly 0). Prompts of equal size run four at a time in the lanes of a
 * vector type, lane by lane identical to running alone. A whole step is
 * taken without evaluating the objective when a self-concordance bound
 * proves the ascent, otherwise by Armijo backtracking like joust_bt_fit.
 * A prompt stops when an applied step has max |delta theta| < tol, or when a
 * bound proves that the next Newton step would be below tol (that
 * confirming iteration is skipped; the returned theta is then within about
 * that bound of the optimum instead of far closer), or after max_iter
 * iterations. A warm start that reaches max_iter (far out in the saturated
 * region) is fitted again from the cold start. Larger prompts go through
 * joust_bt_fit.
 * @return 0; or JOUST_EINVAL with no output touched when o is invalid, pb
 *   or theta is NULL, the offsets decrease, or edges is NULL while edges are
 *   counted; or JOUST_EINVAL after fitting every valid prompt when some
 *   prompts are bad (a or b >= the prompt's size, a == b, s not finite or
 *   outside [0,1], a weight not finite or <= 0, a warm theta not finite,
 *   more than 2^32 - 1 items): their theta/se are left untouched and stats
 *   counts them (prompts_bad, first_bad). */
int joust_bt_fit_bulk(const joust_bt_problem *pb, const joust_bt_opts *o, int threads, int warm,
                      double *theta, double *se, joust_bt_bulk_stats *stats);

#endif
