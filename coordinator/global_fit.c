/* The sparse fit of one large group (global_fit.h). */
#include "global_fit.h"

#include <stdlib.h>

#include "bt_sparse.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

int joust_global_fit(uint32_t n, const joust_bt_edge32 *e, const float *w, size_t m, double *theta,
                     double *se, uint32_t *comp, uint32_t *ncomp)
{
    joust_bt_edge *d = xmalloc((m ? m : 1) * sizeof *d);
    for (size_t k = 0; k < m; k++)
        d[k] = (joust_bt_edge){e[k].a, e[k].b, (double)e[k].s, w ? (double)w[k] : 1.0};
    joust_bt_sparse_opts o;
    joust_bt_sparse_opts_defaults(&o);
    joust_bt_opts bo; /* the dense fitter's prior and clip: the same optimum */
    joust_bt_opts_defaults(&bo);
    o.prior_games = bo.prior_games;
    o.clip = bo.clip;
    o.max_newton = 100;
    joust_bt_sparse_stats st;
    int rc = joust_bt_sparse_fit(n, d, m, &o, 0, theta, se, &st);
    if (rc == 0) {
        *ncomp = joust_bt_components(n, d, m, comp);
        log_debug("sparse fit: %u images, %zu edges, %u components; %d Newton steps, %ld CG, "
                  "max |gradient| %.2g", n, m, *ncomp, st.newton, st.cg, st.grad_norm);
        if (st.grad_norm > o.gtol)
            log_warn("sparse fit of a group of %u images stopped at max |gradient| %.2g (the "
                     "Newton step cap)", n, st.grad_norm);
    }
    free(d);
    return rc;
}
