/* Endpoint choice for the openai judge; see openai_route.h. */
#include "openai_route.h"

#include <stdlib.h>

#include "u64map.h"
#include "xalloc.h"

#define PROBE_FIRST_MS 500
#define PROBE_MAX_MS 5000
#define SEQ_MASK ((1ull << 48) - 1)
#define AFFINITY_MAX_IMAGES (1u << 20) /* forget everything beyond this */

typedef struct {
    int inflight;
    int fails;              /* consecutive */
    joust_oa_ep_state state;
    int probing;            /* a probe is out */
    int64_t probe_wait_ms;  /* backoff of the next probe after a failed one */
    int64_t probe_at_ms;    /* down or broken: the next probe is due then */
    int64_t paused_until_ms; /* 429: nothing before then */
    uint64_t seq;           /* requests sent to it */
    joust_oa_ep_stats st;
} ep_t;

struct joust_oa_route {
    ep_t *ep;
    int n, max_inflight, threshold, window, rr;
    joust_u64map_t last;    /* image id -> endpoint << 48 | its seq then */
    uint64_t sends, repeats;
};

joust_oa_route_t *joust_oa_route_new(int n, int max_inflight, int fail_threshold, int window)
{
    joust_oa_route_t *r = xcalloc(1, sizeof *r);
    r->n = n > 0 ? n : 1;
    r->ep = xcalloc((size_t)r->n, sizeof *r->ep);
    r->max_inflight = max_inflight > 0 ? max_inflight : 1;
    r->threshold = fail_threshold > 0 ? fail_threshold : 1;
    r->window = window > 0 ? window : 1;
    joust_u64map_init(&r->last);
    return r;
}

void joust_oa_route_destroy(joust_oa_route_t **self_p)
{
    joust_oa_route_t *r = *self_p;
    if (!r)
        return;
    joust_u64map_free(&r->last);
    free(r->ep);
    free(r);
    *self_p = NULL;
}

/* Only up endpoints take requests, and paused ones (429) none until then. */
static int available(const ep_t *e, int64_t now)
{
    return e->state == JOUST_OA_UP && now >= e->paused_until_ms;
}

static int last_endpoint(const joust_oa_route_t *r, uint64_t img)
{
    uint64_t v;
    if (!img || !joust_u64map_get(&r->last, img, &v))
        return -1;
    return (int)(v >> 48);
}

int joust_oa_route_pick(joust_oa_route_t *r, uint64_t a, uint64_t b, int64_t now_ms)
{
    int navail = 0;
    for (int i = 0; i < r->n; i++)
        navail += available(&r->ep[i], now_ms);
    if (navail == 0)
        return -1; /* none up, or all paused by 429: wait */
    int share = (r->max_inflight + navail - 1) / navail;
    int cap = share + (share / 4 > 1 ? share / 4 : 1);
    const uint64_t imgs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        int e = last_endpoint(r, imgs[k]);
        if (e >= 0 && e < r->n && available(&r->ep[e], now_ms) &&
            r->ep[e].inflight < cap)
            return e;
    }
    int best = -1;
    for (int k = 0; k < r->n; k++) {
        int i = (r->rr + k) % r->n;
        if (available(&r->ep[i], now_ms) &&
            (best < 0 || r->ep[i].inflight < r->ep[best].inflight))
            best = i;
    }
    r->rr = (r->rr + 1) % r->n;
    return best;
}

static void note_image(joust_oa_route_t *r, int e, uint64_t img)
{
    if (!img)
        return;
    uint64_t v;
    r->sends++;
    if (joust_u64map_get(&r->last, img, &v) && (int)(v >> 48) == e &&
        r->ep[e].seq - (v & SEQ_MASK) <= (uint64_t)r->window)
        r->repeats++;
    if (r->last.len >= AFFINITY_MAX_IMAGES)
        joust_u64map_clear(&r->last);
    joust_u64map_put(&r->last, img, (uint64_t)e << 48 | (r->ep[e].seq & SEQ_MASK));
}

void joust_oa_route_sent(joust_oa_route_t *r, int e, uint64_t a, uint64_t b)
{
    if (e < 0 || e >= r->n)
        return;
    ep_t *p = &r->ep[e];
    p->seq++;
    p->inflight++;
    p->st.sent++;
    note_image(r, e, a);
    if (b != a)
        note_image(r, e, b);
}

