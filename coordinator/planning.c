/* Planning for the coordinator: prompt groups loaded from the store (or
 * the run's own groups, grouping.h), one incremental planner per group
 * (rank/planner.h; a group over its limit streams a k-regular plan,
 * rank/sparse_plan.h), match records, and rebuilding the queues after a
 * restart. */
#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "coord_state.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "reuse.h"
#include "run.h"

static void prompt_slot_free(prompt_slot *p)
{
    joust_planner_destroy(&p->planner);
    joust_sparse_plan_destroy(&p->stream);
    for (uint32_t i = 0; i < p->n; i++) {
        free(p->imgs[i].uri);
        free(p->imgs[i].caption);
    }
    free(p->imgs);
    free(p->text);
    free(p);
}

void coord_prompt_release(coord *c, prompt_slot *p)
{
    if (--p->refs == 0) {
        joust_u64map_del(&c->prompts, p->prompt_id);
        prompt_slot_free(p);
    }
}

/* The caption of an image of a grouped run: its own prompt's text (the
 * last prompt read is kept: a prompt's images are usually adjacent). */
static char *caption_of(coord *c, uint64_t pid, Joust__PromptRecord **last)
{
    if (!*last || (*last)->prompt_id != pid) {
        joust_rec_free(*last);
        *last = NULL;
        if (joust_rec_prompt_get(c->st, pid, last) < 0) {
            log_warn("prompt %" PRIu64 ": no record; its images get an empty caption", pid);
            return xstrdup("");
        }
    }
    return xstrdup((*last)->text);
}

/* Image id's record, read through c->images: one cursor for a planning
 * round (or a recovery), which walks a prompt's images with next (a
 * prompt's images have ascending, mostly consecutive ids) and seeks only
 * across gaps, instead of one point lookup per image. */
static int image_at(coord *c, uint64_t id, Joust__ImageRecord **out)
{
    int rc;
    if (!c->images && (rc = joust_rec_cursor_new(c->st, JOUST_REC_IMAGES, 0, &c->images)) < 0)
        return rc;
    uint64_t at = joust_rec_cursor_id(c->images);
    for (int steps = 0; at && at < id && steps < 4; steps++) {
        joust_rec_cursor_next(c->images);
        at = joust_rec_cursor_id(c->images);
    }
    if (at != id) {
        joust_rec_cursor_seek(c->images, id);
        at = joust_rec_cursor_id(c->images);
    }
    if (at != id)
        return (rc = joust_rec_cursor_error(c->images)) < 0 ? rc : JOUST_ENOTFOUND;
    *out = joust_rec_cursor_image(c->images);
    joust_rec_cursor_next(c->images);
    return *out ? 0 : JOUST_ECORRUPT;
}

/* Ends a planning round: the next reads the store afresh. */
static void images_done(coord *c) { joust_rec_cursor_destroy(&c->images); }

/* Loads a prompt group (text and the references of the images the run
 * covers) from the store; in a grouped run, a group (no text; each image
 * with its caption). */
