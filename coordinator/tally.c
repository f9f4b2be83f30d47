#include "tally.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "joust.pb-c.h"
#include "log.h"
#include "records.h"
#include "run.h"

/* Calls fn for every outcome of the run (the record is borrowed). */
static int each_outcome(joust_store_t *st, uint32_t run_id,
                        int (*fn)(uint64_t id, const Joust__OutcomeRecord *o, void *arg), void *arg)
{
    joust_rec_cursor_t *cur;
    int rc = joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, run_id, &cur);
    if (rc < 0)
        return rc;
    for (; rc == 0 && joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur)) {
        uint64_t id = joust_rec_cursor_id(cur);
        Joust__OutcomeRecord *o = joust_rec_cursor_outcome(cur);
        if (!o)
            log_warn("run %u: outcome of match %" PRIu64 " does not unpack; skipped", run_id, id);
        else
            rc = fn(id, o, arg);
        joust_rec_free(o);
    }
    if (rc == 0)
        rc = joust_rec_cursor_error(cur);
    joust_rec_cursor_destroy(&cur);
    return rc;
}

/* The class of an outcome, as joust_run_counts_add files it. */
static int class_of(const Joust__OutcomeRecord *o)
{
    joust_run_counts one;
    memset(&one, 0, sizeof one);
    joust_run_counts_add(&one, o, 1);
    for (int k = 0; k < JOUST_FAIL_CLASSES; k++) {
        joust_coord_tally t = {.counts = one};
        if (joust_coord_tally_class(&t, k, NULL))
            return k;
    }
    return -1; /* ok */
}

typedef struct {
    joust_coord_tally *t;
    int missing; /* failed classes without an example yet */
} example_ctx;

static int take_example(uint64_t id, const Joust__OutcomeRecord *o, void *arg)
{
    (void)id;
    example_ctx *e = arg;
    int k = class_of(o);
    if (k < 0 || e->t->example[k][0])
        return 0;
    snprintf(e->t->example[k], sizeof e->t->example[k], "%s",
             o->error && o->error[0] ? o->error : "(no reason recorded)");
    return --e->missing == 0 ? 1 : 0; /* 1 ends the scan */
}

int joust_coord_tally_read(joust_store_t *st, const Joust__RunRecord *run, joust_coord_tally *t)
{
    memset(t, 0, sizeof *t);
    t->planned = run->next_match_id ? run->next_match_id - 1 : 0;
    int rc = joust_rec_run_counts(st, run, &t->counts);
    if (rc < 0 || !t->counts.failed)
        return rc;
    example_ctx e = {t, 0};
    for (int k = 0; k < JOUST_FAIL_CLASSES; k++)
        e.missing += joust_coord_tally_class(t, k, NULL) > 0;
    rc = each_outcome(st, run->run_id, take_example, &e);
    return rc > 0 ? 0 : rc;
}

uint64_t joust_coord_tally_class(const joust_coord_tally *t, int cls, const char **name)
{
    static const char *names[JOUST_FAIL_CLASSES] = {"image_error", "unparseable", "infra_error",
                                                    "config_error", "abandoned"};
    const uint64_t n[JOUST_FAIL_CLASSES] = {t->counts.image_error, t->counts.unparseable,
                                            t->counts.infra_error, t->counts.config_error,
                                            t->counts.abandoned};
    if (name)
        *name = cls >= 0 && cls < JOUST_FAIL_CLASSES ? names[cls] : "unknown";
    return cls >= 0 && cls < JOUST_FAIL_CLASSES ? n[cls] : 0;
}

uint64_t joust_coord_tally_failed(const joust_coord_tally *t) { return t->counts.failed; }

void joust_coord_tally_print(const joust_coord_tally *t, FILE *f)
{
    for (int k = 0; k < JOUST_FAIL_CLASSES; k++) {
        const char *name;
        uint64_t n = joust_coord_tally_class(t, k, &name);
        if (n)
            fprintf(f, "  %s: %" PRIu64 " (e.g. %s)\n", name, n,
                    t->example[k][0] ? t->example[k] : "(no reason found)");
    }
}

int joust_max_failed_parse(const char *s, joust_max_failed *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    if (s[0] == '-' || s[0] == '+')
        return JOUST_EINVAL;
    double v = strtod(s, &end);
    if (errno || end == s)
        return JOUST_EINVAL;
    if (*end == '%' && end[1] == 0) {
        if (!(v >= 0 && v <= 100))
            return JOUST_EINVAL;
        out->is_percent = 1;
        out->percent = v;
        return 0;
    }
    if (*end || v != floor(v) || v > 1e18)
        return JOUST_EINVAL;
    out->count = (uint64_t)v;
    return 0;
}

int joust_max_failed_exceeded(const joust_max_failed *mf, const joust_coord_tally *t)
{
    uint64_t failed = joust_coord_tally_failed(t);
    if (mf->is_percent)
        return t->planned && 100.0 * (double)failed / (double)t->planned > mf->percent;
    return failed > mf->count;
}

typedef struct {
    joust_batch_t *b;
    Joust__RunRecord *run;
    uint64_t n;
} retry_ctx;

static int drop_failed(uint64_t id, const Joust__OutcomeRecord *o, void *arg)
{
    retry_ctx *r = arg;
    if (class_of(o) < 0)
        return 0;
    joust_rec_outcome_delete(r->b, r->run, id, o);
    r->n++;
    return 0;
}

int joust_coord_retry_failed(joust_store_t *st, const char *run_name, uint64_t *n)
{
    *n = 0;
    Joust__RunRecord *run;
    int rc = joust_run_open(st, run_name, NULL, &run);
    if (rc < 0)
        return rc;
    joust_run_counts counts; /* stored counts, or counted now for an older run */
    if ((rc = joust_rec_run_counts(st, run, &counts)) < 0) {
        joust_rec_free(run);
        return rc;
    }
    joust_run_counts_set(run, &counts);
    retry_ctx r = {joust_batch_new(), run, 0};
    rc = counts.failed ? each_outcome(st, run->run_id, drop_failed, &r) : 0;
    if (rc == 0 && r.n) {
        run->has_complete = 1;
        run->complete = 0;
        joust_rec_run_put(r.b, run);
        rc = joust_store_write(st, r.b, 1);
    }
    if (rc == 0)
        *n = r.n;
    joust_batch_destroy(&r.b);
    joust_rec_free(run);
    return rc;
}