void joust_oa_route_done(joust_oa_route_t *r, int e, joust_oa_ep_outcome o, int retry_after_ms,
                         int64_t now_ms)
{
    if (e < 0 || e >= r->n)
        return;
    ep_t *p = &r->ep[e];
    if (p->inflight > 0)
        p->inflight--;
    switch (o) {
    case JOUST_OA_EP_OK:
        p->fails = 0;
        break;
    case JOUST_OA_EP_THROTTLED:
        p->st.throttled++;
        if (retry_after_ms > 0 && now_ms + retry_after_ms > p->paused_until_ms)
            p->paused_until_ms = now_ms + retry_after_ms;
        break;
    case JOUST_OA_EP_FAILED:
        p->st.failed++;
        /* Requests already in flight when it went down fail too: they
         * change nothing until a probe has spoken. */
        if (++p->fails >= r->threshold && p->state == JOUST_OA_UP)
            joust_oa_route_set_down(r, e, now_ms);
        break;
    case JOUST_OA_EP_BROKEN:
        p->st.failed++;
        if (p->state != JOUST_OA_BROKEN) {
            joust_oa_route_set_down(r, e, now_ms);
            p->state = JOUST_OA_BROKEN;
            p->probe_at_ms = now_ms + PROBE_MAX_MS;
        }
        break;
    }
}

void joust_oa_route_set_down(joust_oa_route_t *r, int e, int64_t now_ms)
{
    if (e < 0 || e >= r->n)
        return;
    ep_t *p = &r->ep[e];
    if (p->state == JOUST_OA_UP && p->st.sent) /* not the first probe of an unused one */
        p->st.set_aside++;
    p->state = JOUST_OA_DOWN;
    p->probe_at_ms = now_ms;
    p->probe_wait_ms = PROBE_FIRST_MS;
}

int joust_oa_route_probe_due(joust_oa_route_t *r, int64_t now_ms)
{
    for (int i = 0; i < r->n; i++) {
        ep_t *p = &r->ep[i];
        if (p->state != JOUST_OA_UP && !p->probing && now_ms >= p->probe_at_ms) {
            p->probing = 1;
            return i;
        }
    }
    return -1;
}

void joust_oa_route_probe_done(joust_oa_route_t *r, int e, joust_oa_ep_state s, int64_t now_ms)
{
    if (e < 0 || e >= r->n)
        return;
    ep_t *p = &r->ep[e];
    p->probing = 0;
    if (s == JOUST_OA_UP) {
        p->state = JOUST_OA_UP;
        p->fails = 0;
        p->probe_wait_ms = PROBE_FIRST_MS;
        return;
    }
    if (p->state == JOUST_OA_UP)
        p->st.set_aside++;
    p->state = s;
    p->probe_at_ms = now_ms + p->probe_wait_ms;
    p->probe_wait_ms = p->probe_wait_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : p->probe_wait_ms * 2;
}

joust_oa_ep_state joust_oa_route_state(const joust_oa_route_t *r, int e)
{
    return e >= 0 && e < r->n ? r->ep[e].state : JOUST_OA_DOWN;
}

int joust_oa_route_count(const joust_oa_route_t *r, joust_oa_ep_state s)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->ep[i].state == s;
    return n;
}

int64_t joust_oa_route_next_change_ms(const joust_oa_route_t *r, int64_t now_ms)
{
    int64_t t = INT64_MAX;
    for (int i = 0; i < r->n; i++) {
        const ep_t *p = &r->ep[i];
        if (p->state != JOUST_OA_UP && !p->probing)
            t = p->probe_at_ms > now_ms ? (p->probe_at_ms < t ? p->probe_at_ms : t) : now_ms;
        if (r->ep[i].paused_until_ms > now_ms && r->ep[i].paused_until_ms < t)
            t = r->ep[i].paused_until_ms;
    }
    return t;
}

void joust_oa_route_ep_stats(const joust_oa_route_t *r, int e, joust_oa_ep_stats *out)
{
    if (e < 0 || e >= r->n) {
        *out = (joust_oa_ep_stats){0};
        return;
    }
    *out = r->ep[e].st;
    out->inflight = r->ep[e].inflight;
    out->fails = r->ep[e].fails;
}

void joust_oa_route_affinity(const joust_oa_route_t *r, uint64_t *sends, uint64_t *repeats)
{
    *sends = r->sends;
    *repeats = r->repeats;
}

int joust_oa_route_window(const joust_oa_route_t *r) { return r->window; }
