#include "scoring.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "buf.h"
#include "bytes.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "records.h"
#include "u64map.h"
#include "xalloc.h"

typedef struct {
    uint64_t prompt_id, first, second, seq;
    double p_first;
    int ok;
} flat_outcome;

/* A run's outcomes in prompt order. Planned match ids follow prompt order,
 * so the outcomes are read straight from the store (memory per prompt);
 * when they turn out not to be in that order, they are loaded whole and
 * sorted instead. */
typedef struct {
    joust_rec_cursor_t *it; /* streaming; NULL when sorted in memory */
    flat_outcome *v;     /* in memory: sorted by prompt */
    size_t len, cap, pos;
    flat_outcome peeked;
    int has_peek;
    uint32_t run_id;
    joust_u64map_t error_of; /* image id -> index in errors + 1 */
    char **errors;
    size_t nerrors, errors_cap;
    joust_score_summary *sum;
} outcome_set;

static int by_prompt(const void *x, const void *y)
{
    const flat_outcome *a = x, *b = y;
    if (a->prompt_id != b->prompt_id)
        return a->prompt_id < b->prompt_id ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void note_image_error(outcome_set *os, uint64_t image_id, const char *error)
{
    if (!image_id || joust_u64map_get(&os->error_of, image_id, NULL))
        return;
    xgrow((void **)&os->errors, &os->errors_cap, os->nerrors + 1, sizeof *os->errors);
    os->errors[os->nerrors++] = xstrdup(error && error[0] ? error : "image could not be judged");
    joust_u64map_put(&os->error_of, image_id, os->nerrors);
}

static const char *image_error(const outcome_set *os, uint64_t image_id)
{
    uint64_t i;
    return joust_u64map_get(&os->error_of, image_id, &i) ? os->errors[i - 1] : NULL;
}

/* Decodes the iterator's current outcome, counting it. 0 when corrupt. */
static int decode_outcome(outcome_set *os, joust_rec_cursor_t *it, uint64_t seq, flat_outcome *out)
{
    Joust__OutcomeRecord *o = joust_rec_cursor_outcome(it);
    if (!o) {
        log_warn("run %u: an outcome record does not unpack; skipped", os->run_id);
        return 0;
    }
    int ok = o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first;
    if (ok) {
        os->sum->outcomes_ok++;
    } else {
        os->sum->outcomes_failed++;
        if (o->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR)
            note_image_error(os, o->failed_image_id, o->error);
    }
    *out = (flat_outcome){o->prompt_id, o->first, o->second, seq, o->p_first, ok};
    joust_rec_free(o);
    return 1;
}

static int outcomes_open(joust_store_t *st, outcome_set *os, int in_memory)
{
    int rc = joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, os->run_id, &os->it);
    if (rc < 0 || !in_memory)
        return rc;
    for (; joust_rec_cursor_valid(os->it); joust_rec_cursor_next(os->it)) {
        xgrow((void **)&os->v, &os->cap, os->len + 1, sizeof *os->v);
        os->len += (size_t)decode_outcome(os, os->it, os->len, &os->v[os->len]);
    }
    rc = joust_rec_cursor_error(os->it);
    joust_rec_cursor_destroy(&os->it);
    qsort(os->v, os->len, sizeof *os->v, by_prompt);
    return rc;
}

/* The next outcome without consuming it; NULL at the end. */
static const flat_outcome *outcomes_peek(outcome_set *os)
{
    if (os->has_peek)
        return &os->peeked;
    if (!os->it) {
        if (os->pos == os->len)
            return NULL;
        os->peeked = os->v[os->pos++];
        os->has_peek = 1;
        return &os->peeked;
    }
    /* The iterator stays on the peeked record; consuming it moves on. */
    while (!os->has_peek && joust_rec_cursor_valid(os->it))
        if (!(os->has_peek = decode_outcome(os, os->it, 0, &os->peeked)))
            joust_rec_cursor_next(os->it);
    return os->has_peek ? &os->peeked : NULL;
}

