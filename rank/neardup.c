/* Near-duplicate search: generalised pigeonhole over sorted block keys,
 * union-find clusters. See neardup.h for the contract. */
#include "neardup.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

#define MAX_SUBSETS 2000000.0 /* subsets the cost model may consider */
#define RADIX_BITS 11 /* widest digit of a partition pass */
/* Cost of partitioning one item of a node on one block, in popcount checks
 * (measured with joust bench neardup). */
#define PART_COST 12.0

/* One block layout: m contiguous blocks, of which a pair within the radius
 * agrees on at least t = m - r. */
typedef struct {
    int m, t;
    int lo[64], width[64];
    uint64_t mask[64]; /* block j's bits in place */
} plan_t;

/* A unit of work: the subtree of one scope under one first block, or a
 * whole scope pair by pair. */
typedef struct {
    size_t b, e; /* scope range in scope order */
    int m;       /* 0: pair by pair */
    int first;   /* first block of the subsets searched */
} unit_t;

typedef struct {
    uint32_t i, j;
    uint32_t d;
} edge_t;

typedef struct {
    const uint64_t *ssig; /* signatures in scope order */
    const uint32_t *ord;  /* scope order -> item index */
    const plan_t *plans;  /* by m */
    const unit_t *units;
    size_t nunits;
    uint32_t r;
    int avx2; /* the CPU has AVX2 */
    atomic_size_t next;
} shared_t;

/* A node's items: signatures and scope-order positions side by side. */
typedef struct {
    uint64_t *sig;
    uint32_t *pos;
    size_t cap;
} items_t;

typedef struct {
    shared_t *sh;
    edge_t *edges;
    size_t nedges, cap;
    items_t level[65]; /* partition output per depth */
    items_t tmp;       /* second buffer of multi-pass partitions */
    size_t cnt[(size_t)1 << RADIX_BITS];
    const plan_t *p; /* of the unit in progress */
    int chosen[64];  /* blocks of the current trie path */
    pthread_t th;
} worker_t;

void joust_neardup_opts_defaults(joust_neardup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->radius = JOUST_NEARDUP_DEFAULT_RADIUS;
    o->threads = 1;
}

static double choose(int m, int t)
{
    double c = 1;
    for (int k = 1; k <= t; k++)
        c = c * (m - t + k) / k;
    return c;
}

/* Estimated cost of searching a scope of s items with m blocks, in units of
 * one popcount check. The search descends a trie of blocks: a node holding
 * the items that agree on d chosen blocks is partitioned once per possible
 * next block, and the items of a one-item part drop out; a node at depth t
 * checks its pairs. There are C(m - t + d, d) valid d-prefixes, each
 * partitioning the items of a (d - 1)-node of about s / 2^(64 (d - 1) / m)
 * items. */
static double cost_of(double s, uint32_t r, int m)
{
    int t = m - (int)r;
    if (choose(m, t) > MAX_SUBSETS)
        return INFINITY;
    double c = 0;
    for (int d = 1; d <= t; d++) {
        /* the share of items with another item in their (d - 1)-node */
        double alive = 1 - exp(-(s - 1) / pow(2, 64.0 * (d - 1) / m));
        c += choose(m - t + d, d) * s * alive * PART_COST;
    }
    return c + choose(m, t) * s * s / 2 / pow(2, 64.0 * t / m);
}

/* m for a scope of s items: 0 when pair by pair is cheapest. */
static int pick_blocks(size_t s, uint32_t r, uint32_t fixed)
{
    if (fixed)
        return (int)fixed;
    double best = (double)s * ((double)s - 1) / 2;
    int bm = 0;
    for (int m = (int)r + 1; m <= 64; m++) {
        double c = cost_of((double)s, r, m);
        if (c < best)
            best = c, bm = m;
    }
    return bm;
}

static void plan_init(plan_t *p, int m, uint32_t r)
{
    p->m = m;
    p->t = m - (int)r;
    for (int j = 0; j < m; j++) {
        p->lo[j] = 64 * j / m;
        p->width[j] = 64 * (j + 1) / m - p->lo[j];
        p->mask[j] = (p->width[j] == 64 ? ~0ull : ((1ull << p->width[j]) - 1)) << p->lo[j];
    }
}

