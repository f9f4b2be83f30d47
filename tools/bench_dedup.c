/* Benchmarks of the corpus-hygiene parts; see bench_dedup.h. */
#include "bench_dedup.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "demo_data.h"
#include "rng.h"
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
    uint64_t check = 0;
    int64_t t0 = joust_now_us();
    double c0 = thread_cpu_s();
    for (uint64_t i = 0; i < count; i++) {
        joust_signature s;
        char err[256];
        if (joust_signature_of_bytes(jpg[i % distinct], len[i % distinct], NULL, &s, err,
                                     sizeof err) != 0) {
            fprintf(stderr, "joust bench signature: %s\n", err);
            return 1;
        }
        check ^= s.phash;
    }
    double scaled_s = (double)(joust_now_us() - t0) / 1e6, scaled_cpu = thread_cpu_s() - c0;
    /* Reference: full-size decode, then the hash of the RGB image. */
    uint64_t full_n = count / 10 ? count / 10 : 1;
    t0 = joust_now_us();
    c0 = thread_cpu_s();
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
    printf("scaled decode: %.0f images per CPU second (%.3f ms CPU each; wall %.2f s)\n",
           (double)count / scaled_cpu, scaled_cpu * 1e3 / (double)count, scaled_s);
    printf("full decode:   %.0f images per CPU second (%.3f ms CPU each; wall %.2f s, %" PRIu64
           " images)\n",
           (double)full_n / full_cpu, full_cpu * 1e3 / (double)full_n, full_s, full_n);
    printf("peak RSS %.0f MiB, xor of hashes %016" PRIx64 "\n", peak_rss_mib(), check);
    printf("| signature | %" PRIu64 "x%" PRIu64 " q%" PRIu64 " noise %" PRIu64 " %.0f KiB | %.0f /CPU-s | %.0f /CPU-s |\n",
           side, side, quality, noise, (double)bytes / (double)distinct / 1024,
           (double)count / scaled_cpu, (double)full_n / full_cpu);
    for (uint64_t i = 0; i < distinct; i++)
        free(jpg[i]);
    free(jpg);
    free(len);
    return 0;
}

/* ---- dispatch ---- */

typedef struct {
    const char *name;
    int (*main)(int argc, char **argv);
} bench_t;

static const bench_t benches[] = {
    {"signature", bench_signature},
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
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        if (argc >= 1 && !strcmp(argv[0], benches[i].name))
            return benches[i].main(argc, argv);
    fprintf(stderr, "joust bench: unknown benchmark\n");
    return 2;
}
