/* The "quality" judge: reads both images from local files, measures them
 * with joust_quality_measure and answers P(first) = sigmoid(dscore / T).
 *
 * Work happens inside poll (it is CPU-bound and synchronous): submit only
 * queues a copy of the request. Each image is decoded at most once per
 * worker while it stays in a bounded LRU cache keyed by image id; failures
 * are cached too, so a corrupt image costs one read, not one per match. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "image.h"
#include "image_path.h"
#include "judge.h"
#include "log.h"
#include "quality.h"
#include "uri.h"
#include "xalloc.h"

#define QUEUE_MAX 4096          /* submit answers JOUST_EAGAIN beyond this */
#define CACHE_DEFAULT 4096
#define NIL (-1)

typedef struct {
    uint64_t match_id;
    uint32_t attempt;
    uint64_t id[2];
    char *uri[2];
} pending_t;

typedef struct {
    uint64_t id;
    int rc;                  /* 0, or why the image could not be measured */
    joust_quality_stats st;  /* valid when rc == 0 */
    char *error;             /* reason when rc != 0 */
    int32_t prev, next;      /* LRU list, most recent first */
    int32_t chain;           /* next entry in the same hash bucket */
} centry_t;

typedef struct {
    pending_t *q;            /* ring buffer */
    size_t qhead, qlen, qcap;
    centry_t *ent;
    size_t cap, n;
    int32_t *bucket;
    size_t nbucket;          /* power of two */
    int32_t lru_head, lru_tail;
    uint64_t hits, misses;
    char *root;
    joust_path_roots roots;  /* --allow-root confinement; n == 0: none */
    joust_image_limits lim;
} qjudge_t;

/* ---- the cache ---- */

static size_t bucket_of(const qjudge_t *j, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (j->nbucket - 1);
}

static void lru_unlink(qjudge_t *j, int32_t i)
{
    centry_t *e = &j->ent[i];
    if (e->prev != NIL) j->ent[e->prev].next = e->next; else j->lru_head = e->next;
    if (e->next != NIL) j->ent[e->next].prev = e->prev; else j->lru_tail = e->prev;
}

static void lru_push_front(qjudge_t *j, int32_t i)
{
    centry_t *e = &j->ent[i];
    e->prev = NIL;
    e->next = j->lru_head;
    if (j->lru_head != NIL)
        j->ent[j->lru_head].prev = i;
    j->lru_head = i;
    if (j->lru_tail == NIL)
        j->lru_tail = i;
}

static int32_t cache_find(qjudge_t *j, uint64_t id)
{
    for (int32_t i = j->bucket[bucket_of(j, id)]; i != NIL; i = j->ent[i].chain)
        if (j->ent[i].id == id) {
            lru_unlink(j, i);
            lru_push_front(j, i);
            return i;
        }
    return NIL;
}

/* Returns a slot for id (new, or the least recently used one evicted). */
static int32_t cache_slot(qjudge_t *j, uint64_t id)
{
    int32_t i;
    if (j->n < j->cap) {
        i = (int32_t)j->n++;
    } else {
        i = j->lru_tail;
        lru_unlink(j, i);
        int32_t *pp = &j->bucket[bucket_of(j, j->ent[i].id)];
        while (*pp != i)
            pp = &j->ent[*pp].chain;
        *pp = j->ent[i].chain;
        free(j->ent[i].error);
    }
    centry_t *e = &j->ent[i];
    memset(e, 0, sizeof *e);
    e->id = id;
    size_t b = bucket_of(j, id);
    e->chain = j->bucket[b];
    j->bucket[b] = i;
    lru_push_front(j, i);
    return i;
}

/* ---- reading an image ---- */

/* The reference becomes a path (uri.h: file:// decoded, image_root joined
 * to relative paths) and is then confined to the allowed roots. */
static int resolve(const qjudge_t *j, const char *uri, char **path, char *err, size_t errlen)
{
    char *p;
    int rc = joust_uri_to_path(uri, j->root, &p, err, errlen);
    if (rc < 0)
        return rc;
    /* The allowed roots are the sandbox: the path is read only when its
     * canonical form (symlinks and .. followed) lies inside one of them. */
    char *real;
    rc = joust_path_confine(&j->roots, p, &real, err, errlen);
    free(p);
    if (rc < 0)
        return rc;
    *path = real;
    return 0;
}

/* Measures image id (cached), copying the result out because a later
 * lookup may evict the entry. On failure err gets the reason. */
static int image_stats(qjudge_t *j, uint64_t id, const char *uri, joust_quality_stats *st,
                       char *err, size_t errlen)
{
    int32_t i = cache_find(j, id);
    if (i != NIL) {
        j->hits++;
    } else {
        j->misses++;
        char reason[512] = "";
        char *path = NULL;
        joust_image img = {0};
        int rc = resolve(j, uri, &path, reason, sizeof reason);
        if (!rc)
            rc = joust_image_load(path, &j->lim, &img, reason, sizeof reason);
        joust_quality_stats s = {0};
        if (!rc && (rc = joust_quality_measure(&img, &s)) != 0)
            snprintf(reason, sizeof reason, "%s: image too small to judge (%dx%d)", path, img.w,
                     img.h);
        joust_image_free(&img);
        free(path);
        i = cache_slot(j, id);
        j->ent[i].rc = rc;
        j->ent[i].st = s;
        if (rc) {
            j->ent[i].error = xstrdup(reason);
            log_warn("quality judge: image %" PRIu64 " (%s): %s", id, uri, reason);
        }
    }
    const centry_t *e = &j->ent[i];
    if (e->rc)
        snprintf(err, errlen, "%s", e->error);
    else
        *st = e->st;
    return e->rc;
}

/* ---- the judge ---- */

