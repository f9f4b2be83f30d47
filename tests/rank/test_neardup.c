/* Near-duplicate search (rank/neardup.h) against brute force: on random
 * signatures with planted near-duplicates (flipped bits on both sides of
 * the radius, exact copies, chains), every pair within the radius is found
 * once, none beyond it, and the clusters and representatives equal a
 * brute-force union-find; for several radii, block counts (forced and
 * automatic) and thread counts; scopes; the representative rule; errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "neardup.h"
#include "rng.h"
#include "xalloc.h"

typedef struct {
    uint32_t *i, *j, *d;
    size_t n, cap;
} pairs_t;

static void collect(void *ctx, uint32_t i, uint32_t j, uint32_t d)
{
    pairs_t *p = ctx;
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->i = xrealloc(p->i, p->cap * sizeof *p->i);
        p->j = xrealloc(p->j, p->cap * sizeof *p->j);
        p->d = xrealloc(p->d, p->cap * sizeof *p->d);
    }
    p->i[p->n] = i, p->j[p->n] = j, p->d[p->n] = d;
    p->n++;
}

static void pairs_free(pairs_t *p)
{
    free(p->i);
    free(p->j);
    free(p->d);
    memset(p, 0, sizeof *p);
}

static uint32_t find(uint32_t *par, uint32_t x)
{
    while (par[x] != x)
        x = par[x] = par[par[x]];
    return x;
}

static int better(uint32_t a, uint32_t b, const double *score, const uint64_t *area)
{
    int ha = score && !isnan(score[a]), hb = score && !isnan(score[b]);
    if (ha != hb)
        return ha;
    if (ha && score[a] != score[b])
        return score[a] > score[b];
    if (area && area[a] != area[b])
        return area[a] > area[b];
    return a < b;
}

/* Brute force: all pairs (i < j ascending), then union-find reps. */
static void brute(const uint64_t *sig, const uint64_t *scope, size_t n, uint32_t r,
                  const double *score, const uint64_t *area, pairs_t *p, uint32_t *rep)
{
    uint32_t *par = xmalloc(n * sizeof *par);
    for (size_t i = 0; i < n; i++)
        par[i] = (uint32_t)i, rep[i] = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (scope && scope[i] != scope[j])
                continue;
            uint32_t d = (uint32_t)__builtin_popcountll(sig[i] ^ sig[j]);
            if (d > r)
                continue;
            collect(p, (uint32_t)i, (uint32_t)j, d);
            uint32_t a = find(par, (uint32_t)i), b = find(par, (uint32_t)j);
            if (a != b)
                par[b] = a;
        }
    for (size_t i = 0; i < n; i++) {
        uint32_t root = find(par, (uint32_t)i);
        if (rep[root] == UINT32_MAX || better((uint32_t)i, rep[root], score, area))
            rep[root] = (uint32_t)i;
    }
    for (size_t i = 0; i < n; i++)
        rep[i] = rep[find(par, (uint32_t)i)];
    free(par);
}

/* x with k distinct bits flipped. */
static uint64_t flip(joust_rng_t *g, uint64_t x, int k)
{
    uint64_t done = 0;
    while (__builtin_popcountll(done) < k)
        done |= 1ull << joust_rng_below(g, 64);
    return x ^ done;
}

/* n signatures: random ones, plus copies at distances 0..r+3 of earlier
 * ones (exact copies and chains included). */
static void make_set(joust_rng_t *g, uint64_t *sig, size_t n, uint32_t r)
{
    for (size_t i = 0; i < n; i++) {
        if (i < 8 || joust_rng_below(g, 3) != 0) {
            sig[i] = joust_rng_u64(g);
            continue;
        }
        size_t src = (size_t)joust_rng_below(g, i);
        /* distances to both sides of the radius, with repeats of some */
        int k = (int)joust_rng_below(g, r + 4);
        sig[i] = flip(g, sig[src], k);
    }
}

