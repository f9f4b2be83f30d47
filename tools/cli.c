/* The command's options (one table, plus the judges' tables from the
 * registry), signals, and the glue to the run pipeline. */
#include "cli.h"

#include <getopt.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "curve.h"
#include "err.h"
#include "fetch.h"
#include "ingest.h"
#include "log.h"
#include "records.h"
#include "run.h"
#include "xalloc.h"

volatile sig_atomic_t cli_stop;

static void on_signal(int sig)
{
    cli_stop = sig;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cli_exit_status(int rc)
{
    if (cli_stop == SIGINT || cli_stop == SIGTERM)
        return 128 + cli_stop;
    return rc == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ options --- */

#define F(f) offsetof(cli_opts, f)
#define RUN_OPT (CLI_RUN | CLI_COORD)

/* Every option of the command but the judges' (worker/judge.c), once. The
 * mask says which commands' --help lists a row, and CLI_SPAWN which rows
 * `joust run` hands on to its local workers. */
static const joust_opt cli_table[] = {
    {"db", JOUST_OPT_STR, F(db), .dflt = "joust.db", .arg = "PATH", .help = "the store",
     .mask = RUN_OPT | CLI_STORE},
    {"run", JOUST_OPT_STR, F(run), .dflt = "default", .arg = "NAME",
     .help = "run name (default \"default\"); an existing run resumes", .mask = RUN_OPT | CLI_STORE},
    {"out", JOUST_OPT_STR, F(out), .dflt = ".", .arg = "DIR", .help = "where to write the scores",
     .mask = RUN_OPT},
    {"workers", JOUST_OPT_INT, F(workers), .max = 256, .dflt = "2", .arg = "N",
     .help = "local worker processes", .mask = CLI_RUN},
    {"no-progress", JOUST_OPT_UNFLAG, F(progress), .help = "no progress line", .mask = RUN_OPT},
    {"bind", JOUST_OPT_STR, F(bind), .dflt = "tcp://127.0.0.1:5555", .arg = "ENDPOINT",
     .help = "where workers connect", .mask = CLI_COORD},
    {"connect", JOUST_OPT_STR, F(connect), .arg = "ENDPOINT",
     .help = "the coordinator, e.g. tcp://10.0.0.5:5555", .mask = CLI_WORKER},
    {"name", JOUST_OPT_STR, F(name), .arg = "NAME", .help = "worker name in logs (default w-HOST-PID)",
     .mask = CLI_WORKER},
    {"metrics", JOUST_OPT_STR, F(metrics), .arg = "[HOST:]PORT",
     .help = "serve Prometheus metrics at http://HOST:PORT/metrics\n"
             "(HOST defaults to 127.0.0.1; off without this)",
     .mask = CLI_RUN | CLI_COORD | CLI_WORKER},
    {"worker-metrics", JOUST_OPT_STR, F(worker_metrics), .arg = "LIST",
     .help = "local workers' /metrics, [HOST:]PORT,... one per worker\n"
             "(default with --metrics [HOST:]PORT: PORT+1, PORT+2, ...)",
     .mask = CLI_RUN},
    {"curve-secret", JOUST_OPT_STR, F(curve_secret), .arg = "FILE",
     .help = "CURVE: this process's secret key (joust keygen)", .mask = CLI_COORD | CLI_WORKER},
    {"allow", JOUST_OPT_STR, F(curve_allow), .arg = "FILE",
     .help = "CURVE: allow-list, lines \"name public-key\"; only\n"
             "these workers get in, named by their key",
     .mask = CLI_COORD},
    {"server-key", JOUST_OPT_STR, F(server_key), .arg = "KEY",
     .help = "CURVE: the coordinator's public key: a .pub file, or the\n"
             "Z85 key itself when no file has that name",
     .mask = CLI_WORKER},
    {"judge", JOUST_OPT_STR, F(judge), .dflt = "quality", .arg = "NAME",
     .help = "the judge (see \"judges\" below)", .mask = RUN_OPT | CLI_WORKER},
    {"order", JOUST_OPT_CHOICE, F(order), .dflt = "both", .choices = "both|random|fixed",
     .arg = "POLICY", .help = "both (default) | random | fixed: presentation order of pairs",
     .mask = RUN_OPT},
    {"strategy", JOUST_OPT_STR, F(strategy), .dflt = "round-robin", .arg = "NAME",
     .help = "round-robin (default) | k-regular | swiss | adaptive | top-k |\n"
             "cross-model: which pairs are judged (docs/ranking.md)",
     .mask = RUN_OPT},
    {"budget", JOUST_OPT_DOUBLE, F(budget_per_image), .min = 0, .max = HUGE_VAL, .arg = "X",
     .help = "at most X judge calls per image of a prompt (0: no cap)", .mask = RUN_OPT},
    {"budget-calls", JOUST_OPT_U64, F(budget_calls), .arg = "N",
     .help = "at most N judge calls per prompt (0: no cap)", .mask = RUN_OPT},
    {"confidence", JOUST_OPT_DOUBLE, F(confidence), .min = 0, .max = HUGE_VAL, .arg = "X",
     .help = "adaptive, top-k: stop a prompt once settled at X (default 0.95)", .mask = RUN_OPT},
    {"k", JOUST_OPT_U32, F(k), .max = 4096, .arg = "N",
     .help = "k-regular: opponents per image; top-k: how many best/worst", .mask = RUN_OPT},
    {"group", JOUST_OPT_CHOICE, F(group), .dflt = "prompt", .choices = "prompt|all", .arg = "G",
     .help = "tournament groups: prompt (default; images of a prompt are\n"
             "compared) or all (the whole run is one group: a corpus with\n"
             "one image per caption; docs/ranking.md)",
     .mask = RUN_OPT},
    {"group-by", JOUST_OPT_STR, F(group_by), .arg = "FIELD",
     .help = "tournament groups: images with the same value of manifest\n"
             "field FIELD (\"model\" or any other field) form one group",
     .mask = RUN_OPT},
    {"seed", JOUST_OPT_U64, F(seed), .dflt = "1", .arg = "N",
     .help = "seed for orders and simulated noise (a worker: use the run's)",
     .mask = RUN_OPT | CLI_WORKER},
    {"max-attempts", JOUST_OPT_U32, F(max_attempts), .min = 1, .max = 1000, .dflt = "3", .arg = "N",
     .help = "attempts per match for retryable failures", .mask = RUN_OPT},
    {"lease-ms", JOUST_OPT_U32, F(lease_ms), .min = 100, .max = 86400000, .dflt = "60000", .arg = "N",
     .help = "re-dispatch a match not answered within N ms", .mask = RUN_OPT},
    {"window", JOUST_OPT_U32, F(window), .min = 1, .max = 1u << 30, .dflt = "65536", .arg = "N",
     .help = "planned matches held in memory", .mask = RUN_OPT},
    {"job-matches", JOUST_OPT_U32, F(job_matches), .min = 1, .max = 1024, .dflt = "64", .arg = "N",
     .help = "matches per JOB message", .mask = RUN_OPT},
    {"slots", JOUST_OPT_INT, F(slots), .min = 1, .max = 65536, .dflt = "32", .arg = "N",
     .help = "matches a worker holds at once (openai: twice --inflight)",
     .mask = CLI_RUN | CLI_WORKER | CLI_SPAWN},
    {"allow-root", JOUST_OPT_LIST, F(allow_roots), F(n_allow_roots), CLI_MAX_ALLOW_ROOTS,
     .arg = "DIR",
     .help = "read only images whose real path is inside DIR (repeatable;\n"
             "default with a manifest: its folder); others fail with\n"
             "\"outside the allowed roots\"",
     .mask = RUN_OPT | CLI_WORKER | CLI_SPAWN},
    {"allow-any-path", JOUST_OPT_FLAG, F(allow_any_path),
     .help = "no confinement: read images wherever they are",
     .mask = RUN_OPT | CLI_WORKER | CLI_SPAWN},
    {"device", JOUST_OPT_CHOICE, F(device), .dflt = "auto", .choices = "auto|cpu|cuda", .arg = "D",
     .help = "where the image-level fit runs: cuda (a CUDA build and a\n"
             "GPU), cpu, or auto (cuda when usable, else cpu)",
     .mask = RUN_OPT | CLI_STORE},
    {"outcomes", JOUST_OPT_CHOICE, F(outcomes_arg), .dflt = "auto", .choices = "auto|scan|log",
     .arg = "HOW",
     .help = "read the outcomes from the run's outcome log (log), by a scan\n"
             "of its outcome records (scan), or auto: the log when the run\n"
             "has one (the same scores either way)",
     .mask = CLI_STORE},
    {"hard-weight", JOUST_OPT_DOUBLE, F(score.hard_weight), .min = 0, .max = HUGE_VAL, .dflt = "1",
     .arg = "W",
     .help = "weight of hard outcomes (answer text only, no logprobs) in the\n"
             "fit; 0 leaves them out",
     .mask = RUN_OPT | CLI_STORE},
    {"calibration", JOUST_OPT_STR, F(calibration_path), .arg = "FILE",
     .help = "apply a temperature fitted by `joust eval --calibration-out` to\n"
             "every p before the fit (docs/judges.md)",
     .mask = RUN_OPT | CLI_STORE},
    {"min-kind", JOUST_OPT_CHOICE, F(min_kind_arg), .choices = "soft|bounded|hard", .arg = "KIND",
     .help = "weakest outcome kind used (export dpo: default soft)", .mask = CLI_STORE},
    {"max-failed", JOUST_OPT_STR, F(max_failed_arg), .dflt = "0", .arg = "N|P%",
     .help = "failed matches that still exit 0 (default 0: any failure\n"
             "exits 1, after the scores are written)",
     .mask = RUN_OPT},
    {"retry-failed", JOUST_OPT_FLAG, F(retry_failed),
     .help = "judge a finished run's failed matches again, once", .mask = RUN_OPT},
    {"no-reuse", JOUST_OPT_FLAG, F(no_reuse),
     .help = "judge every match, even one whose judge settings, prompt and\n"
             "image contents an earlier outcome in the store has (default:\n"
             "copy that outcome)", .mask = RUN_OPT},
    {"dedup", JOUST_OPT_FLAG, F(dedup),
     .help = "sign the images first and collapse near-duplicates within each\n"
             "prompt: only representatives are judged; duplicates take their\n"
             "score and are marked duplicate_of (docs/dedup.md)",
     .mask = RUN_OPT},
    {"radius", JOUST_OPT_U32, F(radius), .max = 63, .dflt = "8", .arg = "R",
     .help = "near-duplicates: largest Hamming distance of the 64-bit\n"
             "perceptual hashes (default 8; docs/dedup.md says why)",
     .mask = RUN_OPT},
    {"scope", JOUST_OPT_CHOICE, F(scope), .dflt = "prompt", .choices = "prompt|model|global",
     .arg = "S", .help = "dedup: compare images within a prompt (default), a model, or all"},
    {"threads", JOUST_OPT_U32, F(threads), .min = 1, .max = 256, .dflt = "1", .arg = "N",
     .help = "dedup: search threads"},
    {"wait-ready", JOUST_OPT_INT, F(wait_ready_s), .max = 86400, .dflt = "600", .arg = "SECONDS",
     .help = "a worker waits this long for its judge to be ready (openai:\n"
             "an endpoint answering GET /models with the model) before\n"
             "asking for work (0: do not wait)",
     .mask = CLI_RUN | CLI_WORKER | CLI_SPAWN},
    {"check-remote", JOUST_OPT_FLAG, F(check_remote),
     .help = "ingest: a HEAD request per remote image; a 404/403 is a\n"
             "bad line (nothing is downloaded)",
     .mask = RUN_OPT | CLI_STORE},
    {"duplicate-ids", JOUST_OPT_CHOICE, F(duplicate_ids), .dflt = "error", .choices = "error|warn",
     .arg = "P",
     .help = "a manifest line whose id an earlier image has: error (default;\n"
             "the line is skipped and listed in bad_lines.jsonl under --out)\n"
             "| warn (kept under a generated id #N)",
     .mask = RUN_OPT | CLI_STORE},
    {"min-margin", JOUST_OPT_DOUBLE, F(min_margin), .min = 0, .max = HUGE_VAL, .dflt = "0.1",
     .arg = "X",
     .help = "export dpo: only pairs whose score margin is at least X\n"
             "(default 0.1; a margin of 0 is never a pair)"},
    {"pairs", JOUST_OPT_CHOICE, F(dpo_pairs), .dflt = "best-worst",
     .choices = "best-worst|best-each|all|top-k", .arg = "P",
     .help = "export dpo: best-worst, best-each (best vs every other),\n"
             "all (every pair above the margin), top-k (--k best vs k worst)"},
    {"layout", JOUST_OPT_CHOICE, F(dpo_layout), .dflt = "trl", .choices = "trl|pickapic",
     .arg = "L", .help = "export dpo: trl (prompt, chosen, rejected) or pickapic\n"
                          "(caption, jpg_0, jpg_1, label_0)"},
    {"format", JOUST_OPT_CHOICE, F(dpo_format), .dflt = "jsonl", .choices = "jsonl|wds",
     .arg = "F", .help = "export dpo: jsonl (image paths) or wds (a WebDataset tar\n"
                         "with the image bytes)"},
    {"prompts", JOUST_OPT_INT, F(prompts), .max = 1000000, .arg = "N", .help = "demo, bench: prompts"},
    {"per-prompt", JOUST_OPT_INT, F(per_prompt), .max = 4096, .arg = "K",
     .help = "demo, bench: images per prompt"},
    {"images", JOUST_OPT_U64, F(images), .max = 1ull << 40, .arg = "N", .help = "bench: images"},
    {"help", JOUST_OPT_FLAG, F(help), .help = "this help"},
};
#define N_CLI (sizeof cli_table / sizeof *cli_table)

/* Every option the command knows: its own and each judge's. */
typedef struct {
    const joust_opt *opt;
    int judge; /* 1: a field of cli_opts.jcfg */
} opt_ref;

#define MAX_OPTS 128

static size_t all_opts(opt_ref *refs)
{
    size_t n = 0;
    for (size_t i = 0; i < N_CLI; i++)
        refs[n++] = (opt_ref){&cli_table[i], 0};
    for (size_t i = 0; i < joust_judge_n_image_opts; i++)
        refs[n++] = (opt_ref){&joust_judge_image_opts[i], 1};
    const joust_judge_info *j;
    for (size_t k = 0; (j = joust_judge_info_at(k)) != NULL; k++)
        for (size_t i = 0; i < j->n_opts && n < MAX_OPTS; i++)
            refs[n++] = (opt_ref){&j->opts[i], 1};
    return n;
}

static void judge_list(char *out, size_t outlen)
{
    const joust_judge_info *j;
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; (j = joust_judge_info_at(i)) != NULL && k < outlen; i++)
        k += (size_t)snprintf(out + k, outlen - k, "%s%s", i ? " | " : "", j->name);
}

int cli_parse(int argc, char **argv, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    joust_score_opts_defaults(&o->score);
    joust_opt_defaults(cli_table, N_CLI, o);
    joust_judge_config_defaults(&o->jcfg);
    o->progress = isatty(2);
    opt_ref refs[MAX_OPTS];
    size_t n = all_opts(refs);
    struct option long_opts[MAX_OPTS + 1];
    for (size_t i = 0; i < n; i++) {
        const joust_opt *d = refs[i].opt;
        int flag = d->type == JOUST_OPT_FLAG || d->type == JOUST_OPT_UNFLAG;
        long_opts[i] = (struct option){d->name, flag ? no_argument : required_argument, 0, 256 + (int)i};
    }
    long_opts[n] = (struct option){0, 0, 0, 0};
    optind = 1;
    opterr = 1;
    int c, rc = 0;
    char err[512];
    while (rc == 0 && (c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            o->help = 1;
        } else if (c >= 256 && (size_t)(c - 256) < n) {
            const opt_ref *r = &refs[c - 256];
            if ((rc = joust_opt_set(r->opt, r->judge ? (void *)&o->jcfg : (void *)o, optarg, err,
                                    sizeof err)) < 0)
                fprintf(stderr, "joust: %s\n", err);
            o->slots_given |= !strcmp(r->opt->name, "slots");
        } else {
            rc = JOUST_EINVAL; /* getopt printed why */
        }
    }
    /* Choices the table has checked, into the scoring's types. */
    if (rc == 0)
        joust_device_parse(o->device, &o->score.device);
    if (rc == 0)
        joust_outcomes_parse(o->outcomes_arg, &o->score.outcomes);
    if (rc == 0 && o->min_kind_arg)
        joust_kind_parse(o->min_kind_arg, &o->min_kind);
    if (rc == 0 && o->calibration_path &&
        (rc = cli_calibration_read(o->calibration_path, &o->calibration)) == 0)
        o->score.calibration = &o->calibration;
    if (rc == 0 && joust_max_failed_parse(o->max_failed_arg, &o->max_failed) < 0) {
        fprintf(stderr, "joust: --max-failed: '%s' is not a count N or a percentage P%%\n",
                o->max_failed_arg);
        rc = JOUST_EINVAL;
    }
    if (rc == 0 && !joust_judge_find(o->judge)) {
        char names[128];
        judge_list(names, sizeof names);
        fprintf(stderr, "joust: --judge: '%s' is not a judge (%s)\n", o->judge, names);
        rc = JOUST_EINVAL;
    }
    /* The openai judge keeps --inflight requests at the server and as many
     * matches queued behind them, so that the server never waits for us. */
    if (!o->slots_given && !strcmp(o->judge, "openai"))
        o->slots = 2 * o->jcfg.inflight;
    o->jcfg.seed = o->seed;
    o->jcfg.allow_roots = o->allow_roots;
    o->jcfg.n_allow_roots = (size_t)o->n_allow_roots;
    o->argc = argc - optind;
    o->argv = argv + optind;
    return rc;
}

static void print_help(const char *usage, unsigned mask)
{
    fputs(usage, stdout);
    if (!mask)
        return;
    printf("\n");
    joust_opt_help(cli_table, N_CLI, mask, stdout);
    if (!(mask & CLI_JUDGES))
        return;
    printf("\njudges (--judge):\n");
    const joust_judge_info *j;
    for (size_t k = 0; (j = joust_judge_info_at(k)) != NULL; k++)
        printf("  %-20s %s\n", j->name, j->what);
    printf("\nimage-reading judges:\n");
    joust_opt_help(joust_judge_image_opts, joust_judge_n_image_opts, 0, stdout);
    for (size_t k = 0; (j = joust_judge_info_at(k)) != NULL; k++)
        if (j->n_opts) {
            printf("\n%s judge:\n", j->name);
            joust_opt_help(j->opts, j->n_opts, 0, stdout);
        }
}

int cli_begin_opts(int argc, char **argv, const char *usage, unsigned mask, int min_args,
                   int max_args, cli_opts *o, int *exit_code)
{
    *exit_code = 2;
    if (cli_parse(argc, argv, o) < 0)
        return 0;
    if (o->help) {
        print_help(usage, mask);
        *exit_code = 0;
        return 0;
    }
    if (o->argc < min_args || o->argc > max_args) {
        /* the usage line only, not the whole help */
        fprintf(stderr, "%.*s (see --help)\n", (int)(strchr(usage, '\n') - usage), usage);
        return 0;
    }
    return 1;
}

int cli_begin(int argc, char **argv, const char *usage, int min_args, int max_args, cli_opts *o,
              int *exit_code)
{
    return cli_begin_opts(argc, argv, usage, 0, min_args, max_args, o, exit_code);
}

int cli_check_keys(const cli_opts *o)
{
    char err[PATH_MAX + 128];
    int rc = 0;
    if (o->curve_secret) {
        joust_curve_keypair kp;
        if ((rc = joust_curve_read_secret(o->curve_secret, &kp, err, sizeof err)) < 0)
            fprintf(stderr, "joust: --curve-secret: %s\n", err);
        joust_curve_wipe(&kp, sizeof kp);
    }
    if (rc == 0 && o->server_key) {
        char pub[JOUST_CURVE_Z85_LEN + 1];
        if ((rc = joust_curve_read_public(o->server_key, pub, err, sizeof err)) < 0)
            fprintf(stderr, "joust: --server-key: %s\n", err);
    }
    if (rc == 0 && o->curve_allow) {
        joust_curve_allow_t *allow = NULL;
        if ((rc = joust_curve_allow_load(o->curve_allow, &allow, err, sizeof err)) < 0)
            fprintf(stderr, "joust: --allow: %s\n", err);
        joust_curve_allow_destroy(&allow);
    }
    return rc;
}

int cli_image_roots(cli_opts *o, const char *manifest)
{
    if (o->allow_any_path && o->n_allow_roots) {
        fprintf(stderr, "joust: --allow-root and --allow-any-path exclude each other\n");
        return JOUST_EINVAL;
    }
    if (o->allow_any_path || o->n_allow_roots)
        return 0;
    if (!manifest) {
        if (strcmp(o->judge, "sim") == 0)
            return 0; /* reads no image */
        fprintf(stderr, "joust: the %s judge reads images: give --allow-root DIR (the folder they "
                        "are in; repeatable) or --allow-any-path\n", o->judge);
        return JOUST_EINVAL;
    }
    char copy[sizeof o->manifest_root];
    /* Remote shards name no local image: the current folder, so that a
     * local reference still has to be under it. */
    snprintf(copy, sizeof copy, "%s", strstr(manifest, "://") ? "./-" : manifest);
    if (!realpath(dirname(copy), o->manifest_root)) {
        fprintf(stderr, "joust: %s: %s\n", manifest, strerror(errno));
        return JOUST_EINVAL;
    }
    o->allow_roots[o->n_allow_roots++] = o->manifest_root;
    o->jcfg.n_allow_roots = (size_t)o->n_allow_roots;
    return 0;
}

int cli_open_store(const char *path, int create, joust_store_t **st)
{
    int rc = joust_store_open(path, create, st);
    if (rc == JOUST_ENOTFOUND)
        log_error("no joust store at %s (run `joust run MANIFEST --db %s` first)", path, path);
    else if (rc < 0)
        log_error("cannot open the store at %s: %s", path, joust_strerror(rc));
    if (rc < 0)
        return rc;
    /* A crashed ingest's images sit outside every manifest's range, but a
     * run without a manifest covers the whole store: a writer takes them
     * back before anything reads; a reader can only say they are there. */
    uint64_t first_image, first_prompt;
    if (create != JOUST_STORE_READONLY) {
        if ((rc = joust_ingest_recover(*st)) < 0)
            joust_store_destroy(st);
    } else if (joust_rec_ingest_mark_get(*st, &first_image, &first_prompt) == 0) {
        log_warn("%s holds what an unfinished ingest wrote (images from %llu); any joust "
                 "command that writes to the store takes it back",
                 path, (unsigned long long)first_image);
    }
    return rc;
}

/* ------------------------------------------------------------ pipeline --- */

/* bad_lines: where ingest lists the bad lines (NULL: none). */
/* --check-remote: a HEAD request per remote image, never a download. */
static int head_remote(void *ctx, const char *uri, char *err, size_t errlen)
{
    size_t len;
    return joust_fetch_head(ctx, uri, &len, err, errlen);
}

/* The client --check-remote asks (NULL without the option). */
static joust_fetch_t *remote_checker(const cli_opts *o)
{
    joust_fetch_config fc = {.s3_endpoint = o->jcfg.s3_endpoint, .cache_dir = "none"};
    return o->check_remote ? joust_fetch_new(&fc) : NULL;
}

static void fill_pipeline(const cli_opts *o, const char *manifest, const char *bad_lines,
                          joust_fetch_t *fetch, joust_pipeline_config *pc)
{
    joust_pipeline_config_defaults(pc);
    pc->manifest = manifest;
    pc->ingest.duplicate_ids = !strcmp(o->duplicate_ids, "warn") ? JOUST_DUP_IDS_WARN
                                                                  : JOUST_DUP_IDS_ERROR;
    pc->ingest.bad_lines_path = bad_lines;
    pc->ingest.allow_roots = o->allow_roots;
    pc->ingest.n_allow_roots = (size_t)o->n_allow_roots;
    pc->ingest.allow_any_path = o->allow_any_path;
    pc->ingest.check_remote = fetch ? head_remote : NULL;
    pc->ingest.check_remote_ctx = fetch;
    pc->score = o->score;
    pc->summary = stdout;
    pc->run_name = o->run;
    pc->spec = (joust_run_spec){o->strategy, o->judge, o->order, o->seed, o->max_attempts,
                                o->lease_ms, NULL, o->budget_per_image, o->budget_calls,
                                o->confidence, o->k, o->group_by,
                                o->group && !strcmp(o->group, "all")};
    joust_coord_config *cc = &pc->coord;
    cc->bind = o->workers ? "tcp://127.0.0.1:*" : o->bind;
    cc->window = o->window;
    cc->job_matches = o->job_matches;
    cc->progress = o->progress;
    cc->metrics = o->coord_metrics;
    cc->stop = &cli_stop;
    if (!o->workers || o->local_curve_secret) { /* local workers: loopback, no CURVE unless asked */
        cc->curve_secret = o->curve_secret;
        cc->curve_allow = o->curve_allow;
    }
    pc->local_workers = o->workers;
    pc->retry_failed = o->retry_failed;
    pc->dedup = o->dedup;
    pc->dedup_radius = o->radius;
    pc->coord.no_reuse = o->no_reuse;
    pc->supervisor.exe = "joust"; /* cli_pipeline_setup puts the real path */
    pc->out_dir = o->out;
}

int cli_check_run(const cli_opts *o)
{
    char err[512];
    int rc = 0;
    if (o->workers > 0)
        rc = joust_judge_check(o->judge, &o->jcfg, err, sizeof err);
    if (rc == 0) {
        joust_pipeline_config pc;
        fill_pipeline(o, NULL, NULL, NULL, &pc);
        rc = joust_pipeline_check(&pc, err, sizeof err);
    }
    for (int i = 0; rc == 0 && i < o->workers; i++) {
        char addr[300];
        rc = cli_worker_metrics_addr(o, i, addr, sizeof addr, err, sizeof err);
    }
    if (rc < 0) {
        fprintf(stderr, "joust: %s\n", err);
        return JOUST_EINVAL;
    }
    return 0;
}

/* Worker i of `joust run`: its name, the run's seed, its statistics file,
 * the benchmark's CURVE keys. */
static void worker_args(int i, joust_argv *a, void *arg)
{
    cli_run *r = arg;
    char buf[PATH_MAX];
    joust_argv_add(a, "--name");
    snprintf(buf, sizeof buf, "local-%d", i + 1);
    joust_argv_add(a, buf);
    joust_argv_add(a, "--seed");
    snprintf(buf, sizeof buf, "%" PRIu64, r->seed);
    joust_argv_add(a, buf);
    if (r->stats_dir[0]) {
        joust_argv_add(a, "--judge-stats");
        snprintf(buf, sizeof buf, "%s/worker-%d.json", r->stats_dir, i + 1);
        joust_argv_add(a, buf);
    }
    char err[256];
    if (cli_worker_metrics_addr(r->o, i, buf, sizeof buf, err, sizeof err) == 0 && buf[0]) {
        joust_argv_add(a, "--metrics"); /* checked by cli_check_run */
        joust_argv_add(a, buf);
    }
    if (r->o->local_curve_secret) {
        joust_argv_add(a, "--curve-secret");
        joust_argv_add(a, r->o->local_curve_secret);
        joust_argv_add(a, "--server-key");
        joust_argv_add(a, r->o->server_key);
    }
}

/* The judge settings recorded with a run: "name=value" per option the
 * judge reads, from the same table that makes the workers' argv. */
static char *judge_options(const cli_opts *o)
{
    joust_argv a = {0};
    joust_judge_to_argv(o->judge, &o->jcfg, &a);
    size_t len = 1;
    for (size_t i = 0; i < a.n; i++)
        len += strlen(a.v[i]) + 1;
    char *s = xmalloc(len), *p = s;
    *p = '\0';
    for (size_t i = 0; i < a.n; i++) {
        int opt = !strncmp(a.v[i], "--", 2);
        int has_val = opt && i + 1 < a.n && strncmp(a.v[i + 1], "--", 2);
        p += sprintf(p, "%s%s%s", p == s ? "" : " ", opt ? a.v[i] + 2 : a.v[i],
                     has_val ? "=" : "");
        if (has_val)
            p += sprintf(p, "%s", a.v[++i]);
    }
    joust_argv_free(&a);
    return s;
}

int cli_pipeline_setup(const cli_opts *o, const char *manifest, cli_run *r,
                       joust_pipeline_config *pc)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    snprintf(r->bad_lines, sizeof r->bad_lines, "%s/bad_lines.jsonl", o->out);
    if (manifest)
        mkdir(o->out, 0755);
    if (manifest)
        r->fetch = remote_checker(o);
    fill_pipeline(o, manifest, r->bad_lines, r->fetch, pc);
    pc->spec.judge_options = judge_options(o);
    pc->report = cli_report;
    pc->report_arg = r;
    if (!o->workers)
        return 0;
    ssize_t len = readlink("/proc/self/exe", r->exe, sizeof r->exe - 1);
    if (len <= 0) {
        log_error("cannot find my own executable to start workers");
        return JOUST_EIO;
    }
    r->exe[len] = '\0';
    joust_argv_add(&r->worker_argv, "worker");
    joust_argv_add(&r->worker_argv, "--judge");
    joust_argv_add(&r->worker_argv, o->judge);
    for (size_t i = 0; i < N_CLI; i++)
        if (cli_table[i].mask & CLI_SPAWN)
            joust_opt_to_argv(&cli_table[i], o, &r->worker_argv);
    joust_judge_to_argv(o->judge, &o->jcfg, &r->worker_argv);
    pc->supervisor.exe = r->exe;
    pc->supervisor.argv = (const char *const *)r->worker_argv.v;
    pc->supervisor.worker_args = worker_args;
    pc->supervisor.worker_args_arg = r;
    if (!getenv("JOUST_LOG"))
        setenv("JOUST_LOG", "warn", 1); /* keep the progress line readable */
    return 0;
}