static int prompt_load(coord *c, uint64_t pid, const uint64_t *ids, size_t n, prompt_slot **out)
{
    uint64_t ptr;
    if (joust_u64map_get(&c->prompts, pid, &ptr)) {
        *out = (prompt_slot *)(uintptr_t)ptr;
        return 0;
    }
    Joust__PromptRecord *pr = NULL, grp = JOUST__PROMPT_RECORD__INIT;
    int rc = 0;
    if (c->grouped) {
        grp.text = "";
        if (!ids && (rc = joust_groups_find(&c->groups, pid, &ids, &n)) < 0)
            return rc;
    } else if ((rc = joust_rec_prompt_get(c->st, pid, &pr)) < 0) {
        return rc;
    }
    uint64_t *owned = NULL;
    if (!ids && (rc = joust_rec_prompt_members(c->st, pid, &owned, &n)) < 0) {
        joust_rec_free(pr);
        return rc;
    }
    if (!owned) {
        owned = xmalloc((n ? n : 1) * sizeof *owned);
        memcpy(owned, ids, n * sizeof *owned);
    }
    ids = NULL;
    size_t kept = 0; /* the run's images only: other runs' share the prompt;
                      * not its collapsed near-duplicates (joust run --dedup) */
    for (size_t i = 0; i < n; i++)
        if (coord_plans_image(c, owned[i]))
            owned[kept++] = owned[i];
    n = kept;
    prompt_slot *p = xcalloc(1, sizeof *p);
    p->prompt_id = pid;
    p->text = xstrdup(pr ? pr->text : grp.text);
    joust_rec_free(pr);
    Joust__PromptRecord *last = NULL;
    p->imgs = xcalloc(n ? n : 1, sizeof *p->imgs);
    char **models = xcalloc(n ? n : 1, sizeof *models);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Joust__ImageRecord *ir;
        if ((rc = image_at(c, owned[i], &ir)) < 0)
            break;
        uint32_t model = (uint32_t)i; /* the first image with the same model name */
        for (size_t k = 0; k < i && ir->model; k++)
            if (p->imgs[k].model == k && models[k] && !strcmp(models[k], ir->model)) {
                model = (uint32_t)k;
                break;
            }
        models[i] = ir->model ? xstrdup(ir->model) : NULL;
        p->imgs[i] = (img_ref){.id = ir->image_id, .uri = xstrdup(ir->uri), .latent = ir->latent,
                               .has_latent = ir->has_latent, .model = model,
                               .has_content = (uint8_t)ir->has_content_hash,
                               .content = ir->content_hash,
                               .caption = c->grouped ? caption_of(c, ir->prompt_id, &last) : NULL};
        p->n++;
        joust_rec_free(ir);
    }
    for (size_t i = 0; i < n; i++)
        free(models[i]);
    free(models);
    free(owned);
    joust_rec_free(last);
    if (rc < 0) {
        log_error("prompt %" PRIu64 ": cannot load its images: %s", pid, joust_strerror(rc));
        prompt_slot_free(p);
        return rc;
    }
    joust_u64map_put(&c->prompts, pid, (uint64_t)(uintptr_t)p);
    *out = p;
    return 0;
}

static uint32_t alloc_match(coord *c)
{
    if (c->nfree)
        return c->free_slots[--c->nfree];
    xgrow((void **)&c->pool, &c->pool_cap, c->pool_len + 1, sizeof *c->pool);
    return (uint32_t)c->pool_len++;
}

static void add_match(coord *c, uint64_t id, prompt_slot *p, uint32_t a, uint32_t b, int recovered)
{
    uint32_t idx = alloc_match(c);
    c->pool[idx] = (match){.id = id, .p = p, .a = a, .b = b, .attempt = 1, .state = M_PENDING,
                           .recovered = (uint8_t)recovered};
    for (int i = 0; i < HOLDERS; i++)
        c->pool[idx].holders[i] = NO_IDENT;
    p->refs++;
    joust_idmap_put(&c->active, id, idx);
    ring_push(&c->pending, handle_of(c, &c->pool[idx]), 0);
}

/* swiss, adaptive and top-k plan in batches from the results so far. */
static int strategy_waits(joust_strategy s)
{
    return s == JOUST_STRATEGY_SWISS || s == JOUST_STRATEGY_ADAPTIVE || s == JOUST_STRATEGY_TOP_K;
}

/* Gives the prompt its planner (and the reference the planner holds). The
 * seed depends on the run and the prompt only, so a prompt's plan does not
 * depend on what else is planned. */
