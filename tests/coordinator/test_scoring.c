/* Scoring from a hand-made store (coordinator/scoring.h, output.h): the
 * bulk fit equals the per-prompt fit to 1e-9 (p values that are floats and
 * p values that are not), error images, ties, prompts
 * without outcomes or over JOUST_BT_BULK_SMALL images, outcomes committed
 * out of prompt order, outcome kinds (--min-kind, --hard-weight), the
 * currency marker (an export does not rewrite current scores), the device
 * choice, outputs that survive a failed write, the files written from
 * the fit's table equal to those written from the store, and score records
 * by bulk load equal to those by puts (and a failed or killed load that
 * leaves no marker, repaired by the next fit). With JOUST set to the
 * joust binary it also checks `joust show` (the kind), `joust export dpo`
 * (reuse vs refit) and `joust scores --device cuda` without a GPU. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bt.h"
#include "bytes.h"
#include "check.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "export_dpo.h"
#include "output.h"
#include "prompt_fit.h"
#include "records.h"
#include "run.h"
#include "scoring.h"
#include "tally.h"
#include "testfs.h"
#include "xalloc.h"

enum { NPROMPTS = 5 };
#define QUIET (JOUST_LOG_ERROR - 1) /* for errors the test provokes */
/* Images per prompt: 5 (two models), 4 (one image fails), 3 (all ties),
 * 2 (no outcomes), 700 (over JOUST_BT_BULK_SMALL: the large-prompt path;
 * its 1400 outcomes fill whole pages, which the fit gives back as it goes). */
static const int PER[NPROMPTS] = {5, 4, 3, 2, 700};

typedef struct {
    uint64_t pid, first, second; /* image ids */
    int status, kind;            /* kind 0: absent (reads as soft) */
    double p;
    uint64_t failed;
} fx_outcome;

typedef struct {
    uint64_t pid[NPROMPTS];
    uint64_t *ids[NPROMPTS];
    size_t n[NPROMPTS];
    fx_outcome *o;
    size_t no;
} fixture;

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* A manifest whose last prompt's images are interleaved with the first's,
 * so a prompt's image ids are not always adjacent. */
static void write_manifest(const char *path)
{
    FILE *f = fopen(path, "w");
    for (int p = 0; p < NPROMPTS - 1; p++)
        for (int i = 0; i < PER[p]; i++) {
            fprintf(f, "{\"image\":\"img/p%d_%d.png\",\"prompt\":\"prompt %d\",\"id\":\"p%d_%d\","
                       "\"model\":\"m%d\"}\n", p, i, p, p, i, i % 2);
            if (p == 0)
                fprintf(f, "{\"image\":\"img/p4_%d.png\",\"prompt\":\"prompt 4\",\"id\":\"p4_%d\"}\n",
                        i, i);
        }
    for (int i = PER[0]; i < PER[4]; i++)
        fprintf(f, "{\"image\":\"img/p4_%d.png\",\"prompt\":\"prompt 4\",\"id\":\"p4_%d\"}\n", i, i);
    fclose(f);
}

/* p values that are floats (k/64): one edge each in the bulk fit. */
static double dyadic(uint64_t *s)
{
    return (double)(lcg(s) % 65) / 64.0;
}

static void make_outcomes(fixture *fx)
{
    uint64_t s = 42;
    size_t cap = 0;
    for (int p = 0; p < NPROMPTS; p++) {
        const uint64_t *id = fx->ids[p];
        size_t n = fx->n[p];
        if (p == 3)
            continue; /* planned, never judged */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                if (i == j || (n > 10 && j != (i + 1) % n && j != (i + 7) % n))
                    continue;
                xgrow((void **)&fx->o, &cap, fx->no + 1, sizeof *fx->o);
                fx_outcome o = {fx->pid[p], id[i], id[j], JOUST__OUTCOME_STATUS__OK, 0, 0, 0};
                if (p == 2) {
                    o.p = 0.5; /* ties everywhere */
                } else {
                    /* Prompt 1: p values that are floats; the others: any double. */
                    o.p = p == 1 ? dyadic(&s) : (double)(lcg(&s) % 1000003) / 1000003.0;
                    unsigned r = (unsigned)(lcg(&s) % 6);
                    o.kind = r == 0 ? JOUST__OUTCOME_KIND__HARD
                             : r == 1 ? JOUST__OUTCOME_KIND__BOUNDED
                             : r == 2 ? JOUST__OUTCOME_KIND__SOFT : 0;
                    if (o.kind == JOUST__OUTCOME_KIND__HARD)
                        o.p = o.p >= 0.5 ? 1.0 : 0.0;
                }
                if (p == 1 && (i == 3 || j == 3)) { /* image 3 of prompt 1 cannot be read */
                    o.status = JOUST__OUTCOME_STATUS__IMAGE_ERROR;
                    o.failed = id[3];
                }
                if (p == 0 && i == 1 && j == 2) /* a failure that names no image */
                    o.status = JOUST__OUTCOME_STATUS__UNPARSEABLE;
                fx->o[fx->no++] = o;
            }
    }
}

/* Writes run `name` with the fixture's outcomes under match ids 1..; with
 * interleave, match ids alternate between prompts (as batch strategies
 * commit them) while each prompt keeps its outcomes' relative order. */
static int write_unlogged; /* write_run makes a run as an older joust did: no outcome log */

static void write_run(joust_store_t *st, const char *name, const fixture *fx, int interleave)
{
    joust_run_spec spec = {"round-robin", "sim", "both", 1, 3, 60000, "", 0, 0, 0, 0, NULL, 0};
    Joust__RunRecord *run;
    CHECK_RC(joust_run_open(st, name, &spec, &run));
    if (write_unlogged)
        run->has_outcome_log = run->outcome_log = 0;
    size_t *order = xmalloc(fx->no * sizeof *order), k = 0;
    if (!interleave) {
        for (size_t i = 0; i < fx->no; i++)
            order[k++] = i;
    } else { /* round robin over prompts */
        size_t pos[NPROMPTS] = {0};
        while (k < fx->no)
            for (int p = 0; p < NPROMPTS; p++)
                for (size_t i = pos[p]; i < fx->no; i++)
                    if (fx->o[i].pid == fx->pid[p]) {
                        order[k++] = i;
                        pos[p] = i + 1;
                        break;
                    } else if (i + 1 == fx->no) {
                        pos[p] = fx->no;
                    }
    }
    joust_batch_t *b = joust_batch_new();
    for (size_t m = 0; m < fx->no; m++) {
        const fx_outcome *x = &fx->o[order[m]];
        Joust__MatchRecord mr = JOUST__MATCH_RECORD__INIT;
        mr.prompt_id = x->pid;
        mr.first = x->first;
        mr.second = x->second;
        joust_rec_match_put(b, run->run_id, m + 1, &mr);
        Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
        o.prompt_id = x->pid;
        o.first = x->first;
        o.second = x->second;
        o.status = (Joust__OutcomeStatus)x->status;
        if (x->status == JOUST__OUTCOME_STATUS__OK) {
            o.has_p_first = 1;
            o.p_first = x->p;
        }
        o.has_kind = x->kind != 0;
        o.kind = (Joust__OutcomeKind)x->kind;
        o.has_failed_image_id = x->failed != 0;
        o.failed_image_id = x->failed;
        o.error = x->failed ? "image p1_3 could not be decoded" : NULL;
        joust_rec_outcome_put(b, run, m + 1, &o, NULL, NULL);
    }
    run->plan_cursor = NPROMPTS + 1;
    run->has_plan_cursor = run->has_planning_done = run->has_next_match_id = run->has_complete = 1;
    run->planning_done = run->complete = 1;
    run->next_match_id = fx->no + 1;
    joust_rec_run_put(b, run);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    joust_rec_free(run);
    free(order);
}

