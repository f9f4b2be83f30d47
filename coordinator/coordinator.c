#include "coordinator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "coord_metrics.h"
#include "coord_state.h"
#include "curve.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "records.h"
#include "reuse.h"
#include "run.h"
#include "wire.h"
#include "xalloc.h"

void joust_coord_config_defaults(joust_coord_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bind = "tcp://127.0.0.1:5555";
    cfg->window = 65536;
    cfg->job_matches = 64;
    joust_commit_rule_defaults(&cfg->commit);
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 5;
    cfg->drain_ms = 2000;
    cfg->log_every_ms = 5000;
    cfg->drain_after = 3;
    cfg->max_lost = 10;
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
    p->ident = NO_IDENT;
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

/* The identity `name` holds leases as (registered once, kept for the run). */
static uint32_t ident_of(coord *c, const char *name)
{
    uint64_t h = joust_hash64(name, strlen(name)) | 1, idx;
    if (joust_u64map_get(&c->ident_index, h, &idx) && !strcmp(c->idents[idx], name))
        return (uint32_t)idx;
    for (size_t i = 0; i < c->nidents; i++) /* a hash collision: rare */
        if (!strcmp(c->idents[i], name))
            return (uint32_t)i;
    xgrow((void **)&c->idents, &c->idents_cap, c->nidents + 1, sizeof *c->idents);
    snprintf(c->idents[c->nidents], sizeof c->idents[0], "%s", name);
    joust_u64map_put(&c->ident_index, h, c->nidents);
    return (uint32_t)c->nidents++;
}

/* A peer that may be sent work now (credit aside). */
static int takes_work(const peer *p)
{
    return p->alive && p->registered && !p->unavailable && !p->drained;
}

int coord_takes_work(const peer *p) { return takes_work(p); }

int coord_send_job(coord *c, peer *p, Joust__MatchJob **matches, size_t n_matches,
                   Joust__ImageRef **sign, size_t n_sign)
{
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = c->run->run_id;
    job.lease_ms = c->run->lease_ms;
    job.n_matches = n_matches;
    job.matches = matches;
    job.n_sign = n_sign;
    job.sign = sign;
    return peer_send(c, p, JOUST_CMD_JOB, &job.base);
}

static int held_by(const match *m, uint32_t ident)
{
    for (int i = 0; i < HOLDERS; i++)
        if (m->holders[i] == ident)
            return 1;
    return 0;
}

static void add_holder(match *m, uint32_t ident)
{
    if (held_by(m, ident))
        return;
    memmove(m->holders, m->holders + 1, (HOLDERS - 1) * sizeof *m->holders);
    m->holders[HOLDERS - 1] = ident;
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

/* Puts a leased or failed match back in front of the queue with attempt
 * + 1; dispatch prefers a worker that has not held it (dispatch_to). */
static void requeue(coord *c, match *m)
{
    end_lease(c, m);
    m->attempt++;
    m->state = M_PENDING;
    c->sum->retried++;
    ring_push(&c->pending, handle_of(c, m), 1);
}

/* A lease was lost (expired, or its worker is gone): that is about the
 * worker, not the match, so it spends no attempt; only a match that loses
 * max_lost leases (one that hangs or kills every worker) is ABANDONED. */
static void lose_lease(coord *c, match *m, const char *why)
{
    if (++m->lost >= c->cfg->max_lost) {
        end_lease(c, m);
        abandon(c, m, why);
        return;
    }
    requeue(c, m);
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
            lose_lease(c, m, "its worker disappeared");
    }
    coord_sign_peer_lost(c, pi);
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

/* now_ms: the wall clock when the result's message was taken (one read
 * per RESULT, not per match), recorded as committed_ms. */
static void stage_outcome(coord *c, match *m, const Joust__MatchResult *x, const char *worker,
                          const char *judge, int64_t now_ms)
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
    if (x->status == JOUST__OUTCOME_STATUS__OK && x->has_kind) {
        o.has_kind = 1;
        o.kind = x->kind;
    }
    o.has_failed_image_id = x->has_failed_image_id;
    o.failed_image_id = x->failed_image_id;
    o.has_committed_ms = 1;
    o.committed_ms = now_ms;
    joust_rec_outcome_put(c->batch, c->run, m->id, &o, x->reason, NULL);
    if (c->cfg->metrics)
        joust_prom_judge_record(&c->cfg->metrics->judge, x->status, x->latency_us, x->tokens);
    const img_ref *fa = &m->p->imgs[m->a], *fb = &m->p->imgs[m->b];
    if (o.has_p_first && fa->has_content && fb->has_content) /* a later run may reuse it */
        joust_rec_reuse_put(c->batch,
                            joust_reuse_key(c->reuse_salt, m->p->text, fa->content, fb->content),
                            c->run->run_id, m->id);
    if (x->status == JOUST__OUTCOME_STATUS__OK)
        c->sum->ok++;
    else
        c->sum->failed++;
    c->session_done++;
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
        coord_planner_pull(c, p);
    } else if (p->stream) { /* so does the adaptive plan of a large group */
        int ok = x->status == JOUST__OUTCOME_STATUS__OK && x->has_p_first;
        if (joust_sparse_plan_observe(p->stream, m->a, m->b, ok ? x->p_first : NAN) == 0)
            coord_planner_pull(c, p);
    }
}