/* One configuration compared with brute force. */
static void compare(const uint64_t *sig, const uint64_t *scope, size_t n, uint32_t r,
                    uint32_t blocks, uint32_t threads, const double *score, const uint64_t *area)
{
    pairs_t bp = {0}, fp = {0};
    uint32_t *rep = xmalloc(n * sizeof *rep);
    brute(sig, scope, n, r, score, area, &bp, rep);
    joust_neardup_opts o;
    joust_neardup_opts_defaults(&o);
    o.radius = r, o.blocks = blocks, o.threads = threads;
    o.on_pair = collect, o.pair_ctx = &fp;
    joust_neardup_result res;
    CHECK_RC(joust_neardup_search(sig, scope, n, score, area, &o, &res));
    int same = fp.n == bp.n && res.pairs == bp.n;
    for (size_t k = 0; same && k < bp.n; k++)
        same = fp.i[k] == bp.i[k] && fp.j[k] == bp.j[k] && fp.d[k] == bp.d[k];
    if (!same)
        fprintf(stderr, "r %u blocks %u threads %u: %zu pairs, brute force %zu\n", r, blocks,
                threads, fp.n, bp.n);
    CHECK(same);
    CHECK(memcmp(res.rep, rep, n * sizeof *rep) == 0);
    /* cluster listing: consistent with rep[], representative first,
     * distances exact, every item of a cluster of >= 2 listed once */
    size_t listed = 0, multi = 0;
    int ok = 1;
    for (size_t c = 0; c < res.n_clusters; c++) {
        uint32_t head = res.member[res.start[c]];
        ok &= res.rep[head] == head && res.dist[res.start[c]] == 0;
        ok &= res.start[c + 1] - res.start[c] >= 2;
        ok &= c == 0 || head > res.member[res.start[c - 1]];
        for (size_t k = res.start[c]; k < res.start[c + 1]; k++) {
            uint32_t m = res.member[k];
            ok &= res.rep[m] == head;
            ok &= res.dist[k] == __builtin_popcountll(sig[m] ^ sig[head]);
            ok &= k <= res.start[c] + 1 || m > res.member[k - 1];
            listed++;
        }
    }
    for (size_t i = 0; i < n; i++)
        multi += res.rep[i] != i; /* non-representatives, all in clusters of >= 2 */
    CHECK(ok);
    CHECK(listed == multi + res.n_clusters);
    joust_neardup_result_free(&res);
    pairs_free(&bp);
    pairs_free(&fp);
    free(rep);
}

static void test_random(void)
{
    joust_rng_t g;
    joust_rng_seed(&g, 42);
    size_t n = 3000;
    uint64_t *sig = xmalloc(n * sizeof *sig), *scope = xmalloc(n * sizeof *scope);
    uint64_t *area = xmalloc(n * sizeof *area);
    double *score = xmalloc(n * sizeof *score);
    static const uint32_t radii[] = {0, 1, 3, 6, 8, 10, 14};
    for (size_t ri = 0; ri < sizeof radii / sizeof radii[0]; ri++) {
        uint32_t r = radii[ri];
        make_set(&g, sig, n, r);
        for (size_t i = 0; i < n; i++) {
            scope[i] = joust_rng_below(&g, 3) * 0x9e3779b97f4a7c15ull; /* 3 scopes */
            area[i] = 1000 + joust_rng_below(&g, 4);
            score[i] = joust_rng_below(&g, 2) ? NAN : (double)joust_rng_below(&g, 5);
        }
        compare(sig, NULL, n, r, 0, 1, NULL, NULL);           /* auto: pair by pair here */
        compare(sig, NULL, n, r, r + 1, 1, NULL, NULL);       /* classic substrings */
        compare(sig, scope, n, r, r + 1, 3, score, area);
        if (r + 4 <= 64)
            compare(sig, scope, n, r, r + 4, 2, score, NULL); /* longer keys */
        compare(sig, scope, n, r, 0, 2, NULL, area);
    }
    /* A scope large enough for the cost model to choose blocks. */
    n = 40000;
    sig = xrealloc(sig, n * sizeof *sig);
    make_set(&g, sig, n, 6);
    joust_neardup_result res;
    joust_neardup_opts o;
    joust_neardup_opts_defaults(&o);
    o.radius = 6;
    CHECK_RC(joust_neardup_search(sig, NULL, n, NULL, NULL, &o, &res));
    CHECK(res.blocks > 6);
    joust_neardup_result_free(&res);
    compare(sig, NULL, n, 6, 0, 2, NULL, NULL);
    free(sig);
    free(scope);
    free(area);
    free(score);
}