static void edge_push(worker_t *w, uint32_t a, uint32_t b, uint32_t d)
{
    if (w->nedges == w->cap)
        xgrow((void **)&w->edges, &w->cap, w->nedges + 1, sizeof *w->edges);
    w->edges[w->nedges++] = (edge_t){a < b ? a : b, a < b ? b : a, d};
}

/* 1 when a pair with difference diff that agrees on the blocks of the
 * current path (depth of them) has them as its first `depth` agreeing
 * blocks: no block below the path's last one outside the path agrees. The
 * pair is then searched under this node and under no other. (With p NULL
 * or depth 0: every pair.) */
static int first_agreeing(const plan_t *p, const int *path, int depth, uint64_t diff)
{
    if (!p || depth == 0)
        return 1;
    int k = 0;
    for (int j = 0; j < path[depth - 1]; j++) {
        if (k < depth && path[k] == j) {
            k++;
            continue;
        }
        if ((diff & p->mask[j]) == 0)
            return 0;
    }
    return 1;
}

/* Hardware popcount where the CPU has it (the baseline x86-64 target does
 * not, and the library call costs more than the rest of the check). */
#if defined(__x86_64__) && defined(__GNUC__)
#define POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define POPCNT_CLONES
#endif

/* Checks pairs (x, y), y in [y0, n), of a node's n items (scope-order
 * positions pos), keeping those within the radius that belong to this
 * node. */
POPCNT_CLONES static void check_from(worker_t *w, const uint64_t *sig, const uint32_t *pos,
                                     size_t n, int depth, size_t x, size_t y0)
{
    const shared_t *sh = w->sh;
    const uint32_t r = sh->r;
    const uint64_t sx = sig[x];
    for (size_t y = y0; y < n; y++) {
        uint64_t diff = sx ^ sig[y];
        uint32_t d = (uint32_t)__builtin_popcountll(diff);
        if (d <= r && first_agreeing(w->p, w->chosen, depth, diff))
            edge_push(w, sh->ord[pos[x]], sh->ord[pos[y]], d);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_CHECK 1
/* check_pairs four pairs at a time: popcounts by nibble table lookups
 * summed per 64-bit lane; a group with any pair within the radius goes
 * through check_from. */
__attribute__((target("avx2"))) static void check_pairs_avx2(worker_t *w, const uint64_t *sig,
                                                             const uint32_t *pos, size_t n,
                                                             int depth)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                         2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    const __m256i rv = _mm256_set1_epi64x((long long)w->sh->r);
    for (size_t x = 0; x + 1 < n; x++) {
        const __m256i vx = _mm256_set1_epi64x((long long)sig[x]);
        if (n < 4) {
            check_from(w, sig, pos, n, depth, x, x + 1);
            continue;
        }
        /* groups of 4 from x + 1; the last one ends at n, its lanes below
         * where the previous group ended masked off */
        for (size_t y = x + 1; y < n; y += 4) {
            size_t g = y + 4 <= n ? y : n - 4;
            __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(sig + g)), vx);
            __m256i c = _mm256_add_epi8(
                _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low)),
                _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
            __m256i far = _mm256_cmpgt_epi64(_mm256_sad_epu8(c, zero), rv);
            unsigned near = ~(unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(far)) & 15u;
            near &= 15u << (y - g); /* lanes from y on */
            for (; near; near &= near - 1) {
                size_t k = g + (size_t)__builtin_ctz(near);
                check_from(w, sig, pos, k + 1, depth, x, k);
            }
        }
    }
}
#endif

/* Checks every pair of a node's n items. */
static void check_pairs(worker_t *w, const uint64_t *sig, const uint32_t *pos, size_t n,
                        int depth)
{
#ifdef HAVE_AVX2_CHECK
    if (w->sh->avx2) {
        check_pairs_avx2(w, sig, pos, n, depth);
        return;
    }
#endif
    for (size_t x = 0; x + 1 < n; x++)
        check_from(w, sig, pos, n, depth, x, x + 1);
}