static void build(const char *dir, fixture *fx)
{
    char path[512];
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    write_manifest(path);
    joust_store_t *st;
    char db[512];
    snprintf(db, sizeof db, "%s/db", dir);
    CHECK_RC(joust_store_open(db, 1, &st));
    joust_ingest_stats is;
    joust_log_set_level(JOUST_LOG_ERROR); /* the image files do not exist */
    CHECK_RC(joust_ingest(st, path, &is));
    joust_log_set_level(JOUST_LOG_WARN);
    /* Prompt ids follow first appearance: prompt 4 comes second. */
    static const uint64_t pid[NPROMPTS] = {1, 3, 4, 5, 2};
    for (int p = 0; p < NPROMPTS; p++) {
        fx->pid[p] = pid[p];
        CHECK_RC(joust_rec_prompt_members(st, fx->pid[p], &fx->ids[p], &fx->n[p]));
        CHECK(fx->n[p] == (size_t)PER[p]);
    }
    make_outcomes(fx);
    write_run(st, "r1", fx, 0);
    write_run(st, "r2", fx, 1);
    joust_store_destroy(&st);
}

static uint32_t local(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return (uint32_t)i;
    return UINT32_MAX;
}

/* The per-prompt reference: joust_bt_fit over the prompt's OK outcomes that
 * opts keeps, in match order, weighted as opts says; compares every stored
 * score record of the prompt with it. */
static void check_prompt(joust_store_t *st, uint32_t run_id, const fixture *fx, int p,
                         const joust_score_opts *opts)
{
    size_t n = fx->n[p];
    const uint64_t *ids = fx->ids[p];
    joust_bt_edge *e = xmalloc((fx->no + 1) * sizeof *e);
    joust_outcome *lo = xmalloc((fx->no + 1) * sizeof *lo);
    size_t m = 0;
    int err_img = -1;
    for (size_t i = 0; i < fx->no; i++) {
        const fx_outcome *x = &fx->o[i];
        if (x->pid != fx->pid[p])
            continue;
        if (x->failed)
            err_img = (int)local(ids, n, x->failed);
        if (x->status != JOUST__OUTCOME_STATUS__OK)
            continue;
        int kind = x->kind ? x->kind : JOUST__OUTCOME_KIND__SOFT;
        if (kind > opts->min_kind)
            continue;
        double w = kind == JOUST__OUTCOME_KIND__HARD ? (double)(float)opts->hard_weight : 1.0;
        if (w == 0)
            continue;
        uint32_t a = local(ids, n, x->first), b = local(ids, n, x->second);
        e[m] = (joust_bt_edge){a, b, x->p, w};
        lo[m++] = (joust_outcome){a, b, x->p};
    }
    double *theta = xcalloc(n, sizeof *theta), *se = xcalloc(n, sizeof *se);
    double *wins = xcalloc(n, sizeof *wins), *ranked = xcalloc(n, sizeof *ranked);
    uint32_t *cmp = xcalloc(n, sizeof *cmp), *rank = xcalloc(n, sizeof *rank);
    CHECK_RC(joust_bt_fit((uint32_t)n, e, m, NULL, 0, theta, se, NULL));
    CHECK_RC(joust_outcome_tally((uint32_t)n, lo, m, wins, cmp));
    for (size_t i = 0; i < n; i++) /* images with an error or no comparison take no rank */
        ranked[i] = (int)i == err_img || cmp[i] == 0 ? -INFINITY : theta[i];
    joust_rank_desc(n, ranked, rank);
    for (size_t i = 0; i < n; i++) {
        Joust__ScoreRecord *s = NULL;
        CHECK_RC(joust_rec_score_get(st, run_id, ids[i], &s));
        if (!s)
            continue;
        CHECK(s->prompt_id == fx->pid[p]);
        CHECK_NEAR(s->wins, wins[i], 1e-12);
        CHECK(s->comparisons == cmp[i]);
        if ((int)i == err_img) {
            CHECK(!s->has_score && !s->has_rank && s->error && strstr(s->error, "p1_3"));
        } else if (cmp[i] == 0) {
            CHECK(!s->has_score && !s->has_rank && !s->error); /* unjudged */
        } else {
            CHECK(s->has_score && s->has_stderr && s->has_rank && !s->error);
            CHECK_NEAR(s->score, theta[i], 1e-9);
            CHECK_NEAR(s->stderr, se[i], 1e-9);
            CHECK(s->rank == rank[i]);
        }
        joust_rec_free(s);
    }
    free(e); free(lo); free(theta); free(se); free(wins); free(ranked); free(cmp); free(rank);
}

static Joust__RunRecord *open_run(joust_store_t *st, const char *name)
{
    Joust__RunRecord *run = NULL;
    CHECK_RC(joust_run_open(st, name, NULL, &run));
    return run;
}

static void check_run(joust_store_t *st, const char *name, const fixture *fx,
                      const joust_score_opts *o)
{
    Joust__RunRecord *run = open_run(st, name);
    for (int p = 0; p < NPROMPTS; p++)
        check_prompt(st, run->run_id, fx, p, o);
    joust_rec_free(run);
}

/* Scores of the two runs must be the same bytes. */
static void check_same_scores(joust_store_t *st, const fixture *fx)
{
    for (int p = 0; p < NPROMPTS; p++)
        for (size_t i = 0; i < fx->n[p]; i++) {
            Joust__ScoreRecord *a = NULL, *b = NULL;
            CHECK_RC(joust_rec_score_get(st, 1, fx->ids[p][i], &a));
            CHECK_RC(joust_rec_score_get(st, 2, fx->ids[p][i], &b));
            CHECK(a && b && a->score == b->score && a->stderr == b->stderr &&
                  a->rank == b->rank && a->wins == b->wins && a->comparisons == b->comparisons &&
                  !a->error == !b->error);
            joust_rec_free(a);
            joust_rec_free(b);
        }
}

