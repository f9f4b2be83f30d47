#include "coordinator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bytes.h"
#include "clock.h"
#include "committer.h"
#include "curve.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "pairing.h"
#include "planner.h"
#include "records.h"
#include "rng.h"
#include "run.h"
#include "u64map.h"
#include "wire.h"
#include "xalloc.h"

/* ------------------------------------------------------------ state ---- */

typedef struct {
    uint64_t id;
    char *uri;
    double latent;
    int has_latent;
    uint32_t model; /* index of its generator model within the prompt */
} img_ref;

/* A planned prompt group, kept while any of its matches is unfinished or
 * its planner may still ask for more (each holds a reference). */
typedef struct {
    uint64_t prompt_id;
    char *text;
    uint32_t n, refs;
    img_ref *imgs;
    joust_planner *planner; /* NULL once it has nothing more to plan */
} prompt_slot;

enum { M_PENDING = 1, M_LEASED, M_COMMITTING };

typedef struct {
    uint64_t id;
    prompt_slot *p;
    uint32_t a, b;      /* indices into p->imgs, presentation order */
    uint32_t attempt;   /* current attempt, 1-based */
    uint32_t worker;    /* lessee, when leased */
    uint8_t state;
    int64_t deadline_ms;
} match;

typedef struct {
    unsigned char rid[256];
    size_t rid_len;
    char name[128];
    uint32_t slots;
    int64_t last_seen, last_sent;
    int alive;
    uint64_t *acks; /* committed match ids to acknowledge */
    size_t nacks, acks_cap;
    uint32_t outstanding; /* matches leased to this peer: the credit in use */
} peer;

/* A FIFO of match ids with push-front for re-queued matches. Entries may be
 * stale (the match finished or moved on): readers re-check the match. */
typedef struct {
    uint64_t *v;
    size_t head, len, cap;
} ring;

typedef struct {
    uint32_t worker;
    uint64_t match_id;
} pending_ack;

typedef struct {
    joust_store_t *st;
    Joust__RunRecord *run;
    const joust_coord_config *cfg;
    joust_order_policy order;
    joust_strategy strategy;
    void *ctx, *sock;

    match *pool;
    size_t pool_len, pool_cap;
    uint32_t *free_slots;
    size_t nfree, free_cap;
    joust_u64map_t active;   /* match id -> pool index */
    joust_u64map_t prompts;  /* prompt id -> prompt_slot* */
    ring pending, leases;

    peer *peers;
    size_t npeers, peers_cap;
    joust_u64map_t peer_index; /* hash of routing id -> peers index + 1 */
    uint32_t rr;

    /* Staged for the next group commit, and the one being written. */
    joust_batch_t *batch;
    uint32_t batch_results;
    int64_t batch_first_ms;
    uint64_t *committing, *flight;
    size_t ncommitting, committing_cap, nflight, flight_cap;
    pending_ack *cacks, *flight_acks;
    size_t ncacks, cacks_cap, nflight_acks, flight_acks_cap;
    joust_committer_t *committer;

    Joust__MatchJob *jobs;
    Joust__MatchJob **job_ptrs;
    Joust__ImageRef *refs;

    joust_coord_summary *sum;
    uint64_t prompts_total, prompts_planned;
    int64_t start_ms, last_progress_ms;
} coord;

void joust_coord_config_defaults(joust_coord_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bind = "tcp://127.0.0.1:5555";
    cfg->window = 65536;
    cfg->job_matches = 64;
    cfg->commit_ms = 50;
    cfg->commit_max = 1000;
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 5;
    cfg->drain_ms = 2000;
}

static void ring_push(ring *r, uint64_t v, int front)
{
    if (r->len == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 1024;
        uint64_t *nv = xmalloc(ncap * sizeof *nv);
        for (size_t i = 0; i < r->len; i++)
            nv[i] = r->v[(r->head + i) % r->cap];
        free(r->v);
        r->v = nv;
        r->cap = ncap;
        r->head = 0;
    }
    if (front) {
        r->head = (r->head + r->cap - 1) % r->cap;
        r->v[r->head] = v;
    } else {
        r->v[(r->head + r->len) % r->cap] = v;
    }
    r->len++;
}

static uint64_t ring_peek(const ring *r) { return r->v[r->head]; }

static uint64_t ring_pop(ring *r)
{
    uint64_t v = r->v[r->head];
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return v;
}

/* Queues hold handles, not ids: the pool index and the low half of the id,
 * so a queue entry finds its match without a hash lookup and a stale entry
 * (slot freed or reused) is recognised. */
static uint64_t handle_of(const coord *c, const match *m)
{
    return (uint64_t)(m - c->pool) << 32 | (uint32_t)m->id;
}

static match *match_of(coord *c, uint64_t h)
{
    size_t idx = (size_t)(h >> 32);
    match *m = idx < c->pool_len ? &c->pool[idx] : NULL;
    return m && m->state && (uint32_t)m->id == (uint32_t)h ? m : NULL;
}

static match *find_match(coord *c, uint64_t id)
{
    uint64_t idx;
    return joust_u64map_get(&c->active, id, &idx) ? &c->pool[idx] : NULL;
}

