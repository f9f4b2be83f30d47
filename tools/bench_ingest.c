/* `joust bench ingest`; see bench_ingest.h. */
#include "bench_ingest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "manifest.h"
#include "rng.h"
#include "store.h"

typedef struct {
    const char *name;
    double wall_s, cpu_s;
    uint64_t lines;
} phase;

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void phase_begin(phase *p, const char *name, int64_t *t0, double *c0)
{
    p->name = name;
    *t0 = joust_now_us();
    *c0 = cpu_s();
}

static void phase_end(phase *p, int64_t t0, double c0)
{
    p->wall_s = (double)(joust_now_us() - t0) * 1e-6;
    p->cpu_s = cpu_s() - c0;
}

/* A manifest of n lines shaped like a generated set's: an id, the image,
 * the prompt's text, the model, a latent, a seed and a guidance scale. */
static int write_manifest(const char *path, uint64_t n, int per_prompt, const char *folder)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return JOUST_EIO;
    joust_rng_t rng;
    joust_rng_seed(&rng, 7);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t p = i / (uint64_t)per_prompt;
        fprintf(f, "{\"id\":\"img-%08" PRIu64 "\",\"image\":\"%s/%" PRIu64 "/%" PRIu64 ".jpg", i,
                folder, p % 1000, i);
        fprintf(f, "\",\"prompt\":\"a watercolor painting of a lighthouse on a cliff at dusk, "
                   "variation %" PRIu64 "\",\"model\":\"model-%d\",\"latent\":%.4f,"
                   "\"seed\":%" PRIu64 ",\"cfg\":7.5}\n",
                p, (int)(i % 4), joust_rng_normal(&rng), joust_rng_u64(&rng) % 1000000007);
    }
    return fclose(f) == 0 ? 0 : JOUST_EIO;
}

/* read / cjson / parse: the manifest read with getline and each line given
 * to what (0 none, 1 cJSON, 2 manifest_parse_line_buf into one reused
 * buffer, as ingest's parser threads call it). */
static int scan(const char *path, int what, phase *p, const char *name)
{
    int64_t t0;
    double c0;
    phase_begin(p, name, &t0, &c0);
    FILE *f = fopen(path, "r");
    if (!f)
        return JOUST_EIO;
    char *line = NULL, err[256], *buf = NULL;
    size_t cap = 0, bufcap = 0;
    ssize_t n;
    uint64_t lines = 0, bytes = 0, ok = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        lines++;
        bytes += (uint64_t)n;
        if (what == 1) {
            cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
            ok += j != NULL;
            cJSON_Delete(j);
        } else if (what == 2) {
            manifest_item it;
            size_t used;
            if (MANIFEST_BUF_BYTES(n) > bufcap) {
                bufcap = 2 * MANIFEST_BUF_BYTES(n);
                free(buf);
                buf = malloc(bufcap);
                if (!buf)
                    break;
            }
            if (manifest_parse_line_buf(line, (size_t)n, buf, &used, &it, err, sizeof err) == 0) {
                ok++;
                manifest_item_clear(&it);
            }
        }
    }
    free(line);
    free(buf);
    fclose(f);
    phase_end(p, t0, c0);
    p->lines = lines;
    if (what && ok != lines) {
        fprintf(stderr, "bench ingest: %s accepted %" PRIu64 " of %" PRIu64 " lines\n", name, ok,
                lines);
        return JOUST_EINVAL;
    }
    return bytes ? 0 : JOUST_EINVAL;
}

static int ingest_once(const char *dir, const char *manifest, const char *tag, unsigned threads,
                       phase *p, const char *name, uint64_t expect)
{
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/store-%s", dir, tag);
    joust_store_t *st;
    int rc = joust_store_open(db, JOUST_STORE_CREATE, &st);
    if (rc < 0)
        return rc;
    joust_ingest_opts o;
    joust_ingest_opts_defaults(&o);
    o.threads = threads;
    joust_ingest_stats s;
    int64_t t0;
    double c0;
    joust_log_set_level(JOUST_LOG_ERROR); /* the missing image files are expected */
    phase_begin(p, name, &t0, &c0);
    rc = joust_ingest_with(st, manifest, &o, &s);
    phase_end(p, t0, c0);
    joust_log_set_level(JOUST_LOG_INFO);
    joust_store_destroy(&st);
    p->lines = s.lines;
    if (rc == 0 && (s.images != expect || s.errors))
        rc = JOUST_EINVAL;
    if (rc < 0)
        fprintf(stderr, "bench ingest: %s: %" PRIu64 " images of %" PRIu64 ", %" PRIu64
                        " bad lines (%s)\n", manifest, s.images, expect, s.errors,
                joust_strerror(rc));
    return rc;
}