static void test_fit(joust_store_t *st, const fixture *fx)
{
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    joust_score_summary sum;
    Joust__RunRecord *r1 = open_run(st, "r1"), *r2 = open_run(st, "r2");
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum));
    CHECK(sum.device == JOUST_DEVICE_CPU);
    CHECK(sum.prompts == NPROMPTS);
    CHECK(sum.images == 5 + 4 + 3 + 2 + 700);
    CHECK(sum.image_errors == 1 && sum.scored + sum.unjudged == sum.images - 1);
    CHECK(sum.outcomes_ok + sum.outcomes_failed == fx->no);
    CHECK(sum.kinds[JOUST__OUTCOME_KIND__HARD] > 0 && sum.kinds[JOUST__OUTCOME_KIND__BOUNDED] > 0);
    CHECK(sum.outcomes_left_out == 0);
    CHECK(sum.models.n == 2); /* m0 and m1 in prompts 0..2 */
    joust_score_summary_clear(&sum);
    check_run(st, "r1", fx, &o);

    /* Out of prompt order: the same scores, fitted in one pass. */
    CHECK_RC(joust_scores_compute(st, r2, &o, &sum));
    CHECK(sum.prompts == NPROMPTS && sum.outcomes_ok + sum.outcomes_failed == fx->no);
    joust_score_summary_clear(&sum);
    check_run(st, "r2", fx, &o);
    check_same_scores(st, fx);
    /* Fitted in blocks of 5 outcomes (most prompts alone in a block, the
     * large one over many): the same bits. */
    o.fit_block = 5;
    CHECK_RC(joust_scores_compute(st, r2, &o, &sum));
    joust_score_summary_clear(&sum);
    check_same_scores(st, fx);
    o.fit_block = 0;

    /* Kinds: only soft; hard down-weighted; hard left out. */
    o.min_kind = JOUST__OUTCOME_KIND__SOFT;
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum));
    CHECK(sum.outcomes_left_out ==
          sum.kinds[JOUST__OUTCOME_KIND__HARD] + sum.kinds[JOUST__OUTCOME_KIND__BOUNDED]);
    joust_score_summary_clear(&sum);
    check_run(st, "r1", fx, &o);
    o.min_kind = JOUST__OUTCOME_KIND__HARD;
    o.hard_weight = 0.3;
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum));
    CHECK(sum.outcomes_left_out == 0);
    joust_score_summary_clear(&sum);
    check_run(st, "r1", fx, &o);
    o.hard_weight = 0;
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum));
    CHECK(sum.outcomes_left_out == sum.kinds[JOUST__OUTCOME_KIND__HARD]);
    joust_score_summary_clear(&sum);
    check_run(st, "r1", fx, &o);

    /* Bad options. */
    o.hard_weight = -1;
    CHECK(joust_scores_compute(st, r1, &o, &sum) == JOUST_EINVAL);
    o.hard_weight = 1;
    joust_rec_free(r1);
    joust_rec_free(r2);
}

static void test_device(joust_store_t *st)
{
    joust_device d;
    CHECK(joust_device_parse("cuda", &d) == 0 && d == JOUST_DEVICE_CUDA);
    CHECK(joust_device_parse("gpu", &d) == JOUST_EINVAL);
    int k;
    CHECK(joust_kind_parse("bounded", &k) == 0 && k == JOUST__OUTCOME_KIND__BOUNDED);
    CHECK(joust_kind_parse("SOFT", &k) == JOUST_EINVAL);
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    joust_score_summary sum;
    Joust__RunRecord *r1 = open_run(st, "r1");
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum)); /* auto: CUDA when usable, else CPU */
    joust_score_summary_clear(&sum);
#ifndef JOUST_HAVE_CUDA
    CHECK(sum.device == JOUST_DEVICE_CPU);
    o.device = JOUST_DEVICE_CUDA; /* asked for explicitly, not built: a clear error */
    joust_log_set_level(QUIET);
    CHECK(joust_scores_compute(st, r1, &o, &sum) == JOUST_EUNSUPPORTED);
    joust_log_set_level(JOUST_LOG_WARN);
#endif
    joust_rec_free(r1);
}

/* Overwrites one stored score with a sentinel, to see whether a later call
 * rewrote the scores. */
static void plant(joust_store_t *st, uint32_t run_id, uint64_t image_id, double v)
{
    Joust__ScoreRecord s = JOUST__SCORE_RECORD__INIT;
    s.prompt_id = 1;
    s.has_score = s.has_rank = 1;
    s.score = v;
    s.rank = 1;
    joust_batch_t *b = joust_batch_new();
    joust_rec_score_put(b, run_id, image_id, &s);
    CHECK_RC(joust_store_write(st, b, 0));
    joust_batch_destroy(&b);
}

static double stored(joust_store_t *st, uint32_t run_id, uint64_t image_id)
{
    Joust__ScoreRecord *s = NULL;
    double v = NAN;
    if (joust_rec_score_get(st, run_id, image_id, &s) == 0) {
        v = s->score;
        joust_rec_free(s);
    }
    return v;
}

