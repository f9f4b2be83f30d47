/* ingest -> run -> coordinate (local workers supervised) -> score -> files.
 * See pipeline.h for what this promises. */
#include "pipeline.h"

#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dedup.h"
#include "err.h"
#include "grouping.h"
#include "log.h"
#include "pairing.h"
#include "output.h"
#include "records.h"
#include "tally.h"

void joust_pipeline_config_defaults(joust_pipeline_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    joust_ingest_opts_defaults(&cfg->ingest);
    joust_score_opts_defaults(&cfg->score);
    cfg->run_name = "default";
    cfg->spec.strategy = "round-robin";
    cfg->spec.judge = "quality";
    cfg->spec.order = "both";
    cfg->spec.seed = 1;
    cfg->spec.max_attempts = 3;
    cfg->spec.lease_ms = 60000;
    cfg->dedup_radius = JOUST_NEARDUP_DEFAULT_RADIUS;
    joust_coord_config_defaults(&cfg->coord);
    joust_supervisor_config_defaults(&cfg->supervisor);
}

int joust_pipeline_check(const joust_pipeline_config *cfg, char *err, size_t errlen)
{
    const joust_run_spec *s = &cfg->spec;
    joust_strategy strategy;
    joust_order_policy order;
    const char *why = NULL, *opt = NULL;
    char buf[64] = "";
    if (!cfg->run_name || !cfg->run_name[0])
        opt = "run", why = "a run needs a name";
    else if (!s->strategy || joust_strategy_parse(s->strategy, &strategy) < 0)
        opt = "strategy", why = "is not a strategy (rank/pairing.h; joust run --help lists them)";
    else if (!s->order || joust_order_policy_parse(s->order, &order) < 0)
        opt = "order", why = "is not an order (both | random | fixed)";
    else if (!s->judge || !s->judge[0])
        opt = "judge", why = "a run needs a judge";
    else if (!isfinite(s->budget_per_image) || s->budget_per_image < 0)
        opt = "budget", why = "must be a number >= 0 (0: no cap)";
    else if (!isfinite(s->confidence) || s->confidence < 0)
        opt = "confidence", why = "must be a number > 0 (0: the default 0.95)";
    else if (s->group_all && s->group_by && s->group_by[0])
        opt = "group-by", why = "and --group all exclude each other";
    else if (s->group_by && !s->group_by[0])
        opt = "group-by", why = "needs a manifest field name";
    else if (s->max_attempts < 1)
        opt = "max-attempts", why = "must be >= 1";
    else if (s->lease_ms < 100)
        opt = "lease-ms", why = "must be >= 100";
    else if (cfg->coord.window < 1)
        opt = "window", why = "must be >= 1";
    else if (cfg->coord.job_matches < 1)
        opt = "job-matches", why = "must be >= 1";
    else if (cfg->local_workers < 0 || cfg->local_workers > 256)
        opt = "workers", why = "must be in 0..256";
    else if (cfg->dedup && (s->group_all || (s->group_by && s->group_by[0])))
        opt = "dedup", why = "collapses near-duplicates within prompts: it does not combine with "
                             "--group or --group-by yet";
    else if (cfg->dedup && cfg->dedup_radius > 63)
        opt = "radius", why = "must be in 0..63 (bits of the 64-bit hash)";
    else if (cfg->local_workers && !cfg->supervisor.exe)
        opt = "workers", why = "local workers need the program to start";
    if (!why)
        return 0;
    if (!strcmp(opt, "strategy"))
        snprintf(buf, sizeof buf, "%.40s", s->strategy ? s->strategy : "");
    else if (!strcmp(opt, "order"))
        snprintf(buf, sizeof buf, "%.40s", s->order ? s->order : "");
    if (buf[0])
        snprintf(err, errlen, "--%s: '%s' %s", opt, buf, why);
    else
        snprintf(err, errlen, "--%s: %s", opt, why);
    return JOUST_EINVAL;
}

static void emit(const joust_pipeline_config *cfg, joust_pipe_event *ev)
{
    if (cfg->report)
        cfg->report(ev, cfg->report_arg);
}