static void outcomes_close(outcome_set *os)
{
    joust_rec_cursor_destroy(&os->it);
    for (size_t i = 0; i < os->nerrors; i++)
        free(os->errors[i]);
    free(os->errors);
    free(os->v);
    joust_u64map_free(&os->error_of);
}

static uint32_t index_of(const uint64_t *ids, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id ? (uint32_t)lo : UINT32_MAX;
}

static void merge_bias(joust_position_bias *all, const joust_position_bias *b)
{
    double total = (double)(all->outcomes + b->outcomes);
    if (total > 0)
        all->mean_p_first = (all->mean_p_first * (double)all->outcomes +
                             b->mean_p_first * (double)b->outcomes) / total;
    all->outcomes += b->outcomes;
    double pairs = (double)(all->both_order_pairs + b->both_order_pairs);
    if (pairs > 0)
        all->mean_delta = (all->mean_delta * (double)all->both_order_pairs +
                           b->mean_delta * (double)b->both_order_pairs) / pairs;
    all->both_order_pairs += b->both_order_pairs;
    all->consistent_pairs += b->consistent_pairs;
    all->position_bias = all->mean_p_first - 0.5;
    all->consistency = all->both_order_pairs
                           ? (double)all->consistent_pairs / (double)all->both_order_pairs : 0;
}

/* Fits one prompt from its OK outcomes [o, o+m) and stages its scores. */
/* The OK outcomes of a prompt with image ids turned into indices of ids.
 * Returns how many were written to loc (capacity m). */
static size_t localize(const uint64_t *ids, size_t n, const flat_outcome *o, size_t m,
                       joust_outcome *loc)
{
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t a = index_of(ids, n, o[i].first), c = index_of(ids, n, o[i].second);
        if (o[i].ok && a != UINT32_MAX && c != UINT32_MAX)
            loc[k++] = (joust_outcome){a, c, o[i].p_first};
    }
    return k;
}

/* Fits one prompt from its OK outcomes loc[0..k) and stages its scores. */
static void score_prompt(uint32_t run_id, uint64_t pid, const uint64_t *ids, size_t n,
                         const joust_outcome *loc, size_t k, const outcome_set *os,
                         joust_batch_t *b, joust_score_summary *sum)
{
    double *theta = xcalloc(n, sizeof *theta), *se = xcalloc(n, sizeof *se);
    double *wins = xcalloc(n, sizeof *wins), *ranked = xmalloc(n * sizeof *ranked);
    uint32_t *cmp = xcalloc(n, sizeof *cmp), *rank = xmalloc(n * sizeof *rank);
    if (joust_prompt_fit((uint32_t)n, loc, k, NULL, theta, se, NULL) < 0)
        log_warn("prompt %" PRIu64 ": fit failed; scores left at 0", pid);
    joust_outcome_tally((uint32_t)n, loc, k, wins, cmp);
    joust_position_bias bias;
    if (joust_position_bias_summary((uint32_t)n, loc, k, &bias) == 0)
        merge_bias(&sum->bias, &bias);
    /* Images with errors take no rank: rank the others among themselves. */
    for (size_t i = 0; i < n; i++)
        ranked[i] = image_error(os, ids[i]) ? -INFINITY : theta[i];
    joust_rank_desc(n, ranked, rank);
    for (size_t i = 0; i < n; i++) {
        const char *err = image_error(os, ids[i]);
        Joust__ScoreRecord s = JOUST__SCORE_RECORD__INIT;
        s.prompt_id = pid;
        s.has_score = s.has_stderr = s.has_rank = !err;
        s.score = theta[i];
        s.stderr = se[i];
        s.rank = rank[i];
        s.wins = wins[i];
        s.comparisons = cmp[i];
        s.error = (char *)err;
        joust_rec_score_put(b, run_id, ids[i], &s);
        sum->images++;
        if (err)
            sum->image_errors++;
        else
            sum->scored++;
    }
    free(theta); free(se); free(wins); free(ranked); free(cmp); free(rank);
}

/* Calls fn for each prompt the run has planned, with its member ids. */
static int each_planned_prompt(joust_store_t *st, const Joust__RunRecord *run, joust_rec_prompt_fn fn, void *arg)
{
    int rc = joust_rec_prompt_walk(st, 1, run->plan_cursor, fn, arg, NULL);
    return rc > 0 ? 0 : rc;
}

