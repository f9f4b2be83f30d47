/* Benchmarks of the corpus-hygiene parts; see bench_dedup.h. */
#include "bench_dedup.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <turbojpeg.h>

#include "clock.h"
#include "bt_sparse.h"
#include "demo_data.h"
#include "metrics.h"
#include "neardup.h"
#include "rng.h"
#include "safe_open.h"
#include "signature.h"
#include "xalloc.h"

typedef struct {
    const char *name;
    uint64_t *dst;
} opt_t;

/* Counts: digits with an optional k / M suffix (10M = 10,000,000). */
static int parse_opts(int argc, char **argv, const opt_t *opts, size_t nopts)
{
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        while (k < nopts && strcmp(argv[i], opts[k].name) != 0)
            k++;
        if (k == nopts || i + 1 >= argc) {
            fprintf(stderr, "joust bench %s: unknown option or missing value: %s\n", argv[0],
                    argv[i]);
            return -1;
        }
        char *end;
        unsigned long long v = strtoull(argv[++i], &end, 10);
        unsigned long long mul = *end == 'k' ? 1000ull : *end == 'M' ? 1000000ull : 1ull;
        if (end == argv[i] || (mul > 1 && *++end) || (mul == 1 && *end)) {
            fprintf(stderr, "joust bench %s: %s wants a count, not \"%s\"\n", argv[0],
                    opts[k].name, argv[i]);
            return -1;
        }
        *opts[k].dst = v * mul;
    }
    return 0;
}

/* CPU seconds of this thread: the machine may be shared, wall time is
 * reported next to it. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User + system CPU seconds of the whole process (all threads). */
static double process_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0;
}

/* ---- signature ---- */

/* A demo scene at side x side with mild per-pixel noise, so the JPEG holds
 * the texture (and entropy-coded bytes) of a photograph, not flat areas. */