int joust_pipeline_ingest(joust_store_t *st, const joust_pipeline_config *cfg,
                          joust_ingest_stats *out)
{
    if (!cfg->manifest)
        return 0;
    joust_ingest_stats own, *isp = out ? out : &own, is;
    int rc = joust_ingest_with(st, cfg->manifest, &cfg->ingest, isp);
    is = *isp;
    if (rc < 0) {
        log_error("cannot ingest %s: %s", cfg->manifest, joust_strerror(rc));
        return rc;
    }
    joust_pipe_event ev = {.step = JOUST_PIPE_INGESTED, .st = st, .manifest = cfg->manifest,
                           .ingest = &is};
    emit(cfg, &ev);
    uint64_t next_image;
    if ((rc = joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &next_image)) < 0)
        return rc;
    if (next_image == 1) {
        log_error("%s has no valid images: nothing to rank", cfg->manifest);
        return JOUST_EINVAL;
    }
    return 0;
}

int joust_pipeline_score(joust_store_t *st, const joust_pipeline_config *cfg)
{
    Joust__RunRecord *run;
    int rc = joust_run_open(st, cfg->run_name, NULL, &run);
    if (rc < 0) {
        log_error("run '%s': %s", cfg->run_name, joust_strerror(rc));
        return rc;
    }
    /* What judging left behind goes back before the fit's peak of memory:
     * the memtables (written to SST files, as at close) and the heap's
     * free pages (the coordinator's in-flight state). */
    joust_store_flush(st);
    malloc_trim(0);
    joust_score_summary sum;
    joust_score_table *table = NULL;
    if ((rc = joust_scores_fit(st, run, &cfg->score, &sum, &table)) == 0) {
        joust_pipe_event fitted = {.step = JOUST_PIPE_FITTED, .st = st, .run = run, .scores = &sum};
        emit(cfg, &fitted);
        if (joust_run_grouped(run)) { /* its files come from the stored scores */
            rc = joust_scores_store(st, run, table, &sum.write_s);
            if (rc == 0)
                rc = joust_output_files(st, run, &sum, table, cfg->out_dir);
        } else { /* the scores are stored while the files are written from the table */
            joust_scores_storer_t *w;
            joust_scores_store_start(st, run, table, &w);
            rc = joust_output_files(st, run, &sum, table, cfg->out_dir);
            int wrc = joust_scores_store_join(&w, &sum.write_s);
            if (rc == 0)
                rc = wrc;
        }
        if (rc == 0 && cfg->summary)
            joust_output_report(st, run, &sum, cfg->out_dir, cfg->summary);
    }
    joust_score_table_destroy(&table);
    if (rc == 0) {
        joust_pipe_event ev = {.step = JOUST_PIPE_SCORED, .st = st, .run = run, .scores = &sum};
        emit(cfg, &ev);
    }
    joust_score_summary_clear(&sum);
    if (rc < 0)
        log_error("run '%s': scoring failed: %s", run->name, joust_strerror(rc));
    joust_rec_free(run);
    return rc;
}

typedef struct {
    const joust_pipeline_config *cfg;
    joust_supervisor_t *sup;
    char endpoint[256];
} local_ctx;

/* Worker i: --connect <the bound endpoint>, then the caller's own. */
static void local_args(int i, joust_argv *a, void *arg)
{
    local_ctx *lc = arg;
    joust_argv_add(a, "--connect");
    joust_argv_add(a, lc->endpoint);
    if (lc->cfg->supervisor.worker_args)
        lc->cfg->supervisor.worker_args(i, a, lc->cfg->supervisor.worker_args_arg);
}

static void on_bound(const char *endpoint, void *arg)
{
    local_ctx *lc = arg;
    snprintf(lc->endpoint, sizeof lc->endpoint, "%s", endpoint);
    joust_supervisor_config sc = lc->cfg->supervisor;
    sc.workers = lc->cfg->local_workers;
    sc.stop = lc->cfg->coord.stop;
    sc.worker_args = local_args;
    sc.worker_args_arg = lc;
    if (joust_supervisor_start(&sc, &lc->sup) < 0 && sc.stop)
        *sc.stop = 1; /* logged; without workers the run cannot go on */
}

/* The coordinator on run_name with cfg's local workers (started once it
 * has bound its socket): fills res's judged, complete, workers_failed and
 * stopped. */