/* ---------------------------------------------------------- planning --- */

static void prompt_slot_free(prompt_slot *p)
{
    joust_planner_destroy(&p->planner);
    for (uint32_t i = 0; i < p->n; i++)
        free(p->imgs[i].uri);
    free(p->imgs);
    free(p->text);
    free(p);
}

static void prompt_release(coord *c, prompt_slot *p)
{
    if (--p->refs == 0) {
        joust_u64map_del(&c->prompts, p->prompt_id);
        prompt_slot_free(p);
    }
}

/* Loads a prompt group (text and image references) from the store. */
static int prompt_load(coord *c, uint64_t pid, const uint64_t *ids, size_t n, prompt_slot **out)
{
    uint64_t ptr;
    if (joust_u64map_get(&c->prompts, pid, &ptr)) {
        *out = (prompt_slot *)(uintptr_t)ptr;
        return 0;
    }
    Joust__PromptRecord *pr;
    int rc = prompt_get(c->st, pid, &pr);
    if (rc < 0)
        return rc;
    uint64_t *owned = NULL;
    if (!ids && (rc = prompt_members(c->st, pid, &owned, &n)) < 0) {
        record_free(pr);
        return rc;
    }
    prompt_slot *p = xcalloc(1, sizeof *p);
    p->prompt_id = pid;
    p->text = xstrdup(pr->text);
    record_free(pr);
    p->imgs = xcalloc(n ? n : 1, sizeof *p->imgs);
    char **models = xcalloc(n ? n : 1, sizeof *models);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Joust__ImageRecord *ir;
        if ((rc = image_get(c->st, ids ? ids[i] : owned[i], &ir)) < 0)
            break;
        uint32_t model = (uint32_t)i; /* the first image with the same model name */
        for (size_t k = 0; k < i && ir->model; k++)
            if (p->imgs[k].model == k && models[k] && !strcmp(models[k], ir->model)) {
                model = (uint32_t)k;
                break;
            }
        models[i] = ir->model ? xstrdup(ir->model) : NULL;
        p->imgs[i] = (img_ref){ir->image_id, xstrdup(ir->uri), ir->latent, ir->has_latent, model};
        p->n++;
        record_free(ir);
    }
    for (size_t i = 0; i < n; i++)
        free(models[i]);
    free(models);
    free(owned);
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

static void add_match(coord *c, uint64_t id, prompt_slot *p, uint32_t a, uint32_t b)
{
    uint32_t idx = alloc_match(c);
    c->pool[idx] = (match){.id = id, .p = p, .a = a, .b = b, .attempt = 1, .state = M_PENDING};
    p->refs++;
    joust_u64map_put(&c->active, id, idx);
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

/* Takes every match the planner has ready into the queue; drops the planner
 * once it is done. */
static void planner_pull(coord *c, prompt_slot *p)
{
    joust_pair pairs[256];
    size_t k;
    while (p->planner && (k = joust_planner_next(p->planner, pairs, 256)) > 0) {
        for (size_t i = 0; i < k; i++) {
            uint64_t id = c->run->next_match_id++;
            Joust__MatchRecord mr = JOUST__MATCH_RECORD__INIT;
            mr.prompt_id = p->prompt_id;
            mr.first = p->imgs[pairs[i].first].id;
            mr.second = p->imgs[pairs[i].second].id;
            unsigned char key[RUN_KEY_LEN];
            run_key(key, c->run->run_id, id);
            record_put(c->batch, JOUST_CF_MATCHES, key, sizeof key, &mr.base);
            add_match(c, id, p, pairs[i].first, pairs[i].second);
        }
        c->sum->planned += k;
    }
    if (p->planner && joust_planner_done(p->planner)) {
        joust_planner_destroy(&p->planner);
        prompt_release(c, p);
    }
}

static void plan_prompt(coord *c, uint64_t pid, const uint64_t *ids, size_t n)
{
    c->prompts_planned++;
    if (n < 2)
        return; /* a single image has nothing to be compared with */
    prompt_slot *p;
    if (prompt_load(c, pid, ids, n, &p) < 0)
        return;
    p->refs++; /* held while planning so it cannot be freed midway */
    if (!p->planner && planner_attach(c, p) == 0)
        planner_pull(c, p);
    prompt_release(c, p);
}

static int plan_one(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    coord *c = arg;
    plan_prompt(c, pid, ids, n);
    return c->active.len >= c->cfg->window;
}

/* Plans prompt groups from the run's cursor until the window is full. The
 * match records and the advanced cursor go into the open batch, so they
 * become durable with (or before) the first outcome that refers to them. */
static int plan_more(coord *c)
{
    if (c->run->planning_done || c->active.len >= c->cfg->window)
        return 0;
    int rc = prompt_walk(c->st, c->run->plan_cursor, 0, plan_one, c, &c->run->plan_cursor);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        c->run->has_planning_done = 1;
        c->run->planning_done = 1;
    }
    joust_run_put(c->batch, c->run);
    return 0;
}

/* Positions oi on the first outcome with match id >= id; returns that
 * outcome's bytes when its id is id, else NULL. */
