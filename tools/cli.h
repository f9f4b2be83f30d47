/* Shared pieces of the `joust` command: options common to the subcommands
 * and the pipeline that `run` and `demo` share. */
#ifndef JOUST_CLI_H
#define JOUST_CLI_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "coordinator.h"
#include "judge.h"
#include "output.h"
#include "scoring.h"
#include "store.h"

#define CLI_MAX_ALLOW_ROOTS 8

typedef struct {
    const char *db, *out, *run, *judge, *order, *strategy, *bind, *connect, *name;
    uint64_t seed;
    int workers, slots, top, progress, help;
    int wait_ready_s;          /* worker: wait for the judge before READY (-1: default) */
    int prompts, per_prompt; /* demo and bench sizes */
    uint64_t images;
    uint32_t max_attempts, lease_ms, window, job_matches;
    double min_margin;
    double budget_per_image, confidence;
    uint64_t budget_calls;
    uint32_t k;
    joust_max_failed max_failed; /* --max-failed: failures that still exit 0 */
    int retry_failed;            /* --retry-failed: judge the failed matches again */
    joust_judge_config jcfg;
    joust_score_opts score; /* --device, --hard-weight */
    int min_kind;           /* --min-kind (JOUST__OUTCOME_KIND__*); 0 when not given */
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
    int duplicate_ids; /* joust_dup_ids: --duplicate-ids error|warn */
    int argc;      /* positional arguments left after the options */
    char **argv;
} cli_opts;

extern volatile sig_atomic_t cli_stop;

/* Parses options from argv[1..] (argv[0] is the subcommand). Returns 0, or
 * JOUST_EINVAL after printing the reason. */
int cli_parse(int argc, char **argv, cli_opts *o);
/* Every subcommand's start: parses the options, prints usage for --help
 * (*exit_code 0) or for a count of positional arguments outside
 * [min_args, max_args] (to stderr, *exit_code 2). Returns 1 when the
 * command goes on, 0 when it should return *exit_code. */
int cli_begin(int argc, char **argv, const char *usage, int min_args, int max_args, cli_opts *o,
              int *exit_code);
void cli_install_signals(void);
/* Reads every key option that is set (--curve-secret, --server-key,
 * --allow) once, so that a bad one is an error naming the option before
 * anything starts. Returns 0, or the first failure after printing it. */
int cli_check_keys(const cli_opts *o);
/* Image confinement by default: without --allow-root or --allow-any-path,
 * a command with a manifest confines images (at ingest and in its local
 * workers) to the manifest's folder; a worker without a manifest and with a
 * judge that reads images needs one of the two options. Returns 0, or
 * JOUST_EINVAL after printing the reason. */
int cli_image_roots(cli_opts *o, const char *manifest);
/* Opens the store (creating it when create != 0), logging why on failure. */
int cli_open_store(const char *path, int create, joust_store_t **st);

/* Ingests a manifest, printing what was added; every bad line goes to
 * o->out/bad_lines.jsonl. JOUST_EINVAL when the store then holds no images
 * at all. */
int cli_ingest(const cli_opts *o, joust_store_t *st, const char *manifest);
/* Creates or resumes the run, runs the coordinator with o->workers local
 * worker processes (none: remote workers connect to o->bind) and prints
 * what was judged. 130 when interrupted. */
int cli_coordinate(const cli_opts *o, joust_store_t *st, joust_coord_summary *cs);
/* Ingest (when manifest != NULL), create or resume the run, run the
 * coordinator with o->workers local worker processes, fit and write
 * scores.jsonl / scores.csv under o->out, print the summary. */
int cli_pipeline(const cli_opts *o, const char *manifest, joust_store_t *st);
/* Fits scores from the store alone (so NULL: defaults) and writes the
 * files (coordinator/output.h), printing the summary unless quiet. */
int cli_write_scores(joust_store_t *st, const char *run_name, const char *out_dir,
                     const joust_score_opts *so, joust_score_summary *sum, int quiet);

/* The openai judge in the command (cli_openai.c). Formatted numbers for a
 * spawned worker's argv live in a cli_openai_args until posix_spawn. */
typedef struct {
    char temp[32], max_tokens[16], top[16], inflight[16], timeout[16], retries[16], unparse[16];
    char wait_ready[16];
    char stats[128];
} cli_openai_args;
/* Appends the openai options (endpoints, model, mode, ...) for local
 * worker number i to args[k..max-1), with its statistics file under
 * stats_dir when that is not empty; returns the next free index. */
int cli_openai_worker_args(const cli_opts *o, const char *stats_dir, int i, cli_openai_args *b,
                           char **args, int k, int max);
/* The judge settings recorded with a run ("model=... mode=..."). */
void cli_openai_describe(const cli_opts *o, char *out, size_t outlen);
/* Makes a private directory for the local workers' statistics; out is
 * left empty when that fails (the summary then lacks them). */
void cli_openai_stats_dir(char *out, size_t outlen);
/* Sums the workers' statistics from dir, prints them (when print), writes
 * the sum to --judge-stats when given, and removes dir. */
void cli_openai_report(const cli_opts *o, const char *dir, int nworkers, int print);

int cmd_run(int argc, char **argv);
int cmd_coordinator(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_scores(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_keygen(int argc, char **argv);

#endif
