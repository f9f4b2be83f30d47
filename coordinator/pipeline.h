/* The run pipeline as one library call: ingest a manifest -> create or
 * resume the run -> coordinate (with local workers under a supervisor, or
 * remote ones) -> fit the scores -> write scores.jsonl, scores.csv and
 * models.jsonl. `joust run`, `joust coordinator`, `joust demo` and the
 * benchmarks are this call plus option parsing and printing.
 *
 *   joust_pipeline_config pc;
 *   joust_pipeline_config_defaults(&pc);
 *   pc.manifest = "m.jsonl"; pc.run_name = "default"; pc.spec = ...;
 *   if (joust_pipeline_check(&pc, err, sizeof err) < 0) ... // before the store
 *   rc = joust_pipeline_run(st, &pc, &res);
 *
 * What it promises:
 * - joust_pipeline_check validates everything about the run that can be
 *   checked without the store (strategy, order, budgets, confidence, k,
 *   attempts, lease) so that a mistake is reported before anything is
 *   ingested or a run is created; joust_pipeline_run checks again first.
 * - The run is created from cfg->spec when absent. One that exists with
 *   another strategy, judge or order is JOUST_EEXIST and stays as it is
 *   (images ingested just before stay too: they belong to the store).
 * - The manifest is added to the run (run.h joust_run_add_manifest): the
 *   run covers only its manifests' images; a further manifest extends it
 *   (only the pairs its images bring are planned); one the run has already
 *   changes nothing. A run without any covers the whole store.
 * - Progress is reported through cfg->report at each step (the caller
 *   prints); the pipeline itself writes only log lines and the files.
 * - Local workers (cfg->local_workers > 0) are started once the coordinator
 *   has bound its socket, by a supervisor (supervisor.h) that restarts them
 *   and stops the run when they keep failing at start.
 * Threads: the caller's; the supervisor has its own thread.
 * Errors: 0 when the run is complete and its files are written (whether
 * failed matches fail the command is the caller's policy: res->judged.run
 * has the tally); JOUST_EJUDGE when the judge's configuration stopped it
 * (res->judged.stopped says why); JOUST_EAGAIN
 * when it stopped before completion (res says why: *stop was set, or the
 * workers failed); JOUST_EINVAL for a configuration the check rejects (or a
 * store without images); JOUST_EEXIST for a clash with an existing run;
 * other JOUST_E* codes from ingest, the coordinator, scoring or the files. */
#ifndef JOUST_PIPELINE_H
#define JOUST_PIPELINE_H
#include <stddef.h>
#include <stdio.h>

#include "coordinator.h"
#include "ingest.h"
#include "joust.pb-c.h"
#include "run.h"
#include "scoring.h"
#include "store.h"
#include "supervisor.h"

typedef enum {
    JOUST_PIPE_INGESTED = 1, /* manifest, ingest */
    JOUST_PIPE_RUN_OPENED,   /* run, retry_again (before any worker starts) */
    JOUST_PIPE_JUDGED,       /* run, judged (also when stopped early; workers have exited) */
    JOUST_PIPE_FITTED,       /* run, scores (fitted and stored; the files come next) */
    JOUST_PIPE_SCORED        /* run, scores (the files are written) */
} joust_pipe_step;

typedef struct {
    joust_pipe_step step;
    joust_store_t *st;
    const Joust__RunRecord *run;
    const char *manifest;
    const joust_ingest_stats *ingest;
    const joust_coord_summary *judged;
    uint64_t retry_again;       /* RUN_OPENED with cfg->retry_failed: failed matches re-planned */
    /* RUN_OPENED with a manifest: what adding it to the run did (run.h;
     * 0 without a manifest); ingest has its image ids. */
    joust_run_manifest_added added;
    const joust_score_summary *scores;
} joust_pipe_event;

typedef struct {
    const char *manifest;       /* ingested first when set */
    joust_ingest_opts ingest;   /* how (duplicate ids, the bad-lines file) */
    const char *run_name;
    joust_run_spec spec;        /* the run's configuration when it is created */
    joust_coord_config coord;   /* on_bound is the pipeline's when local_workers > 0 */
    int local_workers;          /* 0: workers connect from elsewhere to coord.bind */
    /* Local workers: exe, argv (after argv[0], without --connect, which the
     * pipeline adds), worker_args; workers and stop are set by the pipeline. */
    joust_supervisor_config supervisor;
    int retry_failed;           /* re-plan the run's failed matches first (tally.h) */
    /* --dedup: sign the run's images first and collapse near-duplicates
     * within each prompt (Hamming distance <= dedup_radius) before planning
     * (coordinator/dedup.h joust_dedup_collapse). */
    int dedup;
    uint32_t dedup_radius;
    const char *out_dir;        /* NULL: judge only, no fit and no files */
    joust_score_opts score;     /* how to fit (scoring.h) */
    FILE *summary;              /* the scores' summary is printed there (NULL: none) */
    void (*report)(const joust_pipe_event *ev, void *arg);
    void *report_arg;
} joust_pipeline_config;

typedef struct {
    joust_coord_summary judged;
    int complete;               /* every match has an outcome */
    int workers_failed;         /* the supervisor gave up; why says so */
    int stopped;                /* *coord.stop was set from outside */
    char why[1024];
} joust_pipeline_result;

void joust_pipeline_config_defaults(joust_pipeline_config *cfg);
/* @return 0 or JOUST_EINVAL with the reason (naming the option) in err. */
int joust_pipeline_check(const joust_pipeline_config *cfg, char *err, size_t errlen);
/* Ingests cfg->manifest (when set); JOUST_EINVAL when the store then holds
 * no image at all. *is (may be NULL): the ingest's stats. */
int joust_pipeline_ingest(joust_store_t *st, const joust_pipeline_config *cfg,
                          joust_ingest_stats *is);
/* Fits cfg->run_name's scores from the store (cfg->score) and writes the
 * files under cfg->out_dir (coordinator/output.h; created when missing),
 * printing their summary to cfg->summary; reports JOUST_PIPE_SCORED. */
int joust_pipeline_score(joust_store_t *st, const joust_pipeline_config *cfg);
/* A signing-only session (docs/dedup.md): the coordinator with
 * cfg->coord and cfg's local workers signs the unsigned images of run
 * run_name (NULL: of scope, a joust_coord_sign_scope record) and ends;
 * nothing is judged and no run record is written. res->judged has the
 * signing counts. 0 when every image is signed or given up; JOUST_EAGAIN
 * when stopped early (res says why). */
int joust_pipeline_sign(joust_store_t *st, const joust_pipeline_config *cfg, const char *run_name,
                        const Joust__RunRecord *scope, joust_pipeline_result *res);
/* All of it, in order. res may be NULL. */
int joust_pipeline_run(joust_store_t *st, const joust_pipeline_config *cfg,
                       joust_pipeline_result *res);

#endif