static const void *outcome_at(joust_iter_t *oi, uint64_t id, size_t *len)
{
    for (; joust_iter_valid(oi); joust_iter_next(oi)) {
        size_t kl;
        uint64_t oid = joust_get_be64((const unsigned char *)joust_iter_key(oi, &kl) + 4);
        if (oid >= id)
            return oid == id ? joust_iter_value(oi, len) : NULL;
    }
    return NULL;
}

/* Replays one stored match into its prompt's batch planner: issued, and
 * observed when its outcome is in. */
static void replay(prompt_slot *p, uint32_t a, uint32_t b, const void *ov, size_t olen)
{
    if (joust_planner_mark_issued(p->planner, a, b) < 0 || !ov)
        return;
    Joust__OutcomeRecord *o =
        (Joust__OutcomeRecord *)record_unpack(&joust__outcome_record__descriptor, ov, olen);
    int ok = o && o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first;
    joust_planner_observe(p->planner, a, b, ok ? o->p_first : JOUST_PLANNER_FAILED);
    record_free(o);
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
        planner_pull(c, slots[i]);
        prompt_release(c, slots[i]);
    }
    free(slots);
}

/* After a restart: every planned match without an outcome is pending. With
 * a batch strategy each started prompt's planner is rebuilt from its stored
 * matches and outcomes, so budgets stay exact. */
static int recover(coord *c)
{
    unsigned char prefix[4];
    run_prefix(prefix, c->run->run_id);
    joust_iter_t *mi, *oi;
    int rc = joust_iter_new(c->st, JOUST_CF_MATCHES, prefix, 4, &mi);
    if (rc < 0)
        return rc;
    if ((rc = joust_iter_new(c->st, JOUST_CF_OUTCOMES, prefix, 4, &oi)) < 0) {
        joust_iter_destroy(&mi);
        return rc;
    }
    int waits = strategy_waits(c->strategy);
    uint64_t recovered = 0, done = 0;
    for (; joust_iter_valid(mi); joust_iter_next(mi)) {
        size_t klen, vlen, olen = 0;
        uint64_t id = joust_get_be64((const unsigned char *)joust_iter_key(mi, &klen) + 4);
        const void *ov = outcome_at(oi, id, &olen);
        if (ov)
            done++;
        if (ov && !waits)
            continue;
        const void *v = joust_iter_value(mi, &vlen);
        Joust__MatchRecord *mr = (Joust__MatchRecord *)record_unpack(&joust__match_record__descriptor, v, vlen);
        prompt_slot *p;
        if (!mr || prompt_load(c, mr->prompt_id, NULL, 0, &p) < 0) {
            log_error("match %" PRIu64 ": stored record unusable; skipped", id);
            record_free(mr);
            continue;
        }
        p->refs++;
        uint32_t a = UINT32_MAX, b = UINT32_MAX;
        for (uint32_t i = 0; i < p->n; i++) {
            if (p->imgs[i].id == mr->first) a = i;
            if (p->imgs[i].id == mr->second) b = i;
        }
        record_free(mr);
        if (a != UINT32_MAX && b != UINT32_MAX) {
            if (waits && (p->planner || planner_attach(c, p) == 0))
                replay(p, a, b, ov, olen);
            if (!ov) {
                add_match(c, id, p, a, b);
                recovered++;
            }
        }
        prompt_release(c, p);
    }
    rc = joust_iter_error(mi) ? joust_iter_error(mi) : joust_iter_error(oi);
    joust_iter_destroy(&mi);
    joust_iter_destroy(&oi);
    c->sum->planned = recovered + done;
    c->sum->ok = done; /* refined by the final summary from the store */
    if (waits)
        pull_all(c);
    if (recovered || done)
        log_info("resuming run '%s': %" PRIu64 " matches done, %" PRIu64 " to judge again",
                 c->run->name, done, recovered);
    return rc;
}

/* ---------------------------------------------------------- workers ---- */

static peer *peer_find(coord *c, const joust_wire_msg *m, int create)
{
    uint64_t h = joust_hash64(m->rid, m->rid_len) | 1, idx;
    if (joust_u64map_get(&c->peer_index, h, &idx))
        return &c->peers[idx];
    if (!create)
        return NULL;
    xgrow((void **)&c->peers, &c->peers_cap, c->npeers + 1, sizeof *c->peers);
    peer *p = &c->peers[c->npeers];
    memset(p, 0, sizeof *p);
    memcpy(p->rid, m->rid, m->rid_len);
    p->rid_len = m->rid_len;
    snprintf(p->name, sizeof p->name, "unregistered");
    joust_u64map_put(&c->peer_index, h, c->npeers++);
    return p;
}

static int peer_send(coord *c, peer *p, int cmd, const ProtobufCMessage *body)
{
    int rc = joust_wire_send(c->sock, p->rid, p->rid_len, cmd, body);
    if (rc == 0)
        p->last_sent = joust_now_ms();
    else if (rc == JOUST_ENOTFOUND && p->alive) {
        log_warn("worker %s is gone", p->name);
        p->alive = 0;
    }
    return rc;
}

static void abandon(coord *c, match *m, const char *why);