static void abandon(coord *c, match *m, const char *why)
{
    char err[256];
    snprintf(err, sizeof err, "gave up after %u lost leases: %s", m->lost, why);
    Joust__MatchResult x = JOUST__MATCH_RESULT__INIT;
    x.match_id = m->id;
    x.attempt = m->attempt;
    x.status = JOUST__OUTCOME_STATUS__ABANDONED;
    x.error = err;
    log_warn("match %" PRIu64 ": %s", m->id, err);
    stage_outcome(c, m, &x, "", "", joust_wall_ms());
}

static void ack_after_commit(coord *c, uint32_t pi, uint64_t match_id)
{
    xgrow((void **)&c->cacks, &c->cacks_cap, c->ncacks + 1, sizeof *c->cacks);
    c->cacks[c->ncacks++] = (pending_ack){pi, match_id};
}

/* A CONFIG_ERROR: the judge's configuration is wrong (401/403, unknown
 * model, request refused), so every match would fail the same way: the
 * run stops at once with the worker's words. */
static void config_error(coord *c, const peer *p, const Joust__Result *r, const Joust__MatchResult *x)
{
    if (c->stop_rc)
        return;
    c->stop_rc = JOUST_EJUDGE;
    snprintf(c->sum->stopped, sizeof c->sum->stopped,
             "configuration error from worker %s (judge %s), match %" PRIu64 ": %s", p->name,
             r->judge ? r->judge : "?", x->match_id,
             x->error && x->error[0] ? x->error : "(the worker gave no reason)");
    log_error("stopping the run: %s", c->sum->stopped);
}

/* Whether p may settle m: it holds or held m's lease. After a restart the
 * lessees before it are unknown, so a recovered match also takes a result
 * from any registered worker (docs/protocol.md §6.2). */
