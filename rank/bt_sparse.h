/* Global soft Bradley-Terry over one large sparse comparison graph (issue
 * 12.5): millions of images in one connected component, e.g. a caption
 * corpus where every image is its own group and pairs are drawn k-regular
 * across the whole set. rank/bt.h solves the same objective with a dense
 * Hessian per component (cubic in its size); this solver never forms the
 * Hessian.
 *
 * Objective (identical to joust_bt_fit, so the optimum is the same): maximise
 *   sum_e w_e [s_e log sigma(t_a - t_b) + (1 - s_e) log sigma(t_b - t_a)]
 *   + (prior_games / 2) sum_i [log sigma(t_i) + log sigma(-t_i)]
 * with s clipped to [clip, 1 - clip]. The prior (Newman's dummy player)
 * makes the objective strictly concave: one optimum, every theta finite,
 * the gauge fixed.
 *
 * Method: truncated Newton. Each step solves H d = g (H the negative
 * Hessian, g the gradient) by conjugate gradients preconditioned with the
 * diagonal of H, to a relative residual min(0.5, sqrt(|g|)) (quadratic
 * convergence near the optimum), with Hessian-vector products over the
 * edge list (O(m) each); a backtracking (Armijo) line search keeps every
 * step an ascent. It stops when the largest gradient component is at most
 * gtol: the result is the optimum to that precision, whatever the graph's
 * mixing (first-order MM iterations crawl on sparse graphs; docs/ranking.md
 * §9, figures in docs/benchmarks.md).
 *
 * Standard errors (se, optional) are an APPROXIMATION: 1/sqrt(H_ii), the
 * inverse of the Hessian's diagonal at the optimum, not the diagonal of its
 * inverse. It ignores the uncertainty of the opponents, so it is a lower
 * bound of the Laplace standard error sqrt((H^-1)_ii) (equal for an item
 * whose opponents are known exactly); on a random 10-regular graph it is
 * 0.93-1.0 times it (tests/rank/test_bt_sparse.c).
 * An item without comparisons gets theta 0 and se 2/sqrt(prior_games), as
 * in joust_bt_fit.
 *
 * Memory: 24 bytes per comparison (endpoints, soft wins, weight) plus 8 for
 * its Hessian weight, and 10 doubles per item; xmalloc aborts on
 * out-of-memory. Threads: none; no global state, reentrant; the caller owns
 * every array. Deterministic: the same input in the same edge order gives
 * bit-identical output.
 * Errors: 0, or JOUST_EINVAL without touching any output (bad options; an
 * edge with a or b >= n, a == b, s not finite or outside [0,1], w not finite
 * or <= 0; warm with a non-finite theta). Stopping on max_newton before gtol
 * is not an error: stats->grad_norm says how far it got. */
#ifndef JOUST_BT_SPARSE_H
#define JOUST_BT_SPARSE_H
#include <stddef.h>
#include <stdint.h>

#include "bt.h"

typedef struct {
    double prior_games; /* as joust_bt_opts; > 0; default 1 */
    double clip;        /* as joust_bt_opts; in [0, 0.5); default 1e-3 */
    double gtol;        /* stop when max_i |gradient_i| <= gtol (in games); default 1e-9 */
    int max_newton;     /* Newton steps, >= 1; default 50 */
    int max_cg;         /* CG iterations per Newton step, >= 1; default 500 */
} joust_bt_sparse_opts;

typedef struct {
    int newton;       /* Newton steps taken */
    long cg;          /* CG iterations in all */
    double grad_norm; /* max_i |gradient_i| at the returned theta */
    double objective; /* the objective at the returned theta */
} joust_bt_sparse_stats;

void joust_bt_sparse_opts_defaults(joust_bt_sparse_opts *o);

/* Fits n items from m edges (e NULL when m == 0; o NULL: the defaults).
 * theta[n]: out; with warm != 0 also the starting point. se[n]: out,
 * nullable (the approximation above). st: out, nullable. */
int joust_bt_sparse_fit(uint32_t n, const joust_bt_edge *e, size_t m,
                        const joust_bt_sparse_opts *o, int warm, double *theta, double *se,
                        joust_bt_sparse_stats *st);

/* Labels the connected components of the comparison graph (n items, m
 * edges; e NULL when m == 0; edges are not checked beyond a, b < n, others
 * are ignored): comp[i] = the component of item i, numbered by size, 0 the
 * largest (equal sizes: by their smallest item). An item without edges is
 * a component of its own. Union-find, O(m + n) memory n uint32s beyond
 * comp. @return the number of components. */
uint32_t joust_bt_components(uint32_t n, const joust_bt_edge *e, size_t m, uint32_t *comp);

#endif