static void test_currency(joust_store_t *st, const fixture *fx)
{
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    joust_score_summary sum;
    Joust__RunRecord *r1 = open_run(st, "r1");
    int cur = -1, refit = -1;
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum));
    joust_score_summary_clear(&sum);
    CHECK_RC(joust_scores_current(st, r1, &o, &cur));
    CHECK(cur == 1);
    uint64_t img = fx->ids[0][0];
    plant(st, r1->run_id, img, 123.0);
    CHECK_RC(joust_scores_ensure(st, r1, &o, &sum, &refit));
    CHECK(refit == 0 && stored(st, r1->run_id, img) == 123.0); /* not rewritten */
    /* Options that weigh the present outcomes differently are not current... */
    o.hard_weight = 0.5;
    CHECK_RC(joust_scores_current(st, r1, &o, &cur));
    CHECK(cur == 0);
    o.hard_weight = 1;
    /* ... and a threads/device change is. */
    o.threads = 1;
    CHECK_RC(joust_scores_current(st, r1, &o, &cur));
    CHECK(cur == 1);
    /* Ties-only run r2 has no weaker kinds in prompt 2, but hard ones
     * elsewhere; a new outcome makes the scores stale. */
    Joust__OutcomeRecord oc = JOUST__OUTCOME_RECORD__INIT;
    oc.prompt_id = fx->pid[3];
    oc.first = fx->ids[3][0];
    oc.second = fx->ids[3][1];
    oc.status = JOUST__OUTCOME_STATUS__OK;
    oc.has_p_first = 1;
    oc.p_first = 0.75;
    joust_batch_t *b = joust_batch_new();
    joust_rec_outcome_put(b, r1, fx->no + 1, &oc, NULL, NULL);
    joust_rec_run_put(b, r1);
    CHECK_RC(joust_store_write(st, b, 0));
    joust_batch_destroy(&b);
    CHECK_RC(joust_scores_current(st, r1, &o, &cur));
    CHECK(cur == 0);
    CHECK_RC(joust_scores_ensure(st, r1, &o, &sum, &refit));
    joust_score_summary_clear(&sum);
    CHECK(refit == 1 && stored(st, r1->run_id, img) != 123.0);
    CHECK(stored(st, r1->run_id, fx->ids[3][0]) > 0); /* the new outcome counts */
    CHECK_RC(joust_scores_current(st, r1, &o, &cur));
    CHECK(cur == 1);
    /* A scoring that stopped half-way leaves no marker. */
    Joust__RunRecord *stored_run = open_run(st, "r1");
    CHECK(stored_run->has_scores_from);
    stored_run->has_scores_from = 0;
    b = joust_batch_new();
    joust_rec_run_put(b, stored_run);
    joust_rec_free(stored_run);
    CHECK_RC(joust_store_write(st, b, 0));
    joust_batch_destroy(&b);
    CHECK_RC(joust_scores_current(st, r1, &o, &cur));
    CHECK(cur == 0);
    joust_rec_free(r1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = xmalloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Checks that every scored image's line in the JSONL holds its stored
 * numbers as printf writes them (%.9g, percentile %.6g). */
typedef struct {
    const char *text;
    int missing, checked;
} score_check;

static int check_line(const joust_scored_prompt *sp, void *arg)
{
    score_check *c = arg;
    for (size_t i = 0; i < sp->n; i++) {
        const Joust__ScoreRecord *s = sp->items[i].score;
        if (!s || !s->has_score)
            continue;
        char want[256];
        snprintf(want, sizeof want, "\"id\":\"%s\",", sp->items[i].img->caller_id);
        const char *line = strstr(c->text, want);
        snprintf(want, sizeof want,
                 ",\"score\":%.9g,\"stderr\":%.9g,\"rank\":%u,\"percentile\":%.6g,\"wins\":%.9g,",
                 s->score, s->stderr, s->rank, s->percentile, s->wins);
        const char *end = line ? strchr(line, '\n') : NULL;
        const char *at = line ? strstr(line, want) : NULL;
        c->missing += !at || at > end;
        c->checked++;
    }
    return 0;
}

/* The files written from the fit's table equal, byte for byte, the files
 * written from the store's score records (error images, ties, unjudged
 * images, two models and none, a large prompt); both hold the stored
 * numbers as %.9g. */
static void test_table_export(joust_store_t *st, const char *dir)
{
    Joust__RunRecord *r1 = open_run(st, "r1");
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    joust_score_summary sum;
    joust_score_table *t = NULL;
    CHECK_RC(joust_scores_compute_table(st, r1, &o, &sum, &t));
    CHECK(t && t->np == NPROMPTS && t->ni == sum.images && t->nerrors == 1);
    char paths[4][512];
    static const char *const names[] = {"s.jsonl", "s.csv", "t.jsonl", "t.csv"};
    for (int i = 0; i < 4; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
    CHECK_RC(joust_scores_export(st, r1, paths[0], paths[1]));
    if (t)
        CHECK_RC(joust_scores_export_table(st, r1, t, paths[2], paths[3]));
    for (int i = 0; i < 2; i++) {
        size_t ls = 0, lt = 0;
        char *fs = slurp(paths[i], &ls), *ft = slurp(paths[i + 2], &lt);
        CHECK(fs && ft && ls > 1000 && ls == lt && !memcmp(fs, ft, ls));
        if (i == 0 && fs) {
            fs[ls < (1 << 20) ? ls : (1 << 20) - 1] = 0;
            score_check c = {fs, 0, 0};
            CHECK_RC(joust_scores_walk(st, r1, check_line, &c));
            CHECK(c.checked == (int)sum.scored && c.missing == 0);
            CHECK(strstr(fs, "\"status\":\"error\",\"error\":") &&
                  strstr(fs, "\"score\":null,\"stderr\":null,\"rank\":null"));
        }
        free(fs);
        free(ft);
    }
    joust_score_table_destroy(&t);
    CHECK(t == NULL);
    joust_score_summary_clear(&sum);
    joust_rec_free(r1);
}

/* The run's score records and marker, as bytes: key ‖ value of each, then
 * the marker. */
static char *scores_bytes(joust_store_t *st, const char *run_name, size_t *len)
{
    Joust__RunRecord *r = open_run(st, run_name);
    joust_buf_t b = {0};
    joust_rec_cursor_t *c = NULL;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_SCORES, r->run_id, &c));
    for (; c && joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        uint64_t id = joust_rec_cursor_id(c);
        size_t n;
        const void *v = joust_rec_cursor_bytes(c, &n);
        joust_buf_append(&b, &id, sizeof id);
        joust_buf_append(&b, &n, sizeof n);
        joust_buf_append(&b, v, n);
    }
    joust_rec_cursor_destroy(&c);
    CHECK(r->has_scores_from && r->scores_from.len == 52);
    joust_buf_append(&b, r->scores_from.data, r->scores_from.len);
    joust_rec_free(r);
    *len = b.len;
    return b.data;
}

/* joust_scores_fit writes nothing; joust_scores_store, on its own thread
 * while the files are written from the same table, writes the very
 * records and marker joust_scores_compute_table writes, and the files
 * equal those written from the store afterwards. */