/* A lease ends — result recorded (from whichever peer), re-queued, expired —
 * and its credit goes back to the peer that held it. Counting at the end of
 * the lease rather than at the lessee's result keeps the count right when
 * another peer's (e.g. resent) result settles the match first. */
static void end_lease(coord *c, match *m)
{
    if (m->state != M_LEASED)
        return;
    peer *p = &c->peers[m->worker];
    if (p->outstanding)
        p->outstanding--;
    m->state = M_PENDING; /* no longer leased; the caller sets what comes next */
}

/* Puts a leased or failed match back in front of the queue, or gives up
 * on it after max_attempts. */
static void requeue(coord *c, match *m, const char *why)
{
    end_lease(c, m);
    if (m->attempt >= c->run->max_attempts) {
        abandon(c, m, why);
        return;
    }
    m->attempt++;
    m->state = M_PENDING;
    c->sum->retried++;
    ring_push(&c->pending, handle_of(c, m), 1);
}

static void drop_peer(coord *c, peer *p, const char *why)
{
    log_warn("worker %s: %s; re-dispatching its matches", p->name, why);
    p->alive = 0;
    p->outstanding = 0;
    uint32_t pi = (uint32_t)(p - c->peers);
    for (size_t i = 0; i < c->pool_len; i++) {
        match *m = &c->pool[i];
        if (m->state == M_LEASED && m->worker == pi && find_match(c, m->id) == m)
            requeue(c, m, "its worker disappeared");
    }
}

static void send_acks(coord *c)
{
    for (size_t i = 0; i < c->npeers; i++) {
        peer *p = &c->peers[i];
        for (size_t off = 0; off < p->nacks; off += 65536) {
            Joust__Ack ack = JOUST__ACK__INIT;
            ack.run_id = c->run->run_id;
            ack.match_ids = p->acks + off;
            ack.n_match_ids = p->nacks - off < 65536 ? p->nacks - off : 65536;
            peer_send(c, p, JOUST_CMD_ACK, &ack.base);
        }
        p->nacks = 0;
    }
}

static void ack_later(peer *p, uint64_t match_id)
{
    xgrow((void **)&p->acks, &p->acks_cap, p->nacks + 1, sizeof *p->acks);
    p->acks[p->nacks++] = match_id;
}

/* ---------------------------------------------------------- recording -- */

static void stage_outcome(coord *c, match *m, const Joust__MatchResult *x, const char *worker,
                          const char *judge)
{
    Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
    o.prompt_id = m->p->prompt_id;
    o.first = m->p->imgs[m->a].id;
    o.second = m->p->imgs[m->b].id;
    o.status = x->status;
    o.has_p_first = x->has_p_first && x->status == JOUST__OUTCOME_STATUS__OK;
    o.p_first = x->p_first;
    o.has_answer = x->has_answer;
    o.answer = x->answer;
    o.judge = (char *)judge;
    o.worker = (char *)worker;
    o.has_attempt = 1;
    o.attempt = x->attempt;
    o.has_latency_us = x->has_latency_us;
    o.latency_us = x->latency_us;
    o.has_tokens = x->has_tokens;
    o.tokens = x->tokens;
    o.error = x->error;
    o.has_failed_image_id = x->has_failed_image_id;
    o.failed_image_id = x->failed_image_id;
    o.has_committed_ms = 1;
    o.committed_ms = joust_wall_ms();
    unsigned char key[RUN_KEY_LEN];
    run_key(key, c->run->run_id, m->id);
    record_put(c->batch, JOUST_CF_OUTCOMES, key, sizeof key, &o.base);
    if (x->reason && x->reason[0])
        joust_batch_put(c->batch, JOUST_CF_RATIONALES, key, sizeof key, x->reason, strlen(x->reason));
    if (x->status == JOUST__OUTCOME_STATUS__OK)
        c->sum->ok++;
    else
        c->sum->failed++;
    end_lease(c, m);
    m->state = M_COMMITTING;
    xgrow((void **)&c->committing, &c->committing_cap, c->ncommitting + 1, sizeof *c->committing);
    c->committing[c->ncommitting++] = handle_of(c, m);
    if (c->batch_results++ == 0)
        c->batch_first_ms = joust_now_ms();
    /* Last: planning new matches may move the pool, and m with it. */
    prompt_slot *p = m->p;
    if (p->planner) { /* a batch planner learns from every final outcome */
        int ok = x->status == JOUST__OUTCOME_STATUS__OK && x->has_p_first;
        joust_planner_observe(p->planner, m->a, m->b, ok ? x->p_first : JOUST_PLANNER_FAILED);
        planner_pull(c, p);
    }
}

static void abandon(coord *c, match *m, const char *why)
{
    char err[256];
    snprintf(err, sizeof err, "gave up after %u attempts: %s", m->attempt, why);
    Joust__MatchResult x = JOUST__MATCH_RESULT__INIT;
    x.match_id = m->id;
    x.attempt = m->attempt;
    x.status = JOUST__OUTCOME_STATUS__ABANDONED;
    x.error = err;
    log_warn("match %" PRIu64 ": %s", m->id, err);
    stage_outcome(c, m, &x, "", "");
}

