/* Subcommands that read or fill the store: ingest, scores, export, status. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "export_dpo.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "run.h"
#include "tally.h"

int cmd_ingest(int argc, char **argv)
{
    cli_opts o;
    const char *usage = "usage: joust ingest MANIFEST [--db PATH] [--out DIR] [--duplicate-ids P]\n"
                        "Adds the manifest's images to the store; bad lines are skipped and listed\n"
                        "with their line numbers and reasons in DIR/bad_lines.jsonl (default .).\n"
                        "A line whose id an earlier image has: P error (default) skips it,\n"
                        "warn keeps it under a generated id #N. A manifest already ingested is\n"
                        "skipped. --check-remote: a HEAD request per http(s)/s3 image (with\n"
                        "--s3-endpoint URL); a 404 or 403 is a bad line; nothing is downloaded.\n";
    int code;
    if (!cli_begin(argc, argv, usage, 1, 1, &o, &code))
        return code;
    joust_store_t *st;
    if (cli_open_store(o.db, 1, &st) < 0)
        return 1;
    int rc = cli_ingest(&o, st, o.argv[0]);
    joust_store_destroy(&st);
    return rc == 0 ? 0 : 1;
}

int cmd_scores(int argc, char **argv)
{
    cli_opts o;
    const char *usage =
        "usage: joust scores [--db PATH] [--run NAME] [--out DIR] [--device auto|cpu|cuda]\n"
        "                    [--hard-weight W] [--outcomes auto|scan|log]\n"
        "Fits the scores of a run again from the store alone and writes\n"
        "DIR/scores.jsonl and DIR/scores.csv (the same files `joust run` writes).\n"
        "  --device D       where the image-level fit runs: cuda (needs a CUDA build and a\n"
        "                   GPU), cpu, or auto (default: cuda when usable, else cpu)\n"
        "  --hard-weight W  weight of hard outcomes (answer text only, no logprobs) in the\n"
        "                   fit; 0 leaves them out; default 1\n"
        "  --outcomes HOW   read the outcomes from the run's outcome log (log), by a scan\n"
        "                   of its outcome records (scan), or auto (default: the log\n"
        "                   when the run has one); the same scores either way\n";
    int code;
    if (!cli_begin(argc, argv, usage, 0, 0, &o, &code))
        return code;
    joust_store_t *st;
    if (cli_open_store(o.db, 0, &st) < 0)
        return 1;
    joust_score_summary sum;
    if (o.min_kind)
        o.score.min_kind = o.min_kind;
    int rc = cli_write_scores(st, o.run, o.out, &o.score, &sum, 0);
    joust_store_destroy(&st);
    return rc == 0 ? 0 : 1;
}

int cmd_export(int argc, char **argv)
{
    cli_opts o;
    const char *usage =
        "usage: joust export dpo [--db PATH] [--run NAME] [--out FILE] [--min-margin X]\n"
        "                        [--pairs best-worst|best-each|all|top-k] [--k N]\n"
        "                        [--layout trl|pickapic] [--format jsonl|wds]\n"
        "                        [--min-kind soft|bounded|hard] [--hard-weight W]\n"
        "Writes preference pairs per prompt from the run's scores (docs/export.md):\n"
        "--pairs picks them (default best-worst; top-k: the --k best (default 2) vs\n"
        "the k worst), only those with a score margin of at least X (default 0.1;\n"
        "never 0). --layout trl: JSONL prompt, chosen, rejected (+ ids, scores,\n"
        "margin, p_chosen); pickapic: caption, jpg_0, jpg_1, label_0, label_1.\n"
        "--format wds: a WebDataset tar, per pair KEY.json and the two images.\n"
        "FILE defaults to dpo.jsonl (dpo.tar for wds). The scores come from a fit\n"
        "over the OK outcomes of kind K or stronger (soft > bounded > hard; default\n"
        "soft: p from logprobs only); stored scores are reused when they are current\n"
        "for these options, else the run is fitted again and its scores rewritten.\n";
    int code;
    if (!cli_begin(argc, argv, usage, 1, 1, &o, &code))
        return code;
    if (strcmp(o.argv[0], "dpo")) {
        fprintf(stderr, "joust export: unknown format '%s' (known: dpo)\n", o.argv[0]);
        return 2;
    }
    o.score.min_kind = o.min_kind ? o.min_kind : JOUST__OUTCOME_KIND__SOFT;
    joust_dpo_opts dpo;
    joust_dpo_opts_defaults(&dpo);
    dpo.min_margin = o.min_margin;
    dpo.wds = !strcmp(o.dpo_format, "wds");
    if (o.k)
        dpo.k = o.k;
    if (joust_dpo_layout_parse(o.dpo_layout, &dpo.layout) < 0 ||
        joust_dpo_policy_parse(o.dpo_pairs, &dpo.policy) < 0)
        return 2; /* the option table already refused anything else */
    const char *path = strcmp(o.out, ".") ? o.out : dpo.wds ? "dpo.tar" : "dpo.jsonl";
    joust_store_t *st;
    if (cli_open_store(o.db, 0, &st) < 0)
        return 1;
    Joust__RunRecord *run;
    int rc = joust_run_open(st, o.run, NULL, &run);
    if (rc < 0) {
        log_error("run '%s': %s", o.run, joust_strerror(rc));
    } else {
        joust_dpo_stats ds;
        joust_score_summary sum;
        int refitted = 0;
        /* The export never reads scores older than the outcomes, and never
         * rewrites scores that are current. */
        if ((rc = joust_scores_ensure(st, run, &o.score, &sum, &refitted)) == 0 &&
            (rc = joust_export_dpo(st, run, path, &dpo, &ds)) == 0) {
            printf("wrote %" PRIu64 " pairs from %" PRIu64 " prompts to %s (scores %s)\n",
                   ds.pairs, ds.prompts, path, refitted ? "fitted again" : "current, reused");
            if (ds.skipped) {
                printf("%" PRIu64 " pairs left out: an image could not be read (logged)\n",
                       ds.skipped);
                rc = JOUST_EIO;
            }
            if (refitted && sum.outcomes_left_out)
                printf("%" PRIu64 " ok outcomes weaker than --min-kind %s were left out\n",
                       sum.outcomes_left_out, joust_kind_name(o.score.min_kind));
        }
        joust_score_summary_clear(&sum);
        joust_rec_free(run);
    }
    joust_store_destroy(&st);
    return rc == 0 ? 0 : 1;
}

