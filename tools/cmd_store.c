/* Subcommands that read or fill the store: ingest, scores, export, status. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
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
        "                    [--hard-weight W]\n"
        "Fits the scores of a run again from the store alone and writes\n"
        "DIR/scores.jsonl and DIR/scores.csv (the same files `joust run` writes).\n"
        "  --device D       where the image-level fit runs: cuda (needs a CUDA build and a\n"
        "                   GPU), cpu, or auto (default: cuda when usable, else cpu)\n"
        "  --hard-weight W  weight of hard outcomes (answer text only, no logprobs) in the\n"
        "                   fit; 0 leaves them out; default 1\n";
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
        "                        [--min-kind soft|bounded|hard] [--hard-weight W]\n"
        "Writes the best and the worst image of each prompt as a chosen/rejected pair\n"
        "(JSONL: prompt, chosen, rejected, their ids and scores, margin, p_chosen),\n"
        "skipping prompts whose score margin is below X (default 0).\n"
        "FILE defaults to dpo.jsonl. The pairs come from a fit over the OK outcomes of\n"
        "kind K or stronger (soft > bounded > hard; default soft: p from logprobs only);\n"
        "stored scores are reused when they are current for these options, else the\n"
        "run is fitted again and its scores rewritten.\n";
    int code;
    if (!cli_begin(argc, argv, usage, 1, 1, &o, &code))
        return code;
    if (strcmp(o.argv[0], "dpo")) {
        fprintf(stderr, "joust export: unknown format '%s' (known: dpo)\n", o.argv[0]);
        return 2;
    }
    o.score.min_kind = o.min_kind ? o.min_kind : JOUST__OUTCOME_KIND__SOFT;
    const char *path = strcmp(o.out, ".") ? o.out : "dpo.jsonl";
    joust_store_t *st;
    if (cli_open_store(o.db, 0, &st) < 0)
        return 1;
    Joust__RunRecord *run;
    int rc = joust_run_open(st, o.run, NULL, &run);
    if (rc < 0) {
        log_error("run '%s': %s", o.run, joust_strerror(rc));
    } else {
        uint64_t pairs;
        joust_score_summary sum;
        int refitted = 0;
        /* The export never reads scores older than the outcomes, and never
         * rewrites scores that are current. */
        if ((rc = joust_scores_ensure(st, run, &o.score, &sum, &refitted)) == 0 &&
            (rc = joust_export_dpo(st, run, path, o.min_margin, &pairs)) == 0) {
            printf("wrote %" PRIu64 " chosen/rejected pairs to %s (scores %s)\n", pairs, path,
                   refitted ? "fitted again" : "current, reused");
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