static void photo_like(uint64_t seed, int prompt, int side, double noise, joust_image *out)
{
    joust_image b;
    joust_demo_base(seed, prompt, &b, NULL, 0);
    if (joust_image_resize(&b, side, side, out) != 0)
        abort(); /* sizes are valid by construction */
    joust_image_free(&b);
    joust_rng_t r;
    joust_rng_seed(&r, seed * 1000003u + (uint64_t)prompt);
    size_t n = (size_t)side * side * 3;
    for (size_t i = 0; i < n; i++) {
        double v = out->rgb[i] + noise * joust_rng_normal(&r);
        out->rgb[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
    }
}

static int bench_signature(int argc, char **argv)
{
    uint64_t count = 4000, distinct = 16, side = 1024, quality = 90, noise = 6;
    const opt_t opts[] = {{"--count", &count},
                          {"--noise", &noise},
                          {"--distinct", &distinct},
                          {"--side", &side},
                          {"--quality", &quality}};
    if (parse_opts(argc, argv, opts, sizeof opts / sizeof opts[0]) != 0)
        return 2;
    if (!count || !distinct || side < 8 || side > 8192 || quality < 1 || quality > 100) {
        fprintf(stderr, "joust bench signature: counts must be > 0, side 8..8192, quality 1..100\n");
        return 2;
    }
    unsigned char **jpg = xcalloc(distinct, sizeof *jpg);
    size_t *len = xcalloc(distinct, sizeof *len), bytes = 0;
    for (uint64_t i = 0; i < distinct; i++) {
        joust_image img;
        photo_like(1, (int)i, (int)side, (double)noise, &img);
        int rc = joust_image_encode_jpeg(&img, (int)quality, 0, &jpg[i], &len[i]);
        joust_image_free(&img);
        if (rc != 0) {
            fprintf(stderr, "joust bench signature: JPEG encoding failed (%d)\n", rc);
            return 1;
        }
        bytes += len[i];
    }
    printf("signature: %" PRIu64 " distinct %" PRIu64 "x%" PRIu64 " JPEGs (q%" PRIu64
           " 4:2:0, noise %" PRIu64 ", mean %.0f KiB), %" PRIu64 " hashes, 1 thread\n",
           distinct, side, side, quality, noise, (double)bytes / (double)distinct / 1024, count);
    /* The signature and the bare limit (TurboJPEG alone, one handle and
     * one buffer reused, decoding at 1/8 scale straight to 8-bit luma, and
     * to RGB; no hash), in alternating batches of BATCH images so that a
     * shared machine's changing load falls on all three alike. */
    enum { BATCH = 50 };
    uint64_t check = 0;
    joust_signature_ctx_t *ctx = joust_signature_ctx_new(); /* kept, as a signing thread does */
    tjhandle tj = tjInitDecompress();
    tjscalingfactor eighth = {1, 8};
    int dw = TJSCALED((int)side, eighth), dh = dw;
    unsigned char *px = xmalloc((size_t)dw * (size_t)dh * 3);
    double scaled_cpu = 0, bare_cpu[2] = {0, 0};
    int64_t t0 = joust_now_us();
    for (uint64_t b = 0; b < count; b += BATCH) {
        uint64_t end = b + BATCH < count ? b + BATCH : count;
        double c0 = thread_cpu_s();
        for (uint64_t i = b; i < end; i++) {
            joust_signature s;
            char err[256];
            if (joust_signature_of_bytes(ctx, jpg[i % distinct], len[i % distinct], NULL, &s, err,
                                         sizeof err) != 0) {
                fprintf(stderr, "joust bench signature: %s\n", err);
                return 1;
            }
            check ^= s.phash;
        }
        scaled_cpu += thread_cpu_s() - c0;
        for (int pf = 0; pf < 2; pf++) {
            c0 = thread_cpu_s();
            for (uint64_t i = b; i < end; i++)
                if (!tj || tjDecompress2(tj, jpg[i % distinct], (unsigned long)len[i % distinct],
                                         px, dw, 0, dh, pf ? TJPF_RGB : TJPF_GRAY, 0) != 0) {
                    fprintf(stderr, "joust bench signature: bare TurboJPEG decode failed\n");
                    return 1;
                }
            bare_cpu[pf] += thread_cpu_s() - c0;
        }
    }
    double all_s = (double)(joust_now_us() - t0) / 1e6;
    free(px);
    tjDestroy(tj);
    joust_signature_ctx_destroy(&ctx);
    /* Reference: full-size decode, then the hash of the RGB image. */
    uint64_t full_n = count / 10 ? count / 10 : 1;
    t0 = joust_now_us();
    double c0 = thread_cpu_s();
    for (uint64_t i = 0; i < full_n; i++) {
        joust_image img;
        joust_signature s;
        if (joust_image_decode(jpg[i % distinct], len[i % distinct], NULL, &img, NULL, 0) != 0 ||
            joust_signature_of_image(&img, &s) != 0) {
            fprintf(stderr, "joust bench signature: full decode failed\n");
            return 1;
        }
        joust_image_free(&img);
    }
    double full_s = (double)(joust_now_us() - t0) / 1e6, full_cpu = thread_cpu_s() - c0;
    double bare_gray = (double)count / bare_cpu[0], bare_rgb = (double)count / bare_cpu[1];
    double rate = (double)count / scaled_cpu;
    printf("signature (scaled decode): %.0f images per CPU second (%.3f ms CPU each; wall of "
           "the three interleaved: %.2f s)\n",
           rate, scaled_cpu * 1e3 / (double)count, all_s);
    printf("bare limit, TurboJPEG 1/8 to luma: %.0f per CPU second (signature at %.0f %%); "
           "to RGB: %.0f\n", bare_gray, 100 * rate / bare_gray, bare_rgb);
    printf("full decode + hash: %.0f images per CPU second (%.3f ms CPU each; wall %.2f s, %" PRIu64
           " images)\n",
           (double)full_n / full_cpu, full_cpu * 1e3 / (double)full_n, full_s, full_n);
    printf("peak RSS %.0f MiB, xor of hashes %016" PRIx64 "\n", peak_rss_mib(), check);
    printf("| %" PRIu64 " | %" PRIu64 " | %.0f KiB | %.0f /s | %.0f /s (%.0f %%) | %.0f /s | %.0f /s |\n",
           noise, quality, (double)bytes / (double)distinct / 1024, rate, bare_gray,
           100 * rate / bare_gray, bare_rgb, (double)full_n / full_cpu);
    for (uint64_t i = 0; i < distinct; i++)
        free(jpg[i]);
    free(jpg);
    free(len);
    return 0;
}

/* ---- neardup ---- */

/* An order-independent digest of a set of pairs. */
typedef struct {
    uint64_t n, sum;
} pair_digest_t;

static void digest_pair(void *ctx, uint32_t i, uint32_t j, uint32_t d)
{
    pair_digest_t *g = ctx;
    uint64_t x = ((uint64_t)i << 32 | j) * 0x9e3779b97f4a7c15ull ^ d;
    x ^= x >> 29;
    g->n++;
    g->sum += x * 0xbf58476d1ce4e5b9ull;
}

static int bench_neardup(int argc, char **argv)
{
    uint64_t n = 10000000, radius = JOUST_NEARDUP_DEFAULT_RADIUS, threads = 2, dup_pct = 10,
             scopes = 1, blocks = 0, seed = 1, check = 20000;
    const opt_t opts[] = {{"--n", &n},           {"--radius", &radius}, {"--threads", &threads},
                          {"--dup-pct", &dup_pct}, {"--scopes", &scopes}, {"--blocks", &blocks},
                          {"--seed", &seed}, {"--check", &check}};
    if (parse_opts(argc, argv, opts, sizeof opts / sizeof opts[0]) != 0)
        return 2;
    if (n < 2 || n > JOUST_NEARDUP_MAX_N || radius > 63 || !threads || threads > 256 ||
        dup_pct > 100 || !scopes || (blocks && (blocks <= radius || blocks > 64))) {
        fprintf(stderr, "joust bench neardup: bad option value\n");
        return 2;
    }
    uint64_t *sig = xmalloc(n * sizeof *sig), *scope = scopes > 1 ? xmalloc(n * sizeof *scope) : NULL;
    uint32_t *src = xmalloc(n * sizeof *src); /* planted: the item copied; else itself */
    joust_rng_t g;
    joust_rng_seed(&g, seed);
    uint64_t planted = 0;
    for (uint64_t i = 0; i < n; i++) {
        src[i] = (uint32_t)i;
        if (scope)
            scope[i] = joust_rng_below(&g, scopes);
        if (i == 0 || joust_rng_below(&g, 100) >= dup_pct) {
            sig[i] = joust_rng_u64(&g);
            continue;
        }
        uint64_t s = joust_rng_below(&g, i), flips = 0;
        uint64_t k = joust_rng_below(&g, radius + 1); /* a near-duplicate at distance k */
        while ((uint64_t)__builtin_popcountll(flips) < k)
            flips |= 1ull << joust_rng_below(&g, 64);
        sig[i] = sig[s] ^ flips;
        src[i] = (uint32_t)s;
        if (scope)
            scope[i] = scope[s];
        planted++;
    }
    joust_neardup_opts o;
    joust_neardup_opts_defaults(&o);
    o.radius = (uint32_t)radius, o.threads = (uint32_t)threads, o.blocks = (uint32_t)blocks;
    joust_neardup_result r;
    int64_t t0 = joust_now_us();
    double c0 = process_cpu_s();
    int rc = joust_neardup_search(sig, scope, n, NULL, NULL, &o, &r);
    double secs = (double)(joust_now_us() - t0) / 1e6, cpu = process_cpu_s() - c0;
    if (rc != 0) {
        fprintf(stderr, "joust bench neardup: search failed (%d)\n", rc);
        return 1;
    }
    uint64_t missed = 0;
    for (uint64_t i = 0; i < n; i++)
        missed += r.rep[i] != r.rep[src[i]];
    /* Exactness against brute force on the first `check` signatures (their
     * planted copies of each other included): the same pairs, by a digest
     * over (i, j, d) and the count. */
    uint64_t sub = check < n ? check : n;
    pair_digest_t found = {0, 0}, brute = {0, 0};
    o.on_pair = digest_pair, o.pair_ctx = &found;
    joust_neardup_result rs;
    if (joust_neardup_search(sig, scope, sub, NULL, NULL, &o, &rs) != 0)
        return 1;
    joust_neardup_result_free(&rs);
    for (uint64_t i = 0; i < sub; i++)
        for (uint64_t j = i + 1; j < sub; j++) {
            uint32_t d = (uint32_t)__builtin_popcountll(sig[i] ^ sig[j]);
            if (d <= radius && (!scope || scope[i] == scope[j]))
                digest_pair(&brute, (uint32_t)i, (uint32_t)j, d);
        }
    int exact = found.n == brute.n && found.sum == brute.sum;
    printf("neardup: %" PRIu64 " signatures (%" PRIu64 " planted near-duplicates at distance "
           "0..%" PRIu64 "), %" PRIu64 " scope(s), radius %" PRIu64 ", %" PRIu64 " threads\n",
           n, planted, radius, scopes, radius, threads);
    printf("blocks m = %u, %" PRIu64 " pairs, %zu clusters, planted pairs not clustered: %" PRIu64
           "\n", r.blocks, r.pairs, r.n_clusters, missed);
    printf("search %.2f s wall, %.2f s CPU (all threads), peak RSS %.0f MiB\n", secs, cpu,
           peak_rss_mib());
    printf("first %" PRIu64 " signatures: %" PRIu64 " pairs, brute force %" PRIu64 " (%s)\n", sub,
           found.n, brute.n, exact ? "the same pairs" : "DIFFERENT PAIRS");
    printf("| neardup | %" PRIu64 " | r %" PRIu64 " | m %u | %" PRIu64
           " threads | %.1f s | %.1f s CPU | %.0f MiB |\n",
           n, radius, r.blocks, threads, secs, cpu, peak_rss_mib());
    joust_neardup_result_free(&r);
    free(sig);
    free(scope);
    free(src);
    return missed || !exact ? 1 : 0;
}

/* ---- dedup-quality ---- */

/* One image of a near-duplicate set (tools/bench_dedup_peer.py gen). */
typedef struct {
    char *file, *prompt, *base, *kind;
    uint64_t hash[2]; /* joust's signature, the peer's hash */
} qitem_t;

#define MAX_KINDS 32

typedef struct {
    qitem_t *it;
    size_t n, cap;
    const char *kinds[MAX_KINDS];
    size_t nkinds;
} qset_t;

typedef struct {
    const qset_t *set;
    int method;
    uint64_t tp, fp, lookalike_fp;
    uint64_t *kind_found; /* per kind: copies within r of their original */
} qcount_t;

/* Splits a tab-separated line into at most n fields in place. */
static size_t split_tabs(char *line, char **f, size_t n)
{
    size_t k = 0;
    line[strcspn(line, "\r\n")] = '\0';
    while (k < n) {
        f[k++] = line;
        char *t = strchr(line, '\t');
        if (!t)
            break;
        *t = '\0';
        line = t + 1;
    }
    return k;
}

static int qset_read(const char *dir, qset_t *s)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/manifest.tsv", dir);
    FILE *f;
    if (joust_fopen_regular(path, 0, 0, &f, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "joust bench dedup-quality: %s\n", err);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        char *fl[4];
        lineno++;
        if (split_tabs(line, fl, 4) != 4) {
            fprintf(stderr, "joust bench dedup-quality: %s line %zu: want file, prompt, base, kind\n",
                    path, lineno);
            rc = -1;
            break;
        }
        xgrow((void **)&s->it, &s->cap, s->n + 1, sizeof *s->it);
        qitem_t *q = &s->it[s->n++];
        *q = (qitem_t){xstrdup(fl[0]), xstrdup(fl[1]), xstrdup(fl[2]), xstrdup(fl[3]), {0, 0}};
        size_t k = 0;
        while (k < s->nkinds && strcmp(s->kinds[k], q->kind) != 0)
            k++;
        if (k == s->nkinds && s->nkinds < MAX_KINDS)
            s->kinds[s->nkinds++] = q->kind;
    }
    free(line);
    fclose(f);
    return rc;
}