typedef struct {
    joust_store_t *st;
    outcome_set *os;
    flat_outcome *group;
    size_t cap;
    joust_outcome *loc;
    size_t loc_cap;
    joust_batch_t *batch;
    joust_score_summary *sum;
    models_t *models;
} compute_ctx;

/* Feeds a prompt's outcomes to the model-level tally, by its images' models. */
static void tally_models(compute_ctx *c, uint64_t pid, const uint64_t *ids, size_t n, size_t k)
{
    Joust__ImageRecord **img = xcalloc(n ? n : 1, sizeof *img);
    const char **model = xcalloc(n ? n : 1, sizeof *model);
    for (size_t i = 0; i < n; i++)
        if (joust_rec_image_get(c->st, ids[i], &img[i]) == 0)
            model[i] = img[i]->model;
    models_add_prompt(c->models, pid, (uint32_t)n, model, c->loc, k);
    for (size_t i = 0; i < n; i++)
        joust_rec_free(img[i]);
    free(img);
    free(model);
}

static int compute_one(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    compute_ctx *c = arg;
    outcome_set *os = c->os;
    const flat_outcome *o = outcomes_peek(os);
    if (o && o->prompt_id < pid)
        return JOUST_EAGAIN; /* not in prompt order: sort them in memory */
    size_t m = 0;
    for (; o && o->prompt_id == pid; o = outcomes_peek(os)) {
        xgrow((void **)&c->group, &c->cap, m + 1, sizeof *c->group);
        c->group[m++] = *o;
        os->has_peek = 0;
        if (os->it)
            joust_rec_cursor_next(os->it);
    }
    xgrow((void **)&c->loc, &c->loc_cap, m + 1, sizeof *c->loc);
    size_t k = localize(ids, n, c->group, m, c->loc);
    score_prompt(os->run_id, pid, ids, n, c->loc, k, os, c->batch, c->sum);
    if (k)
        tally_models(c, pid, ids, n, k);
    c->sum->prompts++;
    if (joust_batch_count(c->batch) >= 10000) {
        int rc = joust_store_write(c->st, c->batch, 0);
        joust_batch_clear(c->batch);
        return rc;
    }
    return 0;
}

static int compute(joust_store_t *st, const Joust__RunRecord *run, joust_score_summary *sum,
                   int in_memory)
{
    memset(sum, 0, sizeof *sum);
    sum->bias.mean_p_first = 0.5;
    outcome_set os = {.run_id = run->run_id, .sum = sum};
    joust_u64map_init(&os.error_of);
    compute_ctx c = {.st = st, .os = &os, .batch = joust_batch_new(), .sum = sum,
                     .models = models_new()};
    int rc = outcomes_open(st, &os, in_memory);
    if (rc == 0)
        rc = joust_rec_scores_delete(st, run->run_id);
    if (rc == 0)
        rc = each_planned_prompt(st, run, compute_one, &c);
    if (rc == 0 && os.it && outcomes_peek(&os))
        rc = JOUST_EAGAIN; /* outcomes left over: they were not in prompt order */
    if (rc == 0)
        rc = joust_store_write(st, c.batch, 1);
    if (rc == 0)
        rc = models_fit(c.models, &sum->models);
    models_destroy(&c.models);
    joust_batch_destroy(&c.batch);
    free(c.group);
    free(c.loc);
    outcomes_close(&os);
    return rc;
}

void joust_score_summary_clear(joust_score_summary *sum)
{
    joust_model_report_clear(&sum->models);
}

int joust_scores_compute(joust_store_t *st, const Joust__RunRecord *run, joust_score_summary *sum)
{
    int rc = compute(st, run, sum, 0);
    if (rc == JOUST_EAGAIN) {
        log_info("run '%s': outcomes are not in prompt order; sorting them in memory", run->name);
        rc = compute(st, run, sum, 1);
    }
    return rc;
}

/* ------------------------------------------------------------ reading --- */

typedef joust_scored_image scored_image;
typedef joust_scored_prompt scored_prompt;

