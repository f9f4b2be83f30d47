/* The coordinator's in-memory state, shared by its two halves:
 * coordinator.c (workers, dispatch, recording, the loop) and planning.c
 * (prompt groups, planners, recovery). Internal to coordinator/; one thread.
 * What it keeps is small and fixed per in-flight match and per active
 * prompt group: the store holds everything else. */
#ifndef JOUST_COORD_STATE_H
#define JOUST_COORD_STATE_H
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "committer.h"
#include "coordinator.h"
#include "grouping.h"
#include "idmap.h"
#include "joust.pb-c.h"
#include "pairing.h"
#include "planner.h"
#include "sparse_plan.h"
#include "run.h"
#include "records.h"
#include "store.h"
#include "u64map.h"
#include "xalloc.h"

typedef struct {
    uint64_t id;
    char *uri;
    double latent;
    int has_latent;
    uint32_t model; /* index of its generator model within the prompt */
    uint8_t old;    /* planned with its prompt in an earlier pass: a pair of
                       two old images is not planned again (planning.c) */
    uint8_t has_content;
    uint64_t content; /* content hash, for outcome reuse (reuse.h) */
    char *caption;    /* grouped runs: the image's own prompt text; else NULL */
    uint32_t job_stamp, job_index; /* its entry in the JOB being built */
} img_ref;

/* A planned prompt group, kept while any of its matches is unfinished or
 * its planner may still ask for more (each holds a reference). */
typedef struct {
    uint64_t prompt_id;
    char *text;
    uint32_t n, refs;
    img_ref *imgs;
    joust_planner *planner; /* NULL once it has nothing more to plan */
    joust_sparse_plan *stream; /* instead of planner: a group over the dense
                                  planner's limit, pulled as the window allows */
    uint32_t job_stamp, job_index; /* its entry in the JOB being built */
} prompt_slot;

enum { M_PENDING = 1, M_LEASED, M_COMMITTING };

#define HOLDERS 4 /* lessees remembered per match */
#define NO_IDENT UINT32_MAX

typedef struct {
    uint64_t id;
    prompt_slot *p;
    uint32_t a, b;      /* indices into p->imgs, presentation order */
    uint32_t attempt;   /* current dispatch, 1-based: +1 per re-dispatch */
    uint32_t tries;     /* spent attempts (UNPARSEABLE), against max_attempts */
    uint32_t lost;      /* leases lost (expired, worker gone), against max_lost */
    uint32_t worker;    /* lessee peer, when leased */
    uint32_t holders[HOLDERS]; /* identities that held its lease, most recent
                                * last; NO_IDENT when unused */
    uint8_t state;
    uint8_t recovered;  /* planned before a restart: earlier lessees unknown */
    int64_t deadline_ms;
} match;

typedef struct {
    unsigned char rid[256];
    size_t rid_len;
    char name[128];
    uint32_t ident;       /* index into coord.idents once registered */
    uint32_t slots;
    int64_t last_seen, last_sent;
    int alive;
    int registered;       /* sent READY on this connection */
    int tables;           /* its READY said job_tables: JOBs with tables */
    int unavailable;      /* its HEARTBEAT says no healthy endpoint */
    char why_unavailable[256];
    int drained;          /* its leases kept expiring: no new work */
    uint32_t expired_streak; /* leases expired since its last answer */
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

typedef struct coord_signing coord_signing; /* signing.c */

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
    joust_idmap_t active;    /* match id -> pool index */
    joust_u64map_t prompts;  /* prompt id -> prompt_slot* */
    int grouped;             /* the run's groups are not the prompt (grouping.h) */
    joust_groups groups;     /* then: its groups, loaded by coord_recover */
    prompt_slot *stream;     /* the group being streamed (at most one), or NULL */
    joust_rec_cursor_t *images; /* planning.c: image reads of one round */
    ring pending, leases;

    peer *peers;
    size_t npeers, peers_cap;
    joust_u64map_t peer_index; /* hash of routing id -> peers index + 1 */
    uint32_t rr;
    /* Worker identities: the registered name (under CURVE the key's name).
     * Leases are held by identities, so a worker that reconnects (a new
     * routing id) still holds its leases. */
    char (*idents)[128];
    size_t nidents, idents_cap;
    joust_u64map_t ident_index; /* hash of name -> idents index */
    int stop_rc;                /* set to stop the loop (CONFIG_ERROR) */

    /* Staged for the next group commit, and the one being written. */
    joust_batch_t *batch;
    uint32_t batch_results;
    int64_t batch_first_ms;
    uint64_t *committing, *flight;
    size_t ncommitting, committing_cap, nflight, flight_cap;
    pending_ack *cacks, *flight_acks;
    size_t ncacks, cacks_cap, nflight_acks, flight_acks_cap;
    joust_committer_t *committer;

    /* The JOB being built: MatchJobs, or pairs and their tables. */
    Joust__MatchJob *jobs;
    Joust__MatchJob **job_ptrs;
    Joust__ImageRef *refs, **ref_ptrs;
    Joust__PairJob *pairs, **pair_ptrs;
    Joust__PromptRef *tprompts, **tprompt_ptrs;
    size_t ntprompts, ntimages;
    uint32_t job_stamp;

    joust_coord_summary *sum;
    uint64_t prompts_total, prompts_planned;
    uint64_t session_done;                  /* outcomes staged this session */
    uint64_t done_before;                   /* outcomes committed before it */
    uint64_t reuse_salt;                    /* reuse.h: this run's judge settings */
    uint64_t reused_staged;                 /* reused outcomes in the open batch */
    int64_t start_ms, last_progress_ms, last_log_ms, paused_since_ms, last_pause_ms;
    int paused;

    /* Signature jobs (cfg->sign): the images to sign, and the run's
     * collapsed near-duplicates (image id -> representative), which
     * planning leaves out. */
    coord_signing *signing;
    joust_u64map_t collapsed;
} coord;