static void on_result(coord *c, peer *p, const Joust__Result *r)
{
    if (r->run_id != c->run->run_id) {
        log_warn("worker %s sent results for run %u, not %u; dropped", p->name, r->run_id,
                 c->run->run_id);
        c->sum->rejected += r->n_results;
        for (size_t i = 0; i < r->n_results; i++)
            ack_later(p, r->results[i]->match_id); /* they can never commit here */
        return;
    }
    uint32_t pi = (uint32_t)(p - c->peers);
    for (size_t i = 0; i < r->n_results; i++) {
        const Joust__MatchResult *x = r->results[i];
        match *m = find_match(c, x->match_id);
        if (!m) {
            if (x->match_id < c->run->next_match_id) { /* committed earlier */
                c->sum->duplicates++;
                ack_later(p, x->match_id);
            } else {
                c->sum->rejected++;
                log_warn("worker %s: result for unknown match %" PRIu64 " dropped", p->name, x->match_id);
            }
            continue;
        }
        if (x->attempt > m->attempt) {
            c->sum->rejected++;
            log_warn("worker %s: match %" PRIu64 " attempt %u was never dispatched; dropped",
                     p->name, x->match_id, x->attempt);
            continue;
        }
        if (m->state == M_COMMITTING) { /* a twin result is being committed */
            c->sum->duplicates++;
            xgrow((void **)&c->cacks, &c->cacks_cap, c->ncacks + 1, sizeof *c->cacks);
            c->cacks[c->ncacks++] = (pending_ack){pi, x->match_id};
            continue;
        }
        int retryable = x->status == JOUST__OUTCOME_STATUS__JUDGE_ERROR ||
                        x->status == JOUST__OUTCOME_STATUS__UNPARSEABLE;
        int current = x->attempt == m->attempt && m->state == M_LEASED;
        if (retryable && (!current || m->attempt < c->run->max_attempts)) {
            /* A failure of an older attempt says nothing about the one
             * running now; a failure of the current one is retried. */
            if (current) {
                log_debug("match %" PRIu64 " attempt %u failed: %s", m->id, m->attempt,
                          x->error ? x->error : "");
                requeue(c, m, x->error ? x->error : "judge error");
            }
            ack_later(p, x->match_id); /* nothing to commit for a retried attempt */
            continue;
        }
        stage_outcome(c, m, x, p->name, r->judge ? r->judge : "");
        xgrow((void **)&c->cacks, &c->cacks_cap, c->ncacks + 1, sizeof *c->cacks);
        c->cacks[c->ncacks++] = (pending_ack){pi, x->match_id};
    }
}

#define SWAP(a, b)                                                                           \
    do {                                                                                     \
        __typeof__(a) t_ = (a);                                                              \
        (a) = (b);                                                                           \
        (b) = t_;                                                                            \
    } while (0)

/* Hands the staged batch to the committer thread (one synced write for every
 * staged outcome); the next batch is staged meanwhile. No-op while a write
 * is in flight or when nothing is staged. */
static void commit_begin(coord *c)
{
    if (joust_batch_count(c->batch) == 0 || joust_committer_busy(c->committer))
        return;
    SWAP(c->committing, c->flight);
    SWAP(c->committing_cap, c->flight_cap);
    c->nflight = c->ncommitting;
    c->ncommitting = 0;
    SWAP(c->cacks, c->flight_acks);
    SWAP(c->cacks_cap, c->flight_acks_cap);
    c->nflight_acks = c->ncacks;
    c->ncacks = 0;
    c->batch_results = 0;
    /* The run record rides along: batch planners advance next_match_id
     * long after planning_done. */
    joust_run_put(c->batch, c->run);
    joust_committer_submit(c->committer, &c->batch);
}

/* After the write: the matches are done and their ACKs may go out — a
 * worker only forgets a result once it is durable. */
