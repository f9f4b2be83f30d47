/* The coordinator's signature jobs (docs/protocol.md §11): the images of
 * the run without a stored signature are queued, sent to workers in the
 * `sign` entries of JOBs (one credit each, leased like matches), and their
 * signatures are staged into the group commit. Internal to coordinator/
 * (coord_state.h); one thread, the coordinator's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord_state.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "run.h"
#include "wire.h"

#define SIGN_MAX_TRIES 10 /* lost leases and INFRA_ERRORs before an image is given up */

enum { S_PENDING = 1, S_LEASED, S_DONE };

typedef struct {
    uint64_t id;
    char *uri;
    uint64_t content;
    uint8_t has_content, state;
    uint32_t tries;
    uint32_t same; /* the next item with the same content + 1 (0: none): signed
                    * with this one, not by a worker */
    uint32_t worker; /* the lessee peer, when leased */
    uint32_t holder; /* the identity of the last lessee + 1 (0: none) */
    int64_t deadline_ms;
} sign_item;

typedef struct {
    uint32_t item;
    int64_t deadline_ms;
} sign_lease;

struct coord_signing {
    sign_item *items;
    size_t n, left; /* left: items not done */
    joust_u64map_t index; /* image id -> item index */
    joust_u64map_t content; /* content hash -> the item a worker signs for it */
    uint32_t *queue;      /* pending items, a FIFO (may hold stale entries) */
    size_t qhead, qlen, qcap;
    sign_lease *leases;   /* in lease order, so in deadline order */
    size_t lhead, llen, lcap;
    Joust__ImageRef *refs;
    Joust__ImageRef **ref_ptrs;
    int64_t last_log_ms;
};

static void q_push(coord_signing *s, uint32_t item)
{
    if (s->qhead + s->qlen == s->qcap) { /* compact, then grow */
        if (s->qlen) /* queue is NULL before the first push */
            memmove(s->queue, s->queue + s->qhead, s->qlen * sizeof *s->queue);
        s->qhead = 0;
        xgrow((void **)&s->queue, &s->qcap, s->qlen + 1, sizeof *s->queue);
    }
    s->queue[s->qhead + s->qlen++] = item;
}

static void lease_push(coord_signing *s, uint32_t item, int64_t deadline)
{
    if (s->lhead + s->llen == s->lcap) {
        if (s->llen)
            memmove(s->leases, s->leases + s->lhead, s->llen * sizeof *s->leases);
        s->lhead = 0;
        xgrow((void **)&s->leases, &s->lcap, s->llen + 1, sizeof *s->leases);
    }
    s->leases[s->lhead + s->llen++] = (sign_lease){item, deadline};
}

/* Queues an image; one whose content an earlier queued image has rides
 * along with that one (its signature is copied when that one is signed). */
static void add_item(coord_signing *s, const Joust__ImageRecord *ir)
{
    if (s->n % 1024 == 0)
        s->items = xrealloc(s->items, (s->n + 1024) * sizeof *s->items);
    s->items[s->n] = (sign_item){.id = ir->image_id, .uri = xstrdup(ir->uri),
                                 .content = ir->content_hash, .has_content = ir->has_content_hash,
                                 .state = S_PENDING};
    joust_u64map_put(&s->index, ir->image_id, s->n);
    uint64_t lead;
    if (ir->has_content_hash && joust_u64map_get(&s->content, ir->content_hash, &lead)) {
        s->items[s->n].state = S_DONE; /* never dispatched */
        s->items[s->n].same = s->items[lead].same;
        s->items[lead].same = (uint32_t)s->n + 1;
        s->n++;
        return;
    }
    if (ir->has_content_hash)
        joust_u64map_put(&s->content, ir->content_hash, s->n);
    q_push(s, (uint32_t)s->n++);
    s->left++;
}

