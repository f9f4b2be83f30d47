/* Endpoint choice for the openai judge: load spread, health and image
 * affinity.
 *
 * - Load: an endpoint takes at most its fair share of the worker's
 *   in-flight requests plus some slack; otherwise the least loaded wins.
 * - Health: an endpoint is up, down (failing, or not seen yet) or broken
 *   (it answers but refuses this configuration: 401/403, model not
 *   served). Only up endpoints take requests. After fail_threshold
 *   consecutive failures (5xx, timeouts, connection errors, bad bodies) an
 *   up endpoint goes down. Down and broken endpoints are probed by the
 *   caller (a GET of /models) when joust_oa_route_probe_due says so: the
 *   first probe at once, then with backoff (500 ms doubling to 5 s); a
 *   probe's verdict sets the state. A 429 pauses an endpoint for
 *   Retry-After without counting as a failure. pick answers -1 when no
 *   endpoint is up and free; the caller waits (joust_oa_route_next_change_ms).
 * - Affinity: a request goes where its first (else second) image was last
 *   sent, while that endpoint is healthy and under its share, so a VLM
 *   server sees the same image back to back (encoder and prefix caches).
 *   An image "repeat" is a send to an endpoint that received the same image
 *   within its last `window` requests; the share of repeats is reported.
 *
 * Threads: not thread-safe; one router per judge. Never fails: bad input
 * (endpoint index out of range) is ignored. */
#ifndef JOUST_OPENAI_ROUTE_H
#define JOUST_OPENAI_ROUTE_H
#include <stdint.h>

typedef enum {
    JOUST_OA_EP_OK,        /* the endpoint answered (any HTTP status but 5xx/429) */
    JOUST_OA_EP_FAILED,    /* 5xx, timeout, connection error, unusable body */
    JOUST_OA_EP_THROTTLED, /* 429: pause for retry_after_ms */
    JOUST_OA_EP_BROKEN     /* 401/403, model not served: broken until a probe says otherwise */
} joust_oa_ep_outcome;

typedef enum { JOUST_OA_UP, JOUST_OA_DOWN, JOUST_OA_BROKEN } joust_oa_ep_state;

typedef struct {
    uint64_t sent, failed, throttled, set_aside; /* set_aside: times it went down or broken */
    int inflight;
    int fails;          /* consecutive failures now (reset by an answer or an up probe) */
} joust_oa_ep_stats;

typedef struct joust_oa_route joust_oa_route_t;

/* n endpoints (>= 1), max_inflight over all of them, failures before an
 * endpoint goes down (>= 1), affinity window in requests (>= 1). Every
 * endpoint starts up; joust_oa_route_set_down makes one wait for a probe. */
joust_oa_route_t *joust_oa_route_new(int n, int max_inflight, int fail_threshold, int window);
void joust_oa_route_destroy(joust_oa_route_t **self_p);

/* The endpoint for a request with images a, b (0 = none), or -1 when no
 * endpoint can take one now (all paused by 429). */
int joust_oa_route_pick(joust_oa_route_t *r, uint64_t a, uint64_t b, int64_t now_ms);
/* Records that a request with images a, b went to e. */
void joust_oa_route_sent(joust_oa_route_t *r, int e, uint64_t a, uint64_t b);
/* Records how a request to e ended; retry_after_ms applies to THROTTLED. */
void joust_oa_route_done(joust_oa_route_t *r, int e, joust_oa_ep_outcome o, int retry_after_ms,
                         int64_t now_ms);
/* The earliest time after now_ms that a paused endpoint comes back or a
 * probe is due (INT64_MAX when none). */
int64_t joust_oa_route_next_change_ms(const joust_oa_route_t *r, int64_t now_ms);

/* Takes e out until a probe finds it up; its first probe is due at once. */
void joust_oa_route_set_down(joust_oa_route_t *r, int e, int64_t now_ms);
/* An endpoint whose probe is due (marked as probing until probe_done),
 * or -1. */
int joust_oa_route_probe_due(joust_oa_route_t *r, int64_t now_ms);
/* The probe's verdict on e; DOWN and BROKEN back off the next probe. */
void joust_oa_route_probe_done(joust_oa_route_t *r, int e, joust_oa_ep_state s, int64_t now_ms);
joust_oa_ep_state joust_oa_route_state(const joust_oa_route_t *r, int e);
/* How many endpoints are in state s. */
int joust_oa_route_count(const joust_oa_route_t *r, joust_oa_ep_state s);

void joust_oa_route_ep_stats(const joust_oa_route_t *r, int e, joust_oa_ep_stats *out);
/* Image sends and, of those, repeats to an endpoint that had just seen the image. */
void joust_oa_route_affinity(const joust_oa_route_t *r, uint64_t *sends, uint64_t *repeats);
int joust_oa_route_window(const joust_oa_route_t *r);

#endif