void cli_run_clear(cli_run *r)
{
    joust_argv_free(&r->worker_argv);
    joust_fetch_destroy(&r->fetch);
}

void cli_report(const joust_pipe_event *ev, void *arg)
{
    cli_run *r = arg;
    switch (ev->step) {
    case JOUST_PIPE_INGESTED: {
        const joust_ingest_stats *is = ev->ingest;
        if (!is->already_ingested)
            printf("ingested %s: %" PRIu64 " images in %" PRIu64 " new prompts; %" PRIu64
                   " bad lines%s%s%s, %" PRIu64 " duplicate ids renamed, %" PRIu64
                   " duplicates, %" PRIu64 " missing files\n",
                   ev->manifest, is->images, is->prompts, is->errors, is->errors ? " (all in " : "",
                   is->errors ? r->bad_lines : "", is->errors ? ")" : "", is->renamed_ids,
                   is->duplicates, is->missing);
        break;
    }
    case JOUST_PIPE_RUN_OPENED:
        r->seed = ev->run->seed;
        if (ev->added == JOUST_RUN_MANIFEST_FIRST)
            printf("run '%s' covers %s: %" PRIu64 " images\n", ev->run->name, ev->manifest,
                   ev->ingest->end_image - ev->ingest->first_image);
        else if (ev->added == JOUST_RUN_MANIFEST_EXTENDS)
            printf("run '%s' extended with %s: %" PRIu64 " images added to its %zu earlier "
                   "manifest(s); the pairs they bring are planned and judged, nothing judged "
                   "before is judged again\n", ev->run->name, ev->manifest,
                   ev->ingest->end_image - ev->ingest->first_image, ev->run->n_manifests - 1);
        else if (ev->added == JOUST_RUN_MANIFEST_KNOWN)
            printf("%s is already part of run '%s': nothing added\n", ev->manifest,
                   ev->run->name);
        fflush(stdout); /* before a coordinator that may run for hours */
        if (r->o && r->o->retry_failed)
            printf("run '%s': %" PRIu64 " failed matches to judge again\n", ev->run->name,
                   ev->retry_again);
        if (r->o && r->o->workers && !strcmp(r->o->judge, "openai"))
            cli_openai_stats_dir(r->stats_dir, sizeof r->stats_dir);
        break;
    case JOUST_PIPE_JUDGED: {
        const joust_coord_summary *cs = ev->judged;
        if (cs->sign_ok + cs->sign_failed + cs->sign_copied + cs->sign_known + cs->sign_given_up)
            printf("signed %" PRIu64 " images (%" PRIu64 " copied from images with the same "
                   "content, %" PRIu64 " signed before); %" PRIu64 " could not be read, %" PRIu64
                   " given up\n",
                   cs->sign_ok, cs->sign_copied, cs->sign_known, cs->sign_failed,
                   cs->sign_given_up);
        if (cs->complete)
            printf("judged %" PRIu64 " matches in %.1f s (%.0f/s): %" PRIu64 " ok, %" PRIu64
                   " failed, %" PRIu64 " retried, %" PRIu64 " leases expired\n",
                   cs->ok + cs->failed, cs->seconds,
                   cs->seconds > 0 ? (double)(cs->ok + cs->failed) / cs->seconds : 0, cs->ok,
                   cs->failed, cs->retried, cs->expired);
        if (cs->complete && cs->reused)
            printf("  %" PRIu64 " more answered by earlier outcomes (same judge settings, prompt and "
                   "image contents): reused, not judged\n", cs->reused);
        if (cs->complete && (cs->drained || cs->forged || cs->infra_retries))
            printf("  %" PRIu64 " infrastructure errors sent back to the queue, %" PRIu64
                   " workers drained (leases kept expiring), %" PRIu64
                   " results dropped from peers that never held the lease\n",
                   cs->infra_retries, cs->drained, cs->forged);
        if (r->stats_dir[0]) /* the workers' judge statistics, after their exit */
            cli_openai_report(r->o, r->stats_dir, r->o->workers, cs->complete);
        if (cs->stopped[0])
            fprintf(stderr, "joust: run '%s' stopped: %s\n  fix the judge's configuration, then run "
                            "the same command again to resume\n", ev->run->name, cs->stopped);
        break;
    }
    case JOUST_PIPE_FITTED:
    case JOUST_PIPE_SCORED: /* output.c printed the summary */
        break;
    }
    if (r->tap)
        r->tap(ev, r->tap_arg);
}