static void items_reserve(items_t *it, size_t n)
{
    if (it->cap >= n)
        return;
    free(it->sig);
    free(it->pos);
    it->cap = n > 2 * it->cap ? n : 2 * it->cap;
    it->sig = xmalloc(it->cap * sizeof *it->sig);
    it->pos = xmalloc(it->cap * sizeof *it->pos);
}

/* Sorts n items (pos NULL: positions base, base + 1, ...) on the value of
 * block j into out: LSD counting passes of at most RADIX_BITS bits (one
 * pass for the blocks of radius >= 5), through w->tmp when several. */
static void partition(worker_t *w, const uint64_t *sig, const uint32_t *pos, uint32_t base,
                      size_t n, int j, items_t *out)
{
    const plan_t *p = w->p;
    int width = p->width[j];
    int passes = (width + RADIX_BITS - 1) / RADIX_BITS;
    int digit = (width + passes - 1) / passes;
    items_reserve(out, n);
    if (passes > 1)
        items_reserve(&w->tmp, n);
    size_t *cnt = w->cnt;
    const size_t nb = (size_t)1 << digit;
    for (int pass = 0; pass < passes; pass++) {
        items_t *dst = (passes - pass) % 2 ? out : &w->tmp;
        int shift = p->lo[j] + pass * digit;
        int bits = pass == passes - 1 ? width - pass * digit : digit;
        const uint64_t dmask = bits == 64 ? ~0ull : (1ull << bits) - 1;
        memset(cnt, 0, nb * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(sig[i] >> shift) & dmask]++;
        size_t sum = 0;
        for (size_t k = 0; k < nb; k++) {
            size_t c = cnt[k];
            cnt[k] = sum;
            sum += c;
        }
        uint64_t *ds = dst->sig;
        uint32_t *dp = dst->pos;
        if (pos)
            for (size_t i = 0; i < n; i++) {
                size_t k = cnt[(sig[i] >> shift) & dmask]++;
                ds[k] = sig[i], dp[k] = pos[i];
            }
        else
            for (size_t i = 0; i < n; i++) {
                size_t k = cnt[(sig[i] >> shift) & dmask]++;
                ds[k] = sig[i], dp[k] = base + (uint32_t)i;
            }
        sig = ds, pos = dp;
    }
}

/* Pair by pair below this many items per candidate next block (a
 * partition costs about PART_COST checks per item). */
static int brute_cheaper(size_t n, int candidates)
{
    return (double)(n - 1) / 2 <= PART_COST * candidates;
}

/* The node of the n items agreeing on the blocks chosen[0 .. depth - 1]:
 * at depth t (or when small) its pairs are checked; else it is partitioned
 * on each block that can come next and each part of >= 2 items descends. */
static void descend(worker_t *w, const uint64_t *sig, const uint32_t *pos, size_t n, int depth)
{
    const plan_t *p = w->p;
    int next = w->chosen[depth - 1] + 1, last = p->m - p->t + depth;
    if (depth == p->t || brute_cheaper(n, last - next + 1)) {
        check_pairs(w, sig, pos, n, depth);
        return;
    }
    items_t *out = &w->level[depth];
    for (int j = next; j <= last; j++) {
        partition(w, sig, pos, 0, n, j, out);
        w->chosen[depth] = j;
        const uint64_t mask = p->mask[j];
        const uint64_t *s = out->sig;
        for (size_t lo = 0, hi; lo < n; lo = hi) {
            for (hi = lo + 1; hi < n && ((s[hi] ^ s[lo]) & mask) == 0; hi++)
                ;
            if (hi - lo >= 2)
                descend(w, s + lo, out->pos + lo, hi - lo, depth + 1);
        }
    }
}