static int q_submit(void *impl, const joust_judge_req *req)
{
    qjudge_t *j = impl;
    if (!req || !req->first.uri || !req->second.uri || !*req->first.uri || !*req->second.uri)
        return JOUST_EINVAL;
    if (j->qlen >= QUEUE_MAX)
        return JOUST_EAGAIN;
    if (j->qlen == j->qcap) {
        /* grow and unwrap the ring */
        size_t ncap = j->qcap ? j->qcap * 2 : 64;
        pending_t *nq = xmalloc(ncap * sizeof *nq);
        for (size_t k = 0; k < j->qlen; k++)
            nq[k] = j->q[(j->qhead + k) % j->qcap];
        free(j->q);
        j->q = nq;
        j->qcap = ncap;
        j->qhead = 0;
    }
    pending_t *p = &j->q[(j->qhead + j->qlen) % j->qcap];
    p->match_id = req->match_id;
    p->attempt = req->attempt;
    p->id[0] = req->first.image_id;
    p->id[1] = req->second.image_id;
    p->uri[0] = xstrdup(req->first.uri);
    p->uri[1] = xstrdup(req->second.uri);
    j->qlen++;
    return 0;
}

static void judge_one(qjudge_t *j, const pending_t *p, joust_judge_res *res)
{
    int64_t t0 = joust_now_us();
    memset(res, 0, sizeof *res);
    res->match_id = p->match_id;
    res->attempt = p->attempt;
    joust_quality_stats st[2];
    for (int k = 0; k < 2; k++) {
        char reason[512];
        if (image_stats(j, p->id[k], p->uri[k], &st[k], reason, sizeof reason) != 0) {
            size_t n = strlen(p->uri[k]) + strlen(reason) + 48;
            res->status = JOUST_STATUS_IMAGE_ERROR;
            res->failed_image_id = p->id[k];
            res->p_first = 0.5;
            res->error = xmalloc(n);
            snprintf(res->error, n, "image %" PRIu64 " (%s): %s", p->id[k], p->uri[k], reason);
            res->latency_us = joust_now_us() - t0;
            return;
        }
    }
    char reason[320];
    joust_quality_reason(&st[0], &st[1], reason, sizeof reason);
    res->status = JOUST_STATUS_OK;
    res->p_first = joust_quality_prob(&st[0], &st[1]);
    res->answer = res->p_first >= 0.5 ? 1 : 2;
    res->reason = xstrdup(reason);
    res->latency_us = joust_now_us() - t0;
}

/* Judges up to max queued requests right here; timeout_ms is not needed
 * because nothing is ever in flight elsewhere (an empty queue returns 0). */
static int q_poll(void *impl, joust_judge_res *out, int max, int timeout_ms)
{
    qjudge_t *j = impl;
    if (max < 0 || (max > 0 && !out))
        return JOUST_EINVAL;
    int n = 0;
    while (n < max && j->qlen > 0) {
        pending_t *p = &j->q[j->qhead];
        judge_one(j, p, &out[n++]);
        free(p->uri[0]);
        free(p->uri[1]);
        j->qhead = (j->qhead + 1) % j->qcap;
        j->qlen--;
    }
    return n;
}

static size_t q_inflight(void *impl)
{
    return ((qjudge_t *)impl)->qlen;
}

static void q_destroy(void *impl)
{
    qjudge_t *j = impl;
    if (!j)
        return;
    for (size_t k = 0; k < j->qlen; k++) {
        pending_t *p = &j->q[(j->qhead + k) % j->qcap];
        free(p->uri[0]);
        free(p->uri[1]);
    }
    for (size_t i = 0; i < j->n; i++)
        free(j->ent[i].error);
    free(j->q);
    free(j->ent);
    free(j->bucket);
    free(j->root);
    joust_path_roots_free(&j->roots);
    free(j);
}

static const joust_judge_ops quality_ops = {
    .name = "quality",
    .submit = q_submit,
    .poll = q_poll,
    .inflight = q_inflight,
    .destroy = q_destroy,
};

int joust_judge_quality_new(const joust_judge_config *cfg, joust_judge_t **out)
{
    if (!out)
        return JOUST_EINVAL;
    qjudge_t *j = xcalloc(1, sizeof *j);
    j->cap = cfg && cfg->cache_entries ? cfg->cache_entries : CACHE_DEFAULT;
    if (j->cap > INT32_MAX / 2)
        j->cap = INT32_MAX / 2;
    j->ent = xcalloc(j->cap, sizeof *j->ent);
    for (j->nbucket = 16; j->nbucket < 2 * j->cap; j->nbucket *= 2)
        ;
    j->bucket = xmalloc(j->nbucket * sizeof *j->bucket);
    for (size_t b = 0; b < j->nbucket; b++)
        j->bucket[b] = NIL;
    j->lru_head = j->lru_tail = NIL;
    if (cfg && cfg->image_root && *cfg->image_root)
        j->root = xstrdup(cfg->image_root);
    char err[512];
    if (cfg && joust_path_roots_init(&j->roots, cfg->allow_roots, cfg->n_allow_roots, err,
                                     sizeof err) < 0) {
        log_error("quality judge: %s", err);
        q_destroy(j);
        return JOUST_EINVAL;
    }
    joust_image_limits_defaults(&j->lim);
    joust_judge_t *jd = xmalloc(sizeof *jd);
    jd->ops = &quality_ops;
    jd->impl = j;
    *out = jd;
    return 0;
}

void joust_judge_quality_cache_stats(joust_judge_t *jd, uint64_t *hits, uint64_t *misses)
{
    const qjudge_t *j = jd && jd->ops == &quality_ops ? jd->impl : NULL;
    if (hits)
        *hits = j ? j->hits : 0;
    if (misses)
        *misses = j ? j->misses : 0;
}
