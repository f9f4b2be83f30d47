/* Subcommands that judge: run, coordinator, worker, demo; and runs (ls, rm). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "coord_metrics.h"
#include "demo_data.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "records.h"
#include "webdataset.h"
#include "run.h"
#include "worker.h"
#include "worker_metrics.h"
#include "xalloc.h"

/* Says where the local workers serve /metrics (ports they are given). */
static void print_metrics_where(const cli_opts *o)
{
    char addr[300], err[256];
    for (int i = 0; i < o->workers; i++)
        if (cli_worker_metrics_addr(o, i, addr, sizeof addr, err, sizeof err) == 0 && addr[0])
            printf("metrics: local worker local-%d serves http://%s/metrics%s\n", i + 1, addr,
                   strstr(addr, ":0") && !strcmp(strstr(addr, ":0"), ":0")
                       ? " (port 0: an ephemeral port, in its log)" : "");
    fflush(stdout);
}

/* run and coordinator: the pipeline on the store, as an exit status
 * (128 + the signal when SIGINT/SIGTERM stopped it). Everything the options
 * say is checked before the store is opened or created. */
static int run_on_store(cli_opts *o, const char *manifest)
{
    if (cli_check_run(o) < 0)
        return 2;
    cli_install_signals();
    cli_metrics cm = {0};
    joust_coord_metrics coord_metrics;
    if (o->metrics) {
        cli_metrics_open(&cm);
        joust_coord_metrics_init(&coord_metrics, cm.reg);
        if (cli_metrics_serve(&cm, o->metrics) < 0) {
            cli_metrics_close(&cm);
            return 2;
        }
        o->coord_metrics = &coord_metrics;
    }
    print_metrics_where(o);
    joust_store_t *st;
    int rc = 1;
    if (cli_open_store(o->db, 1, &st) == 0) {
        rc = cli_pipeline(o, manifest, st);
        joust_store_destroy(&st);
    }
    o->coord_metrics = NULL;
    cli_metrics_close(&cm);
    return rc;
}

/* The first local shard (its folder confines the images), else fallback
 * (remote shards only: no local image to confine). */
static const char *first_local(char *const *shards, size_t n, const char *fallback)
{
    for (size_t i = 0; i < n; i++)
        if (!strstr(shards[i], "://"))
            return shards[i];
    return fallback;
}

/* WebDataset shards (coordinator/webdataset.h): their samples are written
 * to a temporary JSONL manifest that the pipeline ingests like any other
 * (its content names the samples, so the same shards are ingested once);
 * the images are confined to the first local shard's folder unless
 * --allow-root says otherwise. */
static int run_shards(cli_opts *o)
{
    char **shards = NULL, err[512];
    size_t n = 0;
    for (int i = 0; i < o->argc; i++) {
        char **more;
        size_t k;
        if (!joust_wds_is_shards(o->argv[i])) {
            fprintf(stderr, "joust run: %s: give one manifest, or WebDataset shards (.tar, "
                            ".tar.gz, .tgz; local paths or http(s):// and s3:// URLs) only\n",
                    o->argv[i]);
            joust_wds_free_list(shards, n);
            return 2;
        }
        if (joust_wds_expand(o->argv[i], &more, &k, err, sizeof err)) {
            fprintf(stderr, "joust run: %s: %s\n", o->argv[i], err);
            joust_wds_free_list(shards, n);
            return 2;
        }
        shards = xrealloc(shards, (n + k) * sizeof *shards);
        memcpy(shards + n, more, k * sizeof *more);
        n += k;
        free(more);
    }
    const char *tmp = getenv("TMPDIR");
    char manifest[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/joust-shards-XXXXXX.jsonl",
             tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemps(manifest, 6);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "joust run: cannot create a temporary manifest %s: %s\n", manifest,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        joust_wds_free_list(shards, n);
        return 1;
    }
    joust_wds_stats ws;
    int rc = joust_wds_write_manifest(shards, n, o->jcfg.s3_endpoint, f, &ws, err, sizeof err);
    if (fclose(f) != 0 && !rc)
        rc = JOUST_EIO;
    printf("shards: %" PRIu64 " read, %" PRIu64 " refused or damaged; %" PRIu64
           " samples, %" PRIu64 " bad samples or members (reported above)\n",
           ws.shards, ws.bad_shards, ws.samples, ws.bad_samples);
    int status = 1;
    if (rc)
        fprintf(stderr, "joust run: %s\n", err);
    else if (!ws.samples)
        fprintf(stderr, "joust run: the shards hold no usable sample\n");
    else if (cli_image_roots(o, first_local(shards, n, manifest)) < 0)
        status = 2;
    else
        status = run_on_store(o, manifest);
    unlink(manifest);
    joust_wds_free_list(shards, n);
    return status;
}