static void run_unit(worker_t *w, const unit_t *u)
{
    const shared_t *sh = w->sh;
    size_t n = u->e - u->b;
    if (u->m == 0) {
        w->p = NULL;
        uint32_t *pos = xmalloc(n * sizeof *pos);
        for (size_t i = 0; i < n; i++)
            pos[i] = (uint32_t)(u->b + i);
        check_pairs(w, sh->ssig + u->b, pos, n, 0);
        free(pos);
        return;
    }
    w->p = &sh->plans[u->m];
    w->chosen[0] = u->first;
    items_t *out = &w->level[0];
    partition(w, sh->ssig + u->b, NULL, (uint32_t)u->b, n, u->first, out);
    const uint64_t mask = w->p->mask[u->first];
    const uint64_t *s = out->sig;
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && ((s[hi] ^ s[lo]) & mask) == 0; hi++)
            ;
        if (hi - lo >= 2)
            descend(w, s + lo, out->pos + lo, hi - lo, 1);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    shared_t *sh = w->sh;
    for (;;) {
        size_t k = atomic_fetch_add(&sh->next, 1);
        if (k >= sh->nunits)
            break;
        run_unit(w, &sh->units[k]);
    }
    for (int d = 0; d <= 64; d++) {
        free(w->level[d].sig);
        free(w->level[d].pos);
    }
    free(w->tmp.sig);
    free(w->tmp.pos);
    return NULL;
}

typedef struct {
    uint64_t scope;
    uint32_t idx;
} scoped_t;

static int cmp_scoped(const void *x, const void *y)
{
    const scoped_t *a = x, *b = y;
    if (a->scope != b->scope)
        return a->scope < b->scope ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_edge(const void *x, const void *y)
{
    const edge_t *a = x, *b = y;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* 1 when item a makes a better representative than item b (see header). */
static int better(uint32_t a, uint32_t b, const double *score, const uint64_t *area)
{
    if (score) {
        int ha = !isnan(score[a]), hb = !isnan(score[b]);
        if (ha != hb)
            return ha;
        if (ha && score[a] != score[b])
            return score[a] > score[b];
    }
    if (area && area[a] != area[b])
        return area[a] > area[b];
    return a < b;
}

/* Clusters from the edges (sorted): union-find, representatives, members. */
static void build_clusters(size_t n, const uint64_t *sig, const edge_t *e, size_t ne,
                           const double *score, const uint64_t *area, joust_neardup_result *out)
{
    uint32_t *parent = xmalloc(n * sizeof *parent), *best = xmalloc(n * sizeof *best);
    size_t *size = xcalloc(n, sizeof *size);
    for (size_t i = 0; i < n; i++)
        parent[i] = (uint32_t)i, best[i] = UINT32_MAX;
    for (size_t k = 0; k < ne; k++) {
        uint32_t a = uf_find(parent, e[k].i), b = uf_find(parent, e[k].j);
        if (a != b)
            parent[a < b ? b : a] = a < b ? a : b;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, (uint32_t)i);
        size[r]++;
        if (best[r] == UINT32_MAX || better((uint32_t)i, best[r], score, area))
            best[r] = (uint32_t)i;
    }
    out->rep = xmalloc(n * sizeof *out->rep);
    size_t nc = 0, nm = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, (uint32_t)i);
        out->rep[i] = best[r];
        if (best[r] == i && size[r] >= 2)
            nc++, nm += size[r];
    }
    /* start offsets, by ascending representative; size[] of a root becomes
     * its cluster's fill position */
    out->n_clusters = nc;
    out->start = xmalloc((nc + 1) * sizeof *out->start);
    out->member = xmalloc((nm ? nm : 1) * sizeof *out->member);
    out->dist = xmalloc(nm ? nm : 1);
    size_t c = 0, pos = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, (uint32_t)i);
        if (best[r] != i || size[r] < 2)
            continue;
        out->start[c++] = pos;
        out->member[pos] = (uint32_t)i;
        out->dist[pos] = 0;
        size_t sz = size[r];
        size[r] = pos + 1;
        pos += sz;
    }
    out->start[nc] = pos;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = uf_find(parent, (uint32_t)i), rep = best[r];
        if (rep == i) /* representatives and singletons */
            continue;
        size_t k = size[r]++;
        out->member[k] = (uint32_t)i;
        out->dist[k] = (uint8_t)__builtin_popcountll(sig[i] ^ sig[rep]);
    }
    free(parent);
    free(best);
    free(size);
}

