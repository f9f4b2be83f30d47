#include "run.h"

#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "records.h"

static int differs(const char *what, const char *have, const char *want)
{
    if (!strcmp(have, want))
        return 0;
    log_error("run exists with %s '%s', not '%s'; choose another run name (--run) to change it",
              what, have, want);
    return 1;
}

int joust_run_open(joust_store_t *st, const char *name, const joust_run_spec *spec,
                   Joust__RunRecord **out)
{
    int rc = joust_rec_run_get(st, name, out);
    if (rc == 0 && !(*out)->has_outcomes_ok) {
        /* A run from before the counts: count once, written with the
         * record's next put. */
        joust_run_counts n;
        if ((rc = joust_rec_run_counts(st, *out, &n)) < 0) {
            joust_rec_free(*out);
            *out = NULL;
            return rc;
        }
        joust_run_counts_set(*out, &n);
    }
    if (rc == 0 && spec) {
        const Joust__RunRecord *r = *out;
        if (differs("strategy", r->strategy, spec->strategy) || differs("judge", r->judge, spec->judge) ||
            differs("order", r->order, spec->order)) {
            joust_rec_free(*out);
            *out = NULL;
            return JOUST_EEXIST;
        }
        if (r->seed != spec->seed)
            log_warn("run '%s' keeps its frozen seed %llu", name, (unsigned long long)r->seed);
    }
    if (rc != JOUST_ENOTFOUND || !spec)
        return rc;
    Joust__RunRecord r = JOUST__RUN_RECORD__INIT;
    r.name = (char *)name;
    r.strategy = (char *)spec->strategy;
    r.judge = (char *)spec->judge;
    r.order = (char *)spec->order;
    r.seed = spec->seed;
    r.has_created_ms = 1;
    r.created_ms = joust_wall_ms();
    r.has_plan_cursor = r.has_next_match_id = 1;
    r.plan_cursor = r.next_match_id = 1;
    r.has_max_attempts = r.has_lease_ms = 1;
    r.max_attempts = spec->max_attempts;
    r.lease_ms = spec->lease_ms;
    r.judge_options = (char *)spec->judge_options;
    r.has_budget_per_image = spec->budget_per_image > 0;
    r.budget_per_image = spec->budget_per_image;
    r.has_budget_calls = spec->budget_calls > 0;
    r.budget_calls = spec->budget_calls;
    r.has_confidence = spec->confidence > 0;
    r.confidence = spec->confidence;
    r.has_k = spec->k > 0;
    r.k = spec->k;
    joust_run_counts_set(&r, &(joust_run_counts){0});
    if ((rc = joust_rec_run_create(st, &r)) < 0)
        return rc;
    log_info("created run '%s' (id %u): %s, judge %s, order %s, seed %llu, budget %g calls per "
             "image / %llu per prompt (0: none)", name, r.run_id, r.strategy, r.judge, r.order,
             (unsigned long long)r.seed, r.budget_per_image, (unsigned long long)r.budget_calls);
    return joust_run_open(st, name, NULL, out);
}