static int may_settle(const match *m, const peer *p)
{
    return held_by(m, p->ident) || m->recovered;
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
    int64_t now_ms = joust_wall_ms();
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
        if (!p->registered || !may_settle(m, p)) {
            /* Unregistered: no READY, so no identity and no lease (a real
             * worker always registers before it sends results). */
            c->sum->forged++;
            log_warn("%s %s: result for match %" PRIu64 ", whose lease it never held; dropped",
                     p->registered ? "worker" : "unregistered peer", p->name, x->match_id);
            continue;
        }
        if (x->attempt > m->attempt && !m->recovered) {
            c->sum->rejected++;
            log_warn("worker %s: match %" PRIu64 " attempt %u was never dispatched; dropped",
                     p->name, x->match_id, x->attempt);
            continue;
        }
        if (p->drained)
            log_info("worker %s answers again; it gets work again", p->name);
        p->drained = 0;
        p->expired_streak = 0;
        if (m->state == M_COMMITTING) { /* a twin result is being committed */
            c->sum->duplicates++;
            ack_after_commit(c, pi, x->match_id);
            continue;
        }
        int current = m->state == M_LEASED && x->attempt == m->attempt &&
                      c->peers[m->worker].ident == p->ident;
        switch (x->status) {
        case JOUST__OUTCOME_STATUS__CONFIG_ERROR:
            config_error(c, p, r, x);
            ack_later(p, x->match_id); /* not an outcome: judged again once fixed */
            continue;
        case JOUST__OUTCOME_STATUS__INFRA_ERROR:
        case JOUST__OUTCOME_STATUS__JUDGE_ERROR:
            /* Never final and no attempt spent: back to the queue,
             * preferably for another worker. A late one says nothing
             * about the attempt running now. */
            if (current) {
                log_debug("match %" PRIu64 " attempt %u: infrastructure error on %s: %s", m->id,
                          m->attempt, p->name, x->error ? x->error : "");
                c->sum->infra_retries++;
                requeue(c, m);
            }
            ack_later(p, x->match_id); /* nothing to commit */
            continue;
        case JOUST__OUTCOME_STATUS__UNPARSEABLE:
            if (!current) {
                ack_later(p, x->match_id);
                continue;
            }
            if (++m->tries < c->run->max_attempts) {
                log_debug("match %" PRIu64 " attempt %u unparseable: %s", m->id, m->attempt,
                          x->error ? x->error : "");
                requeue(c, m);
                ack_later(p, x->match_id);
                continue;
            }
            break; /* the last attempt's failure is final */
        default:
            break;
        }
        stage_outcome(c, m, x, p->name, r->judge ? r->judge : "", now_ms);
        ack_after_commit(c, pi, x->match_id);
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
    c->reused_staged = 0;
    /* The run record rides along: batch planners advance next_match_id
     * long after planning_done. A signing-only session leaves it alone. */
    if (c->cfg->sign != JOUST_SIGN_ONLY)
        joust_rec_run_put(c->batch, c->run);
    joust_committer_submit(c->committer, &c->batch);
    if (c->cfg->metrics)
        c->cfg->metrics->commit_started_us = joust_now_us();
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
        joust_idmap_del(&c->active, m->id);
        coord_prompt_release(c, m->p);
        m->state = 0;
        xgrow((void **)&c->free_slots, &c->free_cap, c->nfree + 1, sizeof *c->free_slots);
        c->free_slots[c->nfree++] = (uint32_t)idx;
    }
    c->nflight = 0;
    if (c->cfg->metrics) {
        joust_prom_observe(c->cfg->metrics->commit_latency,
                           (double)(joust_now_us() - c->cfg->metrics->commit_started_us) / 1e6);
        joust_prom_add(c->cfg->metrics->commit_results, 1);
    }
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
    r->caption = im->caption;
}

/* The index of p in the JOB's prompt table, adding it on first use. */
static uint32_t table_prompt(coord *c, prompt_slot *p)
{
    if (p->job_stamp != c->job_stamp) {
        p->job_stamp = c->job_stamp;
        p->job_index = (uint32_t)c->ntprompts++;
        Joust__PromptRef *r = &c->tprompts[p->job_index];
        joust__prompt_ref__init(r);
        r->prompt_id = p->prompt_id;
        r->text = p->text;
        c->tprompt_ptrs[p->job_index] = r;
    }
    return p->job_index;
}

/* The index of im in the JOB's image table, adding it on first use. */
static uint32_t table_image(coord *c, img_ref *im)
{
    if (im->job_stamp != c->job_stamp) {
        im->job_stamp = c->job_stamp;
        im->job_index = (uint32_t)c->ntimages++;
        fill_ref(&c->refs[im->job_index], im);
        c->ref_ptrs[im->job_index] = &c->refs[im->job_index];
    }
    return im->job_index;
}

/* Whether a worker that has not held m's lease could take m. */
static int fresh_worker_for(const coord *c, const match *m)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (takes_work(&c->peers[i]) && !held_by(m, c->peers[i].ident))
            return 1;
    return 0;
}

/* Sends up to `credit` pending matches to one worker in one JOB. Matches
 * planned together share images, so they go to the same worker. A match
 * that p held before (its lease was lost, or p failed it for want of
 * infrastructure) is left for another worker when one could take it. */