/* One covered image: known, copied by content, or queued. */
static int consider(const Joust__ImageRecord *ir, void *arg)
{
    coord *c = arg;
    Joust__SignatureRecord *sr = NULL;
    int rc = joust_rec_signature_get(c->st, ir->image_id, &sr);
    if (rc == 0) {
        c->sum->sign_known++;
    } else if (rc == JOUST_ENOTFOUND && ir->has_content_hash &&
               (rc = joust_rec_signature_by_content(c->st, ir->content_hash, &sr)) == 0) {
        /* The same bytes were signed as another image: no worker needed. */
        joust_rec_signature_put(c->batch, ir->image_id, 0, 0, sr);
        c->sum->sign_copied++;
    } else if (rc == JOUST_ENOTFOUND) {
        add_item(c->signing, ir);
        rc = 0;
    }
    joust_rec_free(sr);
    return rc;
}

int coord_sign_init(coord *c)
{
    coord_signing *s = xcalloc(1, sizeof *s);
    joust_u64map_init(&s->index);
    joust_u64map_init(&s->content);
    c->signing = s;
    int rc = joust_run_images_each(c->st, c->run, consider, c);
    if (rc < 0)
        log_error("cannot list the images to sign: %s", joust_strerror(rc));
    else if (s->n || c->sum->sign_copied)
        log_info("signing: %zu images to sign (%zu of them by workers), %" PRIu64
                 " copied from images with the same content, %" PRIu64 " signed before",
                 s->n, s->left, c->sum->sign_copied, c->sum->sign_known);
    s->last_log_ms = joust_now_ms();
    return rc;
}

int coord_sign_busy(const coord *c)
{
    return c->signing && c->signing->left > 0;
}

void coord_sign_free(coord *c)
{
    coord_signing *s = c->signing;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].uri);
    free(s->items);
    free(s->queue);
    free(s->leases);
    free(s->refs);
    free(s->ref_ptrs);
    joust_u64map_free(&s->index);
    joust_u64map_free(&s->content);
    free(s);
    c->signing = NULL;
}

/* The item is finished (signed, failed for good, or given up). */
static void item_done(coord_signing *s, sign_item *it)
{
    it->state = S_DONE;
    s->left--;
}

/* Back to the queue, or given up after SIGN_MAX_TRIES. */
static void item_retry(coord *c, sign_item *it, const char *why)
{
    coord_signing *s = c->signing;
    if (++it->tries >= SIGN_MAX_TRIES) {
        log_warn("image %" PRIu64 " (%s): not signed after %u tries (%s); given up for now", it->id,
                 it->uri, it->tries, why);
        c->sum->sign_given_up++;
        item_done(s, it);
        return;
    }
    it->state = S_PENDING;
    q_push(s, (uint32_t)(it - s->items));
}

static void end_lease(coord *c, sign_item *it)
{
    if (it->state != S_LEASED)
        return;
    peer *p = &c->peers[it->worker];
    if (p->outstanding)
        p->outstanding--;
    it->state = S_PENDING;
}

/* Whether a worker other than identity `ident` could take work. */
static int other_worker(const coord *c, uint32_t ident)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (coord_takes_work(&c->peers[i]) && c->peers[i].ident != ident)
            return 1;
    return 0;
}

/* Sends up to `credit` queued images to p in one JOB. An image whose lease
 * p held last (it expired, or p could not reach the image store) is left
 * for another worker when one can take work. */