static int commit_end(coord *c, int rc)
{
    if (rc < 0) {
        log_error("group commit failed: %s; stopping without acknowledging", joust_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < c->nflight; i++) {
        match *m = match_of(c, c->flight[i]);
        if (!m)
            continue;
        size_t idx = (size_t)(m - c->pool);
        joust_u64map_del(&c->active, m->id);
        prompt_release(c, m->p);
        m->state = 0;
        xgrow((void **)&c->free_slots, &c->free_cap, c->nfree + 1, sizeof *c->free_slots);
        c->free_slots[c->nfree++] = (uint32_t)idx;
    }
    c->nflight = 0;
    for (size_t i = 0; i < c->nflight_acks; i++)
        ack_later(&c->peers[c->flight_acks[i].worker], c->flight_acks[i].match_id);
    c->nflight_acks = 0;
    return 0;
}

/* Reaps a finished write (waiting for it when block != 0). */
static int commit_reap(coord *c, int block)
{
    int rc = 0;
    return joust_committer_reap(c->committer, block, &rc) ? commit_end(c, rc) : 0;
}

/* Writes everything staged and waits for it. */
static int commit_sync(coord *c)
{
    int rc = commit_reap(c, 1);
    if (rc == 0) {
        commit_begin(c);
        rc = commit_reap(c, 1);
    }
    return rc;
}

/* --------------------------------------------------------- dispatching - */

static void fill_ref(Joust__ImageRef *r, const img_ref *im)
{
    joust__image_ref__init(r);
    r->image_id = im->id;
    r->uri = im->uri;
    r->has_latent = im->has_latent;
    r->latent = im->latent;
}

/* Sends up to `credit` pending matches to one worker in one JOB. Matches
 * planned together share images, so they go to the same worker. */
static void dispatch_to(coord *c, peer *p, uint32_t credit)
{
    size_t n = 0;
    match *sent[1024]; /* the pool does not move while dispatching */
    uint32_t max = credit < c->cfg->job_matches ? credit : c->cfg->job_matches;
    int64_t now = joust_now_ms();
    while (n < max && c->pending.len) {
        match *m = match_of(c, ring_pop(&c->pending));
        if (!m || m->state != M_PENDING)
            continue; /* stale entry */
        Joust__MatchJob *j = &c->jobs[n];
        joust__match_job__init(j);
        j->match_id = m->id;
        j->attempt = m->attempt;
        j->prompt_id = m->p->prompt_id;
        j->prompt = m->p->text;
        fill_ref(&c->refs[2 * n], &m->p->imgs[m->a]);
        fill_ref(&c->refs[2 * n + 1], &m->p->imgs[m->b]);
        j->first = &c->refs[2 * n];
        j->second = &c->refs[2 * n + 1];
        c->job_ptrs[n] = j;
        sent[n++] = m;
    }
    if (!n)
        return;
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = c->run->run_id;
    job.lease_ms = c->run->lease_ms;
    job.n_matches = n;
    job.matches = c->job_ptrs;
    int rc = peer_send(c, p, JOUST_CMD_JOB, &job.base);
    for (size_t i = n; i-- > 0;) {
        match *m = sent[i];
        if (rc < 0) {
            ring_push(&c->pending, handle_of(c, m), 1); /* keep the original order */
            continue;
        }
        m->state = M_LEASED;
        m->worker = (uint32_t)(p - c->peers);
        m->deadline_ms = now + c->run->lease_ms;
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            ring_push(&c->leases, handle_of(c, sent[i]), 0);
        p->outstanding += (uint32_t)n;
    }
}

static void dispatch(coord *c)
{
    for (size_t k = 0; k < c->npeers && c->pending.len; k++) {
        peer *p = &c->peers[(c->rr + k) % c->npeers];
        while (p->alive && p->slots > p->outstanding && c->pending.len) {
            uint32_t before = p->outstanding;
            dispatch_to(c, p, p->slots - p->outstanding);
            if (p->outstanding == before)
                break; /* would block, or only stale entries */
        }
    }
    c->rr++;
}

static void expire_leases(coord *c, int64_t now)
{
    while (c->leases.len) {
        match *m = match_of(c, ring_peek(&c->leases));
        if (m && m->state == M_LEASED && m->deadline_ms > now)
            break;
        ring_pop(&c->leases);
        if (m && m->state == M_LEASED) {
            c->sum->expired++;
            log_warn("match %" PRIu64 ": lease on %s expired (attempt %u)", m->id,
                     c->peers[m->worker].name, m->attempt);
            requeue(c, m, "lease expired");
        }
    }
}

static void check_peers(coord *c, int64_t now)
{
    int64_t dead_after = (int64_t)c->cfg->heartbeat_ms * c->cfg->liveness;
    for (size_t i = 0; i < c->npeers; i++) {
        peer *p = &c->peers[i];
        if (p->alive && now - p->last_seen > dead_after)
            drop_peer(c, p, "silent too long");
        if (p->alive && now - p->last_sent >= c->cfg->heartbeat_ms) {
            Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
            peer_send(c, p, JOUST_CMD_HEARTBEAT, &hb.base);
        }
    }
}

static void on_message(coord *c, joust_wire_msg *m)
{
    peer *p = peer_find(c, m, 1);
    p->last_seen = joust_now_ms();
    /* CURVE: the peer is who its key says, from its first message on (a
     * RESULT may arrive before READY, e.g. after a coordinator restart). */
    if (m->user_id[0] && strcmp(p->name, m->user_id))
        snprintf(p->name, sizeof p->name, "%s", m->user_id);
    if (m->cmd == JOUST_CMD_READY) {
        const Joust__Ready *r = (const Joust__Ready *)m->body;
        if (p->alive && p->outstanding)
            drop_peer(c, p, "registered again");
        /* With CURVE the name is the authenticated key's, not the claim. */
        snprintf(p->name, sizeof p->name, "%s", m->user_id[0] ? m->user_id : r->worker_name);
        p->slots = r->slots;
        p->outstanding = 0;
        p->alive = 1;
        log_info("worker %s ready: judge %s, %u slots", p->name, r->judge, r->slots);
        if (strcmp(r->judge, c->run->judge))
            log_warn("worker %s runs judge '%s' but run '%s' uses '%s'", p->name, r->judge,
                     c->run->name, c->run->judge);
        return;
    }
    if (!p->alive) {
        /* We do not know it (e.g. we restarted): ask it to register again.
         * Its results are still valid and get recorded below. */
        Joust__Disconnect d = JOUST__DISCONNECT__INIT;
        d.reason = "unknown worker: send READY";
        peer_send(c, p, JOUST_CMD_DISCONNECT, &d.base);
    }
    if (m->cmd == JOUST_CMD_RESULT)
        on_result(c, p, (const Joust__Result *)m->body);
    else if (m->cmd == JOUST_CMD_DISCONNECT && p->alive)
        drop_peer(c, p, "disconnected");
}

/* ---------------------------------------------------------- progress --- */

static void progress(coord *c, int64_t now, int final)
{
    if (!c->cfg->progress || (!final && now - c->last_progress_ms < 250))
        return;
    c->last_progress_ms = now;
    uint64_t done = c->sum->ok + c->sum->failed;
    double secs = (double)(now - c->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)done / secs : 0;
    /* Planning is lazy: estimate the total from the prompts planned so far. */
    double total = (double)c->sum->planned;
    if (!c->run->planning_done && c->prompts_planned)
        total = total * (double)c->prompts_total / (double)c->prompts_planned;
    double eta = rate > 0 && total > (double)done ? (total - (double)done) / rate : 0;
    fprintf(stderr, "\r  %" PRIu64 "/%.0f matches (%.1f%%)  %.0f/s  ETA %.0fs  failed %" PRIu64 "   %s",
            done, total, total > 0 ? 100.0 * (double)done / total : 100.0, rate, eta,
            c->sum->failed, final ? "\n" : "");
    fflush(stderr);
}

/* --------------------------------------------------------------- run --- */

/* CURVE server + ZAP handler on c->ctx; before the bind, so that no
 * connection is ever accepted without authentication. */
static int curve_setup(coord *c)
{
    char err[512];
    if (!c->cfg->curve_secret || !c->cfg->curve_allow) {
        log_error("CURVE needs both --curve-secret and --allow (an allow-list without a key, or a "
                  "key without an allow-list, would let anyone in)");
        return JOUST_EINVAL;
    }
    joust_curve_keypair kp;
    joust_curve_allow_t *allow = NULL;
    int rc = joust_curve_read_secret(c->cfg->curve_secret, &kp, err, sizeof err);
    if (rc == 0 && (rc = joust_curve_allow_load(c->cfg->curve_allow, &allow, err, sizeof err)) == 0) {
        size_t n = joust_curve_allow_count(allow);
        if ((rc = joust_zap_start(c->ctx, &allow)) < 0)
            snprintf(err, sizeof err, "cannot start the ZAP handler: %s", joust_strerror(rc));
        else if ((rc = joust_curve_server_setup(c->sock, &kp)) < 0)
            snprintf(err, sizeof err, "cannot make the socket a CURVE server: %s", zmq_strerror(errno));
        else
            log_info("CURVE on: server public key %s; %zu worker keys allowed", kp.public_z85, n);
    }
    joust_curve_wipe(&kp, sizeof kp);
    if (rc < 0)
        log_error("CURVE: %s", err);
    return rc;
}

static int setup(coord *c)
{
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_ROUTER);
    joust_wire_socket_setup(c->sock, 1);
    if (c->cfg->curve_secret || c->cfg->curve_allow) {
        int rc = curve_setup(c);
        if (rc < 0)
            return rc;
    }
    if (zmq_bind(c->sock, c->cfg->bind) != 0) {
        log_error("cannot bind %s: %s", c->cfg->bind, zmq_strerror(errno));
        return JOUST_EIO;
    }
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(c->sock, ZMQ_LAST_ENDPOINT, endpoint, &len);
    log_info("run '%s': listening on %s", c->run->name, endpoint);
    if (c->cfg->on_bound)
        c->cfg->on_bound(endpoint, c->cfg->on_bound_arg);
    return 0;
}