static inline void ring_push(ring *r, uint64_t v, int front)
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

static inline uint64_t ring_peek(const ring *r) { return r->v[r->head]; }

static inline uint64_t ring_pop(ring *r)
{
    uint64_t v = r->v[r->head];
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return v;
}

/* Queues hold handles, not ids: the pool index and the low half of the id,
 * so a queue entry finds its match without a hash lookup and a stale entry
 * (slot freed or reused) is recognised. */
static inline uint64_t handle_of(const coord *c, const match *m)
{
    return (uint64_t)(m - c->pool) << 32 | (uint32_t)m->id;
}

static inline match *match_of(coord *c, uint64_t h)
{
    size_t idx = (size_t)(h >> 32);
    match *m = idx < c->pool_len ? &c->pool[idx] : NULL;
    return m && m->state && (uint32_t)m->id == (uint32_t)h ? m : NULL;
}

static inline match *find_match(coord *c, uint64_t id)
{
    uint64_t idx;
    return joust_idmap_get(&c->active, id, &idx) ? &c->pool[idx] : NULL;
}

/* coordinator.c, for signing.c: a peer that may be sent work now (credit
 * aside); one JOB of matches and/or sign entries to p (0, or the send's
 * error; a vanished peer is marked gone). */
int coord_takes_work(const peer *p);
/* A lease of p's expired: counted, and p drained after drain_after in a row. */
void coord_lease_expired(coord *c, peer *p);
int coord_send_job(coord *c, peer *p, Joust__MatchJob **matches, size_t n_matches,
                   Joust__ImageRef **sign, size_t n_sign);

/* planning.c and signing.c: whether the run plans image id (it covers it
 * and it is not a collapsed near-duplicate). */
static inline int coord_plans_image(const coord *c, uint64_t id)
{
    uint64_t rep;
    return joust_run_image_pass(c->run, id) >= 0 &&
           !(c->collapsed.len && joust_u64map_get(&c->collapsed, id, &rep));
}

/* signing.c: signature jobs (docs/protocol.md §11).
 * init queues the covered images without a stored signature (copying the
 * signature of an image with the same content into the open batch);
 * busy says whether any is left; dispatch sends queued images to peers with
 * credit (before matches); result stages the signatures of a RESULT;
 * expire and peer_lost put images whose lease ended back in the queue;
 * progress logs every log_every_ms (final: now); free releases it all. */
int coord_sign_init(coord *c);
int coord_sign_busy(const coord *c);
void coord_sign_dispatch(coord *c);
void coord_sign_result(coord *c, peer *p, const Joust__Result *r);
void coord_sign_expire(coord *c, int64_t now);
void coord_sign_peer_lost(coord *c, uint32_t pi);
void coord_sign_progress(coord *c, int64_t now, int final);
void coord_sign_free(coord *c);
/* Reads the run's collapsed near-duplicates into c->collapsed. */
int coord_collapsed_load(coord *c);
/* A heap copy of a run record (free with joust_rec_free). */
int coord_sign_copy_run(const Joust__RunRecord *run, Joust__RunRecord **out);

/* coord_metrics.c: publishes the loop's counters and gauges to
 * cfg->metrics (when set); called once per turn of the loop. */
void coord_metrics_tick(coord *c);

/* planning.c */

/* Drops a reference to a prompt group; frees it with the last one. */
void coord_prompt_release(coord *c, prompt_slot *p);
/* Takes every match the prompt's planner has ready into the queue; drops
 * the planner once it is done. */
void coord_planner_pull(coord *c, prompt_slot *p);
/* Plans prompt groups from the run's cursor until the window is full, once a
 * quarter of it has drained (or nothing is left to dispatch). */
int coord_plan_more(coord *c);
/* After a restart: re-queues every planned match without an outcome (and
 * replays batch planners). Loads the run's groups first when grouped. */
int coord_recover(coord *c);
/* Frees what planning keeps besides the prompt slots (the groups). */
void coord_planning_free(coord *c);

#endif