/* The peer's hashes (file, 16 hex digits), matched to the manifest by file
 * name; 1 when present and complete, 0 when absent, -1 on a bad file. */
static int qset_read_peer(const char *dir, qset_t *s)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/peer.tsv", dir);
    FILE *f;
    if (joust_fopen_regular(path, 0, 0, &f, NULL, err, sizeof err) != 0)
        return 0;
    char *line = NULL;
    size_t cap = 0, k = 0, got = 0;
    while (getline(&line, &cap, f) > 0) {
        char *fl[2], *end;
        if (split_tabs(line, fl, 2) != 2)
            break;
        for (size_t tries = 0; tries < s->n && strcmp(s->it[k].file, fl[0]) != 0; tries++)
            k = (k + 1) % s->n;
        if (strcmp(s->it[k].file, fl[0]) != 0)
            break;
        s->it[k].hash[1] = strtoull(fl[1], &end, 16);
        if (end != fl[1] + 16)
            break;
        got++;
    }
    free(line);
    fclose(f);
    if (got != s->n) {
        fprintf(stderr, "joust bench dedup-quality: %s: %zu of %zu hashes read\n", path, got, s->n);
        return -1;
    }
    return 1;
}

static void qcount_pair(void *ctx, uint32_t i, uint32_t j, uint32_t d)
{
    (void)d;
    qcount_t *c = ctx;
    const qitem_t *a = &c->set->it[i], *b = &c->set->it[j];
    if (strcmp(a->base, b->base) == 0) {
        c->tp++;
        /* an edited copy found with its original */
        const qitem_t *copy = !strcmp(a->kind, "orig") ? b : !strcmp(b->kind, "orig") ? a : NULL;
        if (copy)
            for (size_t k = 0; k < c->set->nkinds; k++)
                if (!strcmp(c->set->kinds[k], copy->kind))
                    c->kind_found[k]++;
        return;
    }
    c->fp++;
    if (!strcmp(a->kind, "orig") && !strcmp(b->kind, "orig") && !strcmp(a->prompt, b->prompt))
        c->lookalike_fp++;
}

