/* Endpoint choice for the openai judge; see openai_route.h. */
#include "openai_route.h"

#include <stdlib.h>

#include "u64map.h"
#include "xalloc.h"

#define COOLDOWN_FIRST_MS 1000
#define COOLDOWN_MAX_MS 30000
#define SEQ_MASK ((1ull << 48) - 1)
#define AFFINITY_MAX_IMAGES (1u << 20) /* forget everything beyond this */

typedef struct {
    int inflight;
    int fails;              /* consecutive */
    int set_asides;         /* since the last success: doubles the cooldown */
    int64_t aside_until_ms; /* set aside (failing) until then */
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

/* Set aside (failing) endpoints take one probe request at a time once their
 * cooldown is over; paused ones (429) take none until then. In "panic"
 * (every endpoint set aside) the failing ones are used anyway, paced by
 * each match's backoff, as load balancers do when too few hosts are
 * healthy: holding the matches would only let their leases expire. */
static int available(const ep_t *e, int threshold, int64_t now, int panic)
{
    if (now < e->paused_until_ms)
        return 0;
    if (panic)
        return 1;
    if (now < e->aside_until_ms)
        return 0;
    return e->fails < threshold || e->inflight == 0;
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
    int navail = 0, panic = 0;
    for (int i = 0; i < r->n; i++)
        navail += available(&r->ep[i], r->threshold, now_ms, 0);
    if (navail == 0) {
        panic = 1;
        for (int i = 0; i < r->n; i++)
            navail += available(&r->ep[i], r->threshold, now_ms, 1);
        if (navail == 0)
            return -1; /* all paused by 429: wait */
    }
    int share = (r->max_inflight + navail - 1) / navail;
    int cap = share + (share / 4 > 1 ? share / 4 : 1);
    const uint64_t imgs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        int e = last_endpoint(r, imgs[k]);
        if (e >= 0 && e < r->n && available(&r->ep[e], r->threshold, now_ms, panic) &&
            r->ep[e].inflight < cap)
            return e;
    }
    int best = -1;
    for (int k = 0; k < r->n; k++) {
        int i = (r->rr + k) % r->n;
        if (available(&r->ep[i], r->threshold, now_ms, panic) &&
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
        p->set_asides = 0;
        break;
    case JOUST_OA_EP_THROTTLED:
        p->st.throttled++;
        if (retry_after_ms > 0 && now_ms + retry_after_ms > p->paused_until_ms)
            p->paused_until_ms = now_ms + retry_after_ms;
        break;
    case JOUST_OA_EP_FAILED:
        p->st.failed++;
        /* Requests already in flight when it was set aside fail too: only
         * a failure after the cooldown (a probe) lengthens it. */
        if (++p->fails >= r->threshold && now_ms >= p->aside_until_ms) {
            int64_t cool = COOLDOWN_FIRST_MS;
            for (int i = 0; i < p->set_asides && cool < COOLDOWN_MAX_MS; i++)
                cool *= 2;
            if (cool > COOLDOWN_MAX_MS)
                cool = COOLDOWN_MAX_MS;
            p->set_asides++;
            p->st.set_aside++;
            p->aside_until_ms = now_ms + cool;
        }
        break;
    }
}

int64_t joust_oa_route_next_change_ms(const joust_oa_route_t *r, int64_t now_ms)
{
    int64_t t = INT64_MAX;
    for (int i = 0; i < r->n; i++) {
        if (r->ep[i].aside_until_ms > now_ms && r->ep[i].aside_until_ms < t)
            t = r->ep[i].aside_until_ms;
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
}

void joust_oa_route_affinity(const joust_oa_route_t *r, uint64_t *sends, uint64_t *repeats)
{
    *sends = r->sends;
    *repeats = r->repeats;
}

int joust_oa_route_window(const joust_oa_route_t *r) { return r->window; }
