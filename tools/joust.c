/* The single `joust` command: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} commands[] = {
    {"run", cmd_run, "run MANIFEST: ingest, judge with local workers, fit, write scores"},
    {"eval", cmd_eval, "eval LABELS: judge human-labelled pairs, report agreement and calibration"},
    {"demo", cmd_demo, "generate a sample set with known quality order, run it, print Kendall tau"},
    {"coordinator", cmd_coordinator, "serve a run to remote workers over tcp"},
    {"worker", cmd_worker, "judge matches for a coordinator"},
    {"ingest", cmd_ingest, "add a manifest's images to the store"},
    {"scores", cmd_scores, "fit scores from the store alone and write scores.jsonl/.csv"},
    {"filter", cmd_filter, "filter MANIFEST: keep lines by score, percentile, errors, duplicates, size, fields"},
    {"export", cmd_export, "export dpo: preference pairs (TRL, Pick-a-Pic; JSONL or WebDataset tar)"},
    {"status", cmd_status, "list the runs in a store with their progress"},
    {"runs", cmd_runs, "runs [ls] | runs rm NAME: list the runs, or remove one with its outcomes"},
    {"report", cmd_report, "report: the model-quality report of a run (report.html/.json/.md)"},
    {"dedup", cmd_dedup, "dedup [MANIFEST]: sign images on workers, find near-duplicate clusters"},
    {"show", cmd_show, "show MATCH: a match's outcome and the judge's reasoning"},
    {"keygen", cmd_keygen, "keygen NAME: CURVE keypair NAME.key (0600) + NAME.pub; prints the allow-list line"},
    {"bench", cmd_bench, "benchmarks: bench scale (memory per image), bench bt (fit speed)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: joust COMMAND [options]   (joust COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].what);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("joust %s\n", JOUST_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "joust: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
