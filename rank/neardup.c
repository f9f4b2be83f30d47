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
#define RADIX_BITS 11

/* One block layout (m blocks) and its t-subsets. */
typedef struct {
    int m, t;
    int lo[64], width[64];
    size_t nsub;
    uint8_t *sub; /* nsub * t block ids, ascending within a subset */
} plan_t;

/* A unit of work: one subset of one scope, or a whole scope pair by pair. */
typedef struct {
    size_t b, e; /* scope range in scope order */
    int m;       /* 0: pair by pair */
    size_t sub;  /* subset index */
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
    size_t nunits, maxscope;
    uint32_t r;
    atomic_size_t next;
} shared_t;

typedef struct {
    shared_t *sh;
    edge_t *edges;
    size_t nedges, cap;
    pthread_t th;
} worker_t;

void joust_neardup_opts_defaults(joust_neardup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->radius = JOUST_NEARDUP_DEFAULT_RADIUS;
    o->threads = 1;
}

/* Stable counting-sort pass of n entries on bits [shift, shift + RADIX_BITS)
 * from src to dst; cnt has 2^RADIX_BITS slots. */
static void radix_pass(const uint64_t *src, uint64_t *dst, size_t n, int shift, size_t *cnt)
{
    const size_t nb = (size_t)1 << RADIX_BITS;
    memset(cnt, 0, nb * sizeof *cnt);
    for (size_t i = 0; i < n; i++)
        cnt[(src[i] >> shift) & (nb - 1)]++;
    size_t sum = 0;
    for (size_t k = 0; k < nb; k++) {
        size_t c = cnt[k];
        cnt[k] = sum;
        sum += c;
    }
    for (size_t i = 0; i < n; i++)
        dst[cnt[(src[i] >> shift) & (nb - 1)]++] = src[i];
}

static void insertion_sort(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

/* Sorts entries key << 32 | index (key < 2^bits, bits <= 32) by key, then
 * index, and returns the buffer holding the result (a or tmp). Large
 * arrays: one pass on the top digit over the whole array (the only one that
 * scatters across memory), then the lower digits bucket by bucket, in
 * cache; small buckets by insertion. Small arrays: LSD passes. */
static uint64_t *sort_keys(uint64_t *a, uint64_t *tmp, size_t n, int bits, size_t *cnt,
                           size_t *bucket)
{
    const size_t nb = (size_t)1 << RADIX_BITS;
    if (n < 4 * nb) {
        for (int shift = 0; shift < bits; shift += RADIX_BITS) {
            radix_pass(a, tmp, n, 32 + shift, cnt);
            uint64_t *t = a;
            a = tmp, tmp = t;
        }
        return a;
    }
    int top = bits > RADIX_BITS ? bits - RADIX_BITS : 0;
    radix_pass(a, tmp, n, 32 + top, cnt);
    if (top == 0)
        return tmp;
    memcpy(bucket, cnt, nb * sizeof *bucket); /* bucket k ends at bucket[k] */
    int lsd = (top + RADIX_BITS - 1) / RADIX_BITS;
    uint64_t *out = lsd % 2 ? a : tmp;
    for (size_t k = 0, b = 0; k < nb; b = bucket[k++]) {
        size_t len = bucket[k] - b;
        uint64_t *src = tmp + b, *dst = a + b;
        if (len <= 64) {
            insertion_sort(src, len);
            if (out != tmp)
                memcpy(out + b, src, len * sizeof *src);
            continue;
        }
        for (int pass = 0; pass < lsd; pass++) {
            radix_pass(src, dst, len, 32 + pass * RADIX_BITS, cnt);
            uint64_t *t = src;
            src = dst, dst = t;
        }
    }
    return out;
}

static double choose(int m, int t)
{
    double c = 1;
    for (int k = 1; k <= t; k++)
        c = c * (m - t + k) / k;
    return c;
}

/* Estimated cost of searching a scope of s items with m blocks, in units of
 * one popcount check. */
static double cost_of(double s, uint32_t r, int m)
{
    int t = m - (int)r;
    double kbits = 64.0 * t / m, nsub = choose(m, t);
    if (nsub > MAX_SUBSETS)
        return INFINITY;
    /* measured: a sort costs about 10 + 8 per radix pass popcount checks
     * per item (the pair checks run in sequence, the sort's first pass
     * scatters over memory) */
    double passes = ceil(fmin(kbits, 32) / RADIX_BITS);
    return nsub * (s * (10 + 8 * passes) + s * s / 2 / pow(2, kbits));
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
    }
    p->nsub = (size_t)choose(m, p->t);
    p->sub = xmalloc(p->nsub * (size_t)p->t);
    int c[64];
    for (int k = 0; k < p->t; k++)
        c[k] = k;
    for (size_t s = 0; s < p->nsub; s++) {
        for (int k = 0; k < p->t; k++)
            p->sub[s * (size_t)p->t + (size_t)k] = (uint8_t)c[k];
        int k = p->t - 1; /* next combination in lexicographic order */
        while (k >= 0 && c[k] == m - p->t + k)
            k--;
        if (k < 0)
            break;
        c[k]++;
        for (int q = k + 1; q < p->t; q++)
            c[q] = c[q - 1] + 1;
    }
}

static void edge_push(worker_t *w, uint32_t a, uint32_t b, uint32_t d)
{
    if (w->nedges == w->cap)
        xgrow((void **)&w->edges, &w->cap, w->nedges + 1, sizeof *w->edges);
    w->edges[w->nedges++] = (edge_t){a < b ? a : b, a < b ? b : a, d};
}

