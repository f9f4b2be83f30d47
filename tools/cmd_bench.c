/* Benchmarks: `bench scale` (coordinator memory per image and throughput
 * with the sim judge on a synthetic manifest) and `bench bt` (the bulk
 * Bradley–Terry fit). Results and commands live in docs/benchmarks.md. */
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "bench_bt.h"
#include "bench_coord_bare.h"
#include "bench_dedup.h"
#include "bench_groups.h"
#include "bench_ingest.h"
#include "bench_ranking.h"
#include "cli.h"
#include "clock.h"
#include "coordinator.h"
#include "curve.h"
#include "err.h"
#include "log.h"
#include "rng.h"
#include "store.h"
#include "records.h"

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

/* Samples, while the coordinator judges, the heap in use (mallinfo2:
 * joust's own allocations and RocksDB's together) and RocksDB's own memory
 * (memtables, block cache, table readers); the coordinator's own state is
 * the difference, counted from its level when judging starts. */
typedef struct {
    joust_store_t *st;
    pthread_t thread;
    pthread_mutex_t mu;
    int judging, quit, based;
    int64_t base;                /* heap - RocksDB when judging started */
    int64_t own_peak;            /* most heap - RocksDB - base seen */
    uint64_t rocks_peak;         /* most RocksDB memory seen */
} mem_sampler;

static void sample_once(mem_sampler *m)
{
    struct mallinfo2 mi = mallinfo2();
    joust_store_mem sm;
    joust_store_memory(m->st, &sm);
    uint64_t rocks = sm.memtables + sm.block_cache + sm.table_readers;
    int64_t other = (int64_t)(mi.uordblks + mi.hblkhd) - (int64_t)rocks;
    if (!m->based) {
        m->base = other;
        m->based = 1;
    }
    if (other - m->base > m->own_peak)
        m->own_peak = other - m->base;
    if (rocks > m->rocks_peak)
        m->rocks_peak = rocks;
}