static int by_rank(const void *x, const void *y)
{
    const scored_image *a = x, *b = y;
    uint32_t ra = a->score && a->score->has_rank ? a->score->rank : UINT32_MAX;
    uint32_t rb = b->score && b->score->has_rank ? b->score->rank : UINT32_MAX;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    return a->img->image_id < b->img->image_id ? -1 : 1;
}

static void scored_prompt_clear(scored_prompt *sp)
{
    for (size_t i = 0; i < sp->n; i++) {
        joust_rec_free(sp->items[i].img);
        joust_rec_free(sp->items[i].score);
    }
    free(sp->items);
    joust_rec_free(sp->prompt);
    memset(sp, 0, sizeof *sp);
}

/* Loads a prompt's images with their scores, best rank first. */
static int scored_prompt_load(joust_store_t *st, uint32_t run_id, uint64_t pid, const uint64_t *ids,
                              size_t n, scored_prompt *sp)
{
    memset(sp, 0, sizeof *sp);
    int rc = joust_rec_prompt_get(st, pid, &sp->prompt);
    if (rc < 0)
        return rc;
    sp->items = xcalloc(n ? n : 1, sizeof *sp->items);
    for (size_t i = 0; i < n; i++) {
        if ((rc = joust_rec_image_get(st, ids[i], &sp->items[i].img)) < 0)
            break;
        sp->n++;
        rc = joust_rec_score_get(st, run_id, ids[i], &sp->items[i].score);
        if (rc == JOUST_ENOTFOUND)
            rc = 0; /* not scored yet */
        if (rc < 0)
            break;
    }
    if (rc < 0)
        scored_prompt_clear(sp);
    else
        qsort(sp->items, sp->n, sizeof *sp->items, by_rank);
    return rc;
}

typedef int (*scored_fn)(const scored_prompt *sp, void *arg);

typedef struct {
    joust_store_t *st;
    uint32_t run_id;
    scored_fn fn;
    void *arg;
} scored_walk;

static int walk_one(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    scored_walk *w = arg;
    scored_prompt sp;
    int rc = scored_prompt_load(w->st, w->run_id, pid, ids, n, &sp);
    if (rc < 0)
        return rc;
    rc = w->fn(&sp, w->arg);
    scored_prompt_clear(&sp);
    return rc;
}

int joust_scores_walk(joust_store_t *st, const Joust__RunRecord *run, scored_fn fn, void *arg)
{
    scored_walk w = {st, run->run_id, fn, arg};
    return each_planned_prompt(st, run, walk_one, &w);
}

static const char *image_label(const Joust__ImageRecord *img, char *buf, size_t len)
{
    if (img->caller_id)
        return img->caller_id;
    snprintf(buf, len, "%" PRIu64, img->image_id);
    return buf;
}

/* ------------------------------------------------------------ exports --- */

typedef struct {
    FILE *jsonl, *csv;
    joust_buf_t line;
} export_ctx;

static void json_prompt_id(joust_buf_t *b, const Joust__PromptRecord *p)
{
    if (p->caller_id)
        joust_buf_json_str(b, p->caller_id);
    else
        joust_buf_printf(b, "%" PRIu64, p->prompt_id);
}

static void write_jsonl(export_ctx *e, const scored_prompt *sp, const scored_image *it)
{
    joust_buf_t *b = &e->line;
    const Joust__ScoreRecord *s = it->score;
    char idbuf[32];
    joust_buf_reset(b);
    joust_buf_puts(b, "{\"id\":");
    joust_buf_json_str(b, image_label(it->img, idbuf, sizeof idbuf));
    joust_buf_puts(b, ",\"image\":");
    joust_buf_json_str(b, it->img->uri);
    joust_buf_puts(b, ",\"prompt_id\":");
    json_prompt_id(b, sp->prompt);
    joust_buf_puts(b, ",\"prompt\":");
    joust_buf_json_str(b, sp->prompt->text);
    joust_buf_puts(b, ",\"model\":");
    if (it->img->model)
        joust_buf_json_str(b, it->img->model);
    else
        joust_buf_puts(b, "null");
    if (s && s->has_score)
        joust_buf_printf(b, ",\"score\":%.9g,\"stderr\":%.9g,\"rank\":%u", s->score, s->stderr, s->rank);
    else
        joust_buf_puts(b, ",\"score\":null,\"stderr\":null,\"rank\":null");
    joust_buf_printf(b, ",\"wins\":%.9g,\"comparisons\":%u", s ? s->wins : 0.0, s ? s->comparisons : 0);
    if (s && s->error) {
        joust_buf_puts(b, ",\"error\":");
        joust_buf_json_str(b, s->error);
    }
    joust_buf_puts(b, "}\n");
    fwrite(b->data, 1, b->len, e->jsonl);
}