/* A finished run with failed matches: says which classes on stderr, and
 * fails the command when there are more than --max-failed allows. */
static int failure_verdict(const cli_opts *o, const joust_coord_tally *t)
{
    uint64_t failed = joust_coord_tally_failed(t);
    if (!failed)
        return 0;
    int over = joust_max_failed_exceeded(&o->max_failed, t);
    fprintf(stderr, "joust: run '%s': %" PRIu64 " of %" PRIu64 " matches failed:\n", o->run, failed,
            t->planned);
    joust_coord_tally_print(t, stderr);
    fprintf(stderr, "  %s; the same command with --retry-failed judges exactly these again\n",
            over ? "more than --max-failed allows: exit status 1" : "within --max-failed");
    return over ? JOUST_EJUDGE : 0;
}

int cli_pipeline(const cli_opts *o, const char *manifest, joust_store_t *st)
{
    cli_run r;
    joust_pipeline_config pc;
    int rc = cli_pipeline_setup(o, manifest, &r, &pc);
    joust_pipeline_result res;
    if (rc == 0 && (rc = joust_pipeline_run(st, &pc, &res)) == 0)
        rc = failure_verdict(o, &res.judged.run);
    if (rc == JOUST_EEXIST)
        log_error("run '%s' exists with another configuration: choose another --run NAME, or "
                  "remove it with its matches and outcomes: joust runs rm %s --db %s",
                  o->run, o->run, o->db);
    free((char *)pc.spec.judge_options);
    cli_run_clear(&r);
    return cli_exit_status(rc);
}