int cmd_run(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin_opts(argc, argv,
                        "usage: joust run MANIFEST [options]\n"
                        "Ingests MANIFEST (JSONL: image, prompt, prompt_id, model, id, ...), starts a\n"
                        "coordinator and local workers, judges every planned pair, fits soft\n"
                        "Bradley-Terry scores per prompt and writes scores.jsonl and scores.csv.\n"
                        "A local worker that exits is started again; workers that keep failing at\n"
                        "start stop the run with their error. SIGINT/SIGTERM stop it cleanly (exit\n"
                        "130/143); the same command resumes it.\n"
                        "       joust run 'SHARDS/{00000..00127}.tar' [more.tar ...] [options]\n"
                        "WebDataset shards instead of a manifest (local paths or http(s)://,\n"
                        "s3:// URLs; .tar, .tar.gz): each sample's image with its .txt caption\n"
                        "or .json fields (README, docs/storage.md).\n",
                        CLI_RUN | CLI_JUDGES, 1, 1 << 20, &o, &code))
        return code;
    if (o.workers < 1) {
        fprintf(stderr, "joust run: --workers must be >= 1\n");
        return 2;
    }
    if (o.curve_secret || o.curve_allow || o.server_key) {
        fprintf(stderr, "joust run: its workers are local (loopback); CURVE options belong to\n"
                        "`joust coordinator` and `joust worker`\n");
        return 2;
    }
    if (o.argc > 1 || joust_wds_is_shards(o.argv[0]))
        return run_shards(&o);
    if (cli_image_roots(&o, o.argv[0]) < 0)
        return 2;
    return run_on_store(&o, o.argv[0]);
}

int cmd_coordinator(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin_opts(argc, argv,
                        "usage: joust coordinator [MANIFEST] [options]\n"
                        "Serves a run to workers started elsewhere (`joust worker --connect`),\n"
                        "ingesting MANIFEST first when given. When every match has an outcome it\n"
                        "fits the scores and writes scores.jsonl/.csv under --out.\n",
                        CLI_COORD, 0, 1, &o, &code))
        return code;
    o.workers = 0;
    if (cli_check_keys(&o) < 0 || (o.argc && cli_image_roots(&o, o.argv[0]) < 0))
        return 2;
    return run_on_store(&o, o.argc ? o.argv[0] : NULL);
}

/* A local worker of `joust run` (JOUST_PARENT_PID in its environment) dies
 * with it: SIGTERM when the parent thread goes, and an exit right away when
 * the parent was gone before prctl (we were adopted by then). */