static void write_csv(export_ctx *e, const scored_prompt *sp, const scored_image *it)
{
    joust_buf_t *b = &e->line;
    const Joust__ScoreRecord *s = it->score;
    char idbuf[32];
    joust_buf_reset(b);
    joust_buf_csv_str(b, image_label(it->img, idbuf, sizeof idbuf));
    joust_buf_puts(b, ",");
    joust_buf_csv_str(b, it->img->uri);
    joust_buf_puts(b, ",");
    if (sp->prompt->caller_id)
        joust_buf_csv_str(b, sp->prompt->caller_id);
    else
        joust_buf_printf(b, "%" PRIu64, sp->prompt->prompt_id);
    joust_buf_puts(b, ",");
    joust_buf_csv_str(b, sp->prompt->text);
    joust_buf_puts(b, ",");
    joust_buf_csv_str(b, it->img->model ? it->img->model : "");
    if (s && s->has_score)
        joust_buf_printf(b, ",%.9g,%.9g,%u", s->score, s->stderr, s->rank);
    else
        joust_buf_puts(b, ",,,");
    joust_buf_printf(b, ",%.9g,%u,", s ? s->wins : 0.0, s ? s->comparisons : 0);
    joust_buf_csv_str(b, s && s->error ? s->error : "");
    joust_buf_puts(b, "\n");
    fwrite(b->data, 1, b->len, e->csv);
}

static int export_one(const scored_prompt *sp, void *arg)
{
    export_ctx *e = arg;
    for (size_t i = 0; i < sp->n; i++) {
        if (e->jsonl)
            write_jsonl(e, sp, &sp->items[i]);
        if (e->csv)
            write_csv(e, sp, &sp->items[i]);
    }
    return 0;
}

