/* The "quality" judge: gets both images from the image stage (imgsrc.h),
 * measures them with joust_quality_measure and answers
 * P(first) = sigmoid(dscore / T).
 *
 * Work happens inside poll (it is CPU-bound and synchronous): submit only
 * queues a copy of the request. The stage reads, decodes and measures each
 * image at most once per worker while it stays in its LRU cache keyed by
 * image id; failures are cached too, so a corrupt image costs one read, not
 * one per match. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "fetch.h"
#include "confine.h"
#include "image.h"
#include "imgsrc.h"
#include "judge.h"
#include "log.h"
#include "quality.h"
#include "xalloc.h"

#define QUEUE_MAX 4096          /* submit answers JOUST_EAGAIN beyond this */

typedef struct {
    uint64_t match_id;
    uint32_t attempt;
    uint64_t id[2];
    char *uri[2];
} pending_t;

typedef struct {
    pending_t *q;            /* ring buffer */
    size_t qhead, qlen, qcap;
    joust_path_roots roots;  /* --allow-root confinement; n == 0: none */
    joust_imgsrc_t *src;     /* the image stage: read, decode, measure once per image */
    joust_fetch_t *fetch;    /* its remote images (http(s)://, s3://) */
} qjudge_t;

/* The stage's prepare: what this judge keeps per image is its statistics. */
static int measure(void *ctx, const joust_image *img, int src_w, int src_h, void **value,
                   size_t *bytes, char *err, size_t errlen)
{
    (void)ctx;
    (void)src_w; /* no want: decoded at full size */
    (void)src_h;
    joust_quality_stats s;
    if (joust_quality_measure(img, &s) != 0) {
        snprintf(err, errlen, "image too small to judge (%dx%d)", img->w, img->h);
        return JOUST_EINVAL;
    }
    joust_quality_stats *copy = xmalloc(sizeof *copy);
    *copy = s;
    *value = copy;
    *bytes = sizeof *copy;
    return 0;
}

/* Measures image id (through the stage's cache), copying the result out
 * because a later lookup may evict the entry. On failure err gets the reason. */
static int image_stats(qjudge_t *j, uint64_t id, const char *uri, joust_quality_stats *st,
                       char *err, size_t errlen)
{
    const void *v;
    int rc = joust_imgsrc_get(j->src, id, uri, &v, err, errlen);
    if (rc == 0)
        *st = *(const joust_quality_stats *)v;
    return rc;
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
        int rc = image_stats(j, p->id[k], p->uri[k], &st[k], reason, sizeof reason);
        if (rc != 0) {
            size_t n = strlen(p->uri[k]) + strlen(reason) + 48;
            res->status = joust_imgsrc_outage(rc) ? JOUST_STATUS_INFRA_ERROR
                                                  : JOUST_STATUS_IMAGE_ERROR;
            res->failed_image_id = joust_imgsrc_outage(rc) ? 0 : p->id[k];
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
    free(j->q);
    joust_imgsrc_destroy(&j->src);
    joust_fetch_destroy(&j->fetch);
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
    char err[512];
    if (cfg && joust_path_roots_init(&j->roots, cfg->allow_roots, cfg->n_allow_roots, err,
                                     sizeof err) < 0) {
        log_error("quality judge: %s", err);
        q_destroy(j);
        return JOUST_EINVAL;
    }
    /* No `want`: images are decoded at full size, because blockiness is
     * measured on the original pixels, where the JPEG grid still is. */
    joust_imgsrc_config sc = {.image_root = cfg ? cfg->image_root : NULL, .roots = &j->roots,
                              .max_entries = cfg ? cfg->cache_entries : 0,
                              .use = {.prepare = measure}, .log_name = "quality judge"};
    joust_fetch_config fc = {.s3_endpoint = cfg ? cfg->s3_endpoint : NULL,
                             .cache_dir = cfg ? cfg->fetch_cache_dir : NULL,
                             .cache_mb = cfg ? cfg->fetch_cache_mb : 0};
    j->fetch = joust_fetch_new(&fc);
    sc.fetch_remote = joust_fetch_remote;
    sc.fetch_ctx = j->fetch;
    j->src = joust_imgsrc_new(&sc);
    joust_judge_t *jd = xmalloc(sizeof *jd);
    jd->ops = &quality_ops;
    jd->impl = j;
    *out = jd;
    return 0;
}

void joust_judge_quality_cache_stats(joust_judge_t *jd, uint64_t *hits, uint64_t *misses)
{
    const qjudge_t *j = jd && jd->ops == &quality_ops ? jd->impl : NULL;
    joust_imgsrc_stats st = {0};
    if (j)
        joust_imgsrc_stats_get(j->src, &st);
    if (hits)
        *hits = st.hits;
    if (misses)
        *misses = st.misses;
}