static void test_fit_then_store(joust_store_t *st, const char *dir)
{
    Joust__RunRecord *r1 = open_run(st, "r1");
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    joust_score_summary sum;
    CHECK_RC(joust_scores_compute(st, r1, &o, &sum));
    joust_score_summary_clear(&sum);
    size_t la = 0, lb = 0;
    char *a = scores_bytes(st, "r1", &la);
    uint64_t some = 0;
    joust_rec_cursor_t *c = NULL;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_SCORES, r1->run_id, &c));
    some = c ? joust_rec_cursor_id(c) : 0;
    joust_rec_cursor_destroy(&c);
    CHECK(some != 0);
    plant(st, r1->run_id, some, 12345.0);
    joust_score_table *t = NULL;
    CHECK_RC(joust_scores_fit(st, r1, &o, &sum, &t));
    CHECK(t && stored(st, r1->run_id, some) == 12345.0); /* the fit wrote nothing */
    char paths[4][512];
    static const char *const names[] = {"f.jsonl", "f.csv", "g.jsonl", "g.csv"};
    for (int i = 0; i < 4; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
    if (t) {
        joust_scores_storer_t *w = NULL;
        joust_scores_store_start(st, r1, t, &w);
        CHECK_RC(joust_scores_export_table(st, r1, t, paths[0], paths[1]));
        double secs = -1;
        CHECK_RC(joust_scores_store_join(&w, &secs));
        CHECK(w == NULL && secs >= 0);
    }
    char *b = scores_bytes(st, "r1", &lb);
    CHECK(a && b && la > 1000 && la == lb && !memcmp(a, b, la));
    int current = 0;
    CHECK_RC(joust_scores_current(st, r1, &o, &current));
    CHECK(current == 1);
    CHECK_RC(joust_scores_export(st, r1, paths[2], paths[3]));
    for (int i = 0; i < 2; i++) {
        size_t l1 = 0, l2 = 0;
        char *f1 = slurp(paths[i], &l1), *f2 = slurp(paths[i + 2], &l2);
        CHECK(f1 && f2 && l1 > 1000 && l1 == l2 && !memcmp(f1, f2, l1));
        free(f1);
        free(f2);
    }
    free(a);
    free(b);
    joust_score_table_destroy(&t);
    joust_score_summary_clear(&sum);
    joust_rec_free(r1);
}

/* Scores run `name` with the outcomes read `how` (JOUST_OUTCOMES_*) and
 * returns its score records' bytes (scores_bytes without the marker, which
 * goes to marker) and writes the files from the fit's table to
 * dir/<how>.jsonl and .csv. */
static char *scores_read(joust_store_t *st, const char *dir, const char *name, int how,
                         size_t *len, unsigned char marker[52])
{
    Joust__RunRecord *r = open_run(st, name);
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    o.outcomes = how;
    joust_score_summary sum;
    joust_score_table *t = NULL;
    CHECK_RC(joust_scores_compute_table(st, r, &o, &sum, &t));
    joust_score_summary_clear(&sum);
    char jl[512], csv[512];
    snprintf(jl, sizeof jl, "%s/how%d.jsonl", dir, how);
    snprintf(csv, sizeof csv, "%s/how%d.csv", dir, how);
    if (t)
        CHECK_RC(joust_scores_export_table(st, r, t, jl, csv));
    joust_score_table_destroy(&t);
    joust_rec_free(r);
    char *b = scores_bytes(st, name, len);
    *len -= 52;
    memcpy(marker, b + *len, 52);
    return b;
}

/* The run's scores, files and marker read from its outcome log equal those
 * read by the scan; each marker is current for its own way only. */
static void check_log_is_scan(joust_store_t *st, const char *dir, const char *name)
{
    size_t la = 0, lb = 0;
    unsigned char ma[52], mb[52];
    char *a = scores_read(st, dir, name, JOUST_OUTCOMES_SCAN, &la, ma);
    char *b = scores_read(st, dir, name, JOUST_OUTCOMES_LOG, &lb, mb);
    CHECK(la > 1000 && la == lb && !memcmp(a, b, la));
    CHECK(memcmp(ma, mb, 4 + 8) != 0 && !memcmp(ma + 12, mb + 12, 40)); /* only the digest */
    for (int ext = 0; ext < 2; ext++) {
        char p1[512], p2[512];
        snprintf(p1, sizeof p1, "%s/how%d.%s", dir, JOUST_OUTCOMES_SCAN, ext ? "csv" : "jsonl");
        snprintf(p2, sizeof p2, "%s/how%d.%s", dir, JOUST_OUTCOMES_LOG, ext ? "csv" : "jsonl");
        size_t l1 = 0, l2 = 0;
        char *f1 = slurp(p1, &l1), *f2 = slurp(p2, &l2);
        CHECK(f1 && f2 && l1 > 1000 && l1 == l2 && !memcmp(f1, f2, l1));
        free(f1);
        free(f2);
    }
    Joust__RunRecord *r = open_run(st, name);
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    int cur = -1;
    CHECK_RC(joust_scores_current(st, r, &o, &cur)); /* auto: the log, as last written */
    CHECK(cur == 1);
    o.outcomes = JOUST_OUTCOMES_SCAN;
    CHECK_RC(joust_scores_current(st, r, &o, &cur));
    CHECK(cur == 0);
    joust_rec_free(r);
    free(a);
    free(b);
}

/* Rewrites outcomes of run `name` as the CLI's paths do: retry-failed
 * deletes the failed ones, they are judged again (OK now), and one OK
 * outcome is replaced by another. */
static void rejudge(joust_store_t *st, const char *name, const fixture *fx)
{
    uint64_t dropped = 0;
    CHECK_RC(joust_coord_retry_failed(st, name, &dropped));
    CHECK(dropped > 0);
    Joust__RunRecord *r = open_run(st, name);
    joust_batch_t *b = joust_batch_new();
    uint64_t redone = 0;
    for (uint64_t id = 1; id <= fx->no; id++) {
        Joust__OutcomeRecord *old = NULL;
        int rc = joust_rec_outcome_get(st, r->run_id, id, &old);
        if (rc == JOUST_ENOTFOUND || (old && id % 17 == 0 && old->has_p_first)) {
            Joust__MatchRecord *m = NULL;
            CHECK_RC(joust_rec_match_get(st, r->run_id, id, &m));
            Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
            o.prompt_id = m ? m->prompt_id : 0;
            o.first = m ? m->first : 0;
            o.second = m ? m->second : 0;
            o.status = JOUST__OUTCOME_STATUS__OK;
            o.has_p_first = 1;
            o.p_first = (double)(id % 97) / 96.0;
            joust_rec_outcome_put(b, r, id, &o, NULL, old);
            redone++;
            joust_rec_free(m);
        }
        joust_rec_free(old);
    }
    CHECK(redone > dropped);
    joust_rec_run_put(b, r);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    CHECK(r->outcome_log_rewrites > 0);
    joust_rec_free(r);
}

/* The outcome log against the scan: fresh runs (committed in prompt order
 * and interleaved), after retry-failed and re-judging, a run without a
 * log (an older joust's: the scan is used, --outcomes log refused), a log
 * entry beyond the run's matches (the scan is used) and log bytes that
 * do not decode (counted and skipped, no crash). */
