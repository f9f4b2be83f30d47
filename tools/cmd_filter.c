/* joust filter: keeps or drops a manifest's lines (coordinator/filter.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "filter.h"
#include "log.h"

static const char usage[] =
    "usage: joust filter MANIFEST --out FILE [--rejected FILE] [--db PATH] [--run NAME]\n"
    "                    [--keep PRED]... [--drop PRED]... [--where PRED]...\n"
    "Writes the lines of MANIFEST that pass to FILE, byte for byte (a manifest of the same\n"
    "format: for training or another run; compressed as FILE's name says: .gz, .zst, else\n"
    "plain), and every other line to the rejected list (default: FILE's folder/rejected.jsonl)\n"
    "as JSONL {\"line\",\"id\",\"image\",\"reason\"}. A line is kept when every --keep and\n"
    "--where holds and no --drop does. PRED is NAME or NAME OP VALUE (OP: = != < <= > >=):\n"
    "  score, rank, wins, comparisons  the run's scores (rank 1 = best in its prompt)\n"
    "  percentile                      within its prompt: 100 best .. 0 worst\n"
    "  global_percentile               over every ranked image of the run (< <= > >=)\n"
    "  status                          ranked, error or unjudged\n"
    "  error, duplicate, ranked        alone: the image failed; same content as an earlier\n"
    "                                  image, or collapsed by run --dedup; has a rank\n"
    "  width, height, aspect           the line's \"width\"/\"height\", else the image's\n"
    "                                  signature (joust dedup); aspect = width/height\n"
    "  bytes                           the image file's size\n"
    "  any other name                  the line's own field (--where: every name is one)\n"
    "A value that is unknown for a line (no score, no width) fails a --keep (the reason says\n"
    "so) and does not trigger a --drop. Scores come from --db/--run (default joust.db,\n"
    "run default; refitted when not current) and are read only when a predicate needs them.\n"
    "Examples:\n"
    "  joust filter m.jsonl --out best.jsonl --keep 'percentile>=75' --drop error --drop duplicate\n"
    "  joust filter m.jsonl.gz --out top.jsonl.gz --keep 'global_percentile>=90' --where model=sdxl\n"
    "Exit status: 0 done (also when lines were rejected), 1 failed, 2 bad options.\n";

static int need_value(int i, int argc, char **argv)
{
    if (i + 1 < argc)
        return 1;
    fprintf(stderr, "joust filter: %s needs a value\n%s", argv[i], usage);
    return 0;
}

int cmd_filter(int argc, char **argv)
{
    const char *manifest = NULL, *out = NULL, *rejected = NULL, *db = "joust.db", *run = "default";
    joust_filter_t *f = joust_filter_new();
    int code = 2;
    char err[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            code = 0;
            goto out;
        }
        joust_filter_verb verb = !strcmp(a, "--keep") ? JOUST_FILTER_KEEP
                               : !strcmp(a, "--drop") ? JOUST_FILTER_DROP
                                                      : JOUST_FILTER_WHERE;
        if (!strcmp(a, "--keep") || !strcmp(a, "--drop") || !strcmp(a, "--where")) {
            if (!need_value(i, argc, argv))
                goto out;
            if (joust_filter_add(f, verb, argv[++i], err, sizeof err) < 0) {
                fprintf(stderr, "joust filter: %s\n", err);
                goto out;
            }
        } else if (!strcmp(a, "--out") || !strcmp(a, "--rejected") || !strcmp(a, "--db") ||
                   !strcmp(a, "--run")) {
            if (!need_value(i, argc, argv))
                goto out;
            const char **dst = !strcmp(a, "--out") ? &out : !strcmp(a, "--rejected") ? &rejected
                             : !strcmp(a, "--db")  ? &db  : &run;
            *dst = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "joust filter: unknown option %s\n%s", a, usage);
            goto out;
        } else if (!manifest) {
            manifest = a;
        } else {
            fprintf(stderr, "joust filter: one manifest only (got %s and %s)\n", manifest, a);
            goto out;
        }
    }
    if (!manifest || !out) {
        fprintf(stderr, "joust filter: %s\n%s", manifest ? "--out FILE is required"
                                                         : "which manifest?", usage);
        goto out;
    }
    char rej_path[4096];
    if (!rejected) {
        const char *slash = strrchr(out, '/');
        snprintf(rej_path, sizeof rej_path, "%.*srejected.jsonl",
                 slash ? (int)(slash - out + 1) : 0, out);
        rejected = rej_path;
    }
    if (!strcmp(rejected, out)) {
        fprintf(stderr, "joust filter: --rejected and --out name the same file\n");
        goto out;
    }
    code = 1;
    joust_store_t *st = NULL;
    if (joust_filter_needs_store(f) && cli_open_store(db, 0, &st) < 0)
        goto out;
    if (!st && joust_filter_uses_store(f) && joust_store_open(db, 0, &st) < 0)
        st = NULL; /* sizes from the lines alone */
    joust_filter_io io = {.manifest = manifest, .out = out, .rejected = rejected, .st = st,
                          .run = run};
    joust_filter_stats s;
    int rc = joust_filter_run(f, &io, &s);
    joust_store_destroy(&st);
    if (rc < 0)
        goto out;
    printf("kept %" PRIu64 " of %" PRIu64 " lines in %s; %" PRIu64 " rejected, listed in %s\n",
           s.kept, s.lines, out, s.rejected, rejected);
    for (size_t i = 0; i <= s.n_preds; i++)
        if (s.by_pred[i])
            printf("  %" PRIu64 " by %s\n", s.by_pred[i],
                   i < s.n_preds ? joust_filter_pred_text(f, i) : "not a valid manifest line");
    code = 0;
out:
    joust_filter_destroy(&f);
    return code;
}