static void say_complete(coord *c, peer *p)
{
    Joust__Disconnect d = JOUST__DISCONNECT__INIT;
    d.reason = "run complete";
    d.has_run_complete = 1;
    d.run_complete = 1;
    peer_send(c, p, JOUST_CMD_DISCONNECT, &d.base);
}

/* Tells every worker the run is complete, and keeps telling workers that
 * show up (or resend results) for drain_ms, so none waits forever. */
static void finish(coord *c)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].alive)
            say_complete(c, &c->peers[i]);
    int64_t until = joust_now_ms() + c->cfg->drain_ms;
    while (joust_now_ms() < until && !(c->cfg->stop && *c->cfg->stop)) {
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) < 0 && errno != EINTR)
            break;
        joust_wire_msg m;
        int r;
        while ((r = joust_wire_recv(c->sock, 1, &m)) != JOUST_EAGAIN && r != JOUST_EIO) {
            if (r == 0) {
                on_message(c, &m); /* re-ACKs resent results of committed matches */
                send_acks(c);
                say_complete(c, peer_find(c, &m, 1));
            }
            joust_wire_msg_clear(&m);
        }
    }
    /* Give the goodbyes a moment to leave before the socket closes. */
    int linger = 500;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
}

static void teardown(coord *c)
{
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    for (size_t i = 0; i < c->pool_len; i++)
        if (c->pool[i].state && find_match(c, c->pool[i].id) == &c->pool[i])
            prompt_release(c, c->pool[i].p);
    for (size_t i = 0; i < c->npeers; i++) {
        free(c->peers[i].acks);
    }
    free(c->peers);
    free(c->pool);
    free(c->free_slots);
    free(c->pending.v);
    free(c->leases.v);
    joust_committer_destroy(&c->committer); /* waits for a write in flight */
    free(c->committing);
    free(c->flight);
    free(c->cacks);
    free(c->flight_acks);
    free(c->jobs);
    free(c->job_ptrs);
    free(c->refs);
    joust_u64map_free(&c->active);
    joust_u64map_free(&c->prompts);
    joust_u64map_free(&c->peer_index);
    joust_batch_destroy(&c->batch);
    record_free(c->run);
}