static void test_outcome_log(joust_store_t *st, const char *dir, const fixture *fx)
{
    write_run(st, "log1", fx, 0);
    write_run(st, "log2", fx, 1);
    check_log_is_scan(st, dir, "log1");
    check_log_is_scan(st, dir, "log2");
    rejudge(st, "log2", fx);
    check_log_is_scan(st, dir, "log2");

    write_unlogged = 1;
    write_run(st, "old", fx, 1);
    write_unlogged = 0;
    Joust__RunRecord *r = open_run(st, "old");
    CHECK(!joust_rec_run_has_log(r));
    joust_rec_cursor_t *c = NULL;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_OUTCOME_LOG, r->run_id, &c));
    CHECK(c && !joust_rec_cursor_valid(c)); /* nothing was logged */
    joust_rec_cursor_destroy(&c);
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.outcomes = JOUST_OUTCOMES_LOG;
    joust_score_summary sum;
    joust_log_set_level(QUIET);
    CHECK(joust_scores_compute(st, r, &o, &sum) == JOUST_EINVAL);
    joust_log_set_level(JOUST_LOG_WARN);
    size_t la = 0, lb = 0;
    unsigned char ma[52], mb[52];
    char *a = scores_read(st, dir, "old", JOUST_OUTCOMES_SCAN, &la, ma);
    char *b = scores_read(st, dir, "old", JOUST_OUTCOMES_AUTO, &lb, mb);
    CHECK(la == lb && !memcmp(a, b, la) && !memcmp(ma, mb, 52)); /* auto scanned */
    free(a);
    free(b);
    joust_rec_free(r);

    /* An entry beyond the run's matches: the log cannot stand for the
     * outcomes, and the scan gives the same scores as before. */
    r = open_run(st, "log1");
    size_t l0 = 0;
    char *before = scores_read(st, dir, "log1", JOUST_OUTCOMES_SCAN, &l0, ma);
    unsigned char key[12], entry[] = {0xfe, 0xff, 0x7f, 0x00}; /* zigzag id 1048575, a delete */
    joust_put_be32(key, r->run_id);
    joust_put_be64(key + 4, r->outcome_log_next);
    CHECK_RC(joust_store_put(st, JOUST_CF_OUTCOME_LOG, key, sizeof key, entry, sizeof entry));
    joust_log_set_level(QUIET);
    a = scores_read(st, dir, "log1", JOUST_OUTCOMES_AUTO, &la, mb);
    joust_log_set_level(JOUST_LOG_WARN);
    CHECK(la == l0 && !memcmp(a, before, la) && !memcmp(ma, mb, 52));
    free(a);
    free(before);

    /* Bytes that do not decode: a record cut short and a record whose
     * entry is not an outcome. Counted, skipped, scored without them. */
    static const unsigned char cut[] = {0x02, 0x81}, junk[] = {0x02, 0x05, 0xff, 0xff, 0xff};
    joust_put_be64(key + 4, r->outcome_log_next);
    CHECK_RC(joust_store_put(st, JOUST_CF_OUTCOME_LOG, key, sizeof key, cut, sizeof cut));
    joust_put_be64(key + 4, r->outcome_log_next + 1);
    CHECK_RC(joust_store_put(st, JOUST_CF_OUTCOME_LOG, key, sizeof key, junk, sizeof junk));
    joust_score_opts_defaults(&o);
    o.outcomes = JOUST_OUTCOMES_LOG;
    joust_log_set_level(QUIET);
    CHECK_RC(joust_scores_compute(st, r, &o, &sum));
    joust_log_set_level(JOUST_LOG_WARN);
    /* match 1's last entry is the unreadable one: it is left out, as an
     * outcome record that does not unpack is by the scan */
    CHECK(sum.outcomes_ok + sum.outcomes_failed == fx->no - 1);
    joust_score_summary_clear(&sum);
    joust_rec_free(r);
}

/* The marker of the stored run record, or 0 when it has none. */
static int has_marker(joust_store_t *st, const char *name)
{
    Joust__RunRecord *r = open_run(st, name);
    int has = r->has_scores_from;
    joust_rec_free(r);
    return has;
}

/* Child of test_store_ways (the test binary run again): fits r1 and
 * stores it by bulk load with the store armed to die right after the
 * load, before the marker. */
static int kill_at_load(const char *db)
{
    joust_store_t *st;
    if (joust_store_open(db, 0, &st) < 0)
        return 2;
    Joust__RunRecord *r1 = open_run(st, "r1");
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    joust_score_summary sum;
    joust_score_table *t = NULL;
    CHECK_RC(joust_scores_fit(st, r1, &o, &sum, &t));
    /* writes: the old marker's removal, the old scores' removal, the load */
    joust_store_fault(st, JOUST_FAULT_KILL, 2);
    if (t)
        joust_scores_store_how(st, r1, t, JOUST_SCORES_LOAD, NULL);
    return 3; /* not reached when the kill came */
}

/* Score records by bulk load are the bytes the puts write, whatever was
 * there before (a planted record of an image the table does not have is
 * gone either way, another run's stays), and the files written from them
 * are the same; a load that fails, or a process killed right after it,
 * leaves no marker, and the next ensure fits and writes the same bytes. */