static int planner_attach(coord *c, prompt_slot *p)
{
    joust_plan_opts o;
    joust_plan_opts_defaults(&o);
    o.order = c->order;
    o.seed = c->run->seed ^ (p->prompt_id * 0x9e3779b97f4a7c15ull);
    o.budget_calls = c->run->budget_calls;
    o.budget_per_image = c->run->budget_per_image;
    if (c->run->has_confidence)
        o.confidence = c->run->confidence;
    o.k = c->run->k;
    if (c->grouped && p->n > (strategy_waits(c->strategy) ? JOUST_PLANNER_MAX_N_BATCH
                                                          : JOUST_PLANNER_MAX_N)) {
        /* k-regular, or adaptive (swiss) rounds (coord_recover checked) */
        uint64_t cap = o.budget_calls, per = (uint64_t)(o.budget_per_image * p->n);
        if (o.budget_per_image > 0 && (cap == 0 || per < cap))
            cap = per ? per : 1;
        int waits = strategy_waits(c->strategy);
        p->stream = waits ? joust_sparse_plan_new_adaptive(p->n, o.k, o.order, o.seed, cap)
                          : joust_sparse_plan_new(p->n, o.k, o.order, o.seed, cap);
        /* Resuming the group where the last session left it: a static
         * plan's i-th match depends on i alone (sparse_plan.h); an
         * adaptive one is replayed by coord_recover. */
        if (!p->stream || (!waits && joust_sparse_plan_skip(p->stream, c->run->group_issued) < 0)) {
            log_error("group %" PRIu64 ": cannot resume its plan at match %" PRIu64, p->prompt_id,
                      c->run->group_issued);
            joust_sparse_plan_destroy(&p->stream);
            return JOUST_EINVAL;
        }
        c->stream = p;
        p->refs++;
        return 0;
    }
    uint32_t *models = xmalloc((p->n ? p->n : 1) * sizeof *models);
    for (uint32_t i = 0; i < p->n; i++)
        models[i] = p->imgs[i].model;
    o.models = models;
    p->planner = joust_planner_new(c->strategy, p->n, &o);
    free(models);
    if (!p->planner) {
        log_error("prompt %" PRIu64 ": invalid planning options for strategy %s", p->prompt_id,
                  c->run->strategy);
        return JOUST_EINVAL;
    }
    p->refs++;
    return 0;
}

/* Answers match id (a, b) with an earlier OK outcome of the same judge
 * settings, prompt and image contents (reuse.h), copied into the open batch
 * with the match record. Returns 1 when it did. */
static int reuse(coord *c, prompt_slot *p, uint64_t id, uint32_t a, uint32_t b)
{
    const img_ref *fa = &p->imgs[a], *fb = &p->imgs[b];
    uint32_t from_run;
    uint64_t from_match;
    if (c->cfg->no_reuse || !fa->has_content || !fb->has_content)
        return 0;
    /* What the judge sees: the prompt, or in a grouped run both captions. */
    char *text = fa->caption ? xmalloc(strlen(fa->caption) + strlen(fb->caption) + 2) : NULL;
    if (text)
        sprintf(text, "%s\x1f%s", fa->caption, fb->caption);
    int found = joust_rec_reuse_get(c->st, joust_reuse_key(c->reuse_salt, text ? text : p->text,
                                                           fa->content, fb->content),
                                    &from_run, &from_match) == 0;
    free(text);
    if (!found)
        return 0;
    Joust__OutcomeRecord *o;
    if (joust_rec_outcome_get(c->st, from_run, from_match, &o) < 0)
        return 0; /* its run was removed: judge it */
    int ok = o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first;
    char *reason = NULL;
    size_t len;
    if (ok && joust_rec_rationale_get(c->st, from_run, from_match, &reason, &len) < 0)
        reason = NULL;
    if (ok) {
        o->prompt_id = p->prompt_id;
        o->first = fa->id;
        o->second = fb->id;
        o->has_reused_run = o->has_reused_match = 1;
        o->reused_run = from_run;
        o->reused_match = from_match;
        o->has_committed_ms = 1;
        o->committed_ms = joust_wall_ms();
        joust_rec_outcome_put(c->batch, c->run, id, o, reason, NULL);
        c->run->has_outcomes_reused = 1;
        c->run->outcomes_reused++;
        c->sum->reused++;
        c->reused_staged++;
        if (p->planner && strategy_waits(c->strategy))
            joust_planner_observe(p->planner, a, b, o->p_first);
    }
    free(reason);
    joust_rec_free(o);
    return ok;
}

/* 1 when the window of planned matches is full. */
static int window_full(const coord *c)
{
    return c->active.len + c->reused_staged >= c->cfg->window;
}

/* Up to 256 pairs from the slot's planner, or from its stream while the
 * window has room (the stream's position goes into the run record, written
 * with the match records). */
