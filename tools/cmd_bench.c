/* Benchmarks: `bench scale` (coordinator memory per image and throughput
 * with the sim judge on a synthetic manifest) and `bench bt` (the bulk
 * Bradley–Terry fit). Results and commands live in docs/benchmarks.md. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_bt.h"
#include "cli.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "rng.h"

static long peak_rss_kb(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_maxrss;
}

/* A manifest of `images` images in prompts of `per_prompt`, latent
 * utilities for the sim judge; the image files do not exist (sim never
 * reads them). */
static int write_manifest(const char *path, uint64_t images, int per_prompt, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return JOUST_EIO;
    joust_rng_t rng;
    joust_rng_seed(&rng, seed);
    for (uint64_t i = 0; i < images; i++)
        fprintf(f, "{\"image\":\"img/%" PRIu64 ".jpg\",\"prompt_id\":%" PRIu64
                   ",\"model\":\"m%d\",\"latent\":%.4f}\n",
                i, i / (uint64_t)per_prompt, (int)(i % 4), joust_rng_normal(&rng));
    return fclose(f) == 0 ? 0 : JOUST_EIO;
}

typedef struct {
    uint64_t images, matches;
    double ingest_s, run_s, score_s;
    long rss_after_run_kb, rss_after_score_kb, worker_rss_kb;
} scale_result;

static int scale_once(cli_opts *o, const char *dir, uint64_t images, scale_result *r)
{
    char manifest[PATH_MAX], db[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/manifest-%" PRIu64 ".jsonl", dir, images);
    snprintf(db, sizeof db, "%s/store-%" PRIu64, dir, images);
    int rc = write_manifest(manifest, images, o->per_prompt, o->seed);
    if (rc < 0)
        return rc;
    joust_store_t *st;
    if ((rc = cli_open_store(db, 1, &st)) < 0)
        return rc;
    memset(r, 0, sizeof *r);
    r->images = images;
    int64_t t0 = joust_now_ms();
    joust_log_set_level(JOUST_LOG_ERROR); /* the missing image files are expected */
    rc = cli_ingest(st, manifest);
    joust_log_set_level(JOUST_LOG_INFO);
    int64_t t1 = joust_now_ms();
    joust_coord_summary cs;
    if (rc == 0)
        rc = cli_coordinate(o, st, &cs);
    int64_t t2 = joust_now_ms();
    r->rss_after_run_kb = peak_rss_kb(RUSAGE_SELF);
    r->worker_rss_kb = peak_rss_kb(RUSAGE_CHILDREN);
    joust_score_summary ss;
    if (rc == 0)
        rc = cli_write_scores(st, o->run, dir, &ss, 1);
    r->rss_after_score_kb = peak_rss_kb(RUSAGE_SELF);
    r->matches = cs.ok + cs.failed;
    r->ingest_s = (double)(t1 - t0) / 1000;
    r->run_s = (double)(t2 - t1) / 1000;
    r->score_s = (double)(joust_now_ms() - t2) / 1000;
    joust_store_destroy(&st);
    return rc;
}

static int bench_scale(int argc, char **argv)
{
    cli_opts o;
    if (cli_parse(argc, argv, &o) < 0)
        return 2;
    if (o.help) {
        printf("usage: joust bench scale [--images N] [--per-prompt K] [--order fixed] [--out DIR]\n"
               "Runs a synthetic manifest of N images (default 1000000) in prompts of K (default\n"
               "16) with the sim judge and 2 local workers, first at N/10 then at N, and reports\n"
               "peak memory of the coordinator process per image (total and marginal).\n");
        return 0;
    }
    uint64_t n = o.images ? o.images : 1000000;
    if (!o.per_prompt)
        o.per_prompt = 16;
    o.judge = "sim";
    if (o.slots == 32)
        o.slots = 1024;
    if (o.job_matches == 64)
        o.job_matches = 256;
    const char *dir = strcmp(o.out, ".") ? o.out : "joust-bench-scale";
    mkdir(dir, 0755);
    scale_result small, big;
    int rc = scale_once(&o, dir, n / 10, &small);
    if (rc == 0)
        rc = scale_once(&o, dir, n, &big);
    if (rc < 0)
        return 1;
    printf("\n| images | per prompt | order | matches | ingest s | judge s | matches/s | score s |"
           " coordinator peak RSS after judging | after scoring | worker peak RSS |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n");
    const scale_result *rs[] = {&small, &big};
    for (int i = 0; i < 2; i++)
        printf("| %" PRIu64 " | %d | %s | %" PRIu64 " | %.1f | %.1f | %.0f | %.1f | %.1f MiB | %.1f MiB | %.1f MiB |\n",
               rs[i]->images, o.per_prompt, o.order, rs[i]->matches, rs[i]->ingest_s, rs[i]->run_s,
               rs[i]->run_s > 0 ? (double)rs[i]->matches / rs[i]->run_s : 0, rs[i]->score_s,
               rs[i]->rss_after_run_kb / 1024.0, rs[i]->rss_after_score_kb / 1024.0,
               rs[i]->worker_rss_kb / 1024.0);
    double per_image = big.rss_after_run_kb * 1024.0 / (double)big.images;
    double marginal = (double)(big.rss_after_run_kb - small.rss_after_run_kb) * 1024.0 /
                      (double)(big.images - small.images);
    printf("\ncoordinator bytes per image (peak RSS while judging / images): %.0f; marginal "
           "(growth from %" PRIu64 " to %" PRIu64 " images): %.1f\n",
           per_image, small.images, big.images, marginal);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "scale"))
        return bench_scale(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "bt"))
        return joust_bench_bt_main(argc - 1, argv + 1);
    fprintf(argc >= 2 && strcmp(argv[1], "--help") ? stderr : stdout,
            "usage: joust bench scale|bt [options]   (joust bench scale --help)\n");
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