static void *sampler_main(void *arg)
{
    mem_sampler *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->quit) {
        if (m->judging)
            sample_once(m);
        pthread_mutex_unlock(&m->mu);
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void sampler_judging(mem_sampler *m, int on)
{
    pthread_mutex_lock(&m->mu);
    if (on || m->judging)
        sample_once(m);
    m->judging = on;
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    uint64_t images, matches;
    double ingest_s, run_s, score_s, export_s, compact_s, judge_rate;
    double store_s, export_cpu_s; /* the scores' store write (beside the files); the export's CPU */
    double cpu_fitted;
    double cpu_ingested, judge_cpu_s; /* CPU of this process and its workers while judging */
    long rss_ingest_kb, rss_after_run_kb, rss_after_score_kb, rss_after_export_kb;
    int64_t t0, t_ingested, t_judged, t_fitted;
    uint64_t image_bytes, match_bytes, store_bytes; /* SST files after compaction */
    int64_t own_peak;
    uint64_t rocks_peak;
    mem_sampler *mem;
} scale_result;

/* Takes the time of each step of the pipeline (and the memory after it). */
static void bench_tap(const joust_pipe_event *ev, void *arg)
{
    scale_result *r = arg;
    int64_t now = joust_now_ms();
    if (ev->step == JOUST_PIPE_INGESTED) {
        joust_log_set_level(JOUST_LOG_INFO);
        r->t_ingested = now;
        r->ingest_s = (double)(now - r->t0) / 1000;
        r->rss_ingest_kb = peak_rss_kb(RUSAGE_SELF);
        r->cpu_ingested = joust_bench_cpu_s(RUSAGE_SELF) + joust_bench_cpu_s(RUSAGE_CHILDREN);
        if (r->mem)
            sampler_judging(r->mem, 1);
    } else if (ev->step == JOUST_PIPE_JUDGED) {
        if (r->mem)
            sampler_judging(r->mem, 0);
        r->t_judged = now;
        r->run_s = (double)(now - r->t_ingested) / 1000;
        r->matches = ev->judged->ok + ev->judged->failed;
        r->judge_rate = ev->judged->seconds > 0 ? (double)r->matches / ev->judged->seconds : 0;
        r->rss_after_run_kb = peak_rss_kb(RUSAGE_SELF);
        r->judge_cpu_s = joust_bench_cpu_s(RUSAGE_SELF) + joust_bench_cpu_s(RUSAGE_CHILDREN) -
                         r->cpu_ingested;
    } else if (ev->step == JOUST_PIPE_FITTED) {
        r->t_fitted = now;
        r->cpu_fitted = joust_bench_cpu_s(RUSAGE_SELF);
        r->score_s = (double)(now - r->t_judged) / 1000;
        r->rss_after_score_kb = peak_rss_kb(RUSAGE_SELF);
    } else if (ev->step == JOUST_PIPE_SCORED) {
        r->export_s = (double)(now - r->t_fitted) / 1000;
        r->store_s = ev->scores->write_s;
        r->export_cpu_s = joust_bench_cpu_s(RUSAGE_SELF) - r->cpu_fitted;
        r->rss_after_export_kb = peak_rss_kb(RUSAGE_SELF);
    }
}

/* The store's size after a full compaction: the image and prompt families
 * per image, the run-record families per match, all of it. */
static void measure_store(joust_store_t *st, scale_result *r)
{
    int64_t t = joust_now_ms();
    joust_store_compact(st);
    r->compact_s = (double)(joust_now_ms() - t) / 1000;
    r->image_bytes = joust_store_sst_bytes(st, JOUST_CF_IMAGES) + joust_store_sst_bytes(st, JOUST_CF_PROMPTS);
    r->match_bytes = joust_store_sst_bytes(st, JOUST_CF_MATCHES) +
                     joust_store_sst_bytes(st, JOUST_CF_OUTCOMES) +
                     joust_store_sst_bytes(st, JOUST_CF_OUTCOME_LOG) +
                     joust_store_sst_bytes(st, JOUST_CF_RATIONALES);
    r->store_bytes = 0;
    for (int cf = 0; cf < JOUST_CF_COUNT; cf++)
        r->store_bytes += joust_store_sst_bytes(st, (joust_cf)cf);
}

/* The pipeline on a fresh store at db: ingest, judge, and fit + write the
 * scores under out_dir (NULL: judge only), timed into r. With measure: the
 * coordinator's memory while judging, and the store after compaction. */
static int bench_pipeline(const cli_opts *o, const char *db, const char *manifest,
                          const char *out_dir, int measure, scale_result *r)
{
    joust_store_t *st;
    int rc;
    if ((rc = cli_open_store(db, 1, &st)) < 0)
        return rc;
    cli_run run;
    joust_pipeline_config pc;
    mem_sampler mem = {.st = st};
    if (measure) {
        pthread_mutex_init(&mem.mu, NULL);
        pthread_create(&mem.thread, NULL, sampler_main, &mem);
        r->mem = &mem;
    }
    if ((rc = cli_pipeline_setup(o, manifest, &run, &pc)) == 0) {
        pc.summary = NULL;
        run.tap = bench_tap;
        run.tap_arg = r;
        pc.out_dir = out_dir;
        r->t0 = joust_now_ms();
        joust_log_set_level(JOUST_LOG_ERROR); /* the missing image files are expected */
        rc = joust_pipeline_run(st, &pc, NULL);
        joust_log_set_level(JOUST_LOG_INFO);
    }
    if (measure) {
        pthread_mutex_lock(&mem.mu);
        mem.quit = 1;
        pthread_mutex_unlock(&mem.mu);
        pthread_join(mem.thread, NULL);
        pthread_mutex_destroy(&mem.mu);
        r->own_peak = mem.own_peak;
        r->rocks_peak = mem.rocks_peak;
        r->mem = NULL;
        if (rc == 0)
            measure_store(st, r);
    }
    free((char *)pc.spec.judge_options);
    cli_run_clear(&run);
    joust_store_destroy(&st);
    return rc;
}

static int scale_once(cli_opts *o, const char *dir, uint64_t images, scale_result *r)
{
    char manifest[PATH_MAX], db[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/manifest-%" PRIu64 ".jsonl", dir, images);
    snprintf(db, sizeof db, "%s/store-%" PRIu64, dir, images);
    memset(r, 0, sizeof *r);
    r->images = images;
    int rc = write_manifest(manifest, images, o->per_prompt, o->seed);
    return rc < 0 ? rc : bench_pipeline(o, db, manifest, dir, 1, r);
}

/* The benchmarks' options: the sim judge, prompts of 16, big slots and
 * JOBs unless given. 0 to go on, else the exit status + 1. */
static int bench_begin(int argc, char **argv, const char *usage, cli_opts *o)
{
    int code;
    if (!cli_begin(argc, argv, usage, 0, 0, o, &code))
        return code + 1;
    if (!o->per_prompt)
        o->per_prompt = 16;
    o->judge = "sim";
    if (!o->slots_given)
        o->slots = 1024;
    if (o->job_matches == 64)
        o->job_matches = 256;
    return 0;
}

static double mib(long kb) { return (double)kb / 1024.0; }

static int bench_scale(int argc, char **argv)
{
    cli_opts o;
    int code = bench_begin(argc, argv,
                           "usage: joust bench scale [--images N] [--per-prompt K] [--order fixed] [--out DIR]\n"
                           "Runs a synthetic manifest of N images (default 1000000) in prompts of K (default\n"
                           "16) with the sim judge and 2 local workers, first at N/10 then at N: ingest,\n"
                           "judge, score (the fit), export (the files, while the scores are stored).\n"
                           "Reports the time of each phase, the recording rate, the process's peak RSS\n"
                           "after each phase, the coordinator's own state against RocksDB's memory while\n"
                           "judging, and the store's bytes per image and per match after a full\n"
                           "compaction.\n",
                           &o);
    if (code)
        return code - 1;
    uint64_t n = o.images ? o.images : 1000000;
    const char *dir = strcmp(o.out, ".") ? o.out : "joust-bench-scale";
    mkdir(dir, 0755);
    scale_result small, big;
    int rc = scale_once(&o, dir, n / 10, &small);
    if (rc == 0)
        rc = scale_once(&o, dir, n, &big);
    if (rc < 0)
        return 1;
    const scale_result *rs[] = {&small, &big};
    printf("\n| images | per prompt | order | matches | ingest s | judge s | matches/s | score s |"
           " export s | total s | peak RSS after ingest / judge / score / export (MiB) |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++)
        printf("| %" PRIu64 " | %d | %s | %" PRIu64 " | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f |"
               " %.0f / %.0f / %.0f / %.0f |\n",
               rs[i]->images, o.per_prompt, o.order, rs[i]->matches, rs[i]->ingest_s, rs[i]->run_s,
               rs[i]->judge_rate, rs[i]->score_s, rs[i]->export_s,
               rs[i]->ingest_s + rs[i]->run_s + rs[i]->score_s + rs[i]->export_s,
               mib(rs[i]->rss_ingest_kb), mib(rs[i]->rss_after_run_kb),
               mib(rs[i]->rss_after_score_kb), mib(rs[i]->rss_after_export_kb));
    for (int i = 0; i < 2; i++)
        printf("export at %" PRIu64 " images: %.2f s wall, %.2f s CPU (this process, all "
               "threads); the scores' store write %.2f s of it, beside the files\n",
               rs[i]->images, rs[i]->export_s, rs[i]->export_cpu_s, rs[i]->store_s);
    printf("\n| images | coordinator's own state, peak while judging | per image | RocksDB memory, peak"
           " (memtables + block cache + table readers) | store after compaction | bytes per image"
           " (images + prompts) | bytes per match (matches + outcomes + outcome log + rationales) | compaction s |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++)
        printf("| %" PRIu64 " | %.1f MiB | %.1f | %.1f MiB | %.1f MiB | %.1f | %.1f | %.1f |\n",
               rs[i]->images, (double)rs[i]->own_peak / 1048576.0,
               (double)rs[i]->own_peak / (double)rs[i]->images, (double)rs[i]->rocks_peak / 1048576.0,
               (double)rs[i]->store_bytes / 1048576.0,
               (double)rs[i]->image_bytes / (double)rs[i]->images,
               rs[i]->matches ? (double)rs[i]->match_bytes / (double)rs[i]->matches : 0,
               rs[i]->compact_s);
    printf("\nrecording rate at %" PRIu64 " images / at %" PRIu64 ": %.2f\n", big.images,
           small.images, small.judge_rate > 0 ? big.judge_rate / small.judge_rate : 0);
    return 0;
}

/* Writes a coordinator and a worker key pair and the allow-list into dir,
 * pointing o's CURVE options at them. */
static int bench_keys(cli_opts *o, const char *dir)
{
    static char coord_key[PATH_MAX + 32], coord_pub[PATH_MAX + 32], worker_key[PATH_MAX + 32],
        allow[PATH_MAX + 32];
    char base[PATH_MAX + 16], err[256];
    joust_curve_keypair c, w;
    int rc = joust_curve_keygen(&c);
    if (rc == 0)
        rc = joust_curve_keygen(&w);
    snprintf(base, sizeof base, "%s/coordinator", dir);
    if (rc == 0)
        rc = joust_curve_write_keys(base, "coordinator", &c, err, sizeof err);
    snprintf(coord_key, sizeof coord_key, "%s.key", base);
    snprintf(coord_pub, sizeof coord_pub, "%s.pub", base);
    snprintf(base, sizeof base, "%s/bench-worker", dir);
    if (rc == 0)
        rc = joust_curve_write_keys(base, "bench-worker", &w, err, sizeof err);
    snprintf(worker_key, sizeof worker_key, "%s.key", base);
    snprintf(allow, sizeof allow, "%s/allow.txt", dir);
    FILE *f = rc == 0 ? fopen(allow, "w") : NULL;
    if (f) {
        fprintf(f, "bench-worker %s\n", w.public_z85);
        rc = fclose(f) == 0 ? 0 : JOUST_EIO;
    } else if (rc == 0) {
        rc = JOUST_EIO;
    }
    joust_curve_wipe(&c, sizeof c);
    joust_curve_wipe(&w, sizeof w);
    if (rc < 0) {
        log_error("bench keys in %s: %s", dir, rc == JOUST_EIO ? "cannot write" : err);
        return rc;
    }
    o->curve_secret = coord_key;
    o->curve_allow = allow;
    o->server_key = coord_pub;
    o->local_curve_secret = worker_key;
    return 0;
}

/* The Python multiprocessing + SQLite peer (tools/peer_coord_sqlite.py):
 * its matches/s, or 0 when it cannot run or fails its own check. */
static double run_peer(const char *script, const char *dir, uint64_t matches, const cli_opts *o)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "python3 '%s' --matches %" PRIu64 " --workers %d --job-matches %u --slots %d --db "
             "'%s/peer.sqlite'",
             script, matches, o->workers, o->job_matches, o->slots, dir);
    fflush(NULL);
    FILE *f = popen(cmd, "r");
    if (!f) {
        log_error("cannot run %s", cmd);
        return 0;
    }
    char line[256];
    double rate = 0;
    uint64_t got = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "peer matches %" SCNu64 " seconds %*f rate %lf", &got, &rate) != 2)
            rate = 0;
    int st = pclose(f);
    if (st != 0 || got != matches) {
        log_error("the peer script failed (%s)", cmd);
        return 0;
    }
    return rate;
}