static int die_with_parent(void)
{
    const char *pp = getenv("JOUST_PARENT_PID");
    if (!pp || !*pp)
        return 0;
    long want = strtol(pp, NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        log_warn("cannot arm PR_SET_PDEATHSIG: %s", strerror(errno));
    if ((long)getppid() != want) {
        log_error("the joust process that started this worker (pid %ld) is gone; exiting", want);
        return -1;
    }
    return 0;
}

int cmd_worker(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin_opts(argc, argv,
                        "usage: joust worker --connect ENDPOINT [options]\n"
                        "Judges matches for a coordinator; exits when the run is complete.\n"
                        "SIGINT/SIGTERM: finishes cleanly and exits 130/143.\n",
                        CLI_WORKER | CLI_JUDGES, 0, 0, &o, &code))
        return code;
    if (!o.connect) {
        fprintf(stderr, "joust worker: --connect ENDPOINT is required (see --help)\n");
        return 2;
    }
    char err[512];
    if (joust_judge_check(o.judge, &o.jcfg, err, sizeof err) < 0) {
        fprintf(stderr, "joust worker: %s\n", err);
        return 2;
    }
    if (cli_check_keys(&o) < 0 || cli_image_roots(&o, NULL) < 0)
        return 2;
    cli_install_signals();
    char tag[64];
    snprintf(tag, sizeof tag, "%s", o.name ? o.name : "worker");
    joust_log_set_tag(tag);
    if (die_with_parent() < 0)
        return 1;
    joust_worker_config wc;
    joust_worker_config_defaults(&wc);
    wc.endpoint = o.connect;
    wc.name = o.name;
    wc.judge = o.judge;
    wc.judge_cfg = o.jcfg;
    wc.slots = o.slots;
    wc.stop = &cli_stop;
    wc.curve_secret = o.curve_secret;
    wc.server_key = o.server_key;
    wc.wait_ready_ms = o.wait_ready_s * 1000;
    cli_metrics cm = {0};
    joust_worker_metrics metrics;
    if (o.metrics) {
        cli_metrics_open(&cm);
        char **urls;
        int n = joust_judge_split_endpoints(&o.jcfg, &urls);
        joust_worker_metrics_init(&metrics, cm.reg, urls, n);
        for (int i = 0; i < n; i++)
            free(urls[i]);
        free(urls);
        if (cli_metrics_serve(&cm, o.metrics) < 0) {
            cli_metrics_close(&cm);
            joust_worker_metrics_clear(&metrics);
            return 2;
        }
        wc.metrics = &metrics;
        wc.judge_cfg.on_endpoint = joust_worker_metrics_endpoint;
        wc.judge_cfg.on_endpoint_ctx = &metrics;
    }
    int rc = joust_worker_run(&wc);
    cli_metrics_close(&cm);
    if (o.metrics)
        joust_worker_metrics_clear(&metrics);
    return cli_exit_status(rc);
}

/* `joust runs [ls]`, `joust runs rm NAME`. */
int cmd_runs(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "ls"))
        return cmd_status(argc > 1 ? argc - 1 : argc, argc > 1 ? argv + 1 : argv);
    cli_opts o;
    int code;
    const char *usage = "usage: joust runs [ls] | joust runs rm NAME [--db PATH]\n"
                        "ls: the runs in the store (as joust status). rm: removes run NAME with its\n"
                        "matches, outcomes and scores (the store's images stay), e.g. a run created\n"
                        "with a mistake; its name can then be used again.\n";
    if (strcmp(argv[1], "rm")) {
        if (strcmp(argv[1], "--help") && strcmp(argv[1], "-h")) {
            fprintf(stderr, "joust runs: unknown action '%s'\n%s", argv[1], usage);
            return 2;
        }
        fputs(usage, stdout);
        return 0;
    }
    if (!cli_begin_opts(argc - 1, argv + 1, usage, CLI_STORE, 1, 1, &o, &code))
        return code;
    joust_store_t *st;
    if (cli_open_store(o.db, 0, &st) < 0)
        return 1;
    const char *name = o.argv[0];
    Joust__RunRecord *run = NULL;
    int rc = joust_run_open(st, name, NULL, &run);
    if (rc == JOUST_ENOTFOUND)
        log_error("no run '%s' in %s (joust runs ls lists them)", name, o.db);
    else if (rc < 0)
        log_error("run '%s': %s", name, joust_strerror(rc));
    else if ((rc = joust_rec_run_delete(st, run)) < 0)
        log_error("cannot remove run '%s': %s", name, joust_strerror(rc));
    else
        printf("removed run '%s' (id %u) with its matches, outcomes and scores\n", name, run->run_id);
    joust_rec_free(run);
    joust_store_destroy(&st);
    return rc == 0 ? 0 : 1;
}