static int loop(coord *c)
{
    int rc = 0;
    while (!(c->cfg->stop && *c->cfg->stop)) {
        if ((rc = plan_more(c)) < 0)
            break;
        if (c->run->planning_done && c->active.len == 0) {
            c->run->has_complete = 1;
            c->run->complete = 1;
            joust_run_put(c->batch, c->run);
            if ((rc = commit_sync(c)) == 0)
                c->sum->complete = 1;
            send_acks(c);
            break;
        }
        dispatch(c);
        int64_t now = joust_now_ms();
        int timeout = c->cfg->heartbeat_ms / 2, busy = joust_committer_busy(c->committer);
        if (c->batch_results && !busy) {
            int64_t left = c->batch_first_ms + c->cfg->commit_ms - now;
            timeout = left < 0 ? 0 : (int)left < timeout ? (int)left : timeout;
        }
        /* With the staged batch full and a write in flight, wait for the
         * write alone: the socket can wait. */
        int full = c->batch_results >= c->cfg->commit_max;
        zmq_pollitem_t items[2] = {{NULL, joust_committer_fd(c->committer), ZMQ_POLLIN, 0},
                                   {c->sock, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, full && busy ? 1 : 2, timeout) < 0 && errno != EINTR) {
            rc = JOUST_EIO;
            break;
        }
        if ((rc = commit_reap(c, 0)) < 0)
            break;
        joust_wire_msg m;
        int r;
        while (c->batch_results < c->cfg->commit_max &&
               (r = joust_wire_recv(c->sock, 1, &m)) != JOUST_EAGAIN && r != JOUST_EIO) {
            if (r == JOUST_EPROTO) {
                c->sum->rejected++;
                log_warn("dropped a malformed message: %s", m.error);
            } else {
                on_message(c, &m);
            }
            joust_wire_msg_clear(&m);
        }
        now = joust_now_ms();
        if (c->batch_results >= c->cfg->commit_max ||
            (c->batch_results && now - c->batch_first_ms >= c->cfg->commit_ms) ||
            (!c->batch_results && joust_batch_count(c->batch)))
            commit_begin(c);
        send_acks(c); /* only acknowledgements of durable results are queued */
        expire_leases(c, now);
        check_peers(c, now);
        progress(c, now, 0);
    }
    progress(c, joust_now_ms(), 1);
    return rc;
}

int joust_coordinator_run(joust_store_t *st, const char *run_name, const joust_coord_config *cfg,
                          joust_coord_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    coord c = {.st = st, .cfg = cfg, .sum = sum};
    int rc = joust_run_open(st, run_name, NULL, &c.run);
    if (rc < 0) {
        log_error("run '%s': %s", run_name, joust_strerror(rc));
        return rc;
    }
    if ((rc = joust_order_policy_parse(c.run->order, &c.order)) < 0 ||
        (rc = joust_strategy_parse(c.run->strategy, &c.strategy)) < 0) {
        log_error("run '%s': unknown order '%s' or strategy '%s'", run_name, c.run->order,
                  c.run->strategy);
        record_free(c.run);
        return rc;
    }
    if (!c.run->max_attempts)
        c.run->max_attempts = 3;
    if (!c.run->lease_ms)
        c.run->lease_ms = 60000;
    c.batch = joust_batch_new();
    if ((rc = joust_committer_new(st, &c.committer)) < 0) {
        joust_batch_destroy(&c.batch);
        record_free(c.run);
        return rc;
    }
    joust_u64map_init(&c.active);
    joust_u64map_init(&c.prompts);
    joust_u64map_init(&c.peer_index);
    uint32_t jm = cfg->job_matches > 1024 ? 1024 : cfg->job_matches ? cfg->job_matches : 1;
    c.jobs = xmalloc(jm * sizeof *c.jobs);
    c.job_ptrs = xmalloc(jm * sizeof *c.job_ptrs);
    c.refs = xmalloc(2 * jm * sizeof *c.refs);
    joust_coord_config local = *cfg;
    local.job_matches = jm;
    c.cfg = &local;
    uint64_t next_prompt;
    meta_get_u64(st, META_NEXT_PROMPT, 1, &next_prompt);
    c.prompts_total = next_prompt - 1;
    c.start_ms = joust_now_ms();
    if ((rc = recover(&c)) == 0 && (rc = setup(&c)) == 0) {
        rc = loop(&c);
        sum->seconds = (double)(joust_now_ms() - c.start_ms) / 1000.0;
        if (sum->complete)
            finish(&c);
    }
    teardown(&c);
    return rc;
}