static void dispatch_to(coord *c, peer *p, uint32_t credit)
{
    coord_signing *s = c->signing;
    uint32_t max = credit < c->cfg->job_matches ? credit : c->cfg->job_matches;
    if (!s->refs) {
        s->refs = xcalloc(c->cfg->job_matches, sizeof *s->refs);
        s->ref_ptrs = xcalloc(c->cfg->job_matches, sizeof *s->ref_ptrs);
    }
    uint32_t sent[1024], skipped[1024];
    size_t n = 0, nskip = 0;
    int others = -1; /* other_worker, once needed */
    while (n < max && s->qlen && nskip < 1024) {
        uint32_t k = s->queue[s->qhead++];
        s->qlen--;
        if (s->items[k].state != S_PENDING)
            continue; /* stale */
        if (s->items[k].holder == p->ident + 1 &&
            (others < 0 ? (others = other_worker(c, p->ident)) : others)) {
            skipped[nskip++] = k;
            continue;
        }
        Joust__ImageRef *r = &s->refs[n];
        joust__image_ref__init(r);
        r->image_id = s->items[k].id;
        r->uri = s->items[k].uri;
        s->ref_ptrs[n] = r;
        sent[n++] = k;
    }
    for (size_t i = 0; i < nskip; i++)
        q_push(s, skipped[i]);
    if (!n)
        return;
    int rc = coord_send_job(c, p, NULL, 0, s->ref_ptrs, n);
    int64_t deadline = joust_now_ms() + c->run->lease_ms;
    for (size_t i = 0; i < n; i++) {
        sign_item *it = &s->items[sent[i]];
        if (rc < 0) {
            q_push(s, sent[i]);
            continue;
        }
        it->state = S_LEASED;
        it->worker = (uint32_t)(p - c->peers);
        it->holder = p->ident + 1;
        it->deadline_ms = deadline;
        lease_push(s, sent[i], deadline);
    }
    if (rc == 0)
        p->outstanding += (uint32_t)n;
}

void coord_sign_dispatch(coord *c)
{
    coord_signing *s = c->signing;
    if (!s)
        return;
    for (size_t k = 0; k < c->npeers && s->qlen; k++) {
        peer *p = &c->peers[(c->rr + k) % c->npeers];
        while (coord_takes_work(p) && p->slots > p->outstanding && s->qlen) {
            uint32_t before = p->outstanding;
            dispatch_to(c, p, p->slots - p->outstanding);
            if (p->outstanding == before)
                break;
        }
    }
}

void coord_sign_result(coord *c, peer *p, const Joust__Result *r)
{
    coord_signing *s = c->signing;
    if (!s) { /* late: every image was signed already */
        c->sum->duplicates += r->n_signatures;
        return;
    }
    if (r->run_id != c->run->run_id) {
        c->sum->rejected += r->n_signatures;
        return;
    }
    for (size_t i = 0; i < r->n_signatures; i++) {
        const Joust__Signature *g = r->signatures[i];
        uint64_t k;
        if (!joust_u64map_get(&s->index, g->image_id, &k) || s->items[k].state == S_DONE) {
            c->sum->duplicates++;
            continue;
        }
        sign_item *it = &s->items[k];
        if (it->state == S_LEASED && c->peers[it->worker].ident == p->ident) {
            end_lease(c, it);
            p->expired_streak = 0;
        }
        if (g->status == JOUST__OUTCOME_STATUS__INFRA_ERROR) {
            if (it->state == S_PENDING) /* not leased elsewhere meanwhile */
                item_retry(c, it, g->error ? g->error : "infrastructure error");
            continue;
        }
        if (it->state == S_LEASED) /* another worker's answer settles it: the same value */
            end_lease(c, it);
        Joust__SignatureRecord rec = JOUST__SIGNATURE_RECORD__INIT;
        rec.status = g->status;
        if (g->status == JOUST__OUTCOME_STATUS__OK) {
            rec.has_phash = rec.has_width = rec.has_height = rec.has_bytes = 1;
            rec.phash = g->phash;
            rec.width = g->width;
            rec.height = g->height;
            rec.bytes = g->bytes;
            c->sum->sign_ok++;
        } else {
            rec.error = g->error;
            c->sum->sign_failed++;
            log_warn("image %" PRIu64 ": cannot be signed: %s", it->id, g->error ? g->error : "");
        }
        rec.has_signed_ms = 1;
        rec.signed_ms = joust_wall_ms();
        joust_rec_signature_put(c->batch, it->id, it->has_content, it->content, &rec);
        for (uint32_t f = it->same; f; f = s->items[f - 1].same) { /* the same bytes */
            joust_rec_signature_put(c->batch, s->items[f - 1].id, 0, 0, &rec);
            c->sum->sign_copied++;
        }
        item_done(s, it);
    }
}

