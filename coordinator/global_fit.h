/* Scoring's fit of groups too large for the dense per-prompt fitter (a
 * caption corpus under --group all): the sparse global solver
 * (rank/bt_sparse.h) on the group's edges as scoring builds them, and the
 * connected components of its comparison graph. Internal to scoring.c.
 * Threads: none. Errors: 0 or JOUST_EINVAL (a bad edge: nothing written).
 * Memory: 24 bytes per edge beyond the input (xmalloc aborts on OOM). */
#ifndef JOUST_GLOBAL_FIT_H
#define JOUST_GLOBAL_FIT_H
#include <stddef.h>
#include <stdint.h>

#include "bt_bulk.h"

/* Groups with more images than this go to the sparse solver; the bulk
 * fitter's per-component dense Newton is cubic in the size. */
#define JOUST_GLOBAL_FIT_MIN 1024u

/* Fits n items from m edges (local indices; w nullable: weight 1) with the
 * objective of joust_bt_fit (default prior and clip). theta, se: n, out.
 * comp: n, out, the component of each item (0 the largest); *ncomp their
 * count. Logs the solver's figures at debug level. */
int joust_global_fit(uint32_t n, const joust_bt_edge32 *e, const float *w, size_t m, double *theta,
                     double *se, uint32_t *comp, uint32_t *ncomp);

#endif
