/* Verifies a finished run straight from its store: every planned match has
 * exactly one committed outcome (and no outcome lacks a planned match), and
 * the fitted order per prompt agrees with the manifest's latent utilities
 * (mean Kendall tau >= --min-tau). Prints what it found; exit 0 = pass. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "records.h"
#include "run.h"
#include "output.h"
#include "store.h"
#include "xalloc.h"

typedef struct {
    double tau_sum;
    int prompts;
} tau_ctx;

static int tau_prompt(const joust_scored_prompt *sp, void *arg)
{
    tau_ctx *t = arg;
    double *s = xmalloc((sp->n + 1) * sizeof *s), *u = xmalloc((sp->n + 1) * sizeof *u);
    size_t n = 0;
    for (size_t i = 0; i < sp->n; i++)
        if (sp->items[i].score && sp->items[i].score->has_score && sp->items[i].img->has_latent) {
            s[n] = sp->items[i].score->score;
            u[n++] = sp->items[i].img->latent;
        }
    if (n >= 2) {
        t->tau_sum += joust_kendall_tau(n, s, u);
        t->prompts++;
    }
    free(s);
    free(u);
    return 0;
}

static int pair_cmp(const void *x, const void *y)
{
    const uint64_t *a = x, *b = y;
    return a[0] != b[0] ? (a[0] > b[0]) - (a[0] < b[0]) : (a[1] > b[1]) - (a[1] < b[1]);
}

/* Walks matches and outcomes side by side (both keyed run ‖ match id). */
static int check_exactly_once(joust_store_t *st, uint32_t run_id, uint64_t *planned)
{
    *planned = 0;
    joust_rec_cursor_t *mi, *oi;
    if (joust_rec_cursor_new(st, JOUST_REC_MATCHES, run_id, &mi) ||
        joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, run_id, &oi))
        return 1;
    uint64_t missing = 0, orphan = 0, npairs = 0, cap = 0, twice = 0;
    uint64_t(*pairs)[2] = NULL; /* (first, second) of every match */
    while (joust_rec_cursor_valid(mi) || joust_rec_cursor_valid(oi)) {
        uint64_t m = joust_rec_cursor_valid(mi) ? joust_rec_cursor_id(mi) : UINT64_MAX;
        uint64_t o = joust_rec_cursor_valid(oi) ? joust_rec_cursor_id(oi) : UINT64_MAX;
        Joust__MatchRecord *mr = m <= o ? joust_rec_cursor_match(mi) : NULL;
        if (mr) {
            if (npairs == cap)
                pairs = xrealloc(pairs, (cap = cap ? 2 * cap : 1024) * sizeof *pairs);
            pairs[npairs][0] = mr->first;
            pairs[npairs++][1] = mr->second;
            joust_rec_free(mr);
        }
        if (m == o) {
            (*planned)++;
            joust_rec_cursor_next(mi);
            joust_rec_cursor_next(oi);
        } else if (m < o) {
            (*planned)++;
            missing++;
            joust_rec_cursor_next(mi);
        } else {
            orphan++;
            joust_rec_cursor_next(oi);
        }
    }
    joust_rec_cursor_destroy(&mi);
    joust_rec_cursor_destroy(&oi);
    /* no ordered pair planned (and so judged) twice */
    qsort(pairs, npairs, sizeof *pairs, pair_cmp);
    for (uint64_t i = 1; i < npairs; i++)
        twice += pairs[i][0] == pairs[i - 1][0] && pairs[i][1] == pairs[i - 1][1];
    free(pairs);
    printf("planned %" PRIu64 " matches; without outcome %" PRIu64 "; outcomes without a match %" PRIu64
           "; ordered pairs planned twice %" PRIu64 "\n", *planned, missing, orphan, twice);
    return missing || orphan || twice || *planned == 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: check_run DB RUN [MIN_TAU] [EXPECTED_MATCHES]\n");
        return 2;
    }
    double min_tau = argc > 3 ? atof(argv[3]) : 0.9;
    joust_store_t *st;
    Joust__RunRecord *run;
    if (joust_store_open(argv[1], 0, &st) < 0 || joust_run_open(st, argv[2], NULL, &run) < 0) {
        fprintf(stderr, "check_run: cannot open run %s in %s\n", argv[2], argv[1]);
        return 1;
    }
    uint64_t planned = 0;
    int bad = check_exactly_once(st, run->run_id, &planned);
    if (argc > 4 && planned != strtoull(argv[4], NULL, 10)) {
        printf("expected %s planned matches\n", argv[4]);
        bad = 1;
    }
    /* The counts in the run record are written with the outcomes they
     * count: after any crash they must equal a fresh count. */
    joust_run_counts kept = {0}, scanned = {0};
    int counted = run->has_outcomes_ok && joust_rec_run_counts(st, run, &kept) == 0 &&
                  joust_rec_run_counts_scan(st, run->run_id, &scanned) == 0;
    if (!counted || memcmp(&kept, &scanned, sizeof kept)) {
        printf("run record counts (ok %" PRIu64 ", failed %" PRIu64 ") differ from its outcomes "
               "(ok %" PRIu64 ", failed %" PRIu64 ")\n", kept.ok, kept.failed, scanned.ok,
               scanned.failed);
        bad = 1;
    }
    /* A run's outcome log is written in the outcomes' batches: after any
     * crash its replay must equal the outcome family. */
    uint64_t differ = 0;
    if (joust_rec_run_has_log(run) && (joust_rec_outlog_verify(st, run, &differ) < 0 || differ)) {
        printf("outcome log differs from the outcomes at %" PRIu64 " match ids\n", differ);
        bad = 1;
    }
    if (!run->complete) {
        printf("run is not marked complete\n");
        bad = 1;
    }
    tau_ctx t = {0};
    joust_scores_walk(st, run, tau_prompt, &t);
    double tau = t.prompts ? t.tau_sum / t.prompts : 0;
    printf("mean Kendall tau vs latent over %d prompts: %.4f (need >= %.2f)\n", t.prompts, tau, min_tau);
    if (tau < min_tau)
        bad = 1;
    joust_rec_free(run);
    joust_store_destroy(&st);
    printf("%d passed, %d failed\n", bad ? 0 : 1, bad ? 1 : 0);
    return bad;
}
