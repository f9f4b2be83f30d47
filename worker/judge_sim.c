/* The `sim` judge: a simulated judge for tests and benchmarks. Its outcome
 * comes from the latent utilities in the manifest:
 *   p_first = sigmoid((u_first - u_second) / T + bias + noise * N(0,1)).
 * An optional latency holds each result back, to stand in for a slow judge.
 * The noise draw is seeded by (seed, match_id), not by worker or attempt, so
 * a re-dispatched match gets the same outcome and runs are reproducible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "judge.h"
#include "rng.h"
#include "xalloc.h"

typedef struct {
    joust_judge_config cfg;
    joust_judge_res *ready; /* FIFO of results, in submit order */
    int64_t *ready_at_ms;   /* when each becomes visible (simulated latency) */
    size_t head, len, cap;
} sim_judge;

/* now_ms: when the match was done (the clock read once per match). */
static void push(sim_judge *s, const joust_judge_res *r, int64_t now_ms)
{
    if (s->head > 0 && s->head * 2 >= s->len) { /* mostly consumed: move the rest to the front */
        size_t left = s->len - s->head;
        memmove(s->ready, s->ready + s->head, left * sizeof *s->ready);
        memmove(s->ready_at_ms, s->ready_at_ms + s->head, left * sizeof *s->ready_at_ms);
        s->head = 0;
        s->len = left;
    }
    size_t cap = s->cap;
    xgrow((void **)&s->ready, &s->cap, s->len + 1, sizeof *s->ready);
    xgrow((void **)&s->ready_at_ms, &cap, s->len + 1, sizeof *s->ready_at_ms);
    s->ready_at_ms[s->len] = now_ms + s->cfg.sim_latency_ms;
    s->ready[s->len++] = *r;
}

static char *missing_latent(const joust_judge_image *im)
{
    char buf[600];
    snprintf(buf, sizeof buf, "image %llu (%.500s): no latent utility in the manifest (field \"latent\")",
             (unsigned long long)im->image_id, im->uri);
    return xstrdup(buf);
}

static int sim_submit(void *impl, const joust_judge_req *req)
{
    sim_judge *s = impl;
    int64_t t0 = joust_now_us();
    joust_judge_res r = {.match_id = req->match_id, .attempt = req->attempt};
    const joust_judge_image *bad = !req->first.has_latent    ? &req->first
                                   : !req->second.has_latent ? &req->second
                                                             : NULL;
    if (bad) {
        r.status = JOUST_STATUS_IMAGE_ERROR;
        r.error = missing_latent(bad);
        r.failed_image_id = bad->image_id;
    } else {
        joust_rng_t rng;
        joust_rng_seed(&rng, s->cfg.seed * 0x9e3779b97f4a7c15ull ^ req->match_id);
        double t = s->cfg.sim_temperature > 0 ? s->cfg.sim_temperature : 1.0;
        double z = (req->first.latent - req->second.latent) / t + s->cfg.sim_bias;
        if (s->cfg.sim_noise > 0)
            z += s->cfg.sim_noise * joust_rng_normal(&rng);
        r.status = JOUST_STATUS_OK;
        r.p_first = 1.0 / (1.0 + exp(-z));
        r.answer = r.p_first >= 0.5 ? 1 : 2;
    }
    /* what the match takes: the work plus the simulated latency before poll sees it */
    int64_t t1 = joust_now_us();
    r.latency_us = t1 - t0 + (int64_t)s->cfg.sim_latency_ms * 1000;
    push(s, &r, t1 / 1000);
    return 0;
}

static int sim_poll(void *impl, joust_judge_res *out, int max, int timeout_ms)
{
    sim_judge *s = impl;
    int n = 0;
    int64_t now = joust_now_ms();
    while (n < max && s->head < s->len && s->ready_at_ms[s->head] <= now)
        out[n++] = s->ready[s->head++];
    return n;
}

static size_t sim_inflight(void *impl)
{
    sim_judge *s = impl;
    return s->len - s->head;
}

static void sim_destroy(void *impl)
{
    sim_judge *s = impl;
    for (size_t i = s->head; i < s->len; i++)
        joust_judge_res_clear(&s->ready[i]);
    free(s->ready);
    free(s->ready_at_ms);
    free(s);
}

static const joust_judge_ops sim_ops = {
    .name = "sim", .submit = sim_submit, .poll = sim_poll, .inflight = sim_inflight,
    .destroy = sim_destroy};

int joust_judge_sim_new(const joust_judge_config *cfg, joust_judge_t **out)
{
    sim_judge *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    joust_judge_t *j = xmalloc(sizeof *j);
    j->ops = &sim_ops;
    j->impl = s;
    *out = j;
    return 0;
}