static size_t next_pairs(coord *c, prompt_slot *p, joust_pair *pairs)
{
    if (p->planner)
        return joust_planner_next(p->planner, pairs, 256);
    if (!p->stream || window_full(c))
        return 0;
    size_t k = joust_sparse_plan_next(p->stream, pairs, 256);
    c->run->has_group_issued = 1;
    c->run->group_issued = joust_sparse_plan_issued(p->stream);
    return k;
}

/* Takes every match the planner has ready into the queue (or answers it
 * with an earlier outcome); drops the planner once it is done. A stream
 * gives what the window takes; once used up, the group is done. */
void coord_planner_pull(coord *c, prompt_slot *p)
{
    joust_pair pairs[256];
    uint64_t ids[256][2];
    size_t k;
    while ((k = next_pairs(c, p, pairs)) > 0) {
        /* One match record for the step: its matches take consecutive ids
         * (docs/storage.md "Match records"). */
        uint64_t first_id = c->run->next_match_id;
        size_t n = 0;
        for (size_t i = 0; i < k; i++) {
            if (p->imgs[pairs[i].first].old && p->imgs[pairs[i].second].old)
                continue; /* planned (or passed over) in an earlier pass */
            uint64_t id = c->run->next_match_id++;
            ids[n][0] = p->imgs[pairs[i].first].id;
            ids[n++][1] = p->imgs[pairs[i].second].id;
            if (!reuse(c, p, id, pairs[i].first, pairs[i].second))
                add_match(c, id, p, pairs[i].first, pairs[i].second, 0);
            c->sum->planned++;
        }
        if (n)
            joust_rec_matches_put(c->batch, c->run->run_id, first_id, p->prompt_id, ids, n);
    }
    if (p->planner && joust_planner_done(p->planner)) {
        joust_planner_destroy(&p->planner);
        coord_prompt_release(c, p);
    }
    if (p->stream && joust_sparse_plan_issued(p->stream) == joust_sparse_plan_total(p->stream)) {
        joust_sparse_plan_destroy(&p->stream);
        c->run->group_issued = 0;
        if (c->run->plan_cursor <= p->prompt_id) /* the group is planned */
            c->run->plan_cursor = p->prompt_id + 1;
        if (c->stream == p) /* after a replay of several groups, a later one may hold it */
            c->stream = NULL;
        coord_prompt_release(c, p);
    }
}

/* In a pass after the first (a manifest added to the run), what the
 * prompt needs: 0 nothing (no new image, or a batch planner that recovery
 * re-opened with them), 1 planning, its old images flagged in mark. Static
 * strategies plan the whole prompt again and keep only the pairs with a new
 * image; batch strategies re-open the planner (coord_recover) unless the
 * prompt had fewer than two images before, when it is planned afresh. */
static int pass_needs(coord *c, uint64_t pid, const uint64_t *ids, size_t n, uint8_t *mark)
{
    int q = joust_run_prompt_pass(c->run, pid);
    size_t mine = 0, old = 0;
    for (size_t i = 0; i < n; i++) {
        int pass = joust_run_image_pass(c->run, ids[i]);
        if (pass < 0 || !coord_plans_image(c, ids[i]))
            continue;
        mark[mine++] = pass <= q;
        old += pass <= q;
    }
    if (mine == old || mine < 2)
        return 0;
    if (strategy_waits(c->strategy) && old >= 2)
        return 0;
    if (strategy_waits(c->strategy))
        memset(mark, 0, mine);
    return 1;
}

static void plan_prompt(coord *c, uint64_t pid, const uint64_t *ids, size_t n)
{
    c->prompts_planned++;
    size_t mine = 0;
    for (size_t i = 0; i < n; i++)
        mine += coord_plans_image(c, ids[i]);
    if (mine < 2)
        return; /* a single image has nothing to be compared with */
    uint8_t *mark = NULL;
    if (c->run->plan_pass > 0) {
        mark = xcalloc(n ? n : 1, 1);
        if (!pass_needs(c, pid, ids, n, mark)) {
            free(mark);
            return;
        }
    }
    prompt_slot *p;
    if (prompt_load(c, pid, ids, n, &p) < 0) {
        free(mark);
        return;
    }
    p->refs++; /* held while planning so it cannot be freed midway */
    if (!p->planner && !p->stream && planner_attach(c, p) == 0) {
        for (uint32_t i = 0; mark && i < p->n; i++)
            p->imgs[i].old = mark[i];
        coord_planner_pull(c, p);
    }
    free(mark);
    coord_prompt_release(c, p);
}

