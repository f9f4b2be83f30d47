/* Shared pieces of the `joust` command: its options (one table in cli.c,
 * plus each judge's table from the registry in worker/judge.c), signals,
 * and the glue between the options and the run pipeline
 * (coordinator/pipeline.h), which does the work. */
#ifndef JOUST_CLI_H
#define JOUST_CLI_H
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "coordinator.h"
#include "judge.h"
#include "opt.h"
#include "output.h"
#include "pipeline.h"
#include "scoring.h"
#include "store.h"

#define CLI_MAX_ALLOW_ROOTS 8

typedef struct {
    const char *db, *out, *run, *judge, *order, *strategy, *bind, *connect, *name;
    uint64_t seed;
    int workers, slots, progress, help;
    int wait_ready_s;        /* worker: wait this long for the judge before READY */
    int prompts, per_prompt; /* demo and bench sizes */
    uint64_t images;
    uint32_t max_attempts, lease_ms, window, job_matches;
    double min_margin;
    const char *dpo_pairs, *dpo_layout, *dpo_format; /* export dpo */
    double budget_per_image, confidence;
    uint64_t budget_calls;
    uint32_t k;
    const char *group_by, *group; /* --group-by FIELD, --group prompt|all */
    const char *max_failed_arg;  /* --max-failed N|P% as given */
    joust_max_failed max_failed; /* parsed: failures that still exit 0 */
    int retry_failed;            /* --retry-failed: judge the failed matches again */
    int no_reuse;                /* --no-reuse: judge every match (reuse.h) */
    int dedup;                   /* run --dedup: collapse near-duplicates first */
    uint32_t radius;             /* --radius: near-duplicate Hamming radius */
    const char *scope;           /* dedup --scope prompt|model|global */
    uint32_t threads;            /* dedup --threads: search threads */
    joust_judge_config jcfg; /* the judge options (worker/judge.c's tables) */
    joust_score_opts score;  /* --device, --hard-weight */
    const char *device;      /* --device as given */
    const char *outcomes_arg; /* --outcomes auto|scan|log as given */
    const char *min_kind_arg;
    const char *calibration_path;  /* --calibration FILE (joust eval --calibration-out) */
    joust_calibration calibration; /* read from it; score.calibration points here */
    int min_kind;            /* --min-kind (JOUST__OUTCOME_KIND__*); 0 when not given */
    /* CURVE over tcp (coordinator: curve_secret + curve_allow; worker:
     * curve_secret + server_key) and image path confinement. */
    const char *curve_secret, *curve_allow, *server_key;
    /* Local workers use CURVE too when set (benchmarks): their secret key. */
    const char *local_curve_secret;
    const char *allow_roots[CLI_MAX_ALLOW_ROOTS]; /* jcfg.allow_roots points here */
    int n_allow_roots;
    int allow_any_path;          /* --allow-any-path: no image confinement */
    int check_remote;            /* --check-remote: HEAD every remote image at ingest */
    char manifest_root[4096];    /* the default root cli_image_roots adds */
    int slots_given;
    const char *duplicate_ids; /* --duplicate-ids error|warn */
    const char *metrics;       /* --metrics [HOST:]PORT, or NULL */
    const char *worker_metrics; /* run: --worker-metrics [HOST:]PORT,... (one per local worker) */
    struct joust_coord_metrics *coord_metrics; /* served when --metrics is set */
    int argc;      /* positional arguments left after the options */
    char **argv;
} cli_opts;

/* Which options a command's --help lists (the mask of a table row). */
enum {
    CLI_RUN = 1u << 0,     /* joust run, demo: the run and its local workers */
    CLI_COORD = 1u << 1,   /* joust coordinator */
    CLI_WORKER = 1u << 2,  /* joust worker */
    CLI_STORE = 1u << 3,   /* commands that read a store */
    CLI_JUDGES = 1u << 4,  /* + the judges and their options */
    CLI_SPAWN = 1u << 5    /* handed on to the local workers of joust run */
};

/* 0 while running; SIGINT or SIGTERM once one arrived; 1 when the run was
 * stopped from inside (the local workers failed). */
extern volatile sig_atomic_t cli_stop;

/* Parses options from argv[1..] (argv[0] is the subcommand). Returns 0, or
 * JOUST_EINVAL after printing the reason (naming the option). */
int cli_parse(int argc, char **argv, cli_opts *o);
/* Every subcommand's start: parses the options, prints usage for --help
 * (*exit_code 0) or for a count of positional arguments outside
 * [min_args, max_args] (to stderr, *exit_code 2). Returns 1 when the
 * command goes on, 0 when it should return *exit_code. cli_begin_opts
 * prints after usage the options whose rows have a bit of mask. */
int cli_begin(int argc, char **argv, const char *usage, int min_args, int max_args, cli_opts *o,
              int *exit_code);
int cli_begin_opts(int argc, char **argv, const char *usage, unsigned mask, int min_args,
                   int max_args, cli_opts *o, int *exit_code);