static void print_rows(const phase *ph, int n, const phase *ref)
{
    printf("| phase | lines | wall s | lines/s | CPU s | CPU µs/line | ingest ÷ phase (lines/s) |\n"
           "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        double rate = ph[i].wall_s > 0 ? (double)ph[i].lines / ph[i].wall_s : 0;
        double ref_rate = ref->wall_s > 0 ? (double)ref->lines / ref->wall_s : 0;
        printf("| %s | %" PRIu64 " | %.2f | %.0f | %.2f | %.2f | %.2f |\n", ph[i].name,
               ph[i].lines, ph[i].wall_s, rate, ph[i].cpu_s,
               ph[i].lines ? ph[i].cpu_s * 1e6 / (double)ph[i].lines : 0,
               rate > 0 ? ref_rate / rate : 0);
    }
}

/* F files of 16 KiB under dir/files/<k>/ (k = prompt % 1000, as the
 * manifest names them). */
static int write_files(const char *dir, uint64_t nfiles, int per_prompt)
{
    char path[PATH_MAX];
    unsigned char buf[16384];
    joust_rng_t rng;
    joust_rng_seed(&rng, 11);
    snprintf(path, sizeof path, "%s/files", dir);
    mkdir(path, 0755);
    for (uint64_t i = 0; i < nfiles; i++) {
        uint64_t p = i / (uint64_t)per_prompt;
        snprintf(path, sizeof path, "%s/files/%" PRIu64, dir, p % 1000);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/files/%" PRIu64 "/%" PRIu64 ".jpg", dir, p % 1000, i);
        for (size_t k = 0; k < sizeof buf; k += 8) {
            uint64_t r = joust_rng_u64(&rng);
            memcpy(buf + k, &r, 8);
        }
        FILE *f = fopen(path, "w");
        if (!f || fwrite(buf, 1, sizeof buf, f) != sizeof buf) {
            if (f)
                fclose(f);
            return JOUST_EIO;
        }
        if (fclose(f) != 0)
            return JOUST_EIO;
    }
    return 0;
}

int joust_bench_ingest_main(int argc, char **argv)
{
    uint64_t n = 1000000, nfiles = 0;
    const char *dir = "joust-bench-ingest";
    int per_prompt = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            printf("usage: joust bench ingest [--images N] [--files F] [--out DIR]\n"
                   "Ingests a synthetic manifest of N lines (default 1000000) into a fresh store\n"
                   "under DIR (default joust-bench-ingest) and reports lines/s next to reading\n"
                   "the file alone, cJSON parsing every line and joust's line parser, in one run.\n"
                   "--files F: also F lines naming real 16 KiB files, ingested with 1 parser\n"
                   "thread and with the default (one per CPU): content hashing in parallel.\n");
            return 0;
        }
        if (!v || (strcmp(a, "--images") && strcmp(a, "--files") && strcmp(a, "--out"))) {
            fprintf(stderr, "joust bench ingest: unknown option or missing value: %s\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out")) {
            dir = v;
            continue;
        }
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || x == 0) {
            fprintf(stderr, "joust bench ingest: %s wants a positive count, not \"%s\"\n", a, v);
            return 2;
        }
        *(!strcmp(a, "--images") ? &n : &nfiles) = x;
    }
    mkdir(dir, 0755);
    char manifest[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    int rc = write_manifest(manifest, n, per_prompt, "img");
    phase ph[6];
    int np = 0;
    /* the file is read once first so that every phase finds it cached */
    if (rc == 0)
        rc = scan(manifest, 0, &ph[np], "read + split lines");
    if (rc == 0)
        rc = scan(manifest, 0, &ph[np++], "read + split lines");
    if (rc == 0)
        rc = scan(manifest, 1, &ph[np++], "read + cJSON parse");
    if (rc == 0)
        rc = scan(manifest, 2, &ph[np++], "read + joust line parser");
    if (rc == 0)
        rc = ingest_once(dir, manifest, "main", 0, &ph[np++], "joust ingest", n);
    if (rc < 0) {
        fprintf(stderr, "joust bench ingest: failed: %s\n", joust_strerror(rc));
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double load[3] = {0};
    if (getloadavg(load, 3) < 1)
        load[0] = -1;
    printf("\n%" PRIu64 " lines, %ld CPUs online, load average %.2f; image files absent; "
           "peak RSS %ld MiB\n\n", n, sysconf(_SC_NPROCESSORS_ONLN), load[0], ru.ru_maxrss >> 10);
    print_rows(ph, np, &ph[np - 1]);
    if (nfiles) {
        char fman[PATH_MAX];
        snprintf(fman, sizeof fman, "%s/manifest-files.jsonl", dir);
        phase fp[2];
        rc = write_files(dir, nfiles, per_prompt);
        if (rc == 0)
            rc = write_manifest(fman, nfiles, per_prompt, "files");
        if (rc == 0)
            rc = ingest_once(dir, fman, "files-1", 1, &fp[0], "ingest, 1 parser thread", nfiles);
        if (rc == 0)
            rc = ingest_once(dir, fman, "files-n", 0, &fp[1], "ingest, parser threads = CPUs",
                             nfiles);
        if (rc < 0) {
            fprintf(stderr, "joust bench ingest: files: %s\n", joust_strerror(rc));
            return 1;
        }
        printf("\n%" PRIu64 " lines naming real 16 KiB files (content hashed)\n\n", nfiles);
        print_rows(fp, 2, &fp[1]);
    }
    return 0;
}