static int plan_one(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    coord *c = arg;
    plan_prompt(c, pid, ids, n);
    return window_full(c) || c->stream;
}

/* Whether to walk the prompts now: once a quarter of the window has
 * drained, or when nothing is left to dispatch. A walk opens a prompt
 * iterator and an image cursor and seeks both; walking every time a few
 * matches finish paid that for one prompt at a time (the largest part of
 * planning's CPU in the profile), a quarter shares it among many. */
static int walk_due(const coord *c)
{
    return c->active.len + c->reused_staged + c->cfg->window / 4 <= c->cfg->window ||
           c->pending.len == 0;
}

/* Plans prompt groups from the run's cursor until the window is full. The
 * match records and the advanced cursor go into the open batch, so they
 * become durable with (or before) the first outcome that refers to them. */
int coord_plan_more(coord *c)
{
    if (c->run->planning_done || window_full(c))
        return 0;
    int rc = 0;
    if (c->stream) { /* a group streamed before the others go on */
        coord_planner_pull(c, c->stream);
        if (c->stream) {
            joust_rec_run_put(c->batch, c->run);
            return 0;
        }
    }
    if (!walk_due(c))
        return 0;
    rc = c->grouped ? joust_groups_walk(&c->groups, c->run->plan_cursor, 0, plan_one, c,
                                        &c->run->plan_cursor)
                    : joust_rec_prompt_walk(c->st, c->run->plan_cursor, 0, plan_one, c,
                                            &c->run->plan_cursor);
    images_done(c);
    if (rc < 0)
        return rc;
    if (c->stream) /* the walk stopped in it: the cursor stays on it */
        c->run->plan_cursor = c->stream->prompt_id;
    if (rc == 0) {
        c->run->has_planning_done = 1;
        c->run->planning_done = 1;
    }
    joust_rec_run_put(c->batch, c->run);
    return 0;
}

/* Positions oi on the first outcome with match id >= id; returns 1 when
 * that outcome's id is id, else 0. */
static int outcome_at(joust_rec_cursor_t *oi, uint64_t id)
{
    for (; joust_rec_cursor_valid(oi); joust_rec_cursor_next(oi)) {
        uint64_t oid = joust_rec_cursor_id(oi);
        if (oid >= id)
            return oid == id;
    }
    return 0;
}

/* Replays one stored match into its prompt's batch planner: issued, and
 * observed when its outcome is in. */
static void replay(prompt_slot *p, uint32_t a, uint32_t b, joust_rec_cursor_t *oi, int done)
{
    int rc = p->planner ? joust_planner_mark_issued(p->planner, a, b)
                        : joust_sparse_plan_replay(p->stream, a, b);
    if (rc < 0 || !done)
        return;
    Joust__OutcomeRecord *o = joust_rec_cursor_outcome(oi);
    int ok = o && o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first;
    double pf = ok ? o->p_first : JOUST_PLANNER_FAILED;
    if (p->planner)
        joust_planner_observe(p->planner, a, b, pf);
    else
        joust_sparse_plan_observe(p->stream, a, b, pf);
    joust_rec_free(o);
}

/* Lets every loaded prompt's planner issue what it has ready (after a
 * replay, a batch that completed before the crash has its next batch
 * planned here). */
static void pull_all(coord *c)
{
    prompt_slot **slots = xmalloc((c->prompts.len + 1) * sizeof *slots);
    size_t n = 0;
    for (size_t i = 0; i < c->prompts.cap; i++)
        if (c->prompts.keys[i]) {
            slots[n] = (prompt_slot *)(uintptr_t)c->prompts.vals[i];
            slots[n++]->refs++; /* pulling may release it */
        }
    for (size_t i = 0; i < n; i++) {
        coord_planner_pull(c, slots[i]);
        coord_prompt_release(c, slots[i]);
    }
    free(slots);
}

void coord_planning_free(coord *c)
{
    joust_groups_free(&c->groups);
}