static int coordinate(joust_store_t *st, const joust_pipeline_config *cfg, const char *run_name,
                      joust_coord_config *cc, joust_pipeline_result *res)
{
    local_ctx lc = {.cfg = cfg};
    if (cfg->local_workers) {
        cc->on_bound = on_bound;
        cc->on_bound_arg = &lc;
        cc->drain_ms = 0; /* the supervisor reaps them instead */
    }
    int rc = joust_coordinator_run(st, run_name, cc, &res->judged);
    joust_supervisor_t *sup = lc.sup;
    if (sup) {
        res->workers_failed = joust_supervisor_failed(sup, res->why, sizeof res->why);
        joust_supervisor_destroy(&sup);
    } else if (cfg->local_workers && rc >= 0 && !res->judged.complete) {
        res->workers_failed = 1;
        snprintf(res->why, sizeof res->why, "the local workers could not be started");
    }
    res->complete = rc >= 0 && res->judged.complete;
    res->stopped = !res->complete && !res->workers_failed && cc->stop && *cc->stop;
    return rc;
}

int joust_pipeline_sign(joust_store_t *st, const joust_pipeline_config *cfg, const char *run_name,
                        const Joust__RunRecord *scope, joust_pipeline_result *res)
{
    memset(res, 0, sizeof *res);
    joust_coord_config cc = cfg->coord;
    cc.sign = JOUST_SIGN_ONLY;
    cc.sign_scope = scope;
    int rc = coordinate(st, cfg, run_name, &cc, res);
    if (rc >= 0 && !res->complete) {
        log_error("signing stopped before every image was signed: %s",
                  res->workers_failed ? res->why : "interrupted");
        rc = JOUST_EAGAIN;
    }
    return rc;
}

int joust_pipeline_run(joust_store_t *st, const joust_pipeline_config *cfg,
                       joust_pipeline_result *res)
{
    joust_pipeline_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    char err[512];
    int rc = joust_pipeline_check(cfg, err, sizeof err);
    if (rc < 0) {
        log_error("%s", err);
        return rc;
    }
    joust_ingest_stats is;
    if ((rc = joust_pipeline_ingest(st, cfg, &is)) < 0)
        return rc;
    Joust__RunRecord *run;
    if ((rc = joust_run_open(st, cfg->run_name, &cfg->spec, &run)) < 0)
        return rc;
    joust_pipe_event ev = {.step = JOUST_PIPE_RUN_OPENED, .st = st, .run = run,
                           .manifest = cfg->manifest, .ingest = cfg->manifest ? &is : NULL};
    if (cfg->manifest &&
        (rc = joust_run_add_manifest(st, run, is.manifest_hash, is.first_image, is.end_image,
                                     !is.already_ingested, cfg->manifest, &ev.added)) < 0) {
        log_error("run '%s': cannot add manifest %s: %s", cfg->run_name, cfg->manifest,
                  joust_strerror(rc));
        joust_rec_free(run);
        return rc;
    }
    if (!cfg->manifest && run->n_manifests == 0)
        log_info("run '%s' has no manifest: it covers every image in the store", run->name);
    if (cfg->retry_failed &&
        (rc = joust_coord_retry_failed(st, cfg->run_name, &ev.retry_again)) < 0) {
        log_error("run '%s': cannot re-plan its failed matches: %s", cfg->run_name,
                  joust_strerror(rc));
        joust_rec_free(run);
        return rc;
    }
    emit(cfg, &ev);
    joust_coord_config cc = cfg->coord;
    uint32_t radius = cfg->dedup_radius;
    if (cfg->dedup) { /* sign, collapse near-duplicates within prompts, then plan */
        cc.sign = JOUST_SIGN_FIRST;
        cc.after_signing = joust_dedup_collapse;
        cc.after_signing_arg = &radius;
    }
    rc = coordinate(st, cfg, cfg->run_name, &cc, res);
    ev = (joust_pipe_event){.step = JOUST_PIPE_JUDGED, .st = st, .run = run, .judged = &res->judged};
    emit(cfg, &ev);
    if (rc >= 0 && !res->complete) {
        if (res->workers_failed)
            log_error("run '%s' stopped: %s", cfg->run_name, res->why);
        else
            log_warn("run '%s' stopped before completion: %" PRIu64 " of %" PRIu64
                     " planned matches have no outcome yet; run the same command again to resume",
                     cfg->run_name,
                     res->judged.run.planned - res->judged.run.counts.ok - res->judged.run.counts.failed,
                     res->judged.run.planned);
        rc = JOUST_EAGAIN;
    }
    if (rc == 0 && cfg->out_dir)
        rc = joust_pipeline_score(st, cfg);
    joust_rec_free(run);
    return rc;
}