static uint64_t block_mask(const plan_t *p, int j)
{
    return (p->width[j] == 64 ? ~0ull : ((1ull << p->width[j]) - 1)) << p->lo[j];
}

/* 1 when subset s is the first t-subset of the blocks on which a pair with
 * difference diff agrees: no agreeing block below s's last one is outside s. */
static int first_subset(const plan_t *p, const uint8_t *s, uint64_t diff)
{
    int k = 0;
    for (int j = 0; j < s[p->t - 1]; j++) {
        if (k < p->t && s[k] == j) {
            k++;
            continue;
        }
        if ((diff & block_mask(p, j)) == 0)
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

POPCNT_CLONES static void run_brute(worker_t *w, const unit_t *u)
{
    const shared_t *sh = w->sh;
    for (size_t a = u->b; a < u->e; a++)
        for (size_t b = a + 1; b < u->e; b++) {
            uint32_t d = (uint32_t)__builtin_popcountll(sh->ssig[a] ^ sh->ssig[b]);
            if (d <= sh->r)
                edge_push(w, sh->ord[a], sh->ord[b], d);
        }
}

/* Scratch of one worker for run_subset. */
typedef struct {
    uint64_t *buf, *tmp;
    size_t *cnt, *bucket;
} scratch_t;

POPCNT_CLONES static void run_subset(worker_t *w, const unit_t *u, scratch_t *sc)
{
    const shared_t *sh = w->sh;
    const plan_t *p = &sh->plans[u->m];
    const uint8_t *s = p->sub + u->sub * (size_t)p->t;
    size_t n = u->e - u->b;
    const uint64_t *sig = sh->ssig + u->b;
    int bits = 0;
    uint64_t smask = 0;
    for (int k = 0; k < p->t; k++)
        bits += p->width[s[k]], smask |= block_mask(p, s[k]);
    for (size_t i = 0; i < n; i++) {
        uint64_t key = 0;
        for (int k = 0; k < p->t; k++) {
            int j = s[k];
            /* a 64-bit block (m = 1) is the whole key: no shift by 64 */
            uint64_t hi = p->width[j] < 64 ? key << p->width[j] : 0;
            key = hi | ((sig[i] >> p->lo[j]) & (block_mask(p, j) >> p->lo[j]));
        }
        /* Keys longer than 32 bits are cut to their low 32: a run may then
         * hold pairs that differ on the subset, which the check below drops. */
        sc->buf[i] = key << 32 | (uint64_t)i;
    }
    if (bits > 32)
        bits = 32;
    uint64_t *a = sort_keys(sc->buf, sc->tmp, n, bits, sc->cnt, sc->bucket);
    /* The signatures in sorted order, gathered once (prefetched) into the
     * buffer the sort left free, so the pair checks read them in sequence. */
    uint64_t *ss = a == sc->buf ? sc->tmp : sc->buf;
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n)
            __builtin_prefetch(&sig[(uint32_t)a[i + 16]]);
        ss[i] = sig[(uint32_t)a[i]];
    }
    const uint64_t kmask = bits == 32 ? ~0ull << 32 : ((1ull << bits) - 1) << 32;
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && ((a[hi] ^ a[lo]) & kmask) == 0; hi++)
            ;
        for (size_t x = lo; x < hi; x++)
            for (size_t y = x + 1; y < hi; y++) {
                uint32_t ix = (uint32_t)a[x], iy = (uint32_t)a[y];
                uint64_t diff = ss[x] ^ ss[y];
                uint32_t d = (uint32_t)__builtin_popcountll(diff);
                if (d <= sh->r && (diff & smask) == 0 && first_subset(p, s, diff))
                    edge_push(w, sh->ord[u->b + ix], sh->ord[u->b + iy], d);
            }
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    shared_t *sh = w->sh;
    scratch_t sc = {NULL, NULL, NULL, NULL};
    for (;;) {
        size_t k = atomic_fetch_add(&sh->next, 1);
        if (k >= sh->nunits)
            break;
        const unit_t *u = &sh->units[k];
        if (u->m == 0) {
            run_brute(w, u);
            continue;
        }
        if (!sc.buf) {
            sc.buf = xmalloc(sh->maxscope * sizeof *sc.buf);
            sc.tmp = xmalloc(sh->maxscope * sizeof *sc.tmp);
            sc.cnt = xmalloc(((size_t)1 << RADIX_BITS) * sizeof *sc.cnt);
            sc.bucket = xmalloc(((size_t)1 << RADIX_BITS) * sizeof *sc.bucket);
        }
        run_subset(w, u, &sc);
    }
    free(sc.buf);
    free(sc.tmp);
    free(sc.cnt);
    free(sc.bucket);
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
    size_t nunits = 0, ucap = 0, maxscope = 0, largest = 0;
    for (size_t b = 0, e; b < n; b = e) {
        for (e = b + 1; e < n && (!scope || scope[ord[e]] == scope[ord[b]]); e++)
            ;
        if (e - b < 2)
            continue;
        int m = pick_blocks(e - b, o->radius, o->blocks);
        if (e - b > largest)
            largest = e - b, out->blocks = (uint32_t)m;
        if (m && !plans[m].sub)
            plan_init(&plans[m], m, o->radius);
        size_t k = m ? plans[m].nsub : 1;
        xgrow((void **)&units, &ucap, nunits + k, sizeof *units);
        for (size_t s = 0; s < k; s++)
            units[nunits++] = (unit_t){b, e, m, s};
        if (m && e - b > maxscope)
            maxscope = e - b;
    }
    shared_t sh = {ssig, ord, plans, units, nunits, maxscope, o->radius, 0};
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
    for (int m = 0; m <= 64; m++)
        free(plans[m].sub);
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
