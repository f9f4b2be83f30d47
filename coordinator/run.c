#include "run.h"

#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "records.h"

void joust_run_put(joust_batch_t *b, const Joust__RunRecord *run)
{
    record_put(b, JOUST_CF_RUNS, run->name, strlen(run->name), &run->base);
}

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
    int rc = record_get(st, JOUST_CF_RUNS, name, strlen(name), &joust__run_record__descriptor,
                        (ProtobufCMessage **)out);
    if (rc == 0 && spec) {
        const Joust__RunRecord *r = *out;
        if (differs("strategy", r->strategy, spec->strategy) || differs("judge", r->judge, spec->judge) ||
            differs("order", r->order, spec->order)) {
            record_free(*out);
            *out = NULL;
            return JOUST_EEXIST;
        }
        if (r->seed != spec->seed)
            log_warn("run '%s' keeps its frozen seed %llu", name, (unsigned long long)r->seed);
    }
    if (rc != JOUST_ENOTFOUND || !spec)
        return rc;
    uint64_t next_run;
    if ((rc = meta_get_u64(st, META_NEXT_RUN, 1, &next_run)) < 0)
        return rc;
    Joust__RunRecord r = JOUST__RUN_RECORD__INIT;
    r.run_id = (uint32_t)next_run;
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
    joust_batch_t *b = joust_batch_new();
    joust_run_put(b, &r);
    meta_put_u64(b, META_NEXT_RUN, next_run + 1);
    rc = joust_store_write(st, b, 1);
    joust_batch_destroy(&b);
    if (rc < 0)
        return rc;
    log_info("created run '%s' (id %u): %s, judge %s, order %s, seed %llu, budget %g calls per "
             "image / %llu per prompt (0: none)", name, r.run_id, r.strategy, r.judge, r.order,
             (unsigned long long)r.seed, r.budget_per_image, (unsigned long long)r.budget_calls);
    return joust_run_open(st, name, NULL, out);
}

int joust_run_each(joust_store_t *st, void (*fn)(const Joust__RunRecord *run, void *arg), void *arg)
{
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_RUNS, NULL, 0, &it);
    if (rc < 0)
        return rc;
    for (; joust_iter_valid(it); joust_iter_next(it)) {
        size_t len;
        const void *v = joust_iter_value(it, &len);
        Joust__RunRecord *r = (Joust__RunRecord *)record_unpack(&joust__run_record__descriptor, v, len);
        if (r)
            fn(r, arg);
        record_free(r);
    }
    rc = joust_iter_error(it);
    joust_iter_destroy(&it);
    return rc;
}