static void test_scope_and_rep(void)
{
    /* items 0-3: one cluster in scope 1; item 4: a copy of 0 in scope 2 */
    uint64_t sig[] = {0xffff0000ffff0000ull, 0xffff0000ffff0001ull, 0xffff0000ffff0003ull,
                      0xffff0000ffff0007ull, 0xffff0000ffff0000ull};
    uint64_t scope[] = {1, 1, 1, 1, 2};
    double score[] = {NAN, 0.5, 0.9, NAN, 5};
    uint64_t area[] = {10, 40, 20, 40, 100};
    joust_neardup_opts o;
    joust_neardup_opts_defaults(&o);
    o.radius = 1;
    joust_neardup_result r;
    CHECK_RC(joust_neardup_search(sig, scope, 5, score, area, &o, &r));
    CHECK(r.n_clusters == 1 && r.pairs == 3);
    CHECK(r.rep[0] == 2 && r.rep[3] == 2 && r.rep[4] == 4); /* best score; scope 2 alone */
    CHECK(r.member[0] == 2 && r.member[1] == 0 && r.member[2] == 1 && r.member[3] == 3);
    CHECK(r.dist[1] == 2 && r.dist[2] == 1 && r.dist[3] == 1); /* chain: 0 is 2 from 2 */
    joust_neardup_result_free(&r);
    CHECK_RC(joust_neardup_search(sig, scope, 5, NULL, area, &o, &r)); /* largest, then first */
    CHECK(r.rep[0] == 1 && r.rep[2] == 1);
    joust_neardup_result_free(&r);
    CHECK_RC(joust_neardup_search(sig, NULL, 5, NULL, NULL, &o, &r)); /* global: first */
    CHECK(r.n_clusters == 1 && r.rep[4] == 0 && r.start[1] == 5);
    joust_neardup_result_free(&r);
}

static void test_errors(void)
{
    uint64_t sig[2] = {1, 1};
    joust_neardup_result r;
    joust_neardup_opts o;
    joust_neardup_opts_defaults(&o);
    CHECK(o.radius == JOUST_NEARDUP_DEFAULT_RADIUS);
    o.radius = 64;
    CHECK(joust_neardup_search(sig, NULL, 2, NULL, NULL, &o, &r) == JOUST_EINVAL);
    o.radius = 4, o.blocks = 4;
    CHECK(joust_neardup_search(sig, NULL, 2, NULL, NULL, &o, &r) == JOUST_EINVAL);
    o.blocks = 65;
    CHECK(joust_neardup_search(sig, NULL, 2, NULL, NULL, &o, &r) == JOUST_EINVAL);
    o.blocks = 0, o.threads = 0;
    CHECK(joust_neardup_search(sig, NULL, 2, NULL, NULL, &o, &r) == JOUST_EINVAL);
    CHECK(joust_neardup_search(NULL, NULL, 2, NULL, NULL, NULL, &r) == JOUST_EINVAL);
    CHECK_RC(joust_neardup_search(NULL, NULL, 0, NULL, NULL, NULL, &r));
    CHECK(r.n == 0 && r.n_clusters == 0 && r.pairs == 0);
    joust_neardup_result_free(&r);
    joust_neardup_result_free(&r); /* twice is fine */
}

int main(void)
{
    test_random();
    test_scope_and_rep();
    test_errors();
    return test_report();
}
