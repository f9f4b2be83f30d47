#include "run.h"

#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "xalloc.h"

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
            differs("order", r->order, spec->order) ||
            differs("grouping (--group / --group-by)", r->group_all ? "all" : r->group_by ? r->group_by : "prompt",
                    spec->group_all ? "all" : spec->group_by && spec->group_by[0] ? spec->group_by : "prompt")) {
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
    r.group_by = spec->group_by && spec->group_by[0] && !spec->group_all ? (char *)spec->group_by : NULL;
    r.has_group_all = r.group_all = spec->group_all != 0;
    joust_run_counts_set(&r, &(joust_run_counts){0});
    if ((rc = joust_rec_run_create(st, &r)) < 0)
        return rc;
    log_info("created run '%s' (id %u): %s, judge %s, order %s, seed %llu, budget %g calls per "
             "image / %llu per prompt (0: none)", name, r.run_id, r.strategy, r.judge, r.order,
             (unsigned long long)r.seed, r.budget_per_image, (unsigned long long)r.budget_calls);
    return joust_run_open(st, name, NULL, out);
}

int joust_run_image_pass(const Joust__RunRecord *run, uint64_t image_id)
{
    if (run->n_manifests == 0)
        return 0;
    for (size_t i = 0; i < run->n_manifests; i++) {
        const Joust__RunManifest *m = run->manifests[i];
        if (image_id >= m->first_image && image_id < m->end_image)
            return (int)m->pass;
    }
    return -1;
}

int joust_run_prompt_pass(const Joust__RunRecord *run, uint64_t prompt_id)
{
    for (size_t q = run->n_pass_reach; q-- > 0;)
        if (prompt_id < run->pass_reach[q])
            return (int)q;
    return -1;
}

uint64_t joust_run_prompt_bound(const Joust__RunRecord *run)
{
    uint64_t bound = run->plan_cursor;
    for (size_t q = 0; q < run->n_pass_reach; q++)
        if (run->pass_reach[q] > bound)
            bound = run->pass_reach[q];
    return bound;
}

static void manifest_append(Joust__RunRecord *run, uint64_t hash, uint64_t first, uint64_t end,
                            uint32_t pass, const char *path)
{
    Joust__RunManifest *m = xmalloc(sizeof *m);
    joust__run_manifest__init(m);
    m->hash = hash;
    m->first_image = first;
    m->end_image = end;
    m->has_pass = 1;
    m->pass = pass;
    m->path = path ? xstrdup(path) : NULL;
    run->manifests = xrealloc(run->manifests, (run->n_manifests + 1) * sizeof *run->manifests);
    run->manifests[run->n_manifests++] = m;
}

/* Ends the current planning pass where it stands and starts the next. */
static void pass_begin(Joust__RunRecord *run)
{
    run->pass_reach = xrealloc(run->pass_reach, (run->n_pass_reach + 1) * sizeof *run->pass_reach);
    run->pass_reach[run->n_pass_reach++] = run->plan_cursor;
    run->has_plan_pass = 1;
    run->plan_pass = (uint32_t)run->n_pass_reach;
    run->plan_cursor = 1;
    run->planning_done = 0;
    run->complete = 0;
}

int joust_run_add_manifest(joust_store_t *st, Joust__RunRecord *run, uint64_t hash, uint64_t first,
                           uint64_t end, int just_ingested, const char *path,
                           joust_run_manifest_added *how)
{
    for (size_t i = 0; i < run->n_manifests; i++)
        if (run->manifests[i]->hash == hash) {
            *how = JOUST_RUN_MANIFEST_KNOWN;
            return 0;
        }
    if (first == 0 && end == 0) {
        log_error("manifest %s was ingested by an older joust that did not record which images it "
                  "added; it cannot be added to run '%s' (ingest it into a new store)", path,
                  run->name);
        return JOUST_EINVAL;
    }
    int started = run->next_match_id > 1 || run->plan_cursor > 1 || run->planning_done;
    if (run->n_manifests == 0 && !started) {
        manifest_append(run, hash, first, end, 0, path);
        *how = JOUST_RUN_MANIFEST_FIRST;
    } else if (run->n_manifests == 0 && !just_ingested) {
        /* A started run without manifests covered the whole store: this
         * manifest's images too. From now on it covers what it had. */
        uint64_t next;
        int rc = joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &next);
        if (rc < 0)
            return rc;
        manifest_append(run, 0, 1, next, 0, "(the store when the run had no manifest)");
        *how = JOUST_RUN_MANIFEST_KNOWN;
    } else {
        if (run->n_manifests == 0) /* it covered the whole store until now */
            manifest_append(run, 0, 1, first, 0, "(the store when the run had no manifest)");
        pass_begin(run);
        manifest_append(run, hash, first, end, run->plan_pass, path);
        *how = JOUST_RUN_MANIFEST_EXTENDS;
    }
    joust_batch_t *b = joust_batch_new();
    joust_rec_run_put(b, run);
    int rc = joust_store_write(st, b, 1);
    joust_batch_destroy(&b);
    return rc;
}

int joust_run_images_each(joust_store_t *st, const Joust__RunRecord *run,
                          int (*fn)(const Joust__ImageRecord *ir, void *arg), void *arg)
{
    joust_rec_cursor_t *cur;
    int rc = joust_rec_cursor_new(st, JOUST_REC_IMAGES, 0, &cur);
    for (; rc == 0 && joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur)) {
        if (run && !joust_run_covers(run, joust_rec_cursor_id(cur)))
            continue;
        Joust__ImageRecord *ir = joust_rec_cursor_image(cur);
        if (!ir) {
            log_error("image %" PRIu64 ": its record does not unpack", joust_rec_cursor_id(cur));
            rc = JOUST_ECORRUPT;
            break;
        }
        rc = fn(ir, arg);
        joust_rec_free(ir);
    }
    if (rc == 0 && cur)
        rc = joust_rec_cursor_error(cur);
    joust_rec_cursor_destroy(&cur);
    return rc;
}