static void test_store_ways(joust_store_t **stp, const char *dir, const char *self)
{
    joust_store_t *st = *stp;
    Joust__RunRecord *r1 = open_run(st, "r1"), *r2 = open_run(st, "r2");
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    joust_score_summary sum;
    joust_score_table *t = NULL;
    CHECK_RC(joust_scores_fit(st, r1, &o, &sum, &t));
    if (!t)
        return;
    CHECK_RC(joust_scores_store_how(st, r1, t, JOUST_SCORES_PUT, NULL));
    size_t la = 0, lb = 0;
    char *a = scores_bytes(st, "r1", &la);
    char files[4][512];
    static const char *const names[] = {"p.jsonl", "p.csv", "l.jsonl", "l.csv"};
    for (int i = 0; i < 4; i++)
        snprintf(files[i], sizeof files[i], "%s/%s", dir, names[i]);
    CHECK_RC(joust_scores_export(st, r1, files[0], files[1]));
    const uint64_t gone = 1u << 30; /* an image id no table has */
    static const joust_scores_write ways[] = {JOUST_SCORES_LOAD, JOUST_SCORES_LOAD,
                                              JOUST_SCORES_PUT, JOUST_SCORES_LOAD};
    for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
        if (w == 0) { /* none of r1's scores: the load without a range delete */
            CHECK_RC(joust_rec_scores_delete(st, r1->run_id));
            plant(st, r2->run_id, gone, 7.0);
        } else {
            plant(st, r1->run_id, gone, 7.0);
        }
        double secs = -1;
        CHECK_RC(joust_scores_store_how(st, r1, t, ways[w], &secs));
        CHECK(secs >= 0);
        char *b = scores_bytes(st, "r1", &lb);
        CHECK(b && la > 1000 && la == lb && !memcmp(a, b, la));
        free(b);
        CHECK(isnan(stored(st, r1->run_id, gone)) && stored(st, r2->run_id, gone) == 7.0);
    }
    CHECK_RC(joust_scores_export(st, r1, files[2], files[3]));
    for (int i = 0; i < 2; i++) {
        size_t l1 = 0, l2 = 0;
        char *f1 = slurp(files[i], &l1), *f2 = slurp(files[i + 2], &l2);
        CHECK(f1 && f2 && l1 > 1000 && l1 == l2 && !memcmp(f1, f2, l1));
        free(f1);
        free(f2);
    }
    /* A load that fails (the disk full): no marker; reopened, the scores
     * are not current and ensure writes them again. */
    joust_store_fault(st, JOUST_FAULT_WRITE, 2);
    joust_log_set_level(QUIET);
    CHECK(joust_scores_store_how(st, r1, t, JOUST_SCORES_LOAD, NULL) == JOUST_ENOSPC);
    joust_log_set_level(JOUST_LOG_WARN);
    char db[512];
    snprintf(db, sizeof db, "%s/db", dir);
    for (int round = 0; round < 2; round++) {
        joust_store_destroy(stp);
        if (round == 1) { /* killed right after the load, before the marker */
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "%s --kill-at-load %s 2>/dev/null", self, db);
            int status = system(cmd);
            CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL));
        }
        CHECK_RC(joust_store_open(db, 0, stp));
        st = *stp;
        CHECK(!has_marker(st, "r1"));
        if (round == 1) /* the load is there, unmarked */
            CHECK(!isnan(stored(st, r1->run_id, t->ids[0])));
        int current = 1, refit = 0;
        CHECK_RC(joust_scores_current(st, r1, &o, &current));
        CHECK(current == 0);
        joust_score_summary again;
        CHECK_RC(joust_scores_ensure(st, r1, &o, &again, &refit));
        CHECK(refit == 1 && has_marker(st, "r1"));
        joust_score_summary_clear(&again);
        char *b = scores_bytes(st, "r1", &lb);
        CHECK(b && la == lb && !memcmp(a, b, la));
        free(b);
    }
    free(a);
    joust_score_table_destroy(&t);
    joust_score_summary_clear(&sum);
    joust_rec_free(r1);
    joust_rec_free(r2);
}

/* A write that fails (the file size limit: EFBIG, a real failed write)
 * keeps the old file byte for byte, leaves no temporary file, and says so. */
