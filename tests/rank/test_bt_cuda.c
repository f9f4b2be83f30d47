/* joust_bt_fit_bulk_cuda against joust_bt_fit_bulk. Exits 77 (ctest: skipped)
 * where no CUDA device is usable. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bt_bulk.h"
#include "bt_cuda.h"
#include "check.h"
#include "err.h"
#include "rng.h"

/* Random prompts of 0..max_n images (some above 32: the CPU path inside),
 * random pairs, soft and hard outcomes, optional weights. */
static void make(uint64_t seed, uint32_t np, uint32_t max_n, uint64_t **io, uint64_t **eo,
                 joust_bt_edge32 **e, float **w)
{
    joust_rng_t r;
    joust_rng_seed(&r, seed);
    *io = calloc(np + 1, sizeof **io);
    *eo = calloc(np + 1, sizeof **eo);
    size_t cap = 1 << 16, m = 0;
    *e = malloc(cap * sizeof **e);
    *w = malloc(cap * sizeof **w);
    for (uint32_t p = 0; p < np; p++) {
        uint32_t n = (uint32_t)joust_rng_below(&r, max_n + 1);
        size_t me = n >= 2 ? (size_t)joust_rng_below(&r, 5 * n) : 0;
        for (size_t k = 0; k < me; k++) {
            uint32_t a = (uint32_t)joust_rng_below(&r, n), b = (uint32_t)joust_rng_below(&r, n - 1);
            b += b >= a;
            float s = (float)joust_rng_uniform(&r);
            if (k % 9 == 4)
                s = (float)(k % 2);
            if (m == cap) {
                cap *= 2;
                *e = realloc(*e, cap * sizeof **e);
                *w = realloc(*w, cap * sizeof **w);
            }
            (*w)[m] = (float)(0.5 + joust_rng_uniform(&r));
            (*e)[m++] = (joust_bt_edge32){a, b, s};
        }
        (*io)[p + 1] = (*io)[p] + n;
        (*eo)[p + 1] = m;
    }
}

int main(void)
{
    if (!joust_bt_cuda_available()) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    uint64_t *io, *eo;
    joust_bt_edge32 *e;
    float *w;
    uint32_t np = 5000;
    make(7, np, 40, &io, &eo, &e, &w);
    size_t n = io[np];
    double *t1 = malloc(n * sizeof *t1), *s1 = malloc(n * sizeof *s1), *t2 = malloc(n * sizeof *t2),
           *s2 = malloc(n * sizeof *s2);
    for (int with_w = 0; with_w < 2; with_w++) {
        joust_bt_problem pb = {np, io, eo, e, with_w ? w : NULL};
        joust_bt_opts o;
        joust_bt_opts_defaults(&o);
        joust_bt_bulk_stats a, b;
        CHECK_RC(joust_bt_fit_bulk(&pb, &o, 2, 0, t1, s1, &a));
        CHECK_RC(joust_bt_fit_bulk_cuda(&pb, &o, 0, t2, s2, &b));
        double dt = 0, ds = 0;
        for (size_t i = 0; i < n; i++) {
            dt = fmax(dt, fabs(t1[i] - t2[i]));
            ds = fmax(ds, fabs(s1[i] - s2[i]));
        }
        CHECK_NEAR(dt, 0, 1e-9);
        CHECK_NEAR(ds, 0, 1e-9);
        CHECK(b.prompts_fitted == np && b.prompts_bad == 0 && b.prompts_capped == 0);
        CHECK(b.max_step < o.tol);
        /* warm start from the optimum */
        CHECK_RC(joust_bt_fit_bulk_cuda(&pb, &o, 1, t2, NULL, &b));
        CHECK(b.iters_max <= 2);
    }
    /* a bad edge: that prompt untouched, the others fitted */
    uint32_t q = 0;
    while (q < np && (eo[q + 1] == eo[q] || io[q + 1] - io[q] > 32))
        q++;
    e[eo[q]].s = NAN;
    joust_bt_problem pb = {np, io, eo, e, NULL};
    for (size_t i = 0; i < n; i++)
        t2[i] = 7;
    joust_bt_bulk_stats b;
    CHECK(joust_bt_fit_bulk_cuda(&pb, NULL, 0, t2, NULL, &b) == JOUST_EINVAL);
    CHECK(b.prompts_bad == 1 && b.first_bad == q && t2[io[q]] == 7);
    free(t1);
    free(s1);
    free(t2);
    free(s2);
    free(io);
    free(eo);
    free(e);
    free(w);
    return test_report();
}