static void dispatch_to(coord *c, peer *p, uint32_t credit)
{
    size_t n = 0, nskip = 0;
    match *sent[1024]; /* the pool does not move while dispatching */
    uint64_t skipped[1024];
    uint32_t max = credit < c->cfg->job_matches ? credit : c->cfg->job_matches;
    int64_t now = joust_now_ms();
    if (++c->job_stamp == 0) /* entries stamped 0 are in no JOB */
        c->job_stamp = 1;
    c->ntprompts = c->ntimages = 0;
    while (n < max && c->pending.len && nskip < 1024) {
        match *m = match_of(c, ring_pop(&c->pending));
        if (!m || m->state != M_PENDING)
            continue; /* stale entry */
        if (held_by(m, p->ident) && fresh_worker_for(c, m)) {
            skipped[nskip++] = handle_of(c, m);
            continue;
        }
        if (p->tables) {
            Joust__PairJob *j = &c->pairs[n];
            joust__pair_job__init(j);
            j->match_id = m->id;
            j->attempt = m->attempt;
            j->prompt = table_prompt(c, m->p);
            j->first = table_image(c, &m->p->imgs[m->a]);
            j->second = table_image(c, &m->p->imgs[m->b]);
            c->pair_ptrs[n] = j;
        } else {
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
        }
        sent[n++] = m;
    }
    while (nskip) /* back in front, in their order */
        ring_push(&c->pending, skipped[--nskip], 1);
    if (!n)
        return;
    int rc;
    if (p->tables) {
        Joust__Job job = JOUST__JOB__INIT;
        job.run_id = c->run->run_id;
        job.lease_ms = c->run->lease_ms;
        job.n_pairs = n;
        job.pairs = c->pair_ptrs;
        job.n_prompts = c->ntprompts;
        job.prompts = c->tprompt_ptrs;
        job.n_images = c->ntimages;
        job.images = c->ref_ptrs;
        rc = peer_send(c, p, JOUST_CMD_JOB, &job.base);
    } else {
        rc = coord_send_job(c, p, c->job_ptrs, n, NULL, 0);
    }
    for (size_t i = n; i-- > 0;) {
        match *m = sent[i];
        if (rc < 0) {
            ring_push(&c->pending, handle_of(c, m), 1); /* keep the original order */
            continue;
        }
        m->state = M_LEASED;
        m->worker = (uint32_t)(p - c->peers);
        m->deadline_ms = now + c->run->lease_ms;
        add_holder(m, p->ident);
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            ring_push(&c->leases, handle_of(c, sent[i]), 0);
        p->outstanding += (uint32_t)n;
    }
}

static void dispatch(coord *c)
{
    coord_sign_dispatch(c); /* signature jobs first: planning waits for them */
    for (size_t k = 0; k < c->npeers && c->pending.len; k++) {
        peer *p = &c->peers[(c->rr + k) % c->npeers];
        while (takes_work(p) && p->slots > p->outstanding && c->pending.len) {
            uint32_t before = p->outstanding;
            dispatch_to(c, p, p->slots - p->outstanding);
            if (p->outstanding == before)
                break; /* would block, or only stale entries */
        }
    }
    c->rr++;
}

void coord_lease_expired(coord *c, peer *p)
{
    c->sum->expired++;
    if (++p->expired_streak >= c->cfg->drain_after && !p->drained && p->alive) {
        p->drained = 1;
        c->sum->drained++;
        log_warn("worker %s drained: %u leases expired without an answer; no new work "
                 "for it until it answers or registers again",
                 p->name, p->expired_streak);
    }
}