/* ----------------------------------------------------------------- demo -- */

typedef struct {
    double tau_sum, top1, bottom1;
    int prompts;
} demo_eval;

static int eval_prompt(const joust_scored_prompt *sp, void *arg)
{
    demo_eval *e = arg;
    size_t n = 0;
    double *score = xmalloc((sp->n ? sp->n : 1) * sizeof *score);
    double *truth = xmalloc((sp->n ? sp->n : 1) * sizeof *truth);
    for (size_t i = 0; i < sp->n; i++) {
        const joust_scored_image *it = &sp->items[i];
        cJSON *meta = it->img->meta_json ? cJSON_Parse(it->img->meta_json) : NULL;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(meta, "truth");
        if (cJSON_IsNumber(t) && it->score && it->score->has_score) {
            score[n] = it->score->score;
            truth[n++] = t->valuedouble;
        }
        cJSON_Delete(meta);
    }
    if (n >= 2) {
        e->tau_sum += joust_kendall_tau(n, score, truth);
        e->top1 += joust_top1_match(n, score, truth);
        e->bottom1 += joust_bottom1_match(n, score, truth);
        e->prompts++;
    }
    free(score);
    free(truth);
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin_opts(argc, argv,
                        "usage: joust demo [--out DIR] [--prompts N] [--per-prompt K] [options]\n"
                        "Generates N base images (default 24) with K graded degradations each\n"
                        "(default 8: blur, noise, JPEG artefacts, exposure), so the true quality\n"
                        "order per prompt is known; ranks them with the quality judge and prints\n"
                        "Kendall tau against that truth. Writes into DIR (default joust-demo).\n",
                        CLI_RUN | CLI_JUDGES, 0, 0, &o, &code))
        return code;
    if (o.workers < 1 || cli_check_run(&o) < 0)
        return 2;
    int prompts = o.prompts ? o.prompts : 24, per_prompt = o.per_prompt ? o.per_prompt : 8;
    if (prompts < 1 || per_prompt < 2 || prompts > 10000 || per_prompt > 64) {
        fprintf(stderr, "joust demo: prompts must be 1..10000 and per-prompt 2..64\n");
        return 2;
    }
    cli_install_signals();
    char dir[PATH_MAX - 64], db[PATH_MAX], manifest[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", strcmp(o.out, ".") ? o.out : "joust-demo");
    snprintf(db, sizeof db, "%s/joust.db", dir);
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    printf("generating %d prompts x %d images with graded degradations in %s ...\n", prompts,
           per_prompt, dir);
    int rc = joust_demo_generate(dir, prompts, per_prompt, o.seed, manifest);
    if (rc < 0) {
        log_error("cannot generate the demo set in %s: %s", dir, joust_strerror(rc));
        return 1;
    }
    o.db = db;
    o.out = dir;
    joust_store_t *st;
    if (cli_image_roots(&o, manifest) < 0 || cli_open_store(o.db, 1, &st) < 0)
        return 1;
    int status = cli_pipeline(&o, manifest, st);
    rc = status == 0 ? 0 : JOUST_EAGAIN;
    Joust__RunRecord *run = NULL;
    demo_eval e = {0};
    if (rc == 0 && (rc = joust_run_open(st, o.run, NULL, &run)) == 0)
        rc = joust_scores_walk(st, run, eval_prompt, &e);
    if (rc == 0 && e.prompts) {
        printf("\nagainst the known quality order (%d prompts):\n", e.prompts);
        printf("  Kendall tau (mean per prompt): %.3f\n", e.tau_sum / e.prompts);
        printf("  best image found:  %.1f%%   worst image found: %.1f%%\n",
               100.0 * e.top1 / e.prompts, 100.0 * e.bottom1 / e.prompts);
    }
    joust_rec_free(run);
    joust_store_destroy(&st);
    return status ? status : cli_exit_status(rc);
}