static int bench_dedup_quality(int argc, char **argv)
{
    const char *dir = NULL, *radii = "4,6,8,10,12";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--set"))
            dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--radii"))
            radii = argv[++i];
        else {
            fprintf(stderr, "joust bench dedup-quality: unknown option or missing value: %s\n",
                    argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "joust bench dedup-quality: --set DIR is required (a set made by "
                        "tools/bench_dedup_peer.sh)\n");
        return 2;
    }
    qset_t s;
    memset(&s, 0, sizeof s);
    int rc = qset_read(dir, &s);
    int peer = rc == 0 ? qset_read_peer(dir, &s) : -1;
    if (rc != 0 || peer < 0 || s.n < 2)
        return 1;
    /* joust's signatures, timed */
    double cpu = 0;
    size_t bytes = 0;
    joust_signature_ctx_t *ctx = joust_signature_ctx_new();
    for (size_t i = 0; i < s.n; i++) {
        char path[4096], err[256];
        unsigned char *data;
        size_t len;
        joust_signature sig;
        snprintf(path, sizeof path, "%s/%s", dir, s.it[i].file);
        if (joust_read_regular(path, 0, 0, &data, &len, err, sizeof err) != 0) {
            fprintf(stderr, "joust bench dedup-quality: %s\n", err);
            return 1;
        }
        double c0 = thread_cpu_s();
        rc = joust_signature_of_bytes(ctx, data, len, NULL, &sig, err, sizeof err);
        cpu += thread_cpu_s() - c0;
        free(data);
        if (rc != 0) {
            fprintf(stderr, "joust bench dedup-quality: %s: %s\n", path, err);
            return 1;
        }
        s.it[i].hash[0] = sig.phash;
        bytes += len;
    }
    joust_signature_ctx_destroy(&ctx);
    /* ground truth: the true pairs, the look-alikes, the copies per kind */
    uint64_t true_pairs = 0, lookalikes = 0, copies[MAX_KINDS] = {0};
    for (size_t i = 0; i < s.n; i++) {
        for (size_t j = i + 1; j < s.n; j++) {
            int same = !strcmp(s.it[i].base, s.it[j].base);
            if (same)
                true_pairs++;
            if (!same && !strcmp(s.it[i].prompt, s.it[j].prompt) &&
                !strcmp(s.it[i].kind, "orig") && !strcmp(s.it[j].kind, "orig"))
                lookalikes++;
        }
        for (size_t k = 0; k < s.nkinds; k++)
            copies[k] += !strcmp(s.it[i].kind, s.kinds[k]) && strcmp(s.kinds[k], "orig") != 0;
    }
    printf("dedup-quality: %zu images in %s (mean %.0f KiB), %zu true near-duplicate pairs, %" PRIu64
           " look-alike pairs (distinct images of one prompt)\n",
           s.n, dir, (double)bytes / (double)s.n / 1024, (size_t)true_pairs, lookalikes);
    printf("joust signature: %.0f images per CPU second\n", (double)s.n / cpu);
    if (peer > 0) { /* the same definition but for the 32 x 32 reduction */
        uint64_t same = 0, dsum = 0, dmax = 0;
        for (size_t i = 0; i < s.n; i++) {
            uint64_t d = (uint64_t)joust_signature_distance(s.it[i].hash[0], s.it[i].hash[1]);
            same += d == 0, dsum += d, dmax = d > dmax ? d : dmax;
        }
        printf("joust vs imagededup hash of the same image: mean distance %.2f, max %" PRIu64
               ", equal on %" PRIu64 " of %zu\n", (double)dsum / (double)s.n, dmax, same, s.n);
    }
    printf("\nrecall = edited copies within r of their original; precision = true pairs / pairs "
           "found (all images, one global scope); look-alikes = distinct same-prompt images "
           "within r\n\n| Hash | r |");
    for (size_t k = 0; k < s.nkinds; k++)
        if (strcmp(s.kinds[k], "orig") != 0)
            printf(" %s |", s.kinds[k]);
    printf(" pair recall | precision | look-alikes merged |\n|---|---|");
    for (size_t k = 0; k < s.nkinds; k++)
        if (strcmp(s.kinds[k], "orig") != 0)
            printf("---|");
    printf("---|---|---|\n");
    uint64_t *sigs = xmalloc(s.n * sizeof *sigs);
    int fail = 0;
    for (int method = 0; method < 1 + (peer > 0); method++) {
        for (size_t i = 0; i < s.n; i++)
            sigs[i] = s.it[i].hash[method];
        for (const char *p = radii; *p;) {
            char *end;
            unsigned long r = strtoul(p, &end, 10);
            if (end == p || r > 63) {
                fprintf(stderr, "joust bench dedup-quality: --radii wants numbers 0..63\n");
                return 2;
            }
            p = *end == ',' ? end + 1 : end;
            uint64_t found[MAX_KINDS] = {0};
            qcount_t c = {&s, method, 0, 0, 0, found};
            joust_neardup_opts o;
            joust_neardup_opts_defaults(&o);
            o.radius = (uint32_t)r;
            o.on_pair = qcount_pair, o.pair_ctx = &c;
            joust_neardup_result res;
            if (joust_neardup_search(sigs, NULL, s.n, NULL, NULL, &o, &res) != 0)
                return 1;
            joust_neardup_result_free(&res);
            printf("| %s | %lu |", method ? "imagededup PHash" : "joust", r);
            for (size_t k = 0; k < s.nkinds; k++)
                if (strcmp(s.kinds[k], "orig") != 0)
                    printf(" %.0f %% |", 100.0 * (double)found[k] / (double)copies[k]);
            printf(" %.1f %% | %.1f %% | %.1f %% |\n", 100.0 * (double)c.tp / (double)true_pairs,
                   c.tp + c.fp ? 100.0 * (double)c.tp / (double)(c.tp + c.fp) : 100.0,
                   lookalikes ? 100.0 * (double)c.lookalike_fp / (double)lookalikes : 0.0);
            /* the edited copies must be found at the default radius */
            if (method == 0 && r == JOUST_NEARDUP_DEFAULT_RADIUS && c.tp == 0)
                fail = 1;
        }
    }
    free(sigs);
    for (size_t i = 0; i < s.n; i++) {
        free(s.it[i].file);
        free(s.it[i].prompt);
        free(s.it[i].base);
        free(s.it[i].kind);
    }
    free(s.it);
    return fail;
}

