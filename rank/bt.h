/* Soft Bradley-Terry fit (docs/ranking.md §1: model, prior, method).
 * Pure math, no I/O, no global state: reentrant and thread-safe as long as
 * threads use separate output arrays. Caller owns every array; nothing is
 * retained after a call. Errors: 0 or JOUST_EINVAL (err.h); scratch memory
 * comes from xmalloc, which aborts on out-of-memory. */
#ifndef JOUST_BT_H
#define JOUST_BT_H
#include <stddef.h>
#include <stdint.h>

/* One comparison: s = P(a preferred over b) in [0,1], weight w (> 0, usually 1). */
typedef struct {
    uint32_t a, b;
    double s;
    double w;
} joust_bt_edge;

typedef struct {
    double prior_games; /* Newman dummy player: prior_games/2 virtual wins and
                           losses vs a fixed item with theta 0; must be > 0
                           (it fixes the gauge and keeps every theta finite);
                           default 1.0 */
    int max_iter;       /* Newton iterations per component, >= 1; default 100 */
    double tol;         /* stop when max |delta theta| < tol; default 1e-10 */
    double clip;        /* clip s to [clip, 1-clip], in [0, 0.5); default 1e-3 */
} joust_bt_opts;

void joust_bt_opts_defaults(joust_bt_opts *o);

/* sigma(ta - tb): the model's P(a preferred over b). */
double joust_bt_prob(double ta, double tb);

/* Maximises sum_e w[s log sigma(ta-tb) + (1-s) log sigma(tb-ta)] plus the
 * dummy-player prior over n items and m edges (e may be NULL when m == 0;
 * o NULL means the defaults).
 * Damped Newton with a dense Hessian, solved per connected component, so
 * cost is sum of (component size)^3 and separate blocks never influence each
 * other.
 * theta[n]: out; when warm != 0 it also holds the starting point.
 * se[n]: out, nullable; sqrt(diag of the inverse negative Hessian) at the
 *   optimum (an item without edges gets theta 0 and se 2/sqrt(prior_games)).
 * iters: out, nullable; Newton steps of the slowest component (== max_iter
 *   means it stopped on the cap rather than on tol).
 * The result is bit-identical under any permutation of the edges.
 * @return 0, or JOUST_EINVAL without touching any output when o is invalid
 *   or an edge is bad (a or b >= n, a == b, s not finite or outside [0,1],
 *   w not finite or <= 0), or warm != 0 with a non-finite theta. */
int joust_bt_fit(uint32_t n, const joust_bt_edge *e, size_t m, const joust_bt_opts *o,
                 int warm, double *theta, double *se, int *iters);

#endif