static FILE *open_out(const char *path)
{
    FILE *f = path ? fopen(path, "w") : NULL;
    if (path && !f)
        log_error("cannot write %s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (!f)
        return 0;
    int bad = ferror(f) | fclose(f);
    if (bad)
        log_error("writing %s failed", path);
    return bad ? JOUST_EIO : 0;
}

int joust_scores_export(joust_store_t *st, const Joust__RunRecord *run, const char *jsonl_path,
                        const char *csv_path)
{
    export_ctx e = {.jsonl = open_out(jsonl_path), .csv = open_out(csv_path)};
    int rc = (jsonl_path && !e.jsonl) || (csv_path && !e.csv) ? JOUST_EIO : 0;
    if (e.csv)
        fputs("id,image,prompt_id,prompt,model,score,stderr,rank,wins,comparisons,error\n", e.csv);
    if (rc == 0)
        rc = joust_scores_walk(st, run, export_one, &e);
    int rc2 = close_out(e.jsonl, jsonl_path), rc3 = close_out(e.csv, csv_path);
    joust_buf_free(&e.line);
    return rc ? rc : rc2 ? rc2 : rc3;
}

typedef struct {
    FILE *out;
    int max_prompts, top, shown;
} top_ctx;

static int top_one(const scored_prompt *sp, void *arg)
{
    top_ctx *t = arg;
    if (t->shown >= t->max_prompts)
        return 1; /* stop walking */
    t->shown++;
    fprintf(t->out, "prompt %.70s%s (%zu images)\n", sp->prompt->text,
            strlen(sp->prompt->text) > 70 ? "..." : "", sp->n);
    for (size_t i = 0; i < sp->n && (int)i < t->top; i++) {
        const scored_image *it = &sp->items[i];
        char idbuf[32];
        if (it->score && it->score->has_score)
            fprintf(t->out, "  %u. %-24s score %+.3f ± %.3f  wins %.1f/%u\n", it->score->rank,
                    image_label(it->img, idbuf, sizeof idbuf), it->score->score, it->score->stderr,
                    it->score->wins, it->score->comparisons);
    }
    return 0;
}

int joust_scores_print_top(joust_store_t *st, const Joust__RunRecord *run, FILE *out,
                           int max_prompts, int top)
{
    top_ctx t = {out, max_prompts, top, 0};
    int rc = joust_scores_walk(st, run, top_one, &t);
    return rc > 0 ? 0 : rc;
}

typedef struct {
    FILE *out;
    int max, shown;
    uint64_t total;
} err_ctx;

static int errors_one(const scored_prompt *sp, void *arg)
{
    err_ctx *e = arg;
    for (size_t i = 0; i < sp->n; i++) {
        const scored_image *it = &sp->items[i];
        if (!it->score || !it->score->error)
            continue;
        if (e->shown++ < e->max)
            fprintf(e->out, "  %s\n", it->score->error);
        e->total++;
    }
    return 0;
}

int joust_scores_print_errors(joust_store_t *st, const Joust__RunRecord *run, FILE *out, int max)
{
    err_ctx e = {out, max, 0, 0};
    int rc = joust_scores_walk(st, run, errors_one, &e);
    if (e.total > (uint64_t)max)
        fprintf(out, "  ... and %" PRIu64 " more\n", e.total - (uint64_t)max);
    return rc;
}

typedef struct {
    FILE *out;
    double min_margin;
    uint64_t pairs;
    joust_buf_t line;
} dpo_ctx;

static int dpo_one(const scored_prompt *sp, void *arg)
{
    dpo_ctx *d = arg;
    const scored_image *best = NULL, *worst = NULL;
    for (size_t i = 0; i < sp->n; i++) {
        const scored_image *it = &sp->items[i];
        if (!it->score || !it->score->has_score || it->score->comparisons == 0)
            continue;
        if (!best)
            best = it;
        worst = it; /* items are in rank order */
    }
    if (!best || best == worst)
        return 0;
    double margin = best->score->score - worst->score->score;
    if (margin < d->min_margin)
        return 0;
    joust_buf_t *b = &d->line;
    char id1[32], id2[32];
    joust_buf_reset(b);
    joust_buf_puts(b, "{\"prompt_id\":");
    json_prompt_id(b, sp->prompt);
    joust_buf_puts(b, ",\"prompt\":");
    joust_buf_json_str(b, sp->prompt->text);
    joust_buf_puts(b, ",\"chosen\":");
    joust_buf_json_str(b, best->img->uri);
    joust_buf_puts(b, ",\"rejected\":");
    joust_buf_json_str(b, worst->img->uri);
    joust_buf_puts(b, ",\"chosen_id\":");
    joust_buf_json_str(b, image_label(best->img, id1, sizeof id1));
    joust_buf_puts(b, ",\"rejected_id\":");
    joust_buf_json_str(b, image_label(worst->img, id2, sizeof id2));
    joust_buf_printf(b, ",\"chosen_score\":%.9g,\"rejected_score\":%.9g,\"margin\":%.9g,"
                     "\"p_chosen\":%.9g}\n",
                     best->score->score, worst->score->score, margin, joust_bt_prob(best->score->score, worst->score->score));
    fwrite(b->data, 1, b->len, d->out);
    d->pairs++;
    return 0;
}

int joust_export_dpo(joust_store_t *st, const Joust__RunRecord *run, const char *path,
                     double min_margin, uint64_t *pairs)
{
    dpo_ctx d = {.out = open_out(path), .min_margin = min_margin};
    if (!d.out)
        return JOUST_EIO;
    int rc = joust_scores_walk(st, run, dpo_one, &d);
    int rc2 = close_out(d.out, path);
    joust_buf_free(&d.line);
    *pairs = d.pairs;
    return rc ? rc : rc2;
}