/* ---- bt-global ---- */

static int bench_bt_global(int argc, char **argv)
{
    uint64_t images = 1000000, comparisons = 10000000, seed = 1, tau_sample = 20000;
    const opt_t opts[] = {{"--images", &images},
                          {"--comparisons", &comparisons},
                          {"--seed", &seed},
                          {"--tau-sample", &tau_sample}};
    if (parse_opts(argc, argv, opts, sizeof opts / sizeof opts[0]) != 0)
        return 2;
    if (images < 2 || images > UINT32_MAX || comparisons < 1 || tau_sample < 2) {
        fprintf(stderr, "joust bench bt-global: bad option value\n");
        return 2;
    }
    uint32_t n = (uint32_t)images;
    joust_rng_t g;
    joust_rng_seed(&g, seed);
    double *truth = xmalloc(n * sizeof *truth), *th = xmalloc(n * sizeof *th);
    double *se = xmalloc(n * sizeof *se);
    for (uint32_t i = 0; i < n; i++)
        truth[i] = joust_rng_normal(&g);
    /* Random perfect matchings over the whole set, one after the other, cut
     * at the comparison count: about 2 m / n opponents per image, one
     * connected component. Soft outcomes from a judge with 1 logit noise. */
    joust_bt_edge *e = xmalloc(comparisons * sizeof *e);
    uint32_t *perm = xmalloc(n * sizeof *perm);
    size_t m = 0;
    while (m < comparisons) {
        for (uint32_t i = 0; i < n; i++)
            perm[i] = i;
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)joust_rng_below(&g, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        for (uint32_t i = 0; i + 1 < n && m < comparisons; i += 2) {
            uint32_t a = perm[i], b = perm[i + 1];
            double x = truth[a] - truth[b] + joust_rng_normal(&g);
            e[m++] = (joust_bt_edge){a, b, 1 / (1 + exp(-x)), 1.0};
        }
    }
    free(perm);
    double rss0 = peak_rss_mib();
    joust_bt_sparse_stats st;
    int64_t t0 = joust_now_us();
    double c0 = thread_cpu_s();
    int rc = joust_bt_sparse_fit(n, e, m, NULL, 0, th, se, &st);
    double secs = (double)(joust_now_us() - t0) / 1e6, cpu = thread_cpu_s() - c0;
    if (rc != 0) {
        fprintf(stderr, "joust bench bt-global: fit failed (%d)\n", rc);
        return 1;
    }
    /* Kendall tau is O(n^2): on a random sample of the images. */
    uint32_t ns = tau_sample < n ? (uint32_t)tau_sample : n;
    double *xs = xmalloc(ns * sizeof *xs), *ys = xmalloc(ns * sizeof *ys);
    for (uint32_t k = 0; k < ns; k++) {
        uint32_t i = ns == n ? k : (uint32_t)joust_rng_below(&g, n);
        xs[k] = th[i], ys[k] = truth[i];
    }
    double tau = joust_kendall_tau(ns, xs, ys);
    printf("bt-global: %u images, %zu soft comparisons (k-regular rounds over the whole set, one "
           "component), 1 thread\n", n, m);
    printf("fit %.2f s wall, %.2f s CPU; %d Newton steps, %ld CG iterations, max |gradient| "
           "%.2g\n", secs, cpu, st.newton, st.cg, st.grad_norm);
    printf("Kendall tau vs truth %.4f (%u-image sample); peak RSS %.0f MiB (%.0f before the fit)\n",
           tau, ns, peak_rss_mib(), rss0);
    printf("| bt-global | %u | %zu | %.1f s | %.1f s CPU | %d / %ld | %.2g | %.4f | %.0f MiB |\n", n,
           m, secs, cpu, st.newton, st.cg, st.grad_norm, tau, peak_rss_mib());
    free(xs);
    free(ys);
    free(e);
    free(truth);
    free(th);
    free(se);
    return st.grad_norm <= 1e-9 ? 0 : 1;
}