/* A grouped run's groups, loaded once per session (the images a run covers
 * change only between sessions), and checked against the strategy: a group
 * over the dense planners' limits can only be paired k-regular, streamed. */
static int groups_load(coord *c)
{
    c->grouped = joust_run_grouped(c->run);
    if (!c->grouped)
        return 0;
    int rc = joust_groups_load(c->st, c->run, &c->groups);
    if (rc < 0)
        return rc;
    c->prompts_total = c->groups.ng;
    uint32_t limit = strategy_waits(c->strategy) ? JOUST_PLANNER_MAX_N_BATCH : JOUST_PLANNER_MAX_N;
    char how[160];
    for (size_t g = 0; g < c->groups.ng; g++) {
        uint64_t n = c->groups.off[g + 1] - c->groups.off[g];
        int streams = c->strategy == JOUST_STRATEGY_K_REGULAR || c->strategy == JOUST_STRATEGY_SWISS ||
                      c->strategy == JOUST_STRATEGY_ADAPTIVE;
        if (n <= limit || (streams && n <= UINT32_MAX))
            continue;
        log_error("run '%s' (groups: %s): a group of %" PRIu64 " images (group %" PRIu64 ") is over "
                  "the %u images strategy %s can pair; use --strategy k-regular or adaptive "
                  "(any size)",
                  c->run->name, joust_run_grouping(c->run, how, sizeof how), n, c->groups.gid[g],
                  limit, c->run->strategy);
        return JOUST_EINVAL;
    }
    log_info("run '%s': %zu groups (%s)", c->run->name, c->groups.ng,
             joust_run_grouping(c->run, how, sizeof how));
    return 0;
}

/* After a restart: every planned match without an outcome is pending. With
 * a batch strategy each started prompt's planner is rebuilt from its stored
 * matches and outcomes, so budgets stay exact. */
int coord_recover(coord *c)
{
    joust_rec_cursor_t *mi, *oi;
    int rc = groups_load(c);
    if (rc < 0)
        return rc;
    rc = joust_rec_cursor_new(c->st, JOUST_REC_MATCHES, c->run->run_id, &mi);
    if (rc < 0)
        return rc;
    if ((rc = joust_rec_cursor_new(c->st, JOUST_REC_OUTCOMES, c->run->run_id, &oi)) < 0) {
        joust_rec_cursor_destroy(&mi);
        return rc;
    }
    int waits = strategy_waits(c->strategy);
    uint64_t recovered = 0, done = 0;
    for (; joust_rec_cursor_valid(mi); joust_rec_cursor_next(mi)) {
        uint64_t id = joust_rec_cursor_id(mi);
        int ov = outcome_at(oi, id);
        if (ov)
            done++;
        if (ov && !waits)
            continue;
        Joust__MatchRecord *mr = joust_rec_cursor_match(mi);
        prompt_slot *p;
        if (!mr || prompt_load(c, mr->prompt_id, NULL, 0, &p) < 0) {
            log_error("match %" PRIu64 ": stored record unusable; skipped", id);
            joust_rec_free(mr);
            continue;
        }
        p->refs++;
        uint32_t a = UINT32_MAX, b = UINT32_MAX;
        for (uint32_t i = 0; i < p->n; i++) {
            if (p->imgs[i].id == mr->first) a = i;
            if (p->imgs[i].id == mr->second) b = i;
        }
        joust_rec_free(mr);
        if (a != UINT32_MAX && b != UINT32_MAX) {
            if (waits && (p->planner || p->stream || planner_attach(c, p) == 0))
                replay(p, a, b, oi, ov);
            if (!ov) {
                add_match(c, id, p, a, b, 1);
                recovered++;
            }
        }
        coord_prompt_release(c, p);
    }
    rc = joust_rec_cursor_error(mi) ? joust_rec_cursor_error(mi) : joust_rec_cursor_error(oi);
    images_done(c);
    joust_rec_cursor_destroy(&mi);
    joust_rec_cursor_destroy(&oi);
    c->sum->planned = recovered + done;
    c->done_before = done;
    if (waits)
        pull_all(c);
    if (recovered || done)
        log_info("resuming run '%s': %" PRIu64 " matches done, %" PRIu64 " to judge again",
                 c->run->name, done, recovered);
    return rc;
}