static void take_run_id(const Joust__RunRecord *run, void *arg) { *(uint32_t *)arg = run->run_id; }

/* Exactly once, read back from the bench's store: its run's planned
 * matches and outcomes side by side; every match has one outcome, no
 * outcome lacks a match, and there are `want` matches. 0, or JOUST_ECORRUPT
 * (logged): a benchmark that loses or doubles a match is a failure. */
static int bench_verify(const char *db, uint64_t want)
{
    joust_store_t *st;
    int rc = cli_open_store(db, 0, &st);
    if (rc < 0)
        return rc;
    uint32_t run_id = 0;
    joust_rec_cursor_t *mi = NULL, *oi = NULL;
    uint64_t planned = 0, missing = 0, orphan = 0;
    if ((rc = joust_rec_run_each(st, take_run_id, &run_id)) == 0 &&
        (rc = joust_rec_cursor_new(st, JOUST_REC_MATCHES, run_id, &mi)) == 0 &&
        (rc = joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, run_id, &oi)) == 0) {
        while (joust_rec_cursor_valid(mi) || joust_rec_cursor_valid(oi)) {
            uint64_t m = joust_rec_cursor_valid(mi) ? joust_rec_cursor_id(mi) : UINT64_MAX;
            uint64_t o = joust_rec_cursor_valid(oi) ? joust_rec_cursor_id(oi) : UINT64_MAX;
            planned += m <= o;
            missing += m < o;
            orphan += o < m;
            if (m <= o)
                joust_rec_cursor_next(mi);
            if (o <= m)
                joust_rec_cursor_next(oi);
        }
        rc = joust_rec_cursor_error(mi) ? joust_rec_cursor_error(mi) : joust_rec_cursor_error(oi);
    }
    joust_rec_cursor_destroy(&mi);
    joust_rec_cursor_destroy(&oi);
    joust_store_destroy(&st);
    if (rc == 0 && (planned != want || missing || orphan)) {
        log_error("%s: %" PRIu64 " matches planned (want %" PRIu64 "), %" PRIu64
                  " without an outcome, %" PRIu64 " outcomes without a match",
                  db, planned, want, missing, orphan);
        rc = JOUST_ECORRUPT;
    }
    return rc;
}