/* ---- dispatch ---- */

typedef struct {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *usage; /* --help's text; bench_dedup.h says more */
} bench_t;

static const bench_t benches[] = {
    {"signature", bench_signature,
     "[--count N] [--distinct D] [--side S] [--quality Q] [--noise SIGMA]\n"
     "Image signatures of D distinct S x S JPEGs (default 1024 = 1 Mpix, q90), N in all on\n"
     "one core, beside TurboJPEG's bare 1/8 decode; images per CPU second.\n"},
    {"neardup", bench_neardup,
     "[--n N] [--radius R] [--threads T] [--dup-pct P] [--scopes S] [--blocks M]\n"
     "       [--seed S] [--check K]\n"
     "Exact near-duplicate search over N random signatures (default 10M) with P % planted\n"
     "copies within R bits; fails unless every copy joins its original's cluster.\n"},
    {"dedup-quality", bench_dedup_quality,
     "--set DIR [--radii 4,6,8,10,12]\n"
     "Precision and recall of near-duplicate detection on a set made by\n"
     "tools/bench_dedup_peer.sh, at each radius.\n"},
    {"bt-global", bench_bt_global,
     "[--images N] [--comparisons M] [--seed S] [--tau-sample K]\n"
     "The global sparse Bradley-Terry fit of N images (default 1M) from M soft\n"
     "comparisons (default 10M) over one connected graph.\n"},
};

int joust_bench_dedup_handles(const char *name)
{
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        if (name && !strcmp(name, benches[i].name))
            return 1;
    return 0;
}

int joust_bench_dedup_main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        if (argc < 1 || strcmp(argv[0], benches[i].name))
            continue;
        for (int a = 1; a < argc; a++)
            if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                printf("usage: joust bench %s ", benches[i].name);
                fputs(benches[i].usage, stdout);
                return 0;
            }
        return benches[i].main(argc, argv);
    }
    fprintf(stderr, "joust bench: unknown benchmark\n");
    return 2;
}