int cli_ingest(const cli_opts *o, joust_store_t *st, const char *manifest)
{
    cli_run r = {.o = o};
    snprintf(r.bad_lines, sizeof r.bad_lines, "%s/bad_lines.jsonl", o->out);
    mkdir(o->out, 0755);
    r.fetch = remote_checker(o);
    joust_pipeline_config pc;
    fill_pipeline(o, manifest, r.bad_lines, r.fetch, &pc);
    pc.report = cli_report;
    pc.report_arg = &r;
    int rc = joust_pipeline_ingest(st, &pc, NULL);
    cli_run_clear(&r);
    return rc;
}

static void keep_counts(const joust_pipe_event *ev, void *arg)
{
    if (ev->step != JOUST_PIPE_SCORED)
        return;
    joust_score_summary *sum = arg;
    *sum = *ev->scores;
    memset(&sum->models, 0, sizeof sum->models); /* freed by the pipeline */
}

int cli_write_scores(joust_store_t *st, const char *run_name, const char *out_dir,
                     const joust_score_opts *so, joust_score_summary *sum, int quiet)
{
    cli_run r = {.tap = keep_counts, .tap_arg = sum};
    memset(sum, 0, sizeof *sum);
    joust_pipeline_config pc;
    joust_pipeline_config_defaults(&pc);
    pc.run_name = run_name;
    pc.out_dir = out_dir;
    if (so)
        pc.score = *so;
    pc.summary = quiet ? NULL : stdout;
    pc.report = cli_report;
    pc.report_arg = &r;
    return joust_pipeline_score(st, &pc);
}