int joust_neardup_search(const uint64_t *sig, const uint64_t *scope, size_t n,
                         const double *score, const uint64_t *area,
                         const joust_neardup_opts *o, joust_neardup_result *out)
{
    joust_neardup_opts def;
    if (!o) {
        joust_neardup_opts_defaults(&def);
        o = &def;
    }
    if (!out || (!sig && n) || n > JOUST_NEARDUP_MAX_N || o->radius > 63 || o->threads < 1 ||
        (o->blocks && (o->blocks <= o->radius || o->blocks > 64)))
        return JOUST_EINVAL;
    memset(out, 0, sizeof *out);
    out->n = n;
    /* Scope order: items sorted by scope key, stable (ascending index). */
    uint32_t *ord = xmalloc((n ? n : 1) * sizeof *ord);
    if (scope) {
        scoped_t *a = xmalloc((n ? n : 1) * sizeof *a);
        for (size_t i = 0; i < n; i++)
            a[i] = (scoped_t){scope[i], (uint32_t)i};
        qsort(a, n, sizeof *a, cmp_scoped);
        for (size_t i = 0; i < n; i++)
            ord[i] = a[i].idx;
        free(a);
    } else {
        for (size_t i = 0; i < n; i++)
            ord[i] = (uint32_t)i;
    }
    uint64_t *ssig = xmalloc((n ? n : 1) * sizeof *ssig);
    for (size_t i = 0; i < n; i++)
        ssig[i] = sig[ord[i]];
    /* Units: per scope, one pair-by-pair unit or one per subset. */
    plan_t plans[65];
    memset(plans, 0, sizeof plans);
    unit_t *units = NULL;
    size_t nunits = 0, ucap = 0, largest = 0;
    for (size_t b = 0, e; b < n; b = e) {
        for (e = b + 1; e < n && (!scope || scope[ord[e]] == scope[ord[b]]); e++)
            ;
        if (e - b < 2)
            continue;
        int m = pick_blocks(e - b, o->radius, o->blocks);
        if (e - b > largest)
            largest = e - b, out->blocks = (uint32_t)m;
        if (m && !plans[m].m)
            plan_init(&plans[m], m, o->radius);
        /* the subtrees by first block, the largest (first) first */
        int k = m ? plans[m].m - plans[m].t + 1 : 1;
        xgrow((void **)&units, &ucap, nunits + (size_t)k, sizeof *units);
        for (int j = 0; j < k; j++)
            units[nunits++] = (unit_t){b, e, m, j};
    }
    int avx2 = 0;
#ifdef HAVE_AVX2_CHECK
    avx2 = __builtin_cpu_supports("avx2");
#endif
    shared_t sh = {ssig, ord, plans, units, nunits, o->radius, avx2, 0};
    worker_t *w = xcalloc(o->threads, sizeof *w);
    for (uint32_t k = 0; k < o->threads; k++) {
        w[k].sh = &sh;
        if (k > 0 && pthread_create(&w[k].th, NULL, worker_main, &w[k]) != 0)
            w[k].sh = NULL; /* no thread: the others take its share */
    }
    worker_main(&w[0]);
    size_t ne = 0;
    for (uint32_t k = 0; k < o->threads; k++) {
        if (k > 0 && w[k].sh)
            pthread_join(w[k].th, NULL);
        ne += w[k].nedges;
    }
    edge_t *e = xmalloc((ne ? ne : 1) * sizeof *e);
    ne = 0;
    for (uint32_t k = 0; k < o->threads; k++) {
        if (w[k].nedges)
            memcpy(e + ne, w[k].edges, w[k].nedges * sizeof *e);
        ne += w[k].nedges;
        free(w[k].edges);
    }
    free(w);
    qsort(e, ne, sizeof *e, cmp_edge);
    out->pairs = ne;
    build_clusters(n, sig, e, ne, score, area, out);
    if (o->on_pair)
        for (size_t k = 0; k < ne; k++)
            o->on_pair(o->pair_ctx, e[k].i, e[k].j, e[k].d);
    free(e);
    free(units);
    free(ssig);
    free(ord);
    return 0;
}

void joust_neardup_result_free(joust_neardup_result *r)
{
    if (!r)
        return;
    free(r->rep);
    free(r->start);
    free(r->member);
    free(r->dist);
    memset(r, 0, sizeof *r);
}