#ifndef JOUST_PEER_SCRIPT
#define JOUST_PEER_SCRIPT "tools/peer_coord_sqlite.py"
#endif

/* Coordinator throughput: matches dispatched and durably recorded per
 * second with the sim judge answering at once, over tcp, CURVE off and on;
 * beside it in the same command the bare limit of the same transport and
 * store (bench_coord_bare.h) and the Python + SQLite peer. */
static int bench_coordinator(int argc, char **argv)
{
    /* --peer PATH / --no-peer are this command's own: taken out first. */
    const char *peer = JOUST_PEER_SCRIPT;
    int kept = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--peer") && i + 1 < argc)
            peer = argv[++i];
        else if (!strcmp(argv[i], "--no-peer"))
            peer = NULL;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    cli_opts o;
    int code = bench_begin(argc, argv,
                           "usage: joust bench coordinator [--images N] [--per-prompt K] [--workers W] [--out DIR]\n"
                           "                               [--peer SCRIPT | --no-peer]\n"
                           "Judges N images (default 200000) in prompts of K (default 16, fixed order) with\n"
                           "the sim judge in W local workers (default 4) over tcp on 127.0.0.1, once in\n"
                           "plain tcp and once with CURVE, and reports matches recorded per second; beside\n"
                           "each, the bare limit of the same transport and store (no planning, workers that\n"
                           "answer at once, one outcome record per match in synced group commits) and the\n"
                           "ratio; then the Python multiprocessing + SQLite peer (default script\n"
                           "tools/peer_coord_sqlite.py) recording as many matches, and joust/peer.\n",
                           &o);
    if (code)
        return code - 1;
    uint64_t n = o.images ? o.images : 200000;
    if (o.workers == 2)
        o.workers = 4;
    o.order = "fixed";
    char dir[PATH_MAX - 64];
    snprintf(dir, sizeof dir, "%s", strcmp(o.out, ".") ? o.out : "joust-bench-coordinator");
    mkdir(dir, 0755);
    /* Fresh stores only: a store left by an earlier bench holds a complete
     * run, which would be "judged" in no time. */
    static const char *const stores[] = {"store-plain", "store-curve", "bare-plain", "bare-curve"};
    for (size_t i = 0; i < sizeof stores / sizeof *stores; i++) {
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, stores[i]);
        if (stat(path, &sb) == 0) {
            fprintf(stderr, "joust bench coordinator: %s exists (an earlier bench's store); give "
                            "--out a fresh directory\n", path);
            return 1;
        }
    }
    char manifest[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    int rc = write_manifest(manifest, n, o.per_prompt, o.seed);
    double rate[2] = {0, 0}, bare_rate[2] = {0, 0}, peer_rate = 0, cpu_us[2] = {0, 0},
           bare_cpu_us[2] = {0, 0};
    uint64_t matches[2] = {0, 0};
    for (int curve = 0; curve < 2 && rc == 0; curve++) {
        char db[PATH_MAX], kdir[PATH_MAX];
        snprintf(db, sizeof db, "%s/store-%s", dir, curve ? "curve" : "plain");
        snprintf(kdir, sizeof kdir, "%s/keys", dir);
        if (curve && (mkdir(kdir, 0700), rc = bench_keys(&o, kdir)) < 0)
            break;
        scale_result r = {0};
        uint64_t k = (uint64_t)o.per_prompt, left = n % k, want = n / k * (k * (k - 1) / 2) +
                                                                  left * (left ? left - 1 : 0) / 2;
        if ((rc = bench_pipeline(&o, db, manifest, NULL, 0, &r)) < 0 ||
            (rc = bench_verify(db, want)) < 0)
            break;
        matches[curve] = r.matches;
        rate[curve] = r.judge_rate;
        cpu_us[curve] = r.matches ? r.judge_cpu_s * 1e6 / (double)r.matches : 0;
        snprintf(db, sizeof db, "%s/bare-%s", dir, curve ? "curve" : "plain");
        joust_bare_config bc = {.db = db, .matches = r.matches, .workers = o.workers,
                                .slots = (uint32_t)o.slots, .job_matches = o.job_matches,
                                .curve = curve};
        joust_coord_config defaults;
        joust_coord_config_defaults(&defaults);
        bc.commit = defaults.commit;
        joust_bare_result br;
        if ((rc = joust_bench_bare_run(&bc, &br)) < 0) {
            log_error("bare limit: %s", joust_strerror(rc));
            break;
        }
        bare_rate[curve] = br.seconds > 0 ? (double)br.matches / br.seconds : 0;
        bare_cpu_us[curve] = br.matches ? br.cpu_s * 1e6 / (double)br.matches : 0;
        if (!curve && peer)
            peer_rate = run_peer(peer, dir, r.matches, &o);
    }
    if (rc < 0)
        return 1;
    printf("\n| transport | workers | matches | joust matches/s | bare limit matches/s | joust / bare |"
           " Python + SQLite peer matches/s | joust / peer | joust CPU µs/match | bare CPU µs/match |"
           " bare / joust CPU |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int curve = 0; curve < 2; curve++)
        printf("| tcp%s | %d | %" PRIu64 " | %.0f | %.0f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f |\n",
               curve ? " + CURVE" : "", o.workers, matches[curve], rate[curve], bare_rate[curve],
               bare_rate[curve] > 0 ? rate[curve] / bare_rate[curve] : 0, peer_rate,
               peer_rate > 0 ? rate[curve] / peer_rate : 0, cpu_us[curve], bare_cpu_us[curve],
               cpu_us[curve] > 0 ? bare_cpu_us[curve] / cpu_us[curve] : 0);
    if (peer && peer_rate <= 0)
        return 1; /* the peer was asked for and did not give a figure */
    return 0;
}

/* ------------------------------------------------------ bench report --- */

/* A nightly-style manifest: prompts of `models` images, one per model
 * ("m0".."m<models-1>", m's latent utility 0.1 m + N(0, 1)), a category
 * field "cat" of 5 values; the image files do not exist. */
static int write_models_manifest(const char *path, uint64_t images, int models, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return JOUST_EIO;
    joust_rng_t rng;
    joust_rng_seed(&rng, seed);
    for (uint64_t i = 0; i < images; i++) {
        uint64_t p = i / (uint64_t)models;
        int m = (int)(i % (uint64_t)models);
        fprintf(f, "{\"image\":\"img/%" PRIu64 ".jpg\",\"prompt_id\":%" PRIu64 ",\"prompt\":\"p%" PRIu64
                   "\",\"model\":\"m%d\",\"cat\":\"c%d\",\"latent\":%.4f}\n",
                i, p, p, m, (int)(p % 5), 0.1 * m + joust_rng_normal(&rng));
    }
    return fclose(f) == 0 ? 0 : JOUST_EIO;
}

/* Whether the store at db holds a run named name. */
static int has_run(const char *db, const char *name)
{
    joust_store_t *st;
    if (joust_store_open(db, JOUST_STORE_READONLY, &st) < 0)
        return 0;
    Joust__RunRecord *run = NULL;
    int ok = joust_rec_run_get(st, name, &run) == 0;
    joust_rec_free(run);
    joust_store_destroy(&st);
    return ok;
}

typedef struct {
    double wall, user;
    long rss_kb;
    long long html;
    int status;
} report_cost;

/* `joust report ARGS --timings` in a child process, its wall time, CPU and
 * peak memory (the phases go to stderr). */
static int time_report(char **args, int nargs, const char *out, report_cost *c)
{
    fflush(NULL);
    int64_t t0 = joust_now_us();
    pid_t pid = fork();
    if (pid < 0)
        return JOUST_EIO;
    if (pid == 0) {
        char *argv[32];
        int argc = 0;
        argv[argc++] = "report";
        for (int i = 0; i < nargs && argc < 30; i++)
            argv[argc++] = args[i];
        argv[argc++] = "--timings";
        argv[argc] = NULL;
        _exit(cmd_report(argc, argv));
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid)
        return JOUST_EIO;
    c->wall = (double)(joust_now_us() - t0) / 1e6;
    c->user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    c->rss_kb = ru.ru_maxrss;
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char html[PATH_MAX + 16];
    snprintf(html, sizeof html, "%s/report.html", out);
    struct stat sb;
    c->html = stat(html, &sb) == 0 ? (long long)sb.st_size : -1;
    return c->status == 0 ? 0 : JOUST_EIO;
}

/* `joust report` over a synthetic run: N images of K models (one image per
 * model per prompt) judged by the sim judge in fixed order (every pair once),
 * two nights in one store, then the report timed with its usual options. */
static int bench_report(int argc, char **argv)
{
    cli_opts o;
    int models_given = 0;
    for (int i = 1; i < argc; i++)
        models_given |= !strncmp(argv[i], "--per-prompt", 12);
    int code = bench_begin(argc, argv,
                           "usage: joust bench report [--images N] [--per-prompt K] [--out DIR]\n"
                           "Judges N images (default 1000000) of K models (default 10; one image per model\n"
                           "per prompt of K) with the sim judge, every pair once, as two runs (night1,\n"
                           "night2) in DIR/store (kept: a later call with the same DIR reuses it), then\n"
                           "times `joust report` of night2: wall, user CPU, peak memory, report.html size\n"
                           "and the phases (--timings), with the default options, --by cat, --compare\n"
                           "night1, and --rounds 0.\n",
                           &o);
    if (code)
        return code - 1;
    int models = models_given ? o.per_prompt : 10;
    if (models < 2) {
        fprintf(stderr, "joust bench report: --per-prompt (models) must be at least 2\n");
        return 2;
    }
    uint64_t n = o.images ? o.images : 1000000;
    char dir[PATH_MAX - 64];
    snprintf(dir, sizeof dir, "%s", strcmp(o.out, ".") ? o.out : "joust-bench-report");
    mkdir(dir, 0755);
    char manifest[PATH_MAX], db[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    snprintf(db, sizeof db, "%s/store", dir);
    o.order = "fixed";
    o.per_prompt = models;
    struct stat sb;
    int rc = 0;
    if (stat(manifest, &sb) != 0)
        rc = write_models_manifest(manifest, n, models, o.seed);
    static const char *nights[2] = {"night1", "night2"};
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (has_run(db, nights[k])) {
            printf("%s: run %s exists, not judged again\n", db, nights[k]);
            continue;
        }
        scale_result r = {0};
        o.run = nights[k];
        o.seed += (uint64_t)k;
        rc = bench_pipeline(&o, db, manifest, dir, 0, &r);
        if (rc == 0)
            printf("%s: %" PRIu64 " matches judged in %.1f s (ingest %.1f s)\n", nights[k], r.matches,
                   r.run_s, r.ingest_s);
    }
    if (rc < 0) {
        log_error("bench report: building the store in %s failed: %s", dir, joust_strerror(rc));
        return 1;
    }
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s/report", dir);
    static const char *names[4] = {"`--baseline-model m0` (200 rounds)", "`--by cat`",
                                   "`--compare night1`", "`--rounds 0`"};
    char *extra[4][2] = {{NULL, NULL}, {"--by", "cat"}, {"--compare", "night1"}, {"--rounds", "0"}};
    report_cost cost[4];
    for (int v = 0; v < 4; v++) {
        char *args[12] = {"--db", db, "--run", "night2", "--out", out, "--baseline-model", "m0"};
        int na = 8;
        if (extra[v][0]) {
            args[na++] = extra[v][0];
            args[na++] = extra[v][1];
        }
        fflush(stdout);
        fprintf(stderr, "%s: ", names[v]);
        if ((rc = time_report(args, na, out, &cost[v])) < 0) {
            log_error("bench report: joust report %s exited %d", names[v], cost[v].status);
            return 1;
        }
    }
    printf("\n| report of %" PRIu64 " images, %d models | wall s | user CPU s | peak RSS | report.html |\n"
           "|---|---|---|---|---|\n",
           n, models);
    for (int v = 0; v < 4; v++)
        printf("| %s | %.1f | %.1f | %.0f MiB | %.0f KB |\n", names[v], cost[v].wall, cost[v].user,
               cost[v].rss_kb / 1024.0, cost[v].html / 1024.0);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "coordinator"))
        return bench_coordinator(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "scale"))
        return bench_scale(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "report"))
        return bench_report(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "bt"))
        return joust_bench_bt_main(argc - 1, argv + 1);
    if (argc >= 2 && joust_bench_dedup_handles(argv[1]))
        return joust_bench_dedup_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "groups"))
        return joust_bench_groups_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "ingest"))
        return joust_bench_ingest_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "ranking"))
        return joust_bench_ranking_main(argc - 1, argv + 1);
    fprintf(argc >= 2 && strcmp(argv[1], "--help") ? stderr : stdout,
            "usage: joust bench scale|coordinator|report|ingest|bt|bt-global|groups|ranking|\n"
            "                   signature|neardup|dedup-quality [options]\n"
            "(joust bench NAME --help: what NAME measures and its options; docs/benchmarks.md)\n");
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