static void test_failed_write(joust_store_t *st, const char *dir)
{
    Joust__RunRecord *r1 = open_run(st, "r1");
    char jsonl[512], csv[512];
    snprintf(jsonl, sizeof jsonl, "%s/scores.jsonl", dir);
    snprintf(csv, sizeof csv, "%s/scores.csv", dir);
    CHECK_RC(joust_scores_export(st, r1, jsonl, csv));
    size_t l0 = 0, l1 = 0, c0 = 0, c1 = 0;
    char *before = slurp(jsonl, &l0), *before_csv = slurp(csv, &c0);
    CHECK(before && l0 > 4096 && before_csv);
    /* From the store, then from a fit's table (two halves at once: the
     * side files go too). */
    joust_score_opts o;
    joust_score_opts_defaults(&o);
    o.device = JOUST_DEVICE_CPU;
    joust_score_summary sum;
    joust_score_table *t = NULL;
    CHECK_RC(joust_scores_fit(st, r1, &o, &sum, &t));
    joust_score_summary_clear(&sum);
    for (int way = 0; way < 2 && t; way++) {
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {4096, 4096};
            setrlimit(RLIMIT_FSIZE, &rl);
            joust_log_set_level(QUIET);
            int rc = way ? joust_scores_export_table(st, r1, t, jsonl, csv)
                         : joust_scores_export(st, r1, jsonl, NULL);
            _exit(rc == JOUST_EIO ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        char *after = slurp(jsonl, &l1);
        char *after_csv = slurp(csv, &c1);
        CHECK(after && l1 == l0 && !memcmp(before, after, l0));
        CHECK(after_csv && c1 == c0 && !memcmp(before_csv, after_csv, c0));
        free(after);
        free(after_csv);
        for (int k = 0; k < 4; k++) { /* the temporary files and the side files */
            char tmp[600];
            snprintf(tmp, sizeof tmp, "%s%s.tmp-%ld", k < 2 ? jsonl : csv, k & 1 ? ".part2" : "",
                     (long)pid);
            CHECK(access(tmp, F_OK) != 0);
        }
    }
    joust_score_table_destroy(&t);
    /* A folder in the way of the final name: an error, nothing half-written. */
    char blocked[512];
    snprintf(blocked, sizeof blocked, "%s/blocked", dir);
    mkdir(blocked, 0755);
    joust_log_set_level(QUIET);
    joust_dpo_opts dopts;
    joust_dpo_opts_defaults(&dopts);
    joust_dpo_stats dstats = {.pairs = 7};
    CHECK(joust_export_dpo(st, r1, blocked, &dopts, &dstats) == JOUST_EIO && dstats.pairs == 0);
    joust_log_set_level(JOUST_LOG_WARN);
    free(before);
    free(before_csv);
    joust_rec_free(r1);
}

/* Runs a shell command; returns its exit status and its output in out. */
static int sh(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(const char *joust, const char *dir, const fixture *fx)
{
    char cmd[2048], out[65536];
    /* joust show prints the kind of every OK outcome. */
    size_t hard = 0, bounded = 0, soft = 0;
    for (size_t i = 0; i < fx->no && !(hard && bounded && soft); i++) {
        if (fx->o[i].status != JOUST__OUTCOME_STATUS__OK)
            continue;
        size_t *slot = fx->o[i].kind == JOUST__OUTCOME_KIND__HARD      ? &hard
                       : fx->o[i].kind == JOUST__OUTCOME_KIND__BOUNDED ? &bounded
                       : fx->o[i].kind == 0                            ? &soft : NULL;
        if (slot && !*slot)
            *slot = i + 1; /* match id in run r1 */
    }
    CHECK(hard && bounded && soft);
    snprintf(cmd, sizeof cmd, "%s show %zu %zu %zu --db %s/db --run r1 2>&1", joust, hard, bounded,
             soft, dir);
    CHECK(sh(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "kind: hard\n") && strstr(out, "kind: bounded\n") &&
          strstr(out, "kind: soft (not recorded: soft)\n"));
    /* DPO: the stored scores (fitted with every kind) are not current for
     * --min-kind soft: fitted again; the second export reuses them. */
    snprintf(cmd, sizeof cmd, "%s scores --db %s/db --run r1 --out %s/o 2>&1", joust, dir, dir);
    CHECK(sh(cmd, out, sizeof out) == 0);
    snprintf(cmd, sizeof cmd, "%s export dpo --db %s/db --run r1 --out %s/dpo.jsonl 2>&1", joust,
             dir, dir);
    CHECK(sh(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "fitted again") && strstr(out, "weaker than --min-kind soft"));
    CHECK(sh(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "current, reused") != NULL);
    snprintf(cmd, sizeof cmd, "%s export dpo --db %s/db --run r1 --min-kind hard --out %s/dpo.jsonl 2>&1",
             joust, dir, dir);
    CHECK(sh(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "fitted again") != NULL);
    snprintf(cmd, sizeof cmd, "%s export dpo --db %s/db --run r1 --min-kind firm 2>&1", joust, dir);
    CHECK(sh(cmd, out, sizeof out) == 2 && strstr(out, "not soft, bounded or hard"));
    /* --device cuda without CUDA: a clear error and a non-zero exit. */
    snprintf(cmd, sizeof cmd, "%s scores --db %s/db --run r1 --out %s/o --device cuda 2>&1", joust,
             dir, dir);
    int rc = sh(cmd, out, sizeof out);
#ifndef JOUST_HAVE_CUDA
    CHECK(rc == 1 && strstr(out, "built without CUDA"));
#else
    CHECK(rc == 0 || strstr(out, "no usable CUDA device"));
#endif
}

/* A synthetic table of 2^20 + 4,608 items (prompts of 16) stored by bulk
 * load, which cuts it into files of 2^20 records: every record is there
 * once, with its item's values, whether the table is in image id order
 * (walked as it stands) or its prompts' ids interleave (walked through
 * slots); and the marker is written last. */
static void test_load_parts(joust_store_t *st)
{
    enum { K = 16, NP = 65824 }; /* 1,053,184 items */
    const size_t ni = (size_t)NP * K;
    CHECK(ni > (1u << 20));
    for (int interleave = 0; interleave < 2; interleave++) {
        const char *name = interleave ? "big-interleaved" : "big-sorted";
        joust_run_spec spec = {.strategy = "round-robin", .judge = "sim", .order = "fixed",
                               .seed = 1};
        Joust__RunRecord *run = NULL;
        CHECK_RC(joust_run_open(st, name, &spec, &run));
        if (!run)
            return;
        joust_score_table *t = xcalloc(1, sizeof *t);
        t->np = NP;
        t->ni = ni;
        t->pid = xcalloc(NP, sizeof *t->pid);
        t->item_off = xcalloc(NP + 1, sizeof *t->item_off);
        t->ids = xcalloc(ni, sizeof *t->ids);
        t->score = xcalloc(ni, sizeof *t->score);
        t->stderr = xcalloc(ni, sizeof *t->stderr);
        t->wins = xcalloc(ni, sizeof *t->wins);
        t->pct = xcalloc(ni, sizeof *t->pct);
        t->cmp = xcalloc(ni, sizeof *t->cmp);
        t->rank = xcalloc(ni, sizeof *t->rank);
        t->error = xcalloc(ni, sizeof *t->error);
        t->comp = xcalloc(ni, sizeof *t->comp);
        t->ncomp = xcalloc(NP, sizeof *t->ncomp);
        memset(t->from, 0x5a, sizeof t->from);
        for (size_t p = 0; p < NP; p++) {
            t->pid[p] = 1 + p;
            t->item_off[p + 1] = (p + 1) * K;
            for (size_t k = 0; k < K; k++) {
                size_t g = p * K + k;
                /* interleaved: prompts in pairs share a range of ids */
                t->ids[g] = 1 + (interleave ? (p & ~(size_t)1) * K + 2 * k + (p & 1) : g);
                t->score[g] = (double)g / 8;
                t->stderr[g] = 1;
                t->rank[g] = (uint32_t)k + 1;
                t->pct[g] = 100.0 * (double)(K - k) / K;
                t->wins[g] = (double)(k % 7);
                t->cmp[g] = K - 1;
            }
        }
        CHECK_RC(joust_scores_store_how(st, run, t, JOUST_SCORES_LOAD, NULL));
        /* Read back in id order: id -> item from the construction. */
        joust_rec_cursor_t *c = NULL;
        CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_SCORES, run->run_id, &c));
        size_t n = 0, bad = 0;
        uint64_t last = 0;
        for (; c && joust_rec_cursor_valid(c); joust_rec_cursor_next(c), n++) {
            uint64_t id = joust_rec_cursor_id(c);
            size_t len;
            const void *v = joust_rec_cursor_bytes(c, &len);
            Joust__ScoreRecord *r = (Joust__ScoreRecord *)protobuf_c_message_unpack(
                &joust__score_record__descriptor, NULL, len, v);
            size_t i = (size_t)(id - 1), g = i;
            if (interleave) { /* inverse of the ids above */
                size_t pair = i / (2 * K), k = (i % (2 * K)) / 2, odd = i & 1;
                g = (2 * pair + odd) * K + k;
            }
            bad += !r || id <= last || g >= ni || r->score != t->score[g] ||
                   r->rank != t->rank[g] || r->prompt_id != t->pid[g / K] ||
                   r->comparisons != t->cmp[g] || r->wins != t->wins[g];
            last = id;
            if (r)
                protobuf_c_message_free_unpacked(&r->base, NULL);
        }
        joust_rec_cursor_destroy(&c);
        CHECK(n == ni && bad == 0);
        Joust__RunRecord *after = open_run(st, name);
        CHECK(after->has_scores_from && after->scores_from.len == sizeof t->from &&
              !memcmp(after->scores_from.data, t->from, sizeof t->from));
        joust_rec_free(after);
        joust_score_table_destroy(&t);
        joust_rec_free(run);
    }
}

int main(int argc, char **argv)
{
    joust_log_set_level(JOUST_LOG_WARN);
    if (argc == 3 && !strcmp(argv[1], "--kill-at-load"))
        return kill_at_load(argv[2]);
    char dir[] = "/tmp/joust-scoring.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    fixture fx = {0};
    build(dir, &fx);
    char db[512];
    snprintf(db, sizeof db, "%s/db", dir);
    joust_store_t *st;
    CHECK_RC(joust_store_open(db, 0, &st));
    test_fit(st, &fx);
    test_device(st);
    test_currency(st, &fx);
    test_failed_write(st, dir);
    test_table_export(st, dir);
    test_fit_then_store(st, dir);
    test_outcome_log(st, dir, &fx);
    test_store_ways(&st, dir, argv[0]);
    test_load_parts(st);
    joust_store_destroy(&st);
    const char *joust = getenv("JOUST");
    if (joust && *joust)
        test_cli(joust, dir, &fx);
    else
        printf("JOUST not set: the command-line checks were skipped\n");
    for (int p = 0; p < NPROMPTS; p++)
        free(fx.ids[p]);
    free(fx.o);
    rm_rf(dir);
    return test_report();
}