void cli_install_signals(void);
/* The exit status for a command that ended with rc: 128 + the signal when
 * SIGINT/SIGTERM stopped it (after the same clean shutdown), else 0 for
 * rc == 0 and 1 otherwise. */
int cli_exit_status(int rc);
/* Reads every key option that is set (--curve-secret, --server-key,
 * --allow) once, so that a bad one is an error naming the option before
 * anything starts. Returns 0, or the first failure after printing it. */
int cli_check_keys(const cli_opts *o);
/* Checks the judge and the run options (strategy, order, budgets, ...)
 * before any store is opened, printing what is wrong. 0 or JOUST_EINVAL. */
int cli_check_run(const cli_opts *o);
/* Image confinement by default: without --allow-root or --allow-any-path,
 * a command with a manifest confines images (at ingest and in its local
 * workers) to the manifest's folder; a worker without a manifest and with a
 * judge that reads images needs one of the two options. Returns 0, or
 * JOUST_EINVAL after printing the reason. */
int cli_image_roots(cli_opts *o, const char *manifest);
/* --metrics: a registry served over HTTP (tools/cli_metrics.c). Fill it
 * between cli_metrics_open and cli_metrics_serve; close stops the server. */
typedef struct {
    struct joust_prom *reg;
    struct joust_prom_http *srv;
} cli_metrics;
void cli_metrics_open(cli_metrics *m);
/* Returns 0, or JOUST_E* after printing the reason (naming --metrics). */
int cli_metrics_serve(cli_metrics *m, const char *addr);
void cli_metrics_close(cli_metrics *m);
/* Where local worker i (0-based) of `joust run` serves /metrics into out
 * ("" when off): entry i of --worker-metrics, else with --metrics
 * [HOST:]PORT, HOST:PORT+1+i (port 0: each an ephemeral port). Returns 0,
 * or JOUST_EINVAL with the reason naming the option. */
int cli_worker_metrics_addr(const cli_opts *o, int i, char *out, size_t outlen, char *err,
                            size_t errlen);
/* Opens the store (creating it when create != 0), logging why on failure. */
int cli_open_store(const char *path, int create, joust_store_t **st);

/* What a pipeline call from the command needs to outlive it. */
typedef struct {
    const cli_opts *o;
    char bad_lines[PATH_MAX]; /* o->out/bad_lines.jsonl */
    uint64_t seed;          /* the run's frozen seed, handed to the workers */
    char stats_dir[64];     /* openai: where local workers leave their statistics */
    char exe[PATH_MAX];
    joust_argv worker_argv; /* "worker --judge J ..." from the option tables */
    struct joust_fetch *fetch; /* --check-remote's client */
    /* Called after cli_report for every event (benchmarks take times). */
    void (*tap)(const joust_pipe_event *ev, void *arg);
    void *tap_arg;
} cli_run;

/* Fills pc from o: the run spec, the coordinator, the local workers (o->
 * workers; their argv from the option tables), the output directory and
 * cli_report as the printer, with r as its context. manifest may be NULL.
 * Release r with cli_run_clear. Returns 0 or JOUST_EIO (no executable). */
int cli_pipeline_setup(const cli_opts *o, const char *manifest, cli_run *r,
                       joust_pipeline_config *pc);
void cli_run_clear(cli_run *r);
/* Prints a pipeline event: what was ingested, judged, scored. */
void cli_report(const joust_pipe_event *ev, void *arg);
/* Ingest (when manifest != NULL), run, score and write under o->out, with
 * o->workers local workers (0: remote ones at o->bind). Returns the exit
 * status (cli_exit_status). */
int cli_pipeline(const cli_opts *o, const char *manifest, joust_store_t *st);
/* Ingests a manifest, printing what was added; every bad line goes to
 * o->out/bad_lines.jsonl. JOUST_EINVAL when the store then holds no images
 * at all. */
int cli_ingest(const cli_opts *o, joust_store_t *st, const char *manifest);
/* Fits scores from the store alone (so NULL: defaults) and writes the
 * files (coordinator/output.h), printing the summary unless quiet; sum
 * gets the counts (its model report is freed). */
int cli_write_scores(joust_store_t *st, const char *run_name, const char *out_dir,
                     const joust_score_opts *so, joust_score_summary *sum, int quiet);

/* The openai judge's statistics (cli_openai.c): a private directory where
 * the local workers leave them (out is left empty when that fails), and
 * their sum, printed (when print), written to --judge-stats when given, and
 * the directory removed. */
void cli_openai_stats_dir(char *out, size_t outlen);
void cli_openai_report(const cli_opts *o, const char *dir, int nworkers, int print);

int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* Reads a calibration file written by `joust eval --calibration-out`
 * (cmd_eval.c). 0, or JOUST_EINVAL/JOUST_EIO after printing why. */
int cli_calibration_read(const char *path, joust_calibration *out);
int cmd_coordinator(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_scores(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_dedup(int argc, char **argv);

#endif