static void expire_leases(coord *c, int64_t now)
{
    while (c->leases.len) {
        match *m = match_of(c, ring_peek(&c->leases));
        if (m && m->state == M_LEASED && m->deadline_ms > now)
            break;
        ring_pop(&c->leases);
        if (m && m->state == M_LEASED) {
            peer *p = &c->peers[m->worker];
            log_warn("match %" PRIu64 ": lease on %s expired (attempt %u)", m->id, p->name,
                     m->attempt);
            coord_lease_expired(c, p);
            lose_lease(c, m, "lease expired");
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

/* A worker whose judge has no healthy endpoint says so; it gets no work
 * until it says otherwise. */
static void on_heartbeat(coord *c, peer *p, const Joust__Heartbeat *hb)
{
    (void)c;
    int un = hb->has_unavailable && hb->unavailable;
    if (un)
        snprintf(p->why_unavailable, sizeof p->why_unavailable, "%s",
                 hb->unavailable_reason && hb->unavailable_reason[0] ? hb->unavailable_reason
                                                                     : "no reason given");
    if (un && !p->unavailable)
        log_warn("worker %s is unavailable (%s); no work for it until it is available again",
                 p->name, p->why_unavailable);
    else if (!un && p->unavailable)
        log_info("worker %s is available again", p->name);
    p->unavailable = un;
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
        p->registered = 1;
        p->tables = r->has_job_tables && r->job_tables;
        p->ident = ident_of(c, p->name);
        p->unavailable = 0;
        p->drained = 0;
        p->expired_streak = 0;
        log_info("worker %s ready: judge %s, %u slots", p->name, r->judge, r->slots);
        if (strcmp(r->judge, c->run->judge) && c->cfg->sign != JOUST_SIGN_ONLY)
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
    if (m->cmd == JOUST_CMD_RESULT) {
        const Joust__Result *r = (const Joust__Result *)m->body;
        if (r->n_results)
            on_result(c, p, r);
        if (r->n_signatures)
            coord_sign_result(c, p, r);
    }
    else if (m->cmd == JOUST_CMD_HEARTBEAT && p->registered)
        on_heartbeat(c, p, (const Joust__Heartbeat *)m->body);
    else if (m->cmd == JOUST_CMD_DISCONNECT && p->alive)
        drop_peer(c, p, "disconnected");
}

/* ---------------------------------------------------------- progress --- */

static void format_duration(double secs, char *out, size_t len)
{
    long s = secs > 0 && secs < 1e9 ? (long)(secs + 0.5) : 0;
    if (s >= 3600)
        snprintf(out, len, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(out, len, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, len, "%lds", s);
}

/* On a terminal (cfg->progress): a progress line, redrawn. Otherwise a log
 * line every log_every_ms: done/total, rate, ETA, failures by class. */
static void progress(coord *c, int64_t now, int final)
{
    int line = c->cfg->progress;
    if (line ? !final && now - c->last_progress_ms < 250
             : !c->cfg->log_every_ms || (!final && now - c->last_log_ms < c->cfg->log_every_ms))
        return;
    c->last_progress_ms = c->last_log_ms = now;
    uint64_t done = c->done_before + c->session_done;
    double secs = (double)(now - c->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)c->session_done / secs : 0;
    /* Planning is lazy: estimate the total from the prompts planned so far. */
    double total = (double)c->sum->planned;
    if (!c->run->planning_done && c->prompts_planned)
        total = total * (double)c->prompts_total / (double)c->prompts_planned;
    double eta = rate > 0 && total > (double)done ? (total - (double)done) / rate : 0;
    if (line) {
        fprintf(stderr, "\r  %" PRIu64 "/%.0f matches (%.1f%%)  %.0f/s  ETA %.0fs  failed %" PRIu64 "   %s",
                done, total, total > 0 ? 100.0 * (double)done / total : 100.0, rate, eta,
                c->sum->failed, final ? "\n" : "");
        fflush(stderr);
        return;
    }
    char fails[256], etas[32];
    joust_run_counts n;
    if (joust_rec_run_counts(c->st, c->run, &n) < 0) /* the whole run's, as staged so far */
        memset(&n, 0, sizeof n);
    joust_run_counts_format(&n, fails, sizeof fails);
    format_duration(eta, etas, sizeof etas);
    log_info("progress: %" PRIu64 "/%.0f matches (%.1f%%), %.1f/s, ETA %s; failed: %s; %" PRIu64
             " infrastructure retries, %" PRIu64 " leases expired",
             done, total, total > 0 ? 100.0 * (double)done / total : 100.0, rate, etas, fails,
             c->sum->infra_retries, c->sum->expired);
}

/* Records why the run is paused (NULL: it is not) in the run record, for
 * `joust status`; it is written with the next commit. */
static void set_paused_note(coord *c, const char *note)
{
    if (!note && !c->run->paused)
        return;
    free(c->run->paused); /* the record's strings are malloc'd (protobuf-c) */
    c->run->paused = note ? xstrdup(note) : NULL;
    joust_rec_run_put(c->batch, c->run);
}

/* When matches wait and no worker can take them (none connected, all
 * unavailable or drained), the run is paused: say why every log_every_ms
 * (at most every 5 s without a log interval). */
static void explain_pause(coord *c, int64_t now)
{
    while (c->pending.len) { /* drop stale entries at the front */
        match *m = match_of(c, ring_peek(&c->pending));
        if (m && m->state == M_PENDING)
            break;
        ring_pop(&c->pending);
    }
    int any = 0;
    for (size_t i = 0; i < c->npeers && !any; i++)
        any = takes_work(&c->peers[i]);
    if (!c->pending.len || any) {
        if (c->paused)
            log_info("resumed: a worker takes work again");
        c->paused = 0;
        set_paused_note(c, NULL);
        return;
    }
    int64_t every = c->cfg->log_every_ms > 0 ? c->cfg->log_every_ms : 5000;
    if (!c->paused) {
        c->paused = 1;
        c->paused_since_ms = c->last_pause_ms = now;
        return;
    }
    if (now - c->last_pause_ms < every)
        return;
    c->last_pause_ms = now;
    char why[1024] = "";
    size_t off = 0;
    for (size_t i = 0; i < c->npeers && off < sizeof why; i++) {
        const peer *p = &c->peers[i];
        if (!p->alive || !p->registered)
            continue;
        if (p->unavailable)
            off += (size_t)snprintf(why + off, sizeof why - off, "%s%s unavailable (%s)",
                                    off ? "; " : "", p->name, p->why_unavailable);
        else if (p->drained)
            off += (size_t)snprintf(why + off, sizeof why - off,
                                    "%s%s drained (%u leases expired without an answer)",
                                    off ? "; " : "", p->name, p->expired_streak);
    }
    char note[1100];
    snprintf(note, sizeof note, "paused for %.0f s with matches waiting: %s",
             (double)(now - c->paused_since_ms) / 1000.0, off ? why : "no worker is connected");
    log_warn("%s", note);
    set_paused_note(c, note);
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

/* Tells every worker that the run stopped early (not complete: a worker
 * keeps its unacknowledged results for the next coordinator). */
static void say_stopped(coord *c)
{
    char why[1100];
    snprintf(why, sizeof why, "run stopped: %s", c->sum->stopped);
    Joust__Disconnect d = JOUST__DISCONNECT__INIT;
    d.reason = why;
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].alive)
            peer_send(c, &c->peers[i], JOUST_CMD_DISCONNECT, &d.base);
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
            coord_prompt_release(c, c->pool[i].p);
    /* A run stopped midway: what is left is held by planners with more
     * to plan (collected first: releasing edits the map). */
    prompt_slot **left = xmalloc((c->prompts.len + 1) * sizeof *left);
    size_t nleft = 0;
    for (size_t i = 0; i < c->prompts.cap; i++)
        if (c->prompts.keys[i])
            left[nleft++] = (prompt_slot *)(uintptr_t)c->prompts.vals[i];
    for (size_t i = 0; i < nleft; i++) {
        left[i]->refs = 1;
        coord_prompt_release(c, left[i]);
    }
    free(left);
    for (size_t i = 0; i < c->npeers; i++) {
        free(c->peers[i].acks);
    }
    free(c->peers);
    free(c->idents);
    joust_u64map_free(&c->ident_index);
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
    coord_sign_free(c);
    joust_u64map_free(&c->collapsed);
    free(c->ref_ptrs);
    free(c->pairs);
    free(c->pair_ptrs);
    free(c->tprompts);
    free(c->tprompt_ptrs);
    joust_rec_cursor_destroy(&c->images);
    joust_idmap_free(&c->active);
    joust_u64map_free(&c->prompts);
    coord_planning_free(c);
    joust_u64map_free(&c->peer_index);
    joust_batch_destroy(&c->batch);
    joust_rec_free(c->run);
}

/* Every image is signed (or given up): the signatures become durable, then
 * the session ends (signing only) or the near-duplicates are collapsed and
 * planning starts. */
static int signing_done(coord *c)
{
    int rc = commit_sync(c);
    coord_sign_progress(c, joust_now_ms(), 1);
    coord_sign_free(c);
    if (rc == 0 && c->cfg->sign == JOUST_SIGN_FIRST && c->cfg->after_signing &&
        (rc = c->cfg->after_signing(c->st, c->run, c->cfg->after_signing_arg)) == 0)
        rc = coord_collapsed_load(c);
    return rc;
}

/* The staged batch is as big as one commit may be (results or bytes). */
static int batch_full(const coord *c)
{
    return joust_commit_full(&c->cfg->commit, c->batch_results, joust_batch_bytes(c->batch));
}

static int loop(coord *c)
{
    int rc = 0;
    while (!(c->cfg->stop && *c->cfg->stop)) {
        if (c->signing && !coord_sign_busy(c)) {
            if ((rc = signing_done(c)) < 0)
                break;
            if (c->cfg->sign == JOUST_SIGN_ONLY) {
                c->sum->complete = 1;
                break;
            }
        }
        if (!c->signing && (rc = coord_plan_more(c)) < 0)
            break;
        if (!c->signing && c->run->planning_done && c->active.len == 0) {
            free(c->run->paused);
            c->run->paused = NULL;
            c->run->has_complete = 1;
            c->run->complete = 1;
            joust_rec_run_put(c->batch, c->run);
            if ((rc = commit_sync(c)) == 0)
                c->sum->complete = 1;
            send_acks(c);
            break;
        }
        dispatch(c);
        int64_t now = joust_now_ms();
        int timeout = c->cfg->heartbeat_ms / 2, busy = joust_committer_busy(c->committer);
        if (c->batch_results && !busy) {
            int64_t left = c->batch_first_ms + c->cfg->commit.ms - now;
            timeout = left < 0 ? 0 : (int)left < timeout ? (int)left : timeout;
        }
        /* With the staged batch full and a write in flight, wait for the
         * write alone: the socket can wait. */
        int full = batch_full(c);
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
        while (!batch_full(c) && !c->stop_rc &&
               (r = joust_wire_recv(c->sock, 1, &m)) != JOUST_EAGAIN && r != JOUST_EIO) {
            if (r == JOUST_EPROTO) {
                c->sum->rejected++;
                log_warn("dropped a malformed message: %s", m.error);
            } else {
                on_message(c, &m);
            }
            joust_wire_msg_clear(&m);
        }
        if (c->stop_rc) { /* keep what is staged, tell the workers, stop */
            rc = commit_sync(c);
            send_acks(c);
            say_stopped(c);
            if (rc == 0)
                rc = c->stop_rc;
            break;
        }
        now = joust_now_ms();
        if (joust_commit_due(&c->cfg->commit, c->batch_results, joust_batch_bytes(c->batch),
                             now - c->batch_first_ms, joust_committer_busy(c->committer)) ||
            (!c->batch_results && joust_batch_count(c->batch)))
            commit_begin(c);
        send_acks(c); /* only acknowledgements of durable results are queued */
        expire_leases(c, now);
        coord_sign_expire(c, now);
        check_peers(c, now);
        explain_pause(c, now);
        if (c->cfg->sign != JOUST_SIGN_ONLY)
            progress(c, now, 0);
        coord_sign_progress(c, now, 0);
        coord_metrics_tick(c);
    }
    coord_metrics_tick(c);
    if (c->cfg->sign != JOUST_SIGN_ONLY)
        progress(c, joust_now_ms(), 1);
    return rc;
}

int joust_coordinator_run(joust_store_t *st, const char *run_name, const joust_coord_config *cfg,
                          joust_coord_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    coord c = {.st = st, .cfg = cfg, .sum = sum};
    int rc = run_name ? joust_run_open(st, run_name, NULL, &c.run)
                      : cfg->sign == JOUST_SIGN_ONLY && cfg->sign_scope
                            ? coord_sign_copy_run(cfg->sign_scope, &c.run)
                            : JOUST_EINVAL;
    if (!run_name)
        run_name = c.run ? c.run->name : "(none)";
    if (rc < 0) {
        log_error("run '%s': %s", run_name, joust_strerror(rc));
        return rc;
    }
    if ((rc = joust_order_policy_parse(c.run->order, &c.order)) < 0 ||
        (rc = joust_strategy_parse(c.run->strategy, &c.strategy)) < 0) {
        log_error("run '%s': unknown order '%s' or strategy '%s'", run_name, c.run->order,
                  c.run->strategy);
        joust_rec_free(c.run);
        return rc;
    }
    /* The outcome counts ride in the run record; a run from before them
     * gets them counted once here, so that every outcome staged adds to
     * exact counts. */
    joust_run_counts counts;
    if ((rc = joust_rec_run_counts(st, c.run, &counts)) < 0) {
        log_error("run '%s': cannot count its outcomes: %s", run_name, joust_strerror(rc));
        joust_rec_free(c.run);
        return rc;
    }
    joust_run_counts_set(c.run, &counts);
    if (!c.run->max_attempts)
        c.run->max_attempts = 3;
    if (!c.run->lease_ms)
        c.run->lease_ms = 60000;
    c.batch = joust_batch_new();
    if ((rc = joust_committer_new(st, &c.committer)) < 0) {
        joust_batch_destroy(&c.batch);
        joust_rec_free(c.run);
        return rc;
    }
    joust_idmap_init(&c.active);
    joust_u64map_init(&c.prompts);
    joust_u64map_init(&c.peer_index);
    joust_u64map_init(&c.ident_index);
    joust_u64map_init(&c.collapsed);
    uint32_t jm = cfg->job_matches > 1024 ? 1024 : cfg->job_matches ? cfg->job_matches : 1;
    c.jobs = xmalloc(jm * sizeof *c.jobs);
    c.job_ptrs = xmalloc(jm * sizeof *c.job_ptrs);
    c.refs = xmalloc(2 * jm * sizeof *c.refs);
    c.ref_ptrs = xmalloc(2 * jm * sizeof *c.ref_ptrs);
    c.pairs = xmalloc(jm * sizeof *c.pairs);
    c.pair_ptrs = xmalloc(jm * sizeof *c.pair_ptrs);
    c.tprompts = xmalloc(jm * sizeof *c.tprompts);
    c.tprompt_ptrs = xmalloc(jm * sizeof *c.tprompt_ptrs);
    joust_coord_config local = *cfg;
    local.job_matches = jm;
    c.cfg = &local;
    uint64_t next_prompt;
    joust_rec_counter_get(st, JOUST_NEXT_PROMPT, &next_prompt);
    c.prompts_total = next_prompt - 1;
    c.reuse_salt = joust_reuse_salt(c.run);
    c.start_ms = c.last_log_ms = joust_now_ms();
    free(c.run->paused); /* left by a coordinator that was killed while paused */
    c.run->paused = NULL;
    if ((rc = cfg->sign ? coord_sign_init(&c) : 0) == 0 && (rc = coord_collapsed_load(&c)) == 0 &&
        (rc = cfg->sign == JOUST_SIGN_ONLY ? 0 : coord_recover(&c)) == 0 &&
        /* Signing only, with nothing to sign: no socket, no workers. */
        (rc = cfg->sign == JOUST_SIGN_ONLY && !coord_sign_busy(&c) ? 0 : setup(&c)) == 0) {
        rc = loop(&c);
        if (rc == 0 && c.run->paused) { /* stopped while paused: not paused any more */
            set_paused_note(&c, NULL);
            rc = commit_sync(&c);
        }
        sum->seconds = (double)(joust_now_ms() - c.start_ms) / 1000.0;
        if (sum->complete && c.sock)
            finish(&c);
        if ((rc == 0 || rc == JOUST_EJUDGE) && cfg->sign != JOUST_SIGN_ONLY) {
            int trc = joust_coord_tally_read(st, c.run, &sum->run);
            if (trc < 0)
                log_error("run '%s': cannot count its outcomes: %s", run_name, joust_strerror(trc));
        }
    }
    teardown(&c);
    return rc;
}