typedef struct {
    joust_store_t *st;
    int rc;
} status_ctx;

static void print_run(const Joust__RunRecord *r, void *arg)
{
    status_ctx *s = arg;
    joust_coord_tally t;
    int rc = joust_coord_tally_read(s->st, r, &t);
    if (rc < 0) {
        s->rc = rc;
        log_error("run '%s': cannot count its outcomes: %s", r->name, joust_strerror(rc));
        return;
    }
    const joust_run_counts n = t.counts;
    printf("%-16s %4u  %-12s %-8s %-6s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 "  %s\n", r->name,
           r->run_id, r->strategy, r->judge, r->order, r->next_match_id - 1, n.ok, n.failed,
           r->complete ? "complete" : r->planning_done ? "judging" : "planning");
    joust_coord_tally_print(&t, stdout); /* failure classes, one example each */
    if (r->paused && !r->complete)
        printf("%-16s %s\n", "", r->paused);
}

int cmd_status(int argc, char **argv)
{
    cli_opts o;
    const char *usage = "usage: joust status [--db PATH]\nLists the runs in the store with their progress "
                        "(also while a coordinator runs on it:\nthe store is opened read-only).\n";
    int code;
    if (!cli_begin(argc, argv, usage, 0, 0, &o, &code))
        return code;
    joust_store_t *st;
    if (cli_open_store(o.db, JOUST_STORE_READONLY, &st) < 0)
        return 1;
    uint64_t images, prompts;
    joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &images);
    joust_rec_counter_get(st, JOUST_NEXT_PROMPT, &prompts);
    printf("%s: %" PRIu64 " images in %" PRIu64 " prompts\n", o.db, images - 1, prompts - 1);
    printf("%-16s %4s  %-12s %-8s %-6s %10s %10s %8s  %s\n", "run", "id", "strategy", "judge",
           "order", "planned", "ok", "failed", "state");
    status_ctx s = {st, 0};
    int rc = joust_rec_run_each(st, print_run, &s);
    if (rc == 0)
        rc = s.rc;
    joust_store_destroy(&st);
    return rc == 0 ? 0 : 1;
}