void coord_sign_expire(coord *c, int64_t now)
{
    coord_signing *s = c->signing;
    while (s && s->llen) {
        sign_lease *l = &s->leases[s->lhead];
        sign_item *it = &s->items[l->item];
        int live = it->state == S_LEASED && it->deadline_ms == l->deadline_ms;
        if (live && l->deadline_ms > now)
            break;
        s->lhead++;
        s->llen--;
        if (live) {
            log_warn("image %" PRIu64 ": signing lease on %s expired", it->id,
                     c->peers[it->worker].name);
            coord_lease_expired(c, &c->peers[it->worker]);
            end_lease(c, it);
            item_retry(c, it, "lease expired");
        }
    }
}

void coord_sign_peer_lost(coord *c, uint32_t pi)
{
    coord_signing *s = c->signing;
    for (size_t i = 0; s && i < s->n; i++) {
        sign_item *it = &s->items[i];
        if (it->state == S_LEASED && it->worker == pi) {
            it->state = S_PENDING; /* the peer's credit was reset with it */
            item_retry(c, it, "its worker disappeared");
        }
    }
}

void coord_sign_progress(coord *c, int64_t now, int final)
{
    coord_signing *s = c->signing;
    if (!s || !s->n)
        return;
    if (!final && now - s->last_log_ms < (c->cfg->log_every_ms ? c->cfg->log_every_ms : 5000))
        return;
    s->last_log_ms = now;
    log_info("signing: %zu/%zu images (%" PRIu64 " signed, %" PRIu64 " failed, %" PRIu64
             " given up)",
             s->n - s->left, s->n, c->sum->sign_ok, c->sum->sign_failed, c->sum->sign_given_up);
}

static int collapsed_put(uint64_t image_id, const Joust__DuplicateRecord *d, void *arg)
{
    joust_u64map_put(arg, image_id, d->representative);
    return 0;
}

int coord_collapsed_load(coord *c)
{
    joust_u64map_clear(&c->collapsed);
    int rc = joust_rec_duplicate_each(c->st, c->run->run_id, collapsed_put, &c->collapsed);
    if (rc < 0)
        log_error("run '%s': cannot read its collapsed near-duplicates: %s", c->run->name,
                  joust_strerror(rc));
    else if (c->collapsed.len)
        log_info("run '%s': %zu near-duplicates collapsed into their representatives are not "
                 "planned", c->run->name, c->collapsed.len);
    return rc;
}

int coord_sign_copy_run(const Joust__RunRecord *run, Joust__RunRecord **out)
{
    /* Packed and unpacked: a heap tree like a stored record. */
    size_t len = joust__run_record__get_packed_size(run);
    uint8_t *buf = xmalloc(len ? len : 1);
    joust__run_record__pack(run, buf);
    *out = joust__run_record__unpack(NULL, len, buf);
    free(buf);
    return *out ? 0 : JOUST_ECORRUPT;
}

int joust_coord_sign_scope(uint64_t first_image, uint64_t end_image, Joust__RunRecord **out)
{
    Joust__RunRecord r = JOUST__RUN_RECORD__INIT;
    Joust__RunManifest m = JOUST__RUN_MANIFEST__INIT, *mp = &m;
    r.run_id = JOUST_SIGN_STORE_RUN;
    r.name = first_image || end_image ? "(the manifest's images)" : "(every image in the store)";
    r.strategy = "round-robin";
    r.judge = "";
    r.order = "both";
    r.has_lease_ms = 1;
    r.lease_ms = 60000;
    if (first_image || end_image) {
        m.first_image = first_image;
        m.end_image = end_image;
        r.n_manifests = 1;
        r.manifests = &mp;
    }
    return coord_sign_copy_run(&r, out);
}
